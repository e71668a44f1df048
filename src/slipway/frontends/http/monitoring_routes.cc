// Monitoring routes: ground truth fed back for earlier answers, and the live accuracy it yields.
//   POST /v2/models/{m}/feedback  {"items": [{"id": "<response id>", "truth": 1 | [1, 0, ...]}]}
//     -> {"applied": n, "unknown_ids": [...]}   (ids never seen, expired or of another model)
//   GET  /v2/models/{m}/accuracy  -> {"model", "versions": [{version, feedback, window,
//                                     accuracy | mean_abs_error}]}
#include <simdjson.h>

#include "slipway/core/json_writer.h"
#include "slipway/frontends/http/http_routes.h"
#include "slipway/frontends/http/kserve_json_codec.h"

namespace slipway::frontends::http {

namespace {

namespace dom = simdjson::dom;
using core::Result;
using core::Status;

Result<std::vector<serving::FeedbackItem>> DecodeFeedback(const std::string& body) {
  thread_local dom::parser parser;
  const simdjson::padded_string json(body);
  dom::element doc;
  dom::array items;
  if (parser.parse(json).get(doc) != simdjson::SUCCESS ||
      doc["items"].get_array().get(items) != simdjson::SUCCESS) {
    return Status::InvalidArgument(
        "the feedback body must be {\"items\": [{\"id\": \"...\", \"truth\": value or [values]}]}");
  }
  std::vector<serving::FeedbackItem> out;
  size_t i = 0;
  for (dom::element item : items) {
    const std::string at = "items[" + std::to_string(i++) + "]";
    std::string_view id;
    if (item["id"].get_string().get(id) != simdjson::SUCCESS || id.empty()) {
      return Status::InvalidArgument(at + " needs a non-empty string 'id'");
    }
    dom::element truth;
    if (item["truth"].get(truth) != simdjson::SUCCESS) {
      return Status::InvalidArgument(at + " needs 'truth' (a number or a list of numbers)");
    }
    serving::FeedbackItem f;
    f.id = std::string(id);
    dom::array list;
    double v = 0;
    if (truth.get_array().get(list) == simdjson::SUCCESS) {
      for (dom::element e : list) {
        if (e.get_double().get(v) != simdjson::SUCCESS) {
          return Status::InvalidArgument(at + " 'truth' must hold numbers");
        }
        f.truth.push_back(v);
      }
    } else if (truth.get_double().get(v) == simdjson::SUCCESS) {
      f.truth.push_back(v);
    } else {
      return Status::InvalidArgument(at + " 'truth' must be a number or a list of numbers");
    }
    if (f.truth.empty()) return Status::InvalidArgument(at + " 'truth' is empty");
    out.push_back(std::move(f));
  }
  return out;
}

std::string DriftJson(const serving::DriftReport& r) {
  core::JsonWriter w;
  w.StartObject();
  w.Key("model");
  w.String(r.model);
  w.Key("version");
  w.Int(r.version);
  w.Key("reference_ready");
  w.Bool(r.reference_ready);
  w.Key("reference_rows");
  w.Uint(r.reference_rows);
  w.Key("window_rows");
  w.Uint(r.window_rows);
  w.Key("rows_skipped");
  w.StartObject();
  w.Key("sample");
  w.Uint(r.rows_skipped_by_sample);
  w.Key("rate");
  w.Uint(r.rows_skipped_by_rate);
  w.EndObject();
  w.Key("windows");
  w.Uint(r.windows);
  w.Key("drifting_windows");
  w.Uint(r.drifting_windows);
  w.Key("drifting");
  w.Bool(r.drifting);
  w.Key("judged_at_ms");
  w.Int(r.judged_at_ms);
  w.Key("features");
  w.StartArray();
  for (const auto& f : r.features) {
    w.StartObject();
    w.Key("name");
    w.String(f.name);
    w.Key("kind");
    w.String(f.output ? "output" : "input");
    w.Key("test");
    w.String(f.test);
    w.Key("statistic");
    w.Double(f.statistic);
    w.Key("p_value");
    w.Double(f.p_value);
    w.Key("psi");
    w.Double(f.psi);
    w.Key("drift");
    w.Bool(f.drift);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.Take();
}

}  // namespace

bool MonitoringRoutes(const RouteContext& ctx, const std::vector<std::string_view>& parts,
                      const HttpRequest& req, HttpResponse& res) {
  if (parts.size() != 4 || parts[1] != "models") return false;
  const std::string model(parts[2]);
  core::JsonWriter w;
  if (parts[3] == "drift" && ctx.drift != nullptr) {
    if (req.method != "GET") return Reply(res, 405, ErrorJson("Method Not Allowed")), true;
    auto report = ctx.drift->Drift(model);
    if (!report.ok()) return ReplyError(res, report.status()), true;
    Reply(res, 200, DriftJson(*report));
    return true;
  }
  if (ctx.ground_truth == nullptr || (parts[3] != "feedback" && parts[3] != "accuracy")) {
    return false;
  }
  if (parts[3] == "feedback") {
    if (req.method != "POST") return Reply(res, 405, ErrorJson("Method Not Allowed")), true;
    auto items = DecodeFeedback(req.body);
    if (!items.ok()) return ReplyError(res, items.status()), true;
    auto result = ctx.ground_truth->Feedback(model, *items);
    if (!result.ok()) return ReplyError(res, result.status()), true;
    w.StartObject();
    w.Key("applied");
    w.Uint(result->applied);
    w.Key("unknown_ids");
    w.StartArray();
    for (const auto& id : result->unknown_ids) w.String(id);
    w.EndArray();
    w.EndObject();
    Reply(res, 200, w.Take());
    return true;
  }
  if (req.method != "GET") return Reply(res, 405, ErrorJson("Method Not Allowed")), true;
  auto accuracy = ctx.ground_truth->Accuracy(model);
  if (!accuracy.ok()) return ReplyError(res, accuracy.status()), true;
  w.StartObject();
  w.Key("model");
  w.String(model);
  w.Key("versions");
  w.StartArray();
  for (const auto& a : *accuracy) {
    w.StartObject();
    w.Key("version");
    w.Int(a.version);
    w.Key("feedback");
    w.Uint(a.feedback);
    w.Key("window");
    w.Uint(a.window);
    if (a.accuracy) {
      w.Key("accuracy");
      w.Double(*a.accuracy);
    }
    if (a.mean_abs_error) {
      w.Key("mean_abs_error");
      w.Double(*a.mean_abs_error);
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  Reply(res, 200, w.Take());
  return true;
}

}  // namespace slipway::frontends::http
