// Static int8 quantization in ONNX's QDQ form: activations get QuantizeLinear/DequantizeLinear
// pairs whose scales come from a calibration run, weights are int8 (per tensor or per output
// channel) behind DequantizeLinear, biases int32. ONNX Runtime recognises these groups when it
// loads the model and runs QLinearConv, QGemm, QLinearMatMul, QLinearGlobalAveragePool and
// int8 MaxPool/Reshape/Flatten/Transpose instead of their float versions.
//
// Two steps, because the calibration needs to know what to measure:
//   1. PlanStaticQuantization chooses the nodes (Conv, Gemm and MatMul with constant weights;
//      a Relu that alone follows one is absorbed into its output's quantization; MaxPool,
//      Flatten, Reshape, Transpose, Squeeze, Unsqueeze, GlobalAveragePool and AveragePool that
//      continue an int8 chain) and lists the activations whose ranges it needs. Graph outputs
//      stay float.
//   2. ApplyStaticQuantization rewrites the model with the measured ranges.
// Thread safety: plain functions over the model they are given. Never block.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <onnx/onnx_pb.h>

#include "slipway/app/optimize/rewrite_options.h"
#include "slipway/core/status.h"

namespace slipway::app::optimize {

struct StaticQuantizationPlan {
  // Activations (FLOAT) whose [min, max] calibration must measure.
  std::vector<std::string> calibration_tensors;

  // Decisions, by node index in the model the plan was made for.
  std::vector<int> compute_nodes;
  std::map<int, int> relu_folds;                 // compute node -> the Relu it absorbs
  std::map<std::string, std::string> quantized;  // activation -> activation whose range it uses
  RewriteSummary summary;                        // skipped nodes so far
};

// The model's Constant nodes must have been moved to initializers (ConstantsToInitializers).
// Reads the model only.
core::Result<StaticQuantizationPlan> PlanStaticQuantization(const onnx::ModelProto& model,
                                                            const RewriteOptions& options);

// `ranges` holds [lo, hi] for every plan.calibration_tensors entry; `model` is the one planned.
core::Result<RewriteSummary> ApplyStaticQuantization(
    onnx::ModelProto* model, const StaticQuantizationPlan& plan,
    const std::map<std::string, std::pair<float, float>>& ranges, const RewriteOptions& options);

}  // namespace slipway::app::optimize
