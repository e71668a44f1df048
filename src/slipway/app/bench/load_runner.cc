#include "slipway/app/bench/load_runner.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace slipway::app::bench {
namespace {

using Clock = std::chrono::steady_clock;
using core::Result;
using core::Status;

// One worker's tallies, taken by the controller at each window boundary.
class Recorder {
 public:
  void Record(const CallOutcome& outcome, Clock::duration latency) {
    std::lock_guard lock(mu_);
    if (outcome.ok) {
      ++tally_.successes;
      tally_.latencies_ns.push_back(
          std::chrono::duration_cast<std::chrono::nanoseconds>(latency).count());
    } else {
      ++tally_.errors[outcome.error_kind];
      if (first_error_.empty()) first_error_ = outcome.error_kind + ": " + outcome.error_message;
    }
  }
  Tally Take() {
    std::lock_guard lock(mu_);
    Tally out = std::move(tally_);
    tally_ = Tally{};
    return out;
  }
  std::string first_error() {
    std::lock_guard lock(mu_);
    return first_error_;
  }

 private:
  std::mutex mu_;
  Tally tally_;
  std::string first_error_;
};

// Scheduled send times from the open loop's scheduler to its workers.
class ArrivalQueue {
 public:
  void Push(Clock::time_point t) {
    {
      std::lock_guard lock(mu_);
      queue_.push_back(t);
    }
    cv_.notify_one();
  }
  // Blocks for the next arrival; false once closed.
  bool Pop(Clock::time_point* t) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return closed_ || !queue_.empty(); });
    if (closed_) return false;
    *t = queue_.front();
    queue_.pop_front();
    return true;
  }
  // Sleeps until `t` or Close(), whichever first; false when closed.
  bool SleepUntil(Clock::time_point t) {
    std::unique_lock lock(mu_);
    return !cv_.wait_until(lock, t, [&] { return closed_; });
  }
  void Close() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Clock::time_point> queue_;
  bool closed_ = false;
};

Tally TakeAll(std::vector<std::unique_ptr<Recorder>>& recorders) {
  Tally all;
  for (auto& r : recorders) all.Merge(r->Take());
  return all;
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

Result<PointResult> RunPoint(const PointPlan& plan, const ClientFactory& make_client,
                             const StatsReader& read_stats, const ProgressListener& progress) {
  const bool open_loop = plan.request_rate > 0;
  const int workers = open_loop ? plan.threads : plan.concurrency;
  std::vector<std::unique_ptr<InferClient>> clients;
  std::vector<std::unique_ptr<Recorder>> recorders;
  for (int i = 0; i < workers; ++i) {
    ASSIGN_OR_RETURN(auto client, make_client(i));
    clients.push_back(std::move(client));
    recorders.push_back(std::make_unique<Recorder>());
  }

  std::atomic<bool> stop{false};
  ArrivalQueue arrivals;
  std::vector<std::thread> threads;
  const Clock::time_point start = Clock::now();
  for (int i = 0; i < workers; ++i) {
    InferClient* client = clients[static_cast<size_t>(i)].get();
    Recorder* recorder = recorders[static_cast<size_t>(i)].get();
    if (open_loop) {
      threads.emplace_back([client, recorder, &arrivals] {
        Clock::time_point scheduled;
        while (arrivals.Pop(&scheduled)) {
          const CallOutcome outcome = client->Infer();
          recorder->Record(outcome, Clock::now() - scheduled);
        }
      });
    } else {
      threads.emplace_back([client, recorder, &stop] {
        while (!stop.load(std::memory_order_relaxed)) {
          const Clock::time_point sent = Clock::now();
          const CallOutcome outcome = client->Infer();
          recorder->Record(outcome, Clock::now() - sent);
        }
      });
    }
  }
  if (open_loop) {
    threads.emplace_back([&arrivals, &plan, start] {
      PoissonSchedule schedule(plan.request_rate, plan.seed);
      Clock::time_point next = start;
      while (true) {
        next += std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(schedule.NextGapSeconds()));
        if (!arrivals.SleepUntil(next)) return;
        arrivals.Push(next);
      }
    });
  }

  std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(plan.warmup_seconds)));
  Result<ServerStatsSnapshot> before = Status::Unavailable("no statistics");
  if (read_stats) before = read_stats();
  TakeAll(recorders);  // the warm-up's calls are not reported
  Clock::time_point boundary = Clock::now();

  PointResult point;
  point.concurrency = workers;
  point.request_rate = plan.request_rate;
  point.batch_size = plan.batch_size;
  Tally measured;
  const auto window = std::chrono::milliseconds(plan.window_ms);
  for (int w = 1; w <= plan.max_windows; ++w) {
    std::this_thread::sleep_until(boundary + window);
    Tally t = TakeAll(recorders);
    const Clock::time_point now = Clock::now();
    t.seconds = Seconds(now - boundary);
    boundary = now;
    const double throughput =
        t.seconds > 0 ? static_cast<double>(t.successes) * plan.batch_size / t.seconds : 0;
    point.window_throughputs.push_back(throughput);
    point.windows = w;
    measured.Merge(std::move(t));
    if (progress) progress(w, throughput);
    if (IsStable(point.window_throughputs, plan.stability_percent)) {
      point.stable = true;
      break;
    }
  }
  Result<ServerStatsSnapshot> after = Status::Unavailable("no statistics");
  if (read_stats && before.ok()) after = read_stats();

  stop.store(true);
  arrivals.Close();
  for (auto& t : threads) t.join();

  FillPoint(std::move(measured), &point);
  if (before.ok() && after.ok()) {
    const ServerStatsDelta delta = StatsDelta(*before, *after);
    point.server_stats = delta.valid;
    point.server_queue_us = delta.queue_us;
    point.server_compute_us = delta.compute_us;
  }
  for (auto& r : recorders) {
    std::string e = r->first_error();
    if (!e.empty()) {
      point.first_error = std::move(e);
      break;
    }
  }
  return point;
}

}  // namespace slipway::app::bench
