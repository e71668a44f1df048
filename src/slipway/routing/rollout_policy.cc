#include "slipway/routing/rollout_policy.h"

#include <fmt/format.h>

namespace slipway::routing {

const char* RolloutActionName(RolloutAction action) {
  switch (action) {
    case RolloutAction::kHold: return "hold";
    case RolloutAction::kAdvance: return "advance";
    case RolloutAction::kComplete: return "complete";
    case RolloutAction::kRollback: return "rollback";
  }
  return "unknown";
}

RolloutDecision DecideRollout(const core::RolloutConfig& plan, const RolloutObservation& seen) {
  if (plan.steps.empty() || seen.step >= plan.steps.size()) {
    return {RolloutAction::kRollback, "the rollout plan has no such step"};
  }
  const core::RolloutGuards& g = plan.guards;
  const core::RolloutStep& step = plan.steps[seen.step];
  const VersionObservation& c = seen.candidate;
  if (c.requests >= std::max<int64_t>(1, g.min_requests)) {
    const double error_rate = static_cast<double>(c.errors) / static_cast<double>(c.requests);
    if (error_rate > g.max_error_rate) {
      return {RolloutAction::kRollback,
              fmt::format("error rate {:.4f} over {} requests exceeds max_error_rate {:.4f}",
                          error_rate, c.requests, g.max_error_rate)};
    }
    if (c.p99_ms > 0 && seen.stable.p99_ms > 0) {
      const double limit = g.max_p99_ratio * seen.stable.p99_ms + g.p99_slack_ms;
      if (c.p99_ms > limit) {
        return {RolloutAction::kRollback,
                fmt::format("p99 {:.3f} ms exceeds {:.2f} x stable's {:.3f} ms + {:.1f} ms slack",
                            c.p99_ms, g.max_p99_ratio, seen.stable.p99_ms, g.p99_slack_ms)};
      }
    }
  }
  if (seen.comparisons >= std::max<int64_t>(1, g.min_comparisons)) {
    const double agreement =
        static_cast<double>(seen.agreements) / static_cast<double>(seen.comparisons);
    if (agreement < g.min_agreement) {
      return {RolloutAction::kRollback,
              fmt::format("agreement with stable {:.4f} over {} comparisons is below "
                          "min_agreement {:.4f}",
                          agreement, seen.comparisons, g.min_agreement)};
    }
  }
  if (g.min_accuracy > 0 && seen.accuracy && *seen.accuracy < g.min_accuracy) {
    return {RolloutAction::kRollback, fmt::format("live accuracy {:.4f} is below min_accuracy {:.4f}",
                                                  *seen.accuracy, g.min_accuracy)};
  }
  const bool served = c.requests >= std::max(step.min_requests, g.min_requests);
  const bool waited = seen.seconds_in_step >= step.min_seconds;
  // Agreement must have been judged when the plan compares answers at all.
  const bool compared = plan.compare_fraction <= 0 || seen.comparisons >= g.min_comparisons;
  if (!served || !waited || !compared) {
    return {RolloutAction::kHold,
            fmt::format("step {} of {} at {}%: {} of {} requests, {:.0f} of {:.0f} s, {} of {} "
                        "comparisons",
                        seen.step + 1, plan.steps.size(), step.weight_percent, c.requests,
                        std::max(step.min_requests, g.min_requests), seen.seconds_in_step,
                        step.min_seconds, seen.comparisons,
                        plan.compare_fraction > 0 ? g.min_comparisons : 0)};
  }
  const std::string summary = fmt::format(
      "{} requests, {} errors, p99 {:.3f} ms (stable {:.3f} ms), {} of {} answers agreed",
      c.requests, c.errors, c.p99_ms, seen.stable.p99_ms, seen.agreements, seen.comparisons);
  if (seen.step + 1 == plan.steps.size()) {
    return {RolloutAction::kComplete, "all steps passed: " + summary};
  }
  return {RolloutAction::kAdvance,
          fmt::format("step {} at {}% passed: {}", seen.step + 1, step.weight_percent, summary)};
}

}  // namespace slipway::routing
