"""Prometheus metrics: /metrics on the HTTP port and on --metrics-port, scraped by a real
Prometheus server (Debian's `prometheus`) and read back through its query API."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time

import requests

import slipway_testlib as lib

N_OK = 37
N_BAD = 5


def parse_metrics(text: str) -> dict:
    """{(name, frozenset(labels)): value} from the text format (enough for our own output)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, value = line.rsplit(" ", 1)
        if "{" in head:
            name, rest = head.split("{", 1)
            labels = []
            for part in rest.rstrip("}").split('",'):
                k, v = part.split("=", 1)
                labels.append((k, v.strip('"')))
            out[(name, frozenset(labels))] = float(value)
        else:
            out[(head, frozenset())] = float(value)
    return out


def sample(metrics: dict, name: str, **labels) -> float:
    return metrics[(name, frozenset(labels.items()))]


def _traffic(srv):
    req = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 30], "data": [0.5] * 30}]}
    with requests.Session() as s:
        for _ in range(N_OK):
            assert s.post(srv.http_url + "/v2/models/breast_cancer/infer", json=req, timeout=30).ok
        bad = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 29], "data": [0.5] * 29}]}
        for _ in range(N_BAD):
            assert s.post(srv.http_url + "/v2/models/breast_cancer/infer", json=bad,
                          timeout=30).status_code == 400


def test_metrics_endpoint_counts_requests(tmp_path):
    srv = lib.start_live(lib.make_repository(tmp_path, ["breast_cancer", "image_cnn"]),
                         log_dir=tmp_path)
    try:
        _traffic(srv)
        r = requests.get(f"http://127.0.0.1:{srv.metrics_port}/metrics", timeout=10)
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        m = parse_metrics(r.text)
        bc = {"model": "breast_cancer", "version": "1"}
        assert sample(m, "nv_inference_request_success", **bc) == N_OK
        assert sample(m, "nv_inference_count", **bc) == N_OK
        assert 1 <= sample(m, "nv_inference_exec_count", **bc) <= N_OK
        assert sample(m, "slipway_request_duration_seconds_count", **bc) == N_OK
        assert sample(m, "slipway_request_duration_seconds_bucket", le="+Inf", **bc) == N_OK
        assert sample(m, "slipway_batch_size_count", **bc) == sample(m, "nv_inference_exec_count", **bc)
        assert sample(m, "nv_inference_request_success", model="image_cnn", version="1") == 0
        assert sample(m, "nv_model_load_duration_secs", **bc) > 0
        assert sample(m, "slipway_model_instances", **bc) >= 1
        assert sample(m, "process_resident_memory_bytes") > 1e6
        assert sample(m, "process_open_fds") > 3
        # nothing was dropped by the background workers' bounded queues
        assert sample(m, "slipway_drift_observations_dropped_total") == 0
        assert sample(m, "slipway_request_log_lines_dropped_total") == 0
        # the metrics port serves nothing else; the HTTP port serves /metrics too
        assert requests.get(f"http://127.0.0.1:{srv.metrics_port}/v2/health/live",
                            timeout=10).status_code == 404
        assert requests.post(f"http://127.0.0.1:{srv.metrics_port}/metrics", timeout=10).status_code == 405
        m2 = parse_metrics(requests.get(srv.http_url + "/metrics", timeout=10).text)
        assert sample(m2, "nv_inference_request_success", **bc) == N_OK
    finally:
        lib.stop_ok(srv)


def test_failures_counted_by_reason(tmp_path):
    repo = lib.make_repository(tmp_path, ["breast_cancer"])
    srv = lib.start_live(repo, log_dir=tmp_path)
    try:
        req = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 30], "data": [0.5] * 30}],
               "parameters": {"priority": 7}}
        for _ in range(3):
            assert requests.post(srv.http_url + "/v2/models/breast_cancer/infer", json=req,
                                 timeout=30).status_code == 400
        m = parse_metrics(requests.get(srv.http_url + "/metrics", timeout=10).text)
        assert sample(m, "nv_inference_request_failure", model="breast_cancer", version="1",
                      reason="OTHER") == 3
    finally:
        lib.stop_ok(srv)


def test_prometheus_scrapes_and_counts_match(tmp_path):
    prometheus = shutil.which("prometheus")
    assert prometheus, "Debian's prometheus is installed by scripts/setup.sh"
    srv = lib.start_live(lib.make_repository(tmp_path, ["breast_cancer"]), log_dir=tmp_path)
    prom_port = lib.free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""global:
  scrape_interval: 1s
scrape_configs:
  - job_name: slipway
    static_configs:
      - targets: ['127.0.0.1:{srv.metrics_port}']
""")
    log = open(tmp_path / "prometheus.log", "wb")
    prom = subprocess.Popen([prometheus, f"--config.file={config}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        _traffic(srv)
        api = f"http://127.0.0.1:{prom_port}/api/v1/query"
        query = 'nv_inference_request_success{model="breast_cancer",version="1"}'
        deadline = time.monotonic() + 60
        value = None
        while time.monotonic() < deadline:
            try:
                r = requests.get(api, params={"query": query}, timeout=5).json()
                result = r["data"]["result"]
                if result:
                    value = float(result[0]["value"][1])
                    if value == N_OK:
                        break
            except (requests.RequestException, KeyError, ValueError):
                pass
            time.sleep(0.5)
        assert value == N_OK, (value, (tmp_path / "prometheus.log").read_text()[-2000:])
        r = requests.get(api, params={"query": 'slipway_request_duration_seconds_count{model="breast_cancer"}'},
                         timeout=5).json()
        assert float(r["data"]["result"][0]["value"][1]) == N_OK
        r = requests.get(api, params={"query": 'up{job="slipway"}'}, timeout=5).json()
        assert r["data"]["result"][0]["value"][1] == "1"
    finally:
        prom.terminate()
        prom.wait(timeout=30)
        log.close()
        lib.stop_ok(srv)


def test_background_threads_are_named(tmp_path):
    """top -H and debuggers tell the server's threads apart: request I/O, each model's runners,
    the access log writer, the drift worker. The two background workers run at a lower priority
    (nice 10) than the request threads, so on busy cores requests get the CPU first."""
    srv = lib.start_live(lib.make_repository(tmp_path, ["breast_cancer"]), log_dir=tmp_path,
                         extra_args=["--access-log", str(tmp_path / "access.jsonl")])
    try:
        nice = {}
        for tid in os.listdir("/proc/%d/task" % srv.proc.pid):
            with open("/proc/%d/task/%s/stat" % (srv.proc.pid, tid)) as f:
                stat = f.read()
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            # field 19 of /proc/[pid]/task/[tid]/stat is the nice value
            nice.setdefault(name, set()).add(int(stat[stat.rindex(")") + 2:].split()[16]))
        assert {"slipway-http", "run:breast_canc", "slipway-log", "slipway-drift"} <= set(nice), nice
        # relative to the server's own (a test run may itself be niced)
        (base,) = nice["slipway-http"]
        assert nice["run:breast_canc"] == {base}, nice
        assert nice["slipway-log"] == nice["slipway-drift"] == {max(base, 10)}, nice
    finally:
        lib.stop_ok(srv)


def test_access_log_and_rotating_payload_log(tmp_path):
    import json
    access = tmp_path / "access.jsonl"
    payloads = tmp_path / "payloads"
    srv = lib.start_live(lib.make_repository(tmp_path, ["breast_cancer"]), log_dir=tmp_path,
                         extra_args=["--access-log", str(access), "--payload-log-dir", str(payloads),
                                     "--payload-log-sample", "1.0", "--payload-log-file-mb", "1",
                                     "--payload-log-files", "2"])
    try:
        req = {"id": "a-1", "inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 30],
                                        "data": [0.25] * 30}]}
        with requests.Session() as s:
            assert s.post(srv.http_url + "/v2/models/breast_cancer/infer", json=req, timeout=30).ok
            bad = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 30], "data": [0.25] * 30}],
                   "parameters": {"priority": 9}}
            assert s.post(srv.http_url + "/v2/models/breast_cancer/infer", json=bad,
                          timeout=30).status_code == 400
            # enough payload to rotate the 1 MiB files a few times
            big = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [64, 30],
                               "data": [0.125] * (64 * 30)}]}
            for _ in range(400):
                assert s.post(srv.http_url + "/v2/models/breast_cancer/infer", json=big, timeout=30).ok
    finally:
        lib.stop_ok(srv)  # the writer flushes what is queued before exit
    lines = [json.loads(line) for line in access.read_text().splitlines()]
    assert len(lines) == 402
    assert [l["time"] for l in lines] == sorted(l["time"] for l in lines)
    assert all(re.fullmatch(r"20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", l["time"]) for l in lines)
    first = lines[0]
    assert first["id"] == "a-1" and first["model"] == "breast_cancer" and first["version"] == 1
    assert first["status"] == "OK" and first["route"] == "stable"
    assert first["batch_rows"] >= 1 and first["total_ms"] >= first["queue_ms"] >= 0
    failed = lines[1]
    assert failed["status"] == "INVALID_ARGUMENT" and "priority" in failed["error"]
    assert len(failed["id"]) == 16
    files = sorted(p.name for p in payloads.iterdir())
    assert files == ["payloads.1.jsonl", "payloads.2.jsonl", "payloads.jsonl"], files
    for name in files:
        assert (payloads / name).stat().st_size <= (1 << 20) + 200_000
    record = json.loads((payloads / "payloads.jsonl").read_text().splitlines()[-1])
    assert record["inputs"]["features"]["shape"] == [64, 30]
    assert record["inputs"]["features"]["data"][:2] == [0.125, 0.125]
    assert record["outputs"]["probabilities"]["shape"] == [64, 2]
