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
  s_.compute_input_seconds.Add(kLatencyBoundsSeconds, static_cast<double>(input_ns) * 1e-9);
  s_.compute_infer_seconds.Add(kLatencyBoundsSeconds, static_cast<double>(infer_ns) * 1e-9);
  s_.compute_output_seconds.Add(kLatencyBoundsSeconds, static_cast<double>(output_ns) * 1e-9);
  s_.batch_size.Add(kBatchSizeBounds, static_cast<double>(rows));
  BatchStats& b = s_.batches[rows];
  b.compute_input.Add(input_ns);
  b.compute_infer.Add(infer_ns);
  b.compute_output.Add(output_ns);
}

const char* FailureReasonName(FailureReason reason) {
  switch (reason) {
    case FailureReason::kRejected: return "REJECTED";
    case FailureReason::kCanceled: return "CANCELED";
    case FailureReason::kBackend: return "BACKEND";
    case FailureReason::kOther: return "OTHER";
  }
  return "OTHER";
}

FailureReason FailureReasonFor(core::StatusCode code) {
  switch (code) {
    case core::StatusCode::kUnavailable:
    case core::StatusCode::kDeadlineExceeded:
    case core::StatusCode::kResourceExhausted: return FailureReason::kRejected;
    case core::StatusCode::kCancelled: return FailureReason::kCanceled;
    case core::StatusCode::kInternal: return FailureReason::kBackend;
    default: return FailureReason::kOther;
  }
}

void ModelStats::RecordRequest(core::StatusCode code, uint64_t total_ns, uint64_t queue_ns) {
  const bool ok = code == core::StatusCode::kOk;
  std::lock_guard<std::mutex> lock(mu_);
  (ok ? s_.success : s_.fail).Add(total_ns);
  if (ok) {
    s_.queue.Add(queue_ns);
    s_.request_seconds.Add(kLatencyBoundsSeconds, static_cast<double>(total_ns) * 1e-9);
    s_.queue_seconds.Add(kLatencyBoundsSeconds, static_cast<double>(queue_ns) * 1e-9);
  } else {
    ++s_.failures[static_cast<size_t>(FailureReasonFor(code))];
  }
}

void ModelStats::RecordRefused(core::StatusCode code) {
  std::lock_guard<std::mutex> lock(mu_);
  s_.fail.Add(0);
  ++s_.failures[static_cast<size_t>(FailureReasonFor(code))];
}

StatsSnapshot ModelStats::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return s_;
}

}  // namespace slipway::scheduler
