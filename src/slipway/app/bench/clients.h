// InferClient: one load-generator connection that sends the same prepared inference request
// again and again, over KServe v2 HTTP/JSON, HTTP with the Triton binary tensor extension, or
// gRPC (ModelInfer with raw_input_contents). The request is encoded once at creation.
//
// Thread safety: one client per worker thread; each owns its keep-alive connection (HTTP) or
// its own gRPC channel (no shared subchannel). Infer() blocks for one round trip, bounded by
// Options::timeout_seconds. A failed call is reported, never retried.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "slipway/app/bench/bench_options.h"
#include "slipway/app/bench/input_data.h"
#include "slipway/core/status.h"

namespace slipway::app::bench {

// How one call ended. `error_kind` is empty on success, else "http <code>",
// "grpc <STATUS_NAME>", "transport <what>" or "bad response".
struct CallOutcome {
  bool ok = false;
  std::string error_kind;
  std::string error_message;  // the first few hundred bytes of what went wrong
};

class InferClient {
 public:
  struct Options {
    Protocol protocol = Protocol::kHttpJson;
    HostPort http;
    HostPort grpc;
    std::string model;
    std::string model_version;
    double timeout_seconds = 30;
    int index = 0;  // distinguishes gRPC channels so each gets its own connection
  };

  // Fails for inputs the protocol cannot carry (FP16/BF16 over JSON).
  static core::Result<std::unique_ptr<InferClient>> Create(const Options& options,
                                                           const std::vector<InputTensor>& inputs);
  virtual ~InferClient() = default;

  virtual CallOutcome Infer() = 0;
};

// The canonical name of a gRPC status code number ("NOT_FOUND"), or "CODE_<n>".
std::string GrpcCodeName(int code);

// One gRPC ServerLive call: Unavailable with a clear message when the endpoint is unreachable.
core::Status CheckGrpcReachable(const HostPort& grpc, double timeout_seconds);

// The KServe v2 JSON body for `inputs`.
std::string JsonInferBody(const std::vector<InputTensor>& inputs);
// The binary-extension body; `*header_length` receives the JSON header's length.
std::string BinaryInferBody(const std::vector<InputTensor>& inputs, size_t* header_length);

}  // namespace slipway::app::bench
