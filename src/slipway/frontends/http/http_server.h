// HttpServer: the REST frontend (KServe v2 with Triton's binary tensor extension) on cpp-httplib.
//
// Each connection is served by a worker thread from a fixed pool; handlers decode, call the
// InferenceService and encode, so the worker blocks while its request runs. Request bodies may be
// gzip or deflate compressed; responses are compressed when the client accepts it.
// Thread safety: Create starts a listener thread; Shutdown may be called from any thread once.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <thread>

#include "slipway/core/status.h"
#include "slipway/serving/inference_service.h"

namespace httplib {
class Server;
}

namespace slipway::frontends::http {

struct HttpServerOptions {
  std::string host = "0.0.0.0";
  int port = 8000;                              // 0 picks a free port
  serving::InferenceService* inference = nullptr;  // not owned
  serving::AdminService* admin = nullptr;          // not owned
  size_t max_body_bytes = size_t{64} << 20;     // larger bodies get 413
  int worker_threads = 32;                      // concurrent connections served
};

class HttpServer {
 public:
  static core::Result<std::unique_ptr<HttpServer>> Create(HttpServerOptions options);
  ~HttpServer();

  int port() const { return port_; }
  // Stops accepting connections, lets requests in progress finish, and joins the workers.
  void Shutdown();

 private:
  HttpServer() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread listener_;
  int port_ = 0;
};

}  // namespace slipway::frontends::http
