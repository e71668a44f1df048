// RowPrediction: what one batch row of a model output predicts, so answers can be judged
// against ground truth or against another version: the top-1 index when the row holds several
// values (class scores), otherwise the row's single value. `classification` tells which: true
// for top-1 indices and single integer values (class labels), false for single float values.
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>

#include "slipway/core/tensor.h"

namespace slipway::core {

struct Prediction {
  double value = 0;
  bool classification = false;
};

// `rows` is the number of batch rows the tensor holds (its first dimension when batched, else 1).
// nullopt for BYTES/BOOL/FP16/BF16 outputs or an empty row.
std::optional<Prediction> RowPrediction(const Tensor& output, int64_t row, int64_t rows);

}  // namespace slipway::core
