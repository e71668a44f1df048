"""JSON, binary and gRPC answers agree with each other and with PyTorch (expected.json).

For each loadable model/version with an expected.json:
  * the binary-HTTP and gRPC raw output bytes are identical (bit-for-bit),
  * JSON output values converted to the wire type give the same bytes (floats
    parse back to the same float32/float64),
  * gRPC typed-contents input gives the same bytes as raw input,
  * all of them equal PyTorch's outputs (rtol 1e-4 / atol 1e-5; exact for
    integer, bool and bytes types).
"""

from __future__ import annotations

import numpy as np
import pytest

import slipway_testlib as lib
from test_grpc import make_request, response_arrays

CASES = lib.expected_cases()
IDS = [f"{m}-v{v}" for m, v, _ in CASES]


def _wire(dt, arr):
    return lib.encode_tensor(dt, arr)


def _json_answer(api, model, version, exp):
    r = api.infer_json(model, lib.expected_inputs(exp), version=version)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_name"] == model and body["model_version"] == version
    return {o["name"]: (o["datatype"], o["shape"], lib.from_json_data(o["datatype"], o["data"], o["shape"]))
            for o in body["outputs"]}


def _binary_answer(api, model, version, exp):
    r = api.infer_binary(model, lib.expected_inputs(exp), version=version, parameters={"binary_data_output": True})
    assert r.status_code == 200, r.text
    header, arrays = lib.parse_binary_response(r)
    assert header["model_name"] == model and header["model_version"] == version
    hlen = int(r.headers["Inference-Header-Content-Length"])
    blobs, off = {}, hlen
    for o in header["outputs"]:
        size = o["parameters"]["binary_data_size"]
        blobs[o["name"]] = r.content[off:off + size]
        off += size
    return {o["name"]: (o["datatype"], o["shape"], arrays[o["name"]]) for o in header["outputs"]}, blobs


def _grpc_answer(stub, pb, model, version, exp, typed):
    resp = stub.ModelInfer(make_request(pb, model, lib.expected_inputs(exp), version=version, typed=typed),
                           timeout=lib.REQUEST_TIMEOUT_S)
    assert resp.model_name == model and resp.model_version == version
    arrays = response_arrays(resp)
    raws = {o.name: bytes(raw) for o, raw in zip(resp.outputs, resp.raw_output_contents)}
    return {o.name: (o.datatype, list(o.shape), arrays[o.name]) for o in resp.outputs}, raws


def _check_against_expected(answer, exp, what):
    assert list(answer) == list(exp["outputs"]), f"{what}: outputs {list(answer)}"
    for name, (dt, shape, arr) in answer.items():
        e = exp["outputs"][name]
        assert dt == e["datatype"], f"{what}/{name}: datatype {dt} != {e['datatype']}"
        assert shape == e["shape"], f"{what}/{name}: shape {shape} != {e['shape']}"
        lib.assert_matches_expected(dt, arr, e["data"], e["shape"], what=f"{what}/{name}")


@pytest.mark.parametrize("model,version,exp", CASES, ids=IDS)
def test_protocols_agree_with_each_other_and_pytorch(api, grpc_stub, grpc_mod, model, version, exp):
    dts = {t["datatype"] for t in exp["inputs"].values()} | {t["datatype"] for t in exp["outputs"].values()}

    binary, blobs = _binary_answer(api, model, version, exp)
    _check_against_expected(binary, exp, "binary")

    grpc_raw, raws = _grpc_answer(grpc_stub, grpc_mod.pb, model, version, exp, typed=False)
    _check_against_expected(grpc_raw, exp, "grpc-raw")
    assert raws == blobs, "gRPC raw output bytes differ from the HTTP binary output bytes"

    if all(lib.TYPED_FIELD[t["datatype"]] for t in exp["inputs"].values()):
        grpc_typed, raws_typed = _grpc_answer(grpc_stub, grpc_mod.pb, model, version, exp, typed=True)
        _check_against_expected(grpc_typed, exp, "grpc-typed")
        assert raws_typed == raws, "typed-contents input gives different bytes than raw input"

    if not dts & lib.JSON_UNSUPPORTED:
        js = _json_answer(api, model, version, exp)
        _check_against_expected(js, exp, "json")
        for name, (dt, shape, arr) in js.items():
            assert _wire(dt, arr) == blobs[name], (
                f"JSON output {name} ({dt}) does not parse back to the binary answer's exact values")


def test_every_datatype_is_covered():
    """The equivalence cases cover all 14 datatypes (guards against models going missing)."""
    seen = {t["datatype"] for _, _, e in CASES for t in list(e["inputs"].values()) + list(e["outputs"].values())}
    assert seen == {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
                    "FP16", "FP32", "FP64", "BYTES", "BF16"}


@pytest.mark.parametrize("dt", ["fp32", "fp64"])
def test_json_float_roundtrip_many_values(api, dt):
    """Awkward floats (subnormals, extremes, non-terminating decimals) survive JSON exactly."""
    np_dt = np.float32 if dt == "fp32" else np.float64
    info = np.finfo(np_dt)
    rng = np.random.default_rng(1234)
    vals = np.concatenate([
        np.array([0.0, -0.0, 1 / 3, -2 / 3, 0.1, info.max, -info.max, info.tiny, info.tiny / 8, info.eps],
                 dtype=np_dt),
        (rng.standard_normal(246) * 10.0 ** rng.integers(-30, 30, 246)).astype(np_dt),
    ]).reshape(4, 64)
    dtype = dt.upper()
    r = api.infer_json(f"identity_{dt}", [("INPUT0", dtype, vals)])
    assert r.status_code == 200, r.text
    # JSON has one number type: "-0" is negative zero (Python's json would make it int 0).
    out = r.json(parse_int=lambda s: -0.0 if s == "-0" else int(s))["outputs"][0]
    back = np.array(out["data"], dtype=np.float64).astype(np_dt).reshape(out["shape"])
    assert back.tobytes() == vals.tobytes()
