#include "slipway/routing/traffic_policy.h"

#include <gtest/gtest.h>

#include <array>
#include <map>
#include <string>

namespace slipway::routing {
namespace {

WeightedVersion Wv(int64_t version, int64_t weight) {
  WeightedVersion wv;
  wv.version = version;
  wv.weight = weight;
  return wv;
}

bool AllUsable(int64_t /*version*/) { return true; }

// Share of `n` evenly spaced points in [0, 1) that land on each version.
template <typename Usable>
std::map<int64_t, int> Spread(const std::vector<WeightedVersion>& split, int n, Usable usable) {
  std::map<int64_t, int> out;
  for (int i = 0; i < n; ++i) {
    const double point = (static_cast<double>(i) + 0.5) / static_cast<double>(n);
    ++out[ChooseVersion(split, point, usable)];
  }
  return out;
}

std::vector<WeightedVersion> Canary(int64_t percent) {
  return NormalizeSplit({Wv(1, 100 - percent), Wv(2, percent)});
}

TEST(TrafficPolicy, NinetyTenSplitOverEvenlySpacedPoints) {
  const auto split = NormalizeSplit({Wv(1, 90), Wv(2, 10)});
  const auto spread = Spread(split, 1000, AllUsable);
  EXPECT_EQ(spread.size(), 2u);
  EXPECT_NEAR(spread.at(1), 900, 10);
  EXPECT_NEAR(spread.at(2), 100, 10);
  EXPECT_EQ(spread.count(0), 0u);
}

TEST(TrafficPolicy, NewestVersionTakesTheLowEndOfTheLine) {
  const auto split = NormalizeSplit({Wv(1, 90), Wv(2, 10)});
  EXPECT_EQ(ChooseVersion(split, 0.0, AllUsable), 2);
  EXPECT_EQ(ChooseVersion(split, 0.05, AllUsable), 2);
  EXPECT_EQ(ChooseVersion(split, 0.15, AllUsable), 1);
  EXPECT_EQ(ChooseVersion(split, 0.999999, AllUsable), 1);
}

TEST(TrafficPolicy, SingleVersionTakesEverything) {
  const std::vector<WeightedVersion> split = {Wv(7, 3)};
  const auto spread = Spread(split, 100, AllUsable);
  EXPECT_EQ(spread.size(), 1u);
  EXPECT_EQ(spread.at(7), 100);
}

TEST(TrafficPolicy, KeyPointIsDeterministicAndInRange) {
  EXPECT_EQ(KeyPoint("user-42"), KeyPoint("user-42"));
  EXPECT_NE(KeyPoint("user-42"), KeyPoint("user-43"));
  EXPECT_NE(KeyPoint(""), KeyPoint("a"));
  for (const char* key : {"", "a", "user-1", "a much longer routing key with spaces"}) {
    const double p = KeyPoint(key);
    EXPECT_GE(p, 0.0) << key;
    EXPECT_LT(p, 1.0) << key;
  }
}

TEST(TrafficPolicy, KeyPointIsRoughlyUniform) {
  std::array<int, 10> deciles{};
  constexpr int kKeys = 10000;
  for (int i = 0; i < kKeys; ++i) {
    const double p = KeyPoint("user-" + std::to_string(i));
    ASSERT_GE(p, 0.0);
    ASSERT_LT(p, 1.0);
    ++deciles[static_cast<size_t>(p * 10)];
  }
  for (size_t d = 0; d < deciles.size(); ++d) {
    EXPECT_GE(deciles[d], 800) << "decile " << d;
    EXPECT_LE(deciles[d], 1200) << "decile " << d;
  }
}

TEST(TrafficPolicy, KeyedSplitFollowsTheWeights) {
  const auto split = Canary(10);
  int on_canary = 0;
  constexpr int kKeys = 10000;
  for (int i = 0; i < kKeys; ++i) {
    if (ChooseVersion(split, KeyPoint("k" + std::to_string(i)), AllUsable) == 2) ++on_canary;
  }
  EXPECT_GE(on_canary, 800);
  EXPECT_LE(on_canary, 1200);
}

TEST(TrafficPolicy, RaisingTheCandidateWeightOnlyMovesKeysOntoIt) {
  constexpr int kKeys = 10000;
  int at5 = 0;
  int at25 = 0;
  int at50 = 0;
  for (int i = 0; i < kKeys; ++i) {
    const double p = KeyPoint("session-" + std::to_string(i));
    const bool c5 = ChooseVersion(Canary(5), p, AllUsable) == 2;
    const bool c25 = ChooseVersion(Canary(25), p, AllUsable) == 2;
    const bool c50 = ChooseVersion(Canary(50), p, AllUsable) == 2;
    if (c5) {
      EXPECT_TRUE(c25) << "key " << i << " left the candidate at 25%";
      EXPECT_TRUE(c50) << "key " << i << " left the candidate at 50%";
    }
    if (c25) {
      EXPECT_TRUE(c50) << "key " << i << " left the candidate at 50%";
    }
    at5 += c5;
    at25 += c25;
    at50 += c50;
  }
  EXPECT_GT(at5, 0);
  EXPECT_LT(at5, at25);
  EXPECT_LT(at25, at50);
  EXPECT_NEAR(at5, 500, 150);
  EXPECT_NEAR(at25, 2500, 300);
  EXPECT_NEAR(at50, 5000, 400);
}

TEST(TrafficPolicy, SkipsUnusableVersionsAndRenormalises) {
  const auto split = NormalizeSplit({Wv(1, 20), Wv(2, 30), Wv(3, 50)});
  auto not_three = [](int64_t v) { return v != 3; };
  const auto spread = Spread(split, 1000, not_three);
  EXPECT_EQ(spread.count(3), 0u);
  // 30 : 20 over what is left.
  EXPECT_NEAR(spread.at(2), 600, 10);
  EXPECT_NEAR(spread.at(1), 400, 10);
  // Even a point in the unusable version's own range lands on a usable one.
  EXPECT_NE(ChooseVersion(split, 0.0, not_three), 3);
  EXPECT_NE(ChooseVersion(split, 0.49, not_three), 3);
}

TEST(TrafficPolicy, AllUnusableGivesZero) {
  const auto split = NormalizeSplit({Wv(1, 50), Wv(2, 50)});
  auto none = [](int64_t) { return false; };
  EXPECT_EQ(ChooseVersion(split, 0.0, none), 0);
  EXPECT_EQ(ChooseVersion(split, 0.7, none), 0);
  EXPECT_EQ(ChooseVersion(std::vector<WeightedVersion>{}, 0.5, AllUsable), 0);
  // Zero weights count as absent even when not normalised.
  EXPECT_EQ(ChooseVersion(std::vector<WeightedVersion>{Wv(4, 0)}, 0.5, AllUsable), 0);
}

TEST(TrafficPolicy, NormalizeSplitDropsZeroWeightsAndOrdersNewestFirst) {
  const auto split = NormalizeSplit({Wv(1, 50), Wv(3, 0), Wv(5, 20), Wv(2, 30), Wv(4, -1)});
  ASSERT_EQ(split.size(), 3u);
  EXPECT_EQ(split[0].version, 5);
  EXPECT_EQ(split[0].weight, 20);
  EXPECT_EQ(split[1].version, 2);
  EXPECT_EQ(split[1].weight, 30);
  EXPECT_EQ(split[2].version, 1);
  EXPECT_EQ(split[2].weight, 50);
  EXPECT_TRUE(NormalizeSplit({}).empty());
  EXPECT_TRUE(NormalizeSplit({Wv(1, 0)}).empty());
}

}  // namespace
}  // namespace slipway::routing
