// The warmup, labels, traffic and rollout keys of config.yaml, and the Triton JSON config
// override.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "slipway/core/model_config.h"
#include "slipway/repository/model_repository.h"

namespace slipway::repository {
namespace {

using Pairs = std::vector<std::pair<std::string, int64_t>>;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Parses `yaml` for model "m" and expects a refusal whose message holds every one of `needles`.
void ExpectRefused(const std::string& yaml, const std::vector<std::string>& needles) {
  const auto parsed = ParseConfigYaml(yaml, "m");
  ASSERT_FALSE(parsed.ok()) << "accepted:\n" << yaml;
  EXPECT_EQ(parsed.status().code(), core::StatusCode::kInvalidArgument) << yaml;
  const std::string& message = parsed.status().message();
  EXPECT_TRUE(Contains(message, "model 'm' config.yaml")) << message;
  for (const auto& needle : needles) {
    EXPECT_TRUE(Contains(message, needle)) << "'" << needle << "' not in: " << message;
  }
}

constexpr const char* kFullExample = R"(
name: m
max_batch_size: 8
warmup:
  requests: 3
  batch_size: 2
labels:
  stable: 1
  canary: 2
traffic:
  split:
    stable: 90
    2: 10
  shadow:
    target: canary
    fraction: 0.25
rollout:
  auto_start: false
  compare_fraction: 0.5
  steps:
    - {weight: 5, requests: 50, seconds: 30}
    - {weight: 50, requests: 200}
    - {weight: 100}
  guards:
    max_error_rate: 0.02
    max_p99_ratio: 2.0
    p99_slack_ms: 10
    min_agreement: 0.9
    min_comparisons: 40
    min_accuracy: 0.8
    min_requests: 30
)";

TEST(ConfigRouting, FullExampleParsesIntoTheRightFields) {
  const auto parsed = ParseConfigYaml(kFullExample, "m");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  const core::ModelConfig& c = parsed.value();
  EXPECT_EQ(c.name, "m");
  EXPECT_EQ(c.batch_size_limit(), 8);

  EXPECT_TRUE(c.warmup.enabled);
  EXPECT_EQ(c.warmup.requests, 3);
  EXPECT_EQ(c.warmup.batch_size, 2);

  const core::RoutingConfig& r = c.routing;
  EXPECT_FALSE(r.empty());
  EXPECT_EQ(r.labels, (Pairs{{"stable", 1}, {"canary", 2}}));
  EXPECT_EQ(r.traffic.split, (Pairs{{"stable", 90}, {"2", 10}}));
  EXPECT_EQ(r.traffic.shadow_target, "canary");
  EXPECT_DOUBLE_EQ(r.traffic.shadow_fraction, 0.25);

  const core::RolloutConfig& ro = r.rollout;
  EXPECT_TRUE(ro.enabled);
  EXPECT_FALSE(ro.auto_start);
  EXPECT_DOUBLE_EQ(ro.compare_fraction, 0.5);
  ASSERT_EQ(ro.steps.size(), 3u);
  EXPECT_EQ(ro.steps[0].weight_percent, 5);
  EXPECT_EQ(ro.steps[0].min_requests, 50);
  EXPECT_DOUBLE_EQ(ro.steps[0].min_seconds, 30);
  EXPECT_EQ(ro.steps[1].weight_percent, 50);
  EXPECT_EQ(ro.steps[1].min_requests, 200);
  EXPECT_DOUBLE_EQ(ro.steps[1].min_seconds, 0);
  EXPECT_EQ(ro.steps[2].weight_percent, 100);
  EXPECT_EQ(ro.steps[2].min_requests, 0);

  const core::RolloutGuards& g = ro.guards;
  EXPECT_DOUBLE_EQ(g.max_error_rate, 0.02);
  EXPECT_DOUBLE_EQ(g.max_p99_ratio, 2.0);
  EXPECT_DOUBLE_EQ(g.p99_slack_ms, 10);
  EXPECT_DOUBLE_EQ(g.min_agreement, 0.9);
  EXPECT_EQ(g.min_comparisons, 40);
  EXPECT_DOUBLE_EQ(g.min_accuracy, 0.8);
  EXPECT_EQ(g.min_requests, 30);
}

TEST(ConfigRouting, DriftRowBudgetDefaultsOnAndCanBeLiftedOrRefused) {
  const std::string drift = "monitoring:\n  drift:\n    reference: {first_rows: 100}\n";
  const auto defaults = ParseConfigYaml(drift, "m");
  ASSERT_TRUE(defaults.ok()) << defaults.status().ToString();
  EXPECT_DOUBLE_EQ(defaults->monitoring.drift.max_rows_per_second, 5000);
  EXPECT_DOUBLE_EQ(defaults->monitoring.drift.sample, 1.0);
  const auto lifted = ParseConfigYaml(drift + "    max_rows_per_second: 0\n", "m");
  ASSERT_TRUE(lifted.ok()) << lifted.status().ToString();
  EXPECT_DOUBLE_EQ(lifted->monitoring.drift.max_rows_per_second, 0);
  const auto set = ParseConfigYaml(drift + "    max_rows_per_second: 250\n", "m");
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_DOUBLE_EQ(set->monitoring.drift.max_rows_per_second, 250);
  for (const char* bad : {"-1", "0.5", ".nan", ".inf", "2e9"}) {
    ExpectRefused(drift + "    max_rows_per_second: " + bad + "\n", {"max_rows_per_second"});
  }
}

TEST(ConfigRouting, NoRoutingKeysMeansEmptyRouting) {
  const auto parsed = ParseConfigYaml("max_batch_size: 4\n", "m");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_TRUE(parsed->routing.empty());
  EXPECT_FALSE(parsed->routing.rollout.enabled);
  // Warm-up is on by default: one request of one row.
  EXPECT_TRUE(parsed->warmup.enabled);
  EXPECT_EQ(parsed->warmup.requests, 1);
  EXPECT_EQ(parsed->warmup.batch_size, 1);
}

TEST(ConfigRouting, EmptyRolloutGetsDefaults) {
  for (const char* yaml : {"rollout: {}\n", "rollout:\n"}) {
    const auto parsed = ParseConfigYaml(yaml, "m");
    ASSERT_TRUE(parsed.ok()) << yaml << parsed.status().ToString();
    const core::RolloutConfig& ro = parsed->routing.rollout;
    EXPECT_TRUE(ro.enabled) << yaml;
    EXPECT_FALSE(parsed->routing.empty()) << yaml;
    EXPECT_TRUE(ro.auto_start) << yaml;
    EXPECT_DOUBLE_EQ(ro.compare_fraction, 0.2) << yaml;
    ASSERT_EQ(ro.steps.size(), 3u) << yaml;
    EXPECT_EQ(ro.steps[0].weight_percent, 10);
    EXPECT_EQ(ro.steps[1].weight_percent, 50);
    EXPECT_EQ(ro.steps[2].weight_percent, 100);
    for (const auto& step : ro.steps) {
      EXPECT_EQ(step.min_requests, 100);
      EXPECT_DOUBLE_EQ(step.min_seconds, 0);
    }
    const core::RolloutGuards defaults;
    EXPECT_DOUBLE_EQ(ro.guards.max_error_rate, defaults.max_error_rate);
    EXPECT_DOUBLE_EQ(ro.guards.min_agreement, defaults.min_agreement);
    EXPECT_EQ(ro.guards.min_requests, defaults.min_requests);
  }
}

TEST(ConfigRouting, WarmupCanBeTurnedOff) {
  const auto off = ParseConfigYaml("warmup: false\n", "m");
  ASSERT_TRUE(off.ok()) << off.status().ToString();
  EXPECT_FALSE(off->warmup.enabled);
  const auto none = ParseConfigYaml("warmup: {requests: 0}\n", "m");
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_FALSE(none->warmup.enabled);
}

TEST(ConfigRouting, RefusesStepWeightsThatDoNotRise) {
  ExpectRefused("rollout:\n  steps:\n    - {weight: 50}\n    - {weight: 20}\n",
                {"steps[1]", "weights must rise", "20 after 50"});
  ExpectRefused("rollout:\n  steps:\n    - {weight: 50}\n    - {weight: 50}\n",
                {"steps[1]", "50 after 50"});
  ExpectRefused("rollout:\n  steps:\n    - {weight: 0}\n", {"steps[0]", "weights must rise"});
  ExpectRefused("rollout:\n  steps:\n    - {weight: -5}\n", {"steps[0]", "-5"});
}

TEST(ConfigRouting, RefusesStepWeightOver100) {
  ExpectRefused("rollout:\n  steps:\n    - {weight: 50}\n    - {weight: 101}\n",
                {"steps[1]", "1..100", "101"});
}

TEST(ConfigRouting, RefusesOtherBadSteps) {
  ExpectRefused("rollout:\n  steps: []\n", {"steps must be a non-empty list"});
  ExpectRefused("rollout:\n  steps:\n    - {requests: 5}\n", {"steps[0]", "has no weight"});
  ExpectRefused("rollout:\n  steps:\n    - {weight: 10, requests: -1}\n", {"steps[0]", ">= 0"});
  ExpectRefused("rollout:\n  compare_fraction: 1.5\n", {"compare_fraction", "0..1"});
}

TEST(ConfigRouting, RefusesALabelNamedWithOnlyDigits) {
  ExpectRefused("labels:\n  \"123\": 1\n", {"'123'", "not a label name"});
  ExpectRefused("labels:\n  42: 1\n", {"'42'", "not a label name"});
  ExpectRefused("labels:\n  \"has space\": 1\n", {"'has space'", "not a label name"});
  ExpectRefused("labels:\n  stable: 0\n", {"stable", "version >= 1"});
}

TEST(ConfigRouting, AcceptsLabelsWithDigitsAmongLetters) {
  const auto parsed = ParseConfigYaml("labels:\n  v2-rc.1_b: 3\n", "m");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->routing.labels, (Pairs{{"v2-rc.1_b", 3}}));
}

TEST(ConfigRouting, RefusesANegativeSplitWeight) {
  ExpectRefused("traffic:\n  split:\n    1: -5\n    2: 10\n", {"traffic split", ">= 0"});
}

TEST(ConfigRouting, RefusesASplitSummingToZero) {
  ExpectRefused("traffic:\n  split:\n    1: 0\n    2: 0\n", {"traffic split", "sum to 0"});
}

TEST(ConfigRouting, RefusesBadSplitTargets) {
  ExpectRefused("traffic:\n  split:\n    0: 10\n", {"'0'", "neither a version number"});
  ExpectRefused("traffic:\n  split:\n    \"bad name\": 10\n", {"'bad name'"});
}

TEST(ConfigRouting, RefusesUnknownKeys) {
  ExpectRefused("rollout:\n  stepz: []\n", {"rollout", "unknown key 'stepz'"});
  ExpectRefused("rollout:\n  guards:\n    max_error: 0.1\n",
                {"rollout guards", "unknown key 'max_error'", "max_error_rate"});
  ExpectRefused("traffic:\n  splits:\n    1: 100\n", {"traffic", "unknown key 'splits'"});
  ExpectRefused("traffic:\n  shadow:\n    target: 2\n    share: 0.5\n",
                {"traffic shadow", "unknown key 'share'"});
  ExpectRefused("rollout:\n  steps:\n    - {weight: 10, secs: 5}\n",
                {"steps[0]", "unknown key 'secs'"});
  ExpectRefused("warmup:\n  batch: 2\n", {"warmup", "unknown key 'batch'"});
}

TEST(ConfigRouting, ShadowFractionMustBeWithinZeroAndOne) {
  ExpectRefused("traffic:\n  shadow:\n    target: 2\n    fraction: 1.5\n",
                {"traffic shadow", "fraction must be within 0..1"});
  ExpectRefused("traffic:\n  shadow:\n    target: 2\n    fraction: -0.1\n",
                {"fraction must be within 0..1"});
  ExpectRefused("traffic:\n  shadow:\n    fraction: 0.5\n", {"needs a target"});

  const auto whole = ParseConfigYaml("traffic:\n  shadow:\n    target: 2\n", "m");
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  EXPECT_EQ(whole->routing.traffic.shadow_target, "2");
  EXPECT_DOUBLE_EQ(whole->routing.traffic.shadow_fraction, 1.0);  // default: every request
}

TEST(ConfigRouting, RefusesWarmupBatchSizeZero) {
  ExpectRefused("warmup:\n  batch_size: 0\n", {"warmup", "batch_size >= 1"});
  ExpectRefused("warmup:\n  requests: -1\n", {"warmup", "requests must be >= 0"});
}

TEST(ConfigRouting, ParsesTritonJsonConfig) {
  const std::string json = R"({
    "name": "m",
    "max_batch_size": 4,
    "input": [{"name": "x", "data_type": "TYPE_FP32", "dims": [3, 224]}],
    "output": [{"name": "y", "data_type": "TYPE_INT64", "dims": ["1"]}]
  })";
  const auto parsed = ParseConfigJson(json, "m");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  const core::ModelConfig& c = parsed.value();
  EXPECT_EQ(c.name, "m");
  ASSERT_TRUE(c.max_batch_size.has_value());
  EXPECT_EQ(*c.max_batch_size, 4);
  ASSERT_EQ(c.inputs.size(), 1u);
  EXPECT_EQ(c.inputs[0].name, "x");
  EXPECT_EQ(c.inputs[0].type, core::DataType::kFp32);
  EXPECT_EQ(c.inputs[0].dims, (core::Shape{3, 224}));
  EXPECT_TRUE(c.inputs[0].dims_set);
  ASSERT_EQ(c.outputs.size(), 1u);
  EXPECT_EQ(c.outputs[0].name, "y");
  EXPECT_EQ(c.outputs[0].type, core::DataType::kInt64);
  EXPECT_EQ(c.outputs[0].dims, (core::Shape{1}));
}

TEST(ConfigRouting, RefusesBadTritonJsonConfig) {
  for (const char* bad : {"{not json", R"({"nmae": "m"})", R"({"max_batch_size": "lots"})"}) {
    const auto parsed = ParseConfigJson(bad, "m");
    ASSERT_FALSE(parsed.ok()) << "accepted: " << bad;
    EXPECT_EQ(parsed.status().code(), core::StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(Contains(parsed.status().message(), "model 'm' config override"))
        << parsed.status().message();
  }
  const auto other_name = ParseConfigJson(R"({"name": "other"})", "m");
  ASSERT_FALSE(other_name.ok());
  EXPECT_TRUE(Contains(other_name.status().message(), "'other'")) << other_name.status().message();
  const auto no_type = ParseConfigJson(R"({"input": [{"name": "x", "dims": [1]}]})", "m");
  ASSERT_FALSE(no_type.ok());
  EXPECT_TRUE(Contains(no_type.status().message(), "'x'")) << no_type.status().message();
}

}  // namespace
}  // namespace slipway::repository
