// BackendRegistry: maps a platform or backend name ("onnxruntime_onnx", "onnxruntime") to the
// Backend that serves it. Backends register once at start-up through RegisterBackends() in app/.
// Thread safety: registration happens before serving; lookups afterwards are read-only.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "slipway/backend/backend.h"

namespace slipway::backend {

class BackendRegistry {
 public:
  void Register(std::unique_ptr<Backend> backend);
  // Finds by backend name or platform; nullptr when none matches.
  Backend* Find(const std::string& backend_or_platform) const;
  // The backend whose default model file exists in a version folder, for configs naming neither.
  const std::vector<std::unique_ptr<Backend>>& backends() const { return backends_; }

 private:
  std::vector<std::unique_ptr<Backend>> backends_;
};

}  // namespace slipway::backend
