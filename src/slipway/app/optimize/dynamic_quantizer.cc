#include "slipway/app/optimize/dynamic_quantizer.h"

#include <map>

#include "slipway/app/optimize/graph_editor.h"
#include "slipway/app/optimize/onnx_model_file.h"
#include "slipway/app/optimize/quantization_math.h"

namespace slipway::app::optimize {

using core::Result;
using core::Status;

namespace {

struct QuantizedActivation {
  std::string q, scale, zero_point;
};

class DynamicQuantizer {
 public:
  DynamicQuantizer(onnx::ModelProto* model, const RewriteOptions& options)
      : editor_(model->mutable_graph()), options_(options), opset_(DefaultOpset(*model)) {}

  Result<RewriteSummary> Run() {
    if (opset_ < 11) {
      return Status::Unimplemented("dynamic quantization needs opset 11 or newer "
                                   "(DynamicQuantizeLinear); the model uses opset " +
                                   std::to_string(opset_));
    }
    const onnx::GraphProto& graph = editor_.graph();
    for (int i = 0; i < graph.node_size(); ++i) {
      onnx::NodeProto node = graph.node(i);
      const std::string& op = node.op_type();
      const bool candidate = node.domain().empty() &&
                             (op == "MatMul" || op == "Gemm" || (op == "Conv" && options_.include_conv));
      if (!candidate) {
        out_.push_back(std::move(node));
        continue;
      }
      if (IsExcluded(node, options_)) {
        summary_.skipped.emplace_back(NodeLabel(node), "excluded");
        out_.push_back(std::move(node));
        continue;
      }
      Status st = op == "Conv" ? RewriteConv(node) : RewriteMatMul(node);
      if (!st.ok()) {
        if (st.code() != core::StatusCode::kFailedPrecondition) return st;
        summary_.skipped.emplace_back(NodeLabel(node), st.message());
        out_.push_back(std::move(node));
      }
    }
    editor_.graph().mutable_node()->Clear();
    for (auto& n : out_) *editor_.graph().add_node() = std::move(n);
    editor_.RemoveUnreadInitializers(replaced_);
    if (summary_.rewritten.empty()) {
      summary_.notes.push_back("no MatMul/Gemm" + std::string(options_.include_conv ? "/Conv" : "") +
                               " with constant float weights: nothing was quantized");
    }
    return summary_;
  }

 private:
  // A FailedPrecondition status means "leave this node as it is", with the reason.
  static Status Skip(const std::string& why) { return Status::FailedPrecondition(why); }

  Result<const onnx::TensorProto*> Weight(const onnx::NodeProto& node, int min_rank, int max_rank) {
    if (node.input_size() < 2) return Skip("it has no weight input");
    const onnx::TensorProto* w = editor_.Initializer(node.input(1));
    if (w == nullptr) return Skip("its weight input is not a constant");
    if (w->data_type() != onnx::TensorProto::FLOAT) return Skip("its weight is not FLOAT");
    if (w->dims_size() < min_rank || w->dims_size() > max_rank) return Skip("its weight has rank " + std::to_string(w->dims_size()));
    if (options_.exclude.count(w->name())) return Skip("its weight '" + w->name() + "' is excluded");
    if (editor_.Initializer(node.input(0)) != nullptr) return Skip("its data input is a constant");
    if (options_.exclude.count(node.input(0))) return Skip("its input '" + node.input(0) + "' is excluded");
    return w;
  }

  const QuantizedActivation& QuantizeActivation(const std::string& a) {
    auto it = activations_.find(a);
    if (it != activations_.end()) return it->second;
    QuantizedActivation q{editor_.FreshName(a + "_quantized"), editor_.FreshName(a + "_scale"),
                          editor_.FreshName(a + "_zero_point")};
    out_.push_back(MakeNode("DynamicQuantizeLinear", {a}, {q.q, q.scale, q.zero_point}, kUnnamed));
    return activations_.emplace(a, q).first->second;
  }

  Status RewriteMatMul(const onnx::NodeProto& node) {
    const bool gemm = node.op_type() == "Gemm";
    ASSIGN_OR_RETURN(const onnx::TensorProto* w, Weight(node, 2, 2));
    if (gemm && IntAttribute(node, "transA", 0) != 0) return Skip("Gemm with transA=1");
    const bool trans_b = gemm && IntAttribute(node, "transB", 0) != 0;
    const float alpha = gemm ? FloatAttribute(node, "alpha", 1.0f) : 1.0f;
    const float beta = gemm ? FloatAttribute(node, "beta", 1.0f) : 1.0f;
    ASSIGN_OR_RETURN(std::vector<float> values, FloatData(*w));
    int64_t k = w->dims(0);
    int64_t n = w->dims(1);
    if (trans_b) {  // stored [N, K]: MatMulInteger wants [K, N]
      std::swap(k, n);
      std::vector<float> t(values.size());
      for (int64_t r = 0; r < n; ++r) {
        for (int64_t c = 0; c < k; ++c) t[static_cast<size_t>(c * n + r)] = values[static_cast<size_t>(r * k + c)];
      }
      values = std::move(t);
    }
    WeightQuantization wq = QuantizeWeights(values, {k, n}, options_.per_channel ? 1 : -1,
                                            options_.reduce_range ? 63 : 127);
    for (float& s : wq.scales) s *= alpha;
    const std::string& y = node.output(0);
    const std::string base = w->name();
    const std::string wq_name = editor_.FreshName(base + "_quantized");
    const std::string ws_name = editor_.FreshName(base + "_scale");
    const std::vector<int64_t> scale_dims =
        wq.scales.size() == 1 ? std::vector<int64_t>{} : std::vector<int64_t>{n};
    replaced_.insert(w->name());
    // Build the initializers before AddInitializer may move the tensor `w` points into.
    onnx::TensorProto wq_tensor = Int8Tensor(wq_name, {k, n}, wq.values);
    onnx::TensorProto ws_tensor = FloatTensor(ws_name, scale_dims, wq.scales);
    std::string bias;
    if (gemm && node.input_size() > 2 && !node.input(2).empty()) {
      bias = node.input(2);
      if (beta != 1.0f) {
        const onnx::TensorProto* c = editor_.Initializer(bias);
        if (c != nullptr && c->data_type() == onnx::TensorProto::FLOAT) {
          ASSIGN_OR_RETURN(std::vector<float> cv, FloatData(*c));
          for (float& v : cv) v *= beta;
          const std::string scaled = editor_.FreshName(bias + "_beta");
          editor_.AddInitializer(FloatTensor(scaled, Dims(*c), cv));
          bias = scaled;
        } else {
          const std::string beta_name = editor_.FreshName(y + "_beta");
          editor_.AddInitializer(FloatTensor(beta_name, {}, {beta}));
          const std::string scaled = editor_.FreshName(bias + "_beta");
          out_.push_back(MakeNode("Mul", {bias, beta_name}, {scaled}, kUnnamed));
          bias = scaled;
        }
      }
    }
    editor_.AddInitializer(std::move(wq_tensor));
    editor_.AddInitializer(std::move(ws_tensor));
    const QuantizedActivation& a = QuantizeActivation(node.input(0));
    const std::string y_int = editor_.FreshName(y + "_int32");
    out_.push_back(MakeNode("MatMulInteger", {a.q, wq_name, a.zero_point}, {y_int}, kUnnamed));
    const std::string y_float = editor_.FreshName(y + "_int32_float");
    onnx::NodeProto cast = MakeNode("Cast", {y_int}, {y_float}, kUnnamed);
    SetIntAttribute(&cast, "to", onnx::TensorProto::FLOAT);
    out_.push_back(std::move(cast));
    const std::string y_scale = editor_.FreshName(y + "_scale");
    out_.push_back(MakeNode("Mul", {a.scale, ws_name}, {y_scale}, kUnnamed));
    if (bias.empty()) {
      out_.push_back(MakeNode("Mul", {y_float, y_scale}, {y}, kUnnamed));
    } else {
      const std::string y_mm = editor_.FreshName(y + "_matmul");
      out_.push_back(MakeNode("Mul", {y_float, y_scale}, {y_mm}, kUnnamed));
      out_.push_back(MakeNode("Add", {y_mm, bias}, {y}, kUnnamed));
    }
    summary_.rewritten.push_back(NodeLabel(node));
    ++summary_.weights;
    return Status::Ok();
  }

  // Conv keeps computing in float: its weight is stored as int8 and restored by
  // Cast(int8 -> float) * scale rather than DequantizeLinear, because ONNX Runtime constant-folds
  // the pair at load (it keeps DequantizeLinear nodes for QDQ fusion), so Conv sees a constant
  // float weight again and keeps its prepacked, NCHWc-blocked kernels.
  Status RewriteConv(onnx::NodeProto node) {
    ASSIGN_OR_RETURN(const onnx::TensorProto* w, Weight(node, 3, 8));
    const std::string wname = w->name();
    auto cached = conv_weights_.find(wname);
    std::string restored;
    if (cached != conv_weights_.end()) {
      restored = cached->second;
    } else {
      ASSIGN_OR_RETURN(std::vector<float> values, FloatData(*w));
      const std::vector<int64_t> dims = Dims(*w);
      WeightQuantization wq = QuantizeWeights(values, dims, options_.per_channel ? 0 : -1,
                                              options_.reduce_range ? 63 : 127);
      std::vector<int64_t> scale_dims;  // a scalar, or [M, 1, 1, ...] to broadcast per channel
      if (options_.per_channel) {
        scale_dims.assign(dims.size(), 1);
        scale_dims[0] = dims[0];
      }
      const std::string q = editor_.FreshName(wname + "_quantized");
      const std::string s = editor_.FreshName(wname + "_scale");
      const std::string f = editor_.FreshName(wname + "_int8_float");
      restored = editor_.FreshName(wname + "_dequantized");
      editor_.AddInitializer(Int8Tensor(q, dims, wq.values));
      editor_.AddInitializer(FloatTensor(s, scale_dims, wq.scales));
      onnx::NodeProto cast = MakeNode("Cast", {q}, {f}, kUnnamed);
      SetIntAttribute(&cast, "to", onnx::TensorProto::FLOAT);
      out_.push_back(std::move(cast));
      out_.push_back(MakeNode("Mul", {f, s}, {restored}, kUnnamed));
      conv_weights_[wname] = restored;
      replaced_.insert(wname);
      ++summary_.weights;
    }
    node.set_input(1, restored);
    summary_.rewritten.push_back(NodeLabel(node));
    out_.push_back(std::move(node));
    return Status::Ok();
  }

  GraphEditor editor_;
  const RewriteOptions& options_;
  const int64_t opset_;
  std::vector<onnx::NodeProto> out_;
  std::map<std::string, QuantizedActivation> activations_;
  std::map<std::string, std::string> conv_weights_;
  std::set<std::string> replaced_;
  RewriteSummary summary_;
};

}  // namespace

Result<RewriteSummary> QuantizeDynamic(onnx::ModelProto* model, const RewriteOptions& options) {
  return DynamicQuantizer(model, options).Run();
}

}  // namespace slipway::app::optimize
