// Serving core over real ONNX Runtime and the generated test models (tests/models).
#include "slipway/serving/serving_core.h"

#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "slipway/backends/onnxruntime/onnxruntime_backend.h"

namespace slipway::serving {
namespace {

using core::DataType;
using core::Tensor;

class ServingCoreTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto repo = repository::ModelRepository::Create({SLIPWAY_TEST_MODELS});
    ASSERT_TRUE(repo.ok()) << repo.status().message();
    repo_ = std::move(repo).value().release();
    registry_ = new backend::BackendRegistry();
    registry_->Register(backends::onnxruntime::CreateOnnxRuntimeBackend({}));
    lifecycle::ModelManager::Options mm;
    mm.repository = repo_;
    mm.backends = registry_;
    mm.default_instance_count = 2;
    mm.intra_op_threads = 1;
    manager_ = lifecycle::ModelManager::Create(mm).value().release();
    manager_->LoadAll();
    ServingCore::Options sc;
    sc.models = manager_;
    sc.server_version = "test";
    core_ = ServingCore::Create(sc).value().release();
  }
  static void TearDownTestSuite() {
    delete core_;
    delete manager_;
    delete registry_;
    delete repo_;
  }

  static core::InferRequest AddSub(int64_t batch) {
    core::InferRequest r;
    r.model_name = "add_sub";
    std::vector<float> a(static_cast<size_t>(batch * 16)), b(a.size());
    for (size_t i = 0; i < a.size(); ++i) {
      a[i] = static_cast<float>(i);
      b[i] = 1.0f;
    }
    r.inputs.push_back(Tensor::Owned("INPUT0", DataType::kFp32, {batch, 16},
                                     std::string(reinterpret_cast<char*>(a.data()), a.size() * 4)));
    r.inputs.push_back(Tensor::Owned("INPUT1", DataType::kFp32, {batch, 16},
                                     std::string(reinterpret_cast<char*>(b.data()), b.size() * 4)));
    return r;
  }

  static inline repository::ModelRepository* repo_ = nullptr;
  static inline backend::BackendRegistry* registry_ = nullptr;
  static inline lifecycle::ModelManager* manager_ = nullptr;
  static inline ServingCore* core_ = nullptr;
};

TEST_F(ServingCoreTest, RunsAddSubOnOnnxRuntime) {
  auto r = AddSub(2);
  r.id = "abc";
  auto resp = InferAndWait(*core_, r);
  ASSERT_TRUE(resp.ok()) << resp.status().message();
  EXPECT_EQ(resp->id, "abc");
  EXPECT_EQ(resp->model_version, 1);
  ASSERT_EQ(resp->outputs.size(), 2u);
  EXPECT_EQ(resp->outputs[0].shape(), (core::Shape{2, 16}));
  float out[32];
  std::memcpy(out, resp->outputs[1].bytes().data(), sizeof(out));
  EXPECT_EQ(out[5], 4.0f);  // 5 - 1
}

TEST_F(ServingCoreTest, AutoCompletesConfigFromTheModelFile) {
  auto config = core_->GetModelConfig("add_sub", 0);
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->batch_size_limit(), 64);
  EXPECT_EQ(config->inputs[0].dims, (core::Shape{16}));
  auto fixed = core_->GetModelConfig("fixed_shape", 0);
  ASSERT_TRUE(fixed.ok());
  EXPECT_EQ(fixed->batch_size_limit(), 0);
  EXPECT_EQ(fixed->inputs[0].dims, (core::Shape{2, 3}));
  auto triton = core_->GetModelConfig("triton_style", 0);
  ASSERT_TRUE(triton.ok()) << triton.status().message();
  EXPECT_EQ(triton->batch_size_limit(), 8);
  EXPECT_EQ(triton->instance_count, 1);
}

TEST_F(ServingCoreTest, ContradictingConfigAndBrokenFilesAreUnavailableWithReasons) {
  auto bad = core_->GetModelMetadata("bad_config", 0);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), core::StatusCode::kUnavailable);
  EXPECT_NE(bad.status().message().find("'INPUT0'"), std::string::npos) << bad.status().message();
  EXPECT_NE(bad.status().message().find("[8]"), std::string::npos);
  EXPECT_NE(bad.status().message().find("[16]"), std::string::npos);
  auto broken = core_->ModelReady("broken", 0);
  ASSERT_TRUE(broken.ok());
  EXPECT_FALSE(*broken);
  EXPECT_FALSE(core_->ServerReady());  // strict readiness with failed models
  bool listed = false;
  for (const auto& e : core_->RepositoryIndex(false)) {
    if (e.name == "broken") {
      listed = true;
      EXPECT_EQ(e.state, "UNAVAILABLE");
      EXPECT_FALSE(e.reason.empty());
    }
  }
  EXPECT_TRUE(listed);
  // Other models keep serving.
  EXPECT_TRUE(InferAndWait(*core_, AddSub(1)).ok());
}

TEST_F(ServingCoreTest, RefusesRequestsThatDoNotFitTheModel) {
  auto expect_error = [](core::InferRequest r, const std::string& fragment) {
    auto resp = InferAndWait(*core_, std::move(r));
    ASSERT_FALSE(resp.ok());
    EXPECT_EQ(resp.status().code(), core::StatusCode::kInvalidArgument);
    EXPECT_NE(resp.status().message().find(fragment), std::string::npos)
        << resp.status().message();
  };
  auto missing = AddSub(1);
  missing.inputs.pop_back();
  expect_error(missing, "missing input 'INPUT1'");
  auto dup = AddSub(1);
  dup.inputs[1].set_name("INPUT0");
  expect_error(dup, "more than once");
  auto unknown = AddSub(1);
  unknown.inputs[1].set_name("NOPE");
  expect_error(unknown, "unknown input 'NOPE'");
  expect_error(AddSub(65), "batch size 65 is outside 1..64");
  auto shape = AddSub(1);
  shape.inputs[0].set_shape({1, 8});
  expect_error(shape, "expects shape [-1,16]");
  auto out = AddSub(1);
  out.outputs.push_back({"NOPE", false, false});
  expect_error(out, "unknown output 'NOPE'");
  auto type = AddSub(1);
  type.inputs[0] = Tensor::Owned("INPUT0", DataType::kFp64, {1, 16}, std::string(128, '\0'));
  expect_error(type, "expects datatype FP32, got FP64");
}

TEST_F(ServingCoreTest, UnknownModelAndVersionAreNotFound) {
  auto r = AddSub(1);
  r.model_name = "nope";
  EXPECT_EQ(InferAndWait(*core_, r).status().code(), core::StatusCode::kNotFound);
  r = AddSub(1);
  r.model_version = 9;
  EXPECT_EQ(InferAndWait(*core_, r).status().code(), core::StatusCode::kNotFound);
}

TEST_F(ServingCoreTest, UnloadThenLoadAgain) {
  ASSERT_TRUE(core_->ModelReady("identity_int8", 0).value());
  ASSERT_TRUE(core_->UnloadModel("identity_int8").ok());
  EXPECT_EQ(core_->ModelReady("identity_int8", 0).status().code(), core::StatusCode::kNotFound);
  EXPECT_EQ(core_->UnloadModel("identity_int8").code(), core::StatusCode::kNotFound);
  bool listed = false;
  for (const auto& e : core_->RepositoryIndex(false)) {
    if (e.name == "identity_int8") {
      listed = true;
      EXPECT_EQ(e.state, "UNAVAILABLE");
      EXPECT_EQ(e.reason, "unloaded");
    }
  }
  EXPECT_TRUE(listed);
  for (const auto& e : core_->RepositoryIndex(true)) EXPECT_NE(e.name, "identity_int8");
  ASSERT_TRUE(core_->LoadModel("identity_int8", {}).ok());
  EXPECT_TRUE(core_->ModelReady("identity_int8", 0).value());
  EXPECT_EQ(core_->LoadModel("no_such_model", {}).code(), core::StatusCode::kNotFound);
  for (const auto& e : core_->RepositoryIndex(false)) EXPECT_NE(e.name, "no_such_model");
}

TEST_F(ServingCoreTest, ConcurrentRequestsAllSucceed) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) ok += InferAndWait(*core_, AddSub(1 + i % 4)).ok() ? 1 : 0;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 100);
}

}  // namespace
}  // namespace slipway::serving
