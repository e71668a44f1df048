// POST /predict processing: the `predict:` config section (parsing errors name the key, checks
// against the model's tensors), the tokenizer, softmax / top-k / labels, standardize, and the
// Predictor's batching (lists split by the batch limit and re-joined in order), pipelines and
// default model, against a fake inference service.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include <unistd.h>

#include "slipway/processing/model_processor.h"
#include "slipway/processing/predictor.h"
#include "slipway/processing/tokenizer.h"
#include "slipway/repository/model_repository.h"
#include "support/fake_service.h"

namespace slipway::processing {
namespace {

using core::DataType;

// ---- config parsing -------------------------------------------------------------------------

core::Result<core::ModelConfig> Parse(const std::string& predict_section,
                                      const std::string& head = "") {
  return repository::ParseConfigYaml(head + "predict:\n" + predict_section, "m");
}

std::string ErrorOf(const std::string& predict_section) {
  auto c = Parse(predict_section);
  return c.ok() ? "(parsed)" : c.status().message();
}

TEST(PredictConfigYaml, ParsesTheWholeSchema) {
  auto c = Parse(R"(
  default: true
  inputs:
    - tensor: input_ids
      text: text
      tokenizer: {vocab: vocab.txt, lowercase: false, max_length: 16, pad_token: "<p>",
                  unk_token: "<u>", cls_token: "<c>", sep_token: "<s>", max_chars: 50}
      mask_tensor: attention_mask
    - tensor: features
      fields: [age, income]
      standardize: {mean: [40, 50000], std: [12, 20000]}
  outputs:
    - tensor: logits
      softmax: true
      labels: labels.txt
      label_field: sentiment
      score_field: confidence
      top_k: 2
    - tensor: raw
      values_field: null
  then:
    - model: second
      inputs: {x: logits}
)");
  ASSERT_TRUE(c.ok()) << c.status().message();
  const core::PredictConfig& p = c->predict;
  EXPECT_TRUE(p.enabled);
  EXPECT_TRUE(p.is_default);
  ASSERT_EQ(p.inputs.size(), 2u);
  EXPECT_EQ(p.inputs[0].tensor, "input_ids");
  EXPECT_EQ(p.inputs[0].text_field, "text");
  EXPECT_FALSE(p.inputs[0].tokenizer.lowercase);
  EXPECT_EQ(p.inputs[0].tokenizer.max_length, 16);
  EXPECT_EQ(p.inputs[0].tokenizer.pad_token, "<p>");
  EXPECT_EQ(p.inputs[0].tokenizer.cls_token, "<c>");
  EXPECT_EQ(p.inputs[0].tokenizer.max_chars, 50);
  EXPECT_EQ(p.inputs[0].mask_tensor, "attention_mask");
  EXPECT_EQ(p.inputs[1].fields, (std::vector<std::string>{"age", "income"}));
  EXPECT_EQ(p.inputs[1].stddev, (std::vector<double>{12, 20000}));
  ASSERT_EQ(p.outputs.size(), 2u);
  EXPECT_TRUE(p.outputs[0].softmax);
  EXPECT_EQ(p.outputs[0].top_k, 2);
  EXPECT_EQ(p.outputs[0].top_field, "top");  // the default name
  EXPECT_EQ(p.outputs[1].values_field, "raw");  // nothing asked for: values under the tensor name
  ASSERT_EQ(p.then.size(), 1u);
  EXPECT_EQ(p.then[0].model, "second");
  EXPECT_EQ(p.then[0].inputs[0], (std::pair<std::string, std::string>{"x", "logits"}));
}

TEST(PredictConfigYaml, DefaultsOfATextInput) {
  auto c = Parse("  inputs: [{tensor: ids, text: t, tokenizer: {vocab: v.txt, max_length: 8}}]\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  const auto& t = c->predict.inputs[0].tokenizer;
  EXPECT_TRUE(t.lowercase);
  EXPECT_EQ(t.pad_token, "[PAD]");
  EXPECT_EQ(t.unk_token, "[UNK]");
  EXPECT_EQ(t.cls_token, "");
  EXPECT_EQ(t.sep_token, "");
  EXPECT_EQ(t.max_chars, 10000);
  EXPECT_FALSE(c->predict.is_default);
}

TEST(PredictConfigYaml, RefusesMistakesNamingTheKey) {
  const std::string text_input = "  inputs: [{tensor: ids, text: t, tokenizer: {vocab: v.txt, max_length: 8";
  struct Case {
    std::string section;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"  inputz: []\n", "unknown key 'inputz'"},
      {"  default: maybe\n  inputs: [{tensor: x, fields: [a]}]\n", "default must be true or false"},
      {"  inputs: []\n", "inputs must be a non-empty list"},
      {"  inputs: [{fields: [a]}]\n", "tensor is required"},
      {"  inputs: [{tensor: x}]\n", "give text"},
      {"  inputs: [{tensor: x, text: t, fields: [a]}]\n", "not both"},
      {"  inputs: [{tensor: x, text: t}]\n", "needs a tokenizer"},
      {"  inputs: [{tensor: x, fields: [a], colour: red}]\n", "unknown key 'colour'"},
      {"  inputs: [{tensor: x, fields: a}]\n", "fields must be a non-empty list"},
      {"  inputs: [{tensor: x, fields: [a, a]}]\n", "names 'a' twice"},
      {"  inputs: [{tensor: x, fields: [a, b], standardize: {mean: [1], std: [1, 2]}}]\n",
       "mean must be a list of 2 numbers"},
      {"  inputs: [{tensor: x, fields: [a], standardize: {mean: [1], std: [0]}}]\n",
       "std[0] (field 'a') must be > 0"},
      {"  inputs: [{tensor: x, fields: [a], standardize: {mean: [one], std: [1]}}]\n",
       "mean[0] must be a finite number"},
      {"  inputs: [{tensor: x, fields: [a], tokenizer: {vocab: v, max_length: 2}}]\n",
       "tokenizer and mask_tensor go with text"},
      {"  inputs: [{tensor: x, text: t, standardize: {mean: [1], std: [1]}}]\n",
       "standardize goes with fields"},
      {text_input + ", colour: 1}}]\n", "tokenizer: unknown key 'colour'"},
      {text_input + "}, mask_tensor: ids}]\n", "mask_tensor must differ"},
      {"  inputs: [{tensor: ids, text: t, tokenizer: {max_length: 8}}]\n", "vocab is required"},
      {"  inputs: [{tensor: ids, text: t, tokenizer: {vocab: v.txt}}]\n", "max_length is required"},
      {"  inputs: [{tensor: ids, text: t, tokenizer: {vocab: v.txt, max_length: abc}}]\n",
       "max_length must be an integer"},
      {"  inputs: [{tensor: ids, text: t, tokenizer: {vocab: v.txt, max_length: 0}}]\n",
       "max_length must be an integer within 1.."},
      {"  inputs: [{tensor: ids, text: t, tokenizer: {vocab: v.txt, max_length: 2, cls_token: a, "
       "sep_token: b}}]\n",
       "leaves no room"},
      {text_input + ", lowercase: sometimes}}]\n", "lowercase must be true or false"},
      {text_input + ", max_chars: -1}}]\n", "max_chars must be an integer"},
      {text_input + ", pad_token: [a]}}]\n", "pad_token must be a non-empty string"},
      {"  inputs: [{tensor: ids, text: t, tokenizer: {vocab: ../v.txt, max_length: 8}}]\n",
       "vocab must be a path inside the model's folder"},
      {"  inputs: [{tensor: ids, text: t, tokenizer: {vocab: /etc/passwd, max_length: 8}}]\n",
       "vocab must be a path inside the model's folder"},
      {"  inputs: [{tensor: ids, text: t, tokenizer: {vocab: a/../../v, max_length: 8}}]\n",
       "inside the model's folder"},
      {"  inputs: [{tensor: x, fields: [a]}]\n  outputs: [{softmax: true}]\n", "tensor is required"},
      {"  inputs: [{tensor: x, fields: [a]}]\n  outputs: [{tensor: y, labels: ../l.txt}]\n",
       "labels must be a path inside"},
      {"  inputs: [{tensor: x, fields: [a]}]\n  outputs: [{tensor: y, top_field: t}]\n",
       "top_field 't' needs top_k > 0"},
      {"  inputs: [{tensor: x, fields: [a]}]\n  outputs: [{tensor: y, top_k: -1}]\n",
       "top_k must be an integer"},
      {"  inputs: [{tensor: x, fields: [a]}]\n  outputs: [{tensor: y, softmax: 2}]\n",
       "softmax must be true or false"},
      {"  inputs: [{tensor: x, fields: [a]}]\n  outputs: [{tensor: y, label_field: a}, "
       "{tensor: z, score_field: a}]\n",
       "answer field 'a' is used twice"},
      {"  inputs: [{tensor: x, fields: [a]}]\n  outputs: [{tensor: y, colour: 1}]\n",
       "outputs[0]: unknown key 'colour'"},
      {"  inputs: [{tensor: x, fields: [a]}]\n  outputs: {tensor: y}\n", "outputs must be a list"},
      {"  inputs: [{tensor: x, fields: [a]}]\n  then: [{inputs: {a: b}}]\n", "model is required"},
      {"  inputs: [{tensor: x, fields: [a]}]\n  then: [{model: n}]\n", "inputs must be a non-empty"},
      {"  inputs: [{tensor: x, fields: [a]}]\n  then: [{model: n, inputs: {a: b}, x: 1}]\n",
       "then[0]: unknown key 'x'"},
      {"  inputs: [{tensor: x, fields: [a]}]\n  then: []\n", "then must be a non-empty list"},
  };
  for (const auto& c : cases) {
    const std::string message = ErrorOf(c.section);
    EXPECT_NE(message.find(c.expected), std::string::npos)
        << "section:\n" << c.section << "\nmessage: " << message << "\nexpected: " << c.expected;
    EXPECT_NE(message.find("predict"), std::string::npos) << message;
  }
  EXPECT_NE(ErrorOf("").find("predict needs inputs"), std::string::npos) << ErrorOf("");
}

class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("slipway-processing-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  void Write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name, std::ios::binary) << text;
  }
  std::string path() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

// ---- checks against the model's tensors -----------------------------------------------------

const char* kTextModel = R"(max_batch_size: 8
inputs: [{name: input_ids, datatype: INT64, dims: [-1]}, {name: attention_mask, datatype: INT64, dims: [6]}]
outputs: [{name: logits, datatype: FP32, dims: [2]}]
)";

TEST(ValidatePredictConfig, ChecksTensorsTypesAndShapes) {
  const std::string text = "  inputs:\n    - {tensor: input_ids, text: text, mask_tensor: attention_mask, "
                           "tokenizer: {vocab: v.txt, max_length: 6}}\n";
  auto ok = Parse(text + "  outputs: [{tensor: logits, label_field: l}]\n", kTextModel);
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_TRUE(core::ValidateModelConfig(*ok).ok()) << core::ValidateModelConfig(*ok).message();

  auto message = [&](const std::string& section) {
    auto c = Parse(section, kTextModel);
    EXPECT_TRUE(c.ok()) << c.status().message();
    return core::ValidateModelConfig(*c).message();
  };
  EXPECT_NE(message("  inputs: [{tensor: input_ids, text: t, tokenizer: {vocab: v, max_length: 6}}]\n")
                .find("model input 'attention_mask' is not filled"),
            std::string::npos);
  EXPECT_NE(message("  inputs: [{tensor: nope, fields: [a]}]\n").find("has no input 'nope'"),
            std::string::npos);
  EXPECT_NE(message("  inputs:\n    - {tensor: input_ids, text: text, mask_tensor: attention_mask, "
                    "tokenizer: {vocab: v.txt, max_length: 7}}\n")
                .find("cannot hold 7 values"),
            std::string::npos);
  EXPECT_NE(message(text + "  outputs: [{tensor: probs}]\n").find("has no output 'probs'"),
            std::string::npos);
  auto floats = Parse("  inputs: [{tensor: x, text: t, tokenizer: {vocab: v, max_length: 4}}]\n",
                      "inputs: [{name: x, datatype: FP32, dims: [4]}]\n"
                      "outputs: [{name: y, datatype: FP32, dims: [1]}]\n");
  ASSERT_TRUE(floats.ok()) << floats.status().message();
  EXPECT_NE(core::ValidateModelConfig(*floats).message().find("a text input fills INT64 or INT32"),
            std::string::npos);
  // An output named by a pipeline is not checked against this model.
  auto piped = Parse(text + "  outputs: [{tensor: far_away}]\n  then: [{model: n, inputs: {a: logits}}]\n",
                     kTextModel);
  ASSERT_TRUE(piped.ok());
  EXPECT_TRUE(core::ValidateModelConfig(*piped).ok());
  // Files must exist when the model's folder is known, and name the special tokens.
  TempDir dir;
  dir.Write("v.txt", "[PAD]\r\nhi\r\n");
  auto vocab = *ok;
  vocab.directory = dir.path();
  EXPECT_NE(core::ValidateModelConfig(vocab).message().find("'[UNK]' is not in the vocabulary"),
            std::string::npos)
      << core::ValidateModelConfig(vocab).message();
  dir.Write("v.txt", "[PAD]\r\n[UNK]\r\n");
  EXPECT_TRUE(core::ValidateModelConfig(vocab).ok()) << core::ValidateModelConfig(vocab).message();
  auto in_folder = *ok;
  in_folder.directory = "/nonexistent-folder";
  EXPECT_NE(core::ValidateModelConfig(in_folder).message().find("'v.txt' is not a file"),
            std::string::npos);
}

TEST(PredictRowShape, DerivesTheVariableDimension) {
  core::TensorConfig t;
  t.name = "x";
  t.dims = {-1};
  EXPECT_EQ(core::PredictRowShape(t, 5).value(), (core::Shape{5}));
  t.dims = {1, -1};
  EXPECT_EQ(core::PredictRowShape(t, 5).value(), (core::Shape{1, 5}));
  t.dims = {5};
  EXPECT_EQ(core::PredictRowShape(t, 5).value(), (core::Shape{5}));
  EXPECT_FALSE(core::PredictRowShape(t, 4).ok());
  t.dims = {-1, -1};
  EXPECT_FALSE(core::PredictRowShape(t, 4).ok());
  t.dims = {2, -1};
  EXPECT_FALSE(core::PredictRowShape(t, 5).ok());
}

// ---- tokenizer ------------------------------------------------------------------------------

core::TokenizerConfig TokConfig(int64_t max_length) {
  core::TokenizerConfig c;
  c.max_length = max_length;
  return c;
}

TEST(Tokenizer, WholeWordsWithoutPieces) {
  auto t = Tokenizer::Create(TokConfig(6), "[PAD]\n[UNK]\nhello\n,\nworld\n!\n");
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_FALSE((*t)->has_wordpiece());
  EXPECT_EQ((*t)->BasicTokens("Hello,  WORLD!!"),
            (std::vector<std::string>{"hello", ",", "world", "!", "!"}));
  EXPECT_EQ((*t)->Tokenize("Hello, there world"), (std::vector<int64_t>{2, 3, 1, 4}));
  std::vector<int64_t> ids(6);
  std::vector<int64_t> mask(6);
  EXPECT_EQ((*t)->Encode("hello world", ids.data(), mask.data()), 2);
  EXPECT_EQ(ids, (std::vector<int64_t>{2, 4, 0, 0, 0, 0}));
  EXPECT_EQ(mask, (std::vector<int64_t>{1, 1, 0, 0, 0, 0}));
}

TEST(Tokenizer, WordPieceGreedyLongestMatchFirst) {
  core::TokenizerConfig c = TokConfig(8);
  c.cls_token = "[CLS]";
  c.sep_token = "[SEP]";
  auto t = Tokenizer::Create(c, "[PAD]\n[UNK]\n[CLS]\n[SEP]\nun\n##aff\n##able\naff\n##a\nplay\n##ing\n");
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_TRUE((*t)->has_wordpiece());
  EXPECT_EQ((*t)->Tokenize("unaffable playing"), (std::vector<int64_t>{4, 5, 6, 9, 10}));
  EXPECT_EQ((*t)->Tokenize("unxyz"), (std::vector<int64_t>{1}));  // no match -> whole word unk
  EXPECT_EQ((*t)->Tokenize(std::string(101, 'a')), (std::vector<int64_t>{1}));  // too long
  std::vector<int64_t> ids(8);
  std::vector<int64_t> mask(8);
  // Truncation keeps both special tokens.
  EXPECT_EQ((*t)->Encode("unaffable playing playing", ids.data(), mask.data()), 8);
  EXPECT_EQ(ids, (std::vector<int64_t>{2, 4, 5, 6, 9, 10, 9, 3}));
  EXPECT_EQ((*t)->Encode("", ids.data(), mask.data()), 2);
  EXPECT_EQ(ids, (std::vector<int64_t>{2, 3, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(mask, (std::vector<int64_t>{1, 1, 0, 0, 0, 0, 0, 0}));
}

TEST(Tokenizer, UnicodeNormalisation) {
  core::TokenizerConfig c = TokConfig(4);
  auto t = Tokenizer::Create(c, "[PAD]\n[UNK]\n");
  ASSERT_TRUE(t.ok());
  // Full lowercase mapping as Python's str.lower(): İ -> i + combining dot, ẞ -> ß; accents kept.
  EXPECT_EQ((*t)->BasicTokens("İSTANBUL Straße ẞ Éclair"),
            (std::vector<std::string>{"i\xCC\x87stanbul", "straße", "ß", "éclair"}));
  // Control characters vanish inside words; Unicode punctuation splits; emoji stay in the word.
  EXPECT_EQ((*t)->BasicTokens("a\u200Bb\x01" "c «quoted» hi😀"),
            (std::vector<std::string>{"abc", "«", "quoted", "»", "hi😀"}));
  // ASCII symbols count as punctuation; Unicode whitespace separates.
  EXPECT_EQ((*t)->BasicTokens("1+1=2\u3000x\u2028y"),
            (std::vector<std::string>{"1", "+", "1", "=", "2", "x", "y"}));
  // No CJK splitting.
  EXPECT_EQ((*t)->BasicTokens("日本語テキスト"), (std::vector<std::string>{"日本語テキスト"}));
  core::TokenizerConfig keep = TokConfig(4);
  keep.lowercase = false;
  auto k = Tokenizer::Create(keep, "[PAD]\n[UNK]\n");
  EXPECT_EQ((*k)->BasicTokens("ABC def"), (std::vector<std::string>{"ABC", "def"}));
  EXPECT_TRUE(Tokenizer::IsBlank(" \t\n\u3000\u200B"));
  EXPECT_FALSE(Tokenizer::IsBlank(" . "));
  EXPECT_EQ(Tokenizer::CodePoints("aé日😀"), 4);
}

TEST(Tokenizer, VocabularyRules) {
  // CRLF lines, a duplicate keeps its first id, missing special tokens are refused.
  auto t = Tokenizer::Create(TokConfig(2), "[PAD]\r\n[UNK]\r\nx\r\nx\r\n");
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ((*t)->vocab_size(), 4u);
  EXPECT_EQ((*t)->Tokenize("x"), (std::vector<int64_t>{2}));
  auto no_pad = Tokenizer::Create(TokConfig(2), "[UNK]\nx\n");
  ASSERT_FALSE(no_pad.ok());
  EXPECT_NE(no_pad.status().message().find("pad_token '[PAD]' is not in the vocabulary"),
            std::string::npos);
  core::TokenizerConfig cls = TokConfig(2);
  cls.cls_token = "[CLS]";
  EXPECT_FALSE(Tokenizer::Create(cls, "[PAD]\n[UNK]\n").ok());
}

// ---- softmax, top-k, labels, standardize ----------------------------------------------------

TEST(Decode, SoftmaxAndTopK) {
  std::vector<double> v{1, 2, 3, 0, 0, 0};
  SoftmaxRuns(v, 3);
  EXPECT_NEAR(v[0] + v[1] + v[2], 1.0, 1e-12);
  EXPECT_NEAR(v[2], std::exp(3.0) / (std::exp(1.0) + std::exp(2.0) + std::exp(3.0)), 1e-12);
  EXPECT_NEAR(v[3], 1.0 / 3, 1e-12);
  std::vector<double> big{1000, 1001};
  SoftmaxRuns(big, 2);  // no overflow
  EXPECT_NEAR(big[1], 1 / (1 + std::exp(-1.0)), 1e-12);
  EXPECT_EQ(TopK({0.1, 0.5, 0.5, 0.2}, 3), (std::vector<size_t>{1, 2, 3}));
  EXPECT_EQ(TopK({0.1, 0.5}, 5), (std::vector<size_t>{1, 0}));
}


core::Tensor Floats(const std::string& name, core::Shape shape, const std::vector<float>& values) {
  std::string bytes(values.size() * sizeof(float), '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return core::Tensor::Owned(name, DataType::kFp32, std::move(shape), std::move(bytes));
}

std::vector<float> FloatsOf(const core::Tensor& t) {
  std::vector<float> v(t.bytes().size() / sizeof(float));
  std::memcpy(v.data(), t.bytes().data(), t.bytes().size());
  return v;
}

const char* kNumericModel = R"(max_batch_size: 4
inputs: [{name: features, datatype: FP32, dims: [3]}]
outputs: [{name: logits, datatype: FP32, dims: [2]}, {name: extra, datatype: FP32, dims: [1]}]
)";

const char* kNumericPredict = R"(  inputs:
    - tensor: features
      fields: [age, income, score]
      standardize: {mean: [40, 50000, 0.5], std: [10, 20000, 0.25]}
  outputs:
    - {tensor: logits, softmax: true, labels: labels.txt, label_field: label, score_field: score,
       top_k: 2}
    - {tensor: extra, values_field: extra}
)";

std::vector<simdjson::dom::element> Items(simdjson::dom::parser& parser, const std::string& json,
                                          bool* list) {
  simdjson::dom::element doc = parser.parse(json).value();
  std::vector<simdjson::dom::element> items;
  *list = doc.type() == simdjson::dom::element_type::ARRAY;
  if (*list) {
    simdjson::dom::array array = doc.get_array().value();
    for (simdjson::dom::element e : array) items.push_back(e);
  } else {
    items.push_back(doc);
  }
  return items;
}

TEST(ModelProcessor, StandardizesFieldsAndDecodesLabelsScoresAndTopK) {
  TempDir dir;
  dir.Write("labels.txt", "negative\npositive\n");
  auto config = Parse(kNumericPredict, kNumericModel);
  ASSERT_TRUE(config.ok()) << config.status().message();
  config->directory = dir.path();
  ASSERT_TRUE(core::ValidateModelConfig(*config).ok()) << core::ValidateModelConfig(*config).message();
  auto p = ModelProcessor::Create(*config);
  ASSERT_TRUE(p.ok()) << p.status().message();

  simdjson::dom::parser parser;
  bool list = false;
  auto items = Items(parser, R"([{"age": 50, "income": 70000, "score": 1, "other": "x"},
                                 {"age": 30.5, "income": 30000, "score": 0}])", &list);
  std::vector<core::Tensor> tensors;
  ASSERT_TRUE((*p)->Encode(items, 0, 2, list, true, &tensors).ok());
  ASSERT_EQ(tensors.size(), 1u);
  EXPECT_EQ(tensors[0].shape(), (core::Shape{2, 3}));
  const auto f = FloatsOf(tensors[0]);
  EXPECT_FLOAT_EQ(f[0], 1.0f);
  EXPECT_FLOAT_EQ(f[1], 1.0f);
  EXPECT_FLOAT_EQ(f[2], 2.0f);
  EXPECT_FLOAT_EQ(f[3], -0.95f);
  EXPECT_FLOAT_EQ(f[4], -1.0f);
  EXPECT_FLOAT_EQ(f[5], -2.0f);

  std::vector<core::Tensor> outputs{Floats("extra", {2, 1}, {0.5f, 7}),
                                    Floats("logits", {2, 2}, {0, 0, 2, 0})};
  std::vector<std::string> answers;
  ASSERT_TRUE((*p)->Decode(outputs, 2, true, &answers).ok());
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[0],
            R"({"label":"negative","score":0.5,"top":[{"label":"negative","score":0.5},)"
            R"({"label":"positive","score":0.5}],"extra":0.5})");
  const double p1 = 1 / (1 + std::exp(-2.0));
  simdjson::dom::element a = parser.parse(answers[1]).value();
  EXPECT_EQ(std::string_view(a["label"].get_string().value()), "negative");
  EXPECT_NEAR(a["score"].get_double().value(), p1, 1e-12);
  EXPECT_NEAR(a["top"].at(1)["score"].get_double().value(), 1 - p1, 1e-12);
  EXPECT_EQ(a["extra"].get_double().value(), 7.0);
  EXPECT_EQ((*p)->RequestedOutputs(), (std::vector<std::string>{"logits", "extra"}));

  // A labels file that does not match the scores is the server's fault, not the caller's.
  dir.Write("labels.txt", "a\nb\nc\n");
  auto wrong = ModelProcessor::Create(*config);
  ASSERT_TRUE(wrong.ok());
  answers.clear();
  const auto st = (*wrong)->Decode(outputs, 2, true, &answers);
  EXPECT_EQ(st.code(), core::StatusCode::kInternal);
  EXPECT_NE(st.message().find("has 3 labels but output 'logits' has 2 scores"), std::string::npos);
}

TEST(ModelProcessor, RefusesBadRowsNamingFieldAndRow) {
  TempDir dir;
  dir.Write("labels.txt", "n\np\n");
  dir.Write("v.txt", "[PAD]\n[UNK]\nhi\n");
  auto config = Parse(std::string(kNumericPredict).replace(
                          std::string(kNumericPredict).find("  outputs:"), 0,
                          "    - {tensor: ids, text: text, tokenizer: {vocab: v.txt, max_length: 4, "
                          "max_chars: 10}}\n"),
                      R"(max_batch_size: 4
inputs: [{name: features, datatype: FP32, dims: [3]}, {name: ids, datatype: INT32, dims: [4]}]
outputs: [{name: logits, datatype: FP32, dims: [2]}, {name: extra, datatype: FP32, dims: [1]}]
)");
  ASSERT_TRUE(config.ok()) << config.status().message();
  config->directory = dir.path();
  ASSERT_TRUE(core::ValidateModelConfig(*config).ok()) << core::ValidateModelConfig(*config).message();
  auto p = ModelProcessor::Create(*config);
  ASSERT_TRUE(p.ok()) << p.status().message();
  simdjson::dom::parser parser;
  auto encode = [&](const std::string& json) {
    bool list = false;
    auto items = Items(parser, json, &list);
    std::vector<core::Tensor> tensors;
    const auto st = (*p)->Encode(items, 0, items.size(), list, true, &tensors);
    return st.ok() ? std::string("ok") : st.message();
  };
  const std::string good = R"("age": 1, "income": 2, "score": 3, "text": "hi there")";
  EXPECT_EQ(encode("{" + good + "}"), "ok");
  EXPECT_EQ(encode(R"({"income": 2, "score": 3, "text": "hi"})"), "field 'age' is missing");
  EXPECT_EQ(encode("[{" + good + R"(}, {"age": 1, "income": "2", "score": 3, "text": "hi"}])"),
            "row 1: field 'income' must be a number, got a string");
  EXPECT_EQ(encode(R"({"age": true, "income": 2, "score": 3, "text": "hi"})"),
            "field 'age' must be a number, got a boolean");
  EXPECT_EQ(encode(R"({"age": 1, "income": 2, "score": 3, "text": 5})"),
            "field 'text' must be a string, got a number");
  EXPECT_EQ(encode(R"({"age": 1, "income": 2, "score": 3, "text": " \t "})"),
            "field 'text' is empty (nothing but whitespace)");
  EXPECT_EQ(encode(R"({"age": 1, "income": 2, "score": 3, "text": "hello there you"})"),
            "field 'text' has 15 characters, more than the 10 allowed");
  EXPECT_EQ(encode("[{" + good + "}, 3]"), "row 1 must be a JSON object, got a number");
  // Ids take the input's datatype (INT32 here), with a batch dimension.
  bool list = false;
  auto items = Items(parser, "[{" + good + "}]", &list);
  std::vector<core::Tensor> tensors;
  ASSERT_TRUE((*p)->Encode(items, 0, 1, list, true, &tensors).ok());
  ASSERT_EQ(tensors.size(), 2u);
  EXPECT_EQ(tensors[1].type(), DataType::kInt32);
  EXPECT_EQ(tensors[1].shape(), (core::Shape{1, 4}));
  int32_t ids[4];
  std::memcpy(ids, tensors[1].bytes().data(), sizeof(ids));
  EXPECT_EQ(ids[0], 2);
  EXPECT_EQ(ids[1], 1);
  EXPECT_EQ(ids[2], 0);
}

// ---- Predictor against a fake service -------------------------------------------------------

// "num": features [B,3] -> logits [B,2] = (sum, -sum), extra [B,1] = first feature.
// "second": z [B,2] -> w [B,1] = 10 * z[0]. "single": like num without batching.
class FakeService : public testing_support::FakeService {
 public:
  explicit FakeService(bool async) : async_(async) {}
  ~FakeService() override {
    for (auto& t : threads_) t.join();
  }
  void Add(core::ModelConfig config) { configs[config.name] = std::move(config); }

  void Infer(core::InferRequest request, core::InferCallback done) override {
    auto answer = [this, request = std::move(request), done = std::move(done)]() mutable {
      done(Answer(request));
    };
    if (!async_) return answer();
    std::lock_guard<std::mutex> lock(mu_);
    threads_.emplace_back(std::move(answer));
  }
  core::Result<core::InferResponse> Answer(const core::InferRequest& request) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      calls.push_back({request.model_name, request.inputs.empty() ? core::Shape{}
                                                                    : request.inputs[0].shape()});
      for (const auto& o : request.outputs) requested.push_back(request.model_name + ":" + o.name);
    }
    core::InferResponse r;
    r.model_name = request.model_name;
    const auto in = FloatsOf(request.inputs.at(0));
    const bool batched = configs.at(request.model_name).batch_size_limit() > 0;
    const int64_t rows = batched ? request.inputs[0].shape()[0] : 1;
    auto shape = [&](int64_t d) { return batched ? core::Shape{rows, d} : core::Shape{d}; };
    if (request.model_name == "second") {
      std::vector<float> w;
      for (int64_t i = 0; i < rows; ++i) w.push_back(10 * in[static_cast<size_t>(i * 2)]);
      r.outputs.push_back(Floats("w", shape(1), w));
      return r;
    }
    if (request.inputs[0].shape() != (batched ? core::Shape{rows, 3} : core::Shape{3})) {
      return core::Status::InvalidArgument("bad shape " + core::ShapeToString(request.inputs[0].shape()));
    }
    std::vector<float> logits;
    std::vector<float> extra;
    for (int64_t i = 0; i < rows; ++i) {
      const float* f = in.data() + i * 3;
      logits.push_back(f[0] + f[1] + f[2]);
      logits.push_back(-(f[0] + f[1] + f[2]));
      extra.push_back(f[0]);
    }
    r.outputs.push_back(Floats("logits", shape(2), logits));
    r.outputs.push_back(Floats("extra", shape(1), extra));
    return r;
  }

  struct Call {
    std::string model;
    core::Shape shape;
  };
  std::vector<Call> calls;
  std::vector<std::string> requested;

 private:
  bool async_;
  std::mutex mu_;
  std::vector<std::thread> threads_;
};

core::ModelConfig NumConfig(const std::string& name, int64_t max_batch, const std::string& predict) {
  std::string head = "max_batch_size: " + std::to_string(max_batch) + "\n" +
                     "inputs: [{name: features, datatype: FP32, dims: [3]}]\n"
                     "outputs: [{name: logits, datatype: FP32, dims: [2]}, "
                     "{name: extra, datatype: FP32, dims: [1]}]\n";
  auto c = repository::ParseConfigYaml(head + (predict.empty() ? "" : "predict:\n" + predict), name);
  EXPECT_TRUE(c.ok()) << c.status().message();
  return *c;
}

const char* kFieldsOnly = R"(  inputs: [{tensor: features, fields: [a, b, c]}]
  outputs: [{tensor: extra, values_field: first}]
)";

core::Result<std::string> PredictAndWait(Predictor& predictor, FakeService& service,
                                         const std::string& model, const std::string& body) {
  std::promise<core::Result<std::string>> promise;
  PredictCall call;
  call.model = model;
  call.body = body;
  predictor.Predict(service, std::move(call),
                    [&](core::Result<std::string> r) { promise.set_value(std::move(r)); });
  return promise.get_future().get();
}

std::string Rows(int n) {
  std::string body = "[";
  for (int i = 0; i < n; ++i) {
    body += (i ? "," : "") + std::string(R"({"a": )") + std::to_string(i) + R"(, "b": 0, "c": 0})";
  }
  return body + "]";
}

std::string Firsts(int n) {
  std::string out = "[";
  for (int i = 0; i < n; ++i) out += (i ? "," : "") + std::string(R"({"first":)") + std::to_string(i) + "}";
  return out + "]";
}

TEST(Predictor, SplitRows) {
  using Ranges = std::vector<std::pair<size_t, size_t>>;
  EXPECT_EQ(Predictor::SplitRows(10, 4), (Ranges{{0, 4}, {4, 8}, {8, 10}}));
  EXPECT_EQ(Predictor::SplitRows(3, 8), (Ranges{{0, 3}}));
  EXPECT_EQ(Predictor::SplitRows(2, 0), (Ranges{{0, 1}, {1, 2}}));
}

TEST(Predictor, ListsAreSplitByTheBatchLimitAndJoinedInOrder) {
  for (bool async : {false, true}) {
    FakeService service(async);
    service.Add(NumConfig("num", 4, kFieldsOnly));
    auto predictor = Predictor::Create(Predictor::Options{2, 1.0});
    auto r = PredictAndWait(*predictor, service, "num", Rows(10));
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(*r, Firsts(10));
    ASSERT_EQ(service.calls.size(), 3u);
    std::multiset<int64_t> sizes;
    for (const auto& c : service.calls) sizes.insert(c.shape[0]);
    EXPECT_EQ(sizes, (std::multiset<int64_t>{4, 4, 2}));
    EXPECT_EQ(service.requested[0], "num:extra");  // only the outputs the answer needs
    // One object in, one object out.
    auto one = PredictAndWait(*predictor, service, "num", R"({"a": 5, "b": 1, "c": 1})");
    ASSERT_TRUE(one.ok()) << one.status().message();
    EXPECT_EQ(*one, R"({"first":5})");
  }
}

TEST(Predictor, ModelWithoutBatchingTakesOneObjectAtATime) {
  FakeService service(true);
  service.Add(NumConfig("single", 0, kFieldsOnly));
  auto predictor = Predictor::Create();
  auto r = PredictAndWait(*predictor, service, "single", Rows(5));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r, Firsts(5));
  ASSERT_EQ(service.calls.size(), 5u);
  for (const auto& c : service.calls) EXPECT_EQ(c.shape, (core::Shape{3}));
}

TEST(Predictor, PipelineFeedsOutputsToTheNextModel) {
  FakeService service(false);
  service.Add(NumConfig("num", 4, R"(  inputs: [{tensor: features, fields: [a, b, c]}]
  outputs: [{tensor: w, values_field: w}]
  then: [{model: second, inputs: {z: logits}}]
)"));
  auto second = repository::ParseConfigYaml(
      "max_batch_size: 3\ninputs: [{name: z, datatype: FP32, dims: [2]}]\n"
      "outputs: [{name: w, datatype: FP32, dims: [1]}]\n", "second");
  ASSERT_TRUE(second.ok());
  service.Add(*second);
  auto predictor = Predictor::Create();
  auto r = PredictAndWait(*predictor, service, "num", Rows(4));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r, R"([{"w":0},{"w":10},{"w":20},{"w":30}])");
  // The chain's smallest batch limit (3) splits the list; each chunk runs num then second.
  ASSERT_EQ(service.calls.size(), 4u);
  EXPECT_EQ(service.calls[0].model, "num");
  EXPECT_EQ(service.calls[0].shape, (core::Shape{3, 3}));
  EXPECT_EQ(service.calls[1].model, "second");
  EXPECT_EQ(service.calls[1].shape, (core::Shape{3, 2}));
  EXPECT_EQ(service.requested[0], "num:logits");
  EXPECT_EQ(service.requested[1], "second:w");

  // A pipeline model that is not loaded.
  FakeService lonely(false);
  lonely.Add(service.GetModelConfig("num", 0).value());
  auto missing = PredictAndWait(*predictor, lonely, "num", Rows(1));
  EXPECT_EQ(missing.status().code(), core::StatusCode::kUnavailable);
  EXPECT_NE(missing.status().message().find("pipeline model 'second'"), std::string::npos);
}

TEST(Predictor, RefusesBadCalls) {
  FakeService service(false);
  service.Add(NumConfig("num", 4, kFieldsOnly));
  service.Add(NumConfig("plain", 4, ""));
  auto predictor = Predictor::Create();
  auto code = [&](const std::string& model, const std::string& body) {
    return PredictAndWait(*predictor, service, model, body).status();
  };
  EXPECT_EQ(code("num", "[]").message(), "the list of rows is empty");
  EXPECT_EQ(code("num", "[]").code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(code("num", "{").code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(code("num", "3").message(), "the body must be a JSON object or a list of objects");
  EXPECT_EQ(code("num", R"([{"a": 1, "b": 1, "c": 1}, "x"])").message(),
            "row 1 must be a JSON object, got a string");
  EXPECT_EQ(code("nope", "{}").code(), core::StatusCode::kNotFound);
  EXPECT_EQ(code("plain", "{}").code(), core::StatusCode::kNotFound);
  EXPECT_NE(code("plain", "{}").message().find("has no predict section"), std::string::npos);
  EXPECT_TRUE(service.calls.empty());  // nothing ran for a bad call
}

TEST(Predictor, DefaultModel) {
  FakeService service(false);
  service.Add(NumConfig("a", 4, kFieldsOnly));
  service.Add(NumConfig("plain", 4, ""));
  auto predictor = Predictor::Create(Predictor::Options{8, 0});
  EXPECT_EQ(predictor->DefaultModel(service, {"a", "plain"}).value(), "a");  // the only one with a section
  service.Add(NumConfig("b", 4, kFieldsOnly));
  auto several = predictor->DefaultModel(service, {"a", "b", "plain"});
  EXPECT_EQ(several.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(several.status().message().find("?model="), std::string::npos);
  service.Add(NumConfig("b", 4, std::string(kFieldsOnly) + "  default: true\n"));
  EXPECT_EQ(predictor->DefaultModel(service, {"a", "b", "plain"}).value(), "b");
  service.Add(NumConfig("a", 4, std::string(kFieldsOnly) + "  default: true\n"));
  EXPECT_NE(predictor->DefaultModel(service, {"a", "b", "plain"}).status().message().find(
                "several models are marked predict default (a, b)"),
            std::string::npos);
  EXPECT_EQ(predictor->DefaultModel(service, {"plain"}).status().code(), core::StatusCode::kNotFound);
}

TEST(Predictor, ProcessorsAreCachedUntilTheConfigOrAFileChanges) {
  TempDir dir;
  dir.Write("labels.txt", "n\np\n");
  auto predictor = Predictor::Create();
  core::ModelConfig c = NumConfig("num", 4, kNumericPredict);
  c.directory = dir.path();
  auto first = predictor->ProcessorFor(c);
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(first->get(), predictor->ProcessorFor(c)->get());
  c.predict.outputs[0].label_field = "other";
  auto changed = predictor->ProcessorFor(c);
  EXPECT_NE(first->get(), changed->get());
  dir.Write("labels.txt", "neg\npos\nmid\n");  // a different size on disk
  EXPECT_NE(changed->get(), predictor->ProcessorFor(c)->get());
}

}  // namespace
}  // namespace slipway::processing
