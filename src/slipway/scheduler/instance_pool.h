// InstancePool: a model version's ModelInstances, each executing one call at a time.
//
// Execute() takes a free instance, blocking until one is free, runs the call on the caller's
// thread and gives the instance back. Different instances run in parallel.
// Thread safety: all methods are safe to call from any thread. Execute blocks.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

#include "slipway/backend/backend.h"
#include "slipway/core/status.h"

namespace slipway::scheduler {

class InstancePool {
 public:
  struct Options {
    backend::Model* model = nullptr;  // not owned; must outlive the pool
    int instance_count = 1;
  };
  static core::Result<std::unique_ptr<InstancePool>> Create(const Options& options);

  core::Result<std::vector<core::Tensor>> Execute(const std::vector<const core::Tensor*>& inputs,
                                                  const std::vector<std::string>& output_names);
  int size() const { return static_cast<int>(instances_.size()); }

 private:
  InstancePool() = default;
  std::vector<std::unique_ptr<backend::ModelInstance>> instances_;
  std::mutex mu_;
  std::condition_variable free_cv_;
  std::vector<backend::ModelInstance*> free_;  // guarded by mu_
};

}  // namespace slipway::scheduler
