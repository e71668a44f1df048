// ModelManager: loads model versions from the repository and hands out ref-counted handles.
//
// Each version moves through LOADING -> READY, or LOADING -> UNAVAILABLE with a reason when it
// fails; a failure never affects other models. Reloading a model loads the wanted versions first
// and only then retires the ones no longer wanted ("load new, then retire old"); a retired version
// stays alive until the last in-flight request holding its handle finishes.
// The table requests read is swapped whole behind an atomic pointer, so Find() takes no lock.
// Thread safety: all methods are safe from any thread. Load/Unload block while loading; Find and
// Index do not block on loads.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "slipway/backend/backend.h"
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

class ModelManager {
 public:
  struct Options {
    repository::ModelRepository* repository = nullptr;  // not owned
    backend::BackendRegistry* backends = nullptr;       // not owned
    int default_instance_count = 1;
    int intra_op_threads = 1;
    size_t default_queue_capacity = 1024;
  };
  static core::Result<std::unique_ptr<ModelManager>> Create(Options options);

  // Loads every model in the repository; failures are recorded per model, never returned.
  void LoadAll();
  // (Re)loads one model from the repository. Returns the first failure, if any, after recording it.
  core::Status Load(const std::string& name);
  // Retires every version of a model.
  core::Status Unload(const std::string& name);

  // A ready version: `version` 0 means the highest ready version.
  core::Result<std::shared_ptr<const ModelVersion>> Find(const std::string& name,
                                                         int64_t version) const;
  // Ready version numbers of a model, ascending; empty if none or unknown.
  std::vector<int64_t> ReadyVersions(const std::string& name) const;
  // The state of every model the manager knows, sorted by name.
  std::vector<ModelStatus> Index() const;
  // True when every known model has all its wanted versions ready.
  bool AllReady() const;

 private:
  struct Entry {
    bool unloaded = false;  // kept so the index can say so; Find treats it as unknown
    std::vector<VersionStatus> statuses;
    std::map<int64_t, std::shared_ptr<const ModelVersion>> ready;
  };
  using Table = std::map<std::string, Entry>;

  explicit ModelManager(Options options) : options_(options) {}
  core::Result<std::shared_ptr<const ModelVersion>> LoadVersion(
      const repository::ModelSource& source, int64_t version);
  void Publish(const std::string& name, Entry entry);

  Options options_;
  std::mutex load_mu_;  // serialises loads and unloads
  std::atomic<std::shared_ptr<const Table>> table_{std::make_shared<const Table>()};
};

}  // namespace slipway::lifecycle
