// OnnxRuntimeBackend: loads .onnx files into ONNX Runtime CPU sessions.
//
// Each ModelInstance owns one Ort::Session. Load() reads the model's inputs and outputs, completes
// the ModelConfig from them (names, datatypes, dims, and whether dimension 0 is a batch dimension)
// and refuses a config that contradicts the file, naming the tensor and both values.
// Thread safety: Load may run concurrently for different models; see backend.h for instances.
// ONNX Runtime's headers never leave this folder.
#pragma once

#include <memory>

#include "slipway/backend/backend.h"

namespace slipway::backends::onnxruntime {

struct OnnxRuntimeBackendOptions {
  // max_batch_size given to a model whose every input and output has a variable dimension 0 and
  // whose config does not say otherwise.
  int64_t default_max_batch_size = 64;
  // Let ONNX Runtime's intra-op threads spin while waiting for work (lower latency, more CPU).
  bool allow_spinning = false;
};

std::unique_ptr<backend::Backend> CreateOnnxRuntimeBackend(OnnxRuntimeBackendOptions options);

}  // namespace slipway::backends::onnxruntime
