"""`slipway optimize`: graph optimization, dynamic and static int8 quantization and float16 weights
on the example models, the report it writes, serving its output, handing it to the rollout
machinery as a candidate version, and clear refusals of bad input.

The example models and their calibration/evaluation sets (examples/optimize, written by
scripts/make_optimize_data.py) are read in place; everything written goes to tmp_path.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import requests
from onnx import TensorProto, helper, numpy_helper

import slipway_testlib as lib

EXAMPLES = lib.REPO_ROOT / "examples" / "models"
DATA = lib.REPO_ROOT / "examples" / "optimize"
RUN_TIMEOUT_S = 600 if lib.SANITIZED else 180

# Top-1 agreement with the original each example must keep on its evaluation set.
AGREEMENT_FLOOR = {"breast_cancer": 0.98, "image_cnn": 0.95, "multi_input": 1.0}

BC = EXAMPLES / "breast_cancer" / "1" / "model.onnx"
CNN = EXAMPLES / "image_cnn" / "1" / "model.onnx"
MULTI = EXAMPLES / "multi_input" / "2" / "model.onnx"

# name -> (model, arguments)
MODES = {
    "bc_dynamic": (BC, ["--quantize", "dynamic", "--eval", DATA / "breast_cancer" / "eval.jsonl"]),
    "bc_dynamic_pc": (BC, ["--quantize", "dynamic", "--per-channel",
                           "--eval", DATA / "breast_cancer" / "eval.jsonl"]),
    "bc_static": (BC, ["--quantize", "static", "--calibration", DATA / "breast_cancer" / "calibration.jsonl",
                       "--eval", DATA / "breast_cancer" / "eval.jsonl"]),
    "bc_static_pct": (BC, ["--quantize", "static", "--calibration-method", "percentile",
                           "--percentile", "99.9", "--per-channel",
                           "--calibration", DATA / "breast_cancer" / "calibration.jsonl",
                           "--eval", DATA / "breast_cancer" / "eval.jsonl"]),
    "bc_fp16": (BC, ["--float16", "--eval", DATA / "breast_cancer" / "eval.jsonl"]),
    "cnn_dynamic": (CNN, ["--quantize", "dynamic", "--include-conv", "--eval", DATA / "image_cnn" / "eval.npy"]),
    "cnn_static": (CNN, ["--quantize", "static", "--per-channel",
                         "--calibration", DATA / "image_cnn" / "calibration.npy",
                         "--eval", DATA / "image_cnn" / "eval.npy"]),
    "cnn_fp16": (CNN, ["--float16", "--eval", DATA / "image_cnn" / "eval.npy"]),
    "cnn_graph": (CNN, ["--graph-level", "basic", "--eval", DATA / "image_cnn" / "eval.npy"]),
    "multi_dynamic": (MULTI, ["--quantize", "dynamic", "--eval", DATA / "multi_input" / "eval.jsonl"]),
}


def run_optimize(*args, timeout=RUN_TIMEOUT_S):
    cmd = [lib.BINARY, "optimize", *[str(a) for a in args]]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=lib.sanitizer_env())


@pytest.fixture(scope="module")
def optimized(tmp_path_factory):
    """Runs every mode once: name -> (output path, report dict, stdout)."""
    out = tmp_path_factory.mktemp("optimized")
    results = {}
    for name, (model, args) in MODES.items():
        path = out / f"{name}.onnx"
        r = run_optimize(model, "-o", path, "--bench-seconds", "0.3", *args)
        assert r.returncode == 0, f"{name}: rc {r.returncode}\n{r.stdout}\n{r.stderr}"
        report = json.loads((out / f"{name}.report.json").read_text())
        assert (out / f"{name}.report.md").read_text().startswith("# slipway optimize")
        results[name] = (path, report, r.stdout)
    return results


def model_of(name: str) -> str:
    return {"bc": "breast_cancer", "cnn": "image_cnn", "multi": "multi_input"}[name.split("_")[0]]


# ----------------------------------------------------------------------------- the report

def test_report_has_sizes_speed_and_accuracy(optimized):
    for name, (path, report, stdout) in optimized.items():
        assert report["output"] == str(path)
        size = report["size"]
        assert size["file_bytes_after"] == path.stat().st_size, name
        assert size["file_bytes_before"] > 0 and size["weight_bytes_before"] >= 0
        points = report["performance"]["points"]
        assert [p["batch"] for p in points] == [1, 16], name
        for p in points:
            for side in ("before", "after"):
                assert p[side]["p50_us"] > 0 and p[side]["rows_per_second"] > 0 and p[side]["runs"] >= 3
            assert p["speedup"] > 0
        acc = report["accuracy"]
        assert acc["examples"] > 0 and acc["judged_output"]
        assert 0.0 <= acc["top1_agreement"] <= 1.0
        for o in acc["outputs"]:
            assert o["max_abs_diff"] >= o["mean_abs_diff"] >= 0
        assert "top-1 agreement" in stdout


@pytest.mark.parametrize("name", sorted(MODES))
def test_top1_agreement_above_the_floor(optimized, name):
    report = optimized[name][1]
    floor = AGREEMENT_FLOOR[model_of(name)]
    assert report["accuracy"]["top1_agreement"] >= floor, (name, report["accuracy"])


def test_dynamic_int8_makes_weights_at_least_3x_smaller(optimized):
    for name in ("bc_dynamic", "cnn_dynamic"):
        size = optimized[name][1]["size"]
        assert size["weight_ratio"] >= 3.0, (name, size)
        # The whole file shrinks less on these small examples: their graph structure (names,
        # shapes, node attributes) is a large share of the bytes, and quantization adds nodes.
        assert size["file_ratio"] > 1.4, (name, size)
    # per-channel adds one scale per output column
    assert optimized["bc_dynamic_pc"][1]["size"]["weight_ratio"] > 2.5


def test_dynamic_int8_rewrites_the_weighted_nodes(optimized):
    r = optimized["bc_dynamic"][1]["rewrite"]
    assert r["weights"] == 2 and len(r["nodes"]) == 2 and not r["skipped"]
    r = optimized["cnn_dynamic"][1]["rewrite"]
    assert r["weights"] == 3  # two Conv weights and the Gemm weight
    m = onnx.load(str(optimized["bc_dynamic"][0]))
    ops = [n.op_type for n in m.graph.node]
    assert "MatMulInteger" in ops and "DynamicQuantizeLinear" in ops and "Gemm" not in ops
    assert any(i.data_type == TensorProto.INT8 for i in m.graph.initializer)
    assert {p.key: p.value for p in m.metadata_props}["slipway.optimize"].startswith("dynamic int8")


def test_task_accuracy_reported_with_labels(optimized):
    acc = optimized["bc_dynamic"][1]["accuracy"]
    assert acc["labelled"] == 143 and acc["examples"] == 143
    assert acc["accuracy_before"] > 0.9 and acc["accuracy_after"] > 0.9
    assert abs(acc["accuracy_before"] - acc["accuracy_after"]) <= 0.02
    # the CNN's examples carry no labels
    assert optimized["cnn_static"][1]["accuracy"]["accuracy_before"] is None


def test_static_quantization_is_qdq_with_calibrated_activations(optimized):
    report = optimized["cnn_static"][1]
    assert report["rewrite"]["activations"] >= 4
    assert "calibration on 32 examples" in report["method"]
    m = onnx.load(str(optimized["cnn_static"][0]))
    ops = [n.op_type for n in m.graph.node]
    assert ops.count("QuantizeLinear") >= 4 and "DequantizeLinear" in ops
    assert "Relu" not in ops, "each Relu is absorbed into its Conv's output quantization"
    assert optimized["bc_static_pct"][1]["settings"]["calibration_method"] == "percentile"


def test_static_beats_dynamic_speed_on_the_cnn_or_says_why(optimized):
    static = {p["batch"]: p for p in optimized["cnn_static"][1]["performance"]["points"]}
    dynamic = {p["batch"]: p for p in optimized["cnn_dynamic"][1]["performance"]["points"]}
    faster = static[16]["after"]["p50_us"] < dynamic[16]["after"]["p50_us"]
    notes = " ".join(optimized["cnn_static"][1]["notes"])
    assert faster or "slower" in notes, (static, dynamic, notes)


def test_float16_halves_weights_and_keeps_answers(optimized):
    for name in ("bc_fp16", "cnn_fp16"):
        report = optimized[name][1]
        assert report["size"]["weight_ratio"] > 1.6, report["size"]
        assert report["accuracy"]["top1_agreement"] == 1.0
        assert all(o["max_abs_diff"] < 1e-2 for o in report["accuracy"]["outputs"])
    m = onnx.load(str(optimized["cnn_fp16"][0]))
    assert any(i.data_type == TensorProto.FLOAT16 for i in m.graph.initializer)


def test_graph_optimization_keeps_answers(optimized):
    report = optimized["cnn_graph"][1]
    assert report["graph_optimization"] == "basic"
    assert report["accuracy"]["top1_agreement"] == 1.0
    assert report["accuracy"]["outputs"][0]["max_abs_diff"] < 1e-4


def test_a_model_without_weights_is_left_as_it_is_and_says_so(optimized):
    report = optimized["multi_dynamic"][1]
    assert report["rewrite"]["weights"] == 0
    assert any("nothing was quantized" in n for n in report["notes"])
    assert all(o["max_abs_diff"] == 0 for o in report["accuracy"]["outputs"])


# ----------------------------------------------------------------------------- serving the output

def test_optimized_models_load_and_serve(optimized, tmp_path):
    repo = tmp_path / "repo"
    served = {"bc_dynamic": "breast_cancer", "bc_static": "breast_cancer", "cnn_static": "image_cnn",
              "cnn_dynamic": "image_cnn", "cnn_fp16": "image_cnn"}
    for name in served:
        d = repo / name / "1"
        d.mkdir(parents=True)
        shutil.copy(optimized[name][0], d / "model.onnx")
    serve_and_check(repo, served, tmp_path)


# ----------------------------------------------------------------------------- external data

def save_with_external_data(src: Path, dest: Path) -> Path:
    """The example saved the way large models are: graph in DEST, weights in DEST.data beside it."""
    m = onnx.load(str(src))
    onnx.save_model(m, str(dest), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=dest.name + ".data", size_threshold=0)
    assert (dest.parent / (dest.name + ".data")).is_file()
    return dest


def serve_and_check(repo: Path, served: dict, tmp_path: Path):
    """Serves repo and checks each model answers its example's expected outputs."""
    srv = lib.start_live(repo, log_dir=tmp_path, name="served")
    try:
        for name, example in served.items():
            with open(EXAMPLES / example / "1" / "expected.json") as f:
                exp = json.load(f)
            body = {"inputs": [{"name": n, "datatype": t["datatype"], "shape": t["shape"], "data": t["data"]}
                               for n, t in exp["inputs"].items()]}
            r = requests.post(f"{srv.http_url}/v2/models/{name}/infer", json=body, timeout=60)
            assert r.status_code == 200, (name, r.text)
            got = {o["name"]: o for o in r.json()["outputs"]}
            for out_name, want in exp["outputs"].items():
                a = np.array(got[out_name]["data"], dtype=np.float64).reshape(want["shape"])
                e = np.array(want["data"], dtype=np.float64).reshape(want["shape"])
                if want["datatype"] == "FP32":
                    np.testing.assert_allclose(a, e, atol=0.05, err_msg=f"{name}:{out_name}")
                    np.testing.assert_array_equal(a.argmax(axis=-1), e.argmax(axis=-1))
                else:
                    np.testing.assert_array_equal(a, e)
    finally:
        lib.stop_ok(srv)


@pytest.mark.parametrize("model,extra", [(BC, []), (CNN, ["--include-conv"])], ids=["breast_cancer", "image_cnn"])
def test_dynamic_int8_weights_file_is_at_least_3x_smaller(tmp_path, model, extra):
    original = save_with_external_data(model, tmp_path / "original.onnx")
    before = (tmp_path / "original.onnx.data").stat().st_size
    out = tmp_path / "out" / "int8.onnx"
    r = run_optimize(original, "-o", out, "--quantize", "dynamic", *extra, "--external-data", "--no-bench")
    assert r.returncode == 0, r.stdout + r.stderr
    data = out.parent / "int8.onnx.data"
    after = data.stat().st_size
    assert before >= 3 * after, (before, after)
    size = json.loads((out.parent / "int8.report.json").read_text())["size"]
    assert size["data_file"] == "int8.onnx.data"
    assert size["data_file_bytes_before"] == before and size["data_file_bytes_after"] == after
    assert size["weight_bytes_before"] == before  # the input's weights were read from its data file
    assert "weights  in int8.onnx.data" in r.stdout
    # the graph file names its data file, holds no weight bytes itself, and ONNX reads both back
    m = onnx.load(str(out), load_external_data=False)
    external = [t for t in m.graph.initializer if t.data_location == TensorProto.EXTERNAL]
    assert external and all(not t.raw_data for t in external)
    assert {e.value for t in external for e in t.external_data if e.key == "location"} == {"int8.onnx.data"}
    full = onnx.load(str(out))
    assert sum(len(t.raw_data) for t in full.graph.initializer) == after
    # and the server loads it from a repository, weights file beside the model
    example = "breast_cancer" if model == BC else "image_cnn"
    d = tmp_path / "repo" / example / "1"
    d.mkdir(parents=True)
    shutil.copy(out, d / "model.onnx")
    shutil.copy(data, d / data.name)
    serve_and_check(tmp_path / "repo", {example: example}, tmp_path)


def test_external_data_threshold_keeps_small_tensors_inline(tmp_path):
    out = tmp_path / "int8.onnx"
    r = run_optimize(BC, "-o", out, "--quantize", "dynamic", "--external-data",
                     "--external-data-threshold", "256", "--no-bench")
    assert r.returncode == 0, r.stdout + r.stderr
    m = onnx.load(str(out), load_external_data=False)
    for t in m.graph.initializer:
        n = len(t.raw_data)
        if t.data_location == TensorProto.EXTERNAL:
            length = int({e.key: e.value for e in t.external_data}["length"])
            assert length >= 256, t.name
        else:
            assert n < 256, t.name
    assert any(t.data_location == TensorProto.EXTERNAL for t in m.graph.initializer)


def test_candidate_with_external_data_is_written_whole_and_serves(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    copy_example(repo, "breast_cancer")
    r = run_optimize(BC, "--as-candidate", repo / "breast_cancer", "--quantize", "dynamic",
                     "--external-data", "--no-bench")
    assert r.returncode == 0, r.stdout + r.stderr
    v2 = repo / "breast_cancer" / "2"
    assert (v2 / "model.onnx").is_file() and (v2 / "model.onnx.data").is_file()
    report = json.loads((v2 / "optimize_report.json").read_text())
    assert report["size"]["data_file"] == "model.onnx.data"
    assert report["size"]["data_file_bytes_after"] == (v2 / "model.onnx.data").stat().st_size
    shutil.rmtree(repo / "breast_cancer" / "1")
    serve_and_check(repo, {"breast_cancer": "breast_cancer"}, tmp_path)


def test_bad_external_data_gets_a_clear_error_and_no_output(tmp_path):
    original = save_with_external_data(BC, tmp_path / "original.onnx")
    # a location that climbs out of the model's folder
    m = onnx.load(str(original), load_external_data=False)
    for t in m.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = "../secret.data"
    escaping = tmp_path / "escaping.onnx"
    onnx.save(m, str(escaping))
    missing = tmp_path / "missing" / "model.onnx"
    missing.parent.mkdir()
    shutil.copy(original, missing)  # without its data file
    short = tmp_path / "short" / "model.onnx"
    short.parent.mkdir()
    shutil.copy(original, short)
    (short.parent / "original.onnx.data").write_bytes((tmp_path / "original.onnx.data").read_bytes()[:100])
    for model, message in ((escaping, "not a file beside the model"), (missing, "cannot be read"),
                           (short, "which holds only 100")):
        out = tmp_path / "out" / "x.onnx"
        r = run_optimize(model, "-o", out, "--quantize", "dynamic", "--external-data", "--no-bench")
        assert r.returncode == 1, (model, r.stdout, r.stderr)
        assert message in r.stderr, (model, r.stderr)
        assert not (tmp_path / "out").exists()
    r = run_optimize(BC, "-o", tmp_path / "y.onnx", "--quantize", "dynamic", "--external-data-threshold", "10")
    assert r.returncode == 2 and not (tmp_path / "y.onnx").exists()


# ----------------------------------------------------------------------------- candidates

def copy_example(repo: Path, model: str):
    """The example's version 1 and config (not a link: candidates are written into it)."""
    shutil.copytree(EXAMPLES / model, repo / model)
    for extra in (repo / model).iterdir():
        if extra.is_dir() and extra.name != "1":
            shutil.rmtree(extra)


def routing(url: str, model: str) -> dict:
    r = requests.get(f"{url}/v2/models/{model}/routing", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def eval_bodies():
    bodies = []
    with open(DATA / "breast_cancer" / "eval.jsonl") as f:
        for line in f:
            row = json.loads(line)["inputs"]["features"]
            bodies.append({"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 30], "data": row}]})
    return bodies


def test_candidate_in_poll_mode_is_canaried_and_promoted_by_the_guards(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    copy_example(repo, "breast_cancer")
    srv = lib.start_live(repo, log_dir=tmp_path, name="poll",
                         extra_args=["--model-control-mode", "poll", "--repository-poll-secs", "0.3"])
    try:
        lib.wait_for(lambda: routing(srv.http_url, "breast_cancer")["labels"].get("stable") == 1, what="stable 1")
        r = run_optimize(BC, "--as-candidate", repo / "breast_cancer", "--quantize", "dynamic",
                         "--eval", DATA / "breast_cancer" / "eval.jsonl", "--min-agreement", "0.98",
                         "--bench-seconds", "0.3")
        assert r.returncode == 0, r.stdout + r.stderr
        vdir = repo / "breast_cancer" / "2"
        assert (vdir / "model.onnx").is_file()
        report = json.loads((vdir / "optimize_report.json").read_text())
        assert report["candidate"] == {"model": "breast_cancer", "version": 2}
        assert report["output"] == str(vdir / "model.onnx")
        assert (vdir / "optimize_report.md").is_file()
        assert not list(repo.glob(".staging-*")), "no staging folder is left behind"
        assert "wrote version 2" in r.stdout
        # the server's scan finds it and the example's rollout plan takes over
        lib.wait_for(lambda: (routing(srv.http_url, "breast_cancer").get("rollout") or {}).get("candidate") == 2,
                 what="a rollout of version 2")
        bodies = eval_bodies()
        deadline = time.monotonic() + 120
        i = 0
        with requests.Session() as s:
            while time.monotonic() < deadline:
                view = routing(srv.http_url, "breast_cancer")
                if view["rollout"]["state"] != "running":
                    break
                for _ in range(50):
                    resp = s.post(f"{srv.http_url}/v2/models/breast_cancer/infer", json=bodies[i % len(bodies)],
                                  timeout=30)
                    assert resp.status_code == 200, resp.text
                    i += 1
        view = routing(srv.http_url, "breast_cancer")
        assert view["rollout"]["state"] == "completed", view
        assert view["labels"]["stable"] == 2
    finally:
        lib.stop_ok(srv)


def test_candidate_in_explicit_mode_is_picked_up_by_a_load(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    copy_example(repo, "image_cnn")
    srv = lib.start_live(repo, log_dir=tmp_path, name="explicit")
    try:
        r = run_optimize(CNN, "--as-candidate", repo / "image_cnn", "--quantize", "static",
                         "--calibration", DATA / "image_cnn" / "calibration.npy", "--no-bench")
        assert r.returncode == 0, r.stdout + r.stderr
        assert (repo / "image_cnn" / "2" / "model.onnx").is_file()
        resp = requests.post(f"{srv.http_url}/v2/repository/models/image_cnn/load", json={}, timeout=60)
        assert resp.status_code == 200, resp.text
        lib.wait_for(lambda: requests.get(f"{srv.http_url}/v2/models/image_cnn/versions/2/ready",
                                      timeout=5).status_code == 200, what="version 2 ready")
        resp = requests.post(f"{srv.http_url}/v2/models/image_cnn/versions/2/infer", timeout=30,
                             json={"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 3, 32, 32],
                                               "data": [0.5] * 3072}]})
        assert resp.status_code == 200, resp.text
        # a second candidate takes the next number
        r = run_optimize(CNN, "--as-candidate", repo / "image_cnn", "--float16", "--no-bench")
        assert r.returncode == 0, r.stderr
        assert (repo / "image_cnn" / "3" / "model.onnx").is_file()
    finally:
        lib.stop_ok(srv)


# ----------------------------------------------------------------------------- bad input

def opset_model(tmp_path: Path, opset: int) -> Path:
    w = numpy_helper.from_array(np.ones((4, 3), np.float32), "W")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 3])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    path = tmp_path / f"opset{opset}.onnx"
    onnx.save(m, str(path))
    return path


def bad_cases(tmp_path: Path):
    not_onnx = tmp_path / "notes.onnx"
    not_onnx.write_text("this is not an ONNX model\n")
    wrong_names = tmp_path / "wrong_names.jsonl"
    wrong_names.write_text(json.dumps({"inputs": {"pixels": [0.0] * 30}}) + "\n")
    wrong_count = tmp_path / "wrong_count.jsonl"
    wrong_count.write_text(json.dumps({"inputs": {"features": [0.0] * 30}}) + "\n" +
                           json.dumps({"inputs": {"features": [0.0] * 29}}) + "\n")
    return {
        "not an ONNX file": ([not_onnx, "--quantize", "dynamic"], "not an ONNX model"),
        "a broken model": ([lib.MODELS_DIR / "broken" / "1" / "model.onnx", "--float16"], "not an ONNX model"),
        "opset too old": ([opset_model(tmp_path, 9), "--quantize", "dynamic"], "opset 9"),
        "opset too new": ([opset_model(tmp_path, 99), "--quantize", "dynamic"], "opset 99"),
        "calibration of another model": ([BC, "--quantize", "static", "--calibration",
                                          DATA / "image_cnn" / "calibration.npy"], "the model takes [30]"),
        "calibration with unknown inputs": ([BC, "--quantize", "static", "--calibration", wrong_names],
                                            "'pixels' is not an input"),
        "calibration with a short row": ([BC, "--quantize", "static", "--calibration", wrong_count],
                                         "line 2"),
        "npy calibration for several inputs": ([MULTI, "--quantize", "static", "--calibration",
                                                DATA / "image_cnn" / "calibration.npy"], "one input"),
        "evaluation set of another model": ([CNN, "--float16", "--eval", DATA / "breast_cancer" / "eval.jsonl"],
                                            "'features' is not an input"),
    }


def test_bad_input_gets_a_clear_error_and_no_output(tmp_path):
    for what, (args, message) in bad_cases(tmp_path).items():
        out = tmp_path / "out" / "model.onnx"
        r = run_optimize(*args, "-o", out, "--no-bench")
        assert r.returncode == 1, (what, r.returncode, r.stdout, r.stderr)
        assert message in r.stderr, (what, r.stderr)
        assert r.stderr.startswith("slipway optimize: "), (what, r.stderr)
        assert not out.exists() and not (tmp_path / "out").exists(), what
        assert not list(tmp_path.glob("**/*.report.*")), what


def test_bad_input_writes_no_candidate_version(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    copy_example(repo, "breast_cancer")
    r = run_optimize(BC, "--as-candidate", repo / "breast_cancer", "--quantize", "static",
                     "--calibration", DATA / "multi_input" / "calibration.jsonl", "--no-bench")
    assert r.returncode == 1 and "is not an input" in r.stderr, r.stderr
    assert sorted(p.name for p in (repo / "breast_cancer").iterdir()) == ["1", "config.yaml"]
    assert not list(repo.glob(".staging-*"))
    r = run_optimize(BC, "--as-candidate", repo / "no_such_model", "--float16", "--no-bench")
    assert r.returncode == 1 and "no_such_model" in r.stderr, r.stderr


def test_usage_errors_exit_2(tmp_path):
    for args in (["--quantize", "dynamic"],                         # no -o / --as-candidate
                 ["-o", tmp_path / "x.onnx"],                       # nothing to do
                 ["-o", tmp_path / "x.onnx", "--quantize", "static"],  # no calibration
                 ["-o", tmp_path / "x.onnx", "--quantize", "dynamic", "--float16"],
                 ["-o", tmp_path / "x.onnx", "--quantize", "int4"]):
        r = run_optimize(BC, *args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
    assert not list(tmp_path.iterdir())


def test_min_agreement_floor_refuses_to_write(tmp_path):
    # y = x @ [[1.0, 1.001]]: int8 weights make both scores equal, so the top-1 class changes.
    w = numpy_helper.from_array(np.array([[1.0, 1.001]], np.float32), "W")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 2])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    model = tmp_path / "close_call.onnx"
    onnx.save(m, str(model))
    evalset = tmp_path / "eval.jsonl"
    evalset.write_text(json.dumps({"inputs": {"x": [1.0]}}) + "\n")
    out = tmp_path / "out.onnx"
    r = run_optimize(model, "-o", out, "--quantize", "dynamic", "--eval", evalset, "--min-agreement", "0.9",
                     "--no-bench")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "below --min-agreement" in r.stderr
    assert "top-1 agreement 0.00%" in r.stdout, r.stdout
    assert not out.exists() and not (tmp_path / "out.report.json").exists()
    r = run_optimize(model, "-o", out, "--quantize", "dynamic", "--eval", evalset, "--no-bench")
    assert r.returncode == 0 and out.exists(), r.stderr
