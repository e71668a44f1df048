#include "slipway/frontends/http/tfserving_json_codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

namespace slipway::frontends::http {
namespace {

using core::DataType;

core::ModelConfig Config(std::vector<core::TensorConfig> inputs) {
  core::ModelConfig c;
  c.name = "m";
  c.max_batch_size = 8;
  c.inputs = std::move(inputs);
  return c;
}

core::TensorConfig In(std::string name, DataType type, core::Shape dims) {
  core::TensorConfig t;
  t.name = std::move(name);
  t.type = type;
  t.dims = std::move(dims);
  t.dims_set = true;
  return t;
}

template <typename T>
std::vector<T> Values(const core::Tensor& t) {
  std::vector<T> v(t.bytes().size() / sizeof(T));
  std::memcpy(v.data(), t.bytes().data(), v.size() * sizeof(T));
  return v;
}

template <typename T>
core::Tensor Out(std::string name, DataType type, core::Shape shape, const std::vector<T>& v) {
  std::string bytes(v.size() * sizeof(T), '\0');
  std::memcpy(bytes.data(), v.data(), bytes.size());
  return core::Tensor::Owned(std::move(name), type, std::move(shape), std::move(bytes));
}

TEST(TfServingJson, RowsStackOnANewLeadingDimension) {
  const auto config = Config({In("x", DataType::kFp32, {2})});
  core::InferRequest r;
  auto info = DecodeTfPredictRequest(R"({"instances": [[1, 2.5], [3, -4]]})", config, &r);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_TRUE(info->row_format);
  EXPECT_EQ(info->rows, 2);
  ASSERT_EQ(r.inputs.size(), 1u);
  EXPECT_EQ(r.inputs[0].shape(), (core::Shape{2, 2}));
  EXPECT_EQ(Values<float>(r.inputs[0]), (std::vector<float>{1, 2.5f, 3, -4}));
}

TEST(TfServingJson, NamedRowsAndColumns) {
  const auto config = Config({In("a", DataType::kInt32, {}), In("b", DataType::kBool, {2})});
  core::InferRequest rows;
  ASSERT_TRUE(DecodeTfPredictRequest(
                  R"({"instances": [{"b": [true, false], "a": 7},
                                    {"a": -1, "b": [false, false]}]})",
                  config, &rows)
                  .ok());
  EXPECT_EQ(rows.inputs[0].name(), "a");
  EXPECT_EQ(rows.inputs[0].shape(), (core::Shape{2}));
  EXPECT_EQ(Values<int32_t>(rows.inputs[0]), (std::vector<int32_t>{7, -1}));
  EXPECT_EQ(rows.inputs[1].shape(), (core::Shape{2, 2}));
  EXPECT_EQ(rows.inputs[1].bytes(), std::string("\1\0\0\0", 4));
  core::InferRequest cols;
  auto info = DecodeTfPredictRequest(R"({"inputs": {"a": [1, 2, 3], "b": [[true, true]]}})",
                                     config, &cols);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_FALSE(info->row_format);
  EXPECT_EQ(cols.inputs[0].shape(), (core::Shape{3}));  // columns need not share dimension 0
  EXPECT_EQ(cols.inputs[1].shape(), (core::Shape{1, 2}));
}

TEST(TfServingJson, Base64BytesAndNonFiniteTokens) {
  const auto config = Config({In("s", DataType::kBytes, {})});
  core::InferRequest r;
  auto info = DecodeTfPredictRequest(R"({"instances": [{"b64": "AP8="}, "NaN"]})", config, &r);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_TRUE(info->b64);
  auto parts = core::SplitBytesElements(r.inputs[0].bytes());
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0], std::string("\0\xff", 2));
  EXPECT_EQ(parts[1], "NaN");  // a string stays a string

  const auto fconfig = Config({In("f", DataType::kFp64, {3})});
  core::InferRequest f;
  ASSERT_TRUE(DecodeTfPredictRequest(R"({"inputs": [[NaN, Infinity, -Infinity]]})", fconfig, &f)
                  .ok());
  const auto v = Values<double>(f.inputs[0]);
  EXPECT_TRUE(std::isnan(v[0]));
  EXPECT_TRUE(std::isinf(v[1]) && v[1] > 0);
  EXPECT_TRUE(std::isinf(v[2]) && v[2] < 0);

  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Decode("Zm9vYg").value(), "foob");
  EXPECT_EQ(Base64Decode("-_8=").value(), "\xfb\xff");
  EXPECT_FALSE(Base64Decode("Zm9vY").ok());
  EXPECT_FALSE(Base64Decode("Zm9v!").ok());
}

TEST(TfServingJson, HalfAndBfloatConversions) {
  const auto config = Config({In("h", DataType::kFp16, {4})});
  core::InferRequest r;
  ASSERT_TRUE(DecodeTfPredictRequest(R"({"inputs": [[1.5, -65504, 0.00006103515625, 1e-8]]})",
                                     config, &r)
                  .ok());
  EXPECT_EQ(Values<uint16_t>(r.inputs[0]), (std::vector<uint16_t>{0x3e00, 0xfbff, 0x0400, 0x0000}));
  core::InferRequest big;
  EXPECT_FALSE(DecodeTfPredictRequest(R"({"inputs": [[70000, 0, 0, 0]]})", config, &big).ok());
  const auto bconfig = Config({In("b", DataType::kBf16, {2})});
  core::InferRequest b;
  ASSERT_TRUE(DecodeTfPredictRequest(R"({"inputs": [[1.5, -2]]})", bconfig, &b).ok());
  EXPECT_EQ(Values<uint16_t>(b.inputs[0]), (std::vector<uint16_t>{0x3fc0, 0xc000}));
}

struct BadCase {
  const char* body;
  const char* message;
};

TEST(TfServingJson, BadRequestsNameTheProblem) {
  const auto config = Config({In("x", DataType::kInt8, {-1})});
  const BadCase cases[] = {
      {R"({"instances": [[1, 2], [3]]})", "ragged"},
      {R"({"instances": [[1, [2]]]})", "ragged"},
      {R"({"inputs": [[1, 2], 3]})", "ragged"},
      {R"({"instances": [[300]]})", "out of range"},
      {R"({"instances": [[1.5]]})", "integers"},
      {R"({"instances": [["a"]]})", "integers"},
      {R"({"instances": [[{"b64": "AA=="}]]})", "only for BYTES"},
      {R"({"instances": [{"y": [1]}]})", "unknown input 'y'"},
      {R"({"instances": []})", "empty"},
      {R"({"instances": [[1]], "inputs": [[1]]})", "both"},
      {R"({"signature_name": "other", "inputs": [[1]]})", "signature 'other'"},
      {R"({"inputs": [[1]])", "malformed JSON"},
      {R"([1])", "JSON object"},
  };
  for (const auto& c : cases) {
    core::InferRequest r;
    auto info = DecodeTfPredictRequest(c.body, config, &r);
    ASSERT_FALSE(info.ok()) << c.body;
    EXPECT_EQ(info.status().code(), core::StatusCode::kInvalidArgument) << c.body;
    EXPECT_NE(info.status().message().find(c.message), std::string::npos)
        << c.body << " -> " << info.status().message();
  }
}

TEST(TfServingJson, ExamplesByNameWithContextAndByColumn) {
  const auto config = Config({In("x", DataType::kFp32, {2}), In("k", DataType::kInt64, {})});
  core::InferRequest r;
  auto info = DecodeTfExamplesRequest(
      R"({"context": {"k": 4}, "examples": [{"x": [1, 2]}, {"x": [3, 4]}]})", config, &r);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->rows, 2);
  EXPECT_EQ(r.inputs[0].shape(), (core::Shape{2, 2}));
  EXPECT_EQ(Values<int64_t>(r.inputs[1]), (std::vector<int64_t>{4, 4}));
  core::InferRequest dup;
  EXPECT_FALSE(
      DecodeTfExamplesRequest(R"({"context": {"k": 4}, "examples": [{"x": [1, 2], "k": 1}]})",
                              config, &dup)
          .ok());

  const auto one = Config({In("f", DataType::kFp32, {3})});
  core::InferRequest cols;
  info = DecodeTfExamplesRequest(
      R"({"context": {"a": 1}, "examples": [{"b": 2, "c": 3}, {"b": 5, "c": 6}]})", one, &cols);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(cols.inputs[0].shape(), (core::Shape{2, 3}));
  EXPECT_EQ(Values<float>(cols.inputs[0]), (std::vector<float>{1, 2, 3, 1, 5, 6}));
  core::InferRequest reordered;
  EXPECT_FALSE(
      DecodeTfExamplesRequest(R"({"examples": [{"b": 2, "c": 3}, {"c": 6, "b": 5}]})", one,
                              &reordered)
          .ok());
}

TEST(TfServingJson, EncodesPredictionsAndOutputs) {
  core::InferResponse resp;
  resp.outputs.push_back(Out<float>("p", DataType::kFp32, {2, 2}, {0.25f, 0.75f, 1, 0}));
  resp.outputs.push_back(Out<int64_t>("l", DataType::kInt64, {2}, {1, 0}));
  TfRequestInfo rows;
  rows.rows = 2;
  EXPECT_EQ(EncodeTfPredictResponse(resp, rows).value(),
            R"({"predictions":[{"p":[0.25,0.75],"l":1},{"p":[1,0],"l":0}]})");
  TfRequestInfo cols;
  cols.row_format = false;
  EXPECT_EQ(EncodeTfPredictResponse(resp, cols).value(),
            R"({"outputs":{"p":[[0.25,0.75],[1,0]],"l":[1,0]}})");
  EXPECT_EQ(EncodeTfClassifyResponse(resp, rows).value(),
            R"({"results":[[["0",0.25],["1",0.75]],[["0",1],["1",0]]]})");
  EXPECT_FALSE(EncodeTfRegressResponse(resp, rows).ok());

  core::InferResponse single;
  single.outputs.push_back(Out<double>("y", DataType::kFp64, {2, 1}, {1.5, -2}));
  EXPECT_EQ(EncodeTfPredictResponse(single, rows).value(), R"({"predictions":[[1.5],[-2]]})");
  EXPECT_EQ(EncodeTfRegressResponse(single, rows).value(), R"({"results":[1.5,-2]})");

  core::InferResponse mismatched;
  mismatched.outputs.push_back(Out<float>("a", DataType::kFp32, {2}, {1, 2}));
  mismatched.outputs.push_back(Out<float>("b", DataType::kFp32, {3}, {1, 2, 3}));
  EXPECT_FALSE(EncodeTfPredictResponse(mismatched, rows).ok());
}

TEST(TfServingJson, BytesOutputsAsB64WhenAskedOrNotUtf8) {
  std::string bytes;
  core::AppendBytesElement(bytes, "hi");
  core::AppendBytesElement(bytes, std::string("\xff", 1));
  core::InferResponse resp;
  resp.outputs.push_back(core::Tensor::Owned("s", DataType::kBytes, {2}, bytes));
  TfRequestInfo info;
  info.row_format = false;
  EXPECT_EQ(EncodeTfPredictResponse(resp, info).value(),
            R"({"outputs":[{"b64":"aGk="},{"b64":"/w=="}]})");
  std::string text;
  core::AppendBytesElement(text, "hi");
  core::InferResponse plain;
  plain.outputs.push_back(core::Tensor::Owned("s", DataType::kBytes, {1}, text));
  EXPECT_EQ(EncodeTfPredictResponse(plain, info).value(), R"({"outputs":["hi"]})");
  info.b64 = true;
  EXPECT_EQ(EncodeTfPredictResponse(plain, info).value(), R"({"outputs":[{"b64":"aGk="}]})");
  EXPECT_EQ(TfDataTypeName(DataType::kBytes), "DT_STRING");
  EXPECT_EQ(TfDataTypeName(DataType::kFp16), "DT_HALF");
}

}  // namespace
}  // namespace slipway::frontends::http
