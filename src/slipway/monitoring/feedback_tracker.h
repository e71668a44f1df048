// FeedbackTracker: the InferenceService link that gives every answer an id (the caller's, or a
// generated one), remembers what the answer predicted for models that collect feedback, and turns
// ground truth fed back later into live accuracy (classification) or mean absolute error
// (regression) per version over a window.
//
// Predictions are kept for the most recent `max_tracked` answers across all models; older ones
// expire (their feedback is reported as unknown). Which models collect feedback is read from
// their config (`monitoring: {feedback: ...}`) at most once a second per model.
// Thread safety: all methods are safe from any thread. Infer adds one short critical section to
// an answer's callback when the model collects feedback, and none otherwise.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "slipway/core/prediction.h"
#include "slipway/core/snapshot.h"
#include "slipway/monitoring/instance_id.h"
#include "slipway/serving/forwarding_service.h"
#include "slipway/serving/ground_truth.h"
#include "slipway/serving/inference_service.h"

namespace slipway::monitoring {

class FeedbackTracker : public serving::ForwardingService, public serving::GroundTruth {
 public:
  struct Options {
    serving::InferenceService* inner = nullptr;  // not owned
    size_t max_tracked = 100000;                 // answers remembered for feedback
    // Called (outside any lock) when a version's full window falls below the config's
    // monitoring.feedback.min_accuracy, once per fall.
    std::function<void(const std::string& model, int64_t version, double accuracy)> on_low_accuracy;
  };
  static core::Result<std::unique_ptr<FeedbackTracker>> Create(Options options);

  // InferenceService (the rest passes through)
  void Infer(core::InferRequest request, core::InferCallback done) override;

  // GroundTruth
  core::Result<serving::FeedbackResult> Feedback(
      const std::string& model, const std::vector<serving::FeedbackItem>& items) override;
  core::Result<std::vector<serving::VersionAccuracy>> Accuracy(
      const std::string& model) const override;
  std::optional<double> WindowAccuracy(const std::string& model, int64_t version,
                                       uint64_t min_rows) const override;

 private:
  struct Settings {
    bool enabled = false;
    std::string output;
    size_t window = 1000;
    double min_accuracy = 0;
    std::chrono::steady_clock::time_point fetched;
  };
  struct Tracked {
    std::string id;
    std::string model;
    int64_t version = 0;
    std::vector<core::Prediction> predictions;  // one per batch row
  };
  struct Outcomes {
    uint64_t total = 0;
    std::deque<double> window;  // 1/0 for classification, |error| for regression
    bool classification = true;
    bool below = false;  // the window is full and under min_accuracy
  };

  explicit FeedbackTracker(Options options)
      : ForwardingService(options.inner), options_(options) {}
  Settings SettingsFor(const std::string& model);
  void Remember(std::string id, Tracked tracked);

  Options options_;
  // Tells this object's entries in per-thread caches from those of one that lived at the same
  // address before.
  const uint64_t instance_ = NextInstanceId();
  std::mutex settings_mu_;  // serialises refreshes of settings_
  core::Snapshot<std::map<std::string, Settings>> settings_;  // read without a lock
  mutable std::mutex mu_;
  // By the hash of the answer's id (the entry keeps the id itself); guarded by mu_.
  std::unordered_map<uint64_t, Tracked> tracked_;
  std::deque<uint64_t> order_;  // arrival order, for expiry; guarded by mu_
  std::map<std::pair<std::string, int64_t>, Outcomes> outcomes_;  // guarded by mu_
};

}  // namespace slipway::monitoring
