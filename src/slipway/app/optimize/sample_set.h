// SampleSet: example inputs (and optional labels) for calibration and evaluation, read from a
// file against the model's inputs.
//
// JSON lines, one example per line, the format of validation sets (docs/lifecycle.md):
//   {"inputs": {"features": [0.1, 0.2, ...]}, "label": 1}
// inputs flat or nested, one batch row each (a leading batch dimension of 1 may be written);
// "label" (or "expected") is optional. Or a .npy array (one input only): dimension 0 counts the
// examples, the rest is one row; any numeric dtype, converted to the input's datatype.
// A file that does not match the model (an unknown or missing input, a wrong number of values, a
// wrong kind of value) is an InvalidArgument naming the file, the line and both shapes.
// Thread safety: plain values and pure functions. Reading blocks on the file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "slipway/core/model_config.h"
#include "slipway/core/status.h"
#include "slipway/core/tensor.h"

namespace slipway::app::optimize {

struct Sample {
  std::vector<core::Tensor> inputs;  // owned, in the config's input order; dimension 0 is 1 when
                                     // the model batches
  std::optional<double> label;
};

struct SampleSet {
  std::string source;  // the file, or how the samples were made
  std::vector<Sample> samples;
  bool labelled() const;
};

// `role` names the file in messages ("calibration file", "evaluation set").
core::Result<SampleSet> ReadSampleSet(const std::string& path, const core::ModelConfig& config,
                                      std::string_view role);
core::Result<SampleSet> ParseJsonLines(std::string_view text, const core::ModelConfig& config,
                                       const std::string& what);
core::Result<SampleSet> ParseNpy(std::string_view bytes, const core::ModelConfig& config,
                                 const std::string& what);

// `count` seeded random rows (floats in [0, 1), integers in [0, 10), random booleans; variable
// dimensions 1) for models given no examples.
SampleSet GenerateSamples(const core::ModelConfig& config, int count, uint64_t seed);

// Rows first .. first + count - 1 (wrapping around) stacked along dimension 0, in the config's
// input order. Needs a model that batches.
std::vector<core::Tensor> StackSamples(const SampleSet& set, size_t first, size_t count);
// True when every sample's inputs have the same shapes, so rows can be stacked.
bool Stackable(const SampleSet& set);

}  // namespace slipway::app::optimize
