#!/usr/bin/python3
"""Slipway batching benchmark: what dynamic batching buys, against the in-process ceiling and a
hand-written FastAPI + PyTorch baseline, on one machine in one run.

    /usr/bin/python3 bench/run_batching.py            # or: make bench-batching

Builds nothing (needs build/slipway, build/bench/ort_floor, build/bench/slipway_loadgen, and
Debian's python3-torch, python3-fastapi, python3-uvicorn). Generates a wide MLP with random
weights (bench/make_bench_models.py), then measures closed-loop concurrency sweeps of
  1. Slipway without batching (2 instances), HTTP binary,
  2. Slipway with dynamic batching (2 instances), HTTP binary and HTTP JSON,
  3. the FastAPI + uvicorn + PyTorch baseline, HTTP JSON (the same model and weights),
  4. in-process ONNX Runtime running the batch size Slipway formed, back to back (the ceiling),
and writes bench/results/batching.md, batching.json and batching.svg (latency vs throughput).
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_foundation as rf  # noqa: E402  (machine facts, ports, server process, points)

REPO = rf.REPO
MODEL = "wide_mlp"
CONFIGS = {
    "no batching": "max_batch_size: 64\ninstance_count: 2\n",
    "dynamic batching": "max_batch_size: 64\ninstance_count: 2\n"
                        "dynamic_batching: {max_queue_delay_microseconds: 0}\n",
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--binary", default=os.path.join(REPO, "build", "slipway"))
    p.add_argument("--floor", default=os.path.join(REPO, "build", "bench", "ort_floor"))
    p.add_argument("--loadgen", default=None)
    p.add_argument("--duration", type=float, default=4.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--concurrency", default="1,2,4,8,16,32")
    p.add_argument("--output-dir", default=os.path.join(REPO, "bench", "results"))
    a = p.parse_args()
    if a.loadgen is None:
        a.loadgen = os.path.join(os.path.dirname(os.path.abspath(a.floor)), "slipway_loadgen")
    a.concurrency = [int(c) for c in a.concurrency.split(",")]
    return a


class Args:
    """The subset of run_foundation's arguments its Server class reads."""

    def __init__(self, binary, repository):
        self.binary = binary
        self.model_repository = repository
        self.server_arg = []


def stats(port):
    status, body = rf.http_get(port, "/v2/models/%s/stats" % MODEL)
    if status != 200:
        return None
    (m,) = json.loads(body)["model_stats"]
    return m


def sweep(args, label, protocol, server, http_port, grpc_port, out):
    for c in args.concurrency:
        before = stats(http_port)
        cmd = [args.loadgen, "--protocol", protocol, "--host", "127.0.0.1",
               "--port", str(grpc_port if protocol == "grpc" else http_port),
               "--http-port", str(http_port), "--model", MODEL, "--concurrency", str(c),
               "--duration", str(args.duration), "--warmup", str(args.warmup)]
        r = rf.run_point(cmd, server, timeout=args.duration + args.warmup + 120)
        after = stats(http_port)
        r["_series"] = label
        r["_avg_batch"] = None
        if before and after:
            execs = after["execution_count"] - before["execution_count"]
            rows = after["inference_count"] - before["inference_count"]
            r["_avg_batch"] = rows / execs if execs else None
        out.append(r)
        print("%-34s C=%-3d %9.0f infer/s  p50 %8.0f us  p99 %8.0f us  avg batch %s  errors %d"
              % (label, c, r["throughput_rps"], r["p50_us"], r["p99_us"],
                 rf.fmt(r["_avg_batch"]), r["errors"]), flush=True)


class Baseline:
    """The FastAPI server as a process with the attributes run_point reads."""

    def __init__(self, weights):
        self.http_port = rf.free_port()
        script = os.path.join(REPO, "bench", "baselines", "fastapi_server.py")
        self.proc = subprocess.Popen(["/usr/bin/python3", script, weights, str(self.http_port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while rf.http_get(self.http_port, "/v2/health/ready")[0] != 200:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("FastAPI baseline did not start: %s"
                                   % self.proc.stderr.read().decode(errors="replace"))
            time.sleep(0.2)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def svg_plot(series, path):
    """Latency (p99, log scale) against throughput, one polyline per series."""
    import math
    w, h, ml, mb, mt, mr = 760, 440, 70, 50, 20, 220
    pts = [(r["throughput_rps"], r["p99_us"]) for rs in series.values() for r in rs]
    xmax = max(x for x, _ in pts) * 1.05
    ymin = min(y for _, y in pts) / 1.5
    ymax = max(y for _, y in pts) * 1.5
    def sx(x):
        return ml + (w - ml - mr) * x / xmax
    def sy(y):
        return mt + (h - mt - mb) * (1 - (math.log10(y) - math.log10(ymin))
                                     / (math.log10(ymax) - math.log10(ymin)))
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif"'
           ' font-size="12">' % (w, h), '<rect width="100%" height="100%" fill="white"/>',
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (ml, h - mb, w - mr, h - mb),
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (ml, mt, ml, h - mb),
           '<text x="%d" y="%d" text-anchor="middle">throughput (inferences/s)</text>'
           % ((ml + w - mr) / 2, h - 12),
           '<text x="16" y="%d" transform="rotate(-90 16 %d)" text-anchor="middle">p99 latency (µs,'
           ' log)</text>' % ((mt + h - mb) / 2, (mt + h - mb) / 2)]
    for i in range(6):
        x = xmax * i / 5
        out.append('<text x="%.0f" y="%d" text-anchor="middle">%.0f</text>' % (sx(x), h - mb + 16, x))
    decade = 10 ** math.floor(math.log10(ymin))
    while decade <= ymax:
        for m in (1, 2, 5):
            y = decade * m
            if ymin <= y <= ymax:
                out.append('<text x="%d" y="%.0f" text-anchor="end">%g</text>' % (ml - 6, sy(y) + 4, y))
                out.append('<line x1="%d" y1="%.0f" x2="%d" y2="%.0f" stroke="#eee"/>'
                           % (ml, sy(y), w - mr, sy(y)))
        decade *= 10
    for i, (name, rs) in enumerate(series.items()):
        colour = colours[i % len(colours)]
        line = " ".join("%.1f,%.1f" % (sx(r["throughput_rps"]), sy(r["p99_us"])) for r in rs)
        out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' % (colour, line))
        for r in rs:
            out.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>C=%d</title></circle>'
                       % (sx(r["throughput_rps"]), sy(r["p99_us"]), colour, r["concurrency"]))
        out.append('<text x="%d" y="%d" fill="%s">%s</text>' % (w - mr + 10, mt + 16 + 18 * i, colour, name))
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def best(rows):
    return max(rows, key=lambda r: r["throughput_rps"])


def at(rows, c):
    return next((r for r in rows if r["concurrency"] == c), None)


def main():
    args = parse_args()
    started = datetime.datetime.now(datetime.timezone.utc)
    machine = rf.machine_facts()
    build = rf.build_facts(args.binary)
    work = tempfile.mkdtemp(prefix="slipway-batching-")
    subprocess.run(["/usr/bin/python3", os.path.join(REPO, "bench", "make_bench_models.py"), work],
                   check=True, capture_output=True)
    results = []
    series = {}
    for label, config in CONFIGS.items():
        repo = os.path.join(work, label.replace(" ", "_"))
        os.makedirs(os.path.join(repo, MODEL, "1"))
        os.link(os.path.join(work, MODEL, "1", "model.onnx"), os.path.join(repo, MODEL, "1", "model.onnx"))
        with open(os.path.join(repo, MODEL, "config.yaml"), "w") as f:
            f.write(config)
        server = rf.Server(Args(args.binary, repo), os.path.join(work, label.replace(" ", "_") + ".log"))
        try:
            server.wait_ready(MODEL, 60)
            protocols = ["http-binary"] + (["http-json"] if label == "dynamic batching" else [])
            for protocol in protocols:
                name = "Slipway, %s, %s" % (label, protocol)
                rows = []
                sweep(args, name, protocol, server, server.http_port, server.grpc_port, rows)
                series[name] = rows
                results += rows
        finally:
            server.stop()
    baseline = Baseline(os.path.join(work, MODEL + ".pt"))
    try:
        rows = []
        sweep(args, "FastAPI + PyTorch, http-json", "http-json", baseline, baseline.http_port,
              baseline.http_port, rows)
        series["FastAPI + PyTorch, http-json"] = rows
        results += rows
    finally:
        baseline.stop()
    # The ceiling: in-process ONNX Runtime at the batch size Slipway formed at its best point.
    batched = series["Slipway, dynamic batching, http-binary"]
    top = best(batched)
    batch = max(1, round(top["_avg_batch"] or 1))
    floor_cmd = [args.floor, "--model", os.path.join(work, MODEL, "1", "model.onnx"),
                 "--concurrency", "2", "--instances", "2", "--batch", str(batch),
                 "--duration", str(args.duration), "--warmup", str(args.warmup)]
    ceiling = json.loads(subprocess.run(floor_cmd, capture_output=True, text=True,
                                        check=True).stdout.strip().splitlines()[-1])
    ceiling_rows = ceiling["throughput_rps"] * batch
    finished = datetime.datetime.now(datetime.timezone.utc)
    os.makedirs(args.output_dir, exist_ok=True)
    svg_plot(series, os.path.join(args.output_dir, "batching.svg"))
    with open(os.path.join(args.output_dir, "batching.json"), "w") as f:
        for r in results:
            f.write(json.dumps({k: v for k, v in r.items() if not k.startswith("_") or k in
                                ("_series", "_avg_batch")}) + "\n")
        f.write(json.dumps(ceiling) + "\n")
    write_report(args, machine, build, series, top, batch, ceiling, ceiling_rows, started, finished)
    print("wrote %s" % os.path.join(args.output_dir, "batching.md"))
    return 0


def write_report(args, machine, build, series, top, batch, ceiling, ceiling_rows, started, finished):
    lines = []
    w = lines.append
    nob = series["Slipway, no batching, http-binary"]
    bat = series["Slipway, dynamic batching, http-binary"]
    bjson = series["Slipway, dynamic batching, http-json"]
    fast = series["FastAPI + PyTorch, http-json"]
    c16 = 16 if at(bat, 16) and at(nob, 16) else max(r["concurrency"] for r in bat)
    gain = at(bat, c16)["throughput_rps"] / at(nob, c16)["throughput_rps"]
    ceiling_share = top["throughput_rps"] / ceiling_rows
    fj, sj = at(fast, c16), at(bjson, c16)
    fastapi_ratio = sj["throughput_rps"] / fj["throughput_rps"]
    w("# Slipway batching benchmark")
    w("")
    w("- **Date**: %s (UTC), %.0f s wall" % (started.strftime("%Y-%m-%d %H:%M:%S"),
                                            (finished - started).total_seconds()))
    w("- **Machine**: %s; %s logical CPUs; %.1f GiB; %s, kernel %s" % (
        machine["cpu"], machine["logical_cpus"], machine["memory_gib"], machine["os"], machine["kernel"]))
    w("- **Build**: slipway `%s`, %s, %s" % (build["commit"], build["build_type"], build["compiler"]))
    w("- **Command**: `/usr/bin/python3 bench/run_batching.py`")
    w("- **Model**: `wide_mlp`, random weights: x FP32 [batch, 512] -> 2048 -> 2048 -> 10 (ReLU), "
      "about 5.3 M parameters; every request carries one row.")
    w("- **Slipway**: 2 instances x 1 intra-op thread (the defaults on 2 cores); `no batching`: each "
      "request runs alone; `dynamic batching`: `dynamic_batching: {max_queue_delay_microseconds: 0}` "
      "(whatever queued while both instances were busy is merged, up to 64 rows).")
    w("- **Baseline**: `bench/baselines/fastapi_server.py`, FastAPI 0.92 + uvicorn 0.17 (one worker) + "
      "PyTorch 1.13 from Debian, `torch.set_num_threads(2)`, same weights, KServe v2 JSON.")
    w("- **Load**: `slipway_loadgen` (C++), closed loop, one keep-alive connection per worker, "
      "%.0f s warm-up then %.0f s measured per point; client and servers share the 2 cores."
      % (args.warmup, args.duration))
    w("")
    w("## Results")
    w("")
    w("| series | C | infer/s | p50 µs | p90 µs | p99 µs | avg server batch | errors |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, rows in series.items():
        for r in rows:
            w("| %s | %d | %.0f | %.0f | %.0f | %.0f | %s | %d |" % (
                name, r["concurrency"], r["throughput_rps"], r["p50_us"], r["p90_us"], r["p99_us"],
                rf.fmt(r["_avg_batch"]), r["errors"]))
    w("")
    w("In-process ONNX Runtime, batch %d, 2 sessions back to back (`ort_floor --batch %d "
      "--concurrency 2`): %.0f batches/s = **%.0f rows/s**, p50 %.0f µs per batch."
      % (batch, batch, ceiling["throughput_rps"], ceiling_rows, ceiling["p50_us"]))
    w("")
    w("![p99 latency against throughput](batching.svg)")
    w("")
    w("## Targets")
    w("")
    w("| target | measured | met |")
    w("|---|---|---|")
    w("| batching >= 2x throughput at concurrency %d | %.0f vs %.0f infer/s = **%.2fx** | %s |" % (
        c16, at(bat, c16)["throughput_rps"], at(nob, c16)["throughput_rps"], gain,
        "yes" if gain >= 2 else "no"))
    w("| best Slipway >= 85%% of in-process ORT at the same batch size | %.0f infer/s at C=%d "
      "(avg batch %s) vs %.0f rows/s = **%.0f%%** | %s |" % (
          top["throughput_rps"], top["concurrency"], rf.fmt(top["_avg_batch"]), ceiling_rows,
          100 * ceiling_share, "yes" if ceiling_share >= 0.85 else "no"))
    w("| Slipway >= 5x FastAPI throughput at C=%d, lower p99 (both HTTP JSON) | %.0f vs %.0f "
      "infer/s = **%.1fx**; p99 %.0f vs %.0f µs | %s |" % (
          c16, sj["throughput_rps"], fj["throughput_rps"], fastapi_ratio, sj["p99_us"], fj["p99_us"],
          "yes" if fastapi_ratio >= 5 and sj["p99_us"] < fj["p99_us"] else "no"))
    w("")
    ncpu = machine["logical_cpus"] or 1
    w("At the best point the load generator used %.0f%% and the server %.0f%% of the machine's "
      "CPU time." % (100 * top.get("client_cpu_s", 0) / (args.duration * ncpu),
                     top.get("_server_cpu_pct", 0)))
    w("")
    w("What limits these: the load generator runs on the same 2 cores as the server, so at high "
      "concurrency part of every core goes to the client; the ceiling runs with no client at all. "
      "Batches form only while both instances are busy (no added queue delay), so the average "
      "batch grows with concurrency.")
    with open(os.path.join(args.output_dir, "batching.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
