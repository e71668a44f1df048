#include "slipway/monitoring/drift_monitor.h"

#include <fmt/format.h>
#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <fstream>
#include <set>
#include <sstream>

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

double ValueAt(const core::Tensor& t, size_t index) {
  using core::DataType;
  const size_t width = core::DataTypeByteSize(t.type());
  if ((index + 1) * width > t.bytes().size()) return std::nan("");
  const char* p = t.bytes().data() + index * width;
  auto get = [p](auto v) {
    std::memcpy(&v, p, sizeof(v));
    return static_cast<double>(v);
  };
  switch (t.type()) {
    case DataType::kBool: return get(uint8_t{});
    case DataType::kInt8: return get(int8_t{});
    case DataType::kInt16: return get(int16_t{});
    case DataType::kInt32: return get(int32_t{});
    case DataType::kInt64: return get(int64_t{});
    case DataType::kUint8: return get(uint8_t{});
    case DataType::kUint16: return get(uint16_t{});
    case DataType::kUint32: return get(uint32_t{});
    case DataType::kUint64: return get(uint64_t{});
    case DataType::kFp32: return get(float{});
    case DataType::kFp64: return get(double{});
    default: return std::nan("");
  }
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
  std::vector<double> window;  // the window's rows, row-major (window_rows x features)
  uint64_t window_rows = 0;
  std::map<int64_t, uint64_t> window_versions;
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

std::shared_ptr<const DriftMonitor::Plan> DriftMonitor::PlanFor(const std::string& model) {
  const auto now = Clock::now();
  // Most requests on a thread are for the model the last one was for: no shared lookup then.
  thread_local uint64_t last_owner = 0;
  thread_local std::shared_ptr<const Plan> last;
  thread_local std::string last_model;
  if (last_owner == instance_ && last && last_model == model &&
      now - last->fetched < std::chrono::seconds(1)) {
    return last;
  }
  {
    auto table = plans_.Load();
    auto it = table->find(model);
    if (it != table->end() && now - it->second->fetched < std::chrono::seconds(1)) {
      last_owner = instance_;
      last_model = model;
      last = it->second;
      return it->second;
    }
  }
  auto plan = std::make_shared<Plan>();
  plan->fetched = now;
  auto config = inner_->GetModelConfig(model, 0);
  if (config.ok() && config->monitoring.drift.enabled) {
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
  if (!config.ok()) return plan;  // unknown names are never cached: clients choose them
  std::lock_guard<std::mutex> lock(plans_mu_);
  auto next = std::make_shared<std::map<std::string, std::shared_ptr<const Plan>>>(*plans_.Load());
  (*next)[model] = plan;
  plans_.Store(std::move(next));
  return plan;
}

void DriftMonitor::Infer(core::InferRequest request, core::InferCallback done) {
  auto plan = PlanFor(request.model_name);
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const double sample = plan->enabled ? plan->config.monitoring.drift.sample : 0;
  if (!plan->enabled || plan->features.empty() ||
      (sample < 1 && std::uniform_real_distribution<double>(0, 1)(rng) >= sample)) {
    return inner_->Infer(std::move(request), std::move(done));
  }
  // The input features are read now, the output features when the answer comes.
  Observation obs;
  int64_t rows = 1;
  if (plan->config.batch_size_limit() > 0 && !request.inputs.empty() &&
      !request.inputs.front().shape().empty()) {
    rows = request.inputs.front().shape()[0];
  }
  obs.rows = static_cast<size_t>(std::max<int64_t>(rows, 0));
  obs.values.assign(obs.rows * plan->features.size(), std::nan(""));
  Observe(*plan, false, request.inputs, obs);
  inner_->Infer(std::move(request), [this, plan, obs = std::move(obs), done = std::move(done)](
                                        Result<core::InferResponse> result) mutable {
    if (result.ok()) {
      obs.model = result->model_name;
      obs.version = result->model_version;
      Observe(*plan, true, result->outputs, obs);
      std::unique_lock<std::mutex> lock(queue_mu_);
      if (queue_.size() >= options_.max_queue) {
        ++dropped_;
      } else {
        queue_.push_back(std::move(obs));
        // The worker looks every kWorkerTickMs anyway; waking it per observation would cost a
        // context switch per sampled request, so it is woken only when a batch has gathered.
        const bool wake = queue_.size() == kWakeBatch;
        lock.unlock();
        if (wake) queue_cv_.notify_one();
      }
    }
    done(std::move(result));
  });
}

void DriftMonitor::Observe(const Plan& plan, bool outputs, const std::vector<core::Tensor>& tensors,
                           Observation& obs) {
  const size_t n = plan.features.size();
  for (const TensorFeatures& g : plan.tensors) {
    if (g.output != outputs) continue;
    const core::Tensor* t = nullptr;
    for (const auto& x : tensors) {
      if (x.name() == g.tensor) t = &x;
    }
    if (t == nullptr || g.per_row <= 0) continue;  // stays NaN
    const auto per_row = static_cast<size_t>(g.per_row);
    for (size_t r = 0; r < obs.rows; ++r) {
      double* row = obs.values.data() + r * n;
      for (const auto& [feature, element] : g.members) row[feature] = ValueAt(*t, r * per_row + element);
    }
  }
}

void DriftMonitor::WorkerLoop() {
  std::unique_lock<std::mutex> lock(queue_mu_);
  while (true) {
    queue_cv_.wait_for(lock, std::chrono::milliseconds(kWorkerTickMs),
                       [this] { return stopping_ || queue_.size() >= kWakeBatch; });
    if (stopping_) break;
    std::deque<Observation> batch;
    batch.swap(queue_);
    lock.unlock();
    for (auto& obs : batch) Process(std::move(obs));
    // The reports' progress figures, once per batch rather than per observation.
    if (!batch.empty()) {
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

void DriftMonitor::Process(Observation obs) {
  auto plan = PlanFor(obs.model);
  if (!plan->enabled) return;
  auto& slot = states_[obs.model];
  if (slot == nullptr || slot->features.size() != plan->features.size()) {
    slot = std::make_unique<State>();
    slot->config = plan->config;
    slot->features = plan->features;
    if (!slot->config.monitoring.drift.reference_file.empty()) {
      if (auto st = LoadReference(obs.model, *slot); !st.ok()) {
        spdlog::error("model '{}': drift detection is off: {}", obs.model, st.message());
        slot->reference.assign(slot->features.size(), {});
      } else {
        slot->reference_ready = true;
        spdlog::info("model '{}': drift reference of {} rows loaded", obs.model,
                     slot->reference.empty() ? 0 : slot->reference.front().size());
      }
    } else {
      slot->reference.assign(slot->features.size(), {});
    }
  }
  State& state = *slot;
  const auto& d = state.config.monitoring.drift;
  const size_t n = state.features.size();
  if (obs.values.size() != obs.rows * n) return;  // the features changed under this observation
  for (size_t r = 0; r < obs.rows; ++r) {
    const double* row = obs.values.data() + r * n;
    if (!state.reference_ready) {
      if (!d.reference_file.empty()) return;  // the reference file failed; nothing to compare
      for (size_t i = 0; i < n; ++i) state.reference[i].push_back(row[i]);
      if (static_cast<int64_t>(state.reference.front().size()) >= d.reference_rows) {
        state.reference_ready = true;
        state.window_start = Clock::now();
        spdlog::info("model '{}': drift reference taken from the first {} rows", obs.model,
                     d.reference_rows);
      }
      continue;
    }
    state.window.insert(state.window.end(), row, row + n);
    ++state.window_rows;
    ++state.window_versions[obs.version];
    if (static_cast<int64_t>(state.window_rows) >= d.window_rows) Judge(obs.model, state);
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
      std::sort(p.sorted.begin(), p.sorted.end());
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
  std::vector<double> live;
  for (size_t i = 0; i < state.features.size(); ++i) {
    const Feature& f = state.features[i];
    const State::Prepared& prepared = state.prepared[i];
    const std::vector<double>& ref = prepared.sorted;
    live.clear();
    const size_t n = state.features.size();
    for (size_t at = i; at < state.window.size(); at += n) {
      if (!std::isnan(state.window[at])) live.push_back(state.window[at]);
    }
    if (ref.size() < 2 || live.size() < 2) continue;
    std::sort(live.begin(), live.end());
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
        auto lc = BinCounts(live, prepared.edges);
        if (lc.ok()) {
          ref_share = prepared.shares;
          live_share = CountShares(*lc);
        }
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
  state.window.clear();
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
  {
    std::lock_guard<std::mutex> lock(reports_mu_);
    auto it = reports_.find(model);
    if (it != reports_.end()) return it->second;
  }
  auto config = inner_->GetModelConfig(model, 0);
  if (!config.ok()) return config.status();
  if (!config->monitoring.drift.enabled) {
    return Status::NotFound("model '" + model + "' has no drift detection; add `monitoring: "
                            "{drift: ...}` to its config");
  }
  serving::DriftReport empty;
  empty.model = model;
  return empty;
}

std::vector<std::string> DriftMonitor::DriftModels() const {
  std::lock_guard<std::mutex> lock(reports_mu_);
  std::vector<std::string> out;
  for (const auto& [model, report] : reports_) out.push_back(model);
  return out;
}

}  // namespace slipway::monitoring
