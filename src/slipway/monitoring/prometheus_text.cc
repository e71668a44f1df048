#include "slipway/monitoring/prometheus_text.h"

#include <cassert>
#include <charconv>
#include <cmath>

namespace slipway::monitoring {

namespace {

constexpr double kMaxExactInteger = 9007199254740992.0;  // 2^53

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Appends `value` with backslash and newline escaped, and double quote too when `quote` is set.
void AppendEscaped(std::string& out, std::string_view value, bool quote) {
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '"':
        if (quote) {
          out += "\\\"";
        } else {
          out += c;
        }
        break;
      default: out += c;
    }
  }
}

void AppendValue(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
    return;
  }
  if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buf[64];
  std::to_chars_result r;
  if (std::trunc(value) == value && std::fabs(value) <= kMaxExactInteger) {
    r = std::to_chars(buf, buf + sizeof(buf), static_cast<int64_t>(value));
  } else if (std::fabs(value) > kMaxExactInteger) {
    // Shortest round-trip digits; fixed notation would spell out every integer digit.
    r = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific);
  } else {
    r = std::to_chars(buf, buf + sizeof(buf), value);  // shortest round-trip, fixed or scientific
  }
  assert(r.ec == std::errc());
  out.append(buf, r.ptr);
}

}  // namespace

void PrometheusText::Family(std::string_view name, std::string_view type, std::string_view help) {
  if (!families_.emplace(name).second) return;
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  AppendEscaped(out_, help, /*quote=*/false);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void PrometheusText::Sample(std::string_view name, const Labels& labels, double value) {
  out_ += name;
  WriteLabels(labels, {});
  WriteValue(value);
}

void PrometheusText::Histogram(std::string_view name, const Labels& labels,
                               const std::vector<double>& upper_bounds,
                               const std::vector<uint64_t>& bucket_counts, double sum) {
  assert(bucket_counts.size() == upper_bounds.size() + 1 && "one count per bound plus overflow");
  // Tolerate a mismatch in release builds: missing counts are zero, extra ones go to +Inf.
  uint64_t cumulative = 0;
  std::string le;
  for (size_t i = 0; i < upper_bounds.size(); ++i) {
    if (i < bucket_counts.size()) cumulative += bucket_counts[i];
    le.clear();
    AppendValue(le, upper_bounds[i]);
    out_ += name;
    out_ += "_bucket";
    WriteLabels(labels, le);
    WriteValue(static_cast<double>(cumulative));
  }
  for (size_t i = upper_bounds.size(); i < bucket_counts.size(); ++i)
    cumulative += bucket_counts[i];
  out_ += name;
  out_ += "_bucket";
  WriteLabels(labels, "+Inf");
  WriteValue(static_cast<double>(cumulative));

  out_ += name;
  out_ += "_sum";
  WriteLabels(labels, {});
  WriteValue(sum);
  out_ += name;
  out_ += "_count";
  WriteLabels(labels, {});
  WriteValue(static_cast<double>(cumulative));
}

std::string PrometheusText::Take() {
  std::string text = std::move(out_);
  out_.clear();
  families_.clear();
  return text;
}

std::string PrometheusText::FormatValue(double value) {
  std::string s;
  AppendValue(s, value);
  return s;
}

bool PrometheusText::ValidMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (!(IsAlpha(c) || c == '_' || c == ':' || (i > 0 && IsDigit(c)))) return false;
  }
  return true;
}

bool PrometheusText::ValidLabelName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (!(IsAlpha(c) || c == '_' || (i > 0 && IsDigit(c)))) return false;
  }
  return true;
}

// Writes `{l1="v1",...,le="<le>"}`; nothing when there are no labels and `le` is empty.
void PrometheusText::WriteLabels(const Labels& labels, std::string_view le) {
  if (labels.empty() && le.empty()) return;
  out_ += '{';
  bool first = true;
  for (const auto& [label, value] : labels) {
    if (!first) out_ += ',';
    first = false;
    out_ += label;
    out_ += "=\"";
    AppendEscaped(out_, value, /*quote=*/true);
    out_ += '"';
  }
  if (!le.empty()) {
    if (!first) out_ += ',';
    out_ += "le=\"";
    out_ += le;
    out_ += '"';
  }
  out_ += '}';
}

void PrometheusText::WriteValue(double value) {
  out_ += ' ';
  AppendValue(out_, value);
  out_ += '\n';
}

}  // namespace slipway::monitoring
