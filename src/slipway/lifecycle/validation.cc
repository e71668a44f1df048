#include "slipway/lifecycle/validation.h"

#include "slipway/core/prediction.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <cmath>
#include <cstring>
#include <sstream>

namespace slipway::lifecycle {

using core::Result;
using core::Status;
namespace dom = simdjson::dom;

namespace {

void Flatten(dom::element e, std::vector<dom::element>* out) {
  dom::array a;
  if (e.get_array().get(a) == simdjson::SUCCESS) {
    for (dom::element x : a) Flatten(x, out);
  } else {
    out->push_back(e);
  }
}

template <typename T>
void Append(std::string& bytes, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  bytes.append(buf, sizeof(T));
}

Status AppendValue(core::DataType type, dom::element e, std::string& bytes) {
  using core::DataType;
  double d = 0;
  int64_t i = 0;
  uint64_t u = 0;
  bool b = false;
  std::string_view s;
  if (type == DataType::kBytes) {
    if (e.get_string().get(s) != simdjson::SUCCESS) return Status::InvalidArgument("expects strings");
    core::AppendBytesElement(bytes, s);
    return Status::Ok();
  }
  if (type == DataType::kBool) {
    if (e.get_bool().get(b) != simdjson::SUCCESS) return Status::InvalidArgument("expects booleans");
    bytes.push_back(b ? 1 : 0);
    return Status::Ok();
  }
  if (e.get_double().get(d) != simdjson::SUCCESS) return Status::InvalidArgument("expects numbers");
  const bool is_int = e.get_int64().get(i) == simdjson::SUCCESS;
  const bool is_uint = e.get_uint64().get(u) == simdjson::SUCCESS;
  switch (type) {
    case DataType::kFp32: Append<float>(bytes, static_cast<float>(d)); break;
    case DataType::kFp64: Append<double>(bytes, d); break;
    case DataType::kInt8: Append<int8_t>(bytes, static_cast<int8_t>(d)); break;
    case DataType::kInt16: Append<int16_t>(bytes, static_cast<int16_t>(d)); break;
    case DataType::kInt32: Append<int32_t>(bytes, static_cast<int32_t>(d)); break;
    case DataType::kInt64: Append<int64_t>(bytes, is_int ? i : static_cast<int64_t>(d)); break;
    case DataType::kUint8: Append<uint8_t>(bytes, static_cast<uint8_t>(d)); break;
    case DataType::kUint16: Append<uint16_t>(bytes, static_cast<uint16_t>(d)); break;
    case DataType::kUint32: Append<uint32_t>(bytes, static_cast<uint32_t>(d)); break;
    case DataType::kUint64: Append<uint64_t>(bytes, is_uint ? u : static_cast<uint64_t>(d)); break;
    default: return Status::Unimplemented("datatype is not supported in validation sets");
  }
  return Status::Ok();
}

std::optional<double> Judged(const core::Tensor& t) {
  auto p = core::RowPrediction(t, 0, 1);
  return p ? std::optional<double>(p->value) : std::nullopt;
}

bool Same(std::optional<double> a, std::optional<double> b) {
  if (!a || !b) return false;
  return std::fabs(*a - *b) <= 1e-5 + 1e-3 * std::fabs(*b);
}

Result<std::vector<std::optional<double>>> Run(backend::Model& model, const std::string& output,
                                               const std::vector<ValidationRow>& rows) {
  ASSIGN_OR_RETURN(auto instance, model.CreateInstance());
  std::vector<std::optional<double>> out;
  for (const auto& row : rows) {
    std::vector<const core::Tensor*> inputs;
    for (const auto& t : row.inputs) inputs.push_back(&t);
    ASSIGN_OR_RETURN(auto outputs, instance->Execute(inputs, {output}));
    out.push_back(Judged(outputs.at(0)));
  }
  return out;
}

}  // namespace

Result<std::vector<ValidationRow>> ParseValidationSet(const std::string& text,
                                                      const core::ModelConfig& config) {
  std::vector<ValidationRow> rows;
  dom::parser parser;
  std::istringstream lines(text);
  std::string line;
  size_t number = 0;
  const bool batching = config.batch_size_limit() > 0;
  while (std::getline(lines, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto bad = [&](const std::string& why) {
      return Status::InvalidArgument(fmt::format("validation set line {}: {}", number, why));
    };
    dom::element doc;
    dom::object inputs;
    if (parser.parse(line).get(doc) != simdjson::SUCCESS ||
        doc["inputs"].get_object().get(inputs) != simdjson::SUCCESS) {
      return bad("expected a JSON object with an \"inputs\" object");
    }
    ValidationRow row;
    for (const auto& in : config.inputs) {
      dom::element value;
      if (inputs[in.name].get(value) != simdjson::SUCCESS) return bad("missing input '" + in.name + "'");
      std::vector<dom::element> flat;
      Flatten(value, &flat);
      std::string bytes;
      for (dom::element e : flat) {
        if (auto st = AppendValue(in.type, e, bytes); !st.ok()) {
          return bad("input '" + in.name + "' " + st.message());
        }
      }
      core::Shape shape;
      if (batching) shape.push_back(1);
      int64_t known = 1;
      int variable = 0;
      for (int64_t d : in.dims) {
        if (d < 0) {
          ++variable;
        } else {
          known *= d;
        }
      }
      for (int64_t d : in.dims) {
        shape.push_back(d >= 0 ? d : static_cast<int64_t>(flat.size()) / std::max<int64_t>(1, known));
      }
      if (variable > 1) return bad("input '" + in.name + "' has more than one variable dimension");
      row.inputs.push_back(core::Tensor::Owned(in.name, in.type, shape, std::move(bytes)));
      if (auto st = row.inputs.back().ValidateSize(); !st.ok()) return bad(st.message());
    }
    dom::element expected;
    double e = 0;
    if (doc["expected"].get(expected) == simdjson::SUCCESS) {
      std::vector<dom::element> flat;
      Flatten(expected, &flat);
      if (flat.size() != 1 || flat[0].get_double().get(e) != simdjson::SUCCESS) {
        return bad("\"expected\" must be one number");
      }
      row.expected = e;
    }
    rows.push_back(std::move(row));
  }
  if (rows.empty()) return Status::InvalidArgument("the validation set has no examples");
  return rows;
}

std::string ValidationReport::Summary() const {
  std::string s = fmt::format("{} examples", rows);
  if (accuracy) s += fmt::format(", accuracy {:.4f}", *accuracy);
  if (divergence) s += fmt::format(", divergence from the serving version {:.4f}", *divergence);
  return s;
}

Result<ValidationReport> ValidateVersion(backend::Model& candidate, backend::Model* reference,
                                         const std::vector<ValidationRow>& rows) {
  const core::ModelConfig& config = candidate.config();
  const auto& v = config.validation;
  std::string output = v.output;
  if (output.empty() && !config.outputs.empty()) output = config.outputs.front().name;
  if (config.FindOutput(output) == nullptr) {
    return Status::InvalidArgument("validation output '" + output + "' is not an output of the model");
  }
  ASSIGN_OR_RETURN(auto got, Run(candidate, output, rows));
  ValidationReport report;
  report.rows = rows.size();
  size_t with_expected = 0;
  size_t correct = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (!rows[i].expected) continue;
    ++with_expected;
    if (Same(got[i], rows[i].expected)) ++correct;
  }
  if (with_expected > 0) {
    report.accuracy = static_cast<double>(correct) / static_cast<double>(with_expected);
  }
  if (reference != nullptr && reference->config().FindOutput(output) != nullptr) {
    ASSIGN_OR_RETURN(auto ref, Run(*reference, output, rows));
    size_t differ = 0;
    for (size_t i = 0; i < rows.size(); ++i) {
      if (!Same(got[i], ref[i])) ++differ;
    }
    report.divergence = static_cast<double>(differ) / static_cast<double>(rows.size());
  }
  if (v.min_accuracy > 0 && report.accuracy && *report.accuracy < v.min_accuracy) {
    return Status::FailedPrecondition(fmt::format(
        "validation failed: accuracy {:.4f} is below min_accuracy {:.4f} ({})", *report.accuracy,
        v.min_accuracy, report.Summary()));
  }
  if (v.max_divergence < 1 && report.divergence && *report.divergence > v.max_divergence) {
    return Status::FailedPrecondition(fmt::format(
        "validation failed: divergence {:.4f} from the serving version exceeds max_divergence "
        "{:.4f} ({})",
        *report.divergence, v.max_divergence, report.Summary()));
  }
  return report;
}

}  // namespace slipway::lifecycle
