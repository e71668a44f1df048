#include "slipway/core/model_config.h"

#include <algorithm>
#include <set>

namespace slipway::core {

const TensorConfig* ModelConfig::FindInput(std::string_view name) const {
  for (const auto& t : inputs) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const TensorConfig* ModelConfig::FindOutput(std::string_view name) const {
  for (const auto& t : outputs) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

namespace {

Status ValidateTensors(const ModelConfig& config, const std::vector<TensorConfig>& tensors,
                       const char* kind) {
  std::set<std::string> seen;
  for (const auto& t : tensors) {
    if (t.name.empty()) {
      return Status::InvalidArgument("model '" + config.name + "': an " + kind + " has no name");
    }
    if (!seen.insert(t.name).second) {
      return Status::InvalidArgument("model '" + config.name + "': " + kind + " '" + t.name +
                                     "' is declared twice");
    }
    if (t.type == DataType::kInvalid) {
      return Status::InvalidArgument("model '" + config.name + "': " + kind + " '" + t.name +
                                     "' has no valid datatype");
    }
    for (int64_t d : t.dims) {
      if (d < -1 || d == 0) {
        return Status::InvalidArgument("model '" + config.name + "': " + kind + " '" + t.name +
                                       "' has invalid dims " + ShapeToString(t.dims) +
                                       " (each must be positive or -1)");
      }
    }
  }
  return Status::Ok();
}

}  // namespace

Status ValidateModelConfig(const ModelConfig& config) {
  if (config.name.empty()) return Status::InvalidArgument("model config has no name");
  if (config.batch_size_limit() < 0) {
    return Status::InvalidArgument("model '" + config.name + "': max_batch_size must be >= 0, got " +
                                   std::to_string(config.batch_size_limit()));
  }
  if (config.inputs.empty()) {
    return Status::InvalidArgument("model '" + config.name + "' has no inputs");
  }
  if (config.outputs.empty()) {
    return Status::InvalidArgument("model '" + config.name + "' has no outputs");
  }
  RETURN_IF_ERROR(ValidateTensors(config, config.inputs, "input"));
  RETURN_IF_ERROR(ValidateTensors(config, config.outputs, "output"));
  if (config.instance_count < 0) {
    return Status::InvalidArgument("model '" + config.name + "': instance_count must be >= 0");
  }
  if (config.max_instance_count != 0 && config.max_instance_count < config.instance_count) {
    return Status::InvalidArgument("model '" + config.name + "': instances max " +
                                   std::to_string(config.max_instance_count) +
                                   " is below min " + std::to_string(config.instance_count));
  }
  const DynamicBatchingConfig& db = config.dynamic_batching;
  if (db.enabled) {
    if (db.max_queue_delay_us < 0 || db.max_queue_size < 0 || db.default_timeout_us < 0 ||
        db.priority_levels < 0 || db.default_priority_level < 0) {
      return Status::InvalidArgument("model '" + config.name +
                                     "': dynamic_batching values must not be negative");
    }
    if (db.default_priority_level > std::max<int64_t>(1, db.priority_levels)) {
      return Status::InvalidArgument(
          "model '" + config.name + "': default_priority_level " +
          std::to_string(db.default_priority_level) + " is above priority_levels " +
          std::to_string(std::max<int64_t>(1, db.priority_levels)));
    }
    for (int64_t s : db.preferred_batch_sizes) {
      if (s < 1 || (config.batch_size_limit() > 0 && s > config.batch_size_limit())) {
        return Status::InvalidArgument("model '" + config.name + "': preferred batch size " +
                                       std::to_string(s) + " is outside 1.." +
                                       std::to_string(config.batch_size_limit()));
      }
    }
  }
  RETURN_IF_ERROR(ValidatePredictConfig(config));
  if (config.version_policy.kind == VersionPolicy::Kind::kLatest &&
      config.version_policy.latest_count < 1) {
    return Status::InvalidArgument("model '" + config.name +
                                   "': version_policy latest.num_versions must be >= 1");
  }
  return Status::Ok();
}

Shape ExternalShape(const ModelConfig& config, const TensorConfig& tensor) {
  Shape s;
  s.reserve(tensor.dims.size() + 1);
  if (config.batch_size_limit() > 0) s.push_back(-1);
  for (int64_t d : tensor.dims) s.push_back(d);
  return s;
}

}  // namespace slipway::core
