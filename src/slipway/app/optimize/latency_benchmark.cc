#include "slipway/app/optimize/latency_benchmark.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

namespace slipway::app::optimize {

using core::Result;
using core::Status;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kRounds = 8;
constexpr int kWarmupRuns = 5;

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

// Runs `runner` on `inputs` until `seconds` have passed (at least 3 times), appending latencies.
Status Measure(ModelRunner& runner, const std::vector<core::Tensor>& inputs,
               const std::vector<std::string>& outputs, double seconds, std::vector<double>* micros) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  for (int i = 0; i < 3 || Clock::now() < deadline; ++i) {
    const auto t0 = Clock::now();
    auto got = runner.Run(inputs, outputs);
    const auto t1 = Clock::now();
    if (!got.ok()) return got.status();
    micros->push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  return Status::Ok();
}

}  // namespace

LatencyFigures SummarizeLatencies(std::vector<double> micros, int64_t batch) {
  LatencyFigures f;
  if (micros.empty()) return f;
  std::sort(micros.begin(), micros.end());
  f.runs = static_cast<int64_t>(micros.size());
  f.p50_us = Percentile(micros, 50);
  f.p90_us = Percentile(micros, 90);
  const double total = std::accumulate(micros.begin(), micros.end(), 0.0);
  f.mean_us = total / static_cast<double>(micros.size());
  f.rows_per_second = total > 0 ? static_cast<double>(batch) * static_cast<double>(micros.size()) / (total / 1e6) : 0;
  return f;
}

Result<std::vector<LatencyComparison>> CompareLatency(ModelRunner& before, ModelRunner& after,
                                                      const SampleSet& inputs,
                                                      const std::vector<int64_t>& batches,
                                                      double seconds_per_batch) {
  std::vector<LatencyComparison> out;
  const std::vector<std::string> outputs = before.OutputNames();
  const bool can_batch = before.batching() && after.batching() && Stackable(inputs);
  for (int64_t batch : batches) {
    if (batch > 1 && !can_batch) continue;
    const std::vector<core::Tensor> feed =
        can_batch ? StackSamples(inputs, 0, static_cast<size_t>(batch)) : inputs.samples.at(0).inputs;
    for (ModelRunner* r : {&before, &after}) {
      for (int i = 0; i < kWarmupRuns; ++i) {
        auto got = r->Run(feed, outputs);
        if (!got.ok()) return Status::InvalidArgument("benchmark run failed: " + got.status().message());
      }
    }
    std::vector<double> b;
    std::vector<double> a;
    const double slice = seconds_per_batch / (2.0 * kRounds);
    for (int round = 0; round < kRounds; ++round) {
      // Alternate which model goes first, so neither always follows the other.
      if (round % 2 == 0) {
        RETURN_IF_ERROR(Measure(before, feed, outputs, slice, &b));
        RETURN_IF_ERROR(Measure(after, feed, outputs, slice, &a));
      } else {
        RETURN_IF_ERROR(Measure(after, feed, outputs, slice, &a));
        RETURN_IF_ERROR(Measure(before, feed, outputs, slice, &b));
      }
    }
    LatencyComparison c;
    c.batch = batch;
    c.before = SummarizeLatencies(std::move(b), batch);
    c.after = SummarizeLatencies(std::move(a), batch);
    out.push_back(c);
  }
  return out;
}

}  // namespace slipway::app::optimize
