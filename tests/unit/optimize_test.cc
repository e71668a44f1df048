// slipway optimize: quantization arithmetic, the graph rewrites on small hand-built graphs, sample
// files, agreement counting, and dynamic/static quantization end to end through ONNX Runtime.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>

#include "slipway/app/optimize/dynamic_quantizer.h"
#include "slipway/app/optimize/float16_converter.h"
#include "slipway/app/optimize/graph_editor.h"
#include "slipway/app/optimize/latency_benchmark.h"
#include "slipway/app/optimize/model_comparison.h"
#include "slipway/app/optimize/model_runner.h"
#include "slipway/app/optimize/onnx_model_file.h"
#include "slipway/app/optimize/quantization_math.h"
#include "slipway/app/optimize/sample_set.h"
#include "slipway/app/optimize/static_quantizer.h"
#include "slipway/core/float16.h"

namespace slipway::app::optimize {
namespace {

namespace fs = std::filesystem;

// ---- building small models --------------------------------------------------------------------

void AddValueInfo(google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>* list, const std::string& name,
                  std::vector<int64_t> dims) {
  auto* vi = list->Add();
  vi->set_name(name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) {
    auto* dim = tt->mutable_shape()->add_dim();
    if (d < 0) {
      dim->set_dim_param("batch");
    } else {
      dim->set_dim_value(d);
    }
  }
}

std::vector<float> Random(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

onnx::ModelProto NewModel(int64_t opset = 13) {
  onnx::ModelProto m;
  m.set_ir_version(7);
  m.set_producer_name("optimize_test");
  auto* o = m.add_opset_import();
  o->set_domain("");
  o->set_version(opset);
  m.mutable_graph()->set_name("g");
  return m;
}

// x [batch, 4] -> Gemm(W [3, 4], transB=1, b [3]) -> y [batch, 3]
onnx::ModelProto GemmModel(int64_t opset = 13) {
  onnx::ModelProto m = NewModel(opset);
  auto* g = m.mutable_graph();
  AddValueInfo(g->mutable_input(), "x", {-1, 4});
  AddValueInfo(g->mutable_output(), "y", {-1, 3});
  *g->add_initializer() = FloatTensor("W", {3, 4}, Random(12, 1));
  *g->add_initializer() = FloatTensor("b", {3}, Random(3, 2));
  onnx::NodeProto gemm = MakeNode("Gemm", {"x", "W", "b"}, {"y"}, "fc");
  SetIntAttribute(&gemm, "transB", 1);
  *g->add_node() = gemm;
  return m;
}

// x [batch, 1, 6, 6] -> Conv(4x1x3x3, pad 1) -> Relu -> MaxPool 2x2 -> Flatten -> Gemm(2x36) -> y
onnx::ModelProto ConvModel() {
  onnx::ModelProto m = NewModel(13);
  auto* g = m.mutable_graph();
  AddValueInfo(g->mutable_input(), "x", {-1, 1, 6, 6});
  AddValueInfo(g->mutable_output(), "y", {-1, 2});
  *g->add_initializer() = FloatTensor("cw", {4, 1, 3, 3}, Random(36, 3, 0.5f));
  *g->add_initializer() = FloatTensor("cb", {4}, Random(4, 4, 0.1f));
  *g->add_initializer() = FloatTensor("fw", {2, 36}, Random(72, 5, 0.3f));
  *g->add_initializer() = FloatTensor("fb", {2}, Random(2, 6, 0.1f));
  onnx::NodeProto conv = MakeNode("Conv", {"x", "cw", "cb"}, {"c"}, "conv");
  auto* pads = conv.add_attribute();
  pads->set_name("pads");
  pads->set_type(onnx::AttributeProto::INTS);
  for (int i = 0; i < 4; ++i) pads->add_ints(1);
  *g->add_node() = conv;
  *g->add_node() = MakeNode("Relu", {"c"}, {"r"}, "relu");
  onnx::NodeProto pool = MakeNode("MaxPool", {"r"}, {"p"}, "pool");
  for (const char* name : {"kernel_shape", "strides"}) {
    auto* a = pool.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    a->add_ints(2);
    a->add_ints(2);
  }
  *g->add_node() = pool;
  *g->add_node() = MakeNode("Flatten", {"p"}, {"f"}, "flatten");
  onnx::NodeProto gemm = MakeNode("Gemm", {"f", "fw", "fb"}, {"y"}, "fc");
  SetIntAttribute(&gemm, "transB", 1);
  *g->add_node() = gemm;
  return m;
}

std::vector<std::string> OpTypes(const onnx::ModelProto& m) {
  std::vector<std::string> ops;
  for (const auto& n : m.graph().node()) ops.push_back(n.op_type());
  return ops;
}

const onnx::TensorProto* FindInit(const onnx::ModelProto& m, const std::string& name) {
  for (const auto& t : m.graph().initializer()) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("optimize_test_" + std::to_string(::getpid()) + "_" +
                                         std::to_string(counter_++));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

std::string Save(const onnx::ModelProto& m, const std::string& path) {
  auto bytes = SerializeOnnxModel(m);
  EXPECT_TRUE(bytes.ok());
  EXPECT_TRUE(WriteFileSynced(path, bytes.value()).ok());
  return path;
}

std::vector<float> Floats(const core::Tensor& t) {
  std::vector<float> v(t.bytes().size() / 4);
  std::memcpy(v.data(), t.bytes().data(), v.size() * 4);
  return v;
}

// ---- arithmetic ---------------------------------------------------------------------------------

TEST(QuantizationMath, ActivationRangeAlwaysHoldsZero) {
  auto q = ActivationParams(1.0f, 3.0f);  // widened to [0, 3]
  EXPECT_FLOAT_EQ(q.scale, 3.0f / 255.0f);
  EXPECT_EQ(q.zero_point, 0);
  q = ActivationParams(-1.0f, 1.0f);
  EXPECT_FLOAT_EQ(q.scale, 2.0f / 255.0f);
  EXPECT_NEAR(q.zero_point, 127.5, 0.5);
  q = ActivationParams(-2.0f, -1.0f);
  EXPECT_EQ(q.zero_point, 255);
  q = ActivationParams(0.0f, 0.0f);  // a dead tensor
  EXPECT_FLOAT_EQ(q.scale, 1.0f);
}

TEST(QuantizationMath, SymmetricWeightsRoundTripWithinHalfAStep) {
  const std::vector<float> w = {0.5f, -1.0f, 0.25f, 4.0f, -2.0f, 0.0f};
  auto t = QuantizeWeights(w, {2, 3}, -1);
  ASSERT_EQ(t.scales.size(), 1u);
  EXPECT_FLOAT_EQ(t.scales[0], 4.0f / 127.0f);
  EXPECT_EQ(t.values[3], 127);
  for (size_t i = 0; i < w.size(); ++i) {
    EXPECT_NEAR(t.values[i] * t.scales[0], w[i], t.scales[0] / 2 + 1e-6);
  }
  // Per channel along axis 0: each row gets its own scale.
  auto pc = QuantizeWeights(w, {2, 3}, 0);
  ASSERT_EQ(pc.scales.size(), 2u);
  EXPECT_FLOAT_EQ(pc.scales[0], 1.0f / 127.0f);
  EXPECT_FLOAT_EQ(pc.scales[1], 4.0f / 127.0f);
  EXPECT_EQ(pc.values[1], -127);
  // Along axis 1 (columns of a [K, N] MatMul weight).
  auto cols = QuantizeWeights(w, {2, 3}, 1);
  ASSERT_EQ(cols.scales.size(), 3u);
  EXPECT_FLOAT_EQ(cols.scales[0], 4.0f / 127.0f);
  EXPECT_FLOAT_EQ(cols.scales[1], 2.0f / 127.0f);
  EXPECT_FLOAT_EQ(cols.scales[2], 0.25f / 127.0f);
  // Reduced range: 7 bits.
  EXPECT_EQ(QuantizeWeights(w, {2, 3}, -1, 63).values[3], 63);
}

TEST(QuantizationMath, BiasUsesInputTimesWeightScale) {
  auto b = QuantizeBias({1.0f, -0.5f}, 0.1f, {0.01f, 0.02f});
  EXPECT_EQ(b[0], 1000);
  EXPECT_EQ(b[1], -250);
  EXPECT_EQ(QuantizeBias({0.3f}, 0.1f, {0.1f})[0], 30);
}

TEST(QuantizationMath, HalfPrecisionBits) {
  EXPECT_EQ(core::FloatToHalfBits(1.0f), 0x3C00);
  EXPECT_EQ(core::FloatToHalfBits(-2.0f), 0xC000);
  EXPECT_EQ(core::FloatToHalfBits(65504.0f), 0x7BFF);
  EXPECT_EQ(core::FloatToHalfBits(70000.0f), 0x7C00);
  EXPECT_EQ(core::FloatToHalfBits(0.0f), 0x0000);
  EXPECT_EQ(core::FloatToHalfBits(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(core::FloatToHalfBits(std::ldexp(1.0f, -26)), 0x0000);
  EXPECT_EQ(core::FloatToHalfBits(1.0f + std::ldexp(1.0f, -11)), 0x3C00);  // tie rounds to even
  for (float v : {0.1f, -3.14159f, 1000.5f, 6.1e-5f, 1e-6f}) {
    EXPECT_NEAR(core::HalfBitsToFloat(core::FloatToHalfBits(v)), v, std::fabs(v) * 1e-3 + 6e-8) << v;
  }
}

TEST(QuantizationMath, RangeCollectorMinMaxAndPercentile) {
  RangeCollector c(1 << 16);
  std::vector<float> v(10001);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) / 10.0f - 500.0f;  // -500..500
  v[5000] = 1e6f;  // an outlier
  c.Add(v.data(), v.size());
  auto mm = c.Range(CalibrationMethod::kMinMax, 0);
  EXPECT_FLOAT_EQ(mm.first, -500.0f);
  EXPECT_FLOAT_EQ(mm.second, 1e6f);
  auto p = c.Range(CalibrationMethod::kPercentile, 99.0);
  EXPECT_NEAR(p.first, -490.0f, 1.0f);
  EXPECT_NEAR(p.second, 490.0f, 1.0f);
}

// ---- reading models ----------------------------------------------------------------------------

TEST(OnnxModelFile, RefusesWhatIsNotAnOnnxModel) {
  auto r = ParseOnnxModel("not an onnx model", "bad.onnx");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not an ONNX model"), std::string::npos) << r.status().message();
  EXPECT_FALSE(ParseOnnxModel("", "empty.onnx").ok());
  onnx::ModelProto no_graph;
  no_graph.set_ir_version(7);
  EXPECT_FALSE(ParseOnnxModel(no_graph.SerializeAsString(), "x").ok());
}

TEST(OnnxModelFile, RefusesOpsetsOutsideTheSupportedRange) {
  auto old = CheckSupportedModel(GemmModel(7), "old.onnx");
  ASSERT_FALSE(old.ok());
  EXPECT_EQ(old.code(), core::StatusCode::kUnimplemented);
  EXPECT_NE(old.message().find("opset 7"), std::string::npos) << old.message();
  EXPECT_FALSE(CheckSupportedModel(GemmModel(99), "new.onnx").ok());
  EXPECT_TRUE(CheckSupportedModel(GemmModel(13), "ok.onnx").ok());
  EXPECT_EQ(WeightBytes(GemmModel()), 15 * 4);
}

TEST(GraphEditor, FreshNamesAndConsumers) {
  onnx::ModelProto m = ConvModel();
  GraphEditor e(m.mutable_graph());
  EXPECT_EQ(e.FreshName("r"), "r_1");
  EXPECT_EQ(e.FreshName("r"), "r_2");
  EXPECT_EQ(e.FreshName("new"), "new");
  ASSERT_EQ(e.Consumers("r").size(), 1u);
  EXPECT_EQ(m.graph().node(e.Consumers("r")[0]).op_type(), "MaxPool");
  EXPECT_EQ(e.Producer("c"), 0);
  EXPECT_EQ(e.Producer("x"), -1);
  EXPECT_TRUE(e.IsGraphOutput("y"));
  EXPECT_NE(e.Initializer("cw"), nullptr);
}

TEST(GraphEditor, ConstantsBecomeInitializers) {
  onnx::ModelProto m = NewModel();
  auto* g = m.mutable_graph();
  onnx::NodeProto c = MakeNode("Constant", {}, {"k"}, "const");
  auto* a = c.add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  *a->mutable_t() = FloatTensor("", {2}, {1.0f, 2.0f});
  *g->add_node() = c;
  *g->add_node() = MakeNode("Mul", {"x", "k"}, {"y"}, "mul");
  EXPECT_EQ(ConstantsToInitializers(g), 1);
  ASSERT_EQ(g->node_size(), 1);
  ASSERT_NE(FindInit(m, "k"), nullptr);
  EXPECT_EQ(FloatData(*FindInit(m, "k")).value(), (std::vector<float>{1.0f, 2.0f}));
}

// ---- rewrites -----------------------------------------------------------------------------------

TEST(DynamicQuantizer, GemmBecomesMatMulIntegerWithTransposedInt8Weight) {
  onnx::ModelProto m = GemmModel();
  const std::vector<float> w = FloatData(*FindInit(m, "W")).value();
  auto s = QuantizeDynamic(&m, RewriteOptions{});
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->weights, 1);
  EXPECT_EQ(OpTypes(m), (std::vector<std::string>{"DynamicQuantizeLinear", "MatMulInteger", "Cast", "Mul",
                                                   "Mul", "Add"}));
  EXPECT_EQ(FindInit(m, "W"), nullptr) << "the float weight is gone";
  const onnx::TensorProto* q = FindInit(m, "W_quantized");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->data_type(), onnx::TensorProto::INT8);
  ASSERT_EQ(Dims(*q), (std::vector<int64_t>{4, 3}));  // [K, N]
  const float scale = FloatData(*FindInit(m, "W_scale")).value().at(0);
  for (int k = 0; k < 4; ++k) {
    for (int n = 0; n < 3; ++n) {
      const int8_t v = static_cast<int8_t>(q->raw_data()[static_cast<size_t>(k * 3 + n)]);
      EXPECT_NEAR(v * scale, w[static_cast<size_t>(n * 4 + k)], scale / 2 + 1e-6);
    }
  }
  EXPECT_EQ(m.graph().node().rbegin()->output(0), "y") << "the output keeps its name";
}

TEST(DynamicQuantizer, ExclusionsAndNonConstantWeightsAreLeftAlone) {
  onnx::ModelProto m = GemmModel();
  RewriteOptions o;
  o.exclude = {"fc"};
  auto s = QuantizeDynamic(&m, o);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(OpTypes(m), std::vector<std::string>{"Gemm"});
  ASSERT_EQ(s->skipped.size(), 1u);
  EXPECT_EQ(s->skipped[0].second, "excluded");

  onnx::ModelProto mm = NewModel();
  *mm.mutable_graph()->add_node() = MakeNode("MatMul", {"a", "b"}, {"c"}, "attention");
  s = QuantizeDynamic(&mm, RewriteOptions{});
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->skipped.size(), 1u);
  EXPECT_NE(s->skipped[0].second.find("not a constant"), std::string::npos);
  EXPECT_FALSE(s->notes.empty());
}

TEST(DynamicQuantizer, ConvWeightsAreStoredAsInt8AndRestoredByCastAndMul) {
  onnx::ModelProto m = ConvModel();
  RewriteOptions o;
  o.include_conv = true;
  o.per_channel = true;
  auto s = QuantizeDynamic(&m, o);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->weights, 2);
  EXPECT_EQ(FindInit(m, "cw"), nullptr);
  ASSERT_NE(FindInit(m, "cw_quantized"), nullptr);
  EXPECT_EQ(Dims(*FindInit(m, "cw_scale")), (std::vector<int64_t>{4, 1, 1, 1}));
  EXPECT_EQ(m.graph().node(0).op_type(), "Cast");
  EXPECT_EQ(m.graph().node(1).op_type(), "Mul");
  EXPECT_EQ(m.graph().node(2).op_type(), "Conv");
  EXPECT_EQ(m.graph().node(2).input(1), "cw_dequantized");
}

TEST(StaticQuantizer, PlanFoldsReluAndFollowsTheInt8Chain) {
  onnx::ModelProto m = ConvModel();
  auto plan = PlanStaticQuantization(m, RewriteOptions{});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->compute_nodes, (std::vector<int>{0, 4}));
  ASSERT_EQ(plan->relu_folds.size(), 1u);
  EXPECT_EQ(plan->relu_folds.at(0), 1);
  EXPECT_EQ(plan->quantized.at("x"), "x");
  EXPECT_EQ(plan->quantized.at("r"), "r");
  EXPECT_EQ(plan->quantized.at("p"), "r") << "MaxPool keeps its input's parameters";
  EXPECT_EQ(plan->quantized.at("f"), "r");
  EXPECT_EQ(plan->quantized.count("y"), 0u) << "graph outputs stay float";
  EXPECT_EQ(plan->calibration_tensors, (std::vector<std::string>{"r", "x"}));

  std::map<std::string, std::pair<float, float>> ranges = {{"x", {-1.0f, 1.0f}}, {"r", {0.0f, 2.0f}}};
  auto s = ApplyStaticQuantization(&m, plan.value(), ranges, RewriteOptions{});
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->activations, 4);
  EXPECT_EQ(OpTypes(m), (std::vector<std::string>{
                            "QuantizeLinear", "DequantizeLinear",                   // x
                            "DequantizeLinear", "DequantizeLinear", "Conv",         // weight, bias
                            "QuantizeLinear", "DequantizeLinear",                   // r (Relu folded)
                            "MaxPool", "QuantizeLinear", "DequantizeLinear",        // p
                            "Flatten", "QuantizeLinear", "DequantizeLinear",        // f
                            "DequantizeLinear", "DequantizeLinear", "Gemm"}));     // weight, bias
  const onnx::TensorProto* bias = FindInit(m, "cb_quantized");
  ASSERT_NE(bias, nullptr);
  EXPECT_EQ(bias->data_type(), onnx::TensorProto::INT32);
  EXPECT_EQ(FindInit(m, "cw"), nullptr);
  EXPECT_EQ(FindInit(m, "r_zero_point")->raw_data(), std::string(1, '\0'));
}

TEST(StaticQuantizer, ExcludedNodesStayFloat) {
  onnx::ModelProto m = ConvModel();
  RewriteOptions o;
  o.exclude_op_types = {"Conv"};
  auto plan = PlanStaticQuantization(m, o);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->compute_nodes, std::vector<int>{4});
  EXPECT_EQ(plan->quantized.count("x"), 0u);
  EXPECT_EQ(plan->quantized.at("f"), "f");
}

TEST(Float16Converter, HalvesLargeWeightsBehindCasts) {
  onnx::ModelProto m = ConvModel();
  RewriteOptions o;  // minimum 16 elements: cw (36) and fw (72), not the biases
  auto s = ConvertWeightsToFloat16(&m, o);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->weights, 2);
  ASSERT_NE(FindInit(m, "cw_fp16"), nullptr);
  EXPECT_EQ(FindInit(m, "cw_fp16")->data_type(), onnx::TensorProto::FLOAT16);
  EXPECT_EQ(FindInit(m, "cw"), nullptr);
  EXPECT_NE(FindInit(m, "cb"), nullptr);
  EXPECT_EQ(m.graph().node(0).op_type(), "Cast");
  EXPECT_EQ(m.graph().node(0).output(0), "cw");

  onnx::ModelProto big = GemmModel();
  std::vector<float> huge(12, 1e6f);
  *big.mutable_graph()->mutable_initializer(0) = FloatTensor("W", {3, 4}, huge);
  o.float16_min_elements = 1;
  s = ConvertWeightsToFloat16(&big, o);
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->skipped.size(), 1u);
  EXPECT_EQ(s->skipped[0].first, "W");
}

// ---- samples ------------------------------------------------------------------------------------

core::ModelConfig FeaturesConfig(int64_t width = 3) {
  core::ModelConfig c;
  c.name = "m";
  c.max_batch_size = 8;
  core::TensorConfig t;
  t.name = "features";
  t.type = core::DataType::kFp32;
  t.dims = {width};
  c.inputs = {t};
  return c;
}

TEST(SampleSet, ParsesJsonLinesWithLabels) {
  auto set = ParseJsonLines("{\"inputs\": {\"features\": [1, 2, 3]}, \"label\": 1}\n\n"
                            "{\"inputs\": {\"features\": [[4, 5, 6]]}, \"expected\": 0}\n",
                            FeaturesConfig(), "eval");
  ASSERT_TRUE(set.ok()) << set.status().message();
  ASSERT_EQ(set->samples.size(), 2u);
  EXPECT_TRUE(set->labelled());
  EXPECT_EQ(set->samples[1].inputs[0].shape(), (core::Shape{1, 3}));
  EXPECT_EQ(Floats(set->samples[1].inputs[0]), (std::vector<float>{4, 5, 6}));
  EXPECT_EQ(*set->samples[0].label, 1.0);
  auto stacked = StackSamples(set.value(), 0, 3);
  EXPECT_EQ(stacked[0].shape(), (core::Shape{3, 3}));
  EXPECT_EQ(Floats(stacked[0]), (std::vector<float>{1, 2, 3, 4, 5, 6, 1, 2, 3}));
}

TEST(SampleSet, MismatchedFilesNameTheLineAndTheShapes) {
  auto wrong_count = ParseJsonLines("{\"inputs\": {\"features\": [1, 2, 3]}}\n"
                                    "{\"inputs\": {\"features\": [1, 2]}}\n", FeaturesConfig(), "calibration file 'c'");
  ASSERT_FALSE(wrong_count.ok());
  EXPECT_NE(wrong_count.status().message().find("line 2"), std::string::npos) << wrong_count.status().message();
  EXPECT_NE(wrong_count.status().message().find("2 values"), std::string::npos);
  EXPECT_NE(wrong_count.status().message().find("[3]"), std::string::npos);
  auto unknown = ParseJsonLines("{\"inputs\": {\"pixels\": [1, 2, 3]}}\n", FeaturesConfig(), "c");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("'pixels' is not an input"), std::string::npos);
  EXPECT_FALSE(ParseJsonLines("{\"inputs\": {}}\n", FeaturesConfig(), "c").ok());
  EXPECT_FALSE(ParseJsonLines("not json\n", FeaturesConfig(), "c").ok());
  EXPECT_FALSE(ParseJsonLines("", FeaturesConfig(), "c").ok());
  EXPECT_FALSE(ParseJsonLines("{\"inputs\": {\"features\": [\"a\", 2, 3]}}\n", FeaturesConfig(), "c").ok());
}

std::string Npy(const std::string& descr, const std::string& shape, const std::string& data) {
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  return out + header + data;
}

TEST(SampleSet, ReadsNpyArraysOfAnyNumericType) {
  std::vector<double> values = {1, 2, 3, 4, 5, 6};
  std::string data(reinterpret_cast<const char*>(values.data()), values.size() * 8);
  auto set = ParseNpy(Npy("<f8", "(2, 3)", data), FeaturesConfig(), "c.npy");
  ASSERT_TRUE(set.ok()) << set.status().message();
  ASSERT_EQ(set->samples.size(), 2u);
  EXPECT_EQ(Floats(set->samples[1].inputs[0]), (std::vector<float>{4, 5, 6}));
  auto wrong = ParseNpy(Npy("<f8", "(3, 2)", data), FeaturesConfig(), "c.npy");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("(3, 2)") == std::string::npos ? wrong.status().message().find("[3,2]")
                                                                           : 0,
            std::string::npos)
      << wrong.status().message();
  EXPECT_FALSE(ParseNpy("garbage", FeaturesConfig(), "c.npy").ok());
  core::ModelConfig two = FeaturesConfig();
  two.inputs.push_back(two.inputs[0]);
  two.inputs[1].name = "other";
  auto multi = ParseNpy(Npy("<f8", "(2, 3)", data), two, "c.npy");
  ASSERT_FALSE(multi.ok());
  EXPECT_NE(multi.status().message().find("JSON lines"), std::string::npos);
}

// ---- agreement and latency ----------------------------------------------------------------------

core::Tensor Scores(std::vector<float> v, int64_t rows) {
  std::string bytes(reinterpret_cast<const char*>(v.data()), v.size() * 4);
  return core::Tensor::Owned("p", core::DataType::kFp32, {rows, static_cast<int64_t>(v.size()) / rows},
                             std::move(bytes));
}

TEST(AgreementCounter, CountsTopOneAgreementDifferencesAndAccuracy) {
  AgreementCounter c({"p"}, "p");
  std::vector<core::Tensor> before;
  before.push_back(Scores({0.9f, 0.1f, 0.4f, 0.6f, 0.2f, 0.8f}, 3));
  std::vector<core::Tensor> after;
  after.push_back(Scores({0.8f, 0.2f, 0.6f, 0.4f, 0.2f, 0.8f}, 3));  // row 1 flips
  ASSERT_TRUE(c.Add(before, after, 3, {0.0, 1.0, std::nullopt}).ok());
  Agreement a = c.Finish("test");
  EXPECT_EQ(a.examples, 3);
  EXPECT_EQ(a.top1_agree, 2);
  EXPECT_NEAR(a.top1_agreement(), 2.0 / 3.0, 1e-9);
  EXPECT_EQ(a.labelled, 2);
  EXPECT_DOUBLE_EQ(*a.accuracy_before(), 1.0);
  EXPECT_DOUBLE_EQ(*a.accuracy_after(), 0.5);
  EXPECT_NEAR(a.outputs[0].max_abs, 0.2, 1e-6);
  EXPECT_NEAR(a.outputs[0].mean_abs, (0.1 + 0.1 + 0.2 + 0.2) / 6, 1e-6);
  EXPECT_EQ(a.outputs[0].equal, 2);
}

TEST(LatencyBenchmark, SummarizesNearestRankPercentiles) {
  std::vector<double> us;
  for (int i = 1; i <= 100; ++i) us.push_back(i);
  LatencyFigures f = SummarizeLatencies(us, 4);
  EXPECT_EQ(f.runs, 100);
  EXPECT_DOUBLE_EQ(f.p50_us, 50);
  EXPECT_DOUBLE_EQ(f.p90_us, 90);
  EXPECT_DOUBLE_EQ(f.mean_us, 50.5);
  EXPECT_NEAR(f.rows_per_second, 400.0 / (5050e-6), 1e-6);
}

// ---- end to end through ONNX Runtime -------------------------------------------------------------

RewriteOptions PerChannel() {
  RewriteOptions o;
  o.per_channel = true;
  return o;
}

TEST(OptimizeEndToEnd, DynamicQuantizedGemmLoadsAndAgrees) {
  TempDir dir;
  onnx::ModelProto m = GemmModel();
  auto original = ModelRunner::Create(Save(m, dir.File("orig.onnx")), {});
  ASSERT_TRUE(original.ok()) << original.status().message();
  ASSERT_TRUE(QuantizeDynamic(&m, PerChannel()).ok());
  auto quantized = ModelRunner::Create(Save(m, dir.File("q.onnx")), {});
  ASSERT_TRUE(quantized.ok()) << quantized.status().message();
  SampleSet samples = GenerateSamples((*original)->config(), 16, 3);
  auto agreement = CompareModels(**original, **quantized, samples, "y");
  ASSERT_TRUE(agreement.ok()) << agreement.status().message();
  EXPECT_EQ(agreement->examples, 16);
  EXPECT_LT(agreement->outputs[0].max_abs, 0.05);
  EXPECT_GT(agreement->outputs[0].max_abs, 0.0) << "quantization changes the numbers a little";
}

TEST(OptimizeEndToEnd, StaticQuantizedCnnCalibratesLoadsAndAgrees) {
  TempDir dir;
  onnx::ModelProto m = ConvModel();
  auto original = ModelRunner::Create(Save(m, dir.File("orig.onnx")), {});
  ASSERT_TRUE(original.ok()) << original.status().message();
  SampleSet samples = GenerateSamples((*original)->config(), 24, 9);
  auto plan = PlanStaticQuantization(m, RewriteOptions{});
  ASSERT_TRUE(plan.ok());
  CalibrationOptions copts;
  copts.scratch_path = dir.File("calibration.onnx");
  auto ranges = Calibrate(m, plan->calibration_tensors, samples, copts);
  ASSERT_TRUE(ranges.ok()) << ranges.status().message();
  EXPECT_GE(ranges->at("r").first, 0.0f) << "a Relu output is never negative";
  EXPECT_GT(ranges->at("x").second, 0.9f);
  EXPECT_FALSE(fs::exists(copts.scratch_path)) << "the calibration model is removed";
  ASSERT_TRUE(ApplyStaticQuantization(&m, plan.value(), ranges.value(), PerChannel()).ok());
  auto quantized = ModelRunner::Create(Save(m, dir.File("q.onnx")), {});
  ASSERT_TRUE(quantized.ok()) << quantized.status().message();
  auto agreement = CompareModels(**original, **quantized, samples, "y");
  ASSERT_TRUE(agreement.ok()) << agreement.status().message();
  EXPECT_LT(agreement->outputs[0].max_abs, 0.1);
  auto latency = CompareLatency(**original, **quantized, samples, {1, 4}, 0.05);
  ASSERT_TRUE(latency.ok()) << latency.status().message();
  ASSERT_EQ(latency->size(), 2u);
  EXPECT_GT(latency->at(1).after.runs, 0);
}

TEST(OptimizeEndToEnd, FailingCalibrationInputIsAnError) {
  TempDir dir;
  onnx::ModelProto m = ConvModel();
  auto original = ModelRunner::Create(Save(m, dir.File("orig.onnx")), {});
  ASSERT_TRUE(original.ok());
  core::ModelConfig wrong = (*original)->config();
  wrong.inputs[0].dims = {1, 5, 5};  // rows of the wrong shape
  SampleSet samples = GenerateSamples(wrong, 2, 1);
  auto plan = PlanStaticQuantization(m, RewriteOptions{});
  CalibrationOptions copts;
  copts.scratch_path = dir.File("calibration.onnx");
  auto ranges = Calibrate(m, plan->calibration_tensors, samples, copts);
  ASSERT_FALSE(ranges.ok());
  EXPECT_NE(ranges.status().message().find("calibration example"), std::string::npos);
}

}  // namespace
}  // namespace slipway::app::optimize
