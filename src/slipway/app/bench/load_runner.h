// RunPoint: the machinery of one benchmark point. Closed loop: `concurrency` workers, each with
// its own InferClient, send back to back. Open loop: a scheduler thread releases requests at
// Poisson arrival times (fixed seed) to a pool of `threads` workers; latency is measured from
// the scheduled send time, so a pool that falls behind shows up as latency, not as a lower rate.
// After the warm-up, windows of `window_ms` are measured until the stability rule holds or
// `max_windows` have passed; server statistics are read before and after the windows.
//
// Thread safety: RunPoint may be called from one thread at a time; it starts and joins its own
// worker threads. It blocks for the whole point (warm-up plus windows plus draining in-flight
// calls, each bounded by the client timeout).
#pragma once

#include <functional>
#include <memory>

#include "slipway/app/bench/clients.h"
#include "slipway/app/bench/measurement.h"
#include "slipway/app/bench/server_api.h"
#include "slipway/core/status.h"

namespace slipway::app::bench {

struct PointPlan {
  int concurrency = 1;      // closed loop: workers, each one request in flight
  double request_rate = 0;  // > 0: open loop at this rate, with `threads` workers
  int threads = 64;
  int batch_size = 1;
  double warmup_seconds = 1;
  int window_ms = 2000;
  double stability_percent = 10;
  int max_windows = 10;
  uint64_t seed = 42;
};

// Makes the client of worker `index`.
using ClientFactory = std::function<core::Result<std::unique_ptr<InferClient>>(int index)>;
// Reads the server's cumulative statistics; empty when the server has no statistics extension.
using StatsReader = std::function<core::Result<ServerStatsSnapshot>()>;
// Told after each window: its 1-based number and throughput (infer/s).
using ProgressListener = std::function<void(int window, double infer_per_s)>;

core::Result<PointResult> RunPoint(const PointPlan& plan, const ClientFactory& make_client,
                                   const StatsReader& read_stats, const ProgressListener& progress);

}  // namespace slipway::app::bench
