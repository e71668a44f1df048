// The encoding half of tfserving_json_codec.h: core::InferResponse -> TF Serving JSON.
#include "slipway/frontends/http/tfserving_json_codec.h"

#include <simdjson.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "slipway/core/float16.h"
#include "slipway/core/json_writer.h"

namespace slipway::frontends::http {

using core::DataType;
using core::Status;

namespace {

Status Bad(std::string message) { return Status::InvalidArgument(std::move(message)); }

template <typename T>
T Load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

bool IsFloating(DataType t) {
  return t == DataType::kFp16 || t == DataType::kFp32 || t == DataType::kFp64 ||
         t == DataType::kBf16;
}

// Writes the elements of one tensor as JSON values.
class ElementWriter {
 public:
  ElementWriter(const core::Tensor& t, bool b64_request) : t_(t) {
    const std::string_view b = t.bytes();
    if (t.type() == DataType::kBytes) {
      strings_ = core::SplitBytesElements(b);
      count_ = strings_.size();
      const std::string& name = t.name();
      b64_ = b64_request || (name.size() >= 6 && name.compare(name.size() - 6, 6, "_bytes") == 0);
      for (size_t i = 0; i < strings_.size() && !b64_; ++i) {
        b64_ = !simdjson::validate_utf8(strings_[i].data(), strings_[i].size());
      }
    } else {
      width_ = core::DataTypeByteSize(t.type());
      count_ = width_ ? b.size() / width_ : 0;
    }
  }

  size_t count() const { return count_; }

  void Write(core::JsonWriter& w, size_t i) const {
    const char* p = t_.bytes().data() + i * width_;
    switch (t_.type()) {
      case DataType::kBool: w.Bool(*p != 0); break;
      case DataType::kInt8: w.Int(Load<int8_t>(p)); break;
      case DataType::kInt16: w.Int(Load<int16_t>(p)); break;
      case DataType::kInt32: w.Int(Load<int32_t>(p)); break;
      case DataType::kInt64: w.Int(Load<int64_t>(p)); break;
      case DataType::kUint8: w.Uint(Load<uint8_t>(p)); break;
      case DataType::kUint16: w.Uint(Load<uint16_t>(p)); break;
      case DataType::kUint32: w.Uint(Load<uint32_t>(p)); break;
      case DataType::kUint64: w.Uint(Load<uint64_t>(p)); break;
      case DataType::kFp16: w.Float(core::HalfBitsToFloat(Load<uint16_t>(p))); break;
      case DataType::kBf16: w.Float(core::Bf16BitsToFloat(Load<uint16_t>(p))); break;
      case DataType::kFp32: w.Float(Load<float>(p)); break;
      case DataType::kFp64: w.Double(Load<double>(p)); break;
      case DataType::kBytes:
        if (b64_) {
          w.StartObject();
          w.Key("b64");
          w.String(Base64Encode(strings_[i]));
          w.EndObject();
        } else {
          w.String(strings_[i]);
        }
        break;
      case DataType::kInvalid: w.Null(); break;
    }
  }

  // The element as a number (classify scores); 0 for BYTES.
  double Number(size_t i) const {
    const char* p = t_.bytes().data() + i * width_;
    switch (t_.type()) {
      case DataType::kBool: return *p != 0 ? 1 : 0;
      case DataType::kInt8: return Load<int8_t>(p);
      case DataType::kInt16: return Load<int16_t>(p);
      case DataType::kInt32: return Load<int32_t>(p);
      case DataType::kInt64: return static_cast<double>(Load<int64_t>(p));
      case DataType::kUint8: return Load<uint8_t>(p);
      case DataType::kUint16: return Load<uint16_t>(p);
      case DataType::kUint32: return Load<uint32_t>(p);
      case DataType::kUint64: return static_cast<double>(Load<uint64_t>(p));
      case DataType::kFp16: return core::HalfBitsToFloat(Load<uint16_t>(p));
      case DataType::kBf16: return core::Bf16BitsToFloat(Load<uint16_t>(p));
      case DataType::kFp32: return Load<float>(p);
      case DataType::kFp64: return Load<double>(p);
      default: return 0;
    }
  }

  // The element as a class label: BYTES as is, numbers in decimal.
  std::string Label(size_t i) const {
    switch (t_.type()) {
      case DataType::kBytes: return std::string(strings_[i]);
      case DataType::kUint64: return std::to_string(Load<uint64_t>(t_.bytes().data() + i * width_));
      default: {
        core::JsonWriter w;
        Write(w, i);
        return w.Take();
      }
    }
  }

 private:
  const core::Tensor& t_;
  std::vector<std::string_view> strings_;
  size_t width_ = 0;
  size_t count_ = 0;
  bool b64_ = false;
};

// Writes elements from `*index` on as nested lists of shape[dim:].
void WriteNested(core::JsonWriter& w, const ElementWriter& ew, const core::Shape& shape, size_t dim,
                 size_t* index) {
  if (dim == shape.size()) {
    ew.Write(w, (*index)++);
    return;
  }
  w.StartArray();
  for (int64_t k = 0; k < shape[dim]; ++k) WriteNested(w, ew, shape, dim + 1, index);
  w.EndArray();
}

Status CheckCount(const core::Tensor& t, const ElementWriter& ew) {
  auto n = core::ElementCount(t.shape());
  if (!n.ok() || static_cast<size_t>(*n) != ew.count()) {
    return Status::Internal("output '" + t.name() + "' holds " + std::to_string(ew.count()) +
                            " elements but its shape is " + core::ShapeToString(t.shape()));
  }
  return Status::Ok();
}

// Values per row of an output that must have `rows` rows.
core::Result<size_t> PerRow(const core::Tensor& t, const ElementWriter& ew, int64_t rows,
                            const char* verb) {
  RETURN_IF_ERROR(CheckCount(t, ew));
  if (t.shape().empty() || t.shape()[0] != rows || rows <= 0) {
    return Bad(std::string(verb) + ": output '" + t.name() + "' has shape " +
               core::ShapeToString(t.shape()) + ", which does not have one row per example (" +
               std::to_string(rows) + ")");
  }
  return ew.count() / static_cast<size_t>(rows);
}

std::string OutputNames(const core::InferResponse& response) {
  std::string names;
  for (const auto& t : response.outputs) names += (names.empty() ? "'" : ", '") + t.name() + "'";
  return names;
}

const core::Tensor* FindOutput(const core::InferResponse& response, std::string_view name) {
  for (const auto& t : response.outputs) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

}  // namespace

core::Result<std::string> EncodeTfPredictResponse(const core::InferResponse& response,
                                                  const TfRequestInfo& info) {
  std::vector<ElementWriter> writers;
  writers.reserve(response.outputs.size());
  for (const auto& t : response.outputs) {
    writers.emplace_back(t, info.b64);
    RETURN_IF_ERROR(CheckCount(t, writers.back()));
  }
  core::JsonWriter w;
  w.StartObject();
  if (!info.row_format) {
    w.Key("outputs");
    const bool single = response.outputs.size() == 1;
    if (!single) w.StartObject();
    for (size_t i = 0; i < response.outputs.size(); ++i) {
      if (!single) w.Key(response.outputs[i].name());
      size_t index = 0;
      WriteNested(w, writers[i], response.outputs[i].shape(), 0, &index);
    }
    if (!single) w.EndObject();
    w.EndObject();
    return w.Take();
  }
  int64_t rows = -1;
  const core::Tensor* first = nullptr;
  for (const auto& t : response.outputs) {
    if (t.shape().empty()) {
      return Bad("output '" + t.name() + "' is a scalar and has no rows to return as "
                 "'predictions'; use the columnar format ('inputs')");
    }
    if (first != nullptr && t.shape()[0] != rows) {
      return Bad("output '" + t.name() + "' has " + std::to_string(t.shape()[0]) +
                 " rows but output '" + first->name() + "' has " + std::to_string(rows) +
                 "; use the columnar format ('inputs')");
    }
    rows = t.shape()[0];
    first = &t;
  }
  w.Key("predictions");
  w.StartArray();
  std::vector<size_t> index(response.outputs.size(), 0);
  const bool single = response.outputs.size() == 1;
  for (int64_t r = 0; r < rows; ++r) {
    if (!single) w.StartObject();
    for (size_t i = 0; i < response.outputs.size(); ++i) {
      if (!single) w.Key(response.outputs[i].name());
      WriteNested(w, writers[i], response.outputs[i].shape(), 1, &index[i]);
    }
    if (!single) w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.Take();
}

core::Result<std::string> EncodeTfClassifyResponse(const core::InferResponse& response,
                                                   const TfRequestInfo& info) {
  const core::Tensor* scores = FindOutput(response, "scores");
  if (scores == nullptr || !IsFloating(scores->type())) {
    scores = nullptr;
    for (const auto& t : response.outputs) {
      if (!IsFloating(t.type())) continue;
      if (scores != nullptr) {
        return Bad("classify: the model has several floating-point outputs (" +
                   OutputNames(response) + ") and none is named 'scores'");
      }
      scores = &t;
    }
  }
  const core::Tensor* classes = FindOutput(response, "classes");
  if (classes != nullptr && (classes->type() == DataType::kBool || IsFloating(classes->type()))) {
    classes = nullptr;
  }
  if (scores == nullptr && classes == nullptr) {
    return Bad("classify needs a floating-point output of class scores (or one named 'classes'); "
               "the model's outputs are " + OutputNames(response));
  }
  std::optional<ElementWriter> score_w;
  std::optional<ElementWriter> class_w;
  size_t per_row = 0;
  if (scores != nullptr) {
    score_w.emplace(*scores, false);
    ASSIGN_OR_RETURN(per_row, PerRow(*scores, *score_w, info.rows, "classify"));
  }
  if (classes != nullptr) {
    class_w.emplace(*classes, false);
    ASSIGN_OR_RETURN(const size_t n, PerRow(*classes, *class_w, info.rows, "classify"));
    if (scores == nullptr) {
      per_row = n;
    } else if (n != per_row) {
      class_w.reset();  // not the labels of these scores
    }
  }
  core::JsonWriter w;
  w.StartObject();
  w.Key("results");
  w.StartArray();
  for (int64_t r = 0; r < info.rows; ++r) {
    w.StartArray();
    for (size_t k = 0; k < per_row; ++k) {
      const size_t i = static_cast<size_t>(r) * per_row + k;
      w.StartArray();
      w.String(class_w ? class_w->Label(i) : std::to_string(k));
      if (score_w) {
        if (scores->type() == DataType::kFp64) {
          w.Double(score_w->Number(i));
        } else {
          w.Float(static_cast<float>(score_w->Number(i)));
        }
      } else {
        w.Float(0);
      }
      w.EndArray();
    }
    w.EndArray();
  }
  w.EndArray();
  w.EndObject();
  return w.Take();
}

core::Result<std::string> EncodeTfRegressResponse(const core::InferResponse& response,
                                                  const TfRequestInfo& info) {
  const core::Tensor* out = response.outputs.size() == 1 ? &response.outputs[0]
                                                         : FindOutput(response, "outputs");
  if (out == nullptr) {
    return Bad("regress needs a model with one output (or an output named 'outputs'); the "
               "model's outputs are " + OutputNames(response));
  }
  if (out->type() == DataType::kBytes) {
    return Bad("regress: output '" + out->name() + "' holds BYTES, not numbers");
  }
  ElementWriter ew(*out, false);
  ASSIGN_OR_RETURN(const size_t per_row, PerRow(*out, ew, info.rows, "regress"));
  if (per_row != 1) {
    return Bad("regress needs one value per example; output '" + out->name() + "' has " +
               std::to_string(per_row) + " (shape " + core::ShapeToString(out->shape()) + ")");
  }
  core::JsonWriter w;
  w.StartObject();
  w.Key("results");
  w.StartArray();
  for (int64_t r = 0; r < info.rows; ++r) ew.Write(w, static_cast<size_t>(r));
  w.EndArray();
  w.EndObject();
  return w.Take();
}

}  // namespace slipway::frontends::http
