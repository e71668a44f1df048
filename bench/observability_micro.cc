// observability_micro: what each observability link costs a request by itself, in process, with
// an inner service that answers at once (no model, no sockets): the request path of the access
// log, drift detection and ground-truth tracking, against a request that passes straight through.
// Run with --benchmark_filter=... ; the threaded variants show contention between request threads.
//
//   build/bench/observability_micro
#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>
#include <chrono>
#include <random>
#include <thread>
#include <string>
#include <vector>

#include "slipway/monitoring/drift_monitor.h"
#include "slipway/monitoring/feedback_tracker.h"
#include "slipway/monitoring/request_log.h"
#include "support/fake_service.h"

namespace {

using namespace slipway;  // NOLINT(google-build-using-namespace): a benchmark program

constexpr int kFeatures = 30;  // as the tabular example: 30 inputs, a label and 2 scores out

// max_rows_per_second: drift detection's row budget (0: every row observed).
core::ModelConfig Config(const std::string& name, double max_rows_per_second) {
  core::ModelConfig c;
  c.name = name;
  c.max_batch_size = 64;
  core::TensorConfig x;
  x.name = "x";
  x.type = core::DataType::kFp32;
  x.dims = {kFeatures};
  c.inputs = {x};
  core::TensorConfig label;
  label.name = "label";
  label.type = core::DataType::kInt64;
  label.dims = {1};
  core::TensorConfig scores;
  scores.name = "scores";
  scores.type = core::DataType::kFp32;
  scores.dims = {2};
  c.outputs = {label, scores};
  auto& d = c.monitoring.drift;
  d.enabled = true;
  d.reference_rows = 2000;
  d.window_rows = 2000;
  d.max_rows_per_second = max_rows_per_second;
  c.monitoring.feedback.window = 1000;
  return c;
}

// Answers every request at once with fixed outputs.
class AnswerService : public testing_support::FakeService {
 public:
  AnswerService() {
    // "m": every row observed, so the drift rows below show what an observed row costs.
    // "over": a budget of one row a second, so nearly every request is left out.
    configs["m"] = Config("m", 0);
    configs["over"] = Config("over", 1);
  }
  void Infer(core::InferRequest request, core::InferCallback done) override {
    core::InferResponse r;
    r.model_name = request.model_name;
    r.model_version = 1;
    r.id = request.id;
    const int64_t label = 1;
    const float scores[2] = {0.25f, 0.75f};
    r.outputs.push_back(core::Tensor::Owned(
        "label", core::DataType::kInt64, {1, 1},
        std::string(reinterpret_cast<const char*>(&label), sizeof(label))));
    r.outputs.push_back(core::Tensor::Owned(
        "scores", core::DataType::kFp32, {1, 2},
        std::string(reinterpret_cast<const char*>(scores), sizeof(scores))));
    done(std::move(r));
  }
};

// One request's input: 30 floats, the body the frontend would have decoded.
const std::string& InputBytes() {
  static const std::string bytes = [] {
    std::string b;
    for (int i = 0; i < kFeatures; ++i) {
      const float v = 0.1f * static_cast<float>(i);
      b.append(reinterpret_cast<const char*>(&v), sizeof(v));
    }
    return b;
  }();
  return bytes;
}

// Varied inputs, as live traffic has: a pool of distinct random requests, cycled. Drift detection
// sorts what it sees, and a stream of one repeated value would sort for nothing.
const std::vector<std::string>& VariedInputs() {
  static const std::vector<std::string> pool = [] {
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<std::string> out(1 << 16);  // many windows before a value comes back
    for (auto& b : out) {
      for (int i = 0; i < kFeatures; ++i) {
        const float v = normal(rng) + 0.1f * static_cast<float>(i);
        b.append(reinterpret_cast<const char*>(&v), sizeof(v));
      }
    }
    return out;
  }();
  return pool;
}

void Send(serving::InferenceService& service, benchmark::State& state,
          const std::string& model = "m",
          const std::string& id = "0f8e2c1a-6b4d-4f7e-9a3b-5c2d1e0f9a8b") {
  for (auto _ : state) {
    core::InferRequest request;
    request.model_name = model;
    request.id = id;
    request.inputs.push_back(
        core::Tensor::Borrowed("x", core::DataType::kFp32, {1, kFeatures}, InputBytes()));
    service.Infer(std::move(request), [&state](core::Result<core::InferResponse> r) {
      if (!r.ok()) state.SkipWithError("the request failed");
      benchmark::DoNotOptimize(r);
    });
  }
}

AnswerService& Answers() {
  static AnswerService service;
  return service;
}

std::unique_ptr<monitoring::RequestLogger> AccessLogger(serving::InferenceService* inner) {
  monitoring::RequestLogger::Options o;
  o.inner = inner;
  o.access_log = "/dev/null";
  return monitoring::RequestLogger::Create(o).value();
}

std::unique_ptr<monitoring::DriftMonitor> Drift(serving::InferenceService* inner) {
  monitoring::DriftMonitor::Options o;
  o.inner = inner;
  return monitoring::DriftMonitor::Create(o).value();
}

void BM_PassThrough(benchmark::State& state) { Send(Answers(), state); }

void BM_AccessLog(benchmark::State& state) {
  static auto logger = AccessLogger(&Answers());
  Send(*logger, state);
}

// One repeated request, unpaced: what the request path costs. The worker may fall behind the
// sender here and drop observations (counted), so its share is understated; see the paced
// variant below for the whole cost.
void BM_Drift(benchmark::State& state) {
  static auto drift = Drift(&Answers());
  Send(*drift, state);
  state.counters["dropped"] = static_cast<double>(drift->dropped());
}

// Drift on varied inputs, paced so the worker keeps up: after each window's worth of requests
// the sender waits (asleep) until that window has been judged. So the figure holds the worker's
// whole cost per request (queueing, sorting, the tests) and nothing is dropped, which the
// unpaced variants above cannot promise: there the sender outruns the worker and the queue
// drops what does not fit. Process CPU is the figure; wall time includes the waits.
void BM_DriftVariedPaced(benchmark::State& state) {
  static auto drift = Drift(&Answers());
  constexpr size_t kWindow = 2000;  // the reference's and each window's rows (Config)
  static size_t sent = 0;           // across the benchmark's runs, as the monitor's state is
  const auto& pool = VariedInputs();
  for (auto _ : state) {
    core::InferRequest request;
    request.model_name = "m";
    request.id = "0f8e2c1a-6b4d-4f7e-9a3b-5c2d1e0f9a8b";
    request.inputs.push_back(core::Tensor::Borrowed("x", core::DataType::kFp32, {1, kFeatures},
                                                    pool[sent % pool.size()]));
    drift->Infer(std::move(request), [&state](core::Result<core::InferResponse> r) {
      if (!r.ok()) state.SkipWithError("the request failed");
      benchmark::DoNotOptimize(r);
    });
    if (++sent % kWindow == 0 && sent > kWindow) {
      const uint64_t judged = sent / kWindow - 1;  // the first rows are the reference
      for (;;) {
        auto report = drift->Drift("m");
        if (report.ok() && report->windows >= judged) break;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
  }
  state.counters["dropped"] = static_cast<double>(drift->dropped());
}

// A model over its drift row budget: what a request that drift detection leaves out costs (the
// budget's one atomic read and the count of rows left out).
void BM_DriftOverBudget(benchmark::State& state) {
  static auto drift = Drift(&Answers());
  Send(*drift, state, "over");
}

void BM_AccessLogAndDrift(benchmark::State& state) {
  static auto drift = Drift(&Answers());
  static auto logger = AccessLogger(drift.get());
  Send(*logger, state);
  state.counters["dropped"] = static_cast<double>(drift->dropped());
}

void BM_Feedback(benchmark::State& state) {
  monitoring::FeedbackTracker::Options o;
  o.inner = &Answers();
  static auto tracker = monitoring::FeedbackTracker::Create(o).value();
  Send(*tracker, state);
}

// As in the server: requests come without an id, the tracker gives each a new one, and every
// answer takes a slot of the ring of remembered answers (100000 by default), as live traffic
// does. (BM_Feedback's fixed id keeps replacing one entry.)
void BM_FeedbackNewIds(benchmark::State& state) {
  monitoring::FeedbackTracker::Options o;
  o.inner = &Answers();
  static auto tracker = monitoring::FeedbackTracker::Create(o).value();
  Send(*tracker, state, "m", /*id=*/"");
}

}  // namespace

BENCHMARK(BM_PassThrough)->ThreadRange(1, 2)->MeasureProcessCPUTime()->UseRealTime();
BENCHMARK(BM_AccessLog)->ThreadRange(1, 2)->MeasureProcessCPUTime()->UseRealTime();
BENCHMARK(BM_Drift)->ThreadRange(1, 2)->MeasureProcessCPUTime()->UseRealTime();
BENCHMARK(BM_DriftVariedPaced)->MeasureProcessCPUTime()->UseRealTime();
BENCHMARK(BM_DriftOverBudget)->ThreadRange(1, 2)->MeasureProcessCPUTime()->UseRealTime();
BENCHMARK(BM_AccessLogAndDrift)->ThreadRange(1, 2)->MeasureProcessCPUTime()->UseRealTime();
BENCHMARK(BM_Feedback)->ThreadRange(1, 2)->MeasureProcessCPUTime()->UseRealTime();
BENCHMARK(BM_FeedbackNewIds)->ThreadRange(1, 2)->MeasureProcessCPUTime()->UseRealTime();
BENCHMARK_MAIN();
