// Drift statistics: the pure arithmetic that says whether a feature's live values still look like
// its reference (training) values. Two-sample Kolmogorov-Smirnov for continuous features,
// chi-squared homogeneity for categorical counts, the population stability index (PSI) over
// reference-quantile bins, and StreamingWindow, the bounded buffer of a feature's latest values.
//
// The results match SciPy 1.10 (tests/integration/test_drift_stats.py checks them against it):
//   KolmogorovSmirnov2     == scipy.stats.ks_2samp(a, b, method='asymp')  (two-sided)
//   ChiSquaredHomogeneity  == scipy.stats.chi2_contingency([ref, live], correction=False) after
//                             dropping the categories that are zero in both rows
//   KolmogorovSmirnovSf    == scipy.stats.kstwo.sf(d, n)
//   RegularizedUpperGamma  == scipy.special.gammaincc(a, x)  (chi2.sf(x, k) == Q(k/2, x/2))
// No external math library is used; everything is computed here from <cmath>.
//
// Thread safety: the free functions keep no state and never block; call them from any thread.
// StreamingWindow is NOT thread-safe: give it one owner or lock around it.
// Errors: inputs come from live traffic, so a bad input (empty sample, NaN, mismatched lengths)
// is an InvalidArgument Status, never a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "slipway/core/status.h"

namespace slipway::monitoring {

struct TestResult {
  double statistic = 0.0;
  double p_value = 1.0;
};

// Two-sided two-sample Kolmogorov-Smirnov test.
// statistic: D = sup_x |F_a(x) - F_b(x)| over the empirical CDFs (right-continuous, so tied
// values, within or across the samples, step together exactly as in ks_2samp).
// p_value: the ASYMPTOTIC p-value, not the exact one. Like ks_2samp(method='asymp') it is the
// survival function of the one-sample two-sided KS distribution, kstwo.sf(D, round(en)), with
// en = m*n/(m+n) rounded half-to-even. It is accurate when both samples have tens of values or
// more; for tiny samples it is only an approximation of the exact permutation p-value.
// Errors: InvalidArgument if a sample is empty, holds a NaN, or both samples hold one value
// (en rounds to 0 and the distribution is undefined; SciPy returns nan there).
// Infinite values are ordinary (extreme) values. Cost O((m+n) log(m+n)) plus the p-value,
// which is O(en) at worst.
core::Result<TestResult> KolmogorovSmirnov2(std::vector<double> a, std::vector<double> b);
// The same for samples already sorted ascending (and free of NaN), so a fixed sample such as a
// drift reference is sorted once, not per test.
core::Result<TestResult> KolmogorovSmirnov2Sorted(const std::vector<double>& a,
                                                  const std::vector<double>& b);

// Survival function Pr(D_n >= d) of the two-sided one-sample KS statistic for sample size n
// (scipy.stats.kstwo.sf): Simard & L'Ecuyer's choice among the Ruben-Gambino closed forms, the
// Durbin matrix (Marsaglia-Tsang-Wang), Pomeranz's recursion, the Pelz-Good expansion and twice
// the one-sided Smirnov tail. Returns NaN when n < 1 or d is NaN; result clipped to [0, 1].
double KolmogorovSmirnovSf(int64_t n, double d);

// Chi-squared test of homogeneity on the 2 x k table [reference_counts; live_counts]
// (Pearson, no Yates correction). Categories zero in both rows are dropped first; with k' left,
// degrees of freedom are k' - 1 and p = Q((k'-1)/2, statistic/2). With k' == 1 the rows cannot
// differ: {0, 1}.
// Errors: InvalidArgument if the vectors are empty or differ in length, or a row sums to zero.
core::Result<TestResult> ChiSquaredHomogeneity(const std::vector<uint64_t>& reference_counts,
                                               const std::vector<uint64_t>& live_counts);

// Regularized upper incomplete gamma Q(a, x) = Gamma(a, x) / Gamma(a), a > 0, x >= 0.
// Q(a, 0) == 1, Q(a, +inf) == 0. Series / continued fraction with a Stirling-form prefactor,
// relative error around 1e-13 or better where the result is a normal double.
// Returns NaN outside the domain (a <= 0, x < 0, or a NaN argument).
double RegularizedUpperGamma(double a, double x);

// Population stability index: sum_i (a_i - e_i) * ln(a_i / e_i), where each share is first
// floored at `epsilon` (so an empty bin costs a large but finite amount). Shares are used as
// given, not renormalised. Rules of thumb: < 0.1 stable, 0.1-0.2 moderate, > 0.2 shifted.
// Errors: InvalidArgument if the vectors are empty or differ in length, a share is negative or
// not finite, or epsilon is not a positive finite number.
core::Result<double> PopulationStabilityIndex(const std::vector<double>& expected_share,
                                              const std::vector<double>& actual_share,
                                              double epsilon = 1e-4);

// Interior bin edges at the reference quantiles i/bins, i = 1..bins-1 (linear interpolation
// between order statistics, as numpy.quantile's default). Repeated edges (heavily tied reference
// values) are collapsed, so the result is strictly increasing and may describe fewer than `bins`
// bins; bins == 1 gives no edges (one bin).
// Errors: InvalidArgument if bins == 0, the reference is empty, or it holds a NaN.
core::Result<std::vector<double>> QuantileEdges(std::vector<double> reference, size_t bins);

// Counts of `values` in the edges.size() + 1 bins (-inf, e0], (e0, e1], ..., (e_last, +inf)
// (bin of v == number of edges < v, numpy.searchsorted(edges, v, side='left')).
// Errors: InvalidArgument if the edges are not strictly increasing or hold a NaN, or a value is
// NaN.
core::Result<std::vector<uint64_t>> BinCounts(const std::vector<double>& values,
                                              const std::vector<double>& edges);

// Sorts `values` (free of NaN) ascending, as std::sort would (-0.0 lands before +0.0; they compare
// equal). A least-significant-byte-first radix sort on the values' bit patterns: linear time and
// no data-dependent branches, and the passes over bytes every value shares (the low bytes of
// doubles widened from floats, the sign and exponent of values in a narrow range) are skipped.
// On the few thousand varied values of a drift window it is several times faster than
// std::sort, which mispredicts about every other comparison there. Short inputs go to std::sort.
// `scratch` is working memory, kept by the caller so repeated sorts do not allocate.
void SortNumbers(std::vector<double>& values, std::vector<uint64_t>& scratch);

// counts / sum(counts), for PopulationStabilityIndex; all zeros when the counts sum to zero.
std::vector<double> CountShares(const std::vector<uint64_t>& counts);

// The most recent `capacity` values of one feature, in a ring buffer allocated once at Create.
// Add is O(1) and never allocates; Values copies them out oldest first.
// Thread safety: none. One owner, or a lock around every call.
class StreamingWindow {
 public:
  struct Options {
    size_t capacity = 1000;  // values kept; must be at least 1
  };
  static core::Result<std::unique_ptr<StreamingWindow>> Create(Options options);

  // Appends one value, evicting the oldest when full. Any double is stored as is (the tests
  // above reject NaN when the values reach them).
  void Add(double value);
  // The values held, oldest first.
  std::vector<double> Values() const;
  size_t size() const { return size_; }
  size_t capacity() const { return buffer_.size(); }
  void Clear();

 private:
  explicit StreamingWindow(size_t capacity) : buffer_(capacity) {}

  std::vector<double> buffer_;
  size_t next_ = 0;  // slot the next Add writes
  size_t size_ = 0;
};

}  // namespace slipway::monitoring
