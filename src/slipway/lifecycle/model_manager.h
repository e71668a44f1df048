// ModelManager: loads model versions from the repository and hands out ref-counted handles.
//
// Each version moves through LOADING -> READY (after its warm-up) -> UNLOADING (retired, draining
// in-flight requests) -> released, or LOADING -> UNAVAILABLE with a reason when it fails; a
// failure never affects other models or the versions already serving. Reloading a model loads the
// wanted versions first and only then retires the ones no longer wanted ("load new, then retire
// old"); a retired version stays alive until the last in-flight request holding its handle
// finishes. A janitor thread ends retirement grace periods.
// The table requests read is swapped whole behind an atomic pointer, so Find() takes no lock.
// Thread safety: all methods are safe from any thread. Load/Unload block while loading; Find and
// Index do not block on loads.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "slipway/backend/backend.h"
#include "slipway/core/snapshot.h"
#include "slipway/backend/backend_registry.h"
#include "slipway/repository/model_repository.h"
#include "slipway/scheduler/dynamic_batcher.h"

namespace slipway::lifecycle {

enum class VersionState { kLoading, kReady, kUnloading, kUnavailable };
const char* VersionStateName(VersionState state);  // "LOADING", "READY", ...

// A loaded, servable version. Shared by the manager and in-flight requests.
struct ModelVersion {
  std::string name;
  int64_t version = 0;
  std::unique_ptr<backend::Model> model;
  std::unique_ptr<scheduler::DynamicBatcher> batcher;
  double load_seconds = 0;  // load, warm-up and validation
  const core::ModelConfig& config() const { return model->config(); }
  ~ModelVersion();  // declared so the batcher (and its instances) go before the model
};

struct VersionStatus {
  int64_t version = 0;  // 0 when the model failed before any version was known
  VersionState state = VersionState::kUnavailable;
  std::string reason;
};

struct ModelStatus {
  std::string name;
  std::vector<VersionStatus> versions;
};

// What happened to a version, published to whoever records deployments.
struct ModelEvent {
  std::string model;
  std::string kind;  // "load", "load_failed", "unload"
  int64_t version = 0;
  std::string reason;
};

struct UploadResult {
  std::string model;
  int64_t version = 0;
  std::string state;  // the version's state once the model was reloaded
};

class ModelManager {
 public:
  struct Options {
    repository::ModelRepository* repository = nullptr;  // not owned
    backend::BackendRegistry* backends = nullptr;       // not owned
    int default_instance_count = 1;
    int intra_op_threads = 1;
    size_t default_queue_capacity = 1024;
    // Versions to keep loaded besides those the version policy selects (labels, traffic, a
    // rollout). Called during loads; must not call back into the manager.
    std::function<std::vector<int64_t>(const std::string& model)> pinned_versions;
    // Told about every load, failure and retirement; called on the loading thread.
    std::function<void(const ModelEvent&)> on_event;
    // How long a version that left the wanted set stays findable by number, so that a request
    // routed to it a moment before still finds it; then it drains and is released.
    std::chrono::milliseconds retire_grace{1000};
    // The version a validation set compares a new version with (0: the highest ready one).
    std::function<int64_t(const std::string& model)> reference_version;
  };
  static core::Result<std::unique_ptr<ModelManager>> Create(Options options);
  ~ModelManager();

  struct LoadOptions {
    // Triton's protobuf-JSON config replacing the config file: a value sets (or, when empty,
    // clears) it; no value keeps what the previous load used.
    std::optional<std::string> config_override;
  };

  // Loads every model in the repository; failures are recorded per model, never returned.
  void LoadAll();
  // Brings one model in line with the repository: loads wanted versions that are new or whose
  // files or config changed (warming each up before it takes traffic), keeps unchanged ones, and
  // only then retires versions no longer wanted. When a wanted version fails, nothing that was
  // serving is retired. Returns the first failure after recording it.
  core::Status Load(const std::string& name, const LoadOptions& options = {});
  // Writes `bytes` as a new version (0: one past the highest on disk) after checking that it loads
  // and warms up; a refused upload leaves the repository unchanged. Then reloads the model, so
  // the version serves if the version policy (or a pin) wants it.
  core::Result<UploadResult> UploadVersion(const std::string& name, int64_t version,
                                           std::string_view bytes);
  // Retires every version of a model.
  core::Status Unload(const std::string& name);
  // Poll mode: loads new models, reloads changed ones and unloads models gone from disk.
  void Poll();

  // A ready version: `version` 0 means the highest ready version.
  core::Result<std::shared_ptr<const ModelVersion>> Find(const std::string& name,
                                                         int64_t version) const;
  // Ready version numbers of a model, ascending; empty if none or unknown.
  std::vector<int64_t> ReadyVersions(const std::string& name) const;
  // The state of every model the manager knows, sorted by name.
  std::vector<ModelStatus> Index() const;
  // Names of the model folders in the repository (empty when it cannot be listed).
  std::vector<std::string> ModelsOnDisk() const;
  // True when every known model has all its wanted versions ready.
  bool AllReady() const;

 private:
  struct Loaded {
    std::shared_ptr<const ModelVersion> handle;
    std::string fingerprint;
  };
  struct Entry {
    bool unloaded = false;  // kept so the index can say so; Find treats it as unknown
    std::string config_override;
    std::vector<VersionStatus> statuses;
    std::map<int64_t, Loaded> ready;
    // Left the wanted set; still findable by number until `retire_at`.
    std::map<int64_t, std::shared_ptr<const ModelVersion>> retiring;
    std::chrono::steady_clock::time_point retire_at;
    // Released by the manager; alive while in-flight requests hold them (shown UNLOADING).
    std::vector<std::weak_ptr<const ModelVersion>> draining;
  };
  using Table = std::map<std::string, Entry>;

  explicit ModelManager(Options options);
  core::Result<std::shared_ptr<const ModelVersion>> LoadVersion(
      const repository::ModelSource& source, int64_t version);
  core::Result<std::shared_ptr<const ModelVersion>> LoadVersionFrom(
      const repository::ModelSource& source, int64_t version, const std::string& directory);
  core::Status Validate(const repository::ModelSource& source, const ModelVersion& version);
  core::Status LoadLocked(const std::string& name, const LoadOptions& options);
  core::Status UnloadLocked(const std::string& name);
  // Read-modify-write of one entry under table_mu_, published whole.
  void Update(const std::string& name, const std::function<void(Entry&)>& change);
  void Emit(const std::string& model, const char* kind, int64_t version, std::string reason);
  void JanitorLoop();

  Options options_;
  std::mutex load_mu_;   // serialises loads and unloads
  // Versions an upload loaded for validation, handed to the next load; guarded by load_mu_.
  std::map<std::pair<std::string, int64_t>, std::shared_ptr<const ModelVersion>> preloaded_;
  std::mutex table_mu_;  // serialises writers of table_
  core::Snapshot<Table> table_;
  std::mutex janitor_mu_;
  std::condition_variable janitor_cv_;
  bool stopping_ = false;
  std::thread janitor_;
};

// Runs `config.warmup` on a freshly loaded version: generated inputs (zeros, variable dims 1).
core::Status WarmUp(const ModelVersion& version);

}  // namespace slipway::lifecycle
