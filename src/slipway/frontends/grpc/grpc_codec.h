// gRPC codec: translates between the KServe v2 / Triton `inference` protobuf messages and the
// core request, response and config structs, and maps core::Status to ::grpc::Status.
//
// Decoding borrows raw_input_contents: the decoded request's tensors point into the message's
// bytes, so the message must outlive the request (until its response callback has run). Typed
// `contents` are converted into owned little-endian row-major bytes. Element counts against
// shapes are not checked here; the serving core calls core::Tensor::ValidateSize().
// Thread safety: pure functions over their arguments. Nothing here blocks.
#pragma once

#include <functional>
#include <string>

#include <grpcpp/support/status.h>

#include "grpc_service.pb.h"
#include "model_config.pb.h"
#include "slipway/core/infer_request.h"
#include "slipway/core/model_config.h"
#include "slipway/core/status.h"
#include "slipway/serving/inference_service.h"

namespace slipway::frontends::grpc {

// Fills `out` from `in`. INVALID_ARGUMENT for malformed input (unknown datatype, negative dims,
// raw/typed contents mixed or miscounted, typed contents that do not fit the datatype, ...);
// UNIMPLEMENTED for features we do not offer (classification outputs, shared memory).
// `resolve_label(model, label)` turns a non-numeric model_version into a version number.
using LabelResolver =
    std::function<core::Result<int64_t>(const std::string& model, const std::string& label)>;
core::Status DecodeModelInferRequest(const inference::ModelInferRequest& in,
                                     core::InferRequest* out,
                                     const LabelResolver& resolve_label = {});

// Fills `out` from `in`; every output's bytes go to raw_output_contents (one entry per output,
// in order), never to typed contents.
void EncodeModelInferResponse(const core::InferResponse& in, inference::ModelInferResponse* out);

// Fills `out` (Triton's ModelConfig message) from `in`.
void EncodeModelConfig(const core::ModelConfig& in, inference::ModelConfig* out);

// Maps each canonical code to the gRPC code of the same name, keeping the message.
// One model version's statistics in the statistics extension's message.
void EncodeModelStatistics(const serving::ModelStatistics& in, inference::ModelStatistics* out);

::grpc::Status ToGrpcStatus(const core::Status& status);

}  // namespace slipway::frontends::grpc
