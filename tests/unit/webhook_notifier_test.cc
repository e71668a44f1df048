// Tests for WebhookNotifier against a real HTTP listener on 127.0.0.1.
#include "slipway/monitoring/webhook_notifier.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace slipway::monitoring {
namespace {

using Clock = std::chrono::steady_clock;

// Polls `done` until it holds or a generous deadline passes.
bool WaitFor(const std::function<bool()>& done) {
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// An httplib::Server on 127.0.0.1 answering POST /hook with `handler`, recording what it got.
class Listener {
 public:
  using Handler = std::function<void(int hit, httplib::Response&)>;
  explicit Listener(Handler handler) : handler_(std::move(handler)) {
    server_.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      int hit = 0;
      {
        std::lock_guard<std::mutex> lock(mu_);
        bodies_.push_back(req.body);
        content_types_.push_back(req.get_header_value("Content-Type"));
        hit = ++hits_;
      }
      handler_(hit, res);
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    EXPECT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() before the accept loop runs would be lost; wait for it.
    EXPECT_TRUE(WaitFor([this] { return server_.is_running(); }));
  }
  ~Listener() {
    server_.stop();
    thread_.join();
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
  int hits() const {
    std::lock_guard<std::mutex> lock(mu_);
    return hits_;
  }
  std::vector<std::string> bodies() const {
    std::lock_guard<std::mutex> lock(mu_);
    return bodies_;
  }
  std::vector<std::string> content_types() const {
    std::lock_guard<std::mutex> lock(mu_);
    return content_types_;
  }

 private:
  Handler handler_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  int hits_ = 0;
  std::vector<std::string> bodies_;
  std::vector<std::string> content_types_;
};

// A TCP port on 127.0.0.1 that is bound (so nobody else takes it) but not listening: a connect
// to it is refused.
class DeadPort {
 public:
  DeadPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_GE(fd_, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port_ = ntohs(addr.sin_port);
  }
  ~DeadPort() { ::close(fd_); }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

std::unique_ptr<WebhookNotifier> MakeNotifier(WebhookNotifier::Options options) {
  auto notifier = WebhookNotifier::Create(std::move(options));
  EXPECT_TRUE(notifier.ok()) << notifier.status().ToString();
  return notifier.ok() ? std::move(notifier).value() : nullptr;
}

TEST(WebhookNotifierTest, DeliversBodyAndContentType) {
  Listener listener([](int, httplib::Response& res) { res.status = 200; });
  auto notifier = MakeNotifier({.url = listener.Url()});
  ASSERT_NE(notifier, nullptr);
  EXPECT_TRUE(notifier->Notify("m/1/drift", R"({"model":"m","version":1})"));
  ASSERT_TRUE(WaitFor([&] { return notifier->counters().sent == 1; }));
  EXPECT_EQ(listener.bodies(), std::vector<std::string>{R"({"model":"m","version":1})"});
  EXPECT_EQ(listener.content_types(), std::vector<std::string>{"application/json"});
  const auto c = notifier->counters();
  EXPECT_EQ(c.failed, 0u);
  EXPECT_EQ(c.retried, 0u);
}

TEST(WebhookNotifierTest, RetriesAfter503ThenSucceeds) {
  Listener listener([](int hit, httplib::Response& res) { res.status = hit <= 2 ? 503 : 204; });
  auto notifier = MakeNotifier({.url = listener.Url(), .initial_backoff_ms = 10});
  ASSERT_NE(notifier, nullptr);
  EXPECT_TRUE(notifier->Notify("m/1/drift", "{}"));
  ASSERT_TRUE(WaitFor([&] { return notifier->counters().sent == 1; }));
  const auto c = notifier->counters();
  EXPECT_EQ(c.retried, 2u);
  EXPECT_EQ(c.failed, 0u);
  EXPECT_EQ(listener.hits(), 3);
}

TEST(WebhookNotifierTest, DoesNotRetryA400) {
  Listener listener([](int, httplib::Response& res) {
    res.status = 400;
    res.set_content(R"({"error":"bad"})", "application/json");
  });
  auto notifier = MakeNotifier({.url = listener.Url(), .initial_backoff_ms = 10});
  ASSERT_NE(notifier, nullptr);
  EXPECT_TRUE(notifier->Notify("m/1/drift", "{}"));
  ASSERT_TRUE(WaitFor([&] { return notifier->counters().failed == 1; }));
  const auto c = notifier->counters();
  EXPECT_EQ(c.retried, 0u);
  EXPECT_EQ(c.sent, 0u);
  EXPECT_EQ(listener.hits(), 1);
}

TEST(WebhookNotifierTest, RateLimitsPerKey) {
  Listener listener([](int, httplib::Response& res) { res.status = 200; });
  auto notifier = MakeNotifier({.url = listener.Url(), .min_interval_seconds = 300});
  ASSERT_NE(notifier, nullptr);
  EXPECT_TRUE(notifier->Notify("m/1/drift", R"({"n":1})"));
  EXPECT_FALSE(notifier->Notify("m/1/drift", R"({"n":2})"));
  EXPECT_TRUE(notifier->Notify("m/2/drift", R"({"n":3})"));
  EXPECT_EQ(notifier->counters().suppressed, 1u);
  ASSERT_TRUE(WaitFor([&] { return notifier->counters().sent == 2; }));
  EXPECT_EQ(listener.bodies(), (std::vector<std::string>{R"({"n":1})", R"({"n":3})"}));
}

TEST(WebhookNotifierTest, DropsBeyondMaxQueue) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  Listener listener([released](int, httplib::Response& res) {
    released.wait_for(std::chrono::seconds(20));  // holds the first event in flight
    res.status = 200;
  });
  auto notifier = MakeNotifier({.url = listener.Url(), .max_queue = 1});
  ASSERT_NE(notifier, nullptr);
  EXPECT_TRUE(notifier->Notify("a", "{}"));
  ASSERT_TRUE(WaitFor([&] { return listener.hits() == 1; }));  // "a" left the queue
  EXPECT_TRUE(notifier->Notify("b", "{}"));
  EXPECT_FALSE(notifier->Notify("c", "{}"));
  EXPECT_EQ(notifier->counters().dropped, 1u);
  release.set_value();
  ASSERT_TRUE(WaitFor([&] { return notifier->counters().sent == 2; }));
}

TEST(WebhookNotifierTest, DeadEndpointFailsAfterMaxAttemptsWithoutBlockingNotify) {
  DeadPort dead;
  auto notifier = MakeNotifier({.url = dead.Url(), .max_attempts = 3, .initial_backoff_ms = 10});
  ASSERT_NE(notifier, nullptr);
  EXPECT_TRUE(notifier->Notify("m/1/drift", "{}"));
  ASSERT_TRUE(WaitFor([&] { return notifier->counters().failed == 1; }));
  const auto c = notifier->counters();
  EXPECT_EQ(c.retried, 2u);
  EXPECT_EQ(c.sent, 0u);
}

TEST(WebhookNotifierTest, DestructorInterruptsPendingBackoff) {
  DeadPort dead;
  auto notifier = MakeNotifier({.url = dead.Url(), .initial_backoff_ms = 600000});
  ASSERT_NE(notifier, nullptr);
  EXPECT_TRUE(notifier->Notify("m/1/drift", "{}"));
  ASSERT_TRUE(WaitFor([&] { return notifier->counters().retried == 1; }));  // now sleeping 10 min
  notifier.reset();  // must return without waiting for the backoff
}

TEST(WebhookNotifierTest, CreateRefusesBadUrlsAndOptions) {
  for (const char* url : {"", "127.0.0.1:8080/hook", "ftp://example.com/hook", "http:///hook",
                          "http://:8080/hook", "http://host:0/", "http://host:99999/",
                          "http://host:abc/", "http://host:/", "http://user@host/",
                          "http://[::1/hook", "http://host/a b"}) {
    auto r = WebhookNotifier::Create({.url = url});
    EXPECT_FALSE(r.ok()) << url;
    EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument) << url;
  }
  for (const char* url : {"http://example.com", "http://127.0.0.1:9/x?y=1", "HTTP://[::1]:8080/"}) {
    EXPECT_TRUE(WebhookNotifier::Create({.url = url}).ok()) << url;
  }
  auto https = WebhookNotifier::Create({.url = "https://example.com/hook"});
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
  EXPECT_TRUE(https.ok()) << https.status().ToString();
#else
  EXPECT_EQ(https.status().code(), core::StatusCode::kUnimplemented);
#endif
  EXPECT_FALSE(WebhookNotifier::Create({.url = "http://h/", .max_attempts = 0}).ok());
  EXPECT_FALSE(WebhookNotifier::Create({.url = "http://h/", .timeout_seconds = 0}).ok());
  EXPECT_FALSE(WebhookNotifier::Create({.url = "http://h/", .max_queue = 0}).ok());
  EXPECT_FALSE(WebhookNotifier::Create({.url = "http://h/", .min_interval_seconds = -1}).ok());
}

}  // namespace
}  // namespace slipway::monitoring
