"""Dynamic batching, overload and the statistics extension against the real binary.

Each test builds its own repository from tests/models/add_sub with a config.yaml that turns
batching on, so the session server's models stay untouched.
"""

from __future__ import annotations

import json
import shutil
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
import requests

import slipway_testlib as lib


def _repo(tmp_path, name, config):
    repo = tmp_path / "repo"
    (repo / name / "1").mkdir(parents=True)
    shutil.copy(lib.MODELS_DIR / "add_sub" / "1" / "model.onnx", repo / name / "1" / "model.onnx")
    (repo / name / "config.yaml").write_text(config)
    return repo


def _serve(tmp_path, name, config, extra_args=()):
    return lib.start_live(_repo(tmp_path, name, config), extra_args=list(extra_args),
                          log_dir=tmp_path, name=name)


_stop = lib.stop_ok


def _body(a, b, params=None):
    body = {"inputs": [
        {"name": "INPUT0", "datatype": "FP32", "shape": list(a.shape), "data": a.ravel().tolist()},
        {"name": "INPUT1", "datatype": "FP32", "shape": list(b.shape), "data": b.ravel().tolist()}]}
    if params:
        body["parameters"] = params
    return body


def _stats(srv, name):
    r = requests.get(f"{srv.http_url}/v2/models/{name}/stats", timeout=lib.REQUEST_TIMEOUT_S)
    assert r.status_code == 200, r.text
    (entry,) = r.json()["model_stats"]
    return entry


def test_concurrent_requests_are_merged_and_each_gets_its_own_rows(tmp_path):
    srv = _serve(tmp_path, "batched", "max_batch_size: 32\ninstance_count: 1\n"
                 "dynamic_batching: {max_queue_delay_microseconds: 20000}\n")
    try:
        url = f"{srv.http_url}/v2/models/batched/infer"
        rng = np.random.default_rng(7)

        def client(k):
            sess = requests.Session()
            mismatches = 0
            for i in range(12):
                rows = 1 + (k + i) % 3
                a = rng.standard_normal((rows, 16)).astype(np.float32) + 1000 * k + i
                b = np.full((rows, 16), float(k), dtype=np.float32)
                r = sess.post(url, json=_body(a, b), timeout=lib.REQUEST_TIMEOUT_S)
                assert r.status_code == 200, r.text
                out = {o["name"]: np.array(o["data"], dtype=np.float32).reshape(o["shape"])
                       for o in r.json()["outputs"]}
                if not (np.array_equal(out["OUTPUT0"], a + b) and np.array_equal(out["OUTPUT1"], a - b)):
                    mismatches += 1
            return mismatches

        with ThreadPoolExecutor(max_workers=16) as pool:
            assert sum(pool.map(client, range(16))) == 0
        st = _stats(srv, "batched")
        requests_sent = 16 * 12
        assert st["inference_stats"]["success"]["count"] == requests_sent
        assert st["execution_count"] < requests_sent, st
        assert st["inference_count"] == sum(1 + (k + i) % 3 for k in range(16) for i in range(12))
        assert any(b["batch_size"] > 3 for b in st["batch_stats"]), st["batch_stats"]
        # Also visible over gRPC, in the same shape.
        mod = lib.grpc_modules()
        with grpc.insecure_channel(srv.grpc_target, options=lib.GRPC_CHANNEL_OPTIONS) as ch:
            stub = mod.pb_grpc.GRPCInferenceServiceStub(ch)
            resp = stub.ModelStatistics(mod.pb.ModelStatisticsRequest(name="batched"),
                                        timeout=lib.REQUEST_TIMEOUT_S)
            (g,) = resp.model_stats
            assert g.execution_count == st["execution_count"]
            assert g.inference_count == st["inference_count"]
        _stop(srv)
    finally:
        srv.kill()


def test_full_queue_answers_503_at_once_and_the_server_recovers(tmp_path):
    # One slot in the queue and a long batching delay: a second request finds the queue full.
    srv = _serve(tmp_path, "tiny", "max_batch_size: 8\ninstance_count: 1\n"
                 "dynamic_batching: {max_queue_delay_microseconds: 700000, max_queue_size: 1}\n")
    try:
        url = f"{srv.http_url}/v2/models/tiny/infer"
        a = np.ones((1, 16), dtype=np.float32)
        # Whichever of two concurrent requests arrives second finds the one slot taken (the
        # first waits out the batching delay there) and is refused at once.
        with ThreadPoolExecutor(max_workers=2) as pool:
            answers = list(pool.map(
                lambda _: requests.post(url, json=_body(a, a), timeout=lib.REQUEST_TIMEOUT_S), range(2)))
        statuses = sorted(r.status_code for r in answers)
        assert statuses == [200, 503], [r.text for r in answers]
        refused = next(r for r in answers if r.status_code == 503)
        assert "full" in refused.json()["error"], refused.text
        # The server serves normally afterwards.
        r = requests.post(url, json=_body(a, a), timeout=lib.REQUEST_TIMEOUT_S)
        assert r.status_code == 200, r.text
        _stop(srv)
    finally:
        srv.kill()


def test_request_timeout_answers_504_and_deadline_exceeded(tmp_path):
    srv = _serve(tmp_path, "slowq", "max_batch_size: 8\ninstance_count: 1\n"
                 "dynamic_batching: {max_queue_delay_microseconds: 500000}\n")
    try:
        url = f"{srv.http_url}/v2/models/slowq/infer"
        a = np.ones((1, 16), dtype=np.float32)
        r = requests.post(url, json=_body(a, a, {"timeout": 1000}), timeout=lib.REQUEST_TIMEOUT_S)
        assert r.status_code == 504, r.text
        assert "timed out" in r.json()["error"]
        r = requests.post(url, json=_body(a, a, {"timeout": "soon"}), timeout=lib.REQUEST_TIMEOUT_S)
        assert r.status_code == 400, r.text
        mod = lib.grpc_modules()
        with grpc.insecure_channel(srv.grpc_target, options=lib.GRPC_CHANNEL_OPTIONS) as ch:
            stub = mod.pb_grpc.GRPCInferenceServiceStub(ch)
            req = mod.pb.ModelInferRequest(model_name="slowq")
            for name in ("INPUT0", "INPUT1"):
                t = req.inputs.add(name=name, datatype="FP32", shape=[1, 16])
                t.contents.fp32_contents.extend([1.0] * 16)
            req.parameters["timeout"].int64_param = 1000
            with pytest.raises(grpc.RpcError) as err:
                stub.ModelInfer(req, timeout=lib.REQUEST_TIMEOUT_S)
            assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            # Priority accepted as uint64 (as tritonclient sends it); one level here.
            req.parameters["timeout"].int64_param = 0
            req.parameters["priority"].uint64_param = 1
            assert len(stub.ModelInfer(req, timeout=lib.REQUEST_TIMEOUT_S).raw_output_contents) == 2
        st = _stats(srv, "slowq")
        assert st["inference_stats"]["fail"]["count"] >= 2
        _stop(srv)
    finally:
        srv.kill()


def test_config_endpoint_shows_effective_instances_and_batching(tmp_path):
    srv = _serve(tmp_path, "cfg", "max_batch_size: 8\ninstances: 2\n"
                 "dynamic_batching: {max_queue_delay_microseconds: 100, preferred_batch_size: [4],"
                 " max_queue_size: 7, priority_levels: 2, preserve_ordering: true}\n")
    try:
        c = requests.get(f"{srv.http_url}/v2/models/cfg/config", timeout=lib.REQUEST_TIMEOUT_S).json()
        assert c["instance_group"][0]["count"] == 2
        assert c["parameters"]["intra_op_thread_count"] == {"string_value": "1"}
        db = c["dynamic_batching"]
        assert db["preferred_batch_size"] == [4]
        assert db["max_queue_delay_microseconds"] == 100
        assert db["preserve_ordering"] is True
        assert db["priority_levels"] == 2
        assert db["default_queue_policy"]["max_queue_size"] == 7
        md = requests.get(f"{srv.http_url}/v2", timeout=lib.REQUEST_TIMEOUT_S).json()
        assert "statistics" in md["extensions"]
        _stop(srv)
    finally:
        srv.kill()


def test_statistics_for_unknown_model_is_404(server):
    r = requests.get(f"{server.http_url}/v2/models/no_such_model/stats", timeout=lib.REQUEST_TIMEOUT_S)
    assert r.status_code == 404 and "no_such_model" in r.json()["error"]
    r = requests.get(f"{server.http_url}/v2/models/stats", timeout=lib.REQUEST_TIMEOUT_S)
    assert r.status_code == 200
    names = {m["name"] for m in r.json()["model_stats"]}
    assert "add_sub" in names and "broken" not in names


def test_autoscaling_config_is_visible_and_serves(tmp_path):
    srv = _serve(tmp_path, "scaled", "max_batch_size: 8\ninstances: {min: 1, max: 2}\n")
    try:
        c = requests.get(f"{srv.http_url}/v2/models/scaled/config", timeout=lib.REQUEST_TIMEOUT_S).json()
        assert c["instance_group"][0]["count"] == 1
        assert c["parameters"]["max_instance_count"] == {"string_value": "2"}
        a = np.ones((2, 16), dtype=np.float32)
        r = requests.post(f"{srv.http_url}/v2/models/scaled/infer", json=_body(a, a),
                          timeout=lib.REQUEST_TIMEOUT_S)
        assert r.status_code == 200, r.text
        _stop(srv)
    finally:
        srv.kill()


def test_bad_autoscaling_config_is_refused(tmp_path):
    srv = _serve(tmp_path, "badscale", "instances: {min: 3, max: 2}\n",
                 extra_args=["--strict-readiness", "false"])
    try:
        idx = requests.post(f"{srv.http_url}/v2/repository/index", timeout=lib.REQUEST_TIMEOUT_S).json()
        (entry,) = [e for e in idx if e["name"] == "badscale"]
        assert entry["state"] == "UNAVAILABLE" and "min" in entry["reason"], entry
        _stop(srv)
    finally:
        srv.kill()


def test_client_that_disconnects_has_its_queued_work_dropped(tmp_path):
    # A long batching delay keeps the request queued; the client hangs up meanwhile.
    srv = _serve(tmp_path, "dropq", "max_batch_size: 8\ninstance_count: 1\n"
                 "dynamic_batching: {max_queue_delay_microseconds: 400000}\n")
    try:
        a = np.ones((1, 16), dtype=np.float32)
        body = json.dumps(_body(a, a)).encode()
        with socket.create_connection(("127.0.0.1", srv.http_port)) as s:
            s.sendall(b"POST /v2/models/dropq/infer HTTP/1.1\r\nHost: x\r\nContent-Type: "
                      b"application/json\r\nContent-Length: " + str(len(body)).encode() +
                      b"\r\n\r\n" + body)
        # The server answers the dropped request CANCELLED without running it.
        deadline = time.monotonic() + 30
        st = _stats(srv, "dropq")
        while st["inference_stats"]["fail"]["count"] == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
            st = _stats(srv, "dropq")
        assert st["inference_stats"]["fail"]["count"] == 1, st
        assert st["execution_count"] == 0, st
        # A client that stays gets its answer, pipelining included.
        with socket.create_connection(("127.0.0.1", srv.http_port)) as s:
            req = (b"POST /v2/models/dropq/infer HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                   str(len(body)).encode() + b"\r\n\r\n" + body)
            s.sendall(req + req)
            s.settimeout(30)
            data = b""
            while data.count(b"HTTP/1.1 200") < 2:
                chunk = s.recv(65536)
                assert chunk, data
                data += chunk
        _stop(srv)
    finally:
        srv.kill()
