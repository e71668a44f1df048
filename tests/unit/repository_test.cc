#include <gtest/gtest.h>

#include "slipway/repository/model_repository.h"

namespace slipway::repository {
namespace {

using core::VersionPolicy;

TEST(SelectVersions, Policies) {
  const std::vector<int64_t> disk{1, 2, 5};
  VersionPolicy latest;
  EXPECT_EQ(SelectVersions(latest, disk), (std::vector<int64_t>{5}));
  latest.latest_count = 2;
  EXPECT_EQ(SelectVersions(latest, disk), (std::vector<int64_t>{2, 5}));
  latest.latest_count = 10;
  EXPECT_EQ(SelectVersions(latest, disk), disk);
  VersionPolicy all;
  all.kind = VersionPolicy::Kind::kAll;
  EXPECT_EQ(SelectVersions(all, disk), disk);
  VersionPolicy specific;
  specific.kind = VersionPolicy::Kind::kSpecific;
  specific.specific = {5, 1, 7};
  EXPECT_EQ(SelectVersions(specific, disk), (std::vector<int64_t>{1, 5}));
  EXPECT_TRUE(SelectVersions(latest, {}).empty());
}

TEST(ConfigYaml, ParsesEveryKey) {
  auto c = ParseConfigYaml(R"(
max_batch_size: 16
instance_count: 3
version_policy: {specific: {versions: [1, 3]}}
inputs: [{name: x, datatype: FP32, dims: [4]}]
outputs: [{name: y, data_type: TYPE_INT64}]
dynamic_batching: {max_queue_delay_microseconds: 200, preferred_batch_size: [4, 8]}
)", "m");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->name, "m");
  EXPECT_EQ(*c->max_batch_size, 16);
  EXPECT_EQ(c->instance_count, 3);
  EXPECT_EQ(c->version_policy.kind, VersionPolicy::Kind::kSpecific);
  EXPECT_EQ(c->version_policy.specific, (std::vector<int64_t>{1, 3}));
  ASSERT_EQ(c->inputs.size(), 1u);
  EXPECT_EQ(c->inputs[0].type, core::DataType::kFp32);
  EXPECT_EQ(c->inputs[0].dims, (core::Shape{4}));
  EXPECT_TRUE(c->inputs[0].dims_set);
  EXPECT_EQ(c->outputs[0].type, core::DataType::kInt64);
  EXPECT_FALSE(c->outputs[0].dims_set);
  EXPECT_TRUE(c->dynamic_batching.enabled);
  EXPECT_EQ(c->dynamic_batching.max_queue_delay_us, 200);
}

TEST(ConfigYaml, BatchingAndInstances) {
  auto c = ParseConfigYaml(R"(
max_batch_size: 8
instances: 3
dynamic_batching:
  max_queue_size: 5
  default_timeout_microseconds: 700
  priority_levels: 2
  default_priority_level: 1
  preserve_ordering: true
)", "m");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->instance_count, 3);
  const auto& d = c->dynamic_batching;
  EXPECT_TRUE(d.enabled);
  EXPECT_EQ(d.max_queue_size, 5);
  EXPECT_EQ(d.default_timeout_us, 700);
  EXPECT_EQ(d.priority_levels, 2);
  EXPECT_EQ(d.default_priority_level, 1);
  EXPECT_TRUE(d.preserve_ordering);
  auto bare = ParseConfigYaml("dynamic_batching:\n", "m");
  ASSERT_TRUE(bare.ok());
  EXPECT_TRUE(bare->dynamic_batching.enabled);
  EXPECT_FALSE(ParseConfigYaml("instances: 2\ninstance_count: 2\n", "m").ok());
  auto scaled = ParseConfigYaml("instances: {min: 2, max: 4}\n", "m");
  ASSERT_TRUE(scaled.ok()) << scaled.status().message();
  EXPECT_EQ(scaled->instance_count, 2);
  EXPECT_EQ(scaled->max_instance_count, 4);
  EXPECT_FALSE(ParseConfigYaml("instances: {min: 3, max: 2}\n", "m").ok());
  EXPECT_FALSE(ParseConfigYaml("instances: {min: 1}\n", "m").ok());
  EXPECT_FALSE(ParseConfigYaml("dynamic_batching: {max_queue_sise: 3}\n", "m").ok());
}

TEST(ConfigYaml, RefusesTyposBadTypesAndForeignNames) {
  auto typo = ParseConfigYaml("max_batchsize: 4\n", "m");
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.status().message().find("max_batchsize"), std::string::npos);
  EXPECT_FALSE(ParseConfigYaml("inputs: [{name: x, datatype: FLOAT}]\n", "m").ok());
  EXPECT_FALSE(ParseConfigYaml("name: other\n", "m").ok());
  EXPECT_FALSE(ParseConfigYaml("max_batch_size: [\n", "m").ok());
  EXPECT_FALSE(ParseConfigYaml("max_batch_size: abc\n", "m").ok());
  EXPECT_TRUE(ParseConfigYaml("", "m").ok());
}

TEST(ConfigPbtxt, ParsesTritonConfig) {
  auto c = ParseConfigPbtxt(R"(
name: "t"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 16 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_STRING dims: [ -1 ] } ]
instance_group [ { count: 2 kind: KIND_CPU } ]
dynamic_batching { max_queue_delay_microseconds: 100 preferred_batch_size: [ 4 ]
  preserve_ordering: true priority_levels: 3
  default_queue_policy { max_queue_size: 9 default_timeout_microseconds: 50 } }
version_policy: { latest: { num_versions: 2 } }
optimization { graph { level: 1 } }
some_future_field: 3
)", "t");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(*c->max_batch_size, 8);
  EXPECT_EQ(c->instance_count, 2);
  EXPECT_EQ(c->inputs[0].dims, (core::Shape{16}));
  EXPECT_EQ(c->outputs[0].type, core::DataType::kBytes);
  EXPECT_EQ(c->version_policy.latest_count, 2);
  EXPECT_EQ(c->dynamic_batching.max_queue_delay_us, 100);
  EXPECT_TRUE(c->dynamic_batching.preserve_ordering);
  EXPECT_EQ(c->dynamic_batching.priority_levels, 3);
  EXPECT_EQ(c->dynamic_batching.max_queue_size, 9);
  EXPECT_EQ(c->dynamic_batching.default_timeout_us, 50);
}

TEST(ConfigPbtxt, RefusesSyntaxErrorsAndGpuInstances) {
  auto bad = ParseConfigPbtxt("max_batch_size: \"x\"", "t");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("line 1"), std::string::npos) << bad.status().message();
  EXPECT_FALSE(ParseConfigPbtxt("instance_group [ { kind: KIND_GPU } ]", "t").ok());
  EXPECT_FALSE(ParseConfigPbtxt("name: \"other\"", "t").ok());
}

}  // namespace
}  // namespace slipway::repository
