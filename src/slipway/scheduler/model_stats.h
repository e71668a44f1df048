// ModelStats: counters and durations of one model version, in the shape of the KServe/Triton
// statistics extension (inference vs execution counts; queue, compute input/infer/output time;
// per batch size).
// Thread safety: all methods are safe from any thread (one mutex; updates are short).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>

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
  std::map<uint64_t, BatchStats> batches;  // by batch size (rows)
};

class ModelStats {
 public:
  // One execution of `requests` requests with `rows` rows in all.
  void RecordExecution(uint64_t rows, uint64_t input_ns, uint64_t infer_ns, uint64_t output_ns,
                       uint64_t requests);
  // One request's outcome: `total_ns` from arrival to answer, `queue_ns` of it spent waiting.
  void RecordRequest(bool ok, uint64_t total_ns, uint64_t queue_ns);
  StatsSnapshot Snapshot() const;

 private:
  mutable std::mutex mu_;
  StatsSnapshot s_;  // guarded by mu_
};

}  // namespace slipway::scheduler
