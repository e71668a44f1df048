// `slipway optimize MODEL.onnx -o OUT.onnx [--as-candidate REPO/MODEL]`: makes a model smaller
// and faster and measures what it costs.
//
//   --graph-level basic|extended|layout|all   ONNX Runtime's graph optimizations, saved
//   --quantize dynamic                        int8 MatMul/Gemm weights (--include-conv: Conv too)
//   --quantize static --calibration FILE      int8 QDQ on weights and activations, calibrated
//                                             (--calibration-method minmax|percentile)
//   --float16                                 float16 weights
//   --per-channel, --exclude NAME, --exclude-op-type TYPE
//
// The result must load in ONNX Runtime before anything is written. The report (printed, and
// saved beside the output as .report.json / .report.md) gives file and weight sizes before and
// after, in-process latency and throughput at batch 1 and 16, and agreement with the original on
// an evaluation set (--eval FILE, else the calibration set, else generated rows): top-1
// agreement, max/mean absolute difference per output, task accuracy when examples carry labels.
// --min-agreement refuses to write a model below the floor. --as-candidate writes the model
// and its report as the next version of REPO/MODEL for the lifecycle machinery to roll out.
//
// Thread safety: RegisterOptimizeFlags and RunOptimizeCommand run on the main thread; the run
// blocks, prints the report to stdout and errors to stderr.
// Exit codes: 0 written, 1 failed (bad input, the result does not load, agreement below the
// floor; nothing is written), 2 bad arguments.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace CLI {
class App;
}  // namespace CLI

namespace slipway::app::optimize {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

struct OptimizeFlags {
  std::string model;                  // the input model file
  std::string output;                 // -o
  std::string as_candidate;           // REPO/MODEL
  std::string graph_level;            // empty: none
  std::string quantize = "none";      // none, dynamic, static
  bool float16 = false;
  bool per_channel = false;
  bool include_conv = false;
  bool reduce_range = false;
  std::string calibration;            // JSONL or NPY
  std::string calibration_method = "minmax";
  double percentile = 99.99;
  std::vector<std::string> exclude;
  std::vector<std::string> exclude_op_types;
  std::string eval;                   // JSONL or NPY; default: the calibration set
  std::string eval_output;            // the output judged by top-1; default: the class scores
  int eval_generated = 64;            // rows generated when no examples are given
  double min_agreement = 0;           // 0: no floor
  bool external_data = false;         // weights in OUT.onnx.data beside the model
  int64_t external_data_threshold = 0;  // initializers smaller than this stay in the model file
  std::string report_json;            // default: beside the output
  std::string report_md;
  int threads = 1;                    // intra-op threads while measuring
  double bench_seconds = 2.0;         // per batch size, both models together
  std::vector<int64_t> batch_sizes{1, 16};
  bool no_bench = false;
};

// Declares the positional MODEL and the flags; cross-flag rules are checked in a callback that
// throws CLI::ValidationError.
void RegisterOptimizeFlags(CLI::App* optimize, OptimizeFlags* flags);

int RunOptimizeCommand(const OptimizeFlags& flags);

}  // namespace slipway::app::optimize
