// RunBench: the `slipway bench` subcommand, a load generator for any KServe v2 server in the
// spirit of Triton's perf_analyzer. It reads the model's inputs from the HTTP model metadata,
// prepares one request, measures each point of a closed-loop concurrency sweep (or one open-loop
// Poisson rate), and reports latency percentiles, throughput, errors by kind and, where the
// server advertises the statistics extension, its average queue and compute time per request.
//
// Blocks for the whole run and prints to stdout (table) and stderr (progress, errors).
// Returns the process exit code: 0 success, 1 some point had errors, 2 bad arguments or an
// unreachable server / unknown model.
#pragma once

#include "slipway/app/bench/bench_options.h"

namespace slipway::app::bench {

inline constexpr int kExitOk = 0;
inline constexpr int kExitErrors = 1;
inline constexpr int kExitUsage = 2;

int RunBench(const BenchOptions& options);

// Validates `flags` (exit 2 with a message on stderr when they are bad), then RunBench.
int RunBenchCommand(const BenchFlags& flags);

}  // namespace slipway::app::bench
