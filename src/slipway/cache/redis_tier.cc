#include "slipway/cache/redis_tier.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>

#include <utility>

#include "slipway/core/thread_name.h"

namespace slipway::cache {

using core::Result;
using core::Status;

namespace {

timeval ToTimeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

// Frees a reply when it goes out of scope.
struct ReplyDeleter {
  void operator()(redisReply* r) const {
    if (r != nullptr) freeReplyObject(r);
  }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

// Runs one command with SIGPIPE blocked on this thread: hiredis writes with write(2), and a
// write to a connection Redis has reset must fail with EPIPE instead of ending the process. A
// SIGPIPE raised meanwhile is consumed unless one was already pending before.
Reply Command(redisContext* context, int argc, const char** argv, const size_t* lens) {
  sigset_t pipe_only;
  sigset_t old_mask;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  sigset_t pending;
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  pthread_sigmask(SIG_BLOCK, &pipe_only, &old_mask);
  Reply reply(static_cast<redisReply*>(redisCommandArgv(context, argc, argv, lens)));
  if (!was_pending) {
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE) == 1) {
      const timespec zero{0, 0};
      sigtimedwait(&pipe_only, nullptr, &zero);
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  return reply;
}

}  // namespace

Result<std::unique_ptr<RedisTier>> RedisTier::Create(Options options) {
  if (options.host.empty()) return Status::InvalidArgument("the Redis host is empty");
  if (options.port < 1 || options.port > 65535) {
    return Status::InvalidArgument("the Redis port must be within 1..65535, got " +
                                   std::to_string(options.port));
  }
  if (options.connect_timeout.count() <= 0 || options.command_timeout.count() <= 0) {
    return Status::InvalidArgument("the Redis connect and command timeouts must be > 0 ms");
  }
  if (options.pool_size == 0) {
    return Status::InvalidArgument("the Redis pool needs >= 1 connection");
  }
  if (options.retry_interval.count() < 0) {
    return Status::InvalidArgument("the Redis retry interval must be >= 0 ms");
  }
  return std::unique_ptr<RedisTier>(new RedisTier(std::move(options)));
}

RedisTier::RedisTier(Options options) : options_(std::move(options)) {
  thread_ = std::thread([this] {
    core::NameThisThread("slipway-redis");
    StoreLoop();
  });
}

RedisTier::~RedisTier() {
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    stop_ = true;
  }
  queue_cv_.notify_all();
  thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  for (const Connection& c : idle_) redisFree(c.context);
  idle_.clear();
}

RedisTier::Connection RedisTier::Acquire() {
  uint64_t generation = 0;
  {
    std::unique_lock<std::mutex> lock(mu_);
    const auto deadline = Clock::now() + options_.command_timeout;
    while (true) {
      if (Clock::now() < down_until_) {
        ++stats_.errors;
        return {};
      }
      if (!idle_.empty()) {
        Connection c = idle_.back();
        idle_.pop_back();
        return c;
      }
      if (open_ < options_.pool_size) break;
      if (pool_cv_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
          open_ >= options_.pool_size) {
        ++stats_.errors;  // every connection busy for a whole command timeout
        return {};
      }
    }
    ++open_;
    generation = generation_;
  }
  // Connecting (name resolution included) happens outside the lock.
  redisContext* context = redisConnectWithTimeout(options_.host.c_str(), options_.port,
                                                  ToTimeval(options_.connect_timeout));
  const bool ok = context != nullptr && context->err == 0 &&
                  redisSetTimeout(context, ToTimeval(options_.command_timeout)) == REDIS_OK;
  std::lock_guard<std::mutex> lock(mu_);
  if (!ok) {
    if (context != nullptr) redisFree(context);
    --open_;
    ++stats_.errors;
    MarkDownLocked();
    pool_cv_.notify_all();
    return {};
  }
  ++stats_.connects;
  return {context, generation};
}

void RedisTier::Release(Connection connection, bool failed) {
  if (connection.context == nullptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (failed || connection.generation != generation_) {
    redisFree(connection.context);
    --open_;
    if (failed) MarkDownLocked();
  } else {
    idle_.push_back(connection);
  }
  pool_cv_.notify_one();
}

void RedisTier::MarkDownLocked() {
  down_until_ = Clock::now() + options_.retry_interval;
  ++generation_;
  for (const Connection& c : idle_) redisFree(c.context);
  open_ -= idle_.size();
  idle_.clear();
  pool_cv_.notify_all();
}

std::optional<std::string> RedisTier::Get(const std::string& key, bool* error) {
  if (error != nullptr) *error = false;
  Connection c = Acquire();
  if (c.context == nullptr) {
    if (error != nullptr) *error = true;
    return std::nullopt;
  }
  const std::string full = options_.key_prefix + key;
  const char* argv[] = {"GET", full.data()};
  const size_t lens[] = {3, full.size()};
  Reply reply = Command(c.context, 2, argv, lens);
  if (reply == nullptr) {  // I/O error or timeout: the connection is unusable
    Release(c, true);
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.errors;
    if (error != nullptr) *error = true;
    return std::nullopt;
  }
  Release(c, false);
  std::optional<std::string> value;
  bool failed = false;
  if (reply->type == REDIS_REPLY_STRING) {
    value.emplace(reply->str, reply->len);
  } else if (reply->type != REDIS_REPLY_NIL) {
    failed = true;  // an error reply (WRONGTYPE, LOADING, ...): the connection stays usable
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.gets;
  if (value) ++stats_.get_hits;
  if (failed) ++stats_.errors;
  if (error != nullptr) *error = failed;
  return value;
}

void RedisTier::Set(std::string key, std::string value, int64_t ttl_ms) {
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    if (queue_.size() < options_.max_queued_sets) {
      queue_.push_back({std::move(key), std::move(value), ttl_ms});
      queue_cv_.notify_one();
      return;
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.dropped_sets;
}

void RedisTier::Flush() {
  std::unique_lock<std::mutex> lock(queue_mu_);
  flushed_cv_.wait(lock, [this] { return (queue_.empty() && !storing_) || stop_; });
}

void RedisTier::StoreLoop() {
  std::unique_lock<std::mutex> lock(queue_mu_);
  while (true) {
    queue_cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) break;
    PendingSet set = std::move(queue_.front());
    queue_.pop_front();
    storing_ = true;
    lock.unlock();
    Store(set);
    lock.lock();
    storing_ = false;
    if (queue_.empty()) flushed_cv_.notify_all();
  }
  queue_.clear();  // stores still queued at shutdown are dropped
  flushed_cv_.notify_all();
}

void RedisTier::Store(const PendingSet& set) {
  Connection c = Acquire();
  if (c.context == nullptr) return;  // counted by Acquire
  const std::string full = options_.key_prefix + set.key;
  const std::string ttl = std::to_string(set.ttl_ms);
  const char* argv[] = {"SET", full.data(), set.value.data(), "PX", ttl.data()};
  const size_t lens[] = {3, full.size(), set.value.size(), 2, ttl.size()};
  const int argc = set.ttl_ms > 0 ? 5 : 3;
  Reply reply = Command(c.context, argc, argv, lens);
  Release(c, reply == nullptr);
  std::lock_guard<std::mutex> lock(mu_);
  if (reply == nullptr || reply->type == REDIS_REPLY_ERROR) {
    ++stats_.errors;
  } else {
    ++stats_.sets;
  }
}

RedisTierStats RedisTier::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace slipway::cache
