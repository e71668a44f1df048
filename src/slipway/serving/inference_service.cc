#include "slipway/serving/inference_service.h"

#include <future>

namespace slipway::serving {

core::Result<core::InferResponse> InferAndWait(InferenceService& service,
                                               core::InferRequest request) {
  std::promise<core::Result<core::InferResponse>> promise;
  auto future = promise.get_future();
  service.Infer(std::move(request), [&promise](core::Result<core::InferResponse> result) {
    promise.set_value(std::move(result));
  });
  return future.get();
}

}  // namespace slipway::serving
