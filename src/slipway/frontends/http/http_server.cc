#include "slipway/frontends/http/http_server.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <type_traits>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "slipway/core/thread_name.h"
#include "slipway/frontends/http/http_compression.h"
#include "slipway/frontends/http/http_routes.h"
#include "slipway/frontends/http/kserve_json_codec.h"

namespace slipway::frontends::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;
namespace ssl = boost::asio::ssl;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

class SessionBase;

namespace {
std::string_view View(beast::string_view s) { return {s.data(), s.size()}; }
std::string PeerOf(const tcp::socket& socket) {
  beast::error_code ec;
  const auto endpoint = socket.remote_endpoint(ec);
  return ec ? std::string("unknown") : endpoint.address().to_string();
}
}  // namespace

// ---- TLS -------------------------------------------------------------------------------------
namespace {

constexpr int kTlsHandshakeSeconds = 10;  // a client must finish the TLS handshake within this
constexpr int kTlsShutdownSeconds = 1;    // how long our close_notify waits for the peer's

struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;

// Encrypted keys are refused rather than prompting on the terminal.
int NoPassword(char*, int, int, void*) { return 0; }

// The reason of the latest OpenSSL error; clears the error queue.
std::string OpenSslReason() {
  const unsigned long code = ERR_peek_last_error();
  const char* reason = code != 0 ? ERR_reason_error_string(code) : nullptr;
  ERR_clear_error();
  return reason != nullptr ? reason : "no details";
}

core::Result<std::string> ReadTlsFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return core::Status::InvalidArgument("cannot read the TLS " + what + " '" + path +
                                         "': " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

BioPtr MemoryBio(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// Every certificate of a PEM file, in order (a server certificate first, then its chain).
core::Result<std::vector<X509Ptr>> ReadCertificates(const std::string& path,
                                                    const std::string& what) {
  ASSIGN_OR_RETURN(const std::string pem, ReadTlsFile(path, what));
  BioPtr bio = MemoryBio(pem);
  std::vector<X509Ptr> certs;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, NoPassword, nullptr)) {
    certs.emplace_back(cert);
  }
  ERR_clear_error();  // reading ends with "no start line"
  if (certs.empty()) {
    return core::Status::InvalidArgument("the TLS " + what + " '" + path +
                                         "' holds no PEM certificate");
  }
  return certs;
}

// A server context from the files named in `o`: TLS 1.2 or later, the certificate chain and its
// key (which must match), and with a client CA, peer verification that requires a client
// certificate. Every error names the file at fault.
core::Result<std::shared_ptr<ssl::context>> MakeTlsContext(const HttpServerOptions& o) {
  ASSIGN_OR_RETURN(std::vector<X509Ptr> chain, ReadCertificates(o.tls_cert_file, "certificate"));
  ASSIGN_OR_RETURN(const std::string key_pem, ReadTlsFile(o.tls_key_file, "private key"));
  BioPtr key_bio = MemoryBio(key_pem);
  PkeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassword, nullptr));
  if (key == nullptr) {
    return core::Status::InvalidArgument("the TLS private key '" + o.tls_key_file +
                                         "' holds no usable PEM private key (" + OpenSslReason() +
                                         "; encrypted keys are not supported)");
  }
  if (X509_check_private_key(chain[0].get(), key.get()) != 1) {
    ERR_clear_error();
    return core::Status::InvalidArgument("the TLS private key '" + o.tls_key_file +
                                         "' does not match the certificate '" + o.tls_cert_file +
                                         "'");
  }
  if (X509_cmp_current_time(X509_get0_notAfter(chain[0].get())) < 0) {
    spdlog::warn("the TLS certificate '{}' has expired", o.tls_cert_file);
  }
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::single_dh_use);
  bool ok = SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) == 1 &&
            SSL_CTX_use_certificate(native, chain[0].get()) == 1 &&
            SSL_CTX_use_PrivateKey(native, key.get()) == 1;
  for (size_t i = 1; ok && i < chain.size(); ++i) {
    ok = SSL_CTX_add1_chain_cert(native, chain[i].get()) == 1;
  }
  // Session resumption with client certificates needs a session id context.
  static constexpr unsigned char kSessionContext[] = "slipway";
  ok = ok && SSL_CTX_set_session_id_context(native, kSessionContext,
                                            sizeof(kSessionContext) - 1) == 1;
  if (!ok) {
    return core::Status::InvalidArgument("cannot use the TLS certificate '" + o.tls_cert_file +
                                         "': " + OpenSslReason());
  }
  if (!o.tls_client_ca_file.empty()) {
    ASSIGN_OR_RETURN(std::vector<X509Ptr> cas,
                     ReadCertificates(o.tls_client_ca_file, "client CA"));
    X509_STORE* store = SSL_CTX_get_cert_store(native);
    STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
    for (const X509Ptr& ca : cas) {
      if (X509_STORE_add_cert(store, ca.get()) != 1) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        return core::Status::InvalidArgument("cannot use the TLS client CA '" +
                                             o.tls_client_ca_file + "': " + OpenSslReason());
      }
      sk_X509_NAME_push(names, X509_NAME_dup(X509_get_subject_name(ca.get())));
    }
    SSL_CTX_set_client_CA_list(native, names);  // takes `names`
    SSL_CTX_set_verify(native, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  return ctx;
}

}  // namespace

class HttpServer::Impl {
 public:
  explicit Impl(HttpServerOptions options)
      : options_(std::move(options)),
        ctx_{options_.inference, options_.admin, options_.routing, options_.ground_truth,
             options_.metrics, options_.drift, options_.metrics_only, options_.guard,
             options_.serves},
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
  void Register(const std::shared_ptr<SessionBase>& session);
  void SessionEnded();
  core::Status ReloadTls();
  std::shared_ptr<ssl::context> CurrentTls();

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
  std::vector<std::weak_ptr<SessionBase>> sessions_;  // guarded by mu_
  int live_sessions_ = 0;                         // guarded by mu_
  bool shut_down_ = false;                        // guarded by mu_

  std::mutex tls_mu_;
  std::shared_ptr<ssl::context> tls_;  // guarded by tls_mu_; null: plain HTTP
};

// A connection as the server sees it, whatever its transport.
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  // Called through the session's io_context when the server drains: an idle connection closes now, a busy
  // one after its response.
  virtual void CloseIfIdle() = 0;
};

// One connection over `Stream`: beast::tcp_stream (HTTP) or TlsStream (HTTPS: a TLS handshake
// first, a close_notify last). Every member is touched only on the thread of the session's
// io_context.
template <class Stream>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;
  using std::enable_shared_from_this<Session<Stream>>::shared_from_this;

  Session(tcp::socket socket, HttpServer::Impl* server)
      : stream_(std::move(socket)), server_(server) {}
  Session(tcp::socket socket, std::shared_ptr<ssl::context> tls, HttpServer::Impl* server)
      : tls_(std::move(tls)), stream_(beast::tcp_stream(std::move(socket)), *tls_),
        server_(server) {}
  ~Session() override { server_->SessionEnded(); }

  void Start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      if constexpr (kTls) {
        self->Handshake();
      } else {
        self->ReadHeader();
      }
    });
  }

  void CloseIfIdle() override {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (self->busy_) return;
      if constexpr (kTls) {
        // The handshake or a read is outstanding: cancelling it lets its handler close the
        // connection (with a close_notify once the handshake is done).
        self->Tcp().cancel();
      } else {
        self->Close();
      }
    });
  }

 private:
  beast::tcp_stream& Tcp() { return beast::get_lowest_layer(stream_); }

  // HTTPS: the TLS handshake, within kTlsHandshakeSeconds, before the first request.
  void Handshake() {
    if (server_->draining_) return CloseSocket();
    Tcp().expires_after(std::chrono::seconds(kTlsHandshakeSeconds));
    stream_.async_handshake(ssl::stream_base::server,
                            [self = shared_from_this()](beast::error_code ec) {
                              if (ec) {
                                spdlog::debug("TLS handshake with {} failed: {}", self->peer_,
                                              ec.message());
                                return self->CloseSocket();
                              }
                              self->handshake_done_ = true;
                              self->ReadHeader();
                            });
  }

  void ReadHeader() {
    busy_ = false;
    if (server_->draining_) return Close();
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_->options_.max_header_bytes));
    parser_->body_limit(server_->options_.max_body_bytes);
    Tcp().expires_after(std::chrono::seconds(server_->options_.idle_timeout_seconds));
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = shared_from_this()](beast::error_code ec, size_t) {
                               self->OnHeader(ec);
                             });
  }

  void OnHeader(beast::error_code ec) {
    if (ec == bhttp::error::body_limit) return RefuseTooLarge();
    if (ec == bhttp::error::header_limit) return RefuseHeadersTooLarge();
    if (ec) return Close();
    busy_ = true;
    Tcp().expires_after(std::chrono::seconds(server_->options_.request_timeout_seconds));
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

  void RefuseHeadersTooLarge() {
    HttpResponse res;
    res.status = 431;
    res.body = ErrorJson("request headers are larger than the limit of " +
                         std::to_string(server_->options_.max_header_bytes) + " bytes");
    linger_ = true;
    Write(std::move(res), false, ContentCoding::kIdentity, 11);
  }

  void Linger() {
    beast::error_code ec;
    // Over TLS a bare TCP half-close would read as a truncated stream: only read and drop.
    if constexpr (!kTls) Tcp().socket().shutdown(tcp::socket::shutdown_send, ec);
    Tcp().expires_after(std::chrono::seconds(2));
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
    req.peer = peer_;
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
    Tcp().expires_never();
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
    Tcp().cancel();
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
    Tcp().expires_after(std::chrono::seconds(server_->options_.request_timeout_seconds));
    bhttp::async_write(stream_, *out,
                       [self = shared_from_this(), out](beast::error_code ec, size_t) {
                         if (!ec && self->linger_) return self->Linger();
                         if (ec || !out->keep_alive()) return self->Close();
                         self->ReadHeader();
                       });
  }

  void Close() {
    busy_ = false;
    if constexpr (kTls) {
      // A close_notify first; a peer that does not answer it gets kTlsShutdownSeconds.
      if (closing_) return;
      closing_ = true;
      if (handshake_done_) {
        Tcp().expires_after(std::chrono::seconds(kTlsShutdownSeconds));
        stream_.async_shutdown(
            [self = shared_from_this()](beast::error_code) { self->CloseSocket(); });
        return;
      }
    }
    CloseSocket();
  }

  void CloseSocket() {
    beast::error_code ec;
    Tcp().socket().shutdown(tcp::socket::shutdown_both, ec);
    Tcp().socket().close(ec);
  }

  std::shared_ptr<ssl::context> tls_;  // HTTPS: the context this connection was accepted with
  Stream stream_;
  std::string peer_ = PeerOf(beast::get_lowest_layer(stream_).socket());  // the client's address
  HttpServer::Impl* server_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bool busy_ = false;
  bool handshake_done_ = false;  // HTTPS
  bool closing_ = false;         // HTTPS: the close_notify is under way
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
    threads_.emplace_back([ctx = ioc.get()] {
      core::NameThisThread("slipway-http");
      ctx->run();
    });
  }
  return core::Status::Ok();
}

void HttpServer::Impl::Accept() {
  net::io_context& target = *contexts_[next_context_++ % contexts_.size()];
  acceptor_.async_accept(target, [this](beast::error_code ec, tcp::socket socket) {
    if (draining_) return;
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      if (auto tls = CurrentTls()) {
        auto session =
            std::make_shared<Session<TlsStream>>(std::move(socket), std::move(tls), this);
        Register(session);
        session->Start();
      } else {
        auto session = std::make_shared<Session<beast::tcp_stream>>(std::move(socket), this);
        Register(session);
        session->Start();
      }
    }
    Accept();
  });
}

void HttpServer::Impl::Register(const std::shared_ptr<SessionBase>& session) {
  std::lock_guard<std::mutex> lock(mu_);
  ++live_sessions_;
  if (sessions_.size() > 64) {
    std::erase_if(sessions_, [](const std::weak_ptr<SessionBase>& s) { return s.expired(); });
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
  std::vector<std::shared_ptr<SessionBase>> live;
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

std::shared_ptr<ssl::context> HttpServer::Impl::CurrentTls() {
  std::lock_guard<std::mutex> lock(tls_mu_);
  return tls_;
}

core::Status HttpServer::Impl::ReloadTls() {
  if (options_.tls_cert_file.empty()) {
    return core::Status::FailedPrecondition("TLS is not enabled on HTTP port " +
                                            std::to_string(port_));
  }
  // Built outside the lock; on any error the current context stays.
  ASSIGN_OR_RETURN(std::shared_ptr<ssl::context> fresh, MakeTlsContext(options_));
  std::lock_guard<std::mutex> lock(tls_mu_);
  tls_ = std::move(fresh);
  return core::Status::Ok();
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

core::Result<std::unique_ptr<HttpServer>> HttpServer::Create(HttpServerOptions options) {
  if (options.inference == nullptr || options.admin == nullptr) {
    return core::Status::InvalidArgument("HttpServer needs an inference and an admin service");
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return core::Status::InvalidArgument(
        std::string("TLS needs both a certificate and a private key; only the ") +
        (options.tls_cert_file.empty() ? "key" : "certificate") + " was given");
  }
  if (!options.tls_client_ca_file.empty() && options.tls_cert_file.empty()) {
    return core::Status::InvalidArgument(
        "a TLS client CA needs a server certificate and private key too");
  }
  auto impl = std::make_unique<Impl>(std::move(options));
  if (!impl->options_.tls_cert_file.empty()) {
    ASSIGN_OR_RETURN(impl->tls_, MakeTlsContext(impl->options_));
  }
  RETURN_IF_ERROR(impl->Bind());
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

core::Status HttpServer::Start() { return impl_->Start(); }

int HttpServer::port() const { return impl_->port_; }

void HttpServer::Shutdown() { impl_->Shutdown(); }

core::Status HttpServer::ReloadTls() { return impl_->ReloadTls(); }

bool HttpServer::tls_enabled() const { return !impl_->options_.tls_cert_file.empty(); }

HttpServer::~HttpServer() { impl_->Shutdown(); }

}  // namespace slipway::frontends::http
