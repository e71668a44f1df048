// ProcessMetrics: the standard `process_*` metrics of the Prometheus client libraries (CPU time,
// memory, file descriptors, threads, start time) for this process, read from Linux procfs.
//
// ReadProcessMetrics does a handful of small reads of /proc (tens of microseconds, no waiting on
// anything else); call it from the scrape handler, not from the request path. It is safe from any
// thread and keeps no state. Elsewhere than on Linux it returns kUnavailable.
#pragma once

#include "slipway/core/status.h"
#include "slipway/monitoring/prometheus_text.h"

namespace slipway::monitoring {

struct ProcessMetrics {
  double cpu_seconds = 0;         // user + system CPU time since the process started
  double resident_bytes = 0;      // resident set size
  double virtual_bytes = 0;       // virtual memory size
  double open_fds = 0;            // open file descriptors, not counting the one used to count them
  double max_fds = 0;             // soft RLIMIT_NOFILE; +Inf when unlimited
  double threads = 0;             // OS threads in the process
  double start_time_seconds = 0;  // process start, seconds since the Unix epoch
};

// Reads /proc/self/stat, /proc/self/statm, /proc/stat (btime), /proc/self/fd and RLIMIT_NOFILE.
// kUnavailable when a file cannot be read, kInternal when one does not parse.
core::Result<ProcessMetrics> ReadProcessMetrics();

// Writes process_cpu_seconds_total (counter), process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds, process_start_time_seconds and
// process_threads (gauges), each with its HELP and TYPE lines and no labels.
void WriteProcessMetrics(const ProcessMetrics& metrics, PrometheusText& out);

}  // namespace slipway::monitoring
