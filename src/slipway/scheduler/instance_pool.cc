#include "slipway/scheduler/instance_pool.h"

namespace slipway::scheduler {

core::Result<std::unique_ptr<InstancePool>> InstancePool::Create(const Options& options) {
  if (options.model == nullptr || options.instance_count < 1) {
    return core::Status::InvalidArgument("an instance pool needs a model and at least 1 instance");
  }
  std::unique_ptr<InstancePool> pool(new InstancePool());
  for (int i = 0; i < options.instance_count; ++i) {
    ASSIGN_OR_RETURN(auto instance, options.model->CreateInstance());
    pool->free_.push_back(instance.get());
    pool->instances_.push_back(std::move(instance));
  }
  return pool;
}

core::Result<std::vector<core::Tensor>> InstancePool::Execute(
    const std::vector<const core::Tensor*>& inputs, const std::vector<std::string>& output_names) {
  backend::ModelInstance* instance = nullptr;
  {
    std::unique_lock<std::mutex> lock(mu_);
    free_cv_.wait(lock, [this] { return !free_.empty(); });
    instance = free_.back();
    free_.pop_back();
  }
  auto result = instance->Execute(inputs, output_names);
  {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(instance);
  }
  free_cv_.notify_one();
  return result;
}

}  // namespace slipway::scheduler
