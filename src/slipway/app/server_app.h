// ServerApp: wires the concrete classes of `slipway serve` together (repository, backends, model
// manager, serving core, HTTP and gRPC frontends) and runs them until SIGTERM or SIGINT, then
// drains: reports not ready, stops accepting, lets in-flight requests finish within the drain
// timeout, and returns 0.
// Thread safety: Run blocks the calling thread, which must be the main thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace slipway::app {

struct ServeOptions {
  std::string model_repository;
  std::string host = "0.0.0.0";
  int http_port = 8000;
  int grpc_port = 8001;
  size_t http_max_body_bytes = size_t{64} << 20;
  int http_threads = 16;
  int instance_count = 0;     // 0: cores / intra-op threads, at least 1
  int intra_op_threads = 1;
  bool allow_spinning = false;
  bool strict_readiness = true;
  int drain_timeout_seconds = 30;
  std::string log_level = "info";
  std::string model_control_mode = "explicit";  // none, poll, explicit
  double repository_poll_seconds = 15;
  // The deployment record (SQLite); "" means MODEL_REPOSITORY/.slipway/deployments.db.
  std::string state_db;
  int version_retire_grace_ms = 1000;
  std::string access_log;          // file, "stderr", or "" for none
  std::string payload_log_dir;     // "" for none
  double payload_log_sample = 0.01;
  int payload_log_file_mb = 64;
  int payload_log_files = 10;
  std::string retrain_webhook;  // POSTed to when a model should be retrained; "" for none
  // TLS for the HTTP, admin and gRPC ports (PEM files; "" for none). The metrics port stays plain.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;  // set: clients need a certificate signed by it (mTLS)
  int metrics_port = 8002;  // a listener for GET /metrics only; -1: none (the HTTP port has it too)
  std::string api_keys_file;              // "" for none (SLIPWAY_API_KEYS may still add keys)
  std::string open_endpoints = "health,metrics";  // need no key: health, metrics, or none
  double rate_limit = 0;                  // requests per second per client; 0: none
  double rate_limit_burst = 0;            // 0: the rate
  int admin_http_port = -1;               // -1: admin endpoints on the HTTP port
  std::string admin_host = "127.0.0.1";
  size_t http_max_header_bytes = size_t{64} << 10;
  int http_idle_timeout_seconds = 30;
  int http_request_timeout_seconds = 120;
  int64_t max_tensor_elements = 0;        // 0: no limit beyond the model's shape and body size
  size_t max_string_bytes = 0;            // 0: no limit beyond the body size
  uint64_t cache_bytes = uint64_t{256} << 20;  // response cache budget (models opt in); 0: none
  std::string cache_redis;                // HOST:PORT of a Redis shared by replicas; "" for none
  int cache_redis_timeout_ms = 20;        // connect and command timeout; slower is a miss
};

// Returns the process exit code.
int RunServe(const ServeOptions& options);

}  // namespace slipway::app
