// InferRequest / InferResponse: what a frontend decodes a call into and what it encodes back.
//
// Plain structs. A request's input tensors may borrow bytes from the frontend's buffer, which must
// outlive the request's processing (until the response callback has run).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "slipway/core/status.h"
#include "slipway/core/tensor.h"

namespace slipway::core {

using ParameterValue = std::variant<bool, int64_t, uint64_t, double, std::string>;
using Parameters = std::map<std::string, ParameterValue>;

struct RequestedOutput {
  std::string name;
  // Encoding wish for frontends that have a choice (HTTP binary extension); the core ignores it.
  bool binary = false;
  bool binary_set = false;
};

struct InferRequest {
  std::string model_name;
  int64_t model_version = 0;  // 0: the highest ready version
  std::string id;
  Parameters parameters;
  std::vector<Tensor> inputs;
  std::vector<RequestedOutput> outputs;  // empty: every output of the model
  // Set by frontends that can tell: true once the caller has gone, so queued work is dropped.
  std::function<bool()> cancelled;
};

struct InferResponse {
  std::string model_name;
  int64_t model_version = 0;
  std::string id;
  std::vector<Tensor> outputs;
  // Filled on the way back for logs and metrics: time spent queued and computing, rows in the
  // executed batch, and how the version was chosen ("named", "stable", "split", "sticky",
  // "canary", or "latest" when no routing applies).
  uint64_t queue_ns = 0;
  uint64_t compute_ns = 0;
  int64_t batch_rows = 0;
  std::string route;
  // Facts about how the answer was made, for the frontends to pass on: "cache_hit" (bool) is
  // true when the response cache answered without running the model.
  Parameters parameters;
};

using InferCallback = std::function<void(Result<InferResponse>)>;

// Parses a version from a path or message ("" -> 0, meaning the default). Rejects anything that is
// not a positive decimal integer.
Result<int64_t> ParseModelVersion(std::string_view text);

}  // namespace slipway::core
