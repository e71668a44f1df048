#include "slipway/lifecycle/validation.h"

#include <gtest/gtest.h>

#include <cstring>

namespace slipway::lifecycle {
namespace {

core::ModelConfig TwoInputConfig() {
  core::ModelConfig c;
  c.name = "m";
  c.max_batch_size = 8;
  core::TensorConfig x;
  x.name = "x";
  x.type = core::DataType::kFp32;
  x.dims = {-1};
  core::TensorConfig ids;
  ids.name = "ids";
  ids.type = core::DataType::kInt64;
  ids.dims = {2};
  c.inputs = {x, ids};
  return c;
}

TEST(Validation, ParsesRowsIntoBatchOfOneTensors) {
  auto rows = ParseValidationSet(
      "{\"inputs\": {\"x\": [1.5, 2.5, 3.5], \"ids\": [[7, 8]]}, \"expected\": 2}\n"
      "\n"
      "{\"inputs\": {\"x\": [0], \"ids\": [1, 2]}}\n",
      TwoInputConfig());
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  ASSERT_EQ(rows->size(), 2u);
  const auto& first = (*rows)[0];
  EXPECT_EQ(first.inputs[0].shape(), (core::Shape{1, 3}));
  EXPECT_EQ(first.inputs[1].shape(), (core::Shape{1, 2}));
  float f;
  std::memcpy(&f, first.inputs[0].bytes().data() + 4, 4);
  EXPECT_EQ(f, 2.5f);
  int64_t id;
  std::memcpy(&id, first.inputs[1].bytes().data() + 8, 8);
  EXPECT_EQ(id, 8);
  EXPECT_EQ(first.expected, 2.0);
  EXPECT_FALSE((*rows)[1].expected.has_value());
  EXPECT_EQ((*rows)[1].inputs[0].shape(), (core::Shape{1, 1}));
}

TEST(Validation, RefusesBadLinesNamingTheLine) {
  const auto config = TwoInputConfig();
  struct Case {
    const char* text;
    const char* needle;
  };
  const Case cases[] = {
      {"not json\n", "line 1"},
      {"{\"inputs\": {\"x\": [1]}}\n", "missing input 'ids'"},
      {"\n{\"inputs\": {\"x\": [\"a\"], \"ids\": [1, 2]}}\n", "line 2"},
      {"{\"inputs\": {\"x\": [1], \"ids\": [1, 2, 3]}}\n", "ids"},
      {"{\"inputs\": {\"x\": [1], \"ids\": [1, 2]}, \"expected\": [1, 2]}\n", "one number"},
      {"\n\n", "no examples"},
  };
  for (const auto& c : cases) {
    auto rows = ParseValidationSet(c.text, config);
    ASSERT_FALSE(rows.ok()) << c.text;
    EXPECT_NE(rows.status().message().find(c.needle), std::string::npos)
        << c.text << " -> " << rows.status().message();
  }
}

}  // namespace
}  // namespace slipway::lifecycle
