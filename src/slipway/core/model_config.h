// ModelConfig: what the server knows about a model, as plain structs.
//
// A config is built in fixed passes: parse (repository/, from config.yaml or config.pbtxt) ->
// auto-complete (from the model file, by the backend) -> normalise -> validate. Fields that a
// config file may leave out are std::optional until auto-complete fills them.
// Thread safety: plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "slipway/core/data_type.h"
#include "slipway/core/status.h"
#include "slipway/core/tensor.h"

namespace slipway::core {

struct TensorConfig {
  std::string name;
  DataType type = DataType::kInvalid;
  // Dimensions without the batch dimension when max_batch_size > 0; -1 means variable.
  Shape dims;
  bool dims_set = false;
};

struct VersionPolicy {
  enum class Kind { kLatest, kAll, kSpecific };
  Kind kind = Kind::kLatest;
  int64_t latest_count = 1;
  std::vector<int64_t> specific;
};

struct DynamicBatchingConfig {
  bool enabled = false;
  std::vector<int64_t> preferred_batch_sizes;
  int64_t max_queue_delay_us = 0;
  int64_t max_queue_size = 0;          // pending requests; 0: the server's default
  int64_t default_timeout_us = 0;      // 0: requests wait as long as it takes
  int64_t priority_levels = 0;         // 0 or 1: a single level
  int64_t default_priority_level = 0;  // 0: the lowest level
  bool preserve_ordering = false;      // answer in arrival order
};

struct ModelConfig {
  std::string name;
  std::string platform;  // "onnxruntime_onnx"
  std::string backend;   // "onnxruntime"
  std::optional<int64_t> max_batch_size;  // 0: the model does not batch on dimension 0
  std::vector<TensorConfig> inputs;
  std::vector<TensorConfig> outputs;
  VersionPolicy version_policy;
  int64_t instance_count = 0;  // 0: chosen by the server's thread budget
  // Above instance_count: instances are added under load up to this many, and removed when idle.
  int64_t max_instance_count = 0;
  int64_t intra_op_threads = 0;  // runtime threads per instance; set by the server at load
  DynamicBatchingConfig dynamic_batching;
  std::string default_model_filename;
  // Where the config came from ("config.yaml", "config.pbtxt", or "" for none), for messages.
  std::string source;

  int64_t batch_size_limit() const { return max_batch_size.value_or(0); }
  const TensorConfig* FindInput(std::string_view name) const;
  const TensorConfig* FindOutput(std::string_view name) const;
};

// Checks a config after auto-complete: names, types and dims present and consistent.
Status ValidateModelConfig(const ModelConfig& config);

// The shape clients see: dims with a leading -1 when the model batches.
Shape ExternalShape(const ModelConfig& config, const TensorConfig& tensor);

}  // namespace slipway::core
