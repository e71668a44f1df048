#include "slipway/processing/model_processor.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>
#include <sstream>

#include "slipway/core/json_writer.h"

namespace slipway::processing {

using core::DataType;
using core::Result;
using core::Status;
namespace dom = simdjson::dom;

void SoftmaxRuns(std::vector<double>& values, size_t width) {
  if (width == 0) return;
  for (size_t start = 0; start + width <= values.size(); start += width) {
    double top = -std::numeric_limits<double>::infinity();
    for (size_t i = start; i < start + width; ++i) top = std::max(top, values[i]);
    if (!std::isfinite(top)) top = 0;
    double sum = 0;
    for (size_t i = start; i < start + width; ++i) {
      values[i] = std::exp(values[i] - top);
      sum += values[i];
    }
    for (size_t i = start; i < start + width; ++i) values[i] /= sum;
  }
}

std::vector<size_t> TopK(const std::vector<double>& values, size_t k) {
  std::vector<size_t> order(values.size());
  std::iota(order.begin(), order.end(), size_t{0});
  k = std::min(k, order.size());
  // NaN sorts last.
  auto better = [&](size_t a, size_t b) {
    const double x = values[a];
    const double y = values[b];
    if (std::isnan(x) != std::isnan(y)) return std::isnan(y);
    if (x != y && !std::isnan(x)) return x > y;
    return a < b;
  };
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                    better);
  order.resize(k);
  return order;
}

namespace {

Result<std::vector<std::string>> ReadLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot read '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  const std::string s = text.str();
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find('\n', pos);
    if (end == std::string::npos) end = s.size();
    std::string line = s.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    pos = end + 1;
  }
  return lines;
}

std::string Row(bool list, size_t index) {
  return list ? "row " + std::to_string(index) + ": " : std::string();
}

const char* KindName(dom::element_type t) {
  switch (t) {
    case dom::element_type::ARRAY: return "a list";
    case dom::element_type::OBJECT: return "an object";
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
    case dom::element_type::DOUBLE: return "a number";
    case dom::element_type::STRING: return "a string";
    case dom::element_type::BOOL: return "a boolean";
    case dom::element_type::NULL_VALUE: return "null";
  }
  return "something else";
}

template <typename T>
void Append(std::string& out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out.append(buf, sizeof(T));
}

template <typename T>
T Load(std::string_view bytes, size_t i) {
  T v;
  std::memcpy(&v, bytes.data() + i * sizeof(T), sizeof(T));
  return v;
}

double NumberAt(const core::Tensor& t, size_t i) {
  const std::string_view b = t.bytes();
  switch (t.type()) {
    case DataType::kBool: return Load<uint8_t>(b, i) != 0 ? 1 : 0;
    case DataType::kInt8: return Load<int8_t>(b, i);
    case DataType::kInt16: return Load<int16_t>(b, i);
    case DataType::kInt32: return Load<int32_t>(b, i);
    case DataType::kInt64: return static_cast<double>(Load<int64_t>(b, i));
    case DataType::kUint8: return Load<uint8_t>(b, i);
    case DataType::kUint16: return Load<uint16_t>(b, i);
    case DataType::kUint32: return Load<uint32_t>(b, i);
    case DataType::kUint64: return static_cast<double>(Load<uint64_t>(b, i));
    case DataType::kFp32: return Load<float>(b, i);
    case DataType::kFp64: return Load<double>(b, i);
    default: return 0;
  }
}

// A number as the tensor's datatype would show it (FP32 in its shortest float form).
void WriteNumber(core::JsonWriter& w, DataType type, double v) {
  if (type == DataType::kFp32) {
    w.Float(static_cast<float>(v));
  } else {
    w.Double(v);
  }
}

void WriteRaw(core::JsonWriter& w, const core::Tensor& t, size_t i,
              const std::vector<std::string_view>& strings) {
  const std::string_view b = t.bytes();
  switch (t.type()) {
    case DataType::kBool: w.Bool(Load<uint8_t>(b, i) != 0); break;
    case DataType::kInt8: w.Int(Load<int8_t>(b, i)); break;
    case DataType::kInt16: w.Int(Load<int16_t>(b, i)); break;
    case DataType::kInt32: w.Int(Load<int32_t>(b, i)); break;
    case DataType::kInt64: w.Int(Load<int64_t>(b, i)); break;
    case DataType::kUint8: w.Uint(Load<uint8_t>(b, i)); break;
    case DataType::kUint16: w.Uint(Load<uint16_t>(b, i)); break;
    case DataType::kUint32: w.Uint(Load<uint32_t>(b, i)); break;
    case DataType::kUint64: w.Uint(Load<uint64_t>(b, i)); break;
    case DataType::kFp32: w.Float(Load<float>(b, i)); break;
    case DataType::kFp64: w.Double(Load<double>(b, i)); break;
    case DataType::kBytes: w.String(i < strings.size() ? strings[i] : std::string_view()); break;
    default: w.Null();
  }
}

}  // namespace

Result<std::shared_ptr<const ModelProcessor>> ModelProcessor::Create(
    const core::ModelConfig& config) {
  if (!config.predict.enabled) {
    return Status::NotFound("model '" + config.name + "' has no predict section in its config");
  }
  std::shared_ptr<ModelProcessor> p(new ModelProcessor(config));
  const core::ModelConfig& c = p->config_;
  const std::string where = "model '" + c.name + "' predict";
  const std::filesystem::path dir(c.directory);
  for (size_t i = 0; i < c.predict.inputs.size(); ++i) {
    const core::PredictInputConfig& spec = c.predict.inputs[i];
    const std::string at = where + " inputs[" + std::to_string(i) + "]";
    InputPlan plan;
    plan.spec = &spec;
    const core::TensorConfig* t = c.FindInput(spec.tensor);
    if (t == nullptr) return Status::Internal(at + ": the model has no input '" + spec.tensor + "'");
    plan.type = t->type;
    const int64_t elements =
        spec.is_text() ? spec.tokenizer.max_length : static_cast<int64_t>(spec.fields.size());
    auto shape = core::PredictRowShape(*t, elements);
    if (!shape.ok()) return Status::Internal(at + ": " + shape.status().message());
    plan.row_shape = *shape;
    if (spec.is_text()) {
      auto tokenizer = Tokenizer::FromFile(spec.tokenizer, (dir / spec.tokenizer.vocab).string());
      if (!tokenizer.ok()) return Status::Internal(at + ": " + tokenizer.status().message());
      plan.tokenizer = std::move(tokenizer).value();
      if (!spec.mask_tensor.empty()) {
        const core::TensorConfig* m = c.FindInput(spec.mask_tensor);
        if (m == nullptr) {
          return Status::Internal(at + ": the model has no input '" + spec.mask_tensor + "'");
        }
        plan.mask_type = m->type;
        auto mask_shape = core::PredictRowShape(*m, spec.tokenizer.max_length);
        if (!mask_shape.ok()) return Status::Internal(at + ": " + mask_shape.status().message());
        plan.mask_row_shape = *mask_shape;
      }
    }
    p->inputs_.push_back(std::move(plan));
  }
  for (size_t i = 0; i < c.predict.outputs.size(); ++i) {
    const core::PredictOutputConfig& spec = c.predict.outputs[i];
    OutputPlan plan;
    plan.spec = &spec;
    if (!spec.labels.empty()) {
      auto labels = ReadLines((dir / spec.labels).string());
      if (!labels.ok()) {
        return Status::Internal(where + " outputs[" + std::to_string(i) + "] labels: " +
                                labels.status().message());
      }
      plan.labels = std::move(labels).value();
    }
    p->outputs_.push_back(std::move(plan));
  }
  return std::shared_ptr<const ModelProcessor>(std::move(p));
}

std::vector<std::string> ModelProcessor::RequestedOutputs() const {
  std::vector<std::string> names;
  for (const auto& o : outputs_) {
    if (std::find(names.begin(), names.end(), o.spec->tensor) == names.end()) {
      names.push_back(o.spec->tensor);
    }
  }
  return names;
}

Status ModelProcessor::Encode(const std::vector<dom::element>& items, size_t begin, size_t end,
                              bool list, bool batched, std::vector<core::Tensor>* tensors) const {
  if (!batched && end - begin != 1) {
    return Status::Internal("a model without batching takes one row at a time");
  }
  for (size_t r = begin; r < end; ++r) {
    if (items[r].type() != dom::element_type::OBJECT) {
      return Status::InvalidArgument(
          list ? "row " + std::to_string(r) + " must be a JSON object, got " +
                     KindName(items[r].type())
               : std::string("the body must be a JSON object or a list of objects, got ") +
                     KindName(items[r].type()));
    }
  }
  for (const InputPlan& plan : inputs_) {
    if (plan.spec->is_text()) {
      RETURN_IF_ERROR(EncodeText(plan, items, begin, end, list, batched, tensors));
    } else {
      RETURN_IF_ERROR(EncodeFields(plan, items, begin, end, list, batched, tensors));
    }
  }
  return Status::Ok();
}

namespace {

core::Shape WithRows(const core::Shape& row_shape, size_t rows, bool batched) {
  // Element by element: GCC 12's -Wstringop-overflow misjudges a range insert here at -O2.
  core::Shape s(row_shape.size() + (batched ? 1 : 0));
  size_t at = 0;
  if (batched) s[at++] = static_cast<int64_t>(rows);
  for (int64_t d : row_shape) s[at++] = d;
  return s;
}

void AppendIds(std::string& out, DataType type, const std::vector<int64_t>& ids) {
  for (int64_t id : ids) {
    if (type == DataType::kInt32) {
      Append<int32_t>(out, static_cast<int32_t>(id));
    } else {
      Append<int64_t>(out, id);
    }
  }
}

}  // namespace

Status ModelProcessor::EncodeText(const InputPlan& plan, const std::vector<dom::element>& items,
                                  size_t begin, size_t end, bool list, bool batched,
                                  std::vector<core::Tensor>* tensors) const {
  const core::PredictInputConfig& spec = *plan.spec;
  const size_t width = static_cast<size_t>(spec.tokenizer.max_length);
  const size_t rows = end - begin;
  std::string ids_bytes;
  std::string mask_bytes;
  const size_t id_size = plan.type == DataType::kInt32 ? 4 : 8;
  ids_bytes.reserve(rows * width * id_size);
  std::vector<int64_t> ids(width);
  std::vector<int64_t> mask(width);
  for (size_t r = begin; r < end; ++r) {
    const std::string at = Row(list, r) + "field '" + spec.text_field + "'";
    dom::element value;
    if (items[r][spec.text_field].get(value) != simdjson::SUCCESS) {
      return Status::InvalidArgument(at + " is missing");
    }
    std::string_view text;
    if (value.get_string().get(text) != simdjson::SUCCESS) {
      return Status::InvalidArgument(at + " must be a string, got " + KindName(value.type()));
    }
    const int64_t chars = Tokenizer::CodePoints(text);
    if (chars > spec.tokenizer.max_chars) {
      return Status::InvalidArgument(at + " has " + std::to_string(chars) +
                                     " characters, more than the " +
                                     std::to_string(spec.tokenizer.max_chars) + " allowed");
    }
    if (Tokenizer::IsBlank(text)) {
      return Status::InvalidArgument(at + " is empty (nothing but whitespace)");
    }
    plan.tokenizer->Encode(text, ids.data(), mask.data());
    AppendIds(ids_bytes, plan.type, ids);
    if (!spec.mask_tensor.empty()) AppendIds(mask_bytes, plan.mask_type, mask);
  }
  tensors->push_back(core::Tensor::Owned(spec.tensor, plan.type,
                                         WithRows(plan.row_shape, rows, batched),
                                         std::move(ids_bytes)));
  if (!spec.mask_tensor.empty()) {
    tensors->push_back(core::Tensor::Owned(spec.mask_tensor, plan.mask_type,
                                           WithRows(plan.mask_row_shape, rows, batched),
                                           std::move(mask_bytes)));
  }
  return Status::Ok();
}

Status ModelProcessor::EncodeFields(const InputPlan& plan, const std::vector<dom::element>& items,
                                    size_t begin, size_t end, bool list, bool batched,
                                    std::vector<core::Tensor>* tensors) const {
  const core::PredictInputConfig& spec = *plan.spec;
  const size_t rows = end - begin;
  std::string bytes;
  bytes.reserve(rows * spec.fields.size() * core::DataTypeByteSize(plan.type));
  for (size_t r = begin; r < end; ++r) {
    for (size_t f = 0; f < spec.fields.size(); ++f) {
      const std::string at = Row(list, r) + "field '" + spec.fields[f] + "'";
      dom::element value;
      if (items[r][spec.fields[f]].get(value) != simdjson::SUCCESS) {
        return Status::InvalidArgument(at + " is missing");
      }
      double v = 0;
      int64_t iv = 0;
      bool integral = false;
      switch (value.type()) {
        case dom::element_type::INT64:
          iv = value.get_int64().value_unsafe();
          v = static_cast<double>(iv);
          integral = true;
          break;
        case dom::element_type::UINT64:
          v = static_cast<double>(value.get_uint64().value_unsafe());
          break;
        case dom::element_type::DOUBLE:
          v = value.get_double().value_unsafe();
          break;
        default:
          return Status::InvalidArgument(at + " must be a number, got " + KindName(value.type()));
      }
      if (!spec.mean.empty()) v = (v - spec.mean[f]) / spec.stddev[f];
      switch (plan.type) {
        case DataType::kFp32:
          if (std::fabs(v) > std::numeric_limits<float>::max()) {
            return Status::InvalidArgument(at + " is out of range for FP32");
          }
          Append<float>(bytes, static_cast<float>(v));
          break;
        case DataType::kFp64:
          Append<double>(bytes, v);
          break;
        case DataType::kInt32:
        case DataType::kInt64: {
          if (!integral) {
            if (v != std::floor(v) || std::fabs(v) > 9.2e18) {
              return Status::InvalidArgument(at + " must be an integer for input '" + spec.tensor +
                                             "'");
            }
            iv = static_cast<int64_t>(v);
          }
          if (plan.type == DataType::kInt32) {
            if (iv < INT32_MIN || iv > INT32_MAX) {
              return Status::InvalidArgument(at + " is out of range for INT32");
            }
            Append<int32_t>(bytes, static_cast<int32_t>(iv));
          } else {
            Append<int64_t>(bytes, iv);
          }
          break;
        }
        default:
          return Status::Internal("input '" + spec.tensor + "' has a datatype predict cannot fill");
      }
    }
  }
  tensors->push_back(core::Tensor::Owned(spec.tensor, plan.type,
                                         WithRows(plan.row_shape, rows, batched),
                                         std::move(bytes)));
  return Status::Ok();
}

Status ModelProcessor::Decode(const std::vector<core::Tensor>& outputs, int64_t rows, bool batched,
                              std::vector<std::string>* answers) const {
  struct Source {
    const core::Tensor* tensor = nullptr;
    const OutputPlan* plan = nullptr;  // null: every output, raw values
    size_t per_row = 0;
    size_t last = 1;                   // size of the last dimension
    std::vector<std::string_view> strings;
  };
  std::vector<Source> sources;
  auto add = [&](const core::Tensor& t, const OutputPlan* plan) -> Status {
    Source s;
    s.tensor = &t;
    s.plan = plan;
    auto count = core::ElementCount(t.shape());
    if (!count.ok()) return count.status();
    if (batched) {
      if (t.shape().empty() || t.shape()[0] != rows) {
        return Status::Internal("output '" + t.name() + "' has shape " +
                                core::ShapeToString(t.shape()) + " for " + std::to_string(rows) +
                                " rows");
      }
    } else if (rows != 1) {
      return Status::Internal("a model without batching answers one row at a time");
    }
    s.per_row = rows > 0 ? static_cast<size_t>(*count / rows) : 0;
    const size_t inner_dims = t.shape().size() - (batched ? 1 : 0);
    s.last = inner_dims > 0 ? static_cast<size_t>(t.shape().back()) : 1;
    if (t.type() == DataType::kBytes) {
      s.strings = core::SplitBytesElements(t.bytes());
    } else if (t.type() == DataType::kFp16 || t.type() == DataType::kBf16) {
      return Status::Unimplemented("output '" + t.name() + "' is " +
                                   std::string(core::DataTypeName(t.type())) +
                                   ", which predict cannot read");
    }
    sources.push_back(std::move(s));
    return Status::Ok();
  };
  auto find = [&](const std::string& name) -> const core::Tensor* {
    for (const auto& t : outputs) {
      if (t.name() == name) return &t;
    }
    return nullptr;
  };
  if (outputs_.empty()) {
    for (const auto& t : outputs) RETURN_IF_ERROR(add(t, nullptr));
  } else {
    for (const OutputPlan& plan : outputs_) {
      const core::Tensor* t = find(plan.spec->tensor);
      if (t == nullptr) {
        return Status::Internal("the model answered without output '" + plan.spec->tensor + "'");
      }
      RETURN_IF_ERROR(add(*t, &plan));
    }
  }
  std::vector<double> values;
  for (int64_t r = 0; r < rows; ++r) {
    core::JsonWriter w;
    w.StartObject();
    for (const Source& s : sources) {
      const size_t base = static_cast<size_t>(r) * s.per_row;
      const core::PredictOutputConfig* spec = s.plan ? s.plan->spec : nullptr;
      if (spec == nullptr) {
        w.Key(s.tensor->name());
        if (s.per_row != 1) w.StartArray();
        for (size_t i = 0; i < s.per_row; ++i) WriteRaw(w, *s.tensor, base + i, s.strings);
        if (s.per_row != 1) w.EndArray();
        continue;
      }
      const bool numeric = s.tensor->type() != DataType::kBytes;
      const bool scored = !spec->label_field.empty() || !spec->score_field.empty() || spec->top_k > 0;
      if ((scored || spec->softmax) && !numeric) {
        return Status::Internal("output '" + spec->tensor + "' holds strings; softmax, labels "
                                "and scores need numbers");
      }
      if (numeric) {
        values.resize(s.per_row);
        for (size_t i = 0; i < s.per_row; ++i) values[i] = NumberAt(*s.tensor, base + i);
        if (spec->softmax) SoftmaxRuns(values, s.last);
      }
      const DataType shown = spec->softmax ? DataType::kFp64 : s.tensor->type();
      if (scored) {
        if (s.per_row != s.last || s.per_row == 0) {
          return Status::Internal("output '" + spec->tensor + "' has shape " +
                                  core::ShapeToString(s.tensor->shape()) +
                                  "; labels and scores need one vector of scores per row");
        }
        if (!s.plan->labels.empty() && s.plan->labels.size() != s.per_row) {
          return Status::Internal("model '" + config_.name + "': the labels file '" +
                                  spec->labels + "' has " + std::to_string(s.plan->labels.size()) +
                                  " labels but output '" + spec->tensor + "' has " +
                                  std::to_string(s.per_row) + " scores per row");
        }
        const size_t k = std::max<size_t>(1, static_cast<size_t>(spec->top_k));
        const std::vector<size_t> best = TopK(values, k);
        auto label = [&](size_t index) {
          if (s.plan->labels.empty()) {
            w.Int(static_cast<int64_t>(index));
          } else {
            w.String(s.plan->labels[index]);
          }
        };
        if (!spec->label_field.empty()) {
          w.Key(spec->label_field);
          label(best[0]);
        }
        if (!spec->score_field.empty()) {
          w.Key(spec->score_field);
          WriteNumber(w, shown, values[best[0]]);
        }
        if (spec->top_k > 0) {
          w.Key(spec->top_field);
          w.StartArray();
          for (size_t index : best) {
            w.StartObject();
            w.Key("label");
            label(index);
            w.Key("score");
            WriteNumber(w, shown, values[index]);
            w.EndObject();
          }
          w.EndArray();
        }
      }
      if (!spec->values_field.empty()) {
        w.Key(spec->values_field);
        if (s.per_row != 1) w.StartArray();
        for (size_t i = 0; i < s.per_row; ++i) {
          if (spec->softmax) {
            WriteNumber(w, shown, values[i]);
          } else {
            WriteRaw(w, *s.tensor, base + i, s.strings);
          }
        }
        if (s.per_row != 1) w.EndArray();
      }
    }
    w.EndObject();
    answers->push_back(w.Take());
  }
  return Status::Ok();
}

}  // namespace slipway::processing
