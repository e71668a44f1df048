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
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_foundation as rf  # noqa: E402

REPO = rf.REPO
MODEL = "breast_cancer"
# Drift on every input and output feature; with feedback, ground truth tracking of every answer.
DRIFT_CONFIG = """monitoring:
  drift:
    reference: {first_rows: 2000}
    window: {rows: 2000}
"""
ALL_CONFIG = DRIFT_CONFIG + """  feedback: {window: 1000}
"""
# The same drift detection without its default row budget (max_rows_per_second: 5000): every
# request observed, however many a second.
EVERY_ROW_CONFIG = DRIFT_CONFIG + """    max_rows_per_second: 0
"""

# label -> (config appended to the model's config.yaml, server flags given a work folder)
SETUPS = {
    "off": ("", lambda work: []),
    # The same as "off", a second server: how far two identical servers' figures lie apart here
    # (an A/A control), the resolution of the comparison.
    "off-again": ("", lambda work: []),
    # What the issue names: metrics (scraped every second), the access log and drift detection
    # with its default settings.
    "on": (DRIFT_CONFIG, lambda work: ["--access-log", os.path.join(work, "access-on.jsonl")]),
    # "on" with drift detection observing every request (no row budget).
    "on-every-row": (EVERY_ROW_CONFIG,
                     lambda work: ["--access-log", os.path.join(work, "access-every.jsonl")]),
    # Everything: also the payload log and ground-truth tracking.
    "all": (ALL_CONFIG, lambda work: ["--access-log", os.path.join(work, "access-all.jsonl"),
                                      "--payload-log-dir", os.path.join(work, "payloads"),
                                      "--payload-log-sample", "0.01"]),
}


class Args:
    def __init__(self, binary, repository, server_arg):
        self.binary = binary
        self.model_repository = repository
        self.server_arg = server_arg


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--binary", default=os.path.join(REPO, "build", "slipway"))
    p.add_argument("--loadgen", default=os.path.join(REPO, "build", "bench", "slipway_loadgen"))
    p.add_argument("--micro", default=os.path.join(REPO, "build", "bench", "observability_micro"))
    # Each server's own luck (where its threads and memory landed) moves its throughput by a few
    # percent, more than the effect measured, so many short rounds with fresh servers (the
    # median of many paired ratios) resolve it better than a few long ones in the same time.
    p.add_argument("--duration", type=float, default=2.5)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--protocol", default="http-binary")
    # Drift detection sorts and bins what it sees: one repeated request would make that free,
    # and a small pool would make windows near-copies of the reference (a KS statistic near 0
    # takes the p-value's slowest branch). 20000 per connection: no value comes back in a round.
    p.add_argument("--distinct", type=int, default=20000,
                   help="different random requests each load generator connection cycles through")
    p.add_argument("--output-dir", default=os.path.join(REPO, "bench", "results"))
    return p.parse_args()


def make_repo(root, label):
    repo = os.path.join(root, label)
    shutil.copytree(os.path.join(REPO, "examples", "models", MODEL), os.path.join(repo, MODEL))
    config = SETUPS[label][0]
    if config:
        with open(os.path.join(repo, MODEL, "config.yaml"), "a") as f:
            f.write(config)
    return repo


def scraper(port, stop):
    while not stop.is_set():
        rf.http_get(port, "/metrics")
        stop.wait(1.0)


def dropped(port):
    """Drift observations plus log lines the server dropped so far (from /metrics)."""
    text = rf.http_get(port, "/metrics", timeout=10)[1]
    total = 0.0
    for line in text.splitlines():
        if line.startswith(("slipway_drift_observations_dropped_total",
                            "slipway_request_log_lines_dropped_total")):
            total += float(line.rsplit(" ", 1)[1])
    return total


def drift_rows(port):
    """(rows drift detection observed, rows it left out) so far, from /v2/models/<m>/drift."""
    status, body = rf.http_get(port, "/v2/models/%s/drift" % MODEL, timeout=10)
    if status != 200:
        return None
    d = json.loads(body)
    observed = d["reference_rows"] + d["windows"] * 2000 + d["window_rows"]
    return observed, d["rows_skipped"]["sample"] + d["rows_skipped"]["rate"]


def run_micro(binary):
    """Each link's own cost per request, in process (bench/observability_micro.cc): rows of
    (name, threads, ns of wall time, ns of process CPU, drift observations dropped)."""
    if not os.path.exists(binary):
        return []
    with tempfile.NamedTemporaryFile(suffix=".json") as report:
        out = subprocess.run([binary, "--benchmark_out=" + report.name,
                              "--benchmark_out_format=json"], capture_output=True, text=True,
                             timeout=600)
        if out.returncode != 0:
            return []
        benchmarks = json.load(open(report.name))["benchmarks"]
    rows = []
    for b in benchmarks:
        name = b["name"].split("/")[0].replace("BM_", "")
        rows.append((name, b.get("threads", 1), b["real_time"], b["cpu_time"],
                     int(b.get("dropped", 0))))
    return rows


def main():
    args = parse_args()
    started = datetime.datetime.now(datetime.timezone.utc)
    work = tempfile.mkdtemp(prefix="slipway-obs-")
    try:
        run(args, started, work)
    finally:
        # The servers' access logs of a whole run add up to gigabytes.
        shutil.rmtree(work, ignore_errors=True)


def run(args, started, work):
    labels = list(SETUPS)
    repos = {label: make_repo(work, label) for label in labels}
    results = {label: [] for label in labels}
    drift = None
    for r in range(args.rounds):
        # Every round starts fresh servers: a process's own luck (where its memory and threads
        # landed) would otherwise favour one setup in every round.
        servers = {}
        try:
            for label in labels:
                servers[label] = rf.Server(Args(args.binary, repos[label], SETUPS[label][1](work)),
                                           os.path.join(work, "%s-%d.log" % (label, r)))
            for label in labels:
                servers[label].wait_ready(MODEL, 60)
            # The order reverses every round, so no setup always runs first or last (after
            # another warmed caches, or on a machine whose clock drifted meanwhile).
            for label in (labels if r % 2 == 0 else list(reversed(labels))):
                server = servers[label]
                stop = threading.Event()
                t = threading.Thread(target=scraper, args=(server.http_port, stop))
                if not label.startswith("off"):
                    t.start()
                cmd = [args.loadgen, "--protocol", args.protocol, "--host", "127.0.0.1",
                       "--port", str(server.http_port), "--http-port", str(server.http_port),
                       "--model", MODEL, "--concurrency", str(args.concurrency),
                       "--duration", str(args.duration), "--warmup", str(args.warmup),
                       "--distinct", str(args.distinct)]
                point = rf.run_point(cmd, server, timeout=args.duration + args.warmup + 120)
                stop.set()
                if t.is_alive():
                    t.join()
                # What the bounded queues dropped (drift observations, log lines): a figure
                # bought by dropping work would not count.
                point["dropped"] = dropped(server.http_port)
                rows = drift_rows(server.http_port) if not label.startswith("off") else None
                if rows is not None:
                    point["drift_rows_observed"], point["drift_rows_skipped"] = rows
                results[label].append(point)
                print("round %d %-9s %9.0f infer/s  p50 %7.0f us  p99 %7.0f us  errors %d"
                      % (r + 1, label, point["throughput_rps"], point["p50_us"], point["p99_us"],
                         point["errors"]), flush=True)
            if r == args.rounds - 1:
                drift = rf.http_get(servers["all"].http_port, "/v2/models/%s/drift" % MODEL)[1]
        finally:
            for s in servers.values():
                s.stop()
    micro = run_micro(args.micro)
    finished = datetime.datetime.now(datetime.timezone.utc)
    summary = {}
    for label, points in results.items():
        summary[label] = {
            "throughput_rps": statistics.median(p["throughput_rps"] for p in points),
            "p50_us": statistics.median(p["p50_us"] for p in points),
            "p99_us": statistics.median(p["p99_us"] for p in points),
            "errors": sum(p["errors"] for p in points),
            "dropped": sum(p.get("dropped", 0) for p in points),
        }
        seen = [(p["drift_rows_observed"], p["drift_rows_skipped"]) for p in points
                if "drift_rows_observed" in p]
        if seen:
            summary[label]["drift_share_observed"] = statistics.median(
                o / (o + k) for o, k in seen if o + k > 0)
            summary[label]["drift_rows_observed"] = statistics.median(o for o, _ in seen)
    # Each round ran the setups back to back, so a ratio within a round cancels what drifts
    # between rounds (other load, clock); the headline is the median of those paired ratios.
    def paired(label):
        ratios = sorted(a["throughput_rps"] / b["throughput_rps"]
                        for a, b in zip(results[label], results["off"]) if b["throughput_rps"] > 0)
        return {"median": statistics.median(ratios), "q1": ratios[len(ratios) // 4],
                "q3": ratios[(3 * len(ratios)) // 4], "min": ratios[0], "max": ratios[-1],
                "ratio_of_medians": summary[label]["throughput_rps"] / summary["off"]["throughput_rps"],
                "ratios": ratios}
    ratios = {label: paired(label) for label in labels if label != "off"}
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "observability.json"), "w") as f:
        json.dump({"machine": rf.machine_facts(), "build": rf.build_facts(args.binary),
                   "started": started.isoformat(), "finished": finished.isoformat(),
                   "model": MODEL, "protocol": args.protocol, "concurrency": args.concurrency,
                   "rounds": results, "summary": summary, "throughput_ratios": ratios,
                   "in_process_ns": micro,
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
        "closed loop at concurrency %d, %d rounds of %.0f s; each round starts a fresh server per "
        "setup and runs them back to back, in an order that reverses every round. Medians of the "
        "rounds. Each load generator connection cycles through %d different random requests of its "
        "own, so drift detection sorts and tests varied values, as it would on live traffic."
        % (MODEL, args.protocol, args.concurrency, args.rounds, args.duration, args.distinct),
        "",
        "- **off**: no access log, no drift detection, no payload log, no feedback tracking, nobody "
        "scraping (the always-kept counters remain).",
        "- **off-again**: \"off\" once more, a second server: the A/A control. How far it lies "
        "from \"off\" is the resolution of these comparisons on this machine.",
        "- **on** (what the issue names): /metrics scraped every second, the access log of every "
        "request (a file), and drift detection on every input and output feature (33 features, "
        "2000-row reference and windows) with its default settings: every request is a candidate "
        "(`sample: 1.0`), and at most 5000 rows a second are observed "
        "(`max_rows_per_second: 5000`, bursts of a second's worth), so the first 5000 requests "
        "of a round are all observed and then 5000 a second.",
        "- **on-every-row**: \"on\" with `max_rows_per_second: 0`: drift detection observes "
        "every request, however many a second.",
        "- **all**: \"on\" plus the payload log (1% sample) and ground-truth tracking of every answer.",
        "",
        "| | throughput (infer/s) | p50 (µs) | p99 (µs) | errors | throughput against off |",
        "|---|---|---|---|---|---|",
    ]
    for label in labels:
        s = summary[label]
        against = "" if label == "off" else "**%.1f%%** (quartiles %.1f%%–%.1f%%)" % (
            100 * ratios[label]["median"], 100 * ratios[label]["q1"], 100 * ratios[label]["q3"])
        lines.append("| %s | %.0f | %.0f | %.0f | %d | %s |"
                     % (label, s["throughput_rps"], s["p50_us"], s["p99_us"], s["errors"], against))
    lost = sum(p.get("dropped", 0) for points in results.values() for p in points)
    lines += ["", "Drift observations and log lines dropped by the bounded queues, all setups and "
              "rounds together: %d." % lost]
    lines += ["", "Rows drift detection observed, of all the requests a server served in its round "
              "(warm-up included; medians of the rounds):", ""]
    for label in labels:
        if "drift_share_observed" in summary[label]:
            lines.append("- %s: %.1f%% (%.0f rows in %.1f s of load)"
                         % (label, 100 * summary[label]["drift_share_observed"],
                            summary[label]["drift_rows_observed"], args.warmup + args.duration))
    on, everything, every = ratios["on"], ratios["all"], ratios["on-every-row"]
    lines += ["",
              "Throughput with the issue's observability on: **%.1f%%** of off (target: within 5%%), "
              "the median of the %d rounds' on/off ratios (lowest %.1f%%, highest %.1f%%; the ratio "
              "of the two medians: %.1f%%). With drift detection observing every request: %.1f%% "
              "(ratio of medians %.1f%%). With everything on: %.1f%% (ratio of medians %.1f%%). "
              "The A/A control (a second \"off\" server against the first): %.1f%% (quartiles "
              "%.1f%%–%.1f%%)."
              % (100 * on["median"], len(on["ratios"]), 100 * on["min"], 100 * on["max"],
                 100 * on["ratio_of_medians"], 100 * every["median"],
                 100 * every["ratio_of_medians"], 100 * everything["median"],
                 100 * everything["ratio_of_medians"], 100 * ratios["off-again"]["median"],
                 100 * ratios["off-again"]["q1"], 100 * ratios["off-again"]["q3"]), ""]
    if micro:
        lines += ["## Each link's own cost, in process",
                  "",
                  "`build/bench/observability_micro` (Google Benchmark), in the same run: requests "
                  "through the link to an inner service that answers at once (no model, no "
                  "sockets), on one and on two request threads. CPU is the whole process's, so the "
                  "access log writer's and the drift worker's share is counted. What the server "
                  "loses beyond these figures comes from sharing two cores and their caches with "
                  "the rest of the request path and the load generator.",
                  "",
                  "| link | request threads | wall ns / request | process CPU ns / request | "
                  "observations dropped |",
                  "|---|---|---|---|---|"]
        lines += ["| %s | %d | %.0f | %.0f | %d |" % row for row in micro]
        lines += ["", "The unpaced drift rows send faster than the drift worker judges windows, "
                  "so its queue drops observations and those rows understate the worker's share. "
                  "DriftVariedPaced sends varied requests and waits, asleep, for each window's "
                  "judgement: its CPU figure is drift detection's whole cost per request on "
                  "varied values (its wall time includes the waits). These rows observe every "
                  "request (`max_rows_per_second: 0`). DriftOverBudget is a model over its row "
                  "budget: what a request that drift detection leaves out costs."]
        lines.append("")
    with open(os.path.join(args.output_dir, "observability.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
