#include "slipway/scheduler/dynamic_batcher.h"

#include <atomic>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <numeric>
#include <optional>

#include "slipway/core/thread_name.h"

namespace slipway::scheduler {

using core::Result;
using core::Status;

struct DynamicBatcher::State {
  std::string model_name;
  bool preserve_ordering = false;
  backend::Model* model = nullptr;  // for new instances; used only while the batcher lives
  std::vector<std::unique_ptr<backend::ModelInstance>> instances;  // guarded by mu

  std::mutex mu;
  std::condition_variable cv;
  BatchQueue queue;                                // guarded by mu
  std::vector<backend::ModelInstance*> idle;       // instances not executing; guarded by mu
  bool stop = false;                               // guarded by mu
  std::condition_variable scaler_cv;               // wakes the autoscaler early on stop

  ModelStats stats;
  std::atomic<uint64_t> in_flight{0};  // accepted and not yet answered

  // Arrival-order release of answers (preserve_ordering only).
  std::mutex order_mu;
  uint64_t next_release = 0;  // guarded by order_mu
  std::map<uint64_t, std::pair<core::InferCallback, Result<core::InferResponse>>> held;

  explicit State(BatchingConfig config) : queue(std::move(config)) {}

  void Answer(PendingRequest& item, Result<core::InferResponse> result, TimePoint started) {
    const TimePoint now = Clock::now();
    const auto ns = [](Clock::duration d) {
      return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
    };
    --in_flight;
    if (result.ok()) {
      result->queue_ns = ns((started > item.enqueued ? started : item.enqueued) - item.enqueued);
    }
    stats.RecordRequest(result.ok() ? core::StatusCode::kOk : result.status().code(),
                        ns(now - item.enqueued),
                        ns((started > item.enqueued ? started : item.enqueued) - item.enqueued));
    if (!preserve_ordering) {
      item.done(std::move(result));
      return;
    }
    std::lock_guard<std::mutex> lock(order_mu);
    held.emplace(item.sequence, std::make_pair(std::move(item.done), std::move(result)));
    while (!held.empty() && held.begin()->first == next_release) {
      auto node = held.extract(held.begin());
      node.mapped().first(std::move(node.mapped().second));
      ++next_release;
    }
  }

  void Execute(backend::ModelInstance* instance, std::vector<PendingRequest>& batch);
  void Work();
  // Under `lock`: if an instance is idle and the queue has a batch due now, takes both.
  bool TakeBatch(std::vector<PendingRequest>& batch, backend::ModelInstance*& instance,
                 std::optional<TimePoint>* wake_at);
  void Release(backend::ModelInstance* instance);
  void Scale(AutoscaleSettings settings, int window_ms);
};

std::vector<const core::Tensor*> MergeInputs(const std::vector<PendingRequest>& batch,
                                             std::vector<core::Tensor>& storage) {
  const PendingRequest& first = batch.front();
  std::vector<const core::Tensor*> inputs;
  if (batch.size() == 1) {
    for (size_t index : first.input_order) inputs.push_back(&first.request.inputs[index]);
    return inputs;
  }
  const int64_t rows = std::accumulate(batch.begin(), batch.end(), int64_t{0},
                                       [](int64_t sum, const auto& p) { return sum + p.batch; });
  storage.clear();
  storage.reserve(first.input_order.size());
  for (size_t k = 0; k < first.input_order.size(); ++k) {
    const core::Tensor& model = first.request.inputs[first.input_order[k]];
    size_t bytes = 0;
    for (const auto& p : batch) bytes += p.request.inputs[p.input_order[k]].bytes().size();
    std::string merged;
    merged.reserve(bytes);
    for (const auto& p : batch) merged.append(p.request.inputs[p.input_order[k]].bytes());
    core::Shape shape = model.shape();
    shape[0] = rows;
    storage.push_back(core::Tensor::Owned(model.name(), model.type(), std::move(shape),
                                          std::move(merged)));
  }
  for (const auto& t : storage) inputs.push_back(&t);
  return inputs;
}

Result<std::vector<core::Tensor>> SplitOutput(const core::Tensor& output,
                                              const std::vector<int64_t>& rows) {
  const int64_t total = std::accumulate(rows.begin(), rows.end(), int64_t{0});
  const core::Shape& shape = output.shape();
  if (shape.empty() || shape[0] != total) {
    return Status::Internal("output '" + output.name() + "' has shape " +
                            core::ShapeToString(shape) + ", not " + std::to_string(total) +
                            " rows along dimension 0, so a merged batch cannot be split");
  }
  std::vector<core::Tensor> parts;
  const std::string_view bytes = output.bytes();
  if (output.type() == core::DataType::kBytes) {
    const auto elements = core::SplitBytesElements(bytes);
    const size_t per_row = total > 0 ? elements.size() / static_cast<size_t>(total) : 0;
    size_t e = 0;
    for (int64_t r : rows) {
      std::string part;
      for (size_t i = 0; i < per_row * static_cast<size_t>(r); ++i) {
        core::AppendBytesElement(part, elements[e++]);
      }
      core::Shape s = shape;
      s[0] = r;
      parts.push_back(core::Tensor::Owned(output.name(), output.type(), std::move(s), std::move(part)));
    }
    return parts;
  }
  const size_t row_bytes = total > 0 ? bytes.size() / static_cast<size_t>(total) : 0;
  size_t offset = 0;
  for (int64_t r : rows) {
    const size_t n = row_bytes * static_cast<size_t>(r);
    core::Shape s = shape;
    s[0] = r;
    parts.push_back(core::Tensor::Owned(output.name(), output.type(), std::move(s),
                                        std::string(bytes.substr(offset, n))));
    offset += n;
  }
  return parts;
}

void DynamicBatcher::State::Execute(backend::ModelInstance* instance,
                                    std::vector<PendingRequest>& batch) {
  const TimePoint started = Clock::now();
  // Drop work whose caller has gone.
  std::vector<PendingRequest> live;
  for (auto& item : batch) {
    if (item.request.cancelled && item.request.cancelled()) {
      Answer(item, Status(core::StatusCode::kCancelled, "the request was cancelled by the client"),
             started);
    } else {
      live.push_back(std::move(item));
    }
  }
  if (live.empty()) return;
  std::vector<core::Tensor> storage;
  const auto inputs = MergeInputs(live, storage);
  const TimePoint merged = Clock::now();
  auto outputs = instance->Execute(inputs, live.front().output_names);
  const TimePoint executed = Clock::now();
  std::vector<Result<core::InferResponse>> answers;
  if (!outputs.ok()) {
    answers.assign(live.size(), outputs.status());
  } else if (live.size() == 1) {
    core::InferResponse response;
    response.outputs = std::move(outputs).value();
    answers.push_back(std::move(response));
  } else {
    std::vector<int64_t> rows;
    for (const auto& p : live) rows.push_back(p.batch);
    std::vector<core::InferResponse> responses(live.size());
    Status failure;
    for (const core::Tensor& out : *outputs) {
      auto parts = SplitOutput(out, rows);
      if (!parts.ok()) {
        failure = parts.status();
        break;
      }
      for (size_t i = 0; i < live.size(); ++i) responses[i].outputs.push_back(std::move((*parts)[i]));
    }
    for (auto& r : responses) {
      if (failure.ok()) {
        answers.push_back(std::move(r));
      } else {
        answers.push_back(failure);
      }
    }
  }
  const TimePoint split = Clock::now();
  const auto ns = [](Clock::duration d) {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
  };
  uint64_t rows_total = 0;
  for (const auto& p : live) rows_total += static_cast<uint64_t>(p.batch);
  stats.RecordExecution(rows_total, ns(merged - started), ns(executed - merged), ns(split - executed),
                        live.size());
  for (auto& answer : answers) {
    if (!answer.ok()) continue;
    answer->compute_ns = ns(split - started);
    answer->batch_rows = static_cast<int64_t>(rows_total);
  }
  for (size_t i = 0; i < live.size(); ++i) Answer(live[i], std::move(answers[i]), started);
}

bool DynamicBatcher::State::TakeBatch(std::vector<PendingRequest>& batch,
                                      backend::ModelInstance*& instance,
                                      std::optional<TimePoint>* wake_at) {
  if (idle.empty()) return false;
  auto decision = queue.Decide(Clock::now());
  if (decision.batch.empty()) {
    if (wake_at != nullptr) *wake_at = decision.wake_at;
    return false;
  }
  batch = std::move(decision.batch);
  instance = idle.back();
  idle.pop_back();
  return true;
}

void DynamicBatcher::State::Release(backend::ModelInstance* instance) {
  bool waiting = false;
  {
    std::lock_guard<std::mutex> lock(mu);
    idle.push_back(instance);
    waiting = queue.size() > 0;
  }
  if (waiting) cv.notify_one();  // queued work was waiting for an instance
}

void DynamicBatcher::State::Work() {
  for (;;) {
    std::vector<PendingRequest> batch;
    std::vector<PendingRequest> expired;
    backend::ModelInstance* instance = nullptr;
    {
      std::unique_lock<std::mutex> lock(mu);
      for (;;) {
        if (stop) return;
        expired = queue.TakeExpired(Clock::now());
        if (!expired.empty()) break;
        std::optional<TimePoint> wake_at;
        if (TakeBatch(batch, instance, &wake_at)) {
          if (queue.size() > 0 && !idle.empty()) cv.notify_one();  // more for another instance
          break;
        }
        // With every instance busy, still wake for the next deadline so a timed-out request
        // is answered at once rather than when an instance frees up.
        if (idle.empty()) wake_at = queue.EarliestDeadline();
        if (wake_at) {
          cv.wait_until(lock, *wake_at);
        } else {
          cv.wait(lock);
        }
      }
    }
    const TimePoint now = Clock::now();
    for (auto& item : expired) {
      const auto waited =
          std::chrono::duration_cast<std::chrono::microseconds>(now - item.enqueued).count();
      Answer(item,
             Status(core::StatusCode::kDeadlineExceeded,
                    "request to model '" + model_name + "' timed out after " +
                        std::to_string(waited) + " us in the queue"),
             now);
    }
    if (instance != nullptr) {
      Execute(instance, batch);
      Release(instance);
    }
  }
}

namespace {

uint64_t ExecutionNs(const StatsSnapshot& s) {
  uint64_t ns = 0;
  for (const auto& [size, b] : s.batches) {
    ns += b.compute_input.ns + b.compute_infer.ns + b.compute_output.ns;
  }
  return ns;
}

}  // namespace

void DynamicBatcher::State::Scale(AutoscaleSettings settings, int window_ms) {
  AutoscaleState scale;
  scale.instances = settings.min_instances;
  StatsSnapshot last = stats.Snapshot();
  for (;;) {
    double waiting_us = 0;  // how long the oldest queued request has waited so far
    {
      std::unique_lock<std::mutex> lock(mu);
      if (scaler_cv.wait_for(lock, std::chrono::milliseconds(window_ms), [this] { return stop; })) {
        return;
      }
      scale.instances = static_cast<int>(instances.size());
      if (auto oldest = queue.OldestArrival()) {
        waiting_us = std::chrono::duration<double, std::micro>(Clock::now() - *oldest).count();
      }
    }
    const StatsSnapshot now = stats.Snapshot();
    AutoscaleWindow window;
    window.requests = now.queue.count - last.queue.count;
    if (window.requests > 0) {
      window.mean_queue_delay_us =
          static_cast<double>(now.queue.ns - last.queue.ns) / 1000.0 / static_cast<double>(window.requests);
    }
    // Requests still waiting count too: a stuck queue completes nothing.
    if (waiting_us > window.mean_queue_delay_us) {
      window.mean_queue_delay_us = waiting_us;
      window.requests = std::max<uint64_t>(window.requests, 1);
    }
    window.busy_fraction = static_cast<double>(ExecutionNs(now) - ExecutionNs(last)) /
                           (1e6 * window_ms * std::max(1, scale.instances));
    last = now;
    const int step = DecideScaling(settings, window, scale);
    if (step > 0) {
      auto created = model->CreateInstance();
      if (!created.ok()) {
        spdlog::error("model '{}': could not add an instance: {}", model_name,
                      created.status().message());
        continue;
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        idle.push_back(created->get());
        instances.push_back(std::move(created).value());
        scale.instances = static_cast<int>(instances.size());
      }
      cv.notify_one();
      spdlog::info("model '{}': queueing delay {:.0f} us above target; instances {} -> {}",
                   model_name, window.mean_queue_delay_us, scale.instances - 1, scale.instances);
    } else if (step < 0) {
      std::unique_ptr<backend::ModelInstance> retired;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (idle.empty()) continue;  // all busy after all: try again next window
        backend::ModelInstance* victim = idle.back();
        idle.pop_back();
        for (auto it = instances.begin(); it != instances.end(); ++it) {
          if (it->get() == victim) {
            retired = std::move(*it);
            instances.erase(it);
            break;
          }
        }
        scale.instances = static_cast<int>(instances.size());
      }
      retired.reset();
      spdlog::info("model '{}': instances mostly idle ({:.0f}% busy); instances {} -> {}",
                   model_name, 100 * window.busy_fraction, scale.instances + 1, scale.instances);
    }
  }
}

Result<std::unique_ptr<DynamicBatcher>> DynamicBatcher::Create(const Options& options) {
  if (options.model == nullptr || options.instance_count < 1) {
    return Status::InvalidArgument("a batcher needs a model and at least 1 instance");
  }
  std::unique_ptr<DynamicBatcher> self(new DynamicBatcher());
  self->state_ = std::make_shared<State>(options.batching);
  self->state_->model_name = options.model_name;
  self->state_->preserve_ordering = options.batching.preserve_ordering;
  for (int i = 0; i < options.instance_count; ++i) {
    ASSIGN_OR_RETURN(auto instance, options.model->CreateInstance());
    self->state_->instances.push_back(std::move(instance));
  }
  self->state_->model = options.model;
  for (auto& instance : self->state_->instances) self->state_->idle.push_back(instance.get());
  AutoscaleSettings scale = options.autoscale;
  scale.min_instances = options.instance_count;
  scale.max_instances = std::max(options.instance_count, options.autoscale.max_instances);
  // One runner thread per instance the version may have; idle ones just wait.
  for (int i = 0; i < scale.max_instances; ++i) {
    self->workers_.emplace_back([state = self->state_, name = "run:" + options.model_name] {
      core::NameThisThread(name);
      state->Work();
    });
  }
  if (scale.max_instances > scale.min_instances) {
    self->scaler_ = std::thread([state = self->state_, scale, ms = options.scale_window_ms,
                                 name = "scale:" + options.model_name] {
      core::NameThisThread(name);
      state->Scale(scale, ms);
    });
  }
  return self;
}

void DynamicBatcher::Submit(PendingRequest item) {
  Status st;
  std::vector<PendingRequest> batch;
  backend::ModelInstance* instance = nullptr;
  ++state_->in_flight;  // before it can be answered, so the gauge never dips below zero
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->stop) {
      st = Status::Unavailable("model '" + state_->model_name + "' is being unloaded");
    } else {
      st = state_->queue.Enqueue(item, Clock::now());
      // When the model is not busy at all (every instance idle) and a batch is due now, the
      // caller runs it itself: no hand-off to a worker thread. Under load the workers take
      // over, so receiving threads keep reading and requests queue up to be merged.
      if (st.ok() && state_->idle.size() == state_->instances.size()) {
        state_->TakeBatch(batch, instance, nullptr);
      }
    }
  }
  if (!st.ok()) {
    --state_->in_flight;
    state_->stats.RecordRefused(st.code());
    item.done(st);
    return;
  }
  if (instance == nullptr) {
    state_->cv.notify_one();
    return;
  }
  // Keep the state alive even if the last handle to this version is dropped in an answer.
  std::shared_ptr<State> state = state_;
  state->Execute(instance, batch);
  state->Release(instance);
}

core::Status DynamicBatcher::WarmUp(const std::vector<const core::Tensor*>& inputs,
                                    const std::vector<std::string>& output_names, int64_t runs) {
  std::vector<backend::ModelInstance*> instances;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    for (const auto& instance : state_->instances) instances.push_back(instance.get());
  }
  for (backend::ModelInstance* instance : instances) {
    for (int64_t i = 0; i < runs; ++i) {
      auto outputs = instance->Execute(inputs, output_names);
      if (!outputs.ok()) return outputs.status();
    }
  }
  return core::Status::Ok();
}

StatsSnapshot DynamicBatcher::Stats() const {
  StatsSnapshot s = state_->stats.Snapshot();
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    s.pending = state_->queue.size();
  }
  s.in_flight = state_->in_flight.load();
  return s;
}

int DynamicBatcher::instance_count() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return static_cast<int>(state_->instances.size());
}

DynamicBatcher::~DynamicBatcher() {
  std::vector<PendingRequest> left;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->stop = true;
    left = state_->queue.TakeAll();
  }
  state_->cv.notify_all();
  state_->scaler_cv.notify_all();
  if (scaler_.joinable()) scaler_.join();
  for (auto& item : left) {
    state_->Answer(item, Status::Unavailable("model '" + state_->model_name + "' was unloaded"),
                   Clock::now());
  }
  for (auto& worker : workers_) {
    // The last handle to a version may be dropped inside an answer on a worker thread; that
    // worker cannot join itself, so it is let go and exits on its own (it holds the state).
    if (worker.get_id() == std::this_thread::get_id()) {
      worker.detach();
    } else {
      worker.join();
    }
  }
}

}  // namespace slipway::scheduler
