// HTTP routing: maps a method and path to a handler per resource (server, models, inference,
// repository) and maps Status codes to HTTP statuses with {"error": "..."} bodies.
// Thread safety: stateless; handlers may run concurrently.
#pragma once

#include "slipway/frontends/http/http_message.h"

#include "slipway/serving/inference_service.h"

namespace slipway::frontends::http {

struct RouteContext {
  serving::InferenceService* inference = nullptr;
  serving::AdminService* admin = nullptr;
};

// Handles any request; always fills `res` (status, body, content type).
void HandleRequest(const RouteContext& ctx, const HttpRequest& req, HttpResponse& res);

// The HTTP status for a Status code.
int HttpStatusFor(core::StatusCode code);

}  // namespace slipway::frontends::http
