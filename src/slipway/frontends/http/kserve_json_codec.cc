#include "slipway/frontends/http/kserve_json_codec.h"

#include <simdjson.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <variant>

#include "slipway/core/float16.h"
#include "slipway/core/json_writer.h"

namespace slipway::frontends::http {

using core::DataType;
using core::Status;
namespace dom = simdjson::dom;

namespace {

Status Bad(std::string message) { return Status::InvalidArgument(std::move(message)); }

template <typename T>
void AppendRaw(std::string& out, T value) {
  char buf[sizeof(T)];
  std::memcpy(buf, &value, sizeof(T));
  out.append(buf, sizeof(T));
}

// Appends one JSON element converted to `type`; `name` is the tensor's, for messages.
Status AppendElement(dom::element e, DataType type, const std::string& name, std::string& out) {
  const auto kind = e.type();
  auto type_error = [&](const char* expected) {
    return Bad("input '" + name + "' of datatype " + std::string(core::DataTypeName(type)) +
               " expects " + expected + " in 'data', got " + simdjson::minify(e));
  };
  auto get_int = [&](int64_t lo, uint64_t hi, auto tag) -> Status {
    using T = decltype(tag);
    if (kind == dom::element_type::INT64) {
      const int64_t v = e.get_int64().value_unsafe();
      if (v < lo || (v > 0 && static_cast<uint64_t>(v) > hi)) {
        return Bad("input '" + name + "': value " + std::to_string(v) + " is out of range for " +
                   std::string(core::DataTypeName(type)));
      }
      AppendRaw<T>(out, static_cast<T>(v));
      return Status::Ok();
    }
    if (kind == dom::element_type::UINT64) {
      const uint64_t v = e.get_uint64().value_unsafe();
      if (v > hi) {
        return Bad("input '" + name + "': value " + std::to_string(v) + " is out of range for " +
                   std::string(core::DataTypeName(type)));
      }
      AppendRaw<T>(out, static_cast<T>(v));
      return Status::Ok();
    }
    return type_error("integers");
  };
  switch (type) {
    case DataType::kBool:
      if (kind != dom::element_type::BOOL) return type_error("true or false");
      out.push_back(e.get_bool().value_unsafe() ? 1 : 0);
      return Status::Ok();
    case DataType::kInt8: return get_int(INT8_MIN, INT8_MAX, int8_t{});
    case DataType::kInt16: return get_int(INT16_MIN, INT16_MAX, int16_t{});
    case DataType::kInt32: return get_int(INT32_MIN, INT32_MAX, int32_t{});
    case DataType::kInt64: return get_int(INT64_MIN, INT64_MAX, int64_t{});
    case DataType::kUint8: return get_int(0, UINT8_MAX, uint8_t{});
    case DataType::kUint16: return get_int(0, UINT16_MAX, uint16_t{});
    case DataType::kUint32: return get_int(0, UINT32_MAX, uint32_t{});
    case DataType::kUint64: return get_int(0, UINT64_MAX, uint64_t{});
    case DataType::kFp32:
    case DataType::kFp64: {
      double v = 0;
      if (kind == dom::element_type::DOUBLE) {
        v = e.get_double().value_unsafe();
      } else if (kind == dom::element_type::INT64) {
        v = static_cast<double>(e.get_int64().value_unsafe());
      } else if (kind == dom::element_type::UINT64) {
        v = static_cast<double>(e.get_uint64().value_unsafe());
      } else {
        return type_error("numbers");
      }
      if (type == DataType::kFp32) {
        if (std::isfinite(v) && std::fabs(v) > std::numeric_limits<float>::max()) {
          return Bad("input '" + name + "': value " + simdjson::minify(e) +
                     " is out of range for FP32");
        }
        AppendRaw<float>(out, static_cast<float>(v));
      } else {
        AppendRaw<double>(out, v);
      }
      return Status::Ok();
    }
    case DataType::kBytes: {
      if (kind != dom::element_type::STRING) return type_error("strings");
      core::AppendBytesElement(out, e.get_string().value_unsafe());
      return Status::Ok();
    }
    case DataType::kFp16:
    case DataType::kBf16:
      return Bad("input '" + name + "': " + std::string(core::DataTypeName(type)) +
                 " cannot be sent as JSON; use the binary data format (binary_data_size)");
    case DataType::kInvalid: break;
  }
  return Bad("input '" + name + "' has an invalid datatype");
}

// Flattens nested arrays depth-first, counting elements.
Status AppendData(dom::element e, DataType type, const std::string& name, std::string& out,
                  int64_t* count, int depth) {
  if (e.type() == dom::element_type::ARRAY) {
    if (depth > 64) return Bad("input '" + name + "': 'data' is nested too deeply");
    dom::array children;
    if (e.get_array().get(children) != simdjson::SUCCESS) return Bad("input '" + name + "': bad array");
    for (dom::element child : children) {
      RETURN_IF_ERROR(AppendData(child, type, name, out, count, depth + 1));
    }
    return Status::Ok();
  }
  ++*count;
  return AppendElement(e, type, name, out);
}

Status ParseShape(dom::element e, const std::string& name, core::Shape* shape) {
  dom::array arr;
  if (e.get_array().get(arr) != simdjson::SUCCESS) {
    return Bad("input '" + name + "': 'shape' must be an array of non-negative integers");
  }
  for (dom::element d : arr) {
    if (d.type() == dom::element_type::INT64) {
      const int64_t v = d.get_int64().value_unsafe();
      if (v < 0) {
        return Bad("input '" + name + "': shape dimension " + std::to_string(v) +
                   " is negative");
      }
      shape->push_back(v);
    } else if (d.type() == dom::element_type::UINT64) {
      return Bad("input '" + name + "': shape dimension " +
                 std::to_string(d.get_uint64().value_unsafe()) + " overflows a 64-bit size");
    } else {
      return Bad("input '" + name + "': 'shape' must hold integers, got " + simdjson::minify(d));
    }
  }
  return core::ElementCount(*shape).status();
}

Status ParseParameters(dom::element e, const std::string& where, core::Parameters* params) {
  dom::object obj;
  if (e.get_object().get(obj) != simdjson::SUCCESS) {
    return Bad(where + " 'parameters' must be an object");
  }
  for (auto field : obj) {
    const std::string key(field.key);
    dom::element v = field.value;
    switch (v.type()) {
      case dom::element_type::BOOL: (*params)[key] = v.get_bool().value_unsafe(); break;
      case dom::element_type::INT64: (*params)[key] = v.get_int64().value_unsafe(); break;
      case dom::element_type::UINT64: (*params)[key] = v.get_uint64().value_unsafe(); break;
      case dom::element_type::DOUBLE: (*params)[key] = v.get_double().value_unsafe(); break;
      case dom::element_type::STRING:
        (*params)[key] = std::string(v.get_string().value_unsafe());
        break;
      default:
        return Bad(where + " parameter '" + key + "' must be a string, number or boolean");
    }
  }
  return Status::Ok();
}

Status DecodeInputs(dom::array inputs, std::string_view binary, core::InferRequest* request) {
  size_t offset = 0;
  size_t index = 0;
  for (dom::element in : inputs) {
    const std::string where = "inputs[" + std::to_string(index++) + "]";
    dom::object obj;
    if (in.get_object().get(obj) != simdjson::SUCCESS) return Bad(where + " must be an object");
    std::string_view name_sv;
    if (obj["name"].get_string().get(name_sv) != simdjson::SUCCESS) {
      return Bad(where + " needs a string 'name'");
    }
    const std::string name(name_sv);
    std::string_view dt_sv;
    if (obj["datatype"].get_string().get(dt_sv) != simdjson::SUCCESS) {
      return Bad("input '" + name + "' needs a string 'datatype'");
    }
    const DataType type = core::ParseDataType(dt_sv);
    if (type == DataType::kInvalid) {
      return Bad("input '" + name + "' has unknown datatype '" + std::string(dt_sv) +
                 "'; expected one of BOOL, INT8..INT64, UINT8..UINT64, FP16, FP32, FP64, BF16, "
                 "BYTES");
    }
    dom::element shape_el;
    if (obj["shape"].get(shape_el) != simdjson::SUCCESS) {
      return Bad("input '" + name + "' needs a 'shape'");
    }
    core::Shape shape;
    RETURN_IF_ERROR(ParseShape(shape_el, name, &shape));
    const int64_t expected = core::ElementCount(shape).value();
    core::Parameters params;
    dom::element params_el;
    if (obj["parameters"].get(params_el) == simdjson::SUCCESS) {
      RETURN_IF_ERROR(ParseParameters(params_el, "input '" + name + "'", &params));
    }
    dom::element data_el;
    const bool has_data = obj["data"].get(data_el) == simdjson::SUCCESS;
    auto size_it = params.find("binary_data_size");
    if (params.count("shared_memory_region")) {
      return Status::Unimplemented("input '" + name + "': shared memory is not supported");
    }
    if (has_data == (size_it != params.end())) {
      return Bad("input '" + name +
                 "' must have exactly one of 'data' or parameters.binary_data_size");
    }
    if (has_data) {
      std::string bytes;
      const size_t width = core::DataTypeByteSize(type);
      if (width > 0 && expected > 0 && expected < (int64_t{1} << 28)) {
        bytes.reserve(static_cast<size_t>(expected) * width);
      }
      int64_t count = 0;
      RETURN_IF_ERROR(AppendData(data_el, type, name, bytes, &count, 0));
      if (count != expected) {
        return Bad("input '" + name + "': shape " + core::ShapeToString(shape) + " needs " +
                   std::to_string(expected) + " elements, 'data' has " + std::to_string(count));
      }
      request->inputs.push_back(core::Tensor::Owned(name, type, std::move(shape), std::move(bytes)));
    } else {
      const auto* size = std::get_if<int64_t>(&size_it->second);
      if (size == nullptr || *size < 0) {
        return Bad("input '" + name + "': binary_data_size must be a non-negative integer");
      }
      if (static_cast<uint64_t>(*size) > binary.size() - offset) {
        return Bad("input '" + name + "': binary_data_size " + std::to_string(*size) +
                   " but only " + std::to_string(binary.size() - offset) +
                   " bytes of binary data remain after the JSON header (expecting " +
                   std::to_string(*size - static_cast<int64_t>(binary.size() - offset)) +
                   " additional bytes)");
      }
      request->inputs.push_back(core::Tensor::Borrowed(
          name, type, std::move(shape), binary.substr(offset, static_cast<size_t>(*size))));
      offset += static_cast<size_t>(*size);
    }
  }
  if (offset != binary.size()) {
    return Bad("unexpected additional input data: " + std::to_string(binary.size() - offset) +
               " bytes after the JSON header are not claimed by any input's binary_data_size");
  }
  return Status::Ok();
}

Status DecodeOutputs(dom::element e, core::InferRequest* request) {
  dom::array outputs;
  if (e.get_array().get(outputs) != simdjson::SUCCESS) return Bad("'outputs' must be an array");
  for (dom::element out : outputs) {
    dom::object obj;
    std::string_view name;
    if (out.get_object().get(obj) != simdjson::SUCCESS ||
        obj["name"].get_string().get(name) != simdjson::SUCCESS) {
      return Bad("each entry of 'outputs' must be an object with a string 'name'");
    }
    core::RequestedOutput ro;
    ro.name = std::string(name);
    dom::element params_el;
    if (obj["parameters"].get(params_el) == simdjson::SUCCESS) {
      core::Parameters params;
      RETURN_IF_ERROR(ParseParameters(params_el, "output '" + ro.name + "'", &params));
      if (params.count("classification")) {
        return Status::Unimplemented("output '" + ro.name +
                                     "': the classification extension is not supported");
      }
      if (params.count("shared_memory_region")) {
        return Status::Unimplemented("output '" + ro.name + "': shared memory is not supported");
      }
      auto it = params.find("binary_data");
      if (it != params.end()) {
        const bool* b = std::get_if<bool>(&it->second);
        if (b == nullptr) return Bad("output '" + ro.name + "': binary_data must be a boolean");
        ro.binary = *b;
        ro.binary_set = true;
      }
    }
    request->outputs.push_back(std::move(ro));
  }
  return Status::Ok();
}

template <typename T>
T Load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

void WriteData(core::JsonWriter& w, const core::Tensor& t) {
  const std::string_view b = t.bytes();
  const char* p = b.data();
  const size_t width = core::DataTypeByteSize(t.type());
  const size_t n = width ? b.size() / width : 0;
  w.StartArray();
  switch (t.type()) {
    case DataType::kBool: for (size_t i = 0; i < n; ++i) w.Bool(p[i] != 0); break;
    case DataType::kInt8: for (size_t i = 0; i < n; ++i) w.Int(Load<int8_t>(p + i)); break;
    case DataType::kInt16: for (size_t i = 0; i < n; ++i) w.Int(Load<int16_t>(p + 2 * i)); break;
    case DataType::kInt32: for (size_t i = 0; i < n; ++i) w.Int(Load<int32_t>(p + 4 * i)); break;
    case DataType::kInt64: for (size_t i = 0; i < n; ++i) w.Int(Load<int64_t>(p + 8 * i)); break;
    case DataType::kUint8: for (size_t i = 0; i < n; ++i) w.Uint(Load<uint8_t>(p + i)); break;
    case DataType::kUint16: for (size_t i = 0; i < n; ++i) w.Uint(Load<uint16_t>(p + 2 * i)); break;
    case DataType::kUint32: for (size_t i = 0; i < n; ++i) w.Uint(Load<uint32_t>(p + 4 * i)); break;
    case DataType::kUint64: for (size_t i = 0; i < n; ++i) w.Uint(Load<uint64_t>(p + 8 * i)); break;
    case DataType::kFp32: for (size_t i = 0; i < n; ++i) w.Float(Load<float>(p + 4 * i)); break;
    case DataType::kFp64: for (size_t i = 0; i < n; ++i) w.Double(Load<double>(p + 8 * i)); break;
    case DataType::kFp16:
      for (size_t i = 0; i < n; ++i) w.Float(core::HalfBitsToFloat(Load<uint16_t>(p + 2 * i)));
      break;
    case DataType::kBf16:
      for (size_t i = 0; i < n; ++i) w.Float(core::Bf16BitsToFloat(Load<uint16_t>(p + 2 * i)));
      break;
    case DataType::kBytes:
      for (std::string_view s : core::SplitBytesElements(b)) w.String(s);
      break;
    case DataType::kInvalid: break;
  }
  w.EndArray();
}

}  // namespace

Status DecodeInferRequest(std::string_view body, std::optional<size_t> json_length,
                          core::InferRequest* request) {
  size_t header = body.size();
  if (json_length.has_value()) {
    if (*json_length > body.size()) {
      return Bad("Inference-Header-Content-Length " + std::to_string(*json_length) +
                 " is larger than the body (" + std::to_string(body.size()) + " bytes)");
    }
    if (*json_length == 0) {
      return Bad("Inference-Header-Content-Length 0 marks a raw binary request, which needs the "
                 "model's metadata (DecodeRawBinaryRequest)");
    }
    header = *json_length;
  }
  thread_local dom::parser parser;
  dom::element doc;
  const simdjson::padded_string json(body.substr(0, header));
  if (auto err = parser.parse(json).get(doc); err != simdjson::SUCCESS) {
    return Bad(std::string("malformed JSON in request body: ") + simdjson::error_message(err));
  }
  dom::object root;
  if (doc.get_object().get(root) != simdjson::SUCCESS) {
    return Bad("the request body must be a JSON object");
  }
  dom::element id;
  if (root["id"].get(id) == simdjson::SUCCESS) {
    std::string_view s;
    if (id.get_string().get(s) != simdjson::SUCCESS) return Bad("'id' must be a string");
    request->id = std::string(s);
  }
  dom::element params;
  if (root["parameters"].get(params) == simdjson::SUCCESS) {
    RETURN_IF_ERROR(ParseParameters(params, "request", &request->parameters));
    auto it = request->parameters.find("binary_data_output");
    if (it != request->parameters.end() && !std::holds_alternative<bool>(it->second)) {
      return Bad("parameter 'binary_data_output' must be a boolean");
    }
  }
  dom::array inputs;
  dom::element inputs_el;
  if (root["inputs"].get(inputs_el) != simdjson::SUCCESS ||
      inputs_el.get_array().get(inputs) != simdjson::SUCCESS) {
    return Bad("the request needs an 'inputs' array");
  }
  RETURN_IF_ERROR(DecodeInputs(inputs, body.substr(header), request));
  dom::element outputs;
  if (root["outputs"].get(outputs) == simdjson::SUCCESS) {
    RETURN_IF_ERROR(DecodeOutputs(outputs, request));
  }
  return Status::Ok();
}

Status DecodeRawBinaryRequest(std::string_view body, const std::string& input_name,
                              DataType type, const core::Shape& metadata_shape, bool batching,
                              core::InferRequest* request) {
  core::Shape shape = metadata_shape;
  if (batching && !shape.empty()) shape[0] = 1;
  if (type == DataType::kBytes) {
    shape.assign(shape.size(), 1);
  }
  int variable = -1;
  int64_t known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (variable != -1) {
        return Bad("a raw binary request needs input '" + input_name +
                   "' to have at most one variable dimension, its shape is " +
                   core::ShapeToString(metadata_shape));
      }
      variable = static_cast<int>(i);
    } else {
      known *= shape[i];
    }
  }
  if (variable != -1) {
    const auto width = static_cast<int64_t>(core::DataTypeByteSize(type));
    const auto size = static_cast<int64_t>(body.size());
    if (known == 0 || width == 0 || size % (known * width) != 0) {
      return Bad("raw binary request: " + std::to_string(body.size()) +
                 " bytes do not make whole elements of input '" + input_name + "' with shape " +
                 core::ShapeToString(metadata_shape));
    }
    shape[static_cast<size_t>(variable)] = size / (known * width);
  }
  request->inputs.push_back(core::Tensor::Borrowed(input_name, type, std::move(shape), body));
  request->parameters["binary_data_output"] = true;
  return Status::Ok();
}

EncodedResponse EncodeInferResponse(const core::InferResponse& response,
                                    const core::InferRequest& request) {
  bool default_binary = false;
  auto it = request.parameters.find("binary_data_output");
  if (it != request.parameters.end()) default_binary = std::get<bool>(it->second);
  EncodedResponse out;
  core::JsonWriter w;
  w.str().reserve(256);
  w.StartObject();
  w.Key("model_name");
  w.String(response.model_name);
  w.Key("model_version");
  w.String(std::to_string(response.model_version));
  if (!response.id.empty()) {
    w.Key("id");
    w.String(response.id);
  }
  if (!response.parameters.empty()) {
    w.Key("parameters");
    w.StartObject();
    for (const auto& [name, value] : response.parameters) {
      w.Key(name);
      std::visit(
          [&w](const auto& v) {
            using V = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<V, bool>) {
              w.Bool(v);
            } else if constexpr (std::is_same_v<V, int64_t>) {
              w.Int(v);
            } else if constexpr (std::is_same_v<V, uint64_t>) {
              w.Uint(v);
            } else if constexpr (std::is_same_v<V, double>) {
              w.Double(v);
            } else {
              w.String(v);
            }
          },
          value);
    }
    w.EndObject();
  }
  w.Key("outputs");
  w.StartArray();
  std::vector<const core::Tensor*> binary;
  for (const core::Tensor& t : response.outputs) {
    bool as_binary = default_binary;
    for (const auto& ro : request.outputs) {
      if (ro.name == t.name() && ro.binary_set) as_binary = ro.binary;
    }
    w.StartObject();
    w.Key("name");
    w.String(t.name());
    w.Key("datatype");
    w.String(core::DataTypeName(t.type()));
    w.Key("shape");
    w.StartArray();
    for (int64_t d : t.shape()) w.Int(d);
    w.EndArray();
    if (as_binary) {
      w.Key("parameters");
      w.StartObject();
      w.Key("binary_data_size");
      w.Uint(t.bytes().size());
      w.EndObject();
      binary.push_back(&t);
    } else {
      w.Key("data");
      WriteData(w, t);
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  out.body = w.Take();
  out.json_length = out.body.size();
  out.has_binary = !binary.empty();
  for (const core::Tensor* t : binary) out.body.append(t->bytes());
  return out;
}

core::Result<bool> DecodeIndexRequest(std::string_view body) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return false;
  thread_local dom::parser parser;
  dom::element doc;
  const simdjson::padded_string json(body);
  dom::object root;
  if (parser.parse(json).get(doc) != simdjson::SUCCESS ||
      doc.get_object().get(root) != simdjson::SUCCESS) {
    return Bad("the repository index request body must be a JSON object");
  }
  dom::element ready;
  if (root["ready"].get(ready) != simdjson::SUCCESS) return false;
  bool value = false;
  if (ready.get_bool().get(value) != simdjson::SUCCESS) return Bad("'ready' must be a boolean");
  return value;
}

core::Result<serving::LoadModelOptions> DecodeLoadRequest(std::string_view body) {
  serving::LoadModelOptions options;
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return options;
  thread_local dom::parser parser;
  dom::element doc;
  const simdjson::padded_string json(body);
  dom::object root;
  if (parser.parse(json).get(doc) != simdjson::SUCCESS ||
      doc.get_object().get(root) != simdjson::SUCCESS) {
    return Bad("the load request body must be a JSON object");
  }
  dom::element params;
  if (root["parameters"].get(params) != simdjson::SUCCESS) return options;
  dom::object map;
  if (params.get_object().get(map) != simdjson::SUCCESS) return Bad("'parameters' must be an object");
  for (auto [key, value] : map) {
    if (key == "config") {
      std::string_view text;
      if (value.get_string().get(text) != simdjson::SUCCESS) {
        return Bad("parameter 'config' must be a string holding a model config in JSON");
      }
      options.config_override = std::string(text);
    } else if (key.substr(0, 5) == "file:") {
      return core::Status::Unimplemented(
          "load parameter '" + std::string(key) +
          "': upload model files with PUT /v2/repository/models/<model>/versions/<version>");
    }
  }
  return options;
}

std::string ErrorJson(std::string_view message) {
  core::JsonWriter w;
  w.StartObject();
  w.Key("error");
  w.String(message);
  w.EndObject();
  return w.Take();
}

}  // namespace slipway::frontends::http
