// HttpServer: the REST frontend (KServe v2 with Triton's binary tensor extension) on Boost.Beast.
//
// A fixed set of I/O threads each run their own asio io_context; each connection is a session
// pinned to one of them that reads a request (HTTP/1.1 keep-alive, chunked or sized bodies, Expect: 100-continue),
// inflates gzip/deflate bodies within the size limit, calls the routes, and writes the answer,
// compressed when the client accepts gzip or deflate. Route handlers run on the I/O thread.
// Shutdown drains: the acceptor closes, idle connections close, requests whose headers have
// arrived are answered (with Connection: close), then the threads stop.
// With TLS options set, every connection first completes a TLS handshake (bounded by a timeout)
// and ends with a TLS close_notify; the certificate can be reloaded while serving (ReloadTls).
// Thread safety: Create starts the threads; Shutdown may be called once from any thread and
// blocks until every session has ended.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "slipway/core/status.h"
#include "slipway/serving/inference_service.h"
#include "slipway/serving/drift_source.h"
#include "slipway/serving/ground_truth.h"
#include "slipway/serving/metrics_source.h"
#include "slipway/serving/routing_admin.h"
#include "slipway/frontends/http/http_routes.h"

namespace slipway::frontends::http {

struct HttpServerOptions {
  std::string host = "0.0.0.0";
  int port = 8000;                                 // 0 picks a free port
  serving::InferenceService* inference = nullptr;  // not owned
  serving::AdminService* admin = nullptr;          // not owned
  serving::RoutingAdmin* routing = nullptr;        // not owned; may be null
  serving::GroundTruth* ground_truth = nullptr;    // not owned; may be null
  const serving::MetricsSource* metrics = nullptr; // not owned; may be null
  const serving::DriftSource* drift = nullptr;     // not owned; may be null
  bool metrics_only = false;                       // serve GET /metrics and nothing else
  security::AccessGuard* guard = nullptr;          // not owned; may be null (no keys, no limits)
  RouteContext::Serves serves = RouteContext::Serves::kAll;  // admin routes here, elsewhere, only
  size_t max_body_bytes = size_t{64} << 20;        // after decompression; larger bodies get 413
  size_t max_header_bytes = size_t{64} << 10;      // request line and headers; larger get 431
  int io_threads = 8;                              // threads serving connections
  int idle_timeout_seconds = 30;                   // an idle keep-alive connection is closed after
  int request_timeout_seconds = 120;               // a request must arrive whole within this
  size_t compress_min_bytes = 1024;                // smaller responses are sent uncompressed
  // TLS: PEM files. With a certificate and key every connection is HTTPS (TLS 1.2 or later);
  // with a client CA too, clients must present a certificate it signed (mTLS). Empty: plain HTTP.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
};

class HttpServer {
 public:
  // Binds the port (so a conflict is reported here) without listening yet.
  static core::Result<std::unique_ptr<HttpServer>> Create(HttpServerOptions options);
  // Listens and starts serving.
  core::Status Start();
  ~HttpServer();

  int port() const;
  void Shutdown();
  // Builds a fresh TLS context from the same files; connections accepted afterwards use it, open
  // ones keep theirs. On error (a file unreadable, a key that does not match) the old context
  // stays in use and the error is returned. FailedPrecondition when TLS is off. Any thread.
  core::Status ReloadTls();
  bool tls_enabled() const;

  class Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace slipway::frontends::http
