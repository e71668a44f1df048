#include "slipway/backends/onnxruntime/graph_optimizer.h"

#include <onnxruntime_cxx_api.h>

namespace slipway::backends::onnxruntime {

using core::Result;
using core::Status;

namespace {

constexpr struct {
  OptimizationLevel level;
  const char* name;
  GraphOptimizationLevel ort;
} kLevels[] = {
    {OptimizationLevel::kDisabled, "disabled", ORT_DISABLE_ALL},
    {OptimizationLevel::kBasic, "basic", ORT_ENABLE_BASIC},
    {OptimizationLevel::kExtended, "extended", ORT_ENABLE_EXTENDED},
    {OptimizationLevel::kLayout, "layout", ORT_ENABLE_LAYOUT},
    {OptimizationLevel::kAll, "all", ORT_ENABLE_ALL},
};

Ort::Env& OptimizerEnv() {
  static Ort::Env env(ORT_LOGGING_LEVEL_ERROR, "slipway-optimize");
  return env;
}

}  // namespace

const char* OptimizationLevelName(OptimizationLevel level) {
  for (const auto& l : kLevels) {
    if (l.level == level) return l.name;
  }
  return "?";
}

Result<OptimizationLevel> ParseOptimizationLevel(std::string_view name) {
  for (const auto& l : kLevels) {
    if (name == l.name) return l.level;
  }
  return Status::InvalidArgument("unknown graph optimization level '" + std::string(name) +
                                 "' (expected disabled, basic, extended, layout or all)");
}

Status SaveOptimizedGraph(const std::string& model_path, const std::string& output_path,
                          OptimizationLevel level) {
  GraphOptimizationLevel ort_level = ORT_DISABLE_ALL;
  for (const auto& l : kLevels) {
    if (l.level == level) ort_level = l.ort;
  }
  try {
    Ort::SessionOptions opts;
    opts.SetIntraOpNumThreads(1);
    opts.SetInterOpNumThreads(1);
    opts.SetGraphOptimizationLevel(ort_level);
    opts.SetOptimizedModelFilePath(output_path.c_str());
    Ort::Session session(OptimizerEnv(), model_path.c_str(), opts);
  } catch (const std::exception& e) {
    return Status::InvalidArgument("ONNX Runtime could not optimize '" + model_path + "': " +
                                   e.what());
  }
  return Status::Ok();
}

}  // namespace slipway::backends::onnxruntime
