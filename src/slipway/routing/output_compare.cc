#include "slipway/routing/output_compare.h"

#include <cmath>
#include <cstring>

namespace slipway::routing {

namespace {

template <typename T>
std::vector<double> Values(std::string_view bytes) {
  std::vector<double> out(bytes.size() / sizeof(T));
  for (size_t i = 0; i < out.size(); ++i) {
    T v;
    std::memcpy(&v, bytes.data() + i * sizeof(T), sizeof(T));
    out[i] = static_cast<double>(v);
  }
  return out;
}

bool TensorsAgree(const core::Tensor& a, const core::Tensor& b) {
  if (a.type() != b.type() || a.shape() != b.shape()) return false;
  const bool fp32 = a.type() == core::DataType::kFp32;
  const bool fp64 = a.type() == core::DataType::kFp64;
  if (!fp32 && !fp64) return a.bytes() == b.bytes();
  const auto x = fp32 ? Values<float>(a.bytes()) : Values<double>(a.bytes());
  const auto y = fp32 ? Values<float>(b.bytes()) : Values<double>(b.bytes());
  if (x.size() != y.size()) return false;
  const auto& shape = a.shape();
  if (shape.size() == 2 && shape[1] > 1) {
    const size_t cols = static_cast<size_t>(shape[1]);
    for (size_t row = 0; row * cols < x.size(); ++row) {
      size_t ax = 0, ay = 0;
      for (size_t c = 1; c < cols; ++c) {
        if (x[row * cols + c] > x[row * cols + ax]) ax = c;
        if (y[row * cols + c] > y[row * cols + ay]) ay = c;
      }
      if (ax != ay) return false;
    }
    return true;
  }
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i]) != std::isnan(y[i])) return false;
    if (std::fabs(x[i] - y[i]) > 1e-5 + 1e-3 * std::fabs(y[i])) return false;
  }
  return true;
}

}  // namespace

bool OutputsAgree(const std::vector<core::Tensor>& a, const std::vector<core::Tensor>& b) {
  for (const core::Tensor& ta : a) {
    for (const core::Tensor& tb : b) {
      if (ta.name() == tb.name() && !TensorsAgree(ta, tb)) return false;
    }
  }
  return true;
}

}  // namespace slipway::routing
