"""Bad requests: right status, {"error": "..."} naming the problem, and the server keeps serving."""

from __future__ import annotations

import gzip
import json
import re

import numpy as np
import pytest

import slipway_testlib as lib

ADD_SUB = lib.load_expected("add_sub")
A = ADD_SUB["inputs"]["INPUT0"]["data"]
B = ADD_SUB["inputs"]["INPUT1"]["data"]


def inp(name="INPUT0", datatype="FP32", shape=(2, 16), data=None):
    return {"name": name, "datatype": datatype, "shape": list(shape), "data": A if data is None else data}


def good_inputs():
    return [inp("INPUT0", data=A), inp("INPUT1", data=B)]


def multi_rows(rows):
    return {"inputs": [
        {"name": "x", "datatype": "FP32", "shape": [rows, 4], "data": [0.5] * (rows * 4)},
        {"name": "scale", "datatype": "FP64", "shape": [rows, 1], "data": [1.0] * rows},
        {"name": "offset", "datatype": "INT32", "shape": [rows, 4], "data": [1] * (rows * 4)},
        {"name": "mask", "datatype": "BOOL", "shape": [rows, 4], "data": [True] * (rows * 4)},
    ]}


def binary_body(sizes_declared, blob_len, extra=b""):
    """add_sub request with INPUT0 binary (declared size) + INPUT1 JSON; blob of blob_len bytes."""
    header = {"inputs": [
        {"name": "INPUT0", "datatype": "FP32", "shape": [2, 16], "parameters": {"binary_data_size": sizes_declared}},
        inp("INPUT1", data=B)]}
    h = json.dumps(header).encode()
    blob = np.arange(blob_len // 4 + 1, dtype=np.float32).tobytes()[:blob_len]
    return h + blob + extra, len(h)


# (id, path, body (dict -> JSON, bytes -> raw), headers, status, regexes the message must match)
CASES = [
    ("malformed_json", "/v2/models/add_sub/infer", b'{"inputs": [', {}, 400, [r"json|pars|syntax|malformed"]),
    ("body_not_object", "/v2/models/add_sub/infer", b"[1, 2, 3]", {}, 400, [r"object"]),
    ("body_string", "/v2/models/add_sub/infer", b'"hello"', {}, 400, [r"object"]),
    ("empty_body", "/v2/models/add_sub/infer", b"", {}, 400, []),
    ("inputs_missing", "/v2/models/add_sub/infer", {"id": "1"}, {}, 400, [r"inputs"]),
    ("inputs_not_array", "/v2/models/add_sub/infer", {"inputs": {"name": "INPUT0"}}, {}, 400, [r"inputs"]),
    ("missing_input", "/v2/models/add_sub/infer", {"inputs": [inp("INPUT0")]}, {}, 400, [r"INPUT1"]),
    ("unknown_input", "/v2/models/add_sub/infer", {"inputs": good_inputs() + [inp("INPUT9")]}, {}, 400,
     [r"INPUT9"]),
    ("duplicate_input", "/v2/models/add_sub/infer", {"inputs": good_inputs() + [inp("INPUT0")]}, {}, 400,
     [r"INPUT0", r"duplicate|more than once|twice|repeated|already"]),
    ("wrong_datatype", "/v2/models/add_sub/infer",
     {"inputs": [inp("INPUT0", datatype="FP64"), inp("INPUT1", data=B)]}, {}, 400, [r"INPUT0", r"FP64|FP32|datatype|type"]),
    ("unknown_datatype", "/v2/models/add_sub/infer",
     {"inputs": [inp("INPUT0", datatype="FLOAT"), inp("INPUT1", data=B)]}, {}, 400, [r"FLOAT|datatype|type"]),
    ("too_few_elements", "/v2/models/add_sub/infer",
     {"inputs": [inp("INPUT0", data=A[:-1]), inp("INPUT1", data=B)]}, {}, 400, [r"INPUT0", r"element|shape|count|size|match"]),
    ("too_many_elements", "/v2/models/add_sub/infer",
     {"inputs": [inp("INPUT0", data=A + [1.0]), inp("INPUT1", data=B)]}, {}, 400, [r"INPUT0", r"element|shape|count|size|match"]),
    ("ragged_nested_data", "/v2/models/add_sub/infer",
     {"inputs": [inp("INPUT0", data=[A[:16], A[16:31]]), inp("INPUT1", data=B)]}, {}, 400, [r"INPUT0"]),
    ("element_wrong_json_type", "/v2/models/add_sub/infer",
     {"inputs": [inp("INPUT0", data=["x"] * 32), inp("INPUT1", data=B)]}, {}, 400, [r"INPUT0"]),
    ("negative_dimension", "/v2/models/add_sub/infer",
     {"inputs": [inp("INPUT0", shape=(-2, -16)), inp("INPUT1", data=B)]}, {}, 400, [r"INPUT0|shape|dim|negative"]),
    ("overflowing_dimension", "/v2/models/add_sub/infer",
     {"inputs": [inp("INPUT0", shape=(2**63, 16), data=[]), inp("INPUT1", data=B)]}, {}, 400, [r"INPUT0|shape|dim|overflow|large"]),
    ("overflowing_uint64_dimension", "/v2/models/add_sub/infer",
     {"inputs": [inp("INPUT0", shape=(2**64, 16), data=[]), inp("INPUT1", data=B)]}, {}, 400, []),
    ("overflowing_shape_product", "/v2/models/identity_fp32/infer",
     {"inputs": [inp("INPUT0", shape=(2**32, 2**32), data=[])]}, {}, 400, [r"INPUT0|shape|dim|overflow|large|element"]),
    ("wrong_inner_dim", "/v2/models/add_sub/infer",
     {"inputs": [inp("INPUT0", shape=(4, 8)), inp("INPUT1", data=B)]}, {}, 400, [r"INPUT0", r"shape|dim"]),
    ("wrong_rank", "/v2/models/add_sub/infer",
     {"inputs": [inp("INPUT0", shape=(32,)), inp("INPUT1", data=B)]}, {}, 400, [r"INPUT0", r"shape|dim|rank"]),
    ("fixed_shape_mismatch", "/v2/models/fixed_shape/infer",
     {"inputs": [inp("INPUT0", shape=(3, 2), data=[1.0] * 6)]}, {}, 400, [r"INPUT0", r"shape|dim"]),
    ("batch_above_max", "/v2/models/multi_input/infer", multi_rows(17), {}, 400, [r"batch|16|17"]),
    ("unknown_output", "/v2/models/add_sub/infer", {"inputs": good_inputs(), "outputs": [{"name": "NOPE"}]}, {},
     400, [r"NOPE"]),
    ("fp16_as_json", "/v2/models/identity_fp16/infer",
     {"inputs": [inp("INPUT0", datatype="FP16", shape=(1, 2), data=[1.0, 2.0])]}, {}, 400, [r"binary|FP16"]),
    ("bf16_as_json", "/v2/models/identity_bf16/infer",
     {"inputs": [inp("INPUT0", datatype="BF16", shape=(1, 2), data=[1.0, 2.0])]}, {}, 400, [r"binary|BF16"]),
    ("bool_given_numbers", "/v2/models/identity_bool/infer",
     {"inputs": [inp("INPUT0", datatype="BOOL", shape=(1, 2), data=["yes", "no"])]}, {}, 400, [r"INPUT0"]),
    ("unknown_model", "/v2/models/no_such_model/infer", {"inputs": good_inputs()}, {}, 404, [r"no_such_model"]),
    ("unknown_version", "/v2/models/add_sub/versions/7/infer", {"inputs": good_inputs()}, {}, 404, [r"7|version"]),
    ("unknown_model_metadata", "/v2/models/no_such_model", None, {}, 404, [r"no_such_model"]),
    ("unknown_version_metadata", "/v2/models/add_sub/versions/9", None, {}, 404, [r"9|version"]),
    ("unknown_model_config", "/v2/models/no_such_model/config", None, {}, 404, [r"no_such_model"]),
    ("unknown_model_ready", "/v2/models/no_such_model/ready", None, {}, 404, []),
    ("unknown_content_encoding", "/v2/models/add_sub/infer", {"inputs": good_inputs()},
     {"Content-Encoding": "br"}, (400, 415), [r"encoding|br"]),
    ("unknown_content_encoding_foo", "/v2/models/add_sub/infer", {"inputs": good_inputs()},
     {"Content-Encoding": "foo"}, (400, 415), [r"encoding|foo"]),
    ("corrupt_gzip_body", "/v2/models/add_sub/infer", b"\x1f\x8b\x08\x00garbage-not-gzip", {"Content-Encoding": "gzip"},
     400, [r"gzip|decompress|compress|encoding|inflate"]),
    ("unknown_path", "/v2/nothing/here", None, {}, 404, []),
    ("unknown_path_root", "/nope", None, {}, 404, []),
    ("unknown_model_subresource", "/v2/models/add_sub/frobnicate", None, {}, 404, []),
    ("non_numeric_version", "/v2/models/add_sub/versions/abc/infer", {"inputs": good_inputs()}, {}, (400, 404), []),
]


def _send(api, path, body, headers):
    if body is None:
        return api.get(path, headers=headers)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    h = {"Content-Type": "application/json"}
    h.update(headers)
    return api.post(path, data=data, headers=h)


@pytest.mark.parametrize("path,body,headers,status,patterns", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_request(api, path, body, headers, status, patterns):
    r = _send(api, path, body, headers)
    statuses = status if isinstance(status, tuple) else (status,)
    assert r.status_code in statuses, f"expected {status}, got {r.status_code}: {r.text[:500]}"
    msg = lib.error_message(r)
    for p in patterns:
        assert re.search(p, msg, re.IGNORECASE), f"error message {msg!r} does not match {p!r}"
    api.assert_healthy()


# ----------------------------------------------------------------------------- binary sizes

@pytest.mark.parametrize("declared,sent,extra", [
    (128, 100, b""),        # too few bytes for the declared size
    (128, 128, b"\x00" * 7),  # extra bytes after the last blob
    (64, 64, b""),          # declared size does not match the shape (2x16 FP32 = 128 B)
    (256, 256, b""),        # declared size larger than the shape needs
], ids=["too_few_bytes", "extra_bytes", "size_smaller_than_shape", "size_larger_than_shape"])
def test_binary_sizes_that_do_not_add_up(api, declared, sent, extra):
    body, hlen = binary_body(declared, sent, extra)
    r = api.post("/v2/models/add_sub/infer", data=body, headers={"Inference-Header-Content-Length": str(hlen)})
    assert r.status_code == 400, (r.status_code, r.text[:300])
    lib.error_message(r)
    api.assert_healthy()


def test_binary_size_sanity_check_passes_when_sizes_add_up(api):
    """The control for the cases above: the same builder with consistent sizes succeeds."""
    body, hlen = binary_body(128, 128)
    r = api.post("/v2/models/add_sub/infer", data=body, headers={"Inference-Header-Content-Length": str(hlen)})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("hlen", ["-1", "abc", "999999"], ids=["negative", "not_a_number", "past_the_end"])
def test_bad_inference_header_content_length(api, hlen):
    body, _ = lib.build_binary_request(lib.expected_inputs(ADD_SUB))
    r = api.post("/v2/models/add_sub/infer", data=body, headers={"Inference-Header-Content-Length": hlen})
    assert r.status_code == 400, (r.status_code, r.text[:300])
    lib.error_message(r)
    api.assert_healthy()


def test_binary_bytes_element_length_past_end(api):
    blob = (1000).to_bytes(4, "little") + b"abc"
    header = {"inputs": [{"name": "INPUT0", "datatype": "BYTES", "shape": [1, 1],
                          "parameters": {"binary_data_size": len(blob)}}]}
    h = json.dumps(header).encode()
    r = api.post("/v2/models/identity_bytes/infer", data=h + blob,
                 headers={"Inference-Header-Content-Length": str(len(h))})
    assert r.status_code == 400, (r.status_code, r.text[:300])
    lib.error_message(r)
    api.assert_healthy()


# ----------------------------------------------------------------------------- body size limit

def test_body_over_limit_is_413(api):
    n = lib.HTTP_MAX_BODY_BYTES + 1024
    header = {"inputs": [{"name": "INPUT0", "datatype": "UINT8", "shape": [1, n],
                          "parameters": {"binary_data_size": n}}]}
    h = json.dumps(header).encode()
    try:
        r = api.post("/v2/models/identity_uint8/infer", data=h + bytes(n),
                     headers={"Inference-Header-Content-Length": str(len(h))})
    except Exception as e:  # the server may close after answering early; it must still answer
        pytest.fail(f"no 413 answer for an oversized body: {e!r}")
    assert r.status_code == 413, (r.status_code, r.text[:300])
    lib.error_message(r)
    api.assert_healthy()


def test_body_under_limit_is_accepted(api):
    """Control for the 413 test: a body just under the limit is served."""
    n = lib.HTTP_MAX_BODY_BYTES - 4096
    header = {"inputs": [{"name": "INPUT0", "datatype": "UINT8", "shape": [1, n],
                          "parameters": {"binary_data_size": n}}],
              "outputs": [{"name": "OUTPUT0", "parameters": {"binary_data": True}}]}
    h = json.dumps(header).encode()
    r = api.post("/v2/models/identity_uint8/infer", data=h + bytes(n),
                 headers={"Inference-Header-Content-Length": str(len(h))})
    assert r.status_code == 200, (r.status_code, r.text[:300])


def test_gzip_bomb_over_limit_is_413(api):
    """The limit applies after decompression."""
    n = lib.HTTP_MAX_BODY_BYTES + 1024
    header = {"inputs": [{"name": "INPUT0", "datatype": "UINT8", "shape": [1, n],
                          "parameters": {"binary_data_size": n}}]}
    h = json.dumps(header).encode()
    compressed = gzip.compress(h + bytes(n))
    assert len(compressed) < lib.HTTP_MAX_BODY_BYTES
    r = api.post("/v2/models/identity_uint8/infer", data=compressed,
                 headers={"Inference-Header-Content-Length": str(len(h)), "Content-Encoding": "gzip"})
    assert r.status_code == 413, (r.status_code, r.text[:300])
    lib.error_message(r)
    api.assert_healthy()


# ----------------------------------------------------------------------------- failed models

@pytest.mark.parametrize("model", ["broken", "bad_config"])
def test_infer_on_failed_model_is_503_with_reason(api, model):
    idx = api.post("/v2/repository/index", data=b"").json()
    (entry,) = [e for e in idx if e["name"] == model]
    body = {"inputs": [inp("INPUT0", data=A), inp("INPUT1", data=B)]}
    r = api.post(f"/v2/models/{model}/infer", json=body)
    assert r.status_code == 503, (r.status_code, r.text)
    msg = lib.error_message(r)
    assert entry["reason"] in msg, f"503 message {msg!r} does not carry the load failure {entry['reason']!r}"
    api.assert_healthy()


@pytest.mark.parametrize("model", ["broken", "bad_config"])
def test_metadata_of_failed_model_is_not_200(api, model):
    r = api.get(f"/v2/models/{model}")
    assert r.status_code in (404, 503), (r.status_code, r.text)
    lib.error_message(r)


# ----------------------------------------------------------------------------- methods

@pytest.mark.parametrize("method,path", [
    ("GET", "/v2/models/add_sub/infer"),
    ("PUT", "/v2/models/add_sub/infer"),
    ("POST", "/v2/health/live"),
    ("DELETE", "/v2/models/add_sub"),
    ("POST", "/v2"),
    ("GET", "/v2/repository/index"),
    ("GET", "/v2/repository/models/add_sub/load"),
])
def test_wrong_method_is_405(api, method, path):
    r = api.s.request(method, api.base + path, timeout=lib.REQUEST_TIMEOUT_S)
    assert r.status_code == 405, (r.status_code, r.text)
    lib.error_message(r)
    api.assert_healthy()
