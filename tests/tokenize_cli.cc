// tokenize_cli: a test driver for slipway/processing/tokenizer. Reads one JSON string per line
// from stdin and writes one JSON object per line to stdout, so a script can compare the ids with
// a reference implementation (tests/integration/test_predict.py uses tokenizer_reference.py).
//
//   tokenize_cli --vocab FILE --max-length N [--no-lowercase] [--pad T] [--unk T] [--cls T]
//                [--sep T]
//   "some text"  ->  {"words":[...],"pieces":[...],"ids":[...],"mask":[...]}
//   (words: basic tokens; pieces: ids before specials, padding and truncation; ids and mask:
//   the encoded row)
// A line that is not a JSON string gets {"error":"..."}; the program goes on. Exits 2 on bad
// arguments or an unusable vocabulary, 0 at end of input. Single-threaded.
#include <simdjson.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "slipway/core/json_writer.h"
#include "slipway/processing/tokenizer.h"

namespace {

using slipway::core::JsonWriter;
using slipway::processing::Tokenizer;

int Usage() {
  std::fprintf(stderr,
               "usage: tokenize_cli --vocab FILE --max-length N [--no-lowercase] [--pad T] "
               "[--unk T] [--cls T] [--sep T] < lines of JSON strings\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  slipway::core::TokenizerConfig config;
  std::string vocab;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (arg == "--no-lowercase") {
      config.lowercase = false;
    } else if (arg == "--vocab" && (v = value())) {
      vocab = v;
    } else if (arg == "--max-length" && (v = value())) {
      config.max_length = std::atoll(v);
    } else if (arg == "--pad" && (v = value())) {
      config.pad_token = v;
    } else if (arg == "--unk" && (v = value())) {
      config.unk_token = v;
    } else if (arg == "--cls" && (v = value())) {
      config.cls_token = v;
    } else if (arg == "--sep" && (v = value())) {
      config.sep_token = v;
    } else {
      return Usage();
    }
  }
  if (vocab.empty() || config.max_length < 1) return Usage();
  auto tokenizer = Tokenizer::FromFile(config, vocab);
  if (!tokenizer.ok()) {
    std::fprintf(stderr, "tokenize_cli: %s\n", tokenizer.status().message().c_str());
    return 2;
  }
  simdjson::dom::parser parser;
  std::string line;
  std::vector<int64_t> ids(static_cast<size_t>(config.max_length));
  std::vector<int64_t> mask(ids.size());
  while (std::getline(std::cin, line)) {
    JsonWriter w;
    w.StartObject();
    std::string_view text;
    if (parser.parse(line).get_string().get(text) != simdjson::SUCCESS) {
      w.Key("error");
      w.String("each line must be one JSON string");
    } else {
      w.Key("words");
      w.StartArray();
      for (const auto& word : (*tokenizer)->BasicTokens(text)) w.String(word);
      w.EndArray();
      w.Key("pieces");
      w.StartArray();
      for (int64_t id : (*tokenizer)->Tokenize(text)) w.Int(id);
      w.EndArray();
      (*tokenizer)->Encode(text, ids.data(), mask.data());
      w.Key("ids");
      w.StartArray();
      for (int64_t id : ids) w.Int(id);
      w.EndArray();
      w.Key("mask");
      w.StartArray();
      for (int64_t m : mask) w.Int(m);
      w.EndArray();
      w.Key("blank");
      w.Bool(Tokenizer::IsBlank(text));
      w.Key("chars");
      w.Int(Tokenizer::CodePoints(text));
    }
    w.EndObject();
    std::cout << w.Take() << '\n';
  }
  return 0;
}
