// ServerApi: the KServe v2 HTTP calls `slipway bench` makes besides inference: server metadata
// (which extensions are advertised), model metadata (the inputs to send) and the statistics
// extension's per-model counters. The JSON parsers are pure functions, tested without a server.
//
// Thread safety: one ServerApi per thread (it owns one keep-alive connection). Every call
// blocks for one HTTP round trip, bounded by Options::timeout_seconds.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "slipway/app/bench/bench_options.h"
#include "slipway/app/bench/input_data.h"
#include "slipway/core/status.h"

namespace httplib {
class Client;
}  // namespace httplib

namespace slipway::app::bench {

// Cumulative server-side counters of one model (all its versions summed when none is pinned).
struct ServerStatsSnapshot {
  uint64_t success_count = 0;
  uint64_t queue_ns = 0;
  uint64_t compute_ns = 0;  // compute_input + compute_infer + compute_output
};

// Per-request averages between two snapshots; `valid` is false when no request succeeded.
struct ServerStatsDelta {
  bool valid = false;
  uint64_t requests = 0;
  double queue_us = 0;
  double compute_us = 0;
};

// Percent-encodes one URL path segment (model names, versions).
std::string PathEscape(const std::string& segment);

ServerStatsDelta StatsDelta(const ServerStatsSnapshot& before, const ServerStatsSnapshot& after);

core::Result<std::vector<std::string>> ParseServerExtensions(const std::string& body);
core::Result<std::vector<InputSpec>> ParseModelInputs(const std::string& body);
core::Result<ServerStatsSnapshot> ParseModelStats(const std::string& body);

class ServerApi {
 public:
  struct Options {
    HostPort http;
    std::string model;
    std::string model_version;  // empty: no /versions/ segment
    double timeout_seconds = 10;
  };

  // Never fails today (connections are made lazily); kept for the Options + Create habit.
  static core::Result<std::unique_ptr<ServerApi>> Create(Options options);
  ~ServerApi();

  // GET /v2: the advertised extensions. Unavailable when the server cannot be reached.
  core::Result<std::vector<std::string>> Extensions();
  // GET /v2/models/<m>[/versions/<v>]: the model's inputs. NotFound for an unknown model.
  core::Result<std::vector<InputSpec>> ModelInputs();
  // GET /v2/models/<m>[/versions/<v>]/stats.
  core::Result<ServerStatsSnapshot> Stats();

  // "/v2/models/<m>[/versions/<v>]".
  static std::string ModelPath(const std::string& model, const std::string& version);

 private:
  explicit ServerApi(Options options);
  core::Result<std::string> Get(const std::string& path);

  Options options_;
  std::unique_ptr<httplib::Client> client_;
};

}  // namespace slipway::app::bench
