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

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "slipway/core/prediction.h"
#include "slipway/core/snapshot.h"
#include "slipway/core/instance_id.h"
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
  // A remembered answer. Its id (up to kInlineId characters: a UUID, or the ids this link makes)
  // and its first row's prediction are kept in the slot itself, so remembering a typical answer
  // allocates nothing, even while the ring is first filled, and touches one piece of memory.
  struct Tracked {
    static constexpr size_t kInlineId = 47;
    bool used = false;                  // false: the slot is free
    uint32_t id_size = 0;
    char id_inline[kInlineId] = {};
    std::string id_long;                // a longer id
    std::string model;
    int64_t version = 0;
    size_t rows = 0;
    core::Prediction first;             // row 0
    std::vector<core::Prediction> more;  // rows 1.. of a batch

    std::string_view id() const {
      return id_size <= kInlineId ? std::string_view(id_inline, id_size) : std::string_view(id_long);
    }
    void SetId(std::string_view id) {
      id_size = static_cast<uint32_t>(id.size());
      if (id.size() <= kInlineId) {
        std::copy(id.begin(), id.end(), id_inline);
      } else {
        id_long.assign(id);
      }
    }
    const core::Prediction& Row(size_t r) const { return r == 0 ? first : more[r - 1]; }
    void AddRow(const core::Prediction& p) {
      if (rows == 0) {
        first = p;
      } else {
        more.push_back(p);
      }
      ++rows;
    }
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
  // Records what `output` predicts for each of its rows under `id`, overwriting the oldest entry
  // once max_tracked are kept. Reuses the slot's storage: no allocation per answer once warm.
  void Remember(const std::string& id, const std::string& model, int64_t version,
                const core::Tensor& output);
  // The slot holding `id`, or nullptr; and taking an entry out of the index. Callers hold mu_.
  Tracked* FindLocked(std::string_view id);
  void UnindexLocked(uint64_t key, size_t slot);

  Options options_;
  // Tells this object's entries in per-thread caches from those of one that lived at the same
  // address before.
  const uint64_t instance_ = core::NextInstanceId();
  std::mutex settings_mu_;  // serialises refreshes of settings_
  core::Snapshot<std::map<std::string, Settings>> settings_;  // read without a lock
  mutable std::mutex mu_;
  // The remembered answers, a ring in arrival order (the oldest is overwritten first), and an
  // open-addressing index (linear probing, twice the ring's size) from the hash of an answer's
  // id to its slot; an entry keeps the id itself, so a hash collision is told apart. All
  // guarded by mu_ and sized on first use.
  struct IndexEntry {
    uint64_t key = 0;
    uint32_t slot = 0;
    bool used = false;
  };
  std::vector<Tracked> ring_;
  std::vector<uint64_t> ring_keys_;  // the index key of each slot's entry
  size_t next_ = 0;                  // the slot the next answer takes
  std::vector<IndexEntry> index_;
  std::map<std::pair<std::string, int64_t>, Outcomes> outcomes_;  // guarded by mu_
};

}  // namespace slipway::monitoring
