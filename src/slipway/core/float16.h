// IEEE half precision (FP16) and bfloat16 (BF16) conversions, for tensors of those datatypes
// that are written or read as JSON numbers, generated as inputs, or converted by the optimizer.
// Float to 16 bits rounds to nearest, ties to even; values past the range become infinity, NaN
// stays NaN (quiet). Thread safety: pure functions.
#pragma once

#include <cstdint>

namespace slipway::core {

uint16_t FloatToHalfBits(float value);
float HalfBitsToFloat(uint16_t bits);
uint16_t FloatToBf16Bits(float value);
float Bf16BitsToFloat(uint16_t bits);

}  // namespace slipway::core
