#!/usr/bin/env python3
"""The baseline a team would write by hand: FastAPI + uvicorn + PyTorch serving the benchmark's
wide MLP over the KServe v2 JSON subset the load generator uses (model metadata and infer).

    /usr/bin/python3 bench/baselines/fastapi_server.py WEIGHTS.pt PORT [TORCH_THREADS]

One uvicorn worker process; PyTorch intra-op threads default to the machine's cores, the same
thread budget Slipway gets.
"""

import os
import sys

import numpy as np
import torch
import uvicorn
from fastapi import FastAPI, HTTPException, Request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from make_bench_models import CLASSES, IN_FEATURES, build_model  # noqa: E402

weights, port = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else (os.cpu_count() or 1))
model = build_model().eval()
model.load_state_dict(torch.load(weights))
app = FastAPI()


@app.get("/v2")
def server_metadata():
    return {"name": "fastapi-baseline", "version": "1", "extensions": []}


@app.get("/v2/health/ready")
def ready():
    return {"ready": True}


@app.get("/v2/models/wide_mlp")
def model_metadata():
    return {"name": "wide_mlp", "versions": ["1"], "platform": "pytorch",
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, IN_FEATURES]}],
            "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, CLASSES]}]}


@app.post("/v2/models/wide_mlp/infer")
async def infer(request: Request):
    body = await request.json()
    try:
        (tensor,) = body["inputs"]
        x = torch.from_numpy(np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"]))
    except (KeyError, ValueError, TypeError) as e:
        raise HTTPException(status_code=400, detail=str(e))
    with torch.no_grad():
        y = model(x).numpy()
    return {"model_name": "wide_mlp", "model_version": "1",
            "outputs": [{"name": "logits", "datatype": "FP32", "shape": list(y.shape),
                         "data": y.ravel().tolist()}]}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
