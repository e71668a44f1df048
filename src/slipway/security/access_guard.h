// AccessGuard: who may call what, and how often. API keys (bearer tokens) carry roles: `infer`
// (inference and metadata) and `admin` (load, unload, labels, traffic, uploads, feedback; admin
// includes infer). Health and /metrics may be left open. A token bucket per client (its key's
// name, or its address when it sent none) limits the request rate.
//
// Keys come from a file (YAML: `keys: [{name: ci, key: "...", roles: [infer]}]`, or
// `sha256: "<hex>"` instead of `key` so the file holds no secret) and/or from the environment
// (`SLIPWAY_API_KEYS="admin=secret1,infer=secret2"`). Presented keys are compared by their
// SHA-256 digest, so comparison time says nothing about a stored key. Reload() rereads the file
// (SIGHUP); a file that fails to parse keeps the keys in force.
//
// Thread safety: Check and Reload are safe from any thread; the key table is a published
// snapshot, the rate buckets are sharded under mutexes.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "slipway/core/snapshot.h"
#include "slipway/core/status.h"

namespace slipway::security {

enum class Access {
  kHealth,   // liveness, readiness
  kMetrics,  // GET /metrics
  kInfer,    // inference and metadata
  kAdmin,    // anything that changes what is served, or records ground truth
};

struct Verdict {
  enum Outcome { kAllowed, kUnauthenticated, kForbidden, kRateLimited };
  Outcome outcome = kAllowed;
  std::string message;       // for the protocol's error body
  int retry_after_s = 0;     // kRateLimited: seconds until a request would be admitted
  std::string client;        // the key's name, or the address
  bool allowed() const { return outcome == kAllowed; }
};

class AccessGuard {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    std::string keys_file;               // "" for none
    std::string keys_env;                // the value of SLIPWAY_API_KEYS ("" for none)
    bool open_health = true;             // health needs no key
    bool open_metrics = true;            // /metrics needs no key
    double rate_per_second = 0;          // per client; 0: no limit
    double burst = 0;                    // bucket size; 0: max(1, rate)
    size_t max_clients = 100000;         // buckets kept; the idlest are forgotten beyond this
    std::function<Clock::time_point()> now;  // for tests; defaults to steady_clock
  };
  static core::Result<std::unique_ptr<AccessGuard>> Create(Options options);

  // Whether keys are configured at all (without keys every call is allowed, rate limits aside).
  bool auth_enabled() const;
  // `credential` is the bearer token or API key as sent ("" if none); `address` is the peer.
  Verdict Check(Access access, std::string_view credential, std::string_view address);
  // Rereads the keys file; on failure the old keys stay and the error is returned.
  core::Status Reload();

  // The credential in an Authorization ("Bearer <token>") or X-API-Key header value.
  static std::string_view CredentialFrom(std::string_view authorization,
                                         std::string_view api_key);

 private:
  struct Key {
    std::string name;
    bool admin = false;
    bool infer = false;
  };
  using Digest = std::array<unsigned char, 32>;
  struct DigestHash {
    size_t operator()(const Digest& d) const;
  };
  using KeyTable = std::unordered_map<Digest, Key, DigestHash>;
  struct Bucket {
    double tokens = 0;
    Clock::time_point last;
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, Bucket> buckets;
  };

  explicit AccessGuard(Options options);
  core::Result<std::shared_ptr<const KeyTable>> LoadKeys() const;
  bool TakeToken(const std::string& client, int* retry_after_s);

  Options options_;
  core::Snapshot<KeyTable> keys_;
  std::array<Shard, 16> shards_;
};

// SHA-256 of `text` as lowercase hex (for writing `sha256:` entries in a keys file).
std::string Sha256Hex(std::string_view text);

}  // namespace slipway::security
