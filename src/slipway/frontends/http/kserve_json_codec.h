// KServe v2 REST codec: infer requests and responses in JSON, with Triton's binary tensor
// extension (a JSON header followed by raw tensor bytes) in both directions.
//
// Decoding checks the request's own consistency (well-formed JSON, known datatypes, element
// counts and binary sizes that add up, values in range for their datatype); checks against the
// model (names, shapes, batch size) belong to the serving core.
// Binary inputs borrow from `body`, which must outlive the decoded request; JSON `data` is copied
// into owned tensors. Thread safety: free functions; safe from any thread. Never blocks.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "slipway/core/infer_request.h"
#include "slipway/core/status.h"
#include "slipway/serving/inference_service.h"

namespace slipway::frontends::http {

// Decodes an infer request. `json_length` is the Inference-Header-Content-Length header's value
// (nullopt when absent: the whole body is JSON). Model name and version come from the path.
core::Status DecodeInferRequest(std::string_view body, std::optional<size_t> json_length,
                                core::InferRequest* request);

// Decodes a raw binary request (Inference-Header-Content-Length: 0): the whole body is the bytes
// of the model's only input, as batch 1; at most one dimension may be variable, and it is derived
// from the body's size. Every output is then sent as binary.
core::Status DecodeRawBinaryRequest(std::string_view body, const std::string& input_name,
                                    core::DataType type, const core::Shape& metadata_shape,
                                    bool batching, core::InferRequest* request);

struct EncodedResponse {
  std::string body;
  size_t json_length = 0;   // bytes of JSON at the front of body
  bool has_binary = false;  // any output was sent as binary
};

// Encodes a response. An output is binary when the request asked for it (per output
// `binary_data`, else the request's `binary_data_output` parameter).
EncodedResponse EncodeInferResponse(const core::InferResponse& response,
                                    const core::InferRequest& request);

// Parses a repository index request body ("" or {"ready": bool}); returns `ready`.
core::Result<bool> DecodeIndexRequest(std::string_view body);
// The repository extension's load body: empty, or {"parameters": {"config": "<ModelConfig JSON>"}}.
// `file:` parameters are refused (upload a version with PUT .../versions/<v> instead).
core::Result<serving::LoadModelOptions> DecodeLoadRequest(std::string_view body);

// {"error": "<message>"}
std::string ErrorJson(std::string_view message);

}  // namespace slipway::frontends::http
