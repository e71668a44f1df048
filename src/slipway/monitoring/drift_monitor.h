// DriftMonitor: the InferenceService link that watches what a model is asked and answers, and
// judges, window by window, whether that has drifted from a reference.
//
// Features are the elements of each numeric input (and output) row, named "<tensor>[<i>]", up to
// max_features_per_tensor per tensor. Continuous features are judged by the two-sample
// Kolmogorov-Smirnov test, categorical ones (integer or boolean tensors, or listed in the config)
// by the chi-squared test of homogeneity; both also by the population stability index. A window
// drifts when a feature's p-value is below p_value / features (Bonferroni, so a model raises a
// false alarm in about p_value of its windows) or its PSI exceeds the PSI bound.
//
// A model observes a uniform `sample` of its requests, and of those at most `max_rows_per_second`
// rows (bursts of a second's worth), so detection costs what that many rows cost however busy
// the model gets; the rows left out are counted by reason.
//
// The request path only copies the chosen values into bounded per-thread queues (dropped and
// counted when full), taking no lock another request thread holds and allocating nothing for
// rows of up to kInlineValues values; a worker thread drains them, fills windows, computes the
// tests and calls `on_drift` for drifting ones.
// Thread safety: all public methods are safe from any thread.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "slipway/core/snapshot.h"
#include "slipway/core/instance_id.h"
#include "slipway/monitoring/row_budget.h"
#include "slipway/serving/drift_source.h"
#include "slipway/serving/forwarding_service.h"
#include "slipway/serving/inference_service.h"

namespace slipway::monitoring {

class DriftMonitor : public serving::ForwardingService, public serving::DriftSource {
 public:
  struct Options {
    serving::InferenceService* inner = nullptr;  // not owned
    // Observations waiting in one sending thread's queue beyond this are dropped.
    size_t max_queue = 10000;
    // Called on the worker thread for every drifting window.
    std::function<void(const serving::DriftReport&, const core::ModelConfig&)> on_drift;
  };
  static core::Result<std::unique_ptr<DriftMonitor>> Create(Options options);
  ~DriftMonitor() override;

  uint64_t dropped() const { return dropped_.load(); }
  // Stops the worker (observations are no longer judged); idempotent. The destructor calls it.
  void Stop();

  // DriftSource
  core::Result<serving::DriftReport> Drift(const std::string& model) const override;
  std::vector<std::string> DriftModels() const override;

  // InferenceService (the rest passes through)
  void Infer(core::InferRequest request, core::InferCallback done) override;

  struct Feature {
    std::string name;
    std::string tensor;
    bool output = false;
    size_t element = 0;
    bool categorical = false;
    bool operator==(const Feature&) const = default;
  };

 private:
  // The features of one tensor: where each one's value sits in a row of that tensor.
  struct TensorFeatures {
    std::string tensor;
    bool output = false;
    int64_t per_row = -1;  // elements per batch row; -1 when the config leaves a dimension open
    std::vector<std::pair<size_t, size_t>> members;  // (feature index, element in the row)
  };
  static constexpr size_t kShards = 8;  // per-thread queues and counters
  // Rows a model's requests carried that drift detection left out, per sending thread's shard
  // (so threads do not share a counter), for as long as the monitor lives.
  struct alignas(64) SkippedShard {
    std::atomic<uint64_t> by_sample{0};  // not in the random sample
    std::atomic<uint64_t> by_rate{0};    // over max_rows_per_second
  };
  using Skipped = std::array<SkippedShard, kShards>;
  // What to observe of a model's requests. A plan lives as long as the monitor (so requests in
  // flight hold a plain pointer, not a shared count every thread would write); a new one is made
  // only when the model's monitoring settings or tensors change.
  struct Plan {
    std::string model;
    bool enabled = false;
    core::ModelConfig config;
    std::vector<Feature> features;
    std::vector<TensorFeatures> tensors;  // the features grouped by tensor, in feature order
    // When the model's config was last checked against this plan (steady clock, ns).
    mutable std::atomic<int64_t> checked_ns{0};
    std::unique_ptr<RowBudget> budget;  // max_rows_per_second (enabled plans only)
    Skipped* skipped = nullptr;         // the model's, kept in skipped_ (enabled plans only)
  };
  // One observation waiting for the worker; its rows x features values (row-major) follow those
  // of the observations before it in the queue's `values`.
  struct Pending {
    const Plan* plan = nullptr;
    int64_t version = 0;
    size_t rows = 0;
  };
  // A queue per sending thread (threads share one only when there are more than kShards).
  struct alignas(64) Shard {
    std::mutex mu;
    std::vector<Pending> items;   // guarded by mu
    std::vector<double> values;   // guarded by mu
  };
  // A request's values travel with it inline up to this many (rows x features), on the heap beyond.
  static constexpr size_t kInlineValues = 64;
  class Values {
   public:
    Values(size_t n, double fill) : n_(n) {
      if (n > kInlineValues) {
        heap_.assign(n, fill);
      } else {
        std::fill_n(inline_, n, fill);
      }
    }
    double* data() { return n_ > kInlineValues ? heap_.data() : inline_; }

   private:
    size_t n_;
    double inline_[kInlineValues];
    std::vector<double> heap_;
  };
  // Reads the features of `tensors` (the request's inputs, or the answer's outputs) of `rows`
  // rows into `values` (rows x features, row-major).
  static void Observe(const Plan& plan, bool outputs, const std::vector<core::Tensor>& tensors,
                      size_t rows, double* values);
  // A borrowed input tensor's bytes, read when the answer comes (kInvalid: the tensor is absent).
  struct TensorView {
    std::string_view bytes;
    core::DataType type = core::DataType::kInvalid;
  };
  using InputViews = std::array<TensorView, 4>;  // per input tensor with features, in plan order
  // Views of the inputs with features; false if one is owned or there are too many.
  static bool BorrowedInputs(const Plan& plan, const std::vector<core::Tensor>& tensors,
                             InputViews& views);
  static void ObserveViews(const Plan& plan, const InputViews& views, size_t rows, double* values);
  static bool SamePlan(const Plan& a, const Plan& b);
  // Queues an observation of `rows` rows; fill(values) writes its values (NaN-filled before).
  template <typename Fill>
  void Push(const Plan& plan, int64_t version, size_t rows, Fill&& fill);
  struct State;  // per model, worker thread only (and mu_ for the report)

  explicit DriftMonitor(Options options);  // in the .cc, where State is complete
  const Plan* PlanFor(const std::string& model);
  static size_t ThreadShard();     // the calling thread's queue and counters
  static int64_t CoarseNowNs();    // steady, to a few ms
  void WorkerLoop();
  // The state of `plan`'s model, made (or remade when its features changed) as needed; null
  // when the plan is switched off. Worker thread only.
  State* StateFor(const Plan& plan);
  void Process(const Pending& obs, const Plan& current, State& state, const double* values);
  void Judge(const std::string& model, State& state);
  core::Status LoadReference(const std::string& model, State& state);

  Options options_;
  // Tells this object's entries in per-thread caches from those of one that lived at the same
  // address before.
  const uint64_t instance_ = core::NextInstanceId();
  mutable std::mutex plans_mu_;  // serialises refreshes of plans_ and kept_; guards skipped_
  core::Snapshot<std::map<std::string, const Plan*>> plans_;  // the current plans, read lock-free
  std::vector<std::unique_ptr<Plan>> kept_;  // every plan made (guarded by plans_mu_)
  std::map<std::string, std::unique_ptr<Skipped>> skipped_;  // per model (guarded by plans_mu_)
  Shard shards_[kShards];
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::atomic<bool> wake_{false};  // a queue has gathered a batch for the worker
  bool stopping_ = false;          // guarded by queue_mu_
  std::atomic<uint64_t> dropped_{0};
  std::map<std::string, std::unique_ptr<State>> states_;  // worker thread only
  mutable std::mutex reports_mu_;
  std::map<std::string, serving::DriftReport> reports_;  // guarded by reports_mu_
  std::thread worker_;
};

// The features of a model for drift detection (exposed for tests).
std::vector<DriftMonitor::Feature> DriftFeatures(const core::ModelConfig& config);

}  // namespace slipway::monitoring
