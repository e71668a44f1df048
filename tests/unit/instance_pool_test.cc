// InstancePool with a fake backend: pins that each instance runs one call at a time and that
// every call is answered. Runs under ThreadSanitizer in `make test`.
#include "slipway/scheduler/instance_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace slipway::scheduler {
namespace {

class CountingInstance : public backend::ModelInstance {
 public:
  CountingInstance(std::atomic<int>* running, std::atomic<int>* peak)
      : running_(running), peak_(peak) {}
  core::Result<std::vector<core::Tensor>> Execute(
      const std::vector<const core::Tensor*>& inputs,
      const std::vector<std::string>& output_names) override {
    EXPECT_FALSE(busy_.exchange(true)) << "an instance ran two calls at once";
    const int now = ++*running_;
    int seen = peak_->load();
    while (now > seen && !peak_->compare_exchange_weak(seen, now)) {
    }
    ++calls_;
    std::this_thread::yield();
    --*running_;
    busy_ = false;
    std::vector<core::Tensor> out;
    out.push_back(core::Tensor::Owned(output_names[0], core::DataType::kUint8, {1},
                                      std::string(inputs[0]->bytes())));
    return out;
  }
  int calls() const { return calls_; }

 private:
  std::atomic<int>* running_;
  std::atomic<int>* peak_;
  std::atomic<bool> busy_{false};
  int calls_ = 0;  // only touched while busy_ is held
};

class CountingModel : public backend::Model {
 public:
  const core::ModelConfig& config() const override { return config_; }
  core::Result<std::unique_ptr<backend::ModelInstance>> CreateInstance() override {
    if (fail_after_ >= 0 && created_ >= fail_after_) {
      return core::Status::Internal("instance creation failed");
    }
    ++created_;
    return std::unique_ptr<backend::ModelInstance>(
        std::make_unique<CountingInstance>(&running, &peak));
  }
  std::atomic<int> running{0};
  std::atomic<int> peak{0};
  int fail_after_ = -1;
  int created_ = 0;

 private:
  core::ModelConfig config_;
};

TEST(InstancePool, NeverRunsMoreCallsThanInstancesAndAnswersAll) {
  CountingModel model;
  auto pool = InstancePool::Create({&model, 2});
  ASSERT_TRUE(pool.ok());
  std::atomic<int> answered{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const std::string byte(1, static_cast<char>('a' + t));
        auto in = core::Tensor::Borrowed("in", core::DataType::kUint8, {1}, byte);
        auto out = (*pool)->Execute({&in}, {"out"});
        if (out.ok() && out->at(0).bytes() == byte) ++answered;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(answered.load(), 1200);
  EXPECT_LE(model.peak.load(), 2);
  EXPECT_GE(model.peak.load(), 1);
}

TEST(InstancePool, CreationFailureIsReported) {
  CountingModel model;
  model.fail_after_ = 1;
  auto pool = InstancePool::Create({&model, 2});
  ASSERT_FALSE(pool.ok());
  EXPECT_NE(pool.status().message().find("instance creation failed"), std::string::npos);
  EXPECT_FALSE(InstancePool::Create({&model, 0}).ok());
  EXPECT_FALSE(InstancePool::Create({nullptr, 1}).ok());
}

}  // namespace
}  // namespace slipway::scheduler
