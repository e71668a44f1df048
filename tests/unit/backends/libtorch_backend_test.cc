#include "slipway/backends/libtorch/libtorch_backend.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

namespace slipway::backends::libtorch {
namespace {

using core::DataType;

// tests/models/torch_mlp (scripts/make_models.py --tests): forward(features [n, 8] FP32)
// returns (probabilities [n, 3] FP32, label [n] INT64).
std::string ModelPath() { return std::string(SLIPWAY_TEST_MODELS) + "/torch_mlp/1/model.pt"; }

core::TensorConfig Tensor(const char* name, DataType type, core::Shape dims) {
  core::TensorConfig t;
  t.name = name;
  t.type = type;
  t.dims = std::move(dims);
  t.dims_set = true;
  return t;
}

backend::LoadOptions MlpOptions() {
  backend::LoadOptions o;
  o.model_path = ModelPath();
  o.config.name = "mlp";
  o.config.source = "config.yaml";
  o.config.max_batch_size = 8;
  o.config.inputs = {Tensor("features", DataType::kFp32, {8})};
  o.config.outputs = {Tensor("probabilities", DataType::kFp32, {3}),
                      Tensor("label", DataType::kInt64, {})};
  return o;
}

core::Tensor Rows(int64_t n) {
  std::vector<float> v(static_cast<size_t>(n) * 8);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 7) - 3.0f;
  std::string bytes(v.size() * sizeof(float), '\0');
  std::memcpy(bytes.data(), v.data(), bytes.size());
  return core::Tensor::Owned("features", DataType::kFp32, {n, 8}, std::move(bytes));
}

class LibTorchBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(ModelPath())) {
      GTEST_SKIP() << ModelPath() << " is missing: run scripts/make_models.py tests/models --tests";
    }
  }
  std::unique_ptr<backend::Backend> backend_ = CreateLibTorchBackend();
};

TEST_F(LibTorchBackendTest, NamesAsTriton) {
  EXPECT_EQ(backend_->name(), "pytorch");
  EXPECT_EQ(backend_->platform(), "pytorch_libtorch");
  EXPECT_EQ(backend_->default_model_filename(), "model.pt");
}

TEST_F(LibTorchBackendTest, RunsPositionallyAndReturnsTheRequestedOutputs) {
  auto model = backend_->Load(MlpOptions());
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_EQ((*model)->config().platform, "pytorch_libtorch");
  EXPECT_EQ((*model)->config().backend, "pytorch");
  auto instance = (*model)->CreateInstance();
  ASSERT_TRUE(instance.ok()) << instance.status().message();
  // Any input name works: only the position counts.
  core::Tensor x = Rows(3);
  x.set_name("anything");
  auto out = (*instance)->Execute({&x}, {"label", "probabilities"});
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_EQ(out->size(), 2u);
  EXPECT_EQ((*out)[0].name(), "label");
  EXPECT_EQ((*out)[0].type(), DataType::kInt64);
  EXPECT_EQ((*out)[0].shape(), (core::Shape{3}));
  EXPECT_EQ((*out)[1].type(), DataType::kFp32);
  EXPECT_EQ((*out)[1].shape(), (core::Shape{3, 3}));
  std::vector<float> p(9);
  std::memcpy(p.data(), (*out)[1].bytes().data(), 36);
  for (int r = 0; r < 3; ++r) EXPECT_NEAR(p[3 * r] + p[3 * r + 1] + p[3 * r + 2], 1.0f, 1e-5f);
}

TEST_F(LibTorchBackendTest, InstancesAreIndependentClones) {
  auto model = backend_->Load(MlpOptions());
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto a = (*model)->CreateInstance();
  auto b = (*model)->CreateInstance();
  ASSERT_TRUE(a.ok() && b.ok());
  const core::Tensor x = Rows(2);
  auto ra = (*a)->Execute({&x}, {"probabilities"});
  auto rb = (*b)->Execute({&x}, {"probabilities"});
  ASSERT_TRUE(ra.ok() && rb.ok());
  EXPECT_EQ((*ra)[0].bytes(), (*rb)[0].bytes());
}

TEST_F(LibTorchBackendTest, ConfigMustDeclareWhatTheFileCannotTell) {
  struct Case {
    const char* what;
    void (*edit)(core::ModelConfig&);
    std::vector<std::string> needles;
  };
  const Case cases[] = {
      {"no inputs", [](core::ModelConfig& c) { c.inputs.clear(); },
       {"no signature", "inputs", "forward(features)", "lists none"}},
      {"no outputs", [](core::ModelConfig& c) { c.outputs.clear(); }, {"outputs", "lists none"}},
      {"no datatype", [](core::ModelConfig& c) { c.inputs[0].type = DataType::kInvalid; },
       {"input 'features'", "no datatype"}},
      {"no dims", [](core::ModelConfig& c) { c.outputs[1].dims_set = false; },
       {"output 'label'", "no dims"}},
      {"BYTES", [](core::ModelConfig& c) { c.outputs[1].type = DataType::kBytes; },
       {"output 'label'", "BYTES"}},
      {"two inputs",
       [](core::ModelConfig& c) { c.inputs.push_back(Tensor("more", DataType::kFp32, {8})); },
       {"forward(features) takes 1 input,", "lists 2 [features, more]"}},
      {"one output", [](core::ModelConfig& c) { c.outputs.pop_back(); },
       {"Tuple[Tensor, Tensor] (2 tensors)", "lists 1 output [probabilities]"}},
  };
  for (const Case& c : cases) {
    auto options = MlpOptions();
    c.edit(options.config);
    auto model = backend_->Load(options);
    ASSERT_FALSE(model.ok()) << c.what;
    for (const auto& needle : c.needles) {
      EXPECT_NE(model.status().message().find(needle), std::string::npos)
          << c.what << ": '" << needle << "' not in: " << model.status().message();
    }
  }
}

TEST_F(LibTorchBackendTest, ChecksResultsAgainstTheConfig) {
  auto options = MlpOptions();
  options.config.outputs[0].dims = {4};
  options.config.outputs[1].type = DataType::kInt32;
  auto model = backend_->Load(options);
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto instance = (*model)->CreateInstance();
  ASSERT_TRUE(instance.ok());
  const core::Tensor x = Rows(2);
  auto dims = (*instance)->Execute({&x}, {"probabilities"});
  ASSERT_FALSE(dims.ok());
  EXPECT_NE(dims.status().message().find("output 'probabilities' has shape [2,3] but config.yaml "
                                         "declares dims [4] after the batch dimension (2 rows)"),
            std::string::npos)
      << dims.status().message();
  auto type = (*instance)->Execute({&x}, {"label"});
  ASSERT_FALSE(type.ok());
  EXPECT_NE(type.status().message().find("output 'label' is declared INT32 in config.yaml but the "
                                         "model returned INT64"),
            std::string::npos)
      << type.status().message();
}

TEST_F(LibTorchBackendTest, RefusesAFileThatIsNotTorchScript) {
  auto options = MlpOptions();
  options.model_path = std::string(SLIPWAY_TEST_MODELS) + "/broken/1/model.onnx";
  auto model = backend_->Load(options);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("LibTorch could not load"), std::string::npos)
      << model.status().message();
}

}  // namespace
}  // namespace slipway::backends::libtorch
