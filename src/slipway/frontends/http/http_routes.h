// HTTP routing: maps a method and path to a handler per resource (server, models, inference,
// repository) and maps Status codes to HTTP statuses with {"error": "..."} bodies.
// Thread safety: stateless; handlers may run concurrently.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "slipway/frontends/http/http_message.h"

#include "slipway/serving/inference_service.h"
#include "slipway/serving/drift_source.h"
#include "slipway/serving/ground_truth.h"
#include "slipway/serving/metrics_source.h"
#include "slipway/serving/routing_admin.h"
#include "slipway/security/access_guard.h"

namespace slipway::processing {
class Predictor;
}  // namespace slipway::processing

namespace slipway::frontends::http {

// A fresh processing::Predictor (predict_routes.cc), so that RouteContext needs no more than a
// declaration of it.
std::shared_ptr<processing::Predictor> MakePredictor();

struct RouteContext {
  serving::InferenceService* inference = nullptr;
  serving::AdminService* admin = nullptr;
  serving::RoutingAdmin* routing = nullptr;  // labels, traffic, rollouts; may be null
  serving::GroundTruth* ground_truth = nullptr;  // feedback and live accuracy; may be null
  const serving::MetricsSource* metrics = nullptr;  // GET /metrics; may be null
  const serving::DriftSource* drift = nullptr;      // GET /v2/models/{m}/drift; may be null
  bool metrics_only = false;  // a --metrics-port listener: only GET /metrics answers
  security::AccessGuard* guard = nullptr;  // keys, roles and rate limits; may be null
  // Which routes this listener serves, when admin routes have a listener of their own.
  enum class Serves { kAll, kAllButAdmin, kAdminOnly };
  Serves serves = Serves::kAll;
  // POST /predict: per-model processors (tokenizers, labels) cached across requests.
  std::shared_ptr<processing::Predictor> predictor = MakePredictor();
};

// What a request needs: health, metrics, infer (inference, metadata, reading state) or admin
// (everything that changes what is served, and recording ground truth).
security::Access AccessFor(std::string_view method, std::string_view path);

// Shared by the route files.
void Reply(HttpResponse& res, int status, std::string body);
void ReplyError(HttpResponse& res, const core::Status& st);

// Admin resources (admin_routes.cc): /v2/models/{m}/{routing,labels,traffic,rollout,promote,
// rollback,history} and uploads at /v2/repository/models/{m}/versions[/{v}]. Returns false when
// the path is not one of them.
// Monitoring resources (monitoring_routes.cc): POST /v2/models/{m}/feedback,
// GET /v2/models/{m}/accuracy and GET /v2/models/{m}/drift. Returns false when the path is not one of them.
bool MonitoringRoutes(const RouteContext& ctx, const std::vector<std::string_view>& parts,
                      const HttpRequest& req, HttpResponse& res);

bool AdminRoutes(const RouteContext& ctx, const std::vector<std::string_view>& parts,
                 const std::string& query, const HttpRequest& req, HttpResponse& res);

using HttpReply = std::function<void(HttpResponse)>;

// Application JSON (predict_routes.cc): POST /predict[?model=NAME] and
// POST /v2/models/{m}[/versions/{v}]/predict. IsPredictPath says whether `parts` is one of them;
// PredictRoute returns true when the answer is pending (`reply` runs later), false when `res`
// holds it.
bool IsPredictPath(const std::vector<std::string_view>& parts);
bool PredictRoute(const RouteContext& ctx, const std::vector<std::string_view>& parts,
                  const std::shared_ptr<const HttpRequest>& req, const HttpReply& reply,
                  HttpResponse& res);

// TensorFlow Serving REST / KServe v1 (tfserving_routes.cc): every path under /v1 (model list,
// status, metadata, :predict, :classify, :regress). Returns true when the answer is pending
// (`reply` runs later), false when `res` holds it.
bool TfServingRoutes(const RouteContext& ctx, const std::vector<std::string_view>& parts,
                     const std::shared_ptr<const HttpRequest>& req, const HttpReply& reply,
                     HttpResponse& res);

// Handles any request and calls `reply` exactly once: before returning for most routes, or later
// from another thread for inference (the request stays alive until then).
void HandleRequest(const RouteContext& ctx, std::shared_ptr<const HttpRequest> req,
                   HttpReply reply);

// The HTTP status for a Status code.
int HttpStatusFor(core::StatusCode code);

}  // namespace slipway::frontends::http
