"""POST /predict end to end: small ONNX models built here (token ids -> logits through an embedding
table, numeric fields -> a score, a two-model pipeline), served with `predict:` sections, answered
from application JSON. Answers are checked against numpy and the pure-Python tokenizer reference
(tokenizer_reference.py), lists against batching statistics, and every bad input against its 400.
The C++ tokenizer is also compared with the reference directly (build/tests/tokenize_cli) on
tricky strings.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
import requests
from onnx import TensorProto, helper, numpy_helper

import slipway_testlib as lib
from tokenizer_reference import Tokenizer, is_blank

OPSET = 13
IDS_LEN = 8
ECHO_LEN = 64
TIMEOUT = 60

# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

WORDS = ["the", "movie", "was", "great", "awful", "not", "good", "bad", "fun", "un", "i",
         "café", "straße", "日本", "!", ",", ".", "?", "'"]
PIECES = ["##aff", "##able", "##s", "##ing", "##ly", "##e", "##t", "##a", "##r", "##n", "##o"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + WORDS + PIECES


def save(model: onnx.ModelProto, path: Path):
    model.opset_import[0].version = OPSET
    model.ir_version = 7
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def ids_model(table: np.ndarray, length: int) -> onnx.ModelProto:
    """input_ids [B, L], attention_mask [B, L] -> logits [B, 2] (masked mean of embeddings),
    ids_out [B, L] (the ids as received)."""
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["emb"], axis=0),
        helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["m", "axis2"], ["m3"]),
        helper.make_node("Mul", ["emb", "m3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axis1"], ["summed"], keepdims=0),
        helper.make_node("ReduceSum", ["m3", "axis1"], ["count"], keepdims=0),
        helper.make_node("Max", ["count", "one"], ["count1"]),
        helper.make_node("Div", ["summed", "count1"], ["logits"]),
        helper.make_node("Identity", ["input_ids"], ["ids_out"]),
    ]
    inits = [numpy_helper.from_array(table.astype(np.float32), "table"),
             numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
             numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
             numpy_helper.from_array(np.array([1.0], dtype=np.float32), "one")]
    graph = helper.make_graph(
        nodes, "ids_to_logits",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["B", length]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["B", length])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["B", 2]),
         helper.make_tensor_value_info("ids_out", TensorProto.INT64, ["B", length])],
        inits)
    return helper.make_model(graph)


def linear_model(w: np.ndarray, b: np.ndarray, in_name: str, out_name: str,
                 batched: bool = True) -> onnx.ModelProto:
    """in [B, n] -> out [B, m] = in @ w + b (without a batch dimension when not batched)."""
    n, m = w.shape
    in_shape = ["B", n] if batched else [n]
    out_shape = ["B", m] if batched else [m]
    if batched:
        nodes = [helper.make_node("MatMul", [in_name, "w"], ["xw"]),
                 helper.make_node("Add", ["xw", "b"], [out_name])]
    else:
        nodes = [helper.make_node("Unsqueeze", [in_name, "axis0"], ["row"]),
                 helper.make_node("MatMul", ["row", "w"], ["xw"]),
                 helper.make_node("Add", ["xw", "b"], ["y2"]),
                 helper.make_node("Squeeze", ["y2", "axis0"], [out_name])]
    inits = [numpy_helper.from_array(w.astype(np.float32), "w"),
             numpy_helper.from_array(b.astype(np.float32), "b"),
             numpy_helper.from_array(np.array([0], dtype=np.int64), "axis0")]
    graph = helper.make_graph(
        nodes, "linear",
        [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, out_shape)], inits)
    return helper.make_model(graph)


RNG = np.random.default_rng(7)
TABLE = RNG.normal(0, 1, size=(len(VOCAB), 2))
TABLE_ECHO = np.zeros((len(VOCAB), 2))
FIELD_W = np.array([[0.5], [-1.0], [2.0]])
FIELD_B = np.array([0.25])
MEAN = [40.0, 50000.0, 0.5]
STD = [12.0, 20000.0, 0.2]
STAGE1_W = RNG.normal(0, 1, size=(3, 2))
STAGE2_W = RNG.normal(0, 1, size=(2, 3))

IDS_CONFIG = f"""max_batch_size: 4
predict:
  default: true
  inputs:
    - tensor: input_ids
      text: text
      mask_tensor: attention_mask
      tokenizer: {{vocab: vocab.txt, max_length: {IDS_LEN}, cls_token: "[CLS]", sep_token: "[SEP]",
                  max_chars: 200}}
  outputs:
    - tensor: logits
      softmax: true
      labels: labels.txt
      label_field: sentiment
      score_field: confidence
      top_k: 2
      top_field: top
    - tensor: ids_out
      values_field: ids
"""

ECHO_CONFIG = f"""max_batch_size: 64
predict:
  inputs:
    - tensor: input_ids
      text: text
      mask_tensor: attention_mask
      tokenizer: {{vocab: vocab.txt, max_length: {ECHO_LEN}, cls_token: "[CLS]", sep_token: "[SEP]"}}
  outputs:
    - {{tensor: ids_out, values_field: ids}}
"""

FIELDS_PREDICT = """predict:
  inputs:
    - tensor: features
      fields: [age, income, score]
      standardize: {mean: [40, 50000, 0.5], std: [12, 20000, 0.2]}
  outputs:
    - {tensor: y, values_field: score}
"""

STAGE1_CONFIG = """max_batch_size: 8
predict:
  inputs:
    - {tensor: features, fields: [a, b, c]}
  outputs:
    - {tensor: logits, labels: labels.txt, label_field: label, top_k: 3, values_field: logits}
  then:
    - model: stage2
      inputs: {h: hidden}
"""


def write_repo(root: Path) -> Path:
    repo = root / "repo"
    save(ids_model(TABLE, IDS_LEN), repo / "ids" / "1" / "model.onnx")
    (repo / "ids" / "config.yaml").write_text(IDS_CONFIG)
    (repo / "ids" / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    (repo / "ids" / "labels.txt").write_text("negative\npositive\n")

    save(ids_model(TABLE_ECHO, ECHO_LEN), repo / "echo" / "1" / "model.onnx")
    (repo / "echo" / "config.yaml").write_text(ECHO_CONFIG)
    (repo / "echo" / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")

    save(linear_model(FIELD_W, FIELD_B, "features", "y"), repo / "fields" / "1" / "model.onnx")
    (repo / "fields" / "config.yaml").write_text("max_batch_size: 16\n" + FIELDS_PREDICT)
    save(linear_model(FIELD_W, FIELD_B, "features", "y", batched=False),
         repo / "single" / "1" / "model.onnx")
    (repo / "single" / "config.yaml").write_text("max_batch_size: 0\n" + FIELDS_PREDICT)

    save(linear_model(STAGE1_W, np.zeros(2), "features", "hidden"),
         repo / "stage1" / "1" / "model.onnx")
    (repo / "stage1" / "config.yaml").write_text(STAGE1_CONFIG)
    (repo / "stage1" / "labels.txt").write_text("red\ngreen\nblue\n")
    save(linear_model(STAGE2_W, np.zeros(3), "h", "logits"), repo / "stage2" / "1" / "model.onnx")

    save(linear_model(FIELD_W, FIELD_B, "features", "y"), repo / "plain" / "1" / "model.onnx")
    return repo


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    server = lib.start_live(write_repo(root), log_dir=root, name="predict")
    yield server
    lib.stop_ok(server)


def post(srv, path, body=None, data=None, **kw):
    kw.setdefault("timeout", TIMEOUT)
    if data is not None:
        return requests.post(srv.http_url + path, data=data, **kw)
    return requests.post(srv.http_url + path, json=body, **kw)


def softmax(v):
    e = np.exp(np.asarray(v, dtype=np.float64) - np.max(v))
    return e / e.sum()


def reference(length=IDS_LEN):
    return Tokenizer("\n".join(VOCAB) + "\n", max_length=length, cls_token="[CLS]",
                     sep_token="[SEP]")


def expected_ids_answer(text: str) -> dict:
    ids, mask = reference().encode(text)
    emb = TABLE.astype(np.float32)[ids] * np.array(mask, dtype=np.float32)[:, None]
    logits = emb.sum(axis=0) / max(1.0, float(sum(mask)))
    p = softmax(logits)
    best = int(np.argmax(p))
    labels = ["negative", "positive"]
    return {"sentiment": labels[best], "confidence": float(p[best]), "ids": ids,
            "top": [{"label": labels[i], "score": float(p[i])} for i in np.argsort(-p, kind="stable")]}


def assert_ids_answer(answer: dict, text: str):
    want = expected_ids_answer(text)
    assert set(answer) == {"sentiment", "confidence", "top", "ids"}, answer
    assert answer["ids"] == want["ids"], (text, answer["ids"], want["ids"])
    assert answer["sentiment"] == want["sentiment"], (text, answer, want)
    assert answer["confidence"] == pytest.approx(want["confidence"], rel=1e-5)
    assert [t["label"] for t in answer["top"]] == [t["label"] for t in want["top"]]
    for got, exp in zip(answer["top"], want["top"]):
        assert got["score"] == pytest.approx(exp["score"], rel=1e-5)


def stats(srv, model):
    r = requests.get(f"{srv.http_url}/v2/models/{model}/stats", timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    s = r.json()["model_stats"][0]
    return s["inference_count"], s["execution_count"]


# ---------------------------------------------------------------------------------------------
# Answers
# ---------------------------------------------------------------------------------------------

def test_one_object_gets_one_answer_from_the_default_model(srv):
    text = "The movie was unaffable fun!"
    r = post(srv, "/predict", {"text": text, "ignored": [1, 2]})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert_ids_answer(r.json(), text)
    for path in ("/predict?model=ids", "/v2/models/ids/predict", "/v2/models/ids/versions/1/predict"):
        again = post(srv, path, {"text": text})
        assert again.status_code == 200, (path, again.text)
        assert again.json() == r.json()


def test_a_list_is_batched_split_by_max_batch_size_and_kept_in_order(srv):
    texts = ["the movie was great", "awful", "not good , not bad", "fun fun fun fun fun fun fun",
             "i café", "straße !", "??", "un", "the", "movie was bad"]
    inferences0, executions0 = stats(srv, "ids")
    r = post(srv, "/predict", [{"text": t} for t in texts])
    assert r.status_code == 200, r.text
    answers = r.json()
    assert isinstance(answers, list) and len(answers) == len(texts)
    for answer, text in zip(answers, texts):
        assert_ids_answer(answer, text)
    inferences1, executions1 = stats(srv, "ids")
    # max_batch_size 4: ten rows run as three requests of 4, 4 and 2 rows.
    assert inferences1 - inferences0 == len(texts)
    assert executions1 - executions0 == 3
    one = post(srv, "/predict", [{"text": "fun"}])
    assert one.status_code == 200 and isinstance(one.json(), list) and len(one.json()) == 1


def test_numeric_fields_are_standardized(srv):
    rows = [{"age": 52, "income": 61000.5, "score": 0.9}, {"age": 18, "income": 0, "score": 0}]
    r = post(srv, "/v2/models/fields/predict", rows)
    assert r.status_code == 200, r.text
    x = (np.array([[52, 61000.5, 0.9], [18, 0, 0]]) - MEAN) / STD
    want = (x.astype(np.float32) @ FIELD_W.astype(np.float32) + FIELD_B).reshape(-1)
    got = [a["score"] for a in r.json()]
    assert all(isinstance(g, float) for g in got), got  # one value per row: a scalar
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_model_without_batching_takes_one_object_per_request(srv):
    rows = [{"age": a, "income": 50000, "score": 0.5} for a in (40, 52, 28, 64, 16)]
    inferences0, executions0 = stats(srv, "single")
    r = post(srv, "/predict?model=single", rows)
    assert r.status_code == 200, r.text
    got = [a["score"] for a in r.json()]
    want = [((a - 40) / 12) * 0.5 + 0.25 for a in (40, 52, 28, 64, 16)]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    inferences1, executions1 = stats(srv, "single")
    assert executions1 - executions0 == 5 and inferences1 - inferences0 == 5


def test_pipeline_feeds_the_first_models_outputs_to_the_second(srv):
    rows = [{"a": 1, "b": 2, "c": 3}, {"a": -1, "b": 0.5, "c": 0}, {"a": 0, "b": 0, "c": 1}]
    before = stats(srv, "stage2")
    r = post(srv, "/predict?model=stage1", rows)
    assert r.status_code == 200, r.text
    x = np.array([[1, 2, 3], [-1, 0.5, 0], [0, 0, 1]], dtype=np.float32)
    logits = (x @ STAGE1_W.astype(np.float32)) @ STAGE2_W.astype(np.float32)
    labels = ["red", "green", "blue"]
    for answer, row in zip(r.json(), logits):
        order = np.argsort(-row, kind="stable")
        assert answer["label"] == labels[order[0]]
        assert [t["label"] for t in answer["top"]] == [labels[i] for i in order]
        np.testing.assert_allclose(answer["logits"], row, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose([t["score"] for t in answer["top"]], row[order], rtol=1e-4,
                                   atol=1e-5)
    after = stats(srv, "stage2")
    assert after[0] - before[0] == 3 and after[1] - before[1] == 1  # one batch of three rows


# ---------------------------------------------------------------------------------------------
# The tokenizer: C++ (server and tokenize_cli) against the Python reference
# ---------------------------------------------------------------------------------------------

TRICKY = [
    "Café naïve résumé ÉCOLE",
    "日本語のテキスト 日本",
    "emoji 😀👍🏽 test😀end",
    "İstanbul İ ı I",
    "STRASSE straße ẞ",
    "ΟΔΟΣ ΣΑΣ σοφός Σ.Σ",
    "Hello!!!...???,,,",
    "don't co-operate $100 + 50% = ? [x] {y} <z> a|b ~ ^ ` @ # _",
    "mixed Русский English العربية 中文 हिन्दी",
    "tab\tseparated\u00a0nbsp\u2003em\u3000ideographic",
    "zero\u200bwidth soft\u00adhyphen bom\ufeffhere",
    "line\u2028sep para\u2029sep next\u0085line",
    "control\x07bell\x1b[0m esc",
    "combining e\u0301 vs é, ﬁ ligature, ǅ title, Ω K Å",
    "«guillemets» „low“ ‘single’ — dash – en ‥ … ¿que? ¡si!",
    "unaffable theing movies the's",
    "a" * 150,
    "word " * 600,
    "x" + "y" * 99 + " " + "z" * 101,
    "\u0130" * 60,
    "",
    "   \t\n  ",
    "\u200b\u200b",
    "1+1=2 3.14 -7 1e10 0x1F",
]


def tokenize_cli() -> Path:
    return Path(lib.BINARY).resolve().parent / "tests" / "tokenize_cli"


def cli_encode(vocab_path: Path, texts, length, lowercase=True, cls=True):
    cli = tokenize_cli()
    if not cli.exists():
        pytest.skip(f"{cli} is not built (make tokenize_cli)")
    args = [str(cli), "--vocab", str(vocab_path), "--max-length", str(length)]
    if cls:
        args += ["--cls", "[CLS]", "--sep", "[SEP]"]
    if not lowercase:
        args.append("--no-lowercase")
    out = subprocess.run(args, input="".join(json.dumps(t) + "\n" for t in texts),
                         capture_output=True, text=True, timeout=60, check=True)
    return [json.loads(line) for line in out.stdout.splitlines()]


def wordpiece_vocab():
    """A vocabulary with whole words and '##' pieces drawn from the tricky strings themselves,
    so matches, partial matches and unknown words all occur."""
    plain = Tokenizer("[PAD]\n[UNK]\n", max_length=4)
    words = []
    for text in TRICKY:
        words += plain.basic_tokens(text)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    seen = set(vocab)
    for i, w in enumerate(dict.fromkeys(words)):
        for tok in ([w] if i % 3 == 0 else []) + [w[:2], "##" + w[2:4], "##" + w[-1:], "##" + w[4:]]:
            if tok not in ("##",) and tok not in seen:
                seen.add(tok)
                vocab.append(tok)
    vocab.append("[CLS]")  # a duplicate keeps its first line
    return vocab


@pytest.mark.parametrize("lowercase", [True, False])
def test_cpp_tokenizer_matches_the_python_reference(tmp_path, lowercase):
    for vocab, name in ((wordpiece_vocab(), "wordpiece"),
                        (["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + WORDS, "whole words")):
        path = tmp_path / "vocab.txt"
        path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
        for length in (6, 48):
            ref = Tokenizer(path.read_text(encoding="utf-8"), max_length=length,
                            lowercase=lowercase, cls_token="[CLS]", sep_token="[SEP]")
            got = cli_encode(path, TRICKY, length, lowercase=lowercase)
            assert len(got) == len(TRICKY)
            for text, g in zip(TRICKY, got):
                ids, mask = ref.encode(text)
                what = f"{name} max_length {length} lowercase {lowercase}: {text[:40]!r}"
                assert g["words"] == ref.basic_tokens(text), what
                assert g["pieces"] == ref.tokenize(text), what
                assert g["ids"] == ids and g["mask"] == mask, what
                assert g["blank"] == is_blank(text), what
                assert g["chars"] == len(text), what


def test_server_tokenizes_like_the_reference(srv):
    texts = [t for t in TRICKY if not is_blank(t)]
    r = post(srv, "/predict?model=echo", [{"text": t} for t in texts])
    assert r.status_code == 200, r.text
    ref = reference(ECHO_LEN)
    for answer, text in zip(r.json(), texts):
        assert answer["ids"] == ref.encode(text)[0], text[:40]


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------

BAD = [
    # (path, body or raw bytes, status, message patterns)
    ("/predict", b"{not json", 400, ["not valid JSON"]),
    ("/predict", b"", 400, ["not valid JSON"]),
    ("/predict", [], 400, ["list of rows is empty"]),
    ("/predict", 5, 400, ["JSON object or a list of objects"]),
    ("/predict", "text", 400, ["JSON object or a list of objects"]),
    ("/predict", [{"text": "fun"}, 3], 400, ["row 1 must be a JSON object"]),
    ("/predict", [{"text": "fun"}, [{"text": "fun"}]], 400, ["row 1 must be a JSON object"]),
    ("/predict", {"txt": "fun"}, 400, ["field 'text' is missing"]),
    ("/predict", [{"text": "fun"}, {"text": "x"}, {}], 400, ["row 2: field 'text' is missing"]),
    ("/predict", {"text": 5}, 400, ["field 'text' must be a string"]),
    ("/predict", {"text": None}, 400, ["field 'text' must be a string"]),
    ("/predict", {"text": ["fun"]}, 400, ["field 'text' must be a string"]),
    ("/predict", {"text": ""}, 400, ["field 'text' is empty"]),
    ("/predict", [{"text": "fun"}, {"text": " \t\n "}], 400, ["row 1: field 'text' is empty"]),
    ("/predict", {"text": "x" * 201}, 400, ["field 'text' has 201 characters", "200 allowed"]),
    ("/predict", {"text": "é" * 201}, 400, ["201 characters"]),
    ("/predict?model=fields", {"age": 1, "income": 2}, 400, ["field 'score' is missing"]),
    ("/predict?model=fields", [{"age": 1, "income": 2, "score": 3},
                               {"age": "1", "income": 2, "score": 3}], 400,
     ["row 1: field 'age' must be a number, got a string"]),
    ("/predict?model=fields", {"age": True, "income": 2, "score": 3}, 400,
     ["field 'age' must be a number, got a boolean"]),
    ("/predict?model=fields", {"age": None, "income": 2, "score": 3}, 400,
     ["field 'age' must be a number, got null"]),
    ("/predict?model=nope", {"text": "fun"}, 404, ["nope"]),
    ("/v2/models/nope/predict", {"text": "fun"}, 404, ["nope"]),
    ("/predict?model=plain", {"text": "fun"}, 404, ["no predict section"]),
    ("/v2/models/plain/predict", {"text": "fun"}, 404, ["no predict section"]),
    ("/v2/models/ids/versions/9/predict", {"text": "fun"}, 404, ["9"]),
    ("/predict?version=1", {"text": "fun"}, 400, ["needs \\?model="]),
]


@pytest.mark.parametrize("path,body,status,patterns", BAD,
                         ids=[f"{i}-{b[0]}" for i, b in enumerate(BAD)])
def test_bad_input_is_refused_with_a_message(srv, path, body, status, patterns):
    if isinstance(body, bytes):
        r = post(srv, path, data=body, headers={"Content-Type": "application/json"})
    else:
        r = post(srv, path, body)
    assert r.status_code == status, r.text
    message = lib.error_message(r)
    assert lib.mentions(message, *patterns), message


def test_nothing_runs_for_a_refused_list(srv):
    before = stats(srv, "ids")
    r = post(srv, "/predict", [{"text": "fun"}] * 6 + [{"text": 1}])
    assert r.status_code == 400, r.text
    assert stats(srv, "ids") == before


def test_only_post(srv):
    for path in ("/predict", "/v2/models/ids/predict"):
        r = requests.get(srv.http_url + path, timeout=TIMEOUT)
        assert r.status_code == 405, r.text


def test_without_a_default_the_model_must_be_named(tmp_path):
    repo = tmp_path / "repo"
    for name in ("a", "b"):
        save(linear_model(FIELD_W, FIELD_B, "features", "y"), repo / name / "1" / "model.onnx")
        (repo / name / "config.yaml").write_text("max_batch_size: 4\n" + FIELDS_PREDICT)
    save(linear_model(FIELD_W, FIELD_B, "features", "y"), repo / "c" / "1" / "model.onnx")
    server = lib.start_live(repo, log_dir=tmp_path, name="nodefault")
    try:
        row = {"age": 40, "income": 50000, "score": 0.5}
        r = post(server, "/predict", row)
        assert r.status_code == 400, r.text
        assert lib.mentions(lib.error_message(r), r"\?model=", "a, b")
        r = post(server, "/predict?model=b", row)
        assert r.status_code == 200, r.text
        assert r.json()["score"] == pytest.approx(0.25)
    finally:
        lib.stop_ok(server)


def test_predict_is_open_to_the_infer_role(tmp_path):
    repo = tmp_path / "repo"
    save(linear_model(FIELD_W, FIELD_B, "features", "y"), repo / "fields" / "1" / "model.onnx")
    (repo / "fields" / "config.yaml").write_text("max_batch_size: 4\n" + FIELDS_PREDICT)
    saved = os.environ.get("SLIPWAY_API_KEYS")
    os.environ["SLIPWAY_API_KEYS"] = "admin=admin-key-1234567890,infer=infer-key-1234567890"
    try:
        server = lib.start_live(repo, log_dir=tmp_path, name="keys")
    finally:
        if saved is None:
            del os.environ["SLIPWAY_API_KEYS"]
        else:
            os.environ["SLIPWAY_API_KEYS"] = saved
    try:
        row = {"age": 40, "income": 50000, "score": 0.5}
        assert post(server, "/predict", row).status_code == 401
        for path in ("/predict", "/v2/models/fields/predict"):
            r = post(server, path, row, headers={"Authorization": "Bearer infer-key-1234567890"})
            assert r.status_code == 200, r.text
    finally:
        lib.stop_ok(server)


def test_a_config_that_does_not_fit_the_model_fails_its_load(tmp_path):
    repo = tmp_path / "repo"
    save(linear_model(FIELD_W, FIELD_B, "features", "y"), repo / "wrong" / "1" / "model.onnx")
    (repo / "wrong" / "config.yaml").write_text(
        "predict:\n  inputs: [{tensor: features, fields: [a, b]}]\n")
    save(linear_model(FIELD_W, FIELD_B, "features", "y"), repo / "typo" / "1" / "model.onnx")
    (repo / "typo" / "config.yaml").write_text(
        "predict:\n  inputs: [{tensor: features, fields: [a, b, c]}]\n  outptus: []\n")
    save(ids_model(TABLE, IDS_LEN), repo / "badvocab" / "1" / "model.onnx")
    (repo / "badvocab" / "config.yaml").write_text(IDS_CONFIG)
    (repo / "badvocab" / "vocab.txt").write_text("[PAD]\n[CLS]\n[SEP]\nfun\n")
    (repo / "badvocab" / "labels.txt").write_text("negative\npositive\n")
    server = lib.start_live(repo, log_dir=tmp_path, name="wrong")
    try:
        index = requests.post(server.http_url + "/v2/repository/index", json={},
                              timeout=TIMEOUT).json()
        reasons = {e["name"]: e.get("reason", "") for e in index}
        assert "cannot hold 2 values" in reasons["wrong"], reasons
        assert "unknown key 'outptus'" in reasons["typo"], reasons
        assert "'[UNK]' is not in the vocabulary 'vocab.txt'" in reasons["badvocab"], reasons
    finally:
        lib.stop_ok(server)
