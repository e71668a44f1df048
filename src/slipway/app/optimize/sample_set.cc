#include "slipway/app/optimize/sample_set.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "slipway/core/float16.h"
#include "slipway/app/optimize/onnx_model_file.h"
#include "slipway/app/optimize/quantization_math.h"

namespace slipway::app::optimize {

using core::DataType;
using core::Result;
using core::Status;
namespace dom = simdjson::dom;

namespace {

template <typename T>
void Append(std::string& bytes, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  bytes.append(buf, sizeof(T));
}

// `v` rounded toward zero and clamped to T's range (a plain cast of an out-of-range double is
// undefined behaviour).
template <typename T>
T Saturate(double v) {
  if (std::isnan(v)) return T{0};
  const double lo = static_cast<double>(std::numeric_limits<T>::lowest());
  const double hi = static_cast<double>(std::numeric_limits<T>::max());
  if (v <= lo) return std::numeric_limits<T>::lowest();
  if (v >= hi) return std::numeric_limits<T>::max();
  return static_cast<T>(v);
}

// Appends `v` converted to `type`; false when the datatype cannot hold numbers.
bool AppendNumber(DataType type, double v, std::string& bytes) {
  switch (type) {
    case DataType::kFp32: Append<float>(bytes, static_cast<float>(v)); return true;
    case DataType::kFp64: Append<double>(bytes, v); return true;
    case DataType::kFp16: Append<uint16_t>(bytes, core::FloatToHalfBits(static_cast<float>(v))); return true;
    case DataType::kInt8: Append<int8_t>(bytes, Saturate<int8_t>(v)); return true;
    case DataType::kInt16: Append<int16_t>(bytes, Saturate<int16_t>(v)); return true;
    case DataType::kInt32: Append<int32_t>(bytes, Saturate<int32_t>(v)); return true;
    case DataType::kInt64: Append<int64_t>(bytes, Saturate<int64_t>(v)); return true;
    case DataType::kUint8: Append<uint8_t>(bytes, Saturate<uint8_t>(v)); return true;
    case DataType::kUint16: Append<uint16_t>(bytes, Saturate<uint16_t>(v)); return true;
    case DataType::kUint32: Append<uint32_t>(bytes, Saturate<uint32_t>(v)); return true;
    case DataType::kUint64: Append<uint64_t>(bytes, Saturate<uint64_t>(v)); return true;
    case DataType::kBool: bytes.push_back(v != 0 ? 1 : 0); return true;
    default: return false;
  }
}

bool IsInteger(DataType t) {
  return t == DataType::kInt8 || t == DataType::kInt16 || t == DataType::kInt32 ||
         t == DataType::kInt64 || t == DataType::kUint8 || t == DataType::kUint16 ||
         t == DataType::kUint32 || t == DataType::kUint64;
}

std::string InputNames(const core::ModelConfig& config) {
  std::string s;
  for (const auto& in : config.inputs) s += (s.empty() ? "" : ", ") + in.name;
  return s;
}

// The shape of one row of `in` holding `count` values written with nested shape `nested`
// (empty when flat); an error message when they cannot agree.
Result<core::Shape> RowShape(const core::TensorConfig& in, const core::Shape& nested, int64_t count) {
  const core::Shape& dims = in.dims;
  core::Shape given = nested;
  if (given.size() == dims.size() + 1 && !given.empty() && given[0] == 1) given.erase(given.begin());
  auto mismatch = [&]() {
    return Status::InvalidArgument(
        fmt::format("input '{}' has {} values{}; the model takes {} per row", in.name, count,
                    nested.size() > 1 ? " in shape " + core::ShapeToString(nested) : "",
                    core::ShapeToString(dims)));
  };
  if (given.size() == dims.size() && given.size() > 1) {
    for (size_t i = 0; i < dims.size(); ++i) {
      if (dims[i] >= 0 && dims[i] != given[i]) return mismatch();
    }
    return given;
  }
  core::Shape shape = dims;
  int64_t known = 1;
  int variable = -1;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] < 0) {
      if (variable >= 0) {
        return Status::InvalidArgument("input '" + in.name + "' has several variable dimensions " +
                                       core::ShapeToString(dims) + "; write its values nested");
      }
      variable = static_cast<int>(i);
    } else {
      known *= dims[i];
    }
  }
  if (variable >= 0) {
    if (known == 0 || count % known != 0) return mismatch();
    shape[static_cast<size_t>(variable)] = count / known;
  } else if (known != count) {
    return mismatch();
  }
  return shape;
}

// Flattens nested arrays, recording the nested shape (empty for a scalar); false if ragged.
bool Flatten(dom::element e, size_t depth, core::Shape* shape, std::vector<dom::element>* out) {
  dom::array a;
  if (e.get_array().get(a) != simdjson::SUCCESS) {
    if (depth != shape->size()) return false;
    out->push_back(e);
    return true;
  }
  const int64_t n = static_cast<int64_t>(a.size());
  if (depth == shape->size()) {
    if (!out->empty()) return false;  // a scalar seen before at this depth
    shape->push_back(n);
  } else if (depth > shape->size() || (*shape)[depth] != n) {
    return false;
  }
  for (dom::element x : a) {
    if (!Flatten(x, depth + 1, shape, out)) return false;
  }
  return true;
}

Result<core::Tensor> JsonTensor(const core::TensorConfig& in, dom::element value, bool batching) {
  core::Shape nested;
  std::vector<dom::element> flat;
  if (!Flatten(value, 0, &nested, &flat)) {
    return Status::InvalidArgument("input '" + in.name + "' is a ragged nested list");
  }
  std::string bytes;
  for (dom::element e : flat) {
    if (in.type == DataType::kBytes) {
      std::string_view s;
      if (e.get_string().get(s) != simdjson::SUCCESS) {
        return Status::InvalidArgument("input '" + in.name + "' (BYTES) expects strings");
      }
      core::AppendBytesElement(bytes, s);
      continue;
    }
    double d = 0;
    bool b = false;
    if (in.type == DataType::kBool && e.get_bool().get(b) == simdjson::SUCCESS) {
      bytes.push_back(b ? 1 : 0);
      continue;
    }
    if (e.get_double().get(d) != simdjson::SUCCESS) {
      return Status::InvalidArgument(fmt::format("input '{}' ({}) expects numbers", in.name,
                                                 core::DataTypeName(in.type)));
    }
    if (IsInteger(in.type) && d != std::floor(d)) {
      return Status::InvalidArgument(fmt::format("input '{}' ({}) expects integers, not {}", in.name,
                                                 core::DataTypeName(in.type), d));
    }
    if (!AppendNumber(in.type, d, bytes)) {
      return Status::Unimplemented(fmt::format("input '{}' has datatype {}, which sample files do not "
                                               "support", in.name, core::DataTypeName(in.type)));
    }
  }
  ASSIGN_OR_RETURN(core::Shape shape, RowShape(in, nested, static_cast<int64_t>(flat.size())));
  if (batching) shape.insert(shape.begin(), 1);
  return core::Tensor::Owned(in.name, in.type, std::move(shape), std::move(bytes));
}

struct NpyArray {
  char kind = 0;  // 'f', 'i', 'u', 'b'
  size_t width = 0;
  core::Shape shape;
  std::string_view data;
};

Result<NpyArray> ParseNpyHeader(std::string_view bytes) {
  static constexpr std::string_view kMagic("\x93NUMPY", 6);
  auto bad = [](const std::string& why) { return Status::InvalidArgument("not a .npy array: " + why); };
  if (bytes.size() < 10 || bytes.substr(0, 6) != kMagic) return bad("no \\x93NUMPY magic");
  const uint8_t major = static_cast<uint8_t>(bytes[6]);
  size_t header_len = 0;
  size_t offset = 0;
  if (major == 1) {
    header_len = static_cast<uint8_t>(bytes[8]) | (static_cast<size_t>(static_cast<uint8_t>(bytes[9])) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return bad("truncated header");
    for (int i = 0; i < 4; ++i) header_len |= static_cast<size_t>(static_cast<uint8_t>(bytes[8 + i])) << (8 * i);
    offset = 12;
  } else {
    return bad("unknown format version " + std::to_string(major));
  }
  if (bytes.size() < offset + header_len) return bad("truncated header");
  const std::string header(bytes.substr(offset, header_len));
  auto value_of = [&](const std::string& key) -> std::string {
    const size_t k = header.find("'" + key + "'");
    if (k == std::string::npos) return "";
    const size_t colon = header.find(':', k);
    return colon == std::string::npos ? "" : header.substr(colon + 1);
  };
  NpyArray arr;
  std::string descr = value_of("descr");
  const size_t q1 = descr.find('\'');
  const size_t q2 = q1 == std::string::npos ? q1 : descr.find('\'', q1 + 1);
  if (q2 == std::string::npos) return bad("no descr");
  descr = descr.substr(q1 + 1, q2 - q1 - 1);
  if (descr.size() < 3 || descr[0] == '>') return bad("dtype '" + descr + "' is not little-endian numeric");
  arr.kind = descr[1];
  arr.width = static_cast<size_t>(std::atoi(descr.c_str() + 2));
  const bool ok_kind = (arr.kind == 'f' && (arr.width == 2 || arr.width == 4 || arr.width == 8)) ||
                       ((arr.kind == 'i' || arr.kind == 'u') &&
                        (arr.width == 1 || arr.width == 2 || arr.width == 4 || arr.width == 8)) ||
                       (arr.kind == 'b' && arr.width == 1);
  if (!ok_kind) return bad("unsupported dtype '" + descr + "'");
  const std::string fortran = value_of("fortran_order");
  if (fortran.find("True") != std::string::npos && fortran.find("True") < fortran.find(',')) {
    return bad("Fortran-ordered arrays are not supported");
  }
  const std::string shape = value_of("shape");
  const size_t open = shape.find('(');
  const size_t close = shape.find(')');
  if (open == std::string::npos || close == std::string::npos) return bad("no shape");
  std::string dims = shape.substr(open + 1, close - open - 1);
  size_t pos = 0;
  while (pos < dims.size()) {
    const size_t comma = dims.find(',', pos);
    const std::string part = dims.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (part.find_first_of("0123456789") != std::string::npos) arr.shape.push_back(std::atoll(part.c_str()));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  arr.data = bytes.substr(offset + header_len);
  int64_t count = 1;
  for (int64_t d : arr.shape) count *= d;
  if (arr.data.size() < static_cast<size_t>(count) * arr.width) return bad("truncated data");
  return arr;
}

double NpyValue(const NpyArray& a, size_t i) {
  const char* p = a.data.data() + i * a.width;
  auto load = [p]<typename T>(T) { T v; std::memcpy(&v, p, sizeof(T)); return static_cast<double>(v); };
  if (a.kind == 'f') {
    if (a.width == 2) {
      uint16_t bits;
      std::memcpy(&bits, p, 2);
      return core::HalfBitsToFloat(bits);
    }
    return a.width == 4 ? load(float{}) : load(double{});
  }
  if (a.kind == 'b') return *p != 0 ? 1.0 : 0.0;
  if (a.kind == 'i') {
    switch (a.width) {
      case 1: return load(int8_t{});
      case 2: return load(int16_t{});
      case 4: return load(int32_t{});
      default: return load(int64_t{});
    }
  }
  switch (a.width) {
    case 1: return load(uint8_t{});
    case 2: return load(uint16_t{});
    case 4: return load(uint32_t{});
    default: return load(uint64_t{});
  }
}

}  // namespace

bool SampleSet::labelled() const {
  for (const auto& s : samples) {
    if (s.label) return true;
  }
  return false;
}

Result<SampleSet> ParseJsonLines(std::string_view text, const core::ModelConfig& config,
                                 const std::string& what) {
  SampleSet set;
  set.source = what;
  dom::parser parser;
  const bool batching = config.batch_size_limit() > 0;
  size_t number = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string line(text.substr(start, end - start));
    start = end + 1;
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto bad = [&](const std::string& why) {
      return Status::InvalidArgument(fmt::format("{} line {}: {}", what, number, why));
    };
    dom::element doc;
    dom::object inputs;
    if (parser.parse(line).get(doc) != simdjson::SUCCESS ||
        doc["inputs"].get_object().get(inputs) != simdjson::SUCCESS) {
      return bad("expected a JSON object with an \"inputs\" object");
    }
    for (auto field : inputs) {
      if (config.FindInput(field.key) == nullptr) {
        return bad("'" + std::string(field.key) + "' is not an input of the model (its inputs: " +
                   InputNames(config) + ")");
      }
    }
    Sample sample;
    for (const auto& in : config.inputs) {
      dom::element value;
      if (inputs[in.name].get(value) != simdjson::SUCCESS) {
        return bad("no value for input '" + in.name + "' (the model's inputs: " + InputNames(config) + ")");
      }
      auto tensor = JsonTensor(in, value, batching);
      if (!tensor.ok()) return bad(tensor.status().message());
      sample.inputs.push_back(std::move(tensor).value());
    }
    for (const char* key : {"label", "expected"}) {
      dom::element label;
      if (doc[key].get(label) != simdjson::SUCCESS) continue;
      double v = 0;
      if (label.get_double().get(v) != simdjson::SUCCESS) return bad(std::string("\"") + key + "\" must be a number");
      sample.label = v;
    }
    set.samples.push_back(std::move(sample));
  }
  if (set.samples.empty()) return Status::InvalidArgument(what + " holds no examples");
  return set;
}

Result<SampleSet> ParseNpy(std::string_view bytes, const core::ModelConfig& config,
                           const std::string& what) {
  if (config.inputs.size() != 1) {
    return Status::InvalidArgument(fmt::format(
        "{}: a .npy file holds one input, but the model has {} ({}); use a JSON lines file",
        what, config.inputs.size(), InputNames(config)));
  }
  auto parsed = ParseNpyHeader(bytes);
  if (!parsed.ok()) return Status::InvalidArgument(what + ": " + parsed.status().message());
  const NpyArray& arr = parsed.value();
  const core::TensorConfig& in = config.inputs[0];
  if (arr.shape.empty() || arr.shape[0] == 0) {
    return Status::InvalidArgument(what + ": the array has no examples (dimension 0 counts them)");
  }
  const core::Shape row_nested(arr.shape.begin() + 1, arr.shape.end());
  int64_t per_row = 1;
  for (int64_t d : row_nested) per_row *= d;
  auto shape = RowShape(in, row_nested.size() > 1 ? row_nested : core::Shape{}, per_row);
  if (!shape.ok()) {
    return Status::InvalidArgument(fmt::format("{}: array of shape {}: {}", what,
                                               core::ShapeToString(arr.shape),
                                               shape.status().message()));
  }
  if (in.type == DataType::kBytes || in.type == DataType::kBf16) {
    return Status::Unimplemented(what + ": input '" + in.name + "' is " +
                                 std::string(core::DataTypeName(in.type)) + ", which .npy samples do not support");
  }
  SampleSet set;
  set.source = what;
  const bool batching = config.batch_size_limit() > 0;
  for (int64_t r = 0; r < arr.shape[0]; ++r) {
    std::string bytes_row;
    for (int64_t i = 0; i < per_row; ++i) {
      AppendNumber(in.type, NpyValue(arr, static_cast<size_t>(r * per_row + i)), bytes_row);
    }
    core::Shape s = shape.value();
    if (batching) s.insert(s.begin(), 1);
    Sample sample;
    sample.inputs.push_back(core::Tensor::Owned(in.name, in.type, std::move(s), std::move(bytes_row)));
    set.samples.push_back(std::move(sample));
  }
  return set;
}

Result<SampleSet> ReadSampleSet(const std::string& path, const core::ModelConfig& config,
                                std::string_view role) {
  auto bytes = ReadFileBytes(path);
  if (!bytes.ok()) return Status::NotFound(std::string(role) + " '" + path + "' cannot be read");
  const std::string what = std::string(role) + " '" + path + "'";
  const bool npy = path.size() >= 4 && path.compare(path.size() - 4, 4, ".npy") == 0;
  if (npy) return ParseNpy(bytes.value(), config, what);
  return ParseJsonLines(bytes.value(), config, what);
}

SampleSet GenerateSamples(const core::ModelConfig& config, int count, uint64_t seed) {
  SampleSet set;
  set.source = fmt::format("{} generated random rows (seed {})", count, seed);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const bool batching = config.batch_size_limit() > 0;
  for (int r = 0; r < count; ++r) {
    Sample sample;
    for (const auto& in : config.inputs) {
      core::Shape shape;
      if (batching) shape.push_back(1);
      int64_t n = 1;
      for (int64_t d : in.dims) {
        shape.push_back(d < 0 ? 1 : d);
        n *= d < 0 ? 1 : d;
      }
      std::string bytes;
      for (int64_t i = 0; i < n; ++i) {
        if (in.type == DataType::kBytes) {
          core::AppendBytesElement(bytes, "a");
        } else if (in.type == DataType::kBool) {
          bytes.push_back(unit(rng) < 0.5 ? 0 : 1);
        } else if (IsInteger(in.type)) {
          AppendNumber(in.type, std::floor(unit(rng) * 10), bytes);
        } else if (in.type == DataType::kBf16) {
          Append<uint16_t>(bytes, static_cast<uint16_t>(std::bit_cast<uint32_t>(static_cast<float>(unit(rng))) >> 16));
        } else {
          AppendNumber(in.type, unit(rng), bytes);
        }
      }
      sample.inputs.push_back(core::Tensor::Owned(in.name, in.type, std::move(shape), std::move(bytes)));
    }
    set.samples.push_back(std::move(sample));
  }
  return set;
}

std::vector<core::Tensor> StackSamples(const SampleSet& set, size_t first, size_t count) {
  std::vector<core::Tensor> out;
  if (set.samples.empty()) return out;
  const Sample& proto = set.samples[first % set.samples.size()];
  for (size_t k = 0; k < proto.inputs.size(); ++k) {
    std::string bytes;
    for (size_t i = 0; i < count; ++i) {
      bytes.append(set.samples[(first + i) % set.samples.size()].inputs[k].bytes());
    }
    core::Shape shape = proto.inputs[k].shape();
    if (!shape.empty()) shape[0] = static_cast<int64_t>(count);
    out.push_back(core::Tensor::Owned(proto.inputs[k].name(), proto.inputs[k].type(), std::move(shape),
                                      std::move(bytes)));
  }
  return out;
}

bool Stackable(const SampleSet& set) {
  for (const auto& s : set.samples) {
    for (size_t k = 0; k < s.inputs.size(); ++k) {
      if (s.inputs[k].shape() != set.samples[0].inputs[k].shape()) return false;
    }
  }
  return true;
}

}  // namespace slipway::app::optimize
