// QuantizeDynamic: int8 weights with activations quantized at run time, the scheme of ONNX
// Runtime's own dynamic quantizer.
//
// MatMul and Gemm whose second input is a constant 2-D float weight become
//   DynamicQuantizeLinear(A) -> MatMulInteger(A_q, W_int8, A_zero_point) -> Cast(float)
//   -> Mul(A_scale * W_scale) [-> Add(bias)]
// with the weight stored as int8 [K, N] (transposed once for Gemm's transB; alpha and beta folded
// into the scale and bias), symmetric, per tensor or per output column. ONNX Runtime fuses the
// chain into DynamicQuantizeMatMul. With include_conv, Conv weights are stored as int8 (per tensor
// or per output channel) and restored to float by Cast and Mul, which ONNX Runtime folds at load:
// the file shrinks, Conv keeps computing in float with its fastest kernels (ONNX Runtime's CPU
// ConvInteger takes uint8 weights only and is slower than its float Conv).
// Thread safety: rewrites the model it is given; call from one thread. Never blocks.
#pragma once

#include <onnx/onnx_pb.h>

#include "slipway/app/optimize/rewrite_options.h"
#include "slipway/core/status.h"

namespace slipway::app::optimize {

// The model's Constant nodes must have been moved to initializers (ConstantsToInitializers).
core::Result<RewriteSummary> QuantizeDynamic(onnx::ModelProto* model, const RewriteOptions& options);

}  // namespace slipway::app::optimize
