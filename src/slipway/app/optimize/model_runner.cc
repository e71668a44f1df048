#include "slipway/app/optimize/model_runner.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>

#include "slipway/app/optimize/onnx_model_file.h"
#include "slipway/backends/onnxruntime/onnxruntime_backend.h"

namespace slipway::app::optimize {

using core::Result;
using core::Status;

Result<std::unique_ptr<ModelRunner>> ModelRunner::Create(const std::string& path, Options options) {
  std::unique_ptr<ModelRunner> runner(new ModelRunner());
  runner->backend_ = backends::onnxruntime::CreateOnnxRuntimeBackend({});
  backend::LoadOptions load;
  load.model_path = path;
  if (options.config) {
    load.config = *options.config;
  } else {
    load.config.name = std::filesystem::path(path).stem().string();
    load.config.source = "slipway optimize";
  }
  if (options.max_batch_size) load.config.max_batch_size = options.max_batch_size;
  load.intra_op_threads = std::max(1, options.intra_op_threads);
  auto model = runner->backend_->Load(load);
  if (!model.ok()) {
    return Status::InvalidArgument("ONNX Runtime cannot load '" + path + "': " + model.status().message());
  }
  runner->model_ = std::move(model).value();
  ASSIGN_OR_RETURN(runner->instance_, runner->model_->CreateInstance());
  return runner;
}

std::vector<std::string> ModelRunner::OutputNames() const {
  std::vector<std::string> names;
  for (const auto& o : config().outputs) names.push_back(o.name);
  return names;
}

Result<std::vector<core::Tensor>> ModelRunner::Run(const std::vector<core::Tensor>& inputs,
                                                   const std::vector<std::string>& outputs) {
  std::vector<const core::Tensor*> ptrs;
  ptrs.reserve(inputs.size());
  for (const auto& t : inputs) ptrs.push_back(&t);
  return instance_->Execute(ptrs, outputs);
}

Result<std::map<std::string, std::pair<float, float>>> Calibrate(
    const onnx::ModelProto& model, const std::vector<std::string>& tensors, const SampleSet& samples,
    const CalibrationOptions& options) {
  std::map<std::string, std::pair<float, float>> ranges;
  if (tensors.empty()) return ranges;
  onnx::ModelProto augmented = model;
  std::set<std::string> outputs;
  for (const auto& o : augmented.graph().output()) outputs.insert(o.name());
  for (const auto& t : tensors) {
    if (outputs.count(t)) continue;
    auto* vi = augmented.mutable_graph()->add_output();
    vi->set_name(t);
    vi->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  }
  ASSIGN_OR_RETURN(std::string bytes, SerializeOnnxModel(augmented));
  RETURN_IF_ERROR(WriteFileSynced(options.scratch_path, bytes));
  struct Cleanup {
    std::string path;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove(path, ec);
    }
  } cleanup{options.scratch_path};
  ASSIGN_OR_RETURN(auto runner, ModelRunner::Create(
      options.scratch_path, {.intra_op_threads = options.intra_op_threads, .max_batch_size = 0, .config = {}}));
  // Min-max needs no sample of the values; percentiles keep up to 256 Ki values per tensor.
  const size_t reservoir = options.method == CalibrationMethod::kPercentile ? size_t{1} << 18 : 0;
  std::vector<RangeCollector> collectors(tensors.size(), RangeCollector(reservoir));
  for (const auto& sample : samples.samples) {
    auto got = runner->Run(sample.inputs, tensors);
    if (!got.ok()) {
      return Status::InvalidArgument("the model failed on a calibration example: " + got.status().message());
    }
    for (size_t i = 0; i < tensors.size(); ++i) {
      const core::Tensor& t = got.value()[i];
      if (t.type() != core::DataType::kFp32) {
        return Status::Internal("calibration tensor '" + tensors[i] + "' is not FP32");
      }
      const std::string_view b = t.bytes();
      std::vector<float> values(b.size() / sizeof(float));
      std::memcpy(values.data(), b.data(), values.size() * sizeof(float));
      collectors[i].Add(values.data(), values.size());
    }
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    ranges[tensors[i]] = collectors[i].Range(options.method, options.percentile);
  }
  return ranges;
}

}  // namespace slipway::app::optimize
