#include "slipway/core/data_type.h"

#include <array>
#include <utility>

namespace slipway::core {
namespace {

struct TypeInfo {
  DataType type;
  std::string_view wire;
  std::string_view config;
  size_t size;
};

constexpr std::array<TypeInfo, 14> kTypes{{
    {DataType::kBool, "BOOL", "TYPE_BOOL", 1},
    {DataType::kUint8, "UINT8", "TYPE_UINT8", 1},
    {DataType::kUint16, "UINT16", "TYPE_UINT16", 2},
    {DataType::kUint32, "UINT32", "TYPE_UINT32", 4},
    {DataType::kUint64, "UINT64", "TYPE_UINT64", 8},
    {DataType::kInt8, "INT8", "TYPE_INT8", 1},
    {DataType::kInt16, "INT16", "TYPE_INT16", 2},
    {DataType::kInt32, "INT32", "TYPE_INT32", 4},
    {DataType::kInt64, "INT64", "TYPE_INT64", 8},
    {DataType::kFp16, "FP16", "TYPE_FP16", 2},
    {DataType::kFp32, "FP32", "TYPE_FP32", 4},
    {DataType::kFp64, "FP64", "TYPE_FP64", 8},
    {DataType::kBytes, "BYTES", "TYPE_STRING", 0},
    {DataType::kBf16, "BF16", "TYPE_BF16", 2},
}};

const TypeInfo* Find(DataType type) {
  for (const auto& t : kTypes) {
    if (t.type == type) return &t;
  }
  return nullptr;
}

}  // namespace

std::string_view DataTypeName(DataType type) {
  const TypeInfo* t = Find(type);
  return t ? t->wire : "INVALID";
}

DataType ParseDataType(std::string_view name) {
  for (const auto& t : kTypes) {
    if (t.wire == name) return t.type;
  }
  return DataType::kInvalid;
}

std::string_view DataTypeConfigName(DataType type) {
  const TypeInfo* t = Find(type);
  return t ? t->config : "TYPE_INVALID";
}

DataType ParseConfigDataType(std::string_view name) {
  for (const auto& t : kTypes) {
    if (t.config == name || t.wire == name) return t.type;
  }
  return DataType::kInvalid;
}

size_t DataTypeByteSize(DataType type) {
  const TypeInfo* t = Find(type);
  return t ? t->size : 0;
}

}  // namespace slipway::core
