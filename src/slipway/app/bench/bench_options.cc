#include "slipway/app/bench/bench_options.h"

#include <CLI/CLI.hpp>
#include <charconv>

namespace slipway::app::bench {
namespace {

using core::Result;
using core::Status;

// Parses all of `text` as an integer; false on junk, overflow or an empty string.
template <typename T>
bool ParseInt(std::string_view text, T* out) {
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

}  // namespace

const char* ProtocolName(Protocol protocol) {
  switch (protocol) {
    case Protocol::kHttpJson:
      return "http-json";
    case Protocol::kHttpBinary:
      return "http-binary";
    case Protocol::kGrpc:
      return "grpc";
  }
  return "?";
}

std::vector<int> ConcurrencyRange::Levels() const {
  std::vector<int> out;
  for (int c = start; c <= end; c += step) out.push_back(c);
  return out;
}

Result<HostPort> ParseHostPort(const std::string& text) {
  std::string s = text;
  if (s.rfind("http://", 0) == 0) s = s.substr(7);
  while (!s.empty() && s.back() == '/') s.pop_back();
  const size_t colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::InvalidArgument("expected HOST:PORT, got '" + text + "'");
  }
  HostPort hp;
  hp.host = s.substr(0, colon);
  if (hp.host.size() > 2 && hp.host.front() == '[' && hp.host.back() == ']') {
    hp.host = hp.host.substr(1, hp.host.size() - 2);
  }
  if (!ParseInt(std::string_view(s).substr(colon + 1), &hp.port) || hp.port <= 0 ||
      hp.port > 65535) {
    return Status::InvalidArgument("expected HOST:PORT with a port in 1..65535, got '" + text +
                                   "'");
  }
  return hp;
}

Result<ConcurrencyRange> ParseConcurrencyRange(const std::string& text) {
  std::vector<std::string_view> parts;
  std::string_view rest = text;
  while (true) {
    const size_t colon = rest.find(':');
    parts.push_back(rest.substr(0, colon));
    if (colon == std::string_view::npos) break;
    rest = rest.substr(colon + 1);
  }
  ConcurrencyRange r;
  const bool ok = (parts.size() == 2 || parts.size() == 3) && ParseInt(parts[0], &r.start) &&
                  ParseInt(parts[1], &r.end) && (parts.size() == 2 || ParseInt(parts[2], &r.step));
  if (!ok) {
    return Status::InvalidArgument("--concurrency-range expects START:END[:STEP], got '" + text +
                                   "'");
  }
  if (r.start < 1 || r.end < r.start || r.step < 1 || r.end > 100000) {
    return Status::InvalidArgument(
        "--concurrency-range needs 1 <= START <= END <= 100000 and STEP >= 1, got '" + text + "'");
  }
  return r;
}

Result<std::pair<std::string, std::vector<int64_t>>> ParseShapeFlag(const std::string& text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    return Status::InvalidArgument("--shape expects NAME:d1,d2,..., got '" + text + "'");
  }
  std::vector<int64_t> dims;
  std::string_view rest = std::string_view(text).substr(colon + 1);
  while (true) {
    const size_t comma = rest.find(',');
    int64_t d = 0;
    if (!ParseInt(rest.substr(0, comma), &d) || d < 0) {
      return Status::InvalidArgument("--shape '" + text +
                                     "': dimensions must be non-negative integers");
    }
    dims.push_back(d);
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return std::make_pair(text.substr(0, colon), std::move(dims));
}

void RegisterBenchFlags(CLI::App* app, BenchFlags* f) {
  app->add_option("--url", f->url, "HTTP endpoint HOST:PORT (metadata, statistics, HTTP inference)")
      ->required();
  app->add_option("--grpc-url", f->grpc_url,
                  "gRPC endpoint HOST:PORT (default: HOST of --url, port 8001)");
  app->add_option("--model", f->model, "Model name")->required();
  app->add_option("--model-version", f->model_version,
                  "Model version (default: the server's choice)");
  app->add_option("--protocol", f->protocol, "http-json, http-binary or grpc")
      ->capture_default_str();
  app->add_option("--batch-size", f->batch_size, "Value of a leading -1 (batch) dimension")
      ->capture_default_str();
  app->add_option("--shape", f->shapes,
                  "NAME:d1,d2,... for inputs with variable dimensions (with or without the batch "
                  "dimension); repeatable");
  app->add_option("--input-data", f->input_data,
                  "random (fixed seed), zero, or FILE.json: {\"inputs\": {NAME: {\"data\": [...], "
                  "\"shape\": [...]}}}")
      ->capture_default_str();
  app->add_option("--concurrency-range", f->concurrency_range,
                  "Closed loop: START:END[:STEP] requests in flight")
      ->capture_default_str();
  app->add_option("--request-rate", f->request_rate,
                  "Open loop: Poisson arrivals at this many requests/s (replaces the concurrency "
                  "sweep)");
  app->add_option("--max-threads", f->max_threads,
                  "Open loop: worker threads (one connection each)")
      ->capture_default_str();
  app->add_option("--warmup-seconds", f->warmup_seconds, "Load before measuring, not reported")
      ->capture_default_str();
  app->add_option("--window-ms", f->window_ms, "Length of one measurement window")
      ->capture_default_str();
  app->add_option("--stability-percent", f->stability_percent,
                  "Stable when the last 3 windows' throughputs are within this percent")
      ->capture_default_str();
  app->add_option("--max-windows", f->max_windows, "Windows per point at most")
      ->capture_default_str();
  app->add_option("--request-timeout-seconds", f->request_timeout_seconds,
                  "Per-request timeout (a timed-out request counts as an error)")
      ->capture_default_str();
  app->add_option("--csv", f->csv_path, "Write the results as CSV to this file");
  app->add_option("--json", f->json_path, "Write the results as JSON to this file");
  app->add_flag("--quiet", f->quiet, "No progress lines on stderr");
  app->add_option("--seed", f->seed, "Seed for random input data and Poisson arrivals")
      ->capture_default_str();
}

Result<BenchOptions> ValidateBenchFlags(const BenchFlags& f) {
  BenchOptions o;
  {
    auto hp = ParseHostPort(f.url);
    if (!hp.ok()) return Status::InvalidArgument("--url: " + hp.status().message());
    o.http = *hp;
  }
  if (f.grpc_url.empty()) {
    o.grpc = HostPort{o.http.host, 8001};
  } else {
    auto hp = ParseHostPort(f.grpc_url);
    if (!hp.ok()) return Status::InvalidArgument("--grpc-url: " + hp.status().message());
    o.grpc = *hp;
  }
  if (f.model.empty()) return Status::InvalidArgument("--model must not be empty");
  o.model = f.model;
  o.model_version = f.model_version;
  if (f.protocol == "http-json") {
    o.protocol = Protocol::kHttpJson;
  } else if (f.protocol == "http-binary") {
    o.protocol = Protocol::kHttpBinary;
  } else if (f.protocol == "grpc") {
    o.protocol = Protocol::kGrpc;
  } else {
    return Status::InvalidArgument("--protocol must be http-json, http-binary or grpc, not '" +
                                   f.protocol + "'");
  }
  if (f.batch_size < 1) {
    return Status::InvalidArgument("--batch-size must be >= 1, got " +
                                   std::to_string(f.batch_size));
  }
  o.batch_size = f.batch_size;
  for (const std::string& s : f.shapes) {
    ASSIGN_OR_RETURN(auto shape, ParseShapeFlag(s));
    if (!o.shapes.emplace(shape.first, shape.second).second) {
      return Status::InvalidArgument("--shape given twice for input '" + shape.first + "'");
    }
  }
  if (f.input_data.empty()) return Status::InvalidArgument("--input-data must not be empty");
  o.input_data = f.input_data;
  ASSIGN_OR_RETURN(o.concurrency, ParseConcurrencyRange(f.concurrency_range));
  if (f.request_rate < 0) return Status::InvalidArgument("--request-rate must be > 0");
  o.request_rate = f.request_rate;
  if (f.max_threads < 1 || f.max_threads > 4096) {
    return Status::InvalidArgument("--max-threads must be in 1..4096, got " +
                                   std::to_string(f.max_threads));
  }
  o.max_threads = f.max_threads;
  if (f.warmup_seconds < 0) return Status::InvalidArgument("--warmup-seconds must be >= 0");
  o.warmup_seconds = f.warmup_seconds;
  if (f.window_ms < 10) {
    return Status::InvalidArgument("--window-ms must be >= 10, got " + std::to_string(f.window_ms));
  }
  o.window_ms = f.window_ms;
  if (f.stability_percent <= 0) return Status::InvalidArgument("--stability-percent must be > 0");
  o.stability_percent = f.stability_percent;
  if (f.max_windows < 1) return Status::InvalidArgument("--max-windows must be >= 1");
  o.max_windows = f.max_windows;
  if (f.request_timeout_seconds <= 0) {
    return Status::InvalidArgument("--request-timeout-seconds must be > 0");
  }
  o.request_timeout_seconds = f.request_timeout_seconds;
  o.csv_path = f.csv_path;
  o.json_path = f.json_path;
  o.quiet = f.quiet;
  o.seed = f.seed;
  return o;
}

}  // namespace slipway::app::bench
