// ForwardingService: an InferenceService link that passes every call on to the next one, so a
// link (router, monitors, loggers) overrides only what it changes, usually Infer.
// Thread safety: as the next service's; the link adds no state of its own.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "slipway/serving/inference_service.h"

namespace slipway::serving {

class ForwardingService : public InferenceService {
 public:
  explicit ForwardingService(InferenceService* inner) : inner_(inner) {}  // not owned

  void Infer(core::InferRequest request, core::InferCallback done) override {
    inner_->Infer(std::move(request), std::move(done));
  }
  bool ServerLive() const override { return inner_->ServerLive(); }
  bool ServerReady() const override { return inner_->ServerReady(); }
  ServerMetadata GetServerMetadata() const override { return inner_->GetServerMetadata(); }
  core::Result<bool> ModelReady(const std::string& name, int64_t version) const override {
    return inner_->ModelReady(name, version);
  }
  core::Result<ModelMetadata> GetModelMetadata(const std::string& name,
                                               int64_t version) const override {
    return inner_->GetModelMetadata(name, version);
  }
  core::Result<core::ModelConfig> GetModelConfig(const std::string& name,
                                                 int64_t version) const override {
    return inner_->GetModelConfig(name, version);
  }
  core::Result<std::vector<ModelStatistics>> GetModelStatistics(const std::string& name,
                                                                int64_t version) const override {
    return inner_->GetModelStatistics(name, version);
  }

 protected:
  InferenceService* inner_;
};

}  // namespace slipway::serving
