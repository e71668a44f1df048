// SaveOptimizedGraph: runs ONNX Runtime's graph optimizations on a model file and saves the graph
// ONNX Runtime would execute, so a server loads it without redoing the work (and a person can see
// what the runtime made of the model).
//
// Levels follow ONNX Runtime's: basic (constant folding, redundant nodes, standard fusions that
// stay in the ONNX domain: portable), extended (fusions into com.microsoft operators: runs on
// ONNX Runtime only), layout (NCHWc layouts: tied to this CPU's instruction set) and all.
// Thread safety: a free function; concurrent calls are safe. Blocks while ONNX Runtime loads and
// writes the model. ONNX Runtime's headers stay in this folder.
#pragma once

#include <string>
#include <string_view>

#include "slipway/core/status.h"

namespace slipway::backends::onnxruntime {

enum class OptimizationLevel { kDisabled, kBasic, kExtended, kLayout, kAll };

// "disabled", "basic", "extended", "layout", "all".
const char* OptimizationLevelName(OptimizationLevel level);
// Inverse of OptimizationLevelName; InvalidArgument naming the choices otherwise.
core::Result<OptimizationLevel> ParseOptimizationLevel(std::string_view name);

// Loads `model_path` with `level` and writes the optimized graph to `output_path` (weights
// inline). A model ONNX Runtime cannot load is an InvalidArgument with its message.
core::Status SaveOptimizedGraph(const std::string& model_path, const std::string& output_path,
                                OptimizationLevel level);

}  // namespace slipway::backends::onnxruntime
