// CompareLatency: in-process latency and throughput of two models on the same inputs, measured
// in one run on this machine, batch size by batch size. The two models run in alternating
// rounds, so a change in the machine's load during the run falls on both alike.
//
// Thread safety: blocks for about `seconds_per_batch` per batch size; one caller at a time per
// pair of runners.
#pragma once

#include <cstdint>
#include <vector>

#include "slipway/app/optimize/model_runner.h"
#include "slipway/app/optimize/sample_set.h"
#include "slipway/core/status.h"

namespace slipway::app::optimize {

struct LatencyFigures {
  int64_t runs = 0;
  double p50_us = 0;
  double p90_us = 0;
  double mean_us = 0;
  double rows_per_second = 0;  // batch rows over the time spent running them
};

struct LatencyComparison {
  int64_t batch = 1;
  LatencyFigures before;
  LatencyFigures after;
  double speedup() const { return after.p50_us > 0 ? before.p50_us / after.p50_us : 0; }
};

// Summary of per-run latencies (microseconds) of runs of `batch` rows.
LatencyFigures SummarizeLatencies(std::vector<double> micros, int64_t batch);

// Batch sizes above 1 need models that batch and stackable inputs; they are skipped otherwise.
core::Result<std::vector<LatencyComparison>> CompareLatency(ModelRunner& before, ModelRunner& after,
                                                            const SampleSet& inputs,
                                                            const std::vector<int64_t>& batches,
                                                            double seconds_per_batch);

}  // namespace slipway::app::optimize
