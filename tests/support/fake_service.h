// FakeService: an InferenceService for unit tests and in-process benchmarks. Health, metadata
// and statistics answer trivially; GetModelConfig answers from `configs` (NotFound for other
// names). Subclasses say how Infer answers, and override the rest where a test needs more.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "slipway/serving/inference_service.h"

namespace slipway::testing_support {

class FakeService : public serving::InferenceService {
 public:
  std::map<std::string, core::ModelConfig> configs;

  bool ServerLive() const override { return true; }
  bool ServerReady() const override { return true; }
  serving::ServerMetadata GetServerMetadata() const override { return {}; }
  core::Result<bool> ModelReady(const std::string&, int64_t) const override { return true; }
  core::Result<serving::ModelMetadata> GetModelMetadata(const std::string&, int64_t) const override {
    return serving::ModelMetadata{};
  }
  core::Result<core::ModelConfig> GetModelConfig(const std::string& name, int64_t) const override {
    auto it = configs.find(name);
    if (it == configs.end()) return core::Status::NotFound("unknown model '" + name + "'");
    return it->second;
  }
  core::Result<std::vector<serving::ModelStatistics>> GetModelStatistics(const std::string&,
                                                                        int64_t) const override {
    return std::vector<serving::ModelStatistics>{};
  }
};

}  // namespace slipway::testing_support
