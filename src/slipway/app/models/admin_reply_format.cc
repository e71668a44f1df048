#include "slipway/app/models/admin_reply_format.h"

#include <simdjson.h>

#include <algorithm>
#include <cstdio>
#include <utility>

#include "slipway/app/models/admin_request.h"

namespace slipway::app::models {
namespace {

using core::Result;
using core::Status;
using simdjson::dom::element;

std::string Quoted(const std::string& s) { return "'" + s + "'"; }

std::string Snippet(const std::string& body) {
  std::string s = body.substr(0, std::min(body.find('\n'), size_t{300}));
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// A number the way a person writes it: 90, 12.5, 0.05.
std::string Number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g", v);
  return buf;
}

// A scalar as text ("" for null); objects and arrays as compact JSON.
std::string Text(element e) {
  switch (e.type()) {
    case simdjson::dom::element_type::STRING:
      return std::string(e.get_string().value_unsafe());
    case simdjson::dom::element_type::INT64:
      return std::to_string(e.get_int64().value_unsafe());
    case simdjson::dom::element_type::UINT64:
      return std::to_string(e.get_uint64().value_unsafe());
    case simdjson::dom::element_type::DOUBLE:
      return Number(e.get_double().value_unsafe());
    case simdjson::dom::element_type::BOOL:
      return e.get_bool().value_unsafe() ? "true" : "false";
    case simdjson::dom::element_type::NULL_VALUE:
      return "";
    default:
      return simdjson::minify(e);
  }
}

// obj[key] as text; "" when `obj` is not an object or lacks the key.
std::string Field(element obj, const char* key) {
  element v;
  if (!obj.is_object() || obj[key].get(v)) return "";
  return Text(v);
}

// Parses `body` into `parser`; `what` names the reply in the error.
Result<element> ParseReply(simdjson::dom::parser& parser, const std::string& body,
                           const std::string& what) {
  element doc;
  if (parser.parse(body).get(doc)) {
    return Status::Internal(what + " is not JSON: " + Snippet(body));
  }
  return doc;
}

// obj[key] as a number; 0 when absent or not a number.
double NumberField(element obj, const char* key) {
  double v = 0;
  element e;
  if (!obj.is_object() || obj[key].get(e) || e.get_double().get(v)) return 0;
  return v;
}

std::string KeyValueLines(const std::vector<std::pair<std::string, std::string>>& lines) {
  size_t width = 0;
  for (const auto& [k, v] : lines) width = std::max(width, k.size() + 1);
  std::string out;
  for (const auto& [k, v] : lines) {
    out += k + ":" + std::string(width - k.size() - 1 + 2, ' ') + (v.empty() ? "-" : v) + "\n";
  }
  return out;
}

// traffic.split as "1=90 (90%), 2=10 (10%)"; accepts [{"version","weight"}] or {"1": 90}.
std::string SplitText(element split) {
  std::vector<std::pair<std::string, double>> entries;
  simdjson::dom::array list;
  simdjson::dom::object map;
  if (!split.get_array().get(list)) {
    for (element e : list) entries.emplace_back(Field(e, "version"), NumberField(e, "weight"));
  } else if (!split.get_object().get(map)) {
    for (auto [key, value] : map) {
      double w = 0;
      if (value.get_double().get(w)) w = 0;
      entries.emplace_back(std::string(key), w);
    }
  }
  double total = 0;
  for (const auto& [v, w] : entries) total += w;
  std::string out;
  for (const auto& [v, w] : entries) {
    if (!out.empty()) out += ", ";
    out += (v.empty() ? "?" : v) + "=" + Number(w);
    if (total > 0) out += " (" + Number(w * 100 / total) + "%)";
  }
  return out;
}

std::string RolloutText(element r) {
  std::vector<std::string> parts;
  if (std::string c = Field(r, "candidate"); !c.empty()) parts.push_back("candidate " + c);
  if (std::string s = Field(r, "stable"); !s.empty()) parts.push_back("stable " + s);
  if (std::string step = Field(r, "step"); !step.empty()) {
    const std::string steps = Field(r, "steps");
    parts.push_back("step " + step + (steps.empty() ? "" : " of " + steps));
  }
  std::string state = Field(r, "state");
  std::string out = state.empty() ? "unknown state" : state;
  for (size_t i = 0; i < parts.size(); ++i) out += (i == 0 ? ": " : ", ") + parts[i];
  return out;
}

bool LooksLikeRouting(const std::string& body) {
  simdjson::dom::parser parser;
  element doc;
  if (parser.parse(body).get(doc) || !doc.is_object()) return false;
  for (const char* key : {"labels", "traffic", "rollout", "default_version"}) {
    element v;
    if (!doc[key].get(v)) return true;
  }
  return false;
}

// The one-line confirmation for a verb that changes state.
std::string Confirmation(const ModelsFlags& f, const std::string& body) {
  const std::string model = "model " + Quoted(f.model);
  const std::string version = std::to_string(f.version);
  switch (f.verb) {
    case ModelsVerb::kLoad:
      return "loaded " + model +
             (f.config_path.empty() ? "" : " with the configuration in " + f.config_path);
    case ModelsVerb::kUnload:
      return "unloaded " + model;
    case ModelsVerb::kLabel:
      if (f.remove) return "deleted label " + Quoted(f.label) + " of " + model;
      return "label " + Quoted(f.label) + " of " + model + " now points to version " + version;
    case ModelsVerb::kSplit: {
      if (f.remove) return "cleared the traffic split of " + model;
      std::string out = "set the traffic split of " + model + ": ";
      for (size_t i = 0; i < f.split.size(); ++i) out += (i == 0 ? "" : ", ") + f.split[i];
      if (auto s = ParseShadow(f.shadow); s.ok()) {
        out += "; shadow: " + Number(s->fraction * 100) + "% of requests mirrored to version " +
               s->version;
      }
      return out;
    }
    case ModelsVerb::kRollout:
      return "started rolling out version " + version + " of " + model;
    case ModelsVerb::kPromote:
      return f.version > 0 ? "promoted version " + version + " of " + model
                           : "promoted the rollout candidate of " + model;
    case ModelsVerb::kRollback:
      return "rolled back " + model;
    case ModelsVerb::kUpload: {
      simdjson::dom::parser parser;
      element doc;
      std::string uploaded = f.version > 0 ? version : "";
      std::string state;
      if (!parser.parse(body).get(doc)) {
        if (std::string v = Field(doc, "version"); !v.empty()) uploaded = v;
        state = Field(doc, "state");
      }
      return "uploaded " + f.file + " as " + model +
             (uploaded.empty() ? " (new version)" : " version " + uploaded) +
             (state.empty() ? "" : " (" + state + ")");
    }
    default:
      return "done";
  }
}

}  // namespace

std::string FormatTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::vector<std::string>> cells = rows;
  std::vector<size_t> widths;
  for (auto& row : cells) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t c = 0; c < row.size(); ++c) {
      std::string& cell = row[c];
      if (cell.empty()) cell = "-";
      for (char& ch : cell) {
        if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = ' ';
      }
      widths[c] = std::max(widths[c], cell.size());
    }
  }
  std::string out;
  for (const auto& row : cells) {
    for (size_t c = 0; c < row.size(); ++c) {
      out += row[c];
      if (c + 1 < row.size()) out += std::string(widths[c] - row[c].size() + 2, ' ');
    }
    out += '\n';
  }
  return out;
}

Result<std::string> FormatModelIndex(const std::string& body) {
  simdjson::dom::parser parser;
  ASSIGN_OR_RETURN(element doc, ParseReply(parser, body, "the repository index"));
  simdjson::dom::array models;
  if (doc.get_array().get(models)) {
    return Status::Internal("the repository index is not a JSON array: " + Snippet(body));
  }
  std::vector<std::vector<std::string>> rows = {{"NAME", "VERSION", "STATE", "REASON"}};
  for (element m : models) {
    rows.push_back({Field(m, "name"), Field(m, "version"), Field(m, "state"), Field(m, "reason")});
  }
  if (rows.size() == 1) return std::string("no models in the repository\n");
  return FormatTable(rows);
}

Result<std::string> FormatRouting(const std::string& body) {
  simdjson::dom::parser parser;
  ASSIGN_OR_RETURN(element doc, ParseReply(parser, body, "the routing state"));
  if (!doc.is_object()) {
    return Status::Internal("the routing state is not a JSON object: " + Snippet(body));
  }
  std::string labels;
  simdjson::dom::object label_map;
  if (!doc["labels"].get_object().get(label_map)) {
    for (auto [name, version] : label_map) {
      labels += (labels.empty() ? "" : ", ") + std::string(name) + "=" + Text(version);
    }
  }
  element traffic, split, shadow, rollout;
  const bool has_traffic = !doc["traffic"].get(traffic) && traffic.is_object();
  std::string split_text, shadow_text;
  if (has_traffic && !traffic["split"].get(split)) split_text = SplitText(split);
  if (has_traffic && !traffic["shadow"].get(shadow) && shadow.is_object()) {
    const double fraction = NumberField(shadow, "fraction");
    shadow_text = "version " + Field(shadow, "version") + ", " + Number(fraction * 100) +
                  "% of requests mirrored";
  }
  std::string rollout_text, reason;
  if (!doc["rollout"].get(rollout) && rollout.is_object()) {
    rollout_text = RolloutText(rollout);
    reason = Field(rollout, "reason");
  }
  std::vector<std::pair<std::string, std::string>> lines = {
      {"Model", Field(doc, "model")},
      {"Default version", Field(doc, "default_version")},
      {"Labels", labels.empty() ? "none" : labels},
      {"Traffic split",
       split_text.empty() ? "none (all requests go to the default version)" : split_text},
      {"Shadow", shadow_text.empty() ? "none" : shadow_text},
      {"Rollout", rollout_text.empty() ? "none" : rollout_text},
  };
  if (!reason.empty()) lines.emplace_back("Rollout reason", reason);
  return KeyValueLines(lines);
}

Result<std::string> FormatHistory(const std::string& body) {
  simdjson::dom::parser parser;
  ASSIGN_OR_RETURN(element doc, ParseReply(parser, body, "the history"));
  simdjson::dom::array events;
  if (!doc.is_object() || doc["events"].get_array().get(events)) {
    return Status::Internal("the history has no \"events\" list: " + Snippet(body));
  }
  std::vector<std::vector<std::string>> rows = {{"TIME", "KIND", "VERSION", "REASON"}};
  for (element e : events) {
    rows.push_back({Field(e, "time"), Field(e, "kind"), Field(e, "version"), Field(e, "reason")});
  }
  if (rows.size() == 1) {
    return "no events recorded for model " + Quoted(Field(doc, "model")) + "\n";
  }
  return FormatTable(rows);
}

Result<std::string> FormatReply(const ModelsFlags& flags, const std::string& body) {
  switch (flags.verb) {
    case ModelsVerb::kList:
      return FormatModelIndex(body);
    case ModelsVerb::kStatus:
      return FormatRouting(body);
    case ModelsVerb::kHistory:
      return FormatHistory(body);
    default:
      break;
  }
  std::string out = Confirmation(flags, body) + "\n";
  if (flags.verb != ModelsVerb::kUpload && LooksLikeRouting(body)) {
    auto routing = FormatRouting(body);
    if (routing.ok()) out += "\n" + *routing;
  }
  return out;
}

std::string FormatHttpError(int status, const std::string& body) {
  std::string message;
  simdjson::dom::parser parser;
  element doc;
  if (!parser.parse(body).get(doc)) message = Field(doc, "error");
  if (message.empty()) message = Snippet(body);
  if (message.empty()) message = "the server gave no reason";
  return "error: " + message + " (HTTP " + std::to_string(status) + ")";
}

}  // namespace slipway::app::models
