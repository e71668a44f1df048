// PrometheusText: builds one scrape response in the Prometheus text exposition format 0.0.4
// (Content-Type "text/plain; version=0.0.4; charset=utf-8").
//
// Usage: for each metric family call Family() once (later calls with the same name are ignored),
// then Sample() / Histogram() for each labelled series of that family; Take() hands the text over
// and resets the writer. Label values are escaped here, so they may come from untrusted input
// (model names, versions). Metric and label *names* are written as given: callers that build names
// from outside input check them first with ValidMetricName / ValidLabelName.
//
// Thread safety: none; one writer per scrape, used by one thread. Nothing here blocks or does I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

namespace slipway::monitoring {

// Label name/value pairs, written in the given order.
using Labels = std::vector<std::pair<std::string, std::string>>;

class PrometheusText {
 public:
  // Writes "# HELP name help" (help with backslash and newline escaped) and "# TYPE name type" the
  // first time `name` is seen; `type` is "counter", "gauge" or "histogram".
  void Family(std::string_view name, std::string_view type, std::string_view help);

  // Writes `name{l1="v1",...} value`, or `name value` when there are no labels.
  void Sample(std::string_view name, const Labels& labels, double value);

  // Writes cumulative `name_bucket{...,le="bound"}` lines, one per upper bound and a last one with
  // le="+Inf", then `name_sum` and `name_count`. `bucket_counts` holds the count of each bucket
  // (not cumulative) with one more entry than `upper_bounds`: the last is the overflow above the
  // largest bound. `upper_bounds` must be increasing.
  void Histogram(std::string_view name, const Labels& labels,
                 const std::vector<double>& upper_bounds,
                 const std::vector<uint64_t>& bucket_counts, double sum);

  // Returns the text written so far and resets the writer (families included).
  std::string Take();

  // Formats a sample value: integers up to 2^53 in magnitude without exponent or decimals, others
  // in the shortest form that reads back exactly (at most 17 significant digits); "+Inf", "-Inf",
  // "NaN" for the special values.
  static std::string FormatValue(double value);

  // [a-zA-Z_:][a-zA-Z0-9_:]*
  static bool ValidMetricName(std::string_view name);
  // [a-zA-Z_][a-zA-Z0-9_]*
  static bool ValidLabelName(std::string_view name);

 private:
  void WriteLabels(const Labels& labels, std::string_view le);
  void WriteValue(double value);

  std::string out_;
  std::unordered_set<std::string> families_;
};

}  // namespace slipway::monitoring
