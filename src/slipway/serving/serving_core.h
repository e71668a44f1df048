// ServingCore: the innermost InferenceService. Looks up the version handle, checks the request
// against the model's config (names, datatypes, shapes, batch size, byte sizes) and runs it on the
// version's instances. Also answers metadata, readiness and repository calls.
// Thread safety: safe from any thread. Infer checks the request on the calling thread and queues
// it on the version's DynamicBatcher; `done` runs on a batcher worker thread (or on the caller's
// thread when the request is refused).
#pragma once

#include <atomic>
#include <memory>

#include "slipway/lifecycle/model_manager.h"
#include "slipway/serving/inference_service.h"

namespace slipway::serving {

// Who decides what is loaded: the startup scan only (kNone), a periodic rescan (kPoll) or the
// repository API (kExplicit).
enum class ModelControl { kNone, kPoll, kExplicit };

// Server-wide request limits beyond what the model's config allows; 0 means no limit.
struct RequestLimits {
  int64_t max_tensor_elements = 0;  // elements in any one input
  size_t max_string_bytes = 0;      // bytes in any one BYTES element
};

class ServingCore : public InferenceService, public AdminService {
 public:
  struct Options {
    ModelControl control = ModelControl::kExplicit;
    lifecycle::ModelManager* models = nullptr;  // not owned
    // Ready only while every model is ready (Triton's default); otherwise ready once started.
    bool strict_readiness = true;
    std::string server_version = "0.1.0";
    RequestLimits limits;
  };
  static core::Result<std::unique_ptr<ServingCore>> Create(Options options);

  void Infer(core::InferRequest request, core::InferCallback done) override;
  bool ServerLive() const override { return true; }
  bool ServerReady() const override;
  ServerMetadata GetServerMetadata() const override;
  core::Result<bool> ModelReady(const std::string& name, int64_t version) const override;
  core::Result<ModelMetadata> GetModelMetadata(const std::string& name,
                                               int64_t version) const override;
  core::Result<core::ModelConfig> GetModelConfig(const std::string& name,
                                                 int64_t version) const override;
  core::Result<std::vector<ModelStatistics>> GetModelStatistics(const std::string& name,
                                                                int64_t version) const override;

  std::vector<RepositoryIndexEntry> RepositoryIndex(bool ready_only) const override;
  core::Status LoadModel(const std::string& name, const LoadModelOptions& options) override;
  core::Status UnloadModel(const std::string& name) override;
  core::Status RefreshModel(const std::string& name) override;
  core::Result<std::pair<int64_t, std::string>> UploadVersion(const std::string& name,
                                                              int64_t version,
                                                              std::string_view bytes) override;

  // After this, the server reports not ready. Requests keep being served: the frontends stop
  // admitting new ones, and those already admitted must finish.
  void StartDraining() { draining_ = true; }

 private:
  explicit ServingCore(Options options) : options_(std::move(options)) {}

  Options options_;
  std::atomic<bool> draining_{false};
};

// Checks `request` against `config`; on success fills `ordered` with the inputs in the config's
// order and `output_names` with the outputs to compute. Exposed for unit tests and fuzzing.
core::Status ValidateInferRequest(const core::ModelConfig& config,
                                  const core::InferRequest& request,
                                  std::vector<const core::Tensor*>* ordered,
                                  std::vector<std::string>* output_names,
                                  const RequestLimits& limits = {});

}  // namespace slipway::serving
