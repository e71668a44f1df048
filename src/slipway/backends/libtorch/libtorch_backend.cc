#include "slipway/backends/libtorch/libtorch_backend.h"

#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/script.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace slipway::backends::libtorch {
namespace {

using core::DataType;
using core::Result;
using core::Status;

std::optional<c10::ScalarType> ToTorch(DataType t) {
  switch (t) {
    case DataType::kBool: return c10::ScalarType::Bool;
    case DataType::kUint8: return c10::ScalarType::Byte;
    case DataType::kInt8: return c10::ScalarType::Char;
    case DataType::kInt16: return c10::ScalarType::Short;
    case DataType::kInt32: return c10::ScalarType::Int;
    case DataType::kInt64: return c10::ScalarType::Long;
    case DataType::kFp16: return c10::ScalarType::Half;
    case DataType::kFp32: return c10::ScalarType::Float;
    case DataType::kFp64: return c10::ScalarType::Double;
    case DataType::kBf16: return c10::ScalarType::BFloat16;
    case DataType::kUint16:
    case DataType::kUint32:
    case DataType::kUint64:
    case DataType::kBytes:
    case DataType::kInvalid: break;
  }
  return std::nullopt;
}

// The wire name of a LibTorch dtype where one exists, else LibTorch's own name ("ComplexFloat").
std::string DtypeName(c10::ScalarType t) {
  for (DataType d : {DataType::kBool, DataType::kUint8, DataType::kInt8, DataType::kInt16,
                     DataType::kInt32, DataType::kInt64, DataType::kFp16, DataType::kFp32,
                     DataType::kFp64, DataType::kBf16}) {
    if (ToTorch(d) == t) return std::string(core::DataTypeName(d));
  }
  return c10::toString(t);
}

// Runs `fn`, turning LibTorch's exceptions into a Status (without LibTorch's C++ backtrace).
template <typename Fn>
Status Guard(const std::string& what, Fn&& fn) {
  try {
    fn();
  } catch (const c10::Error& e) {
    return Status::Internal(what + ": " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return Status::Internal(what + ": " + e.what());
  }
  return Status::Ok();
}

// Sets LibTorch's process-wide thread counts once; later calls return the value in force.
int IntraOpThreadsOnce(int wanted) {
  static const int applied = [wanted] {
    const int n = std::max(1, wanted);
    at::set_num_threads(n);
    try {
      at::set_num_interop_threads(1);
    } catch (const std::exception&) {
      // Already started by something else in the process: keep its size.
    }
    return n;
  }();
  return applied;
}

// "1 input", "2 inputs".
std::string Count(size_t n, const char* noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

std::string Names(const std::vector<core::TensorConfig>& tensors) {
  std::string s;
  for (const auto& t : tensors) s += (s.empty() ? "" : ", ") + t.name;
  return s;
}

// forward()'s argument names after `self`, for messages: "forward(x, y)".
std::string ForwardSignature(const c10::FunctionSchema& schema) {
  std::string s = "forward(";
  bool first = true;
  for (const auto& arg : schema.arguments()) {
    if (arg.name() == "self") continue;
    s += (first ? "" : ", ") + arg.name();
    first = false;
  }
  return s + ")";
}

// Checks the config's tensors of one kind: a TorchScript file cannot complete them.
Status CheckDeclared(const core::ModelConfig& config,
                     const std::vector<core::TensorConfig>& tensors, const char* kind,
                     const std::string& signature) {
  if (tensors.empty()) {
    return Status::InvalidArgument(
        "model '" + config.name + "': a TorchScript model carries no signature, so " +
        config.source + " must list its " + kind + "s (name, datatype and dims, in the order of " +
        signature + (std::string(kind) == "input" ? "'s arguments" : "'s results") +
        "), but it lists none");
  }
  for (const auto& t : tensors) {
    if (t.type == DataType::kInvalid) {
      return Status::InvalidArgument("model '" + config.name + "': " + kind + " '" + t.name +
                                     "' has no datatype in " + config.source +
                                     " (a TorchScript model carries none to complete it from)");
    }
    if (!ToTorch(t.type)) {
      return Status::Unimplemented("model '" + config.name + "': " + kind + " '" + t.name +
                                   "' has datatype " + std::string(core::DataTypeName(t.type)) +
                                   ", which LibTorch has no tensor type for");
    }
    if (!t.dims_set) {
      return Status::InvalidArgument("model '" + config.name + "': " + kind + " '" + t.name +
                                     "' has no dims in " + config.source +
                                     " (a TorchScript model carries none to complete it from)");
    }
  }
  return Status::Ok();
}

// Checks forward()'s declared arguments and results against the config's counts.
Status CheckSchema(const core::ModelConfig& config, const c10::FunctionSchema& schema) {
  size_t required = 0;
  size_t total = 0;
  for (const auto& arg : schema.arguments()) {
    if (arg.name() == "self") continue;
    ++total;
    if (!arg.default_value().has_value()) ++required;
  }
  const size_t n = config.inputs.size();
  if (n < required || n > total) {
    return Status::InvalidArgument(
        "model '" + config.name + "': " + ForwardSignature(schema) + " takes " +
        (required == total ? Count(total, "input")
                           : std::to_string(required) + " to " + Count(total, "input")) +
        ", but " + config.source + " lists " + std::to_string(n) + " [" + Names(config.inputs) +
        "]");
  }
  if (schema.returns().size() != 1) return Status::Ok();
  const c10::TypePtr& ret = schema.returns()[0].type();
  size_t returned = 0;
  if (ret->kind() == c10::TypeKind::TensorType) {
    returned = 1;
  } else if (auto tuple = ret->cast<c10::TupleType>()) {
    returned = tuple->elements().size();
  } else {
    return Status::Ok();  // a list (length known only at run time) or a type checked then
  }
  if (returned != config.outputs.size()) {
    return Status::InvalidArgument(
        "model '" + config.name + "': " + ForwardSignature(schema) + " returns " +
        ret->annotation_str() + " (" + Count(returned, "tensor") + "), but " + config.source +
        " lists " + Count(config.outputs.size(), "output") + " [" + Names(config.outputs) + "]");
  }
  return Status::Ok();
}

class TorchInstance : public backend::ModelInstance {
 public:
  TorchInstance(torch::jit::Module module, const core::ModelConfig& config)
      : module_(std::move(module)), config_(config) {}

  Result<std::vector<core::Tensor>> Execute(const std::vector<const core::Tensor*>& inputs,
                                            const std::vector<std::string>& output_names) override {
    std::vector<core::Tensor> results;
    Status checked;
    Status st = Guard("LibTorch failed to run model '" + config_.name + "'", [&] {
      at::internal::lazy_init_num_threads();  // this thread's OpenMP team takes the set size
      c10::InferenceMode inference;
      std::vector<c10::IValue> args;
      args.reserve(config_.inputs.size());
      for (size_t i = 0; i < config_.inputs.size(); ++i) {
        const core::Tensor* t = Input(inputs, i);
        if (t == nullptr) {
          checked = Status::InvalidArgument("model '" + config_.name + "': input '" +
                                            config_.inputs[i].name + "' is missing");
          return;
        }
        const auto dtype = ToTorch(t->type());
        if (!dtype) {
          checked = Status::InvalidArgument("model '" + config_.name + "': input '" +
                                            config_.inputs[i].name + "' has datatype " +
                                            std::string(core::DataTypeName(t->type())));
          return;
        }
        at::Tensor tensor = at::empty(t->shape(), at::TensorOptions().dtype(*dtype));
        if (tensor.nbytes() != t->bytes().size()) {
          checked = Status::InvalidArgument(
              "model '" + config_.name + "': input '" + config_.inputs[i].name + "' has " +
              std::to_string(t->bytes().size()) + " bytes, not the " +
              std::to_string(tensor.nbytes()) + " its shape " + core::ShapeToString(t->shape()) +
              " and datatype take");
          return;
        }
        if (tensor.nbytes() > 0) {
          std::memcpy(tensor.data_ptr(), t->bytes().data(), tensor.nbytes());
        }
        args.emplace_back(std::move(tensor));
      }
      c10::IValue out = module_.forward(std::move(args));
      std::vector<at::Tensor> tensors;
      checked = Unpack(out, tensors);
      if (!checked.ok()) return;
      const int64_t rows = Rows(inputs);
      results.reserve(output_names.size());
      for (const std::string& name : output_names) {
        size_t index = config_.outputs.size();
        for (size_t i = 0; i < config_.outputs.size(); ++i) {
          if (config_.outputs[i].name == name) index = i;
        }
        if (index == config_.outputs.size()) {
          checked = Status::NotFound("model '" + config_.name + "' has no output '" + name + "'");
          return;
        }
        auto tensor = ToOutput(config_.outputs[index], tensors[index], rows);
        if (!tensor.ok()) {
          checked = tensor.status();
          return;
        }
        results.push_back(std::move(tensor).value());
      }
    });
    if (!st.ok()) return st;
    if (!checked.ok()) return checked;
    return results;
  }

 private:
  // The request tensor for config input `i`: by name, else by position.
  const core::Tensor* Input(const std::vector<const core::Tensor*>& inputs, size_t i) const {
    for (const core::Tensor* t : inputs) {
      if (t->name() == config_.inputs[i].name) return t;
    }
    return i < inputs.size() ? inputs[i] : nullptr;
  }

  int64_t Rows(const std::vector<const core::Tensor*>& inputs) const {
    if (config_.batch_size_limit() <= 0 || inputs.empty() || inputs[0]->shape().empty()) return -1;
    return inputs[0]->shape()[0];
  }

  // The forward() result as one tensor per config output.
  Status Unpack(const c10::IValue& out, std::vector<at::Tensor>& tensors) const {
    std::string kind;
    if (out.isTensor()) {
      tensors.push_back(out.toTensor());
    } else if (out.isTuple() || out.isList()) {
      kind = out.isTuple() ? "tuple" : "list";
      const std::vector<c10::IValue> elements =
          out.isTuple() ? out.toTupleRef().elements().vec() : out.toListRef().vec();
      for (size_t i = 0; i < elements.size(); ++i) {
        if (!elements[i].isTensor()) {
          return Status::Internal("model '" + config_.name + "': forward() returned a " + kind +
                                  " whose element " + std::to_string(i) + " is a " +
                                  elements[i].tagKind() + ", not a tensor");
        }
        tensors.push_back(elements[i].toTensor());
      }
    } else {
      return Status::Internal("model '" + config_.name + "': forward() returned a " +
                              out.tagKind() + "; expected a tensor or a tuple or list of tensors");
    }
    if (tensors.size() != config_.outputs.size()) {
      return Status::Internal("model '" + config_.name + "': forward() returned " +
                              Count(tensors.size(), "tensor") +
                              (kind.empty() ? "" : " in a " + kind) + " but " + config_.source +
                              " lists " + Count(config_.outputs.size(), "output") + " [" +
                              Names(config_.outputs) + "]");
    }
    return Status::Ok();
  }

  Result<core::Tensor> ToOutput(const core::TensorConfig& declared, at::Tensor t,
                                int64_t rows) const {
    const c10::ScalarType want = *ToTorch(declared.type);
    if (t.scalar_type() != want) {
      return Status::Internal("model '" + config_.name + "': output '" + declared.name +
                              "' is declared " + std::string(core::DataTypeName(declared.type)) +
                              " in " + config_.source + " but the model returned " +
                              DtypeName(t.scalar_type()));
    }
    core::Shape shape(t.sizes().begin(), t.sizes().end());
    core::Shape expected;
    if (rows >= 0) expected.push_back(rows);
    expected.insert(expected.end(), declared.dims.begin(), declared.dims.end());
    bool match = shape.size() == expected.size();
    for (size_t i = 0; match && i < shape.size(); ++i) {
      match = expected[i] == -1 || expected[i] == shape[i];
    }
    if (!match) {
      return Status::Internal(
          "model '" + config_.name + "': output '" + declared.name + "' has shape " +
          core::ShapeToString(shape) + " but " + config_.source + " declares dims " +
          core::ShapeToString(declared.dims) +
          (rows >= 0 ? " after the batch dimension (" + Count(rows, "row") + ")" : ""));
    }
    if (!t.device().is_cpu()) t = t.to(at::kCPU);
    t = t.contiguous();
    const size_t size = static_cast<size_t>(t.numel()) * t.element_size();
    std::string bytes(size, '\0');
    if (size > 0) std::memcpy(bytes.data(), t.data_ptr(), size);
    return core::Tensor::Owned(declared.name, declared.type, std::move(shape), std::move(bytes));
  }

  torch::jit::Module module_;
  const core::ModelConfig config_;
};

class TorchModel : public backend::Model {
 public:
  TorchModel(torch::jit::Module module, core::ModelConfig config)
      : module_(std::move(module)), config_(std::move(config)) {}

  const core::ModelConfig& config() const override { return config_; }

  Result<std::unique_ptr<backend::ModelInstance>> CreateInstance() override {
    std::unique_ptr<backend::ModelInstance> instance;
    RETURN_IF_ERROR(Guard("LibTorch could not clone model '" + config_.name + "'", [&] {
      std::lock_guard<std::mutex> lock(mu_);
      torch::jit::Module clone = module_.clone();
      clone.eval();
      instance = std::make_unique<TorchInstance>(std::move(clone), config_);
    }));
    return instance;
  }

 private:
  std::mutex mu_;               // guards cloning module_
  torch::jit::Module module_;   // as loaded; never run
  core::ModelConfig config_;
};

class TorchBackend : public backend::Backend {
 public:
  std::string name() const override { return "pytorch"; }
  std::string platform() const override { return "pytorch_libtorch"; }
  std::string default_model_filename() const override { return "model.pt"; }

  Result<std::unique_ptr<backend::Model>> Load(const backend::LoadOptions& options) override {
    core::ModelConfig config = StartConfig(options);
    config.intra_op_threads = IntraOpThreadsOnce(options.intra_op_threads);
    if (!config.max_batch_size.has_value()) config.max_batch_size = 0;

    torch::jit::Module module;
    RETURN_IF_ERROR(Guard("LibTorch could not load '" + options.model_path + "'", [&] {
      module = torch::jit::load(options.model_path, at::kCPU);
      module.eval();
    }));
    auto forward = module.find_method("forward");
    if (!forward.has_value()) {
      return Status::InvalidArgument("model '" + config.name + "': '" + options.model_path +
                                     "' is a TorchScript module without a forward() method");
    }
    const c10::FunctionSchema& schema = forward->function().getSchema();
    const std::string signature = ForwardSignature(schema);
    RETURN_IF_ERROR(CheckDeclared(config, config.inputs, "input", signature));
    RETURN_IF_ERROR(CheckDeclared(config, config.outputs, "output", signature));
    RETURN_IF_ERROR(CheckSchema(config, schema));
    RETURN_IF_ERROR(core::ValidateModelConfig(config));
    return std::unique_ptr<backend::Model>(
        std::make_unique<TorchModel>(std::move(module), std::move(config)));
  }
};

}  // namespace

std::unique_ptr<backend::Backend> CreateLibTorchBackend() {
  return std::make_unique<TorchBackend>();
}

}  // namespace slipway::backends::libtorch
