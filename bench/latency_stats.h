// Latency bookkeeping shared by the benchmark programs (ort_floor, slipway_loadgen).
//
// A Recorder belongs to one worker thread: it times calls against a shared measurement window and
// keeps the latencies of the calls that finish inside it. After the workers are joined the
// recorders are merged into a Summary (percentiles by nearest rank), printed as one JSON line.
// Thread safety: none; one Recorder per thread, merge after join. Nothing here blocks.
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace slipway::bench {

using Clock = std::chrono::steady_clock;

// The measured interval: calls issued before `measure_begin` are warm-up; no call is issued at or
// after `measure_end`; a call counts when it finishes inside [measure_begin, measure_end].
struct Window {
  Clock::time_point measure_begin;
  Clock::time_point measure_end;

  static Window Start(double warmup_s, double duration_s) {
    const auto now = Clock::now();
    const auto begin = now + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(warmup_s));
    return {begin, begin + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(duration_s))};
  }
};

class Recorder {
 public:
  explicit Recorder(const Window& window) : window_(window) { latencies_ns_.reserve(1 << 16); }

  // True while calls should still be issued.
  bool Running() const { return Clock::now() < window_.measure_end; }

  // Records one finished call that started at `start`; `ok` says whether it succeeded.
  void Finish(Clock::time_point start, bool ok) {
    const auto end = Clock::now();
    if (end < window_.measure_begin || end > window_.measure_end) return;
    if (!ok) {
      ++errors_;
      return;
    }
    latencies_ns_.push_back(
        std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count());
  }

  const std::vector<int64_t>& latencies_ns() const { return latencies_ns_; }
  uint64_t errors() const { return errors_; }

 private:
  Window window_;
  std::vector<int64_t> latencies_ns_;
  uint64_t errors_ = 0;
};

struct Summary {
  uint64_t requests = 0;  // successful calls finished in the window
  uint64_t errors = 0;    // failed calls finished in the window
  double duration_s = 0;
  double p50_us = 0, p90_us = 0, p99_us = 0, max_us = 0, mean_us = 0;
  double throughput = 0;  // successful calls per second

  static Summary Merge(const std::vector<Recorder>& recorders, double duration_s) {
    std::vector<int64_t> all;
    Summary s;
    for (const auto& r : recorders) {
      all.insert(all.end(), r.latencies_ns().begin(), r.latencies_ns().end());
      s.errors += r.errors();
    }
    std::sort(all.begin(), all.end());
    s.requests = all.size();
    s.duration_s = duration_s;
    s.throughput = duration_s > 0 ? static_cast<double>(all.size()) / duration_s : 0;
    if (all.empty()) return s;
    auto rank = [&](double p) {  // nearest-rank percentile
      size_t idx = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(all.size())));
      idx = std::clamp<size_t>(idx, 1, all.size()) - 1;
      return static_cast<double>(all[idx]) / 1000.0;
    };
    s.p50_us = rank(50);
    s.p90_us = rank(90);
    s.p99_us = rank(99);
    s.max_us = static_cast<double>(all.back()) / 1000.0;
    double sum = 0;
    for (int64_t v : all) sum += static_cast<double>(v);
    s.mean_us = sum / static_cast<double>(all.size()) / 1000.0;
    return s;
  }

  // The JSON members (without braces) shared by every program's output line.
  std::string JsonFields() const {
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "\"requests\":%llu,\"errors\":%llu,\"duration_s\":%.3f,\"throughput_rps\":%.1f,"
                  "\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,"
                  "\"mean_us\":%.1f",
                  static_cast<unsigned long long>(requests), static_cast<unsigned long long>(errors),
                  duration_s, throughput, p50_us, p90_us, p99_us, max_us, mean_us);
    return buf;
  }
};

// CPU seconds (user + system) this process has used so far, all threads included.
inline double ProcessCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto sec = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

// Escapes a string for a JSON string literal (names and messages only; no control characters
// beyond the common ones are expected).
inline std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace slipway::bench
