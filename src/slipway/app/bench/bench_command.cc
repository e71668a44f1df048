#include "slipway/app/bench/bench_command.h"

#include <algorithm>
#include <cstdio>
#include <string>

#include "slipway/app/bench/clients.h"
#include "slipway/app/bench/input_data.h"
#include "slipway/app/bench/load_runner.h"
#include "slipway/app/bench/report.h"
#include "slipway/app/bench/server_api.h"

namespace slipway::app::bench {
namespace {

using core::Result;
using core::Status;

// Metadata, statistics and the gRPC reachability check get their own timeout, so a tiny
// --request-timeout-seconds still lets bench find the model.
constexpr double kMetadataTimeoutSeconds = 10;

int Fail(const Status& status, int code) {
  std::fprintf(stderr, "slipway bench: %s\n", status.message().c_str());
  return code;
}

Result<std::vector<InputTensor>> LoadInputs(const BenchOptions& o,
                                            const std::vector<InputSpec>& specs) {
  if (o.input_data == "random" || o.input_data == "zero") {
    return MakeGeneratedInputs(specs, o.input_data, o.batch_size, o.shapes, o.seed);
  }
  ASSIGN_OR_RETURN(std::string text, ReadFileText(o.input_data));
  auto inputs = InputsFromJson(specs, text, o.batch_size, o.shapes);
  if (!inputs.ok()) {
    return Status::InvalidArgument(o.input_data + ": " + inputs.status().message());
  }
  return inputs;
}

}  // namespace

int RunBench(const BenchOptions& o) {
  ServerApi::Options api_options{o.http, o.model, o.model_version, kMetadataTimeoutSeconds};
  auto api_or = ServerApi::Create(api_options);
  if (!api_or.ok()) return Fail(api_or.status(), kExitUsage);
  std::unique_ptr<ServerApi> api = std::move(api_or).value();

  auto extensions = api->Extensions();
  if (!extensions.ok()) return Fail(extensions.status(), kExitUsage);
  const bool statistics =
      std::find(extensions->begin(), extensions->end(), "statistics") != extensions->end();
  auto specs = api->ModelInputs();
  if (!specs.ok()) return Fail(specs.status(), kExitUsage);
  auto inputs = LoadInputs(o, *specs);
  if (!inputs.ok()) return Fail(inputs.status(), kExitUsage);
  if (o.protocol == Protocol::kGrpc) {
    Status st = CheckGrpcReachable(o.grpc, kMetadataTimeoutSeconds);
    if (!st.ok()) return Fail(st, kExitUsage);
  }

  const InferClient::Options base{
      o.protocol, o.http, o.grpc, o.model, o.model_version, o.request_timeout_seconds, 0};
  {
    auto probe = InferClient::Create(base, *inputs);  // rejects inputs the protocol cannot carry
    if (!probe.ok()) return Fail(probe.status(), kExitUsage);
  }
  const ClientFactory make_client = [&](int index) {
    InferClient::Options opts = base;
    opts.index = index;
    return InferClient::Create(opts, *inputs);
  };
  StatsReader read_stats;
  if (statistics) read_stats = [&] { return api->Stats(); };

  BenchRun run;
  run.model = o.model;
  run.model_version = o.model_version;
  run.protocol = ProtocolName(o.protocol);
  run.open_loop = o.open_loop();
  run.batch_size = o.batch_size;
  run.server_statistics = statistics;
  run.inputs = *inputs;
  for (auto& in : run.inputs) {
    in.raw.clear();
    in.json.clear();
  }

  std::vector<int> levels =
      o.open_loop() ? std::vector<int>{o.max_threads} : o.concurrency.Levels();
  for (int level : levels) {
    PointPlan plan;
    plan.concurrency = level;
    plan.request_rate = o.request_rate;
    plan.threads = o.max_threads;
    plan.batch_size = o.batch_size;
    plan.warmup_seconds = o.warmup_seconds;
    plan.window_ms = o.window_ms;
    plan.stability_percent = o.stability_percent;
    plan.max_windows = o.max_windows;
    plan.seed = o.seed;
    const std::string label =
        o.open_loop() ? "rate " + std::to_string(static_cast<int64_t>(o.request_rate)) + "/s"
                      : "concurrency " + std::to_string(level);
    ProgressListener progress;
    if (!o.quiet) {
      progress = [&label](int window, double infer_per_s) {
        std::fprintf(stderr, "%s: window %d, %.0f infer/s\n", label.c_str(), window, infer_per_s);
      };
    }
    auto point = RunPoint(plan, make_client, read_stats, progress);
    if (!point.ok()) return Fail(point.status(), kExitUsage);
    if (!o.quiet) {
      std::fprintf(stderr, "%s: %s after %d windows\n", label.c_str(),
                   point->stable ? "stable" : "not stable", point->windows);
    }
    if (point->errors > 0) {
      std::fprintf(stderr, "slipway bench: %s: %llu errors; first: %s\n", label.c_str(),
                   static_cast<unsigned long long>(point->errors), point->first_error.c_str());
    }
    run.points.push_back(std::move(point).value());
  }

  std::fputs(FormatTable(run).c_str(), stdout);
  std::fflush(stdout);
  if (!o.csv_path.empty()) {
    Status st = WriteTextFile(o.csv_path, FormatCsv(run));
    if (!st.ok()) return Fail(st, kExitUsage);
  }
  if (!o.json_path.empty()) {
    Status st = WriteTextFile(o.json_path, FormatJson(run));
    if (!st.ok()) return Fail(st, kExitUsage);
  }
  for (const PointResult& p : run.points) {
    if (p.errors > 0 || p.requests == 0) return kExitErrors;
  }
  return kExitOk;
}

int RunBenchCommand(const BenchFlags& flags) {
  auto options = ValidateBenchFlags(flags);
  if (!options.ok()) return Fail(options.status(), kExitUsage);
  return RunBench(*options);
}

}  // namespace slipway::app::bench
