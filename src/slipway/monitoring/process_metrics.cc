#include "slipway/monitoring/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace slipway::monitoring {

using core::Result;
using core::Status;

namespace {

Result<std::string> ReadFile(const char* path) {
  std::ifstream in(path);
  if (!in) return Status::Unavailable(std::string("cannot open ") + path + ": " + strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::Unavailable(std::string("cannot read ") + path);
  return text.str();
}

// Splits on spaces (and newlines), dropping empty fields.
std::vector<std::string_view> Fields(std::string_view text) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\n')) ++i;
    size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\n') ++i;
    if (i > start) fields.push_back(text.substr(start, i - start));
  }
  return fields;
}

Result<uint64_t> ParseU64(std::string_view field, const char* what) {
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(field.data(), field.data() + field.size(), v);
  if (ec != std::errc() || ptr != field.data() + field.size()) {
    return Status::Internal(std::string(what) + ": expected an unsigned integer, got '" +
                            std::string(field) + "'");
  }
  return v;
}

struct StatFields {
  uint64_t utime_ticks = 0;
  uint64_t stime_ticks = 0;
  uint64_t num_threads = 0;
  uint64_t starttime_ticks = 0;
};

// /proc/self/stat: "pid (comm) state ppid ..."; comm may hold spaces and ')', so fields are
// counted from the last ')'. Field numbers below are those of proc(5), starting at 1 with pid.
Result<StatFields> ReadSelfStat() {
  ASSIGN_OR_RETURN(std::string text, ReadFile("/proc/self/stat"));
  size_t close = text.rfind(')');
  if (close == std::string::npos) {
    return Status::Internal("/proc/self/stat: expected '(comm)', got '" + text + "'");
  }
  std::vector<std::string_view> f = Fields(std::string_view(text).substr(close + 1));
  // f[0] is field 3 (state), so field n is f[n - 3].
  constexpr size_t kUtime = 14 - 3, kStime = 15 - 3, kThreads = 20 - 3, kStart = 22 - 3;
  if (f.size() <= kStart) {
    return Status::Internal("/proc/self/stat: expected at least 22 fields, got " +
                            std::to_string(f.size() + 2));
  }
  StatFields s;
  ASSIGN_OR_RETURN(s.utime_ticks, ParseU64(f[kUtime], "/proc/self/stat utime"));
  ASSIGN_OR_RETURN(s.stime_ticks, ParseU64(f[kStime], "/proc/self/stat stime"));
  ASSIGN_OR_RETURN(s.num_threads, ParseU64(f[kThreads], "/proc/self/stat num_threads"));
  ASSIGN_OR_RETURN(s.starttime_ticks, ParseU64(f[kStart], "/proc/self/stat starttime"));
  return s;
}

// The "btime" line of /proc/stat: boot time in seconds since the epoch.
Result<uint64_t> ReadBootTime() {
  ASSIGN_OR_RETURN(std::string text, ReadFile("/proc/stat"));
  std::string_view rest(text);
  while (!rest.empty()) {
    size_t eol = rest.find('\n');
    std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
    std::vector<std::string_view> f = Fields(line);
    if (f.size() == 2 && f[0] == "btime") return ParseU64(f[1], "/proc/stat btime");
  }
  return Status::Internal("/proc/stat: expected a 'btime' line, found none");
}

// Entries of /proc/self/fd, less "." and ".." and the descriptor of the directory being read.
Result<double> CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) {
    return Status::Unavailable(std::string("cannot open /proc/self/fd: ") + strerror(errno));
  }
  const std::string own = std::to_string(dirfd(dir));
  double count = 0;
  while (const dirent* entry = readdir(dir)) {
    std::string_view name(entry->d_name);
    if (name == "." || name == ".." || name == own) continue;
    ++count;
  }
  closedir(dir);
  return count;
}

}  // namespace

Result<ProcessMetrics> ReadProcessMetrics() {
#ifndef __linux__
  return Status::Unavailable("process metrics are read from /proc, which only Linux has");
#else
  const long ticks_per_second = sysconf(_SC_CLK_TCK);
  const long page_size = sysconf(_SC_PAGESIZE);
  if (ticks_per_second <= 0 || page_size <= 0) {
    return Status::Internal("sysconf: expected positive _SC_CLK_TCK and _SC_PAGESIZE, got " +
                            std::to_string(ticks_per_second) + " and " + std::to_string(page_size));
  }
  ProcessMetrics m;

  ASSIGN_OR_RETURN(StatFields stat, ReadSelfStat());
  ASSIGN_OR_RETURN(uint64_t boot_time, ReadBootTime());
  const double tck = static_cast<double>(ticks_per_second);
  m.cpu_seconds = static_cast<double>(stat.utime_ticks + stat.stime_ticks) / tck;
  m.threads = static_cast<double>(stat.num_threads);
  m.start_time_seconds =
      static_cast<double>(boot_time) + static_cast<double>(stat.starttime_ticks) / tck;

  // /proc/self/statm: "size resident shared text lib data dt", in pages.
  ASSIGN_OR_RETURN(std::string statm, ReadFile("/proc/self/statm"));
  std::vector<std::string_view> f = Fields(statm);
  if (f.size() < 2) {
    return Status::Internal("/proc/self/statm: expected at least 2 fields, got '" + statm + "'");
  }
  ASSIGN_OR_RETURN(uint64_t size_pages, ParseU64(f[0], "/proc/self/statm size"));
  ASSIGN_OR_RETURN(uint64_t resident_pages, ParseU64(f[1], "/proc/self/statm resident"));
  m.virtual_bytes = static_cast<double>(size_pages) * static_cast<double>(page_size);
  m.resident_bytes = static_cast<double>(resident_pages) * static_cast<double>(page_size);

  ASSIGN_OR_RETURN(m.open_fds, CountOpenFds());

  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return Status::Unavailable(std::string("getrlimit(RLIMIT_NOFILE): ") + strerror(errno));
  }
  m.max_fds = limit.rlim_cur == RLIM_INFINITY ? HUGE_VAL : static_cast<double>(limit.rlim_cur);
  return m;
#endif
}

void WriteProcessMetrics(const ProcessMetrics& metrics, PrometheusText& out) {
  struct Entry {
    const char* name;
    const char* type;
    const char* help;
    double value;
  };
  const Entry entries[] = {
      {"process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
       metrics.cpu_seconds},
      {"process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
       metrics.resident_bytes},
      {"process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
       metrics.virtual_bytes},
      {"process_open_fds", "gauge", "Number of open file descriptors.", metrics.open_fds},
      {"process_max_fds", "gauge", "Maximum number of open file descriptors.", metrics.max_fds},
      {"process_start_time_seconds", "gauge",
       "Start time of the process since unix epoch in seconds.", metrics.start_time_seconds},
      {"process_threads", "gauge", "Number of OS threads in the process.", metrics.threads},
  };
  for (const Entry& e : entries) {
    out.Family(e.name, e.type, e.help);
    out.Sample(e.name, {}, e.value);
  }
}

}  // namespace slipway::monitoring
