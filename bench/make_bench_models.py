#!/usr/bin/env python3
"""Writes the batching benchmark's model: a wide MLP with random (seeded) weights.

    /usr/bin/python3 bench/make_bench_models.py OUT_DIR

OUT_DIR/wide_mlp/1/model.onnx (input x FP32 [-1,512] -> logits FP32 [-1,10]) and
OUT_DIR/wide_mlp.pt (the same weights as a PyTorch state dict, for the FastAPI baseline).
"""

import sys
from pathlib import Path

import torch

IN_FEATURES = 512
HIDDEN = 2048
CLASSES = 10


def build_model() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(IN_FEATURES, HIDDEN), torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, HIDDEN), torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, CLASSES))


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(sys.argv[1])
    torch.manual_seed(0)
    model = build_model().eval()
    version_dir = out / "wide_mlp" / "1"
    version_dir.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(1, IN_FEATURES)
    torch.onnx.export(model, example, str(version_dir / "model.onnx"), input_names=["x"],
                      output_names=["logits"], dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
                      opset_version=13, do_constant_folding=True)
    torch.save(model.state_dict(), out / "wide_mlp.pt")
    print(f"wrote {version_dir / 'model.onnx'} and {out / 'wide_mlp.pt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
