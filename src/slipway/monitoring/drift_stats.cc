#include "slipway/monitoring/drift_stats.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>
#include <string>
#include <utility>

namespace slipway::monitoring {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kPi = std::numbers::pi;
constexpr double kLog2Pi = 1.8378770664093454835606594728112353;  // log(2*pi)

double Clip01(double p) { return std::clamp(p, 0.0, 1.0); }

// B_{2j} / (2j (2j-1)) for j = 8..1: the Stirling series for log Gamma, highest order first.
constexpr double kStirlingCoeffs[] = {-2.955065359477124183e-2,  6.4102564102564102564e-3,
                                      -1.9175269175269175269e-3, 8.4175084175084175084e-4,
                                      -5.952380952380952381e-4,  7.9365079365079365079e-4,
                                      -2.7777777777777777778e-3, 8.3333333333333333333e-2};

double PolyvalStirling(double z) {
  double acc = 0.0;
  for (double c : kStirlingCoeffs) acc = acc * z + c;
  return acc;
}

// ---- Kolmogorov-Smirnov distribution (kstwo), after Simard & L'Ecuyer (2011) --------------
// The branches and the approximations they choose follow scipy/stats/_ksstats.py (SciPy 1.10);
// the exact pieces (Durbin, Pomeranz, Smirnov) are computed independently here.

// log(n! / n^n) by Stirling, with n*log(n) taken out to avoid cancellation.
double LogFactorialOverPower(double n) {
  const double rn = 1.0 / n;
  return std::log(n) / 2 - n + kLog2Pi / 2 + rn * PolyvalStirling(rn / n);
}

// Pr(D_n+ >= x), the one-sided Smirnov tail (scipy.special.smirnov), from the Birnbaum-Tingey
// sum  x * sum_{v=0}^{floor(n(1-x))} C(n,v) (x+v/n)^(v-1) (1-x-v/n)^(n-v), every term positive,
// summed in long double through logarithms so neither the binomial nor the powers overflow.
double SmirnovSf(int64_t n, double x) {
  if (!(n > 0 && x >= 0.0 && x <= 1.0)) return kNaN;
  if (n == 1) return 1.0 - x;
  if (x == 0.0) return 1.0;
  if (x == 1.0) return 0.0;
  const long double nl = static_cast<long double>(n);
  const long double xl = x;
  const long double nx = nl * xl;
  const long double nx_floor = std::floor(nx);
  const long double alpha = nx - nx_floor;
  const int64_t nxfl = static_cast<int64_t>(nx_floor);
  if (nxfl == 0 || (nxfl == 1 && alpha == 0)) {  // x <= 1/n
    const long double cdf = xl * std::pow(1.0L + xl, static_cast<long double>(n - 1));
    return Clip01(static_cast<double>(1.0L - cdf));
  }
  constexpr double kMinLog = -7.451332191019412076235e2;  // log(2^-1075)
  if (static_cast<double>(-2 * n) * x * x < kMinLog) return 0.0;
  if (nxfl >= n - 1) return Clip01(std::pow(1.0 - x, static_cast<double>(n)));
  if (n > 1000000) {
    // As SciPy: too many terms; p ~ exp(-(6nx+1)^2 / 18n).
    const double dn = static_cast<double>(n);
    const double logp = -std::pow(6.0 * dn * x + 1, 2) / 18.0 / dn;
    return Clip01(logp < -std::numbers::ln2 ? std::exp(logp) : 1.0 - (-std::expm1(logp)));
  }
  // v runs to floor(n(1-x)); when n*x is an integer that last term is zero and is left out.
  // Every term is positive (no cancellation), so plain doubles hold the sum to about 1e-13
  // relative: the logs and exps of double precision cost a fraction of long double's, and a
  // drift window's p-values are computed for every feature of every window.
  const int64_t last = n - nxfl - 1;
  const double dn = static_cast<double>(n);
  const double nxd = static_cast<double>(nx);
  double log_binom = 0.0;  // log C(n, v)
  double sum = 0.0;
  for (int64_t v = 0; v <= last; ++v) {
    const double dv = static_cast<double>(v);
    const double up = x + dv / dn;                // x + v/n
    const double down = ((dn - dv) - nxd) / dn;  // 1 - x - v/n, from exact integers and n*x
    if (down <= 0) break;
    const double log_term = log_binom + (dv - 1) * std::log(up) + (dn - dv) * std::log(down);
    const double term = std::exp(log_term);
    sum += term;
    // Terms rise then fall; stop once the rest cannot matter.
    if (term > 0 && 4.0 * static_cast<double>(last - v + 1) * term < 1e-20 * sum) break;
    log_binom += std::log((dn - dv) / (dv + 1));
  }
  return Clip01(x * sum);
}

// Pr(D_n <= d) by the Durbin matrix method as Marsaglia, Tsang & Wang evaluate it.
double KolmogorovCdfDurbin(int64_t n, double d) {
  if (d >= 1.0) return 1.0;
  const double nd = static_cast<double>(n) * d;
  if (nd <= 0.5) return 0.0;
  const int64_t k = static_cast<int64_t>(std::ceil(nd));
  const double h = static_cast<double>(k) - nd;
  const size_t m = static_cast<size_t>(2 * k - 1);
  constexpr int kScaleExp = 128;
  const double kBig = std::ldexp(1.0, kScaleExp);
  const double kSmall = std::ldexp(1.0, -kScaleExp);

  std::vector<double> v(m), w(m);
  double fac = 1.0;
  for (size_t j = 1; j <= m; ++j) {
    w[j - 1] = fac;
    fac /= static_cast<double>(j);
    v[j - 1] = (1.0 - std::pow(h, static_cast<double>(j))) * fac;
  }
  const double tt = std::pow(std::max(2 * h - 1.0, 0.0), static_cast<double>(m)) -
                    2 * std::pow(h, static_cast<double>(m));
  v[m - 1] = (1.0 + tt) * fac;

  std::vector<double> hm(m * m, 0.0);
  auto at = [m](std::vector<double>& a, size_t r, size_t c) -> double& { return a[r * m + c]; };
  for (size_t i = 1; i < m; ++i) {
    for (size_t r = i - 1; r < m; ++r) at(hm, r, i) = w[r - (i - 1)];
  }
  for (size_t r = 0; r < m; ++r) at(hm, r, 0) = v[r];
  for (size_t c = 0; c < m; ++c) at(hm, m - 1, c) = v[m - 1 - c];

  auto multiply = [m](const std::vector<double>& a, const std::vector<double>& b) {
    std::vector<double> out(m * m, 0.0);
    for (size_t r = 0; r < m; ++r) {
      for (size_t t = 0; t < m; ++t) {
        const double art = a[r * m + t];
        if (art == 0.0) continue;
        for (size_t c = 0; c < m; ++c) out[r * m + c] += art * b[t * m + c];
      }
    }
    return out;
  };

  std::vector<double> power(m * m, 0.0);  // identity
  for (size_t r = 0; r < m; ++r) at(power, r, r) = 1.0;
  int64_t exponent = 0, h_exponent = 0;
  for (int64_t nn = n; nn > 0; nn /= 2) {
    if (nn % 2) {
      power = multiply(power, hm);
      exponent += h_exponent;
    }
    hm = multiply(hm, hm);
    h_exponent *= 2;
    if (std::fabs(at(hm, k - 1, k - 1)) > kBig) {
      for (double& e : hm) e /= kBig;
      h_exponent += kScaleExp;
    }
  }
  long double p = at(power, k - 1, k - 1);
  const long double nl = static_cast<long double>(n);
  for (int64_t i = 1; i <= n; ++i) {  // times n!/n^n
    p = static_cast<long double>(i) * p / nl;
    if (std::fabs(p) < kSmall) {
      p *= kBig;
      exponent -= kScaleExp;
    }
  }
  return Clip01(static_cast<double>(std::ldexp(p, static_cast<int>(exponent))));
}

// Python slice [start, stop) of a sequence of length len, as Python clamps and wraps it.
std::pair<int64_t, int64_t> PySlice(int64_t len, int64_t start, int64_t stop) {
  auto fix = [len](int64_t i) {
    if (i < 0) return std::max<int64_t>(i + len, 0);
    return std::min(i, len);
  };
  const int64_t lo = fix(start);
  return {lo, std::max(lo, fix(stop))};
}

std::pair<int64_t, int64_t> PomeranzBounds(int64_t i, int64_t n, int64_t ll, int64_t ceilf,
                                           int64_t roundf) {
  int64_t j1, j2;
  if (i == 0) {
    j1 = -ll - ceilf - 1;
    j2 = ll + ceilf - 1;
  } else {
    const int64_t half = (i + 1) / 2;
    if ((i + 1) % 2 == 0) {  // i odd
      if (half == n + 1) {
        j1 = n - ll - ceilf - 1;
        j2 = n + ll + ceilf - 1;
      } else {
        j1 = half - 1 - ll - roundf - 1;
        j2 = half + ll - 1 + ceilf - 1;
      }
    } else {
      j1 = half - 1 - ll - 1;
      j2 = half + ll + roundf - 1;
    }
  }
  return {std::max<int64_t>(j1 + 2, 0), std::min(j2, n)};
}

// Pr(D_n <= x) by Pomeranz's recursion (1974), two rows at a time with rescaling.
double KolmogorovCdfPomeranz(int64_t n, double x) {
  const double t = static_cast<double>(n) * x;
  const int64_t ll = static_cast<int64_t>(std::floor(t));
  const double f = t - static_cast<double>(ll);
  const double g = std::min(f, 1.0 - f);
  const int64_t ceilf = f > 0 ? 1 : 0;
  const int64_t roundf = f > 0.5 ? 1 : 0;
  const int64_t npwrs = 2 * (ll + 1);
  constexpr int kScaleExp = 128;
  const double kBig = std::ldexp(1.0, kScaleExp);
  const double kSmall = std::ldexp(1.0, -kScaleExp);
  const double dn = static_cast<double>(n);

  // (g/n)^m/m!, (2g/n)^m/m!, ((1-2g)/n)^m/m!: Poisson probabilities without e^-lambda.
  std::vector<double> gpower(npwrs), twogpower(npwrs), onem2gpower(npwrs);
  gpower[0] = twogpower[0] = onem2gpower[0] = 1.0;
  const double g_n = g / dn, two_g_n = 2 * g / dn, one_m2g_n = (1 - 2 * g) / dn;
  for (int64_t m = 1; m < npwrs; ++m) {
    const double dm = static_cast<double>(m);
    gpower[m] = gpower[m - 1] * g_n / dm;
    twogpower[m] = twogpower[m - 1] * two_g_n / dm;
    onem2gpower[m] = onem2gpower[m - 1] * one_m2g_n / dm;
  }

  std::vector<double> v0(npwrs, 0.0), v1(npwrs, 0.0), conv;
  v1[0] = 1.0;
  int64_t v0s = 0, v1s = 0, exponent = 0;
  auto [j1, j2] = PomeranzBounds(0, n, ll, ceilf, roundf);
  for (int64_t i = 1; i < 2 * n + 2; ++i) {
    const int64_t k1 = j1;
    std::swap(v0, v1);
    std::swap(v0s, v1s);
    std::fill(v1.begin(), v1.end(), 0.0);
    std::tie(j1, j2) = PomeranzBounds(i, n, ll, ceilf, roundf);
    const std::vector<double>& pwrs =
        (i == 1 || i == 2 * n + 1) ? gpower : (i % 2 ? twogpower : onem2gpower);
    const int64_t ln2 = j2 - k1 + 1;
    if (ln2 <= 0) continue;
    const auto [a_lo, a_hi] = PySlice(npwrs, k1 - v0s, k1 - v0s + ln2);
    const int64_t la = a_hi - a_lo;
    const int64_t lp = std::min(ln2, npwrs);
    if (la <= 0) continue;
    conv.assign(la + lp - 1, 0.0);  // full convolution
    for (int64_t p = 0; p < la; ++p) {
      const double ap = v0[a_lo + p];
      if (ap == 0.0) continue;
      for (int64_t q = 0; q < lp; ++q) conv[p + q] += ap * pwrs[q];
    }
    const int64_t conv_start = j1 - k1;
    const auto [c_lo, c_hi] =
        PySlice(static_cast<int64_t>(conv.size()), conv_start, conv_start + (j2 - j1 + 1));
    std::copy(conv.begin() + c_lo, conv.begin() + std::min(c_hi, c_lo + npwrs), v1.begin());
    const double top = *std::max_element(v1.begin(), v1.end());
    if (top > 0 && top < kSmall) {
      for (double& e : v1) e *= kBig;
      exponent -= kScaleExp;
    }
    v1s = v0s + j1 - k1;
  }
  int64_t index = n - v1s;
  if (index < 0) index += npwrs;
  if (index < 0 || index >= npwrs) return kNaN;
  double ans = v1[index];
  for (int64_t m = 1; m <= n; ++m) {  // times n!
    if (std::fabs(ans) > kBig) {
      ans *= kSmall;
      exponent += kScaleExp;
    }
    ans *= static_cast<double>(m);
  }
  return Clip01(std::ldexp(ans, static_cast<int>(exponent)));
}

// Pelz-Good (1976) approximation to Pr(D_n <= x), for large n and small x.
double KolmogorovCdfPelzGood(int64_t n, double x) {
  if (x <= 0.0) return 0.0;
  if (x >= 1.0) return 1.0;
  constexpr double kPi2 = kPi * kPi, kPi4 = kPi2 * kPi2, kPi6 = kPi4 * kPi2;
  const double sqrt2pi = std::sqrt(2 * kPi);
  const double dn = static_cast<double>(n);
  const double z = std::sqrt(dn) * x;
  const double z2 = z * z, z3 = z * z * z, z4 = std::pow(z, 4), z6 = std::pow(z, 6);
  const double qlog = -kPi2 / 8 / z2;
  if (qlog < -708) return 0.0;
  double q = std::exp(qlog);

  const double k1a = -z2, k1b = kPi2 / 4;
  const double k2a = 6 * z6 + 2 * z4, k2b = (2 * z4 - 5 * z2) * kPi2 / 4,
               k2c = kPi4 * (1 - 2 * z2) / 16;
  const double k3d = kPi6 * (5 - 30 * z2) / 64, k3c = kPi4 * (-60 * z2 + 212 * z4) / 16,
               k3b = kPi2 * (135 * z4 - 96 * z6) / 4, k3a = -30 * z6 - 90 * std::pow(z, 8);

  double kk[4] = {0, 0, 0, 0};
  const int64_t maxk = static_cast<int64_t>(std::ceil(16 * z / kPi));
  for (int64_t k = maxk; k > 0; --k) {  // Horner in q^(8k) over the odd m = 2k-1
    const double m = static_cast<double>(2 * k - 1);
    const double m2 = m * m, m4 = std::pow(m, 4), m6 = std::pow(m, 6);
    const double qpower = std::pow(q, static_cast<double>(8 * k));
    const double coeffs[4] = {1.0, k1a + k1b * m2, k2a + k2b * m2 + k2c * m4,
                              k3a + k3b * m2 + k3c * m4 + k3d * m6};
    for (int i = 0; i < 4; ++i) kk[i] = kk[i] * qpower + coeffs[i];
  }
  const double denominators[4] = {z, 6 * z4, 72 * std::pow(z, 7), 6480 * std::pow(z, 10)};
  for (int i = 0; i < 4; ++i) kk[i] = kk[i] * q * sqrt2pi / denominators[i];

  q = std::exp(-kPi2 / 2 / z2);
  const double sqrt3z = std::sqrt(3.0) * z;
  double k2extra = 0, k3extra = 0;
  for (int64_t k = maxk; k > 0; --k) {
    const double dk = static_cast<double>(k);
    const double k2 = dk * dk;
    const double qp = std::pow(q, k2);
    const double kpi = kPi * dk;
    k2extra += k2 * qp;
    k3extra += (sqrt3z + kpi) * (sqrt3z - kpi) * k2 * qp;
  }
  kk[2] += k2extra * kPi2 * sqrt2pi / (-36 * z3);
  kk[3] += k3extra * kPi2 * sqrt2pi / (216 * z6);
  double sum = 0.0;
  for (int i = 0; i < 4; ++i) sum += kk[i] / std::pow(dn, i / 2.0);
  return sum;
}

// Pr(D_n >= x) for n >= 1 (SciPy's _kolmogn(n, x, cdf=False)).
double KolmogorovSfSelect(int64_t n, double x) {
  if (x >= 1.0) return 0.0;
  if (x <= 0.0) return 1.0;
  const double dn = static_cast<double>(n);
  const double t = dn * x;
  if (t <= 1.0) {  // Ruben-Gambino: 1/2n <= x <= 1/n
    if (t <= 0.5) return 1.0;
    double prob;
    if (n <= 140) {
      prob = 1.0;
      for (int64_t i = 1; i <= n; ++i) prob *= static_cast<double>(i) * (1.0 / dn) * (2 * t - 1);
    } else {
      prob = std::exp(LogFactorialOverPower(dn) + dn * std::log(2 * t - 1));
    }
    return Clip01(1.0 - prob);
  }
  if (t >= dn - 1) return Clip01(2 * std::pow(1.0 - x, dn));  // Ruben-Gambino
  if (x >= 0.5) return Clip01(2 * SmirnovSf(n, x));           // exact
  const double nxsquared = t * x;
  if (n <= 140) {
    if (nxsquared <= 0.754693) return Clip01(1.0 - KolmogorovCdfDurbin(n, x));
    if (nxsquared <= 4) return Clip01(1.0 - KolmogorovCdfPomeranz(n, x));
    return Clip01(2 * SmirnovSf(n, x));  // Miller: the two tails barely overlap
  }
  if (nxsquared >= 370.0) return 0.0;
  if (nxsquared >= 2.2) return Clip01(2 * SmirnovSf(n, x));
  double cdf;
  if (nxsquared >= 18.0) {
    cdf = 1.0;
  } else if (n <= 100000 && dn * std::pow(x, 1.5) <= 1.4) {
    cdf = KolmogorovCdfDurbin(n, x);
  } else {
    cdf = KolmogorovCdfPelzGood(n, x);
  }
  return Clip01(1.0 - Clip01(cdf));
}

// numpy.round: half to even.
double RoundHalfEven(double v) {
  const double r = std::floor(v);
  const double diff = v - r;
  if (diff > 0.5 || (diff == 0.5 && std::fmod(r, 2.0) != 0.0)) return r + 1.0;
  return r;
}

// ---- Incomplete gamma -------------------------------------------------------------------------

// log Gamma(a) - ((a - 1/2) log a - a + log(2 pi)/2), for a >= 10.
double StirlingCorrection(double a) {
  const double r = 1.0 / a;
  return r * PolyvalStirling(r * r);
}

double LogGammaPositive(double a) {
  double product = 1.0;
  while (a < 10.0) {  // Gamma(a) = Gamma(a + k) / (a (a+1) ... (a+k-1))
    product *= a;
    a += 1.0;
  }
  return (a - 0.5) * std::log(a) - a + kLog2Pi / 2 + StirlingCorrection(a) - std::log(product);
}

// log(1 + t) - t without cancellation near t = 0.
double Log1pMinusX(double t) {
  if (std::fabs(t) >= 0.5) return std::log1p(t) - t;
  double term = t, sum = 0.0;  // sum_{k>=2} (-1)^(k+1) t^k / k
  for (int k = 2; k < 200; ++k) {
    term *= -t;
    const double add = term / k;
    sum += add;
    if (std::fabs(add) <= 1e-17 * std::fabs(sum)) break;
  }
  return sum;
}

// log(x^a e^-x / Gamma(a)), in the Stirling form for large a so that a*log(x) and log Gamma(a)
// do not cancel.
double LogGammaPrefactor(double a, double x) {
  if (a < 10.0) return a * std::log(x) - x - LogGammaPositive(a);
  return a * Log1pMinusX((x - a) / a) + 0.5 * std::log(a) - kLog2Pi / 2 - StirlingCorrection(a);
}

}  // namespace

double KolmogorovSmirnovSf(int64_t n, double d) {
  if (n < 1 || std::isnan(d)) return kNaN;
  const double dn = static_cast<double>(n);
  if (d <= 0.5 / dn) return 1.0;  // below the support
  if (d >= 1.0) return 0.0;
  return Clip01(KolmogorovSfSelect(n, d));
}

core::Result<TestResult> KolmogorovSmirnov2(std::vector<double> a, std::vector<double> b) {
  if (a.empty() || b.empty()) {
    return core::Status::InvalidArgument("KolmogorovSmirnov2: samples must not be empty, got " +
                                         std::to_string(a.size()) + " and " +
                                         std::to_string(b.size()) + " values");
  }
  for (const auto* sample : {&a, &b}) {
    if (std::any_of(sample->begin(), sample->end(), [](double v) { return std::isnan(v); })) {
      return core::Status::InvalidArgument(std::string("KolmogorovSmirnov2: sample ") +
                                           (sample == &a ? "a" : "b") +
                                           " holds a NaN; expected numbers");
    }
  }
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return KolmogorovSmirnov2Sorted(a, b);
}

core::Result<TestResult> KolmogorovSmirnov2Sorted(const std::vector<double>& a,
                                                  const std::vector<double>& b) {
  if (a.empty() || b.empty()) {
    return core::Status::InvalidArgument("KolmogorovSmirnov2: samples must not be empty, got " +
                                         std::to_string(a.size()) + " and " +
                                         std::to_string(b.size()) + " values");
  }
  const size_t n1 = a.size(), n2 = b.size();
  const double dn1 = static_cast<double>(n1), dn2 = static_cast<double>(n2);
  // F_a - F_b just right of every distinct value (ties step together), kept exactly as the
  // integer n1*n2*(F_a - F_b): taking a value of `a` adds n2, one of `b` takes n1 away. The
  // merge takes one value per step and the difference counts only where the value changes (the
  // steps before, within a run of ties, are not points of either CDF), all without branches
  // that depend on the values: on varied samples the comparisons are a coin toss, and a
  // mispredicted branch per value used to cost more than the rest of the test.
  // The choices are made with masks rather than `?:`, which the compiler may turn back into
  // branches.
  const int64_t step_a = static_cast<int64_t>(n2), step_b = static_cast<int64_t>(n1);
  int64_t diff = 0;                  // n1*n2*(F_a - F_b) over the values taken so far
  int64_t max_diff = 0, min_diff = 0;  // both CDFs start and end level, so 0 is always reached
  double previous = std::numeric_limits<double>::quiet_NaN();  // equal to nothing
  const auto take = [&](double v, int64_t change) {
    // The values before v were a point of the CDFs: mask all ones, else all zeros.
    const int64_t at_point = -static_cast<int64_t>(v != previous);
    max_diff = std::max(max_diff, (diff & at_point) | (max_diff & ~at_point));
    min_diff = std::min(min_diff, (diff & at_point) | (min_diff & ~at_point));
    previous = v;
    diff += change;
  };
  size_t i = 0, j = 0;
  while (i < n1 && j < n2) {
    const double x = a[i], y = b[j];
    const uint64_t from_a = static_cast<uint64_t>(x <= y);  // 1 or 0
    const uint64_t mask = 0 - from_a;
    uint64_t xb = 0, yb = 0;
    std::memcpy(&xb, &x, sizeof(xb));
    std::memcpy(&yb, &y, sizeof(yb));
    const uint64_t vb = (xb & mask) | (yb & ~mask);
    double v = 0;
    std::memcpy(&v, &vb, sizeof(v));
    const auto fa = static_cast<int64_t>(from_a);
    take(v, fa * step_a - (1 - fa) * step_b);
    i += from_a;
    j += 1 - from_a;
  }
  for (; i < n1; ++i) take(a[i], step_a);
  for (; j < n2; ++j) take(b[j], -step_b);
  const int64_t d_scaled = std::max(max_diff, -min_diff);
  const double d = static_cast<double>(d_scaled) / (dn1 * dn2);

  const double m = std::max(dn1, dn2), n = std::min(dn1, dn2);
  const double en = RoundHalfEven(m * n / (m + n));
  if (en < 1.0) {
    return core::Status::InvalidArgument(
        "KolmogorovSmirnov2: the asymptotic p-value needs more than one value in at least one "
        "sample, got 1 and 1");
  }
  const double p = KolmogorovSmirnovSf(static_cast<int64_t>(en), d);
  return TestResult{d, Clip01(p)};
}

double RegularizedUpperGamma(double a, double x) {
  if (std::isnan(a) || std::isnan(x) || a <= 0.0 || x < 0.0) return kNaN;
  if (x == 0.0) return 1.0;
  if (std::isinf(x)) return 0.0;
  if (std::isinf(a)) return 1.0;
  constexpr double kEps = 1e-17;
  constexpr int kMaxIterations = 10000000;
  const double log_prefactor = LogGammaPrefactor(a, x);
  if (x < a + 1.0) {
    // P(a, x) = x^a e^-x / Gamma(a) * sum_k x^k / (a (a+1) ... (a+k)); Q = 1 - P.
    double ap = a, term = 1.0 / a, sum = term;
    for (int k = 0; k < kMaxIterations; ++k) {
      ap += 1.0;
      term *= x / ap;
      sum += term;
      if (std::fabs(term) < std::fabs(sum) * kEps) break;
    }
    return Clip01(1.0 - sum * std::exp(log_prefactor));
  }
  // Q(a, x) = x^a e^-x / Gamma(a) * 1/(x+1-a- 1(1-a)/(x+3-a- 2(2-a)/(x+5-a- ...))), modified
  // Lentz.
  constexpr double kTiny = 1e-300;
  double bk = x + 1.0 - a;
  double c = 1.0 / kTiny;
  double dk = 1.0 / bk;
  double h = dk;
  for (int k = 1; k < kMaxIterations; ++k) {
    const double an = -static_cast<double>(k) * (static_cast<double>(k) - a);
    bk += 2.0;
    dk = an * dk + bk;
    if (std::fabs(dk) < kTiny) dk = kTiny;
    c = bk + an / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    dk = 1.0 / dk;
    const double delta = dk * c;
    h *= delta;
    if (std::fabs(delta - 1.0) < kEps) break;
  }
  return Clip01(std::exp(log_prefactor) * h);
}

core::Result<TestResult> ChiSquaredHomogeneity(const std::vector<uint64_t>& reference_counts,
                                               const std::vector<uint64_t>& live_counts) {
  if (reference_counts.size() != live_counts.size() || reference_counts.empty()) {
    return core::Status::InvalidArgument(
        "ChiSquaredHomogeneity: expected two equally long, non-empty count vectors, got " +
        std::to_string(reference_counts.size()) + " reference and " +
        std::to_string(live_counts.size()) + " live categories");
  }
  std::vector<double> ref, live;  // categories seen in at least one row
  for (size_t i = 0; i < reference_counts.size(); ++i) {
    if (reference_counts[i] == 0 && live_counts[i] == 0) continue;
    ref.push_back(static_cast<double>(reference_counts[i]));
    live.push_back(static_cast<double>(live_counts[i]));
  }
  double ref_total = 0.0, live_total = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    ref_total += ref[i];
    live_total += live[i];
  }
  if (ref_total == 0.0 || live_total == 0.0) {
    return core::Status::InvalidArgument(
        std::string("ChiSquaredHomogeneity: the ") + (ref_total == 0.0 ? "reference" : "live") +
        " counts sum to 0; expected at least one observation in each row");
  }
  if (ref.size() == 1) return TestResult{0.0, 1.0};
  const double total = ref_total + live_total;
  double statistic = 0.0;
  for (const auto& [row, row_total] : {std::pair{&ref, ref_total}, std::pair{&live, live_total}}) {
    for (size_t i = 0; i < ref.size(); ++i) {
      const double expected = row_total * (ref[i] + live[i]) / total;
      const double diff = (*row)[i] - expected;
      statistic += diff * diff / expected;
    }
  }
  const double dof = static_cast<double>(ref.size() - 1);
  return TestResult{statistic, RegularizedUpperGamma(dof / 2.0, statistic / 2.0)};
}

core::Result<double> PopulationStabilityIndex(const std::vector<double>& expected_share,
                                              const std::vector<double>& actual_share,
                                              double epsilon) {
  if (expected_share.size() != actual_share.size() || expected_share.empty()) {
    return core::Status::InvalidArgument(
        "PopulationStabilityIndex: expected two equally long, non-empty share vectors, got " +
        std::to_string(expected_share.size()) + " expected and " +
        std::to_string(actual_share.size()) + " actual");
  }
  if (!(epsilon > 0.0) || !std::isfinite(epsilon)) {
    return core::Status::InvalidArgument(
        "PopulationStabilityIndex: epsilon must be a positive finite number, got " +
        std::to_string(epsilon));
  }
  double psi = 0.0;
  for (size_t i = 0; i < expected_share.size(); ++i) {
    const double e = expected_share[i], a = actual_share[i];
    if (!std::isfinite(e) || !std::isfinite(a) || e < 0.0 || a < 0.0) {
      return core::Status::InvalidArgument(
          "PopulationStabilityIndex: shares must be finite and non-negative, got expected " +
          std::to_string(e) + " and actual " + std::to_string(a) + " at bin " + std::to_string(i));
    }
    const double ef = std::max(e, epsilon), af = std::max(a, epsilon);
    psi += (af - ef) * std::log(af / ef);
  }
  return psi;
}

core::Result<std::vector<double>> QuantileEdges(std::vector<double> reference, size_t bins) {
  if (bins == 0 || reference.empty()) {
    return core::Status::InvalidArgument(
        "QuantileEdges: expected at least one bin and one reference value, got " +
        std::to_string(bins) + " bins and " + std::to_string(reference.size()) + " values");
  }
  if (std::any_of(reference.begin(), reference.end(), [](double v) { return !std::isfinite(v); })) {
    return core::Status::InvalidArgument(
        "QuantileEdges: reference values must be finite; got a NaN or an infinity");
  }
  std::sort(reference.begin(), reference.end());
  const size_t n = reference.size();
  std::vector<double> edges;
  for (size_t i = 1; i < bins; ++i) {
    const double q = static_cast<double>(i) / static_cast<double>(bins);
    const double index = static_cast<double>(n - 1) * q;
    const size_t lo = std::min(static_cast<size_t>(std::floor(index)), n - 1);
    const size_t hi = std::min(lo + 1, n - 1);
    const double t = index - static_cast<double>(lo);
    const double x0 = reference[lo], x1 = reference[hi];
    const double diff = x1 - x0;  // numpy's _lerp, exact at both ends
    const double edge = t >= 0.5 ? x1 - diff * (1 - t) : x0 + diff * t;
    if (edges.empty() || edge > edges.back()) edges.push_back(edge);
  }
  return edges;
}

namespace {

// A double's bits, turned so that unsigned order is numeric order: negatives have every bit
// flipped (larger magnitude, smaller key), non-negatives only the sign bit.
uint64_t SortKey(double v) {
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(bits));
  return (bits >> 63) != 0 ? ~bits : bits | (uint64_t{1} << 63);
}

double FromSortKey(uint64_t key) {
  const uint64_t bits = (key >> 63) != 0 ? key & ~(uint64_t{1} << 63) : ~key;
  double v = 0;
  std::memcpy(&v, &bits, sizeof(v));
  return v;
}

}  // namespace

void SortNumbers(std::vector<double>& values, std::vector<uint64_t>& scratch) {
  const size_t n = values.size();
  constexpr size_t kRadixFrom = 256;  // below this, the histograms cost more than they save
  if (n < kRadixFrom || n > std::numeric_limits<uint32_t>::max()) {
    std::sort(values.begin(), values.end());
    return;
  }
  scratch.resize(2 * n);
  uint64_t* from = scratch.data();
  uint64_t* to = from + n;
  // One read of the values counts all eight bytes.
  std::array<std::array<uint32_t, 256>, 8> counts{};
  for (size_t i = 0; i < n; ++i) {
    const uint64_t key = SortKey(values[i]);
    from[i] = key;
    for (size_t b = 0; b < 8; ++b) ++counts[b][(key >> (8 * b)) & 0xff];
  }
  for (size_t b = 0; b < 8; ++b) {
    auto& count = counts[b];
    const unsigned shift = static_cast<unsigned>(8 * b);
    if (count[(from[0] >> shift) & 0xff] == n) continue;  // every value has this byte
    uint32_t start = 0;
    for (auto& c : count) {
      const uint32_t here = c;
      c = start;
      start += here;
    }
    for (size_t i = 0; i < n; ++i) to[count[(from[i] >> shift) & 0xff]++] = from[i];
    std::swap(from, to);
  }
  for (size_t i = 0; i < n; ++i) values[i] = FromSortKey(from[i]);
}

core::Result<std::vector<uint64_t>> BinCounts(const std::vector<double>& values,
                                              const std::vector<double>& edges) {
  for (size_t i = 0; i < edges.size(); ++i) {
    if (std::isnan(edges[i]) || (i > 0 && !(edges[i] > edges[i - 1]))) {
      return core::Status::InvalidArgument(
          "BinCounts: edges must be strictly increasing numbers; edge " + std::to_string(i) +
          " is " + std::to_string(edges[i]));
    }
  }
  std::vector<uint64_t> counts(edges.size() + 1, 0);
  for (double v : values) {
    if (std::isnan(v)) {
      return core::Status::InvalidArgument("BinCounts: values must be numbers; got a NaN");
    }
    ++counts[std::lower_bound(edges.begin(), edges.end(), v) - edges.begin()];
  }
  return counts;
}

std::vector<double> CountShares(const std::vector<uint64_t>& counts) {
  double total = 0.0;
  for (uint64_t c : counts) total += static_cast<double>(c);
  std::vector<double> shares(counts.size(), 0.0);
  if (total == 0.0) return shares;
  for (size_t i = 0; i < counts.size(); ++i) shares[i] = static_cast<double>(counts[i]) / total;
  return shares;
}

core::Result<std::unique_ptr<StreamingWindow>> StreamingWindow::Create(Options options) {
  if (options.capacity == 0) {
    return core::Status::InvalidArgument("StreamingWindow: capacity must be at least 1, got 0");
  }
  return std::unique_ptr<StreamingWindow>(new StreamingWindow(options.capacity));
}

void StreamingWindow::Add(double value) {
  buffer_[next_] = value;
  next_ = (next_ + 1) % buffer_.size();
  if (size_ < buffer_.size()) ++size_;
}

std::vector<double> StreamingWindow::Values() const {
  std::vector<double> out;
  out.reserve(size_);
  const size_t start = (next_ + buffer_.size() - size_) % buffer_.size();
  for (size_t k = 0; k < size_; ++k) out.push_back(buffer_[(start + k) % buffer_.size()]);
  return out;
}

void StreamingWindow::Clear() {
  next_ = 0;
  size_ = 0;
}

}  // namespace slipway::monitoring
