// TensorFlow Serving REST API (the basis of KServe v1), every path under /v1:
//   GET  /v1/models                                                  KServe v1 model list
//   GET  /v1/models/{m}[/versions/{v}|/labels/{l}]                   model status
//   GET  /v1/models/{m}[/versions/{v}|/labels/{l}]/metadata          signature metadata
//   POST /v1/models/{m}[/versions/{v}|/labels/{l}]:{predict,classify,regress}
// Path words and verbs match case-insensitively; model names and labels are URL-decoded. Bodies
// are translated by tfserving_json_codec into core::InferRequest and go through the same
// InferenceService chain as KServe v2. Errors are {"error": "..."}; a path that is none of the
// above is "Malformed request" (400), as TF Serving answers.
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <set>
#include <string>
#include <utility>

#include "slipway/core/json_writer.h"
#include "slipway/frontends/http/http_routes.h"
#include "slipway/frontends/http/kserve_json_codec.h"
#include "slipway/frontends/http/tfserving_json_codec.h"

namespace slipway::frontends::http {

using core::Status;

namespace {

enum class Verb { kNone, kPredict, kClassify, kRegress };

// A parsed /v1/models/... path.
struct Target {
  std::string model;
  std::string version;  // digits, or "" when none was given
  std::string label;    // "" when none was given
  bool metadata = false;
  Verb verb = Verb::kNone;
  std::string_view verb_text;
};

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

core::Result<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    const int hi = i + 2 < s.size() ? HexValue(s[i + 1]) : -1;
    const int lo = i + 2 < s.size() ? HexValue(s[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      return Status::InvalidArgument("bad percent-encoding in '" + std::string(s) + "'");
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

bool AllDigits(std::string_view s) {
  auto digit = [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; };
  return !s.empty() && std::all_of(s.begin(), s.end(), digit);
}

Verb ParseVerb(std::string_view v) {
  if (EqualsIgnoreCase(v, "predict")) return Verb::kPredict;
  if (EqualsIgnoreCase(v, "classify")) return Verb::kClassify;
  if (EqualsIgnoreCase(v, "regress")) return Verb::kRegress;
  return Verb::kNone;
}

// parts: v1 models {m}[:verb] | v1 models {m} (versions {v} | labels {l})[:verb] | ... metadata.
// Returns false when the path has none of these shapes.
bool ParseTarget(const std::vector<std::string_view>& parts, Target* t) {
  std::vector<std::string_view> segs(parts.begin() + 2, parts.end());
  std::string_view& last = segs.back();
  if (const size_t colon = last.find(':'); colon != std::string_view::npos) {
    t->verb_text = last.substr(colon + 1);
    last = last.substr(0, colon);
    if (last.empty() || t->verb_text.empty()) return false;
  }
  for (std::string_view s : segs) {
    if (s.find(':') != std::string_view::npos) return false;
  }
  size_t i = 1;
  if (segs.size() > i + 1 && (EqualsIgnoreCase(segs[i], "versions") ||
                              EqualsIgnoreCase(segs[i], "labels"))) {
    if (EqualsIgnoreCase(segs[i], "versions")) {
      if (!AllDigits(segs[i + 1])) return false;
      t->version = std::string(segs[i + 1]);
    } else {
      auto label = PercentDecode(segs[i + 1]);
      if (!label.ok() || label->empty()) return false;
      t->label = std::move(*label);
    }
    i += 2;
  }
  if (segs.size() > i && t->verb_text.empty() && EqualsIgnoreCase(segs[i], "metadata")) {
    t->metadata = true;
    ++i;
  }
  if (i != segs.size()) return false;
  auto model = PercentDecode(segs[0]);
  if (!model.ok() || model->empty()) return false;
  t->model = std::move(*model);
  if (!t->verb_text.empty()) t->verb = ParseVerb(t->verb_text);
  return true;
}

void Malformed(const HttpRequest& req, HttpResponse& res, std::string_view why = {}) {
  std::string message = "Malformed request: " + req.method + " " + req.path;
  if (!why.empty()) message += " (" + std::string(why) + ")";
  Reply(res, 400, ErrorJson(message));
}

void MethodNotAllowed(HttpResponse& res) { Reply(res, 405, ErrorJson("Method Not Allowed")); }

core::Result<int64_t> ResolveVersion(const RouteContext& ctx, const Target& t) {
  if (!t.version.empty()) return core::ParseModelVersion(t.version);
  if (t.label.empty()) return int64_t{0};
  if (ctx.routing == nullptr) {
    return Status::NotFound("model '" + t.model + "' has no label '" + t.label +
                            "': this server does not route by label");
  }
  return ctx.routing->ResolveLabel(t.model, t.label);
}

// ---- GET /v1/models (KServe v1) ----

void ModelListRoute(const RouteContext& ctx, HttpResponse& res) {
  core::JsonWriter w;
  w.StartObject();
  w.Key("models");
  w.StartArray();
  if (ctx.admin != nullptr) {
    std::set<std::string> names;
    for (const auto& e : ctx.admin->RepositoryIndex(true)) names.insert(e.name);
    for (const auto& name : names) w.String(name);
  }
  w.EndArray();
  w.EndObject();
  Reply(res, 200, w.Take());
}

// ---- GET /v1/models/{m}[/versions/{v}]: GetModelStatusResponse as JSON ----

struct VersionStatus {
  int64_t version = 0;
  const char* state = "UNKNOWN";
  const char* error_code = "OK";
  std::string error_message;
};

VersionStatus StatusOf(const serving::RepositoryIndexEntry& e) {
  VersionStatus s;
  s.version = std::strtoll(e.version.c_str(), nullptr, 10);
  if (e.state == "READY") {
    s.state = "AVAILABLE";
  } else if (e.state == "LOADING") {
    s.state = "LOADING";
  } else if (e.state == "UNLOADING") {
    s.state = "UNLOADING";
  } else if (e.state == "UNAVAILABLE") {
    // Retired, or failed to load: TF Serving reports both as END, a failure with its error.
    s.state = "END";
    if (!e.reason.empty()) {
      s.error_code = "UNKNOWN";
      s.error_message = e.reason;
    }
  }
  return s;
}

void StatusRoute(const RouteContext& ctx, const std::string& name, int64_t version,
                 HttpResponse& res) {
  std::vector<VersionStatus> versions;
  if (ctx.admin != nullptr) {
    for (const auto& e : ctx.admin->RepositoryIndex(false)) {
      if (e.name != name || e.version.empty()) continue;
      VersionStatus s = StatusOf(e);
      if (version == 0 || s.version == version) versions.push_back(std::move(s));
    }
  } else if (auto md = ctx.inference->GetModelMetadata(name, version); md.ok()) {
    for (const auto& v : md->versions) {
      VersionStatus s;
      s.version = std::strtoll(v.c_str(), nullptr, 10);
      s.state = "AVAILABLE";
      if (version == 0 || s.version == version) versions.push_back(std::move(s));
    }
  }
  if (versions.empty()) {
    auto ready = ctx.inference->ModelReady(name, version);
    if (!ready.ok() && ready.status().code() == core::StatusCode::kNotFound) {
      return ReplyError(res, ready.status());
    }
    return ReplyError(res, Status::NotFound(
                               version == 0 ? "model '" + name + "' has no versions"
                                            : "model '" + name + "' has no version " +
                                                  std::to_string(version)));
  }
  std::sort(versions.begin(), versions.end(),
            [](const auto& a, const auto& b) { return a.version > b.version; });
  // KServe's v1 protocol asks the same path for {"name", "ready"}; both answers share one body.
  auto ready = ctx.inference->ModelReady(name, version);
  core::JsonWriter w;
  w.StartObject();
  w.Key("name");
  w.String(name);
  w.Key("ready");
  w.Bool(ready.ok() && *ready);
  w.Key("model_version_status");
  w.StartArray();
  for (const auto& s : versions) {
    w.StartObject();
    w.Key("version");
    w.String(std::to_string(s.version));  // an int64 in proto JSON: a string
    w.Key("state");
    w.String(s.state);
    w.Key("status");
    w.StartObject();
    w.Key("error_code");
    w.String(s.error_code);
    w.Key("error_message");
    w.String(s.error_message);
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  Reply(res, 200, w.Take());
}

// ---- GET .../metadata: GetModelMetadataResponse with one SignatureDef ----

void WriteTensorInfos(core::JsonWriter& w, const std::vector<serving::TensorMetadata>& list) {
  w.StartObject();
  for (const auto& t : list) {
    w.Key(t.name);
    w.StartObject();
    w.Key("dtype");
    w.String(TfDataTypeName(t.type));
    w.Key("tensor_shape");
    w.StartObject();
    w.Key("dim");
    w.StartArray();
    for (int64_t d : t.shape) {
      w.StartObject();
      w.Key("size");
      w.String(std::to_string(d));
      w.Key("name");
      w.String("");
      w.EndObject();
    }
    w.EndArray();
    w.Key("unknown_rank");
    w.Bool(false);
    w.EndObject();
    w.Key("name");
    w.String(t.name);
    w.EndObject();
  }
  w.EndObject();
}

void MetadataRoute(const RouteContext& ctx, const std::string& name, int64_t version,
                   HttpResponse& res) {
  auto md = ctx.inference->GetModelMetadata(name, version);
  if (!md.ok()) return ReplyError(res, md.status());
  int64_t shown = version;
  for (const auto& v : md->versions) {
    if (version == 0) shown = std::max<int64_t>(shown, std::strtoll(v.c_str(), nullptr, 10));
  }
  core::JsonWriter w;
  w.StartObject();
  w.Key("model_spec");
  w.StartObject();
  w.Key("name");
  w.String(md->name);
  w.Key("signature_name");
  w.String("");
  w.Key("version");
  w.String(std::to_string(shown));
  w.EndObject();
  w.Key("metadata");
  w.StartObject();
  w.Key("signature_def");
  w.StartObject();
  w.Key("signature_def");
  w.StartObject();
  w.Key(kTfDefaultSignature);
  w.StartObject();
  w.Key("inputs");
  WriteTensorInfos(w, md->inputs);
  w.Key("outputs");
  WriteTensorInfos(w, md->outputs);
  w.Key("method_name");
  w.String("tensorflow/serving/predict");
  w.Key("defaults");
  w.StartObject();
  w.EndObject();
  w.EndObject();
  w.EndObject();
  w.EndObject();
  w.EndObject();
  w.EndObject();
  Reply(res, 200, w.Take());
}

// ---- POST ...:predict | :classify | :regress ----

// Starts an inference; `reply` runs when the model has answered.
void InferTfRoute(const RouteContext& ctx, const std::string& name, int64_t version, Verb verb,
                  const HttpRequest& req, const HttpReply& reply) {
  HttpResponse res;
  auto config = ctx.inference->GetModelConfig(name, version);
  if (!config.ok()) {
    ReplyError(res, config.status());
    return reply(std::move(res));
  }
  core::InferRequest request;
  request.model_name = name;
  request.model_version = version;
  auto info = verb == Verb::kPredict ? DecodeTfPredictRequest(req.body, *config, &request)
                                     : DecodeTfExamplesRequest(req.body, *config, &request);
  if (!info.ok()) {
    ReplyError(res, info.status());
    return reply(std::move(res));
  }
  if (req.has_header("slipway-routing-key")) {
    request.parameters["routing_key"] = req.header("slipway-routing-key");
  }
  if (req.client_gone) {
    request.cancelled = [gone = req.client_gone] { return gone->load(); };
  }
  // The decoded tensors own their bytes: the request body is not needed past this point.
  ctx.inference->Infer(std::move(request), [reply, verb, info = std::move(*info)](
                                               core::Result<core::InferResponse> result) {
    HttpResponse out;
    if (!result.ok()) {
      ReplyError(out, result.status());
      return reply(std::move(out));
    }
    core::Result<std::string> body =
        verb == Verb::kPredict    ? EncodeTfPredictResponse(*result, info)
        : verb == Verb::kClassify ? EncodeTfClassifyResponse(*result, info)
                                  : EncodeTfRegressResponse(*result, info);
    if (!body.ok()) {
      ReplyError(out, body.status());
    } else {
      Reply(out, 200, std::move(*body));
    }
    reply(std::move(out));
  });
}

}  // namespace

bool TfServingRoutes(const RouteContext& ctx, const std::vector<std::string_view>& parts,
                     const std::shared_ptr<const HttpRequest>& req_ptr, const HttpReply& reply,
                     HttpResponse& res) {
  const HttpRequest& req = *req_ptr;
  const bool get = req.method == "GET" || req.method == "HEAD";
  if (parts.size() < 2 || !EqualsIgnoreCase(parts[1], "models")) {
    Malformed(req, res);
    return false;
  }
  if (parts.size() == 2) {
    get ? ModelListRoute(ctx, res) : MethodNotAllowed(res);
    return false;
  }
  Target t;
  if (!ParseTarget(parts, &t)) {
    Malformed(req, res);
    return false;
  }
  if (!t.verb_text.empty() && t.verb == Verb::kNone) {
    Malformed(req, res, "unknown method ':" + std::string(t.verb_text) +
                            "'; expected :predict, :classify or :regress");
    return false;
  }
  if (t.verb != Verb::kNone ? req.method != "POST" : !get) {
    MethodNotAllowed(res);
    return false;
  }
  auto version = ResolveVersion(ctx, t);
  if (!version.ok()) {
    ReplyError(res, version.status());
    return false;
  }
  if (t.verb != Verb::kNone) {
    InferTfRoute(ctx, t.model, *version, t.verb, req, reply);
    return true;
  }
  if (t.metadata) {
    MetadataRoute(ctx, t.model, *version, res);
  } else {
    StatusRoute(ctx, t.model, *version, res);
  }
  return false;
}

}  // namespace slipway::frontends::http
