#include "slipway/lifecycle/model_manager.h"

#include "slipway/core/thread_name.h"
#include "slipway/lifecycle/validation.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <set>

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

Status WarmUp(const ModelVersion& version) {
  const core::ModelConfig& config = version.config();
  if (!config.warmup.enabled || config.warmup.requests <= 0) return Status::Ok();
  const bool batching = config.batch_size_limit() > 0;
  const int64_t rows = std::min<int64_t>(config.warmup.batch_size,
                                         std::max<int64_t>(1, config.batch_size_limit()));
  std::vector<core::Tensor> tensors;
  for (const core::TensorConfig& in : config.inputs) {
    core::Shape shape;
    if (batching) shape.push_back(rows);
    for (int64_t d : in.dims) shape.push_back(d < 0 ? 1 : d);
    ASSIGN_OR_RETURN(int64_t count, core::ElementCount(shape));
    const size_t width = in.type == core::DataType::kBytes ? 4 : core::DataTypeByteSize(in.type);
    tensors.push_back(core::Tensor::Owned(in.name, in.type, shape,
                                          std::string(static_cast<size_t>(count) * width, '\0')));
  }
  std::vector<const core::Tensor*> inputs;
  for (const auto& t : tensors) inputs.push_back(&t);
  std::vector<std::string> outputs;
  for (const auto& o : config.outputs) outputs.push_back(o.name);
  return version.batcher->WarmUp(inputs, outputs, config.warmup.requests);
}

ModelManager::ModelManager(Options options) : options_(std::move(options)) {
  janitor_ = std::thread([this] {
    core::NameThisThread("slipway-janitor");
    JanitorLoop();
  });
}

ModelManager::~ModelManager() {
  {
    std::lock_guard<std::mutex> lock(janitor_mu_);
    stopping_ = true;
  }
  janitor_cv_.notify_all();
  janitor_.join();
}

Result<std::unique_ptr<ModelManager>> ModelManager::Create(Options options) {
  if (options.repository == nullptr || options.backends == nullptr) {
    return Status::InvalidArgument("ModelManager needs a repository and a backend registry");
  }
  return std::unique_ptr<ModelManager>(new ModelManager(std::move(options)));
}

void ModelManager::Emit(const std::string& model, const char* kind, int64_t version,
                        std::string reason) {
  if (options_.on_event) options_.on_event({model, kind, version, std::move(reason)});
}

void ModelManager::LoadAll() {
  options_.repository->RemoveStaleStaging();
  auto names = options_.repository->ListModels();
  if (!names.ok()) {
    spdlog::error("cannot list the model repository: {}", names.status().message());
    return;
  }
  for (const auto& name : *names) (void)Load(name);
}

void ModelManager::Poll() {
  auto names = options_.repository->ListModels();
  if (!names.ok()) {
    spdlog::error("cannot list the model repository: {}", names.status().message());
    return;
  }
  const std::set<std::string> on_disk(names->begin(), names->end());
  std::lock_guard<std::mutex> lock(load_mu_);
  for (const auto& name : on_disk) (void)LoadLocked(name, {});
  auto table = table_.Load();
  for (const auto& [name, entry] : *table) {
    if (!entry.unloaded && on_disk.count(name) == 0) {
      spdlog::info("model '{}' is gone from the repository; unloading it", name);
      (void)UnloadLocked(name);
    }
  }
}

Result<std::shared_ptr<const ModelVersion>> ModelManager::LoadVersion(
    const repository::ModelSource& source, int64_t version) {
  return LoadVersionFrom(source, version,
                         (std::filesystem::path(source.directory) / std::to_string(version)).string());
}

Result<std::shared_ptr<const ModelVersion>> ModelManager::LoadVersionFrom(
    const repository::ModelSource& source, int64_t version, const std::string& directory) {
  const auto started = std::chrono::steady_clock::now();
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
  const std::filesystem::path dir(directory);
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
  if (filename.find('/') != std::string::npos || filename == "." || filename == "..") {
    return Status::InvalidArgument("model '" + source.name + "': default_model_filename '" +
                                   filename + "' must name a file inside the version's folder");
  }
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
  if (auto st = WarmUp(*mv); !st.ok()) {
    return Status::Unavailable("model '" + source.name + "' version " + std::to_string(version) +
                               " failed its warm-up: " + st.message());
  }
  if (!mv->config().validation.file.empty()) {
    RETURN_IF_ERROR(Validate(source, *mv));
  }
  mv->load_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return std::shared_ptr<const ModelVersion>(std::move(mv));
}

Status ModelManager::Validate(const repository::ModelSource& source, const ModelVersion& version) {
  const core::ModelConfig& config = version.config();
  const auto path = std::filesystem::path(source.directory) / config.validation.file;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::NotFound("model '" + source.name + "': cannot read the validation set '" +
                            path.string() + "'");
  }
  std::ostringstream text;
  text << in.rdbuf();
  ASSIGN_OR_RETURN(auto rows, ParseValidationSet(text.str(), config));
  // The reference is the version serving now: the router's choice, else the highest ready.
  std::shared_ptr<const ModelVersion> reference;
  int64_t wanted = options_.reference_version ? options_.reference_version(source.name) : 0;
  auto table = table_.Load();
  auto it = table->find(source.name);
  if (it != table->end() && !it->second.unloaded) {
    for (const auto& [v, loaded] : it->second.ready) {
      if (v == version.version) continue;
      if (wanted == 0 || v == wanted) reference = loaded.handle;
    }
  }
  auto report = ValidateVersion(*version.model, reference ? reference->model.get() : nullptr, rows);
  if (!report.ok()) {
    return Status::FailedPrecondition("model '" + source.name + "' version " +
                                      std::to_string(version.version) + ": " +
                                      report.status().message());
  }
  spdlog::info("model '{}' version {} passed validation: {}{}", source.name, version.version,
               report->Summary(),
               reference ? " against version " + std::to_string(reference->version) : "");
  return Status::Ok();
}

Status ModelManager::Load(const std::string& name, const LoadOptions& options) {
  std::lock_guard<std::mutex> lock(load_mu_);
  return LoadLocked(name, options);
}

Status ModelManager::LoadLocked(const std::string& name, const LoadOptions& options) {
  std::shared_ptr<const Table> before = table_.Load();
  const auto found = before->find(name);
  const Entry* current = found == before->end() ? nullptr : &found->second;
  const std::string override_text =
      options.config_override.value_or(current ? current->config_override : "");
  auto source = options_.repository->Read(name, override_text);
  if (!source.ok() && source.status().code() == core::StatusCode::kNotFound &&
      current == nullptr) {
    return source.status();  // nothing to record for a model that never existed
  }
  const bool was_serving = current != nullptr && !current->unloaded && !current->ready.empty();
  auto fail_model = [&](const Status& st) {
    spdlog::error("model '{}' failed: {}", name, st.message());
    Emit(name, "load_failed", 0, st.message());
    if (was_serving) return st;  // the versions already serving keep serving
    Update(name, [&](Entry& e) {
      e.unloaded = false;
      e.statuses = {{0, VersionState::kUnavailable, st.message()}};
    });
    return st;
  };
  if (!source.ok()) return fail_model(source.status());
  std::vector<int64_t> wanted =
      repository::SelectVersions(source->config.version_policy, source->versions);
  if (options_.pinned_versions) {
    for (int64_t v : options_.pinned_versions(name)) {
      if (std::binary_search(source->versions.begin(), source->versions.end(), v) &&
          std::find(wanted.begin(), wanted.end(), v) == wanted.end()) {
        wanted.push_back(v);
      }
    }
    std::sort(wanted.begin(), wanted.end());
  }
  if (wanted.empty()) {
    return fail_model(Status::NotFound("model '" + name + "' has no version folder its version "
                                       "policy selects in '" + source->directory + "'"));
  }
  // Publish LOADING for the versions about to load, beside those that keep serving.
  std::map<int64_t, std::string> fingerprints;
  std::vector<int64_t> to_load;
  for (int64_t v : wanted) {
    fingerprints[v] = source->config_text + "|" + repository::VersionFingerprint(*source, v);
    const bool unchanged = current != nullptr && !current->unloaded &&
                           current->ready.count(v) != 0 &&
                           current->ready.at(v).fingerprint == fingerprints[v];
    if (!unchanged) to_load.push_back(v);
  }
  if (!to_load.empty()) {
    Update(name, [&](Entry& e) {
      e.unloaded = false;
      std::vector<VersionStatus> statuses;
      for (const auto& [v, loaded] : e.ready) statuses.push_back({v, VersionState::kReady, ""});
      for (int64_t v : to_load) {
        if (e.ready.count(v) == 0) statuses.push_back({v, VersionState::kLoading, ""});
      }
      std::sort(statuses.begin(), statuses.end(),
                [](const auto& a, const auto& b) { return a.version < b.version; });
      e.statuses = std::move(statuses);
    });
  }
  std::map<int64_t, Loaded> fresh;
  std::map<int64_t, std::string> failures;
  Status first_error;
  for (int64_t v : to_load) {
    spdlog::info("loading model '{}' version {}", name, v);
    auto pre = preloaded_.find({name, v});
    Result<std::shared_ptr<const ModelVersion>> loaded =
        pre != preloaded_.end() ? Result<std::shared_ptr<const ModelVersion>>(pre->second)
                                : LoadVersion(*source, v);
    if (pre != preloaded_.end()) preloaded_.erase(pre);
    if (loaded.ok()) {
      spdlog::info("model '{}' version {} is READY", name, v);
      fresh[v] = {std::move(loaded).value(), fingerprints[v]};
    } else {
      spdlog::error("model '{}' version {} failed to load: {}", name, v,
                    loaded.status().message());
      failures[v] = loaded.status().message();
      Emit(name, "load_failed", v, loaded.status().message());
      if (first_error.ok()) first_error = loaded.status();
    }
  }
  std::vector<int64_t> retired;
  Update(name, [&](Entry& e) {
    e.unloaded = false;
    e.config_override = override_text;
    std::map<int64_t, Loaded> next;
    for (int64_t v : wanted) {
      if (fresh.count(v)) {
        next[v] = fresh[v];
      } else if (e.ready.count(v) && failures.count(v) == 0) {
        next[v] = e.ready[v];
      }
    }
    const auto now = std::chrono::steady_clock::now();
    for (auto& [v, loaded] : e.ready) {
      const bool replaced = next.count(v) != 0 && next[v].handle != loaded.handle;
      const bool unwanted = next.count(v) == 0;
      // A failed wanted version keeps every serving version; a failed reload keeps the old one.
      if (unwanted && (!failures.empty() || failures.count(v))) {
        next[v] = loaded;
        continue;
      }
      if (replaced || unwanted) {
        if (unwanted) {
          e.retiring[v] = loaded.handle;
          retired.push_back(v);
        } else {
          e.draining.push_back(loaded.handle);
        }
        e.retire_at = now + options_.retire_grace;
      }
    }
    e.ready = std::move(next);
    e.statuses.clear();
    for (const auto& [v, loaded] : e.ready) {
      e.statuses.push_back({v, VersionState::kReady, ""});
      e.retiring.erase(v);
    }
    for (const auto& [v, reason] : failures) {
      if (e.ready.count(v) == 0) e.statuses.push_back({v, VersionState::kUnavailable, reason});
    }
    std::sort(e.statuses.begin(), e.statuses.end(),
              [](const auto& a, const auto& b) { return a.version < b.version; });
  });
  for (const auto& [v, loaded] : fresh) {
    Emit(name, "load", v, current && current->ready.count(v) ? "files or config changed" : "");
  }
  for (int64_t v : retired) {
    spdlog::info("model '{}' version {} retired (no longer wanted)", name, v);
    Emit(name, "unload", v, "no longer wanted by the version policy, labels or traffic");
  }
  if (!retired.empty()) janitor_cv_.notify_all();
  return first_error;
}

Result<UploadResult> ModelManager::UploadVersion(const std::string& name, int64_t version,
                                                std::string_view bytes) {
  std::lock_guard<std::mutex> lock(load_mu_);
  if (!repository::IsValidModelName(name)) {
    return Status::InvalidArgument("invalid model name '" + name +
                                   "' (letters, digits, '_', '-', '.'; not starting with '.')");
  }
  if (bytes.empty()) return Status::InvalidArgument("the upload is empty");
  repository::ModelSource source;
  auto existing = options_.repository->Read(name);
  if (existing.ok()) {
    source = std::move(existing).value();
  } else if (existing.status().code() == core::StatusCode::kNotFound) {
    source.name = name;
    source.config.name = name;
    source.directory =
        (std::filesystem::path(options_.repository->root()) / name).string();
  } else {
    return existing.status();
  }
  if (version == 0) version = source.versions.empty() ? 1 : source.versions.back() + 1;
  if (std::binary_search(source.versions.begin(), source.versions.end(), version)) {
    return Status::AlreadyExists("model '" + name + "' already has a version " +
                                 std::to_string(version) + "; versions are never overwritten");
  }
  std::string staged;
  std::string what;
  repository::StagedUpload archive;
  const bool is_archive = repository::LooksLikeArchive(bytes);
  if (is_archive) {
    ASSIGN_OR_RETURN(archive, options_.repository->StageArchive(name, bytes));
    staged = archive.directory;
    what = std::to_string(archive.files.size()) + " files unpacked from a " +
           std::to_string(bytes.size()) + "-byte archive";
    if (!archive.config_name.empty()) {
      const bool new_model = source.versions.empty() && source.config_text.empty();
      if (!new_model && archive.config_text != source.config_text) {
        options_.repository->DiscardStaged(staged);
        return Status::FailedPrecondition(
            "the archive's " + archive.config_name + " differs from model '" + name +
            "''s config; a config change applies to every version, so make it in the repository "
            "(or load with a config override) rather than with one version");
      }
      auto parsed = archive.config_name == "config.yaml"
                        ? repository::ParseConfigYaml(archive.config_text, name)
                        : repository::ParseConfigPbtxt(archive.config_text, name);
      if (!parsed.ok()) {
        options_.repository->DiscardStaged(staged);
        return Status::InvalidArgument("upload refused: " + parsed.status().message());
      }
      source.config = std::move(parsed).value();
      source.config_text = archive.config_text;
    }
  } else {
    std::string filename = source.config.default_model_filename;
    if (filename.empty()) {
      backend::Backend* backend = nullptr;
      if (!source.config.backend.empty()) backend = options_.backends->Find(source.config.backend);
      if (backend == nullptr && !source.config.platform.empty()) {
        backend = options_.backends->Find(source.config.platform);
      }
      if (backend == nullptr && !options_.backends->backends().empty()) {
        backend = options_.backends->backends().front().get();
      }
      if (backend == nullptr) return Status::Internal("no backend is registered");
      filename = backend->default_model_filename();
    }
    ASSIGN_OR_RETURN(staged, options_.repository->StageVersion(name, filename, bytes));
    what = std::to_string(bytes.size()) + " bytes written as " + filename;
  }
  // Validate before the version exists: it must load and warm up.
  auto trial = LoadVersionFrom(source, version, staged);
  if (!trial.ok()) {
    options_.repository->DiscardStaged(staged);
    Emit(name, "upload_refused", version, trial.status().message());
    return Status::InvalidArgument("upload of model '" + name + "' version " +
                                   std::to_string(version) +
                                   " refused: " + trial.status().message());
  }
  if (is_archive && !archive.config_name.empty() && source.versions.empty()) {
    // A new model's config lands before its first version, so nothing loads it half-made.
    if (auto st = options_.repository->WriteConfig(name, archive.config_name, archive.config_text);
        !st.ok()) {
      options_.repository->DiscardStaged(staged);
      return st;
    }
  }
  if (auto st = options_.repository->CommitVersion(name, staged, version); !st.ok()) {
    options_.repository->DiscardStaged(staged);
    return st;
  }
  Emit(name, "upload", version, what);
  preloaded_[{name, version}] = std::move(trial).value();
  Status st = LoadLocked(name, {});
  preloaded_.erase({name, version});
  UploadResult result{name, version, "UNAVAILABLE"};
  for (const auto& model : Index()) {
    if (model.name != name) continue;
    for (const auto& v : model.versions) {
      if (v.version == version) result.state = VersionStateName(v.state);
    }
  }
  if (!st.ok() && result.state != "READY") return st;
  return result;
}

Status ModelManager::Unload(const std::string& name) {
  std::lock_guard<std::mutex> lock(load_mu_);
  return UnloadLocked(name);
}

Status ModelManager::UnloadLocked(const std::string& name) {
  auto current = table_.Load();
  auto it = current->find(name);
  if (it == current->end() || it->second.unloaded) {
    return Status::NotFound("model '" + name + "' is not loaded");
  }
  std::vector<int64_t> versions;
  Update(name, [&](Entry& e) {
    e.unloaded = true;
    e.config_override.clear();
    std::vector<VersionStatus> statuses;
    for (const auto& st : e.statuses) {
      if (st.version > 0) statuses.push_back({st.version, VersionState::kUnavailable, "unloaded"});
    }
    for (auto& [v, loaded] : e.ready) {
      e.draining.push_back(loaded.handle);
      versions.push_back(v);
    }
    e.ready.clear();
    e.statuses = std::move(statuses);
  });
  for (int64_t v : versions) Emit(name, "unload", v, "model unloaded");
  spdlog::info("model '{}' unloaded", name);
  return Status::Ok();
}

void ModelManager::Update(const std::string& name, const std::function<void(Entry&)>& change) {
  std::lock_guard<std::mutex> lock(table_mu_);
  auto next = std::make_shared<Table>(*table_.Load());
  change((*next)[name]);
  table_.Store(std::move(next));
}

void ModelManager::JanitorLoop() {
  std::unique_lock<std::mutex> lock(janitor_mu_);
  while (!stopping_) {
    janitor_cv_.wait_for(lock, std::chrono::milliseconds(100));
    if (stopping_) break;
    const auto now = std::chrono::steady_clock::now();
    auto table = table_.Load();
    for (const auto& [name, entry] : *table) {
      const bool expire = !entry.retiring.empty() && entry.retire_at <= now;
      bool released = false;
      for (const auto& weak : entry.draining) released = released || weak.expired();
      if (!expire && !released) continue;
      Update(name, [&](Entry& e) {
        if (!e.retiring.empty() && e.retire_at <= now) {
          for (auto& [v, handle] : e.retiring) e.draining.push_back(handle);
          e.retiring.clear();
        }
        std::erase_if(e.draining, [](const auto& weak) { return weak.expired(); });
      });
    }
  }
}

Result<std::shared_ptr<const ModelVersion>> ModelManager::Find(const std::string& name,
                                                               int64_t version) const {
  auto table = table_.Load();
  auto it = table->find(name);
  if (it == table->end()) return Status::NotFound("unknown model '" + name + "'");
  if (it->second.unloaded) return Status::NotFound("model '" + name + "' is unloaded");
  const Entry& entry = it->second;
  if (version == 0) {
    if (!entry.ready.empty()) return entry.ready.rbegin()->second.handle;
  } else {
    auto v = entry.ready.find(version);
    if (v != entry.ready.end()) return v->second.handle;
    auto r = entry.retiring.find(version);
    if (r != entry.retiring.end()) return r->second;
  }
  for (const auto& st : entry.statuses) {
    if (version == 0 || st.version == version || st.version == 0) {
      if (st.state == VersionState::kLoading) {
        return Status::Unavailable("model '" + name + "'" +
                                   (st.version ? " version " + std::to_string(st.version) : "") +
                                   " is still loading");
      }
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
  auto table = table_.Load();
  std::vector<int64_t> out;
  auto it = table->find(name);
  if (it == table->end() || it->second.unloaded) return out;
  for (const auto& [v, loaded] : it->second.ready) out.push_back(v);
  return out;
}

std::vector<ModelStatus> ModelManager::Index() const {
  auto table = table_.Load();
  std::vector<ModelStatus> out;
  for (const auto& [name, entry] : *table) {
    ModelStatus status{name, entry.statuses};
    auto add_unloading = [&](int64_t v) {
      if (entry.ready.count(v) != 0) return;
      std::erase_if(status.versions, [v](const auto& s) { return s.version == v; });
      status.versions.push_back({v, VersionState::kUnloading, "draining in-flight requests"});
    };
    for (const auto& [v, handle] : entry.retiring) add_unloading(v);
    for (const auto& weak : entry.draining) {
      if (auto h = weak.lock(); h && entry.ready.count(h->version) == 0) add_unloading(h->version);
    }
    std::sort(status.versions.begin(), status.versions.end(),
              [](const auto& a, const auto& b) { return a.version < b.version; });
    out.push_back(std::move(status));
  }
  return out;
}

std::vector<std::string> ModelManager::ModelsOnDisk() const {
  auto names = options_.repository->ListModels();
  return names.ok() ? *names : std::vector<std::string>{};
}

bool ModelManager::AllReady() const {
  auto table = table_.Load();
  for (const auto& [name, entry] : *table) {
    if (entry.unloaded) continue;
    // A reload in progress (new versions LOADING beside READY ones) keeps the server ready.
    if (entry.ready.empty()) return false;
    for (const auto& st : entry.statuses) {
      if (st.state == VersionState::kUnavailable) return false;
    }
  }
  return true;
}

}  // namespace slipway::lifecycle
