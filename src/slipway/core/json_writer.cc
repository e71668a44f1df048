#include "slipway/core/json_writer.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <cmath>

namespace slipway::core {

void JsonWriter::BeforeValue() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!has_items_.empty()) {
    if (has_items_.back()) out_.push_back(',');
    has_items_.back() = true;
  }
}

void JsonWriter::Open(char c) {
  BeforeValue();
  out_.push_back(c);
  has_items_.push_back(false);
}

void JsonWriter::Close(char c) {
  out_.push_back(c);
  has_items_.pop_back();
}

void JsonWriter::Key(std::string_view key) {
  BeforeValue();
  AppendEscaped(key);
  out_.push_back(':');
  after_key_ = true;
}

void JsonWriter::String(std::string_view value) {
  BeforeValue();
  AppendEscaped(value);
}

void AppendJsonString(std::string& out, std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  // Most strings need no escaping: one pass without early exit (which vectorises) tells.
  bool plain = true;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    plain &= (c >= 0x20) & (c != '"') & (c != '\\');
  }
  if (plain) {
    const size_t at = out.size();
    out.resize(at + s.size() + 2);
    char* p = out.data() + at;
    *p = '"';
    if (!s.empty()) std::memcpy(p + 1, s.data(), s.size());
    p[s.size() + 1] = '"';
    return;
  }
  out.push_back('"');
  // Runs of characters that need no escaping (nearly all of them) are appended whole.
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        out += "\\u00";
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xf]);
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

void JsonWriter::AppendEscaped(std::string_view s) { AppendJsonString(out_, s); }

void AppendJsonInt(std::string& out, int64_t value) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), value);
  out.append(buf, r.ptr);
}

void JsonWriter::Int(int64_t value) {
  BeforeValue();
  AppendJsonInt(out_, value);
}

void JsonWriter::Uint(uint64_t value) {
  BeforeValue();
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), value);
  out_.append(buf, r.ptr);
}

void JsonWriter::Double(double value) {
  BeforeValue();
  if (std::isnan(value)) {
    out_ += "NaN";
  } else if (std::isinf(value)) {
    out_ += value > 0 ? "Infinity" : "-Infinity";
  } else {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof(buf), value);
    out_.append(buf, r.ptr);
  }
}

void AppendJsonScaled(std::string& out, int64_t value, int decimals) {
  decimals = std::clamp(decimals, 0, 9);
  if (value < 0) out.push_back('-');
  uint64_t magnitude = value < 0 ? 0 - static_cast<uint64_t>(value) : static_cast<uint64_t>(value);
  uint64_t unit = 1;
  for (int i = 0; i < decimals; ++i) unit *= 10;
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), magnitude / unit);
  out.append(buf, r.ptr);
  if (decimals == 0) return;
  out.push_back('.');
  uint64_t frac = magnitude % unit;
  char digits[9];
  for (int i = decimals - 1; i >= 0; --i, frac /= 10) digits[i] = static_cast<char>('0' + frac % 10);
  out.append(digits, static_cast<size_t>(decimals));
}

void JsonWriter::Scaled(int64_t value, int decimals) {
  BeforeValue();
  AppendJsonScaled(out_, value, decimals);
}

void JsonWriter::Float(float value) {
  BeforeValue();
  if (std::isnan(value)) {
    out_ += "NaN";
  } else if (std::isinf(value)) {
    out_ += value > 0 ? "Infinity" : "-Infinity";
  } else {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof(buf), value);
    out_.append(buf, r.ptr);
  }
}

void JsonWriter::Bool(bool value) {
  BeforeValue();
  out_ += value ? "true" : "false";
}

void JsonWriter::Null() {
  BeforeValue();
  out_ += "null";
}

}  // namespace slipway::core
