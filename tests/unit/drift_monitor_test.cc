// DriftMonitor against a fake inner service: the false-alarm rate over many windows drawn from
// the reference distribution stays near the configured level, and a shifted feature is flagged.
#include "slipway/monitoring/drift_monitor.h"

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include "support/fake_service.h"

namespace slipway::monitoring {
namespace {

class EchoService : public testing_support::FakeService {
 public:
  explicit EchoService(core::ModelConfig config) { configs[config.name] = std::move(config); }
  void Infer(core::InferRequest request, core::InferCallback done) override {
    core::InferResponse r;
    r.model_name = request.model_name;
    r.model_version = 1;
    for (const auto& t : request.inputs) {
      r.outputs.push_back(core::Tensor::Owned("y", t.type(), t.shape(), std::string(t.bytes())));
    }
    done(std::move(r));
  }
};

core::ModelConfig Config(double p_value) {
  core::ModelConfig c;
  c.name = "m";
  c.max_batch_size = 1000;
  core::TensorConfig x;
  x.name = "x";
  x.type = core::DataType::kFp32;
  x.dims = {3};
  c.inputs = {x};
  core::TensorConfig y = x;
  y.name = "y";
  c.outputs = {y};
  auto& d = c.monitoring.drift;
  d.enabled = true;
  d.reference_rows = 1000;
  d.window_rows = 200;
  d.p_value = p_value;
  d.outputs = false;
  d.max_rows_per_second = 0;  // these tests send as fast as they can; every row counts
  return c;
}

// borrowed: the input tensor is a view of a buffer this function keeps until the answer (as the
// frontends' are); otherwise the request owns its bytes.
void Send(DriftMonitor& monitor, std::mt19937_64& rng, size_t rows, double shift,
          bool borrowed = false) {
  std::normal_distribution<float> normal(0, 1);
  std::string bytes;
  for (size_t r = 0; r < rows; ++r) {
    for (int j = 0; j < 3; ++j) {
      float v = normal(rng) + (j == 1 ? static_cast<float>(shift) : 0.0f);
      bytes.append(reinterpret_cast<const char*>(&v), sizeof(v));
    }
  }
  core::InferRequest request;
  request.model_name = "m";
  const core::Shape shape = {static_cast<int64_t>(rows), 3};
  request.inputs.push_back(borrowed ? core::Tensor::Borrowed("x", core::DataType::kFp32, shape, bytes)
                                    : core::Tensor::Owned("x", core::DataType::kFp32, shape, bytes));
  bool answered = false;
  monitor.Infer(std::move(request), [&](core::Result<core::InferResponse> r) {
    ASSERT_TRUE(r.ok());
    answered = true;
  });
  ASSERT_TRUE(answered);
}

serving::DriftReport WaitForWindows(DriftMonitor& monitor, uint64_t windows) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    auto report = monitor.Drift("m");
    if (report.ok() && report->windows >= windows) return *report;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ADD_FAILURE() << "windows were not judged";
  return {};
}

TEST(DriftMonitor, FalseAlarmRateStaysNearTheConfiguredLevel) {
  EchoService inner(Config(0.05));
  auto monitor = DriftMonitor::Create({&inner, 100000, {}}).value();
  std::mt19937_64 rng(7);
  Send(*monitor, rng, 1000, 0);  // the reference
  constexpr uint64_t kWindows = 200;
  for (uint64_t w = 0; w < kWindows; ++w) Send(*monitor, rng, 200, 0);
  const auto report = WaitForWindows(*monitor, kWindows);
  EXPECT_EQ(report.windows, kWindows);
  // Expected about 5% (a bit less: Bonferroni and the asymptotic KS are conservative); a
  // binomial(200, 0.05) exceeds 20 with probability below 0.1%.
  EXPECT_LE(report.drifting_windows, 20u) << report.drifting_windows << " of " << kWindows;
}

class DriftMonitorInputs : public testing::TestWithParam<bool> {};

TEST_P(DriftMonitorInputs, ShiftedFeatureIsFlaggedInAlmostEveryWindow) {
  const bool borrowed = GetParam();
  uint64_t flagged_windows = 0;
  EchoService inner(Config(0.01));
  auto monitor = DriftMonitor::Create(
      {&inner, 100000,
       [&](const serving::DriftReport& report, const core::ModelConfig&) {
         for (const auto& f : report.features) {
           if (f.drift) {
             EXPECT_EQ(f.name, "x[1]");
           }
         }
         ++flagged_windows;
       }}).value();
  std::mt19937_64 rng(9);
  Send(*monitor, rng, 1000, 0, borrowed);
  for (int w = 0; w < 20; ++w) Send(*monitor, rng, 200, 0.6, borrowed);
  const auto report = WaitForWindows(*monitor, 20);
  EXPECT_GE(report.drifting_windows, 19u);
  EXPECT_EQ(flagged_windows, report.drifting_windows);
}

// Owned inputs are read when the request arrives; borrowed ones when the answer comes.
INSTANTIATE_TEST_SUITE_P(OwnedAndBorrowed, DriftMonitorInputs, testing::Bool());

TEST(DriftMonitor, FeaturesFollowTheConfig) {
  auto config = Config(0.01);
  config.inputs[0].dims = {100};
  config.monitoring.drift.max_features_per_tensor = 5;
  config.monitoring.drift.outputs = true;
  config.outputs[0].type = core::DataType::kInt64;
  config.outputs[0].dims = {1};
  const auto features = DriftFeatures(config);
  ASSERT_EQ(features.size(), 6u);
  EXPECT_EQ(features[4].name, "x[4]");
  EXPECT_FALSE(features[4].categorical);
  EXPECT_EQ(features[5].name, "y[0]");
  EXPECT_TRUE(features[5].output);
  EXPECT_TRUE(features[5].categorical);  // integer outputs are classes
  config.inputs[0].dims = {-1};
  EXPECT_EQ(DriftFeatures(config).size(), 1u);  // variable-length tensors are skipped
}


// Rows observed so far: the reference, the windows judged and the window being filled.
uint64_t RowsObserved(const serving::DriftReport& r, const core::ModelConfig& c) {
  return r.reference_rows + r.windows * static_cast<uint64_t>(c.monitoring.drift.window_rows) +
         r.window_rows;
}

// Waits until the worker has taken in every row sent that was not left out.
serving::DriftReport WaitForRows(DriftMonitor& monitor, const core::ModelConfig& c, uint64_t sent) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  serving::DriftReport last;
  while (std::chrono::steady_clock::now() < deadline) {
    auto report = monitor.Drift("m");
    if (report.ok()) {
      last = *report;
      if (RowsObserved(last, c) + last.rows_skipped_by_sample + last.rows_skipped_by_rate == sent) {
        return last;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ADD_FAILURE() << "rows observed " << RowsObserved(last, c) << " + skipped "
                << last.rows_skipped_by_sample << " + " << last.rows_skipped_by_rate
                << " never reached " << sent;
  return last;
}

// What `n` single-row requests, sent as fast as this thread goes, left in a monitor with a
// 100-row reference and 50-row windows (`tune` changes the config first).
struct Sent {
  core::ModelConfig config;
  serving::DriftReport report;
  uint64_t observed = 0;
  double elapsed_s = 0;  // sending them took
};
template <typename Tune>
Sent SendSingleRows(uint64_t n, uint64_t seed, Tune&& tune) {
  Sent out;
  out.config = Config(0.01);
  out.config.monitoring.drift.reference_rows = 100;
  out.config.monitoring.drift.window_rows = 50;
  tune(out.config.monitoring.drift);
  EchoService inner(out.config);
  auto monitor = DriftMonitor::Create({&inner, 100000, {}}).value();
  std::mt19937_64 rng(seed);
  const auto start = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < n; ++i) Send(*monitor, rng, 1, 0);
  out.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  out.report = WaitForRows(*monitor, out.config, n);
  out.observed = RowsObserved(out.report, out.config);
  return out;
}

TEST(DriftMonitor, RowsOverTheRateAreLeftOutAndCounted) {
  constexpr uint64_t kRequests = 2000;
  const Sent sent = SendSingleRows(kRequests, 11, [](core::DriftConfig& d) {
    d.max_rows_per_second = 100;
  });
  // A second's worth at once, then 100 a second (the clock read is coarse: a few ms, so a
  // little more); however slow this machine is, far fewer than were sent.
  EXPECT_GE(sent.observed, 100u);
  EXPECT_LE(static_cast<double>(sent.observed), 100 + 100 * (sent.elapsed_s + 0.05) + 1);
  EXPECT_EQ(sent.report.rows_skipped_by_rate, kRequests - sent.observed);
  EXPECT_EQ(sent.report.rows_skipped_by_sample, 0u);
  EXPECT_TRUE(sent.report.reference_ready);
}

TEST(DriftMonitor, RowsOutsideTheSampleAreLeftOutAndCounted) {
  constexpr uint64_t kRequests = 4000;
  const Sent sent = SendSingleRows(kRequests, 12, [](core::DriftConfig& d) { d.sample = 0.25; });
  // Binomial(4000, 0.25): mean 1000, standard deviation about 27.
  EXPECT_GT(sent.observed, 800u);
  EXPECT_LT(sent.observed, 1200u);
  EXPECT_EQ(sent.report.rows_skipped_by_sample, kRequests - sent.observed);
  EXPECT_EQ(sent.report.rows_skipped_by_rate, 0u);
}

TEST(RowBudget, ASecondsWorthAtOnceThenTheRate) {
  RowBudget budget(100);
  const int64_t t0 = 5'000'000'000;
  int admitted = 0;
  for (int i = 0; i < 1000; ++i) admitted += budget.Admit(1, t0) ? 1 : 0;
  EXPECT_EQ(admitted, 100);
  admitted = 0;
  for (int i = 0; i < 1000; ++i) admitted += budget.Admit(1, t0 + 500'000'000) ? 1 : 0;
  EXPECT_EQ(admitted, 50);  // half a second earns half a second's worth
  // A batch is admitted whole or not at all.
  EXPECT_FALSE(budget.Admit(10, t0 + 550'000'000));
  EXPECT_TRUE(budget.Admit(10, t0 + 600'000'000));
}

TEST(RowBudget, ZeroMeansNoLimit) {
  RowBudget budget(0);
  for (int i = 0; i < 100000; ++i) ASSERT_TRUE(budget.Admit(1000, 0));
}

TEST(RowBudget, ABatchLargerThanTheBurstIsTakenWhenTheBudgetIsFullAndPaidFor) {
  RowBudget budget(100);
  const int64_t t0 = 1'000'000'000;
  EXPECT_TRUE(budget.Admit(500, t0));  // five seconds' worth, after a quiet spell
  EXPECT_FALSE(budget.Admit(1, t0 + 3'900'000'000));  // still owes more than a second
  EXPECT_TRUE(budget.Admit(1, t0 + 4'010'000'000));   // owes a second, with this row
  EXPECT_FALSE(budget.Admit(500, t0 + 4'010'000'000));
}

TEST(RowBudget, ThreadsShareOneBudgetExactly) {
  RowBudget budget(1000);
  const int64_t now = 7'000'000'000;
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5000; ++i) {
        if (budget.Admit(1, now)) admitted.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(admitted.load(), 1000);
}

}  // namespace
}  // namespace slipway::monitoring
