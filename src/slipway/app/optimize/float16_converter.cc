#include "slipway/app/optimize/float16_converter.h"

#include <cmath>
#include <set>

#include "slipway/core/float16.h"
#include "slipway/app/optimize/graph_editor.h"
#include "slipway/app/optimize/quantization_math.h"

namespace slipway::app::optimize {

using core::Result;
using core::Status;

Result<RewriteSummary> ConvertWeightsToFloat16(onnx::ModelProto* model,
                                               const RewriteOptions& options) {
  GraphEditor editor(model->mutable_graph());
  onnx::GraphProto& graph = editor.graph();
  RewriteSummary summary;
  std::set<std::string> excluded_readers;  // tensors read by excluded nodes
  for (const auto& n : graph.node()) {
    if (!IsExcluded(n, options)) continue;
    for (const auto& in : n.input()) excluded_readers.insert(in);
  }
  std::vector<std::string> names;
  for (const auto& t : graph.initializer()) {
    if (t.data_type() == onnx::TensorProto::FLOAT) names.push_back(t.name());
  }
  std::vector<onnx::NodeProto> casts;
  std::set<std::string> replaced;
  for (const auto& name : names) {
    const onnx::TensorProto* t = editor.Initializer(name);
    if (ElementCount(*t) < options.float16_min_elements) continue;
    if (editor.IsGraphInput(name)) {
      summary.skipped.emplace_back(name, "it is also a graph input (a caller may override it)");
      continue;
    }
    if (options.exclude.count(name) || excluded_readers.count(name)) {
      summary.skipped.emplace_back(name, "excluded");
      continue;
    }
    ASSIGN_OR_RETURN(std::vector<float> values, FloatData(*t));
    bool fits = true;
    for (float v : values) fits = fits && std::isfinite(v) && std::fabs(v) <= kMaxHalf;
    if (!fits) {
      summary.skipped.emplace_back(name, "values beyond float16's range");
      continue;
    }
    std::vector<uint16_t> bits(values.size());
    for (size_t i = 0; i < values.size(); ++i) bits[i] = core::FloatToHalfBits(values[i]);
    const std::vector<int64_t> dims = Dims(*t);
    const std::string half = editor.FreshName(name + "_fp16");
    editor.AddInitializer(Float16Tensor(half, dims, bits));
    onnx::NodeProto cast = MakeNode("Cast", {half}, {name}, kUnnamed);
    SetIntAttribute(&cast, "to", onnx::TensorProto::FLOAT);
    casts.push_back(std::move(cast));
    replaced.insert(name);
    summary.rewritten.push_back(name);
    ++summary.weights;
  }
  // The originals go first, so that their names are free for the Casts' outputs.
  auto* inits = graph.mutable_initializer();
  for (int i = inits->size() - 1; i >= 0; --i) {
    if (replaced.count(inits->Get(i).name())) inits->DeleteSubrange(i, 1);
  }
  std::vector<onnx::NodeProto> nodes = std::move(casts);
  for (auto& n : *graph.mutable_node()) nodes.push_back(std::move(n));
  graph.mutable_node()->Clear();
  for (auto& n : nodes) *graph.add_node() = std::move(n);
  if (summary.weights == 0) {
    summary.notes.push_back("no float weights of " + std::to_string(options.float16_min_elements) +
                            " or more values: nothing was converted");
  }
  return summary;
}

}  // namespace slipway::app::optimize
