#!/usr/bin/python3
"""Slipway foundation benchmark: serving overhead over in-process ONNX Runtime, per protocol.

    /usr/bin/python3 bench/run_foundation.py --binary build/slipway --floor build/bench/ort_floor

Builds nothing. Starts `slipway serve` on free ports over examples/models, waits until the model is
ready, then for each concurrency (default 1 and 8) runs the in-process ONNX Runtime floor
(ort_floor) and the closed-loop load generator (slipway_loadgen) over HTTP/JSON, HTTP binary and
gRPC (--repeat times, interleaved; the report keeps the median-p50 run and the spread), stops the
server with SIGTERM and writes bench/results/foundation.md (the report) and
bench/results/foundation.json (the programs' raw JSON lines). Standard library only.

Targets checked at concurrency 1: gRPC p50 within 100 us of the in-process p50, HTTP binary within
150 us. Client, server and floor share the machine's cores; their CPU use is reported per point.
"""
import argparse
import datetime
import json
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROTOCOLS = ["http-json", "http-binary", "grpc"]
TARGETS_US = {"grpc": 100.0, "http-binary": 150.0}  # allowed p50 overhead at concurrency 1


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--binary", default=os.path.join(REPO, "build", "slipway"), help="slipway binary")
    p.add_argument("--floor", default=os.path.join(REPO, "build", "bench", "ort_floor"),
                   help="ort_floor binary")
    p.add_argument("--loadgen", default=None,
                   help="slipway_loadgen binary (default: beside --floor)")
    p.add_argument("--model-repository", default=os.path.join(REPO, "examples", "models"))
    p.add_argument("--model", default="breast_cancer")
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds per point")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each point")
    p.add_argument("--concurrency", default="1,8", help="comma-separated concurrency levels")
    p.add_argument("--repeat", type=int, default=3,
                   help="runs per point; the table shows the run with the median p50")
    p.add_argument("--protocols", default=",".join(PROTOCOLS), help="comma-separated subset of "
                   + ", ".join(PROTOCOLS))
    p.add_argument("--server-arg", action="append", default=[],
                   help="extra argument for `slipway serve` (repeatable)")
    p.add_argument("--output-dir", default=os.path.join(REPO, "bench", "results"))
    p.add_argument("--ready-timeout", type=float, default=60.0)
    a = p.parse_args()
    if a.loadgen is None:
        a.loadgen = os.path.join(os.path.dirname(os.path.abspath(a.floor)), "slipway_loadgen")
    a.concurrency = [int(c) for c in a.concurrency.split(",") if c.strip()]
    if a.repeat < 1:
        p.error("--repeat must be >= 1")
    a.protocols = [x for x in a.protocols.split(",") if x.strip()]
    for proto in a.protocols:
        if proto not in PROTOCOLS:
            p.error("unknown protocol %r" % proto)
    for path in (a.binary, a.floor, a.loadgen):
        if not os.access(path, os.X_OK):
            p.error("%s is not an executable; build it first (cmake --build build --target "
                    "slipway ort_floor slipway_loadgen)" % path)
    return a


# ---- machine facts --------------------------------------------------------------------------

def read(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def machine_facts():
    cpuinfo = read("/proc/cpuinfo")
    def field(name):
        for line in cpuinfo.splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
        return "?"
    mem_kb = next((int(l.split()[1]) for l in read("/proc/meminfo").splitlines()
                   if l.startswith("MemTotal:")), 0)
    governor = read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").strip() or "n/a"
    return {
        "cpu": field("model name"),
        "logical_cpus": os.cpu_count(),
        "cores_per_socket": field("cpu cores"),
        "siblings": field("siblings"),
        "mhz": field("cpu MHz"),
        "governor": governor,
        "cgroup_cpu_max": read("/sys/fs/cgroup/cpu.max").strip() or "n/a",
        "kernel": platform.release(),
        "os": next((l.split("=", 1)[1].strip('"') for l in read("/etc/os-release").splitlines()
                    if l.startswith("PRETTY_NAME=")), platform.platform()),
        "memory_gib": mem_kb / 1048576.0,
    }


def build_facts(binary):
    cache = read(os.path.join(os.path.dirname(os.path.abspath(binary)), "CMakeCache.txt"))
    entries = {}
    for line in cache.splitlines():
        if ":" in line and "=" in line and not line.startswith(("#", "//")):
            key, rest = line.split(":", 1)
            entries[key] = rest.split("=", 1)[1]
    build_type = entries.get("CMAKE_BUILD_TYPE", "?")
    compiler = entries.get("CMAKE_CXX_COMPILER", "c++")
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True,
                                 timeout=10).stdout.splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        version = compiler
    flags = entries.get("CMAKE_CXX_FLAGS_" + build_type.upper(), "")
    try:
        commit = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = "?"
    return {"build_type": build_type, "compiler": version, "flags": flags, "commit": commit or "?"}


def cpu_busy_jiffies():
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    parts = [int(x) for x in read("/proc/stat").splitlines()[0].split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    return sum(parts) - idle, sum(parts)


def listen_overflows():
    """The kernel's TcpExt ListenOverflows counter (connections dropped by full accept queues)."""
    lines = [l.split() for l in read("/proc/net/netstat").splitlines() if l.startswith("TcpExt:")]
    if len(lines) >= 2 and "ListenOverflows" in lines[0]:
        return int(lines[1][lines[0].index("ListenOverflows")])
    return 0


def process_cpu_seconds(pid):
    stat = read("/proc/%d/stat" % pid)
    if not stat:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- server ---------------------------------------------------------------------------------

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path, timeout=2.0):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, OSError):
        return None, ""


class Server:
    def __init__(self, args, log_path):
        self.args = args
        self.log_path = log_path
        self.starts = 0
        self._start()

    def _start(self):
        # A port free when asked may be taken (by another process's outgoing connection) before
        # the server binds it; wait_ready then starts it again on other ports.
        self.http_port = free_port()
        self.grpc_port = free_port()
        while self.grpc_port == self.http_port:
            self.grpc_port = free_port()
        self.cmd = [self.args.binary, "serve", "--model-repository", self.args.model_repository,
                    "--http-port", str(self.http_port), "--grpc-port", str(self.grpc_port),
                    "--metrics-port", "-1", "--log-level", "warn"] + self.args.server_arg
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT)
        self.starts += 1

    def wait_ready(self, model, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_tail()
                if ("could not bind" in tail or "cannot listen" in tail) and self.starts < 3:
                    self.log.close()
                    self._start()
                    continue
                raise RuntimeError("server exited with %d before it was ready:\n%s"
                                   % (self.proc.returncode, self.log_tail()))
            status, _ = http_get(self.http_port, "/v2/models/%s/ready" % model)
            if status == 200:
                return
            time.sleep(0.1)
        raise RuntimeError("server not ready after %.0f s:\n%s" % (timeout, self.log_tail()))

    def stop(self):
        """SIGTERM, then wait for the drain; returns the exit code (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.log.close()
                return None
        self.log.close()
        return self.proc.returncode

    def log_tail(self, n=2000):
        self.log.flush()
        return read(self.log_path)[-n:]


# ---- points ---------------------------------------------------------------------------------

def run_point(cmd, server, timeout):
    """Runs one benchmark program; returns its JSON result with CPU use of server and machine."""
    busy0, total0 = cpu_busy_jiffies()
    srv0 = process_cpu_seconds(server.proc.pid)
    overflows0 = listen_overflows()
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        out, err, rc = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as e:
        out, err, rc = e.stdout or "", (e.stderr or "") + "\n(timed out)", None
        out = out.decode() if isinstance(out, bytes) else out
        err = err.decode() if isinstance(err, bytes) else err
    elapsed = time.monotonic() - t0
    busy1, total1 = cpu_busy_jiffies()
    srv1 = process_cpu_seconds(server.proc.pid)
    lines = [l for l in out.splitlines() if l.startswith("{")]
    try:
        result = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        result = None
    if result is None:
        state = ("server still running" if server.proc.poll() is None
                 else "server exited with %s" % server.proc.returncode)
        raise RuntimeError("%s failed (exit %s; %s):\n%s\n%s"
                           % (shlex.join(cmd), rc, state, out, err))
    ncpu = os.cpu_count() or 1
    # Whole-run shares (warm-up and start-up included) of the machine's CPU capacity.
    # Failed connection-opening first calls (load generator) count as errors too.
    result["errors"] = result["errors"] + result.get("first_call_errors", 0)
    result["_raw"] = lines[-1]
    result["_exit"] = rc
    result["_stderr"] = err.strip()
    result["_server_cpu_pct"] = 100.0 * (srv1 - srv0) / (elapsed * ncpu)
    result["_machine_busy_pct"] = (100.0 * (busy1 - busy0) / (total1 - total0)
                                   if total1 > total0 else 0.0)
    result["_command"] = shlex.join(cmd)
    result["_listen_overflows"] = listen_overflows() - overflows0
    return result


def fmt(v, digits=1):
    return "-" if v is None else ("%.*f" % (digits, v))


def median_runs(runs):
    """One row per (tool, protocol, concurrency): the run with the median p50, with the spread."""
    groups = {}
    for r in runs:
        groups.setdefault((r["concurrency"], r["tool"] != "ort_floor", r["protocol"]), []).append(r)
    rows = []
    for key in groups:  # insertion order = run order
        g = sorted(groups[key], key=lambda r: r["p50_us"])
        row = dict(g[(len(g) - 1) // 2])
        row["_p50_min"], row["_p50_max"] = g[0]["p50_us"], g[-1]["p50_us"]
        row["_rps_min"] = min(r["throughput_rps"] for r in g)
        row["_rps_max"] = max(r["throughput_rps"] for r in g)
        row["_runs"] = len(g)
        row["errors"] = sum(r["errors"] for r in g)
        if "first_call_max_us" in row:
            row["first_call_max_us"] = max(r["first_call_max_us"] for r in g)
        row["_listen_overflows"] = sum(r["_listen_overflows"] for r in g)
        rows.append(row)
    return rows


def write_report(args, machine, build, meta, runs, server, exit_code, started, finished,
                 load_before, load_after):
    results = median_runs(runs)
    floor = {r["concurrency"]: r for r in results if r["tool"] == "ort_floor"}
    first = results[0] if results else {}
    served = [r for r in results if r["tool"] == "slipway_loadgen"]
    lines = []
    w = lines.append
    w("# Slipway foundation benchmark")
    w("")
    w("Serving overhead of Slipway over in-process ONNX Runtime, per protocol, closed loop.")
    w("")
    w("- **Date**: %s (UTC), %.0f s wall" % (started.strftime("%Y-%m-%d %H:%M:%S"),
                                           (finished - started).total_seconds()))
    w("- **Machine**: %s; %s logical CPUs (%s cores per socket, %s siblings; %s MHz, governor "
      "%s, cgroup cpu.max `%s`); %.1f GiB memory; %s, kernel %s"
      % (machine["cpu"], machine["logical_cpus"], machine["cores_per_socket"],
         machine["siblings"], machine["mhz"], machine["governor"], machine["cgroup_cpu_max"],
         machine["memory_gib"], machine["os"], machine["kernel"]))
    w("- **Load average** (1/5/15 min) before: %s; after: %s" % (load_before, load_after))
    w("- **Build**: slipway `%s`, %s, %s `%s`; ONNX Runtime %s"
      % (build["commit"], build["build_type"], build["compiler"], build["flags"],
         first.get("ort_version", "?")))
    w("- **Command**: `%s`" % shlex.join([sys.executable] + sys.argv))
    w("- **Server**: `%s` (exit code after SIGTERM: %s)" % (shlex.join(server.cmd), exit_code))
    w("")
    w("## Setup")
    w("")
    w("- **Model**: `%s` (%s), batch 1, one fixed random input (seed 42); request bytes: %s."
      % (args.model, first.get("inputs", "?"),
         ", ".join("%s %d" % (p, next((r["request_bytes"] for r in served if r["protocol"] == p), 0))
                   for p in args.protocols)))
    w("- **Server model config**: instance_group `%s`, max_batch_size %s (no dynamic batcher "
      "in this build: each request runs alone)." % (json.dumps(meta.get("instance_group")),
                                                   meta.get("max_batch_size", "?")))
    w("- **Threads**: server defaults: `--instance-count 0` (= cores / intra-op threads = %d "
      "instances), `--intra-op-threads 1`, inter-op 1, sequential execution, graph optimisation "
      "ALL, `session.intra_op.allow_spinning=0`, `--http-threads 16` (Boost.Beast, one "
      "io_context per thread); gRPC ModelInfer on the callback API. Floor: the same session "
      "options, %s." %
      (os.cpu_count() or 1, "; ".join("C=%d: %d session(s)" % (c, f["sessions"])
                                      for c, f in sorted(floor.items()))))
    w("- **Floor** (`ort_floor`): C threads in-process; thread i uses session i mod S "
      "(S = min(C, cores)); a session runs one call at a time and is handed over in FIFO "
      "order, as the server's instance pool runs one call per instance. At C > S threads wait "
      "for their session as the OS schedules them, so read the floor's throughput there.")
    w("- **Load** (`slipway_loadgen`, C++): closed loop, C workers, each with its own keep-alive "
      "HTTP connection (TCP_NODELAY) or its own gRPC channel; the request is encoded once; "
      "every response's status is checked and failures are counted, not retried. Each worker "
      "makes one call (opening its connection) before the warm-up starts; the slowest such "
      "first call is the `first call` column (connection set-up, outside the statistics).")
    w("- **Measurement**: %.1f s warm-up (excluded), then %.1f s measured per point; a call "
      "counts when it finishes in the measured window; percentiles by nearest rank over all "
      "calls; throughput = successful calls / measured seconds. Each point runs %d time(s), "
      "points interleaved in the order below; the row shows the run with the median p50 "
      "(errors summed over runs) and the `p50 range` and `req/s range` columns the spread."
      % (args.warmup, args.duration, args.repeat))
    w("- **Shared cores**: the load generator, the server and the floor all run on these %d "
      "logical CPUs, so client CPU time is inside every served latency and throughput is the "
      "machine's, not the server's. `client CPU` is the load generator's (or floor's) CPU "
      "over the measured window as a share of all CPUs; `server CPU` and `machine busy` cover "
      "the whole point including warm-up; machine busy above client + server means other "
      "processes were competing." % (os.cpu_count() or 1))
    w("")
    w("## Results")
    w("")
    w("| C | protocol | requests | errors | req/s | p50 µs | p90 µs | p99 µs | max µs | "
      "p50 over floor µs | p50 / floor | p50 range µs | req/s range | client CPU | server CPU | "
      "machine busy | first call µs |")
    w("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    ncpu = os.cpu_count() or 1
    for r in results:
        f = floor.get(r["concurrency"])
        is_floor = r["tool"] == "ort_floor"
        over = None if is_floor or not f else r["p50_us"] - f["p50_us"]
        ratio = None if is_floor or not f or f["p50_us"] <= 0 else r["p50_us"] / f["p50_us"]
        client_pct = 100.0 * r.get("client_cpu_s", 0.0) / (r["duration_s"] * ncpu)
        w("| %d | %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s–%s | %s–%s | %s%% | %s | "
          "%s%% | %s |" % (
            r["concurrency"], "in-process ORT (floor)" if is_floor else r["protocol"],
            r["requests"], r["errors"], fmt(r["throughput_rps"], 0), fmt(r["p50_us"]),
            fmt(r["p90_us"]), fmt(r["p99_us"]), fmt(r["max_us"]), fmt(over),
            "-" if ratio is None else "%.1fx" % ratio, fmt(r["_p50_min"]), fmt(r["_p50_max"]),
            fmt(r["_rps_min"], 0), fmt(r["_rps_max"], 0), fmt(client_pct, 0),
            "-" if is_floor else fmt(r["_server_cpu_pct"], 0) + "%",
            fmt(r["_machine_busy_pct"], 0), fmt(r.get("first_call_max_us"), 0)))
    w("")
    w("## Targets (concurrency 1)")
    w("")
    w("| target | floor p50 µs | served p50 µs | overhead µs | limit µs | met |")
    w("|---|---:|---:|---:|---:|---|")
    verdicts = []
    f1 = floor.get(1)
    for proto, limit in TARGETS_US.items():
        r = next((x for x in served if x["protocol"] == proto and x["concurrency"] == 1), None)
        if r is None or f1 is None:
            w("| %s p50 within %.0f µs of in-process | - | - | - | %.0f | not measured |"
              % (proto, limit, limit))
            continue
        over = r["p50_us"] - f1["p50_us"]
        met = over <= limit and r["errors"] == 0
        verdicts.append(met)
        w("| %s p50 within %.0f µs of in-process | %s | %s | %s | %.0f | %s |"
          % (proto, limit, fmt(f1["p50_us"]), fmt(r["p50_us"]), fmt(over), limit,
             "**yes**" if met else "**NO**"))
    w("")
    total_errors = sum(r["errors"] for r in results)
    w("Errors across all points: %d. %s" % (
        total_errors, "All targets met." if verdicts and all(verdicts)
        else "Not all targets met." if verdicts else "Targets not evaluated."))
    slow_first = [r for r in served if r.get("first_call_max_us", 0) > 500000]
    overflows = sum(r["_listen_overflows"] for r in results)
    if slow_first or overflows:
        w("")
        w("**Connection set-up**: %d point(s) had a first call slower than 0.5 s (%s); the "
          "kernel counted %d listen-queue overflow(s) (TcpExt ListenOverflows, whole machine) "
          "during the points. A connection whose handshake is dropped by a full accept queue "
          "is retried after ~1 s; `ss -ltn` shows each listener's backlog." % (
              len(slow_first), ", ".join("C=%d %s %.0f ms" % (r["concurrency"], r["protocol"],
                                                             r["first_call_max_us"] / 1000)
                                         for r in slow_first) or "none", overflows))
    w("")
    w("## Reading these numbers")
    w("")
    w("- The overhead column is the whole round trip outside ONNX Runtime: client encode and "
      "send, loopback, server parse, queueing, response encode, client receive and check. "
      "It is an upper bound on the server's own cost, since the client shares the cores.")
    w("- At C=8 there are more requests in flight than instances, so both the floor and the "
      "server queue; compare throughput there, and read latency as queueing plus overhead.")
    w("- Run-to-run spread on this shared machine is large (see the range columns); compare "
      "reports by their ranges, not single numbers.")
    w("- Not covered yet (see PERFORMANCE-NOTES 3.4): confidence intervals, open-loop (rate) "
      "load, a sweep to saturation, larger payloads (e.g. `--model image_cnn`), and a "
      "server-side breakdown of parse / queue / infer / encode.")
    w("- Raw JSON lines: `%s`. Reproduce with the command above." % "foundation.json")
    w("")
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "foundation.md"), "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(args.output_dir, "foundation.json"), "w") as f:
        for r in runs:
            f.write(r["_raw"] + "\n")
    return verdicts


def model_file(repository, model):
    root = os.path.join(repository, model)
    versions = sorted((int(v) for v in os.listdir(root) if v.isdigit()), reverse=True)
    for v in versions:
        path = os.path.join(root, str(v), "model.onnx")
        if os.path.exists(path):
            return path
    raise SystemExit("no <version>/model.onnx under %s" % root)


def main():
    args = parse_args()
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = read("/proc/loadavg").split()[:3]
    machine = machine_facts()
    build = build_facts(args.binary)
    onnx_path = model_file(args.model_repository, args.model)
    per_point_timeout = args.warmup + args.duration + 60
    log_path = os.path.join(tempfile.mkdtemp(prefix="slipway-bench-"), "server.log")
    server = Server(args, log_path)
    results = []
    exit_code = None
    try:
        server.wait_ready(args.model, args.ready_timeout)
        status, body = http_get(server.http_port, "/v2/models/%s/config" % args.model)
        meta = json.loads(body) if status == 200 else {}
        common = ["--duration", str(args.duration), "--warmup", str(args.warmup)]
        for c in args.concurrency:
            cmd = [args.floor, "--model", onnx_path, "--concurrency", str(c)] + common
            points = [cmd]
            for proto in args.protocols:
                port = server.grpc_port if proto == "grpc" else server.http_port
                points.append([args.loadgen, "--protocol", proto, "--host", "127.0.0.1",
                               "--port", str(port), "--http-port", str(server.http_port),
                               "--model", args.model, "--concurrency", str(c)] + common)
            for run in range(args.repeat):
                for cmd in points:
                    r = run_point(cmd, server, per_point_timeout)
                    results.append(r)
                    print("C=%-3d %-12s run %d  p50 %8.1f us  p99 %8.1f us  %9.0f req/s  "
                          "errors %d" % (c, r["protocol"], run + 1, r["p50_us"], r["p99_us"],
                                         r["throughput_rps"], r["errors"]), flush=True)
                if r["_stderr"]:
                    print("    " + r["_stderr"].replace("\n", "\n    "), flush=True)
    except Exception:
        exit_code = server.stop()
        print("server log tail:\n" + read(log_path)[-3000:], file=sys.stderr)
        raise
    exit_code = server.stop()
    finished = datetime.datetime.now(datetime.timezone.utc)
    load_after = read("/proc/loadavg").split()[:3]
    write_report(args, machine, build, meta, results, server, exit_code, started,
                            finished, " ".join(load_before), " ".join(load_after))
    print("wrote %s and %s" % (os.path.join(args.output_dir, "foundation.md"),
                               os.path.join(args.output_dir, "foundation.json")))
    if exit_code != 0:
        print("server exited with %s after SIGTERM; log: %s" % (exit_code, log_path),
              file=sys.stderr)
        return 1
    return 0 if all(r["errors"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
