"""gRPC: inference.GRPCInferenceService and grpc.health.v1.Health."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

import slipway_testlib as lib

T = lib.REQUEST_TIMEOUT_S


def make_request(pb, model, inputs, version="", request_id="", typed=False, outputs=None):
    """inputs: [(name, datatype, np.ndarray)] -> ModelInferRequest (raw or typed contents)."""
    req = pb.ModelInferRequest(model_name=model, model_version=version, id=request_id)
    for name, dt, arr in inputs:
        t = req.inputs.add(name=name, datatype=dt, shape=list(arr.shape))
        if typed:
            field = lib.TYPED_FIELD[dt]
            assert field, f"{dt} has no typed field"
            flat = arr.reshape(-1)
            if dt == "BYTES":
                getattr(t.contents, field).extend(bytes(v) for v in flat)
            else:
                getattr(t.contents, field).extend(flat.tolist())
        else:
            req.raw_input_contents.append(lib.encode_tensor(dt, arr))
    for o in outputs or []:
        req.outputs.add(name=o)
    return req


def response_arrays(resp):
    """ModelInferResponse -> {name: np.ndarray}; outputs must be in raw_output_contents."""
    assert len(resp.raw_output_contents) == len(resp.outputs), "every output must come back in raw_output_contents"
    return {o.name: lib.decode_tensor(o.datatype, raw, list(o.shape))
            for o, raw in zip(resp.outputs, resp.raw_output_contents)}


def check_expected(resp, exp, names=None):
    arrays = response_arrays(resp)
    names = names or list(exp["outputs"])
    assert [o.name for o in resp.outputs] == names
    for o in resp.outputs:
        e = exp["outputs"][o.name]
        assert o.datatype == e["datatype"]
        assert list(o.shape) == e["shape"]
        lib.assert_matches_expected(o.datatype, arrays[o.name], e["data"], e["shape"], what=o.name)


def assert_rpc_error(fn, code, *patterns):
    with pytest.raises(grpc.RpcError) as ei:
        fn()
    err = ei.value
    assert err.code() == code, (err.code(), err.details())
    for p in patterns:
        assert lib.mentions(err.details() or "", p), f"{err.details()!r} does not match {p!r}"
    return err


# ----------------------------------------------------------------------------- health/metadata

def test_server_live(grpc_stub, grpc_mod):
    assert grpc_stub.ServerLive(grpc_mod.pb.ServerLiveRequest(), timeout=T).live is True


def test_server_ready_false_with_failed_models(grpc_stub, grpc_mod):
    assert grpc_stub.ServerReady(grpc_mod.pb.ServerReadyRequest(), timeout=T).ready is False


def test_model_ready(grpc_stub, grpc_mod):
    pb = grpc_mod.pb
    assert grpc_stub.ModelReady(pb.ModelReadyRequest(name="add_sub"), timeout=T).ready is True
    assert grpc_stub.ModelReady(pb.ModelReadyRequest(name="multi_input", version="1"), timeout=T).ready is True
    assert grpc_stub.ModelReady(pb.ModelReadyRequest(name="multi_input", version="2"), timeout=T).ready is True


def test_model_ready_failed_model(grpc_stub, grpc_mod):
    try:
        ready = grpc_stub.ModelReady(grpc_mod.pb.ModelReadyRequest(name="broken"), timeout=T).ready
    except grpc.RpcError as e:
        assert e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND,
                            grpc.StatusCode.INVALID_ARGUMENT), e
    else:
        assert ready is False


def test_model_ready_unknown_model(grpc_stub, grpc_mod):
    try:
        ready = grpc_stub.ModelReady(grpc_mod.pb.ModelReadyRequest(name="no_such_model"), timeout=T).ready
    except grpc.RpcError as e:
        assert e.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT), e
    else:
        assert ready is False


def test_server_metadata_matches_rest(grpc_stub, grpc_mod, api):
    m = grpc_stub.ServerMetadata(grpc_mod.pb.ServerMetadataRequest(), timeout=T)
    rest = api.get("/v2").json()
    assert m.name == "slipway" == rest["name"]
    assert m.version == rest["version"]
    assert list(m.extensions) == rest["extensions"]


@pytest.mark.parametrize("model", ["breast_cancer", "multi_input", "fixed_shape", "identity_bytes", "triton_style"])
def test_model_metadata_matches_rest(grpc_stub, grpc_mod, api, model):
    m = grpc_stub.ModelMetadata(grpc_mod.pb.ModelMetadataRequest(name=model), timeout=T)
    rest = api.get(f"/v2/models/{model}").json()
    assert m.name == rest["name"]
    assert list(m.versions) == rest["versions"]
    assert m.platform == rest["platform"] == "onnxruntime_onnx"
    for mine, theirs in ((m.inputs, rest["inputs"]), (m.outputs, rest["outputs"])):
        assert [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in mine] == theirs


def test_model_metadata_batching_shape(grpc_stub, grpc_mod):
    m = grpc_stub.ModelMetadata(grpc_mod.pb.ModelMetadataRequest(name="breast_cancer"), timeout=T)
    assert [(t.name, t.datatype, list(t.shape)) for t in m.inputs] == [("features", "FP32", [-1, 30])]
    assert [(t.name, t.datatype, list(t.shape)) for t in m.outputs] == [
        ("probabilities", "FP32", [-1, 2]), ("label", "INT64", [-1])]


def test_model_metadata_unknown_model(grpc_stub, grpc_mod):
    assert_rpc_error(lambda: grpc_stub.ModelMetadata(grpc_mod.pb.ModelMetadataRequest(name="no_such_model"),
                                                     timeout=T), grpc.StatusCode.NOT_FOUND, "no_such_model")


def test_model_config(grpc_stub, grpc_mod, api):
    mc = grpc_mod.mc
    c = grpc_stub.ModelConfig(grpc_mod.pb.ModelConfigRequest(name="multi_input"), timeout=T).config
    assert c.name == "multi_input"
    assert c.platform == "onnxruntime_onnx"
    assert c.backend == "onnxruntime"
    assert c.max_batch_size == 16
    assert [(i.name, mc.DataType.Name(i.data_type), list(i.dims)) for i in c.input] == [
        ("x", "TYPE_FP32", [4]), ("scale", "TYPE_FP64", [1]), ("offset", "TYPE_INT32", [4]),
        ("mask", "TYPE_BOOL", [4])]
    assert [(o.name, mc.DataType.Name(o.data_type)) for o in c.output] == [("y", "TYPE_FP32"), ("count", "TYPE_INT64")]
    assert c.version_policy.WhichOneof("policy_choice") == "all"
    rest = api.get("/v2/models/multi_input/config").json()
    assert c.max_batch_size == rest["max_batch_size"]
    assert [list(i.dims) for i in c.input] == [i["dims"] for i in rest["input"]]


def test_model_config_triton_style(grpc_stub, grpc_mod):
    c = grpc_stub.ModelConfig(grpc_mod.pb.ModelConfigRequest(name="triton_style"), timeout=T).config
    assert c.max_batch_size == 8
    assert c.version_policy.latest.num_versions == 1
    assert c.instance_group[0].count == 1
    assert c.instance_group[0].kind == grpc_mod.mc.ModelInstanceGroup.KIND_CPU
    assert c.WhichOneof("scheduling_choice") == "dynamic_batching"


def test_health_check_serving(grpc_mod, grpc_channel):
    stub = grpc_mod.health_grpc.HealthStub(grpc_channel)
    resp = stub.Check(grpc_mod.health.HealthCheckRequest(service=""), timeout=T)
    assert resp.status == grpc_mod.health.HealthCheckResponse.SERVING


# ----------------------------------------------------------------------------- inference

def test_model_infer_raw(grpc_stub, grpc_mod):
    exp = lib.load_expected("add_sub")
    resp = grpc_stub.ModelInfer(make_request(grpc_mod.pb, "add_sub", lib.expected_inputs(exp), request_id="g1"),
                                timeout=T)
    assert resp.model_name == "add_sub"
    assert resp.model_version == "1"
    assert resp.id == "g1"
    check_expected(resp, exp)
    # Outputs are raw only; typed contents stay empty.
    for o in resp.outputs:
        assert not o.HasField("contents") or o.contents.ByteSize() == 0


def test_model_infer_typed(grpc_stub, grpc_mod):
    exp = lib.load_expected("multi_input", "2")
    resp = grpc_stub.ModelInfer(make_request(grpc_mod.pb, "multi_input", lib.expected_inputs(exp), typed=True),
                                timeout=T)
    assert resp.model_version == "2"
    check_expected(resp, exp)


def test_model_infer_version_selection(grpc_stub, grpc_mod):
    e1 = lib.load_expected("multi_input", "1")
    resp = grpc_stub.ModelInfer(make_request(grpc_mod.pb, "multi_input", lib.expected_inputs(e1), version="1"),
                                timeout=T)
    assert resp.model_version == "1"
    check_expected(resp, e1)


def test_model_infer_requested_outputs(grpc_stub, grpc_mod):
    exp = lib.load_expected("breast_cancer")
    resp = grpc_stub.ModelInfer(make_request(grpc_mod.pb, "breast_cancer", lib.expected_inputs(exp),
                                             outputs=["label"]), timeout=T)
    check_expected(resp, exp, names=["label"])


def test_model_infer_large_message(grpc_stub, grpc_mod):
    """Bigger than gRPC's 4 MiB default in both directions."""
    n = 3 * (1 << 20)  # 12 MiB of FP32
    arr = np.arange(n, dtype=np.float32).reshape(1, n)
    resp = grpc_stub.ModelInfer(make_request(grpc_mod.pb, "identity_fp32", [("INPUT0", "FP32", arr)]), timeout=T)
    assert resp.raw_output_contents[0] == arr.tobytes()


def test_model_infer_bytes_arbitrary(grpc_stub, grpc_mod):
    values = [b"\xff\x00", b"", "ü".encode(), b"abc"]
    arr = np.empty((2, 2), dtype=object)
    arr.reshape(-1)[:] = values
    for typed in (False, True):
        resp = grpc_stub.ModelInfer(make_request(grpc_mod.pb, "identity_bytes", [("INPUT0", "BYTES", arr)],
                                                 typed=typed), timeout=T)
        out = response_arrays(resp)["OUTPUT0"]
        assert list(out.reshape(-1)) == values, typed


# ----------------------------------------------------------------------------- errors

def _add_sub_inputs():
    return lib.expected_inputs(lib.load_expected("add_sub"))


def test_infer_unknown_model(grpc_stub, grpc_mod):
    req = make_request(grpc_mod.pb, "no_such_model", _add_sub_inputs())
    assert_rpc_error(lambda: grpc_stub.ModelInfer(req, timeout=T), grpc.StatusCode.NOT_FOUND, "no_such_model")


def test_infer_unknown_version(grpc_stub, grpc_mod):
    req = make_request(grpc_mod.pb, "add_sub", _add_sub_inputs(), version="7")
    assert_rpc_error(lambda: grpc_stub.ModelInfer(req, timeout=T), grpc.StatusCode.NOT_FOUND)


def test_infer_failed_model_unavailable(grpc_stub, grpc_mod):
    req = make_request(grpc_mod.pb, "broken", _add_sub_inputs())
    assert_rpc_error(lambda: grpc_stub.ModelInfer(req, timeout=T), grpc.StatusCode.UNAVAILABLE)


def _bad_requests(pb):
    good = _add_sub_inputs()
    cases = {}
    r = make_request(pb, "add_sub", good)
    r.inputs[1].name = "INPUT9"
    cases["unknown_input"] = (r, ["INPUT9"])
    r = make_request(pb, "add_sub", good[:1])
    cases["missing_input"] = (r, ["INPUT1"])
    r = make_request(pb, "add_sub", good)
    r.inputs[0].datatype = "FP64"
    r.raw_input_contents[0] = r.raw_input_contents[0] * 2
    cases["wrong_datatype"] = (r, ["INPUT0"])
    r = make_request(pb, "add_sub", good)
    r.raw_input_contents[0] = r.raw_input_contents[0][:-4]
    cases["raw_size_mismatch"] = (r, ["INPUT0"])
    r = make_request(pb, "add_sub", good)
    del r.raw_input_contents[1]
    cases["raw_count_mismatch"] = (r, [])
    r = make_request(pb, "add_sub", good)
    r.inputs[0].contents.fp32_contents.extend([1.0] * 32)
    cases["raw_and_typed"] = (r, [])
    r = make_request(pb, "add_sub", good, typed=True)
    del r.inputs[0].contents.fp32_contents[-1]
    cases["typed_count_mismatch"] = (r, ["INPUT0"])
    r = make_request(pb, "add_sub", good, typed=True)
    r.inputs[0].contents.ClearField("fp32_contents")
    r.inputs[0].contents.fp64_contents.extend([1.0] * 32)
    cases["typed_wrong_field"] = (r, ["INPUT0"])
    r = make_request(pb, "add_sub", good)
    del r.inputs[0].shape[:]
    r.inputs[0].shape.extend([-2, -16])
    cases["negative_dim"] = (r, [])
    r = make_request(pb, "add_sub", good)
    r.outputs.add(name="NOPE")
    cases["unknown_output"] = (r, ["NOPE"])
    rows = 17
    r = make_request(pb, "multi_input", [("x", "FP32", np.zeros((rows, 4), np.float32)),
                                         ("scale", "FP64", np.zeros((rows, 1))),
                                         ("offset", "INT32", np.zeros((rows, 4), np.int32)),
                                         ("mask", "BOOL", np.zeros((rows, 4), bool))])
    cases["batch_above_max"] = (r, [])
    r = make_request(pb, "add_sub", good + [good[0]])
    cases["duplicate_input"] = (r, ["INPUT0"])
    return cases


BAD_GRPC = ["unknown_input", "missing_input", "wrong_datatype", "raw_size_mismatch", "raw_count_mismatch",
            "raw_and_typed", "typed_count_mismatch", "typed_wrong_field", "negative_dim", "unknown_output",
            "batch_above_max", "duplicate_input"]


@pytest.mark.parametrize("case", BAD_GRPC)
def test_infer_invalid_argument(grpc_stub, grpc_mod, case):
    req, patterns = _bad_requests(grpc_mod.pb)[case]
    assert_rpc_error(lambda: grpc_stub.ModelInfer(req, timeout=T), grpc.StatusCode.INVALID_ARGUMENT, *patterns)
    # Still serving.
    exp = lib.load_expected("add_sub")
    check_expected(grpc_stub.ModelInfer(make_request(grpc_mod.pb, "add_sub", lib.expected_inputs(exp)), timeout=T),
                   exp)


# ----------------------------------------------------------------------------- streaming

def test_stream_infer_in_order_with_error_in_the_middle(grpc_stub, grpc_mod):
    pb = grpc_mod.pb
    exps = {m: lib.load_expected(m) for m in ("add_sub", "breast_cancer", "identity_int64")}
    bad = make_request(pb, "add_sub", _add_sub_inputs(), request_id="s-bad")
    bad.inputs[1].name = "INPUT9"
    reqs = [
        make_request(pb, "add_sub", lib.expected_inputs(exps["add_sub"]), request_id="s0"),
        make_request(pb, "breast_cancer", lib.expected_inputs(exps["breast_cancer"]), request_id="s1"),
        bad,
        make_request(pb, "no_such_model", _add_sub_inputs(), request_id="s-missing"),
        make_request(pb, "identity_int64", lib.expected_inputs(exps["identity_int64"]), request_id="s2", typed=True),
        make_request(pb, "add_sub", lib.expected_inputs(exps["add_sub"]), request_id="s3"),
    ]
    responses = list(grpc_stub.ModelStreamInfer(iter(reqs), timeout=T))
    assert len(responses) == len(reqs)
    ids = [r.infer_response.id for r in responses]
    assert ids == ["s0", "s1", "s-bad", "s-missing", "s2", "s3"]
    assert responses[2].error_message and "INPUT9" in responses[2].error_message
    assert responses[3].error_message and "no_such_model" in responses[3].error_message
    for i, model in ((0, "add_sub"), (1, "breast_cancer"), (4, "identity_int64"), (5, "add_sub")):
        assert responses[i].error_message == "", responses[i].error_message
        assert responses[i].infer_response.model_name == model
        check_expected(responses[i].infer_response, exps[model])


def test_stream_infer_many(grpc_stub, grpc_mod):
    exp = lib.load_expected("identity_int32")
    reqs = [make_request(grpc_mod.pb, "identity_int32", lib.expected_inputs(exp), request_id=str(i))
            for i in range(50)]
    responses = list(grpc_stub.ModelStreamInfer(iter(reqs), timeout=T))
    assert [r.infer_response.id for r in responses] == [str(i) for i in range(50)]
    for r in responses:
        assert r.error_message == ""
        check_expected(r.infer_response, exp)


# ----------------------------------------------------------------------------- repository

def test_repository_index(grpc_stub, grpc_mod, api):
    pb = grpc_mod.pb
    idx = grpc_stub.RepositoryIndex(pb.RepositoryIndexRequest(), timeout=T).models
    by = {(m.name, m.version): m for m in idx}
    assert by[("add_sub", "1")].state == "READY"
    assert by[("multi_input", "1")].state == "READY" and by[("multi_input", "2")].state == "READY"
    for failed in ("broken", "bad_config"):
        (m,) = [m for m in idx if m.name == failed]
        assert m.state == "UNAVAILABLE" and m.reason
    rest = api.post("/v2/repository/index", data=b"").json()
    assert sorted((m.name, m.version, m.state, m.reason) for m in idx) == sorted(
        (e["name"], e.get("version", ""), e["state"], e.get("reason", "")) for e in rest)
    ready = grpc_stub.RepositoryIndex(pb.RepositoryIndexRequest(ready=True), timeout=T).models
    assert ready and all(m.state == "READY" for m in ready)
    assert not {m.name for m in ready} & {"broken", "bad_config"}
