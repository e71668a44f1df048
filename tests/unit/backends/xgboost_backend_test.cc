#include "slipway/backends/xgboost/xgboost_backend.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

namespace slipway::backends::xgboost {
namespace {

using core::DataType;

// tests/models/xgb_classifier (scripts/make_models.py --tests): iris, multi:softprob, 4 features,
// 3 classes.
std::string ModelPath() {
  return std::string(SLIPWAY_TEST_MODELS) + "/xgb_classifier/1/model.json";
}

backend::LoadOptions Options() {
  backend::LoadOptions o;
  o.model_path = ModelPath();
  o.config.name = "iris";
  o.config.source = "config.yaml";
  return o;
}

core::TensorConfig Tensor(const char* name, DataType type, core::Shape dims, bool dims_set = true) {
  core::TensorConfig t;
  t.name = name;
  t.type = type;
  t.dims = std::move(dims);
  t.dims_set = dims_set;
  return t;
}

std::string Floats(const std::vector<float>& v) {
  std::string bytes(v.size() * sizeof(float), '\0');
  std::memcpy(bytes.data(), v.data(), bytes.size());
  return bytes;
}

std::vector<float> ToFloats(std::string_view bytes) {
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), bytes.size());
  return v;
}

// Three iris flowers: setosa, versicolor, virginica.
const std::vector<float> kIris = {5.1f, 3.5f, 1.4f, 0.2f, 6.4f, 3.2f, 4.5f, 1.5f,
                                  6.3f, 3.3f, 6.0f, 2.5f};

class XgboostBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(ModelPath())) {
      GTEST_SKIP() << ModelPath() << " is missing: run scripts/make_models.py tests/models --tests";
    }
  }
  std::unique_ptr<backend::Backend> backend_ = CreateXgboostBackend({});
};

TEST_F(XgboostBackendTest, CompletesAnEmptyConfigFromTheBooster) {
  auto model = backend_->Load(Options());
  ASSERT_TRUE(model.ok()) << model.status().message();
  const core::ModelConfig& c = (*model)->config();
  EXPECT_EQ(c.platform, "xgboost");
  EXPECT_EQ(c.backend, "xgboost");
  EXPECT_EQ(c.default_model_filename, "model.json");
  EXPECT_EQ(c.batch_size_limit(), 64);
  ASSERT_EQ(c.inputs.size(), 1u);
  EXPECT_EQ(c.inputs[0].name, "features");
  EXPECT_EQ(c.inputs[0].type, DataType::kFp32);
  EXPECT_EQ(c.inputs[0].dims, (core::Shape{4}));
  ASSERT_EQ(c.outputs.size(), 1u);
  EXPECT_EQ(c.outputs[0].name, "predictions");
  EXPECT_EQ(c.outputs[0].dims, (core::Shape{3}));
}

TEST_F(XgboostBackendTest, PredictsClassProbabilitiesPerRow) {
  auto model = backend_->Load(Options());
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto instance = (*model)->CreateInstance();
  ASSERT_TRUE(instance.ok()) << instance.status().message();
  const auto x = core::Tensor::Owned("features", DataType::kFp32, {3, 4}, Floats(kIris));
  auto out = (*instance)->Execute({&x}, {"predictions"});
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_EQ(out->size(), 1u);
  EXPECT_EQ((*out)[0].shape(), (core::Shape{3, 3}));
  const auto p = ToFloats((*out)[0].bytes());
  for (int r = 0; r < 3; ++r) {
    EXPECT_NEAR(p[3 * r] + p[3 * r + 1] + p[3 * r + 2], 1.0f, 1e-5f);
    int best = 0;
    for (int k = 1; k < 3; ++k) best = p[3 * r + k] > p[3 * r + best] ? k : best;
    EXPECT_EQ(best, r) << "row " << r;
  }
}

TEST_F(XgboostBackendTest, MisalignedAndEmptyInputs) {
  auto model = backend_->Load(Options());
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto instance = (*model)->CreateInstance();
  ASSERT_TRUE(instance.ok());
  const auto aligned = core::Tensor::Owned("features", DataType::kFp32, {3, 4}, Floats(kIris));
  const std::string shifted = "x" + Floats(kIris);
  const auto misaligned = core::Tensor::Borrowed("features", DataType::kFp32, {3, 4},
                                                 std::string_view(shifted).substr(1));
  auto a = (*instance)->Execute({&aligned}, {"predictions"});
  auto b = (*instance)->Execute({&misaligned}, {"predictions"});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ((*a)[0].bytes(), (*b)[0].bytes());
  const auto none = core::Tensor::Owned("features", DataType::kFp32, {0, 4}, "");
  auto empty = (*instance)->Execute({&none}, {"predictions"});
  ASSERT_TRUE(empty.ok()) << empty.status().message();
  EXPECT_EQ((*empty)[0].shape(), (core::Shape{0, 3}));
  EXPECT_TRUE((*empty)[0].bytes().empty());
}

TEST_F(XgboostBackendTest, KeepsConfigNamesAndNonBatchingDims) {
  auto options = Options();
  options.config.max_batch_size = 0;
  options.config.inputs = {Tensor("x", DataType::kInvalid, {}, false)};
  options.config.outputs = {Tensor("probs", DataType::kFp32, {-1, 3})};
  auto model = backend_->Load(options);
  ASSERT_TRUE(model.ok()) << model.status().message();
  const core::ModelConfig& c = (*model)->config();
  EXPECT_EQ(c.inputs[0].name, "x");
  EXPECT_EQ(c.inputs[0].dims, (core::Shape{-1, 4}));
  EXPECT_EQ(c.outputs[0].name, "probs");
  auto instance = (*model)->CreateInstance();
  ASSERT_TRUE(instance.ok());
  const auto x = core::Tensor::Owned("x", DataType::kFp32, {2, 4}, Floats(kIris).substr(0, 32));
  auto out = (*instance)->Execute({&x}, {"probs"});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ((*out)[0].name(), "probs");
  EXPECT_EQ((*out)[0].shape(), (core::Shape{2, 3}));
}

TEST_F(XgboostBackendTest, RefusesAConfigThatContradictsTheBooster) {
  struct Case {
    const char* what;
    std::vector<core::TensorConfig> inputs;
    std::vector<core::TensorConfig> outputs;
    std::vector<std::string> needles;
  };
  const Case cases[] = {
      {"features", {Tensor("features", DataType::kFp32, {5})}, {},
       {"input 'features' has dims [5] in config.yaml but [4]", "4 features"}},
      {"datatype", {Tensor("features", DataType::kFp64, {4})}, {},
       {"input 'features' has datatype FP64", "FP32"}},
      {"two inputs",
       {Tensor("a", DataType::kFp32, {4}), Tensor("b", DataType::kFp32, {4})}, {},
       {"one input", "lists 2 [a, b]"}},
      {"classes", {}, {Tensor("predictions", DataType::kFp32, {1})},
       {"output 'predictions' has dims [1] in config.yaml but [3]", "3 values per row"}},
      {"output datatype", {}, {Tensor("predictions", DataType::kInt64, {3})},
       {"output 'predictions' has datatype INT64"}},
  };
  for (const Case& c : cases) {
    auto options = Options();
    options.config.inputs = c.inputs;
    options.config.outputs = c.outputs;
    auto model = backend_->Load(options);
    ASSERT_FALSE(model.ok()) << c.what;
    for (const auto& needle : c.needles) {
      EXPECT_NE(model.status().message().find(needle), std::string::npos)
          << c.what << ": '" << needle << "' not in: " << model.status().message();
    }
  }
}

TEST_F(XgboostBackendTest, RefusesAFileThatIsNotABooster) {
  auto options = Options();
  options.model_path = std::string(SLIPWAY_TEST_MODELS) + "/broken/1/model.onnx";
  auto model = backend_->Load(options);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("XGBoost could not load"), std::string::npos)
      << model.status().message();
}

}  // namespace
}  // namespace slipway::backends::xgboost
