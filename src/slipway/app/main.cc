// The `slipway` binary: `slipway serve --model-repository DIR [--http-port N] [--grpc-port N] ...`
// and `slipway bench --url HOST:PORT --model NAME [--protocol ...] ...` (a KServe v2 load
// generator; see slipway/app/bench/bench_command.h) and `slipway models [--url URL] VERB ...` (a
// client for a running server's admin API; see slipway/app/models/models_command.h) and
// `slipway optimize MODEL.onnx -o OUT.onnx ...` (see slipway/app/optimize/optimize_command.h).
#include <CLI/CLI.hpp>

#include "slipway/app/bench/bench_command.h"
#include "slipway/app/bench/bench_options.h"
#include "slipway/app/models/models_command.h"
#include "slipway/app/optimize/optimize_command.h"
#include "slipway/app/server_app.h"

int main(int argc, char** argv) {
  CLI::App app{"Slipway: a model server for ONNX models over KServe v2 REST and gRPC"};
  app.require_subcommand(1);
  slipway::app::ServeOptions opts;
  CLI::App* serve = app.add_subcommand("serve", "Serve a model repository");
  serve->add_option("--model-repository", opts.model_repository,
                    "Folder of models: DIR/<model>/<version>/model.onnx")
      ->required()
      ->check(CLI::ExistingDirectory);
  serve->add_option("--host", opts.host, "Address to listen on")->capture_default_str();
  serve->add_option("--http-port", opts.http_port, "HTTP port (0 picks a free one)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  serve->add_option("--grpc-port", opts.grpc_port, "gRPC port (0 picks a free one)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  serve->add_option("--http-max-body-bytes", opts.http_max_body_bytes,
                    "Largest HTTP request body accepted (after decompression)")
      ->capture_default_str();
  serve->add_option("--http-threads", opts.http_threads,
                    "HTTP I/O threads (each serves its share of connections)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  serve->add_option("--instance-count", opts.instance_count,
                    "Instances per model version when its config sets none (0: cores / "
                    "intra-op threads)")
      ->capture_default_str()
      ->check(CLI::Range(0, 256));
  serve->add_option("--intra-op-threads", opts.intra_op_threads,
                    "Runtime intra-op threads per instance (ONNX Runtime, LibTorch, XGBoost)")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  serve->add_flag("--allow-spinning", opts.allow_spinning,
                  "Let ONNX Runtime threads spin while idle (lower latency, more CPU)");
  serve->add_option("--strict-readiness", opts.strict_readiness,
                    "Report ready only while every model is ready")
      ->capture_default_str();
  serve->add_option("--drain-timeout", opts.drain_timeout_seconds,
                    "Seconds to let in-flight requests finish after SIGTERM")
      ->capture_default_str()
      ->check(CLI::Range(0, 3600));
  serve->add_option("--model-control-mode", opts.model_control_mode,
                    "none: load the repository at start only; poll: also rescan it every "
                    "--repository-poll-secs; explicit: load, unload and upload through the API")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "poll", "explicit"}));
  serve->add_option("--repository-poll-secs", opts.repository_poll_seconds,
                    "Seconds between repository scans in poll mode")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 86400.0));
  serve->add_option("--state-db", opts.state_db,
                    "SQLite file of the deployment record, labels, traffic and rollout state "
                    "(default: MODEL_REPOSITORY/.slipway/deployments.db; ':memory:' keeps none)");
  serve->add_option("--version-retire-grace-ms", opts.version_retire_grace_ms,
                    "How long a retired version still answers requests routed to it a moment "
                    "before, before it drains")
      ->capture_default_str()
      ->check(CLI::Range(0, 600000));
  serve->add_option("--access-log", opts.access_log,
                    "Write one JSON line per request to this file, or 'stderr'");
  serve->add_option("--payload-log-dir", opts.payload_log_dir,
                    "Log a sample of requests' inputs and outputs as JSON lines in this folder");
  serve->add_option("--payload-log-sample", opts.payload_log_sample,
                    "Share of successful requests whose payloads are logged")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  serve->add_option("--payload-log-file-mb", opts.payload_log_file_mb,
                    "A payload file rotates past this size (MiB)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  serve->add_option("--payload-log-files", opts.payload_log_files,
                    "Rotated payload files kept besides the current one")
      ->capture_default_str()
      ->check(CLI::Range(0, 100000));
  serve->add_option("--retrain-webhook", opts.retrain_webhook,
                    "http:// URL that gets a JSON POST when a model drifts or its live accuracy "
                    "falls (a model's monitoring.retrain.webhook overrides it)");
  serve->add_option("--metrics-port", opts.metrics_port,
                    "Port serving only GET /metrics for Prometheus (0 picks a free one, -1 none; "
                    "the HTTP port serves /metrics too)")
      ->capture_default_str()
      ->check(CLI::Range(-1, 65535));
  serve->add_option("--api-keys-file", opts.api_keys_file,
                    "YAML file of API keys with roles (infer, admin); SLIPWAY_API_KEYS="
                    "\"admin=KEY,infer=KEY\" adds keys from the environment. With any key, "
                    "calls need one (SIGHUP rereads the file)");
  serve->add_option("--open-endpoints", opts.open_endpoints,
                    "Endpoints that need no key when keys are set: health, metrics, both "
                    "(comma-separated) or none")
      ->capture_default_str();
  serve->add_option("--rate-limit", opts.rate_limit,
                    "Requests per second per client (its key, or its address without one); "
                    "over it: HTTP 429 / RESOURCE_EXHAUSTED. 0: no limit")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  serve->add_option("--rate-limit-burst", opts.rate_limit_burst,
                    "Requests a client may send at once before the rate applies (0: the rate)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  serve->add_option("--admin-http-port", opts.admin_http_port,
                    "Serve admin endpoints (repository, labels, traffic, rollouts, uploads, "
                    "feedback) only on this port; the HTTP port answers them 404. -1: on the "
                    "HTTP port")
      ->capture_default_str()
      ->check(CLI::Range(-1, 65535));
  serve->add_option("--admin-host", opts.admin_host,
                    "Address for --admin-http-port (default: 127.0.0.1)")
      ->capture_default_str();
  serve->add_option("--http-max-header-bytes", opts.http_max_header_bytes,
                    "Largest request line plus headers; larger get 431")
      ->capture_default_str()
      ->check(CLI::Range(1024, 1 << 20));
  serve->add_option("--http-idle-timeout", opts.http_idle_timeout_seconds,
                    "Seconds a connection may wait between requests, or for a request's headers")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  serve->add_option("--http-request-timeout", opts.http_request_timeout_seconds,
                    "Seconds a request's body may take to arrive (a stalled client is cut off)")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  serve->add_option("--max-tensor-elements", opts.max_tensor_elements,
                    "Most elements in any one input tensor (0: only the model's shape and the "
                    "body size limit)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  serve->add_option("--max-string-bytes", opts.max_string_bytes,
                    "Most bytes in any one BYTES element (0: no limit beyond the body size)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  serve->add_option("--tls-cert", opts.tls_cert_file,
                    "PEM certificate (chain) for TLS on the HTTP, admin and gRPC ports; needs "
                    "--tls-key. SIGHUP reloads it for HTTP; gRPC rereads it every 10 s. The "
                    "--metrics-port listener stays plain HTTP");
  serve->add_option("--tls-key", opts.tls_key_file,
                    "PEM private key of --tls-cert (unencrypted)");
  serve->add_option("--tls-client-ca", opts.tls_client_ca_file,
                    "PEM CA certificate(s): clients must present a certificate signed by one "
                    "(mutual TLS)");
  serve->add_option("--cache-bytes", opts.cache_bytes,
                    "Response cache budget in bytes, for models whose config sets "
                    "response_cache: {enable: true} (0: no cache)")
      ->capture_default_str();
  serve->add_option("--cache-redis", opts.cache_redis,
                    "HOST:PORT of a Redis that replicas share answers through (Redis slow or "
                    "down means a miss, never a failed request)");
  serve->add_option("--cache-redis-timeout-ms", opts.cache_redis_timeout_ms,
                    "Connect and command timeout for --cache-redis")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  serve->add_option("--log-level", opts.log_level, "trace, debug, info, warn, error")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  slipway::app::bench::BenchFlags bench_flags;
  CLI::App* bench = app.add_subcommand(
      "bench",
      "Load-test a KServe v2 server (Slipway or another) and report latency and throughput");
  slipway::app::bench::RegisterBenchFlags(bench, &bench_flags);
  slipway::app::models::ModelsFlags models_flags;
  CLI::App* models = app.add_subcommand(
      "models",
      "Manage a running server's models: load, unload, labels, traffic split, rollouts, history");
  slipway::app::models::RegisterModelsFlags(models, &models_flags);
  slipway::app::optimize::OptimizeFlags optimize_flags;
  CLI::App* optimize = app.add_subcommand(
      "optimize",
      "Make a model smaller and faster (graph optimization, int8 or float16) and report what it "
      "costs in accuracy");
  slipway::app::optimize::RegisterOptimizeFlags(optimize, &optimize_flags);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    // bench and models promise exit code 2 for bad arguments.
    if (rc != 0 && bench->parsed()) return slipway::app::bench::kExitUsage;
    if (rc != 0 && models->parsed()) return slipway::app::models::kExitUsage;
    if (rc != 0 && optimize->parsed()) return slipway::app::optimize::kExitUsage;
    return rc;
  }
  if (bench->parsed()) return slipway::app::bench::RunBenchCommand(bench_flags);
  if (models->parsed()) return slipway::app::models::RunModelsCommand(models_flags);
  if (optimize->parsed()) return slipway::app::optimize::RunOptimizeCommand(optimize_flags);
  return slipway::app::RunServe(opts);
}
