// RewriteOptions and RewriteSummary: what the graph rewrites (dynamic and static int8
// quantization, float16 weights) take and what they report back.
//
// Exclusions name nodes (by node name or by the name of one of their outputs), tensors (an
// initializer or activation name), or whole operator types; an excluded node keeps its float
// weights and computes in float, an excluded tensor is never quantized.
// Thread safety: plain values.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <onnx/onnx_pb.h>

namespace slipway::app::optimize {

struct RewriteOptions {
  bool per_channel = false;       // one weight scale per output channel (needs opset 13)
  bool include_conv = false;      // dynamic mode: also store Conv weights as int8
  bool reduce_range = false;      // 7-bit weights, for CPUs without VNNI whose u8s8 kernels saturate
  std::set<std::string> exclude;  // node names, node output names or tensor names
  std::set<std::string> exclude_op_types;
  int64_t float16_min_elements = 16;  // smaller float tensors stay FLOAT (a Cast costs more)
};

struct RewriteSummary {
  std::vector<std::string> rewritten;  // node labels ("Gemm '/fc/Gemm'") that changed
  std::vector<std::pair<std::string, std::string>> skipped;  // node or tensor, why
  int weights = 0;                     // weight tensors converted
  int activations = 0;                 // activation tensors given Q/DQ pairs
  std::vector<std::string> notes;
};

// True when `node` or one of its outputs is excluded by name, or its op type is.
inline bool IsExcluded(const onnx::NodeProto& node, const RewriteOptions& options) {
  if (options.exclude_op_types.count(node.op_type())) return true;
  if (!node.name().empty() && options.exclude.count(node.name())) return true;
  for (const auto& o : node.output()) {
    if (options.exclude.count(o)) return true;
  }
  return false;
}

}  // namespace slipway::app::optimize
