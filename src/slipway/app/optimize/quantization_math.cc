#include "slipway/app/optimize/quantization_math.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

namespace slipway::app::optimize {

ActivationQuantization ActivationParams(float lo, float hi) {
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  ActivationQuantization q;
  if (!(hi - lo > 0) || !std::isfinite(hi - lo)) return q;
  q.scale = (hi - lo) / 255.0f;
  const float zp = std::nearbyint(-lo / q.scale);
  q.zero_point = static_cast<uint8_t>(std::clamp(zp, 0.0f, 255.0f));
  return q;
}

WeightQuantization QuantizeWeights(const std::vector<float>& weights,
                                   const std::vector<int64_t>& dims, int axis, int qmax) {
  WeightQuantization out;
  out.values.resize(weights.size());
  int64_t channels = 1;
  int64_t inner = 1;  // elements after the axis
  if (axis >= 0 && axis < static_cast<int>(dims.size())) {
    channels = dims[static_cast<size_t>(axis)];
    for (size_t i = static_cast<size_t>(axis) + 1; i < dims.size(); ++i) inner *= dims[i];
  }
  std::vector<float> absmax(static_cast<size_t>(std::max<int64_t>(channels, 1)), 0.0f);
  auto channel_of = [&](size_t i) {
    return channels == 1 ? size_t{0} : static_cast<size_t>((static_cast<int64_t>(i) / inner) % channels);
  };
  for (size_t i = 0; i < weights.size(); ++i) {
    float& m = absmax[channel_of(i)];
    if (std::isfinite(weights[i])) m = std::max(m, std::fabs(weights[i]));
  }
  out.scales.resize(absmax.size());
  for (size_t c = 0; c < absmax.size(); ++c) {
    out.scales[c] = absmax[c] > 0 ? absmax[c] / static_cast<float>(qmax) : 1.0f;
  }
  for (size_t i = 0; i < weights.size(); ++i) {
    float q = std::nearbyint(weights[i] / out.scales[channel_of(i)]);
    if (std::isnan(q)) q = 0;
    out.values[i] = static_cast<int8_t>(std::clamp(q, -static_cast<float>(qmax), static_cast<float>(qmax)));
  }
  return out;
}

std::vector<float> BiasScales(float input_scale, const std::vector<float>& weight_scales) {
  std::vector<float> s(weight_scales.size());
  for (size_t i = 0; i < s.size(); ++i) s[i] = input_scale * weight_scales[i];
  return s;
}

std::vector<int32_t> QuantizeBias(const std::vector<float>& bias, float input_scale,
                                  const std::vector<float>& weight_scales) {
  const std::vector<float> scales = BiasScales(input_scale, weight_scales);
  std::vector<int32_t> out(bias.size());
  for (size_t i = 0; i < bias.size(); ++i) {
    const double s = scales.size() == 1 ? scales[0] : scales[i];
    const double q = s > 0 ? std::nearbyint(static_cast<double>(bias[i]) / s) : 0.0;
    out[i] = static_cast<int32_t>(std::clamp(q, -2147483647.0, 2147483647.0));
  }
  return out;
}

RangeCollector::RangeCollector(size_t reservoir_size) : capacity_(reservoir_size) {}

void RangeCollector::Add(const float* values, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    const float v = values[i];
    if (!std::isfinite(v)) continue;
    if (seen_ == 0) {
      min_ = max_ = v;
    } else {
      min_ = std::min(min_, v);
      max_ = std::max(max_, v);
    }
    ++seen_;
    if (reservoir_.size() < capacity_) {
      reservoir_.push_back(v);
    } else {
      std::uniform_int_distribution<size_t> pick(0, seen_ - 1);
      const size_t j = pick(rng_);
      if (j < capacity_) reservoir_[j] = v;
    }
  }
}

std::pair<float, float> RangeCollector::Range(CalibrationMethod method, double percentile) const {
  if (seen_ == 0) return {0.0f, 0.0f};
  if (method == CalibrationMethod::kMinMax || reservoir_.empty()) return {min_, max_};
  std::vector<float> sorted = reservoir_;
  std::sort(sorted.begin(), sorted.end());
  const double p = std::clamp(percentile, 50.0, 100.0) / 100.0;
  auto at = [&](double q) {
    const double pos = q * static_cast<double>(sorted.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(pos));
    const size_t hi = std::min(lo + 1, sorted.size() - 1);
    const double frac = pos - static_cast<double>(lo);
    return static_cast<float>(sorted[lo] + (sorted[hi] - sorted[lo]) * frac);
  };
  return {at(1.0 - p), at(p)};
}

}  // namespace slipway::app::optimize
