"""Fixtures for Slipway's integration tests.

One server (session scope) serves tests/models, which includes models that must
fail to load (broken, bad_config), so strict readiness reports not-ready there.
Tests that need their own server (lifecycle, readiness variants) start one with
slipway_testlib.ServerProcess.

Environment:
  SLIPWAY_BINARY     server binary (default build/slipway)
  SLIPWAY_SANITIZED  1 if the binary is an ASan/UBSan build: longer start-up
                     allowance, tests/lsan.supp as LeakSanitizer suppressions, and
                     every server log is checked for sanitizer reports.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grpc
import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import slipway_testlib as lib  # noqa: E402  (binary-protocol and process helpers)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("logs")
    srv = lib.start_live(lib.MODELS_DIR, log_dir=log_dir, name="session",
                         extra_args=["--http-max-body-bytes", str(lib.HTTP_MAX_BODY_BYTES),
                                     "--state-db", str(log_dir / "session-deployments.db")])
    yield srv
    sys.stderr.write(f"\nsession server log: {srv.log_path}\n")
    lib.stop_ok(srv)


@pytest.fixture(scope="session")
def base_url(server):
    return server.http_url


@pytest.fixture(scope="session")
def http(server):
    s = requests.Session()
    yield s
    s.close()


class Api:
    """Thin HTTP helper bound to the session server."""

    def __init__(self, session: requests.Session, base: str):
        self.s = session
        self.base = base

    def get(self, path, **kw):
        kw.setdefault("timeout", lib.REQUEST_TIMEOUT_S)
        return self.s.get(self.base + path, **kw)

    def post(self, path, **kw):
        kw.setdefault("timeout", lib.REQUEST_TIMEOUT_S)
        return self.s.post(self.base + path, **kw)

    def infer_json(self, model, inputs, version=None, outputs=None, request_id=None, parameters=None):
        """inputs: [(name, datatype, np.ndarray)] sent as flat JSON data."""
        body = {"inputs": [{"name": n, "datatype": dt, "shape": list(a.shape),
                            "data": lib.json_data(dt, a)} for n, dt, a in inputs]}
        if outputs is not None:
            body["outputs"] = outputs
        if request_id is not None:
            body["id"] = request_id
        if parameters is not None:
            body["parameters"] = parameters
        return self.post(self.infer_path(model, version), json=body)

    def infer_binary(self, model, inputs, version=None, outputs=None, request_id=None,
                     parameters=None, binary_inputs=None, headers=None):
        body, hlen = lib.build_binary_request(inputs, outputs=outputs, parameters=parameters,
                                              request_id=request_id, binary_inputs=binary_inputs)
        h = {"Inference-Header-Content-Length": str(hlen), "Content-Type": "application/octet-stream"}
        h.update(headers or {})
        return self.post(self.infer_path(model, version), data=body, headers=h)

    @staticmethod
    def infer_path(model, version=None):
        if version is None:
            return f"/v2/models/{model}/infer"
        return f"/v2/models/{model}/versions/{version}/infer"

    def assert_healthy(self):
        """The server still answers a good inference request correctly."""
        exp = lib.load_expected("add_sub")
        r = self.infer_json("add_sub", lib.expected_inputs(exp))
        assert r.status_code == 200, f"healthy request failed after a bad one: {r.status_code} {r.text}"
        for out in r.json()["outputs"]:
            e = exp["outputs"][out["name"]]
            lib.assert_matches_expected(out["datatype"], lib.from_json_data(out["datatype"], out["data"], out["shape"]),
                                        e["data"], e["shape"], what=out["name"])


@pytest.fixture(scope="session")
def api(http, base_url):
    return Api(http, base_url)


@pytest.fixture(scope="session")
def grpc_mod():
    return lib.grpc_modules()


@pytest.fixture(scope="session")
def grpc_channel(server):
    ch = grpc.insecure_channel(server.grpc_target, options=lib.GRPC_CHANNEL_OPTIONS)
    grpc.channel_ready_future(ch).result(timeout=lib.START_TIMEOUT_S)
    yield ch
    ch.close()


@pytest.fixture(scope="session")
def grpc_stub(grpc_mod, grpc_channel):
    return grpc_mod.pb_grpc.GRPCInferenceServiceStub(grpc_channel)
