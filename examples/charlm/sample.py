#!/usr/bin/python3
"""Generate text from charlm.safetensors with plain numpy (no PyTorch, no loom).

An independent reader of the committed files: it parses the safetensors header by
hand, runs the same network as charlm.loom (embedding -> 2-layer LSTM, PyTorch gate
order i,f,g,o -> linear), and checks itself against reference/ before sampling.

    /usr/bin/python3 examples/charlm/sample.py --prompt "Elizabeth" --length 300
"""

import argparse
import json
import os
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def load_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", (name, info["dtype"])
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(data[b:e], dtype="<f4").reshape(info["shape"])
    return out


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def forward(w, tokens, h, c):
    """tokens [T, B] int; h, c [layers, B, H]. Returns logits [T, B, V], h_n, c_n."""
    h, c = h.copy(), c.copy()
    x = w["encoder.weight"][tokens]  # [T, B, E]
    layers = h.shape[0]
    for l in range(layers):
        W_ih, W_hh = w["rnn.weight_ih_l%d" % l], w["rnn.weight_hh_l%d" % l]
        b = w["rnn.bias_ih_l%d" % l] + w["rnn.bias_hh_l%d" % l]
        xw = x @ W_ih.T + b  # [T, B, 4H]
        ys = []
        for t in range(x.shape[0]):
            i, f, g, o = np.split(xw[t] + h[l] @ W_hh.T, 4, axis=-1)
            c[l] = sigmoid(f) * c[l] + sigmoid(i) * np.tanh(g)
            h[l] = sigmoid(o) * np.tanh(c[l])
            ys.append(h[l].copy())
        x = np.stack(ys)
    logits = x @ w["decoder.weight"].T + w["decoder.bias"]
    return logits, h, c


def check_reference(w):
    ref = os.path.join(HERE, "reference")
    load = lambda n: np.load(os.path.join(ref, n + ".npy"))
    logits, h_n, c_n = forward(w, load("tokens"), load("h0"), load("c0"))
    worst = 0.0
    for name, got in (("logits", logits), ("h_n", h_n), ("c_n", c_n)):
        want = load(name)
        assert got.shape == want.shape, (name, got.shape, want.shape)
        err = np.abs(got - want) / (1e-5 + 1e-4 * np.abs(want))
        worst = max(worst, float(err.max()))
    # worst <= 1 means |got - want| <= 1e-5 + 1e-4 |want| everywhere (DESIGN.md's forward tolerance)
    print("reference check: %s (worst error %.3f of the tolerance)" % ("ok" if worst <= 1 else "FAILED", worst))
    return worst <= 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompt", default="It is a truth universally acknowledged")
    ap.add_argument("--length", type=int, default=300)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    w = load_safetensors(os.path.join(HERE, "charlm.safetensors"))
    vocab = json.load(open(os.path.join(HERE, "vocab.json")))
    index = {ch: i for i, ch in enumerate(vocab)}
    ok = check_reference(w)

    rng = np.random.default_rng(args.seed)
    layers, hidden = 2, w["rnn.weight_hh_l0"].shape[1]
    h = np.zeros((layers, 1, hidden), np.float32)
    c = np.zeros((layers, 1, hidden), np.float32)
    tokens = np.array([[index[ch]] for ch in args.prompt], np.int64)
    out = []
    for _ in range(args.length):
        logits, h, c = forward(w, tokens, h, c)
        z = logits[-1, 0].astype(np.float64) / args.temperature
        p = np.exp(z - z.max())
        nxt = int(rng.choice(len(vocab), p=p / p.sum()))
        out.append(vocab[nxt])
        tokens = np.array([[nxt]], np.int64)
    print(args.prompt + "".join(out))
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
