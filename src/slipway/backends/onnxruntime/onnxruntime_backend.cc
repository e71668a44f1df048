#include "slipway/backends/onnxruntime/onnxruntime_backend.h"

#include <onnxruntime_cxx_api.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <utility>

namespace slipway::backends::onnxruntime {
namespace {

using core::DataType;
using core::Result;
using core::Status;

DataType FromOrt(ONNXTensorElementDataType t) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: return DataType::kBool;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return DataType::kUint8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16: return DataType::kUint16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32: return DataType::kUint32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64: return DataType::kUint64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: return DataType::kInt8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16: return DataType::kInt16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return DataType::kInt32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return DataType::kInt64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return DataType::kFp16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return DataType::kFp32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return DataType::kFp64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING: return DataType::kBytes;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16: return DataType::kBf16;
    default: return DataType::kInvalid;
  }
}

ONNXTensorElementDataType ToOrt(DataType t) {
  switch (t) {
    case DataType::kBool: return ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL;
    case DataType::kUint8: return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8;
    case DataType::kUint16: return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16;
    case DataType::kUint32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32;
    case DataType::kUint64: return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64;
    case DataType::kInt8: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8;
    case DataType::kInt16: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16;
    case DataType::kInt32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;
    case DataType::kInt64: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64;
    case DataType::kFp16: return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16;
    case DataType::kFp32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
    case DataType::kFp64: return ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE;
    case DataType::kBytes: return ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING;
    case DataType::kBf16: return ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16;
    case DataType::kInvalid: break;
  }
  return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
}

struct FileTensor {
  std::string name;
  DataType type;
  core::Shape shape;  // -1 for symbolic or unknown dimensions
};

// Runs `fn`, turning ONNX Runtime's exceptions into a Status.
template <typename Fn>
Status Guard(const std::string& what, Fn&& fn) {
  try {
    fn();
  } catch (const Ort::Exception& e) {
    return Status::Internal(what + ": " + e.what());
  } catch (const std::exception& e) {
    return Status::Internal(what + ": " + e.what());
  }
  return Status::Ok();
}

Ort::Env& SharedEnv() {
  static Ort::Env env(ORT_LOGGING_LEVEL_ERROR, "slipway");
  return env;
}

std::vector<FileTensor> ReadTensors(const Ort::Session& session, bool inputs) {
  Ort::AllocatorWithDefaultOptions alloc;
  std::vector<FileTensor> out;
  const size_t n = inputs ? session.GetInputCount() : session.GetOutputCount();
  for (size_t i = 0; i < n; ++i) {
    auto name = inputs ? session.GetInputNameAllocated(i, alloc)
                       : session.GetOutputNameAllocated(i, alloc);
    Ort::TypeInfo info = inputs ? session.GetInputTypeInfo(i) : session.GetOutputTypeInfo(i);
    FileTensor t{name.get(), DataType::kInvalid, {}};
    if (info.GetONNXType() == ONNX_TYPE_TENSOR) {
      auto tinfo = info.GetTensorTypeAndShapeInfo();
      t.type = FromOrt(tinfo.GetElementType());
      t.shape = tinfo.GetShape();
      for (auto& d : t.shape) {
        if (d < 0) d = -1;
      }
    }
    out.push_back(std::move(t));
  }
  return out;
}

// Completes the config's tensors of one kind from the file and checks what the config states.
Status CompleteTensors(const core::ModelConfig& config, const std::vector<FileTensor>& file,
                       std::vector<core::TensorConfig>& tensors, const char* kind, bool batching) {
  for (const auto& declared : tensors) {
    bool found = false;
    for (const auto& f : file) found = found || f.name == declared.name;
    if (!found) {
      std::string names;
      for (const auto& f : file) names += (names.empty() ? "" : ", ") + f.name;
      return Status::InvalidArgument("model '" + config.name + "': " + config.source + " declares " +
                                     kind + " '" + declared.name + "' but the model file's " +
                                     kind + "s are [" + names + "]");
    }
  }
  std::vector<core::TensorConfig> completed;
  for (const auto& f : file) {
    if (f.type == DataType::kInvalid) {
      return Status::Unimplemented("model '" + config.name + "': " + kind + " '" + f.name +
                                   "' is not a tensor of a supported datatype");
    }
    core::Shape dims = f.shape;
    if (batching) dims.erase(dims.begin());
    core::TensorConfig t;
    for (const auto& declared : tensors) {
      if (declared.name == f.name) t = declared;
    }
    t.name = f.name;
    if (t.type == DataType::kInvalid) {
      t.type = f.type;
    } else if (t.type != f.type) {
      return Status::InvalidArgument(
          "model '" + config.name + "': " + kind + " '" + f.name + "' has datatype " +
          std::string(core::DataTypeName(t.type)) + " in " + config.source +
          " but " + std::string(core::DataTypeName(f.type)) + " in the model file");
    }
    if (!t.dims_set) {
      t.dims = dims;
      t.dims_set = true;
    } else {
      bool match = t.dims.size() == dims.size();
      for (size_t i = 0; match && i < dims.size(); ++i) {
        match = dims[i] == -1 || t.dims[i] == -1 || dims[i] == t.dims[i];
      }
      if (!match) {
        return Status::InvalidArgument(
            "model '" + config.name + "': " + kind + " '" + f.name + "' has dims " +
            core::ShapeToString(t.dims) + " in " + config.source + " but " +
            core::ShapeToString(dims) + " in the model file" +
            (batching ? " (after the batch dimension)" : ""));
      }
      for (size_t i = 0; i < dims.size(); ++i) {
        if (t.dims[i] == -1) t.dims[i] = dims[i];
      }
    }
    completed.push_back(std::move(t));
  }
  tensors = std::move(completed);
  return Status::Ok();
}

class OrtInstance : public backend::ModelInstance {
 public:
  OrtInstance(std::unique_ptr<Ort::Session> session, const core::ModelConfig& config)
      : session_(std::move(session)),
        memory_(Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault)) {
    for (const auto& t : config.inputs) input_names_.push_back(t.name);
  }

  Result<std::vector<core::Tensor>> Execute(const std::vector<const core::Tensor*>& inputs,
                                            const std::vector<std::string>& output_names) override {
    std::vector<core::Tensor> results;
    Status st = Guard("ONNX Runtime failed to run the model", [&] {
      std::vector<Ort::Value> values;
      std::vector<const char*> in_names;
      std::vector<std::string> aligned;  // copies of misaligned input bytes
      aligned.reserve(inputs.size());
      values.reserve(inputs.size());
      for (const core::Tensor* t : inputs) {
        in_names.push_back(t->name().c_str());
        values.push_back(ToOrtValue(*t, aligned));
      }
      std::vector<const char*> out_names;
      out_names.reserve(output_names.size());
      for (const auto& n : output_names) out_names.push_back(n.c_str());
      auto outputs = session_->Run(Ort::RunOptions{nullptr}, in_names.data(), values.data(),
                                   values.size(), out_names.data(), out_names.size());
      for (size_t i = 0; i < outputs.size(); ++i) {
        results.push_back(FromOrtValue(output_names[i], outputs[i]));
      }
    });
    if (!st.ok()) return st;
    return results;
  }

 private:
  Ort::Value ToOrtValue(const core::Tensor& t, std::vector<std::string>& aligned) {
    const core::Shape& shape = t.shape();
    if (t.type() == DataType::kBytes) {
      Ort::AllocatorWithDefaultOptions alloc;
      auto v = Ort::Value::CreateTensor(alloc, shape.data(), shape.size(),
                                        ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING);
      auto elems = core::SplitBytesElements(t.bytes());
      for (size_t i = 0; i < elems.size(); ++i) {
        char* buf = v.GetResizedStringTensorElementBuffer(i, elems[i].size());
        if (!elems[i].empty()) std::memcpy(buf, elems[i].data(), elems[i].size());
      }
      return v;
    }
    std::string_view bytes = t.bytes();
    const size_t width = core::DataTypeByteSize(t.type());
    const char* data = bytes.data();
    static char empty_buffer[16];
    if (bytes.empty()) {
      data = empty_buffer;
    } else if (reinterpret_cast<uintptr_t>(data) % width != 0) {
      aligned.emplace_back(bytes);
      data = aligned.back().data();
    }
    // ONNX Runtime does not write to inputs; the API takes a non-const pointer.
    return Ort::Value::CreateTensor(memory_, const_cast<char*>(data), bytes.size(), shape.data(),
                                    shape.size(), ToOrt(t.type()));
  }

  static core::Tensor FromOrtValue(const std::string& name, const Ort::Value& v) {
    auto info = v.GetTensorTypeAndShapeInfo();
    DataType type = FromOrt(info.GetElementType());
    core::Shape shape = info.GetShape();
    const size_t count = info.GetElementCount();
    std::string bytes;
    if (type == DataType::kBytes) {
      const size_t total = v.GetStringTensorDataLength();
      std::string content(total, '\0');
      std::vector<size_t> offsets(count);
      if (count > 0) v.GetStringTensorContent(content.data(), total, offsets.data(), count);
      bytes.reserve(total + 4 * count);
      for (size_t i = 0; i < count; ++i) {
        const size_t end = i + 1 < count ? offsets[i + 1] : total;
        core::AppendBytesElement(bytes, std::string_view(content).substr(offsets[i], end - offsets[i]));
      }
    } else {
      const size_t size = count * core::DataTypeByteSize(type);
      bytes.assign(static_cast<const char*>(v.GetTensorRawData()), size);
    }
    return core::Tensor::Owned(name, type, std::move(shape), std::move(bytes));
  }

  std::unique_ptr<Ort::Session> session_;
  Ort::MemoryInfo memory_;
  std::vector<std::string> input_names_;
};

class OrtModel : public backend::Model {
 public:
  OrtModel(std::string path, core::ModelConfig config, int threads, bool spinning)
      : path_(std::move(path)), config_(std::move(config)), threads_(threads),
        spinning_(spinning) {}

  const core::ModelConfig& config() const override { return config_; }

  Result<std::unique_ptr<backend::ModelInstance>> CreateInstance() override {
    ASSIGN_OR_RETURN(auto session, OpenSession(path_, threads_, spinning_));
    return std::unique_ptr<backend::ModelInstance>(
        std::make_unique<OrtInstance>(std::move(session), config_));
  }

  static Result<std::unique_ptr<Ort::Session>> OpenSession(const std::string& path, int threads,
                                                           bool spinning) {
    std::unique_ptr<Ort::Session> session;
    Status st = Guard("ONNX Runtime could not load '" + path + "'", [&] {
      Ort::SessionOptions opts;
      opts.SetIntraOpNumThreads(threads < 1 ? 1 : threads);
      opts.SetInterOpNumThreads(1);
      opts.SetExecutionMode(ExecutionMode::ORT_SEQUENTIAL);
      opts.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
      opts.AddConfigEntry("session.intra_op.allow_spinning", spinning ? "1" : "0");
      session = std::make_unique<Ort::Session>(SharedEnv(), path.c_str(), opts);
    });
    if (!st.ok()) return st;
    return session;
  }

 private:
  std::string path_;
  core::ModelConfig config_;
  int threads_;
  bool spinning_;
};

class OrtBackend : public backend::Backend {
 public:
  explicit OrtBackend(OnnxRuntimeBackendOptions options) : options_(options) {}
  std::string name() const override { return "onnxruntime"; }
  std::string platform() const override { return "onnxruntime_onnx"; }
  std::string default_model_filename() const override { return "model.onnx"; }

  Result<std::unique_ptr<backend::Model>> Load(const backend::LoadOptions& options) override {
    ASSIGN_OR_RETURN(auto session, OrtModel::OpenSession(options.model_path, 1, false));
    std::vector<FileTensor> in;
    std::vector<FileTensor> out;
    RETURN_IF_ERROR(Guard("reading the model's inputs and outputs", [&] {
      in = ReadTensors(*session, true);
      out = ReadTensors(*session, false);
    }));
    core::ModelConfig config = StartConfig(options);
    config.intra_op_threads = std::max(1, options.intra_op_threads);
    bool file_batchable = true;
    for (const auto* list : {&in, &out}) {
      for (const auto& t : *list) {
        file_batchable = file_batchable && !t.shape.empty() && t.shape[0] == -1;
      }
    }
    if (!config.max_batch_size.has_value()) {
      config.max_batch_size = file_batchable ? options_.default_max_batch_size : 0;
    } else if (*config.max_batch_size > 0 && !file_batchable) {
      for (const auto* list : {&in, &out}) {
        for (const auto& t : *list) {
          if (t.shape.empty() || t.shape[0] != -1) {
            return Status::InvalidArgument(
                "model '" + config.name + "': " + config.source + " sets max_batch_size " +
                std::to_string(*config.max_batch_size) + " but tensor '" + t.name +
                "' has shape " + core::ShapeToString(t.shape) +
                " in the model file, with no variable first (batch) dimension");
          }
        }
      }
    }
    const bool batching = *config.max_batch_size > 0;
    RETURN_IF_ERROR(CompleteTensors(config, in, config.inputs, "input", batching));
    RETURN_IF_ERROR(CompleteTensors(config, out, config.outputs, "output", batching));
    RETURN_IF_ERROR(core::ValidateModelConfig(config));
    return std::unique_ptr<backend::Model>(std::make_unique<OrtModel>(
        options.model_path, std::move(config), options.intra_op_threads, options_.allow_spinning));
  }

 private:
  OnnxRuntimeBackendOptions options_;
};

}  // namespace

std::unique_ptr<backend::Backend> CreateOnnxRuntimeBackend(OnnxRuntimeBackendOptions options) {
  return std::make_unique<OrtBackend>(options);
}

}  // namespace slipway::backends::onnxruntime
