#!/usr/bin/python3
"""Generate loom's PyTorch golden test cases.

Run with Debian's interpreter (python3-torch 1.13 and numpy import only there):

    /usr/bin/python3 tests/golden/make_goldens.py

Every case is a folder tests/golden/<case>/ holding
    model.loom            the model in loom's DSL (the text lives in this script),
    weights.safetensors   the module's state_dict (user cells: loom's parameter names),
                          written by this script (torch 1.13 has no safetensors support),
    inputs/<name>.npy     every model input (float32; tokens and lengths int64),
    expected/<name>.npy   every model output, computed by PyTorch in float32.

The script is deterministic: a fixed seed per case, one thread, deterministic
algorithms; re-running it rewrites byte-identical files. It deletes and recreates
only the case folders it lists below.
"""

import collections
import json
import os
import re
import shutil
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

HERE = os.path.dirname(os.path.abspath(__file__))

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
torch.set_default_dtype(torch.float32)

OD = collections.OrderedDict


# --------------------------------------------------------------------------------------
# File writers
# --------------------------------------------------------------------------------------

def safetensors_bytes(tensors):
    """Serialize {name: float32 tensor} as safetensors (names sorted, header padded
    with spaces to a multiple of 8, little-endian data)."""
    header = OD()
    blobs = []
    offset = 0
    for name in sorted(tensors):
        arr = tensors[name].detach().cpu().contiguous().numpy()
        assert arr.dtype == np.float32, (name, arr.dtype)
        data = arr.astype("<f4").tobytes(order="C")
        header[name] = OD([("dtype", "F32"), ("shape", list(arr.shape)),
                           ("data_offsets", [offset, offset + len(data)])])
        blobs.append(data)
        offset += len(data)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((-len(hjson)) % 8)
    return struct.pack("<Q", len(hjson)) + hjson + b"".join(blobs)


def read_safetensors(path):
    """Minimal reader, used to check what the writer produced."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    body = raw[8 + n:]
    out = {}
    end = 0
    for name, info in header.items():
        assert info["dtype"] == "F32"
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(body[b:e], dtype="<f4").reshape(info["shape"])
        end = max(end, e)
    assert end == len(body)
    return out


def save_npy(path, arr):
    arr = np.ascontiguousarray(arr)
    assert arr.dtype in (np.float32, np.int64), arr.dtype
    with open(path, "wb") as f:
        np.save(f, arr, allow_pickle=False)


# --------------------------------------------------------------------------------------
# Helpers for building cases
# --------------------------------------------------------------------------------------

BIAS_NOISE = 0.1


def perturb(module):
    """PyTorch default init, then make every bias nonzero and distinct (LayerNorm's
    weight too: its default of all ones would hide a missing scale)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf.startswith("bias"):
                p.add_(BIAS_NOISE * torch.randn_like(p))
        for m in module.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.add_(BIAS_NOISE * torch.randn_like(m.weight))


def state_dict_of(module):
    return OD((k, v.detach().clone()) for k, v in module.state_dict().items())


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float32)


def tokens(T, B, vocab):
    t = torch.randint(0, vocab, (T, B), dtype=torch.int64)
    t[0, 0] = 0            # both ends of the id range appear
    t[-1, -1] = vocab - 1
    return t


def lengths_tensor(values, T):
    lens = torch.tensor(values, dtype=torch.int64)
    assert int(lens.max()) == T and int(lens.min()) == 1, "lengths must include T and 1"
    assert len(set(values)) == len(values), "lengths must be distinct"
    assert values != sorted(values, reverse=True), "lengths must be unsorted"
    return lens


def run_packed(rnn, x, lens, hx=None, batch_first=False):
    """PyTorch's masked-sequence semantics: pack (unsorted), run, pad back to full T."""
    T = x.shape[1] if batch_first else x.shape[0]
    packed = pack_padded_sequence(x, lens, batch_first=batch_first, enforce_sorted=False)
    out, state = rnn(packed, hx)
    y, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=T)
    return y, state


# --------------------------------------------------------------------------------------
# Straightforward reference for user-defined cells: loop over layers, directions and
# time steps; entries past their length keep their state and output zeros.
# --------------------------------------------------------------------------------------

def run_user_cell(step, params, label, names, x, layers, bidirectional, lengths, init):
    """x: [T, B, I]. init: list of [L*D, B, H_s] tensors (one per state).
    step(p, x_t, states) -> new states; the per-step output is the first state.
    Returns (y [T, B, D*H_0], [final state s: [L*D, B, H_s]])."""
    T, B, _ = x.shape
    D = 2 if bidirectional else 1
    if lengths is None:
        lengths = torch.full((B,), T, dtype=torch.int64)
    valid = torch.arange(T)[:, None] < lengths[None, :]           # [T, B]
    finals = [[] for _ in init]
    inp = x
    for l in range(layers):
        outs = []
        for d in range(D):
            suffix = "_l%d%s" % (l, "_reverse" if d else "")
            p = {n: params["%s.%s%s" % (label, n, suffix)] for n in names}
            states = [s[l * D + d] for s in init]
            out = torch.zeros(T, B, states[0].shape[-1])
            for t in (range(T) if d == 0 else reversed(range(T))):
                new = step(p, inp[t], states)
                m = valid[t][:, None]
                states = [torch.where(m, n, s) for n, s in zip(new, states)]
                out[t] = torch.where(m, states[0], torch.zeros_like(states[0]))
            outs.append(out)
            for k, s in enumerate(states):
                finals[k].append(s)
        inp = torch.cat(outs, dim=-1)
    return inp, [torch.stack(f) for f in finals]


def mv(W, x):
    """loom's per-sample `W @ x` for a batch x [B, in]."""
    return x @ W.t()


def peephole_step(p, x, states):
    h, c = states
    i, f, g, o = torch.chunk(mv(p["W"], x) + mv(p["U"], h) + p["b"], 4, dim=-1)
    i = torch.sigmoid(i + p["p_i"] * c)
    f = torch.sigmoid(f + p["p_f"] * c)
    c = f * c + i * torch.tanh(g)
    h = torch.sigmoid(o + p["p_o"] * c) * torch.tanh(c)
    return [h, c]


def onnx_gru_lbr0_step(p, x, states):
    # ONNX GRU, gate order z, r, h, linear_before_reset = 0:
    #   z = sigmoid(W_z x + R_z h + Wb_z + Rb_z)
    #   r = sigmoid(W_r x + R_r h + Wb_r + Rb_r)
    #   n = tanh(W_h x + R_h (r * h) + Wb_h + Rb_h)
    #   h' = (1 - z) * n + z * h
    (h,) = states
    xz, xr, xn = torch.chunk(mv(p["W"], x) + p["Wb"] + p["Rb"], 3, dim=-1)
    hz, hr = torch.chunk(mv(p["R"], h), 2, dim=-1)
    z = torch.sigmoid(xz + hz)
    r = torch.sigmoid(xr + hr)
    n = torch.tanh(xn + mv(p["Rh"], r * h))
    return [(1 - z) * n + z * h]


def init_user_params(label, decls, sizes, layers, bidirectional, H, biases):
    """PyTorch-RNN-style default init, U(-1/sqrt(H), 1/sqrt(H)), in a fixed order
    (layer, direction, declaration order); then perturb the bias-like params.
    decls: [(name, shape-function(in_size) -> shape)]."""
    D = 2 if bidirectional else 1
    k = 1.0 / (H ** 0.5)
    params = OD()
    for l in range(layers):
        in_size = sizes if l == 0 else D * H
        for d in range(D):
            suffix = "_l%d%s" % (l, "_reverse" if d else "")
            for name, shape_fn in decls:
                t = torch.empty(*shape_fn(in_size)).uniform_(-k, k)
                if name in biases:
                    t += BIAS_NOISE * torch.randn_like(t)
                params["%s.%s%s" % (label, name, suffix)] = t
    return params


# --------------------------------------------------------------------------------------
# The cases. Each builder returns (weights, inputs, outputs) as ordered dicts of tensors.
# --------------------------------------------------------------------------------------

CASES = []


def case(name, seed, loom):
    def register(fn):
        CASES.append((name, seed, loom.strip("\n") + "\n", fn))
        return fn
    return register


# 1 ------------------------------------------------------------------------------------
@case("rnn_tanh", 1001, """
# Elman RNN, tanh, one layer.
model RnnTanh(hidden = 6) {
  input x : f32[T, B, 7]
  y, h_n = rnn: rnn(x, hidden)
  output y, h_n
}
""")
def _():
    T, B, I, H = 5, 3, 7, 6
    m = nn.Module()
    m.rnn = nn.RNN(I, H)
    perturb(m)
    x = randn(T, B, I)
    y, h_n = m.rnn(x)
    return state_dict_of(m), OD(x=x), OD(y=y, h_n=h_n)


# 2 ------------------------------------------------------------------------------------
@case("rnn_relu", 1002, """
# Elman RNN, relu, two layers.
model RnnRelu(hidden = 6) {
  input x : f32[T, B, 7]
  y, h_n = rnn: rnn(x, hidden, layers = 2, nonlinearity = relu)
  output y, h_n
}
""")
def _():
    T, B, I, H = 5, 3, 7, 6
    m = nn.Module()
    m.rnn = nn.RNN(I, H, num_layers=2, nonlinearity="relu")
    perturb(m)
    x = randn(T, B, I)
    y, h_n = m.rnn(x)
    return state_dict_of(m), OD(x=x), OD(y=y, h_n=h_n)


# 3 ------------------------------------------------------------------------------------
@case("lstm", 1003, """
# LSTM, one layer.
model Lstm(hidden = 6) {
  input x : f32[T, B, 7]
  y, (h_n, c_n) = rnn: lstm(x, hidden)
  output y, h_n, c_n
}
""")
def _():
    T, B, I, H = 5, 3, 7, 6
    m = nn.Module()
    m.rnn = nn.LSTM(I, H)
    perturb(m)
    x = randn(T, B, I)
    y, (h_n, c_n) = m.rnn(x)
    return state_dict_of(m), OD(x=x), OD(y=y, h_n=h_n, c_n=c_n)


# 4 ------------------------------------------------------------------------------------
@case("gru", 1004, """
# GRU, one layer.
model Gru(hidden = 6) {
  input x : f32[T, B, 7]
  y, h_n = rnn: gru(x, hidden)
  output y, h_n
}
""")
def _():
    T, B, I, H = 5, 3, 7, 6
    m = nn.Module()
    m.rnn = nn.GRU(I, H)
    perturb(m)
    x = randn(T, B, I)
    y, h_n = m.rnn(x)
    return state_dict_of(m), OD(x=x), OD(y=y, h_n=h_n)


# 5 ------------------------------------------------------------------------------------
@case("lstm_stacked_bidir", 1005, """
# LSTM, two layers, bidirectional.
model LstmStackedBidir(hidden = 6) {
  input x : f32[T, B, 7]
  y, (h_n, c_n) = rnn: lstm(x, hidden, layers = 2, bidirectional = true)
  output y, h_n, c_n
}
""")
def _():
    T, B, I, H = 5, 3, 7, 6
    m = nn.Module()
    m.rnn = nn.LSTM(I, H, num_layers=2, bidirectional=True)
    perturb(m)
    x = randn(T, B, I)
    y, (h_n, c_n) = m.rnn(x)
    return state_dict_of(m), OD(x=x), OD(y=y, h_n=h_n, c_n=c_n)


# 6 ------------------------------------------------------------------------------------
@case("gru_bidir_lengths", 1006, """
# GRU, bidirectional, variable lengths (unsorted; include T and 1).
model GruBidirLengths(hidden = 6) {
  input x       : f32[T, B, 7]
  input lengths : i64[B]
  y, h_n = rnn: gru(x, hidden, bidirectional = true, lengths = lengths)
  output y, h_n
}
""")
def _():
    T, B, I, H = 5, 4, 7, 6
    m = nn.Module()
    m.rnn = nn.GRU(I, H, bidirectional=True)
    perturb(m)
    x = randn(T, B, I)
    lens = lengths_tensor([2, 5, 1, 4], T)
    y, h_n = run_packed(m.rnn, x, lens)
    return state_dict_of(m), OD(x=x, lengths=lens), OD(y=y, h_n=h_n)


# 7 ------------------------------------------------------------------------------------
@case("lstm_proj", 1007, """
# LSTM with projection (proj_size), two layers.
model LstmProj(hidden = 6, proj = 4) {
  input x : f32[T, B, 7]
  y, (h_n, c_n) = rnn: lstm(x, hidden, layers = 2, proj_size = proj)
  output y, h_n, c_n
}
""")
def _():
    T, B, I, H, P = 5, 3, 7, 6, 4
    m = nn.Module()
    m.rnn = nn.LSTM(I, H, num_layers=2, proj_size=P)
    perturb(m)
    x = randn(T, B, I)
    y, (h_n, c_n) = m.rnn(x)
    return state_dict_of(m), OD(x=x), OD(y=y, h_n=h_n, c_n=c_n)


# 8 ------------------------------------------------------------------------------------
@case("lstm_full", 1008, """
# LSTM with everything at once: two layers, bidirectional, lengths, projection,
# batch_first, initial states, inter-layer dropout (identity at inference).
model LstmFull(hidden = 6, proj = 4) {
  input x       : f32[B, T, 7]
  input lengths : i64[B]
  input h0      : f32[4, B, 4]
  input c0      : f32[4, B, 6]
  y, (h_n, c_n) = rnn: lstm(x, hidden, layers = 2, bidirectional = true, lengths = lengths, state = (h0, c0), batch_first = true, proj_size = proj, dropout = 0.3)
  output y, h_n, c_n
}
""")
def _():
    T, B, I, H, P = 5, 3, 7, 6, 4
    m = nn.Module()
    m.rnn = nn.LSTM(I, H, num_layers=2, bidirectional=True, batch_first=True,
                    proj_size=P, dropout=0.3)
    perturb(m)
    m.eval()
    x = randn(B, T, I)
    lens = lengths_tensor([1, 5, 3], T)
    h0 = randn(4, B, P)
    c0 = randn(4, B, H)
    y, (h_n, c_n) = run_packed(m.rnn, x, lens, (h0, c0), batch_first=True)
    return (state_dict_of(m), OD(x=x, lengths=lens, h0=h0, c0=c0),
            OD(y=y, h_n=h_n, c_n=c_n))


# 9 ------------------------------------------------------------------------------------
@case("rnn_batch_first_state", 1009, """
# Elman RNN (tanh), batch_first, with an initial state.
model RnnBatchFirstState(hidden = 6) {
  input x  : f32[B, T, 7]
  input h0 : f32[1, B, 6]
  y, h_n = rnn: rnn(x, hidden, state = h0, batch_first = true)
  output y, h_n
}
""")
def _():
    T, B, I, H = 5, 3, 7, 6
    m = nn.Module()
    m.rnn = nn.RNN(I, H, batch_first=True)
    perturb(m)
    x = randn(B, T, I)
    h0 = randn(1, B, H)
    y, h_n = m.rnn(x, h0)
    return state_dict_of(m), OD(x=x, h0=h0), OD(y=y, h_n=h_n)


# 10 -----------------------------------------------------------------------------------
@case("gru_stacked_state", 1010, """
# GRU, two layers, with an initial state.
model GruStackedState(hidden = 6) {
  input x  : f32[T, B, 7]
  input h0 : f32[2, B, 6]
  y, h_n = rnn: gru(x, hidden, layers = 2, state = h0)
  output y, h_n
}
""")
def _():
    T, B, I, H = 5, 3, 7, 6
    m = nn.Module()
    m.rnn = nn.GRU(I, H, num_layers=2)
    perturb(m)
    x = randn(T, B, I)
    h0 = randn(2, B, H)
    y, h_n = m.rnn(x, h0)
    return state_dict_of(m), OD(x=x, h0=h0), OD(y=y, h_n=h_n)


# 11 -----------------------------------------------------------------------------------
@case("embedding_linear_softmax", 1011, """
# Non-recurrent layers: embedding, linear, softmax, log_softmax, layernorm.
model EmbeddingLinearSoftmax(vocab = 11, emb = 5, classes = 9) {
  input tokens : i64[T, B]
  e = encoder: embedding(tokens, vocab, emb)
  z = fc: linear(e, classes)
  p = softmax(z)
  q = log_softmax(z)
  n = norm: layernorm(e)
  output z, p, q, n
}
""")
def _():
    T, B, V, E, C = 5, 3, 11, 5, 9
    m = nn.Module()
    m.encoder = nn.Embedding(V, E)
    m.fc = nn.Linear(E, C)
    m.norm = nn.LayerNorm(E)
    perturb(m)
    tok = tokens(T, B, V)
    e = m.encoder(tok)
    z = m.fc(e)
    p = torch.softmax(z, dim=-1)
    q = torch.log_softmax(z, dim=-1)
    n = m.norm(e)
    return state_dict_of(m), OD(tokens=tok), OD(z=z, p=p, q=q, n=n)


# 12 -----------------------------------------------------------------------------------
# The decoder reuses the embedding matrix [vocab, emb]. To keep the LSTM's input size
# (emb) different from its hidden size, the LSTM projects its output back to emb.
@case("tied_lm", 1012, """
# Language model with tied weights: the decoder reuses the embedding matrix.
# The LSTM projects to emb (proj_size) so that hidden != emb.
model TiedLM(vocab = 11, emb = 5, hidden = 6) {
  input tokens : i64[T, B]
  x             = encoder: embedding(tokens, vocab, emb)
  y, (h_n, c_n) = rnn: lstm(x, hidden, proj_size = emb)
  logits        = dec: linear(y, vocab, weight = encoder.weight)
  output logits, h_n, c_n
}
""")
def _():
    T, B, V, E, H = 5, 3, 11, 5, 6
    m = nn.Module()
    m.encoder = nn.Embedding(V, E)
    m.rnn = nn.LSTM(E, H, proj_size=E)
    m.dec = nn.Linear(E, V)
    m.dec.weight = m.encoder.weight
    perturb(m)
    tok = tokens(T, B, V)
    y, (h_n, c_n) = m.rnn(m.encoder(tok))
    logits = m.dec(y)
    sd = state_dict_of(m)
    assert "dec.weight" in sd and torch.equal(sd["dec.weight"], sd["encoder.weight"])
    return sd, OD(tokens=tok), OD(logits=logits, h_n=h_n, c_n=c_n)


# 13 -----------------------------------------------------------------------------------
@case("word_lm", 1013, """
# pytorch/examples word_language_model (LSTM, untied), inference.
model WordLM(vocab = 23, emb = 6, hidden = 8) {
  input tokens : i64[T, B]
  x             = encoder: embedding(tokens, vocab, emb)
  h, (h_n, c_n) = rnn: lstm(dropout(x, 0.2), hidden, layers = 2, dropout = 0.2)
  logits        = decoder: linear(dropout(h, 0.2), vocab)
  output logits, h_n, c_n
}
""")
def _():
    T, B, V, E, H = 6, 4, 23, 6, 8

    class RNNModel(nn.Module):  # as pytorch/examples/word_language_model/model.py
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout(0.2)
            self.encoder = nn.Embedding(V, E)
            self.rnn = nn.LSTM(E, H, 2, dropout=0.2)
            self.decoder = nn.Linear(H, V)
            initrange = 0.1
            nn.init.uniform_(self.encoder.weight, -initrange, initrange)
            nn.init.zeros_(self.decoder.bias)
            nn.init.uniform_(self.decoder.weight, -initrange, initrange)

        def forward(self, inp, hidden=None):
            emb = self.drop(self.encoder(inp))
            output, hidden = self.rnn(emb, hidden)
            output = self.drop(output)
            return self.decoder(output), hidden

    m = RNNModel()
    perturb(m)  # also gives the zero-initialized decoder bias nonzero values
    m.eval()
    tok = tokens(T, B, V)
    logits, (h_n, c_n) = m(tok)
    return state_dict_of(m), OD(tokens=tok), OD(logits=logits, h_n=h_n, c_n=c_n)


# 14 -----------------------------------------------------------------------------------
PEEPHOLE_CELL = """
cell PeepholeLSTM(x[I], h[H], c[H]) -> (h, c) {
  param W[4H, I], U[4H, H], b[4H], p_i[H], p_f[H], p_o[H]
  i, f, g, o = split(W @ x + U @ h + b, 4)
  i = sigmoid(i + p_i * c)
  f = sigmoid(f + p_f * c)
  c = f * c + i * tanh(g)
  h = sigmoid(o + p_o * c) * tanh(c)
}
"""


@case("peephole", 1014, """
# User-defined cell: LSTM with peephole connections; two layers, bidirectional, lengths.
""" + PEEPHOLE_CELL + """
model Peephole(hidden = 6) {
  input x       : f32[T, B, 7]
  input lengths : i64[B]
  y, (h_n, c_n) = rnn: PeepholeLSTM(x, hidden, layers = 2, bidirectional = true, lengths = lengths)
  output y, h_n, c_n
}
""")
def _():
    T, B, I, H, L = 5, 3, 7, 6, 2
    names = ["W", "U", "b", "p_i", "p_f", "p_o"]
    decls = [("W", lambda i: (4 * H, i)), ("U", lambda i: (4 * H, H)),
             ("b", lambda i: (4 * H,)), ("p_i", lambda i: (H,)),
             ("p_f", lambda i: (H,)), ("p_o", lambda i: (H,))]
    params = init_user_params("rnn", decls, I, L, True, H, biases={"b"})
    x = randn(T, B, I)
    lens = lengths_tensor([2, 5, 1], T)
    zeros = torch.zeros(2 * L, B, H)
    y, (h_n, c_n) = run_user_cell(peephole_step, params, "rnn", names, x, L, True,
                                  lens, [zeros, zeros])
    check_user_cell_driver(params, x, lens, L, H)
    return params, OD(x=x, lengths=lens), OD(y=y, h_n=h_n, c_n=c_n)


def check_user_cell_driver(params, x, lens, L, H):
    """With zero peepholes the peephole cell is nn.LSTM (b = bias_ih + bias_hh): the
    reference driver must then agree with PyTorch's packed bidirectional LSTM."""
    I = x.shape[-1]
    lstm = nn.LSTM(I, H, num_layers=L, bidirectional=True)
    zeroed = OD(params)
    with torch.no_grad():
        for l in range(L):
            for sfx in ("_l%d" % l, "_l%d_reverse" % l):
                getattr(lstm, "weight_ih" + sfx).copy_(params["rnn.W" + sfx])
                getattr(lstm, "weight_hh" + sfx).copy_(params["rnn.U" + sfx])
                getattr(lstm, "bias_ih" + sfx).copy_(0.25 * params["rnn.b" + sfx])
                getattr(lstm, "bias_hh" + sfx).copy_(0.75 * params["rnn.b" + sfx])
                for p in ("p_i", "p_f", "p_o"):
                    zeroed["rnn.%s%s" % (p, sfx)] = torch.zeros(H)
    zeros = torch.zeros(2 * L, x.shape[1], H)
    y_ref, (h_ref, c_ref) = run_packed(lstm, x, lens)
    y, (h, c) = run_user_cell(peephole_step, zeroed, "rnn",
                              ["W", "U", "b", "p_i", "p_f", "p_o"], x, L, True, lens,
                              [zeros, zeros])
    for a, e in ((y, y_ref), (h, h_ref), (c, c_ref)):
        assert torch.allclose(a, e, rtol=1e-5, atol=1e-6), (a - e).abs().max()


# 14b ----------------------------------------------------------------------------------
LAYERNORM_CELL = """
# Layer-normalized LSTM (Ba et al. 2016, as pytorch/benchmarks' LayerNormLSTMCell):
# each gate projection and the cell state are normalized.
cell LayerNormLSTM(x[I], h[H], c[H]) -> (h, c) {
  param W[4H, I], U[4H, H], g_x[4H], b_x[4H], g_h[4H], b_h[4H], g_c[H], b_c[H]
  i, f, g, o = split(layernorm(W @ x, g_x, b_x) + layernorm(U @ h, g_h, b_h), 4)
  c = layernorm(sigmoid(f) * c + sigmoid(i) * tanh(g), g_c, b_c)
  h = sigmoid(o) * tanh(c)
}
"""
LAYERNORM_NAMES = ["W", "U", "g_x", "b_x", "g_h", "b_h", "g_c", "b_c"]


def layernorm_lstm_step(p, x, states):
    h, c = states
    ln = lambda v, g, b: nn.functional.layer_norm(v, (v.shape[-1],), p[g], p[b], 1e-5)  # noqa: E731
    gates = ln(mv(p["W"], x), "g_x", "b_x") + ln(mv(p["U"], h), "g_h", "b_h")
    i, f, g, o = torch.chunk(gates, 4, dim=-1)
    c = ln(torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g), "g_c", "b_c")
    return [torch.sigmoid(o) * torch.tanh(c), c]


def layernorm_params(label, I, layers, bidirectional, H):
    """The layer-norm LSTM's parameters: matrices as any cell's, gains 1 + noise and
    shifts as noise (F.layer_norm applies them as nn.LayerNorm's weight and bias)."""
    decls = [("W", lambda i: (4 * H, i)), ("U", lambda i: (4 * H, H)),
             ("g_x", lambda i: (4 * H,)), ("b_x", lambda i: (4 * H,)),
             ("g_h", lambda i: (4 * H,)), ("b_h", lambda i: (4 * H,)),
             ("g_c", lambda i: (H,)), ("b_c", lambda i: (H,))]
    params = init_user_params(label, decls, I, layers, bidirectional, H, biases=set())
    for k, v in params.items():
        if ".g_" in k:
            params[k] = 1.0 + 0.3 * torch.randn_like(v)
        elif ".b_" in k:
            params[k] = 0.2 * torch.randn_like(v)
    return params


@case("layernorm_lstm", 1017, """
# User-defined cell with layer normalization inside the step; bidirectional, lengths.
""" + LAYERNORM_CELL + """
model LayerNormLSTMTagger(hidden = 6) {
  input x       : f32[T, B, 5]
  input lengths : i64[B]
  y, (h_n, c_n) = rnn: LayerNormLSTM(x, hidden, bidirectional = true, lengths = lengths)
  output y, h_n, c_n
}
""")
def _():
    T, B, I, H = 6, 3, 5, 6
    params = layernorm_params("rnn", I, 1, True, H)
    x = randn(T, B, I)
    lens = lengths_tensor([6, 1, 4], T)
    zeros = torch.zeros(2, B, H)
    y, (h_n, c_n) = run_user_cell(layernorm_lstm_step, params, "rnn", LAYERNORM_NAMES,
                                  x, 1, True, lens, [zeros, zeros])
    return params, OD(x=x, lengths=lens), OD(y=y, h_n=h_n, c_n=c_n)


# 15 -----------------------------------------------------------------------------------
ONNX_GRU_CELL = """
# ONNX GRU with linear_before_reset = 0 (gate order z, r, h): the reset gate is applied
# to h BEFORE the recurrent matmul of the candidate, unlike nn.GRU.
cell OnnxGRU(x[I], h[H]) -> (h) {
  param W[3H, I], R[2H, H], Rh[H, H], Wb[3H], Rb[3H]
  xz, xr, xn = split(W @ x + Wb + Rb, 3)
  hz, hr = split(R @ h, 2)
  z = sigmoid(xz + hz)
  r = sigmoid(xr + hr)
  n = tanh(xn + Rh @ (r * h))
  h = (1 - z) * n + z * h
}
"""


@case("onnx_gru_lbr0", 1015, """
# User-defined cell: ONNX-style GRU (linear_before_reset = 0); bidirectional, initial state.
""" + ONNX_GRU_CELL + """
model OnnxGruLbr0(hidden = 6) {
  input x  : f32[T, B, 7]
  input h0 : f32[2, B, 6]
  y, h_n = rnn: OnnxGRU(x, hidden, bidirectional = true, state = h0)
  output y, h_n
}
""")
def _():
    T, B, I, H = 5, 3, 7, 6
    names = ["W", "R", "Rh", "Wb", "Rb"]
    decls = [("W", lambda i: (3 * H, i)), ("R", lambda i: (2 * H, H)),
             ("Rh", lambda i: (H, H)), ("Wb", lambda i: (3 * H,)),
             ("Rb", lambda i: (3 * H,))]
    params = init_user_params("rnn", decls, I, 1, True, H, biases={"Wb", "Rb"})
    x = randn(T, B, I)
    h0 = randn(2, B, H)
    y, (h_n,) = run_user_cell(onnx_gru_lbr0_step, params, "rnn", names, x, 1, True,
                              None, [h0])
    check_onnx_gru_numpy(params, x, h0, y, h_n, H)
    return params, OD(x=x, h0=h0), OD(y=y, h_n=h_n)


def check_onnx_gru_numpy(params, x, h0, y, h_n, H):
    """An independent float64 NumPy transcription of the ONNX operator spec (stacked
    W/R/B in ONNX layout, one sequence at a time), checked against the reference."""
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))
    T, B, _ = x.shape
    X = x.double().numpy()
    for d, sfx in enumerate(("_l0", "_l0_reverse")):
        g = lambda n: params["rnn." + n + sfx].double().numpy()
        W = g("W")                                        # [3H, I] rows z, r, h
        R = np.concatenate([g("R"), g("Rh")], axis=0)     # [3H, H] rows z, r, h
        Wb, Rb = g("Wb"), g("Rb")
        Wz, Wr, Wh = W[:H], W[H:2 * H], W[2 * H:]
        Rz, Rr, Rh = R[:H], R[H:2 * H], R[2 * H:]
        Wbz, Wbr, Wbh = Wb[:H], Wb[H:2 * H], Wb[2 * H:]
        Rbz, Rbr, Rbh = Rb[:H], Rb[H:2 * H], Rb[2 * H:]
        for b in range(B):
            Ht = h0[d, b].double().numpy()
            for t in (range(T) if d == 0 else reversed(range(T))):
                Xt = X[t, b]
                zt = sig(Xt @ Wz.T + Ht @ Rz.T + Wbz + Rbz)
                rt = sig(Xt @ Wr.T + Ht @ Rr.T + Wbr + Rbr)
                ht = np.tanh(Xt @ Wh.T + (rt * Ht) @ Rh.T + Rbh + Wbh)
                Ht = (1 - zt) * ht + zt * Ht
                assert np.allclose(y[t, b, d * H:(d + 1) * H].double().numpy(), Ht,
                                   rtol=1e-5, atol=1e-6)
            assert np.allclose(h_n[d, b].double().numpy(), Ht, rtol=1e-5, atol=1e-6)


# 16 -----------------------------------------------------------------------------------
@case("sentiment", 1016, """
# Sequence classification: bidirectional LSTM over variable lengths, final states of
# both directions concatenated, then a linear classifier.
model Sentiment(vocab = 11, emb = 5, hidden = 6) {
  input tokens  : i64[T, B]
  input lengths : i64[B]
  x             = embedding: embedding(tokens, vocab, emb)
  _, (h_n, c_n) = rnn: lstm(x, hidden, bidirectional = true, lengths = lengths)
  logits        = fc: linear(concat(h_n[0], h_n[1]), 2)
  output logits
}
""")
def _():
    T, B, V, E, H = 6, 4, 11, 5, 6
    m = nn.Module()
    m.embedding = nn.Embedding(V, E)
    m.rnn = nn.LSTM(E, H, bidirectional=True)
    m.fc = nn.Linear(2 * H, 2)
    perturb(m)
    tok = tokens(T, B, V)
    lens = lengths_tensor([6, 3, 1, 4], T)
    _, (h_n, c_n) = run_packed(m.rnn, m.embedding(tok), lens)
    logits = m.fc(torch.cat([h_n[0], h_n[1]], dim=-1))
    return state_dict_of(m), OD(tokens=tok, lengths=lens), OD(logits=logits)


# --------------------------------------------------------------------------------------
# Consistency of each model.loom with the tensors written beside it
# --------------------------------------------------------------------------------------

INPUT_RE = re.compile(r"^\s*input\s+(\w+)\s*:\s*(f32|i64)\[([^\]]*)\]\s*(#.*)?$")
OUTPUT_RE = re.compile(r"^\s*output\s+([\w\s,]+?)\s*(#.*)?$")
MODEL_RE = re.compile(r"^\s*model\s+\w+\s*\(([^)]*)\)\s*\{")


def check_loom_text(name, text, inputs, outputs):
    consts, decl_inputs, decl_outputs = {}, OD(), []
    for line in text.splitlines():
        mm = MODEL_RE.match(line)
        if mm:
            for item in mm.group(1).split(","):
                k, v = item.split("=")
                consts[k.strip()] = int(v)
        mi = INPUT_RE.match(line)
        if mi:
            decl_inputs[mi.group(1)] = (mi.group(2), [d.strip() for d in mi.group(3).split(",")])
        mo = OUTPUT_RE.match(line)
        if mo:
            decl_outputs = [o.strip() for o in mo.group(1).split(",")]
    assert list(decl_inputs) == list(inputs), (name, list(decl_inputs), list(inputs))
    assert decl_outputs == list(outputs), (name, decl_outputs, list(outputs))
    symbols = {}
    for iname, (dtype, dims) in decl_inputs.items():
        t = inputs[iname]
        want = torch.float32 if dtype == "f32" else torch.int64
        assert t.dtype == want, (name, iname, t.dtype)
        assert len(dims) == t.dim(), (name, iname, dims, tuple(t.shape))
        for d, n in zip(dims, t.shape):
            if d.isdigit():
                assert int(d) == n, (name, iname, dims, tuple(t.shape))
            elif d in consts:
                assert consts[d] == n, (name, iname, dims, tuple(t.shape))
            else:
                assert symbols.setdefault(d, n) == n, (name, iname, d, symbols[d], n)
    if "T" in symbols and "B" in symbols:
        assert symbols["T"] != symbols["B"] and symbols["B"] > 1, (name, symbols)


# --------------------------------------------------------------------------------------

def write_case(name, seed, loom, build):
    torch.manual_seed(seed)
    np.random.seed(seed)
    with torch.no_grad():
        weights, inputs, outputs = build()
    check_loom_text(name, loom, inputs, outputs)

    folder = os.path.join(HERE, name)
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    os.makedirs(os.path.join(folder, "inputs"))
    os.makedirs(os.path.join(folder, "expected"))

    with open(os.path.join(folder, "model.loom"), "w", encoding="utf-8", newline="\n") as f:
        f.write(loom)
    weights = OD((k, v.float().contiguous()) for k, v in weights.items())
    wpath = os.path.join(folder, "weights.safetensors")
    with open(wpath, "wb") as f:
        f.write(safetensors_bytes(weights))
    back = read_safetensors(wpath)
    assert sorted(back) == sorted(weights)
    for k, v in weights.items():
        assert np.array_equal(back[k], v.numpy()), k

    for iname, t in inputs.items():
        arr = t.numpy()
        assert arr.dtype in (np.float32, np.int64)
        save_npy(os.path.join(folder, "inputs", iname + ".npy"), arr)
    shapes = []
    for oname, t in outputs.items():
        assert t.dtype == torch.float32, (name, oname, t.dtype)
        assert torch.isfinite(t).all(), (name, oname)
        save_npy(os.path.join(folder, "expected", oname + ".npy"), t.contiguous().numpy())
        shapes.append("%s%s" % (oname, list(t.shape)))
    return weights, inputs, shapes


def folder_size(path):
    total = 0
    for root, _, files in os.walk(path):
        for fn in files:
            total += os.path.getsize(os.path.join(root, fn))
    return total


def main():
    names = [c[0] for c in CASES]
    assert len(set(names)) == len(names)
    only = sys.argv[1:]  # case names: rewrite only these (default: all)
    assert all(n in names for n in only), "unknown case in %s" % only
    rows = []
    for name, seed, loom, build in CASES:
        if only and name not in only:
            continue
        weights, inputs, shapes = write_case(name, seed, loom, build)
        ins = ", ".join("%s%s" % (k, list(v.shape)) for k, v in inputs.items())
        rows.append((name, str(len(weights)), ins, ", ".join(shapes)))

    head = ("case", "#params", "inputs", "outputs")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(3)]
    fmt = "  ".join("%%-%ds" % w for w in widths) + "  %s"
    print(fmt % head)
    print(fmt % tuple("-" * len(h) for h in head))
    for r in rows:
        print(fmt % r)
    size = folder_size(HERE)
    print("\n%d cases, tests/golden is %d bytes" % (len(rows), size))
    assert size < 1 << 20, "goldens grew past 1 MB"


if __name__ == "__main__":
    sys.exit(main())
