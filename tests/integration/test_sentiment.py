"""The `sentiment` example end to end: the request from the README answered over HTTP as written
(curl, no content type of its own), and the example's accuracy on the corpus's held-out split
and on free-form reviews, measured through the server's own tokenizer and `/predict`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import requests

import slipway_testlib as lib

EXAMPLE = Path(lib.REPO_ROOT) / "examples" / "models" / "sentiment"
DATA = Path(lib.REPO_ROOT) / "examples" / "data"


def rows(path: Path, split=None):
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) == 3:
            if fields[0] != split:
                continue
            fields = fields[1:]
        out.append((fields[0], fields[1]))
    return out


def accuracy(url, labeled):
    right = 0
    for i in range(0, len(labeled), 50):
        chunk = labeled[i:i + 50]
        r = requests.post(f"{url}/predict", json=[{"text": t} for _, t in chunk], timeout=60)
        assert r.status_code == 200, r.text
        answers = r.json()
        assert len(answers) == len(chunk)
        right += sum(a["sentiment"] == label for a, (label, _) in zip(answers, chunk))
    return right / len(labeled)


def test_sentiment_example_end_to_end(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copytree(EXAMPLE, repo / "sentiment")
    srv = lib.start_live(repo, log_dir=tmp_path)
    try:
        out = subprocess.run(
            ["curl", "-s", "-X", "POST", f"127.0.0.1:{srv.http_port}/predict",
             "-d", '{"text": "This movie was amazing!"}'],
            capture_output=True, text=True, timeout=30)
        answer = json.loads(out.stdout)
        assert answer["sentiment"] == "positive", answer
        assert 0.5 < answer["confidence"] <= 1.0
        assert set(answer) == {"sentiment", "confidence"}
        bad = requests.post(f"{srv.http_url}/predict", json={"text": "Dull and tedious."},
                            timeout=10).json()
        assert bad["sentiment"] == "negative"

        held_out = accuracy(srv.http_url, rows(DATA / "sentiment.tsv", "test"))
        metrics = json.loads((EXAMPLE / "metrics.json").read_text())
        assert held_out >= 0.8, held_out
        assert abs(held_out - metrics["test_accuracy"]) < 0.01  # the server agrees with training
        freeform = accuracy(srv.http_url, rows(DATA / "sentiment_freeform.tsv"))
        assert freeform >= 0.7, freeform
        assert abs(freeform - metrics["freeform_accuracy"]) < 0.01
    finally:
        lib.stop_ok(srv)
