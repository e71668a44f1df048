// ModelProcessor: one model's `predict:` section made executable: application JSON objects into
// the model's input tensors, and the (last pipeline model's) output tensors into answer objects.
//
// Encoding, per input of the section:
//   text:   the field must be a string, at most max_chars code points, not blank (only whitespace
//           or control characters); it is tokenized (tokenizer.h) into max_length ids, and the
//           mask tensor (when named) gets 1 for real tokens and 0 for padding;
//   fields: each field must be a number (not a boolean, not a string); with `standardize` a value
//           becomes (value - mean) / std; integer inputs take integral values only.
//   Other fields of the object are ignored. Rows are stacked on the batch dimension when the
//   model batches; otherwise there is exactly one row and no batch dimension.
// Decoding, per output of the section (in order), for each row (the row's slice of the tensor):
//   softmax over the last dimension; label_field: the top-1 label (labels file) or index;
//   score_field: its score; top_k/top_field: [{"label", "score"}, ...] best first (ties: lower
//   index first); values_field: the row's values (after softmax when on), a scalar when the row
//   holds one value. No outputs in the section: every output under its tensor name.
// Errors about the application's JSON are InvalidArgument naming the field (and "row N" for
// lists); a model answer that does not fit the section (labels count, missing output) is Internal.
//
// Thread safety: immutable after Create; any thread. Create reads files (the vocabularies and
// labels); Encode and Decode never block.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "slipway/core/model_config.h"
#include "slipway/core/status.h"
#include "slipway/core/tensor.h"
#include "slipway/processing/tokenizer.h"

namespace slipway::processing {

// Softmax of each run of `width` values, in place (numerically stable, in double).
void SoftmaxRuns(std::vector<double>& values, size_t width);
// Indices of the `k` largest values, largest first; equal values keep index order.
std::vector<size_t> TopK(const std::vector<double>& values, size_t k);

class ModelProcessor {
 public:
  // Builds the processor of `config` (which must have a predict section), reading the files it
  // names from config.directory.
  static core::Result<std::shared_ptr<const ModelProcessor>> Create(const core::ModelConfig& config);

  // Encodes items[begin, end) into the model's input tensors. `list`: the items came as a JSON
  // list (messages then name the row index). `batched`: rows get a leading batch dimension;
  // when false, end - begin must be 1.
  core::Status Encode(const std::vector<simdjson::dom::element>& items, size_t begin, size_t end,
                      bool list, bool batched, std::vector<core::Tensor>* tensors) const;

  // Appends one JSON answer object per row to `answers`, from the outputs of the last model.
  core::Status Decode(const std::vector<core::Tensor>& outputs, int64_t rows, bool batched,
                      std::vector<std::string>* answers) const;

  // The output tensors Decode reads; empty: every output of the model.
  std::vector<std::string> RequestedOutputs() const;

  const core::ModelConfig& config() const { return config_; }

 private:
  struct InputPlan {
    const core::PredictInputConfig* spec = nullptr;
    core::DataType type = core::DataType::kInvalid;
    core::Shape row_shape;
    core::DataType mask_type = core::DataType::kInvalid;
    core::Shape mask_row_shape;
    std::unique_ptr<const Tokenizer> tokenizer;
  };
  struct OutputPlan {
    const core::PredictOutputConfig* spec = nullptr;
    std::vector<std::string> labels;
  };

  explicit ModelProcessor(core::ModelConfig config) : config_(std::move(config)) {}
  core::Status EncodeText(const InputPlan& plan, const std::vector<simdjson::dom::element>& items,
                          size_t begin, size_t end, bool list, bool batched,
                          std::vector<core::Tensor>* tensors) const;
  core::Status EncodeFields(const InputPlan& plan, const std::vector<simdjson::dom::element>& items,
                            size_t begin, size_t end, bool list, bool batched,
                            std::vector<core::Tensor>* tensors) const;

  core::ModelConfig config_;
  std::vector<InputPlan> inputs_;
  std::vector<OutputPlan> outputs_;
};

}  // namespace slipway::processing
