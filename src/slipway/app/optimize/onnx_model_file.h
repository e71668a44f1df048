// Reading, checking and writing ONNX model files with ONNX's own generated protobuf classes
// (Debian's libonnx-dev: onnx/onnx_pb.h with ONNX_ML, namespace onnx).
//
// A file that does not parse as a ModelProto with a graph and an opset is "not an ONNX model";
// a model whose default-domain opset is outside [kMinSupportedOpset, kMaxSupportedOpset] is
// refused with a message that says why. Weights kept in an external data file (ONNX's
// `data_location: EXTERNAL`, a file beside the model) are read in by ReadOnnxModel, and
// MoveWeightsToExternalData writes a result the same way.
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
// Parses the file at `path` and reads any tensor kept in an external data file into the model
// (locations are relative to the model's folder and may not leave it).
core::Result<onnx::ModelProto> ReadOnnxModel(const std::string& path);

// Reads every external tensor of `model` (loaded from `model_dir`) into raw_data; `what` names
// the model in messages.
core::Status InlineExternalData(onnx::ModelProto* model, const std::string& model_dir,
                                const std::string& what);

// Moves the raw data of every initializer (of the graph and its subgraphs) holding at least
// `min_bytes` into one external data file named `location` (a bare file name: ONNX Runtime
// resolves it beside the model file) and returns that file's bytes. Tensors of 1 MiB or more
// start at a 4096-byte offset so ONNX Runtime can map them; the rest are packed.
std::string MoveWeightsToExternalData(onnx::ModelProto* model, const std::string& location,
                                      int64_t min_bytes);
core::Result<std::string> ReadFileBytes(const std::string& path);

// The version of the default domain ("" or "ai.onnx") in opset_import; -1 when absent.
int64_t DefaultOpset(const onnx::ModelProto& model);

// Refuses what `slipway optimize` cannot handle; `what` names the model in messages.
core::Status CheckSupportedModel(const onnx::ModelProto& model, const std::string& what);

core::Result<std::string> SerializeOnnxModel(const onnx::ModelProto& model);

// Bytes of tensor data held in the graph's initializers and Constant nodes (the "weights"),
// inline or external.
int64_t WeightBytes(const onnx::ModelProto& model);

// Bytes on disk of the distinct external data files the model's tensors name (beside
// `model_path`, the model file's path); 0 when its weights are inline.
int64_t ExternalDataFileBytes(const onnx::ModelProto& model, const std::string& model_path);

// Writes `bytes` to `path` and flushes it to disk.
core::Status WriteFileSynced(const std::string& path, std::string_view bytes);

}  // namespace slipway::app::optimize
