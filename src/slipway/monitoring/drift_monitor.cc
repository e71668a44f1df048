#include "slipway/monitoring/drift_monitor.h"

#include <fmt/format.h>
#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <random>
#include <fstream>
#include <set>
#include <sstream>

#include "slipway/core/thread_name.h"
#include "slipway/monitoring/drift_stats.h"

namespace slipway::monitoring {

using core::Result;
using core::Status;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kPsiBins = 10;
constexpr size_t kWakeBatch = 256;      // queued observations that wake the worker early
constexpr int kWorkerTickMs = 50;      // otherwise the worker looks this often

bool Numeric(core::DataType t) {
  using core::DataType;
  return t != DataType::kBytes && t != DataType::kFp16 && t != DataType::kBf16 &&
         t != DataType::kInvalid;
}

bool Discrete(core::DataType t) {
  return t != core::DataType::kFp32 && t != core::DataType::kFp64;
}

// Calls f(T{}) with the C++ type of a numeric tensor type; false for the others.
template <typename F>
bool WithNumericType(core::DataType type, F&& f) {
  using core::DataType;
  switch (type) {
    case DataType::kBool: f(uint8_t{}); return true;
    case DataType::kInt8: f(int8_t{}); return true;
    case DataType::kInt16: f(int16_t{}); return true;
    case DataType::kInt32: f(int32_t{}); return true;
    case DataType::kInt64: f(int64_t{}); return true;
    case DataType::kUint8: f(uint8_t{}); return true;
    case DataType::kUint16: f(uint16_t{}); return true;
    case DataType::kUint32: f(uint32_t{}); return true;
    case DataType::kUint64: f(uint64_t{}); return true;
    case DataType::kFp32: f(float{}); return true;
    case DataType::kFp64: f(double{}); return true;
    default: return false;
  }
}

// Element `index` of a numeric tensor as a double; NaN past its end or for other types.
template <typename T>
double ElementAt(std::string_view bytes, size_t index) {
  if ((index + 1) * sizeof(T) > bytes.size()) return std::nan("");
  T v;
  std::memcpy(&v, bytes.data() + index * sizeof(T), sizeof(T));
  return static_cast<double>(v);
}

double ValueAt(const core::Tensor& t, size_t index) {
  double out = std::nan("");
  WithNumericType(t.type(), [&](auto type) { out = ElementAt<decltype(type)>(t.bytes(), index); });
  return out;
}

void AppendAs(core::DataType t, double v, std::string& out) {
  using core::DataType;
  auto put = [&out](auto x) { out.append(reinterpret_cast<const char*>(&x), sizeof(x)); };
  switch (t) {
    case DataType::kBool: put(static_cast<uint8_t>(v != 0)); break;
    case DataType::kInt8: put(static_cast<int8_t>(v)); break;
    case DataType::kInt16: put(static_cast<int16_t>(v)); break;
    case DataType::kInt32: put(static_cast<int32_t>(v)); break;
    case DataType::kInt64: put(static_cast<int64_t>(v)); break;
    case DataType::kUint8: put(static_cast<uint8_t>(v)); break;
    case DataType::kUint16: put(static_cast<uint16_t>(v)); break;
    case DataType::kUint32: put(static_cast<uint32_t>(v)); break;
    case DataType::kUint64: put(static_cast<uint64_t>(v)); break;
    case DataType::kFp32: put(static_cast<float>(v)); break;
    default: put(v); break;
  }
}

int64_t RowElements(const core::TensorConfig& t) {
  int64_t n = 1;
  for (int64_t d : t.dims) {
    if (d < 0) return -1;
    n *= d;
  }
  return n;
}

void Flatten(simdjson::dom::element e, std::vector<double>* out) {
  simdjson::dom::array a;
  double d = 0;
  bool b = false;
  if (e.get_array().get(a) == simdjson::SUCCESS) {
    for (auto x : a) Flatten(x, out);
  } else if (e.get_double().get(d) == simdjson::SUCCESS) {
    out->push_back(d);
  } else if (e.get_bool().get(b) == simdjson::SUCCESS) {
    out->push_back(b ? 1 : 0);
  } else {
    out->push_back(std::nan(""));
  }
}

}  // namespace

std::vector<DriftMonitor::Feature> DriftFeatures(const core::ModelConfig& config) {
  std::vector<DriftMonitor::Feature> out;
  const auto& d = config.monitoring.drift;
  const std::set<std::string> categorical(d.categorical.begin(), d.categorical.end());
  auto add = [&](const std::vector<core::TensorConfig>& tensors, bool output) {
    for (const auto& t : tensors) {
      const int64_t n = RowElements(t);
      if (!Numeric(t.type) || n < 1) continue;
      for (int64_t i = 0; i < std::min(n, d.max_features_per_tensor); ++i) {
        DriftMonitor::Feature f;
        f.name = t.name + "[" + std::to_string(i) + "]";
        f.tensor = t.name;
        f.output = output;
        f.element = static_cast<size_t>(i);
        f.categorical = Discrete(t.type) || categorical.count(f.name) || categorical.count(t.name);
        out.push_back(std::move(f));
      }
    }
  };
  add(config.inputs, false);
  if (d.outputs) add(config.outputs, true);
  return out;
}

struct DriftMonitor::State {
  core::ModelConfig config;
  std::vector<Feature> features;
  std::vector<std::vector<double>> reference;  // per feature
  bool reference_ready = false;
  // The window's values per feature (column-major: a test reads one feature's values together).
  std::vector<std::vector<double>> window;
  uint64_t window_rows = 0;
  // Rows per version in the window: a version or two, so a short list searched from the end.
  std::vector<std::pair<int64_t, uint64_t>> window_versions;
  std::vector<uint64_t> sort_scratch;  // SortNumbers' working memory, kept between judgements
  Clock::time_point window_start = Clock::now();
  uint64_t windows = 0;
  uint64_t drifting_windows = 0;
  // What every window is compared with, per feature, worked out once from the reference (which
  // no longer changes once ready): its numbers sorted, and for continuous features the PSI bin
  // edges and shares; empty until the first judgement.
  struct Prepared {
    std::vector<double> sorted;  // the reference without NaN, ascending
    std::vector<double> edges;   // PSI quantile edges (continuous features)
    std::vector<double> shares;  // the reference's share per PSI bin (continuous features)
    bool edges_ok = false;
  };
  std::vector<Prepared> prepared;
};

DriftMonitor::DriftMonitor(Options options)
    : ForwardingService(options.inner), options_(std::move(options)) {}

Result<std::unique_ptr<DriftMonitor>> DriftMonitor::Create(Options options) {
  if (options.inner == nullptr) return Status::InvalidArgument("DriftMonitor needs an inner service");
  auto monitor = std::unique_ptr<DriftMonitor>(new DriftMonitor(std::move(options)));
  monitor->worker_ = std::thread([m = monitor.get()] { m->WorkerLoop(); });
  return monitor;
}

DriftMonitor::~DriftMonitor() { Stop(); }

void DriftMonitor::Stop() {
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

bool DriftMonitor::SamePlan(const Plan& a, const Plan& b) {
  if (a.enabled != b.enabled || a.features != b.features) return false;
  if (!a.enabled) return true;
  const core::DriftConfig& x = a.config.monitoring.drift;
  const core::DriftConfig& y = b.config.monitoring.drift;
  const auto per_row = [](const Plan& p) {
    std::vector<int64_t> out;
    for (const TensorFeatures& g : p.tensors) out.push_back(g.per_row);
    return out;
  };
  return a.config.batch_size_limit() == b.config.batch_size_limit() &&
         a.config.directory == b.config.directory && per_row(a) == per_row(b) &&
         x.reference_file == y.reference_file && x.reference_rows == y.reference_rows &&
         x.window_rows == y.window_rows && x.window_seconds == y.window_seconds &&
         x.p_value == y.p_value && x.psi == y.psi && x.categorical == y.categorical &&
         x.max_features_per_tensor == y.max_features_per_tensor && x.outputs == y.outputs &&
         x.sample == y.sample && x.max_rows_per_second == y.max_rows_per_second;
}

size_t DriftMonitor::ThreadShard() { return core::ThisThreadShard(kShards); }

int64_t DriftMonitor::CoarseNowNs() {
  // A coarse clock (a few ms) is plenty to tell when a second has passed, and far cheaper.
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

const DriftMonitor::Plan* DriftMonitor::PlanFor(const std::string& model) {
  static const Plan kOff;  // for names that are not models
  const int64_t now = CoarseNowNs();
  constexpr int64_t kRecheckNs = 1000000000;  // a model's config is looked at again after 1 s
  const auto fresh = [now](const Plan* p) {
    return now - p->checked_ns.load(std::memory_order_relaxed) < kRecheckNs;
  };
  // Most requests on a thread are for the model the last one was for: no shared lookup then.
  thread_local uint64_t last_owner = 0;
  thread_local const Plan* last = nullptr;
  if (last_owner == instance_ && last != nullptr && last->model == model && fresh(last)) {
    return last;
  }
  {
    auto table = plans_.Load();
    auto it = table->find(model);
    if (it != table->end() && fresh(it->second)) {
      last_owner = instance_;
      last = it->second;
      return last;
    }
  }
  auto plan = std::make_unique<Plan>();
  plan->model = model;
  plan->checked_ns.store(now, std::memory_order_relaxed);
  auto config = inner_->GetModelConfig(model, 0);
  if (!config.ok()) return &kOff;  // unknown names are never kept: clients choose them
  if (config->monitoring.drift.enabled) {
    plan->enabled = true;
    plan->config = *config;
    plan->features = DriftFeatures(plan->config);
    for (size_t i = 0; i < plan->features.size(); ++i) {
      const Feature& f = plan->features[i];
      if (plan->tensors.empty() || plan->tensors.back().tensor != f.tensor ||
          plan->tensors.back().output != f.output) {
        TensorFeatures group;
        group.tensor = f.tensor;
        group.output = f.output;
        const core::TensorConfig* tc =
            f.output ? plan->config.FindOutput(f.tensor) : plan->config.FindInput(f.tensor);
        group.per_row = tc ? RowElements(*tc) : -1;
        plan->tensors.push_back(std::move(group));
      }
      plan->tensors.back().members.emplace_back(i, f.element);
    }
  }
  std::lock_guard<std::mutex> lock(plans_mu_);
  auto table = plans_.Load();
  auto it = table->find(model);
  if (it != table->end() && SamePlan(*it->second, *plan)) {
    it->second->checked_ns.store(now, std::memory_order_relaxed);
    last_owner = instance_;
    last = it->second;
    return last;
  }
  // A new plan (its settings changed): a fresh budget, the model's counts carried on.
  if (plan->enabled) {
    plan->budget = std::make_unique<RowBudget>(plan->config.monitoring.drift.max_rows_per_second);
    auto& skipped = skipped_[model];
    if (skipped == nullptr) skipped = std::make_unique<Skipped>();
    plan->skipped = skipped.get();
  }
  auto next = std::make_shared<std::map<std::string, const Plan*>>(*table);
  (*next)[model] = plan.get();
  plans_.Store(std::move(next));
  kept_.push_back(std::move(plan));
  last_owner = instance_;
  last = kept_.back().get();
  return last;
}

void DriftMonitor::Infer(core::InferRequest request, core::InferCallback done) {
  const Plan* plan = PlanFor(request.model_name);
  if (!plan->enabled || plan->features.empty()) {
    return inner_->Infer(std::move(request), std::move(done));
  }
  int64_t batch_rows = 1;
  if (plan->config.batch_size_limit() > 0 && !request.inputs.empty() &&
      !request.inputs.front().shape().empty()) {
    batch_rows = request.inputs.front().shape()[0];
  }
  const auto rows = static_cast<size_t>(std::max<int64_t>(batch_rows, 0));
  // The random sample first, then the budget: the budget is spent only on sampled rows.
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const double sample = plan->config.monitoring.drift.sample;
  if (sample < 1 && std::uniform_real_distribution<double>(0, 1)(rng) >= sample) {
    (*plan->skipped)[ThreadShard()].by_sample.fetch_add(rows, std::memory_order_relaxed);
    return inner_->Infer(std::move(request), std::move(done));
  }
  if (!plan->budget->Admit(rows, CoarseNowNs())) {
    (*plan->skipped)[ThreadShard()].by_rate.fetch_add(rows, std::memory_order_relaxed);
    return inner_->Infer(std::move(request), std::move(done));
  }
  // Inputs borrowed from the frontend's buffer stay valid until the answer is passed on, so
  // their features are read then, with the outputs': nothing is copied now or carried with the
  // request but a view per tensor. The values are queued after the answer has been passed on,
  // so the caller's response does not wait for the queue.
  InputViews views;
  if (BorrowedInputs(*plan, request.inputs, views)) {
    inner_->Infer(std::move(request), [this, plan, rows, views, done = std::move(done)](
                                          Result<core::InferResponse> result) mutable {
      if (!result.ok()) return done(std::move(result));
      const size_t n = rows * plan->features.size();
      Values values(n, std::nan(""));
      ObserveViews(*plan, views, rows, values.data());
      Observe(*plan, true, result->outputs, rows, values.data());
      const int64_t version = result->model_version;
      done(std::move(result));
      Push(*plan, version, rows,
           [&](double* out) { std::memcpy(out, values.data(), n * sizeof(double)); });
    });
    return;
  }
  // Inputs the request owns may be gone when the answer comes: their features are read now.
  Values values(rows * plan->features.size(), std::nan(""));
  Observe(*plan, false, request.inputs, rows, values.data());
  inner_->Infer(std::move(request), [this, plan, rows, values = std::move(values),
                                     done = std::move(done)](
                                        Result<core::InferResponse> result) mutable {
    if (!result.ok()) return done(std::move(result));
    Observe(*plan, true, result->outputs, rows, values.data());
    const int64_t version = result->model_version;
    done(std::move(result));
    Push(*plan, version, rows, [&](double* out) {
      std::memcpy(out, values.data(), rows * plan->features.size() * sizeof(double));
    });
  });
}

template <typename Fill>
void DriftMonitor::Push(const Plan& plan, int64_t version, size_t rows, Fill&& fill) {
  // Each thread keeps to one queue, so request threads do not contend for a lock.
  Shard& q = shards_[ThreadShard()];
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(q.mu);
    if (q.items.size() >= options_.max_queue) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    q.items.push_back({&plan, version, rows});
    const size_t at = q.values.size();
    q.values.resize(at + rows * plan.features.size(), std::nan(""));
    fill(q.values.data() + at);
    // The worker looks every kWorkerTickMs anyway; waking it per observation would cost a
    // context switch per observed request, so it is woken only when a batch has gathered.
    wake = q.items.size() == kWakeBatch;
  }
  if (wake) {
    wake_.store(true, std::memory_order_relaxed);
    queue_cv_.notify_one();
  }
}

namespace {

// Reads the features of group `g` from a tensor's bytes into `values` (rows x n, row-major).
template <typename Group>
void ObserveGroup(const Group& g, size_t n, std::string_view bytes, core::DataType type,
                  size_t rows, double* values) {
  if (g.per_row <= 0) return;  // stays NaN
  const auto per_row = static_cast<size_t>(g.per_row);
  // The element type is looked at once per tensor, not per value.
  WithNumericType(type, [&](auto t) {
    using T = decltype(t);
    for (size_t r = 0; r < rows; ++r) {
      double* row = values + r * n;
      for (const auto& [feature, element] : g.members) {
        row[feature] = ElementAt<T>(bytes, r * per_row + element);
      }
    }
  });
}

}  // namespace

bool DriftMonitor::BorrowedInputs(const Plan& plan, const std::vector<core::Tensor>& tensors,
                                  InputViews& views) {
  size_t k = 0;
  for (const TensorFeatures& g : plan.tensors) {
    if (g.output) continue;
    if (k == views.size()) return false;
    TensorView& v = views[k++];
    for (const auto& t : tensors) {
      if (t.name() != g.tensor) continue;
      if (t.is_owned()) return false;
      v.bytes = t.bytes();
      v.type = t.type();
    }
  }
  return true;
}

void DriftMonitor::ObserveViews(const Plan& plan, const InputViews& views, size_t rows,
                                double* values) {
  size_t k = 0;
  for (const TensorFeatures& g : plan.tensors) {
    if (g.output) continue;
    const TensorView& v = views[k++];
    ObserveGroup(g, plan.features.size(), v.bytes, v.type, rows, values);
  }
}

void DriftMonitor::Observe(const Plan& plan, bool outputs, const std::vector<core::Tensor>& tensors,
                           size_t rows, double* values) {
  for (const TensorFeatures& g : plan.tensors) {
    if (g.output != outputs) continue;
    const core::Tensor* t = nullptr;
    for (const auto& x : tensors) {
      if (x.name() == g.tensor) t = &x;
    }
    if (t != nullptr) ObserveGroup(g, plan.features.size(), t->bytes(), t->type(), rows, values);
  }
}

void DriftMonitor::WorkerLoop() {
  core::NameThisThread("slipway-drift");
  core::LowerThisThreadPriority();
  std::vector<Pending> items;
  std::vector<double> values;
  std::unique_lock<std::mutex> lock(queue_mu_);
  while (true) {
    queue_cv_.wait_for(lock, std::chrono::milliseconds(kWorkerTickMs),
                       [this] { return stopping_ || wake_.load(std::memory_order_relaxed); });
    if (stopping_) break;
    wake_.store(false, std::memory_order_relaxed);
    lock.unlock();
    bool any = false;
    for (Shard& q : shards_) {
      {
        // Swapped, not copied: the queue gets back the buffers the worker emptied last time.
        std::lock_guard<std::mutex> shard_lock(q.mu);
        items.swap(q.items);
        values.swap(q.values);
      }
      size_t at = 0;
      const Plan* made_under = nullptr;  // the plan the observations before were made under...
      const Plan* current = nullptr;     // ...that model's plan now...
      State* state = nullptr;            // ...and its state (none while it is switched off)
      for (const Pending& obs : items) {
        if (obs.plan != made_under) {
          made_under = obs.plan;
          current = PlanFor(obs.plan->model);
          state = StateFor(*current);
        }
        if (state != nullptr) Process(obs, *current, *state, values.data() + at);
        at += obs.rows * obs.plan->features.size();
      }
      any = any || !items.empty();
      items.clear();
      values.clear();
    }
    // The reports' progress figures, once per batch rather than per observation.
    if (any) {
      std::lock_guard<std::mutex> reports_lock(reports_mu_);
      for (const auto& [model, state] : states_) {
        if (state == nullptr) continue;
        auto& report = reports_[model];
        report.model = model;
        report.reference_rows = state->reference.empty() ? 0 : state->reference.front().size();
        report.reference_ready = state->reference_ready;
        report.window_rows = state->window_rows;
      }
    }
    // Time windows close even when traffic stops.
    for (auto& [model, state] : states_) {
      if (state == nullptr) continue;
      const double window_s = state->config.monitoring.drift.window_seconds;
      if (state->reference_ready && window_s > 0 && state->window_rows >= 10 &&
          Clock::now() - state->window_start >= std::chrono::duration<double>(window_s)) {
        Judge(model, *state);
      }
    }
    lock.lock();
  }
}

Status DriftMonitor::LoadReference(const std::string& model, State& state) {
  const auto& d = state.config.monitoring.drift;
  const auto path = std::filesystem::path(state.config.directory) / d.reference_file;
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot read the drift reference '" + path.string() + "'");
  std::string line;
  size_t number = 0;
  state.reference.assign(state.features.size(), {});
  const bool csv = path.extension() == ".csv";
  std::vector<int> column_of;  // feature -> CSV column
  simdjson::dom::parser parser;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (csv) {
      std::vector<std::string> cells;
      std::stringstream ss(line);
      std::string cell;
      while (std::getline(ss, cell, ',')) cells.push_back(cell);
      if (column_of.empty()) {
        for (const Feature& f : state.features) {
          auto it = std::find(cells.begin(), cells.end(), f.name);
          column_of.push_back(it == cells.end() ? -1 : static_cast<int>(it - cells.begin()));
        }
        continue;
      }
      for (size_t i = 0; i < state.features.size(); ++i) {
        if (column_of[i] < 0 || static_cast<size_t>(column_of[i]) >= cells.size()) continue;
        state.reference[i].push_back(std::strtod(cells[static_cast<size_t>(column_of[i])].c_str(), nullptr));
      }
      continue;
    }
    simdjson::dom::element doc;
    simdjson::dom::object inputs;
    if (parser.parse(line).get(doc) != simdjson::SUCCESS ||
        doc["inputs"].get_object().get(inputs) != simdjson::SUCCESS) {
      return Status::InvalidArgument(fmt::format("drift reference '{}' line {}: expected "
                                                 "{{\"inputs\": {{...}}}}", path.string(), number));
    }
    core::InferRequest request;
    request.model_name = model;
    std::map<std::string, std::vector<double>> values;
    for (const auto& tc : state.config.inputs) {
      simdjson::dom::element e;
      if (inputs[tc.name].get(e) != simdjson::SUCCESS) {
        return Status::InvalidArgument(fmt::format("drift reference '{}' line {}: missing input "
                                                   "'{}'", path.string(), number, tc.name));
      }
      auto& v = values[tc.name];
      Flatten(e, &v);
      core::Shape shape;
      if (state.config.batch_size_limit() > 0) shape.push_back(1);
      for (int64_t dim : tc.dims) shape.push_back(dim < 0 ? static_cast<int64_t>(v.size()) : dim);
      std::string bytes;
      for (double x : v) AppendAs(tc.type, x, bytes);
      request.inputs.push_back(core::Tensor::Owned(tc.name, tc.type, shape, std::move(bytes)));
    }
    bool need_outputs = false;
    for (const Feature& f : state.features) need_outputs = need_outputs || f.output;
    std::vector<core::Tensor> outputs;
    if (need_outputs) {
      auto answer = serving::InferAndWait(*inner_, std::move(request));
      if (!answer.ok()) {
        return Status::InvalidArgument(fmt::format("drift reference '{}' line {}: the model "
                                                   "refused it: {}", path.string(), number,
                                                   answer.status().message()));
      }
      outputs = std::move(answer->outputs);
    }
    for (size_t i = 0; i < state.features.size(); ++i) {
      const Feature& f = state.features[i];
      if (f.output) {
        for (const auto& t : outputs) {
          if (t.name() == f.tensor) state.reference[i].push_back(ValueAt(t, f.element));
        }
      } else if (f.element < values[f.tensor].size()) {
        state.reference[i].push_back(values[f.tensor][f.element]);
      }
    }
  }
  return Status::Ok();
}

DriftMonitor::State* DriftMonitor::StateFor(const Plan& plan) {
  if (!plan.enabled) return nullptr;
  auto& slot = states_[plan.model];
  if (slot == nullptr || slot->features.size() != plan.features.size()) {
    slot = std::make_unique<State>();
    slot->config = plan.config;
    slot->features = plan.features;
    if (!slot->config.monitoring.drift.reference_file.empty()) {
      if (auto st = LoadReference(plan.model, *slot); !st.ok()) {
        spdlog::error("model '{}': drift detection is off: {}", plan.model, st.message());
        slot->reference.assign(slot->features.size(), {});
      } else {
        slot->reference_ready = true;
        spdlog::info("model '{}': drift reference of {} rows loaded", plan.model,
                     slot->reference.empty() ? 0 : slot->reference.front().size());
      }
    } else {
      slot->reference.assign(slot->features.size(), {});
    }
  }
  return slot.get();
}

// `current`: the model's plan now, which an observation made under an older one may no longer
// match.
void DriftMonitor::Process(const Pending& obs, const Plan& current, State& state,
                           const double* values) {
  const auto& d = state.config.monitoring.drift;
  const size_t n = state.features.size();
  if (obs.plan != &current && obs.plan->features != state.features) return;  // changed under it
  for (size_t r = 0; r < obs.rows; ++r) {
    const double* row = values + r * n;
    if (!state.reference_ready) {
      if (!d.reference_file.empty()) return;  // the reference file failed; nothing to compare
      for (size_t i = 0; i < n; ++i) state.reference[i].push_back(row[i]);
      if (static_cast<int64_t>(state.reference.front().size()) >= d.reference_rows) {
        state.reference_ready = true;
        state.window_start = Clock::now();
        spdlog::info("model '{}': drift reference taken from the first {} rows", current.model,
                     d.reference_rows);
      }
      continue;
    }
    if (state.window.size() != n) state.window.assign(n, {});
    for (size_t i = 0; i < n; ++i) state.window[i].push_back(row[i]);
    ++state.window_rows;
    auto& versions = state.window_versions;
    if (versions.empty() || versions.back().first != obs.version) {
      auto it = std::find_if(versions.begin(), versions.end(),
                             [&obs](const auto& v) { return v.first == obs.version; });
      if (it == versions.end()) {
        versions.emplace_back(obs.version, 0);
      } else {
        std::iter_swap(it, versions.end() - 1);
      }
    }
    ++versions.back().second;
    if (static_cast<int64_t>(state.window_rows) >= d.window_rows) Judge(current.model, state);
  }
}

void DriftMonitor::Judge(const std::string& model, State& state) {
  const auto& d = state.config.monitoring.drift;
  serving::DriftReport report;
  report.model = model;
  uint64_t most = 0;
  for (const auto& [v, n] : state.window_versions) {
    if (n > most) {
      most = n;
      report.version = v;
    }
  }
  const double alpha = d.p_value / static_cast<double>(std::max<size_t>(1, state.features.size()));
  if (state.prepared.size() != state.features.size()) {
    state.prepared.assign(state.features.size(), {});
    for (size_t i = 0; i < state.features.size(); ++i) {
      State::Prepared& p = state.prepared[i];
      for (double x : state.reference[i]) if (!std::isnan(x)) p.sorted.push_back(x);
      SortNumbers(p.sorted, state.sort_scratch);
      if (state.features[i].categorical || p.sorted.size() < 2) continue;
      auto edges = QuantileEdges(p.sorted, kPsiBins);
      if (!edges.ok()) continue;
      auto rc = BinCounts(p.sorted, *edges);
      if (!rc.ok()) continue;
      p.edges = std::move(edges).value();
      p.shares = CountShares(*rc);
      p.edges_ok = true;
    }
  }
  for (size_t i = 0; i < state.features.size() && i < state.window.size(); ++i) {
    const Feature& f = state.features[i];
    const State::Prepared& prepared = state.prepared[i];
    const std::vector<double>& ref = prepared.sorted;
    // The window's column is sorted in place (it is emptied after the judgement anyway).
    std::vector<double>& live = state.window[i];
    live.erase(std::remove_if(live.begin(), live.end(), [](double x) { return std::isnan(x); }),
               live.end());
    if (ref.size() < 2 || live.size() < 2) continue;
    SortNumbers(live, state.sort_scratch);
    serving::FeatureDrift fd;
    fd.name = f.name;
    fd.output = f.output;
    std::vector<double> ref_share, live_share;
    if (f.categorical) {
      // Both samples are sorted: the categories are their distinct values, merged in order.
      std::vector<uint64_t> rc, lc;
      size_t a = 0, b = 0;
      while (a < ref.size() || b < live.size()) {
        const double v = (b == live.size() || (a < ref.size() && ref[a] <= live[b])) ? ref[a] : live[b];
        uint64_t in_ref = 0, in_live = 0;
        while (a < ref.size() && ref[a] == v) ++a, ++in_ref;
        while (b < live.size() && live[b] == v) ++b, ++in_live;
        rc.push_back(in_ref);
        lc.push_back(in_live);
      }
      auto chi = ChiSquaredHomogeneity(rc, lc);
      if (!chi.ok()) continue;
      fd.test = "chi2";
      fd.statistic = chi->statistic;
      fd.p_value = chi->p_value;
      ref_share = CountShares(rc);
      live_share = CountShares(lc);
    } else {
      auto ks = KolmogorovSmirnov2Sorted(ref, live);
      if (!ks.ok()) continue;
      fd.test = "ks";
      fd.statistic = ks->statistic;
      fd.p_value = ks->p_value;
      if (prepared.edges_ok) {
        // `live` is sorted (and holds no NaN): one pass along it and the edges counts its bins.
        std::vector<uint64_t> lc(prepared.edges.size() + 1, 0);
        size_t bin = 0;
        for (double x : live) {
          while (bin < prepared.edges.size() && prepared.edges[bin] < x) ++bin;
          ++lc[bin];
        }
        ref_share = prepared.shares;
        live_share = CountShares(lc);
      }
    }
    if (!ref_share.empty()) {
      auto psi = PopulationStabilityIndex(ref_share, live_share);
      if (psi.ok()) fd.psi = *psi;
    }
    fd.drift = fd.p_value < alpha || fd.psi > d.psi;
    report.drifting = report.drifting || fd.drift;
    report.features.push_back(std::move(fd));
  }
  ++state.windows;
  if (report.drifting) ++state.drifting_windows;
  report.windows = state.windows;
  report.drifting_windows = state.drifting_windows;
  report.reference_rows = state.reference.empty() ? 0 : state.reference.front().size();
  report.reference_ready = true;
  report.judged_at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  for (auto& column : state.window) column.clear();
  state.window_rows = 0;
  state.window_versions.clear();
  state.window_start = Clock::now();
  {
    std::lock_guard<std::mutex> lock(reports_mu_);
    reports_[model] = report;
  }
  if (report.drifting && options_.on_drift) options_.on_drift(report, state.config);
}

Result<serving::DriftReport> DriftMonitor::Drift(const std::string& model) const {
  serving::DriftReport report;
  bool found = false;
  {
    std::lock_guard<std::mutex> lock(reports_mu_);
    auto it = reports_.find(model);
    if (it != reports_.end()) {
      report = it->second;
      found = true;
    }
  }
  if (!found) {
    auto config = inner_->GetModelConfig(model, 0);
    if (!config.ok()) return config.status();
    if (!config->monitoring.drift.enabled) {
      return Status::NotFound("model '" + model + "' has no drift detection; add `monitoring: "
                              "{drift: ...}` to its config");
    }
    report.model = model;
  }
  std::lock_guard<std::mutex> lock(plans_mu_);
  if (auto it = skipped_.find(model); it != skipped_.end()) {
    for (const SkippedShard& shard : *it->second) {
      report.rows_skipped_by_sample += shard.by_sample.load(std::memory_order_relaxed);
      report.rows_skipped_by_rate += shard.by_rate.load(std::memory_order_relaxed);
    }
  }
  return report;
}

std::vector<std::string> DriftMonitor::DriftModels() const {
  std::lock_guard<std::mutex> lock(reports_mu_);
  std::vector<std::string> out;
  for (const auto& [model, report] : reports_) out.push_back(model);
  return out;
}

}  // namespace slipway::monitoring
