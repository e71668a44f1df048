// HTTP routing: maps a method and path to a handler per resource (server, models, inference,
// repository) and maps Status codes to HTTP statuses with {"error": "..."} bodies.
// Thread safety: stateless; handlers may run concurrently.
#pragma once

#include <functional>
#include <memory>

#include "slipway/frontends/http/http_message.h"

#include "slipway/serving/inference_service.h"

namespace slipway::frontends::http {

struct RouteContext {
  serving::InferenceService* inference = nullptr;
  serving::AdminService* admin = nullptr;
};

using HttpReply = std::function<void(HttpResponse)>;

// Handles any request and calls `reply` exactly once: before returning for most routes, or later
// from another thread for inference (the request stays alive until then).
void HandleRequest(const RouteContext& ctx, std::shared_ptr<const HttpRequest> req,
                   HttpReply reply);

// The HTTP status for a Status code.
int HttpStatusFor(core::StatusCode code);

}  // namespace slipway::frontends::http
