// WebhookNotifier: sends retraining-trigger webhooks (a JSON body POSTed to one configured URL)
// from one background thread, so that a failing or slow webhook never affects the caller.
//
// Events are rate-limited per key ("model/version/kind"): an event closer than
// `min_interval_seconds` to the last accepted event with the same key is suppressed. Accepted
// events wait in a bounded queue; beyond `max_queue` they are dropped. Each is POSTed with
// Content-Type application/json: a 2xx answer is success; a 5xx, a 429 or a transport failure
// (refused, timed out, reset) is retried with exponential backoff (initial_backoff_ms, doubled per
// retry, capped at 30 s) up to max_attempts in all; any other answer fails at once. Each failed
// event is logged once with spdlog::warn naming the URL and the last status or error.
//
// Thread safety: Notify and counters are safe from any thread. Ownership: the notifier owns its
// sender thread and HTTP client. Blocking: Notify takes one short lock and never touches the
// network. The destructor interrupts backoff sleeps and cancels an attempt in flight at once;
// at worst it waits for a connect in progress (at most timeout_seconds). Events still queued at
// destruction are abandoned (logged, not delivered).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "slipway/core/status.h"

namespace httplib {
class Client;
}  // namespace httplib

namespace slipway::monitoring {

class WebhookNotifier {
 public:
  struct Options {
    // http://host[:port]/path. https://... only where cpp-httplib was built with OpenSSL
    // (CPPHTTPLIB_OPENSSL_SUPPORT); otherwise Create refuses it.
    std::string url;
    double min_interval_seconds = 300;  // per key; 0 disables rate limiting
    int max_attempts = 5;               // attempts per event in all, >= 1
    int initial_backoff_ms = 500;       // first retry delay; doubled per retry, capped at 30 s
    double timeout_seconds = 5;         // connect, read and write timeouts per attempt, > 0
    size_t max_queue = 1000;            // events waiting to be sent; more are dropped, >= 1
  };

  // InvalidArgument for a malformed URL (no scheme, a scheme other than http/https, an empty
  // host, a bad port, user info) or out-of-range options; Unimplemented for https without
  // OpenSSL support.
  static core::Result<std::unique_ptr<WebhookNotifier>> Create(Options options);

  ~WebhookNotifier();
  WebhookNotifier(const WebhookNotifier&) = delete;
  WebhookNotifier& operator=(const WebhookNotifier&) = delete;

  // Queues `json_body` for POST. `key` is the rate-limit key. Returns false when the event was
  // suppressed by the rate limit or dropped because the queue is full; true when queued.
  bool Notify(const std::string& key, std::string json_body);

  struct Counters {
    uint64_t sent = 0;        // events answered with 2xx
    uint64_t failed = 0;      // events given up on (non-retryable answer or attempts exhausted)
    uint64_t retried = 0;     // attempts after the first, over all events
    uint64_t suppressed = 0;  // events refused by the per-key rate limit
    uint64_t dropped = 0;     // events refused because the queue was full
  };
  Counters counters() const;

 private:
  struct Event {
    std::string key;
    std::string body;
  };
  struct Target {
    std::string scheme;
    std::string host;  // without IPv6 brackets
    int port = 0;
    std::string path;  // starts with '/', may carry a query
  };

  WebhookNotifier(Options options, Target target);
  void Run();
  void Deliver(const Event& event);
  // Sleeps up to `delay` or until stopped; returns false when stopped.
  bool SleepUnlessStopped(std::chrono::milliseconds delay);

  const Options options_;
  const Target target_;
  std::unique_ptr<httplib::Client> client_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                // guarded by mu_
  bool dropping_ = false;            // guarded by mu_: a drop was logged since the last accept
  std::deque<Event> queue_;          // guarded by mu_
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> last_accepted_;  // mu_

  std::atomic<uint64_t> sent_{0}, failed_{0}, retried_{0}, suppressed_{0}, dropped_{0};
  std::thread thread_;  // last: started after everything above is initialized
};

}  // namespace slipway::monitoring
