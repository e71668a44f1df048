"""Drift detection end to end: a model with `monitoring: drift` in its config, live traffic drawn
from the reference distribution (not flagged) or shifted in one feature (flagged, naming it),
read back at /v2/models/<m>/drift and in /metrics."""

from __future__ import annotations

import json
import time

import numpy as np
import requests

import slipway_testlib as lib
from test_rollout import make_repo

WINDOW = 200


def drift(url, model="scale"):
    r = requests.get(f"{url}/v2/models/{model}/drift", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def send_rows(url, rows: np.ndarray, batch=50):
    with requests.Session() as s:
        for i in range(0, len(rows), batch):
            part = rows[i:i + batch]
            body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": list(part.shape),
                                "data": part.reshape(-1).tolist()}]}
            assert s.post(url + "/v2/models/scale/infer", json=body, timeout=30).ok


def wait_windows(url, n, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = drift(url)
        if d["windows"] >= n:
            return d
        time.sleep(0.1)
    raise AssertionError(f"only {drift(url)['windows']} windows judged")


def wait_reference(url, timeout=60):
    # Observations are judged on a worker thread that looks every few tens of milliseconds.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = drift(url)
        if d["reference_ready"]:
            return d
        time.sleep(0.05)
    raise AssertionError("the reference never became ready")


def test_reference_file_shift_is_flagged_and_named(tmp_path):
    rng = np.random.default_rng(11)
    config = (f"max_batch_size: 64\nmonitoring:\n  drift:\n    reference: {{file: reference.jsonl}}\n"
              f"    window: {{rows: {WINDOW}}}\n    p_value: 0.01\n")
    repo = make_repo(tmp_path, config=config)
    ref = rng.normal(0, 1, size=(600, 4))
    (repo / "scale" / "reference.jsonl").write_text(
        "\n".join(json.dumps({"inputs": {"x": row.tolist()}}) for row in ref) + "\n")
    srv = lib.start_live(repo, log_dir=tmp_path)
    try:
        send_rows(srv.http_url, rng.normal(0, 1, size=(WINDOW * 5, 4)))
        d = wait_windows(srv.http_url, 5)
        assert d["reference_rows"] == 600 and d["reference_ready"]
        assert d["drifting_windows"] <= 1, d
        names = {f["name"] for f in d["features"]}
        assert names == {"x[0]", "x[1]", "x[2]", "x[3]", "y[0]", "y[1]", "y[2]", "y[3]"}
        assert all(f["test"] == "ks" for f in d["features"])
        # feature 2 shifts by one standard deviation
        shifted = rng.normal(0, 1, size=(WINDOW, 4))
        shifted[:, 2] += 1.0
        send_rows(srv.http_url, shifted)
        d = wait_windows(srv.http_url, 6)
        assert d["drifting"], d
        flagged = {f["name"] for f in d["features"] if f["drift"]}
        assert "x[2]" in flagged and "y[2]" in flagged, flagged
        assert not flagged & {"x[0]", "x[1]", "x[3]"}, flagged
        x2 = next(f for f in d["features"] if f["name"] == "x[2]")
        assert x2["p_value"] < 1e-6 and x2["statistic"] > 0.2 and x2["psi"] > 0.2
        metrics = requests.get(srv.http_url + "/metrics", timeout=10).text
        assert 'slipway_model_drifting{model="scale"} 1' in metrics
        assert 'slipway_drift_detected{model="scale",feature="x[2]",test="ks"} 1' in metrics
        assert "live data drifted (x[2], y[2])" in srv.log()
        # models without drift detection say so
        r = requests.get(srv.http_url + "/v2/models/nope/drift", timeout=10)
        assert r.status_code == 404
    finally:
        lib.stop_ok(srv)


def test_first_rows_reference_and_categorical_feature(tmp_path):
    rng = np.random.default_rng(3)
    config = ("max_batch_size: 64\nmonitoring:\n  drift:\n    reference: {first_rows: 300}\n"
              "    window: {rows: 100}\n    categorical: ['x[3]']\n    outputs: false\n")
    repo = make_repo(tmp_path, config=config)
    srv = lib.start_live(repo, log_dir=tmp_path)
    try:
        def rows(n, p):
            r = rng.normal(0, 1, size=(n, 4))
            r[:, 3] = rng.choice([0.0, 1.0, 2.0], size=n, p=p)
            return r
        send_rows(srv.http_url, rows(300, [0.6, 0.3, 0.1]))
        d = wait_reference(srv.http_url)
        assert d["reference_ready"] and d["windows"] == 0
        send_rows(srv.http_url, rows(100, [0.6, 0.3, 0.1]))
        d = wait_windows(srv.http_url, 1)
        cat = next(f for f in d["features"] if f["name"] == "x[3]")
        assert cat["test"] == "chi2" and not cat["drift"]
        send_rows(srv.http_url, rows(100, [0.1, 0.3, 0.6]))
        d = wait_windows(srv.http_url, 2)
        cat = next(f for f in d["features"] if f["name"] == "x[3]")
        assert cat["drift"] and cat["p_value"] < 1e-6, cat
        assert {f["name"] for f in d["features"]} == {"x[0]", "x[1]", "x[2]", "x[3]"}
    finally:
        lib.stop_ok(srv)


class Listener:
    """A small HTTP server on loopback that records the JSON bodies POSTed to it."""

    def __init__(self):
        import http.server
        import threading
        self.bodies = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                outer.bodies.append((self.path, self.headers.get("Content-Type"),
                                     json.loads(self.rfile.read(n))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _drift_repo(tmp_path, extra=""):
    rng = np.random.default_rng(5)
    config = (f"max_batch_size: 64\nmonitoring:\n  drift:\n    reference: {{file: reference.jsonl}}\n"
              f"    window: {{rows: {WINDOW}}}\n{extra}")
    repo = make_repo(tmp_path, config=config)
    ref = rng.normal(0, 1, size=(600, 4))
    (repo / "scale" / "reference.jsonl").write_text(
        "\n".join(json.dumps({"inputs": {"x": row.tolist()}}) for row in ref) + "\n")
    return repo, rng


def test_drift_calls_the_retraining_webhook(tmp_path):
    listener = Listener()
    repo, rng = _drift_repo(tmp_path)
    payloads = tmp_path / "payloads"
    srv = lib.start_live(repo, log_dir=tmp_path,
                         extra_args=["--retrain-webhook", f"http://127.0.0.1:{listener.port}/retrain",
                                     "--payload-log-dir", str(payloads)])
    try:
        shifted = rng.normal(0, 1, size=(WINDOW, 4))
        shifted[:, 2] += 1.0
        send_rows(srv.http_url, shifted)
        deadline = time.monotonic() + 30
        while not listener.bodies and time.monotonic() < deadline:
            time.sleep(0.1)
        assert listener.bodies, srv.log()[-2000:]
        path, ctype, body = listener.bodies[0]
        assert path == "/retrain" and ctype == "application/json"
        assert body["event"] == "retraining_suggested" and body["reason"] == "drift"
        assert body["model"] == "scale" and body["version"] == 1
        assert "x[2]" in body["drifted_features"] and "x[0]" not in body["drifted_features"]
        stats = {s["feature"]: s for s in body["statistics"]}
        assert stats["x[2]"]["drift"] and stats["x[2]"]["p_value"] < 1e-6
        assert body["payload_log"] == str(payloads)
        # a second drifting window within the rate limit does not post again
        send_rows(srv.http_url, shifted)
        wait_windows(srv.http_url, 2)
        time.sleep(1)
        assert len(listener.bodies) == 1
        metrics = requests.get(srv.http_url + "/metrics", timeout=10).text
        assert 'slipway_retrain_triggers_total{model="scale",reason="drift"} 2' in metrics
    finally:
        lib.stop_ok(srv)
        listener.close()


def test_dead_webhook_leaves_serving_untouched(tmp_path):
    repo, rng = _drift_repo(tmp_path, "  retrain: {webhook: 'http://127.0.0.1:%d/x'}\n" % lib.free_port())
    srv = lib.start_live(repo, log_dir=tmp_path)
    try:
        shifted = rng.normal(0, 1, size=(WINDOW * 3, 4))
        shifted[:, 2] += 1.0
        send_rows(srv.http_url, shifted)
        d = wait_windows(srv.http_url, 3)
        assert d["drifting_windows"] == 3
        # serving goes on normally while the webhook keeps failing
        send_rows(srv.http_url, rng.normal(0, 1, size=(100, 4)))
        assert requests.get(srv.http_url + "/v2/health/ready", timeout=10).status_code == 200
    finally:
        lib.stop_ok(srv)


def test_low_live_accuracy_calls_the_webhook(tmp_path):
    listener = Listener()
    config = "max_batch_size: 8\nmonitoring:\n  feedback: {output: y, window: 10, min_accuracy: 0.9}\n"
    repo = make_repo(tmp_path, config=config)
    srv = lib.start_live(repo, log_dir=tmp_path,
                         extra_args=["--retrain-webhook", f"http://127.0.0.1:{listener.port}/acc"])
    try:
        body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
        items = []
        with requests.Session() as s:
            for _ in range(10):
                items.append({"id": s.post(srv.http_url + "/v2/models/scale/infer", json=body,
                                           timeout=30).json()["id"], "truth": 0})
            assert s.post(srv.http_url + "/v2/models/scale/feedback", json={"items": items},
                          timeout=30).json()["applied"] == 10
        deadline = time.monotonic() + 30
        while not listener.bodies and time.monotonic() < deadline:
            time.sleep(0.1)
        assert listener.bodies
        _, _, sent = listener.bodies[0]
        assert sent["reason"] == "accuracy" and sent["accuracy"] == 0 and sent["min_accuracy"] == 0.9
    finally:
        lib.stop_ok(srv)
        listener.close()


def test_rows_over_the_budget_are_left_out_and_counted(tmp_path):
    # 50 rows a second (bursts of a second's worth); single-row requests sent as fast as one
    # client goes: most are served but not observed, and both counts show.
    config = ("max_batch_size: 64\nmonitoring:\n  drift:\n    reference: {first_rows: 50}\n"
              "    window: {rows: 10}\n    outputs: false\n    max_rows_per_second: 50\n")
    repo = make_repo(tmp_path, config=config)
    srv = lib.start_live(repo, log_dir=tmp_path)
    try:
        sent = 400
        rng = np.random.default_rng(8)
        start = time.monotonic()
        send_rows(srv.http_url, rng.normal(0, 1, size=(sent, 4)), batch=1)
        elapsed = time.monotonic() - start
        deadline = time.monotonic() + 30
        while True:
            d = drift(srv.http_url)
            observed = d["reference_rows"] + d["windows"] * 10 + d["window_rows"]
            if observed + d["rows_skipped"]["rate"] == sent or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert observed + d["rows_skipped"]["rate"] == sent, d
        assert d["rows_skipped"]["sample"] == 0
        assert d["reference_ready"] and observed >= 50, d
        # a second's worth at once, then 50 a second (the clock it reads is coarse: a few ms)
        assert observed <= 50 + 50 * (elapsed + 0.05) + 1, (observed, elapsed)
        metrics = requests.get(srv.http_url + "/metrics", timeout=10).text
        assert ('slipway_drift_rows_skipped_total{model="scale",reason="rate"} %d'
                % d["rows_skipped"]["rate"]) in metrics
        assert 'slipway_drift_rows_skipped_total{model="scale",reason="sample"} 0' in metrics
    finally:
        lib.stop_ok(srv)


def test_a_bad_row_budget_is_refused_by_name(tmp_path):
    config = ("max_batch_size: 64\nmonitoring:\n  drift:\n    reference: {first_rows: 50}\n"
              "    max_rows_per_second: -3\n")
    repo = make_repo(tmp_path, config=config)
    srv = lib.start_live(repo, log_dir=tmp_path)
    try:
        deadline = time.monotonic() + 30
        expected = "monitoring drift: max_rows_per_second must be 0 (no limit) or from 1 to 1e9, got -3"
        while expected not in srv.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert expected in srv.log(), srv.log()[-2000:]
        r = requests.get(srv.http_url + "/v2/models/scale/ready", timeout=10)
        assert r.status_code != 200
    finally:
        lib.stop_ok(srv)
