"""Model lifecycle: version policies, model control modes, labels, traffic policy, shadow
traffic, canary rollouts, rollback, uploads, the deployment record and its persistence.

Every test starts its own server on a private repository of small ONNX models built here with
the `onnx` package: `y = k * x` over a [-1, 4] FP32 input. Versions with k = 1 agree with each
other; k = -1 flips every row's top-1 class, so it disagrees.
"""

from __future__ import annotations

import collections
import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import grpc
import onnx
import pytest
import requests
from onnx import TensorProto, helper

import slipway_testlib as lib

X = [[1.0, 2.0, 3.0, 4.0]]
BODY = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}


def scale_model_bytes(k: float) -> bytes:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])
    c = helper.make_tensor("k", TensorProto.FLOAT, [1], [k])
    g = helper.make_graph([helper.make_node("Mul", ["x", "k"], ["y"])], "scale", [x], [y], [c])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m.SerializeToString()


def failing_warmup_model_bytes() -> bytes:
    """Loads fine but fails on any input: Gather with index 7 on a 3-element table."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    table = helper.make_tensor("table", TensorProto.FLOAT, [3], [0.0, 1.0, 2.0])
    idx = helper.make_tensor("idx", TensorProto.INT64, [1], [7])
    nodes = [helper.make_node("Gather", ["table", "idx"], ["g"]),
             helper.make_node("Mul", ["x", "g"], ["y"])]
    g = helper.make_graph(nodes, "bad", [x], [y], [table, idx])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m.SerializeToString()


def grpc_api():
    m = lib.grpc_modules()
    return m.pb, m.pb_grpc.GRPCInferenceServiceStub


def write_version(repo: Path, model: str, version: int, k: float):
    d = repo / model / str(version)
    d.mkdir(parents=True, exist_ok=True)
    (d / "model.onnx").write_bytes(scale_model_bytes(k))


def make_repo(tmp_path: Path, versions=(1,), config: str = "max_batch_size: 8\n",
              model="scale") -> Path:
    repo = tmp_path / "repo"
    (repo / model).mkdir(parents=True, exist_ok=True)
    (repo / model / "config.yaml").write_text(config)
    for v in versions:
        write_version(repo, model, v, 1.0)
    return repo


def start(repo: Path, tmp_path: Path, *args, name="srv"):
    return lib.start_live(repo, extra_args=list(args), log_dir=tmp_path, name=name)


def wait_ready(url: str, model: str, version=None, timeout=30.0):
    path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/ready"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if requests.get(url + path, timeout=5).status_code == 200:
            return
        time.sleep(0.1)
    raise AssertionError(f"{path} not ready after {timeout}s")


def wait_for(predicate, timeout=30.0, what="condition"):
    return lib.wait_for(predicate, timeout, what)


def infer(url: str, model="scale", version=None, headers=None, body=None):
    path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
    return requests.post(url + path, json=body or BODY, headers=headers or {}, timeout=30)


def answered_version(resp) -> int:
    assert resp.status_code == 200, resp.text
    return int(resp.json()["model_version"])


def routing(url: str, model="scale") -> dict:
    r = requests.get(f"{url}/v2/models/{model}/routing", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def index(url: str) -> list:
    r = requests.post(url + "/v2/repository/index", json={}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def history(url: str, model="scale") -> list:
    r = requests.get(f"{url}/v2/models/{model}/history?limit=200", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["events"]


# ----------------------------------------------------------------------------- version policies

@pytest.mark.parametrize("policy,expected", [
    ("", [3]),
    ("version_policy: {latest: {num_versions: 2}}\n", [2, 3]),
    ("version_policy: {all: {}}\n", [1, 2, 3]),
    ("version_policy: {specific: {versions: [1, 3]}}\n", [1, 3]),
])
def test_version_policies(tmp_path, policy, expected):
    repo = make_repo(tmp_path, versions=(1, 2, 3), config="max_batch_size: 8\n" + policy)
    srv = start(repo, tmp_path)
    try:
        ready = sorted(int(e["version"]) for e in index(srv.http_url) if e.get("state") == "READY")
        assert ready == expected
        for v in (1, 2, 3):
            r = infer(srv.http_url, version=v)
            if v in expected:
                assert answered_version(r) == v
            else:
                assert r.status_code in (404, 503), r.text
        assert answered_version(infer(srv.http_url)) == max(expected)
        md = requests.get(srv.http_url + "/v2/models/scale", timeout=5).json()
        assert sorted(int(v) for v in md["versions"]) == expected
    finally:
        lib.stop_ok(srv)


# ----------------------------------------------------------------------------- model control

def test_poll_mode_picks_up_new_removed_and_changed_versions(tmp_path):
    repo = make_repo(tmp_path, versions=(1,))
    srv = start(repo, tmp_path, "--model-control-mode", "poll", "--repository-poll-secs", "0.2",
                "--version-retire-grace-ms", "100")
    try:
        assert answered_version(infer(srv.http_url)) == 1
        write_version(repo, "scale", 2, 1.0)
        wait_for(lambda: answered_version(infer(srv.http_url)) == 2, what="version 2 to serve")
        # latest-1 policy: version 1 retires once 2 serves
        wait_for(lambda: infer(srv.http_url, version=1).status_code in (404, 503),
                 what="version 1 to retire")
        # a changed config is picked up
        (repo / "scale" / "config.yaml").write_text("max_batch_size: 4\n")
        wait_for(lambda: requests.get(srv.http_url + "/v2/models/scale/config", timeout=5)
                 .json().get("max_batch_size") == 4, what="the new config")
        assert answered_version(infer(srv.http_url)) == 2
        # a removed version: version 1 serves again (latest-1 of what is left)
        write_version(repo, "scale", 1, 1.0)
        shutil.rmtree(repo / "scale" / "2")
        wait_for(lambda: answered_version(infer(srv.http_url)) == 1, what="fallback to version 1")
        # a new model folder appears; a removed one is unloaded
        (repo / "other" / "1").mkdir(parents=True)
        (repo / "other" / "1" / "model.onnx").write_bytes(scale_model_bytes(2.0))
        wait_ready(srv.http_url, "other")
        shutil.rmtree(repo / "other")
        wait_for(lambda: requests.get(srv.http_url + "/v2/models/other/ready", timeout=5)
                 .status_code != 200, what="model 'other' to unload")
        # the repository API refuses explicit control in poll mode
        r = requests.post(srv.http_url + "/v2/repository/models/scale/unload", timeout=10)
        assert r.status_code == 400 and "poll" in lib.error_message(r)
    finally:
        lib.stop_ok(srv)


def test_none_mode_refuses_load_unload_and_upload(tmp_path):
    repo = make_repo(tmp_path)
    srv = start(repo, tmp_path, "--model-control-mode", "none")
    try:
        for action in ("load", "unload"):
            r = requests.post(f"{srv.http_url}/v2/repository/models/scale/{action}", timeout=10)
            assert r.status_code == 400 and "none" in lib.error_message(r)
        r = requests.put(f"{srv.http_url}/v2/repository/models/scale/versions/2",
                         data=scale_model_bytes(1.0), timeout=10)
        assert r.status_code == 400
        assert not (repo / "scale" / "2").exists()
        assert answered_version(infer(srv.http_url)) == 1
    finally:
        lib.stop_ok(srv)


def test_explicit_load_with_config_override_and_grpc_unload(tmp_path):
    repo = make_repo(tmp_path)
    srv = start(repo, tmp_path)
    try:
        override = {"max_batch_size": 2,
                    "input": [{"name": "x", "data_type": "TYPE_FP32", "dims": [4]}],
                    "output": [{"name": "y", "data_type": "TYPE_FP32", "dims": [4]}]}
        r = requests.post(f"{srv.http_url}/v2/repository/models/scale/load",
                          json={"parameters": {"config": json.dumps(override)}}, timeout=30)
        assert r.status_code == 200, r.text
        cfg = requests.get(srv.http_url + "/v2/models/scale/config", timeout=5).json()
        assert cfg["max_batch_size"] == 2
        # the override's batch limit is enforced
        big = {"inputs": [{"name": "x", "shape": [3, 4], "datatype": "FP32", "data": [0] * 12}]}
        assert infer(srv.http_url, body=big).status_code == 400
        # a bad override is refused and the model keeps serving
        r = requests.post(f"{srv.http_url}/v2/repository/models/scale/load",
                          json={"parameters": {"config": "{not json"}}, timeout=30)
        assert r.status_code == 400
        assert answered_version(infer(srv.http_url)) == 1
        pb, stub = grpc_api()
        with grpc.insecure_channel(srv.grpc_target) as ch:
            s = stub(ch)
            s.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="scale"), timeout=30)
            assert infer(srv.http_url).status_code in (400, 404)
            req = pb.RepositoryModelLoadRequest(model_name="scale")
            s.RepositoryModelLoad(req, timeout=30)
            assert answered_version(infer(srv.http_url)) == 1
            # the load without an override restored the file's config
            assert requests.get(srv.http_url + "/v2/models/scale/config",
                                timeout=5).json()["max_batch_size"] == 8
            with pytest.raises(grpc.RpcError) as e:
                s.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="nope"), timeout=30)
            assert e.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        lib.stop_ok(srv)


def test_failed_warmup_never_serves_and_old_version_keeps_serving(tmp_path):
    repo = make_repo(tmp_path, config="max_batch_size: 8\nwarmup: {requests: 2, batch_size: 2}\n")
    srv = start(repo, tmp_path)
    try:
        r = requests.put(f"{srv.http_url}/v2/repository/models/scale/versions/2",
                         data=failing_warmup_model_bytes(), timeout=30)
        assert r.status_code == 400 and "warm-up" in lib.error_message(r), r.text
        assert not (repo / "scale" / "2").exists()
        # the same model placed on disk directly fails its load, and version 1 keeps serving
        (repo / "scale" / "2").mkdir()
        (repo / "scale" / "2" / "model.onnx").write_bytes(failing_warmup_model_bytes())
        r = requests.post(f"{srv.http_url}/v2/repository/models/scale/load", timeout=30)
        assert r.status_code != 200
        assert answered_version(infer(srv.http_url)) == 1
        states = {e.get("version"): e for e in index(srv.http_url) if e["name"] == "scale"}
        assert states["1"]["state"] == "READY"
    finally:
        lib.stop_ok(srv)


# ----------------------------------------------------------------------------- labels & traffic

def test_labels_name_versions_over_rest_and_grpc(tmp_path):
    repo = make_repo(tmp_path, versions=(1, 2), config="max_batch_size: 8\n")
    srv = start(repo, tmp_path)
    try:
        r = requests.put(f"{srv.http_url}/v2/models/scale/labels/beta", json={"version": 1},
                         timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["labels"]["beta"] == 1
        # version 1 was not wanted by latest-1; the label made it load
        assert answered_version(infer(srv.http_url, version="beta")) == 1
        assert requests.get(srv.http_url + "/v2/models/scale/versions/beta/ready",
                            timeout=5).status_code == 200
        pb, stub = grpc_api()
        with grpc.insecure_channel(srv.grpc_target) as ch:
            req = pb.ModelInferRequest(model_name="scale", model_version="beta")
            t = req.inputs.add(name="x", datatype="FP32", shape=[1, 4])
            t.contents.fp32_contents.extend([1, 2, 3, 4])
            assert stub(ch).ModelInfer(req, timeout=30).model_version == "1"
            req.model_version = "gamma"
            with pytest.raises(grpc.RpcError) as e:
                stub(ch).ModelInfer(req, timeout=30)
            assert e.value.code() == grpc.StatusCode.NOT_FOUND
        assert infer(srv.http_url, version="gamma").status_code == 404
        assert requests.put(f"{srv.http_url}/v2/models/scale/labels/beta", json={"version": 9},
                            timeout=30).status_code == 404
        assert requests.delete(f"{srv.http_url}/v2/models/scale/labels/beta",
                               timeout=30).status_code == 200
        assert infer(srv.http_url, version="beta").status_code == 404
    finally:
        lib.stop_ok(srv)


def test_weighted_split_and_sticky_keys(tmp_path):
    repo = make_repo(tmp_path, versions=(1, 2), config="max_batch_size: 8\n")
    srv = start(repo, tmp_path)
    try:
        r = requests.put(f"{srv.http_url}/v2/models/scale/traffic",
                         json={"split": {"1": 90, "2": 10}}, timeout=30)
        assert r.status_code == 200, r.text
        counts = collections.Counter()
        with requests.Session() as s:
            for _ in range(2000):
                counts[answered_version(s.post(srv.http_url + "/v2/models/scale/infer",
                                               json=BODY, timeout=30))] += 1
        # 10% of 2000 = 200, standard deviation ~13.4: allow five of them each way
        assert 133 <= counts[2] <= 267, counts
        assert counts[1] + counts[2] == 2000
        # a named version is never rerouted
        assert all(answered_version(infer(srv.http_url, version=2)) == 2 for _ in range(20))
        # sticky: one key, one version; keys spread over both versions
        seen = {}
        for i in range(200):
            key = f"user-{i}"
            versions = {answered_version(infer(srv.http_url,
                                               headers={"Slipway-Routing-Key": key}))
                        for _ in range(3)}
            assert len(versions) == 1, (key, versions)
            seen[key] = versions.pop()
        assert set(seen.values()) == {1, 2}
        # the routing_key request parameter works the same, and over gRPC metadata too
        body = dict(BODY, parameters={"routing_key": "user-7"})
        assert answered_version(infer(srv.http_url, body=body)) == seen["user-7"]
        pb, stub = grpc_api()
        with grpc.insecure_channel(srv.grpc_target) as ch:
            req = pb.ModelInferRequest(model_name="scale")
            t = req.inputs.add(name="x", datatype="FP32", shape=[1, 4])
            t.contents.fp32_contents.extend([1, 2, 3, 4])
            for key in ("user-3", "user-11", "user-42"):
                resp = stub(ch).ModelInfer(req, metadata=[("slipway-routing-key", key)], timeout=30)
                assert int(resp.model_version) == seen[key]
        # bad traffic changes are refused and change nothing
        for bad in ({"split": {"1": 0, "2": 0}}, {"split": {"nolabel": 5}}, {"spilt": {}},
                    {"split": {"1": 50}, "shadow": {"version": 2, "fraction": 2}}):
            r = requests.put(f"{srv.http_url}/v2/models/scale/traffic", json=bad, timeout=30)
            assert r.status_code in (400, 404), (bad, r.text)
        assert routing(srv.http_url)["traffic"]["split"] == [
            {"version": 2, "weight": 10}, {"version": 1, "weight": 90}]
    finally:
        lib.stop_ok(srv)


def test_shadow_traffic_is_compared_and_never_answers(tmp_path):
    repo = make_repo(tmp_path, versions=(1,), config="max_batch_size: 8\nversion_policy: {all: {}}\n")
    (repo / "scale" / "2").mkdir()
    (repo / "scale" / "2" / "model.onnx").write_bytes(scale_model_bytes(-1.0))
    (repo / "scale" / "3").mkdir()
    (repo / "scale" / "3" / "model.onnx").write_bytes(scale_model_bytes(1.0))
    srv = start(repo, tmp_path)
    try:
        r = requests.put(f"{srv.http_url}/v2/models/scale/labels/stable", json={"version": 1},
                         timeout=30)
        assert r.status_code == 200
        r = requests.put(f"{srv.http_url}/v2/models/scale/traffic",
                         json={"shadow": {"version": 2, "fraction": 1.0}}, timeout=30)
        assert r.status_code == 200, r.text
        for _ in range(50):
            resp = infer(srv.http_url)
            assert answered_version(resp) == 1
            assert resp.json()["outputs"][0]["data"] == [1, 2, 3, 4]
        cmp = wait_for(lambda: [c for c in routing(srv.http_url)["comparisons"]
                                if c["shadow"] == 2 and c["comparisons"] >= 50], what="comparisons")
        assert cmp[0]["primary"] == 1 and cmp[0]["agreements"] == 0
        assert cmp[0]["shadow_mean_ms"] > 0
        requests.put(f"{srv.http_url}/v2/models/scale/traffic",
                     json={"shadow": {"version": "3", "fraction": 0.5}}, timeout=30)
        for _ in range(100):
            assert answered_version(infer(srv.http_url)) == 1
        c3 = wait_for(lambda: [c for c in routing(srv.http_url)["comparisons"]
                               if c["shadow"] == 3 and c["comparisons"] > 0], what="shadow 3")[0]
        assert c3["agreements"] == c3["comparisons"]
        assert 15 <= c3["comparisons"] <= 85  # about half of 100
    finally:
        lib.stop_ok(srv)


# ----------------------------------------------------------------------------- canary rollouts

ROLLOUT_CONFIG = """max_batch_size: 8
rollout:
  steps:
    - {weight: 20, requests: 30}
    - {weight: 50, requests: 30}
    - {weight: 100, requests: 30}
  compare_fraction: 1.0
  guards: {min_requests: 10, min_comparisons: 10, min_agreement: 0.95, max_p99_ratio: 50, p99_slack_ms: 200}
"""


def drive(url, n, versions_seen, failures):
    with requests.Session() as s:
        for _ in range(n):
            r = s.post(url + "/v2/models/scale/infer", json=BODY, timeout=30)
            if r.status_code != 200:
                failures.append(r.text)
            else:
                versions_seen[int(r.json()["model_version"])] += 1


def test_bad_canary_rolls_back_and_good_one_is_promoted(tmp_path):
    repo = make_repo(tmp_path, config=ROLLOUT_CONFIG)
    srv = start(repo, tmp_path)
    try:
        assert routing(srv.http_url)["labels"] == {"stable": 1}
        r = requests.put(f"{srv.http_url}/v2/repository/models/scale/versions/2",
                         data=scale_model_bytes(-1.0), timeout=30)
        assert r.status_code == 201 and r.json()["state"] == "READY", r.text
        wait_for(lambda: routing(srv.http_url)["rollout"]["state"] == "running", what="rollout")
        seen, failures = collections.Counter(), []
        deadline = time.monotonic() + 60
        while routing(srv.http_url)["rollout"]["state"] == "running" and time.monotonic() < deadline:
            drive(srv.http_url, 20, seen, failures)
        view = routing(srv.http_url)
        assert view["rollout"]["state"] == "rolled_back", view
        assert "agreement" in view["rollout"]["reason"]
        assert view["labels"] == {"stable": 1}
        assert not failures
        assert set(seen) <= {1, 2}
        drive(srv.http_url, 30, seen := collections.Counter(), failures)
        assert set(seen) == {1}, seen
        kinds = [e["kind"] for e in history(srv.http_url)]
        assert "rollback" in kinds and "rollout_start" in kinds
        rb = next(e for e in history(srv.http_url) if e["kind"] == "rollback")
        assert rb["version"] == 2 and rb["details"]["comparisons"] >= 10

        # a good candidate passes every step and becomes stable
        r = requests.put(f"{srv.http_url}/v2/repository/models/scale/versions/3",
                         data=scale_model_bytes(1.0), timeout=30)
        assert r.status_code == 201, r.text
        wait_for(lambda: routing(srv.http_url)["rollout"]["candidate"] == 3, what="rollout of 3")
        deadline = time.monotonic() + 90
        seen = collections.Counter()
        while routing(srv.http_url)["rollout"]["state"] == "running" and time.monotonic() < deadline:
            drive(srv.http_url, 20, seen, failures)
        view = routing(srv.http_url)
        assert view["rollout"]["state"] == "completed", view
        assert view["labels"]["stable"] == 3 and view["labels"]["previous"] == 1
        assert not failures
        assert seen[3] > 0 and set(seen) <= {1, 3}
        steps = [e for e in history(srv.http_url) if e["kind"] == "rollout_step"]
        assert len(steps) == 2
        assert answered_version(infer(srv.http_url)) == 3

        # rollback returns all traffic to the previous stable version at once
        r = requests.post(f"{srv.http_url}/v2/models/scale/rollback", json={}, timeout=30)
        assert r.status_code == 200, r.text
        assert all(answered_version(infer(srv.http_url)) == 1 for _ in range(20))
    finally:
        lib.stop_ok(srv)


def test_state_survives_restart(tmp_path):
    repo = make_repo(tmp_path, versions=(1, 2), config="max_batch_size: 8\n")
    srv = start(repo, tmp_path)
    try:
        assert requests.put(f"{srv.http_url}/v2/models/scale/labels/stable", json={"version": 1},
                            timeout=30).status_code == 200
        assert requests.put(f"{srv.http_url}/v2/models/scale/traffic",
                            json={"split": {"1": 70, "2": 30}}, timeout=30).status_code == 200
        before = routing(srv.http_url)
        events_before = len(history(srv.http_url))
    finally:
        lib.stop_ok(srv)
    srv = start(repo, tmp_path, name="srv2")
    try:
        after = routing(srv.http_url)
        assert after["labels"] == before["labels"]
        assert after["traffic"] == before["traffic"]
        # version 1 is pinned by its label although latest-1 wants only 2
        assert answered_version(infer(srv.http_url, version="stable")) == 1
        assert len(history(srv.http_url)) >= events_before
    finally:
        lib.stop_ok(srv)


# ----------------------------------------------------------------------------- uploads

def test_uploads_validated_atomic_and_refused_with_reason(tmp_path):
    repo = make_repo(tmp_path)
    srv = start(repo, tmp_path)
    try:
        listing = sorted(p.name for p in (repo / "scale").iterdir())
        r = requests.put(f"{srv.http_url}/v2/repository/models/scale/versions/2",
                         data=b"this is not an onnx model", timeout=30)
        assert r.status_code == 400 and "refused" in lib.error_message(r), r.text
        assert sorted(p.name for p in (repo / "scale").iterdir()) == listing
        r = requests.put(f"{srv.http_url}/v2/repository/models/scale/versions/1",
                         data=scale_model_bytes(1.0), timeout=30)
        assert r.status_code == 409
        r = requests.put(f"{srv.http_url}/v2/repository/models/scale/versions/2", data=b"",
                         timeout=30)
        assert r.status_code == 400
        for bad in ("..", ".hidden", "a%2Fb", "%2E%2E"):
            r = requests.put(f"{srv.http_url}/v2/repository/models/{bad}/versions/1",
                             data=scale_model_bytes(1.0), timeout=30)
            assert r.status_code in (400, 404), (bad, r.status_code)
        assert sorted(p.name for p in repo.iterdir() if not p.name.startswith(".")) == ["scale"]
        # a good upload without a number becomes the next version and serves
        r = requests.post(f"{srv.http_url}/v2/repository/models/scale/versions",
                          data=scale_model_bytes(1.0), timeout=30)
        assert r.status_code == 201 and r.json() == {"model": "scale", "version": 2,
                                                     "state": "READY"}, r.text
        assert answered_version(infer(srv.http_url)) == 2
        assert (repo / "scale" / "2" / "model.onnx").read_bytes() == scale_model_bytes(1.0)
        # a brand-new model can be uploaded too
        r = requests.put(f"{srv.http_url}/v2/repository/models/fresh/versions/1",
                         data=scale_model_bytes(3.0), timeout=30)
        assert r.status_code == 201, r.text
        out = infer(srv.http_url, model="fresh").json()["outputs"][0]["data"]
        assert out == [3, 6, 9, 12]
        assert not list((repo / "scale").glob(".staging-*")) and not list(repo.glob(".staging-*"))
    finally:
        lib.stop_ok(srv)


# ----------------------------------------------------------------------------- CLI

def test_models_cli_against_a_running_server(tmp_path):
    repo = make_repo(tmp_path, versions=(1, 2), config="max_batch_size: 8\nversion_policy: {all: {}}\n")
    srv = start(repo, tmp_path)

    def cli(*args, ok=True):
        p = subprocess.run([lib.BINARY, "models", "--url", srv.http_url, *args],
                           capture_output=True, text=True, timeout=60)
        if ok:
            assert p.returncode == 0, p.stderr
        return p

    try:
        assert "scale" in cli("list").stdout
        cli("label", "scale", "stable", "1")
        cli("split", "scale", "stable=80", "2=20")
        view = routing(srv.http_url)
        assert view["labels"]["stable"] == 1
        assert {s["version"]: s["weight"] for s in view["traffic"]["split"]} == {1: 80, 2: 20}
        cli("split", "scale", "--clear")
        cli("promote", "scale", "2")
        assert routing(srv.http_url)["labels"] == {"stable": 2, "previous": 1}
        cli("rollback", "scale")
        assert routing(srv.http_url)["labels"]["stable"] == 1
        out = cli("history", "scale").stdout
        assert "promote" in out and "rollback" in out
        model_file = tmp_path / "v3.onnx"
        model_file.write_bytes(scale_model_bytes(1.0))
        cli("upload", "scale", str(model_file))
        assert (repo / "scale" / "3" / "model.onnx").exists()
        p = cli("label", "scale", "x", "99", ok=False)
        assert p.returncode == 1 and "error" in p.stderr
        p = cli("promote", ok=False)
        assert p.returncode == 2
    finally:
        lib.stop_ok(srv)


# ----------------------------------------------------------------------------- soak

def test_soak_no_failed_request_while_versions_change(tmp_path):
    """Steady load from several clients while versions are added, promoted, rolled back and
    removed: no request fails and every answer comes from a version that existed then."""
    repo = make_repo(tmp_path, config=ROLLOUT_CONFIG)
    srv = start(repo, tmp_path, "--model-control-mode", "poll", "--repository-poll-secs", "0.3")
    stop = threading.Event()
    failures, answers = [], []
    lock = threading.Lock()

    def client():
        with requests.Session() as s:
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    r = s.post(srv.http_url + "/v2/models/scale/infer", json=BODY, timeout=30)
                except requests.RequestException as e:
                    failures.append(repr(e))
                    continue
                with lock:
                    if r.status_code != 200:
                        failures.append(f"{r.status_code} {r.text}")
                    else:
                        answers.append((t0, time.monotonic(), int(r.json()["model_version"]),
                                        r.json()["outputs"][0]["data"]))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(1)
        # a good version appears on disk: canary, then promotion
        write_version(repo, "scale", 2, 1.0)
        wait_for(lambda: routing(srv.http_url)["labels"].get("stable") == 2, timeout=120,
                 what="version 2 promoted")
        # a bad one is uploaded: rolled back by the guards
        r = requests.put(f"{srv.http_url}/v2/repository/models/scale/versions/3",
                         data=scale_model_bytes(-1.0), timeout=30)
        assert r.status_code == 201, r.text
        wait_for(lambda: routing(srv.http_url)["rollout"]["state"] == "rolled_back", timeout=120,
                 what="version 3 rolled back")
        # manual rollback to version 1, then version 3 removed from disk
        assert requests.post(srv.http_url + "/v2/models/scale/rollback", json={},
                             timeout=30).status_code == 200
        shutil.rmtree(repo / "scale" / "3")
        time.sleep(2)
    finally:
        stop.set()
        for t in threads:
            t.join()
        lib.stop_ok(srv)
    assert not failures, failures[:5]
    assert len(answers) > 200
    assert {v for _, _, v, _ in answers} <= {1, 2, 3}
    # version 3 (negated outputs) answered only as a canary, never after its rollback
    rolled_back_at = None
    for _, end, v, data in answers:
        expected = [-1, -2, -3, -4] if v == 3 else [1, 2, 3, 4]
        assert data == expected, (v, data)
    versions_in_order = [v for _, _, v, _ in sorted(answers)]
    last_3 = max((i for i, v in enumerate(versions_in_order) if v == 3), default=-1)
    assert last_3 < len(versions_in_order) - 50  # plenty of answers after the rollback
    del rolled_back_at


def test_validation_set_gates_uploads(tmp_path):
    import random
    rng = random.Random(5)
    rows = []
    for _ in range(40):
        x = [rng.uniform(-1, 1) for _ in range(4)]
        rows.append(json.dumps({"inputs": {"x": x}, "expected": max(range(4), key=x.__getitem__)}))
    config = ("max_batch_size: 8\nvalidation: {file: validation.jsonl, output: y, "
              "min_accuracy: 0.9, max_divergence: 0.1}\n")
    repo = make_repo(tmp_path, config=config)
    (repo / "scale" / "validation.jsonl").write_text("\n".join(rows) + "\n")
    srv = start(repo, tmp_path)
    try:
        assert answered_version(infer(srv.http_url)) == 1
        # negated outputs: every top-1 is wrong and differs from version 1
        r = requests.put(f"{srv.http_url}/v2/repository/models/scale/versions/2",
                         data=scale_model_bytes(-1.0), timeout=30)
        assert r.status_code == 400, r.text
        msg = lib.error_message(r)
        assert "accuracy 0." in msg and "min_accuracy 0.9" in msg, msg
        assert not (repo / "scale" / "2").exists()
        # a scaled copy keeps every top-1: accepted
        r = requests.put(f"{srv.http_url}/v2/repository/models/scale/versions/2",
                         data=scale_model_bytes(3.0), timeout=30)
        assert r.status_code == 201, r.text
        assert answered_version(infer(srv.http_url)) == 2
        assert "passed validation" in srv.log()
    finally:
        lib.stop_ok(srv)


# ----------------------------------------------------------------------------- ground truth

FEEDBACK_CONFIG = "max_batch_size: 8\nmonitoring: {feedback: {output: y, window: 100}}\n"


def test_feedback_gives_live_accuracy_per_version(tmp_path):
    repo = make_repo(tmp_path, config=FEEDBACK_CONFIG)
    (repo / "plain").mkdir()
    write_version(repo, "plain", 1, 1.0)
    srv = start(repo, tmp_path)
    try:
        ids = []
        for i in range(10):
            r = infer(srv.http_url)
            assert r.status_code == 200
            rid = r.json()["id"]
            assert len(rid) == 16 and all(c in "0123456789abcdef" for c in rid)
            ids.append(rid)
        # a caller's own id is kept and can be used for feedback
        body = dict(BODY, id="order-17")
        assert infer(srv.http_url, body=body).json()["id"] == "order-17"
        # the answer's top-1 is class 3 (x = [1, 2, 3, 4]); half the truths agree
        items = [{"id": rid, "truth": 3 if i % 2 == 0 else 0} for i, rid in enumerate(ids)]
        items.append({"id": "never-seen", "truth": 1})
        r = requests.post(f"{srv.http_url}/v2/models/scale/feedback", json={"items": items},
                          timeout=10)
        assert r.status_code == 200, r.text
        assert r.json() == {"applied": 10, "unknown_ids": ["never-seen"]}
        acc = requests.get(f"{srv.http_url}/v2/models/scale/accuracy", timeout=10).json()
        assert acc["versions"] == [{"version": 1, "feedback": 10, "window": 10, "accuracy": 0.5}]
        # a malformed item refuses the whole call, and nothing is applied
        bad = [{"id": "order-17", "truth": [3, 3]}]
        r = requests.post(f"{srv.http_url}/v2/models/scale/feedback", json={"items": bad}, timeout=10)
        assert r.status_code == 400 and "rows" in lib.error_message(r)
        for bad_body in ({"items": [{"id": "x"}]}, {"items": "x"}, {"id": "x", "truth": 1}):
            r = requests.post(f"{srv.http_url}/v2/models/scale/feedback", json=bad_body, timeout=10)
            assert r.status_code == 400, bad_body
        r = requests.post(f"{srv.http_url}/v2/models/scale/feedback",
                          json={"items": [{"id": "order-17", "truth": 3}]}, timeout=10)
        assert r.json()["applied"] == 1
        acc = requests.get(f"{srv.http_url}/v2/models/scale/accuracy", timeout=10).json()
        assert acc["versions"][0]["feedback"] == 11
        # feedback for the same answer twice counts once
        r = requests.post(f"{srv.http_url}/v2/models/scale/feedback",
                          json={"items": [{"id": "order-17", "truth": 3}]}, timeout=10)
        assert r.json() == {"applied": 0, "unknown_ids": ["order-17"]}
        # models without `monitoring: feedback` refuse it; unknown models are 404
        r = requests.post(f"{srv.http_url}/v2/models/plain/feedback",
                          json={"items": [{"id": ids[0], "truth": 1}]}, timeout=10)
        assert r.status_code == 400 and "monitoring" in lib.error_message(r)
        r = requests.post(f"{srv.http_url}/v2/models/nope/feedback",
                          json={"items": [{"id": ids[0], "truth": 1}]}, timeout=10)
        assert r.status_code == 404
    finally:
        lib.stop_ok(srv)


def test_canary_rolled_back_by_live_accuracy(tmp_path):
    config = FEEDBACK_CONFIG + """rollout:
  steps: [{weight: 50, requests: 200}, {weight: 100, requests: 200}]
  compare_fraction: 0
  guards: {min_requests: 20, min_accuracy: 0.8, max_p99_ratio: 50, p99_slack_ms: 200}
"""
    repo = make_repo(tmp_path, config=config)
    srv = start(repo, tmp_path)
    try:
        r = requests.put(f"{srv.http_url}/v2/repository/models/scale/versions/2",
                         data=scale_model_bytes(-1.0), timeout=30)
        assert r.status_code == 201, r.text
        wait_for(lambda: routing(srv.http_url)["rollout"]["state"] == "running", what="rollout")
        deadline = time.monotonic() + 60
        with requests.Session() as s:
            while routing(srv.http_url)["rollout"]["state"] == "running":
                assert time.monotonic() < deadline, routing(srv.http_url)
                items = []
                for _ in range(20):
                    resp = s.post(srv.http_url + "/v2/models/scale/infer", json=BODY, timeout=30)
                    assert resp.status_code == 200
                    items.append({"id": resp.json()["id"], "truth": 3})  # the true class
                assert s.post(f"{srv.http_url}/v2/models/scale/feedback", json={"items": items},
                              timeout=10).status_code == 200
        view = routing(srv.http_url)
        assert view["rollout"]["state"] == "rolled_back", view
        assert "live accuracy" in view["rollout"]["reason"], view
        acc = {a["version"]: a for a in requests.get(
            f"{srv.http_url}/v2/models/scale/accuracy", timeout=10).json()["versions"]}
        assert acc[1]["accuracy"] == 1.0 and acc[2]["accuracy"] == 0.0
    finally:
        lib.stop_ok(srv)


def _tar(files: dict, gz=True, links=()) -> bytes:
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in links:
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()


def test_archive_uploads_with_config(tmp_path):
    import io
    import zipfile
    repo = make_repo(tmp_path)
    srv = start(repo, tmp_path)
    url = srv.http_url
    try:
        # a new model with its config, as tar.gz
        config = b"max_batch_size: 2\n"
        r = requests.put(f"{url}/v2/repository/models/packed/versions/1",
                         data=_tar({"config.yaml": config, "model.onnx": scale_model_bytes(2.0)}),
                         timeout=30)
        assert r.status_code == 201, r.text
        assert (repo / "packed" / "config.yaml").read_bytes() == config
        assert requests.get(f"{url}/v2/models/packed/config", timeout=5).json()["max_batch_size"] == 2
        assert infer(url, model="packed").json()["outputs"][0]["data"] == [2, 4, 6, 8]
        # a second version as a zip, without a config: the model's config stays
        zbuf = io.BytesIO()
        with zipfile.ZipFile(zbuf, "w") as z:
            z.writestr("model.onnx", scale_model_bytes(5.0))
        r = requests.post(f"{url}/v2/repository/models/packed/versions", data=zbuf.getvalue(),
                          timeout=30)
        assert r.status_code == 201 and r.json()["version"] == 2, r.text
        assert infer(url, model="packed").json()["outputs"][0]["data"] == [5, 10, 15, 20]
        listing = sorted(p.name for p in (repo / "packed").iterdir())
        # refused: a different config for an existing model, traversal, links, garbage
        for bad in (_tar({"config.yaml": b"max_batch_size: 4\n", "model.onnx": scale_model_bytes(1.0)}),
                    _tar({"../escape.onnx": scale_model_bytes(1.0)}, gz=False),
                    _tar({"model.onnx": scale_model_bytes(1.0)}, links=[("x.onnx", "/etc/passwd")]),
                    b"\x1f\x8b\x08\x00garbage-gzip",
                    _tar({"config.yaml": config})):
            r = requests.put(f"{url}/v2/repository/models/packed/versions/3", data=bad, timeout=30)
            assert r.status_code in (400, 409), r.text
            assert lib.error_message(r)
        assert sorted(p.name for p in (repo / "packed").iterdir()) == listing
        assert not (tmp_path / "escape.onnx").exists() and not (repo / "escape.onnx").exists()
    finally:
        lib.stop_ok(srv)


def test_admin_calls_with_empty_bodies_and_refused_new_models(tmp_path):
    """Regression: empty admin bodies read as {} (they once crashed the server), and a refused
    upload of a new model leaves no folder behind (it once made the server report not ready)."""
    repo = make_repo(tmp_path)
    srv = start(repo, tmp_path, "--model-control-mode", "poll", "--repository-poll-secs", "0.2")
    try:
        for method, path in (("POST", "rollback"), ("POST", "promote"), ("PUT", "traffic"),
                             ("POST", "rollout"), ("PUT", "labels/beta")):
            r = requests.request(method, f"{srv.http_url}/v2/models/scale/{path}", data=b"",
                                 timeout=10)
            assert r.status_code == 400 or (path == "traffic" and r.status_code == 200), (path, r.text)
        r = requests.put(f"{srv.http_url}/v2/repository/models/newmodel/versions/1",
                         data=b"not a model", timeout=30)
        assert r.status_code == 400
        time.sleep(1)  # a few polls
        assert not (repo / "newmodel").exists()
        assert sorted(p.name for p in repo.iterdir() if not p.name.startswith(".")) == ["scale"]
        assert requests.get(srv.http_url + "/v2/health/ready", timeout=10).status_code == 200
        assert answered_version(infer(srv.http_url)) == 1
    finally:
        lib.stop_ok(srv)
