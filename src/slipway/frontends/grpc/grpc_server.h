// GrpcServer: serves inference.GRPCInferenceService (KServe v2 / Open Inference Protocol plus
// Triton's ModelConfig, ModelStreamInfer and RepositoryIndex) and grpc.health.v1.Health over
// HTTP/2, plain or TLS (optionally requiring client certificates), translating every call into
// the serving facade through the gRPC codec. With TLS, gRPC rereads the certificate files itself
// every tls_refresh_seconds, so renewed files are picked up without a restart.
//
// Built on gRPC's synchronous server: each in-flight call (and each open stream) holds one thread
// from a bounded pool (GrpcServerOptions::max_threads); calls past the bound are refused by gRPC
// with RESOURCE_EXHAUSTED. A stream's requests run one after another, answered in order.
// Ownership: the server does not own the services it calls; they must outlive it.
// Thread safety: port() is safe from any thread; Shutdown() may be called from any thread, more
// than once, but not from inside an RPC handler. Create() binds and starts serving before it
// returns; Shutdown() blocks until in-flight calls finish or the deadline cancels them (a call
// blocked inside the model still runs to its end). The destructor shuts down with no grace.
#pragma once

#include <chrono>
#include <climits>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/server.h>

#include "slipway/core/status.h"
#include "slipway/serving/inference_service.h"
#include "slipway/serving/routing_admin.h"
#include "slipway/security/access_guard.h"

namespace slipway::frontends::grpc {

struct GrpcServerOptions {
  // Address to bind; an IPv6 literal may be given with or without brackets.
  std::string host = "0.0.0.0";
  // 0 picks a free port; port() reports the one bound.
  int port = 8001;
  serving::InferenceService* inference = nullptr;  // required, not owned
  serving::AdminService* admin = nullptr;          // optional (RepositoryIndex), not owned
  serving::RoutingAdmin* routing = nullptr;        // optional (version labels), not owned
  security::AccessGuard* guard = nullptr;          // optional (keys, roles, rate limits), not owned
  // Largest message received or sent; -1 means unlimited. PROTOCOLS.md §3: INT32_MAX.
  int max_message_bytes = INT32_MAX;
  // Bound on the synchronous server's threads, i.e. on concurrent calls and open streams.
  int max_threads = 64;
  // TLS: PEM files. With a certificate and key the port speaks only TLS (1.2 or later); with a
  // client CA too, clients must present a certificate it signed (mTLS). Empty: insecure.
  // Files are checked for PEM data here; that the key matches the certificate is not (the
  // HTTP listener's check covers it in `slipway serve`).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  // How often gRPC rereads the TLS files. gRPC does not check that a reread key matches its
  // certificate: a mismatched pair makes handshakes fail until the files are fixed.
  unsigned int tls_refresh_seconds = 10;
};

class GrpcServer {
 public:
  // Builds the server, binds host:port and starts serving. InvalidArgument for bad options;
  // Unavailable when the address cannot be bound (e.g. the port is already in use).
  static core::Result<std::unique_ptr<GrpcServer>> Create(GrpcServerOptions options);

  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;
  ~GrpcServer();

  // The bound port.
  int port() const { return port_; }

  // Stops accepting calls, lets in-flight ones finish for up to `deadline`, then cancels the rest
  // and waits for the handlers to return. Later calls do nothing.
  void Shutdown(std::chrono::milliseconds deadline);

 private:
  class InferenceHandler;
  class HealthHandler;

  GrpcServer();

  std::unique_ptr<InferenceHandler> inference_handler_;
  std::unique_ptr<HealthHandler> health_handler_;
  // TLS only: watches the certificate files; lives as long as the server.
  std::shared_ptr<::grpc::experimental::CertificateProviderInterface> tls_provider_;
  std::unique_ptr<::grpc::Server> server_;  // declared after the handlers it calls
  int port_ = 0;
  std::mutex shutdown_mu_;
  bool shut_down_ = false;  // guarded by shutdown_mu_
};

}  // namespace slipway::frontends::grpc
