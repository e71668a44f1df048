#include "slipway/scheduler/model_stats.h"

#include <chrono>

namespace slipway::scheduler {

void ModelStats::RecordExecution(uint64_t rows, uint64_t input_ns, uint64_t infer_ns,
                                 uint64_t output_ns, uint64_t requests) {
  const auto now_ms = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count());
  std::lock_guard<std::mutex> lock(mu_);
  s_.last_inference_ms = now_ms;
  s_.inference_count += rows;
  s_.execution_count += 1;
  // Per-request compute durations: each request of the batch is charged the batch's time.
  s_.compute_input.Add(input_ns, requests);
  s_.compute_infer.Add(infer_ns, requests);
  s_.compute_output.Add(output_ns, requests);
  BatchStats& b = s_.batches[rows];
  b.compute_input.Add(input_ns);
  b.compute_infer.Add(infer_ns);
  b.compute_output.Add(output_ns);
}

void ModelStats::RecordRequest(bool ok, uint64_t total_ns, uint64_t queue_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  (ok ? s_.success : s_.fail).Add(total_ns);
  if (ok) s_.queue.Add(queue_ns);
}

StatsSnapshot ModelStats::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return s_;
}

}  // namespace slipway::scheduler
