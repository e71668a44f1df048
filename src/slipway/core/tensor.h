// Tensor: a named, typed, shaped block of row-major little-endian bytes, either owned or borrowed.
//
// A borrowed tensor points into a buffer (an HTTP body, a protobuf message) that its owner keeps
// alive for as long as the tensor is used; this lets frontends hand request bytes to a runtime
// without copying. BYTES tensors hold the wire serialisation: per element a uint32 little-endian
// length followed by that many bytes.
// Thread safety: a value type; concurrent reads are safe, writes need external synchronisation.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "slipway/core/data_type.h"
#include "slipway/core/status.h"

namespace slipway::core {

using Shape = std::vector<int64_t>;

// Product of the dimensions. Fails on a negative dimension or when the product overflows int64.
Result<int64_t> ElementCount(const Shape& shape);
// "[2,3]"
std::string ShapeToString(const Shape& shape);
// Checks that `bytes` holds exactly `count` length-prefixed BYTES elements.
Status ValidateBytesElements(std::string_view bytes, int64_t count, std::string_view tensor_name);
// Splits serialised BYTES elements; `bytes` must have passed ValidateBytesElements.
std::vector<std::string_view> SplitBytesElements(std::string_view bytes);
// Appends one length-prefixed element to `out`.
void AppendBytesElement(std::string& out, std::string_view element);

class Tensor {
 public:
  Tensor() = default;
  static Tensor Borrowed(std::string name, DataType type, Shape shape, std::string_view bytes);
  static Tensor Owned(std::string name, DataType type, Shape shape, std::string bytes);

  const std::string& name() const { return name_; }
  DataType type() const { return type_; }
  const Shape& shape() const { return shape_; }
  std::string_view bytes() const { return owned_flag_ ? std::string_view(owned_) : borrowed_; }
  bool is_owned() const { return owned_flag_; }
  // Mutable access to owned bytes; the tensor must be owned.
  std::string& mutable_owned() { return owned_; }

  void set_name(std::string name) { name_ = std::move(name); }
  void set_shape(Shape shape) { shape_ = std::move(shape); }

  // Checks the byte size against type and shape (fixed-size types: count * width; BYTES: a
  // well-formed sequence of exactly `count` elements). Messages name the tensor.
  Status ValidateSize() const;

 private:
  std::string name_;
  DataType type_ = DataType::kInvalid;
  Shape shape_;
  std::string_view borrowed_;
  std::string owned_;
  bool owned_flag_ = false;
};

}  // namespace slipway::core
