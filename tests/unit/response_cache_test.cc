// ResponseCache against a fake inner service that counts executions: what the key covers, the
// byte budget under churn, TTLs on a fake clock, single flight, invalidation, the config keys
// that turn it on, and the Redis tier shared by two "replicas" (against a real redis-server
// started on a free loopback port, skipped when the binary is absent).
#include "slipway/cache/response_cache.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "slipway/repository/model_repository.h"
#include "support/fake_service.h"

extern char** environ;

namespace slipway::cache {
namespace {

using core::DataType;
using core::InferRequest;
using core::InferResponse;
using core::Result;
using core::Status;
using core::Tensor;

// Answers by echoing every input as an output named "out_<input>", from the version asked for
// (or the highest one for version 0). Counts executions; can hold every call on a gate, or fail.
class FakeService : public testing_support::FakeService {
 public:
  void Infer(InferRequest request, core::InferCallback done) override {
    executions_.fetch_add(1);
    {
      std::unique_lock<std::mutex> lock(mu_);
      ++entered_;
      entered_cv_.notify_all();
      gate_cv_.wait(lock, [this] { return open_; });
    }
    Status fail;
    {
      std::lock_guard<std::mutex> lock(mu_);
      fail = fail_id_.empty() || fail_id_ == request.id ? fail_ : Status::Ok();
    }
    if (!fail.ok()) return done(fail);
    InferResponse r;
    r.model_name = request.model_name;
    r.model_version = request.model_version != 0 ? request.model_version : latest_.load();
    r.id = request.id;
    r.queue_ns = 5;
    r.compute_ns = 7;
    r.batch_rows = 1;
    for (const auto& t : request.inputs) {
      r.outputs.push_back(
          Tensor::Owned("out_" + t.name(), t.type(), t.shape(), std::string(t.bytes())));
    }
    done(std::move(r));
  }
  Result<serving::ModelMetadata> GetModelMetadata(const std::string& name,
                                                  int64_t) const override {
    std::lock_guard<std::mutex> lock(mu_);
    if (configs_.count(name) == 0) return Status::NotFound("unknown model '" + name + "'");
    serving::ModelMetadata md;
    md.name = name;
    for (int64_t v = 1; v <= latest_.load(); ++v) md.versions.push_back(std::to_string(v));
    return md;
  }
  Result<core::ModelConfig> GetModelConfig(const std::string& name, int64_t) const override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = configs_.find(name);
    if (it == configs_.end()) return Status::NotFound("unknown model '" + name + "'");
    return it->second;
  }
  void AddModel(const std::string& name, bool cached, double ttl_seconds = 0) {
    core::ModelConfig c;
    c.name = name;
    c.response_cache.enabled = cached;
    c.response_cache.ttl_seconds = ttl_seconds;
    std::lock_guard<std::mutex> lock(mu_);
    configs_[name] = c;
  }
  void SetLatest(int64_t v) { latest_.store(v); }
  // Fails every request (or only those with `id`, when given) with `status`.
  void Fail(Status status, std::string id = "") {
    std::lock_guard<std::mutex> lock(mu_);
    fail_ = std::move(status);
    fail_id_ = std::move(id);
  }
  void CloseGate() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = false;
  }
  void OpenGate() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    gate_cv_.notify_all();
  }
  void WaitEntered(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    entered_cv_.wait(lock, [&] { return entered_ >= n; });
  }
  int executions() const { return executions_.load(); }

 private:
  mutable std::mutex mu_;
  std::condition_variable gate_cv_;
  std::condition_variable entered_cv_;
  bool open_ = true;
  int entered_ = 0;
  Status fail_;
  std::string fail_id_;
  std::map<std::string, core::ModelConfig> configs_;
  std::atomic<int64_t> latest_{1};
  std::atomic<int> executions_{0};
};

std::string Floats(std::initializer_list<float> values) {
  std::string s;
  for (float v : values) s.append(reinterpret_cast<const char*>(&v), sizeof(v));
  return s;
}

InferRequest Request(const std::string& model = "m", int64_t version = 0) {
  InferRequest r;
  r.model_name = model;
  r.model_version = version;
  r.id = "req";
  r.inputs.push_back(Tensor::Owned("x", DataType::kFp32, {1, 4}, Floats({1, 2, 3, 4})));
  r.inputs.push_back(Tensor::Owned("z", DataType::kFp32, {1, 2}, Floats({5, 6})));
  r.outputs.push_back({"out_x", false, false});
  r.parameters["temperature"] = 0.5;
  r.parameters["timeout"] = int64_t{1000};
  return r;
}

Result<InferResponse> Ask(ResponseCache& cache, InferRequest request) {
  return serving::InferAndWait(cache, std::move(request));
}

bool IsHit(const InferResponse& r) {
  auto it = r.parameters.find("cache_hit");
  return it != r.parameters.end() && std::get<bool>(it->second);
}

class ResponseCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    inner_.AddModel("m", true);
    inner_.AddModel("other", true);
    inner_.AddModel("plain", false);
    inner_.AddModel("short", true, 30);
    cache_ = Make(1 << 20);
  }
  std::unique_ptr<ResponseCache> Make(uint64_t max_bytes, RedisTier* shared = nullptr,
                                      FakeService* inner = nullptr) {
    ResponseCache::Options o;
    o.inner = inner != nullptr ? inner : &inner_;
    o.max_bytes = max_bytes;
    o.shared = shared;
    o.now = [this] {
      return ResponseCache::Clock::time_point(std::chrono::nanoseconds(now_ns_.load()));
    };
    auto created = ResponseCache::Create(o);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return std::move(created).value();
  }
  void Advance(std::chrono::milliseconds ms) {
    now_ns_ += std::chrono::duration_cast<std::chrono::nanoseconds>(ms).count();
  }
  // True when the request ran the model (and succeeded).
  bool Executes(InferRequest request) {
    const int before = inner_.executions();
    auto r = Ask(*cache_, std::move(request));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return inner_.executions() != before;
  }

  FakeService inner_;
  std::atomic<int64_t> now_ns_{int64_t{1} << 40};
  std::unique_ptr<ResponseCache> cache_;
};

TEST_F(ResponseCacheTest, CreateChecksOptions) {
  ResponseCache::Options o;
  EXPECT_FALSE(ResponseCache::Create(o).ok());
  o.inner = &inner_;
  o.max_bytes = 0;
  EXPECT_FALSE(ResponseCache::Create(o).ok());
}

TEST_F(ResponseCacheTest, IdenticalRequestHitsAndIsMarked) {
  auto first = Ask(*cache_, Request());
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(IsHit(*first));
  EXPECT_EQ(first->compute_ns, 7u);
  InferRequest again = Request();
  again.id = "second";
  auto second = Ask(*cache_, std::move(again));
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(inner_.executions(), 1);
  EXPECT_TRUE(IsHit(*second));
  EXPECT_EQ(second->id, "second");
  EXPECT_EQ(second->model_name, "m");
  EXPECT_EQ(second->model_version, 1);
  EXPECT_EQ(second->queue_ns, 0u);
  EXPECT_EQ(second->compute_ns, 0u);
  EXPECT_EQ(second->batch_rows, 0);
  EXPECT_TRUE(second->route.empty());
  ASSERT_EQ(second->outputs.size(), first->outputs.size());
  for (size_t i = 0; i < first->outputs.size(); ++i) {
    EXPECT_TRUE(second->outputs[i].is_owned());
    EXPECT_EQ(second->outputs[i].name(), first->outputs[i].name());
    EXPECT_EQ(second->outputs[i].type(), first->outputs[i].type());
    EXPECT_EQ(second->outputs[i].shape(), first->outputs[i].shape());
    EXPECT_EQ(second->outputs[i].bytes(), first->outputs[i].bytes());
  }
  const CacheStats s = cache_->ModelStats("m");
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.entries, 1u);
  EXPECT_GT(s.bytes, 0u);
  EXPECT_GE(s.miss_ns, s.insert_ns);
  EXPECT_EQ(cache_->Stats().hits, 1u);
}

TEST_F(ResponseCacheTest, KeyCoversWhatChangesTheAnswer) {
  ASSERT_TRUE(Executes(Request()));
  ASSERT_FALSE(Executes(Request()));

  InferRequest byte = Request();
  byte.inputs[0].mutable_owned()[3] ^= 1;
  EXPECT_TRUE(Executes(byte));

  InferRequest shape = Request();
  shape.inputs[0].set_shape({2, 2});
  EXPECT_TRUE(Executes(shape));

  InferRequest type = Request();
  type.inputs[0] = Tensor::Owned("x", DataType::kInt32, {1, 4}, Floats({1, 2, 3, 4}));
  EXPECT_TRUE(Executes(type));

  EXPECT_TRUE(Executes(Request("m", 1)));
  EXPECT_TRUE(Executes(Request("m", 2)));
  EXPECT_TRUE(Executes(Request("other")));

  InferRequest outputs = Request();
  outputs.outputs.push_back({"out_z", false, false});
  EXPECT_TRUE(Executes(outputs));
  InferRequest all_outputs = Request();
  all_outputs.outputs.clear();
  EXPECT_TRUE(Executes(all_outputs));

  InferRequest param = Request();
  param.parameters["temperature"] = 0.75;
  EXPECT_TRUE(Executes(param));
  InferRequest param_type = Request();
  param_type.parameters["temperature"] = std::string("0.5");
  EXPECT_TRUE(Executes(param_type));
  InferRequest extra = Request();
  extra.parameters["top_k"] = int64_t{3};
  EXPECT_TRUE(Executes(extra));

  // What does not change the answer still hits.
  InferRequest scheduling = Request();
  scheduling.parameters["timeout"] = int64_t{5};
  scheduling.parameters["priority"] = uint64_t{2};
  scheduling.parameters["routing_key"] = std::string("user-7");
  scheduling.parameters["binary_data_output"] = true;
  EXPECT_FALSE(Executes(scheduling));
  InferRequest reordered = Request();
  std::swap(reordered.inputs[0], reordered.inputs[1]);
  EXPECT_FALSE(Executes(reordered));
  InferRequest binary = Request();
  binary.outputs[0].binary = true;
  binary.outputs[0].binary_set = true;
  EXPECT_FALSE(Executes(binary));
  InferRequest borrowed = Request();
  const std::string bytes = Floats({1, 2, 3, 4});
  borrowed.inputs[0] = Tensor::Borrowed("x", DataType::kFp32, {1, 4}, bytes);
  EXPECT_FALSE(Executes(borrowed));
}

TEST_F(ResponseCacheTest, BytesInputsAreCached) {
  InferRequest r;
  r.model_name = "m";
  std::string text;
  core::AppendBytesElement(text, "hello");
  core::AppendBytesElement(text, "world");
  r.inputs.push_back(Tensor::Owned("s", DataType::kBytes, {2}, text));
  EXPECT_TRUE(Executes(r));
  EXPECT_FALSE(Executes(r));
  InferRequest changed = r;
  changed.inputs[0].mutable_owned().back() = 'D';
  EXPECT_TRUE(Executes(changed));
}

TEST_F(ResponseCacheTest, SequencesAndUncachedModelsAlwaysRun) {
  InferRequest seq = Request();
  seq.parameters["sequence_id"] = int64_t{42};
  EXPECT_TRUE(Executes(seq));
  EXPECT_TRUE(Executes(seq));
  EXPECT_FALSE(ResponseCache::CacheKey(seq).has_value());

  for (int i = 0; i < 3; ++i) {
    auto r = Ask(*cache_, Request("plain"));
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(IsHit(*r));
  }
  EXPECT_EQ(inner_.executions(), 5);
  const CacheStats s = cache_->ModelStats("plain");
  EXPECT_EQ(s.hits + s.misses + s.entries, 0u);
  // Unknown models pass through to the inner service's answer.
  auto unknown = Ask(*cache_, Request("nope"));
  EXPECT_TRUE(unknown.ok());  // the fake answers anything
}

TEST_F(ResponseCacheTest, ByteBudgetHeldUnderChurn) {
  constexpr uint64_t kBudget = 64 << 10;
  cache_ = Make(kBudget);
  auto request = [](int i) {
    InferRequest r;
    r.model_name = "m";
    r.id = std::to_string(i);
    r.inputs.push_back(Tensor::Owned("x", DataType::kUint8, {1000},
                                     std::string(999, 'a') + std::to_string(i % 10)));
    r.inputs[0].mutable_owned().replace(0, std::to_string(i).size(), std::to_string(i));
    return r;
  };
  for (int i = 0; i < 500; ++i) {
    ASSERT_TRUE(Executes(request(i)));
    const CacheStats s = cache_->Stats();
    ASSERT_LE(s.bytes, kBudget);
    ASSERT_EQ(s.entries, cache_->ModelStats("m").entries);
  }
  const CacheStats s = cache_->Stats();
  EXPECT_GT(s.evictions, 400u);
  EXPECT_EQ(s.entries + s.evictions, 500u);
  // The most recently used survive, the oldest are gone.
  for (int i = 499; i > 489; --i) EXPECT_FALSE(Executes(request(i))) << i;
  EXPECT_TRUE(Executes(request(0)));
  // Used entries moved to the front: the miss on 0 evicted an older one, not 490.
  EXPECT_FALSE(Executes(request(490)));

  // An answer over an eighth of the budget is answered but not kept.
  InferRequest big;
  big.model_name = "m";
  big.inputs.push_back(Tensor::Owned("x", DataType::kUint8, {10000}, std::string(10000, 'b')));
  EXPECT_TRUE(Executes(big));
  EXPECT_TRUE(Executes(big));
  EXPECT_EQ(cache_->Stats().too_large, 2u);
}

TEST_F(ResponseCacheTest, TtlExpiresOnTheClock) {
  ASSERT_TRUE(Executes(Request("short")));
  Advance(std::chrono::seconds(29));
  EXPECT_FALSE(Executes(Request("short")));
  Advance(std::chrono::seconds(2));
  EXPECT_TRUE(Executes(Request("short")));
  EXPECT_EQ(cache_->ModelStats("short").expirations, 1u);
  EXPECT_FALSE(Executes(Request("short")));
  // Without a TTL an answer stays.
  ASSERT_TRUE(Executes(Request()));
  Advance(std::chrono::hours(24 * 365));
  EXPECT_FALSE(Executes(Request()));
}

TEST_F(ResponseCacheTest, DefaultVersionAnswersFollowTheHighestReadyVersion) {
  ASSERT_TRUE(Executes(Request("m", 0)));
  ASSERT_TRUE(Executes(Request("m", 1)));
  inner_.SetLatest(2);
  // Within the settings' second the old answer may still be served; after it, never.
  Advance(std::chrono::milliseconds(1001));
  auto r = Ask(*cache_, Request("m", 0));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(IsHit(*r));
  EXPECT_EQ(r->model_version, 2);
  EXPECT_FALSE(Executes(Request("m", 0)));
  EXPECT_FALSE(Executes(Request("m", 1)));  // a named version's answers stay
}

TEST_F(ResponseCacheTest, DropVersionAndDropModel) {
  for (auto [model, v] : std::vector<std::pair<std::string, int64_t>>{
           {"m", 0}, {"m", 1}, {"m", 2}, {"other", 1}}) {
    ASSERT_TRUE(Executes(Request(model, v)));
  }
  EXPECT_EQ(cache_->Stats().entries, 4u);
  cache_->DropVersion("m", 1);
  EXPECT_EQ(cache_->Stats().entries, 2u);
  EXPECT_EQ(cache_->ModelStats("m").entries, 1u);
  EXPECT_FALSE(Executes(Request("m", 2)));
  EXPECT_FALSE(Executes(Request("other", 1)));
  EXPECT_TRUE(Executes(Request("m", 1)));
  EXPECT_TRUE(Executes(Request("m", 0)));
  cache_->DropModel("m");
  EXPECT_EQ(cache_->ModelStats("m").entries, 0u);
  EXPECT_EQ(cache_->ModelStats("m").bytes, 0u);
  EXPECT_TRUE(Executes(Request("m", 2)));
  EXPECT_FALSE(Executes(Request("other", 1)));
  cache_->DropModel("never-seen");
  cache_->DropVersion("never-seen", 3);
}

// N callers send the identical request while the first is held inside the model.
struct FlightResult {
  std::mutex mu;
  std::vector<Result<InferResponse>> results;
  std::vector<std::string> expected_ids;
};

void RunFlight(ResponseCache& cache, FakeService& inner, int n, FlightResult* out) {
  inner.CloseGate();
  auto send = [&cache, out](int i) {
    InferRequest r = Request();
    r.id = "caller-" + std::to_string(i);
    r.parameters["timeout"] = int64_t{100 + i};  // not part of the key
    cache.Infer(std::move(r), [out](Result<InferResponse> result) {
      std::lock_guard<std::mutex> lock(out->mu);
      out->results.push_back(std::move(result));
    });
  };
  const int before = inner.executions();
  std::thread leader(send, 0);
  inner.WaitEntered(1);
  std::vector<std::thread> followers;
  for (int i = 1; i < n; ++i) followers.emplace_back(send, i);
  for (auto& t : followers) t.join();  // each has queued behind the leader
  EXPECT_EQ(inner.executions(), before + 1);
  {
    std::lock_guard<std::mutex> lock(out->mu);
    EXPECT_TRUE(out->results.empty());
  }
  inner.OpenGate();
  leader.join();
}

TEST_F(ResponseCacheTest, SingleFlightSharesOneExecution) {
  constexpr int kCallers = 8;
  FlightResult flight;
  RunFlight(*cache_, inner_, kCallers, &flight);
  EXPECT_EQ(inner_.executions(), 1);
  ASSERT_EQ(flight.results.size(), static_cast<size_t>(kCallers));
  std::set<std::string> ids;
  int hits = 0;
  for (const auto& r : flight.results) {
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ids.insert(r->id);
    hits += IsHit(r.value()) ? 1 : 0;
    ASSERT_EQ(r->outputs.size(), 2u);
    EXPECT_EQ(r->outputs[0].bytes(), Floats({1, 2, 3, 4}));
    if (IsHit(r.value())) {
      EXPECT_NE(r->id, "caller-0");
    }
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kCallers));
  EXPECT_EQ(hits, kCallers - 1);
  const CacheStats s = cache_->Stats();
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.hits, static_cast<uint64_t>(kCallers - 1));
  EXPECT_EQ(s.coalesced, static_cast<uint64_t>(kCallers - 1));
  EXPECT_FALSE(Executes(Request()));
}

TEST_F(ResponseCacheTest, SingleFlightFailureReachesEveryFollowerAndIsNotKept) {
  constexpr int kCallers = 6;
  inner_.Fail(Status::Internal("the runtime fell over"));
  FlightResult flight;
  RunFlight(*cache_, inner_, kCallers, &flight);
  EXPECT_EQ(inner_.executions(), 1);
  ASSERT_EQ(flight.results.size(), static_cast<size_t>(kCallers));
  for (const auto& r : flight.results) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), core::StatusCode::kInternal);
    EXPECT_EQ(r.status().message(), "the runtime fell over");
  }
  EXPECT_EQ(cache_->Stats().entries, 0u);
  EXPECT_EQ(cache_->Stats().hits, 0u);
  inner_.Fail(Status::Ok());
  EXPECT_TRUE(Executes(Request()));
  EXPECT_FALSE(Executes(Request()));
}

TEST_F(ResponseCacheTest, LeadersOwnDeadlineDoesNotFailFollowers) {
  // The leader times out in the queue (its own, shorter deadline): the followers run on their own.
  constexpr int kCallers = 4;
  inner_.Fail(Status(core::StatusCode::kDeadlineExceeded, "timed out in the queue"), "caller-0");
  FlightResult flight;
  RunFlight(*cache_, inner_, kCallers, &flight);
  ASSERT_EQ(flight.results.size(), static_cast<size_t>(kCallers));
  int failed = 0;
  for (const auto& r : flight.results) {
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), core::StatusCode::kDeadlineExceeded);
      ++failed;
      continue;
    }
    EXPECT_NE(r->id, "caller-0");
    EXPECT_FALSE(IsHit(r.value()));
  }
  EXPECT_EQ(failed, 1);
  EXPECT_EQ(inner_.executions(), kCallers);
}

TEST_F(ResponseCacheTest, LeaderIsCancelledOnlyWhenEveryWaiterIs) {
  std::atomic<bool> leader_gone{false};
  std::atomic<bool> follower_gone{false};
  // A service that keeps the cancelled function of the request it runs.
  class Keeper : public FakeService {
   public:
    void Infer(InferRequest request, core::InferCallback done) override {
      {
        std::lock_guard<std::mutex> lock(keep_mu);
        kept = request.cancelled;
      }
      FakeService::Infer(std::move(request), std::move(done));
    }
    std::mutex keep_mu;
    std::function<bool()> kept;
  } keeper;
  keeper.AddModel("m", true);
  auto cache = Make(1 << 20, nullptr, &keeper);
  keeper.CloseGate();
  std::atomic<int> answered{0};
  std::thread leader([&] {
    InferRequest r = Request();
    r.cancelled = [&] { return leader_gone.load(); };
    cache->Infer(std::move(r), [&](Result<InferResponse>) { answered++; });
  });
  keeper.WaitEntered(1);
  InferRequest f = Request();
  f.cancelled = [&] { return follower_gone.load(); };
  cache->Infer(std::move(f), [&](Result<InferResponse>) { answered++; });
  std::function<bool()> kept;
  {
    std::lock_guard<std::mutex> lock(keeper.keep_mu);
    kept = keeper.kept;
  }
  ASSERT_TRUE(kept);
  EXPECT_FALSE(kept());
  leader_gone = true;
  EXPECT_FALSE(kept());  // the follower still waits
  follower_gone = true;
  EXPECT_TRUE(kept());
  keeper.OpenGate();
  leader.join();
  EXPECT_EQ(answered.load(), 2);
}

TEST_F(ResponseCacheTest, ConcurrentMixedTrafficStaysConsistent) {
  cache_ = Make(32 << 10);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([this, t, &failures] {
      for (int i = 0; i < 300; ++i) {
        InferRequest r = Request();
        r.inputs[1].mutable_owned()[0] = static_cast<char>((i * 7 + t) % 40);
        r.id = std::to_string(t) + "-" + std::to_string(i);
        const std::string id = r.id;
        auto result = Ask(*cache_, std::move(r));
        if (!result.ok() || result->id != id) failures++;
        if (i % 97 == 0) cache_->DropVersion("m", 1);
        if (i % 151 == 0) (void)cache_->Stats();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  const CacheStats s = cache_->Stats();
  EXPECT_LE(s.bytes, 32u << 10);
  EXPECT_EQ(s.hits + s.misses, 8u * 300u);
}

// ---- Config keys -------------------------------------------------------------------------

TEST(ResponseCacheConfigTest, YamlPbtxtAndJson) {
  auto yaml = repository::ParseConfigYaml("response_cache: {enable: true, ttl_seconds: 30}\n", "m");
  ASSERT_TRUE(yaml.ok()) << yaml.status().ToString();
  EXPECT_TRUE(yaml->response_cache.enabled);
  EXPECT_DOUBLE_EQ(yaml->response_cache.ttl_seconds, 30);
  auto on = repository::ParseConfigYaml("response_cache: true\n", "m");
  ASSERT_TRUE(on.ok());
  EXPECT_TRUE(on->response_cache.enabled);
  auto off = repository::ParseConfigYaml("response_cache: {enable: false}\n", "m");
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->response_cache.enabled);
  auto none = repository::ParseConfigYaml("max_batch_size: 4\n", "m");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->response_cache.enabled);
  // After a bare `dynamic_batching:` too.
  auto with_batching =
      repository::ParseConfigYaml("response_cache: {enable: true}\ndynamic_batching:\n", "m");
  ASSERT_TRUE(with_batching.ok());
  EXPECT_TRUE(with_batching->response_cache.enabled);

  for (const char* bad : {"response_cache: {enable: true, ttl: 3}\n",
                          "response_cache: {enable: maybe}\n",
                          "response_cache: {ttl_seconds: -1}\n",
                          "response_cache: {ttl_seconds: soon}\n",
                          "response_cache: [1]\n", "response_cache: sometimes\n"}) {
    auto parsed = repository::ParseConfigYaml(bad, "m");
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_NE(parsed.status().message().find("response_cache"), std::string::npos)
        << parsed.status().message();
  }

  auto pbtxt = repository::ParseConfigPbtxt("response_cache { enable: true }\n", "m");
  ASSERT_TRUE(pbtxt.ok()) << pbtxt.status().ToString();
  EXPECT_TRUE(pbtxt->response_cache.enabled);
  EXPECT_EQ(pbtxt->response_cache.ttl_seconds, 0);
  auto pbtxt_off = repository::ParseConfigPbtxt("max_batch_size: 2\n", "m");
  ASSERT_TRUE(pbtxt_off.ok());
  EXPECT_FALSE(pbtxt_off->response_cache.enabled);
  EXPECT_FALSE(repository::ParseConfigPbtxt("response_cache { enable: 3 }\n", "m").ok());

  auto json = repository::ParseConfigJson(R"({"response_cache": {"enable": true}})", "m");
  ASSERT_TRUE(json.ok()) << json.status().ToString();
  EXPECT_TRUE(json->response_cache.enabled);
  EXPECT_FALSE(repository::ParseConfigJson(R"({"response_cache": {"enabled": true}})", "m").ok());
  EXPECT_FALSE(repository::ParseConfigJson(R"({"response_cache": {"enable": 3}})", "m").ok());
  EXPECT_FALSE(repository::ParseConfigJson(R"({"response_cache": true})", "m").ok());
}

// ---- Redis tier ----------------------------------------------------------------------------

std::string FindRedisServer() {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/usr/local/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    const size_t end = std::min(dirs.find(':', start), dirs.size());
    const std::string candidate = dirs.substr(start, end - start) + "/redis-server";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// One redis-server process on a loopback port, killed by the destructor.
class RedisProcess {
 public:
  bool Start(const std::string& binary) {
    port_ = FreePort();
    if (port_ == 0) return false;
    const std::string port = std::to_string(port_);
    std::vector<std::string> args = {binary, "--port", port, "--bind", "127.0.0.1",
                                     "--save", "", "--appendonly", "no", "--dir", "/tmp",
                                     "--loglevel", "warning", "--daemonize", "no"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    const int rc = posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      pid_ = 0;
      return false;
    }
    for (int i = 0; i < 500; ++i) {  // up to 5 s for it to accept commands
      redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, {0, 100000});
      if (c != nullptr && c->err == 0) {
        auto* reply = static_cast<redisReply*>(redisCommand(c, "PING"));
        const bool ok = reply != nullptr && reply->type == REDIS_REPLY_STATUS;
        if (reply != nullptr) freeReplyObject(reply);
        redisFree(c);
        if (ok) return true;
      } else if (c != nullptr) {
        redisFree(c);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  void Kill() {
    if (pid_ == 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }
  ~RedisProcess() { Kill(); }
  int port() const { return port_; }

  // Runs one command with binary-safe arguments; returns the reply's string or integer text.
  std::string Command(const std::vector<std::string>& args) {
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, {1, 0});
    if (c == nullptr || c->err != 0) {
      if (c != nullptr) redisFree(c);
      return "<no connection>";
    }
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data()));
    std::string out = "<nil>";
    if (reply != nullptr) {
      if (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS ||
          reply->type == REDIS_REPLY_ERROR) {
        out.assign(reply->str, reply->len);
      } else if (reply->type == REDIS_REPLY_INTEGER) {
        out = std::to_string(reply->integer);
      }
      freeReplyObject(reply);
    }
    redisFree(c);
    return out;
  }

 private:
  pid_t pid_ = 0;
  int port_ = 0;
};

TEST(RedisTierTest, CreateChecksOptions) {
  RedisTier::Options o;
  o.port = 0;
  EXPECT_FALSE(RedisTier::Create(o).ok());
  o.port = 6379;
  o.command_timeout = std::chrono::milliseconds(0);
  EXPECT_FALSE(RedisTier::Create(o).ok());
}

TEST(RedisTierTest, DownTierMissesAtOnce) {
  RedisTier::Options o;
  o.port = FreePort();  // nothing listens there
  auto tier = RedisTier::Create(o);
  ASSERT_TRUE(tier.ok());
  bool error = false;
  EXPECT_FALSE((*tier)->Get("k", &error).has_value());
  EXPECT_TRUE(error);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i) EXPECT_FALSE((*tier)->Get("k", &error).has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
  (*tier)->Set("k", "v", 0);
  (*tier)->Flush();
  EXPECT_EQ((*tier)->Stats().errors, 102u);
  EXPECT_EQ((*tier)->Stats().connects, 0u);
}

class ResponseCacheRedisTest : public ResponseCacheTest {
 protected:
  void SetUp() override {
    ResponseCacheTest::SetUp();
    const std::string binary = FindRedisServer();
    if (binary.empty()) GTEST_SKIP() << "redis-server is not installed";
    ASSERT_TRUE(redis_.Start(binary)) << "redis-server did not start";
    RedisTier::Options o;
    o.port = redis_.port();
    o.connect_timeout = std::chrono::milliseconds(200);  // generous under sanitizers
    o.command_timeout = std::chrono::milliseconds(200);
    auto tier = RedisTier::Create(o);
    ASSERT_TRUE(tier.ok());
    tier_ = std::move(tier).value();
    second_inner_.AddModel("m", true);
    second_inner_.AddModel("short", true, 30);
  }

  RedisProcess redis_;
  std::unique_ptr<RedisTier> tier_;
  FakeService second_inner_;
};

TEST_F(ResponseCacheRedisTest, ReplicasShareAnswers) {
  auto a = Make(1 << 20, tier_.get());
  auto b = Make(1 << 20, tier_.get(), &second_inner_);
  auto first = Ask(*a, Request());
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(IsHit(*first));
  a->Flush();
  const std::string key = "slipway:v1:" + *ResponseCache::CacheKey(Request());
  EXPECT_EQ(redis_.Command({"EXISTS", key}), "1");
  EXPECT_EQ(redis_.Command({"PTTL", key}), "-1");  // no TTL configured

  InferRequest other = Request();
  other.id = "on-b";
  auto shared = Ask(*b, std::move(other));
  ASSERT_TRUE(shared.ok());
  EXPECT_EQ(second_inner_.executions(), 0);
  EXPECT_TRUE(IsHit(*shared));
  EXPECT_EQ(shared->id, "on-b");
  EXPECT_EQ(shared->model_version, 1);
  ASSERT_EQ(shared->outputs.size(), first->outputs.size());
  for (size_t i = 0; i < first->outputs.size(); ++i) {
    EXPECT_EQ(shared->outputs[i].name(), first->outputs[i].name());
    EXPECT_EQ(shared->outputs[i].shape(), first->outputs[i].shape());
    EXPECT_EQ(shared->outputs[i].bytes(), first->outputs[i].bytes());
  }
  CacheStats sb = b->ModelStats("m");
  EXPECT_EQ(sb.shared_hits, 1u);
  EXPECT_EQ(sb.hits, 1u);
  EXPECT_EQ(sb.entries, 1u);  // kept locally too
  // The second time it is a local hit: Redis is not asked again.
  const uint64_t gets = tier_->Stats().gets;
  auto local = Ask(*b, Request());
  ASSERT_TRUE(local.ok());
  EXPECT_TRUE(IsHit(*local));
  EXPECT_EQ(tier_->Stats().gets, gets);
  EXPECT_EQ(b->Stats().shared_hits, 1u);

  // A TTL travels to Redis.
  ASSERT_TRUE(Ask(*a, Request("short")).ok());
  a->Flush();
  const std::string short_key = "slipway:v1:" + *ResponseCache::CacheKey(Request("short"));
  const int pttl = std::stoi(redis_.Command({"PTTL", short_key}));
  EXPECT_GT(pttl, 25000);
  EXPECT_LE(pttl, 30000);
}

TEST_F(ResponseCacheRedisTest, MalformedValuesAreMisses) {
  auto b = Make(1 << 20, tier_.get(), &second_inner_);
  const std::string key = "slipway:v1:" + *ResponseCache::CacheKey(Request());
  for (const std::string& junk :
       {std::string("garbage"), std::string(), std::string("\x01", 1),
        std::string("\x01", 1) + std::string(31, '\0') + std::string(200, '\xff')}) {
    b->DropModel("m");
    ASSERT_EQ(redis_.Command({"SET", key, junk}), "OK");
    const int before = second_inner_.executions();
    auto r = Ask(*b, Request());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_FALSE(IsHit(*r));
    EXPECT_EQ(second_inner_.executions(), before + 1);
    b->Flush();  // the computed answer replaces the junk
  }
  EXPECT_EQ(b->Stats().shared_errors, 4u);
  // A good value planted under another key is refused (the value names its own key).
  auto a = Make(1 << 20, tier_.get());
  auto from_shared = Ask(*a, Request());  // a new replica: answered from Redis
  ASSERT_TRUE(from_shared.ok());
  EXPECT_TRUE(IsHit(*from_shared));
  InferRequest moved = Request();
  moved.parameters["temperature"] = 0.9;
  const std::string moved_key = "slipway:v1:" + *ResponseCache::CacheKey(moved);
  ASSERT_EQ(redis_.Command({"SET", moved_key, redis_.Command({"GET", key})}), "OK");
  const int before = second_inner_.executions();
  auto r = Ask(*b, std::move(moved));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(IsHit(*r));
  EXPECT_EQ(second_inner_.executions(), before + 1);
  EXPECT_EQ(b->Stats().shared_errors, 5u);
}

TEST_F(ResponseCacheRedisTest, RedisGoingAwayOnlyCostsMisses) {
  auto a = Make(1 << 20, tier_.get());
  ASSERT_TRUE(Ask(*a, Request()).ok());
  a->Flush();
  EXPECT_EQ(tier_->Stats().sets, 1u);
  redis_.Kill();
  const uint64_t errors = a->Stats().shared_errors;
  for (int i = 0; i < 20; ++i) {
    InferRequest r = Request();
    r.parameters["temperature"] = 1.0 + i;
    const auto start = std::chrono::steady_clock::now();
    auto result = Ask(*a, std::move(r));
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_FALSE(IsHit(*result));
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  }
  a->Flush();
  EXPECT_EQ(a->Stats().shared_errors, errors + 20);
  EXPECT_EQ(inner_.executions(), 21);
  EXPECT_GE(tier_->Stats().errors, 20u);
  // Local answers still serve.
  auto local = Ask(*a, Request());
  ASSERT_TRUE(local.ok());
  EXPECT_TRUE(IsHit(*local));
}

}  // namespace
}  // namespace slipway::cache
