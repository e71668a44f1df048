// ModelStats: counters and durations of one model version, in the shape of the KServe/Triton
// statistics extension (inference vs execution counts; queue, compute input/infer/output time;
// per batch size).
// Thread safety: all methods are safe from any thread (one mutex; updates are short).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "slipway/core/status.h"

namespace slipway::scheduler {

struct Duration {
  uint64_t count = 0;
  uint64_t ns = 0;
  void Add(uint64_t n, uint64_t times = 1) {
    count += times;
    ns += n * times;
  }
};

struct BatchStats {
  Duration compute_input;
  Duration compute_infer;
  Duration compute_output;
};

// Why a request failed, in Triton's terms: REJECTED (queue full or timed out), CANCELED (the
// caller went away), BACKEND (the runtime failed), OTHER.
enum class FailureReason { kRejected = 0, kCanceled, kBackend, kOther };
constexpr size_t kFailureReasons = 4;
const char* FailureReasonName(FailureReason reason);
FailureReason FailureReasonFor(core::StatusCode code);

// Upper bounds of the latency histograms, in seconds (100 µs .. 10 s), and of the batch-size one.
inline constexpr std::array<double, 16> kLatencyBoundsSeconds = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,     10};
inline constexpr std::array<double, 10> kBatchSizeBounds = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};

// Per-bucket counts (not cumulative); the last bucket holds values above every bound.
struct Histogram {
  std::vector<uint64_t> counts;
  double sum = 0;
  template <size_t N>
  void Add(const std::array<double, N>& bounds, double value, uint64_t times = 1) {
    if (counts.empty()) counts.assign(N + 1, 0);
    size_t i = 0;
    while (i < N && value > bounds[i]) ++i;
    counts[i] += times;
    sum += value * static_cast<double>(times);
  }
};

struct StatsSnapshot {
  uint64_t last_inference_ms = 0;  // since the epoch
  uint64_t inference_count = 0;    // batch rows executed
  uint64_t execution_count = 0;    // model executions
  Duration success;
  Duration fail;
  Duration queue;
  Duration compute_input;
  Duration compute_infer;
  Duration compute_output;
  // Response cache lookups that answered / did not (filled by the cache, per model).
  Duration cache_hit;
  Duration cache_miss;
  std::map<uint64_t, BatchStats> batches;  // by batch size (rows)
  std::array<uint64_t, kFailureReasons> failures{};  // by FailureReason
  // Seconds; request and queue per request, compute per execution; batch size in rows.
  Histogram request_seconds;
  Histogram queue_seconds;
  Histogram compute_input_seconds;
  Histogram compute_infer_seconds;
  Histogram compute_output_seconds;
  Histogram batch_size;
  uint64_t pending = 0;    // queued, not yet started (filled by the batcher)
  uint64_t in_flight = 0;  // accepted and not yet answered (filled by the batcher)
};

class ModelStats {
 public:
  // One execution of `requests` requests with `rows` rows in all.
  void RecordExecution(uint64_t rows, uint64_t input_ns, uint64_t infer_ns, uint64_t output_ns,
                       uint64_t requests);
  // One request's outcome (`code` kOk on success): `total_ns` from arrival to answer,
  // `queue_ns` of it spent waiting.
  void RecordRequest(core::StatusCode code, uint64_t total_ns, uint64_t queue_ns);
  // A request refused before it was queued (queue full, bad scheduling parameters).
  void RecordRefused(core::StatusCode code);
  StatsSnapshot Snapshot() const;

 private:
  mutable std::mutex mu_;
  StatsSnapshot s_;  // guarded by mu_
};

}  // namespace slipway::scheduler
