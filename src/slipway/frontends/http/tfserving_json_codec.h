// TensorFlow Serving REST codec (also KServe v1): the JSON bodies of :predict, :classify and
// :regress, translated to and from core::InferRequest / InferResponse.
//
// Requests carry no datatypes or shapes, so decoding reads them from the model's config: types
// come from the config's inputs, shapes from the nesting of the JSON lists. JSON numbers are
// converted with range checks; BYTES values are JSON strings or {"b64": "<base64>"}; the bare
// tokens NaN, Infinity and -Infinity are accepted for floating-point inputs. Row format
// ("instances") stacks its rows along a new leading dimension; columnar format ("inputs") sends
// each tensor whole. Classify and regress read "examples" (plus shared "context") whose features
// are the model's inputs by name or, for a one-input model, the input's columns in order.
// Decoded tensors are owned (no borrowing from the body). Decoding lives in
// tfserving_json_codec.cc, encoding in tfserving_json_encode.cc.
//
// Every failure is InvalidArgument with a message naming the input and what was wrong.
// Thread safety: free functions; safe from any thread. Never blocks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "slipway/core/infer_request.h"
#include "slipway/core/model_config.h"
#include "slipway/core/status.h"

namespace slipway::frontends::http {

// The one signature a model has here; requests may name it or leave signature_name out.
inline constexpr std::string_view kTfDefaultSignature = "serving_default";

// What the encoder needs to know about the request it answers.
struct TfRequestInfo {
  bool row_format = true;  // "instances" (answered with "predictions") or "inputs" ("outputs")
  bool b64 = false;        // some BYTES value came as {"b64": ...}: BYTES outputs go back so too
  int64_t rows = 0;        // instances or examples
};

// Decodes a :predict body into `request->inputs`.
core::Result<TfRequestInfo> DecodeTfPredictRequest(std::string_view body,
                                                    const core::ModelConfig& config,
                                                    core::InferRequest* request);

// Decodes a :classify or :regress body ({"examples": [...], "context": {...}}).
core::Result<TfRequestInfo> DecodeTfExamplesRequest(std::string_view body,
                                                     const core::ModelConfig& config,
                                                     core::InferRequest* request);

// {"predictions": [...]} (row format: one value per row for a single output, else one object
// per row keyed by output name) or {"outputs": value | {name: value}} (columnar format).
// InvalidArgument when a row-format answer's outputs disagree on the number of rows.
core::Result<std::string> EncodeTfPredictResponse(const core::InferResponse& response,
                                                  const TfRequestInfo& info);

// {"results": [[["label", score], ...], ...]}: scores from the output named "scores" or the only
// floating-point output; labels from an output named "classes" with as many values per row, else
// the score's index ("0", "1", ...).
core::Result<std::string> EncodeTfClassifyResponse(const core::InferResponse& response,
                                                   const TfRequestInfo& info);

// {"results": [v, ...]}: one value per example from the only output (or the one named "outputs").
core::Result<std::string> EncodeTfRegressResponse(const core::InferResponse& response,
                                                  const TfRequestInfo& info);

// TensorFlow's dtype names: "DT_FLOAT", "DT_STRING" (BYTES), "DT_HALF", "DT_BFLOAT16", ...
std::string_view TfDataTypeName(core::DataType type);


// Standard base64 (RFC 4648); decoding also takes the URL-safe alphabet and missing padding.
std::string Base64Encode(std::string_view bytes);
core::Result<std::string> Base64Decode(std::string_view text);

}  // namespace slipway::frontends::http
