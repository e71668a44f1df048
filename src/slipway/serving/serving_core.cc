#include "slipway/serving/serving_core.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <set>

namespace slipway::serving {

using core::Result;
using core::Status;

namespace {

std::string NameList(const std::vector<core::TensorConfig>& tensors) {
  std::string s = "[";
  for (size_t i = 0; i < tensors.size(); ++i) s += (i ? ", '" : "'") + tensors[i].name + "'";
  return s + "]";
}

std::string ModelLabel(const core::ModelConfig& config) { return "model '" + config.name + "'"; }

}  // namespace

Status ValidateInferRequest(const core::ModelConfig& config, const core::InferRequest& request,
                            std::vector<const core::Tensor*>* ordered,
                            std::vector<std::string>* output_names,
                            const RequestLimits& limits) {
  const bool batching = config.batch_size_limit() > 0;
  ordered->assign(config.inputs.size(), nullptr);
  int64_t batch = -1;
  std::string batch_from;
  for (const core::Tensor& t : request.inputs) {
    size_t index = config.inputs.size();
    for (size_t i = 0; i < config.inputs.size(); ++i) {
      if (config.inputs[i].name == t.name()) index = i;
    }
    if (index == config.inputs.size()) {
      return Status::InvalidArgument("unknown input '" + t.name() + "' for " + ModelLabel(config) +
                                     "; expected inputs " + NameList(config.inputs));
    }
    if ((*ordered)[index] != nullptr) {
      return Status::InvalidArgument("input '" + t.name() + "' appears more than once");
    }
    (*ordered)[index] = &t;
    const core::TensorConfig& tc = config.inputs[index];
    if (t.type() != tc.type) {
      return Status::InvalidArgument("input '" + t.name() + "' of " + ModelLabel(config) +
                                     " expects datatype " +
                                     std::string(core::DataTypeName(tc.type)) + ", got " +
                                     std::string(core::DataTypeName(t.type())));
    }
    const core::Shape& shape = t.shape();
    for (int64_t d : shape) {
      if (d < 0) {
        return Status::InvalidArgument("input '" + t.name() + "' has a negative dimension in shape " +
                                       core::ShapeToString(shape));
      }
    }
    const size_t expected_rank = tc.dims.size() + (batching ? 1 : 0);
    const core::Shape expected = core::ExternalShape(config, tc);
    if (shape.size() != expected_rank) {
      return Status::InvalidArgument("input '" + t.name() + "' of " + ModelLabel(config) +
                                     " expects shape " + core::ShapeToString(expected) +
                                     " (rank " + std::to_string(expected_rank) + "), got " +
                                     core::ShapeToString(shape));
    }
    for (size_t i = batching ? 1 : 0; i < shape.size(); ++i) {
      if (expected[i] != -1 && expected[i] != shape[i]) {
        return Status::InvalidArgument("input '" + t.name() + "' of " + ModelLabel(config) +
                                       " expects shape " + core::ShapeToString(expected) +
                                       ", got " + core::ShapeToString(shape));
      }
    }
    if (batching) {
      if (shape[0] < 1 || shape[0] > config.batch_size_limit()) {
        return Status::InvalidArgument("input '" + t.name() + "': batch size " +
                                       std::to_string(shape[0]) + " is outside 1.." +
                                       std::to_string(config.batch_size_limit()) +
                                       " (the max_batch_size of " + ModelLabel(config) + ")");
      }
      if (batch != -1 && shape[0] != batch) {
        return Status::InvalidArgument("input '" + t.name() + "' has batch size " +
                                       std::to_string(shape[0]) + " but input '" + batch_from +
                                       "' has " + std::to_string(batch));
      }
      batch = shape[0];
      batch_from = t.name();
    }
    RETURN_IF_ERROR(t.ValidateSize());
    if (limits.max_tensor_elements > 0) {
      auto elements = core::ElementCount(shape);
      if (elements.ok() && *elements > limits.max_tensor_elements) {
        return Status::InvalidArgument(
            "input '" + t.name() + "' has " + std::to_string(*elements) +
            " elements, more than the server's limit of " +
            std::to_string(limits.max_tensor_elements));
      }
    }
    if (limits.max_string_bytes > 0 && t.type() == core::DataType::kBytes) {
      // Elements are 4-byte little-endian lengths followed by the bytes (ValidateSize checked
      // that they fit).
      const std::string_view b = t.bytes();
      size_t pos = 0;
      while (pos + 4 <= b.size()) {
        uint32_t n = 0;
        std::memcpy(&n, b.data() + pos, 4);
        if (n > limits.max_string_bytes) {
          return Status::InvalidArgument("input '" + t.name() + "' has a string of " +
                                         std::to_string(n) + " bytes, more than the server's "
                                         "limit of " + std::to_string(limits.max_string_bytes));
        }
        pos += 4 + n;
      }
    }
  }
  for (size_t i = 0; i < config.inputs.size(); ++i) {
    if ((*ordered)[i] == nullptr) {
      return Status::InvalidArgument("missing input '" + config.inputs[i].name + "' for " +
                                     ModelLabel(config) + "; expected inputs " +
                                     NameList(config.inputs));
    }
  }
  output_names->clear();
  if (request.outputs.empty()) {
    for (const auto& o : config.outputs) output_names->push_back(o.name);
  } else {
    std::set<std::string> seen;
    for (const auto& o : request.outputs) {
      if (config.FindOutput(o.name) == nullptr) {
        return Status::InvalidArgument("unknown output '" + o.name + "' requested from " +
                                       ModelLabel(config) + "; outputs are " +
                                       NameList(config.outputs));
      }
      if (!seen.insert(o.name).second) {
        return Status::InvalidArgument("output '" + o.name + "' is requested more than once");
      }
      output_names->push_back(o.name);
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<ServingCore>> ServingCore::Create(Options options) {
  if (options.models == nullptr) return Status::InvalidArgument("ServingCore needs a ModelManager");
  return std::unique_ptr<ServingCore>(new ServingCore(std::move(options)));
}

void ServingCore::Infer(core::InferRequest request, core::InferCallback done) {
  auto handle = options_.models->Find(request.model_name, request.model_version);
  if (!handle.ok()) {
    spdlog::debug("infer model='{}' id='{}' refused: {}", request.model_name, request.id,
                  handle.status().ToString());
    return done(handle.status());
  }
  std::shared_ptr<const lifecycle::ModelVersion> version = std::move(handle).value();
  const core::ModelConfig& config = version->config();
  std::vector<const core::Tensor*> ordered;
  scheduler::PendingRequest pending;
  Status st =
      ValidateInferRequest(config, request, &ordered, &pending.output_names, options_.limits);
  if (!st.ok()) {
    spdlog::debug("infer model='{}' id='{}' refused: {}", request.model_name, request.id,
                  st.ToString());
    return done(st);
  }
  const bool batching = config.batch_size_limit() > 0;
  for (const core::Tensor* t : ordered) {
    pending.input_order.push_back(static_cast<size_t>(t - request.inputs.data()));
  }
  pending.batch = batching ? ordered.front()->shape()[0] : 1;
  pending.signature =
      scheduler::BatchSignature(request, pending.input_order, pending.output_names, batching);
  pending.request = std::move(request);
  scheduler::DynamicBatcher* batcher = version->batcher.get();
  // The answer callback holds the version handle, so the version outlives its queued work.
  pending.done = [version, id = pending.request.id,
                  done = std::move(done)](Result<core::InferResponse> result) {
    if (result.ok()) {
      result->model_name = version->name;
      result->model_version = version->version;
      result->id = id;
      spdlog::debug("infer model='{}' version={} id='{}' ok", version->name, version->version, id);
    } else {
      spdlog::debug("infer model='{}' version={} id='{}' failed: {}", version->name,
                    version->version, id, result.status().ToString());
    }
    done(std::move(result));
  };
  batcher->Submit(std::move(pending));
}

bool ServingCore::ServerReady() const {
  if (draining_) return false;
  return !options_.strict_readiness || options_.models->AllReady();
}

ServerMetadata ServingCore::GetServerMetadata() const {
  return {"slipway", options_.server_version,
          {"binary_tensor_data", "model_configuration", "model_repository", "statistics",
           "schedule_policy"}};
}

Result<bool> ServingCore::ModelReady(const std::string& name, int64_t version) const {
  auto handle = options_.models->Find(name, version);
  if (handle.ok()) return true;
  if (handle.status().code() == core::StatusCode::kUnavailable) return false;
  return handle.status();
}

Result<ModelMetadata> ServingCore::GetModelMetadata(const std::string& name,
                                                    int64_t version) const {
  ASSIGN_OR_RETURN(auto handle, options_.models->Find(name, version));
  const core::ModelConfig& config = handle->config();
  ModelMetadata md;
  md.name = name;
  md.platform = config.platform;
  if (version != 0) {
    md.versions.push_back(std::to_string(version));
  } else {
    for (int64_t v : options_.models->ReadyVersions(name)) md.versions.push_back(std::to_string(v));
  }
  for (const auto& t : config.inputs) md.inputs.push_back({t.name, t.type, core::ExternalShape(config, t)});
  for (const auto& t : config.outputs) {
    md.outputs.push_back({t.name, t.type, core::ExternalShape(config, t)});
  }
  return md;
}

Result<core::ModelConfig> ServingCore::GetModelConfig(const std::string& name,
                                                      int64_t version) const {
  ASSIGN_OR_RETURN(auto handle, options_.models->Find(name, version));
  core::ModelConfig config = handle->config();
  // The instances running now (autoscaling moves this between its min and max).
  config.instance_count = handle->batcher->instance_count();
  return config;
}

Result<std::vector<ModelStatistics>> ServingCore::GetModelStatistics(const std::string& name,
                                                                    int64_t version) const {
  std::vector<std::string> names;
  if (name.empty()) {
    for (const auto& model : options_.models->Index()) names.push_back(model.name);
  } else {
    names.push_back(name);
  }
  std::vector<ModelStatistics> out;
  for (const auto& n : names) {
    std::vector<int64_t> versions;
    if (version != 0) {
      versions.push_back(version);
    } else {
      versions = options_.models->ReadyVersions(n);
      if (versions.empty() && !name.empty()) {
        // Distinguish an unknown model from one with nothing ready.
        auto found = options_.models->Find(n, 0);
        if (!found.ok() && found.status().code() == core::StatusCode::kNotFound) {
          return found.status();
        }
      }
    }
    for (int64_t v : versions) {
      auto handle = options_.models->Find(n, v);
      if (!handle.ok()) {
        if (!name.empty()) return handle.status();
        continue;
      }
      out.push_back({n, std::to_string(v), (*handle)->batcher->Stats(),
                     (*handle)->batcher->instance_count(), (*handle)->load_seconds});
    }
  }
  return out;
}

std::vector<RepositoryIndexEntry> ServingCore::RepositoryIndex(bool ready_only) const {
  std::vector<RepositoryIndexEntry> out;
  for (const auto& model : options_.models->Index()) {
    for (const auto& v : model.versions) {
      if (ready_only && v.state != lifecycle::VersionState::kReady) continue;
      out.push_back({model.name, v.version > 0 ? std::to_string(v.version) : "",
                     lifecycle::VersionStateName(v.state), v.reason});
    }
  }
  if (!ready_only) {
    std::set<std::string> known;
    for (const auto& e : out) known.insert(e.name);
    for (const auto& name : options_.models->ModelsOnDisk()) {
      if (known.count(name) == 0) out.push_back({name, "", "", ""});
    }
    std::stable_sort(out.begin(), out.end(),
                     [](const auto& a, const auto& b) { return a.name < b.name; });
  }
  return out;
}

namespace {

Status CheckExplicit(ModelControl control, const char* action) {
  if (control == ModelControl::kExplicit) return Status::Ok();
  return Status::FailedPrecondition(
      std::string("explicit model ") + action + " is not allowed: the server runs with "
      "--model-control-mode " + (control == ModelControl::kPoll ? "poll" : "none") +
      " (use explicit to load and unload through the API)");
}

}  // namespace

Status ServingCore::LoadModel(const std::string& name, const LoadModelOptions& options) {
  RETURN_IF_ERROR(CheckExplicit(options_.control, "load"));
  lifecycle::ModelManager::LoadOptions load;
  load.config_override = options.config_override;
  return options_.models->Load(name, load);
}

Status ServingCore::UnloadModel(const std::string& name) {
  RETURN_IF_ERROR(CheckExplicit(options_.control, "unload"));
  return options_.models->Unload(name);
}

Result<std::pair<int64_t, std::string>> ServingCore::UploadVersion(const std::string& name,
                                                                    int64_t version,
                                                                    std::string_view bytes) {
  if (options_.control == ModelControl::kNone) {
    return Status::FailedPrecondition(
        "uploads are not allowed: the server runs with --model-control-mode none");
  }
  ASSIGN_OR_RETURN(auto result, options_.models->UploadVersion(name, version, bytes));
  return std::make_pair(result.version, result.state);
}

Status ServingCore::RefreshModel(const std::string& name) {
  if (options_.models->ReadyVersions(name).empty()) {
    return Status::FailedPrecondition("model '" + name + "' is not loaded");
  }
  return options_.models->Load(name);
}

}  // namespace slipway::serving
