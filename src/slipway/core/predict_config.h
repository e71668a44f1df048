// PredictConfig: how a model answers an application's own JSON (`POST /predict`), as plain
// structs parsed from the `predict:` section of config.yaml.
//
// Inputs turn fields of a JSON object into tensors (a text field tokenized into ids, or named
// numeric fields stacked into one row); outputs turn the last model's tensors into answer fields
// (top-1 label and score, top-k, raw values); `then` chains further models whose inputs are the
// previous model's outputs. The processing itself lives in processing/; this file only states what
// the config says and checks it against the model's tensors once auto-complete has filled them.
// Thread safety: plain values.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "slipway/core/status.h"
#include "slipway/core/tensor.h"

namespace slipway::core {

struct ModelConfig;
struct TensorConfig;

// A text field tokenized BERT-style (see processing/tokenizer.h for the exact rules).
struct TokenizerConfig {
  std::string vocab;              // file in the model's folder, one token per line
  bool lowercase = true;
  int64_t max_length = 0;         // ids per row after padding / truncation (required, >= 1)
  std::string pad_token = "[PAD]";
  std::string unk_token = "[UNK]";
  std::string cls_token;          // "" : none prepended
  std::string sep_token;          // "" : none appended
  int64_t max_chars = 10000;      // longer text (in code points) is refused

  bool operator==(const TokenizerConfig&) const = default;
};

struct PredictInputConfig {
  std::string tensor;             // the model input this fills
  // Text input: `text_field` names the JSON string field.
  std::string text_field;
  TokenizerConfig tokenizer;
  std::string mask_tensor;        // optional: 1 for real tokens, 0 for padding
  // Numeric input: JSON number fields, in order, into one row.
  std::vector<std::string> fields;
  std::vector<double> mean;       // standardize: (value - mean) / std; both empty when off
  std::vector<double> stddev;

  bool is_text() const { return !text_field.empty(); }

  bool operator==(const PredictInputConfig&) const = default;
};

struct PredictOutputConfig {
  std::string tensor;             // an output of the last model of the chain
  bool softmax = false;           // over the last dimension
  std::string labels;             // file in the model's folder, one label per line; "" : indices
  std::string label_field;        // the top-1 label (or index)
  std::string score_field;        // the top-1 score
  int64_t top_k = 0;              // > 0: `top_field` holds the k best {label, score}
  std::string top_field;
  std::string values_field;       // the row's values (a scalar when the row holds one value)

  bool operator==(const PredictOutputConfig&) const = default;
};

// One further model of a pipeline: its inputs are named outputs of the model before it.
struct PredictStepConfig {
  std::string model;
  std::vector<std::pair<std::string, std::string>> inputs;  // next input -> previous output

  bool operator==(const PredictStepConfig&) const = default;
};

struct PredictConfig {
  bool enabled = false;           // a `predict:` section is present
  bool is_default = false;        // POST /predict without ?model= goes here
  std::vector<PredictInputConfig> inputs;
  std::vector<PredictOutputConfig> outputs;  // empty: every output under its tensor name
  std::vector<PredictStepConfig> then;

  bool operator==(const PredictConfig&) const = default;
};

// The per-row shape of `tensor` when a row holds `elements` values: the tensor's dims (without
// the batch dimension), with a single -1 derived from `elements`. InvalidArgument when the dims
// cannot hold exactly `elements` values.
Result<Shape> PredictRowShape(const TensorConfig& tensor, int64_t elements);

// Checks a config's predict section against its tensors (after auto-complete): every input the
// section names exists and has a datatype it can fill, every model input is filled exactly once,
// row shapes fit, output tensors exist (when there is no `then`), and the named files exist in
// the model's folder. Ok when the section is absent.
Status ValidatePredictConfig(const ModelConfig& config);

}  // namespace slipway::core
