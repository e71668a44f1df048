// GraphEditor: the bookkeeping that graph rewrites (quantization, float16) share: fresh names,
// initializers by name, who reads and who writes a tensor, which tensors subgraphs (If, Loop,
// Scan bodies) read from the outer graph, plus builders for tensors and nodes.
//
// The consumer and producer maps describe the graph as it was when the editor was made; a
// rewrite reads them, builds its new node list and swaps it in. Initializers added through the
// editor are found by Initializer() at once.
// Thread safety: none; one editor per graph, used by one thread. Never blocks.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <onnx/onnx_pb.h>

#include "slipway/core/status.h"

namespace slipway::app::optimize {

class GraphEditor {
 public:
  explicit GraphEditor(onnx::GraphProto* graph);

  onnx::GraphProto& graph() { return *graph_; }

  // `base` if no value, node or initializer has that name yet, else `base_1`, `base_2`, ...
  std::string FreshName(std::string_view base);

  const onnx::TensorProto* Initializer(std::string_view name) const;
  bool IsGraphInput(std::string_view name) const { return graph_inputs_.count(std::string(name)); }
  bool IsGraphOutput(std::string_view name) const { return graph_outputs_.count(std::string(name)); }
  // True when a node of a subgraph reads `name` from this graph.
  bool UsedBySubgraph(std::string_view name) const { return subgraph_reads_.count(std::string(name)); }
  // Indices of the nodes reading `name` (once per node), in graph order.
  const std::vector<int>& Consumers(std::string_view name) const;
  // Index of the node writing `name`; -1 for graph inputs, initializers and unknown names.
  int Producer(std::string_view name) const;

  // Appends an initializer (its name must be fresh).
  void AddInitializer(onnx::TensorProto tensor);
  // Removes the initializers among `candidates` that no node, subgraph or graph output reads.
  void RemoveUnreadInitializers(const std::set<std::string>& candidates);

 private:
  void Reserve(const std::string& name) { names_.insert(name); }

  onnx::GraphProto* graph_;
  std::set<std::string> names_;
  std::map<std::string, int, std::less<>> initializers_;
  std::set<std::string> graph_inputs_;
  std::set<std::string> graph_outputs_;
  std::set<std::string> subgraph_reads_;
  std::map<std::string, std::vector<int>, std::less<>> consumers_;
  std::map<std::string, int, std::less<>> producers_;
};

// Element count of a tensor's dims (1 for a scalar).
int64_t ElementCount(const onnx::TensorProto& tensor);
std::vector<int64_t> Dims(const onnx::TensorProto& tensor);
// The values of a FLOAT tensor, from raw_data or float_data; InvalidArgument otherwise.
core::Result<std::vector<float>> FloatData(const onnx::TensorProto& tensor);

onnx::TensorProto FloatTensor(const std::string& name, const std::vector<int64_t>& dims,
                              const std::vector<float>& values);
onnx::TensorProto Int8Tensor(const std::string& name, const std::vector<int64_t>& dims,
                             const std::vector<int8_t>& values);
onnx::TensorProto Uint8Tensor(const std::string& name, const std::vector<int64_t>& dims,
                              const std::vector<uint8_t>& values);
onnx::TensorProto Int32Tensor(const std::string& name, const std::vector<int64_t>& dims,
                              const std::vector<int32_t>& values);
// `bits` are IEEE half-precision bit patterns.
onnx::TensorProto Float16Tensor(const std::string& name, const std::vector<int64_t>& dims,
                                const std::vector<uint16_t>& bits);

// The name rewrites give the nodes they insert: none (names are optional in ONNX, and on small
// models they would cost a noticeable share of the bytes quantization saves). The tensors they
// write are named after the tensors they come from.
inline const std::string kUnnamed;

onnx::NodeProto MakeNode(const std::string& op_type, const std::vector<std::string>& inputs,
                         const std::vector<std::string>& outputs, const std::string& name);
void SetIntAttribute(onnx::NodeProto* node, const std::string& name, int64_t value);
int64_t IntAttribute(const onnx::NodeProto& node, std::string_view name, int64_t fallback);
float FloatAttribute(const onnx::NodeProto& node, std::string_view name, float fallback);
bool HasSubgraph(const onnx::NodeProto& node);

// "Gemm '/net/net.0/Gemm'" (or the first output's name when the node has none), for messages.
std::string NodeLabel(const onnx::NodeProto& node);

// Moves the tensors of Constant nodes (attribute `value`, `value_float` or `value_floats`) of
// the main graph into initializers of the same name, so rewrites see every weight in one place.
// Returns how many were moved.
int ConstantsToInitializers(onnx::GraphProto* graph);

}  // namespace slipway::app::optimize
