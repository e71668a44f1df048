// DriftSource: the latest drift judgement of a model, for GET /v2/models/<m>/drift and metrics.
// Implemented by monitoring::DriftMonitor; declared here so frontends depend on serving/ only.
// Thread safety: safe from any thread; never blocks on inference.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "slipway/core/status.h"

namespace slipway::serving {

struct FeatureDrift {
  std::string name;     // "<tensor>[<element>]"
  bool output = false;  // prediction drift
  std::string test;     // "ks" or "chi2"
  double statistic = 0;
  double p_value = 1;
  double psi = 0;
  bool drift = false;
};

struct DriftReport {
  std::string model;
  int64_t version = 0;         // the version most of the window's rows came from
  uint64_t reference_rows = 0;
  bool reference_ready = false;
  uint64_t window_rows = 0;    // rows in the window being filled now
  uint64_t rows_skipped_by_sample = 0;  // rows left out of the random sample (drift `sample`)
  uint64_t rows_skipped_by_rate = 0;    // rows left out over max_rows_per_second
  uint64_t windows = 0;        // windows judged so far
  uint64_t drifting_windows = 0;
  bool drifting = false;       // the last judged window drifted
  int64_t judged_at_ms = 0;    // unix ms of the last judgement; 0 before the first
  std::vector<FeatureDrift> features;  // of the last judged window
};

class DriftSource {
 public:
  virtual ~DriftSource() = default;
  // NotFound for a model without drift detection.
  virtual core::Result<DriftReport> Drift(const std::string& model) const = 0;
  virtual std::vector<std::string> DriftModels() const = 0;
};

}  // namespace slipway::serving
