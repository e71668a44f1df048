// Admin routes: labels, traffic, rollouts and history of a model (served by the RoutingAdmin),
// and uploads of new versions (served by the AdminService). Bodies are small JSON objects;
// answers are the model's routing view, so a client sees the effect of its change at once.
#include <simdjson.h>

#include <charconv>
#include <ctime>
#include <optional>
#include <set>

#include "slipway/core/json_writer.h"
#include "slipway/frontends/http/http_routes.h"
#include "slipway/frontends/http/kserve_json_codec.h"

namespace slipway::frontends::http {

namespace {

namespace dom = simdjson::dom;
using core::Result;
using core::Status;

Result<dom::object> ParseObject(dom::parser& parser, const simdjson::padded_string& json,
                                bool allow_empty) {
  dom::element doc;
  dom::object root;
  // An empty body reads as {} (a default dom::object has no document behind it).
  static const simdjson::padded_string kEmpty(std::string_view("{}"));
  const bool empty = json.size() == 0 ||
                     std::string_view(json.data(), json.size()).find_first_not_of(" \t\r\n") ==
                         std::string_view::npos;
  if (parser.parse(allow_empty && empty ? kEmpty : json).get(doc) != simdjson::SUCCESS ||
      doc.get_object().get(root) != simdjson::SUCCESS) {
    return Status::InvalidArgument("the request body must be a JSON object");
  }
  return root;
}

// {"version": N} (a number or a decimal string); nullopt when absent.
Result<std::optional<int64_t>> VersionField(dom::object root) {
  dom::element v;
  if (root.size() == 0 || root["version"].get(v) != simdjson::SUCCESS) {
    return std::optional<int64_t>();
  }
  int64_t n = 0;
  std::string_view text;
  if (v.get_int64().get(n) == simdjson::SUCCESS) {
  } else if (v.get_string().get(text) == simdjson::SUCCESS) {
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || ptr != text.data() + text.size()) n = 0;
  }
  if (n < 1) return Status::InvalidArgument("'version' must be a version number >= 1");
  return std::optional<int64_t>(n);
}

Result<serving::TrafficChange> DecodeTraffic(dom::object root) {
  serving::TrafficChange change;
  for (auto [key, value] : root) {
    if (key == "split") {
      dom::object split;
      if (value.get_object().get(split) != simdjson::SUCCESS) {
        return Status::InvalidArgument("'split' must be an object of version (or label) to weight");
      }
      for (auto [target, weight] : split) {
        int64_t w = 0;
        if (weight.get_int64().get(w) != simdjson::SUCCESS || w < 0) {
          return Status::InvalidArgument("split weight of '" + std::string(target) +
                                         "' must be an integer >= 0");
        }
        change.split.emplace_back(std::string(target), w);
      }
    } else if (key == "shadow") {
      if (value.is_null()) continue;
      dom::object shadow;
      if (value.get_object().get(shadow) != simdjson::SUCCESS) {
        return Status::InvalidArgument("'shadow' must be an object {\"version\", \"fraction\"}");
      }
      dom::element target;
      if (shadow["version"].get(target) != simdjson::SUCCESS) {
        return Status::InvalidArgument("'shadow' needs a version");
      }
      int64_t n = 0;
      std::string_view text;
      if (target.get_int64().get(n) == simdjson::SUCCESS) {
        change.shadow_target = std::to_string(n);
      } else if (target.get_string().get(text) == simdjson::SUCCESS) {
        change.shadow_target = std::string(text);
      } else {
        return Status::InvalidArgument("shadow 'version' must be a version number or a label");
      }
      double fraction = 1.0;
      dom::element f;
      if (shadow["fraction"].get(f) == simdjson::SUCCESS &&
          f.get_double().get(fraction) != simdjson::SUCCESS) {
        return Status::InvalidArgument("shadow 'fraction' must be a number");
      }
      change.shadow_fraction = fraction;
    } else {
      return Status::InvalidArgument("unknown traffic field '" + std::string(key) +
                                     "' (known: split, shadow)");
    }
  }
  return change;
}

std::string RoutingJson(const serving::RoutingView& v) {
  core::JsonWriter w;
  w.StartObject();
  w.Key("model");
  w.String(v.model);
  w.Key("default_version");
  w.Int(v.default_version);
  w.Key("labels");
  w.StartObject();
  for (const auto& [label, version] : v.labels) {
    w.Key(label);
    w.Int(version);
  }
  w.EndObject();
  w.Key("traffic");
  w.StartObject();
  w.Key("split");
  w.StartArray();
  for (const auto& [version, weight] : v.split) {
    w.StartObject();
    w.Key("version");
    w.Int(version);
    w.Key("weight");
    w.Int(weight);
    w.EndObject();
  }
  w.EndArray();
  w.Key("shadow");
  if (v.shadow_version > 0) {
    w.StartObject();
    w.Key("version");
    w.Int(v.shadow_version);
    w.Key("fraction");
    w.Double(v.shadow_fraction);
    w.EndObject();
  } else {
    w.Null();
  }
  w.EndObject();
  w.Key("rollout");
  w.StartObject();
  w.Key("state");
  w.String(v.rollout.state);
  w.Key("candidate");
  w.Int(v.rollout.candidate);
  w.Key("stable");
  w.Int(v.rollout.stable);
  w.Key("step");
  w.Int(v.rollout.step);
  w.Key("steps");
  w.Int(v.rollout.steps);
  w.Key("weight");
  w.Int(v.rollout.weight_percent);
  w.Key("reason");
  w.String(v.rollout.reason);
  w.EndObject();
  w.Key("versions");
  w.StartArray();
  for (const auto& t : v.versions) {
    w.StartObject();
    w.Key("version");
    w.Int(t.version);
    w.Key("requests");
    w.Uint(t.requests);
    w.Key("errors");
    w.Uint(t.errors);
    w.Key("p99_ms");
    w.Double(t.p99_ms);
    w.EndObject();
  }
  w.EndArray();
  w.Key("comparisons");
  w.StartArray();
  for (const auto& c : v.comparisons) {
    w.StartObject();
    w.Key("primary");
    w.Int(c.primary);
    w.Key("shadow");
    w.Int(c.shadow);
    w.Key("comparisons");
    w.Uint(c.comparisons);
    w.Key("agreements");
    w.Uint(c.agreements);
    w.Key("agreement_rate");
    w.Double(c.comparisons ? static_cast<double>(c.agreements) / static_cast<double>(c.comparisons)
                           : 0.0);
    w.Key("primary_mean_ms");
    w.Double(c.primary_mean_ms);
    w.Key("shadow_mean_ms");
    w.Double(c.shadow_mean_ms);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.Take();
}

std::string TimeIso(int64_t ms) {
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

std::string HistoryJson(const std::string& model,
                        const std::vector<serving::DeploymentEventView>& events) {
  core::JsonWriter w;
  w.StartObject();
  w.Key("model");
  w.String(model);
  w.Key("events");
  w.StartArray();
  for (const auto& e : events) {
    w.StartObject();
    w.Key("id");
    w.Int(e.id);
    w.Key("time");
    w.String(TimeIso(e.time_ms));
    w.Key("kind");
    w.String(e.kind);
    w.Key("version");
    w.Int(e.version);
    w.Key("reason");
    w.String(e.reason);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  std::string out = w.Take();
  // Splice each event's details (already a JSON object) in, keeping the writer simple.
  size_t pos = 0;
  for (const auto& e : events) {
    const std::string marker = "\"id\":" + std::to_string(e.id) + ",";
    pos = out.find(marker, pos);
    if (pos == std::string::npos) break;
    const std::string details = "\"details\":" + (e.details_json.empty() ? "{}" : e.details_json) + ",";
    out.insert(pos, details);
    pos += details.size() + marker.size();
  }
  return out;
}

size_t LimitFromQuery(const std::string& query) {
  size_t limit = 100;
  const auto pos = query.find("limit=");
  if (pos != std::string::npos && (pos == 0 || query[pos - 1] == '&')) {
    const char* begin = query.data() + pos + 6;
    std::from_chars(begin, query.data() + query.size(), limit);
  }
  return std::min<size_t>(limit, 10000);
}

void ReplyRouting(const RouteContext& ctx, const std::string& model, HttpResponse& res) {
  auto view = ctx.routing->GetRouting(model);
  if (!view.ok()) return ReplyError(res, view.status());
  Reply(res, 200, RoutingJson(*view));
}

void Upload(const RouteContext& ctx, const std::string& model, int64_t version,
            const HttpRequest& req, HttpResponse& res) {
  auto result = ctx.admin->UploadVersion(model, version, req.body);
  if (!result.ok()) return ReplyError(res, result.status());
  core::JsonWriter w;
  w.StartObject();
  w.Key("model");
  w.String(model);
  w.Key("version");
  w.Int(result->first);
  w.Key("state");
  w.String(result->second);
  w.EndObject();
  Reply(res, 201, w.Take());
}

}  // namespace

bool AdminRoutes(const RouteContext& ctx, const std::vector<std::string_view>& parts,
                 const std::string& query, const HttpRequest& req, HttpResponse& res) {
  const std::string& method = req.method;
  auto not_allowed = [&res] { Reply(res, 405, ErrorJson("Method Not Allowed")); };
  // Uploads: /v2/repository/models/{m}/versions[/{v}]
  if (parts.size() >= 5 && parts.size() <= 6 && parts[1] == "repository" &&
      parts[2] == "models" && parts[4] == "versions") {
    if (ctx.admin == nullptr) return false;
    const std::string model(parts[3]);
    if (parts.size() == 5) {
      method == "POST" ? Upload(ctx, model, 0, req, res) : not_allowed();
      return true;
    }
    auto v = core::ParseModelVersion(parts[5]);
    if (!v.ok() || *v == 0) {
      ReplyError(res, Status::InvalidArgument("'" + std::string(parts[5]) +
                                              "' is not a version number >= 1"));
      return true;
    }
    method == "PUT" ? Upload(ctx, model, *v, req, res) : not_allowed();
    return true;
  }
  if (parts.size() < 4 || parts[1] != "models" || ctx.routing == nullptr) return false;
  const std::string model(parts[2]);
  const std::string_view resource = parts[3];
  static const std::set<std::string_view> kResources = {
      "routing", "labels", "traffic", "rollout", "promote", "rollback", "history"};
  if (kResources.count(resource) == 0) return false;
  if ((resource == "labels" && parts.size() != 5) || (resource != "labels" && parts.size() != 4)) {
    Reply(res, 404, ErrorJson("Not Found"));
    return true;
  }
  thread_local dom::parser parser;
  const simdjson::padded_string json(req.body);
  auto body = [&]() { return ParseObject(parser, json, true); };
  Status st;
  if (resource == "routing") {
    if (method != "GET") return not_allowed(), true;
    ReplyRouting(ctx, model, res);
    return true;
  }
  if (resource == "history") {
    if (method != "GET") return not_allowed(), true;
    auto events = ctx.routing->History(model, LimitFromQuery(query));
    if (!events.ok()) return ReplyError(res, events.status()), true;
    Reply(res, 200, HistoryJson(model, *events));
    return true;
  }
  if (resource == "labels") {
    const std::string label(parts[4]);
    if (method == "PUT") {
      auto root = body();
      if (!root.ok()) return ReplyError(res, root.status()), true;
      auto version = VersionField(*root);
      if (!version.ok()) return ReplyError(res, version.status()), true;
      if (!*version) return ReplyError(res, Status::InvalidArgument("the body needs a 'version'")), true;
      if (label.empty() || std::isdigit(static_cast<unsigned char>(label[0]))) {
        return ReplyError(res, Status::InvalidArgument("a label name must not start with a digit")), true;
      }
      st = ctx.routing->SetLabel(model, label, **version);
    } else if (method == "DELETE") {
      st = ctx.routing->DeleteLabel(model, label);
    } else {
      return not_allowed(), true;
    }
  } else if (resource == "traffic") {
    if (method == "PUT") {
      auto root = body();
      if (!root.ok()) return ReplyError(res, root.status()), true;
      auto change = DecodeTraffic(*root);
      if (!change.ok()) return ReplyError(res, change.status()), true;
      st = ctx.routing->SetTraffic(model, *change);
    } else if (method == "DELETE") {
      st = ctx.routing->ClearTraffic(model);
    } else {
      return not_allowed(), true;
    }
  } else {
    if (method != "POST") return not_allowed(), true;
    auto root = body();
    if (!root.ok()) return ReplyError(res, root.status()), true;
    auto version = VersionField(*root);
    if (!version.ok()) return ReplyError(res, version.status()), true;
    if (resource == "rollout") {
      if (!*version) return ReplyError(res, Status::InvalidArgument("the body needs a 'version'")), true;
      st = ctx.routing->StartRollout(model, **version);
    } else if (resource == "promote") {
      st = ctx.routing->Promote(model, version->value_or(0));
    } else {
      st = ctx.routing->Rollback(model);
    }
  }
  if (!st.ok()) return ReplyError(res, st), true;
  ReplyRouting(ctx, model, res);
  return true;
}

}  // namespace slipway::frontends::http
