// The arithmetic of int8 quantization, as ONNX's QuantizeLinear / DequantizeLinear define it
// (x ≈ (q - zero_point) * scale), and the collection of activation ranges for calibration.
//
// Activations are uint8 with a zero point (the range always includes 0, so 0 is exact); weights
// are int8, symmetric (zero point 0) in [-127, 127], per tensor or per channel along one axis;
// biases are int32 with scale input_scale * weight_scale, as ONNX Runtime's QLinear kernels
// expect. RangeCollector keeps the minimum and maximum and a bounded, seeded reservoir sample of
// the values, so a percentile range costs bounded memory however large the calibration set.
// Thread safety: pure functions; a RangeCollector is used by one thread. Never blocks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <string_view>
#include <vector>

#include "slipway/core/status.h"

namespace slipway::app::optimize {

struct ActivationQuantization {
  float scale = 1.0f;
  uint8_t zero_point = 0;
};

// uint8 parameters covering [min(lo, 0), max(hi, 0)]; a zero-width range gets scale 1.
ActivationQuantization ActivationParams(float lo, float hi);

struct WeightQuantization {
  std::vector<int8_t> values;  // same layout as the float weights
  std::vector<float> scales;   // one (per tensor) or dims[axis] (per channel)
};

// Symmetric int8 quantization of `weights` (row-major, `dims`), per tensor when axis < 0, else one
// scale per index along `axis`. `qmax` is 127, or 63 for reduced-range (7-bit) weights.
WeightQuantization QuantizeWeights(const std::vector<float>& weights,
                                   const std::vector<int64_t>& dims, int axis, int qmax = 127);

// int32 bias quantized with scale input_scale * weight_scales[i] (one weight scale for all, or
// one per element of the bias).
std::vector<int32_t> QuantizeBias(const std::vector<float>& bias, float input_scale,
                                  const std::vector<float>& weight_scales);
// The scales QuantizeBias used, per element of the bias (or one).
std::vector<float> BiasScales(float input_scale, const std::vector<float>& weight_scales);

inline constexpr float kMaxHalf = 65504.0f;

enum class CalibrationMethod { kMinMax, kPercentile };

class RangeCollector {
 public:
  explicit RangeCollector(size_t reservoir_size = size_t{1} << 18);
  void Add(const float* values, size_t count);
  size_t count() const { return seen_; }
  // [min, max] for kMinMax; for kPercentile the (100 - p)th and pth percentiles of the values
  // seen (p in (50, 100]).
  std::pair<float, float> Range(CalibrationMethod method, double percentile) const;

 private:
  size_t capacity_;
  size_t seen_ = 0;
  float min_ = 0;
  float max_ = 0;
  std::vector<float> reservoir_;
  std::mt19937_64 rng_{0x5117a7u};
};

}  // namespace slipway::app::optimize
