// ServerApp: wires the concrete classes of `slipway serve` together (repository, backends, model
// manager, serving core, HTTP and gRPC frontends) and runs them until SIGTERM or SIGINT, then
// drains: reports not ready, stops accepting, lets in-flight requests finish within the drain
// timeout, and returns 0.
// Thread safety: Run blocks the calling thread, which must be the main thread.
#pragma once

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
  int metrics_port = 8002;  // a listener for GET /metrics only; -1: none (the HTTP port has it too)
};

// Returns the process exit code.
int RunServe(const ServeOptions& options);

}  // namespace slipway::app
