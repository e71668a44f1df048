// JsonWriter: appends compact JSON to a string, with commas placed automatically.
//
// Numbers are written with std::to_chars (shortest round-trip form); non-finite floats are
// written as NaN, Infinity and -Infinity, which Python's json module and most clients accept.
// Thread safety: one writer per thread. Never blocks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace slipway::core {

class JsonWriter {
 public:
  void StartObject() { Open('{'); }
  void EndObject() { Close('}'); }
  void StartArray() { Open('['); }
  void EndArray() { Close(']'); }
  void Key(std::string_view key);
  void String(std::string_view value);
  void Int(int64_t value);
  void Uint(uint64_t value);
  void Double(double value);
  // value / 10^decimals written with exactly `decimals` digits after the point (0 <= decimals <= 9):
  // Scaled(412, 3) writes 0.412. Integer formatting only, so cheaper than Double.
  void Scaled(int64_t value, int decimals);
  void Float(float value);
  void Bool(bool value);
  void Null();

  std::string& str() { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  void Open(char c);
  void Close(char c);
  void BeforeValue();
  void AppendEscaped(std::string_view s);

  std::string out_;
  std::vector<bool> has_items_;  // one per open container
  bool after_key_ = false;
};

// Appends `s` to `out` as a quoted JSON string, escaped where needed (strings that need no
// escaping, nearly all of them, are appended whole): for JSON built from fixed pieces, such as a
// log line whose keys never change.
void AppendJsonString(std::string& out, std::string_view s);
// The same for numbers: what JsonWriter::Int and JsonWriter::Scaled write.
void AppendJsonInt(std::string& out, int64_t value);
void AppendJsonScaled(std::string& out, int64_t value, int decimals);

}  // namespace slipway::core
