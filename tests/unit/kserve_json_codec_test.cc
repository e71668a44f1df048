#include "slipway/frontends/http/kserve_json_codec.h"

#include <gtest/gtest.h>

#include <cstring>

namespace slipway::frontends::http {
namespace {

using core::DataType;

core::Status Decode(const std::string& body, core::InferRequest* r,
                    std::optional<size_t> header = std::nullopt) {
  return DecodeInferRequest(body, header, r);
}

TEST(KserveJson, DecodesNestedAndFlatData) {
  core::InferRequest r;
  ASSERT_TRUE(Decode(R"({"id":"7","inputs":[
    {"name":"a","datatype":"INT32","shape":[2,2],"data":[[1,2],[3,-4]]},
    {"name":"b","datatype":"FP32","shape":[2],"data":[1.5,2]},
    {"name":"c","datatype":"BOOL","shape":[1],"data":[true]},
    {"name":"d","datatype":"BYTES","shape":[2],"data":["hi",""]}],
    "outputs":[{"name":"o","parameters":{"binary_data":true}}]})", &r).ok());
  EXPECT_EQ(r.id, "7");
  ASSERT_EQ(r.inputs.size(), 4u);
  int32_t ints[4];
  ASSERT_EQ(r.inputs[0].bytes().size(), 16u);
  std::memcpy(ints, r.inputs[0].bytes().data(), 16);
  EXPECT_EQ(ints[3], -4);
  float f[2];
  std::memcpy(f, r.inputs[1].bytes().data(), 8);
  EXPECT_EQ(f[0], 1.5f);
  EXPECT_EQ(f[1], 2.0f);
  EXPECT_EQ(r.inputs[2].bytes(), std::string(1, '\1'));
  EXPECT_TRUE(r.inputs[3].ValidateSize().ok());
  ASSERT_EQ(r.outputs.size(), 1u);
  EXPECT_TRUE(r.outputs[0].binary && r.outputs[0].binary_set);
}

TEST(KserveJson, BinaryInputsBorrowFromBody) {
  const std::string json =
      R"({"inputs":[{"name":"a","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":8}},)"
      R"({"name":"b","datatype":"UINT8","shape":[3],"parameters":{"binary_data_size":3}}]})";
  std::string body = json + std::string(8, 'x') + "abc";
  core::InferRequest r;
  ASSERT_TRUE(Decode(body, &r, json.size()).ok());
  EXPECT_EQ(r.inputs[0].bytes().data(), body.data() + json.size());
  EXPECT_EQ(r.inputs[1].bytes(), "abc");
  core::InferRequest short_r;
  auto st = Decode(body.substr(0, body.size() - 1), &short_r, json.size());
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("expecting 1 additional bytes"), std::string::npos) << st.message();
  core::InferRequest extra_r;
  st = Decode(body + "zz", &extra_r, json.size());
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("unexpected additional input data"), std::string::npos);
}

struct BadCase {
  const char* body;
  const char* fragment;
};

class KserveJsonBad : public testing::TestWithParam<BadCase> {};

TEST_P(KserveJsonBad, RefusedWithAMessageNamingTheProblem) {
  core::InferRequest r;
  auto st = Decode(GetParam().body, &r);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find(GetParam().fragment), std::string::npos) << st.message();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, KserveJsonBad,
    testing::Values(
        BadCase{"{", "malformed JSON"}, BadCase{"[1]", "must be a JSON object"},
        BadCase{"{}", "'inputs' array"},
        BadCase{R"({"inputs":[{"datatype":"FP32","shape":[1],"data":[1]}]})", "'name'"},
        BadCase{R"({"inputs":[{"name":"a","datatype":"FLOAT","shape":[1],"data":[1]}]})",
                "unknown datatype 'FLOAT'"},
        BadCase{R"({"inputs":[{"name":"a","datatype":"FP32","shape":[3],"data":[1,2]}]})",
                "needs 3 elements, 'data' has 2"},
        BadCase{R"({"inputs":[{"name":"a","datatype":"FP32","shape":[-1],"data":[1]}]})",
                "negative"},
        BadCase{R"({"inputs":[{"name":"a","datatype":"FP32","shape":[9223372036854775808],"data":[1]}]})",
                "overflows"},
        BadCase{R"({"inputs":[{"name":"a","datatype":"FP32","shape":[4294967296,4294967296],"data":[1]}]})",
                "64 bits"},
        BadCase{R"({"inputs":[{"name":"a","datatype":"INT8","shape":[1],"data":[300]}]})",
                "out of range for INT8"},
        BadCase{R"({"inputs":[{"name":"a","datatype":"UINT8","shape":[1],"data":[-1]}]})",
                "out of range for UINT8"},
        BadCase{R"({"inputs":[{"name":"a","datatype":"INT32","shape":[1],"data":[1.5]}]})",
                "expects integers"},
        BadCase{R"({"inputs":[{"name":"a","datatype":"BOOL","shape":[1],"data":[1]}]})",
                "true or false"},
        BadCase{R"({"inputs":[{"name":"a","datatype":"FP16","shape":[1],"data":[1]}]})",
                "binary data format"},
        BadCase{R"({"inputs":[{"name":"a","datatype":"FP32","shape":[1]}]})", "exactly one of"},
        BadCase{R"({"inputs":[{"name":"a","datatype":"FP32","shape":[1],"data":[1],"parameters":{"binary_data_size":4}}]})",
                "exactly one of"},
        BadCase{R"({"id":5,"inputs":[]})", "'id' must be a string"},
        BadCase{R"({"inputs":[],"outputs":[{"name":"o","parameters":{"binary_data":1}}]})",
                "binary_data must be a boolean"}));

TEST(KserveJson, EncodesJsonAndBinaryOutputs) {
  core::InferRequest req;
  req.parameters["binary_data_output"] = true;
  req.outputs.push_back({"b", false, true});  // b explicitly JSON
  req.outputs.push_back({"a", false, false});
  core::InferResponse resp;
  resp.model_name = "m";
  resp.model_version = 3;
  resp.id = "x";
  float vals[2] = {1.5f, -2.0f};
  resp.outputs.push_back(core::Tensor::Owned("a", DataType::kFp32, {2},
                                             std::string(reinterpret_cast<char*>(vals), 8)));
  std::string s;
  core::AppendBytesElement(s, "hey");
  resp.outputs.push_back(core::Tensor::Owned("b", DataType::kBytes, {1}, s));
  auto enc = EncodeInferResponse(resp, req);
  EXPECT_TRUE(enc.has_binary);
  const std::string json = enc.body.substr(0, enc.json_length);
  EXPECT_EQ(json,
            R"({"model_name":"m","model_version":"3","id":"x","outputs":[)"
            R"({"name":"a","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":8}},)"
            R"({"name":"b","datatype":"BYTES","shape":[1],"data":["hey"]}]})");
  EXPECT_EQ(enc.body.substr(enc.json_length), std::string(reinterpret_cast<char*>(vals), 8));
}

TEST(KserveJson, RawBinaryRequestDerivesTheVariableDimension) {
  const std::string body(24, 'x');
  core::InferRequest r;
  ASSERT_TRUE(DecodeRawBinaryRequest(body, "in", DataType::kFp32, {-1, 2, -1}, true, &r).ok());
  EXPECT_EQ(r.inputs[0].shape(), (core::Shape{1, 2, 3}));
  EXPECT_TRUE(std::get<bool>(r.parameters.at("binary_data_output")));
  core::InferRequest two;
  EXPECT_FALSE(DecodeRawBinaryRequest(body, "in", DataType::kFp32, {-1, -1}, false, &two).ok());
  core::InferRequest uneven;
  EXPECT_FALSE(DecodeRawBinaryRequest(std::string(10, 'x'), "in", DataType::kFp32, {-1, 2, -1},
                                      true, &uneven).ok());
}

TEST(KserveJson, IndexRequest) {
  EXPECT_FALSE(DecodeIndexRequest("").value());
  EXPECT_TRUE(DecodeIndexRequest(R"({"ready":true})").value());
  EXPECT_FALSE(DecodeIndexRequest(R"({})").value());
  EXPECT_FALSE(DecodeIndexRequest(R"({"ready":1})").ok());
  EXPECT_FALSE(DecodeIndexRequest("nope").ok());
}

}  // namespace
}  // namespace slipway::frontends::http
