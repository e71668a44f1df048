// RoutingAdmin: what frontends and the `slipway models` CLI may ask of the routing layer: resolve
// a label, read and change labels and traffic, run a rollout, promote, roll back, read history.
//
// Implemented by routing::Router; declared here so frontends depend on serving/ only.
// Thread safety: every call is safe from any thread. Changes block while a version they need is
// loaded and while the deployment record is written.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "slipway/core/status.h"

namespace slipway::serving {

struct VersionTrafficView {
  int64_t version = 0;
  uint64_t requests = 0;
  uint64_t errors = 0;   // server-side failures
  double p99_ms = 0;     // over the most recent requests
};

struct ShadowView {
  int64_t primary = 0;
  int64_t shadow = 0;
  uint64_t comparisons = 0;
  uint64_t agreements = 0;
  double primary_mean_ms = 0;
  double shadow_mean_ms = 0;
};

struct RolloutView {
  std::string state;  // "idle", "running", "completed", "rolled_back"
  int64_t candidate = 0;
  int64_t stable = 0;
  int64_t step = 0;   // 0-based index of the current step while running
  int64_t steps = 0;
  int64_t weight_percent = 0;
  std::string reason;
};

struct RoutingView {
  std::string model;
  int64_t default_version = 0;  // where a request naming no version goes when there is no split
  std::vector<std::pair<std::string, int64_t>> labels;
  std::vector<std::pair<int64_t, int64_t>> split;  // version, weight
  int64_t shadow_version = 0;
  double shadow_fraction = 0;
  RolloutView rollout;
  std::vector<VersionTrafficView> versions;
  std::vector<ShadowView> comparisons;
};

struct TrafficChange {
  std::vector<std::pair<std::string, int64_t>> split;  // version number or label -> weight
  std::string shadow_target;                           // "" for none
  double shadow_fraction = 0;
};

struct DeploymentEventView {
  int64_t id = 0;
  int64_t time_ms = 0;
  std::string kind;
  int64_t version = 0;
  std::string reason;
  std::string details_json;
};

class RoutingAdmin {
 public:
  virtual ~RoutingAdmin() = default;
  // The version a label names now. NotFound for an unknown model or label.
  virtual core::Result<int64_t> ResolveLabel(const std::string& model,
                                             const std::string& label) const = 0;
  virtual core::Result<RoutingView> GetRouting(const std::string& model) const = 0;
  virtual core::Status SetLabel(const std::string& model, const std::string& label,
                                int64_t version) = 0;
  virtual core::Status DeleteLabel(const std::string& model, const std::string& label) = 0;
  virtual core::Status SetTraffic(const std::string& model, const TrafficChange& change) = 0;
  virtual core::Status ClearTraffic(const std::string& model) = 0;
  // Starts the model's rollout plan with `version` as the candidate.
  virtual core::Status StartRollout(const std::string& model, int64_t version) = 0;
  // Makes `version` (0: the running rollout's candidate) stable at once.
  virtual core::Status Promote(const std::string& model, int64_t version) = 0;
  // Sends all traffic back to the previous stable version (or, during a rollout, to stable).
  virtual core::Status Rollback(const std::string& model) = 0;
  virtual core::Result<std::vector<DeploymentEventView>> History(const std::string& model,
                                                                 size_t limit) const = 0;
};

}  // namespace slipway::serving
