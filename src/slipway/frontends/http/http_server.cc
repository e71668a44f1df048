#include "slipway/frontends/http/http_server.h"

#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "slipway/frontends/http/http_compression.h"
#include "slipway/frontends/http/http_routes.h"
#include "slipway/frontends/http/kserve_json_codec.h"

namespace slipway::frontends::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;

class Session;

namespace {
std::string_view View(beast::string_view s) { return {s.data(), s.size()}; }
}  // namespace

class HttpServer::Impl {
 public:
  explicit Impl(HttpServerOptions options)
      : options_(std::move(options)),
        ctx_{options_.inference, options_.admin, options_.routing, options_.ground_truth,
             options_.metrics, options_.drift, options_.metrics_only},
        contexts_(MakeContexts(options_.io_threads)),
        acceptor_(*contexts_[0]) {}

  // One single-threaded io_context per I/O thread: a connection stays on one thread, so no
  // request hops between threads and asio needs no locking (concurrency hint 1).
  static std::vector<std::unique_ptr<net::io_context>> MakeContexts(int n) {
    std::vector<std::unique_ptr<net::io_context>> out;
    for (int i = 0; i < std::max(1, n); ++i) out.push_back(std::make_unique<net::io_context>(1));
    return out;
  }

  core::Status Bind();
  core::Status Start();
  void Shutdown();

  void Accept();
  void Register(const std::shared_ptr<Session>& session);
  void SessionEnded();

  const HttpServerOptions options_;
  const RouteContext ctx_;
  std::vector<std::unique_ptr<net::io_context>> contexts_;
  tcp::acceptor acceptor_;
  size_t next_context_ = 0;  // used only by the acceptor's thread
  // Keeps each context's run() going while it has no connection.
  std::vector<net::executor_work_guard<net::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;
  std::atomic<bool> draining_{false};
  int port_ = 0;

  std::mutex mu_;
  std::condition_variable ended_cv_;
  std::vector<std::weak_ptr<Session>> sessions_;  // guarded by mu_
  int live_sessions_ = 0;                         // guarded by mu_
  bool shut_down_ = false;                        // guarded by mu_
};

// One connection. Every member is touched only on the thread of the session's io_context.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer::Impl* server)
      : stream_(std::move(socket)), server_(server) {}
  ~Session() { server_->SessionEnded(); }

  void Start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->ReadHeader(); });
  }

  // Called through the session's io_context when the server drains: an idle connection closes now, a busy
  // one after its response.
  void CloseIfIdle() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (!self->busy_) self->Close();
    });
  }

 private:
  void ReadHeader() {
    busy_ = false;
    if (server_->draining_) return Close();
    parser_.emplace();
    parser_->header_limit(64 * 1024);
    parser_->body_limit(server_->options_.max_body_bytes);
    stream_.expires_after(std::chrono::seconds(server_->options_.idle_timeout_seconds));
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = shared_from_this()](beast::error_code ec, size_t) {
                               self->OnHeader(ec);
                             });
  }

  void OnHeader(beast::error_code ec) {
    if (ec == bhttp::error::body_limit) return RefuseTooLarge();
    if (ec) return Close();
    busy_ = true;
    stream_.expires_after(std::chrono::seconds(server_->options_.request_timeout_seconds));
    const auto& req = parser_->get();
    if (EqualsIgnoreCase(View(req[bhttp::field::expect]), "100-continue")) {
      auto cont = std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::continue_,
                                                                       req.version());
      bhttp::async_write(stream_, *cont,
                         [self = shared_from_this(), cont](beast::error_code wec, size_t) {
                           if (wec) return self->Close();
                           self->ReadBody();
                         });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        self->OnBody(ec);
                      });
  }

  void OnBody(beast::error_code ec) {
    if (ec == bhttp::error::body_limit) return RefuseTooLarge();
    if (ec) return Close();
    Handle(parser_->release());
  }

  // Answers 413 and closes; the rest of the body is read and dropped for a short while first
  // ("lingering close") so the client sees the answer rather than a reset connection.
  void RefuseTooLarge() {
    HttpResponse res;
    res.status = 413;
    res.body = ErrorJson("request body is larger than the limit of " +
                         std::to_string(server_->options_.max_body_bytes) + " bytes");
    linger_ = true;
    Write(std::move(res), false, ContentCoding::kIdentity, 11);
  }

  void Linger() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(2));
    auto scratch = std::make_shared<std::array<char, 65536>>();
    DrainInput(scratch);
  }

  void DrainInput(std::shared_ptr<std::array<char, 65536>> scratch) {
    stream_.async_read_some(net::buffer(*scratch),
                            [self = shared_from_this(), scratch](beast::error_code ec, size_t) {
                              if (ec) return self->Close();
                              self->DrainInput(scratch);
                            });
  }

  void Handle(bhttp::request<bhttp::string_body> raw) {
    auto req_ptr = std::make_shared<HttpRequest>();
    HttpRequest& req = *req_ptr;
    req.method = std::string(raw.method_string());
    const std::string_view target = View(raw.target());
    req.path = std::string(target.substr(0, target.find('?')));
    if (target.find('?') != std::string_view::npos) {
      req.query = std::string(target.substr(target.find('?') + 1));
    }
    for (const auto& field : raw) {
      req.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    HttpResponse res;
    auto request_coding = ParseContentEncoding(View(raw[bhttp::field::content_encoding]));
    if (!request_coding.ok()) {
      res.status = 415;
      res.body = ErrorJson(request_coding.status().message());
    } else if (*request_coding != ContentCoding::kIdentity) {
      auto inflated = Decompress(raw.body(), *request_coding, server_->options_.max_body_bytes);
      if (inflated.ok()) {
        req.body = std::move(inflated).value();
      } else {
        res.status = inflated.status().code() == core::StatusCode::kResourceExhausted ? 413 : 400;
        res.body = ErrorJson(inflated.status().message());
      }
    } else {
      req.body = std::move(raw.body());
    }
    const bool keep_alive = raw.keep_alive();
    const ContentCoding coding = ChooseResponseCoding(View(raw[bhttp::field::accept_encoding]));
    const unsigned version = raw.version();
    if (!res.body.empty()) return Write(std::move(res), keep_alive, coding, version);
    auto gone = std::make_shared<std::atomic<bool>>(false);
    req.client_gone = gone;
    writing_ = false;
    // The answer may come from another thread (a batcher worker): hop back onto this
    // connection's thread to write it.
    HandleRequest(server_->ctx_, std::move(req_ptr),
                  [self = shared_from_this(), keep_alive, coding, version](HttpResponse answer) {
                    net::dispatch(self->stream_.get_executor(),
                                  [self, answer = std::move(answer), keep_alive, coding,
                                   version]() mutable {
                                    self->Deliver(std::move(answer), keep_alive, coding, version);
                                  });
                  });
    if (!writing_) Watch(std::move(gone));
  }

  // While an answer is pending, reads the connection: bytes that arrive (a pipelined request)
  // are kept for later; end of stream or an error means the client has gone, and its queued
  // work is dropped.
  void Watch(std::shared_ptr<std::atomic<bool>> gone) {
    watching_ = true;
    stream_.expires_never();
    stream_.async_read_some(buffer_.prepare(4096), [self = shared_from_this(), gone](
                                                       beast::error_code ec, size_t n) {
      self->watching_ = false;
      if (!ec) {
        self->buffer_.commit(n);
      } else if (ec != net::error::operation_aborted) {
        gone->store(true);
      }
      if (self->deferred_) {
        auto write = std::move(self->deferred_);
        self->deferred_ = nullptr;
        write();
      }
    });
  }

  // Writes an answer, first stopping the watch read if it is still outstanding.
  void Deliver(HttpResponse res, bool keep_alive, ContentCoding coding, unsigned version) {
    if (!watching_) return Write(std::move(res), keep_alive, coding, version);
    deferred_ = [self = shared_from_this(), res = std::move(res), keep_alive, coding,
                 version]() mutable { self->Write(std::move(res), keep_alive, coding, version); };
    stream_.cancel();
  }

  void Write(HttpResponse res, bool keep_alive, ContentCoding coding, unsigned version) {
    auto out = std::make_shared<bhttp::response<bhttp::string_body>>(
        static_cast<bhttp::status>(res.status), version);
    out->set(bhttp::field::server, "slipway");
    out->set(bhttp::field::content_type, res.content_type);
    for (auto& [name, value] : res.headers) out->set(name, value);
    if (coding != ContentCoding::kIdentity &&
        res.body.size() >= server_->options_.compress_min_bytes) {
      out->set(bhttp::field::content_encoding, std::string(ContentCodingName(coding)));
      out->set(bhttp::field::vary, "Accept-Encoding");
      out->body() = Compress(res.body, coding);
    } else {
      out->body() = std::move(res.body);
    }
    out->keep_alive(keep_alive && !server_->draining_);
    out->prepare_payload();
    writing_ = true;
    stream_.expires_after(std::chrono::seconds(server_->options_.request_timeout_seconds));
    bhttp::async_write(stream_, *out,
                       [self = shared_from_this(), out](beast::error_code ec, size_t) {
                         if (!ec && self->linger_) return self->Linger();
                         if (ec || !out->keep_alive()) return self->Close();
                         self->ReadHeader();
                       });
  }

  void Close() {
    busy_ = false;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  HttpServer::Impl* server_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bool busy_ = false;
  bool linger_ = false;
  bool writing_ = false;                 // an answer is being written
  bool watching_ = false;                // the disconnect watch read is outstanding
  std::function<void()> deferred_;       // a write waiting for the watch read to end
};

core::Status HttpServer::Impl::Bind() {
  beast::error_code ec;
  const auto address = net::ip::make_address(options_.host, ec);
  if (ec) return core::Status::InvalidArgument("invalid HTTP host '" + options_.host + "'");
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(options_.port));
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (ec) {
    return core::Status::Unavailable("cannot listen for HTTP on " + options_.host + ":" +
                                     std::to_string(options_.port) + ": " + ec.message());
  }
  port_ = acceptor_.local_endpoint().port();
  return core::Status::Ok();
}

core::Status HttpServer::Impl::Start() {
  beast::error_code ec;
  acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return core::Status::Unavailable("cannot listen for HTTP: " + ec.message());
  Accept();
  for (auto& ioc : contexts_) {
    work_.push_back(net::make_work_guard(*ioc));
    threads_.emplace_back([ctx = ioc.get()] { ctx->run(); });
  }
  return core::Status::Ok();
}

void HttpServer::Impl::Accept() {
  net::io_context& target = *contexts_[next_context_++ % contexts_.size()];
  acceptor_.async_accept(target, [this](beast::error_code ec, tcp::socket socket) {
    if (draining_) return;
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      auto session = std::make_shared<Session>(std::move(socket), this);
      Register(session);
      session->Start();
    }
    Accept();
  });
}

void HttpServer::Impl::Register(const std::shared_ptr<Session>& session) {
  std::lock_guard<std::mutex> lock(mu_);
  ++live_sessions_;
  if (sessions_.size() > 64) {
    std::erase_if(sessions_, [](const std::weak_ptr<Session>& s) { return s.expired(); });
  }
  sessions_.push_back(session);
}

void HttpServer::Impl::SessionEnded() {
  std::lock_guard<std::mutex> lock(mu_);
  --live_sessions_;
  ended_cv_.notify_all();
}

void HttpServer::Impl::Shutdown() {
  if (threads_.empty()) return;  // never started
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  draining_ = true;
  net::post(acceptor_.get_executor(), [this] {
    beast::error_code ec;
    acceptor_.close(ec);
  });
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& weak : sessions_) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
  }
  for (auto& s : live) s->CloseIfIdle();
  live.clear();
  {
    std::unique_lock<std::mutex> lock(mu_);
    ended_cv_.wait(lock, [this] { return live_sessions_ == 0; });
  }
  for (auto& ioc : contexts_) ioc->stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

core::Result<std::unique_ptr<HttpServer>> HttpServer::Create(HttpServerOptions options) {
  if (options.inference == nullptr || options.admin == nullptr) {
    return core::Status::InvalidArgument("HttpServer needs an inference and an admin service");
  }
  auto impl = std::make_unique<Impl>(std::move(options));
  RETURN_IF_ERROR(impl->Bind());
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

core::Status HttpServer::Start() { return impl_->Start(); }

int HttpServer::port() const { return impl_->port_; }

void HttpServer::Shutdown() { impl_->Shutdown(); }

HttpServer::~HttpServer() { impl_->Shutdown(); }

}  // namespace slipway::frontends::http
