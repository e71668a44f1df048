// The arithmetic of a benchmark point, as pure functions: latency percentiles (nearest rank),
// the stability rule for measurement windows, the Poisson arrival schedule of the open loop,
// and the per-window tallies that are merged into a point's result.
//
// Thread safety: plain values and pure functions; PoissonSchedule is one per thread. Nothing
// here blocks.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace slipway::app::bench {

struct LatencySummary {
  uint64_t count = 0;
  double p50_us = 0, p90_us = 0, p99_us = 0, p999_us = 0, max_us = 0, mean_us = 0;
};

// Nearest-rank percentile `p` (0 < p <= 100) of ascending `sorted_ns`, in microseconds; 0 when
// empty.
double PercentileUs(const std::vector<int64_t>& sorted_ns, double p);

// Sorts `latencies_ns` and summarises it.
LatencySummary SummarizeLatencies(std::vector<int64_t> latencies_ns);

// The number of trailing windows the stability rule looks at.
inline constexpr size_t kStableWindows = 3;

// True when there are at least kStableWindows throughputs and each of the last kStableWindows
// is within `percent` percent of their mean (and the mean is positive).
bool IsStable(const std::vector<double>& window_throughputs, double percent);

// Exponential inter-arrival gaps for Poisson arrivals at `rate_per_s`, from a fixed seed.
class PoissonSchedule {
 public:
  PoissonSchedule(double rate_per_s, uint64_t seed) : rng_(seed), gap_(rate_per_s) {}
  // Seconds from the previous arrival to the next.
  double NextGapSeconds() { return gap_(rng_); }

 private:
  std::mt19937_64 rng_;
  std::exponential_distribution<double> gap_;
};

// What finished during one stretch of time (a window, or several merged).
struct Tally {
  uint64_t successes = 0;
  std::map<std::string, uint64_t> errors;  // by kind: "http 503", "grpc UNAVAILABLE", ...
  std::vector<int64_t> latencies_ns;       // successful requests only
  double seconds = 0;                      // wall time covered

  uint64_t error_count() const;
  void Merge(Tally&& other);
};

// The result of one benchmark point (one concurrency level, or one open-loop rate).
struct PointResult {
  int concurrency = 0;      // closed loop: requests in flight; open loop: worker threads
  double request_rate = 0;  // open loop: target requests/s; 0 for the closed loop
  int batch_size = 1;
  uint64_t requests = 0;  // successful requests in the measured windows
  uint64_t errors = 0;    // failed requests in the measured windows
  std::map<std::string, uint64_t> errors_by_kind;
  double seconds = 0;                 // measured time
  double throughput_infer_per_s = 0;  // successful requests x batch size per second
  double requests_per_s = 0;
  LatencySummary latency;
  int windows = 0;
  bool stable = false;
  std::vector<double> window_throughputs;  // infer/s of each window, in order
  bool server_stats = false;               // the server-side averages below are present
  double server_queue_us = 0;
  double server_compute_us = 0;
  std::string first_error;  // kind and message of the first failure seen, for the log
};

// Fills the counts, throughputs and latency summary of `point` from the merged `tally`.
void FillPoint(Tally tally, PointResult* point);

}  // namespace slipway::app::bench
