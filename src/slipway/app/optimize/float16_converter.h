// ConvertWeightsToFloat16: stores float weights as float16, halving their bytes on disk.
//
// Each FLOAT initializer with at least options.float16_min_elements values becomes a FLOAT16
// initializer read through a Cast back to FLOAT under the original name, so every operator still
// computes in float32: ONNX Runtime's CPU provider has float16 kernels for few operators, and it
// folds these Casts at load, so serving speed and memory are those of the float model while the
// file is about half the size. Values beyond float16's range (|x| > 65504) keep their tensor in
// float32; excluded tensors and tensors read by excluded nodes too.
// Thread safety: rewrites the model it is given; call from one thread. Never blocks.
#pragma once

#include <onnx/onnx_pb.h>

#include "slipway/app/optimize/rewrite_options.h"
#include "slipway/core/status.h"

namespace slipway::app::optimize {

core::Result<RewriteSummary> ConvertWeightsToFloat16(onnx::ModelProto* model,
                                                     const RewriteOptions& options);

}  // namespace slipway::app::optimize
