#include "slipway/core/tensor.h"

#include <cstring>
#include <limits>

namespace slipway::core {

Result<int64_t> ElementCount(const Shape& shape) {
  int64_t count = 1;
  for (int64_t d : shape) {
    if (d < 0) {
      return Status::InvalidArgument("shape " + ShapeToString(shape) +
                                     " has a negative dimension " + std::to_string(d));
    }
    if (d != 0 && count > std::numeric_limits<int64_t>::max() / d) {
      return Status::InvalidArgument("shape " + ShapeToString(shape) +
                                     " has more elements than fit in 64 bits");
    }
    count *= d;
  }
  return count;
}

std::string ShapeToString(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

Status ValidateBytesElements(std::string_view bytes, int64_t count, std::string_view tensor_name) {
  size_t pos = 0;
  for (int64_t i = 0; i < count; ++i) {
    if (bytes.size() - pos < 4) {
      return Status::InvalidArgument("BYTES tensor '" + std::string(tensor_name) + "': element " +
                                     std::to_string(i) + " of " + std::to_string(count) +
                                     " is missing its 4-byte length prefix");
    }
    uint32_t len = 0;
    std::memcpy(&len, bytes.data() + pos, 4);
    pos += 4;
    if (bytes.size() - pos < len) {
      return Status::InvalidArgument("BYTES tensor '" + std::string(tensor_name) + "': element " +
                                     std::to_string(i) + " declares " + std::to_string(len) +
                                     " bytes but only " + std::to_string(bytes.size() - pos) +
                                     " remain");
    }
    pos += len;
  }
  if (pos != bytes.size()) {
    return Status::InvalidArgument("BYTES tensor '" + std::string(tensor_name) + "': " +
                                   std::to_string(bytes.size() - pos) +
                                   " unexpected bytes after the " + std::to_string(count) +
                                   " elements the shape allows");
  }
  return Status::Ok();
}

std::vector<std::string_view> SplitBytesElements(std::string_view bytes) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos + 4 <= bytes.size()) {
    uint32_t len = 0;
    std::memcpy(&len, bytes.data() + pos, 4);
    pos += 4;
    out.push_back(bytes.substr(pos, len));
    pos += len;
  }
  return out;
}

void AppendBytesElement(std::string& out, std::string_view element) {
  auto len = static_cast<uint32_t>(element.size());
  char prefix[4];
  std::memcpy(prefix, &len, 4);
  out.append(prefix, 4);
  out.append(element.data(), element.size());
}

Tensor Tensor::Borrowed(std::string name, DataType type, Shape shape, std::string_view bytes) {
  Tensor t;
  t.name_ = std::move(name);
  t.type_ = type;
  t.shape_ = std::move(shape);
  t.borrowed_ = bytes;
  return t;
}

Tensor Tensor::Owned(std::string name, DataType type, Shape shape, std::string bytes) {
  Tensor t;
  t.name_ = std::move(name);
  t.type_ = type;
  t.shape_ = std::move(shape);
  t.owned_ = std::move(bytes);
  t.owned_flag_ = true;
  return t;
}

Status Tensor::ValidateSize() const {
  ASSIGN_OR_RETURN(int64_t count, ElementCount(shape_));
  if (type_ == DataType::kBytes) return ValidateBytesElements(bytes(), count, name_);
  const size_t width = DataTypeByteSize(type_);
  if (width == 0) {
    return Status::InvalidArgument("tensor '" + name_ + "' has an invalid datatype");
  }
  if (static_cast<uint64_t>(count) > std::numeric_limits<uint64_t>::max() / width ||
      static_cast<uint64_t>(count) * width != bytes().size()) {
    return Status::InvalidArgument(
        "tensor '" + name_ + "' with shape " + ShapeToString(shape_) + " and datatype " +
        std::string(DataTypeName(type_)) + " needs " +
        std::to_string(static_cast<unsigned long long>(count) * width) + " bytes, got " +
        std::to_string(bytes().size()));
  }
  return Status::Ok();
}

}  // namespace slipway::core
