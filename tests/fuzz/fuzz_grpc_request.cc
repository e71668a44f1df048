// Fuzzes the gRPC ModelInferRequest decoder: protobuf bytes -> message -> core::InferRequest.
#include <cstddef>
#include <cstdint>

#include "slipway/frontends/grpc/grpc_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  inference::ModelInferRequest message;
  if (!message.ParseFromArray(data, static_cast<int>(size))) return 0;
  slipway::core::InferRequest request;
  if (!slipway::frontends::grpc::DecodeModelInferRequest(message, &request).ok()) return 0;
  slipway::core::InferResponse response;
  for (const auto& t : request.inputs) {
    if (t.ValidateSize().ok()) response.outputs.push_back(t);
  }
  inference::ModelInferResponse encoded;
  slipway::frontends::grpc::EncodeModelInferResponse(response, &encoded);
  return 0;
}
