#include "slipway/frontends/http/tfserving_json_codec.h"

#include <simdjson.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <vector>

#include "slipway/core/float16.h"
#include "slipway/core/json_writer.h"

namespace slipway::frontends::http {

using core::DataType;
using core::Status;
namespace dom = simdjson::dom;

namespace {

Status Bad(std::string message) { return Status::InvalidArgument(std::move(message)); }

// ---- base64 ----

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

// ---- numbers ----

template <typename T>
void AppendRaw(std::string& out, T value) {
  char buf[sizeof(T)];
  std::memcpy(buf, &value, sizeof(T));
  out.append(buf, sizeof(T));
}

// ---- JSON input ----

// Quotes the bare tokens NaN, Infinity and -Infinity outside strings so that the parser takes
// them (as strings, which floating-point inputs accept). Returns nullopt when there are none.
std::optional<std::string> QuoteNonFiniteTokens(std::string_view body) {
  std::optional<std::string> out;
  size_t copied = 0;
  bool in_string = false;
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
      continue;
    }
    size_t len = 0;
    if (c == 'N' && body.substr(i, 3) == "NaN") {
      len = 3;
    } else if (c == 'I' && body.substr(i, 8) == "Infinity") {
      len = 8;
    } else if (c == '-' && body.substr(i, 9) == "-Infinity") {
      len = 9;
    }
    if (len == 0) continue;
    if (!out) out.emplace().reserve(body.size() + 16);
    out->append(body.substr(copied, i - copied));
    out->push_back('"');
    out->append(body.substr(i, len));
    out->push_back('"');
    copied = i + len;
    i += len - 1;
  }
  if (out) out->append(body.substr(copied));
  return out;
}

Status ParseRoot(std::string_view body, dom::parser& parser, dom::object* root) {
  const std::optional<std::string> quoted = QuoteNonFiniteTokens(body);
  const simdjson::padded_string json(quoted ? std::string_view(*quoted) : body);
  dom::element doc;
  if (auto err = parser.parse(json).get(doc); err != simdjson::SUCCESS) {
    return Bad(std::string("malformed JSON in request body: ") + simdjson::error_message(err));
  }
  if (doc.get_object().get(*root) != simdjson::SUCCESS) {
    return Bad("the request body must be a JSON object");
  }
  return Status::Ok();
}

Status CheckSignature(dom::object root) {
  dom::element sig;
  if (root["signature_name"].get(sig) != simdjson::SUCCESS) return Status::Ok();
  std::string_view name;
  if (sig.get_string().get(name) != simdjson::SUCCESS) {
    return Bad("'signature_name' must be a string");
  }
  if (!name.empty() && name != kTfDefaultSignature) {
    return Bad("signature '" + std::string(name) + "' not found: the model has only '" +
               std::string(kTfDefaultSignature) + "'");
  }
  return Status::Ok();
}

// Element count of an array (simdjson's count saturates at 2^24 - 1).
size_t ArraySize(dom::array a) {
  size_t n = a.size();
  if (n < 0xFFFFFF) return n;
  n = 0;
  for (auto it = a.begin(); it != a.end(); ++it) ++n;
  return n;
}

bool IsB64Object(dom::element e) {
  dom::object obj;
  if (e.get_object().get(obj) != simdjson::SUCCESS) return false;
  return obj.size() == 1 && obj["b64"].error() == simdjson::SUCCESS;
}

// An object of named tensors (not a {"b64": ...} value).
bool IsNamedObject(dom::element e) {
  return e.type() == dom::element_type::OBJECT && !IsB64Object(e);
}

std::string InputNames(const core::ModelConfig& config) {
  std::string names;
  for (const auto& in : config.inputs) names += (names.empty() ? "'" : ", '") + in.name + "'";
  return names;
}

Status UnknownInput(const std::string& where, std::string_view key, const core::ModelConfig& config,
                    const char* what) {
  return Bad(where + ": unknown " + what + " '" + std::string(key) + "'; the model's inputs are " +
             InputNames(config));
}

// Builds one input tensor from JSON values: one call per row (row format, examples) or one call
// for the whole tensor (columnar format). The first call fixes the shape every later row must have.
class TensorBuilder {
 public:
  explicit TensorBuilder(const core::TensorConfig& in) : in_(in) {}

  Status Add(dom::element value, const std::string& where) {
    where_ = &where;
    if (rows_ == 0) ShapeOf(value);
    RETURN_IF_ERROR(Append(value, 0));
    ++rows_;
    return Status::Ok();
  }

  // Appends every value in `value` (a value or nested lists of any shape), counting them.
  Status AddColumns(dom::element value, const std::string& where, int64_t* count) {
    where_ = &where;
    if (value.type() == dom::element_type::ARRAY) {
      dom::array children;
      if (value.get_array().get(children) != simdjson::SUCCESS) return Bad(where + ": bad list");
      for (dom::element child : children) {
        RETURN_IF_ERROR(AddColumns(child, where, count));
      }
      return Status::Ok();
    }
    ++*count;
    return Leaf(value);
  }

  void set_shape(core::Shape shape) { shape_ = std::move(shape); }
  void set_rows(int64_t rows) { rows_ = rows; }
  bool b64() const { return b64_; }

  // `stacked`: the rows become a new leading dimension.
  core::Tensor Take(bool stacked) {
    core::Shape shape;
    if (stacked) shape.push_back(rows_);
    shape.insert(shape.end(), shape_.begin(), shape_.end());
    return core::Tensor::Owned(in_.name, in_.type, std::move(shape), std::move(bytes_));
  }

 private:
  void ShapeOf(dom::element e) {
    shape_.clear();
    while (e.type() == dom::element_type::ARRAY) {
      const dom::array a = e.get_array().value_unsafe();
      const size_t n = ArraySize(a);
      shape_.push_back(static_cast<int64_t>(n));
      if (n == 0) return;
      e = *a.begin();
    }
  }

  Status Ragged(const std::string& what) const {
    return Bad(*where_ + ": input '" + in_.name + "' is ragged: " + what + " (the first " +
               (rows_ > 0 ? "row has shape " : "value has shape ") + core::ShapeToString(shape_) +
               "; every list at one depth must have the same length)");
  }

  Status Append(dom::element e, size_t depth) {
    if (depth == shape_.size()) {
      if (e.type() == dom::element_type::ARRAY) {
        return Ragged("a list at depth " + std::to_string(depth) + " where a value was expected");
      }
      return Leaf(e);
    }
    if (e.type() != dom::element_type::ARRAY) {
      return Ragged("a value at depth " + std::to_string(depth) + " where a list of " +
                    std::to_string(shape_[depth]) + " was expected");
    }
    const dom::array a = e.get_array().value_unsafe();
    const size_t n = ArraySize(a);
    if (static_cast<int64_t>(n) != shape_[depth]) {
      return Ragged("a list of " + std::to_string(n) + " at depth " + std::to_string(depth) +
                    " where " + std::to_string(shape_[depth]) + " were expected");
    }
    for (dom::element child : a) RETURN_IF_ERROR(Append(child, depth + 1));
    return Status::Ok();
  }

  Status TypeError(dom::element e, const char* expected) const {
    std::string got = simdjson::minify(e);
    if (got.size() > 64) got = got.substr(0, 64) + "...";
    return Bad(*where_ + ": input '" + in_.name + "' of datatype " +
               std::string(core::DataTypeName(in_.type)) + " expects " + expected + ", got " + got);
  }

  Status OutOfRange(dom::element e) const {
    return Bad(*where_ + ": input '" + in_.name + "': value " + simdjson::minify(e) +
               " is out of range for " + std::string(core::DataTypeName(in_.type)));
  }

  template <typename T>
  Status Integer(dom::element e, int64_t lo, uint64_t hi) {
    const auto kind = e.type();
    if (kind == dom::element_type::INT64) {
      const int64_t v = e.get_int64().value_unsafe();
      if (v < lo || (v > 0 && static_cast<uint64_t>(v) > hi)) return OutOfRange(e);
      AppendRaw<T>(bytes_, static_cast<T>(v));
      return Status::Ok();
    }
    if (kind == dom::element_type::UINT64) {
      const uint64_t v = e.get_uint64().value_unsafe();
      if (v > hi) return OutOfRange(e);
      AppendRaw<T>(bytes_, static_cast<T>(v));
      return Status::Ok();
    }
    return TypeError(e, "integers");
  }

  Status Floating(dom::element e) {
    double v = 0;
    switch (e.type()) {
      case dom::element_type::DOUBLE: v = e.get_double().value_unsafe(); break;
      case dom::element_type::INT64: v = static_cast<double>(e.get_int64().value_unsafe()); break;
      case dom::element_type::UINT64: v = static_cast<double>(e.get_uint64().value_unsafe()); break;
      case dom::element_type::STRING: {
        const std::string_view s = e.get_string().value_unsafe();
        if (s == "NaN") {
          v = std::numeric_limits<double>::quiet_NaN();
        } else if (s == "Infinity") {
          v = std::numeric_limits<double>::infinity();
        } else if (s == "-Infinity") {
          v = -std::numeric_limits<double>::infinity();
        } else {
          return TypeError(e, "numbers (or NaN, Infinity, -Infinity)");
        }
        break;
      }
      default: return TypeError(e, "numbers");
    }
    const bool finite = std::isfinite(v);
    switch (in_.type) {
      case DataType::kFp64: AppendRaw<double>(bytes_, v); break;
      case DataType::kFp32:
        if (finite && std::fabs(v) > std::numeric_limits<float>::max()) return OutOfRange(e);
        AppendRaw<float>(bytes_, static_cast<float>(v));
        break;
      case DataType::kFp16:
        if (finite && std::fabs(v) > 65504.0) return OutOfRange(e);
        AppendRaw<uint16_t>(bytes_, core::FloatToHalfBits(static_cast<float>(v)));
        break;
      default: {  // BF16
        if (finite && std::fabs(v) > std::numeric_limits<float>::max()) return OutOfRange(e);
        const uint16_t b = core::FloatToBf16Bits(static_cast<float>(v));
        if (finite && std::isinf(core::Bf16BitsToFloat(b))) return OutOfRange(e);
        AppendRaw<uint16_t>(bytes_, b);
      }
    }
    return Status::Ok();
  }

  Status Leaf(dom::element e) {
    if (e.type() == dom::element_type::OBJECT) {
      if (!IsB64Object(e)) return TypeError(e, "values, not an object");
      if (in_.type != DataType::kBytes) {
        return Bad(*where_ + ": input '" + in_.name + "' has datatype " +
                   std::string(core::DataTypeName(in_.type)) +
                   "; {\"b64\": ...} is only for BYTES (DT_STRING) inputs");
      }
      std::string_view text;
      if (e["b64"].get_string().get(text) != simdjson::SUCCESS) {
        return Bad(*where_ + ": input '" + in_.name + "': \"b64\" must hold a base64 string");
      }
      auto decoded = Base64Decode(text);
      if (!decoded.ok()) {
        return Bad(*where_ + ": input '" + in_.name + "': " + decoded.status().message());
      }
      core::AppendBytesElement(bytes_, *decoded);
      b64_ = true;
      return Status::Ok();
    }
    switch (in_.type) {
      case DataType::kBool:
        if (e.type() != dom::element_type::BOOL) return TypeError(e, "true or false");
        bytes_.push_back(e.get_bool().value_unsafe() ? 1 : 0);
        return Status::Ok();
      case DataType::kInt8: return Integer<int8_t>(e, INT8_MIN, INT8_MAX);
      case DataType::kInt16: return Integer<int16_t>(e, INT16_MIN, INT16_MAX);
      case DataType::kInt32: return Integer<int32_t>(e, INT32_MIN, INT32_MAX);
      case DataType::kInt64: return Integer<int64_t>(e, INT64_MIN, INT64_MAX);
      case DataType::kUint8: return Integer<uint8_t>(e, 0, UINT8_MAX);
      case DataType::kUint16: return Integer<uint16_t>(e, 0, UINT16_MAX);
      case DataType::kUint32: return Integer<uint32_t>(e, 0, UINT32_MAX);
      case DataType::kUint64: return Integer<uint64_t>(e, 0, UINT64_MAX);
      case DataType::kFp16:
      case DataType::kFp32:
      case DataType::kFp64:
      case DataType::kBf16: return Floating(e);
      case DataType::kBytes:
        if (e.type() != dom::element_type::STRING) {
          return TypeError(e, "strings or {\"b64\": \"...\"}");
        }
        core::AppendBytesElement(bytes_, e.get_string().value_unsafe());
        return Status::Ok();
      case DataType::kInvalid: break;
    }
    return Bad(*where_ + ": input '" + in_.name + "' has an invalid datatype");
  }

  const core::TensorConfig& in_;
  core::Shape shape_;
  std::string bytes_;
  int64_t rows_ = 0;
  bool b64_ = false;
  const std::string* where_ = nullptr;
};

std::vector<TensorBuilder> BuildersFor(const core::ModelConfig& config) {
  std::vector<TensorBuilder> builders;
  builders.reserve(config.inputs.size());
  for (const auto& in : config.inputs) builders.emplace_back(in);
  return builders;
}

void Finish(std::vector<TensorBuilder>& builders, bool stacked, core::InferRequest* request,
            TfRequestInfo* info) {
  for (auto& b : builders) {
    info->b64 = info->b64 || b.b64();
    request->inputs.push_back(b.Take(stacked));
  }
}

// Checks that `obj` names only the model's inputs and every one of them.
Status CheckNamedInputs(dom::object obj, const core::ModelConfig& config, const std::string& where,
                        const char* what) {
  for (auto field : obj) {
    if (config.FindInput(field.key) == nullptr) return UnknownInput(where, field.key, config, what);
  }
  for (const auto& in : config.inputs) {
    if (obj[in.name].error() != simdjson::SUCCESS) {
      return Bad(where + " lacks input '" + in.name + "' (the model's inputs are " +
                 InputNames(config) + ")");
    }
  }
  return Status::Ok();
}

Status DecodeRows(dom::element instances_el, const core::ModelConfig& config,
                  core::InferRequest* request, TfRequestInfo* info) {
  dom::array instances;
  if (instances_el.get_array().get(instances) != simdjson::SUCCESS) {
    return Bad("'instances' must be a list with one element per row");
  }
  if (instances.begin() == instances.end()) return Bad("'instances' is empty");
  const bool named = IsNamedObject(*instances.begin());
  if (!named && config.inputs.size() != 1) {
    return Bad("the model has " + std::to_string(config.inputs.size()) + " inputs (" +
               InputNames(config) + "); each instance must be an object naming them");
  }
  auto builders = BuildersFor(config);
  int64_t row = 0;
  std::string where;
  for (dom::element instance : instances) {
    where = "instances[" + std::to_string(row) + "]";
    if (named) {
      dom::object obj;
      if (!IsNamedObject(instance) || instance.get_object().get(obj) != simdjson::SUCCESS) {
        return Bad(where + " must be an object of named inputs, as instances[0] is");
      }
      RETURN_IF_ERROR(CheckNamedInputs(obj, config, where, "input"));
      for (size_t i = 0; i < config.inputs.size(); ++i) {
        RETURN_IF_ERROR(builders[i].Add(obj[config.inputs[i].name].value_unsafe(), where));
      }
    } else {
      RETURN_IF_ERROR(builders[0].Add(instance, where));
    }
    ++row;
  }
  info->row_format = true;
  info->rows = row;
  Finish(builders, true, request, info);
  return Status::Ok();
}

Status DecodeColumns(dom::element inputs_el, const core::ModelConfig& config,
                     core::InferRequest* request, TfRequestInfo* info) {
  auto builders = BuildersFor(config);
  const std::string where = "inputs";
  if (IsNamedObject(inputs_el)) {
    const dom::object obj = inputs_el.get_object().value_unsafe();
    RETURN_IF_ERROR(CheckNamedInputs(obj, config, where, "input"));
    for (size_t i = 0; i < config.inputs.size(); ++i) {
      RETURN_IF_ERROR(builders[i].Add(obj[config.inputs[i].name].value_unsafe(), where));
    }
  } else {
    if (config.inputs.size() != 1) {
      return Bad("the model has " + std::to_string(config.inputs.size()) + " inputs (" +
                 InputNames(config) + "); 'inputs' must be an object naming them");
    }
    RETURN_IF_ERROR(builders[0].Add(inputs_el, where));
  }
  info->row_format = false;
  Finish(builders, false, request, info);
  return Status::Ok();
}

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (static_cast<uint8_t>(bytes[i]) << 16) |
                       (static_cast<uint8_t>(bytes[i + 1]) << 8) |
                       static_cast<uint8_t>(bytes[i + 2]);
    out.push_back(kBase64[(v >> 18) & 63]);
    out.push_back(kBase64[(v >> 12) & 63]);
    out.push_back(kBase64[(v >> 6) & 63]);
    out.push_back(kBase64[v & 63]);
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    out.push_back(kBase64[(v >> 18) & 63]);
    out.push_back(kBase64[(v >> 12) & 63]);
    out.push_back(rest == 2 ? kBase64[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

core::Result<std::string> Base64Decode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) {
    return Bad("\"b64\" is not valid base64: " + std::to_string(text.size()) +
               " characters before the padding cannot encode whole bytes");
  }
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const int v = Base64Value(text[i]);
    if (v < 0) {
      return Bad("\"b64\" is not valid base64: character " + std::to_string(i) + " is '" +
                 std::string(1, text[i]) + "'");
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

std::string_view TfDataTypeName(DataType type) {
  switch (type) {
    case DataType::kBool: return "DT_BOOL";
    case DataType::kUint8: return "DT_UINT8";
    case DataType::kUint16: return "DT_UINT16";
    case DataType::kUint32: return "DT_UINT32";
    case DataType::kUint64: return "DT_UINT64";
    case DataType::kInt8: return "DT_INT8";
    case DataType::kInt16: return "DT_INT16";
    case DataType::kInt32: return "DT_INT32";
    case DataType::kInt64: return "DT_INT64";
    case DataType::kFp16: return "DT_HALF";
    case DataType::kFp32: return "DT_FLOAT";
    case DataType::kFp64: return "DT_DOUBLE";
    case DataType::kBytes: return "DT_STRING";
    case DataType::kBf16: return "DT_BFLOAT16";
    case DataType::kInvalid: break;
  }
  return "DT_INVALID";
}

core::Result<TfRequestInfo> DecodeTfPredictRequest(std::string_view body,
                                                    const core::ModelConfig& config,
                                                    core::InferRequest* request) {
  thread_local dom::parser parser;
  dom::object root;
  RETURN_IF_ERROR(ParseRoot(body, parser, &root));
  RETURN_IF_ERROR(CheckSignature(root));
  dom::element instances;
  dom::element inputs;
  const bool has_instances = root["instances"].get(instances) == simdjson::SUCCESS;
  const bool has_inputs = root["inputs"].get(inputs) == simdjson::SUCCESS;
  if (has_instances == has_inputs) {
    return Bad(has_instances
                   ? "the request has both 'instances' and 'inputs'; send exactly one of them"
                   : "the request needs 'instances' (row format) or 'inputs' (columnar format)");
  }
  TfRequestInfo info;
  if (has_instances) {
    RETURN_IF_ERROR(DecodeRows(instances, config, request, &info));
  } else {
    RETURN_IF_ERROR(DecodeColumns(inputs, config, request, &info));
  }
  return info;
}

core::Result<TfRequestInfo> DecodeTfExamplesRequest(std::string_view body,
                                                     const core::ModelConfig& config,
                                                     core::InferRequest* request) {
  thread_local dom::parser parser;
  dom::object root;
  RETURN_IF_ERROR(ParseRoot(body, parser, &root));
  RETURN_IF_ERROR(CheckSignature(root));
  dom::element examples_el;
  dom::array examples;
  if (root["examples"].get(examples_el) != simdjson::SUCCESS ||
      examples_el.get_array().get(examples) != simdjson::SUCCESS) {
    return Bad("the request needs 'examples', a list of objects of features");
  }
  if (examples.begin() == examples.end()) return Bad("'examples' is empty");
  dom::object context;  // empty unless given
  bool has_context = false;
  if (dom::element c; root["context"].get(c) == simdjson::SUCCESS) {
    if (c.get_object().get(context) != simdjson::SUCCESS) {
      return Bad("'context' must be an object of features");
    }
    has_context = true;
  }
  auto feature = [&](dom::object example, std::string_view name) -> std::optional<dom::element> {
    dom::element e;
    if (example[name].get(e) == simdjson::SUCCESS) return e;
    if (has_context && context[name].get(e) == simdjson::SUCCESS) return e;
    return std::nullopt;
  };
  // Features named after every input: the named form. Otherwise a one-input model takes the
  // features as its columns.
  dom::object first;
  if ((*examples.begin()).get_object().get(first) != simdjson::SUCCESS) {
    return Bad("examples[0] must be an object of features");
  }
  bool named = true;
  for (const auto& in : config.inputs) named = named && feature(first, in.name).has_value();
  if (!named && config.inputs.size() != 1) {
    for (const auto& in : config.inputs) {
      if (!feature(first, in.name)) {
        return Bad("examples[0] lacks feature '" + in.name + "' (the model's inputs are " +
                   InputNames(config) + ")");
      }
    }
  }
  if (named && has_context) {
    for (auto field : context) {
      if (config.FindInput(field.key) == nullptr) {
        return UnknownInput("context", field.key, config, "feature");
      }
    }
  }
  auto builders = BuildersFor(config);
  std::vector<std::string_view> columns;  // column form: feature names of examples[0], in order
  int64_t columns_count = -1;             // column form: values per example
  int64_t row = 0;
  std::string where;
  for (dom::element example_el : examples) {
    where = "examples[" + std::to_string(row) + "]";
    dom::object example;
    if (example_el.get_object().get(example) != simdjson::SUCCESS) {
      return Bad(where + " must be an object of features");
    }
    if (has_context) {
      for (auto field : example) {
        if (context[field.key].error() == simdjson::SUCCESS) {
          return Bad(where + ": feature '" + std::string(field.key) +
                     "' is also in 'context'; a feature may be in only one of them");
        }
      }
    }
    if (named) {
      for (auto field : example) {
        if (config.FindInput(field.key) == nullptr) {
          return UnknownInput(where, field.key, config, "feature");
        }
      }
      for (size_t i = 0; i < config.inputs.size(); ++i) {
        auto value = feature(example, config.inputs[i].name);
        if (!value) return Bad(where + " lacks feature '" + config.inputs[i].name + "'");
        RETURN_IF_ERROR(builders[i].Add(*value, where));
      }
    } else {
      std::vector<std::string_view> names;
      int64_t count = 0;
      for (int pass = 0; pass < 2; ++pass) {
        if (pass == 0 && !has_context) continue;
        for (auto field : pass == 0 ? context : example) {
          names.push_back(field.key);
          RETURN_IF_ERROR(builders[0].AddColumns(field.value, where, &count));
        }
      }
      if (row == 0) {
        columns = names;
        columns_count = count;
      } else if (names != columns || count != columns_count) {
        return Bad(where + " has features or values (" + std::to_string(count) +
                   ") that differ from examples[0]'s (" + std::to_string(columns_count) +
                   "); in the column form every example lists the same features in the same order");
      }
    }
    ++row;
  }
  if (!named) {
    // The input's own row shape when it is fixed and fits, else a flat row.
    const core::TensorConfig& in = config.inputs[0];
    core::Shape shape = in.dims;
    auto n = core::ElementCount(shape);
    bool fits = n.ok() && *n == columns_count;
    for (int64_t d : shape) fits = fits && d >= 0;
    if (!fits) shape = {columns_count};
    builders[0].set_shape(std::move(shape));
    builders[0].set_rows(row);
  }
  TfRequestInfo info;
  info.row_format = true;
  info.rows = row;
  Finish(builders, true, request, &info);
  return info;
}

}  // namespace slipway::frontends::http
