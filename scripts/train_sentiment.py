#!/usr/bin/python3
"""Trains the `sentiment` example and exports it: examples/models/sentiment/.

    /usr/bin/python3 scripts/train_sentiment.py

Reads examples/data/sentiment.tsv (scripts/make_sentiment_corpus.py writes it), builds a
vocabulary from the training rows, trains a small convolutional text classifier with PyTorch
(embeddings, a width-3 convolution so "not boring" and "but ... great" count, max-pooling over
the real tokens, a linear layer to two logits) and exports it to ONNX: `input_ids` INT64
[batch, 32] in, `logits` FP32 [batch, 2] out. Writes the model, vocab.txt, labels.txt, the
config (with the `predict:` section that turns `{"text": ...}` into ids and logits into
`{"sentiment": ..., "confidence": ...}`) and metrics.json with the held-out accuracy.

Tokenization here mirrors the server's tokenizer for this corpus (ASCII text, whole-word
vocabulary): lowercase, split on whitespace, every punctuation character its own token.
"""
import json
import os
import random
import re

import torch
from torch import nn

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(REPO, "examples", "data", "sentiment.tsv")
FREEFORM = os.path.join(REPO, "examples", "data", "sentiment_freeform.tsv")
OUT = os.path.join(REPO, "examples", "models", "sentiment")
MAX_LEN = 32
LABELS = ["negative", "positive"]
SPECIALS = ["[PAD]", "[UNK]"]

CONFIG = """# A small text classifier trained by scripts/train_sentiment.py on examples/data/sentiment.tsv.
# POST /predict {"text": "This movie was amazing!"} -> {"sentiment": "positive", "confidence": ...}
backend: onnxruntime
max_batch_size: 64
inputs:
  - {name: input_ids, datatype: INT64, dims: [32]}
outputs:
  - {name: logits, datatype: FP32, dims: [2]}
predict:
  default: true
  inputs:
    - tensor: input_ids
      text: text
      tokenizer:
        vocab: vocab.txt
        lowercase: true
        max_length: 32
        pad_token: "[PAD]"
        unk_token: "[UNK]"
        max_chars: 2000
  outputs:
    - tensor: logits
      softmax: true
      labels: labels.txt
      label_field: sentiment
      score_field: confidence
"""


def tokenize(text):
    return re.findall(r"\w+|[^\w\s]", text.lower())


def read_corpus(path=CORPUS):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#"):
                continue
            fields = line.rstrip("\n").split("\t")
            split, label, text = fields if len(fields) == 3 else ["freeform"] + fields
            rows.append((split, LABELS.index(label), text))
    return rows


def encode(text, vocab):
    ids = [vocab.get(t, 1) for t in tokenize(text)][:MAX_LEN]
    return ids + [0] * (MAX_LEN - len(ids))


class TextCnn(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, 32, padding_idx=0)
        self.conv = nn.Conv1d(32, 64, kernel_size=3, padding=1)
        self.out = nn.Linear(64, 2)

    def forward(self, input_ids):
        mask = (input_ids != 0).unsqueeze(1).to(torch.float32)      # [B, 1, L]
        h = torch.relu(self.conv(self.embed(input_ids).transpose(1, 2)))  # [B, 64, L]
        h = h * mask - (1.0 - mask) * 1e4                            # padding never wins the max
        return self.out(h.max(dim=2).values)


def main():
    torch.manual_seed(7)
    random.seed(7)
    rows = read_corpus()
    train = [r for r in rows if r[0] == "train"]
    test = [r for r in rows if r[0] == "test"]
    counts = {}
    for _, _, text in train:
        for t in tokenize(text):
            counts[t] = counts.get(t, 0) + 1
    words = sorted(t for t, n in counts.items() if n >= 2)
    vocab = {t: i for i, t in enumerate(SPECIALS + words)}
    x = torch.tensor([encode(t, vocab) for _, _, t in train])
    y = torch.tensor([label for _, label, _ in train])
    model = TextCnn(len(vocab))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for epoch in range(12):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        xt = torch.tensor([encode(t, vocab) for _, _, t in test])
        yt = torch.tensor([label for _, label, _ in test])
        accuracy = (model(xt).argmax(1) == yt).float().mean().item()
        train_accuracy = (model(x).argmax(1) == y).float().mean().item()
        free = read_corpus(FREEFORM)
        xf = torch.tensor([encode(t, vocab) for _, _, t in free])
        yf = torch.tensor([label for _, label, _ in free])
        freeform_accuracy = (model(xf).argmax(1) == yf).float().mean().item()
    os.makedirs(os.path.join(OUT, "1"), exist_ok=True)
    torch.onnx.export(model, (x[:2],), os.path.join(OUT, "1", "model.onnx"),
                      input_names=["input_ids"], output_names=["logits"],
                      dynamic_axes={"input_ids": {0: "batch"}, "logits": {0: "batch"}},
                      opset_version=13)
    with open(os.path.join(OUT, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(SPECIALS + words) + "\n")
    with open(os.path.join(OUT, "labels.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(LABELS) + "\n")
    with open(os.path.join(OUT, "config.yaml"), "w", encoding="utf-8") as f:
        f.write(CONFIG)
    metrics = {"corpus": "examples/data/sentiment.tsv", "train_rows": len(train),
               "test_rows": len(test), "vocab_size": len(vocab),
               "train_accuracy": round(train_accuracy, 4), "test_accuracy": round(accuracy, 4),
               "freeform_rows": len(free), "freeform_accuracy": round(freeform_accuracy, 4)}
    with open(os.path.join(OUT, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
        f.write("\n")
    print(json.dumps(metrics))


if __name__ == "__main__":
    main()
