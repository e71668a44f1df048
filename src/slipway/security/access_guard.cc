#include "slipway/security/access_guard.h"

#include <fmt/format.h>
#include <openssl/sha.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstring>

namespace slipway::security {

using core::Result;
using core::Status;

namespace {

std::array<unsigned char, 32> Digest32(std::string_view text) {
  std::array<unsigned char, 32> d{};
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), d.data());
  return d;
}

bool ParseHex(std::string_view hex, std::array<unsigned char, 32>* out) {
  if (hex.size() != 64) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < 32; ++i) {
    const int hi = nibble(hex[2 * i]);
    const int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string Sha256Hex(std::string_view text) {
  static const char* kHex = "0123456789abcdef";
  const auto d = Digest32(text);
  std::string out;
  for (unsigned char c : d) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

size_t AccessGuard::DigestHash::operator()(const Digest& d) const {
  size_t h;
  std::memcpy(&h, d.data(), sizeof(h));  // already uniformly distributed
  return h;
}

AccessGuard::AccessGuard(Options options) : options_(std::move(options)) {
  if (!options_.now) options_.now = [] { return Clock::now(); };
  if (options_.burst <= 0) options_.burst = std::max(1.0, options_.rate_per_second);
}

Result<std::unique_ptr<AccessGuard>> AccessGuard::Create(Options options) {
  if (options.rate_per_second < 0) return Status::InvalidArgument("the rate limit must be >= 0");
  std::unique_ptr<AccessGuard> guard(new AccessGuard(std::move(options)));
  auto keys = guard->LoadKeys();
  if (!keys.ok()) return keys.status();
  guard->keys_.Store(std::move(keys).value());
  return guard;
}

Result<std::shared_ptr<const AccessGuard::KeyTable>> AccessGuard::LoadKeys() const {
  auto table = std::make_shared<KeyTable>();
  auto add = [&](const std::string& where, const std::string& name, const Digest& digest,
                 const std::vector<std::string>& roles) -> Status {
    Key key;
    key.name = name;
    for (const auto& r : roles) {
      if (r == "admin") {
        key.admin = key.infer = true;
      } else if (r == "infer") {
        key.infer = true;
      } else {
        return Status::InvalidArgument(where + ": unknown role '" + r +
                                       "' (roles are infer and admin)");
      }
    }
    if (roles.empty()) return Status::InvalidArgument(where + ": key '" + name + "' has no roles");
    if (!table->emplace(digest, key).second) {
      return Status::InvalidArgument(where + ": key '" + name + "' repeats another key");
    }
    return Status::Ok();
  };
  // SLIPWAY_API_KEYS="admin=secret,infer=other": the role names the key.
  std::string_view env = options_.keys_env;
  int n = 0;
  while (!env.empty()) {
    const size_t comma = env.find(',');
    std::string_view item = Trim(env.substr(0, comma));
    env = comma == std::string_view::npos ? std::string_view() : env.substr(comma + 1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == item.size()) {
      return Status::InvalidArgument(
          "SLIPWAY_API_KEYS: each entry is role=key (roles: infer, admin)");
    }
    const std::string role(Trim(item.substr(0, eq)));
    const std::string secret(Trim(item.substr(eq + 1)));
    auto st = add("SLIPWAY_API_KEYS", "env-" + role + "-" + std::to_string(++n), Digest32(secret),
                  {role});
    if (!st.ok()) return st;
  }
  if (!options_.keys_file.empty()) {
    const std::string& f = options_.keys_file;
    YAML::Node root;
    try {
      root = YAML::LoadFile(f);
    } catch (const YAML::Exception& e) {
      return Status::InvalidArgument("keys file " + f + ": " + e.what());
    }
    const YAML::Node keys = root.IsMap() ? root["keys"] : YAML::Node();
    if (!keys || !keys.IsSequence()) {
      return Status::InvalidArgument("keys file " + f + ": expected `keys:` with a list of "
                                     "{name, key or sha256, roles}");
    }
    int i = 0;
    for (const auto& k : keys) {
      ++i;
      const std::string where = "keys file " + f + " entry " + std::to_string(i);
      if (!k.IsMap()) return Status::InvalidArgument(where + ": expected a map");
      for (const auto& field : k) {
        const auto name = field.first.as<std::string>("");
        if (name != "name" && name != "key" && name != "sha256" && name != "roles") {
          return Status::InvalidArgument(where + ": unknown field '" + name + "'");
        }
      }
      std::string name = k["name"] ? k["name"].as<std::string>("") : "";
      if (name.empty()) name = "key-" + std::to_string(i);
      Digest digest{};
      if (k["key"] && k["sha256"]) {
        return Status::InvalidArgument(where + ": give `key` or `sha256`, not both");
      } else if (k["key"]) {
        const auto secret = k["key"].as<std::string>("");
        if (secret.size() < 8) {
          return Status::InvalidArgument(where + ": a key must be at least 8 characters");
        }
        digest = Digest32(secret);
      } else if (k["sha256"]) {
        if (!ParseHex(k["sha256"].as<std::string>(""), &digest)) {
          return Status::InvalidArgument(where + ": sha256 must be 64 hex digits");
        }
      } else {
        return Status::InvalidArgument(where + ": needs `key` or `sha256`");
      }
      std::vector<std::string> roles;
      const YAML::Node r = k["roles"];
      if (r && r.IsSequence()) {
        for (const auto& x : r) roles.push_back(x.as<std::string>(""));
      } else if (r && r.IsScalar()) {
        roles.push_back(r.as<std::string>(""));
      }
      auto st = add(where, name, digest, roles);
      if (!st.ok()) return st;
    }
  }
  return std::shared_ptr<const KeyTable>(std::move(table));
}

bool AccessGuard::auth_enabled() const { return !keys_.Load()->empty(); }

Status AccessGuard::Reload() {
  auto keys = LoadKeys();
  if (!keys.ok()) return keys.status();
  keys_.Store(std::move(keys).value());
  return Status::Ok();
}

std::string_view AccessGuard::CredentialFrom(std::string_view authorization,
                                             std::string_view api_key) {
  authorization = Trim(authorization);
  if (authorization.size() > 7) {
    std::string scheme(authorization.substr(0, 7));
    std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (scheme == "bearer ") return Trim(authorization.substr(7));
  }
  return Trim(api_key);
}

bool AccessGuard::TakeToken(const std::string& client, int* retry_after_s) {
  Shard& shard = shards_[std::hash<std::string>{}(client) % shards_.size()];
  const auto now = options_.now();
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.buckets.find(client);
  if (it == shard.buckets.end()) {
    // Forget idle clients before the table outgrows its share.
    if (shard.buckets.size() >= std::max<size_t>(1, options_.max_clients / shards_.size())) {
      for (auto b = shard.buckets.begin(); b != shard.buckets.end();) {
        const double refill = std::chrono::duration<double>(now - b->second.last).count() *
                              options_.rate_per_second;
        b = b->second.tokens + refill >= options_.burst ? shard.buckets.erase(b) : std::next(b);
      }
      if (shard.buckets.size() >= std::max<size_t>(1, options_.max_clients / shards_.size())) {
        shard.buckets.erase(shard.buckets.begin());
      }
    }
    it = shard.buckets.emplace(client, Bucket{options_.burst, now}).first;
  }
  Bucket& b = it->second;
  const double elapsed = std::chrono::duration<double>(now - b.last).count();
  b.tokens = std::min(options_.burst, b.tokens + std::max(0.0, elapsed) * options_.rate_per_second);
  b.last = now;
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return true;
  }
  const double wait = (1 - b.tokens) / options_.rate_per_second;
  *retry_after_s = std::max(1, static_cast<int>(wait + 0.999));
  return false;
}

Verdict AccessGuard::Check(Access access, std::string_view credential, std::string_view address) {
  Verdict v;
  v.client = std::string(address);
  const bool open = (access == Access::kHealth && options_.open_health) ||
                    (access == Access::kMetrics && options_.open_metrics);
  auto keys = keys_.Load();
  if (!keys->empty()) {
    const Key* key = nullptr;
    if (!credential.empty()) {
      auto it = keys->find(Digest32(credential));
      if (it != keys->end()) key = &it->second;
    }
    if (key != nullptr) v.client = "key:" + key->name;
    if (!open) {
      if (key == nullptr) {
        v.outcome = Verdict::kUnauthenticated;
        v.message = credential.empty()
                        ? "this endpoint needs an API key: send 'Authorization: Bearer <key>' "
                          "or 'X-API-Key: <key>'"
                        : "the API key is not valid";
        return v;
      }
      const bool needs_admin = access == Access::kAdmin;
      if ((needs_admin && !key->admin) || (!needs_admin && !key->infer)) {
        v.outcome = Verdict::kForbidden;
        v.message = std::string("the key '") + key->name + "' lacks the " +
                    (needs_admin ? "admin" : "infer") + " role this endpoint needs";
        return v;
      }
    }
  }
  // Health checks and scrapes are never rate limited: a balancer must always see the truth.
  if (options_.rate_per_second > 0 && access != Access::kHealth && access != Access::kMetrics) {
    int retry = 0;
    if (!TakeToken(v.client, &retry)) {
      v.outcome = Verdict::kRateLimited;
      v.retry_after_s = retry;
      v.message = fmt::format("rate limit exceeded for {}: at most {:g} requests per second; "
                              "retry in {} s",
                              v.client, options_.rate_per_second, retry);
    }
  }
  return v;
}

}  // namespace slipway::security
