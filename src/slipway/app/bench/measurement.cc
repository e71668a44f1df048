#include "slipway/app/bench/measurement.h"

#include <algorithm>
#include <cmath>

namespace slipway::app::bench {

double PercentileUs(const std::vector<int64_t>& sorted_ns, double p) {
  if (sorted_ns.empty()) return 0;
  const double n = static_cast<double>(sorted_ns.size());
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * n - 1e-9));
  rank = std::clamp<size_t>(rank, 1, sorted_ns.size());
  return static_cast<double>(sorted_ns[rank - 1]) / 1000.0;
}

LatencySummary SummarizeLatencies(std::vector<int64_t> latencies_ns) {
  LatencySummary s;
  if (latencies_ns.empty()) return s;
  std::sort(latencies_ns.begin(), latencies_ns.end());
  s.count = latencies_ns.size();
  s.p50_us = PercentileUs(latencies_ns, 50);
  s.p90_us = PercentileUs(latencies_ns, 90);
  s.p99_us = PercentileUs(latencies_ns, 99);
  s.p999_us = PercentileUs(latencies_ns, 99.9);
  s.max_us = static_cast<double>(latencies_ns.back()) / 1000.0;
  double sum = 0;
  for (int64_t v : latencies_ns) sum += static_cast<double>(v);
  s.mean_us = sum / static_cast<double>(latencies_ns.size()) / 1000.0;
  return s;
}

bool IsStable(const std::vector<double>& window_throughputs, double percent) {
  if (window_throughputs.size() < kStableWindows) return false;
  const auto last = window_throughputs.end() - static_cast<std::ptrdiff_t>(kStableWindows);
  double mean = 0;
  for (auto it = last; it != window_throughputs.end(); ++it) mean += *it;
  mean /= static_cast<double>(kStableWindows);
  if (!(mean > 0)) return false;
  for (auto it = last; it != window_throughputs.end(); ++it) {
    if (std::fabs(*it - mean) > percent / 100.0 * mean) return false;
  }
  return true;
}

uint64_t Tally::error_count() const {
  uint64_t n = 0;
  for (const auto& [kind, count] : errors) n += count;
  return n;
}

void Tally::Merge(Tally&& other) {
  successes += other.successes;
  for (const auto& [kind, count] : other.errors) errors[kind] += count;
  if (latencies_ns.empty()) {
    latencies_ns = std::move(other.latencies_ns);
  } else {
    latencies_ns.insert(latencies_ns.end(), other.latencies_ns.begin(), other.latencies_ns.end());
  }
  seconds += other.seconds;
}

void FillPoint(Tally tally, PointResult* point) {
  point->requests = tally.successes;
  point->errors = tally.error_count();
  point->errors_by_kind = tally.errors;
  point->seconds = tally.seconds;
  if (tally.seconds > 0) {
    point->requests_per_s = static_cast<double>(tally.successes) / tally.seconds;
    point->throughput_infer_per_s = point->requests_per_s * point->batch_size;
  }
  point->latency = SummarizeLatencies(std::move(tally.latencies_ns));
}

}  // namespace slipway::app::bench
