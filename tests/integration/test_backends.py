"""The LibTorch (TorchScript) and XGBoost backends, end to end.

One server serves tests/models/torch_mlp and tests/models/xgb_classifier (written by
scripts/make_models.py --tests) beside models made here: a binary XGBoost booster saved as
model.ubj with named tensors, and models whose configs are wrong in the ways the backends must
refuse. Expected outputs come from torch and xgboost in this process, from the same files: bit
for bit for XGBoost (Booster.predict(DMatrix(x)) on the same float32 rows), within 1e-5 relative
for LibTorch. Skipped for a binary built without a backend: LibTorch is opt-in
(cmake -DSLIPWAY_LIBTORCH=ON), and sanitized builds leave out both.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

import slipway_testlib as lib

torch = pytest.importorskip("torch")
xgb = pytest.importorskip("xgboost")

TORCH = "torch_mlp"
XGB = "xgb_classifier"
XGB_UBJ = "xgb_binary"
XGB_COLUMN = "xgb_binary_column"
T = lib.REQUEST_TIMEOUT_S

XGB_UBJ_CONFIG = """platform: xgboost
default_model_filename: model.ubj
max_batch_size: 32
inputs: [{name: x, datatype: FP32, dims: [30]}]
outputs: [{name: probability}]
dynamic_batching: {max_queue_delay_microseconds: 5000}
"""

# Pieces of torch_mlp's config (tests/models/torch_mlp/config.yaml) for the broken variants.
T_HEAD = "platform: pytorch_libtorch\nmax_batch_size: 8\n"
T_IN = "inputs: [{name: features, datatype: FP32, dims: [8]}]\n"
T_PROBS = "{name: probabilities, datatype: FP32, dims: [3]}"
T_LABEL = "{name: label, datatype: INT64, dims: []}"
T_OUT = f"outputs: [{T_PROBS}, {T_LABEL}]\n"
X_HEAD = "platform: xgboost\nmax_batch_size: 8\n"
PT = (TORCH, "model.pt")
JSON = (XGB, "model.json")

# model -> (config.yaml, source model file, [patterns the load failure must mention])
BROKEN = {
    "torch_no_inputs": (T_HEAD + T_OUT, PT,
                        [r"TorchScript", r"no signature", r"inputs", r"forward\(features\)"]),
    "torch_no_datatype": (T_HEAD + "inputs: [{name: features, dims: [8]}]\n" + T_OUT, PT,
                          [r"input 'features'", r"no datatype"]),
    "torch_no_dims": (T_HEAD + "inputs: [{name: features, datatype: FP32}]\n" + T_OUT, PT,
                      [r"input 'features'", r"no dims"]),
    "torch_two_inputs": (
        T_HEAD + "inputs: [{name: a, datatype: FP32, dims: [8]}, "
                 "{name: b, datatype: FP32, dims: [8]}]\n" + T_OUT, PT,
        [r"forward\(features\)", r"takes 1 input,", r"lists 2"]),
    "torch_one_output": (T_HEAD + T_IN + f"outputs: [{T_PROBS}]\n", PT,
                         [r"returns", r"2 tensors", r"lists 1 output "]),
    # These load, but the warm-up run finds what the model returns at odds with the config.
    "torch_wrong_dtype": (T_HEAD + T_IN + T_OUT.replace("INT64", "INT32"), PT,
                          [r"output 'label'", r"INT32", r"INT64"]),
    "torch_wrong_dims": (T_HEAD + T_IN + T_OUT.replace("dims: [3]", "dims: [4]"), PT,
                         [r"output 'probabilities'", r"\[1,3\]", r"\[4\]"]),
    "xgb_wrong_features": (X_HEAD + "inputs: [{name: features, datatype: FP32, dims: [5]}]\n", JSON,
                           [r"input 'features'", r"\[5\]", r"\[4\]", r"4 features"]),
    "xgb_wrong_datatype": (X_HEAD + "inputs: [{name: features, datatype: FP64, dims: [4]}]\n", JSON,
                           [r"input 'features'", r"FP64", r"FP32"]),
    "xgb_wrong_classes": (X_HEAD + "outputs: [{name: predictions, dims: [2]}]\n", JSON,
                          [r"output 'predictions'", r"\[2\]", r"\[3\]", r"3 values per row"]),
}


def _train_binary_booster(path):
    from sklearn.datasets import load_breast_cancer
    ds = load_breast_cancer()
    params = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.3, "tree_method": "exact",
              "nthread": 1, "seed": 0, "base_score": 0.3}
    booster = xgb.train(params, xgb.DMatrix(ds.data.astype(np.float32), label=ds.target),
                        num_boost_round=5)
    booster.save_model(str(path))
    return ds.data.astype(np.float32)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("backends")
    repo = lib.make_repository(tmp, [TORCH, XGB])
    (repo / XGB_UBJ / "1").mkdir(parents=True)
    (repo / XGB_UBJ / "config.yaml").write_text(XGB_UBJ_CONFIG)
    breast_cancer = _train_binary_booster(repo / XGB_UBJ / "1" / "model.ubj")
    # The same booster with its one value per row as a column: dims [1].
    (repo / XGB_COLUMN / "1").mkdir(parents=True)
    (repo / XGB_COLUMN / "config.yaml").write_text(
        XGB_UBJ_CONFIG.replace("{name: probability}", "{name: probability, dims: [1]}"))
    shutil.copy(repo / XGB_UBJ / "1" / "model.ubj", repo / XGB_COLUMN / "1" / "model.ubj")
    for name, (config, (source, filename), _) in BROKEN.items():
        (repo / name / "1").mkdir(parents=True)
        (repo / name / "config.yaml").write_text(config)
        shutil.copy(lib.MODELS_DIR / source / "1" / filename, repo / name / "1" / filename)
    srv = lib.start_live(repo, log_dir=tmp, name="backends")
    try:
        idx = requests.post(srv.http_url + "/v2/repository/index", data=b"", timeout=T).json()
        reasons = {e["name"]: e.get("reason", "") for e in idx}
        built = {"torch": "no backend serves" not in reasons[TORCH],
                 "xgb": "no backend serves" not in reasons[XGB]}
        yield {"srv": srv, "reasons": reasons, "built": built, "breast_cancer": breast_cancer}
        lib.stop_ok(srv)
    finally:
        srv.kill()


def _need(env, backend):
    if not env["built"][backend]:
        pytest.skip(f"this binary was built without the {backend} backend")


def _infer(srv, model, inputs, session=None, version=None):
    """inputs: [(name, datatype, array)], sent binary; outputs come back binary (exact bits)."""
    body, hlen = lib.build_binary_request(inputs, parameters={"binary_data_output": True})
    path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
    r = (session or requests).post(srv.http_url + path, data=body, timeout=T,
                                   headers={"Inference-Header-Content-Length": str(hlen),
                                            "Content-Type": "application/octet-stream"})
    assert r.status_code == 200, (r.status_code, r.text[:500])
    return lib.parse_binary_response(r)[1]


def _stats(srv, model):
    r = requests.get(f"{srv.http_url}/v2/models/{model}/stats", timeout=T)
    assert r.status_code == 200, r.text
    (entry,) = r.json()["model_stats"]
    return entry


# ----------------------------------------------------------------------------- Python's answers

_torch_module = None
_boosters = {}


def torch_reference(x):
    global _torch_module
    if _torch_module is None:
        _torch_module = torch.jit.load(str(lib.MODELS_DIR / TORCH / "1" / "model.pt")).eval()
    with torch.no_grad():
        probs, label = _torch_module(torch.from_numpy(x))
    return probs.numpy(), label.numpy()


def xgb_reference(path, x):
    if path not in _boosters:
        _boosters[path] = xgb.Booster(model_file=str(path))
    return _boosters[path].predict(xgb.DMatrix(x))


def assert_same_bits(got, want, what):
    assert got.dtype == np.float32 and want.dtype == np.float32, (got.dtype, want.dtype)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    diff = np.flatnonzero(got.view(np.uint32) != want.view(np.uint32))
    assert diff.size == 0, (f"{what}: {diff.size} values differ in their bits, e.g. "
                            f"{got.ravel()[diff[:3]]} vs {want.ravel()[diff[:3]]}")


# ----------------------------------------------------------------------------- metadata

def test_metadata_completed_and_declared(env):
    srv = env["srv"]
    if env["built"]["torch"]:
        r = requests.get(f"{srv.http_url}/v2/models/{TORCH}", timeout=T)
        assert r.status_code == 200, r.text
        assert r.json() == {
            "name": TORCH, "versions": ["1"], "platform": "pytorch_libtorch",
            "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, 8]}],
            "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
                        {"name": "label", "datatype": "INT64", "shape": [-1]}]}
        c = requests.get(f"{srv.http_url}/v2/models/{TORCH}/config", timeout=T).json()
        assert c["backend"] == "pytorch" and c["max_batch_size"] == 8
    if env["built"]["xgb"]:
        r = requests.get(f"{srv.http_url}/v2/models/{XGB}", timeout=T)
        assert r.status_code == 200, r.text
        assert r.json() == {
            "name": XGB, "versions": ["1"], "platform": "xgboost",
            "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, 4]}],
            "outputs": [{"name": "predictions", "datatype": "FP32", "shape": [-1, 3]}]}
        body = requests.get(f"{srv.http_url}/v2/models/{XGB_UBJ}", timeout=T).json()
        assert body["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 30]}]
        assert body["outputs"] == [{"name": "probability", "datatype": "FP32", "shape": [-1]}]
    if not any(env["built"].values()):
        pytest.skip("this binary was built without either backend")


# ----------------------------------------------------------------------------- LibTorch

@pytest.mark.parametrize("rows", [1, 2, 5, 8])
def test_torch_matches_python(env, rows):
    _need(env, "torch")
    x = np.random.default_rng(100 + rows).standard_normal((rows, 8)).astype(np.float32) * 3
    out = _infer(env["srv"], TORCH, [("features", "FP32", x)])
    probs, label = torch_reference(x)
    assert out["probabilities"].shape == (rows, 3) and out["label"].shape == (rows,)
    np.testing.assert_allclose(out["probabilities"], probs, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(out["label"], label)


def test_torch_json_request_and_version_path(env):
    _need(env, "torch")
    srv = env["srv"]
    x = np.linspace(-2, 2, 16, dtype=np.float32).reshape(2, 8)
    body = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [2, 8],
                        "data": x.ravel().tolist()}], "outputs": [{"name": "label"}]}
    r = requests.post(f"{srv.http_url}/v2/models/{TORCH}/versions/1/infer", json=body, timeout=T)
    assert r.status_code == 200, r.text
    (out,) = r.json()["outputs"]
    assert out["name"] == "label" and out["datatype"] == "INT64" and out["shape"] == [2]
    assert out["data"] == torch_reference(x)[1].tolist()
    r = requests.post(f"{srv.http_url}/v2/models/{TORCH}/versions/2/infer", json=body, timeout=T)
    assert r.status_code == 404, r.text


def test_torch_rejects_a_wrong_shape_before_running(env):
    _need(env, "torch")
    body = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 7], "data": [0.0] * 7}]}
    r = requests.post(f"{env['srv'].http_url}/v2/models/{TORCH}/infer", json=body, timeout=T)
    assert r.status_code == 400, r.text
    assert "features" in lib.error_message(r)


# ----------------------------------------------------------------------------- XGBoost

@pytest.mark.parametrize("rows", [1, 3, 16])
def test_xgb_multiclass_bitwise_equal_to_python(env, rows):
    _need(env, "xgb")
    from sklearn.datasets import load_iris
    iris = load_iris().data.astype(np.float32)
    rng = np.random.default_rng(rows)
    x = iris[rng.choice(len(iris), rows, replace=False)] + rng.normal(0, 0.3, (rows, 4)).astype(np.float32)
    if rows > 1:
        x[0, 2] = np.nan  # a missing feature, as in a DMatrix
    out = _infer(env["srv"], XGB, [("features", "FP32", x)])
    want = xgb_reference(lib.MODELS_DIR / XGB / "1" / "model.json", x)
    assert_same_bits(out["predictions"], want, f"{XGB} x{rows}")


@pytest.mark.parametrize("rows", [1, 7, 32])
def test_xgb_binary_ubj_bitwise_equal_to_python(env, rows):
    _need(env, "xgb")
    x = env["breast_cancer"][np.random.default_rng(rows).choice(569, rows, replace=False)]
    out = _infer(env["srv"], XGB_UBJ, [("x", "FP32", x)])
    path = env["srv"].model_repository + f"/{XGB_UBJ}/1/model.ubj"
    want = xgb_reference(path, x)
    assert want.shape == (rows,)
    assert_same_bits(out["probability"], want, f"{XGB_UBJ} x{rows}")
    column = _infer(env["srv"], XGB_COLUMN, [("x", "FP32", x)])["probability"]
    assert_same_bits(column, want.reshape(rows, 1), f"{XGB_COLUMN} x{rows}")


# ----------------------------------------------------------------------------- batching

@pytest.mark.parametrize("backend,model", [("torch", TORCH), ("xgb", XGB), ("xgb", XGB_UBJ)])
def test_concurrent_single_rows_are_merged_and_answered_right(env, backend, model):
    _need(env, backend)
    srv = env["srv"]
    width = {TORCH: 8, XGB: 4, XGB_UBJ: 30}[model]
    name = {TORCH: "features", XGB: "features", XGB_UBJ: "x"}[model]
    rng = np.random.default_rng(5)
    if model == XGB_UBJ:
        rows = env["breast_cancer"][rng.choice(569, 96, replace=False)]
    else:
        rows = rng.standard_normal((96, width)).astype(np.float32) * 2
    before = _stats(srv, model)

    def client(k):
        with requests.Session() as s:
            return [_infer(srv, model, [(name, "FP32", rows[i:i + 1])], session=s)
                    for i in range(k, len(rows), 16)]

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(client, range(16)))
    got = {}
    for k, outs in enumerate(answers):
        for j, out in enumerate(outs):
            got[k + 16 * j] = out
    assert sorted(got) == list(range(len(rows)))
    if model == TORCH:
        probs, label = torch_reference(rows)
        for i, out in got.items():
            np.testing.assert_allclose(out["probabilities"][0], probs[i], rtol=1e-5, atol=1e-7)
            assert out["label"][0] == label[i]
    else:
        path = (lib.MODELS_DIR / XGB / "1" / "model.json" if model == XGB
                else env["srv"].model_repository + f"/{XGB_UBJ}/1/model.ubj")
        want = xgb_reference(path, rows)
        output = "predictions" if model == XGB else "probability"
        for i, out in got.items():
            assert_same_bits(out[output][0], want[i], f"{model} row {i}")
    after = _stats(srv, model)
    requests_sent = len(rows)
    executions = after["execution_count"] - before["execution_count"]
    inferences = after["inference_count"] - before["inference_count"]
    assert inferences == requests_sent
    successes = (after["inference_stats"]["success"]["count"]
                 - before["inference_stats"]["success"]["count"])
    assert successes == requests_sent
    # One row per request: fewer executions than rows means requests were merged into batches.
    assert 1 <= executions < inferences, (executions, inferences)
    assert any(b["batch_size"] > 1 for b in after["batch_stats"]), after["batch_stats"]


# ----------------------------------------------------------------------------- refused configs

@pytest.mark.parametrize("model", sorted(BROKEN))
def test_refused_config_has_a_clear_reason(env, model):
    _need(env, "torch" if model.startswith("torch") else "xgb")
    srv = env["srv"]
    reason = env["reasons"][model]
    assert reason, f"{model} loaded but must not"
    for pattern in BROKEN[model][2]:
        assert lib.mentions(reason, pattern), f"{model}: {pattern!r} not in {reason!r}"
    r = requests.get(f"{srv.http_url}/v2/models/{model}/ready", timeout=T)
    assert r.status_code != 200 or r.json()["ready"] is False, r.text
    width = 8 if model.startswith("torch") else 4
    body = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, width], "data": [0.0] * width}]}
    r = requests.post(f"{srv.http_url}/v2/models/{model}/infer", json=body, timeout=T)
    assert r.status_code == 503, r.text
    assert reason in lib.error_message(r)


# ----------------------------------------------------------------------------- statistics, metrics

def test_statistics_and_metrics_cover_the_backends(env):
    srv = env["srv"]
    models = [m for b, m in (("torch", TORCH), ("xgb", XGB), ("xgb", XGB_UBJ)) if env["built"][b]]
    if not models:
        pytest.skip("this binary was built without either backend")
    width = {TORCH: 8, XGB: 4, XGB_UBJ: 30}
    name = {TORCH: "features", XGB: "features", XGB_UBJ: "x"}
    for m in models:
        _infer(srv, m, [(name[m], "FP32", np.ones((3, width[m]), dtype=np.float32))])
    text = requests.get(f"http://127.0.0.1:{srv.metrics_port}/metrics", timeout=T).text
    for m in models:
        st = _stats(srv, m)
        assert st["version"] == "1" and st["inference_stats"]["success"]["count"] >= 1, st
        assert st["inference_count"] >= 3 and st["execution_count"] >= 1, st
        line = f'nv_inference_count{{model="{m}",version="1"}} '
        (sample,) = [ln for ln in text.splitlines() if ln.startswith(line)]
        assert float(sample.split()[-1]) == st["inference_count"], (sample, st)
        line = f'nv_inference_exec_count{{model="{m}",version="1"}} '
        (sample,) = [ln for ln in text.splitlines() if ln.startswith(line)]
        assert float(sample.split()[-1]) == st["execution_count"], (sample, st)


def test_intra_op_threads_reach_both_runtimes(env, tmp_path):
    # LibTorch's thread count is process-wide and XGBoost's is per booster; both follow the flag.
    models = [m for b, m in (("torch", TORCH), ("xgb", XGB)) if env["built"][b]]
    if not models:
        pytest.skip("this binary was built without either backend")
    srv = lib.start_live(lib.make_repository(tmp_path, models), log_dir=tmp_path, name="threads",
                         extra_args=["--intra-op-threads", "2", "--instance-count", "2"])
    try:
        for m in models:
            c = requests.get(f"{srv.http_url}/v2/models/{m}/config", timeout=T).json()
            assert c["parameters"]["intra_op_thread_count"]["string_value"] == "2", c
        x = np.random.default_rng(2).standard_normal((8, 8)).astype(np.float32)
        if TORCH in models:
            out = _infer(srv, TORCH, [("features", "FP32", x)])
            np.testing.assert_allclose(out["probabilities"], torch_reference(x)[0], rtol=1e-5, atol=1e-7)
        if XGB in models:
            out = _infer(srv, XGB, [("features", "FP32", x[:, :4])])
            want = xgb_reference(lib.MODELS_DIR / XGB / "1" / "model.json", x[:, :4])
            assert_same_bits(out["predictions"], want, "xgb with 2 threads")
        lib.stop_ok(srv)
    finally:
        srv.kill()
