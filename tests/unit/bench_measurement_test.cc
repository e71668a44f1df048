// Tests of `slipway bench`'s pure parts: percentiles, the stability rule, the Poisson schedule,
// flag parsing, shape resolution, input data from JSON and the server JSON parsers.
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>

#include "slipway/app/bench/bench_options.h"
#include "slipway/app/bench/clients.h"
#include "slipway/app/bench/input_data.h"
#include "slipway/app/bench/measurement.h"
#include "slipway/app/bench/server_api.h"
#include "slipway/core/float16.h"

namespace slipway::app::bench {
namespace {

TEST(BenchMeasurement, NearestRankPercentiles) {
  std::vector<int64_t> ns(1000);
  std::iota(ns.begin(), ns.end(), 1);  // 1..1000 ns
  for (auto& v : ns) v *= 1000;        // 1..1000 us
  EXPECT_DOUBLE_EQ(PercentileUs(ns, 50), 500);
  EXPECT_DOUBLE_EQ(PercentileUs(ns, 90), 900);
  EXPECT_DOUBLE_EQ(PercentileUs(ns, 99), 990);
  EXPECT_DOUBLE_EQ(PercentileUs(ns, 99.9), 999);
  EXPECT_DOUBLE_EQ(PercentileUs(ns, 100), 1000);
  EXPECT_DOUBLE_EQ(PercentileUs({}, 50), 0);
  EXPECT_DOUBLE_EQ(PercentileUs({7000}, 99.9), 7);
}

TEST(BenchMeasurement, SummarySortsAndAverages) {
  const LatencySummary s = SummarizeLatencies({4000, 1000, 3000, 2000});
  EXPECT_EQ(s.count, 4u);
  EXPECT_DOUBLE_EQ(s.p50_us, 2);
  EXPECT_DOUBLE_EQ(s.p90_us, 4);
  EXPECT_DOUBLE_EQ(s.max_us, 4);
  EXPECT_DOUBLE_EQ(s.mean_us, 2.5);
  EXPECT_EQ(SummarizeLatencies({}).count, 0u);
}

TEST(BenchMeasurement, StabilityNeedsThreeWindowsWithinPercent) {
  EXPECT_FALSE(IsStable({}, 10));
  EXPECT_FALSE(IsStable({100, 100}, 10));
  EXPECT_TRUE(IsStable({100, 100, 100}, 10));
  EXPECT_TRUE(IsStable({10, 500, 100, 105, 95}, 10));  // only the last three count
  EXPECT_FALSE(IsStable({100, 100, 130}, 10));
  EXPECT_TRUE(IsStable({100, 100, 130}, 20));
  EXPECT_FALSE(IsStable({0, 0, 0}, 10));  // no throughput is not a stable measurement
}

TEST(BenchMeasurement, PoissonScheduleMeanAndSeed) {
  const double rate = 250;
  PoissonSchedule a(rate, 7), b(rate, 7), c(rate, 8);
  double sum = 0;
  bool differs = false;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double g = a.NextGapSeconds();
    EXPECT_GE(g, 0);
    EXPECT_DOUBLE_EQ(g, b.NextGapSeconds());  // same seed, same schedule
    if (g != c.NextGapSeconds()) differs = true;
    sum += g;
  }
  EXPECT_NEAR(sum / n, 1.0 / rate, 0.02 / rate);
  EXPECT_TRUE(differs);
}

TEST(BenchMeasurement, TallyMergeAndFillPoint) {
  Tally a;
  a.successes = 3;
  a.latencies_ns = {1000, 2000, 3000};
  a.errors["http 503"] = 2;
  a.seconds = 1;
  Tally b;
  b.successes = 1;
  b.latencies_ns = {4000};
  b.errors["http 503"] = 1;
  b.errors["grpc UNAVAILABLE"] = 1;
  b.seconds = 1;
  a.Merge(std::move(b));
  PointResult p;
  p.batch_size = 2;
  FillPoint(std::move(a), &p);
  EXPECT_EQ(p.requests, 4u);
  EXPECT_EQ(p.errors, 4u);
  EXPECT_EQ(p.errors_by_kind["http 503"], 3u);
  EXPECT_DOUBLE_EQ(p.requests_per_s, 2);
  EXPECT_DOUBLE_EQ(p.throughput_infer_per_s, 4);
  EXPECT_DOUBLE_EQ(p.latency.max_us, 4);
}

TEST(BenchOptions, ParsesRangesAddressesAndShapes) {
  auto r = ParseConcurrencyRange("1:8:2");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->Levels(), (std::vector<int>{1, 3, 5, 7}));
  auto r2 = ParseConcurrencyRange("2:2");
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->Levels(), (std::vector<int>{2}));
  EXPECT_FALSE(ParseConcurrencyRange("4:1").ok());
  EXPECT_FALSE(ParseConcurrencyRange("0:1").ok());
  EXPECT_FALSE(ParseConcurrencyRange("1").ok());
  EXPECT_FALSE(ParseConcurrencyRange("1:x").ok());

  auto hp = ParseHostPort("http://localhost:8000/");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->host, "localhost");
  EXPECT_EQ(hp->port, 8000);
  EXPECT_FALSE(ParseHostPort("localhost").ok());
  EXPECT_FALSE(ParseHostPort("localhost:0").ok());
  EXPECT_FALSE(ParseHostPort("localhost:99999").ok());

  auto s = ParseShapeFlag("INPUT0:3,4");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->first, "INPUT0");
  EXPECT_EQ(s->second, (std::vector<int64_t>{3, 4}));
  EXPECT_FALSE(ParseShapeFlag("INPUT0").ok());
  EXPECT_FALSE(ParseShapeFlag("INPUT0:3,-1").ok());
}

TEST(BenchOptions, ValidateRejectsBadFlags) {
  BenchFlags f;
  f.url = "127.0.0.1:8000";
  f.model = "m";
  auto ok = ValidateBenchFlags(f);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->grpc.port, 8001);
  EXPECT_FALSE(ok->open_loop());
  f.protocol = "websocket";
  EXPECT_FALSE(ValidateBenchFlags(f).ok());
  f.protocol = "grpc";
  f.batch_size = 0;
  EXPECT_FALSE(ValidateBenchFlags(f).ok());
}

TEST(BenchInputs, ResolveShapeUsesBatchSizeAndShapeFlags) {
  const InputSpec fixed{"X", "FP32", {-1, 16}};
  auto s = ResolveShape(fixed, 4, {});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, (std::vector<int64_t>{4, 16}));

  const InputSpec variable{"B", "BYTES", {-1, -1}};
  auto missing = ResolveShape(variable, 1, {});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("--shape B:"), std::string::npos);
  auto without_batch = ResolveShape(variable, 2, {{"B", {3}}});
  ASSERT_TRUE(without_batch.ok());
  EXPECT_EQ(*without_batch, (std::vector<int64_t>{2, 3}));
  auto full = ResolveShape(variable, 2, {{"B", {5, 3}}});
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(*full, (std::vector<int64_t>{5, 3}));
  EXPECT_FALSE(ResolveShape(fixed, 1, {{"X", {1, 8}}}).ok());  // disagrees with 16
}

TEST(BenchInputs, GeneratedInputsHaveTheRightSizesAndAreSeeded) {
  const std::vector<InputSpec> specs = {
      {"a", "FP32", {-1, 4}}, {"b", "INT64", {2}}, {"c", "BOOL", {3}}, {"d", "FP16", {2}},
      {"e", "BF16", {2}},     {"f", "UINT8", {5}}, {"g", "BYTES", {2}}};
  auto r1 = MakeGeneratedInputs(specs, "random", 2, {}, 42);
  auto r2 = MakeGeneratedInputs(specs, "random", 2, {}, 42);
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ((*r1)[0].raw.size(), 2u * 4 * 4);
  EXPECT_EQ((*r1)[0].raw, (*r2)[0].raw);
  EXPECT_EQ((*r1)[1].raw.size(), 16u);
  EXPECT_EQ((*r1)[2].raw.size(), 3u);
  EXPECT_EQ((*r1)[3].raw.size(), 4u);
  EXPECT_EQ((*r1)[4].raw.size(), 4u);
  EXPECT_EQ((*r1)[5].raw.size(), 5u);
  EXPECT_GE((*r1)[6].raw.size(), 2u * 5);  // length prefix + at least one character each
  auto zero = MakeGeneratedInputs(specs, "zero", 1, {}, 42);
  ASSERT_TRUE(zero.ok());
  EXPECT_EQ((*zero)[0].json, "[0,0,0,0]");
  EXPECT_EQ((*zero)[2].json, "[false,false,false]");
  EXPECT_EQ((*zero)[6].raw, std::string(8, '\0'));
  EXPECT_FALSE(MakeGeneratedInputs({{"x", "COMPLEX", {1}}}, "random", 1, {}, 1).ok());
  EXPECT_FALSE(MakeGeneratedInputs(specs, "ones", 1, {}, 1).ok());
}

TEST(BenchInputs, FromJsonFile) {
  const std::vector<InputSpec> specs = {
      {"INPUT0", "FP32", {-1, 2}}, {"T", "BYTES", {-1}}, {"I", "INT8", {2}}};
  const std::string doc = R"({"inputs": {
      "INPUT0": {"data": [1, 2.5, 3, 4], "shape": [2, 2]},
      "T": {"data": ["hi", ""]},
      "I": {"data": [[-3], [7]]}}})";
  auto r = InputsFromJson(specs, doc, 2, {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto& x = (*r)[0];
  EXPECT_EQ(x.shape, (std::vector<int64_t>{2, 2}));
  ASSERT_EQ(x.raw.size(), 16u);
  float second = 0;
  std::memcpy(&second, x.raw.data() + 4, 4);
  EXPECT_FLOAT_EQ(second, 2.5f);
  EXPECT_EQ(x.json, "[1,2.5,3,4]");
  EXPECT_EQ((*r)[1].shape, (std::vector<int64_t>{2}));
  EXPECT_EQ((*r)[1].raw, std::string("\x02\0\0\0hi\0\0\0\0", 10));
  EXPECT_EQ((*r)[1].json, R"(["hi",""])");
  EXPECT_EQ((*r)[2].raw, std::string("\xfd\x07", 2));

  // Wrong count, missing input, out-of-range value, string for a number, bad JSON.
  EXPECT_FALSE(InputsFromJson(specs,
                              R"({"inputs": {"INPUT0": {"data": [1]}, "T": {"data": ["a","b"]},
      "I": {"data": [1, 2]}}})",
                              2, {})
                   .ok());
  EXPECT_FALSE(InputsFromJson(specs, R"({"inputs": {"INPUT0": {"data": [1,2,3,4]}}})", 2, {}).ok());
  EXPECT_FALSE(InputsFromJson(specs, R"({"inputs": {"INPUT0": {"data": [1,2,3,4]},
      "T": {"data": ["a","b"]}, "I": {"data": [1, 300]}}})",
                              2, {})
                   .ok());
  EXPECT_FALSE(InputsFromJson(specs, R"({"inputs": {"INPUT0": {"data": [1,2,3,"x"]},
      "T": {"data": ["a","b"]}, "I": {"data": [1, 2]}}})",
                              2, {})
                   .ok());
  EXPECT_FALSE(InputsFromJson(specs, "{", 2, {}).ok());
}

TEST(BenchInputs, HalfAndBfloat16Encodings) {
  EXPECT_EQ(core::FloatToHalfBits(0.0f), 0x0000);
  EXPECT_EQ(core::FloatToHalfBits(1.0f), 0x3c00);
  EXPECT_EQ(core::FloatToHalfBits(-2.0f), 0xc000);
  EXPECT_EQ(core::FloatToHalfBits(0.5f), 0x3800);
  EXPECT_EQ(core::FloatToHalfBits(65504.0f), 0x7bff);
  EXPECT_EQ(core::FloatToHalfBits(1e6f), 0x7c00);
  EXPECT_EQ(core::FloatToHalfBits(5.9604645e-08f), 0x0001);  // smallest subnormal
  EXPECT_EQ(FloatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(FloatToBf16(-2.0f), 0xc000);
}

TEST(BenchServerApi, ParsesMetadataAndStatistics) {
  auto ext =
      ParseServerExtensions(R"({"name":"s","extensions":["binary_tensor_data","statistics"]})");
  ASSERT_TRUE(ext.ok());
  EXPECT_EQ(ext->size(), 2u);
  auto inputs = ParseModelInputs(
      R"({"name":"add_sub","inputs":[{"name":"INPUT0","datatype":"FP32","shape":[-1,16]}],"outputs":[]})");
  ASSERT_TRUE(inputs.ok());
  ASSERT_EQ(inputs->size(), 1u);
  EXPECT_EQ((*inputs)[0].shape, (std::vector<int64_t>{-1, 16}));
  EXPECT_FALSE(ParseModelInputs(R"({"error":"unknown model"})").ok());

  const char* stats = R"({"model_stats":[{"name":"m","version":"1","inference_stats":{
      "success":{"count":10,"ns":5000},"queue":{"count":10,"ns":2000},
      "compute_input":{"count":10,"ns":100},"compute_infer":{"count":10,"ns":800},
      "compute_output":{"count":10,"ns":100}}}]})";
  auto s = ParseModelStats(stats);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->success_count, 10u);
  EXPECT_EQ(s->queue_ns, 2000u);
  EXPECT_EQ(s->compute_ns, 1000u);
  const ServerStatsDelta d = StatsDelta({2, 400, 200}, *s);
  ASSERT_TRUE(d.valid);
  EXPECT_EQ(d.requests, 8u);
  EXPECT_DOUBLE_EQ(d.queue_us, 0.2);
  EXPECT_DOUBLE_EQ(d.compute_us, 0.1);
  EXPECT_FALSE(StatsDelta(*s, *s).valid);
}

TEST(BenchClients, RequestBodies) {
  std::vector<InputTensor> inputs = {
      {"X", "INT32", {1, 2}, std::string("\1\0\0\0\2\0\0\0", 8), "[1,2]"}};
  EXPECT_EQ(JsonInferBody(inputs),
            R"({"inputs":[{"name":"X","datatype":"INT32","shape":[1,2],"data":[1,2]}]})");
  size_t header = 0;
  const std::string body = BinaryInferBody(inputs, &header);
  EXPECT_EQ(body.size(), header + 8);
  EXPECT_NE(body.substr(0, header).find("\"binary_data_size\":8"), std::string::npos);
  EXPECT_EQ(GrpcCodeName(5), "NOT_FOUND");
  EXPECT_EQ(GrpcCodeName(14), "UNAVAILABLE");
  EXPECT_EQ(GrpcCodeName(99), "CODE_99");
}

}  // namespace
}  // namespace slipway::app::bench
