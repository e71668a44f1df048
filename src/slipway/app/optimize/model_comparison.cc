#include "slipway/app/optimize/model_comparison.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "slipway/core/float16.h"
#include "slipway/app/optimize/quantization_math.h"
#include "slipway/core/prediction.h"

namespace slipway::app::optimize {

using core::DataType;
using core::Result;
using core::Status;

namespace {

// Element i of a fixed-width numeric tensor as a double; nullopt for BYTES and BF16.
std::optional<double> ValueAt(const core::Tensor& t, size_t i) {
  const char* p = t.bytes().data() + i * core::DataTypeByteSize(t.type());
  auto load = [p]<typename T>(T) { T v; std::memcpy(&v, p, sizeof(T)); return static_cast<double>(v); };
  switch (t.type()) {
    case DataType::kFp32: return load(float{});
    case DataType::kFp64: return load(double{});
    case DataType::kFp16: {
      uint16_t bits;
      std::memcpy(&bits, p, 2);
      return core::HalfBitsToFloat(bits);
    }
    case DataType::kBool: return *p != 0 ? 1.0 : 0.0;
    case DataType::kInt8: return load(int8_t{});
    case DataType::kInt16: return load(int16_t{});
    case DataType::kInt32: return load(int32_t{});
    case DataType::kInt64: return load(int64_t{});
    case DataType::kUint8: return load(uint8_t{});
    case DataType::kUint16: return load(uint16_t{});
    case DataType::kUint32: return load(uint32_t{});
    case DataType::kUint64: return load(uint64_t{});
    default: return std::nullopt;
  }
}

bool SamePrediction(const std::optional<core::Prediction>& a, const std::optional<core::Prediction>& b) {
  if (!a || !b) return false;
  return std::fabs(a->value - b->value) <= 1e-5 + 1e-3 * std::fabs(b->value);
}

bool Correct(const std::optional<core::Prediction>& p, double label) {
  return p && std::fabs(p->value - label) <= 1e-5 + 1e-3 * std::fabs(label);
}

}  // namespace

std::optional<double> Agreement::accuracy_before() const {
  if (labelled == 0) return std::nullopt;
  return static_cast<double>(correct_before) / static_cast<double>(labelled);
}

std::optional<double> Agreement::accuracy_after() const {
  if (labelled == 0) return std::nullopt;
  return static_cast<double>(correct_after) / static_cast<double>(labelled);
}

AgreementCounter::AgreementCounter(std::vector<std::string> outputs, std::string judged)
    : outputs_(std::move(outputs)), sum_abs_(outputs_.size(), 0.0) {
  for (size_t i = 0; i < outputs_.size(); ++i) {
    if (outputs_[i] == judged) judged_ = i;
    OutputDifference d;
    d.name = outputs_[i];
    a_.outputs.push_back(d);
  }
  a_.judged_output = outputs_.empty() ? "" : outputs_[judged_];
}

Status AgreementCounter::Add(const std::vector<core::Tensor>& before,
                             const std::vector<core::Tensor>& after, int64_t rows,
                             const std::vector<std::optional<double>>& labels) {
  if (before.size() != outputs_.size() || after.size() != outputs_.size()) {
    return Status::Internal("AgreementCounter: expected " + std::to_string(outputs_.size()) + " outputs");
  }
  for (size_t k = 0; k < outputs_.size(); ++k) {
    const core::Tensor& b = before[k];
    const core::Tensor& a = after[k];
    OutputDifference& d = a_.outputs[k];
    d.datatype = std::string(core::DataTypeName(b.type()));
    if (b.type() != a.type() || b.shape() != a.shape()) {
      return Status::InvalidArgument("output '" + outputs_[k] + "' changed from " + d.datatype + " " +
                                     core::ShapeToString(b.shape()) + " to " +
                                     std::string(core::DataTypeName(a.type())) + " " +
                                     core::ShapeToString(a.shape()));
    }
    const size_t width = core::DataTypeByteSize(b.type());
    if (width == 0 || b.type() == DataType::kBf16) {
      d.values += 1;
      d.equal += b.bytes() == a.bytes() ? 1 : 0;
      continue;
    }
    const size_t n = b.bytes().size() / width;
    for (size_t i = 0; i < n; ++i) {
      const double x = *ValueAt(b, i);
      const double y = *ValueAt(a, i);
      const double diff = std::isnan(x) && std::isnan(y) ? 0.0 : std::fabs(x - y);
      d.max_abs = std::max(d.max_abs, std::isnan(diff) ? INFINITY : diff);
      sum_abs_[k] += diff;
      d.equal += x == y ? 1 : 0;
    }
    d.values += static_cast<int64_t>(n);
  }
  for (int64_t r = 0; r < rows; ++r) {
    const auto pb = core::RowPrediction(before[judged_], r, rows);
    const auto pa = core::RowPrediction(after[judged_], r, rows);
    ++a_.examples;
    if (SamePrediction(pb, pa)) ++a_.top1_agree;
    if (static_cast<size_t>(r) < labels.size() && labels[static_cast<size_t>(r)]) {
      ++a_.labelled;
      if (Correct(pb, *labels[static_cast<size_t>(r)])) ++a_.correct_before;
      if (Correct(pa, *labels[static_cast<size_t>(r)])) ++a_.correct_after;
    }
  }
  return Status::Ok();
}

Agreement AgreementCounter::Finish(std::string eval_source) const {
  Agreement out = a_;
  out.eval_source = std::move(eval_source);
  for (size_t k = 0; k < out.outputs.size(); ++k) {
    auto& d = out.outputs[k];
    d.mean_abs = d.values ? sum_abs_[k] / static_cast<double>(d.values) : 0.0;
  }
  return out;
}

std::string DefaultJudgedOutput(const core::ModelConfig& config) {
  for (const auto& o : config.outputs) {
    const bool floating = o.type == DataType::kFp32 || o.type == DataType::kFp64 || o.type == DataType::kFp16;
    int64_t per_row = 1;
    for (int64_t d : o.dims) per_row *= d < 0 ? 2 : d;
    if (floating && per_row >= 2) return o.name;
  }
  return config.outputs.empty() ? "" : config.outputs.front().name;
}

Result<Agreement> CompareModels(ModelRunner& before, ModelRunner& after, const SampleSet& eval,
                                const std::string& judged_output) {
  const std::vector<std::string> outputs = before.OutputNames();
  if (std::find(outputs.begin(), outputs.end(), judged_output) == outputs.end()) {
    std::string names;
    for (const auto& o : outputs) names += (names.empty() ? "" : ", ") + o;
    return Status::InvalidArgument("'" + judged_output + "' is not an output of the model (its outputs: " + names + ")");
  }
  AgreementCounter counter(outputs, judged_output);
  const bool stack = before.batching() && after.batching() && Stackable(eval);
  const size_t step = stack ? 32 : 1;
  for (size_t first = 0; first < eval.samples.size(); first += step) {
    const size_t count = std::min(step, eval.samples.size() - first);
    std::vector<core::Tensor> inputs = stack ? StackSamples(eval, first, count) : eval.samples[first].inputs;
    auto b = before.Run(inputs, outputs);
    if (!b.ok()) return Status::InvalidArgument("the original model failed on the evaluation set: " + b.status().message());
    auto a = after.Run(inputs, outputs);
    if (!a.ok()) return Status::InvalidArgument("the optimized model failed on the evaluation set: " + a.status().message());
    std::vector<std::optional<double>> labels;
    for (size_t i = 0; i < count; ++i) labels.push_back(eval.samples[first + i].label);
    const int64_t rows = before.batching() ? static_cast<int64_t>(count) : 1;
    RETURN_IF_ERROR(counter.Add(b.value(), a.value(), rows, labels));
  }
  return counter.Finish(eval.source);
}

}  // namespace slipway::app::optimize
