#include "slipway/routing/route_state.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace slipway::routing {
namespace {

WeightedVersion Wv(int64_t version, int64_t weight) {
  WeightedVersion wv;
  wv.version = version;
  wv.weight = weight;
  return wv;
}

RouteState Sample() {
  RouteState s;
  s.labels = {{"stable", 1}, {"canary", 2}};
  s.split = {Wv(2, 10), Wv(1, 90)};
  s.shadow_version = 3;
  s.shadow_fraction = 0.25;
  s.rollout.state = "running";
  s.rollout.candidate = 2;
  s.rollout.stable = 1;
  s.rollout.step = 1;
  s.rollout.compare_fraction = 0.2;
  s.rollout.reason = "step 1 at 10% passed: \"quoted\"\nsecond line";
  s.rejected = {4, 6};
  s.config_digest = "sha256:abc123";
  return s;
}

TEST(RouteStateJson, RoundTripKeepsEveryField) {
  const RouteState in = Sample();
  const std::string json = RouteStateToJson(in);
  const auto out = RouteStateFromJson(json);
  ASSERT_TRUE(out.ok()) << out.status().ToString() << "\n" << json;
  EXPECT_EQ(out->labels, in.labels);
  ASSERT_EQ(out->split.size(), 2u);
  EXPECT_EQ(out->split[0].version, 2);
  EXPECT_EQ(out->split[0].weight, 10);
  EXPECT_EQ(out->split[1].version, 1);
  EXPECT_EQ(out->split[1].weight, 90);
  EXPECT_EQ(out->shadow_version, 3);
  EXPECT_DOUBLE_EQ(out->shadow_fraction, 0.25);
  EXPECT_EQ(out->rollout.state, "running");
  EXPECT_EQ(out->rollout.candidate, 2);
  EXPECT_EQ(out->rollout.stable, 1);
  EXPECT_EQ(out->rollout.step, 1u);
  EXPECT_DOUBLE_EQ(out->rollout.compare_fraction, 0.2);
  EXPECT_EQ(out->rollout.reason, in.rollout.reason);
  EXPECT_EQ(out->rejected, in.rejected);
  EXPECT_EQ(out->config_digest, "sha256:abc123");
  ASSERT_NE(out->meter, nullptr);
  // A second trip gives the same text.
  EXPECT_EQ(RouteStateToJson(out.value()), json);
}

TEST(RouteStateJson, DefaultStateRoundTrips) {
  const auto out = RouteStateFromJson(RouteStateToJson(RouteState{}));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(out->labels.empty());
  EXPECT_TRUE(out->split.empty());
  EXPECT_EQ(out->shadow_version, 0);
  EXPECT_EQ(out->rollout.state, "idle");
  EXPECT_TRUE(out->rejected.empty());
  EXPECT_TRUE(out->config_digest.empty());
}

TEST(RouteStateJson, WholeNumberFractionsSurvive) {
  RouteState in;
  in.shadow_version = 2;
  in.shadow_fraction = 1.0;
  in.rollout.compare_fraction = 1.0;
  const std::string json = RouteStateToJson(in);
  const auto out = RouteStateFromJson(json);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_DOUBLE_EQ(out->shadow_fraction, 1.0) << json;
  EXPECT_DOUBLE_EQ(out->rollout.compare_fraction, 1.0) << json;
  // Written by hand as integers.
  const auto by_hand =
      RouteStateFromJson(R"({"shadow_fraction": 1, "rollout": {"compare_fraction": 1}})");
  ASSERT_TRUE(by_hand.ok()) << by_hand.status().ToString();
  EXPECT_DOUBLE_EQ(by_hand->shadow_fraction, 1.0);
  EXPECT_DOUBLE_EQ(by_hand->rollout.compare_fraction, 1.0);
}

TEST(RouteStateJson, EmptyObjectGivesDefaults) {
  const auto out = RouteStateFromJson("{}");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->rollout.state, "idle");
  EXPECT_TRUE(out->split.empty());
}

TEST(RouteStateJson, StoredSplitIsNormalised) {
  const auto out = RouteStateFromJson(R"({"split": [[1, 90], [3, 0], [2, 10]]})");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->split.size(), 2u);
  EXPECT_EQ(out->split[0].version, 2);
  EXPECT_EQ(out->split[1].version, 1);
}

TEST(RouteStateJson, MalformedJsonIsRefused) {
  for (const char* bad : {"", "not json", "{\"labels\": {", "[]", "42",
                          R"({"labels": {"stable": "one"}})", R"({"split": [[1]]})",
                          R"({"split": [["1", 90]]})"}) {
    const auto out = RouteStateFromJson(bad);
    ASSERT_FALSE(out.ok()) << "accepted: " << bad;
    EXPECT_EQ(out.status().code(), core::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(out.status().message().find("malformed"), std::string::npos)
        << out.status().message();
  }
}

TEST(RouteStatePinned, IncludesLabelsSplitShadowAndARunningRollout) {
  RouteState s;
  s.labels = {{"a", 1}, {"b", 5}};
  s.split = {Wv(3, 10), Wv(1, 90)};
  s.shadow_version = 7;
  s.rollout.state = "running";
  s.rollout.candidate = 8;
  s.rollout.stable = 1;
  EXPECT_EQ(s.Pinned(), (std::vector<int64_t>{1, 3, 5, 7, 8}));
}

TEST(RouteStatePinned, OmitsAFinishedRolloutAndVersionZero) {
  RouteState s;
  s.split = {Wv(2, 100)};
  s.rollout.state = "rolled_back";
  s.rollout.candidate = 9;
  s.rollout.stable = 2;
  EXPECT_EQ(s.Pinned(), (std::vector<int64_t>{2}));

  RouteState empty;
  EXPECT_TRUE(empty.Pinned().empty());

  RouteState running_without_stable;
  running_without_stable.rollout.state = "running";
  running_without_stable.rollout.candidate = 4;
  running_without_stable.rollout.stable = 0;
  EXPECT_EQ(running_without_stable.Pinned(), (std::vector<int64_t>{4}));
}

TEST(RouteStateMeter, CountsRequestsAndErrorsPerVersion) {
  TrafficMeter m;
  m.RecordRequest(1, false, 5);
  m.RecordRequest(1, true, 7);
  m.RecordRequest(1, false, 6);
  m.RecordRequest(2, false, 1);
  EXPECT_EQ(m.Counters(1).requests, 3u);
  EXPECT_EQ(m.Counters(1).errors, 1u);
  EXPECT_EQ(m.Counters(2).requests, 1u);
  EXPECT_EQ(m.Counters(2).errors, 0u);
  EXPECT_EQ(m.Counters(9).requests, 0u);
  EXPECT_EQ(m.Counters(9).errors, 0u);
  const auto all = m.AllCounters();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all.at(1).requests, 3u);
  EXPECT_EQ(all.at(2).requests, 1u);
}

TEST(RouteStateMeter, CountsComparisonsPerDirectedPair) {
  TrafficMeter m;
  m.RecordComparison(2, 1, true, 3, 4);
  m.RecordComparison(2, 1, false, 5, 6);
  m.RecordComparison(2, 1, true, 1, 1);
  const CompareCounters c = m.Comparison(2, 1);
  EXPECT_EQ(c.comparisons, 3u);
  EXPECT_EQ(c.agreements, 2u);
  EXPECT_DOUBLE_EQ(c.primary_ms_sum, 9);
  EXPECT_DOUBLE_EQ(c.shadow_ms_sum, 11);
  EXPECT_EQ(m.Comparison(1, 2).comparisons, 0u);  // the other direction is another pair
  const auto all = m.AllComparisons();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all.at({2, 1}).agreements, 2u);
}

TEST(RouteStateMeter, P99OverOneToHundredMs) {
  TrafficMeter m;
  EXPECT_EQ(m.P99Ms(1), 0);
  for (int ms = 100; ms >= 1; --ms) m.RecordRequest(1, false, ms);
  const double p99 = m.P99Ms(1);
  EXPECT_GE(p99, 99);
  EXPECT_LE(p99, 100);
  EXPECT_EQ(m.P99Ms(2), 0);
}

TEST(RouteStateMeter, P99OfOneSampleIsThatSample) {
  TrafficMeter m;
  m.RecordRequest(1, false, 12.5);
  EXPECT_DOUBLE_EQ(m.P99Ms(1), 12.5);
}

TEST(RouteStateMeter, P99WindowKeepsOnlyTheMostRecentSamples) {
  TrafficMeter m;
  constexpr size_t kWindow = TrafficMeter::kWindow;
  for (size_t i = 0; i < kWindow; ++i) m.RecordRequest(1, false, 1000);
  EXPECT_DOUBLE_EQ(m.P99Ms(1), 1000);
  // Overwrite all but 20 of the slow samples: 20 of 1024 is over 1%, so p99 is still slow.
  for (size_t i = 0; i < kWindow - 20; ++i) m.RecordRequest(1, false, 2);
  EXPECT_DOUBLE_EQ(m.P99Ms(1), 1000);
  // Overwrite the rest: every slow sample has left the window.
  for (size_t i = 0; i < 20; ++i) m.RecordRequest(1, false, 2);
  EXPECT_DOUBLE_EQ(m.P99Ms(1), 2);
  // The counters still count every request.
  EXPECT_EQ(m.Counters(1).requests, 2 * kWindow);
}

TEST(RouteStateMeter, ConcurrentRecordRequestSumsCorrectly) {
  TrafficMeter m;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 10000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&m, t] {
      for (int i = 0; i < kPerThread; ++i) {
        m.RecordRequest(1 + (i % 2), i % 10 == 0, static_cast<double>(t + 1));
      }
    });
  }
  for (auto& th : threads) th.join();
  const VersionCounters v1 = m.Counters(1);
  const VersionCounters v2 = m.Counters(2);
  EXPECT_EQ(v1.requests + v2.requests, static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(v1.requests, static_cast<uint64_t>(kThreads * kPerThread / 2));
  EXPECT_EQ(v1.errors + v2.errors, static_cast<uint64_t>(kThreads * kPerThread / 10));
  EXPECT_EQ(v1.errors, static_cast<uint64_t>(kThreads * kPerThread / 10));  // i % 10 == 0 is even
  const double p99 = m.P99Ms(1);
  EXPECT_GE(p99, 1);
  EXPECT_LE(p99, kThreads);
}

}  // namespace
}  // namespace slipway::routing
