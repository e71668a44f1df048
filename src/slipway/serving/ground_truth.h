// GroundTruth: ground truth fed back for answers already given, and the live accuracy (or error)
// it yields per model version. Implemented by monitoring::FeedbackTracker; declared here so
// frontends and the router depend on serving/ only.
// Thread safety: every call is safe from any thread and does not block on inference.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "slipway/core/status.h"

namespace slipway::serving {

struct FeedbackItem {
  std::string id;               // the id of an earlier response
  std::vector<double> truth;    // one value per batch row of that request
};

struct FeedbackResult {
  uint64_t applied = 0;
  std::vector<std::string> unknown_ids;  // never seen, expired, or of another model
};

struct VersionAccuracy {
  int64_t version = 0;
  uint64_t feedback = 0;               // rows judged in total
  uint64_t window = 0;                 // rows in the current window
  std::optional<double> accuracy;      // classification: share of the window correct
  std::optional<double> mean_abs_error;  // regression: over the window
};

class GroundTruth {
 public:
  virtual ~GroundTruth() = default;
  // Applies feedback; NotFound when the model does not collect feedback.
  virtual core::Result<FeedbackResult> Feedback(const std::string& model,
                                                const std::vector<FeedbackItem>& items) = 0;
  virtual core::Result<std::vector<VersionAccuracy>> Accuracy(const std::string& model) const = 0;
  // Window accuracy of one version once at least `min_rows` were judged; nullopt before.
  virtual std::optional<double> WindowAccuracy(const std::string& model, int64_t version,
                                               uint64_t min_rows) const = 0;
};

}  // namespace slipway::serving
