#include "slipway/repository/predict_config_yaml.h"

#include <cmath>
#include <set>

namespace slipway::repository {

using core::Status;

namespace {

Status Bad(const std::string& message) { return Status::InvalidArgument(message); }

std::string Shown(const YAML::Node& n) {
  if (n.IsScalar()) return "'" + n.Scalar() + "'";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  return "nothing";
}

Status CheckKeys(const YAML::Node& node, const std::set<std::string>& allowed,
                 const std::string& where) {
  if (!node.IsMap()) return Bad(where + " must be a mapping, got " + Shown(node));
  for (const auto& kv : node) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "?";
    if (allowed.count(key) == 0) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      return Bad(where + ": unknown key '" + key + "' (known: " + list + ")");
    }
  }
  return Status::Ok();
}

// Reads map[key] when present; `*out` keeps its value otherwise.
Status GetString(const YAML::Node& map, const std::string& where, const char* key,
                 std::string* out, bool null_clears = false) {
  const YAML::Node n = map[key];
  if (!n) return Status::Ok();
  if (n.IsNull() && null_clears) {
    out->clear();
    return Status::Ok();
  }
  if (!n.IsScalar() || n.Scalar().empty()) {
    return Bad(where + ": " + key + " must be a non-empty string, got " + Shown(n));
  }
  *out = n.Scalar();
  return Status::Ok();
}

Status GetBool(const YAML::Node& map, const std::string& where, const char* key, bool* out) {
  const YAML::Node n = map[key];
  if (!n) return Status::Ok();
  if (!n.IsScalar() || !YAML::convert<bool>::decode(n, *out)) {
    return Bad(where + ": " + key + " must be true or false, got " + Shown(n));
  }
  return Status::Ok();
}

Status GetInt(const YAML::Node& map, const std::string& where, const char* key, int64_t lo,
              int64_t hi, int64_t* out) {
  const YAML::Node n = map[key];
  if (!n) return Status::Ok();
  int64_t v = 0;
  if (!n.IsScalar() || !YAML::convert<int64_t>::decode(n, v) || v < lo || v > hi) {
    return Bad(where + ": " + key + " must be an integer within " + std::to_string(lo) + ".." +
               std::to_string(hi) + ", got " + Shown(n));
  }
  *out = v;
  return Status::Ok();
}

Status GetStrings(const YAML::Node& n, const std::string& where, const char* key,
                  std::vector<std::string>* out) {
  if (!n.IsSequence() || n.size() == 0) {
    return Bad(where + ": " + key + " must be a non-empty list of names, got " + Shown(n));
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < n.size(); ++i) {
    if (!n[i].IsScalar() || n[i].Scalar().empty()) {
      return Bad(where + ": " + key + "[" + std::to_string(i) + "] must be a non-empty string, got " +
                 Shown(n[i]));
    }
    if (!seen.insert(n[i].Scalar()).second) {
      return Bad(where + ": " + key + " names '" + n[i].Scalar() + "' twice");
    }
    out->push_back(n[i].Scalar());
  }
  return Status::Ok();
}

Status GetNumbers(const YAML::Node& n, const std::string& where, const char* key, size_t count,
                  std::vector<double>* out) {
  if (!n || !n.IsSequence() || n.size() != count) {
    return Bad(where + ": " + key + " must be a list of " + std::to_string(count) +
               " numbers (one per field)" + (n ? ", got " + Shown(n) : ", and it is missing"));
  }
  for (size_t i = 0; i < n.size(); ++i) {
    double v = 0;
    if (!n[i].IsScalar() || !YAML::convert<double>::decode(n[i], v) || !std::isfinite(v)) {
      return Bad(where + ": " + key + "[" + std::to_string(i) + "] must be a finite number, got " +
                 Shown(n[i]));
    }
    out->push_back(v);
  }
  return Status::Ok();
}

// A file the section names: relative, inside the model's folder.
Status CheckPath(const std::string& where, const char* key, const std::string& path) {
  bool parent = false;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string::npos) next = path.size();
    if (path.compare(pos, next - pos, "..") == 0) parent = true;
    pos = next + 1;
  }
  if (path.empty() || path[0] == '/' || parent || path.find('\\') != std::string::npos) {
    return Bad(where + ": " + key + " must be a path inside the model's folder (relative, "
                      "without '..'), got '" + path + "'");
  }
  return Status::Ok();
}

Status ParseTokenizer(const YAML::Node& n, const std::string& where, core::TokenizerConfig* out) {
  RETURN_IF_ERROR(CheckKeys(n,
                            {"vocab", "lowercase", "max_length", "pad_token", "unk_token",
                             "cls_token", "sep_token", "max_chars"},
                            where));
  if (!n["vocab"]) return Bad(where + ": vocab is required (a file in the model's folder)");
  RETURN_IF_ERROR(GetString(n, where, "vocab", &out->vocab));
  RETURN_IF_ERROR(CheckPath(where, "vocab", out->vocab));
  RETURN_IF_ERROR(GetBool(n, where, "lowercase", &out->lowercase));
  if (!n["max_length"]) return Bad(where + ": max_length is required (ids per row)");
  RETURN_IF_ERROR(GetInt(n, where, "max_length", 1, 1 << 20, &out->max_length));
  RETURN_IF_ERROR(GetString(n, where, "pad_token", &out->pad_token));
  RETURN_IF_ERROR(GetString(n, where, "unk_token", &out->unk_token));
  RETURN_IF_ERROR(GetString(n, where, "cls_token", &out->cls_token, true));
  RETURN_IF_ERROR(GetString(n, where, "sep_token", &out->sep_token, true));
  RETURN_IF_ERROR(GetInt(n, where, "max_chars", 1, int64_t{1} << 30, &out->max_chars));
  const int64_t specials = (out->cls_token.empty() ? 0 : 1) + (out->sep_token.empty() ? 0 : 1);
  if (out->max_length <= specials) {
    return Bad(where + ": max_length " + std::to_string(out->max_length) +
               " leaves no room for text besides cls_token and sep_token");
  }
  return Status::Ok();
}

Status ParseInput(const YAML::Node& n, const std::string& where, core::PredictInputConfig* out) {
  RETURN_IF_ERROR(CheckKeys(n,
                            {"tensor", "text", "tokenizer", "mask_tensor", "fields",
                             "standardize"},
                            where));
  if (!n["tensor"]) return Bad(where + ": tensor is required (the model input it fills)");
  RETURN_IF_ERROR(GetString(n, where, "tensor", &out->tensor));
  if (n["text"] && n["fields"]) {
    return Bad(where + ": give either text (a text field) or fields (numeric fields), not both");
  }
  if (n["text"]) {
    RETURN_IF_ERROR(GetString(n, where, "text", &out->text_field));
    if (n["standardize"]) return Bad(where + ": standardize goes with fields, not text");
    if (!n["tokenizer"]) return Bad(where + ": a text input needs a tokenizer");
    RETURN_IF_ERROR(ParseTokenizer(n["tokenizer"], where + " tokenizer", &out->tokenizer));
    RETURN_IF_ERROR(GetString(n, where, "mask_tensor", &out->mask_tensor, true));
    if (out->mask_tensor == out->tensor) {
      return Bad(where + ": mask_tensor must differ from tensor '" + out->tensor + "'");
    }
    return Status::Ok();
  }
  if (!n["fields"]) {
    return Bad(where + ": give text (a text field) or fields (a list of numeric fields)");
  }
  if (n["tokenizer"] || n["mask_tensor"]) {
    return Bad(where + ": tokenizer and mask_tensor go with text, not fields");
  }
  RETURN_IF_ERROR(GetStrings(n["fields"], where, "fields", &out->fields));
  if (const YAML::Node s = n["standardize"]) {
    const std::string at = where + " standardize";
    RETURN_IF_ERROR(CheckKeys(s, {"mean", "std"}, at));
    RETURN_IF_ERROR(GetNumbers(s["mean"], at, "mean", out->fields.size(), &out->mean));
    RETURN_IF_ERROR(GetNumbers(s["std"], at, "std", out->fields.size(), &out->stddev));
    for (size_t i = 0; i < out->stddev.size(); ++i) {
      if (!(out->stddev[i] > 0)) {
        return Bad(at + ": std[" + std::to_string(i) + "] (field '" + out->fields[i] +
                   "') must be > 0");
      }
    }
  }
  return Status::Ok();
}

Status ParseOutput(const YAML::Node& n, const std::string& where, core::PredictOutputConfig* out) {
  RETURN_IF_ERROR(CheckKeys(n,
                            {"tensor", "softmax", "labels", "label_field", "score_field", "top_k",
                             "top_field", "values_field"},
                            where));
  if (!n["tensor"]) return Bad(where + ": tensor is required (an output of the model)");
  RETURN_IF_ERROR(GetString(n, where, "tensor", &out->tensor));
  RETURN_IF_ERROR(GetBool(n, where, "softmax", &out->softmax));
  RETURN_IF_ERROR(GetString(n, where, "labels", &out->labels, true));
  if (!out->labels.empty()) RETURN_IF_ERROR(CheckPath(where, "labels", out->labels));
  RETURN_IF_ERROR(GetString(n, where, "label_field", &out->label_field, true));
  RETURN_IF_ERROR(GetString(n, where, "score_field", &out->score_field, true));
  RETURN_IF_ERROR(GetInt(n, where, "top_k", 0, 1 << 20, &out->top_k));
  RETURN_IF_ERROR(GetString(n, where, "top_field", &out->top_field, true));
  RETURN_IF_ERROR(GetString(n, where, "values_field", &out->values_field, true));
  if (out->top_k > 0 && out->top_field.empty()) out->top_field = "top";
  if (out->top_k == 0 && !out->top_field.empty()) {
    return Bad(where + ": top_field '" + out->top_field + "' needs top_k > 0");
  }
  if (out->label_field.empty() && out->score_field.empty() && out->top_k == 0 &&
      out->values_field.empty()) {
    out->values_field = out->tensor;  // nothing asked for: the values under the tensor's name
  }
  return Status::Ok();
}

Status ParseStep(const YAML::Node& n, const std::string& where, core::PredictStepConfig* out) {
  RETURN_IF_ERROR(CheckKeys(n, {"model", "inputs"}, where));
  if (!n["model"]) return Bad(where + ": model is required");
  RETURN_IF_ERROR(GetString(n, where, "model", &out->model));
  const YAML::Node in = n["inputs"];
  if (!in || !in.IsMap() || in.size() == 0) {
    return Bad(where + ": inputs must be a non-empty mapping {next input: previous output}" +
               (in ? ", got " + Shown(in) : std::string()));
  }
  for (const auto& kv : in) {
    if (!kv.first.IsScalar() || kv.first.Scalar().empty() || !kv.second.IsScalar() ||
        kv.second.Scalar().empty()) {
      return Bad(where + ": inputs must map input names to output names (strings)");
    }
    out->inputs.emplace_back(kv.first.Scalar(), kv.second.Scalar());
  }
  return Status::Ok();
}

}  // namespace

Status ParsePredictConfig(const YAML::Node& node, const std::string& where,
                          core::PredictConfig* out) {
  *out = core::PredictConfig();
  out->enabled = true;
  if (node.IsNull()) return Bad(where + " needs inputs");
  RETURN_IF_ERROR(CheckKeys(node, {"default", "inputs", "outputs", "then"}, where));
  RETURN_IF_ERROR(GetBool(node, where, "default", &out->is_default));
  const YAML::Node inputs = node["inputs"];
  if (!inputs || !inputs.IsSequence() || inputs.size() == 0) {
    return Bad(where + ": inputs must be a non-empty list" +
               (inputs ? ", got " + Shown(inputs) : std::string()));
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    core::PredictInputConfig in;
    RETURN_IF_ERROR(ParseInput(inputs[i], where + " inputs[" + std::to_string(i) + "]", &in));
    out->inputs.push_back(std::move(in));
  }
  if (const YAML::Node outputs = node["outputs"]) {
    if (!outputs.IsSequence()) return Bad(where + ": outputs must be a list, got " + Shown(outputs));
    std::set<std::string> fields;
    for (size_t i = 0; i < outputs.size(); ++i) {
      const std::string at = where + " outputs[" + std::to_string(i) + "]";
      core::PredictOutputConfig o;
      RETURN_IF_ERROR(ParseOutput(outputs[i], at, &o));
      for (const std::string* f : {&o.label_field, &o.score_field, &o.top_field, &o.values_field}) {
        if (!f->empty() && !fields.insert(*f).second) {
          return Bad(at + ": the answer field '" + *f + "' is used twice");
        }
      }
      out->outputs.push_back(std::move(o));
    }
  }
  if (const YAML::Node then = node["then"]) {
    if (!then.IsSequence() || then.size() == 0) {
      return Bad(where + ": then must be a non-empty list of {model, inputs}, got " + Shown(then));
    }
    for (size_t i = 0; i < then.size(); ++i) {
      core::PredictStepConfig step;
      RETURN_IF_ERROR(ParseStep(then[i], where + " then[" + std::to_string(i) + "]", &step));
      out->then.push_back(std::move(step));
    }
  }
  return Status::Ok();
}

}  // namespace slipway::repository
