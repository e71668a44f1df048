// drift_stats_cli: a test driver for slipway/monitoring/drift_stats. Reads one JSON object per
// line from stdin and writes one JSON object per line to stdout, so a script can compare the
// results with a reference implementation (tests/integration/test_drift_stats.py uses SciPy).
//
//   {"test":"ks","a":[...],"b":[...]}                -> {"statistic":D,"p_value":p}
//   {"test":"chi2","ref":[counts],"live":[counts]}   -> {"statistic":X2,"p_value":p}
//   {"test":"psi","expected":[...],"actual":[...]}   -> {"psi":v}   ("epsilon" optional)
//   {"test":"kstwo","n":N,"d":D}                     -> {"p_value":Pr(D_N >= D)}
//   {"test":"gammaq","a":A,"x":X}                    -> {"q":Q(A,X)}
//   {"test":"edges","reference":[...],"bins":K,"values":[...]}
//                                                    -> {"edges":[...],"counts":[...]}
// A line that cannot be parsed or computed gets {"error":"..."}; the program goes on.
// Numbers are printed with %.17g (round-trip exact); a non-finite result prints as null.
// Single-threaded; exits 0 at end of input.
#include <simdjson.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "slipway/core/status.h"
#include "slipway/monitoring/drift_stats.h"

namespace {

namespace monitoring = slipway::monitoring;
using slipway::core::Result;
using slipway::core::Status;

std::string Number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

Result<std::vector<double>> Doubles(simdjson::dom::element doc, const char* key) {
  simdjson::dom::array array;
  if (doc[key].get_array().get(array)) {
    return Status::InvalidArgument(std::string("field '") + key + "' must be an array");
  }
  std::vector<double> out;
  for (simdjson::dom::element e : array) {
    double v;
    if (e.get_double().get(v)) {
      return Status::InvalidArgument(std::string("field '") + key + "' must hold numbers");
    }
    out.push_back(v);
  }
  return out;
}

Result<std::vector<uint64_t>> Counts(simdjson::dom::element doc, const char* key) {
  simdjson::dom::array array;
  if (doc[key].get_array().get(array)) {
    return Status::InvalidArgument(std::string("field '") + key + "' must be an array");
  }
  std::vector<uint64_t> out;
  for (simdjson::dom::element e : array) {
    uint64_t v;
    if (e.get_uint64().get(v)) {
      return Status::InvalidArgument(std::string("field '") + key +
                                     "' must hold non-negative integers");
    }
    out.push_back(v);
  }
  return out;
}

Result<double> Scalar(simdjson::dom::element doc, const char* key) {
  double v;
  if (doc[key].get_double().get(v)) {
    return Status::InvalidArgument(std::string("field '") + key + "' must be a number");
  }
  return v;
}

std::string Array(const std::vector<double>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) out += (i ? "," : "") + Number(values[i]);
  return out + "]";
}

std::string TestJson(const monitoring::TestResult& r) {
  return "{\"statistic\":" + Number(r.statistic) + ",\"p_value\":" + Number(r.p_value) + "}";
}

Result<std::string> Handle(simdjson::dom::element doc) {
  std::string_view test;
  if (doc["test"].get_string().get(test)) {
    return Status::InvalidArgument("field 'test' must be a string");
  }
  if (test == "ks") {
    ASSIGN_OR_RETURN(std::vector<double> a, Doubles(doc, "a"));
    ASSIGN_OR_RETURN(std::vector<double> b, Doubles(doc, "b"));
    ASSIGN_OR_RETURN(monitoring::TestResult r,
                     monitoring::KolmogorovSmirnov2(std::move(a), std::move(b)));
    return TestJson(r);
  }
  if (test == "chi2") {
    ASSIGN_OR_RETURN(std::vector<uint64_t> ref, Counts(doc, "ref"));
    ASSIGN_OR_RETURN(std::vector<uint64_t> live, Counts(doc, "live"));
    ASSIGN_OR_RETURN(monitoring::TestResult r, monitoring::ChiSquaredHomogeneity(ref, live));
    return TestJson(r);
  }
  if (test == "psi") {
    ASSIGN_OR_RETURN(std::vector<double> expected, Doubles(doc, "expected"));
    ASSIGN_OR_RETURN(std::vector<double> actual, Doubles(doc, "actual"));
    double epsilon = 1e-4;
    if (doc["epsilon"].error() == simdjson::SUCCESS) {
      ASSIGN_OR_RETURN(epsilon, Scalar(doc, "epsilon"));
    }
    ASSIGN_OR_RETURN(double psi, monitoring::PopulationStabilityIndex(expected, actual, epsilon));
    return "{\"psi\":" + Number(psi) + "}";
  }
  if (test == "kstwo") {
    int64_t n;
    if (doc["n"].get_int64().get(n)) return Status::InvalidArgument("field 'n' must be an integer");
    ASSIGN_OR_RETURN(double d, Scalar(doc, "d"));
    return "{\"p_value\":" + Number(monitoring::KolmogorovSmirnovSf(n, d)) + "}";
  }
  if (test == "gammaq") {
    ASSIGN_OR_RETURN(double a, Scalar(doc, "a"));
    ASSIGN_OR_RETURN(double x, Scalar(doc, "x"));
    return "{\"q\":" + Number(monitoring::RegularizedUpperGamma(a, x)) + "}";
  }
  if (test == "edges") {
    ASSIGN_OR_RETURN(std::vector<double> reference, Doubles(doc, "reference"));
    ASSIGN_OR_RETURN(std::vector<double> values, Doubles(doc, "values"));
    uint64_t bins;
    if (doc["bins"].get_uint64().get(bins)) {
      return Status::InvalidArgument("field 'bins' must be a non-negative integer");
    }
    ASSIGN_OR_RETURN(std::vector<double> edges,
                     monitoring::QuantileEdges(std::move(reference), bins));
    ASSIGN_OR_RETURN(std::vector<uint64_t> counts, monitoring::BinCounts(values, edges));
    std::string out = "{\"edges\":" + Array(edges) + ",\"counts\":[";
    for (size_t i = 0; i < counts.size(); ++i) out += (i ? "," : "") + std::to_string(counts[i]);
    return out + "]}";
  }
  return Status::InvalidArgument("unknown test '" + std::string(test) +
                                 "'; expected ks, chi2, psi, kstwo, gammaq or edges");
}

}  // namespace

int main() {
  simdjson::dom::parser parser;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    simdjson::dom::element doc;
    std::string reply;
    if (auto error = parser.parse(line).get(doc)) {
      reply =
          "{\"error\":" + Quote(std::string("invalid JSON: ") + simdjson::error_message(error)) +
          "}";
    } else {
      Result<std::string> result = Handle(doc);
      reply =
          result.ok() ? result.value() : "{\"error\":" + Quote(result.status().ToString()) + "}";
    }
    std::fwrite(reply.data(), 1, reply.size(), stdout);
    std::fputc('\n', stdout);
  }
  std::fflush(stdout);
  return 0;
}
