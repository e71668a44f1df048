"""KServe v2 REST: health, metadata, config, JSON inference, compression, repository."""

from __future__ import annotations

import gzip
import json
import re
import urllib.request
import zlib

import numpy as np
import pytest

import slipway_testlib as lib


# ----------------------------------------------------------------------------- server

def test_server_metadata(api):
    r = api.get("/v2")
    assert r.status_code == 200
    assert "json" in r.headers["Content-Type"]
    body = r.json()
    assert body["name"] == "slipway"
    assert isinstance(body["version"], str) and body["version"]
    exts = body["extensions"]
    assert isinstance(exts, list) and all(isinstance(e, str) for e in exts)
    # What the server implements must be advertised (perf_analyzer / clients read this).
    for ext in ("binary_tensor_data", "model_configuration", "model_repository"):
        assert ext in exts, f"{ext} missing from {exts}"
    # ... and nothing it does not implement: statistics only with a stats endpoint.
    if "statistics" in exts:
        assert api.get("/v2/models/add_sub/stats").status_code == 200


def test_health_live(api):
    r = api.get("/v2/health/live")
    assert r.status_code == 200
    assert r.json() == {"live": True}


def test_health_ready_is_false_with_failed_models_under_strict_readiness(api):
    # tests/models holds broken and bad_config, and strict readiness is the default.
    r = api.get("/v2/health/ready")
    assert r.status_code == 503, r.text
    assert r.json() == {"ready": False}


# ----------------------------------------------------------------------------- metadata

def test_model_metadata_batching_model(api):
    r = api.get("/v2/models/breast_cancer")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "name": "breast_cancer",
        "versions": ["1"],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, 30]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
                    {"name": "label", "datatype": "INT64", "shape": [-1]}],
    }


def test_model_metadata_multi_version_and_types(api):
    body = api.get("/v2/models/multi_input").json()
    assert body["name"] == "multi_input"
    assert sorted(body["versions"]) == ["1", "2"]
    assert body["platform"] == "onnxruntime_onnx"
    assert body["inputs"] == [
        {"name": "x", "datatype": "FP32", "shape": [-1, 4]},
        {"name": "scale", "datatype": "FP64", "shape": [-1, 1]},
        {"name": "offset", "datatype": "INT32", "shape": [-1, 4]},
        {"name": "mask", "datatype": "BOOL", "shape": [-1, 4]},
    ]
    assert body["outputs"] == [
        {"name": "y", "datatype": "FP32", "shape": [-1, 4]},
        {"name": "count", "datatype": "INT64", "shape": [-1]},
    ]


def test_model_metadata_with_version(api):
    r = api.get("/v2/models/multi_input/versions/1")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "multi_input"
    assert "1" in body["versions"]
    assert [i["name"] for i in body["inputs"]] == ["x", "scale", "offset", "mask"]


def test_model_metadata_non_batching_model_has_no_batch_dim(api):
    body = api.get("/v2/models/fixed_shape").json()
    assert body["inputs"] == [{"name": "INPUT0", "datatype": "FP32", "shape": [2, 3]}]
    assert body["outputs"] == [{"name": "OUTPUT0", "datatype": "FP32", "shape": [2, 3]}]


@pytest.mark.parametrize("dt", ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                                "uint64", "fp16", "fp32", "fp64", "bytes", "bf16"])
def test_identity_metadata_datatypes(api, dt):
    body = api.get(f"/v2/models/identity_{dt}").json()
    assert body["inputs"] == [{"name": "INPUT0", "datatype": dt.upper(), "shape": [-1, -1]}]
    assert body["outputs"] == [{"name": "OUTPUT0", "datatype": dt.upper(), "shape": [-1, -1]}]


def test_triton_style_metadata(api):
    body = api.get("/v2/models/triton_style").json()
    assert body["inputs"] == [{"name": "INPUT0", "datatype": "FP32", "shape": [-1, 16]},
                              {"name": "INPUT1", "datatype": "FP32", "shape": [-1, 16]}]
    assert [o["name"] for o in body["outputs"]] == ["OUTPUT0", "OUTPUT1"]


@pytest.mark.parametrize("path", ["/v2/models/add_sub/ready", "/v2/models/add_sub/versions/1/ready",
                                  "/v2/models/multi_input/versions/2/ready"])
def test_model_ready(api, path):
    r = api.get(path)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ready"] is True
    assert body["name"] == path.split("/")[3]


@pytest.mark.parametrize("model", ["broken", "bad_config"])
def test_failed_model_not_ready(api, model):
    r = api.get(f"/v2/models/{model}/ready")
    # Not ready: a non-2xx status (KServe: 503), or 200 with ready false.
    if r.status_code == 200:
        assert r.json()["ready"] is False
    else:
        assert r.status_code in (400, 404, 503), r.status_code
        if r.content:
            assert r.json().get("ready", False) is False


# ----------------------------------------------------------------------------- config

def test_model_config_multi_input(api):
    r = api.get("/v2/models/multi_input/config")
    assert r.status_code == 200, r.text
    c = r.json()
    assert c["name"] == "multi_input"
    assert c["platform"] == "onnxruntime_onnx"
    assert c["backend"] == "onnxruntime"
    assert c["max_batch_size"] == 16
    assert [(i["name"], i["data_type"], i["dims"]) for i in c["input"]] == [
        ("x", "TYPE_FP32", [4]), ("scale", "TYPE_FP64", [1]),
        ("offset", "TYPE_INT32", [4]), ("mask", "TYPE_BOOL", [4])]
    assert [(o["name"], o["data_type"]) for o in c["output"]] == [("y", "TYPE_FP32"), ("count", "TYPE_INT64")]
    assert c["output"][0]["dims"] == [4]
    # dims are JSON numbers, not the quoted int64 strings of proto3 JSON.
    assert all(isinstance(d, int) for i in c["input"] + c["output"] for d in i["dims"])
    assert "all" in c["version_policy"], c["version_policy"]


def test_model_config_triton_style(api):
    c = api.get("/v2/models/triton_style/config").json()
    assert c["name"] == "triton_style"
    assert c["max_batch_size"] == 8
    assert [(i["name"], i["data_type"], i["dims"]) for i in c["input"]] == [
        ("INPUT0", "TYPE_FP32", [16]), ("INPUT1", "TYPE_FP32", [16])]
    assert c["version_policy"] == {"latest": {"num_versions": 1}}
    assert c["instance_group"][0]["count"] == 1
    assert c["instance_group"][0]["kind"] == "KIND_CPU"
    assert "dynamic_batching" in c


@pytest.mark.parametrize("model,mbs,dims", [("breast_cancer", None, [30]), ("fixed_shape", 0, [2, 3])])
def test_model_config_defaults(api, model, mbs, dims):
    """Models without a config file: auto-completed Triton-style config."""
    c = api.get(f"/v2/models/{model}/config").json()
    for key in ("name", "platform", "backend", "max_batch_size", "input", "output", "version_policy",
                "instance_group", "default_model_filename"):
        assert key in c, f"{key} missing from config {c}"
    assert c["name"] == model
    assert c["platform"] == "onnxruntime_onnx"
    assert c["backend"] == "onnxruntime"
    if mbs is None:
        assert c["max_batch_size"] >= 1
    else:
        assert c["max_batch_size"] == mbs
    assert c["input"][0]["dims"] == dims
    assert c["input"][0]["data_type"] == "TYPE_FP32"
    # The file the server actually loads is <version>/model.onnx.
    assert c["default_model_filename"] == "model.onnx"
    assert isinstance(c["instance_group"], list) and c["instance_group"]
    for group in c["instance_group"]:
        assert group["kind"] == "KIND_CPU"
        assert group["count"] >= 1, f"instance_group count must be >= 1 (Triton rejects 0): {group}"


def test_model_config_bytes_is_type_string(api):
    c = api.get("/v2/models/identity_bytes/config").json()
    assert c["input"][0]["data_type"] == "TYPE_STRING"
    assert c["output"][0]["data_type"] == "TYPE_STRING"


def test_model_config_versioned_path(api):
    r = api.get("/v2/models/multi_input/versions/1/config")
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "multi_input"


# ----------------------------------------------------------------------------- inference

def test_infer_json_with_id_and_parameters(api):
    exp = lib.load_expected("breast_cancer")
    r = api.infer_json("breast_cancer", lib.expected_inputs(exp), request_id="req-42",
                       parameters={"custom": "x", "n": 3, "flag": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_name"] == "breast_cancer"
    assert body["model_version"] == "1"
    assert body["id"] == "req-42"
    assert [o["name"] for o in body["outputs"]] == ["probabilities", "label"]
    for out in body["outputs"]:
        e = exp["outputs"][out["name"]]
        assert out["datatype"] == e["datatype"]
        assert out["shape"] == e["shape"]
        assert all(not isinstance(v, list) for v in out["data"]), "response data must be flat"
        lib.assert_matches_expected(out["datatype"], lib.from_json_data(out["datatype"], out["data"], out["shape"]),
                                    e["data"], e["shape"], what=out["name"])


def test_infer_json_without_id_gets_a_generated_id(api):
    """Every answer carries an id, so ground truth can be fed back for it later."""
    exp = lib.load_expected("add_sub")
    ids = set()
    for _ in range(3):
        r = api.infer_json("add_sub", lib.expected_inputs(exp))
        assert r.status_code == 200, r.text
        rid = r.json()["id"]
        assert re.fullmatch(r"[0-9a-f]{16}", rid), rid
        ids.add(rid)
    assert len(ids) == 3


def test_infer_json_nested_data_equals_flat(api):
    exp = lib.load_expected("image_cnn")
    t = exp["inputs"]["image"]
    arr = np.array(t["data"], dtype=np.float32).reshape(t["shape"])
    nested = {"inputs": [{"name": "image", "datatype": "FP32", "shape": t["shape"], "data": arr.tolist()}]}
    flat = {"inputs": [{"name": "image", "datatype": "FP32", "shape": t["shape"], "data": t["data"]}]}
    rn = api.post("/v2/models/image_cnn/infer", json=nested)
    rf = api.post("/v2/models/image_cnn/infer", json=flat)
    assert rn.status_code == 200, rn.text
    assert rf.status_code == 200, rf.text
    assert rn.json()["outputs"] == rf.json()["outputs"]
    out = rn.json()["outputs"][0]
    e = exp["outputs"]["logits"]
    lib.assert_matches_expected("FP32", np.array(out["data"], np.float32).reshape(out["shape"]),
                                e["data"], e["shape"], what="logits")


def test_infer_requested_output_subset(api):
    exp = lib.load_expected("breast_cancer")
    r = api.infer_json("breast_cancer", lib.expected_inputs(exp), outputs=[{"name": "label"}])
    assert r.status_code == 200, r.text
    outs = r.json()["outputs"]
    assert [o["name"] for o in outs] == ["label"]
    assert outs[0]["data"] == exp["outputs"]["label"]["data"]


def test_infer_default_version_is_highest(api):
    e1, e2 = lib.load_expected("multi_input", "1"), lib.load_expected("multi_input", "2")
    r = api.infer_json("multi_input", lib.expected_inputs(e2))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version"] == "2"
    y = {o["name"]: o for o in body["outputs"]}["y"]
    lib.assert_matches_expected("FP32", np.array(y["data"], np.float32).reshape(y["shape"]),
                                e2["outputs"]["y"]["data"], e2["outputs"]["y"]["shape"], what="y v2")

    r1 = api.infer_json("multi_input", lib.expected_inputs(e1), version="1")
    assert r1.status_code == 200, r1.text
    assert r1.json()["model_version"] == "1"
    y1 = {o["name"]: o for o in r1.json()["outputs"]}["y"]
    lib.assert_matches_expected("FP32", np.array(y1["data"], np.float32).reshape(y1["shape"]),
                                e1["outputs"]["y"]["data"], e1["outputs"]["y"]["shape"], what="y v1")
    # v2 doubles y.
    np.testing.assert_allclose(np.array(y["data"]), 2 * np.array(y1["data"]), rtol=1e-6)


def test_infer_triton_style_config_pbtxt_model(api):
    exp = lib.load_expected("triton_style")
    r = api.infer_json("triton_style", lib.expected_inputs(exp))
    assert r.status_code == 200, r.text
    for out in r.json()["outputs"]:
        e = exp["outputs"][out["name"]]
        lib.assert_matches_expected("FP32", np.array(out["data"], np.float32).reshape(out["shape"]),
                                    e["data"], e["shape"], what=out["name"])


def test_infer_batch_at_max_batch_size(api):
    rows = 16  # multi_input max_batch_size
    x = np.ones((rows, 4), np.float32)
    inputs = [("x", "FP32", x), ("scale", "FP64", np.ones((rows, 1))),
              ("offset", "INT32", np.zeros((rows, 4), np.int32)), ("mask", "BOOL", np.ones((rows, 4), bool))]
    r = api.infer_json("multi_input", inputs)
    assert r.status_code == 200, r.text
    outs = {o["name"]: o for o in r.json()["outputs"]}
    assert outs["y"]["shape"] == [rows, 4]
    assert outs["count"]["shape"] == [rows]
    assert outs["count"]["data"] == [4] * rows


@pytest.mark.parametrize("content_type", [None, "application/json", "application/octet-stream", "text/plain",
                                          "application/x-www-form-urlencoded"])
def test_content_type_is_not_required(base_url, content_type):
    """The server must not depend on Content-Type (Triton never checks it). `curl -d @req.json`
    sends application/x-www-form-urlencoded; bodies above 8 KiB must still be served."""
    import http.client
    req, data = _big_identity_request(2048)  # ~20 KB of JSON
    body = json.dumps(req).encode()
    conn = http.client.HTTPConnection("127.0.0.1", int(base_url.rsplit(":", 1)[1]), timeout=lib.REQUEST_TIMEOUT_S)
    try:
        conn.putrequest("POST", "/v2/models/identity_fp32/infer")
        conn.putheader("Content-Length", str(len(body)))
        if content_type:
            conn.putheader("Content-Type", content_type)
        conn.endheaders(body)
        resp = conn.getresponse()
        out = resp.read()
    finally:
        conn.close()
    assert resp.status == 200, (resp.status, out[:300])
    assert json.loads(out)["outputs"][0]["data"] == data


# ----------------------------------------------------------------------------- compression

def _big_identity_request(n=4096):
    data = (np.arange(n, dtype=np.float32) * 0.25).tolist()
    return {"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [1, n], "data": data}]}, data


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compressed_request_body(api, encoding):
    req, data = _big_identity_request()
    raw = json.dumps(req).encode()
    body = gzip.compress(raw) if encoding == "gzip" else zlib.compress(raw)
    r = api.post("/v2/models/identity_fp32/infer", data=body,
                 headers={"Content-Encoding": encoding, "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == data


def _raw_post(url, body: bytes, headers):
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=lib.REQUEST_TIMEOUT_S) as resp:
        return resp.status, dict(resp.headers), resp.read()


def test_gzip_response_when_accepted(base_url):
    req, data = _big_identity_request()
    status, headers, raw = _raw_post(base_url + "/v2/models/identity_fp32/infer", json.dumps(req).encode(),
                                     {"Content-Type": "application/json", "Accept-Encoding": "gzip"})
    assert status == 200
    hdr = {k.lower(): v for k, v in headers.items()}
    assert hdr.get("content-encoding") == "gzip", headers
    body = json.loads(gzip.decompress(raw))
    assert body["outputs"][0]["data"] == data


def test_no_compression_when_not_accepted(base_url):
    req, data = _big_identity_request()
    status, headers, raw = _raw_post(base_url + "/v2/models/identity_fp32/infer", json.dumps(req).encode(),
                                     {"Content-Type": "application/json", "Accept-Encoding": "identity"})
    assert status == 200
    hdr = {k.lower(): v for k, v in headers.items()}
    assert hdr.get("content-encoding", "identity") == "identity", headers
    assert json.loads(raw)["outputs"][0]["data"] == data


def test_requests_transparent_decompression(api):
    req, data = _big_identity_request()
    r = api.post("/v2/models/identity_fp32/infer", json=req, headers={"Accept-Encoding": "gzip, deflate"})
    assert r.status_code == 200
    assert r.headers.get("Content-Encoding") in ("gzip", "deflate")
    assert r.json()["outputs"][0]["data"] == data


# ----------------------------------------------------------------------------- repository

def _index(api, body=None):
    r = api.post("/v2/repository/index", data=b"" if body is None else json.dumps(body))
    assert r.status_code == 200, r.text
    idx = r.json()
    assert isinstance(idx, list)
    return idx


def test_repository_index(api):
    idx = _index(api)
    by = {}
    for e in idx:
        assert isinstance(e["name"], str) and e["state"] in ("READY", "UNAVAILABLE", "LOADING", "UNLOADING", "UNKNOWN")
        by.setdefault(e["name"], []).append(e)
    expected_names = {p.name for p in lib.MODELS_DIR.iterdir()
                      if p.is_dir() and not p.name.startswith(".")}
    assert set(by) == expected_names
    assert by["breast_cancer"] == [{"name": "breast_cancer", "version": "1", "state": "READY"}]
    assert sorted((e["version"], e["state"]) for e in by["multi_input"]) == [("1", "READY"), ("2", "READY")]
    for failed in ("broken", "bad_config"):
        (e,) = by[failed]
        assert e["state"] == "UNAVAILABLE"
        assert isinstance(e.get("reason"), str) and e["reason"], e
    for e in idx:
        if e["state"] == "READY":
            assert "reason" not in e or e["reason"] == ""


def test_repository_index_bad_config_reason_names_tensor_and_dims(api):
    (e,) = [e for e in _index(api) if e["name"] == "bad_config"]
    reason = e["reason"]
    assert "INPUT0" in reason, reason
    assert re.search(r"(?<!\d)8(?!\d)", reason), reason
    assert re.search(r"(?<!\d)16(?!\d)", reason), reason


def test_repository_index_broken_reason_mentions_the_model_file(api):
    (e,) = [e for e in _index(api) if e["name"] == "broken"]
    assert re.search(r"model\.onnx|onnx|parse|load", e["reason"], re.I), e["reason"]


def test_repository_index_ready_filter(api):
    idx = _index(api, {"ready": True})
    names = {e["name"] for e in idx}
    assert all(e["state"] == "READY" for e in idx), idx
    assert "broken" not in names and "bad_config" not in names
    assert {"add_sub", "breast_cancer", "image_cnn", "multi_input"} <= names
    # {"ready": false} is no filter.
    assert {e["name"] for e in _index(api, {"ready": False})} >= {"broken", "bad_config", "add_sub"}


def test_repository_index_empty_body_without_content_length(base_url):
    """tritonclient-style empty POST; a POST with no body and no Content-Length is legal HTTP/1.1."""
    import http.client
    host, port = base_url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.putrequest("POST", "/v2/repository/index")
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, (resp.status, body)
        assert isinstance(json.loads(body), list)
    finally:
        conn.close()


def test_unload_and_load(api):
    exp = lib.load_expected("identity_uint8")
    inputs = lib.expected_inputs(exp)
    assert api.infer_json("identity_uint8", inputs).status_code == 200
    r = api.post("/v2/repository/models/identity_uint8/unload", data=b"")
    try:
        assert r.status_code == 200, r.text
        r2 = api.infer_json("identity_uint8", inputs)
        assert r2.status_code == 404, (r2.status_code, r2.text)
        assert "identity_uint8" in lib.error_message(r2)
        ready = api.get("/v2/models/identity_uint8/ready")
        assert ready.status_code != 200 or ready.json()["ready"] is False
        states = [e for e in _index(api) if e["name"] == "identity_uint8"]
        assert all(e.get("state") != "READY" for e in states), states
    finally:
        r3 = api.post("/v2/repository/models/identity_uint8/load", data=b"")
    assert r3.status_code == 200, r3.text
    r4 = api.infer_json("identity_uint8", inputs)
    assert r4.status_code == 200, r4.text
    assert r4.json()["outputs"][0]["data"] == exp["outputs"]["OUTPUT0"]["data"]
    assert api.get("/v2/models/identity_uint8/ready").json()["ready"] is True


def test_load_with_parameters_body(api):
    r = api.post("/v2/repository/models/identity_int8/load", json={"parameters": {}})
    assert r.status_code == 200, r.text
    exp = lib.load_expected("identity_int8")
    assert api.infer_json("identity_int8", lib.expected_inputs(exp)).status_code == 200


def test_load_broken_model_fails(api):
    r = api.post("/v2/repository/models/broken/load", data=b"")
    assert r.status_code >= 400, r.text
    lib.error_message(r)
    api.assert_healthy()


def test_load_unknown_model_fails(api):
    r = api.post("/v2/repository/models/no_such_model/load", data=b"")
    assert r.status_code in (400, 404), r.text
    assert "no_such_model" in lib.error_message(r)
