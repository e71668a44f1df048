// Validation of a new version against a validation set before it is written or serves.
//
// A validation set is JSON lines, one example per line:
//   {"inputs": {"features": [0.1, 0.2, ...]}, "expected": 1}
// Inputs are flat or nested lists in the config's datatype (strings for BYTES), one batch row
// each; "expected" (optional) is the class index the judged output's top-1 must equal (float
// outputs with several values) or the value it must equal (single values). Accuracy is the share
// of rows meeting it; divergence the share of rows whose top-1 (or value) differs from the
// reference version's. Both run on instances of their own, outside the statistics.
// Thread safety: pure functions apart from running the models; blocks while they run.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "slipway/backend/backend.h"
#include "slipway/core/model_config.h"
#include "slipway/core/status.h"
#include "slipway/core/tensor.h"

namespace slipway::lifecycle {

struct ValidationRow {
  std::vector<core::Tensor> inputs;  // owned, in the config's input order
  std::optional<double> expected;
};

// Parses a validation set for `config`; messages name the line and the problem.
core::Result<std::vector<ValidationRow>> ParseValidationSet(const std::string& text,
                                                            const core::ModelConfig& config);

struct ValidationReport {
  size_t rows = 0;
  std::optional<double> accuracy;    // when rows carry "expected"
  std::optional<double> divergence;  // when there is a reference
  std::string Summary() const;
};

// Runs `rows` on `candidate` (and `reference`, when given) and judges them by `config.validation`.
// A failed execution or a bound not met is an error naming the figures.
core::Result<ValidationReport> ValidateVersion(backend::Model& candidate, backend::Model* reference,
                                               const std::vector<ValidationRow>& rows);

}  // namespace slipway::lifecycle
