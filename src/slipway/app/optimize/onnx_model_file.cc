#include "slipway/app/optimize/onnx_model_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <limits>
#include <sstream>

namespace slipway::app::optimize {

using core::Result;
using core::Status;

namespace {

bool HasExternalData(const onnx::TensorProto& t) {
  return t.data_location() == onnx::TensorProto::EXTERNAL || t.external_data_size() > 0;
}

int64_t TensorDataBytes(const onnx::TensorProto& t) {
  return static_cast<int64_t>(t.raw_data().size()) + t.float_data_size() * 4 +
         t.int32_data_size() * 4 + t.int64_data_size() * 8 + t.double_data_size() * 8 +
         t.uint64_data_size() * 8;
}

int64_t GraphWeightBytes(const onnx::GraphProto& g) {
  int64_t total = 0;
  for (const auto& t : g.initializer()) total += TensorDataBytes(t);
  for (const auto& n : g.node()) {
    for (const auto& a : n.attribute()) {
      if (a.has_t()) total += TensorDataBytes(a.t());
      if (a.has_g()) total += GraphWeightBytes(a.g());
      for (const auto& sub : a.graphs()) total += GraphWeightBytes(sub);
    }
  }
  return total;
}

bool GraphHasExternalData(const onnx::GraphProto& g) {
  for (const auto& t : g.initializer()) {
    if (HasExternalData(t)) return true;
  }
  for (const auto& n : g.node()) {
    for (const auto& a : n.attribute()) {
      if (a.has_t() && HasExternalData(a.t())) return true;
      if (a.has_g() && GraphHasExternalData(a.g())) return true;
      for (const auto& sub : a.graphs()) {
        if (GraphHasExternalData(sub)) return true;
      }
    }
  }
  return false;
}

}  // namespace

Result<std::string> ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot read '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::Internal("error reading '" + path + "'");
  return ss.str();
}

Result<onnx::ModelProto> ParseOnnxModel(std::string_view bytes, const std::string& what) {
  onnx::ModelProto model;
  if (bytes.empty()) return Status::InvalidArgument("'" + what + "' is not an ONNX model: it is empty");
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return Status::Unimplemented("'" + what + "' is over 2 GiB; ONNX models that large keep their "
                                 "weights in external data files, which slipway optimize does not read");
  }
  if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Status::InvalidArgument("'" + what +
                                   "' is not an ONNX model: it does not parse as an ONNX "
                                   "ModelProto (protobuf)");
  }
  if (model.ir_version() <= 0 || !model.has_graph() || model.opset_import_size() == 0) {
    return Status::InvalidArgument(
        "'" + what + "' is not an ONNX model: " +
        (model.ir_version() <= 0 ? std::string("it has no IR version")
                                 : !model.has_graph() ? std::string("it has no graph")
                                                      : std::string("it imports no opset")));
  }
  return model;
}

Result<onnx::ModelProto> ReadOnnxModel(const std::string& path) {
  ASSIGN_OR_RETURN(std::string bytes, ReadFileBytes(path));
  return ParseOnnxModel(bytes, path);
}

int64_t DefaultOpset(const onnx::ModelProto& model) {
  for (const auto& o : model.opset_import()) {
    if (o.domain().empty() || o.domain() == "ai.onnx") return o.version();
  }
  return -1;
}

Status CheckSupportedModel(const onnx::ModelProto& model, const std::string& what) {
  const int64_t opset = DefaultOpset(model);
  if (opset < 0) {
    return Status::Unimplemented("'" + what + "' imports no opset of the default ONNX domain");
  }
  if (opset < kMinSupportedOpset || opset > kMaxSupportedOpset) {
    return Status::Unimplemented(
        "'" + what + "' uses opset " + std::to_string(opset) +
        ", which slipway optimize does not support (supported: " +
        std::to_string(kMinSupportedOpset) + " to " + std::to_string(kMaxSupportedOpset) +
        "; convert it first, e.g. with onnx.version_converter)");
  }
  if (GraphHasExternalData(model.graph())) {
    return Status::Unimplemented("'" + what +
                                 "' keeps tensors in external data files, which slipway "
                                 "optimize does not read; save the model with its weights inline");
  }
  return Status::Ok();
}

Result<std::string> SerializeOnnxModel(const onnx::ModelProto& model) {
  std::string out;
  if (!model.SerializeToString(&out)) {
    return Status::Internal("cannot serialise the model (over 2 GiB?)");
  }
  return out;
}

int64_t WeightBytes(const onnx::ModelProto& model) { return GraphWeightBytes(model.graph()); }

Status WriteFileSynced(const std::string& path, std::string_view bytes) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) return Status::Internal("cannot write '" + path + "'");
  }
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return Status::Internal("cannot open '" + path + "' to flush it");
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Status::Internal("cannot flush '" + path + "'");
  return Status::Ok();
}

}  // namespace slipway::app::optimize
