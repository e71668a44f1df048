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
// The request path only copies the chosen values into a bounded queue (dropped and counted when
// full); a worker thread fills windows, computes the tests and calls `on_drift` for drifting ones.
// Thread safety: all public methods are safe from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "slipway/core/snapshot.h"
#include "slipway/core/instance_id.h"
#include "slipway/serving/drift_source.h"
#include "slipway/serving/forwarding_service.h"
#include "slipway/serving/inference_service.h"

namespace slipway::monitoring {

class DriftMonitor : public serving::ForwardingService, public serving::DriftSource {
 public:
  struct Options {
    serving::InferenceService* inner = nullptr;  // not owned
    size_t max_queue = 10000;                    // observations waiting beyond this are dropped
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
  };

 private:
  // The features of one tensor: where each one's value sits in a row of that tensor.
  struct TensorFeatures {
    std::string tensor;
    bool output = false;
    int64_t per_row = -1;  // elements per batch row; -1 when the config leaves a dimension open
    std::vector<std::pair<size_t, size_t>> members;  // (feature index, element in the row)
  };
  struct Plan {
    bool enabled = false;
    core::ModelConfig config;
    std::vector<Feature> features;
    std::vector<TensorFeatures> tensors;  // the features grouped by tensor, in feature order
    std::chrono::steady_clock::time_point fetched;
  };
  struct Observation {
    std::string model;
    int64_t version = 0;
    size_t rows = 0;
    std::vector<double> values;  // rows x features, row-major
  };
  // Reads the features of `tensors` (the request's inputs, or the answer's outputs) into obs.
  static void Observe(const Plan& plan, bool outputs, const std::vector<core::Tensor>& tensors,
                      Observation& obs);
  struct State;  // per model, worker thread only (and mu_ for the report)

  explicit DriftMonitor(Options options);  // in the .cc, where State is complete
  std::shared_ptr<const Plan> PlanFor(const std::string& model);
  void WorkerLoop();
  void Process(Observation obs);
  void Judge(const std::string& model, State& state);
  core::Status LoadReference(const std::string& model, State& state);

  Options options_;
  // Tells this object's entries in per-thread caches from those of one that lived at the same
  // address before.
  const uint64_t instance_ = core::NextInstanceId();
  std::mutex plans_mu_;  // serialises refreshes of plans_
  core::Snapshot<std::map<std::string, std::shared_ptr<const Plan>>> plans_;  // read lock-free
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Observation> queue_;  // guarded by queue_mu_
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
