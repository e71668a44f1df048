// InferenceService: the one facade every frontend calls; AdminService: repository control.
//
// Frontends only translate between their protocol and these calls, so REST and gRPC behave the
// same by construction. Services are built as a chain (routing, cache, core), each wrapping the next.
// Thread safety: implementations are safe to call from any thread. Infer may call `done` on the
// caller's thread or another one, exactly once. Other calls block briefly.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "slipway/core/infer_request.h"
#include "slipway/core/model_config.h"
#include "slipway/core/status.h"
#include "slipway/scheduler/model_stats.h"

namespace slipway::serving {

struct TensorMetadata {
  std::string name;
  core::DataType type = core::DataType::kInvalid;
  core::Shape shape;  // as clients see it: -1 for variable dims, a leading -1 for the batch
};

struct ModelMetadata {
  std::string name;
  std::vector<std::string> versions;  // ready versions
  std::string platform;
  std::vector<TensorMetadata> inputs;
  std::vector<TensorMetadata> outputs;
};

struct ServerMetadata {
  std::string name;
  std::string version;
  std::vector<std::string> extensions;
};

struct ModelStatistics {
  std::string name;
  std::string version;
  scheduler::StatsSnapshot stats;
  int64_t instance_count = 0;  // instances running now
  double load_seconds = 0;     // how long the version took to load and warm up
};

struct RepositoryIndexEntry {
  std::string name;
  std::string version;  // empty when unknown
  std::string state;    // READY, UNAVAILABLE, LOADING, UNLOADING
  std::string reason;
};

class InferenceService {
 public:
  virtual ~InferenceService() = default;
  virtual void Infer(core::InferRequest request, core::InferCallback done) = 0;

  virtual bool ServerLive() const = 0;
  virtual bool ServerReady() const = 0;
  virtual ServerMetadata GetServerMetadata() const = 0;
  // `version` 0: the highest ready version. NotFound for an unknown model or version,
  // Unavailable (with the reason) for one that failed to load.
  virtual core::Result<bool> ModelReady(const std::string& name, int64_t version) const = 0;
  virtual core::Result<ModelMetadata> GetModelMetadata(const std::string& name,
                                                       int64_t version) const = 0;
  virtual core::Result<core::ModelConfig> GetModelConfig(const std::string& name,
                                                         int64_t version) const = 0;
  // Statistics of ready versions: every model when `name` is empty, every ready version of a
  // model when `version` is 0. NotFound for an unknown model or version.
  virtual core::Result<std::vector<ModelStatistics>> GetModelStatistics(const std::string& name,
                                                                        int64_t version) const = 0;
};

struct LoadModelOptions {
  // Triton's protobuf-JSON ModelConfig replacing the config file ("" clears an earlier one).
  std::string config_override;
};

class AdminService {
 public:
  virtual ~AdminService() = default;
  // Loaded models with their versions' states, then models on disk never loaded (name only).
  virtual std::vector<RepositoryIndexEntry> RepositoryIndex(bool ready_only) const = 0;
  // The repository extension's load/unload; refused unless model control is explicit.
  virtual core::Status LoadModel(const std::string& name, const LoadModelOptions& options) = 0;
  virtual core::Status UnloadModel(const std::string& name) = 0;
  // Brings a loaded model in line with the repository and the pinned versions (labels, traffic)
  // in any control mode; a no-op for versions that did not change. Blocks while loading.
  virtual core::Status RefreshModel(const std::string& name) = 0;
  // Adds a model file as a new version (0: the next number), validated before it is written into
  // the repository; refused when model control is none. Returns the version's state.
  virtual core::Result<std::pair<int64_t, std::string>> UploadVersion(const std::string& name,
                                                                      int64_t version,
                                                                      std::string_view bytes) = 0;
};

// Runs Infer and waits for its answer.
core::Result<core::InferResponse> InferAndWait(InferenceService& service,
                                               core::InferRequest request);

}  // namespace slipway::serving
