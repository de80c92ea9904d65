#!/usr/bin/python3
"""Train the character-level LSTM language model of examples/charlm.

Model: embedding(V, 32) -> 2-layer LSTM (hidden 128, sequence-major) -> linear(V),
with PyTorch's parameter names (encoder.*, rnn.*, decoder.*) so that the weights load
into charlm.loom as they are.

Corpus: "Pride and Prejudice" by Jane Austen (public domain), as shipped by the Debian
package r-cran-janeaustenr (see DATA.md). The package stores the text as an R lazy-load
database; this script reads it with a small R-deserializer of its own, so neither R nor
the package's dependencies are needed:

    apt-get download r-cran-janeaustenr
    dpkg -x r-cran-janeaustenr_*_all.deb /tmp/janeaustenr
    /usr/bin/python3 examples/charlm/train.py \
        --rdata /tmp/janeaustenr/usr/lib/R/site-library/janeaustenr/data/Rdata

(with the package installed, the default --rdata path is used). `--corpus FILE` trains
on a plain text file instead (e.g. the excerpt corpus.txt, for a quick try; it then
needs --out DIR).

Writes, next to this script:
    vocab.json          the characters, in id order (sorted unique characters)
    charlm.safetensors  the weights (float32, written by hand: torch 1.13 has no safetensors)
    reference/          a prompt, its zero initial states, and PyTorch's outputs for it

Deterministic: fixed seeds, one thread; two runs give bit-identical files. The committed
weights were produced with Debian 12's python3-torch 1.13 on one thread with OpenBLAS
loaded through LD_LIBRARY_PATH (see README.md): Debian's default reference BLAS trains
the same way but ~10x slower, and a different BLAS may change the last bits.
"""

import argparse
import gzip
import hashlib
import json
import math
import os
import struct
import sys
import time
import zlib

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_RDATA = "/usr/lib/R/site-library/janeaustenr/data/Rdata"
BOOK = "prideprejudice"
# sha256 of the text this script extracts from r-cran-janeaustenr 1.0.0-1 (Debian 12);
BOOK_SHA256 = "dfc684d4f857fa938268f9ab9c5567b64bd0691251eca959644adeabe6287a4d"  # checked after extraction

EMB, HIDDEN, LAYERS = 32, 128, 2
REF_PROMPT = "It is a truth univer"  # 20 characters, for reference/


# ---------------------------------------------------------------------------
# Reading the text out of an R lazy-load database (Rdata.rdx / Rdata.rdb).
# Only what this package's data needs: pairlists, vectors, strings, symbols, refs.

class _RUnserializer:
    def __init__(self, data):
        self.b, self.p = data, 0
        self.refs = []

    def int(self):
        (v,) = struct.unpack_from(">i", self.b, self.p)
        self.p += 4
        return v

    def top(self):
        if self.b[:2] != b"X\n":
            raise ValueError("not an XDR R serialization")
        self.p = 2
        version = self.int()
        self.int(), self.int()  # writer and minimal reader versions
        if version == 3:
            n = self.int()  # native encoding name
            self.p += n
        return self.item()

    def item(self):
        flags = self.int()
        t = flags & 0xFF
        has_attr, has_tag = flags & (1 << 9), flags & (1 << 10)
        if t in (254, 242, 251):  # NILVALUE, EMPTYENV, MISSINGARG
            return None
        if t == 255:  # REFSXP
            return self.refs[(flags >> 8) - 1]
        if t == 1:  # SYMSXP
            name = self.item()
            self.refs.append(name)
            return name
        if t == 9:  # CHARSXP
            n = self.int()
            if n == -1:
                return None
            s = self.b[self.p:self.p + n].decode("utf-8")
            self.p += n
            return s
        if t == 2:  # LISTSXP (pairlist), returned as [(tag, value), ...]
            if has_attr:
                self.item()
            tag = self.item() if has_tag else None
            car = self.item()
            cdr = self.item()
            return [(tag, car)] + (cdr if isinstance(cdr, list) else [])
        if t in (16, 19):  # STRSXP, VECSXP
            v = [self.item() for _ in range(self.int())]
        elif t in (10, 13):  # LGLSXP, INTSXP
            n = self.int()
            v = list(struct.unpack_from(">%di" % n, self.b, self.p))
            self.p += 4 * n
        elif t == 14:  # REALSXP
            n = self.int()
            v = list(struct.unpack_from(">%dd" % n, self.b, self.p))
            self.p += 8 * n
        else:
            raise ValueError("unsupported R type %d" % t)
        if has_attr:
            return {"value": v, "attributes": dict(self.item())}
        return v


def read_rdata_book(base, name):
    index = _RUnserializer(gzip.decompress(open(base + ".rdx", "rb").read())).top()
    fields = dict(zip(index["attributes"]["names"], index["value"]))
    variables = fields["variables"]
    where = dict(zip(variables["attributes"]["names"], variables["value"]))[name]
    offset, length = int(where[0]), int(where[1])
    with open(base + ".rdb", "rb") as f:
        f.seek(offset)
        blob = f.read(length)
    # 4-byte big-endian uncompressed length, then zlib data (R's compression type 1).
    (size,) = struct.unpack(">I", blob[:4])
    raw = zlib.decompress(blob[4:])
    assert len(raw) == size
    lines = _RUnserializer(raw).top()
    if isinstance(lines, dict):
        lines = lines["value"]
    return "\n".join(l if l is not None else "" for l in lines) + "\n"


# ---------------------------------------------------------------------------
# safetensors, written by hand.

def save_safetensors(path, tensors):
    names = sorted(tensors)
    header, blobs, offset = {}, [], 0
    for name in names:
        a = np.ascontiguousarray(tensors[name].detach().cpu().numpy().astype("<f4"))
        data = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for data in blobs:
            f.write(data)


# ---------------------------------------------------------------------------
# Model.

class CharLM(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.encoder = nn.Embedding(vocab, EMB)
        self.rnn = nn.LSTM(EMB, HIDDEN, LAYERS)  # sequence-major: [T, B, F]
        self.decoder = nn.Linear(HIDDEN, vocab)

    def forward(self, tokens, state=None):
        y, (h_n, c_n) = self.rnn(self.encoder(tokens), state)
        return self.decoder(y), (h_n, c_n)


def batchify(ids, streams):
    n = len(ids) // streams
    return ids[: n * streams].view(streams, n).t().contiguous()  # [n, streams]


@torch.no_grad()
def evaluate(model, data, bptt):
    model.eval()
    total, count, state = 0.0, 0, None
    for i in range(0, data.size(0) - 1, bptt):
        x = data[i:i + bptt]
        y = data[i + 1:i + 1 + len(x)]
        x = x[: len(y)]
        logits, state = model(x, state)
        total += nn.functional.cross_entropy(
            logits.view(-1, logits.size(-1)), y.reshape(-1), reduction="sum").item()
        count += y.numel()
    model.train()
    return total / count


@torch.no_grad()
def sample(model, vocab, prompt, n, temperature, seed):
    model.eval()
    index = {c: i for i, c in enumerate(vocab)}
    g = torch.Generator().manual_seed(seed)
    x = torch.tensor([[index[c]] for c in prompt], dtype=torch.long)
    logits, state = model(x)
    out = []
    for _ in range(n):
        p = torch.softmax(logits[-1, 0] / temperature, dim=-1)
        nxt = torch.multinomial(p, 1, generator=g).item()
        out.append(vocab[nxt])
        logits, state = model(torch.tensor([[nxt]]), state)
    model.train()
    return prompt + "".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rdata", default=DEFAULT_RDATA,
                    help="janeaustenr's data/Rdata (without .rdb/.rdx)")
    ap.add_argument("--corpus", help="train on this plain text file instead")
    ap.add_argument("--out", help="output folder (default: beside this script; required with --corpus,"
                    " so that a quick try never overwrites the committed files)")
    ap.add_argument("--epochs", type=int, default=32)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--bptt", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)

    if args.corpus and not args.out:
        sys.exit("error: --corpus needs --out DIR")
    args.out = args.out or HERE
    if args.corpus:
        text = open(args.corpus, encoding="utf-8").read()
    else:
        text = read_rdata_book(args.rdata, BOOK)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        print("corpus: %s from %s (%d chars, sha256 %s)" % (BOOK, args.rdata, len(text), digest))
        if BOOK_SHA256 and digest != BOOK_SHA256:
            sys.exit("error: extracted text differs from the one the weights were trained on")

    vocab = sorted(set(text))
    index = {c: i for i, c in enumerate(vocab)}
    ids = torch.tensor([index[c] for c in text], dtype=torch.long)
    split = int(len(ids) * 0.9)
    train = batchify(ids[:split], args.batch)
    valid = batchify(ids[split:], 8)
    print("vocab %d, train %d chars, valid %d chars" % (len(vocab), split, len(ids) - split))

    model = CharLM(len(vocab))
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps_per_epoch = math.ceil((train.size(0) - 1) / args.bptt)
    total_steps = args.epochs * steps_per_epoch
    # Linear warm-up over 100 steps, then cosine decay to 5% of the peak rate.
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) *
        (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps))))

    best, best_state = float("inf"), None
    t0 = time.time()
    for epoch in range(1, args.epochs + 1):
        state, total, count = None, 0.0, 0
        for i in range(0, train.size(0) - 1, args.bptt):
            x = train[i:i + args.bptt]
            y = train[i + 1:i + 1 + len(x)]
            x = x[: len(y)]
            if state is not None:  # truncated BPTT: carry the state, cut the graph
                state = tuple(s.detach() for s in state)
            logits, state = model(x, state)
            loss = nn.functional.cross_entropy(logits.view(-1, len(vocab)), y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            sched.step()
            total += loss.item() * y.numel()
            count += y.numel()
        v = evaluate(model, valid, 256)
        if v < best:
            best = v
            best_state = {k: t.clone() for k, t in model.state_dict().items()}
        print("epoch %2d  train %.4f  valid %.4f  (%.0f s)" % (epoch, total / count, v, time.time() - t0),
              flush=True)

    model.load_state_dict(best_state)
    train_loss = evaluate(model, train, 256)
    valid_loss = evaluate(model, valid, 256)
    print("best model: train %.4f  valid %.4f nats/char; training took %.0f s"
          % (train_loss, valid_loss, time.time() - t0))

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "vocab.json"), "w") as f:
        json.dump(vocab, f)
        f.write("\n")
    save_safetensors(os.path.join(args.out, "charlm.safetensors"), model.state_dict())

    # Reference outputs for an end-to-end check: PyTorch run on a 20-character prompt.
    ref = os.path.join(args.out, "reference")
    os.makedirs(ref, exist_ok=True)
    model.eval()
    with torch.no_grad():
        tokens = torch.tensor([[index[c]] for c in REF_PROMPT], dtype=torch.long)  # [T, 1]
        h0 = torch.zeros(LAYERS, 1, HIDDEN)
        c0 = torch.zeros(LAYERS, 1, HIDDEN)
        logits, (h_n, c_n) = model(tokens, (h0, c0))
    np.save(os.path.join(ref, "tokens.npy"), tokens.numpy().astype(np.int64))
    np.save(os.path.join(ref, "h0.npy"), h0.numpy().astype(np.float32))
    np.save(os.path.join(ref, "c0.npy"), c0.numpy().astype(np.float32))
    np.save(os.path.join(ref, "logits.npy"), logits.numpy().astype(np.float32))
    np.save(os.path.join(ref, "h_n.npy"), h_n.numpy().astype(np.float32))
    np.save(os.path.join(ref, "c_n.npy"), c_n.numpy().astype(np.float32))
    with open(os.path.join(ref, "prompt.txt"), "w") as f:
        f.write(REF_PROMPT)

    for i, prompt in enumerate(["It is a truth universally acknowledged",
                                "\"My dear Mr. Bennet,\"",
                                "Elizabeth"]):
        print("--- sample %d (temperature 0.8)" % (i + 1))
        print(sample(model, vocab, prompt, 300, 0.8, seed=i))


if __name__ == "__main__":
    main()
