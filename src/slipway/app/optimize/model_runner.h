// ModelRunner: a model file loaded in-process through the server's own ONNX Runtime backend
// (same session options as `slipway serve`), run directly on its one instance; and Calibrate,
// which measures activation ranges by running a copy of a model that exposes them as outputs.
//
// Thread safety: a ModelRunner is used by one thread. Loading and running block.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <onnx/onnx_pb.h>

#include "slipway/app/optimize/quantization_math.h"
#include "slipway/app/optimize/sample_set.h"
#include "slipway/backend/backend.h"
#include "slipway/core/model_config.h"
#include "slipway/core/status.h"

namespace slipway::app::optimize {

class ModelRunner {
 public:
  struct Options {
    int intra_op_threads = 1;
    std::optional<int64_t> max_batch_size;  // overrides what the backend infers (0: never batch)
    std::optional<core::ModelConfig> config;  // a repository's config to load the file with
  };
  static core::Result<std::unique_ptr<ModelRunner>> Create(const std::string& path, Options options);

  const core::ModelConfig& config() const { return model_->config(); }
  bool batching() const { return config().batch_size_limit() > 0; }
  std::vector<std::string> OutputNames() const;

  core::Result<std::vector<core::Tensor>> Run(const std::vector<core::Tensor>& inputs,
                                              const std::vector<std::string>& outputs);

 private:
  ModelRunner() = default;
  std::unique_ptr<backend::Backend> backend_;
  std::unique_ptr<backend::Model> model_;
  std::unique_ptr<backend::ModelInstance> instance_;
};

struct CalibrationOptions {
  CalibrationMethod method = CalibrationMethod::kMinMax;
  double percentile = 99.99;
  int intra_op_threads = 1;
  std::string scratch_path;  // where the model with extra outputs is written (then removed)
};

// [lo, hi] of each of `tensors` (FLOAT activations of `model`) over `samples`.
core::Result<std::map<std::string, std::pair<float, float>>> Calibrate(
    const onnx::ModelProto& model, const std::vector<std::string>& tensors, const SampleSet& samples,
    const CalibrationOptions& options);

}  // namespace slipway::app::optimize
