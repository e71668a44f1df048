#include "slipway/app/bench/input_data.h"

#include <simdjson.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>

#include "slipway/core/float16.h"
#include "slipway/core/json_writer.h"

namespace slipway::app::bench {
namespace {

using core::DataType;
using core::Result;
using core::Status;

// Appends values of one datatype to the raw and JSON encodings at once.
class TensorEncoder {
 public:
  explicit TensorEncoder(DataType type) : type_(type) { json_.StartArray(); }

  // Floats (and anything, for the float types); integers must be integral and in range.
  Status AddDouble(double v) {
    switch (type_) {
      case DataType::kFp32:
        Put(static_cast<float>(v));
        json_.Float(static_cast<float>(v));
        break;
      case DataType::kFp64:
        Put(v);
        json_.Double(v);
        break;
      case DataType::kFp16:
        Put(core::FloatToHalfBits(static_cast<float>(v)));
        json_.Double(v);
        break;
      case DataType::kBf16:
        Put(FloatToBf16(static_cast<float>(v)));
        json_.Double(v);
        break;
      default:
        if (std::trunc(v) != v || std::fabs(v) > 9.0e15) {
          return Status::InvalidArgument("value " + std::to_string(v) + " is not an integer");
        }
        return AddInt(static_cast<int64_t>(v));
    }
    return Status::Ok();
  }

  Status AddInt(int64_t v) {
    switch (type_) {
      case DataType::kInt8:
        return PutRanged<int8_t>(v);
      case DataType::kInt16:
        return PutRanged<int16_t>(v);
      case DataType::kInt32:
        return PutRanged<int32_t>(v);
      case DataType::kInt64:
        Put(v);
        json_.Int(v);
        return Status::Ok();
      case DataType::kUint8:
        return PutRanged<uint8_t>(v);
      case DataType::kUint16:
        return PutRanged<uint16_t>(v);
      case DataType::kUint32:
        return PutRanged<uint32_t>(v);
      case DataType::kUint64:
        if (v < 0) return OutOfRange(std::to_string(v));
        Put(static_cast<uint64_t>(v));
        json_.Uint(static_cast<uint64_t>(v));
        return Status::Ok();
      case DataType::kBool:
        if (v != 0 && v != 1) return OutOfRange(std::to_string(v));
        return AddBool(v == 1);
      default:
        return AddDouble(static_cast<double>(v));
    }
  }

  Status AddUint(uint64_t v) {
    if (type_ == DataType::kUint64) {
      Put(v);
      json_.Uint(v);
      return Status::Ok();
    }
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return OutOfRange(std::to_string(v));
    }
    return AddInt(static_cast<int64_t>(v));
  }

  Status AddBool(bool v) {
    if (type_ != DataType::kBool) return AddInt(v ? 1 : 0);
    raw_.push_back(v ? 1 : 0);
    json_.Bool(v);
    return Status::Ok();
  }

  Status AddString(std::string_view s) {
    if (type_ != DataType::kBytes) {
      return Status::InvalidArgument("a string value for a " +
                                     std::string(core::DataTypeName(type_)) + " input");
    }
    const auto n = static_cast<uint32_t>(s.size());
    Put(n);
    raw_.append(s);
    json_.String(s);
    return Status::Ok();
  }

  void Finish(InputTensor* t) {
    json_.EndArray();
    t->raw = std::move(raw_);
    t->json = json_.Take();
  }

 private:
  template <typename T>
  void Put(T v) {
    char buf[sizeof(T)];
    std::memcpy(buf, &v, sizeof(T));  // the wire is little-endian, as is every host we build for
    raw_.append(buf, sizeof(T));
  }
  template <typename T>
  Status PutRanged(int64_t v) {
    if (v < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
        v > static_cast<int64_t>(std::numeric_limits<T>::max())) {
      return OutOfRange(std::to_string(v));
    }
    Put(static_cast<T>(v));
    json_.Int(v);
    return Status::Ok();
  }
  Status OutOfRange(const std::string& v) const {
    return Status::InvalidArgument("value " + v + " does not fit " +
                                   std::string(core::DataTypeName(type_)));
  }

  DataType type_;
  std::string raw_;
  core::JsonWriter json_;
};

Result<DataType> SupportedType(const InputSpec& spec) {
  const DataType t = core::ParseDataType(spec.datatype);
  if (t == DataType::kInvalid) {
    return Status::Unimplemented("input '" + spec.name + "' has datatype '" + spec.datatype +
                                 "', which bench does not support");
  }
  return t;
}

int64_t ElementCount(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

// Adds one JSON value (nested arrays are flattened) to `enc`; counts elements in `count`.
Status AddJsonValue(simdjson::dom::element v, TensorEncoder& enc, int64_t* count) {
  switch (v.type()) {
    case simdjson::dom::element_type::ARRAY: {
      simdjson::dom::array arr;
      if (v.get_array().get(arr)) return Status::InvalidArgument("malformed array in data");
      for (simdjson::dom::element e : arr) {
        RETURN_IF_ERROR(AddJsonValue(e, enc, count));
      }
      return Status::Ok();
    }
    case simdjson::dom::element_type::INT64:
      ++*count;
      return enc.AddInt(v.get_int64().value_unsafe());
    case simdjson::dom::element_type::UINT64:
      ++*count;
      return enc.AddUint(v.get_uint64().value_unsafe());
    case simdjson::dom::element_type::DOUBLE:
      ++*count;
      return enc.AddDouble(v.get_double().value_unsafe());
    case simdjson::dom::element_type::BOOL:
      ++*count;
      return enc.AddBool(v.get_bool().value_unsafe());
    case simdjson::dom::element_type::STRING:
      ++*count;
      return enc.AddString(v.get_string().value_unsafe());
    default:
      return Status::InvalidArgument("null or object in data");
  }
}

}  // namespace

uint16_t FloatToBf16(float value) {
  return static_cast<uint16_t>(std::bit_cast<uint32_t>(value) >> 16);
}

Result<std::vector<int64_t>> ResolveShape(
    const InputSpec& spec, int batch_size,
    const std::map<std::string, std::vector<int64_t>>& shapes) {
  std::vector<int64_t> shape = spec.shape;
  const bool leading_batch = !shape.empty() && shape[0] == -1;
  if (leading_batch) shape[0] = batch_size;
  auto it = shapes.find(spec.name);
  if (it != shapes.end()) {
    std::vector<int64_t> given = it->second;
    if (leading_batch && given.size() + 1 == spec.shape.size()) {
      given.insert(given.begin(), batch_size);
    }
    if (given.size() != spec.shape.size()) {
      return Status::InvalidArgument("--shape for input '" + spec.name + "' has " +
                                     std::to_string(it->second.size()) +
                                     " dimensions; the model's shape is " + ShapeText(spec.shape));
    }
    for (size_t i = 0; i < given.size(); ++i) {
      if (spec.shape[i] >= 0 && given[i] != spec.shape[i]) {
        return Status::InvalidArgument("--shape " + ShapeText(it->second) + " for input '" +
                                       spec.name + "' disagrees with the model's shape " +
                                       ShapeText(spec.shape));
      }
    }
    return given;
  }
  for (int64_t d : shape) {
    if (d < 0) {
      return Status::InvalidArgument(
          "input '" + spec.name + "' has shape " + ShapeText(spec.shape) +
          " with variable dimensions; give them with --shape " + spec.name + ":d1,d2,...");
    }
  }
  return shape;
}

Result<std::vector<InputTensor>> MakeGeneratedInputs(
    const std::vector<InputSpec>& specs, const std::string& mode, int batch_size,
    const std::map<std::string, std::vector<int64_t>>& shapes, uint64_t seed) {
  if (mode != "random" && mode != "zero") {
    return Status::InvalidArgument("--input-data must be random, zero or a .json file, not '" +
                                   mode + "'");
  }
  const bool zero = mode == "zero";
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> real(0.0, 1.0);
  std::uniform_int_distribution<int> digit(0, 9);
  std::uniform_int_distribution<int> length(1, 8);
  static constexpr char kAlnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::uniform_int_distribution<size_t> letter(0, sizeof(kAlnum) - 2);
  std::vector<InputTensor> out;
  for (const InputSpec& spec : specs) {
    ASSIGN_OR_RETURN(const DataType type, SupportedType(spec));
    InputTensor t{spec.name, spec.datatype, {}, {}, {}};
    ASSIGN_OR_RETURN(t.shape, ResolveShape(spec, batch_size, shapes));
    TensorEncoder enc(type);
    const int64_t n = ElementCount(t.shape);
    for (int64_t k = 0; k < n; ++k) {
      Status st;
      if (type == DataType::kBytes) {
        std::string s;
        if (!zero) {
          for (int len = length(rng); len > 0; --len) s += kAlnum[letter(rng)];
        }
        st = enc.AddString(s);
      } else if (type == DataType::kBool) {
        st = enc.AddBool(!zero && digit(rng) % 2 == 1);
      } else if (type == DataType::kFp16 || type == DataType::kFp32 || type == DataType::kFp64 ||
                 type == DataType::kBf16) {
        st = enc.AddDouble(zero ? 0.0 : real(rng));
      } else {
        st = enc.AddInt(zero ? 0 : digit(rng));
      }
      RETURN_IF_ERROR(st);
    }
    enc.Finish(&t);
    out.push_back(std::move(t));
  }
  return out;
}

Result<std::vector<InputTensor>> InputsFromJson(
    const std::vector<InputSpec>& specs, const std::string& json_text, int batch_size,
    const std::map<std::string, std::vector<int64_t>>& shapes) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto err = parser.parse(json_text).get(doc)) {
    return Status::InvalidArgument(std::string("input data is not valid JSON: ") +
                                   simdjson::error_message(err));
  }
  simdjson::dom::object inputs;
  if (doc["inputs"].get_object().get(inputs)) {
    return Status::InvalidArgument(
        "input data needs an object \"inputs\": {NAME: {\"data\": [...]}}");
  }
  std::vector<InputTensor> out;
  for (const InputSpec& spec : specs) {
    ASSIGN_OR_RETURN(const DataType type, SupportedType(spec));
    simdjson::dom::element entry;
    if (inputs[spec.name].get(entry)) {
      return Status::InvalidArgument("input data has no entry for the model's input '" + spec.name +
                                     "'");
    }
    InputTensor t{spec.name, spec.datatype, {}, {}, {}};
    simdjson::dom::array shape_json;
    if (!entry["shape"].get_array().get(shape_json)) {
      for (simdjson::dom::element d : shape_json) {
        int64_t v = 0;
        if (d.get_int64().get(v) || v < 0) {
          return Status::InvalidArgument("input data for '" + spec.name +
                                         "': shape must be non-negative integers");
        }
        t.shape.push_back(v);
      }
      if (t.shape.size() != spec.shape.size()) {
        return Status::InvalidArgument("input data for '" + spec.name + "': shape " +
                                       ShapeText(t.shape) + " has another rank than the model's " +
                                       ShapeText(spec.shape));
      }
      for (size_t i = 0; i < t.shape.size(); ++i) {
        if (spec.shape[i] >= 0 && spec.shape[i] != t.shape[i]) {
          return Status::InvalidArgument("input data for '" + spec.name + "': shape " +
                                         ShapeText(t.shape) + " disagrees with the model's " +
                                         ShapeText(spec.shape));
        }
      }
    } else {
      ASSIGN_OR_RETURN(t.shape, ResolveShape(spec, batch_size, shapes));
    }
    simdjson::dom::element data;
    if (entry["data"].get(data) || !data.is_array()) {
      return Status::InvalidArgument("input data for '" + spec.name + "' needs a \"data\" list");
    }
    TensorEncoder enc(type);
    int64_t count = 0;
    Status st = AddJsonValue(data, enc, &count);
    if (!st.ok()) {
      return Status::InvalidArgument("input data for '" + spec.name + "' (" + spec.datatype +
                                     "): " + st.message());
    }
    if (count != ElementCount(t.shape)) {
      return Status::InvalidArgument(
          "input data for '" + spec.name + "' has " + std::to_string(count) + " values; shape " +
          ShapeText(t.shape) + " needs " + std::to_string(ElementCount(t.shape)));
    }
    enc.Finish(&t);
    out.push_back(std::move(t));
  }
  return out;
}

Result<std::string> ReadFileText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot read input data file '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace slipway::app::bench
