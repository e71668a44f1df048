#!/usr/bin/python3
"""Slipway observability overhead: the same server and model with the access log, payload log,
drift detection, ground-truth tracking and a Prometheus-style scrape every second switched on,
against the same with them off, measured in alternating rounds in one run.

    /usr/bin/python3 bench/run_observability.py       # or: make bench-observability

Needs build/slipway and build/bench/slipway_loadgen. Writes bench/results/observability.md and
observability.json. Metrics counters are always kept (they cannot be switched off), so "off"
means: no logs, no drift detection, no feedback tracking and nobody scraping.
"""
import argparse
import datetime
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_foundation as rf  # noqa: E402

REPO = rf.REPO
MODEL = "breast_cancer"
OBSERVED_CONFIG = """monitoring:
  drift:
    reference: {first_rows: 2000}
    window: {rows: 2000}
    sample: 0.1
  feedback: {window: 1000}
"""


class Args:
    def __init__(self, binary, repository, server_arg):
        self.binary = binary
        self.model_repository = repository
        self.server_arg = server_arg


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--binary", default=os.path.join(REPO, "build", "slipway"))
    p.add_argument("--loadgen", default=os.path.join(REPO, "build", "bench", "slipway_loadgen"))
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--protocol", default="http-binary")
    p.add_argument("--output-dir", default=os.path.join(REPO, "bench", "results"))
    return p.parse_args()


def make_repo(root, observed):
    repo = os.path.join(root, "observed" if observed else "plain")
    shutil.copytree(os.path.join(REPO, "examples", "models", MODEL), os.path.join(repo, MODEL))
    if observed:
        with open(os.path.join(repo, MODEL, "config.yaml"), "a") as f:
            f.write(OBSERVED_CONFIG)
    return repo


def scraper(port, stop):
    while not stop.is_set():
        rf.http_get(port, "/metrics")
        stop.wait(1.0)


def main():
    args = parse_args()
    started = datetime.datetime.now(datetime.timezone.utc)
    work = tempfile.mkdtemp(prefix="slipway-obs-")
    servers = {}
    for observed in (False, True):
        repo = make_repo(work, observed)
        extra = []
        if observed:
            extra = ["--access-log", os.path.join(work, "access.jsonl"),
                     "--payload-log-dir", os.path.join(work, "payloads"),
                     "--payload-log-sample", "0.01"]
        label = "on" if observed else "off"
        server = rf.Server(Args(args.binary, repo, extra), os.path.join(work, label + ".log"))
        server.wait_ready(MODEL, 60)
        servers[label] = server
    results = {"off": [], "on": []}
    try:
        for r in range(args.rounds):
            # The order alternates, so neither side always runs second (after the other warmed
            # caches, or on a machine whose clock drifted during the first).
            for label in (("off", "on") if r % 2 == 0 else ("on", "off")):
                server = servers[label]
                stop = threading.Event()
                t = threading.Thread(target=scraper, args=(server.http_port, stop))
                if label == "on":
                    t.start()
                cmd = [args.loadgen, "--protocol", args.protocol, "--host", "127.0.0.1",
                       "--port", str(server.http_port), "--http-port", str(server.http_port),
                       "--model", MODEL, "--concurrency", str(args.concurrency),
                       "--duration", str(args.duration), "--warmup", str(args.warmup)]
                point = rf.run_point(cmd, server, timeout=args.duration + args.warmup + 120)
                stop.set()
                if t.is_alive():
                    t.join()
                results[label].append(point)
                print("round %d %-3s %9.0f infer/s  p50 %7.0f us  p99 %7.0f us  errors %d"
                      % (r + 1, label, point["throughput_rps"], point["p50_us"], point["p99_us"],
                         point["errors"]), flush=True)
        drift = rf.http_get(servers["on"].http_port, "/v2/models/%s/drift" % MODEL)[1]
    finally:
        for s in servers.values():
            s.stop()
    finished = datetime.datetime.now(datetime.timezone.utc)
    summary = {}
    for label, points in results.items():
        summary[label] = {
            "throughput_rps": statistics.median(p["throughput_rps"] for p in points),
            "p50_us": statistics.median(p["p50_us"] for p in points),
            "p99_us": statistics.median(p["p99_us"] for p in points),
            "errors": sum(p["errors"] for p in points),
        }
    # Each round's on/off pair ran back to back, so its ratio cancels what drifts between rounds
    # (other load, clock); the headline is the median of those paired ratios.
    paired = [on["throughput_rps"] / off["throughput_rps"]
              for on, off in zip(results["on"], results["off"]) if off["throughput_rps"] > 0]
    paired_sorted = sorted(paired)
    ratio = statistics.median(paired)
    ratio_of_medians = summary["on"]["throughput_rps"] / summary["off"]["throughput_rps"]
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "observability.json"), "w") as f:
        json.dump({"machine": rf.machine_facts(), "build": rf.build_facts(args.binary),
                   "started": started.isoformat(), "finished": finished.isoformat(),
                   "model": MODEL, "protocol": args.protocol, "concurrency": args.concurrency,
                   "rounds": results, "summary": summary, "throughput_ratio": ratio,
                   "paired_ratios": paired, "ratio_of_medians": ratio_of_medians,
                   "drift_report": json.loads(drift) if drift else None}, f, indent=1)
    machine = rf.machine_facts()
    lines = [
        "# Observability overhead",
        "",
        "Generated by `bench/run_observability.py` on %s (%s to %s UTC)."
        % (machine.get("cpu", "this machine"), started.strftime("%Y-%m-%d %H:%M:%S"),
           finished.strftime("%H:%M:%S")),
        "",
        "Model `%s` (the tabular example, the cheapest model, so overhead shows most), %s, "
        "closed loop at concurrency %d, %d rounds of %.0f s, each an off run and an on run back to "
        "back (the order alternates between rounds); medians of the rounds."
        % (MODEL, args.protocol, args.concurrency, args.rounds, args.duration),
        "\"on\": access log of every request, payload log (1% sample), drift detection on every "
        "input and output feature (33 features, 2000-row reference and windows, observing a 10% "
        "sample of requests), ground-truth tracking of every answer, and /metrics scraped every "
        "second. \"off\": none of these (the always-kept counters remain).",
        "",
        "| | throughput (infer/s) | p50 (µs) | p99 (µs) | errors |",
        "|---|---|---|---|---|",
    ]
    for label in ("off", "on"):
        s = summary[label]
        lines.append("| %s | %.0f | %.0f | %.0f | %d |"
                     % (label, s["throughput_rps"], s["p50_us"], s["p99_us"], s["errors"]))
    lines += ["",
              "Throughput with observability on: **%.1f%%** of off (target: within 5%%): the median "
              "of the %d rounds' on/off ratios (each pair ran back to back, so what drifts between "
              "rounds cancels). Quartiles of those ratios: %.1f%% and %.1f%%; lowest %.1f%%, highest "
              "%.1f%%. The ratio of the two medians above: %.1f%%."
              % (100 * ratio, len(paired), 100 * paired_sorted[len(paired) // 4],
                 100 * paired_sorted[(3 * len(paired)) // 4], 100 * paired_sorted[0],
                 100 * paired_sorted[-1], 100 * ratio_of_medians), ""]
    with open(os.path.join(args.output_dir, "observability.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
