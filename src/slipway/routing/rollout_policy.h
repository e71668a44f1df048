// Rollout policy: the next step of a canary rollout, as a pure function of the plan and what was
// observed, so every promotion and rollback rule is unit-tested without threads or sockets.
//
// While a step holds, the guards are judged as soon as the candidate has served
// `guards.min_requests` in it: a breach rolls back at once. A step ends when the candidate has
// served its `min_requests` and `min_seconds` passed with the guards holding; after the last step
// the candidate becomes stable.
// Thread safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "slipway/core/model_config.h"

namespace slipway::routing {

// What one version did during the current step.
struct VersionObservation {
  int64_t requests = 0;
  int64_t errors = 0;     // server-side failures
  double p99_ms = 0;      // 0 when unknown
};

struct RolloutObservation {
  size_t step = 0;               // index into plan.steps
  double seconds_in_step = 0;
  VersionObservation candidate;
  VersionObservation stable;
  int64_t comparisons = 0;       // candidate answers compared with stable's, this step
  int64_t agreements = 0;
  std::optional<double> accuracy;  // candidate's live accuracy, when ground truth is fed back
};

enum class RolloutAction { kHold, kAdvance, kComplete, kRollback };
const char* RolloutActionName(RolloutAction action);

struct RolloutDecision {
  RolloutAction action = RolloutAction::kHold;
  std::string reason;
};

RolloutDecision DecideRollout(const core::RolloutConfig& plan, const RolloutObservation& seen);

}  // namespace slipway::routing
