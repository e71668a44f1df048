#include "slipway/core/predict_config.h"

#include <filesystem>
#include <fstream>
#include <set>

#include "slipway/core/model_config.h"

namespace slipway::core {

Result<Shape> PredictRowShape(const TensorConfig& tensor, int64_t elements) {
  Shape shape = tensor.dims;
  int64_t fixed = 1;
  int variable = 0;
  for (int64_t d : shape) {
    if (d < 0) {
      ++variable;
    } else {
      fixed *= d;
    }
  }
  const auto mismatch = [&] {
    return Status::InvalidArgument("tensor '" + tensor.name + "' has dims " +
                                   ShapeToString(tensor.dims) + " per row, which cannot hold " +
                                   std::to_string(elements) + " values");
  };
  if (variable > 1) {
    return Status::InvalidArgument("tensor '" + tensor.name + "' has dims " +
                                   ShapeToString(tensor.dims) +
                                   " with more than one variable dimension; a row's shape is "
                                   "ambiguous (give the dims in config.yaml)");
  }
  if (variable == 0) {
    if (fixed != elements) return mismatch();
    return shape;
  }
  if (fixed <= 0 || elements % fixed != 0 || elements / fixed < 1) return mismatch();
  for (int64_t& d : shape) {
    if (d < 0) d = elements / fixed;
  }
  return shape;
}

namespace {

bool IsIdType(DataType t) { return t == DataType::kInt64 || t == DataType::kInt32; }

bool IsNumericType(DataType t) {
  return t == DataType::kFp32 || t == DataType::kFp64 || t == DataType::kInt64 ||
         t == DataType::kInt32;
}

Status CheckFile(const ModelConfig& config, const std::string& where, const std::string& file) {
  if (config.directory.empty() || file.empty()) return Status::Ok();
  std::error_code ec;
  const auto path = std::filesystem::path(config.directory) / file;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Status::NotFound(where + ": '" + file + "' is not a file in the model's folder (" +
                            path.string() + ")");
  }
  return Status::Ok();
}

// The special tokens a tokenizer names must be lines of its vocabulary (one trailing "\r"
// ignored, as processing::Tokenizer reads it).
Status CheckVocab(const ModelConfig& config, const std::string& where,
                  const TokenizerConfig& tokenizer) {
  RETURN_IF_ERROR(CheckFile(config, where + " tokenizer vocab", tokenizer.vocab));
  if (config.directory.empty()) return Status::Ok();
  std::ifstream in(std::filesystem::path(config.directory) / tokenizer.vocab, std::ios::binary);
  std::set<std::string> wanted;
  for (const std::string* t : {&tokenizer.pad_token, &tokenizer.unk_token, &tokenizer.cls_token,
                               &tokenizer.sep_token}) {
    if (!t->empty()) wanted.insert(*t);
  }
  std::string line;
  while (!wanted.empty() && std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    wanted.erase(line);
  }
  if (!wanted.empty()) {
    return Status::InvalidArgument(where + " tokenizer: '" + *wanted.begin() +
                                   "' is not in the vocabulary '" + tokenizer.vocab + "'");
  }
  return Status::Ok();
}

}  // namespace

Status ValidatePredictConfig(const ModelConfig& config) {
  const PredictConfig& p = config.predict;
  if (!p.enabled) return Status::Ok();
  const std::string where = "model '" + config.name + "' predict";
  if (p.inputs.empty()) return Status::InvalidArgument(where + ": no inputs");
  std::set<std::string> produced;
  auto produce = [&](const std::string& at, const std::string& name) -> Result<const TensorConfig*> {
    const TensorConfig* t = config.FindInput(name);
    if (t == nullptr) {
      std::string list;
      for (const auto& in : config.inputs) list += (list.empty() ? "" : ", ") + in.name;
      return Status::InvalidArgument(at + ": the model has no input '" + name + "' (inputs: " +
                                     list + ")");
    }
    if (!produced.insert(name).second) {
      return Status::InvalidArgument(at + ": input '" + name + "' is filled twice");
    }
    return t;
  };
  for (size_t i = 0; i < p.inputs.size(); ++i) {
    const PredictInputConfig& in = p.inputs[i];
    const std::string at = where + " inputs[" + std::to_string(i) + "]";
    ASSIGN_OR_RETURN(const TensorConfig* t, produce(at, in.tensor));
    if (in.is_text()) {
      if (!IsIdType(t->type)) {
        return Status::InvalidArgument(at + ": a text input fills INT64 or INT32 ids, but '" +
                                       in.tensor + "' is " + std::string(DataTypeName(t->type)));
      }
      if (auto shape = PredictRowShape(*t, in.tokenizer.max_length); !shape.ok()) {
        return Status::InvalidArgument(at + " (tokenizer max_length " +
                                       std::to_string(in.tokenizer.max_length) +
                                       "): " + shape.status().message());
      }
      RETURN_IF_ERROR(CheckVocab(config, at, in.tokenizer));
      if (!in.mask_tensor.empty()) {
        ASSIGN_OR_RETURN(const TensorConfig* m, produce(at + " mask_tensor", in.mask_tensor));
        if (!IsIdType(m->type)) {
          return Status::InvalidArgument(at + ": mask_tensor '" + in.mask_tensor +
                                         "' must be INT64 or INT32, not " +
                                         std::string(DataTypeName(m->type)));
        }
        if (auto shape = PredictRowShape(*m, in.tokenizer.max_length); !shape.ok()) {
          return Status::InvalidArgument(at + " mask_tensor: " + shape.status().message());
        }
      }
    } else {
      if (!IsNumericType(t->type)) {
        return Status::InvalidArgument(at + ": numeric fields fill FP32, FP64, INT64 or INT32, "
                                       "but '" + in.tensor + "' is " + std::string(DataTypeName(t->type)));
      }
      if (!in.mean.empty() && t->type != DataType::kFp32 && t->type != DataType::kFp64) {
        return Status::InvalidArgument(at + ": standardize needs a floating-point input, but '" +
                                       in.tensor + "' is " + std::string(DataTypeName(t->type)));
      }
      if (auto shape = PredictRowShape(*t, static_cast<int64_t>(in.fields.size())); !shape.ok()) {
        return Status::InvalidArgument(at + " (" + std::to_string(in.fields.size()) +
                                       " fields): " + shape.status().message());
      }
    }
  }
  for (const auto& in : config.inputs) {
    if (produced.count(in.name) == 0) {
      return Status::InvalidArgument(where + ": model input '" + in.name +
                                     "' is not filled by any predict input");
    }
  }
  for (size_t i = 0; i < p.outputs.size(); ++i) {
    const PredictOutputConfig& out = p.outputs[i];
    const std::string at = where + " outputs[" + std::to_string(i) + "]";
    RETURN_IF_ERROR(CheckFile(config, at + " labels", out.labels));
    if (!p.then.empty()) continue;  // names an output of the pipeline's last model
    const TensorConfig* t = config.FindOutput(out.tensor);
    if (t == nullptr) {
      std::string list;
      for (const auto& o : config.outputs) list += (list.empty() ? "" : ", ") + o.name;
      return Status::InvalidArgument(at + ": the model has no output '" + out.tensor +
                                     "' (outputs: " + list + ")");
    }
    const bool scores = out.softmax || !out.label_field.empty() || !out.score_field.empty() ||
                        out.top_k > 0;
    if (scores && (t->type == DataType::kBytes || t->type == DataType::kBool)) {
      return Status::InvalidArgument(at + ": softmax, labels and scores need a numeric output, "
                                     "but '" + out.tensor + "' is " + std::string(DataTypeName(t->type)));
    }
  }
  return Status::Ok();
}

}  // namespace slipway::core
