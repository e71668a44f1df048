"""The binary tensor data extension over HTTP."""

from __future__ import annotations

import gzip
import json
import struct

import numpy as np
import pytest

import slipway_testlib as lib


def _check_outputs(arrays, exp, names=None):
    names = names or list(exp["outputs"])
    assert list(arrays) == names
    for n in names:
        e = exp["outputs"][n]
        lib.assert_matches_expected(e["datatype"], arrays[n], e["data"], e["shape"], what=n)


def test_binary_in_binary_out_layout(api):
    exp = lib.load_expected("add_sub")
    r = api.infer_binary("add_sub", lib.expected_inputs(exp), parameters={"binary_data_output": True},
                         request_id="b1")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/octet-stream")
    hlen = int(r.headers["Inference-Header-Content-Length"])
    header = json.loads(r.content[:hlen])
    assert header["model_name"] == "add_sub" and header["model_version"] == "1" and header["id"] == "b1"
    sizes = []
    for out in header["outputs"]:
        assert "data" not in out
        assert out["shape"] == [2, 16] and out["datatype"] == "FP32"
        sizes.append(out["parameters"]["binary_data_size"])
    assert sizes == [2 * 16 * 4, 2 * 16 * 4]
    assert len(r.content) == hlen + sum(sizes)
    # Blobs follow output order.
    _, arrays = lib.parse_binary_response(r)
    _check_outputs(arrays, exp, ["OUTPUT0", "OUTPUT1"])


def test_binary_output_per_output_flag_mixed(api):
    exp = lib.load_expected("add_sub")
    outputs = [{"name": "OUTPUT1", "parameters": {"binary_data": True}},
               {"name": "OUTPUT0", "parameters": {"binary_data": False}}]
    r = api.infer_binary("add_sub", lib.expected_inputs(exp), outputs=outputs)
    assert r.status_code == 200, r.text
    header, arrays = lib.parse_binary_response(r)
    outs = {o["name"]: o for o in header["outputs"]}
    assert set(outs) == {"OUTPUT0", "OUTPUT1"}
    assert "data" in outs["OUTPUT0"] and "binary_data_size" not in (outs["OUTPUT0"].get("parameters") or {})
    assert outs["OUTPUT1"]["parameters"]["binary_data_size"] == 128
    _check_outputs({n: arrays[n] for n in ("OUTPUT0", "OUTPUT1")}, exp, ["OUTPUT0", "OUTPUT1"])


def test_per_output_flag_overrides_request_default(api):
    exp = lib.load_expected("add_sub")
    outputs = [{"name": "OUTPUT0", "parameters": {"binary_data": False}}, {"name": "OUTPUT1"}]
    r = api.infer_binary("add_sub", lib.expected_inputs(exp), outputs=outputs,
                         parameters={"binary_data_output": True})
    assert r.status_code == 200, r.text
    header, arrays = lib.parse_binary_response(r)
    outs = {o["name"]: o for o in header["outputs"]}
    assert "data" in outs["OUTPUT0"]
    assert "binary_data_size" in outs["OUTPUT1"]["parameters"]
    _check_outputs({n: arrays[n] for n in ("OUTPUT0", "OUTPUT1")}, exp, ["OUTPUT0", "OUTPUT1"])


def test_binary_inputs_json_outputs(api):
    exp = lib.load_expected("breast_cancer")
    r = api.infer_binary("breast_cancer", lib.expected_inputs(exp))
    assert r.status_code == 200, r.text
    assert "json" in r.headers["Content-Type"]
    body = r.json()  # whole body is JSON
    for out in body["outputs"]:
        assert "data" in out
    _, arrays = lib.parse_binary_response(r)
    _check_outputs(arrays, exp)


def test_mixed_binary_and_json_inputs(api):
    exp = lib.load_expected("multi_input", "2")
    r = api.infer_binary("multi_input", lib.expected_inputs(exp), binary_inputs={"scale", "mask"},
                         parameters={"binary_data_output": True})
    assert r.status_code == 200, r.text
    header, arrays = lib.parse_binary_response(r)
    assert header["model_version"] == "2"
    _check_outputs(arrays, exp)


def test_lowercase_header_name(api):
    exp = lib.load_expected("add_sub")
    body, hlen = lib.build_binary_request(lib.expected_inputs(exp))
    r = api.post("/v2/models/add_sub/infer", data=body, headers={"inference-header-content-length": str(hlen)})
    assert r.status_code == 200, r.text
    _, arrays = lib.parse_binary_response(r)
    _check_outputs(arrays, exp)


@pytest.mark.parametrize("dt", ["fp16", "bf16"])
def test_half_types_roundtrip_binary(api, dt):
    exp = lib.load_expected(f"identity_{dt}")
    r = api.infer_binary(f"identity_{dt}", lib.expected_inputs(exp), parameters={"binary_data_output": True})
    assert r.status_code == 200, r.text
    header, arrays = lib.parse_binary_response(r)
    assert header["outputs"][0]["datatype"] == dt.upper()
    sent = lib.encode_tensor(dt.upper(), lib.expected_inputs(exp)[0][2])
    assert lib.encode_tensor(dt.upper(), arrays["OUTPUT0"]) == sent  # identity: bit-for-bit
    _check_outputs(arrays, exp)


def test_bytes_binary_arbitrary_bytes(api):
    """Binary BYTES may carry non-UTF-8 data and NULs; identity echoes them exactly."""
    values = [b"\xff\xfe\x00bin", b"", b"\x00", "ünï".encode(), b"x" * 1000, bytes(range(256))]
    arr = np.empty(6, dtype=object)
    arr[:] = values
    arr = arr.reshape(2, 3)
    r = api.infer_binary("identity_bytes", [("INPUT0", "BYTES", arr)], parameters={"binary_data_output": True})
    assert r.status_code == 200, r.text
    header, arrays = lib.parse_binary_response(r)
    out = header["outputs"][0]
    assert out["datatype"] == "BYTES" and out["shape"] == [2, 3]
    assert out["parameters"]["binary_data_size"] == sum(4 + len(v) for v in values)
    assert list(arrays["OUTPUT0"].reshape(-1)) == values


def test_bytes_binary_layout_is_length_prefixed(api):
    arr = np.empty((1, 2), dtype=object)
    arr[0, 0], arr[0, 1] = b"ab", b"cde"
    r = api.infer_binary("identity_bytes", [("INPUT0", "BYTES", arr)], parameters={"binary_data_output": True})
    assert r.status_code == 200, r.text
    hlen = int(r.headers["Inference-Header-Content-Length"])
    assert r.content[hlen:] == struct.pack("<I", 2) + b"ab" + struct.pack("<I", 3) + b"cde"


def test_bool_binary_is_one_byte_per_element(api):
    arr = np.array([[True, False, True]], dtype=bool)
    r = api.infer_binary("identity_bool", [("INPUT0", "BOOL", arr)], parameters={"binary_data_output": True})
    assert r.status_code == 200, r.text
    hlen = int(r.headers["Inference-Header-Content-Length"])
    assert r.content[hlen:] == b"\x01\x00\x01"


def test_gzip_binary_request(api):
    exp = lib.load_expected("add_sub")
    body, hlen = lib.build_binary_request(lib.expected_inputs(exp))
    r = api.post("/v2/models/add_sub/infer", data=gzip.compress(body),
                 headers={"Inference-Header-Content-Length": str(hlen), "Content-Encoding": "gzip"})
    assert r.status_code == 200, r.text
    _, arrays = lib.parse_binary_response(r)
    _check_outputs(arrays, exp)


def test_large_binary_request(api):
    """A few MiB of binary input (under the session's body limit) round-trips."""
    n = 1 << 20  # 4 MiB of FP32
    arr = np.arange(n, dtype=np.float32).reshape(1, n)
    r = api.infer_binary("identity_fp32", [("INPUT0", "FP32", arr)], parameters={"binary_data_output": True})
    assert r.status_code == 200, r.text
    _, arrays = lib.parse_binary_response(r)
    assert arrays["OUTPUT0"].tobytes() == arr.tobytes()


def test_binary_output_of_gzip_response(base_url):
    """Binary responses are compressed when asked; lengths refer to the decompressed body."""
    import urllib.request
    n = 4096
    arr = np.zeros((1, n), np.float32)
    body, hlen = lib.build_binary_request([("INPUT0", "FP32", arr)], parameters={"binary_data_output": True})
    req = urllib.request.Request(base_url + "/v2/models/identity_fp32/infer", data=body, method="POST",
                                 headers={"Inference-Header-Content-Length": str(hlen), "Accept-Encoding": "gzip",
                                          "Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(req, timeout=lib.REQUEST_TIMEOUT_S) as resp:
        raw = resp.read()
        enc = resp.headers.get("Content-Encoding")
        ihcl = int(resp.headers["Inference-Header-Content-Length"])
    assert enc == "gzip"
    plain = gzip.decompress(raw)
    header = json.loads(plain[:ihcl])
    assert header["outputs"][0]["parameters"]["binary_data_size"] == 4 * n
    assert plain[ihcl:] == arr.tobytes()


def test_raw_binary_request_without_json_header(api):
    """Inference-Header-Content-Length: 0: the body is the only input's bytes, as batch 1."""
    x = np.arange(6, dtype=np.float32)
    r = api.post("/v2/models/identity_fp32/infer", data=x.tobytes(),
                 headers={"Inference-Header-Content-Length": "0"})
    assert r.status_code == 200, r.text
    header, arrays = lib.parse_binary_response(r)
    assert header["outputs"][0]["shape"] == [1, 6]
    assert np.array_equal(arrays["OUTPUT0"].ravel(), x)
    # Fixed shapes are taken from the model; a model with two inputs cannot be called this way.
    r = api.post("/v2/models/fixed_shape/infer", data=x.tobytes(),
                 headers={"Inference-Header-Content-Length": "0"})
    assert r.status_code == 200, r.text
    assert np.array_equal(lib.parse_binary_response(r)[1]["OUTPUT0"].ravel(), 2 * x)
    r = api.post("/v2/models/add_sub/infer", data=x.tobytes(),
                 headers={"Inference-Header-Content-Length": "0"})
    assert r.status_code == 400 and "exactly one input" in r.json()["error"], r.text
    r = api.post("/v2/models/identity_fp32/infer", data=b"\0" * 5,
                 headers={"Inference-Header-Content-Length": "0"})
    assert r.status_code == 400 and "whole elements" in r.json()["error"], r.text
