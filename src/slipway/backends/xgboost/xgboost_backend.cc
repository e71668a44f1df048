#include "slipway/backends/xgboost/xgboost_backend.h"

#include <xgboost/c_api.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace slipway::backends::xgboost {
namespace {

using core::DataType;
using core::Result;
using core::Status;

constexpr const char* kDefaultInput = "features";
constexpr const char* kDefaultOutput = "predictions";

// Normal predictions (transformed by the objective) from every tree, as Python's
// Booster.predict(DMatrix(x)) makes them; NaN marks a missing feature, as in a DMatrix.
constexpr const char* kPredictConfig =
    R"({"type": 0, "training": false, "iteration_begin": 0, "iteration_end": 0, )"
    R"("strict_shape": false, "cache_id": 0, "missing": NaN})";

std::string LastError() {
  const char* e = XGBGetLastError();
  return e == nullptr ? std::string("unknown error") : std::string(e);
}

struct BoosterFree {
  void operator()(void* handle) const { XGBoosterFree(handle); }
};
using Booster = std::unique_ptr<void, BoosterFree>;

Result<Booster> OpenBooster(const std::string& path, int threads) {
  BoosterHandle handle = nullptr;
  if (XGBoosterCreate(nullptr, 0, &handle) != 0) {
    return Status::Internal("XGBoost could not create a booster: " + LastError());
  }
  Booster booster(handle);
  if (XGBoosterLoadModel(handle, path.c_str()) != 0) {
    return Status::InvalidArgument("XGBoost could not load '" + path + "': " + LastError());
  }
  const std::string n = std::to_string(std::max(1, threads));
  if (XGBoosterSetParam(handle, "nthread", n.c_str()) != 0) {
    return Status::Internal("XGBoost refused nthread=" + n + ": " + LastError());
  }
  return booster;
}

// Predicts `rows` rows of `cols` float32 features; `data` must be 4-byte aligned.
Status Predict(BoosterHandle handle, const float* data, int64_t rows, int64_t cols,
               std::vector<uint64_t>& shape, const float** values) {
  const std::string array =
      R"({"data": [)" + std::to_string(reinterpret_cast<uintptr_t>(data)) +
      R"(, true], "shape": [)" + std::to_string(rows) + ", " + std::to_string(cols) +
      R"(], "typestr": "<f4", "version": 3})";
  const bst_ulong* out_shape = nullptr;
  bst_ulong out_dim = 0;
  if (XGBoosterPredictFromDense(handle, array.c_str(), kPredictConfig, nullptr, &out_shape,
                                &out_dim, values) != 0) {
    return Status::Internal("XGBoost failed to predict: " + LastError());
  }
  shape.assign(out_shape, out_shape + out_dim);
  return Status::Ok();
}

bool DimsMatch(const core::Shape& declared, const core::Shape& actual) {
  if (declared.size() != actual.size()) return false;
  for (size_t i = 0; i < declared.size(); ++i) {
    if (declared[i] != -1 && actual[i] != -1 && declared[i] != actual[i]) return false;
  }
  return true;
}

// Completes the config's one tensor of a kind (input or output) from what the booster takes or
// gives. `alternative` is a second accepted per-row shape (for outputs: [1] beside []).
Status CompleteTensor(const core::ModelConfig& config, std::vector<core::TensorConfig>& tensors,
                      const char* kind, const char* default_name, const core::Shape& dims,
                      const std::optional<core::Shape>& alternative, const std::string& what) {
  if (tensors.size() > 1) {
    std::string names;
    for (const auto& t : tensors) names += (names.empty() ? "" : ", ") + t.name;
    return Status::InvalidArgument("model '" + config.name + "': an XGBoost model has one " + kind +
                                   " but " + config.source + " lists " +
                                   std::to_string(tensors.size()) + " [" + names + "]");
  }
  if (tensors.empty()) {
    core::TensorConfig t;
    t.name = default_name;
    tensors.push_back(std::move(t));
  }
  core::TensorConfig& t = tensors.front();
  if (t.type == DataType::kInvalid) {
    t.type = DataType::kFp32;
  } else if (t.type != DataType::kFp32) {
    return Status::InvalidArgument("model '" + config.name + "': " + kind + " '" + t.name +
                                   "' has datatype " + std::string(core::DataTypeName(t.type)) +
                                   " in " + config.source + " but an XGBoost model's " + kind +
                                   " is FP32");
  }
  if (!t.dims_set) {
    t.dims = dims;
    t.dims_set = true;
    return Status::Ok();
  }
  const core::Shape* accepted = nullptr;
  if (DimsMatch(t.dims, dims)) {
    accepted = &dims;
  } else if (alternative && DimsMatch(t.dims, *alternative)) {
    accepted = &*alternative;
  }
  if (accepted == nullptr) {
    return Status::InvalidArgument(
        "model '" + config.name + "': " + kind + " '" + t.name + "' has dims " +
        core::ShapeToString(t.dims) + " in " + config.source + " but " +
        core::ShapeToString(dims) +
        (config.batch_size_limit() > 0 ? " after the batch dimension" : "") + " in the booster (" +
        what + ")");
  }
  for (size_t i = 0; i < t.dims.size(); ++i) {
    if (t.dims[i] == -1) t.dims[i] = (*accepted)[i];
  }
  return Status::Ok();
}

class XgbInstance : public backend::ModelInstance {
 public:
  XgbInstance(Booster booster, const core::ModelConfig& config, int64_t features,
              core::Shape per_row)
      : booster_(std::move(booster)),
        model_(config.name),
        input_(config.inputs.front().name),
        output_(config.outputs.front().name),
        features_(features),
        per_row_(std::move(per_row)) {}

  Result<std::vector<core::Tensor>> Execute(const std::vector<const core::Tensor*>& inputs,
                                            const std::vector<std::string>& output_names) override {
    const core::Tensor* x = nullptr;
    for (const core::Tensor* t : inputs) {
      if (t->name() == input_) x = t;
    }
    if (x == nullptr && inputs.size() == 1) x = inputs.front();
    if (x == nullptr || x->type() != DataType::kFp32 || x->shape().size() != 2 ||
        x->shape()[1] != features_) {
      return Status::InvalidArgument("model '" + model_ + "' takes one FP32 input '" + input_ +
                                     "' of shape [rows, " + std::to_string(features_) + "]");
    }
    for (const std::string& name : output_names) {
      if (name != output_) {
        return Status::NotFound("model '" + model_ + "' has no output '" + name + "'");
      }
    }
    const int64_t rows = x->shape()[0];
    core::Shape shape{rows};
    shape.insert(shape.end(), per_row_.begin(), per_row_.end());
    int64_t per_row = 1;
    for (int64_t d : per_row_) per_row *= d;
    std::string bytes;
    const std::string_view in = x->bytes();
    if (rows < 0 || in.size() != static_cast<size_t>(rows * features_) * sizeof(float)) {
      return Status::InvalidArgument("model '" + model_ + "': input '" + input_ + "' has " +
                                     std::to_string(in.size()) + " bytes for shape " +
                                     core::ShapeToString(x->shape()));
    }
    if (rows > 0) {
      const float* data = reinterpret_cast<const float*>(in.data());
      if (reinterpret_cast<uintptr_t>(in.data()) % alignof(float) != 0) {
        aligned_.resize(in.size() / sizeof(float));
        std::memcpy(aligned_.data(), in.data(), in.size());
        data = aligned_.data();
      }
      std::vector<uint64_t> got;
      const float* values = nullptr;
      RETURN_IF_ERROR(Predict(booster_.get(), data, rows, features_, got, &values));
      uint64_t count = 1;
      for (uint64_t d : got) count *= d;
      if (got.empty() || got[0] != static_cast<uint64_t>(rows) ||
          count != static_cast<uint64_t>(rows * per_row)) {
        std::string g;
        for (uint64_t d : got) g += (g.empty() ? "" : ",") + std::to_string(d);
        return Status::Internal("model '" + model_ + "': XGBoost predicted shape [" + g +
                                "] for " + std::to_string(rows) + " rows; expected " +
                                core::ShapeToString(shape));
      }
      bytes.assign(reinterpret_cast<const char*>(values), count * sizeof(float));
    }
    std::vector<core::Tensor> out;
    for (size_t i = 0; i < output_names.size(); ++i) {
      out.push_back(core::Tensor::Owned(output_, DataType::kFp32, shape,
                                        i + 1 == output_names.size() ? std::move(bytes) : bytes));
    }
    return out;
  }

 private:
  Booster booster_;
  std::string model_;
  std::string input_;
  std::string output_;
  int64_t features_;
  core::Shape per_row_;       // output dims per row: [], [1] or [n]
  std::vector<float> aligned_;  // copies of misaligned input bytes
};

class XgbModel : public backend::Model {
 public:
  XgbModel(std::string path, core::ModelConfig config, int64_t features, core::Shape per_row)
      : path_(std::move(path)), config_(std::move(config)), features_(features),
        per_row_(std::move(per_row)) {}

  const core::ModelConfig& config() const override { return config_; }

  Result<std::unique_ptr<backend::ModelInstance>> CreateInstance() override {
    ASSIGN_OR_RETURN(auto booster,
                     OpenBooster(path_, static_cast<int>(config_.intra_op_threads)));
    return std::unique_ptr<backend::ModelInstance>(
        std::make_unique<XgbInstance>(std::move(booster), config_, features_, per_row_));
  }

 private:
  std::string path_;
  core::ModelConfig config_;
  int64_t features_;
  core::Shape per_row_;
};

class XgbBackend : public backend::Backend {
 public:
  explicit XgbBackend(XgboostBackendOptions options) : options_(options) {}
  std::string name() const override { return "xgboost"; }
  std::string platform() const override { return "xgboost"; }
  std::string default_model_filename() const override { return "model.json"; }

  Result<std::unique_ptr<backend::Model>> Load(const backend::LoadOptions& options) override {
    core::ModelConfig config = StartConfig(options);
    config.intra_op_threads = std::max(1, options.intra_op_threads);
    if (!config.max_batch_size.has_value()) {
      config.max_batch_size = options_.default_max_batch_size;
    }
    ASSIGN_OR_RETURN(auto booster, OpenBooster(options.model_path, 1));
    bst_ulong features = 0;
    if (XGBoosterGetNumFeature(booster.get(), &features) != 0) {
      return Status::Internal("model '" + config.name +
                              "': XGBoost could not tell the number of features: " + LastError());
    }
    if (features == 0 || features > static_cast<bst_ulong>(std::numeric_limits<int32_t>::max())) {
      return Status::InvalidArgument("model '" + config.name + "': the booster in '" +
                                     options.model_path + "' reports " + std::to_string(features) +
                                     " features");
    }
    // The output's shape: predict one row whose features are all missing.
    std::vector<float> probe(features, std::numeric_limits<float>::quiet_NaN());
    std::vector<uint64_t> got;
    const float* values = nullptr;
    RETURN_IF_ERROR(Predict(booster.get(), probe.data(), 1, static_cast<int64_t>(features), got,
                            &values));
    core::Shape per_row;
    if (got.size() == 2) {
      per_row.push_back(static_cast<int64_t>(got[1]));
    } else if (got.size() != 1) {
      return Status::Unimplemented("model '" + config.name + "': XGBoost predicts " +
                                   std::to_string(got.size()) +
                                   "-dimensional outputs for this booster; 1 or 2 are served");
    }
    const bool batching = *config.max_batch_size > 0;
    const int64_t n = static_cast<int64_t>(features);
    core::Shape in_dims = batching ? core::Shape{n} : core::Shape{-1, n};
    core::Shape out_dims = batching ? core::Shape{} : core::Shape{-1};
    out_dims.insert(out_dims.end(), per_row.begin(), per_row.end());
    std::optional<core::Shape> out_alternative;
    if (per_row.empty()) {
      out_alternative = out_dims;
      out_alternative->push_back(1);
    }
    RETURN_IF_ERROR(CompleteTensor(config, config.inputs, "input", kDefaultInput, in_dims,
                                   std::nullopt,
                                   "it takes " + std::to_string(n) + " features"));
    RETURN_IF_ERROR(CompleteTensor(config, config.outputs, "output", kDefaultOutput, out_dims,
                                   out_alternative,
                                   per_row.empty() ? "it predicts one value per row"
                                                   : "it predicts " + std::to_string(per_row[0]) +
                                                         " values per row"));
    // Per-row output dims as completed ([1] where the config asked for it).
    const core::Shape& completed = config.outputs.front().dims;
    per_row.assign(completed.begin() + (batching ? 0 : 1), completed.end());
    RETURN_IF_ERROR(core::ValidateModelConfig(config));
    return std::unique_ptr<backend::Model>(
        std::make_unique<XgbModel>(options.model_path, std::move(config), n, std::move(per_row)));
  }

 private:
  XgboostBackendOptions options_;
};

}  // namespace

std::unique_ptr<backend::Backend> CreateXgboostBackend(XgboostBackendOptions options) {
  return std::make_unique<XgbBackend>(options);
}

}  // namespace slipway::backends::xgboost
