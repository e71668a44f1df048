#!/usr/bin/python3
"""Slipway response cache: what a cache hit costs against a miss, per example model.

    /usr/bin/python3 bench/run_cache.py            # or: make bench-cache

Needs build/slipway (builds nothing). Copies examples/models into a temporary repository with
`response_cache: {enable: true}` appended to every model's config.yaml, starts one server and,
per model, closed loop at concurrency 1 over one keep-alive HTTP connection (KServe v2, JSON; for
image_cnn also with its input as binary tensor data), N interleaved triples, each in a
random order, of: an empty-work baseline (GET /v2/health/ready), a miss (a request with a new
random input) and a hit (one fixed request, sent once before to fill the cache). Interleaving
keeps slow drifts of the machine (on a small VM the round trip switches between modes for
seconds at a time) out of the hit/miss ratios.

Each response is checked (200; `"cache_hit": true` on every hit and on no miss). The model's
statistics (GET /v2/models/<m>/stats) and the nv_cache_* series of /metrics are read before and
after the measured triples, so the server-side figures are deltas over exactly those requests.
Writes bench/results/cache.md and bench/results/cache.json. Standard library only.

Target (the issue): a cache hit costs under 5% of a miss's latency.
"""
import argparse
import datetime
import gc
import json
import os
import random
import shlex
import shutil
import socket
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_foundation as rf  # noqa: E402

REPO = rf.REPO
MODELS = ["breast_cancer", "multi_input", "image_cnn"]
CACHE_CONFIG = "response_cache: {enable: true}\n"
TARGET = 0.05
HIT_MARK = b'"cache_hit":true'


class Args:
    def __init__(self, binary, repository, server_arg):
        self.binary = binary
        self.model_repository = repository
        self.server_arg = server_arg


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--binary", default=os.path.join(REPO, "build", "slipway"))
    p.add_argument("--requests", type=int, default=5000,
                   help="measured triples (breast_cancer, multi_input)")
    p.add_argument("--image-requests", type=int, default=2000,
                   help="measured triples for image_cnn")
    p.add_argument("--warmup", type=int, default=200, help="unmeasured triples first")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--server-arg", action="append", default=[],
                   help="extra argument for `slipway serve` (repeatable)")
    p.add_argument("--output-dir", default=os.path.join(REPO, "bench", "results"))
    a = p.parse_args()
    if not os.access(a.binary, os.X_OK):
        p.error("%s is not an executable; build it first (make build)" % a.binary)
    return a


# ---- a minimal keep-alive HTTP/1.1 client ------------------------------------------------------

class Connection:
    """One persistent connection; requests are pre-built bytes, so a call is one send and the
    reads of one response (Content-Length framed, as the server always answers)."""

    def __init__(self, port):
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        self.sock.close()

    def request(self, raw):
        """Sends one pre-built request; returns (status, body)."""
        self.sock.sendall(raw)
        buf = self.buf
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            buf += chunk
        head = buf[:end]
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
                break
        start = end + 4
        while len(buf) < start + length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            buf += chunk
        body = buf[start:start + length]
        self.buf = buf[start + length:]
        return status, body


def post(path, body, extra_headers=()):
    head = ["POST %s HTTP/1.1" % path, "Host: 127.0.0.1", "Content-Length: %d" % len(body)]
    head += list(extra_headers)
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def get(path):
    return ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode()


# ---- request bodies -----------------------------------------------------------------------------

def f32(rng, lo, hi):
    return float("%.6g" % rng.uniform(lo, hi))


def json_body(inputs):
    return json.dumps({"inputs": inputs}, separators=(",", ":")).encode()


def breast_cancer_body(rng):
    return json_body([{"name": "features", "datatype": "FP32", "shape": [1, 30],
                       "data": [f32(rng, 0.0, 100.0) for _ in range(30)]}])


def multi_input_body(rng):
    return json_body([
        {"name": "x", "datatype": "FP32", "shape": [1, 4],
         "data": [f32(rng, -10.0, 10.0) for _ in range(4)]},
        {"name": "scale", "datatype": "FP64", "shape": [1, 1], "data": [rng.uniform(0.0, 4.0)]},
        {"name": "offset", "datatype": "INT32", "shape": [1, 4],
         "data": [rng.randint(-100, 100) for _ in range(4)]},
        {"name": "mask", "datatype": "BOOL", "shape": [1, 4],
         "data": [rng.random() < 0.5 for _ in range(4)]},
    ])


def image_json_body(rng):
    return json_body([{"name": "image", "datatype": "FP32", "shape": [1, 3, 32, 32],
                       "data": [f32(rng, 0.0, 1.0) for _ in range(3072)]}])


def image_binary_parts(rng):
    data = struct.pack("<3072f", *[rng.random() for _ in range(3072)])
    header = json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 3, 32, 32],
                                     "parameters": {"binary_data_size": len(data)}}]},
                        separators=(",", ":")).encode()
    return header, data


# One variant = one model with one request encoding. make(rng) -> raw HTTP request bytes.
def variants():
    def json_variant(model, maker, encoding="JSON"):
        path = "/v2/models/%s/infer" % model
        return {"model": model, "encoding": encoding,
                "make": lambda rng: post(path, maker(rng), ["Content-Type: application/json"])}

    def binary_image(rng):
        header, data = image_binary_parts(rng)
        return post("/v2/models/image_cnn/infer", header + data,
                    ["Content-Type: application/octet-stream",
                     "Inference-Header-Content-Length: %d" % len(header)])

    return [
        json_variant("breast_cancer", breast_cancer_body),
        json_variant("multi_input", multi_input_body),
        json_variant("image_cnn", image_json_body),
        {"model": "image_cnn", "encoding": "binary tensor data", "make": binary_image},
    ]


# ---- measurement ------------------------------------------------------------------------------

def percentile(sorted_values, q):
    """Nearest rank."""
    if not sorted_values:
        return None
    rank = max(1, int(-(-q * len(sorted_values) // 100)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarize(latencies_ns):
    v = sorted(x / 1000.0 for x in latencies_ns)
    return {"requests": len(v), "p50_us": percentile(v, 50), "p90_us": percentile(v, 90),
            "p99_us": percentile(v, 99), "max_us": v[-1] if v else None,
            "mean_us": sum(v) / len(v) if v else None}


def run_phase(conn, requests, expect_hit):
    """Sends each request in turn; returns the latencies (ns) and checks every answer."""
    lat = []
    clock = time.perf_counter_ns
    gc.disable()
    try:
        for raw in requests:
            t0 = clock()
            status, body = conn.request(raw)
            lat.append(clock() - t0)
            if status != 200:
                raise RuntimeError("HTTP %d: %s" % (status, body[:300]))
            if expect_hit is not None and (HIT_MARK in body) != expect_hit:
                raise RuntimeError("expected a cache %s, got: %s"
                                   % ("hit" if expect_hit else "miss", body[:300]))
    finally:
        gc.enable()
    return lat


def model_stats(port, model, version):
    status, body = rf.http_get(port, "/v2/models/%s/stats" % model, timeout=10)
    if status != 200:
        raise RuntimeError("stats of %s: HTTP %s %s" % (model, status, body[:300]))
    for entry in json.loads(body)["model_stats"]:
        if entry["version"] == version:
            return entry["inference_stats"]
    raise RuntimeError("no statistics for %s version %s" % (model, version))


def cache_metrics(port, model):
    status, body = rf.http_get(port, "/metrics", timeout=10)
    out = {}
    label = '{model="%s"}' % model
    for line in body.splitlines():
        if line.startswith("nv_cache_") and label in line:
            name, value = line.split(label)
            out[name] = float(value)
    return out


def delta(after, before):
    if isinstance(after, dict):
        return {k: delta(after[k], before.get(k, 0 if not isinstance(after[k], dict) else {}))
                for k in after}
    return after - before


def per_request_us(d):
    return d["ns"] / d["count"] / 1000.0 if d.get("count") else None


def run_interleaved(conn, triples, expect):
    """Sends each (health, miss, hit) triple's requests in that triple's order; returns the
    latencies (ns) per kind and checks every answer."""
    lat = {"health": [], "miss": [], "hit": []}
    clock = time.perf_counter_ns
    gc.disable()
    try:
        for triple in triples:
            for kind, raw in triple:
                t0 = clock()
                status, body = conn.request(raw)
                lat[kind].append(clock() - t0)
                if status != 200:
                    raise RuntimeError("%s: HTTP %d: %s" % (kind, status, body[:300]))
                if kind in expect and (HIT_MARK in body) != expect[kind]:
                    raise RuntimeError("expected a cache %s, got: %s"
                                       % ("hit" if expect[kind] else "miss", body[:300]))
    finally:
        gc.enable()
    return lat


def measure_variant(port, variant, n, warmup, rng):
    model = variant["model"]
    t0 = time.monotonic()
    make = variant["make"]
    miss_requests = [make(rng) for _ in range(warmup + n)]
    hit_request = make(rng)
    if len(set(miss_requests + [hit_request])) != len(miss_requests) + 1:
        raise RuntimeError("generated inputs are not distinct")
    health_request = get("/v2/health/ready")
    triples = []
    for raw in miss_requests:
        t = [("health", health_request), ("miss", raw), ("hit", hit_request)]
        rng.shuffle(t)
        triples.append(t)
    gen_s = time.monotonic() - t0
    expect = {"miss": False, "hit": True}
    conn = Connection(port)
    try:
        # Which version answers (multi_input serves two; a request for the model gets the newest).
        status, body = conn.request(miss_requests[0])
        if status != 200:
            raise RuntimeError("%s: HTTP %d: %s" % (model, status, body[:300]))
        version = json.loads(body)["model_version"]
        # The hit request's first sending is a miss that fills the cache.
        run_phase(conn, [hit_request], False)
        run_interleaved(conn, triples[1:warmup], expect)
        s0, m0 = model_stats(port, model, version), cache_metrics(port, model)
        lat = run_interleaved(conn, triples[warmup:], expect)
        s1, m1 = model_stats(port, model, version), cache_metrics(port, model)
        _, sample_hit = conn.request(hit_request)
    finally:
        conn.close()
    paired = {}
    for kind in ("miss", "hit"):
        diffs = sorted((a - b) / 1000.0 for a, b in zip(lat[kind], lat["health"]))
        paired[kind + "_minus_health_p50_us"] = percentile(diffs, 50)
    return {
        "model": model, "encoding": variant["encoding"], "version": version,
        "request_bytes": len(miss_requests[0]), "hit_response_bytes": len(sample_hit),
        "requests_per_kind": n, "warmup_triples": warmup, "input_generation_s": gen_s,
        "health": summarize(lat["health"]), "miss": summarize(lat["miss"]),
        "hit": summarize(lat["hit"]), "paired": paired,
        "stats_delta": delta(s1, s0), "metrics_delta": delta(m1, m0),
    }


def derive(r):
    """Ratios and server-side costs of one variant."""
    st = r["stats_delta"]
    n = r["requests_per_kind"]
    d = {}
    d["e2e_p50_ratio"] = r["hit"]["p50_us"] / r["miss"]["p50_us"]
    d["e2e_p99_ratio"] = r["hit"]["p99_us"] / r["miss"]["p99_us"]
    d["e2e_mean_ratio"] = r["hit"]["mean_us"] / r["miss"]["mean_us"]
    # Server side, arrival to answer, estimated as client latency minus the empty-work baseline
    # (median over the triples of request minus the same triple's health check).
    d["miss_net_us"] = r["paired"]["miss_minus_health_p50_us"]
    d["hit_net_us"] = r["paired"]["hit_minus_health_p50_us"]
    d["net_ratio"] = d["hit_net_us"] / d["miss_net_us"] if d["miss_net_us"] > 0 else None
    # Server side, behind the HTTP frontend, from the statistics: for a miss the cache's lookup +
    # insert plus the scheduler's enqueue-to-answer (`success`); for a hit the cache's lookup
    # (hits never reach the scheduler, so they are not in `success`).
    d["miss_success_us"] = per_request_us(st["success"])
    d["miss_queue_us"] = per_request_us(st["queue"])
    d["miss_compute_infer_us"] = per_request_us(st["compute_infer"])
    d["miss_cache_us"] = per_request_us(st["cache_miss"])
    d["hit_cache_us"] = per_request_us(st["cache_hit"])
    # n misses and n hits were sent: success counts beyond n would be hits.
    d["hit_success_count"] = st["success"]["count"] - n
    d["miss_behind_frontend_us"] = (d["miss_success_us"] or 0) + (d["miss_cache_us"] or 0)
    d["stats_ratio"] = (d["hit_cache_us"] / d["miss_behind_frontend_us"]
                        if d["hit_cache_us"] is not None and d["miss_behind_frontend_us"] else None)
    d["counts_ok"] = (st["cache_miss"]["count"] == n and st["cache_hit"]["count"] == n
                      and st["success"]["count"] == n and st["fail"]["count"] == 0)
    d["e2e_met"] = d["e2e_p50_ratio"] < TARGET
    d["net_met"] = d["net_ratio"] is not None and d["net_ratio"] < TARGET
    d["stats_met"] = d["stats_ratio"] is not None and d["stats_ratio"] < TARGET
    return d


# ---- report -----------------------------------------------------------------------------------

def fmt(v, digits=1):
    return "-" if v is None else "%.*f" % (digits, v)


def pct(v):
    return "-" if v is None else "%.1f%%" % (100.0 * v)


def yes(v):
    return "**yes**" if v else "**NO**"


def label(r):
    return "`%s` (%s)" % (r["model"], r["encoding"])


def write_report(path, args, machine, build, server, exit_code, started, finished, loads, results):
    lines = []
    w = lines.append
    w("# Response cache: hit against miss")
    w("")
    w("Generated by `bench/run_cache.py`. Target (the issue): a cache hit costs under 5% of a "
      "miss's latency for the example models.")
    w("")
    w("- **Date**: %s to %s UTC (%.0f s wall)" % (started.strftime("%Y-%m-%d %H:%M:%S"),
                                                 finished.strftime("%H:%M:%S"),
                                                 (finished - started).total_seconds()))
    w("- **Machine**: %s; %s logical CPUs (%s cores per socket, %s MHz, governor %s, cgroup "
      "cpu.max `%s`); %.1f GiB memory; %s, kernel %s"
      % (machine["cpu"], machine["logical_cpus"], machine["cores_per_socket"], machine["mhz"],
         machine["governor"], machine["cgroup_cpu_max"], machine["memory_gib"], machine["os"],
         machine["kernel"]))
    w("- **Load average** (1/5/15 min) before: %s; after: %s" % loads)
    w("- **Build**: slipway `%s`, %s, %s" % (build["commit"], build["build_type"],
                                              build["compiler"]))
    w("- **Command**: `%s`" % shlex.join([sys.executable] + sys.argv))
    w("- **Server**: `%s` (exit code after SIGTERM: %s); every model copied from "
      "`examples/models` with `response_cache: {enable: true}` appended to its config.yaml; "
      "default `--cache-bytes` (256 MiB)." % (shlex.join(server.cmd), exit_code))
    w("")
    w("## Method")
    w("")
    w("- One server, one run, the models in turn. Client: a minimal Python HTTP/1.1 client on "
      "one keep-alive connection (TCP_NODELAY), closed loop at concurrency 1; every request is "
      "pre-built bytes (KServe v2 JSON, POST /v2/models/<m>/infer; for image_cnn also with "
      "the input as Triton binary tensor data), so a call is one send and the reads of one "
      "Content-Length-framed response. Latency: before the send to the last byte of the "
      "response (`time.perf_counter_ns`, garbage collector off); nearest-rank percentiles.")
    w("- Three kinds of request per model, **interleaved**: N triples of (empty-work "
      "baseline GET /v2/health/ready, a **miss** = a request with a new random input, a "
      "**hit** = one fixed request), each triple in a random order, N = %d (image_cnn %d), "
      "after %d unmeasured triples. The fixed request is sent once before (a miss that fills "
      "the cache). Interleaving keeps drifts of the machine out of the ratios: on a small "
      "virtual machine the round trip can switch between modes (e.g. ~20 µs and ~60 µs for "
      "a health check) for seconds at a time, which phases run one after the other turn "
      "into unstable hit/miss ratios. Every answer is checked: HTTP "
      "200, `\"cache_hit\":true` on every hit and on no miss."
      % (args.requests, args.image_requests, args.warmup))
    w("- **Server side, arrival to answer**: the server's statistics do not give this for "
      "hits. The cache sits below the router and above the scheduler "
      "(src/slipway/cache/response_cache.cc); `success` is recorded by the scheduler "
      "(scheduler/dynamic_batcher.cc) from enqueue to answer, so **hits are not counted in "
      "`success` at all** (measured: %s success counts from hits), and no statistic covers "
      "the HTTP frontend (reading and parsing the request, encoding and writing the answer). "
      "So this figure is the **client latency minus the empty-work baseline**: the median "
      "over the triples of (request latency − the same triple's health-check latency). The "
      "connection, loopback, HTTP framing and the client's own per-call work cancel out; "
      "reading and parsing the request body, cache or model, and encoding the answer remain."
      % ", ".join(str(r["derived"]["hit_success_count"]) for r in results))
    w("- **Server side, behind the frontend** (statistics deltas over exactly the measured "
      "requests, GET /v2/models/<m>/stats): miss = `cache_miss` (lookup: SHA-256 of the "
      "request + LRU; and keeping the answer) + `success` (scheduler enqueue to answer: "
      "queue + model) per request; hit = `cache_hit` (the lookup) per request.")
    w("- Client and server share the machine's %s logical CPUs, so client CPU time is inside "
      "every end-to-end figure." % machine["logical_cpus"])
    w("")
    w("## Results")
    w("")
    w("End to end (client), µs:")
    w("")
    w("| model (input) | request bytes | health p50 | miss p50 | miss p99 | hit p50 | hit p99 | "
      "hit/miss p50 | hit/miss p99 | < 5% |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        d = r["derived"]
        w("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            label(r), r["request_bytes"], fmt(r["health"]["p50_us"]), fmt(r["miss"]["p50_us"]),
            fmt(r["miss"]["p99_us"]), fmt(r["hit"]["p50_us"]), fmt(r["hit"]["p99_us"]),
            pct(d["e2e_p50_ratio"]), pct(d["e2e_p99_ratio"]), yes(d["e2e_met"])))
    w("")
    w("Server side, arrival to answer (client latency − health-check latency, median over "
      "triples), µs:")
    w("")
    w("| model (input) | miss | hit | hit/miss | < 5% |")
    w("|---|---:|---:|---:|---|")
    for r in results:
        d = r["derived"]
        w("| %s | %s | %s | %s | %s |" % (label(r), fmt(d["miss_net_us"]), fmt(d["hit_net_us"]),
                                         pct(d["net_ratio"]), yes(d["net_met"])))
    w("")
    w("Server side, behind the HTTP frontend (statistics), µs per request:")
    w("")
    w("| model (input) | miss: success | of it queue | of it compute_infer | miss: cache_miss | "
      "miss total | hit: cache_hit | hit: success | hit/miss | < 5% |")
    w("|---|---:|---:|---:|---:|---:|---:|---|---:|---|")
    for r in results:
        d = r["derived"]
        w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            label(r), fmt(d["miss_success_us"]), fmt(d["miss_queue_us"]),
            fmt(d["miss_compute_infer_us"]), fmt(d["miss_cache_us"]),
            fmt(d["miss_behind_frontend_us"]), fmt(d["hit_cache_us"], 2),
            "not recorded" if d["hit_success_count"] == 0
            else "%d counted" % d["hit_success_count"],
            pct(d["stats_ratio"]), yes(d["stats_met"])))
    w("")
    bad = [label(r) for r in results if not r["derived"]["counts_ok"]]
    w("Statistics counts: %s" % (
        "for every model, `cache_miss`, `cache_hit` and `success` each grew by exactly N over "
        "the measured triples (N misses, N hits, N successes: the misses), no failures."
        if not bad else "**unexpected counts for %s** (see cache.json)." % ", ".join(bad)))
    w("")
    w("## Verdict")
    w("")
    for r in results:
        d = r["derived"]
        frontend = (d["hit_net_us"] or 0) - (d["hit_cache_us"] or 0)
        w("- %s: a hit takes **%s** of a miss end to end at p50 (%s vs %s µs; %s at p99) and "
          "%s of it net of the empty-work baseline (%s vs %s µs): the 5%% target is "
          "**%s**. Behind the frontend a hit costs %s µs against %s µs (%s, %s). What a hit "
          "still pays: the round trip (health check p50 %s µs: loopback, HTTP framing, the "
          "client) and about %s µs outside the cache for moving and parsing the %d-byte "
          "request and encoding the %d-byte answer, against %s µs for the lookup itself." % (
              label(r), pct(d["e2e_p50_ratio"]), fmt(r["hit"]["p50_us"]),
              fmt(r["miss"]["p50_us"]), pct(d["e2e_p99_ratio"]), pct(d["net_ratio"]),
              fmt(d["hit_net_us"]), fmt(d["miss_net_us"]),
              "met" if d["e2e_met"] and d["net_met"] else
              "not met" if not d["e2e_met"] and not d["net_met"] else
              "met only %s" % ("end to end" if d["e2e_met"] else "server side"),
              fmt(d["hit_cache_us"], 2), fmt(d["miss_behind_frontend_us"]),
              pct(d["stats_ratio"]), "under 5%" if d["stats_met"] else "not under 5% either",
              fmt(r["health"]["p50_us"]), fmt(frontend), r["request_bytes"],
              r["hit_response_bytes"], fmt(d["hit_cache_us"], 2)))
    w("")
    met = [label(r) for r in results if r["derived"]["e2e_met"]]
    compute = [r["derived"]["miss_compute_infer_us"] for r in results
               if r["derived"]["miss_compute_infer_us"] is not None]
    health = [r["health"]["p50_us"] for r in results]
    outside = [(label(r), (r["derived"]["hit_net_us"] or 0) - (r["derived"]["hit_cache_us"] or 0),
                r["request_bytes"]) for r in results]
    w("Summary: end to end the target is met for %d of %d measured cases%s. A hit skips the "
      "scheduler and the model, not the protocol. Here a miss's model time (`compute_infer`) "
      "is %s to %s µs, while the round trip every request pays (health check p50 %s to %s µs) "
      "and the handling of the request outside the cache (%s) are paid by hits in full; the "
      "cache's own lookup (SHA-256 over the inputs) is %s to %s µs and grows with the request "
      "size." % (
          len(met), len(results), " (%s)" % ", ".join(met) if met else "",
          fmt(min(compute)), fmt(max(compute)), fmt(min(health)), fmt(max(health)),
          "; ".join("%s about %s µs for %d request bytes" % (l, fmt(o), b) for l, o, b in outside),
          fmt(min(r["derived"]["hit_cache_us"] for r in results), 2),
          fmt(max(r["derived"]["hit_cache_us"] for r in results), 2)))
    w("")
    w("Raw figures (every kind's percentiles, statistics and nv_cache_* deltas): `cache.json`.")
    w("")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return lines


def main():
    args = parse_args()
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = " ".join(rf.read("/proc/loadavg").split()[:3])
    machine = rf.machine_facts()
    build = rf.build_facts(args.binary)
    work = tempfile.mkdtemp(prefix="slipway-cache-")
    repo = os.path.join(work, "models")
    for m in MODELS:
        shutil.copytree(os.path.join(REPO, "examples", "models", m), os.path.join(repo, m))
        with open(os.path.join(repo, m, "config.yaml"), "a") as f:
            f.write(CACHE_CONFIG)
    server = rf.Server(Args(args.binary, repo, args.server_arg), os.path.join(work, "server.log"))
    rng = random.Random(args.seed)
    results = []
    try:
        for m in MODELS:
            server.wait_ready(m, 60)
        for v in variants():
            n = args.image_requests if v["model"] == "image_cnn" else args.requests
            r = measure_variant(server.http_port, v, n, args.warmup, rng)
            r["derived"] = derive(r)
            results.append(r)
            d = r["derived"]
            print("%-14s %-18s health p50 %6.1f  miss p50 %7.1f p99 %7.1f  hit p50 %6.1f p99 "
                  "%6.1f us  e2e %5.1f%%  net %6.1f/%6.1f us = %5.1f%%  stats %5.2f/%6.1f us"
                  % (r["model"], r["encoding"], r["health"]["p50_us"], r["miss"]["p50_us"],
                     r["miss"]["p99_us"], r["hit"]["p50_us"], r["hit"]["p99_us"],
                     100 * d["e2e_p50_ratio"], d["hit_net_us"], d["miss_net_us"],
                     100 * (d["net_ratio"] or 0), d["hit_cache_us"],
                     d["miss_behind_frontend_us"]), flush=True)
    except Exception:
        server.stop()
        print("server log tail:\n" + server.log_tail(3000), file=sys.stderr)
        raise
    exit_code = server.stop()
    finished = datetime.datetime.now(datetime.timezone.utc)
    load_after = " ".join(rf.read("/proc/loadavg").split()[:3])
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "cache.json"), "w") as f:
        json.dump({"machine": machine, "build": build, "started": started.isoformat(),
                   "finished": finished.isoformat(), "server": server.cmd,
                   "server_exit_code": exit_code, "target_ratio": TARGET,
                   "load_average": [load_before, load_after], "results": results}, f, indent=1)
    lines = write_report(os.path.join(args.output_dir, "cache.md"), args, machine, build, server,
                         exit_code, started, finished, (load_before, load_after), results)
    print("\n".join(lines))
    if exit_code != 0:
        print("server exited with %s after SIGTERM; log: %s" % (exit_code, server.log_path),
              file=sys.stderr)
        return 1
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
