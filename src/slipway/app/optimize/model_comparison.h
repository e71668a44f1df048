// How far an optimized model's answers are from the original's on an evaluation set: per output
// the largest and mean absolute difference (and the share of equal values), for the judged
// output the share of rows whose top-1 class (or single value) agrees, and, when the examples
// carry labels, the task accuracy of both models.
//
// AgreementCounter is the arithmetic, fed batch by batch and tested without a model;
// CompareModels runs both models over the set.
// Thread safety: an AgreementCounter is used by one thread; CompareModels blocks while the models
// run.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "slipway/app/optimize/model_runner.h"
#include "slipway/app/optimize/sample_set.h"
#include "slipway/core/model_config.h"
#include "slipway/core/status.h"
#include "slipway/core/tensor.h"

namespace slipway::app::optimize {

struct OutputDifference {
  std::string name;
  std::string datatype;
  int64_t values = 0;
  int64_t equal = 0;  // values exactly equal
  double max_abs = 0;
  double mean_abs = 0;
};

struct Agreement {
  std::string eval_source;
  std::string judged_output;
  int64_t examples = 0;
  int64_t top1_agree = 0;
  int64_t labelled = 0;
  int64_t correct_before = 0;
  int64_t correct_after = 0;
  std::vector<OutputDifference> outputs;

  double top1_agreement() const { return examples ? static_cast<double>(top1_agree) / static_cast<double>(examples) : 0; }
  std::optional<double> accuracy_before() const;
  std::optional<double> accuracy_after() const;
};

class AgreementCounter {
 public:
  // `outputs`: the names in the order batches give them; `judged`: the one judged by top-1.
  AgreementCounter(std::vector<std::string> outputs, std::string judged);
  // One batch of `rows` rows from each model (outputs in the constructor's order) and the rows'
  // labels (empty, or one per row).
  core::Status Add(const std::vector<core::Tensor>& before, const std::vector<core::Tensor>& after,
                   int64_t rows, const std::vector<std::optional<double>>& labels);
  Agreement Finish(std::string eval_source) const;

 private:
  std::vector<std::string> outputs_;
  size_t judged_ = 0;
  Agreement a_;
  std::vector<double> sum_abs_;
};

// The output judged by default: the first floating-point output with several values per row
// (class scores), else the first output.
std::string DefaultJudgedOutput(const core::ModelConfig& config);

// Runs `eval` through both models (stacked 32 rows at a time where the models batch) and counts.
core::Result<Agreement> CompareModels(ModelRunner& before, ModelRunner& after, const SampleSet& eval,
                                      const std::string& judged_output);

}  // namespace slipway::app::optimize
