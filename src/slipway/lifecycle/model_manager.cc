#include "slipway/lifecycle/model_manager.h"

#include <spdlog/spdlog.h>

#include <filesystem>

namespace slipway::lifecycle {

using core::Result;
using core::Status;

const char* VersionStateName(VersionState state) {
  switch (state) {
    case VersionState::kLoading: return "LOADING";
    case VersionState::kReady: return "READY";
    case VersionState::kUnloading: return "UNLOADING";
    case VersionState::kUnavailable: return "UNAVAILABLE";
  }
  return "UNKNOWN";
}

ModelVersion::~ModelVersion() {
  batcher.reset();
  model.reset();
}

namespace {

scheduler::BatchingConfig BatchingFor(const core::ModelConfig& config, size_t default_capacity) {
  scheduler::BatchingConfig b;
  const auto& db = config.dynamic_batching;
  b.enabled = db.enabled;
  b.max_batch_size = config.batch_size_limit();
  b.preferred_batch_sizes = db.preferred_batch_sizes;
  b.max_queue_delay_us = db.max_queue_delay_us;
  b.queue_capacity = db.max_queue_size > 0 ? static_cast<size_t>(db.max_queue_size)
                                           : default_capacity;
  b.default_timeout_us = db.default_timeout_us;
  b.priority_levels = std::max<int64_t>(1, db.priority_levels);
  b.default_priority =
      db.default_priority_level > 0 ? db.default_priority_level : b.priority_levels;
  b.preserve_ordering = db.preserve_ordering;
  return b;
}

}  // namespace

Result<std::unique_ptr<ModelManager>> ModelManager::Create(Options options) {
  if (options.repository == nullptr || options.backends == nullptr) {
    return Status::InvalidArgument("ModelManager needs a repository and a backend registry");
  }
  return std::unique_ptr<ModelManager>(new ModelManager(options));
}

void ModelManager::LoadAll() {
  auto names = options_.repository->ListModels();
  if (!names.ok()) {
    spdlog::error("cannot list the model repository: {}", names.status().message());
    return;
  }
  for (const auto& name : *names) (void)Load(name);
}

Result<std::shared_ptr<const ModelVersion>> ModelManager::LoadVersion(
    const repository::ModelSource& source, int64_t version) {
  const core::ModelConfig& config = source.config;
  backend::Backend* backend = nullptr;
  if (!config.backend.empty()) backend = options_.backends->Find(config.backend);
  if (backend == nullptr && !config.platform.empty()) {
    backend = options_.backends->Find(config.platform);
  }
  if (backend == nullptr && (!config.backend.empty() || !config.platform.empty())) {
    return Status::Unimplemented("model '" + source.name + "': no backend serves platform '" +
                                 config.platform + "' / backend '" + config.backend + "'");
  }
  const std::filesystem::path dir =
      std::filesystem::path(source.directory) / std::to_string(version);
  if (backend == nullptr) {
    for (const auto& b : options_.backends->backends()) {
      std::error_code ec;
      if (std::filesystem::exists(dir / b->default_model_filename(), ec)) backend = b.get();
    }
  }
  if (backend == nullptr) {
    return Status::NotFound("model '" + source.name + "' version " + std::to_string(version) +
                            ": no model file any backend knows in '" + dir.string() + "'");
  }
  const std::string filename = config.default_model_filename.empty()
                                   ? backend->default_model_filename()
                                   : config.default_model_filename;
  std::error_code ec;
  if (!std::filesystem::exists(dir / filename, ec)) {
    return Status::NotFound("model '" + source.name + "' version " + std::to_string(version) +
                            ": '" + (dir / filename).string() + "' does not exist");
  }
  backend::LoadOptions load;
  load.model_path = (dir / filename).string();
  load.config = config;
  if (load.config.instance_count <= 0) load.config.instance_count = options_.default_instance_count;
  load.intra_op_threads = options_.intra_op_threads;
  ASSIGN_OR_RETURN(auto model, backend->Load(load));
  auto mv = std::make_shared<ModelVersion>();
  mv->name = source.name;
  mv->version = version;
  scheduler::DynamicBatcher::Options batcher;
  batcher.model = model.get();
  batcher.model_name = source.name;
  batcher.instance_count = static_cast<int>(model->config().instance_count);
  batcher.batching = BatchingFor(model->config(), options_.default_queue_capacity);
  batcher.autoscale.max_instances = static_cast<int>(model->config().max_instance_count);
  ASSIGN_OR_RETURN(mv->batcher, scheduler::DynamicBatcher::Create(batcher));
  mv->model = std::move(model);
  return std::shared_ptr<const ModelVersion>(std::move(mv));
}

Status ModelManager::Load(const std::string& name) {
  std::lock_guard<std::mutex> lock(load_mu_);
  Entry entry;
  auto source = options_.repository->Read(name);
  if (!source.ok() && source.status().code() == core::StatusCode::kNotFound &&
      table_.load()->count(name) == 0) {
    return source.status();  // nothing to record for a model that never existed
  }
  if (!source.ok()) {
    spdlog::error("model '{}' failed: {}", name, source.status().message());
    entry.statuses.push_back({0, VersionState::kUnavailable, source.status().message()});
    Publish(name, std::move(entry));
    return source.status();
  }
  const auto wanted = repository::SelectVersions(source->config.version_policy, source->versions);
  if (wanted.empty()) {
    Status st = Status::NotFound("model '" + name + "' has no version folder its version policy "
                                 "selects in '" + source->directory + "'");
    spdlog::error("{}", st.message());
    entry.statuses.push_back({0, VersionState::kUnavailable, st.message()});
    Publish(name, std::move(entry));
    return st;
  }
  Status first_error;
  for (int64_t v : wanted) {
    spdlog::info("loading model '{}' version {}", name, v);
    auto loaded = LoadVersion(*source, v);
    if (loaded.ok()) {
      spdlog::info("model '{}' version {} is READY", name, v);
      entry.statuses.push_back({v, VersionState::kReady, ""});
      entry.ready[v] = std::move(loaded).value();
    } else {
      spdlog::error("model '{}' version {} failed to load: {}", name, v,
                    loaded.status().message());
      entry.statuses.push_back({v, VersionState::kUnavailable, loaded.status().message()});
      if (first_error.ok()) first_error = loaded.status();
    }
  }
  Publish(name, std::move(entry));
  return first_error;
}

Status ModelManager::Unload(const std::string& name) {
  std::lock_guard<std::mutex> lock(load_mu_);
  auto current = table_.load();
  auto it = current->find(name);
  if (it == current->end() || it->second.unloaded) {
    return Status::NotFound("model '" + name + "' is not loaded");
  }
  Entry entry;
  entry.unloaded = true;
  for (const auto& st : it->second.statuses) {
    if (st.version > 0) entry.statuses.push_back({st.version, VersionState::kUnavailable, "unloaded"});
  }
  Publish(name, std::move(entry));
  spdlog::info("model '{}' unloaded", name);
  return Status::Ok();
}

void ModelManager::Publish(const std::string& name, Entry entry) {
  auto next = std::make_shared<Table>(*table_.load());
  (*next)[name] = std::move(entry);
  table_.store(std::move(next));
}

Result<std::shared_ptr<const ModelVersion>> ModelManager::Find(const std::string& name,
                                                               int64_t version) const {
  auto table = table_.load();
  auto it = table->find(name);
  if (it == table->end()) return Status::NotFound("unknown model '" + name + "'");
  if (it->second.unloaded) return Status::NotFound("model '" + name + "' is unloaded");
  const Entry& entry = it->second;
  if (version == 0) {
    if (!entry.ready.empty()) return entry.ready.rbegin()->second;
  } else {
    auto v = entry.ready.find(version);
    if (v != entry.ready.end()) return v->second;
  }
  for (const auto& st : entry.statuses) {
    if (version == 0 || st.version == version || st.version == 0) {
      if (!st.reason.empty()) {
        return Status::Unavailable("model '" + name + "'" +
                                   (st.version ? " version " + std::to_string(st.version) : "") +
                                   " is not ready: " + st.reason);
      }
    }
  }
  if (version != 0) {
    return Status::NotFound("model '" + name + "' has no version " + std::to_string(version));
  }
  return Status::Unavailable("model '" + name + "' has no ready version");
}

std::vector<int64_t> ModelManager::ReadyVersions(const std::string& name) const {
  auto table = table_.load();
  std::vector<int64_t> out;
  auto it = table->find(name);
  if (it == table->end()) return out;
  for (const auto& [v, handle] : it->second.ready) out.push_back(v);
  return out;
}

std::vector<ModelStatus> ModelManager::Index() const {
  auto table = table_.load();
  std::vector<ModelStatus> out;
  for (const auto& [name, entry] : *table) out.push_back({name, entry.statuses});
  return out;
}

bool ModelManager::AllReady() const {
  auto table = table_.load();
  for (const auto& [name, entry] : *table) {
    if (entry.unloaded) continue;
    for (const auto& st : entry.statuses) {
      if (st.state != VersionState::kReady) return false;
    }
  }
  return true;
}

}  // namespace slipway::lifecycle
