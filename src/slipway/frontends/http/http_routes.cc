#include "slipway/frontends/http/http_routes.h"

#include <cctype>
#include <charconv>
#include <string_view>
#include <vector>

#include "slipway/core/json_writer.h"
#include "slipway/frontends/http/kserve_json_codec.h"

namespace slipway::frontends::http {

using core::Status;

int HttpStatusFor(core::StatusCode code) {
  switch (code) {
    case core::StatusCode::kOk: return 200;
    case core::StatusCode::kInvalidArgument: return 400;
    case core::StatusCode::kFailedPrecondition: return 400;
    case core::StatusCode::kCancelled: return 400;
    case core::StatusCode::kNotFound: return 404;
    case core::StatusCode::kAlreadyExists: return 409;
    case core::StatusCode::kResourceExhausted: return 429;
    case core::StatusCode::kUnavailable: return 503;
    case core::StatusCode::kUnimplemented: return 501;
    case core::StatusCode::kDeadlineExceeded: return 504;
    case core::StatusCode::kInternal: return 500;
  }
  return 500;
}

namespace {

constexpr const char* kJson = "application/json";

}  // namespace

void Reply(HttpResponse& res, int status, std::string body) {
  res.status = status;
  res.body = std::move(body);
  res.content_type = kJson;
}

void ReplyError(HttpResponse& res, const Status& st) {
  Reply(res, HttpStatusFor(st.code()), ErrorJson(st.message()));
}

namespace {

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t pos = 0;
  while (pos < path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string_view::npos) next = path.size();
    if (next > pos) parts.push_back(path.substr(pos, next - pos));
    pos = next + 1;
  }
  return parts;
}

// ---- server resources: /v2, /v2/health/* ----

void ServerMetadataRoute(const RouteContext& ctx, HttpResponse& res) {
  const auto md = ctx.inference->GetServerMetadata();
  core::JsonWriter w;
  w.StartObject();
  w.Key("name");
  w.String(md.name);
  w.Key("version");
  w.String(md.version);
  w.Key("extensions");
  w.StartArray();
  for (const auto& e : md.extensions) w.String(e);
  w.EndArray();
  w.EndObject();
  Reply(res, 200, w.Take());
}

void HealthRoute(const RouteContext& ctx, std::string_view which, HttpResponse& res) {
  const bool ok = which == "live" ? ctx.inference->ServerLive() : ctx.inference->ServerReady();
  core::JsonWriter w;
  w.StartObject();
  w.Key(which);
  w.Bool(ok);
  w.EndObject();
  Reply(res, ok ? 200 : 503, w.Take());
}

// ---- model resources: /v2/models/{m}[/versions/{v}][/ready|/config|/infer] ----

void WriteTensorMetadata(core::JsonWriter& w, const std::vector<serving::TensorMetadata>& list) {
  w.StartArray();
  for (const auto& t : list) {
    w.StartObject();
    w.Key("name");
    w.String(t.name);
    w.Key("datatype");
    w.String(core::DataTypeName(t.type));
    w.Key("shape");
    w.StartArray();
    for (int64_t d : t.shape) w.Int(d);
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
}

void ModelMetadataRoute(const RouteContext& ctx, const std::string& name, int64_t version,
                        HttpResponse& res) {
  auto md = ctx.inference->GetModelMetadata(name, version);
  if (!md.ok()) return ReplyError(res, md.status());
  core::JsonWriter w;
  w.StartObject();
  w.Key("name");
  w.String(md->name);
  w.Key("versions");
  w.StartArray();
  for (const auto& v : md->versions) w.String(v);
  w.EndArray();
  w.Key("platform");
  w.String(md->platform);
  w.Key("inputs");
  WriteTensorMetadata(w, md->inputs);
  w.Key("outputs");
  WriteTensorMetadata(w, md->outputs);
  w.EndObject();
  Reply(res, 200, w.Take());
}

void ModelReadyRoute(const RouteContext& ctx, const std::string& name, int64_t version,
                     HttpResponse& res) {
  auto ready = ctx.inference->ModelReady(name, version);
  if (!ready.ok()) return ReplyError(res, ready.status());
  core::JsonWriter w;
  w.StartObject();
  w.Key("name");
  w.String(name);
  w.Key("ready");
  w.Bool(*ready);
  w.EndObject();
  Reply(res, *ready ? 200 : 503, w.Take());
}

void WriteTensorConfigs(core::JsonWriter& w, const std::vector<core::TensorConfig>& list) {
  w.StartArray();
  for (const auto& t : list) {
    w.StartObject();
    w.Key("name");
    w.String(t.name);
    w.Key("data_type");
    w.String(core::DataTypeConfigName(t.type));
    w.Key("dims");
    w.StartArray();
    for (int64_t d : t.dims) w.Int(d);
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
}

// The model config in Triton's JSON form: proto field names, int64 as numbers.
void ModelConfigRoute(const RouteContext& ctx, const std::string& name, int64_t version,
                      HttpResponse& res) {
  auto config = ctx.inference->GetModelConfig(name, version);
  if (!config.ok()) return ReplyError(res, config.status());
  const core::ModelConfig& c = *config;
  core::JsonWriter w;
  w.StartObject();
  w.Key("name");
  w.String(c.name);
  w.Key("platform");
  w.String(c.platform);
  w.Key("backend");
  w.String(c.backend);
  w.Key("max_batch_size");
  w.Int(c.batch_size_limit());
  w.Key("version_policy");
  w.StartObject();
  switch (c.version_policy.kind) {
    case core::VersionPolicy::Kind::kLatest:
      w.Key("latest");
      w.StartObject();
      w.Key("num_versions");
      w.Int(c.version_policy.latest_count);
      w.EndObject();
      break;
    case core::VersionPolicy::Kind::kAll:
      w.Key("all");
      w.StartObject();
      w.EndObject();
      break;
    case core::VersionPolicy::Kind::kSpecific:
      w.Key("specific");
      w.StartObject();
      w.Key("versions");
      w.StartArray();
      for (int64_t v : c.version_policy.specific) w.Int(v);
      w.EndArray();
      w.EndObject();
      break;
  }
  w.EndObject();
  w.Key("input");
  WriteTensorConfigs(w, c.inputs);
  w.Key("output");
  WriteTensorConfigs(w, c.outputs);
  w.Key("instance_group");
  w.StartArray();
  w.StartObject();
  w.Key("count");
  w.Int(c.instance_count);
  w.Key("kind");
  w.String("KIND_CPU");
  w.EndObject();
  w.EndArray();
  if (c.response_cache.enabled) {
    w.Key("response_cache");
    w.StartObject();
    w.Key("enable");
    w.Bool(true);
    if (c.response_cache.ttl_seconds > 0) {
      w.Key("ttl_seconds");
      w.Double(c.response_cache.ttl_seconds);
    }
    w.EndObject();
  }
  if (c.dynamic_batching.enabled) {
    w.Key("dynamic_batching");
    w.StartObject();
    w.Key("preferred_batch_size");
    w.StartArray();
    for (int64_t s : c.dynamic_batching.preferred_batch_sizes) w.Int(s);
    w.EndArray();
    w.Key("max_queue_delay_microseconds");
    w.Int(c.dynamic_batching.max_queue_delay_us);
    w.Key("preserve_ordering");
    w.Bool(c.dynamic_batching.preserve_ordering);
    w.Key("priority_levels");
    w.Int(c.dynamic_batching.priority_levels);
    w.Key("default_priority_level");
    w.Int(c.dynamic_batching.default_priority_level);
    w.Key("default_queue_policy");
    w.StartObject();
    w.Key("max_queue_size");
    w.Int(c.dynamic_batching.max_queue_size);
    w.Key("default_timeout_microseconds");
    w.Int(c.dynamic_batching.default_timeout_us);
    w.EndObject();
    w.EndObject();
  }
  w.Key("default_model_filename");
  w.String(c.default_model_filename);
  // The effective thread budget, as Triton's ONNX Runtime backend names its parameters.
  w.Key("parameters");
  w.StartObject();
  w.Key("intra_op_thread_count");
  w.StartObject();
  w.Key("string_value");
  w.String(std::to_string(c.intra_op_threads));
  w.EndObject();
  if (c.max_instance_count > c.instance_count) {
    w.Key("max_instance_count");
    w.StartObject();
    w.Key("string_value");
    w.String(std::to_string(c.max_instance_count));
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  Reply(res, 200, w.Take());
}

void WriteDuration(core::JsonWriter& w, const char* key, const scheduler::Duration& d) {
  w.Key(key);
  w.StartObject();
  w.Key("count");
  w.Uint(d.count);
  w.Key("ns");
  w.Uint(d.ns);
  w.EndObject();
}

// The statistics extension's JSON: every field perf_analyzer reads is always present.
void ModelStatsRoute(const RouteContext& ctx, const std::string& name, int64_t version,
                     HttpResponse& res) {
  auto stats = ctx.inference->GetModelStatistics(name, version);
  if (!stats.ok()) return ReplyError(res, stats.status());
  core::JsonWriter w;
  w.StartObject();
  w.Key("model_stats");
  w.StartArray();
  for (const auto& m : *stats) {
    const auto& s = m.stats;
    w.StartObject();
    w.Key("name");
    w.String(m.name);
    w.Key("version");
    w.String(m.version);
    w.Key("last_inference");
    w.Uint(s.last_inference_ms);
    w.Key("inference_count");
    w.Uint(s.inference_count);
    w.Key("execution_count");
    w.Uint(s.execution_count);
    w.Key("inference_stats");
    w.StartObject();
    WriteDuration(w, "success", s.success);
    WriteDuration(w, "fail", s.fail);
    WriteDuration(w, "queue", s.queue);
    WriteDuration(w, "compute_input", s.compute_input);
    WriteDuration(w, "compute_infer", s.compute_infer);
    WriteDuration(w, "compute_output", s.compute_output);
    WriteDuration(w, "cache_hit", s.cache_hit);
    WriteDuration(w, "cache_miss", s.cache_miss);
    w.EndObject();
    w.Key("batch_stats");
    w.StartArray();
    for (const auto& [size, b] : s.batches) {
      w.StartObject();
      w.Key("batch_size");
      w.Uint(size);
      WriteDuration(w, "compute_input", b.compute_input);
      WriteDuration(w, "compute_infer", b.compute_infer);
      WriteDuration(w, "compute_output", b.compute_output);
      w.EndObject();
    }
    w.EndArray();
    w.Key("memory_usage");
    w.StartArray();
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  Reply(res, 200, w.Take());
}

core::Result<std::optional<size_t>> HeaderLength(const HttpRequest& req) {
  if (!req.has_header("Inference-Header-Content-Length")) return std::optional<size_t>();
  const std::string v = req.header("Inference-Header-Content-Length");
  size_t n = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc() || ptr != v.data() + v.size()) {
    return Status::InvalidArgument("Inference-Header-Content-Length must be a non-negative "
                                   "integer, got '" + v + "'");
  }
  return std::optional<size_t>(n);
}

// Starts an inference; returns without answering, `reply` runs when the model has answered.
void InferRoute(const RouteContext& ctx, const std::string& name, int64_t version,
                const std::shared_ptr<const HttpRequest>& req_ptr, const HttpReply& reply) {
  const HttpRequest& req = *req_ptr;
  HttpResponse res;
  auto header = HeaderLength(req);
  if (!header.ok()) {
    ReplyError(res, header.status());
    return reply(std::move(res));
  }
  core::InferRequest request;
  request.model_name = name;
  request.model_version = version;
  Status st;
  if (header->has_value() && **header == 0) {
    auto config = ctx.inference->GetModelConfig(name, version);
    if (!config.ok()) {
      ReplyError(res, config.status());
      return reply(std::move(res));
    }
    if (config->inputs.size() != 1) {
      ReplyError(res, Status::InvalidArgument(
                          "a raw binary request (Inference-Header-Content-Length: 0) needs a "
                          "model with exactly one input; '" + name + "' has " +
                          std::to_string(config->inputs.size())));
      return reply(std::move(res));
    }
    const core::TensorConfig& in = config->inputs[0];
    st = DecodeRawBinaryRequest(req.body, in.name, in.type, core::ExternalShape(*config, in),
                                config->batch_size_limit() > 0, &request);
  } else {
    st = DecodeInferRequest(req.body, *header, &request);
  }
  if (!st.ok()) {
    ReplyError(res, st);
    return reply(std::move(res));
  }
  if (request.parameters.count("routing_key") == 0 && req.has_header("slipway-routing-key")) {
    request.parameters["routing_key"] = req.header("slipway-routing-key");
  }
  if (req.client_gone) {
    request.cancelled = [gone = req.client_gone] { return gone->load(); };
  }
  // What the encoder needs of the request once it has been handed over.
  core::InferRequest format;
  format.outputs = request.outputs;
  format.parameters = request.parameters;
  // The decoded tensors borrow from req_ptr's body, which the callback keeps alive.
  ctx.inference->Infer(
      std::move(request), [req_ptr, reply, format = std::move(format)](
                              core::Result<core::InferResponse> result) {
        HttpResponse out;
        if (!result.ok()) {
          ReplyError(out, result.status());
          return reply(std::move(out));
        }
        EncodedResponse encoded = EncodeInferResponse(*result, format);
        out.status = 200;
        out.content_type = encoded.has_binary ? "application/octet-stream" : kJson;
        if (encoded.has_binary) {
          out.headers.emplace_back("Inference-Header-Content-Length",
                                   std::to_string(encoded.json_length));
        }
        out.body = std::move(encoded.body);
        reply(std::move(out));
      });
}

// ---- repository resources: /v2/repository/... ----

void RepositoryIndexRoute(const RouteContext& ctx, const HttpRequest& req,
                          HttpResponse& res) {
  auto ready_only = DecodeIndexRequest(req.body);
  if (!ready_only.ok()) return ReplyError(res, ready_only.status());
  core::JsonWriter w;
  w.StartArray();
  for (const auto& e : ctx.admin->RepositoryIndex(*ready_only)) {
    w.StartObject();
    w.Key("name");
    w.String(e.name);
    if (!e.version.empty()) {
      w.Key("version");
      w.String(e.version);
    }
    if (!e.state.empty()) {
      w.Key("state");
      w.String(e.state);
    }
    if (!e.reason.empty()) {
      w.Key("reason");
      w.String(e.reason);
    }
    w.EndObject();
  }
  w.EndArray();
  Reply(res, 200, w.Take());
}

void RepositoryModelRoute(const RouteContext& ctx, const std::string& name, std::string_view action,
                          const HttpRequest& req, HttpResponse& res) {
  Status st;
  if (action == "load") {
    auto options = DecodeLoadRequest(req.body);
    if (!options.ok()) return ReplyError(res, options.status());
    st = ctx.admin->LoadModel(name, *options);
  } else {
    st = ctx.admin->UnloadModel(name);
  }
  if (!st.ok()) return ReplyError(res, st);
  core::JsonWriter w;
  w.StartObject();
  w.Key("name");
  w.String(name);
  w.Key(action);
  w.Bool(true);
  w.EndObject();
  Reply(res, 200, w.Take());
}

void MethodNotAllowed(HttpResponse& res) {
  Reply(res, 405, ErrorJson("Method Not Allowed"));
}

void NotFound(HttpResponse& res) { Reply(res, 404, ErrorJson("Not Found")); }

// Returns true when the answer is pending (inference); `res` is then unused.
bool ModelRoutes(const RouteContext& ctx, const std::vector<std::string_view>& parts,
                 const std::shared_ptr<const HttpRequest>& req_ptr, const HttpReply& reply,
                 HttpResponse& res) {
  const HttpRequest& req = *req_ptr;
  // parts: v2 models {m} [versions {v}] [action]
  const std::string name(parts[2]);
  size_t i = 3;
  int64_t version = 0;
  if (parts.size() > i && parts[i] == "versions") {
    if (parts.size() <= i + 1) {
      NotFound(res);
      return false;
    }
    auto v = core::ParseModelVersion(parts[i + 1]);
    if (!v.ok() && ctx.routing != nullptr && !parts[i + 1].empty() &&
        !std::isdigit(static_cast<unsigned char>(parts[i + 1][0]))) {
      v = ctx.routing->ResolveLabel(name, std::string(parts[i + 1]));  // a label names a version
    }
    if (!v.ok()) {
      ReplyError(res, v.status());
      return false;
    }
    version = *v;
    i += 2;
  }
  if (parts.size() > i + 1) {
    NotFound(res);
    return false;
  }
  const std::string_view action = parts.size() > i ? parts[i] : std::string_view();
  const bool get = req.method == "GET";
  if (action == "infer" && req.method == "POST") {
    InferRoute(ctx, name, version, req_ptr, reply);
    return true;
  }
  if (action.empty()) {
    get ? ModelMetadataRoute(ctx, name, version, res) : MethodNotAllowed(res);
  } else if (action == "ready") {
    get ? ModelReadyRoute(ctx, name, version, res) : MethodNotAllowed(res);
  } else if (action == "config") {
    get ? ModelConfigRoute(ctx, name, version, res) : MethodNotAllowed(res);
  } else if (action == "stats") {
    get ? ModelStatsRoute(ctx, name, version, res) : MethodNotAllowed(res);
  } else if (action == "infer") {
    MethodNotAllowed(res);
  } else {
    NotFound(res);
  }
  return false;
}

bool Route(const RouteContext& ctx, const std::shared_ptr<const HttpRequest>& req,
           const HttpReply& reply, HttpResponse& res);

}  // namespace

security::Access AccessFor(std::string_view method, std::string_view path) {
  using security::Access;
  const auto parts = SplitPath(path);
  if (parts.size() == 1 && parts[0] == "metrics") return Access::kMetrics;
  if (parts.size() == 3 && parts[0] == "v2" && parts[1] == "health") return Access::kHealth;
  if (parts.size() >= 2 && parts[0] == "v2" && parts[1] == "repository") return Access::kAdmin;
  if (method == "GET" || method == "HEAD") return Access::kInfer;
  // /v2/models/{m}[/versions/{v}]/infer is the one writing-method route open to `infer`...
  if (parts.size() >= 4 && parts[0] == "v2" && parts[1] == "models" && parts.back() == "infer" &&
      (parts.size() == 4 || (parts.size() == 6 && parts[3] == "versions"))) {
    return Access::kInfer;
  }
  // ...with application JSON: /predict and /v2/models/{m}[/versions/{v}]/predict.
  if (IsPredictPath(parts)) return Access::kInfer;
  // So are TF Serving's /v1/models/{m}[/versions/{v}|/labels/{l}]:{predict,classify,regress}.
  if (method == "POST" && parts.size() >= 3 && EqualsIgnoreCase(parts[0], "v1") &&
      EqualsIgnoreCase(parts[1], "models")) {
    const size_t colon = parts.back().rfind(':');
    const std::string_view verb =
        colon == std::string_view::npos ? std::string_view() : parts.back().substr(colon + 1);
    if (EqualsIgnoreCase(verb, "predict") || EqualsIgnoreCase(verb, "classify") ||
        EqualsIgnoreCase(verb, "regress")) {
      return Access::kInfer;
    }
  }
  return Access::kAdmin;
}

void HandleRequest(const RouteContext& ctx, std::shared_ptr<const HttpRequest> req,
                   HttpReply reply) {
  HttpResponse res;
  const security::Access access = AccessFor(req->method, req->path);
  using Serves = RouteContext::Serves;
  if (!ctx.metrics_only && ((ctx.serves == Serves::kAllButAdmin && access == security::Access::kAdmin) ||
                            (ctx.serves == Serves::kAdminOnly && access != security::Access::kAdmin &&
                             access != security::Access::kHealth))) {
    Reply(res, 404, ErrorJson(ctx.serves == Serves::kAllButAdmin
                                  ? "not found: admin endpoints are served on the admin listener"
                                  : "not found: this listener serves only admin endpoints"));
    return reply(std::move(res));
  }
  if (ctx.guard != nullptr) {
    const std::string authorization = req->header("Authorization");
    const std::string api_key = req->header("X-API-Key");
    const auto credential = security::AccessGuard::CredentialFrom(authorization, api_key);
    const security::Verdict v = ctx.guard->Check(access, credential, req->peer);
    if (!v.allowed()) {
      switch (v.outcome) {
        case security::Verdict::kUnauthenticated:
          Reply(res, 401, ErrorJson(v.message));
          res.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"slipway\"");
          break;
        case security::Verdict::kForbidden:
          Reply(res, 403, ErrorJson(v.message));
          break;
        default:
          Reply(res, 429, ErrorJson(v.message));
          res.headers.emplace_back("Retry-After", std::to_string(v.retry_after_s));
      }
      return reply(std::move(res));
    }
  }
  if (Route(ctx, req, reply, res)) return;
  reply(std::move(res));
}

namespace {

bool Route(const RouteContext& ctx, const std::shared_ptr<const HttpRequest>& req_ptr,
           const HttpReply& reply, HttpResponse& res) {
  const HttpRequest& req = *req_ptr;
  const auto parts = SplitPath(req.path);
  const bool get = req.method == "GET";
  const bool post = req.method == "POST";
  if (parts.size() == 1 && parts[0] == "metrics" && ctx.metrics != nullptr) {
    if (!get) {
      MethodNotAllowed(res);
    } else {
      Reply(res, 200, ctx.metrics->RenderMetrics());
      res.content_type = "text/plain; version=0.0.4; charset=utf-8";
    }
  } else if (!ctx.metrics_only && !parts.empty() && EqualsIgnoreCase(parts[0], "v1")) {
    return TfServingRoutes(ctx, parts, req_ptr, reply, res);
  } else if (!ctx.metrics_only && IsPredictPath(parts)) {
    return PredictRoute(ctx, parts, req_ptr, reply, res);
  } else if (ctx.metrics_only || parts.empty() || parts[0] != "v2") {
    NotFound(res);
  } else if (parts.size() == 1) {
    get ? ServerMetadataRoute(ctx, res) : MethodNotAllowed(res);
  } else if (parts[1] == "health" && parts.size() == 3 &&
             (parts[2] == "live" || parts[2] == "ready")) {
    get ? HealthRoute(ctx, parts[2], res) : MethodNotAllowed(res);
  } else if (parts[1] == "models" && parts.size() == 3 && parts[2] == "stats") {
    get ? ModelStatsRoute(ctx, "", 0, res) : MethodNotAllowed(res);
  } else if (AdminRoutes(ctx, parts, req.query, req, res) ||
             MonitoringRoutes(ctx, parts, req, res)) {
    return false;
  } else if (parts[1] == "models" && parts.size() >= 3) {
    return ModelRoutes(ctx, parts, req_ptr, reply, res);
  } else if (parts[1] == "repository" && parts.size() == 3 && parts[2] == "index") {
    post ? RepositoryIndexRoute(ctx, req, res) : MethodNotAllowed(res);
  } else if (parts[1] == "repository" && parts.size() == 5 && parts[2] == "models" &&
             (parts[4] == "load" || parts[4] == "unload")) {
    post ? RepositoryModelRoute(ctx, std::string(parts[3]), parts[4], req, res) : MethodNotAllowed(res);
  } else {
    NotFound(res);
  }
  return false;
}

}  // namespace
}  // namespace slipway::frontends::http
