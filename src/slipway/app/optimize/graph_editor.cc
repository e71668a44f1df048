#include "slipway/app/optimize/graph_editor.h"

#include <cstring>

namespace slipway::app::optimize {

using core::Result;
using core::Status;

namespace {

void CollectSubgraphReads(const onnx::GraphProto& g, std::set<std::string>* out) {
  for (const auto& n : g.node()) {
    for (const auto& in : n.input()) {
      if (!in.empty()) out->insert(in);
    }
    for (const auto& a : n.attribute()) {
      if (a.has_g()) CollectSubgraphReads(a.g(), out);
      for (const auto& sub : a.graphs()) CollectSubgraphReads(sub, out);
    }
  }
}

template <typename T>
onnx::TensorProto RawTensor(const std::string& name, int32_t type, const std::vector<int64_t>& dims,
                            const std::vector<T>& values) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(type);
  for (int64_t d : dims) t.add_dims(d);
  t.set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T)));
  return t;
}

}  // namespace

GraphEditor::GraphEditor(onnx::GraphProto* graph) : graph_(graph) {
  for (const auto& vi : graph->input()) {
    graph_inputs_.insert(vi.name());
    Reserve(vi.name());
  }
  for (const auto& vi : graph->output()) {
    graph_outputs_.insert(vi.name());
    Reserve(vi.name());
  }
  for (const auto& vi : graph->value_info()) Reserve(vi.name());
  for (int i = 0; i < graph->initializer_size(); ++i) {
    initializers_[graph->initializer(i).name()] = i;
    Reserve(graph->initializer(i).name());
  }
  for (int i = 0; i < graph->node_size(); ++i) {
    const auto& n = graph->node(i);
    if (!n.name().empty()) Reserve(n.name());
    std::set<std::string> seen;
    for (const auto& in : n.input()) {
      if (in.empty() || !seen.insert(in).second) continue;
      consumers_[in].push_back(i);
    }
    for (const auto& out : n.output()) {
      if (out.empty()) continue;
      producers_[out] = i;
      Reserve(out);
    }
    for (const auto& a : n.attribute()) {
      std::set<std::string> reads;
      if (a.has_g()) CollectSubgraphReads(a.g(), &reads);
      for (const auto& sub : a.graphs()) CollectSubgraphReads(sub, &reads);
      for (const auto& r : reads) {
        subgraph_reads_.insert(r);
        Reserve(r);
      }
    }
  }
}

std::string GraphEditor::FreshName(std::string_view base) {
  std::string name(base);
  for (int i = 1; names_.count(name); ++i) name = std::string(base) + "_" + std::to_string(i);
  Reserve(name);
  return name;
}

const onnx::TensorProto* GraphEditor::Initializer(std::string_view name) const {
  auto it = initializers_.find(name);
  return it == initializers_.end() ? nullptr : &graph_->initializer(it->second);
}

const std::vector<int>& GraphEditor::Consumers(std::string_view name) const {
  static const std::vector<int> kNone;
  auto it = consumers_.find(name);
  return it == consumers_.end() ? kNone : it->second;
}

int GraphEditor::Producer(std::string_view name) const {
  auto it = producers_.find(name);
  return it == producers_.end() ? -1 : it->second;
}

void GraphEditor::AddInitializer(onnx::TensorProto tensor) {
  Reserve(tensor.name());
  initializers_[tensor.name()] = graph_->initializer_size();
  *graph_->add_initializer() = std::move(tensor);
}

void GraphEditor::RemoveUnreadInitializers(const std::set<std::string>& candidates) {
  std::set<std::string> read;
  for (const auto& n : graph_->node()) {
    for (const auto& in : n.input()) read.insert(in);
  }
  for (const auto& vi : graph_->output()) read.insert(vi.name());
  read.insert(subgraph_reads_.begin(), subgraph_reads_.end());
  auto* inits = graph_->mutable_initializer();
  for (int i = inits->size() - 1; i >= 0; --i) {
    const std::string& name = inits->Get(i).name();
    if (candidates.count(name) && !read.count(name)) inits->DeleteSubrange(i, 1);
  }
  initializers_.clear();
  for (int i = 0; i < graph_->initializer_size(); ++i) {
    initializers_[graph_->initializer(i).name()] = i;
  }
}

int64_t ElementCount(const onnx::TensorProto& tensor) {
  int64_t n = 1;
  for (int64_t d : tensor.dims()) n *= d;
  return n;
}

std::vector<int64_t> Dims(const onnx::TensorProto& tensor) {
  return {tensor.dims().begin(), tensor.dims().end()};
}

Result<std::vector<float>> FloatData(const onnx::TensorProto& tensor) {
  if (tensor.data_type() != onnx::TensorProto::FLOAT) {
    return Status::InvalidArgument("tensor '" + tensor.name() + "' is not FLOAT");
  }
  int64_t n = 1;
  for (int64_t d : tensor.dims()) {
    if (d < 0 || (d > 0 && n > (int64_t{1} << 40) / d)) {
      return Status::InvalidArgument("tensor '" + tensor.name() + "' has invalid dims");
    }
    n *= d;
  }
  // Sizes are checked before anything is allocated: a file's dims are not to be trusted.
  const size_t count = static_cast<size_t>(n);
  if (!tensor.raw_data().empty()) {
    if (tensor.raw_data().size() != count * 4) {
      return Status::InvalidArgument("tensor '" + tensor.name() + "' holds " +
                                     std::to_string(tensor.raw_data().size()) + " bytes for " +
                                     std::to_string(n) + " floats");
    }
    std::vector<float> values(count);
    if (count > 0) std::memcpy(values.data(), tensor.raw_data().data(), count * 4);
    return values;
  }
  if (static_cast<size_t>(tensor.float_data_size()) != count) {
    return Status::InvalidArgument("tensor '" + tensor.name() + "' holds " +
                                   std::to_string(tensor.float_data_size()) + " values for " +
                                   std::to_string(n) + " elements");
  }
  return std::vector<float>(tensor.float_data().begin(), tensor.float_data().end());
}

onnx::TensorProto FloatTensor(const std::string& name, const std::vector<int64_t>& dims,
                              const std::vector<float>& values) {
  return RawTensor(name, onnx::TensorProto::FLOAT, dims, values);
}
onnx::TensorProto Int8Tensor(const std::string& name, const std::vector<int64_t>& dims,
                             const std::vector<int8_t>& values) {
  return RawTensor(name, onnx::TensorProto::INT8, dims, values);
}
onnx::TensorProto Uint8Tensor(const std::string& name, const std::vector<int64_t>& dims,
                              const std::vector<uint8_t>& values) {
  return RawTensor(name, onnx::TensorProto::UINT8, dims, values);
}
onnx::TensorProto Int32Tensor(const std::string& name, const std::vector<int64_t>& dims,
                              const std::vector<int32_t>& values) {
  return RawTensor(name, onnx::TensorProto::INT32, dims, values);
}
onnx::TensorProto Float16Tensor(const std::string& name, const std::vector<int64_t>& dims,
                                const std::vector<uint16_t>& bits) {
  return RawTensor(name, onnx::TensorProto::FLOAT16, dims, bits);
}

onnx::NodeProto MakeNode(const std::string& op_type, const std::vector<std::string>& inputs,
                         const std::vector<std::string>& outputs, const std::string& name) {
  onnx::NodeProto n;
  n.set_op_type(op_type);
  n.set_name(name);
  for (const auto& i : inputs) n.add_input(i);
  for (const auto& o : outputs) n.add_output(o);
  return n;
}

void SetIntAttribute(onnx::NodeProto* node, const std::string& name, int64_t value) {
  for (auto& a : *node->mutable_attribute()) {
    if (a.name() == name) {
      a.set_i(value);
      return;
    }
  }
  auto* a = node->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}

int64_t IntAttribute(const onnx::NodeProto& node, std::string_view name, int64_t fallback) {
  for (const auto& a : node.attribute()) {
    if (a.name() == name) return a.i();
  }
  return fallback;
}

float FloatAttribute(const onnx::NodeProto& node, std::string_view name, float fallback) {
  for (const auto& a : node.attribute()) {
    if (a.name() == name) return a.f();
  }
  return fallback;
}

bool HasSubgraph(const onnx::NodeProto& node) {
  for (const auto& a : node.attribute()) {
    if (a.has_g() || a.graphs_size() > 0) return true;
  }
  return false;
}

std::string NodeLabel(const onnx::NodeProto& node) {
  std::string who = !node.name().empty() ? node.name()
                    : node.output_size() > 0 ? node.output(0)
                                             : std::string("?");
  return node.op_type() + " '" + who + "'";
}

int ConstantsToInitializers(onnx::GraphProto* graph) {
  int moved = 0;
  auto* nodes = graph->mutable_node();
  for (int i = nodes->size() - 1; i >= 0; --i) {
    const auto& n = nodes->Get(i);
    if (n.op_type() != "Constant" || !n.domain().empty() || n.output_size() != 1 ||
        n.attribute_size() != 1) {
      continue;
    }
    const auto& a = n.attribute(0);
    onnx::TensorProto t;
    if (a.name() == "value" && a.has_t()) {
      t = a.t();
    } else if (a.name() == "value_float") {
      t = FloatTensor("", {}, {a.f()});
    } else if (a.name() == "value_floats") {
      t = FloatTensor("", {a.floats_size()}, {a.floats().begin(), a.floats().end()});
    } else {
      continue;
    }
    t.set_name(n.output(0));
    *graph->add_initializer() = std::move(t);
    nodes->DeleteSubrange(i, 1);
    ++moved;
  }
  return moved;
}

}  // namespace slipway::app::optimize
