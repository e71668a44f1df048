// DynamicBatcher with a fake backend: merging and splitting rows, capacity, timeouts,
// cancellation, ordering and instance concurrency. Runs under ThreadSanitizer in `make test`.
#include "slipway/scheduler/dynamic_batcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <future>
#include <mutex>
#include <thread>

namespace slipway::scheduler {
namespace {

using core::DataType;

// Holds executions until opened; lets a test build a queue behind a busy instance.
class Gate {
 public:
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

struct Shared {
  Gate gate;
  std::atomic<int> running{0};
  std::atomic<int> peak{0};
  std::atomic<int> executions{0};
  std::atomic<int> started{0};
  std::mutex mu;
  std::vector<int64_t> batch_rows;  // guarded by mu
};

// Echoes input "x" (INT32 [rows, 2]) as output "y" with every value + 1.
class EchoInstance : public backend::ModelInstance {
 public:
  explicit EchoInstance(Shared* s) : s_(s) {}
  core::Result<std::vector<core::Tensor>> Execute(const std::vector<const core::Tensor*>& inputs,
                                                  const std::vector<std::string>&) override {
    ++s_->started;
    s_->gate.Wait();
    const int now = ++s_->running;
    int seen = s_->peak.load();
    while (now > seen && !s_->peak.compare_exchange_weak(seen, now)) {
    }
    const core::Tensor& x = *inputs[0];
    int32_t first = -1;
    if (x.bytes().size() >= 4) std::memcpy(&first, x.bytes().data(), 4);
    if (first == 0) {
      // A slow request: later ones overtake it on another instance unless ordering holds them.
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::string out(x.bytes());
    for (size_t i = 0; i + 4 <= out.size(); i += 4) {
      int32_t v;
      std::memcpy(&v, out.data() + i, 4);
      ++v;
      std::memcpy(out.data() + i, &v, 4);
    }
    {
      std::lock_guard<std::mutex> lock(s_->mu);
      s_->batch_rows.push_back(x.shape()[0]);
    }
    ++s_->executions;
    --s_->running;
    std::vector<core::Tensor> result;
    result.push_back(core::Tensor::Owned("y", DataType::kInt32, x.shape(), std::move(out)));
    return result;
  }

 private:
  Shared* s_;
};

class EchoModel : public backend::Model {
 public:
  explicit EchoModel(Shared* s) : s_(s) {}
  const core::ModelConfig& config() const override { return config_; }
  core::Result<std::unique_ptr<backend::ModelInstance>> CreateInstance() override {
    return std::unique_ptr<backend::ModelInstance>(std::make_unique<EchoInstance>(s_));
  }

 private:
  Shared* s_;
  core::ModelConfig config_;
};

// A request of `rows` rows whose values start at `base`; the future gets its answer.
PendingRequest Request(int32_t base, int64_t rows,
                       std::promise<core::Result<core::InferResponse>>* answer,
                       core::Parameters params = {}) {
  PendingRequest p;
  std::string bytes;
  for (int32_t i = 0; i < rows * 2; ++i) {
    int32_t v = base + i;
    bytes.append(reinterpret_cast<const char*>(&v), 4);
  }
  p.request.model_name = "echo";
  p.request.parameters = std::move(params);
  p.request.inputs.push_back(core::Tensor::Owned("x", DataType::kInt32, {rows, 2}, bytes));
  p.input_order = {0};
  p.output_names = {"y"};
  p.batch = rows;
  p.signature = "2;|y;";
  p.done = [answer](core::Result<core::InferResponse> r) { answer->set_value(std::move(r)); };
  return p;
}

std::vector<int32_t> Values(const core::InferResponse& r) {
  std::vector<int32_t> v(r.outputs.at(0).bytes().size() / 4);
  std::memcpy(v.data(), r.outputs[0].bytes().data(), v.size() * 4);
  return v;
}

std::unique_ptr<DynamicBatcher> Make(Shared* s, EchoModel* model, int instances,
                                     BatchingConfig batching) {
  DynamicBatcher::Options options;
  options.model = model;
  options.model_name = "echo";
  options.instance_count = instances;
  options.batching = std::move(batching);
  auto b = DynamicBatcher::Create(options);
  EXPECT_TRUE(b.ok()) << b.status().message();
  return std::move(b).value();
}

BatchingConfig Merging(size_t capacity = 1024) {
  BatchingConfig c;
  c.enabled = true;
  c.max_batch_size = 64;
  c.queue_capacity = capacity;
  return c;
}

void WaitStarted(Shared& s, int n) {
  while (s.started.load() < n) std::this_thread::yield();
}

TEST(DynamicBatcher, MergesQueuedRequestsAndGivesEachItsOwnRows) {
  Shared s;
  EchoModel model(&s);
  auto batcher = Make(&s, &model, 1, Merging());
  std::vector<std::promise<core::Result<core::InferResponse>>> answers(9);
  // The first request runs on its submitting thread (the instance is idle) and blocks there.
  std::thread first([&] { batcher->Submit(Request(1000, 1, &answers[0])); });
  WaitStarted(s, 1);  // the single instance is now busy; the rest queue up
  for (int i = 1; i < 9; ++i) batcher->Submit(Request(1000 * (i + 1), i % 3 + 1, &answers[i]));
  s.gate.Open();
  first.join();
  for (int i = 0; i < 9; ++i) {
    auto r = answers[i].get_future().get();
    ASSERT_TRUE(r.ok()) << r.status().message();
    const int64_t rows = i == 0 ? 1 : i % 3 + 1;
    auto v = Values(*r);
    ASSERT_EQ(v.size(), static_cast<size_t>(rows * 2));
    for (size_t k = 0; k < v.size(); ++k) EXPECT_EQ(v[k], 1000 * (i + 1) + static_cast<int>(k) + 1);
    EXPECT_EQ(r->outputs[0].shape(), (core::Shape{rows, 2}));
  }
  EXPECT_EQ(s.executions.load(), 2);  // the first alone, then the 8 queued ones merged
  auto stats = batcher->Stats();
  EXPECT_EQ(stats.execution_count, 2u);
  EXPECT_EQ(stats.inference_count, 1u + 2 + 3 + 1 + 2 + 3 + 1 + 2 + 3);
  EXPECT_EQ(stats.success.count, 9u);
  EXPECT_EQ(stats.batches.count(17), 1u);
}

TEST(DynamicBatcher, FullQueueAnswersUnavailableAtOnce) {
  Shared s;
  EchoModel model(&s);
  auto batcher = Make(&s, &model, 1, Merging(2));
  std::vector<std::promise<core::Result<core::InferResponse>>> answers(4);
  std::thread first([&] { batcher->Submit(Request(0, 1, &answers[0])); });
  WaitStarted(s, 1);
  batcher->Submit(Request(0, 1, &answers[1]));
  batcher->Submit(Request(0, 1, &answers[2]));
  batcher->Submit(Request(0, 1, &answers[3]));
  auto refused = answers[3].get_future().get();  // answered while the instance is still blocked
  EXPECT_EQ(refused.status().code(), core::StatusCode::kUnavailable);
  s.gate.Open();
  first.join();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(answers[i].get_future().get().ok());
}

TEST(DynamicBatcher, ExpiredAndCancelledRequestsAreAnsweredWithoutRunning) {
  Shared s;
  EchoModel model(&s);
  auto batcher = Make(&s, &model, 1, Merging());
  std::vector<std::promise<core::Result<core::InferResponse>>> answers(3);
  std::thread first([&] { batcher->Submit(Request(0, 1, &answers[0])); });
  WaitStarted(s, 1);
  batcher->Submit(Request(0, 1, &answers[1], {{"timeout", int64_t{1}}}));  // 1 us
  auto cancelled = Request(0, 1, &answers[2]);
  cancelled.request.cancelled = [] { return true; };
  batcher->Submit(std::move(cancelled));
  // The timed-out request is answered while the only instance is still busy.
  auto timed_out = answers[1].get_future();
  ASSERT_EQ(timed_out.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(timed_out.get().status().code(), core::StatusCode::kDeadlineExceeded);
  s.gate.Open();
  first.join();
  EXPECT_TRUE(answers[0].get_future().get().ok());
  EXPECT_EQ(answers[2].get_future().get().status().code(), core::StatusCode::kCancelled);
  EXPECT_EQ(s.executions.load(), 1);
}

TEST(DynamicBatcher, InstancesRunInParallelButNeverMoreThanConfigured) {
  Shared s;
  EchoModel model(&s);
  BatchingConfig one_at_a_time;  // no merging
  one_at_a_time.max_batch_size = 64;
  auto batcher = Make(&s, &model, 2, one_at_a_time);
  s.gate.Open();
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        std::promise<core::Result<core::InferResponse>> answer;
        batcher->Submit(Request(t * 1000 + i, 1, &answer));
        auto r = answer.get_future().get();
        if (r.ok() && Values(*r)[0] == t * 1000 + i + 1) ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 200);
  EXPECT_LE(s.peak.load(), 2);
  EXPECT_EQ(s.executions.load(), 200);
}

TEST(DynamicBatcher, PreserveOrderingAnswersInArrivalOrder) {
  Shared s;
  EchoModel model(&s);
  BatchingConfig ordered;
  ordered.max_batch_size = 64;
  ordered.preserve_ordering = true;
  auto batcher = Make(&s, &model, 2, ordered);
  s.gate.Open();
  std::mutex mu;
  std::vector<int> order;
  std::vector<std::promise<core::Result<core::InferResponse>>> answers(20);
  auto submit = [&](int i) {
    auto p = Request(i, 1, &answers[i]);
    p.done = [&, i](core::Result<core::InferResponse> r) {
      {
        std::lock_guard<std::mutex> lock(mu);
        order.push_back(i);
      }
      answers[i].set_value(std::move(r));
    };
    batcher->Submit(std::move(p));
  };
  // Request 0 is slow (10 ms) on one instance; 1..19 run meanwhile on the other.
  std::thread slow([&] { submit(0); });
  WaitStarted(s, 1);
  for (int i = 1; i < 20; ++i) submit(i);
  slow.join();
  for (auto& a : answers) EXPECT_TRUE(a.get_future().get().ok());
  std::vector<int> expected(20);
  for (int i = 0; i < 20; ++i) expected[i] = i;
  EXPECT_EQ(order, expected);
}

TEST(DynamicBatcher, DestructionAnswersQueuedRequests) {
  Shared s;
  EchoModel model(&s);
  auto batcher = Make(&s, &model, 1, Merging());
  std::vector<std::promise<core::Result<core::InferResponse>>> answers(2);
  std::thread first([&] { batcher->Submit(Request(0, 1, &answers[0])); });
  WaitStarted(s, 1);
  batcher->Submit(Request(0, 1, &answers[1]));  // queued behind the blocked instance
  DynamicBatcher* raw = batcher.release();
  delete raw;  // while the instance is still blocked: the queued request is answered at once
  EXPECT_EQ(answers[1].get_future().get().status().code(), core::StatusCode::kUnavailable);
  s.gate.Open();
  first.join();  // the running request still completes
  EXPECT_TRUE(answers[0].get_future().get().ok());
}

TEST(DynamicBatcher, AutoscalesUpUnderQueueingAndBackDownWhenIdle) {
  Shared s;
  EchoModel model(&s);
  DynamicBatcher::Options options;
  options.model = &model;
  options.model_name = "echo";
  options.instance_count = 1;
  options.batching.max_batch_size = 64;
  options.autoscale.max_instances = 2;
  options.autoscale.target_queue_delay_us = 1;  // any queueing at all asks for more
  options.autoscale.up_windows = 1;
  options.autoscale.down_windows = 2;
  options.scale_window_ms = 10;
  auto made = DynamicBatcher::Create(options);
  ASSERT_TRUE(made.ok());
  auto batcher = std::move(made).value();
  EXPECT_EQ(batcher->instance_count(), 1);
  // Hold the only instance and queue work behind it until a second instance appears.
  std::vector<std::promise<core::Result<core::InferResponse>>> answers(40);
  std::thread first([&] { batcher->Submit(Request(0, 1, &answers[0])); });
  WaitStarted(s, 1);
  int submitted = 1;
  while (batcher->instance_count() < 2 && submitted < 40) {
    batcher->Submit(Request(submitted, 1, &answers[submitted]));
    ++submitted;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(batcher->instance_count(), 2);
  s.gate.Open();
  first.join();
  for (int i = 0; i < submitted; ++i) EXPECT_TRUE(answers[i].get_future().get().ok());
  // Idle now: back to the minimum.
  while (batcher->instance_count() > 1) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(batcher->instance_count(), 1);
}

TEST(SplitOutput, SplitsFixedWidthAndBytesRows) {
  std::string b;
  for (const char* s : {"a", "bb", "", "ccc"}) core::AppendBytesElement(b, s);
  auto parts = SplitOutput(core::Tensor::Owned("o", DataType::kBytes, {2, 2}, b), {1, 1});
  ASSERT_TRUE(parts.ok());
  EXPECT_EQ(core::SplitBytesElements((*parts)[1].bytes()).at(1), "ccc");
  auto bad = SplitOutput(core::Tensor::Owned("o", DataType::kUint8, {3}, "abc"), {1, 1});
  EXPECT_FALSE(bad.ok());
}

}  // namespace
}  // namespace slipway::scheduler
