// OptimizeReport: what `slipway optimize` did and what it cost — file and weight sizes before
// and after, in-process latency and throughput of both models, and the optimized model's
// agreement with the original on an evaluation set — rendered as JSON (for scripts and the
// rollout record), Markdown (for people and pull requests) and a short console summary.
// Thread safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "slipway/app/optimize/latency_benchmark.h"
#include "slipway/app/optimize/model_comparison.h"
#include "slipway/app/optimize/rewrite_options.h"

namespace slipway::app::optimize {

struct OptimizeReport {
  std::string input_path;
  std::string output_path;       // the model file written (empty if none was)
  std::string candidate_model;   // with --as-candidate: the model and version written
  int64_t candidate_version = 0;
  std::string method;            // "dynamic int8", "static int8 (QDQ)", "float16 weights", ...
  std::string graph_level;       // ONNX Runtime level applied first; empty for none
  std::vector<std::pair<std::string, std::string>> settings;  // option -> value, as given
  int64_t opset = 0;
  int64_t file_bytes_before = 0;
  int64_t file_bytes_after = 0;
  int64_t weight_bytes_before = 0;
  int64_t weight_bytes_after = 0;
  // With external data: the weights file beside the model (its name, as the model refers to it)
  // and its size; "before" is the input's own external data, 0 when it keeps weights inline.
  std::string data_file;
  int64_t data_file_bytes_before = 0;
  int64_t data_file_bytes_after = 0;
  RewriteSummary rewrite;
  int intra_op_threads = 1;
  std::vector<LatencyComparison> latency;
  std::optional<Agreement> accuracy;
  std::vector<std::string> notes;

  double file_ratio() const;    // before / after: how many times smaller
  double weight_ratio() const;
  double data_file_ratio() const;  // 0 unless both sides have a weights file
};

std::string ReportJson(const OptimizeReport& report);
std::string ReportMarkdown(const OptimizeReport& report);
std::string ReportText(const OptimizeReport& report);

}  // namespace slipway::app::optimize
