// OutputsAgree: whether two answers to the same request agree, for shadow traffic and canary
// analysis. Classifier-shaped float outputs ([batch, classes], classes > 1) agree when every row's
// top-1 class is the same; other float outputs when every element is within rtol 1e-3 + atol 1e-5;
// everything else when the bytes are equal. Outputs present in only one answer are ignored;
// a datatype or shape mismatch disagrees.
// Thread safety: a pure function.
#pragma once

#include "slipway/core/infer_request.h"

namespace slipway::routing {

bool OutputsAgree(const std::vector<core::Tensor>& a, const std::vector<core::Tensor>& b);

}  // namespace slipway::routing
