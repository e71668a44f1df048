"""Several replicas behind a real load balancer (Debian's nginx): steady load through a rolling
restart (SIGTERM one replica at a time, start it again) loses no request, and a replica killed
with SIGKILL costs at most the requests in flight on it, with the balancer routing around it.
The replicas share the response cache's Redis tier: an answer computed by one serves the others.

Every replica serves the same repository: one model, `y = 2 * x` over a [-1, 4] FP32 input, so
every answer is checked against the request that asked for it. nginx retries a request on the
next replica when the one it chose refuses the connection or drops it before answering (the
configuration `docs/deploy.md` gives for nginx in front of Slipway).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import onnx
import pytest
import requests
from onnx import TensorProto, helper

import slipway_testlib as lib
from test_cache import Redis

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
MODEL = "double"
CLIENTS = 4

pytestmark = pytest.mark.skipif(not Path(NGINX).exists(),
                                reason="nginx is installed by scripts/setup.sh")


def double_model_bytes() -> bytes:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])
    k = helper.make_tensor("k", TensorProto.FLOAT, [1], [2.0])
    g = helper.make_graph([helper.make_node("Mul", ["x", "k"], ["y"])], "double", [x], [y], [k])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m.SerializeToString()


def nginx_config(work: Path, port: int, replica_ports) -> str:
    servers = "\n".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=1s;"
                        for p in replica_ports)
    user = "user root;" if os.geteuid() == 0 else ""
    return f"""
{user}
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  client_body_temp_path {work}/body;
  proxy_temp_path {work}/proxy;
  fastcgi_temp_path {work}/fastcgi;
  uwsgi_temp_path {work}/uwsgi;
  scgi_temp_path {work}/scgi;
  log_format replicas '$msec|$status|$upstream_addr|$upstream_status';
  access_log {work}/access.log replicas;
  upstream slipway {{
{servers}
    keepalive 32;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://slipway;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_connect_timeout 1s;
      proxy_read_timeout 30s;
      # Inference is safe to repeat: a request the chosen replica dropped before answering goes
      # to the next one, and so does one it refused while draining.
      proxy_next_upstream error timeout http_502 http_503 non_idempotent;
      proxy_next_upstream_tries 3;
    }}
  }}
}}
"""


class Load:
    """CLIENTS threads sending inference through the balancer, each answer checked."""

    def __init__(self, url: str):
        self.url = url
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.results = []  # (started, finished, ok, detail)
        self.threads = [threading.Thread(target=self.client, args=(i,)) for i in range(CLIENTS)]

    def client(self, seed: int):
        rng = random.Random(seed)
        session = requests.Session()
        while not self.stop.is_set():
            x = [round(rng.uniform(-100, 100), 2) for _ in range(4)]
            body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": x}]}
            started = time.monotonic()
            try:
                r = session.post(f"{self.url}/v2/models/{MODEL}/infer", json=body, timeout=30)
                if r.status_code != 200:
                    ok, detail = False, f"HTTP {r.status_code}: {r.text[:200]}"
                else:
                    got = r.json()["outputs"][0]["data"]
                    want = [2 * v for v in x]
                    ok = all(abs(g - w) <= 1e-3 * max(1.0, abs(w)) for g, w in zip(got, want))
                    detail = "" if ok else f"wrong answer {got} for {x}"
            except requests.RequestException as e:
                ok, detail = False, repr(e)
                session = requests.Session()
            with self.lock:
                self.results.append((started, time.monotonic(), ok, detail))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)

    def snapshot(self):
        with self.lock:
            return list(self.results)

    def wait_for_requests(self, n: int, timeout: float = 60):
        deadline = time.monotonic() + timeout
        start = len(self.snapshot())
        while len(self.snapshot()) < start + n:
            assert time.monotonic() < deadline, "load made no progress through the balancer"
            time.sleep(0.05)


def test_rolling_restart_and_hard_kill_behind_nginx(tmp_path: Path):
    repo = tmp_path / "repo"
    (repo / MODEL / "1").mkdir(parents=True)
    (repo / MODEL / "1" / "model.onnx").write_bytes(double_model_bytes())
    (repo / MODEL / "config.yaml").write_text(
        "backend: onnxruntime\nmax_batch_size: 8\nresponse_cache: {enable: true}\n"
        "inputs: [{name: x, datatype: FP32, dims: [4]}]\n"
        "outputs: [{name: y, datatype: FP32, dims: [4]}]\n")

    ports = []
    while len(ports) < 7:
        p = lib.free_port()
        if p not in ports:
            ports.append(p)
    lb_port, http_ports, grpc_ports = ports[0], ports[1:4], ports[4:7]

    redis = Redis(tmp_path)
    shared = ["--cache-redis", f"127.0.0.1:{redis.port}"]

    def start_replica(i: int, generation: int):
        srv = lib.ServerProcess(repo, extra_args=shared, log_dir=tmp_path,
                                name=f"replica{i}-gen{generation}",
                                http_port=http_ports[i], grpc_port=grpc_ports[i])
        srv.start()
        srv.wait_live()
        deadline = time.monotonic() + lib.START_TIMEOUT_S
        while requests.get(f"{srv.http_url}/v2/health/ready", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, srv.log()[-4000:]
            time.sleep(0.1)
        return srv

    replicas = [start_replica(i, 0) for i in range(3)]
    work = tmp_path / "nginx"
    work.mkdir()
    (work / "nginx.conf").write_text(nginx_config(work, lb_port, http_ports))
    nginx = subprocess.Popen([NGINX, "-p", str(work), "-c", str(work / "nginx.conf")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{lb_port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert nginx.poll() is None, (work / "error.log").read_text(errors="replace")
            try:
                if requests.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "nginx did not come up"
            time.sleep(0.1)

        def answers():
            # (time, replica port) of each request the balancer answered with 200: the replica
            # is the last one it tried.
            out = []
            for line in (work / "access.log").read_text().splitlines():
                parts = line.split("|")
                if len(parts) == 4 and parts[1] == "200" and ":" in parts[2]:
                    addr = parts[2].split(",")[-1].strip()
                    out.append((float(parts[0]), int(addr.rsplit(":", 1)[1])))
            return out

        def served_by(port: int) -> int:
            return sum(1 for _, p in answers() if p == port)

        def wait_served_by(port: int, n: int, timeout: float = 60):
            # As a rolling update waits for the new pod to take traffic before the next one.
            deadline = time.monotonic() + timeout
            start = served_by(port)
            while served_by(port) < start + n:
                assert time.monotonic() < deadline, f"the balancer sent nothing to {port}"
                time.sleep(0.05)

        # The replicas share answers through Redis: the same request, asked of all three in
        # turn, runs the model once.
        def executions():
            total = 0
            for srv in replicas:
                s = requests.get(f"{srv.http_url}/v2/models/{MODEL}/stats", timeout=10).json()
                total += sum(m["execution_count"] for m in s["model_stats"])
            return total

        same = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                            "data": [1.5, 2.5, 3.5, 4.5]}]}
        before = executions()
        first = requests.post(f"{replicas[0].http_url}/v2/models/{MODEL}/infer", json=same,
                              timeout=30).json()
        deadline = time.monotonic() + 10
        while redis.dbsize() < 1:
            assert time.monotonic() < deadline, "no answer reached Redis"
            time.sleep(0.05)
        for srv in replicas[1:]:
            a = requests.post(f"{srv.http_url}/v2/models/{MODEL}/infer", json=same,
                              timeout=30).json()
            assert a["parameters"]["cache_hit"] is True and a["outputs"] == first["outputs"]
        for _ in range(9):  # and through the balancer
            a = requests.post(f"{url}/v2/models/{MODEL}/infer", json=same, timeout=30).json()
            assert a["parameters"]["cache_hit"] is True
        assert executions() == before + 1

        with Load(url) as load:
            load.wait_for_requests(200)
            # Rolling restart: one replica at a time drains on SIGTERM and comes back.
            for i in range(3):
                lib.stop_ok(replicas[i])
                load.wait_for_requests(100)
                replicas[i] = start_replica(i, 1)
                wait_served_by(http_ports[i], 50)
            rolling = load.snapshot()
            # Hard kill: only what was in flight on that replica may fail.
            killed_at = time.monotonic()
            replicas[0].kill()
            load.wait_for_requests(300)
            time.sleep(1.5)
            load.wait_for_requests(300)
        everything = load.snapshot()

        failures = [r for r in rolling if not r[2]]
        assert not failures, f"{len(failures)} of {len(rolling)} requests failed during the " \
                             f"rolling restart, e.g. {failures[0][3]}"
        wrong = [r for r in everything if r[3].startswith("wrong answer")]
        assert not wrong, wrong[0][3]
        during_kill = [r for r in everything[len(rolling):] if not r[2]]
        assert len(during_kill) <= CLIENTS, \
            f"{len(during_kill)} requests failed around the hard kill: {during_kill[0][3]}"
        late = [r for r in everything if r[0] > killed_at + 1.0]
        assert len(late) >= 300
        assert all(r[2] for r in late), "requests still failed a second after the kill"

        # The balancer spread the load: every replica answered, and after the kill plus a
        # second nothing was answered by the killed one.
        answered_by = {}
        wall_killed = time.time() - (time.monotonic() - killed_at)
        late_from_killed = 0
        for when, port in answers():
            answered_by[port] = answered_by.get(port, 0) + 1
            if port == http_ports[0] and when > wall_killed + 1.0:
                late_from_killed += 1
        for p in http_ports:
            assert answered_by.get(p, 0) > 0, f"replica on {p} answered nothing: {answered_by}"
        assert late_from_killed == 0
    finally:
        redis.stop()
        nginx.send_signal(signal.SIGQUIT)
        try:
            nginx.wait(timeout=10)
        except subprocess.TimeoutExpired:
            nginx.kill()
        for srv in replicas:
            srv.kill()
    for srv in replicas[1:]:
        srv.assert_no_sanitizer_findings()
