// DynamicBatcher: a model version's request queue, batcher and instances.
//
// Instances are taken by whoever runs a batch: the submitting thread itself when every instance
// is idle and a batch is due at once (no hand-off at low load), otherwise one of the worker
// threads (one per instance), which also serve delays and deadlines. The runner asks the BatchQueue for the batch, merges
// the requests' inputs along dimension 0 (no copy for a batch of one), runs the instance, splits
// the outputs back by rows and answers each request. Requests past their deadline are answered
// DEADLINE_EXCEEDED, requests whose caller has gone are dropped with CANCELLED, a full queue
// answers UNAVAILABLE at once, and with preserve_ordering answers leave in arrival order.
// Thread safety: Submit and Stats are safe from any thread. Submit may run one batch on the
// calling thread when the model is idle; it never waits for a busy instance.
// The destructor answers still-queued requests UNAVAILABLE and stops the workers; it may run on
// a worker thread (the last handle to a version can be released inside an answer callback).
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "slipway/backend/backend.h"
#include "slipway/scheduler/autoscale_policy.h"
#include "slipway/scheduler/batch_queue.h"
#include "slipway/scheduler/model_stats.h"

namespace slipway::scheduler {

class DynamicBatcher {
 public:
  struct Options {
    backend::Model* model = nullptr;  // creates the instances; not owned
    std::string model_name;           // for messages
    int instance_count = 1;            // instances at start (the minimum when autoscaling)
    BatchingConfig batching;
    // Autoscaling runs when autoscale.max_instances > instance_count: every `scale_window_ms`
    // the policy may add or remove one instance (logged, and visible in instance_count()).
    AutoscaleSettings autoscale;
    int scale_window_ms = 250;
  };
  static core::Result<std::unique_ptr<DynamicBatcher>> Create(const Options& options);
  ~DynamicBatcher();
  DynamicBatcher(const DynamicBatcher&) = delete;
  DynamicBatcher& operator=(const DynamicBatcher&) = delete;

  // Queues a validated request. `item.done` is called exactly once: with the outputs (owned
  // tensors, in `item.output_names` order) or an error; possibly before Submit returns.
  void Submit(PendingRequest item);

  // Runs `runs` executions of `inputs` on every instance, outside the statistics. For warm-up
  // before the version is published: must not overlap with Submit.
  core::Status WarmUp(const std::vector<const core::Tensor*>& inputs,
                      const std::vector<std::string>& output_names, int64_t runs);

  StatsSnapshot Stats() const;
  int instance_count() const;

  struct State;  // shared with the worker threads

 private:
  DynamicBatcher() = default;
  std::shared_ptr<State> state_;
  std::vector<std::thread> workers_;
  std::thread scaler_;
};

// Merges the inputs of `batch` along dimension 0 (exposed for tests). `storage` receives the
// merged tensors; the returned pointers point into it or, for a batch of one, into the request.
std::vector<const core::Tensor*> MergeInputs(const std::vector<PendingRequest>& batch,
                                             std::vector<core::Tensor>& storage);
// Splits one output of a merged execution into per-request tensors of `rows[i]` rows each.
core::Result<std::vector<core::Tensor>> SplitOutput(const core::Tensor& output,
                                                    const std::vector<int64_t>& rows);

}  // namespace slipway::scheduler
