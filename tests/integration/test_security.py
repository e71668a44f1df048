"""Security from an attacker's side: API keys and roles on every admin route (HTTP and gRPC),
names and uploads that try to leave the repository, a client that sends one byte a second, a
flood from one key while another key is served, a separate admin listener, and request limits.

Every server here serves a private repository with one model, `scale`: y = x over [-1, 4] FP32.
"""

from __future__ import annotations

import io
import os
import socket
import tarfile
from pathlib import Path

import grpc
import pytest
import requests

import slipway_testlib as lib
from test_rollout import make_repo, scale_model_bytes

ADMIN = "admin-secret-0001"
INFER = "infer-secret-0001"
OTHER = "infer-secret-0002"
KEYS = f"admin={ADMIN},infer={INFER},infer={OTHER}"
BODY = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}


def start(tmp_path: Path, *args, keys=KEYS, repo=None):
    repo = repo or make_repo(tmp_path)
    srv = lib.ServerProcess(repo, extra_args=list(args), log_dir=tmp_path, name="sec")
    if keys is not None:
        env_keys = os.environ.get("SLIPWAY_API_KEYS")
        os.environ["SLIPWAY_API_KEYS"] = keys
        try:
            srv.start()
        finally:
            if env_keys is None:
                del os.environ["SLIPWAY_API_KEYS"]
            else:
                os.environ["SLIPWAY_API_KEYS"] = env_keys
    else:
        srv.start()
    srv.wait_live()
    return srv, repo


def bearer(key):
    return {"Authorization": f"Bearer {key}"} if key else {}


def tar_with(members) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# Every admin route, as (method, path, body). None of them may do anything without an admin key.
ADMIN_ROUTES = [
    ("POST", "/v2/repository/index", {}),
    ("POST", "/v2/repository/models/scale/load", {}),
    ("POST", "/v2/repository/models/scale/unload", {}),
    ("PUT", "/v2/repository/models/scale/versions/2", None),
    ("POST", "/v2/repository/models/scale/versions", None),
    ("PUT", "/v2/models/scale/labels/stable", {"version": 1}),
    ("DELETE", "/v2/models/scale/labels/stable", None),
    ("PUT", "/v2/models/scale/traffic", {"split": {"1": 100}}),
    ("DELETE", "/v2/models/scale/traffic", None),
    ("POST", "/v2/models/scale/rollout", {"candidate": 1}),
    ("POST", "/v2/models/scale/promote", {}),
    ("POST", "/v2/models/scale/rollback", {}),
    ("POST", "/v2/models/scale/feedback", {"items": []}),
]


def call(srv, method, path, body, key):
    url = srv.http_url + path
    if body is None and method in ("PUT", "POST"):
        return requests.request(method, url, data=scale_model_bytes(1.0), headers=bearer(key),
                                timeout=30)
    return requests.request(method, url, json=body, headers=bearer(key), timeout=30)


def test_admin_routes_need_an_admin_key_over_http(tmp_path):
    srv, repo = start(tmp_path)
    try:
        for method, path, body in ADMIN_ROUTES:
            r = call(srv, method, path, body, None)
            assert r.status_code == 401, (method, path, r.status_code, r.text)
            assert "Bearer" in r.headers.get("WWW-Authenticate", "")
            assert "API key" in lib.error_message(r)
            r = call(srv, method, path, body, "not-a-key-at-all")
            assert r.status_code == 401, (method, path, r.status_code)
            r = call(srv, method, path, body, INFER)
            assert r.status_code == 403, (method, path, r.status_code, r.text)
            assert "admin role" in lib.error_message(r)
        # Nothing was applied: no version 2 on disk, version 1 still serves, no traffic rule.
        assert not (repo / "scale" / "2").exists()
        r = requests.post(f"{srv.http_url}/v2/models/scale/infer", json=BODY, headers=bearer(INFER),
                          timeout=10)
        assert r.status_code == 200 and r.json()["model_version"] == "1"
        # Inference and metadata need a key too; health and /metrics stay open by default.
        assert requests.post(f"{srv.http_url}/v2/models/scale/infer", json=BODY,
                             timeout=10).status_code == 401
        assert requests.get(f"{srv.http_url}/v2/models/scale", timeout=10).status_code == 401
        assert requests.get(f"{srv.http_url}/v2/models/scale", headers=bearer(INFER),
                            timeout=10).status_code == 200
        assert requests.get(f"{srv.http_url}/v2/health/ready", timeout=10).status_code == 200
        assert requests.get(f"{srv.http_url}/metrics", timeout=10).status_code == 200
        # The admin key works, with either header.
        r = requests.post(f"{srv.http_url}/v2/repository/index", headers={"X-API-Key": ADMIN},
                          timeout=10)
        assert r.status_code == 200 and r.json()[0]["name"] == "scale"
        r = requests.put(f"{srv.http_url}/v2/repository/models/scale/versions/2",
                         data=scale_model_bytes(1.0), headers=bearer(ADMIN), timeout=60)
        assert r.status_code in (200, 201), r.text
        assert (repo / "scale" / "2" / "model.onnx").exists()
    finally:
        lib.stop_ok(srv)


def test_grpc_refuses_without_the_right_role(tmp_path):
    srv, _ = start(tmp_path)
    m = lib.grpc_modules()
    pb = m.pb
    try:
        with grpc.insecure_channel(srv.grpc_target) as ch:
            stub = m.pb_grpc.GRPCInferenceServiceStub(ch)
            infer = pb.ModelInferRequest(model_name="scale")
            t = infer.inputs.add(name="x", datatype="FP32", shape=[1, 4])
            t.contents.fp32_contents.extend([1, 2, 3, 4])
            calls = [
                (stub.RepositoryModelLoad, pb.RepositoryModelLoadRequest(model_name="scale"), True),
                (stub.RepositoryModelUnload, pb.RepositoryModelUnloadRequest(model_name="scale"),
                 True),
                (stub.RepositoryIndex, pb.RepositoryIndexRequest(), True),
                (stub.ModelInfer, infer, False),
                (stub.ModelMetadata, pb.ModelMetadataRequest(name="scale"), False),
            ]
            for method, request, admin_only in calls:
                with pytest.raises(grpc.RpcError) as e:
                    method(request, timeout=10)
                assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
                md = (("authorization", f"Bearer {INFER}"),)
                if admin_only:
                    with pytest.raises(grpc.RpcError) as e:
                        method(request, metadata=md, timeout=10)
                    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
                else:
                    method(request, metadata=md, timeout=10)
            # Still loaded: the refused unload did nothing.
            r = stub.ModelReady(pb.ModelReadyRequest(name="scale"),
                                metadata=(("x-api-key", INFER),), timeout=10)
            assert r.ready
            # Health stays open for probes.
            assert stub.ServerLive(pb.ServerLiveRequest(), timeout=10).live
    finally:
        lib.stop_ok(srv)


def test_names_and_uploads_never_leave_the_repository(tmp_path):
    srv, repo = start(tmp_path, keys=None)
    outside = tmp_path / "outside"
    try:
        names = ["..", "...", ".hidden", "..%2F..%2Foutside", "%2e%2e", "a%00b", "a\\b",
                 "%2Ftmp%2Fx"]
        for name in names:
            r = requests.post(f"{srv.http_url}/v2/repository/models/{name}/load", timeout=10)
            assert r.status_code in (400, 404), (name, r.status_code, r.text)
            r = requests.put(f"{srv.http_url}/v2/repository/models/{name}/versions/1",
                             data=scale_model_bytes(1.0), timeout=30)
            assert r.status_code in (400, 404), (name, r.status_code, r.text)
        # Raw paths that a client library would normalise away.
        for raw in ("/v2/repository/models/../../outside/versions/1",
                    "/v2/repository/models/..%2f..%2foutside/versions/1",
                    "/v2/repository/models/%2e%2e/versions/1"):
            with socket.create_connection(("127.0.0.1", srv.http_port), timeout=10) as s:
                body = scale_model_bytes(1.0)
                s.sendall(f"PUT {raw} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
                          f"Connection: close\r\n\r\n".encode() + body)
                status = s.recv(4096).split(b" ", 2)[1]
                assert status in (b"400", b"404", b"405"), (raw, status)
        # Archives whose members climb out, are absolute or are links are refused whole.
        for members in ([("../../outside/evil.onnx", b"x")],
                        [("/tmp/evil.onnx", b"x")],
                        [("model.onnx", scale_model_bytes(1.0)), ("../evil", b"x")]):
            r = requests.put(f"{srv.http_url}/v2/repository/models/scale/versions/5",
                             data=tar_with(members), headers={"Content-Type": "application/x-tar"},
                             timeout=30)
            assert r.status_code == 400, (members[0][0], r.status_code, r.text)
        assert not outside.exists()
        assert not Path("/tmp/evil.onnx").exists()
        assert not (repo / "scale" / "5").exists()
        assert sorted(p.name for p in repo.iterdir() if not p.name.startswith(".")) == ["scale"]
    finally:
        lib.stop_ok(srv)


def test_slow_client_is_cut_off_while_others_are_served(tmp_path):
    srv, _ = start(tmp_path, "--http-idle-timeout", "2", "--http-request-timeout", "2", keys=None)
    try:
        request = (b"POST /v2/models/scale/infer HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n" + b" " * 1000)
        s = socket.create_connection(("127.0.0.1", srv.http_port), timeout=10)
        closed_after = None
        served = 0
        for i, byte in enumerate(request[:40]):
            try:
                s.sendall(bytes([byte]))
            except OSError:
                closed_after = i
                break
            # Other clients are answered meanwhile.
            r = requests.post(f"{srv.http_url}/v2/models/scale/infer", json=BODY, timeout=10)
            assert r.status_code == 200
            served += 1
            s.settimeout(1.0)
            try:
                if s.recv(1024, socket.MSG_PEEK) == b"":
                    closed_after = i
                    break
            except socket.timeout:
                pass
            except OSError:
                closed_after = i
                break
        s.close()
        assert closed_after is not None, "the slow client was never cut off"
        assert closed_after < 40
        assert served > 0
    finally:
        lib.stop_ok(srv)


def test_a_flood_from_one_key_is_limited_while_another_is_served(tmp_path):
    srv, _ = start(tmp_path, "--rate-limit", "5", "--rate-limit-burst", "5")
    try:
        flood = [requests.post(f"{srv.http_url}/v2/models/scale/infer", json=BODY,
                               headers=bearer(INFER), timeout=10) for _ in range(40)]
        codes = [r.status_code for r in flood]
        assert codes.count(429) >= 20, codes
        limited = next(r for r in flood if r.status_code == 429)
        assert int(limited.headers["Retry-After"]) >= 1
        assert "rate limit" in lib.error_message(limited)
        # Another key has its own budget: its first requests pass while the first key is limited.
        for _ in range(3):
            r = requests.post(f"{srv.http_url}/v2/models/scale/infer", json=BODY,
                              headers=bearer(OTHER), timeout=10)
            assert r.status_code == 200
        # Health is never limited.
        assert requests.get(f"{srv.http_url}/v2/health/ready", timeout=10).status_code == 200
        # gRPC answers RESOURCE_EXHAUSTED for the same key.
        m = lib.grpc_modules()
        with grpc.insecure_channel(srv.grpc_target) as ch:
            stub = m.pb_grpc.GRPCInferenceServiceStub(ch)
            codes = []
            for _ in range(20):
                try:
                    stub.ModelMetadata(m.pb.ModelMetadataRequest(name="scale"),
                                       metadata=(("authorization", f"Bearer {INFER}"),),
                                       timeout=10)
                    codes.append("OK")
                except grpc.RpcError as e:
                    codes.append(e.code().name)
            assert "RESOURCE_EXHAUSTED" in codes, codes
    finally:
        lib.stop_ok(srv)


def test_admin_endpoints_on_their_own_listener(tmp_path):
    admin_port = lib.free_port()
    srv, repo = start(tmp_path, "--admin-http-port", str(admin_port), keys=None)
    admin = f"http://127.0.0.1:{admin_port}"
    try:
        r = requests.post(f"{srv.http_url}/v2/repository/models/scale/unload", timeout=10)
        assert r.status_code == 404 and "admin listener" in lib.error_message(r)
        r = requests.put(f"{srv.http_url}/v2/models/scale/traffic", json={"split": {"1": 100}},
                         timeout=10)
        assert r.status_code == 404
        assert requests.post(f"{srv.http_url}/v2/models/scale/infer", json=BODY,
                             timeout=10).status_code == 200
        # The admin listener serves admin routes and health only.
        r = requests.post(f"{admin}/v2/repository/index", timeout=10)
        assert r.status_code == 200 and r.json()[0]["name"] == "scale"
        assert requests.get(f"{admin}/v2/health/live", timeout=10).status_code == 200
        assert requests.post(f"{admin}/v2/models/scale/infer", json=BODY,
                             timeout=10).status_code == 404
        r = requests.post(f"{admin}/v2/repository/models/scale/unload", timeout=30)
        assert r.status_code == 200
    finally:
        lib.stop_ok(srv)


def test_header_and_tensor_limits(tmp_path):
    srv, _ = start(tmp_path, "--http-max-header-bytes", "4096", "--max-tensor-elements", "8",
                   keys=None)
    try:
        r = requests.get(f"{srv.http_url}/v2/health/live", headers={"X-Big": "a" * 8000},
                         timeout=10)
        assert r.status_code == 431
        big = {"inputs": [{"name": "x", "shape": [3, 4], "datatype": "FP32", "data": [0] * 12}]}
        r = requests.post(f"{srv.http_url}/v2/models/scale/infer", json=big, timeout=10)
        assert r.status_code == 400 and "limit of 8" in lib.error_message(r)
        r = requests.post(f"{srv.http_url}/v2/models/scale/infer", json=BODY, timeout=10)
        assert r.status_code == 200
    finally:
        lib.stop_ok(srv)


def test_bad_keys_stop_the_start_with_a_clear_message(tmp_path):
    bad = tmp_path / "keys.yaml"
    bad.write_text("keys: [{name: ci, key: short, roles: [infer]}]\n")
    srv = lib.ServerProcess(make_repo(tmp_path), extra_args=["--api-keys-file", str(bad)],
                            log_dir=tmp_path, name="badkeys")
    srv.start()
    rc = srv.proc.wait(timeout=60)
    srv.kill()
    assert rc == 2
    assert "at least 8 characters" in srv.log() and str(bad) in srv.log()
