// ResponseCache: the InferenceService link that answers a request from earlier answers to the
// identical request, for models whose config turns it on (`response_cache: {enable: true}`).
//
// It sits below the router, so a request names either a concrete version or 0 (the highest
// ready version). A request is answered, in order, from:
//   1. the local cache: an LRU bounded in bytes, with an optional per-model TTL;
//   2. an identical request being computed now ("single flight"): the caller waits for it;
//   3. the shared tier (RedisTier, optional), so replicas share answers; a hit is kept locally;
//   4. the inner service; a successful answer is kept locally and queued for the shared tier.
// Errors are never kept. Answers from 1-3 carry `parameters["cache_hit"] = true`, owned copies of
// the outputs, the caller's own request id, and zero queue/compute time and batch rows.
//
// The key is SHA-256 (OpenSSL EVP) over a length-prefixed encoding of: the model name, the version
// as requested, every input's name, datatype, shape and bytes (sorted by name, so their order does
// not matter), the requested output names (sorted; the binary wish ignored), and every request
// parameter except kParametersIgnoredByCache. SHA-256 is used rather than a faster 128-bit hash
// because clients choose the key material: finding a collision, which would let one caller's
// answer be served for another's request, must be infeasible, not merely unlikely. An entry also
// keeps the length of its key material as a cheap consistency check; a second hash would add
// nothing a collision-resistant one does not already give. Requests with a `sequence_id`
// parameter are never cached.
//
// Versions: an entry for version 0 remembers which version answered it; once the model's highest
// ready version (read with its config, at most once a second per model) is another one, the entry
// is a miss and is replaced, in the local and the shared tier alike. DropVersion/DropModel free
// the memory at once (the app calls them on version events). The shared tier assumes that a
// version number always names the same model file: a number reused for different weights needs a
// TTL or a flush of Redis.
//
// Which models are cached, and their TTL, are read from the model config through
// inner->GetModelConfig(model, 0), at most once a second per model.
//
// Thread safety: all methods are safe from any thread. One mutex guards the LRU, its indexes, the
// flights and the statistics; neither the inner service, the shared tier, nor a caller's callback
// is ever called while it is held. Infer blocks only on a shared-tier lookup (bounded by its
// command timeout); storing into the shared tier happens on its background thread.
// Ownership: `inner` and `shared` are not owned and must outlive the cache and its in-flight calls.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "slipway/cache/redis_tier.h"
#include "slipway/core/instance_id.h"
#include "slipway/core/snapshot.h"
#include "slipway/serving/forwarding_service.h"

namespace slipway::cache {

// Request parameters that do not change an answer, left out of the cache key: scheduling
// (timeout, priority), how the frontend encodes the answer (binary_data_*, the empty final
// response of streams), and routing (routing_key, headers). Any other parameter is part of the
// key; `sequence_id` disables caching for the request.
inline constexpr std::array<std::string_view, 7> kParametersIgnoredByCache = {
    "timeout",      "priority", "binary_data_output", "binary_data_size",
    "routing_key", "headers",  "triton_enable_empty_final_response"};

struct CacheStats {
  uint64_t hits = 0;           // answered without running the model (local, shared, coalesced)
  uint64_t misses = 0;         // computed by the inner service (failures included)
  uint64_t coalesced = 0;      // hits that waited for an identical request in flight
  uint64_t evictions = 0;      // entries evicted to stay within max_bytes
  uint64_t expirations = 0;    // entries found past their TTL or answered by a replaced version
  uint64_t too_large = 0;      // answers not kept: larger than max_bytes / 8
  uint64_t entries = 0;        // kept now
  uint64_t bytes = 0;          // kept now, as accounted against max_bytes
  uint64_t shared_hits = 0;    // local misses answered by the shared tier
  uint64_t shared_misses = 0;
  uint64_t shared_errors = 0;  // shared lookups that failed, were skipped (tier down) or malformed
  // Time spent, in the shape of Triton's per-model statistics: cache_hit {count: hits, ns:
  // hit_ns} and cache_miss {count: misses, ns: miss_ns}.
  uint64_t hit_ns = 0;     // lookup time of hits
  uint64_t miss_ns = 0;    // lookup and insert time of misses
  uint64_t lookup_ns = 0;  // all lookups (hashing, local and shared tier)
  uint64_t insert_ns = 0;  // keeping computed answers (copy, LRU, queueing for the shared tier)
};

class ResponseCache : public serving::ForwardingService {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    serving::InferenceService* inner = nullptr;  // not owned
    uint64_t max_bytes = uint64_t{256} << 20;    // local budget; one answer may take up to 1/8
    RedisTier* shared = nullptr;                 // optional shared tier, not owned
    std::function<Clock::time_point()> now;      // for TTLs and settings; default Clock::now
  };
  static core::Result<std::unique_ptr<ResponseCache>> Create(Options options);

  // InferenceService (the rest passes through)
  void Infer(core::InferRequest request, core::InferCallback done) override;
  // The inner statistics with cache_hit and cache_miss filled in from the model's counts (per
  // model, repeated on each of its versions).
  core::Result<std::vector<serving::ModelStatistics>> GetModelStatistics(
      const std::string& name, int64_t version) const override;

  // Forgets every answer of a model.
  void DropModel(const std::string& model);
  // Forgets the answers of a concrete version and those of the model's default version (0),
  // which that version may have answered or may now replace.
  void DropVersion(const std::string& model, int64_t version);
  // Waits until answers queued for the shared tier are stored (tests, shutdown).
  void Flush();

  CacheStats Stats() const;
  // Zeros for a model never cached.
  CacheStats ModelStats(const std::string& model) const;
  std::map<std::string, CacheStats> AllModelStats() const;

  // The hex SHA-256 a request is kept under (the shared tier's key without its prefix), or
  // nullopt for a request never cached (one with a sequence_id).
  static std::optional<std::string> CacheKey(const core::InferRequest& request);

 private:
  using Digest = std::array<uint8_t, 32>;
  struct DigestHash {
    size_t operator()(const Digest& d) const;
  };
  struct Key {
    Digest digest{};
    uint64_t material_bytes = 0;
  };
  // An answer as kept: immutable once made, shared by the LRU and hits being copied out.
  struct Answer {
    std::string model;    // as requested (the key's model)
    int64_t version = 0;  // the version that answered
    std::vector<core::Tensor> outputs;  // owned
  };
  struct Entry {
    Key key;
    int64_t requested_version = 0;
    std::shared_ptr<const Answer> answer;
    uint64_t bytes = 0;
    Clock::time_point expires = Clock::time_point::max();
  };
  struct Settings {
    bool enabled = false;
    double ttl_seconds = 0;
    int64_t latest_version = 0;  // the highest ready version; 0 when unknown
    Clock::time_point fetched;
  };
  struct ModelState {
    CacheStats stats;
    // The digests kept per requested version, for DropVersion without a full scan.
    std::map<int64_t, std::unordered_set<Digest, DigestHash>> versions;
  };
  struct Waiter {
    core::InferRequest request;  // kept to run it alone when the leader's own deadline failed it
    core::InferCallback done;
    uint64_t lookup_ns = 0;
  };
  // An identical request being computed, with the callers waiting for it.
  struct Flight {
    std::mutex mu;
    std::vector<Waiter> followers;  // guarded by mu
  };
  using Lru = std::list<Entry>;

  explicit ResponseCache(Options options);
  Settings SettingsFor(const std::string& model);
  static std::optional<Key> KeyOf(const core::InferRequest& request);
  bool StaleLocked(const Entry& entry, const Settings& settings, Clock::time_point now) const;
  // Keeps an answer, evicting the least recently used entries to make room.
  void InsertLocked(const Key& key, const std::string& model, int64_t requested_version,
                    std::shared_ptr<const Answer> answer, uint64_t bytes,
                    Clock::time_point expires);
  void EraseLocked(Lru::iterator it);
  CacheStats& ModelStatsLocked(const std::string& model);
  static Clock::time_point ExpiryFor(const Settings& settings, Clock::time_point now);
  // The leader's way back from the inner service: keeps a successful answer (locally and in the
  // shared tier), ends the flight, answers the leader and every follower.
  void Finish(const Key& key, const std::string& model, int64_t requested_version,
              Clock::time_point expires, double ttl_seconds,
              const std::shared_ptr<Flight>& flight, uint64_t lookup_ns,
              core::InferCallback leader_done, core::Result<core::InferResponse>&& result);
  // A hit's response: owned copies of the outputs under the caller's id.
  static core::InferResponse HitResponse(const Answer& answer, std::string id);
  static uint64_t AnswerBytes(const std::string& model, const std::vector<core::Tensor>& outputs);

  Options options_;
  std::mutex settings_mu_;  // serialises refreshes of settings_
  core::Snapshot<std::map<std::string, Settings>> settings_;  // read without a lock
  // Tells this object's entries in per-thread caches from those of one that lived at the same
  // address before.
  const uint64_t instance_ = core::NextInstanceId();

  mutable std::mutex mu_;
  Lru lru_;  // most recently used first; guarded by mu_
  std::unordered_map<Digest, Lru::iterator, DigestHash> index_;                   // guarded by mu_
  std::unordered_map<Digest, std::shared_ptr<Flight>, DigestHash> flights_;       // guarded by mu_
  std::map<std::string, ModelState> models_;                                      // guarded by mu_
  CacheStats stats_;                                                              // guarded by mu_
};

}  // namespace slipway::cache
