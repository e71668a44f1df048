#include "slipway/routing/output_compare.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "slipway/core/tensor.h"

namespace slipway::routing {
namespace {

template <typename T>
std::string Bytes(const std::vector<T>& values) {
  std::string out(values.size() * sizeof(T), '\0');
  if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

core::Tensor Fp32(const std::string& name, core::Shape shape, const std::vector<float>& values) {
  return core::Tensor::Owned(name, core::DataType::kFp32, std::move(shape), Bytes(values));
}

core::Tensor Fp64(const std::string& name, core::Shape shape, const std::vector<double>& values) {
  return core::Tensor::Owned(name, core::DataType::kFp64, std::move(shape), Bytes(values));
}

core::Tensor Int64(const std::string& name, core::Shape shape,
                   const std::vector<int64_t>& values) {
  return core::Tensor::Owned(name, core::DataType::kInt64, std::move(shape), Bytes(values));
}

core::Tensor Strings(const std::string& name, const std::vector<std::string>& values) {
  std::string bytes;
  for (const auto& v : values) core::AppendBytesElement(bytes, v);
  return core::Tensor::Owned(name, core::DataType::kBytes,
                             {static_cast<int64_t>(values.size())}, std::move(bytes));
}

std::vector<float> Scaled(std::vector<float> v, float factor) {
  for (float& x : v) x *= factor;
  return v;
}

bool Agree(const core::Tensor& a, const core::Tensor& b) { return OutputsAgree({a}, {b}); }

// Two rows of three classes: row 0's top class is 1, row 1's is 0.
const std::vector<float> kLogits = {0.1f, 0.7f, 0.2f, 0.5f, 0.3f, 0.2f};

TEST(OutputCompare, ClassifierAgreesOnSameArgmax) {
  const auto a = Fp32("probs", {2, 3}, kLogits);
  EXPECT_TRUE(Agree(a, a));
  EXPECT_TRUE(Agree(a, Fp32("probs", {2, 3}, Scaled(kLogits, 10.0f))));
  EXPECT_TRUE(Agree(a, Fp32("probs", {2, 3}, Scaled(kLogits, 0.001f))));
  // Quite different scores, same top-1 per row.
  EXPECT_TRUE(Agree(a, Fp32("probs", {2, 3}, {-5.0f, 9.0f, 8.9f, 3.0f, -1.0f, 2.9f})));
}

TEST(OutputCompare, ClassifierDisagreesOnDifferentArgmax) {
  const auto a = Fp32("probs", {2, 3}, kLogits);
  EXPECT_FALSE(Agree(a, Fp32("probs", {2, 3}, Scaled(kLogits, -1.0f))));
  // Only the second row's top class moves.
  EXPECT_FALSE(Agree(a, Fp32("probs", {2, 3}, {0.1f, 0.7f, 0.2f, 0.3f, 0.5f, 0.2f})));
}

TEST(OutputCompare, FloatOutputsOfOtherShapesUseTolerance) {
  const std::vector<float> x = {1.0f, -2.0f, 100.0f, 0.5f};
  for (const core::Shape& shape : {core::Shape{4}, core::Shape{4, 1}, core::Shape{1, 2, 2}}) {
    const auto a = Fp32("y", shape, x);
    EXPECT_TRUE(Agree(a, a));
    EXPECT_TRUE(Agree(a, Fp32("y", shape, Scaled(x, 1.0f + 1e-6f))));
    EXPECT_FALSE(Agree(a, Fp32("y", shape, Scaled(x, 1.01f))));
    std::vector<float> one_off = x;
    one_off[2] *= 1.01f;
    EXPECT_FALSE(Agree(a, Fp32("y", shape, one_off)));
  }
}

TEST(OutputCompare, Fp64UsesTheSameTolerance) {
  const std::vector<double> x = {1.0, 2.0, 3.0};
  const auto a = Fp64("y", {3}, x);
  EXPECT_TRUE(Agree(a, Fp64("y", {3}, {1.000001, 2.000002, 3.000003})));
  EXPECT_FALSE(Agree(a, Fp64("y", {3}, {1.01, 2.0, 3.0})));
}

TEST(OutputCompare, NanAgreesOnlyWithNan) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const auto a = Fp32("y", {2}, {1.0f, nan});
  EXPECT_TRUE(Agree(a, Fp32("y", {2}, {1.0f, nan})));
  EXPECT_FALSE(Agree(a, Fp32("y", {2}, {1.0f, 0.0f})));
  EXPECT_FALSE(Agree(Fp32("y", {2}, {1.0f, 0.0f}), a));
}

TEST(OutputCompare, IntegersCompareExactly) {
  const auto a = Int64("ids", {3}, {1, 2, 3});
  EXPECT_TRUE(Agree(a, Int64("ids", {3}, {1, 2, 3})));
  EXPECT_FALSE(Agree(a, Int64("ids", {3}, {1, 2, 4})));
}

TEST(OutputCompare, BytesCompareExactly) {
  const auto a = Strings("label", {"cat", "dog"});
  EXPECT_TRUE(Agree(a, Strings("label", {"cat", "dog"})));
  EXPECT_FALSE(Agree(a, Strings("label", {"cat", "dot"})));
  EXPECT_FALSE(Agree(a, Strings("label", {"dog", "cat"})));
}

TEST(OutputCompare, DatatypeMismatchDisagrees) {
  const auto a = Fp32("y", {2}, {1.0f, 2.0f});
  EXPECT_FALSE(Agree(a, Fp64("y", {2}, {1.0, 2.0})));
  // Same bytes, different type.
  EXPECT_FALSE(Agree(
      a, core::Tensor::Owned("y", core::DataType::kInt32, {2}, Bytes(std::vector<float>{1, 2}))));
}

TEST(OutputCompare, ShapeMismatchDisagrees) {
  EXPECT_FALSE(Agree(Fp32("probs", {2, 3}, kLogits), Fp32("probs", {3, 2}, kLogits)));
  EXPECT_FALSE(Agree(Fp32("y", {6}, kLogits), Fp32("y", {6, 1}, kLogits)));
  EXPECT_FALSE(Agree(Int64("ids", {2}, {1, 2}), Int64("ids", {1, 2}, {1, 2})));
}

TEST(OutputCompare, OutputsInOneAnswerOnlyAreIgnored) {
  const auto probs = Fp32("probs", {2, 3}, kLogits);
  const auto extra = Int64("debug", {1}, {42});
  EXPECT_TRUE(OutputsAgree({probs, extra}, {probs}));
  EXPECT_TRUE(OutputsAgree({probs}, {extra, probs}));
  EXPECT_TRUE(OutputsAgree({probs}, {extra}));
  EXPECT_TRUE(OutputsAgree({}, {}));
}

TEST(OutputCompare, OneDisagreeingOutputMakesTheAnswersDisagree) {
  const auto probs = Fp32("probs", {2, 3}, kLogits);
  EXPECT_FALSE(OutputsAgree({probs, Int64("ids", {1}, {1})}, {Int64("ids", {1}, {2}), probs}));
  EXPECT_TRUE(OutputsAgree({probs, Int64("ids", {1}, {1})}, {Int64("ids", {1}, {1}), probs}));
}

}  // namespace
}  // namespace slipway::routing
