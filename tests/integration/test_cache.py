"""The response cache against the real server: hits are marked and cost no execution; any change
to inputs, version or requested outputs misses; concurrent identical requests run the model once;
the byte budget holds under churn; unloading a version drops its answers; and two replicas share
answers through a real Redis, whose loss costs misses, never failed requests.

Models are built here with the `onnx` package. `pair`: two outputs over a [-1, 4] FP32 input,
y = k * x and z = x + k. `slow`: y = x, after a large matrix product, so a request takes long
enough for identical ones to arrive while it runs.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import requests
from onnx import TensorProto, helper, numpy_helper

import slipway_testlib as lib

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
CACHED = "max_batch_size: 8\nversion_policy: {all: {}}\nresponse_cache: {enable: true}\n"


def pair_model(k: float) -> bytes:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, [None, 4])
    kk = helper.make_tensor("k", TensorProto.FLOAT, [1], [k])
    g = helper.make_graph([helper.make_node("Mul", ["x", "k"], ["y"]),
                           helper.make_node("Add", ["x", "k"], ["z"])], "pair", [x], [y, z], [kk])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m.SerializeToString()


def slow_model(n: int = 768) -> bytes:
    """y = x + 0 * sum((sum(x) * A) @ A @ A): about 2 * n^3 multiply-adds per request."""
    rng = np.random.default_rng(0)
    a = numpy_helper.from_array(rng.standard_normal((n, n)).astype(np.float32), "A")
    zero = numpy_helper.from_array(np.zeros([1], np.float32), "zero")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])
    # A is scaled by a value computed from x, so nothing can be folded at load time.
    nodes = [helper.make_node("ReduceSum", ["x"], ["xs"], keepdims=0),
             helper.make_node("Mul", ["A", "xs"], ["as"]),
             helper.make_node("MatMul", ["as", "A"], ["aa"]),
             helper.make_node("MatMul", ["aa", "A"], ["aaa"]),
             helper.make_node("ReduceSum", ["aaa"], ["s"], keepdims=0),
             helper.make_node("Mul", ["s", "zero"], ["s0"]),
             helper.make_node("Add", ["x", "s0"], ["y"])]
    g = helper.make_graph(nodes, "slow", [x], [y], [a, zero])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m.SerializeToString()


def repo_with(tmp_path: Path, models: dict, config=CACHED) -> Path:
    repo = tmp_path / "repo"
    for name, versions in models.items():
        (repo / name).mkdir(parents=True, exist_ok=True)
        (repo / name / "config.yaml").write_text(config)
        for v, data in versions.items():
            (repo / name / str(v)).mkdir(parents=True, exist_ok=True)
            (repo / name / str(v) / "model.onnx").write_bytes(data)
    return repo


def body(x, outputs=None, **parameters):
    b = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": x}]}
    if outputs:
        b["outputs"] = [{"name": o} for o in outputs]
    if parameters:
        b["parameters"] = parameters
    return b


def infer(url, model, b, version=None):
    path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
    r = requests.post(url + path, json=b, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def hit(answer) -> bool:
    return answer.get("parameters", {}).get("cache_hit") is True


def stats(url, model):
    r = requests.get(f"{url}/v2/models/{model}/stats", timeout=10)
    assert r.status_code == 200, r.text
    s = r.json()["model_stats"]
    return {"executions": sum(m["execution_count"] for m in s),
            "hits": s[0]["inference_stats"]["cache_hit"]["count"],
            "misses": s[0]["inference_stats"]["cache_miss"]["count"]}


def metric(url, name, model):
    text = requests.get(f"{url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(f'{name}{{model="{model}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_hits_are_marked_and_any_change_misses(tmp_path):
    repo = repo_with(tmp_path, {"pair": {1: pair_model(2.0), 2: pair_model(3.0)}})
    srv = lib.start_live(repo, log_dir=tmp_path, extra_args=["--model-control-mode", "explicit"])
    try:
        url = srv.http_url
        first = infer(url, "pair", body([1, 2, 3, 4]))
        assert not hit(first) and first["model_version"] == "2"
        before = stats(url, "pair")
        again = infer(url, "pair", body([1, 2, 3, 4]))
        assert hit(again)
        assert again["outputs"] == first["outputs"]
        after = stats(url, "pair")
        assert after["executions"] == before["executions"]  # answered without running
        assert after["hits"] == before["hits"] + 1
        # Each of these changes the answer or may: all miss, then hit when repeated.
        variants = [
            ("pair", body([1, 2, 3, 5]), None),                    # an input byte
            ("pair", body([1, 2, 3, 4], outputs=["y"]), None),     # requested outputs
            ("pair", body([1, 2, 3, 4]), 1),                       # the version
            ("pair", body([1, 2, 3, 4], custom_flag=True), None),  # a parameter
        ]
        for model, b, version in variants:
            a = infer(url, model, b, version)
            assert not hit(a), (b, version)
            assert hit(infer(url, model, b, version)), (b, version)
        v1 = infer(url, "pair", body([1, 2, 3, 4]), 1)
        assert v1["outputs"][0]["data"] == [2, 4, 6, 8] and v1["model_version"] == "1"
        # Scheduling parameters and the client's id do not change the answer: still a hit, with
        # the caller's own id.
        a = requests.post(f"{url}/v2/models/pair/infer",
                          json={**body([1, 2, 3, 4], timeout=5000000, priority=1), "id": "mine"},
                          timeout=10).json()
        assert hit(a) and a["id"] == "mine"
        assert metric(url, "nv_cache_num_hits_per_model", "pair") >= 6
        # The model config says the cache is on.
        cfg = requests.get(f"{url}/v2/models/pair/config", timeout=10).json()
        assert cfg["response_cache"]["enable"] is True
        # Unloading the model drops its answers: after a reload the same request runs again.
        assert requests.post(f"{url}/v2/repository/models/pair/unload", timeout=30).ok
        assert requests.post(f"{url}/v2/repository/models/pair/load", timeout=60).ok
        assert not hit(infer(url, "pair", body([1, 2, 3, 4])))
    finally:
        lib.stop_ok(srv)


def test_models_without_the_setting_are_never_cached(tmp_path):
    repo = repo_with(tmp_path, {"pair": {1: pair_model(2.0)}}, config="max_batch_size: 8\n")
    srv = lib.start_live(repo, log_dir=tmp_path)
    try:
        for _ in range(3):
            assert not hit(infer(srv.http_url, "pair", body([1, 2, 3, 4])))
        assert stats(srv.http_url, "pair")["executions"] == 3
    finally:
        lib.stop_ok(srv)


def test_concurrent_identical_requests_run_once(tmp_path):
    repo = repo_with(tmp_path, {"slow": {1: slow_model()}})
    srv = lib.start_live(repo, log_dir=tmp_path)
    try:
        url = srv.http_url
        infer(url, "slow", body([9, 9, 9, 9]))  # warm the model with another input
        before = stats(url, "slow")
        n = 8
        barrier = threading.Barrier(n)
        answers = [None] * n

        def client(i):
            barrier.wait()
            answers[i] = infer(url, "slow", body([1, 2, 3, 4]))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        after = stats(url, "slow")
        ran = after["executions"] - before["executions"]
        assert all(a["outputs"][0]["data"] == [1, 2, 3, 4] for a in answers)
        # One execution served everyone that arrived while it ran; a thread the machine was too
        # slow to start before it finished finds the answer kept: a hit either way.
        assert ran == 1, f"{ran} executions for {n} identical concurrent requests"
        assert sum(hit(a) for a in answers) == n - 1
        assert metric(url, "slipway_cache_coalesced_total", "slow") >= 1
    finally:
        lib.stop_ok(srv)


def test_byte_budget_holds_under_churn(tmp_path):
    repo = repo_with(tmp_path, {"pair": {1: pair_model(2.0)}})
    budget = 64 * 1024
    srv = lib.start_live(repo, log_dir=tmp_path, extra_args=["--cache-bytes", str(budget)])
    try:
        url = srv.http_url
        for i in range(1500):
            infer(url, "pair", body([i, 0, 0, 0]))
            if i % 250 == 0:
                assert metric(url, "slipway_cache_bytes", "pair") <= budget
        assert metric(url, "slipway_cache_bytes", "pair") <= budget
        assert metric(url, "slipway_cache_evictions_total", "pair") > 0
        # The most recent answers survived; the oldest went.
        assert hit(infer(url, "pair", body([1499, 0, 0, 0])))
        assert not hit(infer(url, "pair", body([0, 0, 0, 0])))
    finally:
        lib.stop_ok(srv)


class Redis:
    def __init__(self, tmp_path: Path):
        self.port = lib.free_port()
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(tmp_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def dbsize(self) -> int:
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(b"DBSIZE\r\n")
            return int(s.recv(64).strip().lstrip(b":"))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.mark.skipif(not Path(REDIS).exists(), reason="redis-server is installed by setup.sh")
def test_replicas_share_answers_through_redis_and_survive_its_loss(tmp_path):
    redis = Redis(tmp_path)
    repo = repo_with(tmp_path, {"pair": {1: pair_model(2.0)}})
    args = ["--cache-redis", f"127.0.0.1:{redis.port}", "--cache-redis-timeout-ms", "50"]
    a = lib.start_live(repo, log_dir=tmp_path, name="a", extra_args=args)
    b = lib.start_live(repo, log_dir=tmp_path, name="b", extra_args=args)
    try:
        first = infer(a.http_url, "pair", body([5, 6, 7, 8]))
        assert not hit(first)
        # a stores its answer in Redis in the background; once it is there, replica b answers
        # from it without running the model.
        deadline = time.monotonic() + 10
        while redis.dbsize() < 1:
            assert time.monotonic() < deadline, "replica a never stored its answer in Redis"
            time.sleep(0.05)
        answer = infer(b.http_url, "pair", body([5, 6, 7, 8]))
        assert hit(answer)
        assert answer["outputs"] == first["outputs"]
        assert stats(b.http_url, "pair")["executions"] == 0
        assert metric(b.http_url, "slipway_cache_shared_hits_total", "pair") == 1
        # Redis goes away: every request still succeeds (computed), none fails.
        redis.stop()
        for i in range(30):
            for srv in (a, b):
                got = infer(srv.http_url, "pair", body([i, 1, 2, 3]))
                assert got["outputs"][0]["data"] == [2 * i, 2, 4, 6]
        assert metric(a.http_url, "slipway_cache_shared_errors_total", "pair") >= 1
    finally:
        redis.stop()
        lib.stop_ok(a)
        lib.stop_ok(b)
