#include "slipway/monitoring/webhook_notifier.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>
#include <string_view>
#include <utility>

#include "slipway/core/thread_name.h"

namespace slipway::monitoring {
namespace {

using core::Result;
using core::Status;

constexpr int64_t kMaxBackoffMs = 30000;
// Rate-limit entries older than the interval are pruned once the map grows past this.
constexpr size_t kPruneKeysAbove = 4096;

std::string Snippet(const std::string& body) {
  constexpr size_t kMax = 200;
  std::string s = body.size() > kMax ? body.substr(0, kMax) + "..." : body;
  for (char& c : s) {
    if (std::iscntrl(static_cast<unsigned char>(c))) c = ' ';
  }
  return s;
}

Status BadUrl(const std::string& url, const std::string& why) {
  return Status::InvalidArgument("webhook URL '" + url + "' " + why +
                                 "; expected http://host[:port]/path");
}

}  // namespace

Result<std::unique_ptr<WebhookNotifier>> WebhookNotifier::Create(Options options) {
  const std::string& url = options.url;
  for (char c : url) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return BadUrl(url, "contains whitespace or a control character");
  }
  const size_t sep = url.find("://");
  if (sep == std::string::npos || sep == 0) return BadUrl(url, "has no scheme");
  Target target;
  target.scheme = url.substr(0, sep);
  std::transform(target.scheme.begin(), target.scheme.end(), target.scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (target.scheme != "http" && target.scheme != "https") {
    return BadUrl(url, "has scheme '" + target.scheme + "', not http or https");
  }
#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
  if (target.scheme == "https") {
    return Status::Unimplemented("webhook URL '" + url +
                                 "' is https, but cpp-httplib was built without OpenSSL support");
  }
#endif
  const std::string_view rest = std::string_view(url).substr(sep + 3);
  const size_t authority_end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, authority_end);
  std::string path(authority_end == std::string_view::npos ? "" : rest.substr(authority_end));
  path = path.substr(0, path.find('#'));
  if (path.empty() || path.front() != '/') path.insert(0, "/");
  target.path = std::move(path);
  if (authority.find('@') != std::string_view::npos) {
    return BadUrl(url, "carries user info, which is not supported");
  }

  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {  // IPv6 literal
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return BadUrl(url, "has an unterminated IPv6 literal");
    target.host = std::string(authority.substr(1, close - 1));
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return BadUrl(url, "has junk after the IPv6 host");
    if (!after.empty()) port_text = after.substr(1);
    if (!after.empty() && port_text.empty()) return BadUrl(url, "has an empty port");
  } else {
    const size_t colon = authority.find(':');
    target.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return BadUrl(url, "has an empty port");
    }
  }
  if (target.host.empty()) return BadUrl(url, "has an empty host");
  target.port = target.scheme == "https" ? 443 : 80;
  if (!port_text.empty()) {
    int port = 0;
    for (char c : port_text) {
      if (!std::isdigit(static_cast<unsigned char>(c)) || port > 65535) {
        return BadUrl(url, "has port '" + std::string(port_text) + "', not a number in 1..65535");
      }
      port = port * 10 + (c - '0');
    }
    if (port < 1 || port > 65535) {
      return BadUrl(url, "has port '" + std::string(port_text) + "', not a number in 1..65535");
    }
    target.port = port;
  }

  if (!(options.min_interval_seconds >= 0) || !std::isfinite(options.min_interval_seconds)) {
    return Status::InvalidArgument("webhook min_interval_seconds must be >= 0, got " +
                                   std::to_string(options.min_interval_seconds));
  }
  if (options.max_attempts < 1) {
    return Status::InvalidArgument("webhook max_attempts must be >= 1, got " +
                                   std::to_string(options.max_attempts));
  }
  if (options.initial_backoff_ms < 0) {
    return Status::InvalidArgument("webhook initial_backoff_ms must be >= 0, got " +
                                   std::to_string(options.initial_backoff_ms));
  }
  if (!(options.timeout_seconds > 0) || !std::isfinite(options.timeout_seconds)) {
    return Status::InvalidArgument("webhook timeout_seconds must be > 0, got " +
                                   std::to_string(options.timeout_seconds));
  }
  if (options.max_queue < 1) {
    return Status::InvalidArgument("webhook max_queue must be >= 1, got 0");
  }
  return std::unique_ptr<WebhookNotifier>(new WebhookNotifier(std::move(options), std::move(target)));
}

WebhookNotifier::WebhookNotifier(Options options, Target target)
    : options_(std::move(options)), target_(std::move(target)) {
  if (target_.scheme == "http") {
    client_ = std::make_unique<httplib::Client>(target_.host, target_.port);
  } else {  // https: the scheme-dispatching constructor builds an SSL client
    const bool v6 = target_.host.find(':') != std::string::npos;
    client_ = std::make_unique<httplib::Client>(
        "https://" + (v6 ? "[" + target_.host + "]" : target_.host) + ":" +
        std::to_string(target_.port));
  }
  const auto sec = static_cast<time_t>(options_.timeout_seconds);
  const auto usec =
      static_cast<time_t>((options_.timeout_seconds - static_cast<double>(sec)) * 1e6);
  client_->set_connection_timeout(sec, usec);
  client_->set_read_timeout(sec, usec);
  client_->set_write_timeout(sec, usec);
  thread_ = std::thread([this] {
    core::NameThisThread("slipway-webhook");
    Run();
  });
}

WebhookNotifier::~WebhookNotifier() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  client_->stop();  // shuts down a socket in use, so a pending read or write fails at once
  if (thread_.joinable()) thread_.join();
}

bool WebhookNotifier::Notify(const std::string& key, std::string json_body) {
  const auto now = std::chrono::steady_clock::now();
  const std::chrono::duration<double> interval(options_.min_interval_seconds);
  bool queued = false;
  bool log_drop = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (options_.min_interval_seconds > 0) {
      auto it = last_accepted_.find(key);
      if (it != last_accepted_.end() && now - it->second < interval) {
        suppressed_.fetch_add(1, std::memory_order_relaxed);
        return false;
      }
    }
    if (queue_.size() >= options_.max_queue) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      log_drop = !dropping_;
      dropping_ = true;
    } else {
      dropping_ = false;
      if (options_.min_interval_seconds > 0) {
        if (last_accepted_.size() > kPruneKeysAbove) {
          std::erase_if(last_accepted_, [&](const auto& e) { return now - e.second >= interval; });
        }
        last_accepted_[key] = now;
      }
      queue_.push_back(Event{key, std::move(json_body)});
      queued = true;
    }
  }
  if (log_drop) {
    spdlog::warn("webhook {}: queue full (max_queue {}); dropping event '{}' and later ones "
                 "until the queue drains",
                 options_.url, options_.max_queue, key);
  }
  if (queued) cv_.notify_one();
  return queued;
}

WebhookNotifier::Counters WebhookNotifier::counters() const {
  Counters c;
  c.sent = sent_.load(std::memory_order_relaxed);
  c.failed = failed_.load(std::memory_order_relaxed);
  c.retried = retried_.load(std::memory_order_relaxed);
  c.suppressed = suppressed_.load(std::memory_order_relaxed);
  c.dropped = dropped_.load(std::memory_order_relaxed);
  return c;
}

void WebhookNotifier::Run() {
  for (;;) {
    Event event;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) break;
      event = std::move(queue_.front());
      queue_.pop_front();
    }
    Deliver(event);
  }
  size_t abandoned = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    abandoned = queue_.size();
    queue_.clear();
  }
  if (abandoned > 0) {
    spdlog::warn("webhook {}: shutting down with {} undelivered events", options_.url, abandoned);
  }
}

void WebhookNotifier::Deliver(const Event& event) {
  int64_t delay_ms = options_.initial_backoff_ms;
  for (int attempt = 1;; ++attempt) {
    httplib::Result res = client_->Post(target_.path, event.body, "application/json");
    bool retryable = true;
    std::string error;
    if (res) {
      const int status = res->status;
      if (status >= 200 && status <= 299) {
        sent_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      error = "HTTP " + std::to_string(status);
      if (!res->body.empty()) error += ": " + Snippet(res->body);
      retryable = status >= 500 || status == 429;
    } else {
      error = "transport error: " + httplib::to_string(res.error());
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) {  // the attempt may have been cancelled by the destructor: not a failure
        spdlog::warn("webhook {}: shutting down; event '{}' not delivered ({} so far)",
                     options_.url, event.key, error);
        return;
      }
    }
    if (!retryable || attempt >= options_.max_attempts) {
      failed_.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("webhook POST {} for event '{}' failed after {} attempt(s): {}", options_.url,
                   event.key, attempt, error);
      return;
    }
    retried_.fetch_add(1, std::memory_order_relaxed);
    spdlog::debug("webhook POST {} for event '{}': {}; retrying in {} ms", options_.url,
                  event.key, error, delay_ms);
    if (!SleepUnlessStopped(std::chrono::milliseconds(delay_ms))) {
      spdlog::warn("webhook {}: shutting down; event '{}' not delivered ({} so far)",
                   options_.url, event.key, error);
      return;
    }
    delay_ms = std::min(delay_ms * 2, kMaxBackoffMs);
  }
}

bool WebhookNotifier::SleepUnlessStopped(std::chrono::milliseconds delay) {
  std::unique_lock<std::mutex> lock(mu_);
  return !cv_.wait_for(lock, delay, [&] { return stop_; });
}

}  // namespace slipway::monitoring
