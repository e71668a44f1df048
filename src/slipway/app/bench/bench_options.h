// BenchOptions: every setting of `slipway bench`, the CLI11 registration of its flags, and the
// pure parsers for the flag values that need more than CLI11's checks (HOST:PORT addresses,
// START:END[:STEP] concurrency ranges, NAME:d1,d2,... shapes).
//
// Thread safety: plain values; copy freely. Nothing here blocks.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "slipway/core/status.h"

namespace CLI {
class App;
}  // namespace CLI

namespace slipway::app::bench {

enum class Protocol { kHttpJson, kHttpBinary, kGrpc };

const char* ProtocolName(Protocol protocol);

// A host and port from "HOST:PORT" (an "http://" prefix is accepted and dropped).
struct HostPort {
  std::string host;
  int port = 0;
  std::string ToString() const { return host + ":" + std::to_string(port); }
};

struct ConcurrencyRange {
  int start = 1;
  int end = 1;
  int step = 1;
  // The concurrency levels in order: start, start+step, ... up to and including end.
  std::vector<int> Levels() const;
};

// The raw flag values as CLI11 fills them in; Validate() turns them into BenchOptions.
struct BenchFlags {
  std::string url;       // HOST:PORT of the HTTP endpoint (metadata, stats, HTTP inference)
  std::string grpc_url;  // HOST:PORT of the gRPC endpoint; default HOST:8001
  std::string model;
  std::string model_version;
  std::string protocol = "http-json";
  int batch_size = 1;
  std::vector<std::string> shapes;  // NAME:d1,d2,...
  std::string input_data = "random";
  std::string concurrency_range = "1:1";
  double request_rate = 0;  // > 0: open loop at this many requests per second
  int max_threads = 64;
  double warmup_seconds = 1;
  int window_ms = 2000;
  double stability_percent = 10;
  int max_windows = 10;
  double request_timeout_seconds = 30;
  std::string csv_path;
  std::string json_path;
  bool quiet = false;
  uint64_t seed = 42;
};

// A checked, parsed run description.
struct BenchOptions {
  HostPort http;
  HostPort grpc;
  std::string model;
  std::string model_version;  // empty: the server's choice
  Protocol protocol = Protocol::kHttpJson;
  int batch_size = 1;                                  // value of a leading -1 dimension
  std::map<std::string, std::vector<int64_t>> shapes;  // --shape, by input name
  std::string input_data = "random";                   // random | zero | path to a JSON file
  ConcurrencyRange concurrency;                        // closed loop levels
  double request_rate = 0;                             // > 0: open loop instead
  int max_threads = 64;                                // open loop worker pool size
  double warmup_seconds = 1;
  int window_ms = 2000;
  double stability_percent = 10;
  int max_windows = 10;
  double request_timeout_seconds = 30;
  std::string csv_path;
  std::string json_path;
  bool quiet = false;
  uint64_t seed = 42;

  bool open_loop() const { return request_rate > 0; }
};

// Registers the bench flags on `app`, writing into `flags` (which must outlive parsing).
void RegisterBenchFlags(CLI::App* app, BenchFlags* flags);

// Checks the flags and parses the structured ones; InvalidArgument names the bad flag.
core::Result<BenchOptions> ValidateBenchFlags(const BenchFlags& flags);

core::Result<HostPort> ParseHostPort(const std::string& text);
core::Result<ConcurrencyRange> ParseConcurrencyRange(const std::string& text);
// "NAME:d1,d2,..." -> (NAME, dims); every dimension must be >= 0.
core::Result<std::pair<std::string, std::vector<int64_t>>> ParseShapeFlag(const std::string& text);

}  // namespace slipway::app::bench
