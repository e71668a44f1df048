// Tests for the gRPC codec: ModelInferRequest decoding (typed and raw contents), response and
// config encoding, and the Status -> gRPC code mapping.
#include "slipway/frontends/grpc/grpc_codec.h"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace slipway::frontends::grpc {
namespace {

using core::DataType;
using core::StatusCode;
using InputTensor = inference::ModelInferRequest::InferInputTensor;

InputTensor* AddInput(inference::ModelInferRequest& req, const std::string& name,
                      const std::string& datatype, std::vector<int64_t> shape) {
  InputTensor* t = req.add_inputs();
  t->set_name(name);
  t->set_datatype(datatype);
  for (int64_t d : shape) t->add_shape(d);
  return t;
}

std::string Bytes(std::initializer_list<unsigned char> bytes) {
  return std::string(bytes.begin(), bytes.end());
}

// Host bytes of the values; the codec promises little-endian, and the tests run on LE hosts.
template <typename T>
std::string HostBytes(std::vector<T> values) {
  std::string s(values.size() * sizeof(T), '\0');
  if (!s.empty()) std::memcpy(s.data(), values.data(), s.size());
  return s;
}

// Decodes a request with one input and returns its bytes, asserting success.
core::InferRequest DecodeOk(const inference::ModelInferRequest& req) {
  core::InferRequest out;
  core::Status st = DecodeModelInferRequest(req, &out);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

core::Status DecodeStatus(const inference::ModelInferRequest& req) {
  core::InferRequest out;
  return DecodeModelInferRequest(req, &out);
}

TEST(GrpcCodecDecode, HeaderFields) {
  inference::ModelInferRequest req;
  req.set_model_name("resnet");
  req.set_model_version("3");
  req.set_id("req-1");
  core::InferRequest out = DecodeOk(req);
  EXPECT_EQ(out.model_name, "resnet");
  EXPECT_EQ(out.model_version, 3);
  EXPECT_EQ(out.id, "req-1");
  EXPECT_TRUE(out.inputs.empty());
  EXPECT_TRUE(out.outputs.empty());

  req.set_model_version("");
  EXPECT_EQ(DecodeOk(req).model_version, 0);

  req.set_model_version("latest");
  EXPECT_EQ(DecodeStatus(req).code(), StatusCode::kInvalidArgument);
}

TEST(GrpcCodecDecode, RequestParameters) {
  inference::ModelInferRequest req;
  auto& params = *req.mutable_parameters();
  params["b"].set_bool_param(true);
  params["i"].set_int64_param(-5);
  params["s"].set_string_param("x");
  params["d"].set_double_param(0.5);
  params["u"].set_uint64_param(std::numeric_limits<uint64_t>::max());
  core::InferRequest out = DecodeOk(req);
  ASSERT_EQ(out.parameters.size(), 5u);
  EXPECT_EQ(std::get<bool>(out.parameters.at("b")), true);
  EXPECT_EQ(std::get<int64_t>(out.parameters.at("i")), -5);
  EXPECT_EQ(std::get<std::string>(out.parameters.at("s")), "x");
  EXPECT_EQ(std::get<double>(out.parameters.at("d")), 0.5);
  EXPECT_EQ(std::get<uint64_t>(out.parameters.at("u")), std::numeric_limits<uint64_t>::max());

  params["empty"];  // no oneof member set
  core::Status st = DecodeStatus(req);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("empty"), std::string::npos) << st.message();
}

struct TypedCase {
  std::string datatype;
  DataType type;
  void (*fill)(inference::InferTensorContents*);
  std::string expected;
  std::vector<int64_t> shape;
};

TEST(GrpcCodecDecode, TypedContentsEveryDatatype) {
  const std::vector<TypedCase> cases = {
      {"BOOL", DataType::kBool,
       [](inference::InferTensorContents* c) {
         c->add_bool_contents(true);
         c->add_bool_contents(false);
         c->add_bool_contents(true);
       },
       Bytes({1, 0, 1}), {3}},
      {"INT8", DataType::kInt8,
       [](inference::InferTensorContents* c) {
         c->add_int_contents(-128);
         c->add_int_contents(127);
         c->add_int_contents(-1);
       },
       Bytes({0x80, 0x7f, 0xff}), {3}},
      {"INT16", DataType::kInt16,
       [](inference::InferTensorContents* c) {
         c->add_int_contents(-2);
         c->add_int_contents(0x1234);
       },
       Bytes({0xfe, 0xff, 0x34, 0x12}), {2}},
      {"INT32", DataType::kInt32,
       [](inference::InferTensorContents* c) {
         c->add_int_contents(1);
         c->add_int_contents(-1);
       },
       Bytes({1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}), {1, 2}},
      {"INT64", DataType::kInt64,
       [](inference::InferTensorContents* c) { c->add_int64_contents(0x0102030405060708); },
       Bytes({8, 7, 6, 5, 4, 3, 2, 1}), {1}},
      {"UINT8", DataType::kUint8,
       [](inference::InferTensorContents* c) {
         c->add_uint_contents(0);
         c->add_uint_contents(255);
       },
       Bytes({0, 255}), {2}},
      {"UINT16", DataType::kUint16,
       [](inference::InferTensorContents* c) { c->add_uint_contents(0xabcd); },
       Bytes({0xcd, 0xab}), {1}},
      {"UINT32", DataType::kUint32,
       [](inference::InferTensorContents* c) { c->add_uint_contents(0xdeadbeef); },
       Bytes({0xef, 0xbe, 0xad, 0xde}), {1}},
      {"UINT64", DataType::kUint64,
       [](inference::InferTensorContents* c) {
         c->add_uint64_contents(std::numeric_limits<uint64_t>::max());
       },
       Bytes({255, 255, 255, 255, 255, 255, 255, 255}), {1}},
      {"FP32", DataType::kFp32,
       [](inference::InferTensorContents* c) {
         c->add_fp32_contents(1.0f);
         c->add_fp32_contents(-2.5f);
       },
       Bytes({0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc0}), {2}},
      {"FP64", DataType::kFp64,
       [](inference::InferTensorContents* c) { c->add_fp64_contents(1.0); },
       Bytes({0, 0, 0, 0, 0, 0, 0xf0, 0x3f}), {1}},
      {"BYTES", DataType::kBytes,
       [](inference::InferTensorContents* c) {
         c->add_bytes_contents("ab");
         c->add_bytes_contents("");
       },
       Bytes({2, 0, 0, 0, 'a', 'b', 0, 0, 0, 0}), {2}},
  };
  for (const TypedCase& tc : cases) {
    SCOPED_TRACE(tc.datatype);
    inference::ModelInferRequest req;
    InputTensor* t = AddInput(req, "x", tc.datatype, tc.shape);
    tc.fill(t->mutable_contents());
    core::InferRequest out = DecodeOk(req);
    ASSERT_EQ(out.inputs.size(), 1u);
    const core::Tensor& tensor = out.inputs[0];
    EXPECT_EQ(tensor.name(), "x");
    EXPECT_EQ(tensor.type(), tc.type);
    EXPECT_EQ(tensor.shape(), tc.shape);
    EXPECT_TRUE(tensor.is_owned());
    EXPECT_EQ(std::string(tensor.bytes()), tc.expected);
    EXPECT_TRUE(tensor.ValidateSize().ok()) << tensor.ValidateSize().ToString();
  }
}

TEST(GrpcCodecDecode, LargeFp32ContentsMatchHostBytes) {
  inference::ModelInferRequest req;
  std::vector<float> values;
  InputTensor* t = AddInput(req, "x", "FP32", {1000});
  for (int i = 0; i < 1000; ++i) {
    values.push_back(static_cast<float>(i) * 0.25f);
    t->mutable_contents()->add_fp32_contents(values.back());
  }
  core::InferRequest out = DecodeOk(req);
  EXPECT_EQ(std::string(out.inputs[0].bytes()), HostBytes(values));
}

TEST(GrpcCodecDecode, RawContentsAreBorrowed) {
  inference::ModelInferRequest req;
  AddInput(req, "a", "FP32", {2});
  AddInput(req, "b", "BYTES", {1});
  req.add_raw_input_contents(HostBytes(std::vector<float>{1.0f, 2.0f}));
  std::string bytes_element;
  core::AppendBytesElement(bytes_element, "hello");
  req.add_raw_input_contents(bytes_element);

  core::InferRequest out = DecodeOk(req);
  ASSERT_EQ(out.inputs.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const core::Tensor& tensor = out.inputs[i];
    EXPECT_FALSE(tensor.is_owned());
    EXPECT_EQ(tensor.bytes().data(), req.raw_input_contents(i).data());
    EXPECT_EQ(tensor.bytes().size(), req.raw_input_contents(i).size());
  }
  EXPECT_EQ(out.inputs[0].type(), DataType::kFp32);
  EXPECT_EQ(out.inputs[1].type(), DataType::kBytes);
  EXPECT_EQ(out.inputs[1].shape(), core::Shape({1}));
}

TEST(GrpcCodecDecode, RawFp16Accepted) {
  inference::ModelInferRequest req;
  AddInput(req, "h", "FP16", {2});
  AddInput(req, "g", "BF16", {1});
  req.add_raw_input_contents(Bytes({0x00, 0x3c, 0x00, 0x40}));
  req.add_raw_input_contents(Bytes({0x80, 0x3f}));
  core::InferRequest out = DecodeOk(req);
  ASSERT_EQ(out.inputs.size(), 2u);
  EXPECT_EQ(out.inputs[0].type(), DataType::kFp16);
  EXPECT_EQ(out.inputs[1].type(), DataType::kBf16);
}

TEST(GrpcCodecDecode, MixingRawAndContentsRefused) {
  inference::ModelInferRequest req;
  AddInput(req, "a", "FP32", {1});
  InputTensor* b = AddInput(req, "b", "FP32", {1});
  b->mutable_contents()->add_fp32_contents(1.0f);
  req.add_raw_input_contents(HostBytes(std::vector<float>{1.0f}));
  req.add_raw_input_contents(HostBytes(std::vector<float>{2.0f}));
  core::Status st = DecodeStatus(req);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("'b'"), std::string::npos) << st.message();
}

TEST(GrpcCodecDecode, RawCountMismatchRefused) {
  inference::ModelInferRequest req;
  AddInput(req, "a", "FP32", {1});
  AddInput(req, "b", "FP32", {1});
  req.add_raw_input_contents(HostBytes(std::vector<float>{1.0f}));
  core::Status st = DecodeStatus(req);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("got 1 raw entries for 2 inputs"), std::string::npos)
      << st.message();

  req.add_raw_input_contents(HostBytes(std::vector<float>{1.0f}));
  req.add_raw_input_contents(HostBytes(std::vector<float>{1.0f}));
  st = DecodeStatus(req);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("got 3 raw entries for 2 inputs"), std::string::npos)
      << st.message();
}

TEST(GrpcCodecDecode, NarrowingOutOfRangeRefused) {
  struct Case {
    std::string datatype;
    bool is_signed;
    int64_t value;
  };
  const std::vector<Case> cases = {{"INT8", true, 128},       {"INT8", true, -129},
                                   {"INT16", true, 32768},    {"INT16", true, -40000},
                                   {"UINT8", false, 256},     {"UINT16", false, 65536}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.datatype + " " + std::to_string(c.value));
    inference::ModelInferRequest req;
    InputTensor* t = AddInput(req, "small", c.datatype, {2});
    if (c.is_signed) {
      t->mutable_contents()->add_int_contents(0);
      t->mutable_contents()->add_int_contents(static_cast<int32_t>(c.value));
    } else {
      t->mutable_contents()->add_uint_contents(0);
      t->mutable_contents()->add_uint_contents(static_cast<uint32_t>(c.value));
    }
    core::Status st = DecodeStatus(req);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(st.message().find("'small'"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find(std::to_string(c.value)), std::string::npos) << st.message();
  }
}

TEST(GrpcCodecDecode, Fp16AndBf16TypedRefused) {
  for (const std::string datatype : {"FP16", "BF16"}) {
    SCOPED_TRACE(datatype);
    inference::ModelInferRequest req;
    InputTensor* t = AddInput(req, "half", datatype, {1});
    t->mutable_contents()->add_fp32_contents(1.0f);
    core::Status st = DecodeStatus(req);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(st.message().find("send FP16/BF16 in raw_input_contents"), std::string::npos)
        << st.message();
  }
}

TEST(GrpcCodecDecode, UnknownDatatypeRefused) {
  inference::ModelInferRequest req;
  AddInput(req, "x", "FLOAT32", {1})->mutable_contents()->add_fp32_contents(1.0f);
  core::Status st = DecodeStatus(req);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("'x'"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("FLOAT32"), std::string::npos) << st.message();

  inference::ModelInferRequest lower;
  AddInput(lower, "y", "fp32", {1});
  lower.add_raw_input_contents(HostBytes(std::vector<float>{1.0f}));
  EXPECT_EQ(DecodeStatus(lower).code(), StatusCode::kInvalidArgument);
}

TEST(GrpcCodecDecode, ContentsFieldMustMatchDatatype) {
  inference::ModelInferRequest req;
  AddInput(req, "x", "INT32", {1})->mutable_contents()->add_fp32_contents(1.0f);
  core::Status st = DecodeStatus(req);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("fp32_contents"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("int_contents"), std::string::npos) << st.message();

  inference::ModelInferRequest mixed;
  InputTensor* t = AddInput(mixed, "y", "FP32", {2});
  t->mutable_contents()->add_fp32_contents(1.0f);
  t->mutable_contents()->add_fp64_contents(1.0);
  EXPECT_EQ(DecodeStatus(mixed).code(), StatusCode::kInvalidArgument);
}

TEST(GrpcCodecDecode, MissingDataRefusedUnlessEmpty) {
  inference::ModelInferRequest req;
  AddInput(req, "x", "FP32", {2});
  core::Status st = DecodeStatus(req);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("'x'"), std::string::npos) << st.message();

  inference::ModelInferRequest empty;
  AddInput(empty, "x", "FP32", {0, 4});
  core::InferRequest out = DecodeOk(empty);
  ASSERT_EQ(out.inputs.size(), 1u);
  EXPECT_TRUE(out.inputs[0].bytes().empty());
  EXPECT_TRUE(out.inputs[0].ValidateSize().ok());
}

TEST(GrpcCodecDecode, NegativeDimsRefused) {
  inference::ModelInferRequest req;
  AddInput(req, "x", "FP32", {-1, 2});
  req.add_raw_input_contents(HostBytes(std::vector<float>{1.0f, 2.0f}));
  core::Status st = DecodeStatus(req);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("-1"), std::string::npos) << st.message();
}

TEST(GrpcCodecDecode, CountsAreLeftToValidateSize) {
  // Three values for a shape of two: the codec converts, ValidateSize (the core's job) refuses.
  inference::ModelInferRequest req;
  InputTensor* t = AddInput(req, "x", "INT64", {2});
  for (int i = 0; i < 3; ++i) t->mutable_contents()->add_int64_contents(i);
  core::InferRequest out = DecodeOk(req);
  ASSERT_EQ(out.inputs.size(), 1u);
  EXPECT_FALSE(out.inputs[0].ValidateSize().ok());
}

TEST(GrpcCodecDecode, RequestedOutputs) {
  inference::ModelInferRequest req;
  req.add_outputs()->set_name("probs");
  auto* second = req.add_outputs();
  second->set_name("labels");
  (*second->mutable_parameters())["binary_data"].set_bool_param(true);
  core::InferRequest out = DecodeOk(req);
  ASSERT_EQ(out.outputs.size(), 2u);
  EXPECT_EQ(out.outputs[0].name, "probs");
  EXPECT_EQ(out.outputs[1].name, "labels");

  (*second->mutable_parameters())["classification"].set_int64_param(3);
  core::Status st = DecodeStatus(req);
  EXPECT_EQ(st.code(), StatusCode::kUnimplemented);
  EXPECT_NE(st.message().find("'labels'"), std::string::npos) << st.message();
}

TEST(GrpcCodecDecode, SharedMemoryRefused) {
  inference::ModelInferRequest req;
  InputTensor* t = AddInput(req, "x", "FP32", {1});
  (*t->mutable_parameters())["shared_memory_region"].set_string_param("region0");
  EXPECT_EQ(DecodeStatus(req).code(), StatusCode::kUnimplemented);
}

TEST(GrpcCodecEncode, EveryOutputInRawContentsInOrder) {
  core::InferResponse resp;
  resp.model_name = "m";
  resp.model_version = 7;
  resp.id = "abc";
  resp.outputs.push_back(core::Tensor::Owned("first", DataType::kFp32, {2},
                                             HostBytes(std::vector<float>{1.0f, 2.0f})));
  resp.outputs.push_back(core::Tensor::Owned("empty", DataType::kInt64, {0}, std::string()));
  std::string strings;
  core::AppendBytesElement(strings, "hi");
  const std::string borrowed_source = Bytes({9, 8, 7});
  resp.outputs.push_back(core::Tensor::Owned("text", DataType::kBytes, {1}, strings));
  resp.outputs.push_back(
      core::Tensor::Borrowed("view", DataType::kUint8, {1, 3}, borrowed_source));

  inference::ModelInferResponse out;
  EncodeModelInferResponse(resp, &out);
  EXPECT_EQ(out.model_name(), "m");
  EXPECT_EQ(out.model_version(), "7");
  EXPECT_EQ(out.id(), "abc");
  ASSERT_EQ(out.outputs_size(), 4);
  ASSERT_EQ(out.raw_output_contents_size(), 4);
  const std::vector<std::string> names = {"first", "empty", "text", "view"};
  const std::vector<std::string> datatypes = {"FP32", "INT64", "BYTES", "UINT8"};
  for (int i = 0; i < 4; ++i) {
    SCOPED_TRACE(names[i]);
    EXPECT_EQ(out.outputs(i).name(), names[i]);
    EXPECT_EQ(out.outputs(i).datatype(), datatypes[i]);
    EXPECT_EQ(std::vector<int64_t>(out.outputs(i).shape().begin(), out.outputs(i).shape().end()),
              resp.outputs[i].shape());
    EXPECT_EQ(out.raw_output_contents(i), std::string(resp.outputs[i].bytes()));
    EXPECT_FALSE(out.outputs(i).has_contents());
  }
}

TEST(GrpcCodecEncode, ModelConfig) {
  core::ModelConfig config;
  config.name = "resnet";
  config.platform = "onnxruntime_onnx";
  config.backend = "onnxruntime";
  config.max_batch_size = 8;
  config.inputs.push_back({"input", DataType::kFp32, {3, 224, 224}, true});
  config.outputs.push_back({"probs", DataType::kFp32, {1000}, true});
  config.outputs.push_back({"label", DataType::kBytes, {-1}, true});
  config.version_policy.kind = core::VersionPolicy::Kind::kSpecific;
  config.version_policy.specific = {1, 3};
  config.instance_count = 2;
  config.dynamic_batching.enabled = true;
  config.dynamic_batching.preferred_batch_sizes = {4, 8};
  config.dynamic_batching.max_queue_delay_us = 100;
  config.default_model_filename = "model.onnx";

  inference::ModelConfig out;
  EncodeModelConfig(config, &out);
  EXPECT_EQ(out.name(), "resnet");
  EXPECT_EQ(out.platform(), "onnxruntime_onnx");
  EXPECT_EQ(out.backend(), "onnxruntime");
  EXPECT_EQ(out.max_batch_size(), 8);
  ASSERT_EQ(out.input_size(), 1);
  EXPECT_EQ(out.input(0).name(), "input");
  EXPECT_EQ(out.input(0).data_type(), inference::TYPE_FP32);
  EXPECT_EQ(out.input(0).dims_size(), 3);
  EXPECT_EQ(out.input(0).dims(2), 224);
  ASSERT_EQ(out.output_size(), 2);
  EXPECT_EQ(out.output(1).data_type(), inference::TYPE_STRING);
  EXPECT_EQ(out.output(1).dims(0), -1);
  ASSERT_TRUE(out.version_policy().has_specific());
  EXPECT_EQ(out.version_policy().specific().versions_size(), 2);
  ASSERT_EQ(out.instance_group_size(), 1);
  EXPECT_EQ(out.instance_group(0).kind(), inference::ModelInstanceGroup::KIND_CPU);
  EXPECT_EQ(out.instance_group(0).count(), 2);
  ASSERT_TRUE(out.has_dynamic_batching());
  EXPECT_EQ(out.dynamic_batching().preferred_batch_size_size(), 2);
  EXPECT_EQ(out.dynamic_batching().max_queue_delay_microseconds(), 100u);
  EXPECT_EQ(out.default_model_filename(), "model.onnx");

  config.dynamic_batching.enabled = false;
  config.version_policy = {};
  config.max_batch_size.reset();
  inference::ModelConfig plain;
  EncodeModelConfig(config, &plain);
  EXPECT_FALSE(plain.has_dynamic_batching());
  EXPECT_EQ(plain.max_batch_size(), 0);
  ASSERT_TRUE(plain.version_policy().has_latest());
  EXPECT_EQ(plain.version_policy().latest().num_versions(), 1u);
}

TEST(GrpcCodecStatus, ToGrpcStatusMapping) {
  EXPECT_TRUE(ToGrpcStatus(core::Status::Ok()).ok());
  const std::vector<std::pair<StatusCode, ::grpc::StatusCode>> cases = {
      {StatusCode::kInvalidArgument, ::grpc::StatusCode::INVALID_ARGUMENT},
      {StatusCode::kNotFound, ::grpc::StatusCode::NOT_FOUND},
      {StatusCode::kUnavailable, ::grpc::StatusCode::UNAVAILABLE},
      {StatusCode::kInternal, ::grpc::StatusCode::INTERNAL},
      {StatusCode::kUnimplemented, ::grpc::StatusCode::UNIMPLEMENTED},
      {StatusCode::kAlreadyExists, ::grpc::StatusCode::ALREADY_EXISTS},
      {StatusCode::kCancelled, ::grpc::StatusCode::CANCELLED},
      {StatusCode::kResourceExhausted, ::grpc::StatusCode::RESOURCE_EXHAUSTED},
      {StatusCode::kDeadlineExceeded, ::grpc::StatusCode::DEADLINE_EXCEEDED},
      {StatusCode::kFailedPrecondition, ::grpc::StatusCode::FAILED_PRECONDITION},
  };
  for (const auto& [code, grpc_code] : cases) {
    SCOPED_TRACE(core::StatusCodeName(code));
    ::grpc::Status st = ToGrpcStatus(core::Status(code, "the message"));
    EXPECT_EQ(st.error_code(), grpc_code);
    EXPECT_EQ(st.error_message(), "the message");
  }
}

}  // namespace
}  // namespace slipway::frontends::grpc
