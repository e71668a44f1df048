"""TensorFlow Serving REST (and KServe v1) on /v1: model status, metadata, :predict in row and
columnar format, :classify, :regress, versions and labels, b64 bytes, and errors.

Answers are checked against KServe v2 answers for the same model and inputs, so the two
protocols must agree number for number.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import requests

import slipway_testlib as lib


def rows_of(exp_input) -> list:
    """An expected.json input -> a list of per-row nested lists."""
    return np.array(exp_input["data"]).reshape(exp_input["shape"]).tolist()


def v2_outputs(api, model, inputs, version=None) -> dict:
    """{name: np.ndarray} from a KServe v2 JSON inference."""
    r = api.infer_json(model, inputs, version=version)
    assert r.status_code == 200, r.text
    return {o["name"]: lib.from_json_data(o["datatype"], o["data"], o["shape"])
            for o in r.json()["outputs"]}


def predict(api, model, body, prefix=None, verb="predict"):
    path = f"/v1/models/{model}{prefix or ''}:{verb}"
    if isinstance(body, (bytes, str)):
        return api.post(path, data=body, headers={"Content-Type": "application/json"})
    return api.post(path, json=body)


def ok_json(r):
    assert r.status_code == 200, f"{r.status_code} {r.text}"
    assert "application/json" in r.headers["Content-Type"]
    return r.json()


def close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64),
                               np.asarray(expected, dtype=np.float64), rtol=1e-6, atol=1e-7)


def assert_error(r, status):
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text}"
    return lib.error_message(r)


# ----------------------------------------------------------------------------- status, metadata

def test_status_lists_every_version_newest_first(api):
    body = ok_json(api.get("/v1/models/multi_input"))
    assert body == {"name": "multi_input", "ready": True, "model_version_status": [
        {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}},
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}},
    ]}
    body = ok_json(api.get("/v1/models/multi_input/versions/1"))
    assert [s["version"] for s in body["model_version_status"]] == ["1"]
    # Path words are case-insensitive, as in TF Serving.
    body = ok_json(api.get("/V1/Models/multi_input/Versions/2"))
    assert [s["version"] for s in body["model_version_status"]] == ["2"]


def test_status_of_a_version_that_failed_to_load(api):
    body = ok_json(api.get("/v1/models/broken"))
    # KServe v1 clients read "ready" from the same answer.
    assert body["name"] == "broken" and body["ready"] is False
    [status] = body["model_version_status"]
    assert status["version"] == "1"
    assert status["state"] == "END"
    assert status["status"]["error_code"] != "OK"
    assert status["status"]["error_message"]


def test_status_and_metadata_of_unknown_models_and_versions(api):
    for path in ("/v1/models/no_such_model", "/v1/models/no_such_model/metadata",
                 "/v1/models/multi_input/versions/9", "/v1/models/multi_input/versions/9/metadata",
                 "/v1/models/multi_input/labels/no_such_label"):
        assert_error(api.get(path), 404)


def test_metadata_shape(api):
    body = ok_json(api.get("/v1/models/breast_cancer/metadata"))
    assert body == {
        "model_spec": {"name": "breast_cancer", "signature_name": "", "version": "1"},
        "metadata": {"signature_def": {"signature_def": {"serving_default": {
            "inputs": {"features": {
                "dtype": "DT_FLOAT",
                "tensor_shape": {"dim": [{"size": "-1", "name": ""}, {"size": "30", "name": ""}],
                                 "unknown_rank": False},
                "name": "features"}},
            "outputs": {
                "probabilities": {
                    "dtype": "DT_FLOAT",
                    "tensor_shape": {"dim": [{"size": "-1", "name": ""}, {"size": "2", "name": ""}],
                                     "unknown_rank": False},
                    "name": "probabilities"},
                "label": {
                    "dtype": "DT_INT64",
                    "tensor_shape": {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False},
                    "name": "label"}},
            "method_name": "tensorflow/serving/predict",
            "defaults": {}}}}},
    }


def test_metadata_dtypes_and_versions(api):
    body = ok_json(api.get("/v1/models/multi_input/metadata"))
    assert body["model_spec"]["version"] == "2"  # the latest when none is named
    sig = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert {k: v["dtype"] for k, v in sig["inputs"].items()} == {
        "x": "DT_FLOAT", "scale": "DT_DOUBLE", "offset": "DT_INT32", "mask": "DT_BOOL"}
    assert {k: v["dtype"] for k, v in sig["outputs"].items()} == {"y": "DT_FLOAT", "count": "DT_INT64"}
    body = ok_json(api.get("/v1/models/multi_input/versions/1/metadata"))
    assert body["model_spec"]["version"] == "1"
    sig = ok_json(api.get("/v1/models/identity_bytes/metadata"))["metadata"]["signature_def"]
    assert sig["signature_def"]["serving_default"]["inputs"]["INPUT0"]["dtype"] == "DT_STRING"
    assert sig["signature_def"]["serving_default"]["inputs"]["INPUT0"]["tensor_shape"]["dim"] == [
        {"size": "-1", "name": ""}, {"size": "-1", "name": ""}]


def test_kserve_v1_model_list(api):
    body = ok_json(api.get("/v1/models"))
    assert "breast_cancer" in body["models"] and "multi_input" in body["models"]
    assert "broken" not in body["models"]
    assert len(body["models"]) == len(set(body["models"]))


# ----------------------------------------------------------------------------- predict

def test_predict_row_and_columnar_agree_with_v2(api):
    exp = lib.load_expected("breast_cancer")
    want = v2_outputs(api, "breast_cancer", lib.expected_inputs(exp))
    rows = rows_of(exp["inputs"]["features"])

    # Row format, one input: each instance is that input's value.
    preds = ok_json(predict(api, "breast_cancer", {"instances": rows}))["predictions"]
    assert len(preds) == len(rows)
    for i, p in enumerate(preds):
        assert set(p) == {"probabilities", "label"}  # several outputs: an object per row
        close(p["probabilities"], want["probabilities"][i])
        assert p["label"] == int(want["label"][i])
    # Row format with named inputs, and the signature named explicitly.
    named = ok_json(predict(api, "breast_cancer", {"signature_name": "serving_default",
                                                   "instances": [{"features": r} for r in rows]}))
    assert named["predictions"] == preds

    # Columnar format, a bare tensor and a named one.
    outs = ok_json(predict(api, "breast_cancer", {"inputs": rows}))["outputs"]
    close(outs["probabilities"], want["probabilities"])
    assert outs["label"] == want["label"].tolist()
    outs2 = ok_json(predict(api, "breast_cancer", {"inputs": {"features": rows}}))["outputs"]
    assert outs2 == outs


def test_predict_single_output_drops_the_name(api):
    exp = lib.load_expected("identity_fp32")
    rows = rows_of(exp["inputs"]["INPUT0"])
    want = v2_outputs(api, "identity_fp32", lib.expected_inputs(exp))["OUTPUT0"]
    preds = ok_json(predict(api, "identity_fp32", {"instances": rows}))["predictions"]
    close(preds, want)
    assert isinstance(preds[0], list)
    outs = ok_json(predict(api, "identity_fp32", {"inputs": rows}))["outputs"]
    close(outs, want)

    exp = lib.load_expected("image_cnn")
    img = rows_of(exp["inputs"]["image"])
    want = v2_outputs(api, "image_cnn", lib.expected_inputs(exp))["logits"]
    close(ok_json(predict(api, "image_cnn", {"instances": img}))["predictions"], want)


def test_predict_multi_input_by_name_and_by_version_and_label(api):
    exp = lib.load_expected("multi_input")
    inputs = {n: rows_of(t) for n, t in exp["inputs"].items()}
    n = len(inputs["x"])
    instances = [{name: inputs[name][i] for name in inputs} for i in range(n)]
    for version in ("1", "2"):
        want = v2_outputs(api, "multi_input", lib.expected_inputs(exp), version=version)
        preds = ok_json(predict(api, "multi_input", {"instances": instances},
                                prefix=f"/versions/{version}"))["predictions"]
        close([p["y"] for p in preds], want["y"])
        assert [p["count"] for p in preds] == want["count"].tolist()
        outs = ok_json(predict(api, "multi_input", {"inputs": inputs},
                               prefix=f"/versions/{version}"))["outputs"]
        close(outs["y"], want["y"])
        assert outs["count"] == want["count"].tolist()
    # The latest version answers when none is named.
    want2 = v2_outputs(api, "multi_input", lib.expected_inputs(exp), version="2")
    close([p["y"] for p in ok_json(predict(api, "multi_input", {"instances": instances}))["predictions"]],
          want2["y"])

    # Labels: PUT /v2/models/<m>/labels/<l> {"version": N}, then /v1/.../labels/<l>.
    r = api.s.put(f"{api.base}/v2/models/multi_input/labels/tfs_old", json={"version": 1},
                  timeout=lib.REQUEST_TIMEOUT_S)
    assert r.status_code == 200, r.text
    try:
        want1 = v2_outputs(api, "multi_input", lib.expected_inputs(exp), version="1")
        preds = ok_json(predict(api, "multi_input", {"instances": instances},
                                prefix="/labels/tfs_old"))["predictions"]
        close([p["y"] for p in preds], want1["y"])
        body = ok_json(api.get("/v1/models/multi_input/labels/tfs_old"))
        assert [s["version"] for s in body["model_version_status"]] == ["1"]
        body = ok_json(api.get("/v1/models/multi_input/labels/tfs_old/metadata"))
        assert body["model_spec"]["version"] == "1"
    finally:
        api.s.delete(f"{api.base}/v2/models/multi_input/labels/tfs_old", timeout=lib.REQUEST_TIMEOUT_S)
    assert_error(predict(api, "multi_input", {"instances": instances}, prefix="/labels/tfs_old"), 404)


def test_predict_non_batching_model_stacks_instances(api):
    # fixed_shape takes exactly [2, 3]: two instances of 3 make it.
    rows = [[1, 2, 3], [4, 5, 6.5]]
    want = v2_outputs(api, "fixed_shape", [("INPUT0", "FP32", np.array(rows, dtype=np.float32))])
    preds = ok_json(predict(api, "fixed_shape", {"instances": rows}))
    assert preds == {"predictions": want["OUTPUT0"].tolist()}


def test_b64_bytes_round_trip(api):
    raw = [[b"\x00\xff\x10binary", b""], [b"\x80\x81", "ünï".encode()]]
    enc = [[{"b64": base64.b64encode(v).decode()} for v in row] for row in raw]
    preds = ok_json(predict(api, "identity_bytes", {"instances": enc}))["predictions"]
    assert [[base64.b64decode(v["b64"]) for v in row] for row in preds] == raw
    outs = ok_json(predict(api, "identity_bytes", {"inputs": enc}))["outputs"]
    assert [[base64.b64decode(v["b64"]) for v in row] for row in outs] == raw
    # Plain strings come back as strings, the same as KServe v2 gives them.
    exp = lib.load_expected("identity_bytes")
    rows = rows_of(exp["inputs"]["INPUT0"])
    preds = ok_json(predict(api, "identity_bytes", {"instances": rows}))["predictions"]
    assert preds == rows
    want = v2_outputs(api, "identity_bytes", lib.expected_inputs(exp))["OUTPUT0"]
    assert [[v.encode() for v in row] for row in preds] == want.tolist()
    # URL-safe base64 without padding is accepted too.
    r = predict(api, "identity_bytes", {"inputs": [[{"b64": "-_8"}]]})
    assert ok_json(r)["outputs"] == [[{"b64": base64.b64encode(b"\xfb\xff").decode()}]]


@pytest.mark.parametrize("model,values", [
    ("identity_int8", [[-128, 127, 0]]),
    ("identity_uint8", [[0, 255, 7]]),
    ("identity_int64", [[-(2**63), 2**63 - 1, 5]]),
    ("identity_uint64", [[0, 2**64 - 1, 5]]),
    ("identity_bool", [[True, False, True]]),
    ("identity_fp64", [[0.1, -2.5e300, 3]]),
    ("identity_fp16", [[1.5, -65504, 0.000061035156]]),
    ("identity_bf16", [[1.5, -2.0, 256]]),
])
def test_datatypes_from_the_model_config(api, model, values):
    got = ok_json(predict(api, model, {"instances": values}))["predictions"]
    if model in ("identity_fp16", "identity_bf16"):
        close(got, values)
    else:
        assert got == values


def test_non_finite_float_tokens(api):
    r = predict(api, "identity_fp32", '{"instances": [[NaN, Infinity, -Infinity, 1.5]]}')
    assert r.status_code == 200, r.text
    [row] = json.loads(r.text)["predictions"]
    assert np.isnan(row[0]) and row[1] == float("inf") and row[2] == float("-inf") and row[3] == 1.5
    # Inside strings the tokens stay strings.
    r = predict(api, "identity_bytes", '{"instances": [["NaN", "x Infinity"]]}')
    assert ok_json(r)["predictions"] == [["NaN", "x Infinity"]]


# ----------------------------------------------------------------------------- classify, regress

def test_classify_breast_cancer_matches_v2(api):
    exp = lib.load_expected("breast_cancer")
    want = v2_outputs(api, "breast_cancer", lib.expected_inputs(exp))
    rows = rows_of(exp["inputs"]["features"])
    results = ok_json(predict(api, "breast_cancer", {"examples": [{"features": r} for r in rows]},
                              verb="classify"))["results"]
    assert len(results) == len(rows)
    for i, classes in enumerate(results):
        assert [c[0] for c in classes] == ["0", "1"]
        close([c[1] for c in classes], want["probabilities"][i])
        best = max(classes, key=lambda c: c[1])[0]
        assert best == str(want["label"][i])  # the model's own label output agrees
    # The column form: one feature per column of the single input, in order; context shared.
    cols = [{f"f{j}": v for j, v in enumerate(r)} for r in rows]
    assert ok_json(predict(api, "breast_cancer", {"examples": cols}, verb="classify"))["results"] == results
    context = {f"f{j}": rows[0][j] for j in range(15)}
    examples = [{f"f{j}": rows[0][j] for j in range(15, 30)}]
    got = ok_json(predict(api, "breast_cancer", {"context": context, "examples": examples},
                          verb="classify"))["results"]
    assert got == results[:1]


def test_classify_multi_input_with_context(api):
    exp = lib.load_expected("multi_input")
    inputs = {n: rows_of(t) for n, t in exp["inputs"].items()}
    # Row 0's scale/offset/mask shared through the context; x per example.
    context = {k: inputs[k][0] for k in ("scale", "offset", "mask")}
    examples = [{"x": inputs["x"][0]}]
    results = ok_json(predict(api, "multi_input", {"context": context, "examples": examples},
                              prefix="/versions/1", verb="classify"))["results"]
    want = v2_outputs(api, "multi_input", lib.expected_inputs(exp), version="1")["y"][0]
    assert [c[0] for c in results[0]] == ["0", "1", "2", "3"]
    close([c[1] for c in results[0]], want)


def test_regress_single_output_model(api):
    body = {"examples": [{"INPUT0": [3.5]}, {"INPUT0": [-1.25]}, {"INPUT0": [7]}]}
    assert ok_json(predict(api, "identity_fp32", body, verb="regress")) == {"results": [3.5, -1.25, 7.0]}
    # Per-feature columns of the one input work too.
    assert ok_json(predict(api, "identity_fp32", {"examples": [{"a": 2.0}, {"a": 4.5}]},
                           verb="regress")) == {"results": [2.0, 4.5]}
    # Two values per example cannot be one regression result.
    msg = assert_error(predict(api, "identity_fp32", {"examples": [{"INPUT0": [1, 2]}]},
                               verb="regress"), 400)
    assert "one value per example" in msg
    # breast_cancer has two outputs and none named 'outputs'.
    exp = lib.load_expected("breast_cancer")
    rows = rows_of(exp["inputs"]["features"])
    assert_error(predict(api, "breast_cancer", {"examples": [{"features": rows[0]}]},
                         verb="regress"), 400)


# ----------------------------------------------------------------------------- errors

BAD_PREDICTS = [
    ("breast_cancer", b'{"instances": [[1, 2', 400, "malformed JSON"),
    ("breast_cancer", b'[1, 2]', 400, "JSON object"),
    ("breast_cancer", {"instances": [[0.0] * 30], "inputs": [[0.0] * 30]}, 400, "both"),
    ("breast_cancer", {"signature_name": "serving_default"}, 400, "instances"),
    ("breast_cancer", {"instances": []}, 400, "empty"),
    ("breast_cancer", {"instances": [[0.0] * 30, [0.0] * 29]}, 400, "ragged"),
    ("breast_cancer", {"instances": [[0.0] * 30, 5.0]}, 400, "ragged"),
    ("identity_fp32", {"instances": [[[1.0], [2.0, 3.0]]]}, 400, "ragged"),
    ("identity_fp32", {"inputs": [[1.0, 2.0], [3.0]]}, 400, "ragged"),
    ("breast_cancer", {"instances": [["a"] * 30]}, 400, "expects numbers"),
    ("identity_int8", {"instances": [[300]]}, 400, "out of range"),
    ("identity_int32", {"instances": [[1.5]]}, 400, "integers"),
    ("identity_uint8", {"instances": [[-1]]}, 400, "out of range"),
    ("identity_fp16", {"instances": [[70000.0]]}, 400, "out of range"),
    ("identity_fp32", {"instances": [[1e39]]}, 400, "out of range"),
    ("identity_bool", {"instances": [[1]]}, 400, "true or false"),
    ("identity_fp32", {"instances": [[{"b64": "AAAA"}]]}, 400, "b64"),
    ("identity_bytes", {"instances": [[{"b64": "not base64!"}]]}, 400, "base64"),
    ("breast_cancer", {"instances": [{"feature": [0.0] * 30}]}, 400, "unknown input 'feature'"),
    ("breast_cancer", {"inputs": {"features": [[0.0] * 30], "extra": [1]}}, 400, "unknown input 'extra'"),
    ("multi_input", {"instances": [{"x": [0.0] * 4}]}, 400, "lacks input"),
    ("multi_input", {"instances": [[0.0] * 4]}, 400, "object naming them"),
    ("multi_input", {"inputs": [[0.0] * 4]}, 400, "object naming them"),
    ("breast_cancer", {"signature_name": "classify_x", "instances": [[0.0] * 30]}, 400, "signature"),
    ("breast_cancer", {"signature_name": 3, "instances": [[0.0] * 30]}, 400, "signature_name"),
    ("breast_cancer", {"instances": [[0.0] * 31]}, 400, None),  # the core's shape check
]


@pytest.mark.parametrize("model,body,status,text", BAD_PREDICTS)
def test_bad_predict_requests(api, model, body, status, text):
    msg = assert_error(predict(api, model, body), status)
    if text:
        assert text.lower() in msg.lower(), msg


BAD_EXAMPLES = [
    ("breast_cancer", "classify", {"instances": [[0.0] * 30]}, "examples"),
    ("breast_cancer", "classify", {"examples": []}, "empty"),
    ("breast_cancer", "classify", {"examples": [1, 2]}, "object"),
    ("breast_cancer", "classify", {"examples": [{"features": [0.0] * 30, "other": 1}]}, "unknown feature"),
    ("breast_cancer", "classify", {"context": {"features": [0.0] * 30},
                                   "examples": [{"features": [0.0] * 30}]}, "context"),
    ("breast_cancer", "classify", {"examples": [{"a": 1.0, "b": 2.0}, {"a": 1.0}]}, "differ"),
    ("multi_input", "classify", {"examples": [{"x": [0.0] * 4}]}, "lacks feature"),
    ("breast_cancer", "regress", {"signature_name": "regression", "examples": [{"a": 1}]}, "signature"),
]


@pytest.mark.parametrize("model,verb,body,text", BAD_EXAMPLES)
def test_bad_classify_and_regress_requests(api, model, verb, body, text):
    msg = assert_error(predict(api, model, body, verb=verb), 400)
    assert text.lower() in msg.lower(), msg


def test_unknown_model_version_label_and_paths(api):
    body = {"instances": [[0.0] * 30]}
    assert_error(predict(api, "no_such_model", body), 404)
    assert_error(predict(api, "breast_cancer", body, prefix="/versions/7"), 404)
    assert_error(predict(api, "breast_cancer", body, prefix="/labels/nope"), 404)
    assert_error(predict(api, "breast_cancer", body, verb="explode"), 400)
    assert_error(api.get("/v1/models/breast_cancer:predict"), 405)
    assert_error(api.post("/v1/models/breast_cancer/metadata", json={}), 405)
    assert_error(api.post("/v1/models/breast_cancer:", json=body), 400)
    for path in ("/v1", "/v1/other", "/v1/models/breast_cancer/versions/x",
                 "/v1/models/breast_cancer/versions/1/labels/a", "/v1/models/breast_cancer/extra"):
        msg = assert_error(api.get(path), 400)
        assert "Malformed request" in msg


def test_server_keeps_serving_after_bad_requests(api):
    for model, body, _, _ in BAD_PREDICTS:
        predict(api, model, body)
    api.assert_healthy()
    exp = lib.load_expected("breast_cancer")
    r = predict(api, "breast_cancer", {"instances": rows_of(exp["inputs"]["features"])})
    assert r.status_code == 200, r.text


# ----------------------------------------------------------------------------- access

def test_tf_serving_calls_need_only_the_infer_role(tmp_path):
    from test_security import INFER, bearer, start

    srv, _ = start(tmp_path)
    try:
        url = srv.http_url
        body = {"instances": [[1.0, 2.0, 3.0, 4.0]]}
        for verb, payload in (("predict", body), ("regress", {"examples": [{"x": [1.0, 2, 3, 4]}]}),
                              ("classify", {"examples": [{"x": [1.0, 2, 3, 4]}]})):
            r = requests.post(f"{url}/v1/models/scale:{verb}", json=payload, timeout=30)
            assert r.status_code == 401, (verb, r.text)
            r = requests.post(f"{url}/v1/models/scale:{verb}", json=payload, headers=bearer(INFER),
                              timeout=30)
            assert r.status_code in (200, 400), (verb, r.status_code, r.text)  # never 403
            if verb == "predict":
                assert r.json() == {"predictions": [[1.0, 2.0, 3.0, 4.0]]}
        r = requests.post(f"{url}/v1/models/scale/versions/1:PREDICT", json=body, headers=bearer(INFER),
                          timeout=30)
        assert r.status_code == 200, r.text
        for path in ("/v1/models/scale", "/v1/models/scale/metadata"):
            assert requests.get(url + path, timeout=30).status_code == 401
            assert requests.get(url + path, headers=bearer(INFER), timeout=30).status_code == 200
    finally:
        lib.stop_ok(srv)


def test_tf_serving_stays_on_the_main_listener(tmp_path):
    from test_security import start

    admin_port = lib.free_port()
    srv, _ = start(tmp_path, "--admin-http-port", str(admin_port), keys=None)
    try:
        body = {"instances": [[1.0, 2.0, 3.0, 4.0]]}
        r = requests.post(f"{srv.http_url}/v1/models/scale:predict", json=body, timeout=30)
        assert r.status_code == 200, r.text
        r = requests.post(f"http://127.0.0.1:{admin_port}/v1/models/scale:predict", json=body,
                          timeout=30)
        assert r.status_code == 404
    finally:
        lib.stop_ok(srv)
