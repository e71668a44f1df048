#include "slipway/app/optimize/onnx_model_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <limits>
#include <sstream>

namespace slipway::app::optimize {

using core::Result;
using core::Status;

namespace {

bool HasExternalData(const onnx::TensorProto& t) {
  return t.data_location() == onnx::TensorProto::EXTERNAL || t.external_data_size() > 0;
}

int64_t ExternalLength(const onnx::TensorProto& t) {
  for (const auto& e : t.external_data()) {
    if (e.key() == "length") return std::strtoll(e.value().c_str(), nullptr, 10);
  }
  return 0;
}

int64_t TensorDataBytes(const onnx::TensorProto& t) {
  if (HasExternalData(t)) return ExternalLength(t);
  return static_cast<int64_t>(t.raw_data().size()) + t.float_data_size() * 4 +
         t.int32_data_size() * 4 + t.int64_data_size() * 8 + t.double_data_size() * 8 +
         t.uint64_data_size() * 8;
}

// Calls f on every tensor a graph holds as data: initializers and tensor attributes (Constant
// nodes), in this graph and its subgraphs.
template <typename F>
void VisitDataTensors(const onnx::GraphProto& g, const F& f) {
  for (const auto& t : g.initializer()) f(t);
  for (const auto& n : g.node()) {
    for (const auto& a : n.attribute()) {
      if (a.has_t()) f(a.t());
      if (a.has_g()) VisitDataTensors(a.g(), f);
      for (const auto& sub : a.graphs()) VisitDataTensors(sub, f);
    }
  }
}

int64_t GraphWeightBytes(const onnx::GraphProto& g) {
  int64_t total = 0;
  VisitDataTensors(g, [&total](const onnx::TensorProto& t) { total += TensorDataBytes(t); });
  return total;
}

bool GraphHasExternalData(const onnx::GraphProto& g) {
  bool found = false;
  VisitDataTensors(g, [&found](const onnx::TensorProto& t) { found = found || HasExternalData(t); });
  return found;
}

template <typename F>
void ForEachInitializer(onnx::GraphProto* g, const F& f) {
  for (auto& t : *g->mutable_initializer()) f(&t);
  for (auto& n : *g->mutable_node()) {
    for (auto& a : *n.mutable_attribute()) {
      if (a.has_g()) ForEachInitializer(a.mutable_g(), f);
      for (auto& sub : *a.mutable_graphs()) ForEachInitializer(&sub, f);
    }
  }
}

template <typename F>
void ForEachTensor(onnx::GraphProto* g, const F& f) {
  for (auto& t : *g->mutable_initializer()) f(&t);
  for (auto& n : *g->mutable_node()) {
    for (auto& a : *n.mutable_attribute()) {
      if (a.has_t()) f(a.mutable_t());
      for (auto& t : *a.mutable_tensors()) f(&t);
      if (a.has_g()) ForEachTensor(a.mutable_g(), f);
      for (auto& sub : *a.mutable_graphs()) ForEachTensor(&sub, f);
    }
  }
}

// A location names a file beside the model (or below its folder), never one elsewhere.
bool SafeLocation(const std::string& location) {
  if (location.empty() || location.front() == '/' || location.find('\\') != std::string::npos) return false;
  const std::filesystem::path p(location);
  for (const auto& part : p) {
    if (part == "..") return false;
  }
  return true;
}

}  // namespace

Status InlineExternalData(onnx::ModelProto* model, const std::string& model_dir, const std::string& what) {
  std::map<std::string, std::string> files;  // location -> bytes, each file read once
  Status st = Status::Ok();
  ForEachTensor(model->mutable_graph(), [&](onnx::TensorProto* t) {
    if (!st.ok() || !HasExternalData(*t)) return;
    std::string location;
    int64_t offset = 0;
    int64_t length = -1;
    for (const auto& e : t->external_data()) {
      if (e.key() == "location") location = e.value();
      if (e.key() == "offset") offset = std::strtoll(e.value().c_str(), nullptr, 10);
      if (e.key() == "length") length = std::strtoll(e.value().c_str(), nullptr, 10);
    }
    const std::string tensor = t->name().empty() ? std::string("(unnamed)") : t->name();
    if (!SafeLocation(location)) {
      st = Status::InvalidArgument("'" + what + "': tensor '" + tensor + "' keeps its data at '" + location +
                                   "', which is not a file beside the model");
      return;
    }
    auto it = files.find(location);
    if (it == files.end()) {
      auto bytes = ReadFileBytes((std::filesystem::path(model_dir) / location).string());
      if (!bytes.ok()) {
        st = Status::InvalidArgument("'" + what + "': tensor '" + tensor + "' keeps its data in '" + location +
                                     "', which cannot be read: " + bytes.status().message());
        return;
      }
      it = files.emplace(location, std::move(bytes).value()).first;
    }
    const auto size = static_cast<int64_t>(it->second.size());
    if (length < 0) length = size - offset;
    if (offset < 0 || length < 0 || offset > size || length > size - offset) {
      st = Status::InvalidArgument("'" + what + "': tensor '" + tensor + "' lies at bytes " + std::to_string(offset) +
                                   "+" + std::to_string(length) + " of '" + location + "', which holds only " +
                                   std::to_string(size));
      return;
    }
    t->set_raw_data(it->second.substr(static_cast<size_t>(offset), static_cast<size_t>(length)));
    t->clear_external_data();
    t->set_data_location(onnx::TensorProto::DEFAULT);
  });
  return st;
}

std::string MoveWeightsToExternalData(onnx::ModelProto* model, const std::string& location, int64_t min_bytes) {
  std::string data;
  ForEachInitializer(model->mutable_graph(), [&](onnx::TensorProto* t) {
    if (HasExternalData(*t) || !t->has_raw_data()) return;
    const auto bytes = static_cast<int64_t>(t->raw_data().size());
    if (bytes == 0 || bytes < min_bytes) return;
    if (bytes >= (int64_t{1} << 20)) data.resize((data.size() + 4095) / 4096 * 4096, '\0');
    const size_t offset = data.size();
    data += t->raw_data();
    t->clear_raw_data();
    t->set_data_location(onnx::TensorProto::EXTERNAL);
    auto add = [t](const char* key, const std::string& value) {
      auto* e = t->add_external_data();
      e->set_key(key);
      e->set_value(value);
    };
    add("location", location);
    add("offset", std::to_string(offset));
    add("length", std::to_string(bytes));
  });
  return data;
}

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
                                 "weights in an external data file (the model file stays small): save it so");
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
  ASSIGN_OR_RETURN(onnx::ModelProto model, ParseOnnxModel(bytes, path));
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  RETURN_IF_ERROR(InlineExternalData(&model, dir.empty() ? "." : dir.string(), path));
  return model;
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
    return Status::Internal("'" + what + "' still has tensors in external data files after reading them");
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

int64_t ExternalDataFileBytes(const onnx::ModelProto& model, const std::string& model_path) {
  std::set<std::string> locations;
  VisitDataTensors(model.graph(), [&locations](const onnx::TensorProto& t) {
    for (const auto& e : t.external_data()) {
      if (e.key() == "location") locations.insert(e.value());
    }
  });
  int64_t total = 0;
  for (const auto& l : locations) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(std::filesystem::path(model_path).parent_path() / l, ec);
    if (!ec) total += static_cast<int64_t>(size);
  }
  return total;
}

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
