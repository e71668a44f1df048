#include "slipway/routing/rollout_policy.h"

#include <gtest/gtest.h>

#include <string>

namespace slipway::routing {
namespace {

core::RolloutStep Step(int64_t weight_percent, int64_t min_requests, double min_seconds) {
  core::RolloutStep s;
  s.weight_percent = weight_percent;
  s.min_requests = min_requests;
  s.min_seconds = min_seconds;
  return s;
}

// Three steps of 100 requests and 60 s each; default guards (error rate 0.01, p99 1.5 x stable
// + 5 ms, agreement 0.95 over 20 comparisons, 20 requests before guards are judged).
core::RolloutConfig Plan() {
  core::RolloutConfig plan;
  plan.enabled = true;
  plan.steps = {Step(10, 100, 60), Step(50, 100, 60), Step(100, 100, 60)};
  plan.compare_fraction = 0.2;
  return plan;
}

// An observation that passes every rule of Plan() at `step`.
RolloutObservation Passing(size_t step = 0) {
  RolloutObservation seen;
  seen.step = step;
  seen.seconds_in_step = 60;
  seen.candidate.requests = 100;
  seen.candidate.errors = 0;
  seen.candidate.p99_ms = 10;
  seen.stable.requests = 900;
  seen.stable.p99_ms = 10;
  seen.comparisons = 20;
  seen.agreements = 20;
  return seen;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(RolloutPolicy, ActionNames) {
  EXPECT_STREQ(RolloutActionName(RolloutAction::kHold), "hold");
  EXPECT_STREQ(RolloutActionName(RolloutAction::kAdvance), "advance");
  EXPECT_STREQ(RolloutActionName(RolloutAction::kComplete), "complete");
  EXPECT_STREQ(RolloutActionName(RolloutAction::kRollback), "rollback");
}

TEST(RolloutPolicy, AdvancesAfterAPassingStep) {
  const RolloutDecision d = DecideRollout(Plan(), Passing(0));
  EXPECT_EQ(d.action, RolloutAction::kAdvance) << d.reason;
  EXPECT_TRUE(Contains(d.reason, "step 1 at 10% passed")) << d.reason;
  EXPECT_TRUE(Contains(d.reason, "100 requests")) << d.reason;
  EXPECT_TRUE(Contains(d.reason, "20 of 20 answers agreed")) << d.reason;

  const RolloutDecision d2 = DecideRollout(Plan(), Passing(1));
  EXPECT_EQ(d2.action, RolloutAction::kAdvance) << d2.reason;
  EXPECT_TRUE(Contains(d2.reason, "step 2 at 50% passed")) << d2.reason;
}

TEST(RolloutPolicy, CompletesAfterTheLastStep) {
  const RolloutDecision d = DecideRollout(Plan(), Passing(2));
  EXPECT_EQ(d.action, RolloutAction::kComplete) << d.reason;
  EXPECT_TRUE(Contains(d.reason, "all steps passed")) << d.reason;

  core::RolloutConfig one = Plan();
  one.steps = {Step(100, 10, 0)};
  EXPECT_EQ(DecideRollout(one, Passing(0)).action, RolloutAction::kComplete);
}

TEST(RolloutPolicy, HoldsBelowMinRequests) {
  RolloutObservation seen = Passing();
  seen.candidate.requests = 99;
  const RolloutDecision d = DecideRollout(Plan(), seen);
  EXPECT_EQ(d.action, RolloutAction::kHold) << d.reason;
  EXPECT_TRUE(Contains(d.reason, "99 of 100 requests")) << d.reason;
  EXPECT_TRUE(Contains(d.reason, "step 1 of 3 at 10%")) << d.reason;
}

TEST(RolloutPolicy, HoldsBelowGuardMinRequestsWhenTheStepAsksForFewer) {
  core::RolloutConfig plan = Plan();
  plan.steps = {Step(10, 0, 0), Step(100, 0, 0)};
  plan.guards.min_requests = 20;
  RolloutObservation seen = Passing();
  seen.candidate.requests = 19;
  const RolloutDecision d = DecideRollout(plan, seen);
  EXPECT_EQ(d.action, RolloutAction::kHold) << d.reason;
  EXPECT_TRUE(Contains(d.reason, "19 of 20 requests")) << d.reason;
  seen.candidate.requests = 20;
  EXPECT_EQ(DecideRollout(plan, seen).action, RolloutAction::kAdvance);
}

TEST(RolloutPolicy, HoldsBelowMinSeconds) {
  RolloutObservation seen = Passing();
  seen.seconds_in_step = 59;
  const RolloutDecision d = DecideRollout(Plan(), seen);
  EXPECT_EQ(d.action, RolloutAction::kHold) << d.reason;
  EXPECT_TRUE(Contains(d.reason, "59 of 60 s")) << d.reason;
  seen.seconds_in_step = 60;
  EXPECT_EQ(DecideRollout(Plan(), seen).action, RolloutAction::kAdvance);
}

TEST(RolloutPolicy, HoldsBelowMinComparisons) {
  RolloutObservation seen = Passing();
  seen.comparisons = 19;
  seen.agreements = 19;
  const RolloutDecision d = DecideRollout(Plan(), seen);
  EXPECT_EQ(d.action, RolloutAction::kHold) << d.reason;
  EXPECT_TRUE(Contains(d.reason, "19 of 20 comparisons")) << d.reason;
}

TEST(RolloutPolicy, NeedsNoComparisonsWhenThePlanComparesNothing) {
  core::RolloutConfig plan = Plan();
  plan.compare_fraction = 0;
  RolloutObservation seen = Passing();
  seen.comparisons = 0;
  seen.agreements = 0;
  EXPECT_EQ(DecideRollout(plan, seen).action, RolloutAction::kAdvance);
}

TEST(RolloutPolicy, RollsBackOnErrorRateOverTheBound) {
  RolloutObservation seen = Passing();
  seen.candidate.errors = 2;  // 0.02 > 0.01
  const RolloutDecision d = DecideRollout(Plan(), seen);
  EXPECT_EQ(d.action, RolloutAction::kRollback);
  EXPECT_TRUE(Contains(d.reason, "0.0200")) << d.reason;
  EXPECT_TRUE(Contains(d.reason, "100 requests")) << d.reason;
  EXPECT_TRUE(Contains(d.reason, "0.0100")) << d.reason;
}

TEST(RolloutPolicy, DoesNotRollBackAtOrUnderTheErrorBound) {
  RolloutObservation seen = Passing();
  seen.candidate.errors = 1;  // exactly 0.01: not over
  EXPECT_EQ(DecideRollout(Plan(), seen).action, RolloutAction::kAdvance);
  seen.candidate.requests = 1000;
  seen.candidate.errors = 5;
  EXPECT_EQ(DecideRollout(Plan(), seen).action, RolloutAction::kAdvance);
}

TEST(RolloutPolicy, JudgesErrorsOnlyOnceGuardMinRequestsServed) {
  RolloutObservation seen = Passing();
  seen.candidate.requests = 19;  // guards.min_requests is 20
  seen.candidate.errors = 19;
  EXPECT_EQ(DecideRollout(Plan(), seen).action, RolloutAction::kHold);
  // At 20 the guard is judged at once, even though the step wants 100 requests.
  seen.candidate.requests = 20;
  EXPECT_EQ(DecideRollout(Plan(), seen).action, RolloutAction::kRollback);
}

TEST(RolloutPolicy, NoRequestsAtAllIsAHoldNotACrash) {
  core::RolloutConfig plan = Plan();
  plan.guards.min_requests = 0;
  RolloutObservation seen = Passing();
  seen.candidate.requests = 0;
  seen.candidate.errors = 0;
  EXPECT_EQ(DecideRollout(plan, seen).action, RolloutAction::kHold);
}

TEST(RolloutPolicy, RollsBackOnP99AboveRatioTimesStablePlusSlack) {
  // limit = 1.5 * 10 + 5 = 20 ms
  RolloutObservation seen = Passing();
  seen.candidate.p99_ms = 20.5;
  const RolloutDecision d = DecideRollout(Plan(), seen);
  EXPECT_EQ(d.action, RolloutAction::kRollback);
  EXPECT_TRUE(Contains(d.reason, "20.500")) << d.reason;
  EXPECT_TRUE(Contains(d.reason, "1.50")) << d.reason;
  EXPECT_TRUE(Contains(d.reason, "10.000")) << d.reason;
  EXPECT_TRUE(Contains(d.reason, "5.0 ms slack")) << d.reason;
}

TEST(RolloutPolicy, DoesNotRollBackOnP99WithinSlack) {
  RolloutObservation seen = Passing();
  seen.candidate.p99_ms = 20;  // exactly at the limit
  EXPECT_EQ(DecideRollout(Plan(), seen).action, RolloutAction::kAdvance);
  seen.candidate.p99_ms = 19;
  EXPECT_EQ(DecideRollout(Plan(), seen).action, RolloutAction::kAdvance);
  // Sub-millisecond stable latency: 20x slower is still within the 5 ms slack.
  seen.stable.p99_ms = 0.2;
  seen.candidate.p99_ms = 4.0;
  EXPECT_EQ(DecideRollout(Plan(), seen).action, RolloutAction::kAdvance);
}

TEST(RolloutPolicy, IgnoresP99WhenEitherIsUnknown) {
  RolloutObservation seen = Passing();
  seen.stable.p99_ms = 0;
  seen.candidate.p99_ms = 1000;
  EXPECT_EQ(DecideRollout(Plan(), seen).action, RolloutAction::kAdvance);
}

TEST(RolloutPolicy, JudgesP99OnlyOnceGuardMinRequestsServed) {
  RolloutObservation seen = Passing();
  seen.candidate.requests = 10;
  seen.candidate.p99_ms = 1000;
  EXPECT_EQ(DecideRollout(Plan(), seen).action, RolloutAction::kHold);
}

TEST(RolloutPolicy, RollsBackOnAgreementBelowMinimum) {
  RolloutObservation seen = Passing();
  seen.agreements = 18;  // 0.9 < 0.95
  const RolloutDecision d = DecideRollout(Plan(), seen);
  EXPECT_EQ(d.action, RolloutAction::kRollback);
  EXPECT_TRUE(Contains(d.reason, "0.9000")) << d.reason;
  EXPECT_TRUE(Contains(d.reason, "20 comparisons")) << d.reason;
  EXPECT_TRUE(Contains(d.reason, "0.9500")) << d.reason;
}

TEST(RolloutPolicy, JudgesAgreementOnlyOnceMinComparisonsReached) {
  RolloutObservation seen = Passing();
  seen.comparisons = 19;
  seen.agreements = 0;
  EXPECT_EQ(DecideRollout(Plan(), seen).action, RolloutAction::kHold);
  // Agreement is judged as soon as enough were compared, whatever the request count.
  seen.candidate.requests = 5;
  seen.comparisons = 20;
  EXPECT_EQ(DecideRollout(Plan(), seen).action, RolloutAction::kRollback);
}

TEST(RolloutPolicy, AgreementAtTheMinimumPasses) {
  RolloutObservation seen = Passing();
  seen.comparisons = 100;
  seen.agreements = 95;
  EXPECT_EQ(DecideRollout(Plan(), seen).action, RolloutAction::kAdvance);
}

TEST(RolloutPolicy, AccuracyGuardWhenConfiguredAndFedBack) {
  core::RolloutConfig plan = Plan();
  plan.guards.min_accuracy = 0.9;
  RolloutObservation seen = Passing();
  seen.accuracy = 0.85;
  const RolloutDecision d = DecideRollout(plan, seen);
  EXPECT_EQ(d.action, RolloutAction::kRollback);
  EXPECT_TRUE(Contains(d.reason, "0.8500")) << d.reason;
  EXPECT_TRUE(Contains(d.reason, "0.9000")) << d.reason;

  seen.accuracy = 0.95;
  EXPECT_EQ(DecideRollout(plan, seen).action, RolloutAction::kAdvance);
  seen.accuracy.reset();  // no ground truth: nothing to judge
  EXPECT_EQ(DecideRollout(plan, seen).action, RolloutAction::kAdvance);
}

TEST(RolloutPolicy, AccuracyGuardOffByDefault) {
  RolloutObservation seen = Passing();
  seen.accuracy = 0.1;
  EXPECT_EQ(DecideRollout(Plan(), seen).action, RolloutAction::kAdvance);
}

TEST(RolloutPolicy, BadStepIndexRollsBack) {
  const RolloutDecision d = DecideRollout(Plan(), Passing(3));
  EXPECT_EQ(d.action, RolloutAction::kRollback);
  EXPECT_FALSE(d.reason.empty());

  core::RolloutConfig empty = Plan();
  empty.steps.clear();
  EXPECT_EQ(DecideRollout(empty, Passing(0)).action, RolloutAction::kRollback);
}

}  // namespace
}  // namespace slipway::routing
