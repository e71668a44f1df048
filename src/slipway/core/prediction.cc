#include "slipway/core/prediction.h"

#include <cstring>
#include <vector>

namespace slipway::core {

namespace {

template <typename T>
double At(std::string_view bytes, size_t i) {
  T v;
  std::memcpy(&v, bytes.data() + i * sizeof(T), sizeof(T));
  return static_cast<double>(v);
}

}  // namespace

std::optional<Prediction> RowPrediction(const Tensor& output, int64_t row, int64_t rows) {
  const size_t width = DataTypeByteSize(output.type());
  const DataType t = output.type();
  const bool is_float = t == DataType::kFp32 || t == DataType::kFp64;
  const bool is_int = t == DataType::kInt8 || t == DataType::kInt16 || t == DataType::kInt32 ||
                      t == DataType::kInt64 || t == DataType::kUint8 || t == DataType::kUint16 ||
                      t == DataType::kUint32 || t == DataType::kUint64;
  if ((!is_float && !is_int) || width == 0 || rows < 1 || row < 0 || row >= rows) return std::nullopt;
  const size_t count = output.bytes().size() / width;
  const size_t per_row = count / static_cast<size_t>(rows);
  if (per_row == 0) return std::nullopt;
  const size_t start = per_row * static_cast<size_t>(row);
  auto value = [&](size_t i) -> double {
    switch (t) {
      case DataType::kFp32: return At<float>(output.bytes(), i);
      case DataType::kFp64: return At<double>(output.bytes(), i);
      case DataType::kInt8: return At<int8_t>(output.bytes(), i);
      case DataType::kInt16: return At<int16_t>(output.bytes(), i);
      case DataType::kInt32: return At<int32_t>(output.bytes(), i);
      case DataType::kInt64: return At<int64_t>(output.bytes(), i);
      case DataType::kUint8: return At<uint8_t>(output.bytes(), i);
      case DataType::kUint16: return At<uint16_t>(output.bytes(), i);
      case DataType::kUint32: return At<uint32_t>(output.bytes(), i);
      case DataType::kUint64: return At<uint64_t>(output.bytes(), i);
      default: return 0;
    }
  };
  if (per_row == 1) return Prediction{value(start), is_int};
  size_t best = start;
  for (size_t i = start + 1; i < start + per_row; ++i) {
    if (value(i) > value(best)) best = i;
  }
  return Prediction{static_cast<double>(best - start), true};
}

}  // namespace slipway::core
