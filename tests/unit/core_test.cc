#include <gtest/gtest.h>

#include "slipway/core/data_type.h"
#include "slipway/core/infer_request.h"
#include "slipway/core/json_writer.h"
#include "slipway/core/tensor.h"

namespace slipway::core {
namespace {

TEST(DataType, NamesRoundTrip) {
  for (auto t : {DataType::kBool, DataType::kUint8, DataType::kUint16, DataType::kUint32,
                 DataType::kUint64, DataType::kInt8, DataType::kInt16, DataType::kInt32,
                 DataType::kInt64, DataType::kFp16, DataType::kFp32, DataType::kFp64,
                 DataType::kBytes, DataType::kBf16}) {
    EXPECT_EQ(ParseDataType(DataTypeName(t)), t);
    EXPECT_EQ(ParseConfigDataType(DataTypeConfigName(t)), t);
  }
  EXPECT_EQ(DataTypeConfigName(DataType::kBytes), "TYPE_STRING");
  EXPECT_EQ(ParseDataType("fp32"), DataType::kInvalid);
  EXPECT_EQ(DataTypeByteSize(DataType::kFp64), 8u);
  EXPECT_EQ(DataTypeByteSize(DataType::kBytes), 0u);
}

TEST(Shape, ElementCountRejectsNegativeAndOverflow) {
  EXPECT_EQ(ElementCount({2, 3, 4}).value(), 24);
  EXPECT_EQ(ElementCount({}).value(), 1);
  EXPECT_EQ(ElementCount({0, 5}).value(), 0);
  EXPECT_FALSE(ElementCount({2, -1}).ok());
  auto big = ElementCount({int64_t{1} << 40, int64_t{1} << 40});
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("64 bits"), std::string::npos);
}

TEST(Tensor, ValidateSizeFixedWidth) {
  std::string bytes(24, '\0');
  EXPECT_TRUE(Tensor::Borrowed("x", DataType::kFp32, {2, 3}, bytes).ValidateSize().ok());
  auto st = Tensor::Borrowed("x", DataType::kFp32, {2, 4}, bytes).ValidateSize();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("needs 32 bytes, got 24"), std::string::npos) << st.message();
}

TEST(Tensor, BytesElements) {
  std::string bytes;
  AppendBytesElement(bytes, "ab");
  AppendBytesElement(bytes, "");
  AppendBytesElement(bytes, std::string("\0z", 2));
  EXPECT_TRUE(ValidateBytesElements(bytes, 3, "s").ok());
  EXPECT_FALSE(ValidateBytesElements(bytes, 2, "s").ok());  // trailing bytes
  EXPECT_FALSE(ValidateBytesElements(bytes, 4, "s").ok());  // missing element
  EXPECT_FALSE(ValidateBytesElements(bytes.substr(0, bytes.size() - 1), 3, "s").ok());
  auto parts = SplitBytesElements(bytes);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0], "ab");
  EXPECT_EQ(parts[1], "");
  EXPECT_EQ(parts[2], std::string("\0z", 2));
}

TEST(Tensor, OwnedBytesSurviveMoves) {
  Tensor t = Tensor::Owned("o", DataType::kUint8, {3}, "abc");
  Tensor moved = std::move(t);
  Tensor copy = moved;
  EXPECT_EQ(moved.bytes(), "abc");
  EXPECT_EQ(copy.bytes(), "abc");
  EXPECT_NE(copy.bytes().data(), moved.bytes().data());
}

TEST(ModelVersion, Parse) {
  EXPECT_EQ(ParseModelVersion("").value(), 0);
  EXPECT_EQ(ParseModelVersion("12").value(), 12);
  EXPECT_FALSE(ParseModelVersion("0").ok());
  EXPECT_FALSE(ParseModelVersion("-1").ok());
  EXPECT_FALSE(ParseModelVersion("v1").ok());
  EXPECT_FALSE(ParseModelVersion("99999999999999999999").ok());
}

TEST(JsonWriter, WritesNestedValuesWithCommas) {
  JsonWriter w;
  w.StartObject();
  w.Key("a");
  w.Int(-1);
  w.Key("b");
  w.StartArray();
  w.Float(1.5f);
  w.Double(0.1);
  w.Bool(true);
  w.Null();
  w.String("q\"\n\x01");
  w.EndArray();
  w.Key("c");
  w.StartObject();
  w.EndObject();
  w.EndObject();
  EXPECT_EQ(w.str(), R"({"a":-1,"b":[1.5,0.1,true,null,"q\"\n\u0001"],"c":{}})");
}

TEST(JsonWriter, ScaledWritesFixedDecimals) {
  JsonWriter w;
  w.StartArray();
  w.Scaled(412, 3);
  w.Scaled(0, 3);
  w.Scaled(123456789, 3);
  w.Scaled(-5, 2);
  w.Scaled(7, 0);
  w.Scaled(1, 9);
  w.EndArray();
  EXPECT_EQ(w.str(), "[0.412,0.000,123456.789,-0.05,7,0.000000001]");
}

TEST(JsonWriter, EscapesOnlyWhatJsonRequires) {
  JsonWriter w;
  w.StartArray();
  w.String("");
  w.String("plain text");
  w.String("\\lead and trail\\");
  w.String(std::string("a\0b\tc\rd\x1f", 8));
  w.String("caf\xc3\xa9 \xe2\x9c\x93");  // UTF-8 passes through as is
  w.EndArray();
  EXPECT_EQ(w.str(), "[\"\",\"plain text\",\"\\\\lead and trail\\\\\","
                     "\"a\\u0000b\\tc\\rd\\u001f\",\"caf\xc3\xa9 \xe2\x9c\x93\"]");
}

}  // namespace
}  // namespace slipway::core
