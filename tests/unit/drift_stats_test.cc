// Unit tests for slipway/monitoring/drift_stats: known values (pinned from SciPy 1.10 where
// noted), edge cases and error handling. The broad comparison against SciPy lives in
// tests/integration/test_drift_stats.py.
#include "slipway/monitoring/drift_stats.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace slipway::monitoring {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<double> Range(double start, int count, double step = 1.0) {
  std::vector<double> out;
  for (int i = 0; i < count; ++i) out.push_back(start + step * i);
  return out;
}

// ---- Kolmogorov-Smirnov -----------------------------------------------------------------------

TEST(KolmogorovSmirnov2Test, IdenticalSamplesHaveNoDistance) {
  const std::vector<double> a = {0.3, -1.2, 4.0, 2.2, 2.2, 0.0, 7.5};
  auto r = KolmogorovSmirnov2(a, a);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->statistic, 0.0);
  EXPECT_EQ(r->p_value, 1.0);
}

TEST(KolmogorovSmirnov2Test, DisjointSamplesAreMaximallyApart) {
  auto r = KolmogorovSmirnov2(Range(0, 50), Range(100.5, 50));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->statistic, 1.0);
  EXPECT_LT(r->p_value, 1e-6);
  // Order of the arguments and of the values does not matter for the two-sided test.
  auto swapped = KolmogorovSmirnov2(Range(149.5, 50, -1.0), Range(0, 50));
  ASSERT_TRUE(swapped.ok());
  EXPECT_EQ(swapped->statistic, 1.0);
  EXPECT_EQ(swapped->p_value, r->p_value);
}

TEST(KolmogorovSmirnov2Test, TiesStepTogetherAsInScipy) {
  // scipy.stats.ks_2samp(a, b, method='asymp') -> (0.4, 0.4374)
  auto r = KolmogorovSmirnov2({1, 2, 2, 3, 5, 8, 8, 9}, {2, 2, 3, 4, 6, 7, 10, 11, 12, 13});
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->statistic, 0.4);
  EXPECT_NEAR(r->p_value, 0.4374, 1e-12);
}

TEST(KolmogorovSmirnov2Test, ShiftedSampleGivesSmallPValue) {
  // 0..399 against 100..499: a quarter of the mass moved. SciPy's p-value: 1.6840667400683204e-11.
  auto r = KolmogorovSmirnov2(Range(0, 400), Range(100, 400));
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->statistic, 0.25);  // i/n - j/n: within an ulp, as in numpy
  EXPECT_NEAR(r->p_value, 1.6840667400683204e-11, 1e-9 * 1.6840667400683204e-11);
}

TEST(KolmogorovSmirnov2Test, RejectsEmptyNaNAndSingletonPairs) {
  auto empty = KolmogorovSmirnov2({}, {1.0});
  EXPECT_EQ(empty.status().code(), core::StatusCode::kInvalidArgument);
  auto nan = KolmogorovSmirnov2({1.0, kNaN}, {1.0, 2.0});
  EXPECT_EQ(nan.status().code(), core::StatusCode::kInvalidArgument);
  auto singletons = KolmogorovSmirnov2({1.0}, {2.0});
  EXPECT_EQ(singletons.status().code(), core::StatusCode::kInvalidArgument);
  // Infinities are ordinary values.
  auto inf = KolmogorovSmirnov2({-INFINITY, 0.0, 1.0}, {0.5, 2.0, INFINITY});
  EXPECT_TRUE(inf.ok());
}

TEST(KolmogorovSmirnovSfTest, MatchesScipyKstwoOnEachBranch) {
  struct Case {
    int64_t n;
    double d, want;
  };
  // scipy.stats.kstwo.sf(d, n)
  const Case cases[] = {
      {10, 0.07, 0.9999999619492741},        // Ruben-Gambino, n*d <= 1
      {10, 0.1, 0.99963712},                 // n*d == 1
      {10, 0.25, 0.4841115325000003},        // Pomeranz
      {10, 0.5, 0.00777741},                 // 2 * Smirnov
      {10, 0.95, 1.9531250000000172e-13},    // n*d >= n-1
      {100, 0.05, 0.9532159710635725},       // Durbin
      {100, 0.2, 0.0005551927327988775},     // 2 * Smirnov
      {1000, 0.01, 0.9999496745370611},      // Durbin
      {1000, 0.03, 0.3226902143914636},      // Pelz-Good
      {200000, 0.002, 0.39995085369038097},  // Pelz-Good, beyond the Durbin limit
  };
  for (const Case& c : cases) {
    EXPECT_NEAR(KolmogorovSmirnovSf(c.n, c.d), c.want, 1e-9 * c.want)
        << "n=" << c.n << " d=" << c.d;
  }
}

TEST(KolmogorovSmirnovSfTest, Boundaries) {
  EXPECT_EQ(KolmogorovSmirnovSf(10, 0.0), 1.0);
  EXPECT_EQ(KolmogorovSmirnovSf(10, 0.05), 1.0);  // d <= 1/(2n)
  EXPECT_EQ(KolmogorovSmirnovSf(10, 1.0), 0.0);
  EXPECT_EQ(KolmogorovSmirnovSf(5000, 0.9), 0.0);  // n*d^2 >= 370
  EXPECT_TRUE(std::isnan(KolmogorovSmirnovSf(0, 0.3)));
  EXPECT_TRUE(std::isnan(KolmogorovSmirnovSf(10, kNaN)));
  // Decreasing in d.
  double previous = 1.0;
  for (double d = 0.01; d < 1.0; d += 0.01) {
    const double p = KolmogorovSmirnovSf(60, d);
    EXPECT_LE(p, previous + 1e-15) << d;
    previous = p;
  }
}

// ---- Chi-squared ------------------------------------------------------------------------------

TEST(ChiSquaredHomogeneityTest, KnownTable) {
  // scipy.stats.chi2_contingency([[10,20,30],[15,15,30]], correction=False)
  auto r = ChiSquaredHomogeneity({10, 20, 30}, {15, 15, 30});
  ASSERT_TRUE(r.ok());
  EXPECT_NEAR(r->statistic, 1.7142857142857144, 1e-12);
  EXPECT_NEAR(r->p_value, 0.42437284567695, 1e-12);
}

TEST(ChiSquaredHomogeneityTest, DropsCategoriesEmptyInBothRows) {
  // SciPy on the table without the zero column: (33.55, 2.4655082066842896e-07, dof 3).
  auto r = ChiSquaredHomogeneity({120, 0, 90, 40, 0}, {100, 0, 110, 60, 30});
  ASSERT_TRUE(r.ok());
  EXPECT_NEAR(r->statistic, 33.55, 1e-10);
  EXPECT_NEAR(r->p_value, 2.4655082066842896e-07, 1e-9 * 2.4655082066842896e-07);
}

TEST(ChiSquaredHomogeneityTest, SameProportionsAndSingleCategory) {
  auto same = ChiSquaredHomogeneity({10, 20, 30}, {20, 40, 60});
  ASSERT_TRUE(same.ok());
  EXPECT_NEAR(same->statistic, 0.0, 1e-12);
  EXPECT_NEAR(same->p_value, 1.0, 1e-12);
  auto single = ChiSquaredHomogeneity({7, 0, 0}, {3, 0, 0});
  ASSERT_TRUE(single.ok());
  EXPECT_EQ(single->statistic, 0.0);
  EXPECT_EQ(single->p_value, 1.0);
}

TEST(ChiSquaredHomogeneityTest, RejectsBadTables) {
  EXPECT_FALSE(ChiSquaredHomogeneity({1, 2}, {1, 2, 3}).ok());
  EXPECT_FALSE(ChiSquaredHomogeneity({}, {}).ok());
  auto empty_row = ChiSquaredHomogeneity({0, 0, 0}, {1, 2, 3});
  EXPECT_EQ(empty_row.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(empty_row.status().message().find("reference"), std::string::npos);
}

// ---- Q(a, x) ----------------------------------------------------------------------------------

TEST(RegularizedUpperGammaTest, EdgeCases) {
  EXPECT_EQ(RegularizedUpperGamma(2.5, 0.0), 1.0);
  EXPECT_EQ(RegularizedUpperGamma(0.5, 0.0), 1.0);
  EXPECT_EQ(RegularizedUpperGamma(3.0, INFINITY), 0.0);
  EXPECT_LT(RegularizedUpperGamma(2.0, 1e4), 1e-300);
  EXPECT_GT(RegularizedUpperGamma(2.0, 1e-12), 1.0 - 1e-12);
  EXPECT_TRUE(std::isnan(RegularizedUpperGamma(0.0, 1.0)));
  EXPECT_TRUE(std::isnan(RegularizedUpperGamma(-1.0, 1.0)));
  EXPECT_TRUE(std::isnan(RegularizedUpperGamma(1.0, -1.0)));
  EXPECT_TRUE(std::isnan(RegularizedUpperGamma(kNaN, 1.0)));
}

TEST(RegularizedUpperGammaTest, ClosedForms) {
  for (double x : {1e-6, 0.1, 0.5, 1.0, 1.9, 2.0, 5.0, 30.0, 200.0}) {
    // Q(1, x) = e^-x; Q(1/2, x) = erfc(sqrt x); Q(2, x) = (1 + x) e^-x.
    EXPECT_NEAR(RegularizedUpperGamma(1.0, x), std::exp(-x), 1e-13 * std::exp(-x)) << x;
    const double erfc = std::erfc(std::sqrt(x));
    EXPECT_NEAR(RegularizedUpperGamma(0.5, x), erfc, 1e-13 * erfc) << x;
    const double q2 = (1 + x) * std::exp(-x);
    EXPECT_NEAR(RegularizedUpperGamma(2.0, x), q2, 1e-13 * q2) << x;
  }
}

TEST(RegularizedUpperGammaTest, MatchesScipyGammaincc) {
  EXPECT_NEAR(RegularizedUpperGamma(3.5, 2.0), 0.779777408475716, 1e-13);
  EXPECT_NEAR(RegularizedUpperGamma(50.0, 60.0), 0.08440668109369177, 1e-14);
}

// ---- PSI, quantile bins -----------------------------------------------------------------------

TEST(PopulationStabilityIndexTest, IdenticalIsZeroShiftedIsLarge) {
  const std::vector<double> base = {0.1, 0.2, 0.4, 0.2, 0.1};
  auto same = PopulationStabilityIndex(base, base);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, 0.0);
  auto shifted = PopulationStabilityIndex(base, {0.02, 0.08, 0.2, 0.4, 0.3});
  ASSERT_TRUE(shifted.ok());
  EXPECT_GT(*shifted, 0.2);
  // By hand: sum (a - e) ln(a / e).
  EXPECT_NEAR(PopulationStabilityIndex({0.5, 0.5}, {0.4, 0.6}).value(),
              -0.1 * std::log(0.8) + 0.1 * std::log(1.2), 1e-15);
}

TEST(PopulationStabilityIndexTest, EmptyBinsAreFlooredAtEpsilon) {
  auto r = PopulationStabilityIndex({0.5, 0.5, 0.0}, {0.5, 0.4, 0.1}, 1e-4);
  ASSERT_TRUE(r.ok());
  const double want = (0.4 - 0.5) * std::log(0.4 / 0.5) + (0.1 - 1e-4) * std::log(0.1 / 1e-4);
  EXPECT_NEAR(*r, want, 1e-15);
  EXPECT_TRUE(std::isfinite(*r));
}

TEST(PopulationStabilityIndexTest, RejectsBadInput) {
  EXPECT_FALSE(PopulationStabilityIndex({0.5, 0.5}, {1.0}).ok());
  EXPECT_FALSE(PopulationStabilityIndex({}, {}).ok());
  EXPECT_FALSE(PopulationStabilityIndex({0.5, -0.5}, {0.5, 0.5}).ok());
  EXPECT_FALSE(PopulationStabilityIndex({0.5, kNaN}, {0.5, 0.5}).ok());
  EXPECT_FALSE(PopulationStabilityIndex({0.5, 0.5}, {0.5, 0.5}, 0.0).ok());
}

TEST(QuantileEdgesTest, EdgesAtReferenceQuantiles) {
  auto edges = QuantileEdges(Range(0, 101), 4);  // 0..100
  ASSERT_TRUE(edges.ok());
  EXPECT_EQ(*edges, (std::vector<double>{25, 50, 75}));
  // Interpolates between order statistics like numpy.quantile: (n-1) q = 1.5 -> 2.5.
  auto interpolated = QuantileEdges({4, 1, 3, 2}, 2);
  ASSERT_TRUE(interpolated.ok());
  EXPECT_EQ(*interpolated, (std::vector<double>{2.5}));
  auto one_bin = QuantileEdges({1, 2, 3}, 1);
  ASSERT_TRUE(one_bin.ok());
  EXPECT_TRUE(one_bin->empty());
}

TEST(QuantileEdgesTest, TiesCollapse) {
  auto edges = QuantileEdges({0, 0, 0, 0, 0, 0, 0, 0, 1, 2}, 5);
  ASSERT_TRUE(edges.ok());
  // Quantiles 0, 0, 0, 0.2 (linear between the 8th and 9th values); the zeros collapse.
  ASSERT_EQ(edges->size(), 2u);
  EXPECT_EQ((*edges)[0], 0.0);
  EXPECT_NEAR((*edges)[1], 0.2, 1e-12);
  EXPECT_FALSE(QuantileEdges({}, 4).ok());
  EXPECT_FALSE(QuantileEdges({1.0}, 0).ok());
  EXPECT_FALSE(QuantileEdges({1.0, kNaN}, 2).ok());
}

TEST(BinCountsTest, RightClosedBinsWithOpenEnds) {
  auto counts = BinCounts({-100, 0, 1, 1.5, 2, 2.0001, 3, 1e9}, {1, 2, 3});
  ASSERT_TRUE(counts.ok());
  // (-inf,1]: -100 0 1 | (1,2]: 1.5 2 | (2,3]: 2.0001 3 | (3,inf): 1e9
  EXPECT_EQ(*counts, (std::vector<uint64_t>{3, 2, 2, 1}));
  auto no_edges = BinCounts({1, 2, 3}, {});
  ASSERT_TRUE(no_edges.ok());
  EXPECT_EQ(*no_edges, (std::vector<uint64_t>{3}));
  EXPECT_FALSE(BinCounts({1}, {2, 1}).ok());
  EXPECT_FALSE(BinCounts({1}, {1, 1}).ok());
  EXPECT_FALSE(BinCounts({kNaN}, {1}).ok());
}

TEST(BinCountsTest, PsiOverQuantileBinsSeesAShift) {
  std::vector<double> reference, same, shifted;
  for (int i = 0; i < 1000; ++i) {
    const double u = (i + 0.5) / 1000.0;
    reference.push_back(u);
    same.push_back(1.0 - u);
    shifted.push_back(u + 0.3);
  }
  auto edges = QuantileEdges(reference, 10);
  ASSERT_TRUE(edges.ok());
  ASSERT_EQ(edges->size(), 9u);
  const auto ref_share = CountShares(BinCounts(reference, *edges).value());
  EXPECT_NEAR(ref_share[0], 0.1, 1e-12);
  const auto same_share = CountShares(BinCounts(same, *edges).value());
  const auto shifted_share = CountShares(BinCounts(shifted, *edges).value());
  EXPECT_NEAR(PopulationStabilityIndex(ref_share, same_share).value(), 0.0, 1e-12);
  EXPECT_GT(PopulationStabilityIndex(ref_share, shifted_share).value(), 0.2);
}

TEST(CountSharesTest, NormalisesAndHandlesZeroTotal) {
  EXPECT_EQ(CountShares({1, 3}), (std::vector<double>{0.25, 0.75}));
  EXPECT_EQ(CountShares({0, 0}), (std::vector<double>{0.0, 0.0}));
}

// ---- StreamingWindow --------------------------------------------------------------------------

TEST(StreamingWindowTest, KeepsTheLatestValuesOldestFirst) {
  auto window = StreamingWindow::Create({.capacity = 3});
  ASSERT_TRUE(window.ok());
  StreamingWindow& w = **window;
  EXPECT_EQ(w.size(), 0u);
  EXPECT_TRUE(w.Values().empty());
  w.Add(1);
  w.Add(2);
  EXPECT_EQ(w.Values(), (std::vector<double>{1, 2}));
  for (double v : {3, 4, 5}) w.Add(v);
  EXPECT_EQ(w.size(), 3u);
  EXPECT_EQ(w.capacity(), 3u);
  EXPECT_EQ(w.Values(), (std::vector<double>{3, 4, 5}));
  for (int v = 6; v <= 100; ++v) w.Add(v);
  EXPECT_EQ(w.Values(), (std::vector<double>{98, 99, 100}));
  w.Clear();
  EXPECT_EQ(w.size(), 0u);
  w.Add(7);
  EXPECT_EQ(w.Values(), (std::vector<double>{7}));
}

TEST(StreamingWindowTest, CapacityOneAndZero) {
  auto one = StreamingWindow::Create({.capacity = 1});
  ASSERT_TRUE(one.ok());
  (*one)->Add(1);
  (*one)->Add(2);
  EXPECT_EQ((*one)->Values(), (std::vector<double>{2}));
  auto zero = StreamingWindow::Create({.capacity = 0});
  EXPECT_EQ(zero.status().code(), core::StatusCode::kInvalidArgument);
}

// SortNumbers orders exactly as std::sort does, whatever the values: varied doubles, floats
// widened to doubles (whose low bytes are all zero, so those passes are skipped), negatives and
// infinities, many ties, a single repeated value, and inputs too short for the radix passes.
TEST(SortNumbersTest, OrdersAsStdSortDoes) {
  std::mt19937 rng(11);
  std::normal_distribution<double> normal(0.0, 1000.0);
  std::uniform_int_distribution<int> small(-3, 3);
  std::vector<std::vector<double>> cases;
  cases.emplace_back();
  cases.push_back({5.0});
  cases.push_back({2.0, -1.0});
  for (size_t n : {255u, 256u, 257u, 2000u, 5000u}) {
    std::vector<double> varied(n), widened(n), ties(n), same(n, 0.25);
    for (size_t i = 0; i < n; ++i) {
      varied[i] = normal(rng);
      widened[i] = static_cast<double>(static_cast<float>(normal(rng)));
      ties[i] = small(rng);
    }
    varied[n / 2] = std::numeric_limits<double>::infinity();
    varied[n / 3] = -std::numeric_limits<double>::infinity();
    varied[n / 4] = std::numeric_limits<double>::denorm_min();
    varied[n / 5] = -std::numeric_limits<double>::max();
    ties[n / 2] = -0.0;
    ties[n / 3] = 0.0;
    for (auto* c : {&varied, &widened, &ties, &same}) cases.push_back(*c);
  }
  std::vector<uint64_t> scratch;
  for (const auto& input : cases) {
    std::vector<double> expected = input;
    std::sort(expected.begin(), expected.end());
    std::vector<double> got = input;
    SortNumbers(got, scratch);
    ASSERT_EQ(got, expected) << "n=" << input.size();
    // The same values, bit for bit, not merely equal ones (-0.0 == 0.0 would hide a lost sign).
    std::vector<double> a = input, b = got;
    const auto bits = [](double v) {
      uint64_t u = 0;
      std::memcpy(&u, &v, sizeof(u));
      return u;
    };
    std::vector<uint64_t> in_bits, out_bits;
    for (double v : a) in_bits.push_back(bits(v));
    for (double v : b) out_bits.push_back(bits(v));
    std::sort(in_bits.begin(), in_bits.end());
    std::sort(out_bits.begin(), out_bits.end());
    EXPECT_EQ(in_bits, out_bits) << "n=" << input.size();
  }
}

}  // namespace
}  // namespace slipway::monitoring
