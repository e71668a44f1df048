#include "slipway/app/bench/server_api.h"

#include <httplib.h>
#include <simdjson.h>

#include <cctype>

namespace slipway::app::bench {
namespace {

using core::Result;
using core::Status;

std::string Snippet(const std::string& body) {
  std::string s = body.substr(0, 300);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

// Reads {"count": N, "ns": N} at doc[key]; absent members read as zero.
void ReadDuration(simdjson::dom::element stats, const char* key, uint64_t* count, uint64_t* ns) {
  simdjson::dom::element d;
  if (stats[key].get(d)) return;
  uint64_t v = 0;
  if (count && !d["count"].get_uint64().get(v)) *count += v;
  if (ns && !d["ns"].get_uint64().get(v)) *ns += v;
}

}  // namespace

std::string PathEscape(const std::string& segment) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : segment) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

ServerStatsDelta StatsDelta(const ServerStatsSnapshot& before, const ServerStatsSnapshot& after) {
  ServerStatsDelta d;
  if (after.success_count <= before.success_count) return d;
  d.valid = true;
  d.requests = after.success_count - before.success_count;
  const double n = static_cast<double>(d.requests);
  d.queue_us = static_cast<double>(after.queue_ns - before.queue_ns) / n / 1000.0;
  d.compute_us = static_cast<double>(after.compute_ns - before.compute_ns) / n / 1000.0;
  return d;
}

Result<std::vector<std::string>> ParseServerExtensions(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body).get(doc)) {
    return Status::Internal("server metadata is not JSON: " + Snippet(body));
  }
  std::vector<std::string> out;
  simdjson::dom::array arr;
  if (doc["extensions"].get_array().get(arr)) return out;  // none advertised
  for (simdjson::dom::element e : arr) {
    std::string_view s;
    if (!e.get_string().get(s)) out.emplace_back(s);
  }
  return out;
}

Result<std::vector<InputSpec>> ParseModelInputs(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body).get(doc)) {
    return Status::Internal("model metadata is not JSON: " + Snippet(body));
  }
  simdjson::dom::array arr;
  if (doc["inputs"].get_array().get(arr)) {
    return Status::Internal("model metadata has no \"inputs\" list: " + Snippet(body));
  }
  std::vector<InputSpec> out;
  for (simdjson::dom::element t : arr) {
    std::string_view name, datatype;
    simdjson::dom::array shape;
    if (t["name"].get_string().get(name) || t["datatype"].get_string().get(datatype) ||
        t["shape"].get_array().get(shape)) {
      return Status::Internal("model metadata input lacks name, datatype or shape: " +
                              Snippet(body));
    }
    InputSpec spec{std::string(name), std::string(datatype), {}};
    for (simdjson::dom::element d : shape) {
      int64_t v = 0;
      if (d.get_int64().get(v) || v < -1) {
        return Status::Internal("model metadata shape of '" + spec.name +
                                "' is not a list of integers >= -1");
      }
      spec.shape.push_back(v);
    }
    out.push_back(std::move(spec));
  }
  if (out.empty()) return Status::Internal("model metadata lists no inputs");
  return out;
}

Result<ServerStatsSnapshot> ParseModelStats(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body).get(doc)) {
    return Status::Internal("model statistics are not JSON: " + Snippet(body));
  }
  simdjson::dom::array models;
  if (doc["model_stats"].get_array().get(models)) {
    return Status::Internal("model statistics lack \"model_stats\": " + Snippet(body));
  }
  ServerStatsSnapshot s;
  for (simdjson::dom::element m : models) {
    simdjson::dom::element inf;
    if (m["inference_stats"].get(inf)) continue;
    ReadDuration(inf, "success", &s.success_count, nullptr);
    ReadDuration(inf, "queue", nullptr, &s.queue_ns);
    ReadDuration(inf, "compute_input", nullptr, &s.compute_ns);
    ReadDuration(inf, "compute_infer", nullptr, &s.compute_ns);
    ReadDuration(inf, "compute_output", nullptr, &s.compute_ns);
  }
  return s;
}

std::string ServerApi::ModelPath(const std::string& model, const std::string& version) {
  std::string p = "/v2/models/" + PathEscape(model);
  if (!version.empty()) p += "/versions/" + PathEscape(version);
  return p;
}

Result<std::unique_ptr<ServerApi>> ServerApi::Create(Options options) {
  return std::unique_ptr<ServerApi>(new ServerApi(std::move(options)));
}

ServerApi::ServerApi(Options options)
    : options_(std::move(options)),
      client_(std::make_unique<httplib::Client>(options_.http.host, options_.http.port)) {
  const auto sec = static_cast<time_t>(options_.timeout_seconds);
  const auto usec =
      static_cast<time_t>((options_.timeout_seconds - static_cast<double>(sec)) * 1e6);
  client_->set_connection_timeout(sec, usec);
  client_->set_read_timeout(sec, usec);
  client_->set_write_timeout(sec, usec);
  client_->set_keep_alive(true);
}

ServerApi::~ServerApi() = default;

Result<std::string> ServerApi::Get(const std::string& path) {
  auto res = client_->Get(path);
  if (!res) {
    return Status::Unavailable("cannot reach the server at http://" + options_.http.ToString() +
                               " (GET " + path + ": " + httplib::to_string(res.error()) + ")");
  }
  if (res->status == 404 || res->status == 400) {
    return Status::NotFound("GET http://" + options_.http.ToString() + path + " answered " +
                            std::to_string(res->status) + ": " + Snippet(res->body));
  }
  if (res->status != 200) {
    return Status::Unavailable("GET http://" + options_.http.ToString() + path + " answered " +
                               std::to_string(res->status) + ": " + Snippet(res->body));
  }
  return std::move(res->body);
}

Result<std::vector<std::string>> ServerApi::Extensions() {
  ASSIGN_OR_RETURN(std::string body, Get("/v2"));
  return ParseServerExtensions(body);
}

Result<std::vector<InputSpec>> ServerApi::ModelInputs() {
  auto body = Get(ModelPath(options_.model, options_.model_version));
  if (!body.ok()) {
    if (body.status().code() == core::StatusCode::kNotFound) {
      return Status::NotFound(
          "model '" + options_.model + "'" +
          (options_.model_version.empty() ? std::string() : " version " + options_.model_version) +
          " is not available: " + body.status().message());
    }
    return body.status();
  }
  return ParseModelInputs(*body);
}

Result<ServerStatsSnapshot> ServerApi::Stats() {
  ASSIGN_OR_RETURN(std::string body,
                   Get(ModelPath(options_.model, options_.model_version) + "/stats"));
  return ParseModelStats(body);
}

}  // namespace slipway::app::bench
