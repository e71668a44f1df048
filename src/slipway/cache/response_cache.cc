#include "slipway/cache/response_cache.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

namespace slipway::cache {

using core::Result;
using core::Status;

namespace {

constexpr auto kSettingsRefresh = std::chrono::seconds(1);
// Accounted per entry and per output tensor besides their bytes: list and index nodes, the
// answer's bookkeeping, the tensor objects.
constexpr uint64_t kEntryOverhead = 256;
constexpr uint64_t kTensorOverhead = 64;
constexpr uint8_t kValueFormat = 1;  // first byte of a shared-tier value

uint64_t NanosSince(std::chrono::steady_clock::time_point start) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now() - start)
                                   .count());
}

bool IgnoredByCache(std::string_view name) {
  return std::find(kParametersIgnoredByCache.begin(), kParametersIgnoredByCache.end(), name) !=
         kParametersIgnoredByCache.end();
}

// Feeds the key material to SHA-256, every variable-length field prefixed by its length so no two
// different requests encode to the same bytes.
class KeyHasher {
 public:
  KeyHasher() : ctx_(EVP_MD_CTX_new()) {
    if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) std::abort();
  }
  ~KeyHasher() { EVP_MD_CTX_free(ctx_); }
  KeyHasher(const KeyHasher&) = delete;
  KeyHasher& operator=(const KeyHasher&) = delete;

  void Bytes(const void* data, size_t n) {
    if (n > 0 && EVP_DigestUpdate(ctx_, data, n) != 1) std::abort();
    length_ += n;
  }
  void U64(uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
    Bytes(b, 8);
  }
  void Str(std::string_view s) {
    U64(s.size());
    Bytes(s.data(), s.size());
  }
  std::array<uint8_t, 32> Finish() {
    std::array<uint8_t, 32> out{};
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(ctx_, out.data(), &n) != 1 || n != out.size()) std::abort();
    return out;
  }
  uint64_t length() const { return length_; }

 private:
  EVP_MD_CTX* ctx_;
  uint64_t length_ = 0;
};

std::string Hex(const std::array<uint8_t, 32>& d) {
  static const char* kHex = "0123456789abcdef";
  std::string out(64, '0');
  for (size_t i = 0; i < d.size(); ++i) {
    out[2 * i] = kHex[d[i] >> 4];
    out[2 * i + 1] = kHex[d[i] & 15];
  }
  return out;
}

// ---- Shared-tier values --------------------------------------------------------------------
// Little-endian: u8 format (1) | 32 B key digest | u64 key material length | i64 answering
// version | u32 outputs | per output: u32 name length, name, u8 datatype length, datatype name,
// u32 rank, i64 dims..., u64 byte length, bytes. The digest and length tie a value to its key.

void PutU(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}

class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool U(int bytes, uint64_t* v) {
    if (data_.size() - pos_ < static_cast<size_t>(bytes)) return false;
    *v = 0;
    for (int i = 0; i < bytes; ++i) {
      *v |= static_cast<uint64_t>(static_cast<uint8_t>(data_[pos_ + static_cast<size_t>(i)]))
            << (8 * i);
    }
    pos_ += static_cast<size_t>(bytes);
    return true;
  }
  bool Take(uint64_t n, std::string_view* out) {
    if (data_.size() - pos_ < n) return false;
    *out = data_.substr(pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return true;
  }
  bool done() const { return pos_ == data_.size(); }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

std::string SerializeAnswer(const std::array<uint8_t, 32>& digest, uint64_t material_bytes,
                            int64_t version, const std::vector<core::Tensor>& outputs) {
  std::string out;
  size_t size = 1 + 32 + 8 + 8 + 4;
  for (const auto& t : outputs) {
    size += 4 + t.name().size() + 16 + 4 + 8 * t.shape().size() + 8 + t.bytes().size();
  }
  out.reserve(size);
  out.push_back(static_cast<char>(kValueFormat));
  out.append(reinterpret_cast<const char*>(digest.data()), digest.size());
  PutU(out, material_bytes, 8);
  PutU(out, static_cast<uint64_t>(version), 8);
  PutU(out, outputs.size(), 4);
  for (const auto& t : outputs) {
    PutU(out, t.name().size(), 4);
    out.append(t.name());
    const std::string_view type = core::DataTypeName(t.type());
    PutU(out, type.size(), 1);
    out.append(type);
    PutU(out, t.shape().size(), 4);
    for (int64_t d : t.shape()) PutU(out, static_cast<uint64_t>(d), 8);
    PutU(out, t.bytes().size(), 8);
    out.append(t.bytes());
  }
  return out;
}

// nullopt for anything but a well-formed value of this key whose tensors are consistent.
std::optional<std::pair<int64_t, std::vector<core::Tensor>>> ParseAnswer(
    std::string_view value, const std::array<uint8_t, 32>& digest, uint64_t material_bytes) {
  Reader r(value);
  uint64_t format = 0, length = 0, version = 0, count = 0;
  std::string_view stored_digest;
  if (!r.U(1, &format) || format != kValueFormat || !r.Take(32, &stored_digest) ||
      std::memcmp(stored_digest.data(), digest.data(), 32) != 0 || !r.U(8, &length) ||
      length != material_bytes || !r.U(8, &version) || !r.U(4, &count) || count > 4096) {
    return std::nullopt;
  }
  std::vector<core::Tensor> outputs;
  outputs.reserve(static_cast<size_t>(count));
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t name_len = 0, type_len = 0, rank = 0, nbytes = 0;
    std::string_view name, type, bytes;
    if (!r.U(4, &name_len) || !r.Take(name_len, &name) || !r.U(1, &type_len) ||
        !r.Take(type_len, &type) || !r.U(4, &rank) || rank > 64) {
      return std::nullopt;
    }
    core::Shape shape(static_cast<size_t>(rank));
    for (auto& d : shape) {
      uint64_t v = 0;
      if (!r.U(8, &v)) return std::nullopt;
      d = static_cast<int64_t>(v);
    }
    if (!r.U(8, &nbytes) || !r.Take(nbytes, &bytes)) return std::nullopt;
    const core::DataType dt = core::ParseDataType(type);
    if (dt == core::DataType::kInvalid) return std::nullopt;
    core::Tensor t =
        core::Tensor::Owned(std::string(name), dt, std::move(shape), std::string(bytes));
    if (!t.ValidateSize().ok()) return std::nullopt;
    outputs.push_back(std::move(t));
  }
  if (!r.done() || static_cast<int64_t>(version) < 1) return std::nullopt;
  return std::make_pair(static_cast<int64_t>(version), std::move(outputs));
}

}  // namespace

size_t ResponseCache::DigestHash::operator()(const Digest& d) const {
  size_t h = 0;
  std::memcpy(&h, d.data(), sizeof(h));
  return h;
}

Result<std::unique_ptr<ResponseCache>> ResponseCache::Create(Options options) {
  if (options.inner == nullptr) {
    return Status::InvalidArgument("ResponseCache needs an inner service");
  }
  if (options.max_bytes == 0) {
    return Status::InvalidArgument("the response cache needs max_bytes >= 1");
  }
  if (!options.now) options.now = [] { return Clock::now(); };
  return std::unique_ptr<ResponseCache>(new ResponseCache(std::move(options)));
}

ResponseCache::ResponseCache(Options options)
    : ForwardingService(options.inner), options_(std::move(options)) {}

std::optional<ResponseCache::Key> ResponseCache::KeyOf(const core::InferRequest& request) {
  if (request.parameters.count("sequence_id") != 0) return std::nullopt;
  KeyHasher h;
  h.Str("slipway-response-cache-v1");
  h.Str(request.model_name);
  h.U64(static_cast<uint64_t>(request.model_version));
  std::vector<const core::Tensor*> inputs;
  inputs.reserve(request.inputs.size());
  for (const auto& t : request.inputs) inputs.push_back(&t);
  std::stable_sort(inputs.begin(), inputs.end(), [](const core::Tensor* a, const core::Tensor* b) {
    return a->name() < b->name();
  });
  h.U64(inputs.size());
  for (const core::Tensor* t : inputs) {
    h.Str(t->name());
    h.Str(core::DataTypeName(t->type()));
    h.U64(t->shape().size());
    for (int64_t d : t->shape()) h.U64(static_cast<uint64_t>(d));
    h.Str(t->bytes());
  }
  std::vector<std::string_view> outputs;
  outputs.reserve(request.outputs.size());
  for (const auto& o : request.outputs) outputs.push_back(o.name);
  std::sort(outputs.begin(), outputs.end());
  h.U64(outputs.size());
  for (std::string_view o : outputs) h.Str(o);
  for (const auto& [name, value] : request.parameters) {  // a std::map: already in name order
    if (IgnoredByCache(name)) continue;
    h.Str(name);
    h.U64(value.index());
    std::visit(
        [&h](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::string>) {
            h.Str(v);
          } else if constexpr (std::is_same_v<T, double>) {
            uint64_t bits = 0;
            std::memcpy(&bits, &v, sizeof(bits));
            h.U64(bits);
          } else {
            h.U64(static_cast<uint64_t>(v));
          }
        },
        value);
  }
  h.Str("end");
  Key key;
  key.material_bytes = h.length();
  key.digest = h.Finish();
  return key;
}

std::optional<std::string> ResponseCache::CacheKey(const core::InferRequest& request) {
  auto key = KeyOf(request);
  if (!key) return std::nullopt;
  return Hex(key->digest);
}

ResponseCache::Settings ResponseCache::SettingsFor(const std::string& model) {
  const auto now = options_.now();
  // Most requests on a thread are for the model the last one was for: answered from a per-thread
  // copy, with no shared write (a load of the shared table bumps a count every thread touches).
  thread_local uint64_t last_owner = 0;
  thread_local std::string last_model;
  thread_local Settings last;
  auto fresh = [&now](const Settings& s) { return now - s.fetched < kSettingsRefresh && now >= s.fetched; };
  if (last_owner == instance_ && last_model == model && fresh(last)) return last;
  {
    auto table = settings_.Load();
    auto it = table->find(model);
    if (it != table->end() && fresh(it->second)) {
      last_owner = instance_;
      last_model = model;
      last = it->second;
      return it->second;
    }
  }
  Settings s;
  s.fetched = now;
  auto config = inner_->GetModelConfig(model, 0);
  if (!config.ok()) return s;  // unknown names are never kept: clients choose them
  s.enabled = config->response_cache.enabled;
  s.ttl_seconds = config->response_cache.ttl_seconds;
  if (s.enabled) {
    auto md = inner_->GetModelMetadata(model, 0);
    if (md.ok()) {
      for (const std::string& v : md->versions) {
        auto parsed = core::ParseModelVersion(v);
        if (parsed.ok()) s.latest_version = std::max(s.latest_version, *parsed);
      }
    }
  }
  std::lock_guard<std::mutex> lock(settings_mu_);
  auto next = std::make_shared<std::map<std::string, Settings>>(*settings_.Load());
  (*next)[model] = s;
  settings_.Store(std::move(next));
  return s;
}

uint64_t ResponseCache::AnswerBytes(const std::string& model,
                                    const std::vector<core::Tensor>& outputs) {
  uint64_t bytes = kEntryOverhead + sizeof(Digest) + model.size();
  for (const auto& t : outputs) {
    bytes += kTensorOverhead + t.name().size() + 8 * t.shape().size() + t.bytes().size();
  }
  return bytes;
}

core::InferResponse ResponseCache::HitResponse(const Answer& answer, std::string id) {
  core::InferResponse r;
  r.model_name = answer.model;
  r.model_version = answer.version;
  r.id = std::move(id);
  r.outputs.reserve(answer.outputs.size());
  for (const auto& t : answer.outputs) {
    r.outputs.push_back(core::Tensor::Owned(t.name(), t.type(), t.shape(), std::string(t.bytes())));
  }
  r.parameters["cache_hit"] = true;
  return r;
}

CacheStats& ResponseCache::ModelStatsLocked(const std::string& model) {
  return models_[model].stats;
}

bool ResponseCache::StaleLocked(const Entry& entry, const Settings& settings,
                                Clock::time_point now) const {
  if (now >= entry.expires) return true;
  // A default-version answer made by a version that is no longer the default.
  return entry.requested_version == 0 && settings.latest_version != 0 &&
         entry.answer->version != settings.latest_version;
}

void ResponseCache::EraseLocked(Lru::iterator it) {
  const Entry& e = *it;
  auto m = models_.find(e.answer->model);
  if (m != models_.end()) {
    m->second.stats.entries -= 1;
    m->second.stats.bytes -= e.bytes;
    auto v = m->second.versions.find(e.requested_version);
    if (v != m->second.versions.end()) {
      v->second.erase(e.key.digest);
      if (v->second.empty()) m->second.versions.erase(v);
    }
  }
  stats_.entries -= 1;
  stats_.bytes -= e.bytes;
  index_.erase(e.key.digest);
  lru_.erase(it);
}

void ResponseCache::InsertLocked(const Key& key, const std::string& model,
                                 int64_t requested_version, std::shared_ptr<const Answer> answer,
                                 uint64_t bytes, Clock::time_point expires) {
  if (auto it = index_.find(key.digest); it != index_.end()) EraseLocked(it->second);
  while (!lru_.empty() && stats_.bytes + bytes > options_.max_bytes) {
    auto victim = std::prev(lru_.end());
    ModelStatsLocked(victim->answer->model).evictions += 1;
    stats_.evictions += 1;
    EraseLocked(victim);
  }
  lru_.push_front(Entry{key, requested_version, std::move(answer), bytes, expires});
  index_[key.digest] = lru_.begin();
  ModelState& m = models_[model];
  m.versions[requested_version].insert(key.digest);
  m.stats.entries += 1;
  m.stats.bytes += bytes;
  stats_.entries += 1;
  stats_.bytes += bytes;
}

void ResponseCache::Infer(core::InferRequest request, core::InferCallback done) {
  const auto started = std::chrono::steady_clock::now();
  const Settings settings = SettingsFor(request.model_name);
  if (!settings.enabled) return inner_->Infer(std::move(request), std::move(done));
  const std::optional<Key> key = KeyOf(request);
  if (!key) return inner_->Infer(std::move(request), std::move(done));
  const std::string model = request.model_name;
  const int64_t requested_version = request.model_version;
  const auto now = options_.now();

  std::shared_ptr<const Answer> hit;
  std::shared_ptr<Flight> flight;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = index_.find(key->digest); it != index_.end()) {
      Entry& e = *it->second;
      if (e.key.material_bytes != key->material_bytes) {
        // Not this request's answer (never seen with SHA-256): a miss; the answer replaces it.
      } else if (StaleLocked(e, settings, now)) {
        ModelStatsLocked(model).expirations += 1;
        stats_.expirations += 1;
        EraseLocked(it->second);
      } else {
        lru_.splice(lru_.begin(), lru_, it->second);
        hit = e.answer;
        const uint64_t ns = NanosSince(started);
        for (CacheStats* s : {&stats_, &ModelStatsLocked(model)}) {
          s->hits += 1;
          s->hit_ns += ns;
          s->lookup_ns += ns;
        }
      }
    }
    if (!hit) {
      if (auto f = flights_.find(key->digest); f != flights_.end()) {
        // An identical request is being computed: wait for its answer (counted when it comes).
        std::lock_guard<std::mutex> flight_lock(f->second->mu);
        f->second->followers.push_back(
            Waiter{std::move(request), std::move(done), NanosSince(started)});
        return;
      }
      flight = std::make_shared<Flight>();
      flights_.emplace(key->digest, flight);
    }
  }
  if (hit) return done(HitResponse(*hit, std::move(request.id)));

  // This call leads the flight: the shared tier first, then the inner service.
  if (options_.shared != nullptr) {
    bool error = false;
    std::optional<std::string> value = options_.shared->Get(Hex(key->digest), &error);
    std::shared_ptr<Answer> answer;
    if (value) {
      auto parsed = ParseAnswer(*value, key->digest, key->material_bytes);
      if (!parsed) {
        error = true;  // malformed: a miss, never trusted
      } else if (requested_version == 0 && settings.latest_version != 0 &&
                 parsed->first != settings.latest_version) {
        // Made by a version that is no longer the default: a miss, replaced once computed.
      } else {
        answer = std::make_shared<Answer>();
        answer->model = model;
        answer->version = parsed->first;
        answer->outputs = std::move(parsed->second);
      }
    }
    if (answer) {
      const uint64_t lookup_ns = NanosSince(started);
      const uint64_t bytes = AnswerBytes(model, answer->outputs);
      std::vector<Waiter> followers;
      {
        std::lock_guard<std::mutex> lock(mu_);
        flights_.erase(key->digest);
        if (bytes <= options_.max_bytes / 8) {
          InsertLocked(*key, model, requested_version, answer, bytes, ExpiryFor(settings, now));
        }
        std::lock_guard<std::mutex> flight_lock(flight->mu);
        followers.swap(flight->followers);
        for (CacheStats* s : {&stats_, &ModelStatsLocked(model)}) {
          s->hits += 1 + followers.size();
          s->shared_hits += 1;
          s->coalesced += followers.size();
          s->hit_ns += lookup_ns;
          s->lookup_ns += lookup_ns;
          for (const Waiter& w : followers) {
            s->hit_ns += w.lookup_ns;
            s->lookup_ns += w.lookup_ns;
          }
        }
      }
      done(HitResponse(*answer, std::move(request.id)));
      for (Waiter& w : followers) w.done(HitResponse(*answer, std::move(w.request.id)));
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    for (CacheStats* s : {&stats_, &ModelStatsLocked(model)}) {
      (error ? s->shared_errors : s->shared_misses) += 1;
    }
  }
  const uint64_t lookup_ns = NanosSince(started);
  // The leader's request runs on behalf of every waiter: it is cancelled only once all are.
  if (request.cancelled) {
    request.cancelled = [flight, own = std::move(request.cancelled)] {
      if (!own()) return false;
      std::vector<std::function<bool()>> others;
      {
        std::lock_guard<std::mutex> lock(flight->mu);
        for (const Waiter& w : flight->followers) {
          if (!w.request.cancelled) return false;
          others.push_back(w.request.cancelled);
        }
      }
      for (const auto& c : others) {
        if (!c()) return false;
      }
      return true;
    };
  }
  inner_->Infer(std::move(request),
                [this, key = *key, model, requested_version, expires = ExpiryFor(settings, now),
                 ttl_seconds = settings.ttl_seconds, flight, lookup_ns,
                 done = std::move(done)](Result<core::InferResponse> result) mutable {
                  Finish(key, model, requested_version, expires, ttl_seconds, flight, lookup_ns,
                         std::move(done), std::move(result));
                });
}

ResponseCache::Clock::time_point ResponseCache::ExpiryFor(const Settings& settings,
                                                          Clock::time_point now) {
  if (settings.ttl_seconds <= 0) return Clock::time_point::max();
  return now + std::chrono::duration_cast<Clock::duration>(
                   std::chrono::duration<double>(settings.ttl_seconds));
}

void ResponseCache::Finish(const Key& key, const std::string& model, int64_t requested_version,
                           Clock::time_point expires, double ttl_seconds,
                           const std::shared_ptr<Flight>& flight, uint64_t lookup_ns,
                           core::InferCallback leader_done, Result<core::InferResponse>&& result) {
  const auto insert_started = std::chrono::steady_clock::now();
  std::shared_ptr<Answer> answer;  // the kept copy; null when nothing is kept
  uint64_t bytes = 0;
  bool too_large = false;
  std::string shared_value;
  if (result.ok()) {
    bytes = AnswerBytes(model, result->outputs);
    too_large = bytes > options_.max_bytes / 8;
    if (!too_large) {
      answer = std::make_shared<Answer>();
      answer->model = model;
      answer->version = result->model_version;
      answer->outputs.reserve(result->outputs.size());
      for (const auto& t : result->outputs) {
        answer->outputs.push_back(
            core::Tensor::Owned(t.name(), t.type(), t.shape(), std::string(t.bytes())));
      }
      if (options_.shared != nullptr && answer->version >= 1) {
        shared_value = SerializeAnswer(key.digest, key.material_bytes, answer->version,
                                       answer->outputs);
      }
    }
  }
  std::vector<Waiter> followers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    flights_.erase(key.digest);
    if (answer) InsertLocked(key, model, requested_version, answer, bytes, expires);
    std::lock_guard<std::mutex> flight_lock(flight->mu);
    followers.swap(flight->followers);
    const uint64_t insert_ns = NanosSince(insert_started);
    for (CacheStats* s : {&stats_, &ModelStatsLocked(model)}) {
      s->misses += 1;
      s->miss_ns += lookup_ns + insert_ns;
      s->lookup_ns += lookup_ns;
      s->insert_ns += insert_ns;
      if (too_large) s->too_large += 1;
      if (!result.ok()) continue;
      s->hits += followers.size();
      s->coalesced += followers.size();
      for (const Waiter& w : followers) {
        s->hit_ns += w.lookup_ns;
        s->lookup_ns += w.lookup_ns;
      }
    }
  }
  if (!shared_value.empty()) {
    const int64_t ttl_ms =
        ttl_seconds > 0 ? static_cast<int64_t>(std::ceil(ttl_seconds * 1000.0)) : 0;
    options_.shared->Set(Hex(key.digest), std::move(shared_value), ttl_ms);
  }
  if (!result.ok()) {
    const Status status = result.status();
    leader_done(std::move(result));
    for (Waiter& w : followers) {
      // The leader's own deadline or its caller going away says nothing about the followers'
      // requests: they run on their own (uncached). Any other failure is theirs too.
      const auto code = status.code();
      if (code == core::StatusCode::kDeadlineExceeded || code == core::StatusCode::kCancelled) {
        inner_->Infer(std::move(w.request), std::move(w.done));
      } else {
        w.done(status);
      }
    }
    return;
  }
  if (!answer && !followers.empty()) {  // too large to keep: one copy for the followers
    auto copy = std::make_shared<Answer>();
    copy->model = model;
    copy->version = result->model_version;
    for (const auto& t : result->outputs) {
      copy->outputs.push_back(
          core::Tensor::Owned(t.name(), t.type(), t.shape(), std::string(t.bytes())));
    }
    answer = std::move(copy);
  }
  leader_done(std::move(result));
  for (Waiter& w : followers) w.done(HitResponse(*answer, std::move(w.request.id)));
}

void ResponseCache::DropModel(const std::string& model) {
  std::lock_guard<std::mutex> lock(mu_);
  auto m = models_.find(model);
  if (m == models_.end()) return;
  std::vector<Digest> digests;
  for (const auto& [version, set] : m->second.versions) {
    digests.insert(digests.end(), set.begin(), set.end());
  }
  for (const Digest& d : digests) {
    if (auto it = index_.find(d); it != index_.end()) EraseLocked(it->second);
  }
}

void ResponseCache::DropVersion(const std::string& model, int64_t version) {
  std::lock_guard<std::mutex> lock(mu_);
  auto m = models_.find(model);
  if (m == models_.end()) return;
  std::vector<Digest> digests;
  for (int64_t v : {version, int64_t{0}}) {
    auto set = m->second.versions.find(v);
    if (set != m->second.versions.end()) {
      digests.insert(digests.end(), set->second.begin(), set->second.end());
    }
  }
  for (const Digest& d : digests) {
    if (auto it = index_.find(d); it != index_.end()) EraseLocked(it->second);
  }
}

void ResponseCache::Flush() {
  if (options_.shared != nullptr) options_.shared->Flush();
}

CacheStats ResponseCache::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

CacheStats ResponseCache::ModelStats(const std::string& model) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(model);
  return it == models_.end() ? CacheStats{} : it->second.stats;
}

std::map<std::string, CacheStats> ResponseCache::AllModelStats() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, CacheStats> out;
  for (const auto& [name, state] : models_) out[name] = state.stats;
  return out;
}

Result<std::vector<serving::ModelStatistics>> ResponseCache::GetModelStatistics(
    const std::string& name, int64_t version) const {
  auto stats = inner_->GetModelStatistics(name, version);
  if (!stats.ok()) return stats;
  for (auto& s : *stats) {
    const CacheStats c = ModelStats(s.name);
    s.stats.cache_hit = {c.hits, c.hit_ns};
    s.stats.cache_miss = {c.misses, c.miss_ns};
  }
  return stats;
}

}  // namespace slipway::cache
