#include "slipway/frontends/http/http_server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "slipway/frontends/http/http_routes.h"
#include "slipway/frontends/http/kserve_json_codec.h"

namespace slipway::frontends::http {

core::Result<std::unique_ptr<HttpServer>> HttpServer::Create(HttpServerOptions options) {
  if (options.inference == nullptr || options.admin == nullptr) {
    return core::Status::InvalidArgument("HttpServer needs an inference and an admin service");
  }
  std::unique_ptr<HttpServer> self(new HttpServer());
  self->server_ = std::make_unique<httplib::Server>();
  httplib::Server& svr = *self->server_;
  const int threads = options.worker_threads;
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  svr.set_keep_alive_max_count(std::numeric_limits<size_t>::max() / 2);
  svr.set_keep_alive_timeout(5);
  svr.set_read_timeout(60);
  svr.set_write_timeout(60);
  svr.set_tcp_nodelay(true);
  svr.set_payload_max_length(options.max_body_bytes);
  RouteContext ctx{options.inference, options.admin};
  auto handler = [ctx](const httplib::Request& req, httplib::Response& res) {
    HandleRequest(ctx, req, res);
  };
  svr.Get(".*", handler);
  svr.Post(".*", handler);
  svr.Put(".*", handler);
  svr.Delete(".*", handler);
  svr.Patch(".*", handler);
  svr.Options(".*", handler);
  const size_t limit = options.max_body_bytes;
  svr.set_error_handler([limit](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string message;
    switch (res.status) {
      case 413: message = "request body is larger than the limit of " + std::to_string(limit) +
                          " bytes"; break;
      case 415: message = "unsupported Content-Encoding; use gzip, deflate or identity"; break;
      case 404: message = "Not Found"; break;
      case 405: message = "Method Not Allowed"; break;
      default: message = "HTTP error " + std::to_string(res.status);
    }
    res.set_content(ErrorJson(message), "application/json");
  });
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res,
                               std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    spdlog::error("HTTP handler failed: {}", what);
    res.status = 500;
    res.set_content(ErrorJson("internal error: " + what), "application/json");
  });
  if (options.port == 0) {
    self->port_ = svr.bind_to_any_port(options.host);
    if (self->port_ <= 0) {
      return core::Status::Unavailable("cannot bind an HTTP port on " + options.host);
    }
  } else {
    if (!svr.bind_to_port(options.host, options.port)) {
      return core::Status::Unavailable("cannot bind HTTP port " + std::to_string(options.port) +
                                       " on " + options.host + " (in use?)");
    }
    self->port_ = options.port;
  }
  self->listener_ = std::thread([&svr] { svr.listen_after_bind(); });
  return self;
}

void HttpServer::Shutdown() {
  if (server_) server_->stop();
  if (listener_.joinable()) listener_.join();
}

HttpServer::~HttpServer() { Shutdown(); }

}  // namespace slipway::frontends::http
