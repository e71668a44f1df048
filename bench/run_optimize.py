#!/usr/bin/python3
"""`slipway optimize` benchmark: every optimization mode on the example models and on two wider
models, with file sizes, top-1 agreement and in-process latency/throughput at batch 1 and 16,
all from the reports `slipway optimize` writes, in one run on this machine.

    /usr/bin/python3 bench/run_optimize.py        # or: make bench-optimize

Needs build/slipway, the example models (examples/models) and their calibration/evaluation sets
(examples/optimize, from scripts/make_optimize_data.py); the wider models are generated with
PyTorch (seeded): `wide_mlp` (bench/make_bench_models.py, 512 -> 2048 -> 2048 -> 10) and
`wide_cnn` (conv 3 -> 64 -> 128 -> 128 channels on 32x32 images, the image_cnn inputs).
Writes bench/results/optimize.md and optimize.json.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_foundation as rf  # noqa: E402

REPO = rf.REPO
EXAMPLES = os.path.join(REPO, "examples", "models")
DATA = os.path.join(REPO, "examples", "optimize")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--binary", default=os.path.join(REPO, "build", "slipway"))
    p.add_argument("--bench-seconds", type=float, default=2.0,
                   help="measuring time per batch size (both models, alternating rounds)")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    p.add_argument("--skip-wide", action="store_true", help="only the example models")
    p.add_argument("--output-dir", default=os.path.join(REPO, "bench", "results"))
    return p.parse_args()


def make_wide_models(root):
    """wide_mlp and wide_cnn (seeded) plus an evaluation/calibration set for wide_mlp."""
    import torch
    subprocess.run([sys.executable, os.path.join(REPO, "bench", "make_bench_models.py"), root],
                   check=True, capture_output=True)
    torch.manual_seed(0)

    class WideCnn(torch.nn.Module):
        def __init__(self, c=64):
            super().__init__()
            self.c1 = torch.nn.Conv2d(3, c, 3, padding=1)
            self.c2 = torch.nn.Conv2d(c, 2 * c, 3, padding=1)
            self.c3 = torch.nn.Conv2d(2 * c, 2 * c, 3, padding=1)
            self.pool = torch.nn.MaxPool2d(2)
            self.gap = torch.nn.AdaptiveAvgPool2d(1)
            self.fc = torch.nn.Linear(2 * c, 10)

        def forward(self, image):
            x = self.pool(torch.relu(self.c1(image)))
            x = self.pool(torch.relu(self.c2(x)))
            x = torch.relu(self.c3(x))
            return self.fc(torch.flatten(self.gap(x), 1))

    cnn = os.path.join(root, "wide_cnn.onnx")
    with torch.no_grad():
        torch.onnx.export(WideCnn().eval(), torch.rand(1, 3, 32, 32), cnn, input_names=["image"],
                          output_names=["logits"], opset_version=13,
                          dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    rng = np.random.default_rng(11)
    np.save(os.path.join(root, "wide_mlp_calibration.npy"), rng.standard_normal((32, 512)).astype(np.float32))
    np.save(os.path.join(root, "wide_mlp_eval.npy"), rng.standard_normal((128, 512)).astype(np.float32))
    return os.path.join(root, "wide_mlp", "1", "model.onnx"), cnn


def save_external(path, root, name):
    """The model saved as large models are: graph in NAME.onnx, weights in NAME.onnx.data."""
    import onnx
    d = os.path.join(root, "external", name)
    os.makedirs(d, exist_ok=True)
    dest = os.path.join(d, name + ".onnx")
    onnx.save_model(onnx.load(path), dest, save_as_external_data=True, all_tensors_to_one_file=True,
                    location=name + ".onnx.data", size_threshold=0)
    return dest


def cases(wide, tmp):
    bc = os.path.join(EXAMPLES, "breast_cancer", "1", "model.onnx")
    cnn = os.path.join(EXAMPLES, "image_cnn", "1", "model.onnx")
    multi = os.path.join(EXAMPLES, "multi_input", "2", "model.onnx")
    bc_data = ["--eval", os.path.join(DATA, "breast_cancer", "eval.jsonl")]
    bc_cal = ["--calibration", os.path.join(DATA, "breast_cancer", "calibration.jsonl")]
    img_data = ["--eval", os.path.join(DATA, "image_cnn", "eval.npy")]
    img_cal = ["--calibration", os.path.join(DATA, "image_cnn", "calibration.npy")]
    out = []

    def add(model_name, path, data, cal, conv):
        dyn = ["--quantize", "dynamic"] + (["--include-conv"] if conv else [])
        out.extend([
            (model_name, "dynamic int8", path, dyn + data),
            (model_name, "dynamic int8, weights file", save_external(path, tmp, model_name),
             dyn + ["--external-data"] + data),
            (model_name, "dynamic int8, per-channel", path, dyn + ["--per-channel"] + data),
            (model_name, "static int8, min-max", path, ["--quantize", "static", "--per-channel"] + cal + data),
            (model_name, "static int8, percentile 99.99", path,
             ["--quantize", "static", "--per-channel", "--calibration-method", "percentile"] + cal + data),
            (model_name, "float16 weights", path, ["--float16"] + data),
            (model_name, "graph level basic", path, ["--graph-level", "basic"] + data),
        ])

    add("breast_cancer", bc, bc_data, bc_cal, False)
    add("image_cnn", cnn, img_data, img_cal, True)
    out.append(("multi_input", "dynamic int8", multi,
                ["--quantize", "dynamic", "--eval", os.path.join(DATA, "multi_input", "eval.jsonl")]))
    if wide:
        mlp, wcnn = wide
        root = os.path.dirname(os.path.dirname(os.path.dirname(mlp)))
        add("wide_mlp", mlp, ["--eval", os.path.join(root, "wide_mlp_eval.npy")],
            ["--calibration", os.path.join(root, "wide_mlp_calibration.npy")], False)
        add("wide_cnn", wcnn, img_data, img_cal, True)
    return out


def size(b):
    if b >= 1 << 20:
        return "%.1f MiB" % (b / 1048576.0)
    if b >= 10 << 10:
        return "%.1f KiB" % (b / 1024.0)
    return "%d B" % b


def point(report, batch):
    for p in report["performance"]["points"]:
        if p["batch"] == batch:
            return p
    return None


def write_report(args, machine, build, results, started, finished):
    lines = ["# `slipway optimize` benchmark", ""]
    lines.append("- **Date**: %s (UTC), %d s wall" % (started.strftime("%Y-%m-%d %H:%M:%S"),
                                                    (finished - started).total_seconds()))
    lines.append("- **Machine**: %s; %s logical CPUs; %.1f GiB; %s, kernel %s" % (
        machine["cpu"], machine["logical_cpus"], machine["memory_gib"], machine["os"], machine["kernel"]))
    lines.append("- **Build**: slipway `%s`, %s, %s; ONNX Runtime 1.31.1 (CPU)" % (
        build["commit"], build["build_type"], build["compiler"]))
    lines.append("- **Command**: `/usr/bin/python3 bench/run_optimize.py`; each row is one `slipway optimize` "
                 "run: in-process ONNX Runtime (the server's session options), %d intra-op thread(s), "
                 "original and optimized model measured in alternating rounds, %.1f s per batch size"
                 % (args.threads, args.bench_seconds))
    lines.append("- **Sizes**: whole file and initializer bytes (the weights); ratio = before / after")
    lines.append("- **Agreement**: share of evaluation examples whose top-1 class is the original's "
                 "(breast_cancer: the 143 held-out rows with labels; image_cnn and wide_cnn: 64 digit "
                 "images; wide_mlp: 128 random rows; multi_input: 64 rows); speedup = p50 before / after")
    lines.append("")
    lines.append("| model | mode | file before → after | file ratio | weights ratio | top-1 agreement | "
                 "max abs diff | task acc. before → after | b1 p50 µs before → after | b1 speedup | "
                 "b16 rows/s before → after | b16 speedup |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        rep = r["report"]
        if rep is None:
            lines.append("| %s | %s | failed: %s |||||||||" % (r["model"], r["mode"], r["error"]))
            continue
        s = rep["size"]
        a = rep["accuracy"]
        judged = next(o for o in a["outputs"] if o["name"] == a["judged_output"])
        p1, p16 = point(rep, 1), point(rep, 16)
        task = "—"
        if a["accuracy_before"] is not None:
            task = "%.1f%% → %.1f%%" % (100 * a["accuracy_before"], 100 * a["accuracy_after"])
        lines.append("| %s | %s | %s → %s | %.2fx | %.2fx | %.2f%% | %.3g | %s | %.1f → %.1f | %.2fx | %s | %s |" % (
            r["model"], r["mode"], size(s["file_bytes_before"]), size(s["file_bytes_after"]), s["file_ratio"],
            s["weight_ratio"], 100 * a["top1_agreement"], judged["max_abs_diff"], task,
            p1["before"]["p50_us"], p1["after"]["p50_us"], p1["speedup"],
            "%.0f → %.0f" % (p16["before"]["rows_per_second"], p16["after"]["rows_per_second"]) if p16 else "—",
            "%.2fx" % p16["speedup"] if p16 else "—"))
    lines.append("")
    lines.append("## Weights file (external data)")
    lines.append("")
    lines.append("Rows \"weights file\": the input is the model saved with its weights in a file beside it "
                 "(ONNX external data, as `onnx.save_model(..., save_as_external_data=True)` writes it), "
                 "and `--external-data` writes the result the same way; sizes of the two weights files "
                 "as on disk.")
    lines.append("")
    lines.append("| model | mode | weights file before → after | smaller by | model (graph) file before → after |")
    lines.append("|---|---|---:|---:|---:|")
    for r in results:
        rep = r["report"]
        if rep is None or not rep["size"].get("data_file"):
            continue
        s = rep["size"]
        lines.append("| %s | %s | %s → %s | %.2fx | %s → %s |" % (
            r["model"], r["mode"], size(s["data_file_bytes_before"]), size(s["data_file_bytes_after"]),
            s["data_file_bytes_before"] / s["data_file_bytes_after"], size(s["file_bytes_before"]),
            size(s["file_bytes_after"])))
    lines.append("")
    lines.append("## Static against dynamic quantization on the CNNs")
    lines.append("")
    by = {(r["model"], r["mode"]): r["report"] for r in results if r["report"]}
    for model in ("image_cnn", "wide_cnn"):
        st = by.get((model, "static int8, min-max"))
        dy = by.get((model, "dynamic int8"))
        if not st or not dy:
            continue
        for batch in (1, 16):
            ps, pd = point(st, batch), point(dy, batch)
            lines.append("- `%s`, batch %d: static p50 %.1f µs, dynamic p50 %.1f µs, float %.1f µs: static is "
                         "%.2fx the speed of dynamic" % (model, batch, ps["after"]["p50_us"], pd["after"]["p50_us"],
                                                        ps["before"]["p50_us"], pd["after"]["p50_us"] / ps["after"]["p50_us"]))
    lines.append("")
    lines.append(EXPLANATION)
    path = os.path.join(args.output_dir, "optimize.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(args.output_dir, "optimize.json"), "w") as f:
        json.dump({"machine": machine, "build": build, "started": started.isoformat(),
                   "results": results}, f, indent=1)
        f.write("\n")
    return path


EXPLANATION = """## Reading the figures

- **Dynamic int8** stores MatMul/Gemm weights as int8 and quantizes activations at run time
  (`DynamicQuantizeLinear` → `MatMulInteger`, which ONNX Runtime fuses into `DynamicQuantizeMatMul`);
  with `--include-conv` Conv weights are stored as int8 and restored to float at load, so Conv
  keeps ONNX Runtime's fastest float kernels. The weights shrink about 4x. On the small example
  models the *file* shrinks much less: their graph structure (names, shapes, attributes) is a
  large share of the bytes, and quantization adds nodes; on the wide models file and weights
  shrink alike. Speed: quantizing the activations of every call costs a fixed few µs,
  which only pays off on large matrices (`wide_mlp`).
- **Static int8** (QDQ, calibrated) lets ONNX Runtime run `QLinearConv`, int8 `MaxPool`,
  `QLinearGlobalAveragePool` and `QGemm`. On `image_cnn` (3 → 8 → 16 channels) it is *slower*
  than float and dynamic: with so few channels the int8 convolution cannot beat ONNX Runtime's
  float NCHWc kernels, and quantizing the input plus converting layouts costs more than the
  arithmetic saves. With realistic channel counts (`wide_cnn`, 64 → 128) static int8 is much
  faster than float and dynamic (figures above). The report of a slower result says so in its notes.
- **float16** halves the weights on disk; compute stays float32 (ONNX Runtime's CPU provider has
  few float16 kernels), so speed is unchanged and answers move by ~1e-4.
- **multi_input** has no weights: nothing is quantized, the report says so.
- Latency is in-process (no HTTP), one run on a shared 2-core machine: differences under ~5%
  are noise.
"""


def main():
    args = parse_args()
    if not os.path.exists(args.binary):
        print("missing %s: build it first (make build)" % args.binary, file=sys.stderr)
        return 2
    started = datetime.datetime.utcnow()
    machine = rf.machine_facts()
    build = rf.build_facts(args.binary)
    results = []
    with tempfile.TemporaryDirectory(prefix="slipway-bench-optimize-") as tmp:
        wide = None if args.skip_wide else make_wide_models(tmp)
        for i, (model, mode, path, extra) in enumerate(cases(wide, tmp)):
            out = os.path.join(tmp, "out%d.onnx" % i)
            cmd = [args.binary, "optimize", path, "-o", out, "--bench-seconds", str(args.bench_seconds),
                   "--threads", str(args.threads)] + extra
            t0 = time.monotonic()
            for _ in range(10):  # the binary may be being relinked by a concurrent build
                try:
                    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
                except PermissionError:
                    time.sleep(15)
                    continue
                if r.returncode not in (126, 127):
                    break
                time.sleep(15)
            entry = {"model": model, "mode": mode, "command": " ".join(cmd[1:]).replace(tmp, "$TMP"),
                     "seconds": round(time.monotonic() - t0, 1), "report": None, "error": None}
            if r.returncode != 0:
                entry["error"] = r.stderr.strip()
                print("%s / %s: FAILED %s" % (model, mode, entry["error"]), file=sys.stderr)
            else:
                with open(os.path.join(tmp, "out%d.report.json" % i)) as f:
                    entry["report"] = json.loads(f.read().replace(tmp, "$TMP").replace(REPO + "/", ""))
                entry["report"]["output"] = None
                a = entry["report"]["accuracy"]
                print("%-14s %-30s weights %.2fx  agreement %.2f%%" % (
                    model, mode, entry["report"]["size"]["weight_ratio"], 100 * a["top1_agreement"]))
            results.append(entry)
    finished = datetime.datetime.utcnow()
    path = write_report(args, machine, build, results, started, finished)
    print("wrote %s" % path)
    return 0 if all(r["report"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
