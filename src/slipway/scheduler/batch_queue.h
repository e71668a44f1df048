// BatchQueue: the dynamic batcher's policy over its queue, with time passed in explicitly.
//
// Holds pending requests by priority level (1 is served first) and arrival order, refuses them
// when full, expires them at their deadlines, and decides when a free instance should take a
// batch and which requests form it: only requests with the same signature (the non-batch shape
// of every input and the outputs asked for) are merged, never past max_batch_size; a batch goes
// at once when it reaches max_batch_size or a preferred size, or when the oldest request has
// waited max_queue_delay. With batching off, every request is its own batch.
// Thread safety: none; DynamicBatcher guards it. Never blocks.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "slipway/core/infer_request.h"
#include "slipway/core/status.h"

namespace slipway::scheduler {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

struct BatchingConfig {
  bool enabled = false;                  // merge requests; off: one request per execution
  int64_t max_batch_size = 0;            // 0: the model has no batch dimension
  std::vector<int64_t> preferred_batch_sizes;
  int64_t max_queue_delay_us = 0;
  size_t queue_capacity = 1024;          // pending requests; more are refused at once
  int64_t default_timeout_us = 0;        // 0: none
  int64_t priority_levels = 1;
  int64_t default_priority = 1;
  bool preserve_ordering = false;        // answer in arrival order (DynamicBatcher)
};

// One request waiting for execution.
struct PendingRequest {
  core::InferRequest request;
  std::vector<size_t> input_order;        // request.inputs indices in the model's input order
  std::vector<std::string> output_names;
  int64_t batch = 1;                      // rows this request brings (1 without a batch dim)
  std::string signature;                  // requests merge only with equal signatures
  int64_t priority = 1;                   // 1..priority_levels
  TimePoint enqueued;
  TimePoint deadline = TimePoint::max();
  uint64_t sequence = 0;                  // arrival order
  core::InferCallback done;
};

// Builds the merge signature of a validated request.
std::string BatchSignature(const core::InferRequest& request,
                           const std::vector<size_t>& input_order,
                           const std::vector<std::string>& output_names, bool batching);

class BatchQueue {
 public:
  explicit BatchQueue(BatchingConfig config);

  // Queues a request (moving from `item` only on success), or refuses it: UNAVAILABLE when the
  // queue is full, INVALID_ARGUMENT for a bad `priority` or `timeout` request parameter.
  // Sets its priority from `priority` (1..levels, 0 = default) and its deadline from `timeout`
  // (microseconds) or the default timeout.
  core::Status Enqueue(PendingRequest& item, TimePoint now);

  // Removes and returns the requests whose deadline has passed.
  std::vector<PendingRequest> TakeExpired(TimePoint now);

  struct Decision {
    std::vector<PendingRequest> batch;       // non-empty: execute these now, in this order
    std::optional<TimePoint> wake_at;        // empty batch: decide again then (nullopt: on enqueue)
  };
  // What a free instance should do now. Expired requests must have been taken first.
  Decision Decide(TimePoint now);

  // Removes every pending request (for shutdown).
  std::vector<PendingRequest> TakeAll();

  size_t size() const { return size_; }
  // When the longest-waiting request arrived; nullopt when empty.
  std::optional<TimePoint> OldestArrival() const;
  // The earliest deadline of a waiting request; nullopt when none has one.
  std::optional<TimePoint> EarliestDeadline() const;
  const BatchingConfig& config() const { return config_; }

 private:
  bool IsPreferred(int64_t rows) const;

  BatchingConfig config_;
  std::vector<std::deque<PendingRequest>> levels_;  // index 0 = priority 1
  size_t size_ = 0;
  uint64_t next_sequence_ = 0;
};

}  // namespace slipway::scheduler
