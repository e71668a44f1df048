#!/usr/bin/python3
"""Write the calibration and evaluation sets `slipway optimize` uses for the example models.

Usage:
    /usr/bin/python3 scripts/make_optimize_data.py [DIR]     (default: examples/optimize)

Written (deterministically):
    DIR/breast_cancer/calibration.jsonl  64 training rows of scikit-learn's breast-cancer set
    DIR/breast_cancer/eval.jsonl         the 143 held-out rows, with their labels (the split
                                         scripts/make_models.py trained the example model on)
    DIR/image_cnn/calibration.npy        32 images [3, 32, 32] (float16 in [0, 1])
    DIR/image_cnn/eval.npy               64 other images
                                         (scikit-learn's bundled 8x8 digits, upscaled 4x, one
                                         colour tint per image: structured inputs, not noise)
    DIR/multi_input/calibration.jsonl    32 rows of the four inputs
    DIR/multi_input/eval.jsonl           64 other rows

Each JSON line is {"inputs": {NAME: [values of one row]}, "label": N}, the validation-set format
(docs/lifecycle.md); a .npy holds one input, dimension 0 counting the examples.

Requires: numpy, scikit-learn.
"""

import json
import os
import sys

import numpy as np


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row, separators=(",", ":")) + "\n")


def f32(values):
    return [float(repr(np.float32(v))) for v in np.asarray(values, dtype=np.float32).reshape(-1)]


def breast_cancer(out):
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split
    ds = load_breast_cancer()
    X = ds.data.astype(np.float32)
    y = ds.target.astype(np.int64)
    Xtr, Xte, _, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    d = os.path.join(out, "breast_cancer")
    os.makedirs(d, exist_ok=True)
    write_jsonl(os.path.join(d, "calibration.jsonl"),
                [{"inputs": {"features": f32(r)}} for r in Xtr[:64]])
    write_jsonl(os.path.join(d, "eval.jsonl"),
                [{"inputs": {"features": f32(r)}, "label": int(l)} for r, l in zip(Xte, yte)])
    return len(Xte)


def image_cnn(out):
    from sklearn.datasets import load_digits
    digits = load_digits().images.astype(np.float32) / 16.0  # [1797, 8, 8] in [0, 1]
    rng = np.random.default_rng(2024)
    order = rng.permutation(len(digits))[:96]
    imgs = np.kron(digits[order], np.ones((4, 4), dtype=np.float32))  # [96, 32, 32]
    tint = rng.uniform(0.25, 1.0, size=(96, 3, 1, 1)).astype(np.float32)
    batch = (imgs[:, None, :, :] * tint).astype(np.float16)  # [96, 3, 32, 32]
    d = os.path.join(out, "image_cnn")
    os.makedirs(d, exist_ok=True)
    np.save(os.path.join(d, "calibration.npy"), batch[:32])
    np.save(os.path.join(d, "eval.npy"), batch[32:])
    return 64


def multi_input(out):
    rng = np.random.default_rng(5)

    def row():
        return {"inputs": {
            "x": f32(rng.standard_normal(4)),
            "scale": [float(np.round(rng.uniform(-2, 2), 3))],
            "offset": [int(v) for v in rng.integers(-50, 50, size=4)],
            "mask": [bool(v) for v in rng.integers(0, 2, size=4)],
        }}

    d = os.path.join(out, "multi_input")
    os.makedirs(d, exist_ok=True)
    write_jsonl(os.path.join(d, "calibration.jsonl"), [row() for _ in range(32)])
    write_jsonl(os.path.join(d, "eval.jsonl"), [row() for _ in range(64)])
    return 64


def main(argv):
    if any(a.startswith("-") for a in argv) or len(argv) > 1:
        sys.stderr.write(__doc__)
        return 2
    out = argv[0] if argv else "examples/optimize"
    os.makedirs(out, exist_ok=True)
    n = breast_cancer(out) + image_cnn(out) + multi_input(out)
    print("wrote calibration and evaluation sets for 3 models under %s (%d evaluation rows)" % (out, n))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
