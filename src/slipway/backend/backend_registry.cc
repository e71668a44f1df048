#include "slipway/backend/backend_registry.h"

namespace slipway::backend {

void BackendRegistry::Register(std::unique_ptr<Backend> backend) {
  backends_.push_back(std::move(backend));
}

Backend* BackendRegistry::Find(const std::string& backend_or_platform) const {
  for (const auto& b : backends_) {
    if (b->name() == backend_or_platform || b->platform() == backend_or_platform) return b.get();
  }
  return nullptr;
}

}  // namespace slipway::backend
