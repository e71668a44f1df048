#!/usr/bin/python3
"""Regenerate Slipway's small ONNX models deterministically.

Usage:
    /usr/bin/python3 scripts/make_models.py [DIR] [--tests]

    DIR      target model repository (default: examples/models, or
             tests/models when --tests is given)
    --tests  write the integration-test model set (identity_*, add_sub,
             fixed_shape, broken, bad_config, triton_style, torch_mlp,
             xgb_classifier, plus the three example models) instead of the
             example set.

Layout written:  DIR/<model>/<version>/model.onnx  (model.pt for torch_mlp,
                                                  model.json for xgb_classifier)
                 DIR/<model>/<version>/expected.json  (one sample input and
                                                       the reference outputs)
                 DIR/<model>/config.yaml | config.pbtxt (only where stated)

Only the model directories this script owns are removed and rewritten; any
other file in DIR (e.g. README.md) is left alone.

Number formatting in expected.json: FP32/FP16/BF16 values are written as the
shortest decimal that round-trips at that precision (parse as double, then
cast to the datatype, and you get the exact bits the reference produced);
FP64 values use the shortest double repr; integers are exact; BOOL as
true/false; BYTES as (UTF-8) strings.

Requires: torch (1.13), onnx (1.12), numpy, scikit-learn; xgboost (1.7) for --tests.
"""

import json
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
import torch
import torch.nn as nn

TORCH_OPSET = 13
HELPER_OPSET = 17
HELPER_IR_VERSION = 8  # onnx 1.12 / ORT accept IR 8 with opset 17
MAX_MODEL_BYTES = 1 << 20

torch.set_num_threads(2)
torch.use_deterministic_algorithms(True)

# --------------------------------------------------------------------------
# datatype tables
# --------------------------------------------------------------------------

# KServe v2 datatype -> (onnx elem type, numpy dtype or None)
DATATYPES = {
    "BOOL": (TensorProto.BOOL, np.bool_),
    "INT8": (TensorProto.INT8, np.int8),
    "INT16": (TensorProto.INT16, np.int16),
    "INT32": (TensorProto.INT32, np.int32),
    "INT64": (TensorProto.INT64, np.int64),
    "UINT8": (TensorProto.UINT8, np.uint8),
    "UINT16": (TensorProto.UINT16, np.uint16),
    "UINT32": (TensorProto.UINT32, np.uint32),
    "UINT64": (TensorProto.UINT64, np.uint64),
    "FP16": (TensorProto.FLOAT16, np.float16),
    "FP32": (TensorProto.FLOAT, np.float32),
    "FP64": (TensorProto.DOUBLE, np.float64),
    "BYTES": (TensorProto.STRING, np.object_),
    "BF16": (TensorProto.BFLOAT16, None),  # numpy has no bfloat16
}
ONNX_TO_DT = {v[0]: k for k, v in DATATYPES.items()}
NP_TO_DT = {np.dtype(v[1]): k for k, v in DATATYPES.items()
            if v[1] is not None and v[1] is not np.object_}


def _flat_json(dt, arr):
    """Flatten an array into JSON-friendly python values, exactly."""
    flat = np.asarray(arr).reshape(-1)
    if dt == "BOOL":
        return [bool(v) for v in flat]
    if dt in ("FP32", "BF16"):
        return [float(repr(np.float32(v))) for v in flat]
    if dt == "FP16":
        return [float(repr(np.float16(v))) for v in flat]
    if dt == "FP64":
        return [float(v) for v in flat]
    if dt == "BYTES":
        return [v.decode("utf-8") if isinstance(v, bytes) else str(v)
                for v in flat]
    return [int(v) for v in flat]


def tensor_json(arr, dt=None):
    arr = np.asarray(arr)
    if dt is None:
        dt = NP_TO_DT[arr.dtype]
    return {"datatype": dt, "shape": [int(d) for d in arr.shape],
            "data": _flat_json(dt, arr)}


def write_expected(vdir, inputs, outputs):
    """inputs/outputs: dict name -> (array, datatype-or-None)."""
    doc = {
        "inputs": {k: tensor_json(a, d) for k, (a, d) in inputs.items()},
        "outputs": {k: tensor_json(a, d) for k, (a, d) in outputs.items()},
    }
    with open(os.path.join(vdir, "expected.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def tnp(t):
    return t.detach().cpu().numpy()


# --------------------------------------------------------------------------
# minimal numpy evaluator for the ONNX graphs we emit (verification only:
# onnxruntime is not available from python here)
# --------------------------------------------------------------------------

def _attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _conv2d(x, w, b, pads, strides, group):
    assert group == 1
    n, c, h, wd = x.shape
    m, _, kh, kw = w.shape
    pt, pl, pb, pr = pads
    sh, sw = strides
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh = (h + pt + pb - kh) // sh + 1
    ow = (wd + pl + pr - kw) // sw + 1
    out = np.zeros((n, m, oh, ow), dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw]
            out += np.einsum("nchw,mc->nmhw", patch.astype(np.float64),
                             w[:, :, i, j].astype(np.float64))
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out.astype(x.dtype)


def _maxpool2d(x, kernel, pads, strides):
    n, c, h, w = x.shape
    kh, kw = kernel
    pt, pl, pb, pr = pads
    sh, sw = strides
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)),
                constant_values=-np.inf)
    oh = (h + pt + pb - kh) // sh + 1
    ow = (w + pl + pr - kw) // sw + 1
    out = np.full((n, c, oh, ow), -np.inf, dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            out = np.maximum(out, xp[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw])
    return out


def run_onnx_numpy(model, feeds):
    env = {}
    for init in model.graph.initializer:
        env[init.name] = numpy_helper.to_array(init)
    env.update(feeds)
    for node in model.graph.node:
        a = _attrs(node)
        ins = [env[i] if i else None for i in node.input]
        op = node.op_type
        if op == "Identity":
            r = [ins[0]]
        elif op == "Constant":
            r = [numpy_helper.to_array(a["value"])]
        elif op in ("Add", "Sub", "Mul", "Div"):
            f = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply,
                 "Div": np.divide}[op]
            r = [f(ins[0], ins[1]).astype(np.result_type(ins[0], ins[1]))]
        elif op == "Relu":
            r = [np.maximum(ins[0], 0).astype(ins[0].dtype)]
        elif op == "Gemm":
            A, B = ins[0], ins[1]
            if a.get("transA", 0):
                A = A.T
            if a.get("transB", 0):
                B = B.T
            y = a.get("alpha", 1.0) * (A @ B)
            if len(ins) > 2 and ins[2] is not None:
                y = y + a.get("beta", 1.0) * ins[2]
            r = [y.astype(ins[0].dtype)]
        elif op == "MatMul":
            r = [ins[0] @ ins[1]]
        elif op == "Softmax":
            ax = a.get("axis", -1)
            e = np.exp(ins[0] - ins[0].max(axis=ax, keepdims=True))
            r = [(e / e.sum(axis=ax, keepdims=True)).astype(ins[0].dtype)]
        elif op == "ArgMax":
            y = np.argmax(ins[0], axis=a.get("axis", 0))
            if a.get("keepdims", 1):
                y = np.expand_dims(y, a.get("axis", 0))
            r = [y.astype(np.int64)]
        elif op == "Cast":
            to = onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[a["to"]]
            r = [ins[0].astype(to)]
        elif op == "Where":
            r = [np.where(ins[0], ins[1], ins[2])]
        elif op == "Shape":
            r = [np.array(ins[0].shape, dtype=np.int64)]
        elif op == "ConstantOfShape":
            v = numpy_helper.to_array(a["value"]) if "value" in a else \
                np.zeros(1, np.float32)
            r = [np.full(tuple(ins[0]), v.reshape(-1)[0], dtype=v.dtype)]
        elif op == "ReduceSum":
            axes = tuple(ins[1].tolist()) if len(ins) > 1 else None
            r = [np.sum(ins[0], axis=axes,
                        keepdims=bool(a.get("keepdims", 1))).astype(
                            ins[0].dtype)]
        elif op == "Flatten":
            ax = a.get("axis", 1)
            s = ins[0].shape
            r = [ins[0].reshape(int(np.prod(s[:ax])), -1)]
        elif op == "GlobalAveragePool":
            r = [ins[0].mean(axis=(2, 3), keepdims=True).astype(ins[0].dtype)]
        elif op == "Conv":
            k = len(ins[1].shape) - 2
            r = [_conv2d(ins[0], ins[1], ins[2] if len(ins) > 2 else None,
                         a.get("pads", [0] * 2 * k),
                         a.get("strides", [1] * k), a.get("group", 1))]
        elif op == "MaxPool":
            ks = a["kernel_shape"]
            r = [_maxpool2d(ins[0], ks, a.get("pads", [0] * 2 * len(ks)),
                            a.get("strides", [1] * len(ks)))]
        else:
            raise NotImplementedError("numpy evaluator: op %s" % op)
        for name, val in zip(node.output, r):
            env[name] = np.asarray(val)
    return {o.name: env[o.name] for o in model.graph.output}


# --------------------------------------------------------------------------
# verification
# --------------------------------------------------------------------------

def _io_sig(vi):
    tt = vi.type.tensor_type
    dims = []
    for d in tt.shape.dim:
        dims.append(d.dim_value if d.HasField("dim_value") else -1)
    return ONNX_TO_DT[tt.elem_type], dims


def verify(path, inputs_sig, outputs_sig, expected_path=None, rtol=1e-4,
           atol=1e-5, numpy_eval=True):
    """Checker + I/O signature check + (optionally) numpy re-evaluation of
    the ONNX graph against the reference outputs in expected.json."""
    size = os.path.getsize(path)
    assert size < MAX_MODEL_BYTES, "%s is %d bytes" % (path, size)
    onnx.checker.check_model(path, full_check=True)
    m = onnx.load(path)
    got_in = {vi.name: _io_sig(vi) for vi in m.graph.input
              if vi.name not in {i.name for i in m.graph.initializer}}
    got_out = {vi.name: _io_sig(vi) for vi in m.graph.output}
    assert got_in == inputs_sig, (path, got_in, inputs_sig)
    assert got_out == outputs_sig, (path, got_out, outputs_sig)
    if expected_path is None or not numpy_eval:
        return
    with open(expected_path) as f:
        exp = json.load(f)
    feeds = {}
    for name, t in exp["inputs"].items():
        npdt = DATATYPES[t["datatype"]][1]
        feeds[name] = np.array(t["data"], dtype=npdt).reshape(t["shape"])
    outs = run_onnx_numpy(m, feeds)
    for name, t in exp["outputs"].items():
        ref = np.array(t["data"], dtype=DATATYPES[t["datatype"]][1]
                       ).reshape(t["shape"])
        got = outs[name]
        assert got.shape == ref.shape, (path, name, got.shape, ref.shape)
        if ref.dtype.kind == "f":
            np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol,
                                       err_msg="%s:%s" % (path, name))
        else:
            assert np.array_equal(got, ref), (path, name, got, ref)


# --------------------------------------------------------------------------
# helpers for writing models
# --------------------------------------------------------------------------

def fresh_model_dir(root, name):
    d = os.path.join(root, name)
    if os.path.isdir(d) and not os.path.islink(d):
        shutil.rmtree(d)
    elif os.path.lexists(d):
        os.remove(d)
    os.makedirs(d)
    return d


def version_dir(mdir, version):
    v = os.path.join(mdir, str(version))
    os.makedirs(v, exist_ok=True)
    return v


def export_torch(module, args, path, input_names, output_names):
    module.eval()
    dyn = {n: {0: "batch"} for n in input_names + output_names}
    with torch.no_grad():
        torch.onnx.export(module, args, path, input_names=input_names,
                          output_names=output_names, dynamic_axes=dyn,
                          opset_version=TORCH_OPSET, do_constant_folding=True,
                          export_params=True)
    # strip the exporter's doc strings (stack traces) for smaller files
    m = onnx.load(path)
    for n in m.graph.node:
        n.doc_string = ""
    m.graph.doc_string = ""
    onnx.save(m, path)


def save_helper_model(graph, path):
    model = helper.make_model(
        graph, producer_name="slipway-make_models",
        opset_imports=[helper.make_opsetid("", HELPER_OPSET)])
    model.ir_version = HELPER_IR_VERSION
    onnx.save(model, path)


def write_text(path, text):
    with open(path, "w") as f:
        f.write(text)


# --------------------------------------------------------------------------
# 1. breast_cancer
# --------------------------------------------------------------------------

class BreastCancerMLP(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
        self.net = nn.Sequential(nn.Linear(30, 32), nn.ReLU(),
                                 nn.Linear(32, 2))

    def logits(self, x):
        return self.net((x - self.mean) / self.std)

    def forward(self, features):
        probs = torch.softmax(self.logits(features), dim=1)
        return probs, torch.argmax(probs, dim=1)


_BC_CACHE = {}


def train_breast_cancer():
    """Train once per process (same seeds -> same weights for both sets)."""
    if "model" in _BC_CACHE:
        return _BC_CACHE["model"], _BC_CACHE["acc"], _BC_CACHE["data"]
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split
    ds = load_breast_cancer()
    X = ds.data.astype(np.float32)
    y = ds.target.astype(np.int64)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25,
                                          random_state=0, stratify=y)
    mean = Xtr.mean(axis=0)
    std = Xtr.std(axis=0) + 1e-6
    torch.manual_seed(0)
    model = BreastCancerMLP(mean, std)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-2)
    xt, yt = torch.from_numpy(Xtr), torch.from_numpy(ytr)
    lossf = nn.CrossEntropyLoss()
    model.train()
    for _ in range(300):
        opt.zero_grad()
        loss = lossf(model.logits(xt), yt)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        _, pred = model(torch.from_numpy(Xte))
    acc = float((tnp(pred) == yte).mean())
    _BC_CACHE.update(model=model, acc=acc, data=X, n_test=len(yte))
    return model, acc, X


# A rollout plan, so that a new version uploaded to the example goes through canary steps.
BREAST_CANCER_CONFIG = """# A new version (upload it with `slipway models upload breast_cancer FILE`) is rolled out in
# canary steps and promoted, or rolled back when a guard is breached. See docs/lifecycle.md.
rollout:
  steps:
    - {weight: 10, requests: 100}
    - {weight: 50, requests: 200}
    - {weight: 100, requests: 200}
  compare_fraction: 0.2
  guards: {max_error_rate: 0.01, max_p99_ratio: 1.5, p99_slack_ms: 5, min_agreement: 0.95}
"""


def make_breast_cancer(root):
    model, acc, X = train_breast_cancer()
    print("breast_cancer: held-out accuracy = %.4f (%d test rows)"
          % (acc, _BC_CACHE["n_test"]))
    assert acc > 0.9, acc
    mdir = fresh_model_dir(root, "breast_cancer")
    write_text(os.path.join(mdir, "config.yaml"), BREAST_CANCER_CONFIG)
    vdir = version_dir(mdir, 1)
    path = os.path.join(vdir, "model.onnx")
    sample = torch.from_numpy(X[:2].copy())
    export_torch(model, (sample,), path, ["features"],
                 ["probabilities", "label"])
    with torch.no_grad():
        probs, label = model(sample)
    write_expected(vdir, {"features": (tnp(sample), "FP32")},
                   {"probabilities": (tnp(probs), "FP32"),
                    "label": (tnp(label), "INT64")})
    verify(path, {"features": ("FP32", [-1, 30])},
           {"probabilities": ("FP32", [-1, 2]), "label": ("INT64", [-1])},
           os.path.join(vdir, "expected.json"))
    return acc


# --------------------------------------------------------------------------
# 2. image_cnn
# --------------------------------------------------------------------------

class ImageCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, image):
        x = self.pool(torch.relu(self.conv1(image)))
        x = torch.relu(self.conv2(x))
        x = torch.flatten(self.gap(x), 1)
        return self.fc(x)


def make_image_cnn(root):
    torch.manual_seed(1)
    model = ImageCNN().eval()
    mdir = fresh_model_dir(root, "image_cnn")
    vdir = version_dir(mdir, 1)
    path = os.path.join(vdir, "model.onnx")
    g = torch.Generator().manual_seed(11)
    sample = torch.rand(2, 3, 32, 32, generator=g)
    export_torch(model, (sample,), path, ["image"], ["logits"])
    with torch.no_grad():
        logits = model(sample)
    write_expected(vdir, {"image": (tnp(sample), "FP32")},
                   {"logits": (tnp(logits), "FP32")})
    verify(path, {"image": ("FP32", [-1, 3, 32, 32])},
           {"logits": ("FP32", [-1, 10])},
           os.path.join(vdir, "expected.json"))


# --------------------------------------------------------------------------
# 3. multi_input (two versions + config.yaml)
# --------------------------------------------------------------------------

class MultiInput(nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x, scale, offset, mask):
        y = x * scale.to(torch.float32) + offset.to(torch.float32)
        y = torch.where(mask, y, torch.zeros_like(y))
        if self.factor != 1.0:
            y = y * self.factor
        count = mask.to(torch.int64).sum(dim=1)
        return y, count


MULTI_INPUT_CONFIG = """max_batch_size: 16
version_policy: {all: {}}
instance_count: 1
"""


def make_multi_input(root):
    mdir = fresh_model_dir(root, "multi_input")
    write_text(os.path.join(mdir, "config.yaml"), MULTI_INPUT_CONFIG)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 4, generator=g)
    scale = torch.tensor([[0.5], [2.0], [-1.25]], dtype=torch.float64)
    offset = torch.tensor([[1, -2, 3, 0], [10, 20, -30, 40], [0, 0, 7, -7]],
                          dtype=torch.int32)
    mask = torch.tensor([[True, False, True, True],
                         [False, False, False, False],
                         [True, True, True, True]])
    ins_sig = {"x": ("FP32", [-1, 4]), "scale": ("FP64", [-1, 1]),
               "offset": ("INT32", [-1, 4]), "mask": ("BOOL", [-1, 4])}
    outs_sig = {"y": ("FP32", [-1, 4]), "count": ("INT64", [-1])}
    for version, factor in ((1, 1.0), (2, 2.0)):
        model = MultiInput(factor).eval()
        vdir = version_dir(mdir, version)
        path = os.path.join(vdir, "model.onnx")
        export_torch(model, (x, scale, offset, mask), path,
                     ["x", "scale", "offset", "mask"], ["y", "count"])
        with torch.no_grad():
            y, count = model(x, scale, offset, mask)
        write_expected(vdir, {"x": (tnp(x), "FP32"),
                              "scale": (tnp(scale), "FP64"),
                              "offset": (tnp(offset), "INT32"),
                              "mask": (tnp(mask), "BOOL")},
                       {"y": (tnp(y), "FP32"),
                        "count": (tnp(count), "INT64")})
        verify(path, ins_sig, outs_sig, os.path.join(vdir, "expected.json"))


# --------------------------------------------------------------------------
# 4. identity_<dt>
# --------------------------------------------------------------------------

def _identity_sample(dt):
    """Return (numpy array used for the JSON, onnx-typed note)."""
    shape = (2, 3)
    if dt == "BOOL":
        return np.array([[True, False, True], [False, False, True]])
    if dt == "BYTES":
        return np.array([["hello", "", "slipway"],
                         ["\u00fcn\u00efc\u00f8d\u00e9", "a b", "42"]],
                        dtype=object)
    if dt in ("FP16", "FP32", "FP64"):
        npdt = DATATYPES[dt][1]
        return np.array([[0.0, -1.5, 3.25], [1e-3, 65504.0 if dt == "FP16"
                                             else 1e6, -0.1]], dtype=npdt)
    if dt == "BF16":
        # values exactly representable in bfloat16
        return np.array([[0.0, -1.5, 3.25], [0.125, 256.0, -1024.0]],
                        dtype=np.float32)
    npdt = DATATYPES[dt][1]
    info = np.iinfo(npdt)
    vals = [info.min, info.max, -1 if info.min < 0 else 2, 1, 7,
            int(info.max) // 2]
    return np.array(vals, dtype=npdt).reshape(shape)


def make_identity(root, dt):
    name = "identity_" + dt.lower()
    elem = DATATYPES[dt][0]
    mdir = fresh_model_dir(root, name)
    vdir = version_dir(mdir, 1)
    path = os.path.join(vdir, "model.onnx")
    graph = helper.make_graph(
        [helper.make_node("Identity", ["INPUT0"], ["OUTPUT0"])], name,
        [helper.make_tensor_value_info("INPUT0", elem, ["batch", "n"])],
        [helper.make_tensor_value_info("OUTPUT0", elem, ["batch", "n"])])
    save_helper_model(graph, path)
    sample = _identity_sample(dt)
    out = sample.copy()  # numpy reference of Identity
    write_expected(vdir, {"INPUT0": (sample, dt)}, {"OUTPUT0": (out, dt)})
    sig = {"INPUT0": (dt, [-1, -1])}
    verify(path, sig, {"OUTPUT0": (dt, [-1, -1])},
           os.path.join(vdir, "expected.json"),
           numpy_eval=dt not in ("BF16",))


# --------------------------------------------------------------------------
# 5./8./9. add_sub and friends
# --------------------------------------------------------------------------

def _add_sub_graph(name):
    f = TensorProto.FLOAT
    return helper.make_graph(
        [helper.make_node("Add", ["INPUT0", "INPUT1"], ["OUTPUT0"]),
         helper.make_node("Sub", ["INPUT0", "INPUT1"], ["OUTPUT1"])], name,
        [helper.make_tensor_value_info("INPUT0", f, ["batch", 16]),
         helper.make_tensor_value_info("INPUT1", f, ["batch", 16])],
        [helper.make_tensor_value_info("OUTPUT0", f, ["batch", 16]),
         helper.make_tensor_value_info("OUTPUT1", f, ["batch", 16])])


def _write_add_sub_version(mdir, name, seed):
    vdir = version_dir(mdir, 1)
    path = os.path.join(vdir, "model.onnx")
    save_helper_model(_add_sub_graph(name), path)
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((2, 16)).astype(np.float32)
    b = rng.standard_normal((2, 16)).astype(np.float32)
    write_expected(vdir, {"INPUT0": (a, "FP32"), "INPUT1": (b, "FP32")},
                   {"OUTPUT0": (a + b, "FP32"), "OUTPUT1": (a - b, "FP32")})
    sig = {"INPUT0": ("FP32", [-1, 16]), "INPUT1": ("FP32", [-1, 16])}
    verify(path, sig, {"OUTPUT0": ("FP32", [-1, 16]),
                       "OUTPUT1": ("FP32", [-1, 16])},
           os.path.join(vdir, "expected.json"), rtol=0, atol=0)


def make_add_sub(root):
    mdir = fresh_model_dir(root, "add_sub")
    _write_add_sub_version(mdir, "add_sub", seed=5)


BAD_CONFIG_YAML = """# Deliberately contradicts model.onnx (which takes INPUT0/INPUT1 FP32
# [-1,16]): the server must refuse to load this model.
max_batch_size: 8
inputs: [{name: INPUT0, datatype: FP32, dims: [8]}]
"""


def make_bad_config(root):
    mdir = fresh_model_dir(root, "bad_config")
    _write_add_sub_version(mdir, "bad_config", seed=5)
    write_text(os.path.join(mdir, "config.yaml"), BAD_CONFIG_YAML)


TRITON_PBTXT = """name: "triton_style"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 16 ] }, { name: "INPUT1" data_type: TYPE_FP32 dims: [ 16 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 16 ] }, { name: "OUTPUT1" data_type: TYPE_FP32 dims: [ 16 ] } ]
instance_group [ { count: 1 kind: KIND_CPU } ]
dynamic_batching { max_queue_delay_microseconds: 100 }
version_policy: { latest: { num_versions: 1 } }
"""


def make_triton_style(root):
    mdir = fresh_model_dir(root, "triton_style")
    _write_add_sub_version(mdir, "triton_style", seed=9)
    write_text(os.path.join(mdir, "config.pbtxt"), TRITON_PBTXT)


# --------------------------------------------------------------------------
# 6. fixed_shape, 7. broken
# --------------------------------------------------------------------------

def make_fixed_shape(root):
    mdir = fresh_model_dir(root, "fixed_shape")
    vdir = version_dir(mdir, 1)
    path = os.path.join(vdir, "model.onnx")
    f = TensorProto.FLOAT
    two = numpy_helper.from_array(np.array(2.0, dtype=np.float32), "two")
    graph = helper.make_graph(
        [helper.make_node("Mul", ["INPUT0", "two"], ["OUTPUT0"])],
        "fixed_shape",
        [helper.make_tensor_value_info("INPUT0", f, [2, 3])],
        [helper.make_tensor_value_info("OUTPUT0", f, [2, 3])],
        initializer=[two])
    save_helper_model(graph, path)
    x = np.array([[1.0, -2.0, 3.5], [0.25, 0.0, -7.75]], dtype=np.float32)
    write_expected(vdir, {"INPUT0": (x, "FP32")},
                   {"OUTPUT0": (x * np.float32(2), "FP32")})
    verify(path, {"INPUT0": ("FP32", [2, 3])}, {"OUTPUT0": ("FP32", [2, 3])},
           os.path.join(vdir, "expected.json"), rtol=0, atol=0)


def make_broken(root):
    mdir = fresh_model_dir(root, "broken")
    vdir = version_dir(mdir, 1)
    with open(os.path.join(vdir, "model.onnx"), "wb") as f:
        f.write(b"not an onnx model")


# --------------------------------------------------------------------------
# 8. torch_mlp (LibTorch backend), 9. xgb_classifier (XGBoost backend)
#
# No expected.json for these: tests/integration/test_backends.py computes the
# expected outputs with torch / xgboost from the files themselves, and the
# models are served only by builds with SLIPWAY_LIBTORCH / SLIPWAY_XGBOOST.
# --------------------------------------------------------------------------

class TorchMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, features):
        probs = torch.softmax(self.fc2(torch.relu(self.fc1(features))), dim=1)
        return probs, torch.argmax(probs, dim=1)


TORCH_MLP_CONFIG = """# A TorchScript file carries no signature: inputs and outputs are listed here, in
# the order of forward()'s arguments and results.
platform: pytorch_libtorch
max_batch_size: 8
inputs:
  - {name: features, datatype: FP32, dims: [8]}
outputs:
  - {name: probabilities, datatype: FP32, dims: [3]}
  - {name: label, datatype: INT64, dims: []}
dynamic_batching: {max_queue_delay_microseconds: 5000}
"""


def make_torch_mlp(root):
    torch.manual_seed(8)
    model = TorchMLP().eval()
    mdir = fresh_model_dir(root, "torch_mlp")
    write_text(os.path.join(mdir, "config.yaml"), TORCH_MLP_CONFIG)
    vdir = version_dir(mdir, 1)
    path = os.path.join(vdir, "model.pt")
    scripted = torch.jit.script(model)
    scripted.save(path)
    # verify: the file reloads and agrees with the eager module
    x = torch.from_numpy(np.random.default_rng(8).standard_normal((5, 8)).astype(np.float32))
    loaded = torch.jit.load(path).eval()
    with torch.no_grad():
        p_ref, l_ref = model(x)
        p_got, l_got = loaded(x)
    assert torch.equal(p_ref, p_got) and torch.equal(l_ref, l_got)


XGB_CLASSIFIER_CONFIG = """# The input (features FP32 [4]) and output (predictions FP32 [3], the class
# probabilities) are completed from the booster.
platform: xgboost
max_batch_size: 16
dynamic_batching: {max_queue_delay_microseconds: 5000}
"""


def make_xgb_classifier(root):
    import xgboost as xgb
    from sklearn.datasets import load_iris
    ds = load_iris()
    X = ds.data.astype(np.float32)
    y = ds.target
    params = {"objective": "multi:softprob", "num_class": 3, "max_depth": 3,
              "eta": 0.3, "tree_method": "exact", "nthread": 1, "seed": 0}
    booster = xgb.train(params, xgb.DMatrix(X, label=y), num_boost_round=6)
    mdir = fresh_model_dir(root, "xgb_classifier")
    write_text(os.path.join(mdir, "config.yaml"), XGB_CLASSIFIER_CONFIG)
    vdir = version_dir(mdir, 1)
    path = os.path.join(vdir, "model.json")
    booster.save_model(path)
    # verify: the file reloads, predicts the same bits, and classifies iris well
    loaded = xgb.Booster(model_file=path)
    ref = booster.predict(xgb.DMatrix(X))
    got = loaded.predict(xgb.DMatrix(X))
    assert ref.shape == (len(X), 3) and np.array_equal(ref, got)
    acc = float((got.argmax(axis=1) == y).mean())
    assert acc > 0.9, acc


# --------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------

IDENTITY_TYPES = ["BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8",
                  "UINT16", "UINT32", "UINT64", "FP16", "FP32", "FP64",
                  "BYTES", "BF16"]


def make_examples(root):
    acc = make_breast_cancer(root)
    make_image_cnn(root)
    make_multi_input(root)
    return acc


def make_tests(root):
    for dt in IDENTITY_TYPES:
        make_identity(root, dt)
    make_add_sub(root)
    make_fixed_shape(root)
    make_broken(root)
    make_bad_config(root)
    make_triton_style(root)
    make_torch_mlp(root)
    make_xgb_classifier(root)
    return make_examples(root)


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    flags = [a for a in argv if a.startswith("--")]
    unknown = [f for f in flags if f not in ("--tests", "--help")]
    if "--help" in flags or unknown or len(args) > 1:
        sys.stderr.write(__doc__)
        return 0 if "--help" in flags and not unknown else 2
    tests = "--tests" in flags
    root = args[0] if args else ("tests/models" if tests else
                                 "examples/models")
    os.makedirs(root, exist_ok=True)
    if tests:
        make_tests(root)
    else:
        make_examples(root)
    n = 0
    for dirpath, _, files in os.walk(root):
        n += sum(1 for f in files if f == "model.onnx")
    print("wrote %d model.onnx files under %s" % (n, root))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
