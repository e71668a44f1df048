// Fuzzes the KServe v2 JSON + binary request decoder and the response encoder.
// The first two bytes choose the Inference-Header-Content-Length (0xffff: header absent).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "slipway/frontends/http/kserve_json_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t selector = static_cast<size_t>(data[0]) | (static_cast<size_t>(data[1]) << 8);
  const std::string_view body(reinterpret_cast<const char*>(data + 2), size - 2);
  std::optional<size_t> header;
  if (selector != 0xffff) header = selector;
  slipway::core::InferRequest request;
  if (!slipway::frontends::http::DecodeInferRequest(body, header, &request).ok()) return 0;
  // A decoded request must be safe to inspect and to echo back.
  slipway::core::InferResponse response;
  for (const auto& t : request.inputs) {
    if (t.ValidateSize().ok()) response.outputs.push_back(t);
  }
  (void)slipway::frontends::http::EncodeInferResponse(response, request);
  (void)slipway::frontends::http::DecodeIndexRequest(body);
  return 0;
}
