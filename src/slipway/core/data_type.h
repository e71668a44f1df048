// DataType: the element types of the KServe v2 protocol, with their wire and config names.
//
// Thread safety: pure functions over an enum. Nothing here allocates or blocks.
#pragma once

#include <cstddef>
#include <string_view>

namespace slipway::core {

enum class DataType {
  kInvalid = 0,
  kBool,
  kUint8,
  kUint16,
  kUint32,
  kUint64,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kFp16,
  kFp32,
  kFp64,
  kBytes,  // variable length; serialised as uint32 little-endian length + bytes per element
  kBf16,
};

// "FP32", "BYTES", ... as used on the wire; "INVALID" for kInvalid.
std::string_view DataTypeName(DataType type);
// Inverse of DataTypeName; kInvalid when unknown. Case-sensitive, as the protocol is.
DataType ParseDataType(std::string_view name);
// "TYPE_FP32", "TYPE_STRING" (for BYTES), as in Triton's model configuration.
std::string_view DataTypeConfigName(DataType type);
// Accepts both "TYPE_FP32"/"TYPE_STRING" and the wire names ("FP32", "BYTES").
DataType ParseConfigDataType(std::string_view name);
// Bytes per element; 0 for BYTES (variable) and kInvalid.
size_t DataTypeByteSize(DataType type);

}  // namespace slipway::core
