// Backend -> Model -> ModelInstance: the interfaces every runtime implements.
//
// A Backend loads a model file into a Model; while loading it completes the ModelConfig from the
// file and refuses a config that contradicts it. A Model creates ModelInstances; each instance
// executes one call at a time (the scheduler guarantees this), different instances run in parallel.
// Thread safety: Backend::Load and Model::CreateInstance may be called from any thread;
// ModelInstance::Execute is called by one thread at a time per instance. All calls block.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "slipway/core/model_config.h"
#include "slipway/core/status.h"
#include "slipway/core/tensor.h"

namespace slipway::backend {

class ModelInstance {
 public:
  virtual ~ModelInstance() = default;
  // Runs the model on `inputs` (already validated against the config: names, types, shapes and
  // sizes) and returns the outputs named in `output_names`, in that order, with owned bytes.
  virtual core::Result<std::vector<core::Tensor>> Execute(
      const std::vector<const core::Tensor*>& inputs,
      const std::vector<std::string>& output_names) = 0;
};

class Model {
 public:
  virtual ~Model() = default;
  // The complete, validated config.
  virtual const core::ModelConfig& config() const = 0;
  virtual core::Result<std::unique_ptr<ModelInstance>> CreateInstance() = 0;
};

struct LoadOptions {
  std::string model_path;     // the model file
  core::ModelConfig config;   // parsed from the repository, to be completed from the file
  int intra_op_threads = 1;   // runtime threads per instance
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;       // "onnxruntime"
  virtual std::string platform() const = 0;   // "onnxruntime_onnx"
  virtual std::string default_model_filename() const = 0;  // "model.onnx"
  virtual core::Result<std::unique_ptr<Model>> Load(const LoadOptions& options) = 0;

 protected:
  // What every Load starts from: the repository's config with where it came from ("the model
  // config" when unsaid), this backend's platform and name, and its default model file when the
  // config names none. The backend then completes it from the model file.
  core::ModelConfig StartConfig(const LoadOptions& options) const {
    core::ModelConfig config = options.config;
    if (config.source.empty()) config.source = "the model config";
    config.platform = platform();
    config.backend = name();
    if (config.default_model_filename.empty()) config.default_model_filename = default_model_filename();
    return config;
  }
};

}  // namespace slipway::backend
