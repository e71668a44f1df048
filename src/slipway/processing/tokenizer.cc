#include "slipway/processing/tokenizer.h"

#include <unicode/locid.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace slipway::processing {

using core::Result;
using core::Status;

namespace {

constexpr int64_t kMaxWordChars = 100;

enum class CharClass { kWhitespace, kControl, kPunctuation, kWord };

CharClass Classify(UChar32 c) {
  if (c == '\t' || c == '\n' || c == '\r') return CharClass::kWhitespace;
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
      (c >= 123 && c <= 126)) {
    return CharClass::kPunctuation;
  }
  switch (u_charType(c)) {
    case U_SPACE_SEPARATOR:
    case U_LINE_SEPARATOR:
    case U_PARAGRAPH_SEPARATOR:
      return CharClass::kWhitespace;
    case U_CONTROL_CHAR:
    case U_FORMAT_CHAR:
    case U_SURROGATE:
    case U_PRIVATE_USE_CHAR:
    case U_UNASSIGNED:
      return CharClass::kControl;
    case U_DASH_PUNCTUATION:
    case U_START_PUNCTUATION:
    case U_END_PUNCTUATION:
    case U_CONNECTOR_PUNCTUATION:
    case U_OTHER_PUNCTUATION:
    case U_INITIAL_PUNCTUATION:
    case U_FINAL_PUNCTUATION:
      return CharClass::kPunctuation;
    default:
      return CharClass::kWord;
  }
}

void AppendUtf8(std::string& out, UChar32 c) {
  char buf[U8_MAX_LENGTH];
  int32_t n = 0;
  UBool error = false;
  U8_APPEND(buf, n, U8_MAX_LENGTH, c, error);
  if (!error) out.append(buf, static_cast<size_t>(n));
}

// Calls fn(code point) for each code point of UTF-8 text; invalid bytes read as U+FFFD.
template <typename Fn>
void ForEachCodePoint(std::string_view utf8, Fn&& fn) {
  const auto* s = reinterpret_cast<const uint8_t*>(utf8.data());
  const int32_t length = static_cast<int32_t>(utf8.size());
  int32_t i = 0;
  while (i < length) {
    UChar32 c = 0;
    U8_NEXT(s, i, length, c);
    fn(c < 0 ? 0xFFFD : c);
  }
}

}  // namespace

Result<std::unique_ptr<const Tokenizer>> Tokenizer::Create(const core::TokenizerConfig& config,
                                                           std::string_view vocab_text) {
  std::unique_ptr<Tokenizer> t(new Tokenizer(config));
  size_t pos = 0;
  int64_t id = 0;
  while (pos < vocab_text.size()) {
    size_t end = vocab_text.find('\n', pos);
    if (end == std::string_view::npos) end = vocab_text.size();
    std::string_view token = vocab_text.substr(pos, end - pos);
    if (!token.empty() && token.back() == '\r') token.remove_suffix(1);
    t->whole_.emplace(std::string(token), id);
    if (token.substr(0, 2) == "##") {
      t->wordpiece_ = true;
      t->continuations_.emplace(std::string(token.substr(2)), id);
    }
    ++id;
    pos = end + 1;
  }
  t->vocab_size_ = static_cast<size_t>(id);
  auto special = [&](const char* key, const std::string& token, int64_t* out) -> Status {
    if (token.empty()) return Status::Ok();
    auto it = t->whole_.find(token);
    if (it == t->whole_.end()) {
      return Status::InvalidArgument(std::string(key) + " '" + token +
                                     "' is not in the vocabulary");
    }
    *out = it->second;
    return Status::Ok();
  };
  RETURN_IF_ERROR(special("pad_token", config.pad_token, &t->pad_id_));
  RETURN_IF_ERROR(special("unk_token", config.unk_token, &t->unk_id_));
  RETURN_IF_ERROR(special("cls_token", config.cls_token, &t->cls_id_));
  RETURN_IF_ERROR(special("sep_token", config.sep_token, &t->sep_id_));
  if (config.pad_token.empty() || config.unk_token.empty()) {
    return Status::InvalidArgument("pad_token and unk_token must be set");
  }
  const int64_t specials = (t->cls_id_ >= 0 ? 1 : 0) + (t->sep_id_ >= 0 ? 1 : 0);
  if (config.max_length <= specials) {
    return Status::InvalidArgument("max_length " + std::to_string(config.max_length) +
                                   " leaves no room besides the special tokens");
  }
  return std::unique_ptr<const Tokenizer>(std::move(t));
}

Result<std::unique_ptr<const Tokenizer>> Tokenizer::FromFile(const core::TokenizerConfig& config,
                                                             const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot read the vocabulary '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  auto t = Create(config, text.str());
  if (!t.ok()) return Status::InvalidArgument("vocabulary '" + path + "': " + t.status().message());
  return t;
}

std::vector<std::string> Tokenizer::BasicTokens(std::string_view text) const {
  icu::UnicodeString u = icu::UnicodeString::fromUTF8(
      icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  if (config_.lowercase) u.toLower(icu::Locale::getRoot());
  std::vector<std::string> words;
  std::string word;
  auto flush = [&] {
    if (!word.empty()) words.push_back(std::move(word));
    word.clear();
  };
  for (int32_t i = 0; i < u.length();) {
    const UChar32 c = u.char32At(i);
    i += U16_LENGTH(c);
    switch (Classify(c)) {
      case CharClass::kWhitespace:
        flush();
        break;
      case CharClass::kControl:
        break;
      case CharClass::kPunctuation:
        flush();
        AppendUtf8(word, c);
        flush();
        break;
      case CharClass::kWord:
        AppendUtf8(word, c);
        break;
    }
  }
  flush();
  return words;
}

int64_t Tokenizer::Find(const Vocab& vocab, std::string_view token) const {
  auto it = vocab.find(token);
  return it == vocab.end() ? -1 : it->second;
}

void Tokenizer::WordPiece(const std::string& word, std::vector<int64_t>* out) const {
  if (!has_wordpiece()) {
    const int64_t id = Find(whole_, word);
    out->push_back(id >= 0 ? id : unk_id_);
    return;
  }
  // Byte offsets of the code point boundaries.
  std::vector<size_t> bounds;
  bounds.reserve(word.size() + 1);
  {
    const auto* s = reinterpret_cast<const uint8_t*>(word.data());
    const int32_t length = static_cast<int32_t>(word.size());
    int32_t i = 0;
    while (i < length) {
      bounds.push_back(static_cast<size_t>(i));
      UChar32 c = 0;
      U8_NEXT(s, i, length, c);
    }
    bounds.push_back(word.size());
  }
  const size_t chars = bounds.size() - 1;
  if (static_cast<int64_t>(chars) > kMaxWordChars) {
    out->push_back(unk_id_);
    return;
  }
  const size_t first = out->size();
  size_t start = 0;
  while (start < chars) {
    int64_t found = -1;
    size_t end = chars;
    for (; end > start; --end) {
      const std::string_view piece(word.data() + bounds[start], bounds[end] - bounds[start]);
      found = Find(start == 0 ? whole_ : continuations_, piece);
      if (found >= 0) break;
    }
    if (found < 0) {
      out->resize(first);
      out->push_back(unk_id_);
      return;
    }
    out->push_back(found);
    start = end;
  }
}

std::vector<int64_t> Tokenizer::Tokenize(std::string_view text) const {
  std::vector<int64_t> ids;
  for (const std::string& word : BasicTokens(text)) WordPiece(word, &ids);
  return ids;
}

int64_t Tokenizer::Encode(std::string_view text, int64_t* ids, int64_t* mask) const {
  const std::vector<int64_t> pieces = Tokenize(text);
  const int64_t n = config_.max_length;
  const int64_t room = n - (cls_id_ >= 0 ? 1 : 0) - (sep_id_ >= 0 ? 1 : 0);
  int64_t k = 0;
  if (cls_id_ >= 0) ids[k++] = cls_id_;
  const int64_t take = std::min<int64_t>(room, static_cast<int64_t>(pieces.size()));
  for (int64_t i = 0; i < take; ++i) ids[k++] = pieces[static_cast<size_t>(i)];
  if (sep_id_ >= 0) ids[k++] = sep_id_;
  const int64_t used = k;
  while (k < n) ids[k++] = pad_id_;
  if (mask != nullptr) {
    for (int64_t i = 0; i < n; ++i) mask[i] = i < used ? 1 : 0;
  }
  return used;
}

int64_t Tokenizer::CodePoints(std::string_view utf8) {
  int64_t n = 0;
  for (char ch : utf8) n += (static_cast<unsigned char>(ch) & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

bool Tokenizer::IsBlank(std::string_view utf8) {
  bool blank = true;
  ForEachCodePoint(utf8, [&](UChar32 c) {
    const CharClass k = Classify(c);
    if (k != CharClass::kWhitespace && k != CharClass::kControl) blank = false;
  });
  return blank;
}

}  // namespace slipway::processing
