// Predict routes: an application's own JSON in and out, through the model's `predict:` section
// (processing::Predictor does the work; this file only finds the model).
//   POST /predict[?model=NAME[&version=V]]              the named model, else the default one
//   POST /v2/models/{m}[/versions/{v}]/predict          {v}: a version number or a label
//   body: {...} -> {...}   or   [{...}, ...] -> [{...}, ...]
// Errors are {"error": "..."}: 400 for the application's JSON, 404 for an unknown model or one
// without a predict section, and the inference's own codes otherwise.
#include <cctype>
#include <set>

#include "slipway/frontends/http/http_routes.h"
#include "slipway/frontends/http/kserve_json_codec.h"
#include "slipway/processing/predictor.h"

namespace slipway::frontends::http {

namespace {

using core::Status;

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && HexDigit(s[i + 1]) >= 0 &&
               HexDigit(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexDigit(s[i + 1]) * 16 + HexDigit(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// The decoded value of `key` in a query string ("" when absent).
std::string QueryValue(std::string_view query, std::string_view key) {
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t end = query.find('&', pos);
    if (end == std::string_view::npos) end = query.size();
    const std::string_view pair = query.substr(pos, end - pos);
    const size_t eq = pair.find('=');
    if (PercentDecode(pair.substr(0, eq)) == key) {
      return eq == std::string_view::npos ? std::string() : PercentDecode(pair.substr(eq + 1));
    }
    pos = end + 1;
  }
  return std::string();
}

core::Result<int64_t> ResolveVersion(const RouteContext& ctx, const std::string& model,
                                     std::string_view text) {
  auto v = core::ParseModelVersion(text);
  if (!v.ok() && ctx.routing != nullptr && !text.empty() &&
      !std::isdigit(static_cast<unsigned char>(text[0]))) {
    v = ctx.routing->ResolveLabel(model, std::string(text));  // a label names a version
  }
  return v;
}

}  // namespace

std::shared_ptr<processing::Predictor> MakePredictor() { return processing::Predictor::Create(); }

bool IsPredictPath(const std::vector<std::string_view>& parts) {
  if (parts.size() == 1) return parts[0] == "predict";
  return parts.size() >= 4 && parts[0] == "v2" && parts[1] == "models" &&
         parts.back() == "predict" &&
         (parts.size() == 4 || (parts.size() == 6 && parts[3] == "versions"));
}

bool PredictRoute(const RouteContext& ctx, const std::vector<std::string_view>& parts,
                  const std::shared_ptr<const HttpRequest>& req_ptr, const HttpReply& reply,
                  HttpResponse& res) {
  const HttpRequest& req = *req_ptr;
  if (req.method != "POST") {
    Reply(res, 405, ErrorJson("Method Not Allowed: POST application JSON to predict"));
    return false;
  }
  if (ctx.predictor == nullptr || ctx.inference == nullptr) {
    Reply(res, 404, ErrorJson("Not Found"));
    return false;
  }
  processing::PredictCall call;
  std::string version_text;
  if (parts.size() == 1) {
    call.model = QueryValue(req.query, "model");
    version_text = QueryValue(req.query, "version");
    if (call.model.empty()) {
      if (!version_text.empty()) {
        ReplyError(res, Status::InvalidArgument("?version= needs ?model="));
        return false;
      }
      if (ctx.admin == nullptr) {
        ReplyError(res, Status::InvalidArgument("POST /predict needs ?model=NAME"));
        return false;
      }
      std::set<std::string> names;
      for (const auto& e : ctx.admin->RepositoryIndex(true)) names.insert(e.name);
      auto model = ctx.predictor->DefaultModel(*ctx.inference,
                                               std::vector<std::string>(names.begin(), names.end()));
      if (!model.ok()) {
        ReplyError(res, model.status());
        return false;
      }
      call.model = *model;
    }
  } else {
    call.model = std::string(parts[2]);
    if (parts.size() == 6) version_text = std::string(parts[4]);
  }
  if (!version_text.empty()) {
    auto v = ResolveVersion(ctx, call.model, version_text);
    if (!v.ok()) {
      ReplyError(res, v.status());
      return false;
    }
    call.version = *v;
  }
  call.body = req.body;
  if (req.has_header("slipway-routing-key")) {
    call.parameters["routing_key"] = req.header("slipway-routing-key");
  }
  if (req.client_gone) call.cancelled = [gone = req.client_gone] { return gone->load(); };
  ctx.predictor->Predict(*ctx.inference, std::move(call),
                         [req_ptr, reply](core::Result<std::string> answer) {
                           HttpResponse out;
                           if (!answer.ok()) {
                             ReplyError(out, answer.status());
                           } else {
                             Reply(out, 200, std::move(answer).value());
                           }
                           reply(std::move(out));
                         });
  return true;
}

}  // namespace slipway::frontends::http
