// Tokenizer: turns text into a fixed-length row of vocabulary ids, BERT-style (basic tokenization
// then WordPiece), for a `predict:` text input.
//
// The exact rules, which tests/integration/tokenizer_reference.py mirrors in pure Python:
//
// Vocabulary: the file's lines split on "\n" (one trailing "\r" per line removed; no other
//   trimming); the id of a token is its 0-based line number; a token listed twice keeps its first
//   line. A final empty line after the last "\n" is not a token. The vocabulary "has WordPiece
//   pieces" when any token starts with "##".
// 1. Lowercase (when `lowercase`, the default): the whole text with ICU's full Unicode lowercase
//    mapping in the root locale (icu::UnicodeString::toLower(Locale::getRoot())), which matches
//    Python's str.lower(): "İ" -> "i̇" (two code points), "ẞ" -> "ß", final sigma in context.
//    Accents are kept (no NFD stripping) and CJK characters are not split apart.
// 2. Scan the code points in order:
//    - whitespace: "\t", "\n", "\r" and general categories Zs, Zl, Zp -> ends the current word;
//    - control: any other code point of general category C* (Cc, Cf, Cs, Co, Cn) -> dropped
//      (it neither ends nor joins a word: "a\u200bb" is one word "ab");
//    - punctuation: general category P* (Pc, Pd, Ps, Pe, Pi, Pf, Po) or ASCII 33-47, 58-64,
//      91-96, 123-126 -> ends the current word and is a word of its own;
//    - anything else (letters, marks, digits, symbols such as emoji) -> appended to the word.
// 3. Each word, in order:
//    - with WordPiece pieces: a word of more than 100 code points is the unk token; otherwise
//      greedy longest-match-first: from the start, the longest prefix (in code points) in the
//      vocabulary, then from there the longest "##"+substring in the vocabulary, and so on; if
//      some position has no match the whole word is one unk token;
//    - without: the word's id, or the unk token when the word is not in the vocabulary.
// 4. The row: [cls_token] + ids (cut to max_length minus the special tokens) + [sep_token],
//    then pad_token up to max_length. The mask is 1 for those before the padding, 0 after.
// General categories come from ICU (Unicode 15 for ICU 72); Python 3.11's unicodedata is
// Unicode 14, so code points first assigned in Unicode 15 may differ.
//
// Thread safety: immutable after Create; Encode may be called from any thread. Never blocks.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "slipway/core/predict_config.h"
#include "slipway/core/status.h"

namespace slipway::processing {

class Tokenizer {
 public:
  // `vocab_text` is the vocabulary file's content. InvalidArgument when a special token the
  // config names (pad, unk, cls, sep) is not in it.
  static core::Result<std::unique_ptr<const Tokenizer>> Create(const core::TokenizerConfig& config,
                                                               std::string_view vocab_text);
  // Reads the vocabulary from `path`.
  static core::Result<std::unique_ptr<const Tokenizer>> FromFile(const core::TokenizerConfig& config,
                                                                 const std::string& path);

  // Steps 1-2: the words of `text`.
  std::vector<std::string> BasicTokens(std::string_view text) const;
  // Steps 1-3: the ids of `text`, without special tokens, padding or truncation.
  std::vector<int64_t> Tokenize(std::string_view text) const;
  // Step 4: writes max_length() ids to `ids` (and the mask to `mask` when not null); returns the
  // number of positions before the padding.
  int64_t Encode(std::string_view text, int64_t* ids, int64_t* mask) const;

  int64_t max_length() const { return config_.max_length; }
  const core::TokenizerConfig& config() const { return config_; }
  bool has_wordpiece() const { return wordpiece_; }
  size_t vocab_size() const { return vocab_size_; }

  // Code points in UTF-8 text (what max_chars counts).
  static int64_t CodePoints(std::string_view utf8);
  // True when `utf8` holds nothing but whitespace and control characters (as step 2 defines them).
  static bool IsBlank(std::string_view utf8);

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  using Vocab = std::unordered_map<std::string, int64_t, Hash, std::equal_to<>>;

  explicit Tokenizer(core::TokenizerConfig config) : config_(std::move(config)) {}
  int64_t Find(const Vocab& vocab, std::string_view token) const;
  void WordPiece(const std::string& word, std::vector<int64_t>* out) const;

  core::TokenizerConfig config_;
  Vocab whole_;          // every token as written
  Vocab continuations_;  // tokens that start with "##", without the "##"
  size_t vocab_size_ = 0;
  bool wordpiece_ = false;
  int64_t pad_id_ = 0;
  int64_t unk_id_ = 0;
  int64_t cls_id_ = -1;
  int64_t sep_id_ = -1;
};

}  // namespace slipway::processing
