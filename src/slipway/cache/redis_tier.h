// RedisTier: a response cache shared by server replicas, kept in Redis, so an answer computed by
// one replica serves identical requests sent to the others.
//
// Values are opaque bytes to this class (ResponseCache serialises the answers); keys are stored
// as `slipway:v1:<key>`. Lookups use hiredis' synchronous API on the caller's thread, bounded by
// the connect and command timeouts; stores are queued to one background thread so a slow Redis
// never delays an answer. A small pool of connections is shared by all callers.
//
// Failure handling: any error (refused connection, timeout, protocol error) closes every pooled
// connection and marks the tier down for `retry_interval`; while down, Get is an immediate miss
// and Set is dropped, both reported as errors. The next call after the interval reconnects.
// Thread safety: every method is safe from any thread. Get blocks for at most about one connect
// plus one command timeout; Set never blocks (a full queue drops the store); Flush blocks until
// the queued stores are done.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "slipway/core/status.h"

struct redisContext;

namespace slipway::cache {

struct RedisTierStats {
  uint64_t gets = 0;          // lookups that reached Redis
  uint64_t get_hits = 0;
  uint64_t sets = 0;          // stores written
  uint64_t errors = 0;        // failed or skipped (tier down) lookups and stores
  uint64_t dropped_sets = 0;  // stores dropped because the queue was full
  uint64_t connects = 0;      // connections opened
};

class RedisTier {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    int port = 6379;
    std::chrono::milliseconds connect_timeout{20};
    std::chrono::milliseconds command_timeout{20};
    // How long the tier stays down after an error before it tries to reconnect.
    std::chrono::milliseconds retry_interval{1000};
    size_t pool_size = 4;           // connections at most, shared by lookups and the store thread
    size_t max_queued_sets = 1024;  // stores waiting for the background thread; more are dropped
    std::string key_prefix = "slipway:v1:";
  };
  // Does not connect: the first call does, so a server starts while Redis is down.
  static core::Result<std::unique_ptr<RedisTier>> Create(Options options);
  ~RedisTier();
  RedisTier(const RedisTier&) = delete;
  RedisTier& operator=(const RedisTier&) = delete;

  // The value stored under `key`, or nullopt on a miss. `error`, when given, is set to true when
  // the lookup failed or was skipped because the tier is down (a miss either way).
  std::optional<std::string> Get(const std::string& key, bool* error = nullptr);
  // Queues `SET key value [PX ttl_ms]` (no expiry when ttl_ms <= 0).
  void Set(std::string key, std::string value, int64_t ttl_ms);
  // Waits until every store queued so far has been written or failed.
  void Flush();

  RedisTierStats Stats() const;
  const Options& options() const { return options_; }

 private:
  struct Connection {
    redisContext* context = nullptr;
    uint64_t generation = 0;  // the tier's generation_ when it was opened
  };
  struct PendingSet {
    std::string key;
    std::string value;
    int64_t ttl_ms = 0;
  };
  using Clock = std::chrono::steady_clock;

  explicit RedisTier(Options options);
  // A pooled or new connection; nullptr (with errors counted) when the tier is down, the pool
  // is exhausted past the command timeout, or connecting failed.
  Connection Acquire();
  // Returns a healthy connection to the pool, or, after an error, closes it with every idle one
  // and marks the tier down. A connection opened before the tier last went down is closed.
  void Release(Connection connection, bool failed);
  void MarkDownLocked();
  void StoreLoop();
  void Store(const PendingSet& set);

  const Options options_;
  mutable std::mutex mu_;
  std::condition_variable pool_cv_;
  std::vector<Connection> idle_;     // guarded by mu_
  size_t open_ = 0;                  // connections open (idle or in use), guarded by mu_
  uint64_t generation_ = 0;          // bumped when the tier goes down; older connections close
  Clock::time_point down_until_{};   // guarded by mu_
  RedisTierStats stats_;             // guarded by mu_

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::condition_variable flushed_cv_;
  std::deque<PendingSet> queue_;  // guarded by queue_mu_
  bool storing_ = false;          // the thread holds a store taken off the queue
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace slipway::cache
