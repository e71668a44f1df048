// Reading, checking and writing ONNX model files with ONNX's own generated protobuf classes
// (Debian's libonnx-dev: onnx/onnx_pb.h with ONNX_ML, namespace onnx).
//
// A file that does not parse as a ModelProto with a graph and an opset is "not an ONNX model";
// a model whose default-domain opset is outside [kMinSupportedOpset, kMaxSupportedOpset], or that
// keeps weights in external files, is refused with a message that says why.
// Thread safety: free functions over values; nothing is shared. Reads and writes block.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <onnx/onnx_pb.h>

#include "slipway/core/status.h"

namespace slipway::app::optimize {

// Opsets of the default (ai.onnx) domain that `slipway optimize` reads: QuantizeLinear and
// MatMulInteger need 10, DynamicQuantizeLinear 11; the newest is the newest this build's ONNX
// Runtime executes.
inline constexpr int64_t kMinSupportedOpset = 10;
inline constexpr int64_t kMaxSupportedOpset = 26;

core::Result<onnx::ModelProto> ParseOnnxModel(std::string_view bytes, const std::string& what);
core::Result<onnx::ModelProto> ReadOnnxModel(const std::string& path);
core::Result<std::string> ReadFileBytes(const std::string& path);

// The version of the default domain ("" or "ai.onnx") in opset_import; -1 when absent.
int64_t DefaultOpset(const onnx::ModelProto& model);

// Refuses what `slipway optimize` cannot handle; `what` names the model in messages.
core::Status CheckSupportedModel(const onnx::ModelProto& model, const std::string& what);

core::Result<std::string> SerializeOnnxModel(const onnx::ModelProto& model);

// Bytes of tensor data held in the graph's initializers and Constant nodes (the "weights").
int64_t WeightBytes(const onnx::ModelProto& model);

// Writes `bytes` to `path` and flushes it to disk.
core::Status WriteFileSynced(const std::string& path, std::string_view bytes);

}  // namespace slipway::app::optimize
