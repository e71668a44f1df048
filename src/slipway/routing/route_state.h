// RouteState: one model's labels, traffic split, shadow and rollout, as the router publishes it,
// and TrafficMeter, the per-version counters the canary analysis and the routing view read.
//
// RouteState is an immutable value once published (swapped whole behind the router's atomic
// pointer); it converts to and from the JSON kept in the deployment store so it survives a
// restart. TrafficMeter is shared by every snapshot of one model and is safe from any thread
// (one short mutex per record).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "slipway/core/status.h"
#include "slipway/routing/traffic_policy.h"

namespace slipway::routing {

struct VersionCounters {
  uint64_t requests = 0;
  uint64_t errors = 0;
};

struct CompareCounters {
  uint64_t comparisons = 0;
  uint64_t agreements = 0;
  double primary_ms_sum = 0;
  double shadow_ms_sum = 0;
};

class TrafficMeter {
 public:
  void RecordRequest(int64_t version, bool server_error, double latency_ms);
  void RecordComparison(int64_t primary, int64_t shadow, bool agree, double primary_ms,
                        double shadow_ms);
  VersionCounters Counters(int64_t version) const;
  CompareCounters Comparison(int64_t primary, int64_t shadow) const;
  // p99 over the most recent (up to kWindow) requests of a version; 0 without any.
  double P99Ms(int64_t version) const;
  std::map<int64_t, VersionCounters> AllCounters() const;
  std::map<std::pair<int64_t, int64_t>, CompareCounters> AllComparisons() const;

  static constexpr size_t kWindow = 1024;

 private:
  struct Latencies {
    std::array<float, kWindow> ms{};
    size_t next = 0;
    size_t filled = 0;
  };
  mutable std::mutex mu_;
  std::map<int64_t, VersionCounters> counters_;
  std::map<int64_t, Latencies> latencies_;
  std::map<std::pair<int64_t, int64_t>, CompareCounters> comparisons_;
};

struct RolloutRun {
  std::string state = "idle";  // idle, running, completed, rolled_back
  int64_t candidate = 0;
  int64_t stable = 0;
  size_t step = 0;
  int64_t step_started_ms = 0;  // unix ms
  // Counters when the step began, so a step judges only its own traffic.
  VersionCounters step_base;
  CompareCounters compare_base;
  double compare_fraction = 0;  // the plan's share of candidate requests also sent to stable
  std::string reason;
};

struct RouteState {
  std::map<std::string, int64_t> labels;
  std::vector<WeightedVersion> split;  // normalised: newest first, weights > 0
  int64_t shadow_version = 0;
  double shadow_fraction = 0;
  RolloutRun rollout;
  std::set<int64_t> rejected;  // candidates rolled back; never started again on their own
  std::string config_digest;   // the config routing section last applied
  std::shared_ptr<TrafficMeter> meter = std::make_shared<TrafficMeter>();

  // Versions this state needs loaded.
  std::vector<int64_t> Pinned() const;
};

std::string RouteStateToJson(const RouteState& state);
core::Result<RouteState> RouteStateFromJson(const std::string& json);

}  // namespace slipway::routing
