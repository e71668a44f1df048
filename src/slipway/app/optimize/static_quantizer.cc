#include "slipway/app/optimize/static_quantizer.h"

#include <set>

#include "slipway/app/optimize/graph_editor.h"
#include "slipway/app/optimize/onnx_model_file.h"
#include "slipway/app/optimize/quantization_math.h"

namespace slipway::app::optimize {

using core::Result;
using core::Status;

namespace {

bool IsCompute(const std::string& op) { return op == "Conv" || op == "Gemm" || op == "MatMul"; }

// Operators ONNX Runtime runs on int8 directly when the Q/DQ around them share parameters.
bool KeepsParameters(const std::string& op) {
  return op == "MaxPool" || op == "Flatten" || op == "Reshape" || op == "Transpose" ||
         op == "Squeeze" || op == "Unsqueeze";
}
// Operators with QLinear versions whose output gets its own calibrated parameters.
bool NeedsOwnParameters(const std::string& op) {
  return op == "GlobalAveragePool" || op == "AveragePool";
}

// The axis of a weight's output channels: Conv [M, C, k...] and Gemm with transB [N, K] on 0,
// MatMul and Gemm without transB [K, N] on 1.
int ChannelAxis(const onnx::NodeProto& node) {
  if (node.op_type() == "Conv") return 0;
  if (node.op_type() == "Gemm" && IntAttribute(node, "transB", 0) != 0) return 0;
  return 1;
}

}  // namespace

Result<StaticQuantizationPlan> PlanStaticQuantization(const onnx::ModelProto& model,
                                                      const RewriteOptions& options) {
  // The editor is used read-only here: no initializer is added or removed.
  onnx::GraphProto* graph = const_cast<onnx::GraphProto*>(&model.graph());
  GraphEditor editor(graph);
  StaticQuantizationPlan plan;
  std::map<std::string, std::string> maybe;  // Gemm/MatMul outputs: int8 only if read by an int8 node
  auto quantizable = [&](const std::string& name) {
    return !name.empty() && editor.Initializer(name) == nullptr && !editor.IsGraphOutput(name) &&
           !options.exclude.count(name);
  };
  auto promote = [&](const std::string& name) {
    auto it = maybe.find(name);
    if (it != maybe.end()) {
      plan.quantized[name] = it->second;
      maybe.erase(it);
    }
  };
  std::set<int> absorbed;
  for (int i = 0; i < graph->node_size(); ++i) {
    const onnx::NodeProto& node = graph->node(i);
    const std::string& op = node.op_type();
    if (!node.domain().empty() || HasSubgraph(node) || absorbed.count(i)) continue;
    if (IsCompute(op)) {
      const std::string label = NodeLabel(node);
      if (IsExcluded(node, options)) {
        plan.summary.skipped.emplace_back(label, "excluded");
        continue;
      }
      const onnx::TensorProto* w = node.input_size() > 1 ? editor.Initializer(node.input(1)) : nullptr;
      const int min_rank = op == "Conv" ? 3 : 2;
      const int max_rank = op == "Conv" ? 8 : 2;
      if (w == nullptr || w->data_type() != onnx::TensorProto::FLOAT || w->dims_size() < min_rank ||
          w->dims_size() > max_rank) {
        plan.summary.skipped.emplace_back(label, "its weight input is not a constant float weight");
        continue;
      }
      if (options.exclude.count(w->name())) {
        plan.summary.skipped.emplace_back(label, "its weight '" + w->name() + "' is excluded");
        continue;
      }
      const std::string& a = node.input(0);
      if (!quantizable(a)) {
        plan.summary.skipped.emplace_back(label, "its input '" + a + "' cannot be quantized");
        continue;
      }
      plan.compute_nodes.push_back(i);
      promote(a);
      if (!plan.quantized.count(a)) plan.quantized[a] = a;
      const std::string& y = node.output(0);
      const auto& readers = editor.Consumers(y);
      if (readers.size() == 1 && !editor.IsGraphOutput(y) && !editor.UsedBySubgraph(y)) {
        const onnx::NodeProto& next = graph->node(readers[0]);
        if (next.op_type() == "Relu" && next.domain().empty() && !IsExcluded(next, options) &&
            quantizable(next.output(0)) && !editor.UsedBySubgraph(next.output(0))) {
          plan.relu_folds[i] = readers[0];
          absorbed.insert(readers[0]);
          plan.quantized[next.output(0)] = next.output(0);
          continue;
        }
      }
      if (!quantizable(y)) continue;
      if (op == "Conv") {
        plan.quantized[y] = y;  // QLinearConv needs its output quantized
      } else {
        maybe[y] = y;  // QGemm / MatMulIntegerToFloat may keep a float output
      }
      continue;
    }
    if ((KeepsParameters(op) || NeedsOwnParameters(op)) && node.input_size() > 0 &&
        node.output_size() == 1 && !IsExcluded(node, options)) {
      const std::string& x = node.input(0);
      promote(x);
      auto in = plan.quantized.find(x);
      if (in == plan.quantized.end()) continue;
      const std::string& y = node.output(0);
      if (!quantizable(y)) continue;
      plan.quantized[y] = NeedsOwnParameters(op) ? y : in->second;
    }
  }
  std::set<std::string> sources;
  for (const auto& [tensor, source] : plan.quantized) sources.insert(source);
  plan.calibration_tensors.assign(sources.begin(), sources.end());
  if (plan.compute_nodes.empty()) {
    plan.summary.notes.push_back(
        "no Conv/Gemm/MatMul with constant float weights: nothing was quantized");
  }
  return plan;
}

Result<RewriteSummary> ApplyStaticQuantization(
    onnx::ModelProto* model, const StaticQuantizationPlan& plan,
    const std::map<std::string, std::pair<float, float>>& ranges, const RewriteOptions& options) {
  const int64_t opset = DefaultOpset(*model);
  if (opset < 10) {
    return Status::Unimplemented("static quantization needs opset 10 or newer; the model uses " +
                                 std::to_string(opset));
  }
  const bool per_channel = options.per_channel && opset >= 13;
  RewriteSummary summary = plan.summary;
  if (options.per_channel && !per_channel) {
    summary.notes.push_back("weights are quantized per tensor: per-channel DequantizeLinear needs "
                            "opset 13 (the model uses " + std::to_string(opset) + ")");
  }
  GraphEditor editor(model->mutable_graph());
  onnx::GraphProto& graph = editor.graph();

  struct QdqNames {
    ActivationQuantization params;
    std::string scale, zero_point, q, dq;
  };
  std::map<std::string, QdqNames> qdq;
  for (const auto& [tensor, source] : plan.quantized) {
    auto r = ranges.find(source);
    if (r == ranges.end()) {
      return Status::Internal("calibration measured no range for '" + source + "'");
    }
    QdqNames n;
    n.params = ActivationParams(r->second.first, r->second.second);
    n.scale = editor.FreshName(tensor + "_scale");
    n.zero_point = editor.FreshName(tensor + "_zero_point");
    n.q = editor.FreshName(tensor + "_quantized");
    n.dq = editor.FreshName(tensor + "_dequantized");
    editor.AddInitializer(FloatTensor(n.scale, {}, {n.params.scale}));
    editor.AddInitializer(Uint8Tensor(n.zero_point, {}, {n.params.zero_point}));
    qdq[tensor] = n;
  }
  summary.activations = static_cast<int>(qdq.size());
  auto emit_qdq = [&](const std::string& tensor, std::vector<onnx::NodeProto>* out) {
    auto it = qdq.find(tensor);
    if (it == qdq.end()) return;
    const QdqNames& n = it->second;
    out->push_back(MakeNode("QuantizeLinear", {tensor, n.scale, n.zero_point}, {n.q}, kUnnamed));
    out->push_back(MakeNode("DequantizeLinear", {n.q, n.scale, n.zero_point}, {n.dq}, kUnnamed));
  };

  std::set<int> compute(plan.compute_nodes.begin(), plan.compute_nodes.end());
  std::set<int> removed;
  for (const auto& [node, relu] : plan.relu_folds) removed.insert(relu);
  std::set<std::string> replaced;
  std::map<std::string, std::pair<std::string, std::vector<float>>> weights;  // name -> dq, scales

  std::vector<onnx::NodeProto> out;
  for (const auto& vi : graph.input()) emit_qdq(vi.name(), &out);
  for (int i = 0; i < graph.node_size(); ++i) {
    if (removed.count(i)) continue;
    onnx::NodeProto node = graph.node(i);
    if (compute.count(i)) {
      auto fold = plan.relu_folds.find(i);
      if (fold != plan.relu_folds.end()) node.set_output(0, graph.node(fold->second).output(0));
      const int axis = per_channel ? ChannelAxis(node) : -1;
      const std::string wname = node.input(1);
      auto cached = weights.find(wname + "#" + std::to_string(axis));
      if (cached == weights.end()) {
        const onnx::TensorProto* w = editor.Initializer(wname);
        if (w == nullptr) return Status::Internal("weight '" + wname + "' vanished");
        ASSIGN_OR_RETURN(std::vector<float> values, FloatData(*w));
        const std::vector<int64_t> dims = Dims(*w);
        WeightQuantization wq = QuantizeWeights(values, dims, axis, options.reduce_range ? 63 : 127);
        const std::vector<int64_t> sdims =
            axis >= 0 ? std::vector<int64_t>{dims[static_cast<size_t>(axis)]} : std::vector<int64_t>{};
        const std::string q = editor.FreshName(wname + "_quantized");
        const std::string s = editor.FreshName(wname + "_scale");
        const std::string z = editor.FreshName(wname + "_zero_point");
        const std::string dq = editor.FreshName(wname + "_dequantized");
        editor.AddInitializer(Int8Tensor(q, dims, wq.values));
        editor.AddInitializer(FloatTensor(s, sdims, wq.scales));
        editor.AddInitializer(Int8Tensor(z, sdims, std::vector<int8_t>(wq.scales.size(), 0)));
        onnx::NodeProto dqn = MakeNode("DequantizeLinear", {q, s, z}, {dq}, kUnnamed);
        if (axis >= 0) SetIntAttribute(&dqn, "axis", axis);
        out.push_back(std::move(dqn));
        cached = weights.emplace(wname + "#" + std::to_string(axis),
                                 std::make_pair(dq, std::move(wq.scales))).first;
        replaced.insert(wname);
        ++summary.weights;
      }
      node.set_input(1, cached->second.first);
      // Bias: int32 with scale input_scale * weight_scale, so the QLinear kernel adds it exactly.
      const bool gemm = node.op_type() == "Gemm";
      const bool plain_gemm = !gemm || (FloatAttribute(node, "alpha", 1.0f) == 1.0f &&
                                        FloatAttribute(node, "beta", 1.0f) == 1.0f);
      const onnx::TensorProto* b =
          node.input_size() > 2 && node.op_type() != "MatMul" ? editor.Initializer(node.input(2)) : nullptr;
      const std::vector<float>& wscales = cached->second.second;
      const auto& xq = qdq.at(graph.node(i).input(0)).params;
      if (b != nullptr && plain_gemm && b->data_type() == onnx::TensorProto::FLOAT &&
          b->dims_size() == 1 && (wscales.size() == 1 || b->dims(0) == static_cast<int64_t>(wscales.size()))) {
        ASSIGN_OR_RETURN(std::vector<float> bv, FloatData(*b));
        const std::string bname = b->name();
        const std::vector<int32_t> bq = QuantizeBias(bv, xq.scale, wscales);
        const std::vector<float> bs = BiasScales(xq.scale, wscales);
        const std::vector<int64_t> sdims =
            bs.size() == 1 ? std::vector<int64_t>{} : std::vector<int64_t>{static_cast<int64_t>(bs.size())};
        const std::string q = editor.FreshName(bname + "_quantized");
        const std::string s = editor.FreshName(bname + "_scale");
        const std::string z = editor.FreshName(bname + "_zero_point");
        const std::string dq = editor.FreshName(bname + "_dequantized");
        editor.AddInitializer(Int32Tensor(q, {static_cast<int64_t>(bq.size())}, bq));
        editor.AddInitializer(FloatTensor(s, sdims, bs));
        editor.AddInitializer(Int32Tensor(z, sdims, std::vector<int32_t>(bs.size(), 0)));
        onnx::NodeProto dqn = MakeNode("DequantizeLinear", {q, s, z}, {dq}, kUnnamed);
        if (bs.size() > 1) SetIntAttribute(&dqn, "axis", 0);
        out.push_back(std::move(dqn));
        node.set_input(2, dq);
        replaced.insert(bname);
      } else if (node.input_size() > 2 && !node.input(2).empty()) {
        summary.notes.push_back(NodeLabel(node) + " keeps a float bias, so ONNX Runtime may run it "
                                "in float");
      }
      summary.rewritten.push_back(NodeLabel(node) + (plan.relu_folds.count(i) ? " + Relu" : ""));
    }
    for (auto& in : *node.mutable_input()) {
      auto it = qdq.find(in);
      if (it != qdq.end()) in = it->second.dq;
    }
    std::vector<std::string> outputs(node.output().begin(), node.output().end());
    out.push_back(std::move(node));
    for (const auto& o : outputs) emit_qdq(o, &out);
  }
  graph.mutable_node()->Clear();
  for (auto& n : out) *graph.add_node() = std::move(n);
  editor.RemoveUnreadInitializers(replaced);
  return summary;
}

}  // namespace slipway::app::optimize
