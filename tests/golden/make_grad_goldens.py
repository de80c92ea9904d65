#!/usr/bin/python3
"""Generate loom's PyTorch gradient golden cases (for `loom grad`).

Run with Debian's interpreter (python3-torch 1.13 and numpy import only there):

    /usr/bin/python3 tests/golden/make_grad_goldens.py

Every case is a folder tests/golden/grad_<name>/ holding
    model.loom                 the model, with its `loss` statement (the text lives here),
    weights.safetensors        the parameters, F32, PyTorch/loom names (a module's
                               state_dict(); user cells: loom's names),
    inputs/<name>.npy          every model input (float32; tokens, targets, lengths and
                               labels int64),
    expected/loss.npy          the loss, a 0-d float32 array,
    expected/grads.safetensors d loss / d parameter, F32, one tensor per loom parameter
                               (a tied weight once, under its owner's name, holding the
                               sum over its uses), computed by PyTorch autograd in float32.

Gradients use training semantics with dropout off: every dropout is the identity
(PyTorch's eval() mode, with autograd on).

Before writing, the script checks each case against an independent float64 NumPy
transcription of the model (one sequence at a time, each run over its own length): the
loss and the outputs must agree, and central finite differences of the NumPy loss, over
every entry of every parameter, must agree with the float32 autograd gradients.

The script reuses make_goldens.py's writers and helpers. It is deterministic (fixed seed
per case, one thread, deterministic algorithms): re-running it rewrites byte-identical
files. It deletes and recreates only the grad_* case folders it lists below.
"""

import collections
import os
import re
import shutil
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_goldens as mg  # noqa: E402  (its main() only runs as a script)

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
torch.set_default_dtype(torch.float32)

OD = collections.OrderedDict

# The goldens' own error, measured against float64 finite differences, must stay well
# inside the gradient tolerance loom is held to (DESIGN.md §3: rtol 1e-3, atol 1e-6).
GRAD_CHECK_RTOL, GRAD_CHECK_ATOL = 1e-4, 1e-7
LOSS_CHECK_RTOL = 1e-5
FD_EPS = 1e-5
SIZE_LIMIT = 300 * 1024


# --------------------------------------------------------------------------------------
# Independent float64 NumPy reference: per sequence, per step, matrix-vector products
# as a cell is written in the DSL (`W @ x`). A sequence of length n runs its forward
# direction over steps 0..n-1 and its reverse direction over n-1..0; its outputs past n
# stay zero and its final states are the states after its last step.
# --------------------------------------------------------------------------------------

def sig(v):
    return 1.0 / (1.0 + np.exp(-v))


def np_lstm_step(p, x, st):
    h, c = st
    i, f, g, o = np.split(p["weight_ih"] @ x + p["bias_ih"] + p["weight_hh"] @ h
                          + p["bias_hh"], 4)
    c = sig(f) * c + sig(i) * np.tanh(g)
    return [sig(o) * np.tanh(c), c]


def np_gru_step(p, x, st):
    (h,) = st
    xr, xz, xn = np.split(p["weight_ih"] @ x + p["bias_ih"], 3)
    hr, hz, hn = np.split(p["weight_hh"] @ h + p["bias_hh"], 3)
    r = sig(xr + hr)
    z = sig(xz + hz)
    n = np.tanh(xn + r * hn)
    return [(1 - z) * n + z * h]


def np_rnn_relu_step(p, x, st):
    (h,) = st
    return [np.maximum(0.0, p["weight_ih"] @ x + p["bias_ih"] + p["weight_hh"] @ h
                       + p["bias_hh"])]


def np_peephole_step(p, x, st):
    h, c = st
    i, f, g, o = np.split(p["W"] @ x + p["U"] @ h + p["b"], 4)
    i = sig(i + p["p_i"] * c)
    f = sig(f + p["p_f"] * c)
    c = f * c + i * np.tanh(g)
    return [sig(o + p["p_o"] * c) * np.tanh(c), c]


def np_layernorm(v, g, b):
    mu = v.mean()
    return (v - mu) / np.sqrt(((v - mu) ** 2).mean() + 1e-5) * g + b


def np_layernorm_lstm_step(p, x, st):
    h, c = st
    gates = (np_layernorm(p["W"] @ x, p["g_x"], p["b_x"])
             + np_layernorm(p["U"] @ h, p["g_h"], p["b_h"]))
    i, f, g, o = np.split(gates, 4)
    c = np_layernorm(sig(f) * c + sig(i) * np.tanh(g), p["g_c"], p["b_c"])
    return [sig(o) * np.tanh(c), c]


def np_recurrent(step, P, label, names, x, layers, D, sizes, lengths=None, init=None):
    """x [T, B, I]; sizes: the size of each state; init: one [L*D, B, S] per state.
    Returns (y [T, B, D*S_0], [final state s: [L*D, B, S_s]])."""
    T, B, _ = x.shape
    if lengths is None:
        lengths = np.full(B, T, dtype=np.int64)
    if init is None:
        init = [np.zeros((layers * D, B, s)) for s in sizes]
    finals = [np.zeros((layers * D, B, s)) for s in sizes]
    inp = x
    for l in range(layers):
        y = np.zeros((T, B, D * sizes[0]))
        for d in range(D):
            sfx = "_l%d%s" % (l, "_reverse" if d else "")
            p = {n: P["%s.%s%s" % (label, n, sfx)] for n in names}
            for b in range(B):
                n = int(lengths[b])
                st = [s[l * D + d, b] for s in init]
                for t in (range(n) if d == 0 else reversed(range(n))):
                    st = step(p, inp[t, b], st)
                    y[t, b, d * sizes[0]:(d + 1) * sizes[0]] = st[0]
                for k, s in enumerate(st):
                    finals[k][l * D + d, b] = s
        inp = y
    return inp, finals


def np_linear(P, label, x, weight=None):
    w = P[label + ".weight"] if weight is None else weight
    return x @ w.T + P[label + ".bias"]


def np_cross_entropy(logits, targets, ignore_index=-100):
    """Mean over the positions whose target is not ignore_index."""
    C = logits.shape[-1]
    z = logits.reshape(-1, C)
    t = targets.reshape(-1)
    total, count = 0.0, 0
    for row, k in zip(z, t):
        if k == ignore_index:
            continue
        m = row.max()
        total += m + np.log(np.exp(row - m).sum()) - row[k]
        count += 1
    return total / count


# --------------------------------------------------------------------------------------
# The cases. A builder returns a dict with
#   weights   OD name -> float32 tensor, written to weights.safetensors
#   params    OD loom parameter name -> float32 leaf tensor (what the gradients are for)
#   inputs    OD input name -> tensor, in the order model.loom declares them
#   forward() -> (loss, OD of the outputs model.loom declares), float32 PyTorch
#   numpy(P, X) -> (loss, OD of outputs): the float64 NumPy transcription, P and X dicts
#                  of float64 / int64 arrays
#   ignore_index  the one the loss statement uses
# --------------------------------------------------------------------------------------

CASES = []


def case(name, seed, loom):
    assert name.startswith("grad_")

    def register(fn):
        CASES.append((name, seed, loom.strip("\n") + "\n", fn))
        return fn
    return register


def module_params(m):
    """named_parameters() lists a tied tensor once, under its first (owning) name."""
    return OD((k, p) for k, p in m.named_parameters())


def lm_batch(T, B, vocab, low=0):
    """pytorch/examples get_batch: tokens are a [T+1, B] block's first T rows, targets
    its last T rows. Ids in [low, vocab); both ends of the range appear."""
    data = torch.randint(low, vocab, (T + 1, B), dtype=torch.int64)
    data[1, 0] = low
    data[-1, -1] = vocab - 1
    return data[:T].clone(), data[1:].clone()


# 1 ------------------------------------------------------------------------------------
@case("grad_word_lm", 2001, """
# pytorch/examples word_language_model (LSTM, untied) with its loss; dropout off.
model WordLM(vocab = 23, emb = 6, hidden = 8) {
  input tokens  : i64[T, B]
  input targets : i64[T, B]
  x             = encoder: embedding(tokens, vocab, emb)
  h, (h_n, c_n) = rnn: lstm(dropout(x, 0.2), hidden, layers = 2, dropout = 0.2)
  logits        = decoder: linear(dropout(h, 0.2), vocab)
  output logits
  loss cross_entropy(logits, targets)   # mean over positions; ignore_index defaults to -100
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
    mg.perturb(m)  # also gives the zero-initialized decoder bias nonzero values
    m.eval()       # dropout off; autograd stays on
    tok, tgt = lm_batch(T, B, V)

    def forward():
        logits, _ = m(tok)
        return F.cross_entropy(logits.view(-1, V), tgt.view(-1)), OD(logits=logits)

    def numpy(P, X):
        x = P["encoder.weight"][X["tokens"]]
        h, _ = np_recurrent(np_lstm_step, P, "rnn", PRELUDE_NAMES, x, 2, 1, [H, H])
        logits = np_linear(P, "decoder", h)
        return np_cross_entropy(logits, X["targets"]), OD(logits=logits)

    return dict(weights=mg.state_dict_of(m), params=module_params(m),
                inputs=OD(tokens=tok, targets=tgt), forward=forward, numpy=numpy,
                ignore_index=-100)


PRELUDE_NAMES = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]


# 2 ------------------------------------------------------------------------------------
@case("grad_gru_lm_ignore", 2002, """
# GRU language model over padded sequences: targets equal to 0 (padding) are ignored,
# and the loss is the mean over the other positions.
model GruLM(vocab = 17, emb = 5, hidden = 7) {
  input tokens  : i64[T, B]
  input targets : i64[T, B]
  x      = encoder: embedding(tokens, vocab, emb)
  h, h_n = rnn: gru(x, hidden)
  logits = decoder: linear(h, vocab)
  output logits, h_n
  loss cross_entropy(logits, targets, ignore_index = 0)
}
""")
def _():
    T, B, V, E, H = 7, 3, 17, 5, 7
    m = nn.Module()
    m.encoder = nn.Embedding(V, E)
    m.rnn = nn.GRU(E, H)
    m.decoder = nn.Linear(H, V)
    mg.perturb(m)
    # Sequences of lengths 7, 4, 2 over ids 1..V-1, padded with id 0 after their end;
    # one target inside the first sequence is 0 as well.
    lens = [7, 4, 2]
    tok, tgt = lm_batch(T, B, V, low=1)
    for b, n in enumerate(lens):
        tok[n:, b] = 0
        tgt[n:, b] = 0
    tgt[2, 0] = 0
    tgt[0, 1] = V - 1
    assert 0 < int((tgt != 0).sum()) < T * B

    def forward():
        y, h_n = m.rnn(m.encoder(tok))
        logits = m.decoder(y)
        loss = F.cross_entropy(logits.view(-1, V), tgt.view(-1), ignore_index=0)
        return loss, OD(logits=logits, h_n=h_n)

    def numpy(P, X):
        x = P["encoder.weight"][X["tokens"]]
        h, (h_n,) = np_recurrent(np_gru_step, P, "rnn", PRELUDE_NAMES, x, 1, 1, [H])
        logits = np_linear(P, "decoder", h)
        return np_cross_entropy(logits, X["targets"], 0), OD(logits=logits, h_n=h_n)

    return dict(weights=mg.state_dict_of(m), params=module_params(m),
                inputs=OD(tokens=tok, targets=tgt), forward=forward, numpy=numpy,
                ignore_index=0)


# 3 ------------------------------------------------------------------------------------
@case("grad_bilstm_lengths", 2003, """
# Sequence classification (the sentiment model): bidirectional LSTM over variable
# lengths, both directions' final states concatenated, linear classifier, one label per
# sequence.
model Sentiment(vocab = 11, emb = 5, hidden = 6) {
  input tokens  : i64[T, B]
  input lengths : i64[B]
  input labels  : i64[B]
  x             = embedding: embedding(tokens, vocab, emb)
  _, (h_n, c_n) = rnn: lstm(x, hidden, bidirectional = true, lengths = lengths)
  logits        = fc: linear(concat(h_n[0], h_n[1]), 3)
  output logits
  loss cross_entropy(logits, labels)
}
""")
def _():
    T, B, V, E, H, C = 6, 4, 11, 5, 6, 3
    m = nn.Module()
    m.embedding = nn.Embedding(V, E)
    m.rnn = nn.LSTM(E, H, bidirectional=True)
    m.fc = nn.Linear(2 * H, C)
    mg.perturb(m)
    tok = mg.tokens(T, B, V)
    lens = mg.lengths_tensor([4, 1, 6, 3], T)
    labels = torch.tensor([2, 0, 1, 2], dtype=torch.int64)

    def forward():
        _, (h_n, c_n) = mg.run_packed(m.rnn, m.embedding(tok), lens)
        logits = m.fc(torch.cat([h_n[0], h_n[1]], dim=-1))
        return F.cross_entropy(logits, labels), OD(logits=logits)

    def numpy(P, X):
        x = P["embedding.weight"][X["tokens"]]
        _, (h_n, c_n) = np_recurrent(np_lstm_step, P, "rnn", PRELUDE_NAMES, x, 1, 2,
                                     [H, H], X["lengths"])
        logits = np_linear(P, "fc", np.concatenate([h_n[0], h_n[1]], axis=-1))
        return np_cross_entropy(logits, X["labels"]), OD(logits=logits)

    return dict(weights=mg.state_dict_of(m), params=module_params(m),
                inputs=OD(tokens=tok, lengths=lens, labels=labels), forward=forward,
                numpy=numpy, ignore_index=-100)


def class_targets(T, B, C):
    """Per-step class targets [T, B] that include the first and the last class."""
    tgt = torch.randint(0, C, (T, B), dtype=torch.int64)
    tgt[0, 0] = 0
    tgt[-1, -1] = C - 1
    return tgt


def tagger_params(cell, fc):
    """A user cell's parameters (made trainable) followed by its classifier's."""
    params = OD(cell)
    params["fc.weight"] = fc.weight
    params["fc.bias"] = fc.bias
    for k in cell:
        cell[k].requires_grad_(True)
    return params


# 4 ------------------------------------------------------------------------------------
PEEPHOLE_NAMES = ["W", "U", "b", "p_i", "p_f", "p_o"]


def torch_peephole(p, x, lens, H):
    """The PeepholeLSTM equations in float32 torch ops, one layer, forward direction,
    zero initial states; an entry past its length keeps its states and outputs zeros."""
    T, B, _ = x.shape
    h = torch.zeros(B, H)
    c = torch.zeros(B, H)
    zero = torch.zeros(B, H)
    ys = []
    for t in range(T):
        i, f, g, o = torch.chunk(x[t] @ p["W"].t() + h @ p["U"].t() + p["b"], 4, dim=-1)
        i = torch.sigmoid(i + p["p_i"] * c)
        f = torch.sigmoid(f + p["p_f"] * c)
        c_new = f * c + i * torch.tanh(g)
        h_new = torch.sigmoid(o + p["p_o"] * c_new) * torch.tanh(c_new)
        live = (t < lens)[:, None]
        h = torch.where(live, h_new, h)
        c = torch.where(live, c_new, c)
        ys.append(torch.where(live, h_new, zero))
    return torch.stack(ys), h[None], c[None]


@case("grad_peephole", 2004, """
# User-defined cell (LSTM with peepholes), one layer, variable lengths, then a per-step
# classifier. Outputs past a sequence's length are zero, so there the logits are the
# bias alone; those positions still count in the loss.
""" + mg.PEEPHOLE_CELL + """
model PeepholeTagger(hidden = 6, classes = 5) {
  input x       : f32[T, B, 7]
  input lengths : i64[B]
  input targets : i64[T, B]
  y, (h_n, c_n) = rnn: PeepholeLSTM(x, hidden, lengths = lengths)
  logits        = fc: linear(y, classes)
  output logits, h_n, c_n
  loss cross_entropy(logits, targets)
}
""")
def _():
    T, B, I, H, C = 5, 4, 7, 6, 5
    decls = [("W", lambda i: (4 * H, i)), ("U", lambda i: (4 * H, H)),
             ("b", lambda i: (4 * H,)), ("p_i", lambda i: (H,)),
             ("p_f", lambda i: (H,)), ("p_o", lambda i: (H,))]
    cell = mg.init_user_params("rnn", decls, I, 1, False, H, biases={"b"})
    fc = nn.Linear(H, C)
    mg.perturb(fc)
    x = mg.randn(T, B, I)
    lens = mg.lengths_tensor([3, 5, 1, 4], T)
    tgt = class_targets(T, B, C)
    params = tagger_params(cell, fc)

    # The loop above against make_goldens' reference driver (forward only).
    with torch.no_grad():
        zeros = torch.zeros(1, B, H)
        y_ref, (h_ref, c_ref) = mg.run_user_cell(mg.peephole_step, cell, "rnn",
                                                 PEEPHOLE_NAMES, x, 1, False, lens,
                                                 [zeros, zeros])
        y, h_n, c_n = torch_peephole({n: cell["rnn.%s_l0" % n] for n in PEEPHOLE_NAMES},
                                     x, lens, H)
        for a, e in ((y, y_ref), (h_n, h_ref), (c_n, c_ref)):
            assert torch.equal(a, e), (a - e).abs().max()

    def forward():
        y, h_n, c_n = torch_peephole({n: cell["rnn.%s_l0" % n] for n in PEEPHOLE_NAMES},
                                     x, lens, H)
        logits = fc(y)
        return (F.cross_entropy(logits.view(-1, C), tgt.view(-1)),
                OD(logits=logits, h_n=h_n, c_n=c_n))

    def numpy(P, X):
        y, (h_n, c_n) = np_recurrent(np_peephole_step, P, "rnn", PEEPHOLE_NAMES, X["x"],
                                     1, 1, [H, H], X["lengths"])
        logits = np_linear(P, "fc", y)
        return np_cross_entropy(logits, X["targets"]), OD(logits=logits, h_n=h_n, c_n=c_n)

    weights = OD((k, v.detach().clone()) for k, v in params.items())
    return dict(weights=weights, params=params,
                inputs=OD(x=x, lengths=lens, targets=tgt), forward=forward, numpy=numpy,
                ignore_index=-100)


# 4b -----------------------------------------------------------------------------------
@case("grad_layernorm_lstm", 2008, """
# User-defined cell with layer normalization in the step (the layer-norm LSTM), two
# layers, then a per-step classifier: gradients flow through every normalization.
""" + mg.LAYERNORM_CELL + """
model LayerNormTagger(hidden = 5, classes = 3) {
  input x       : f32[T, B, 4]
  input targets : i64[T, B]
  y, (h_n, c_n) = rnn: LayerNormLSTM(x, hidden, layers = 2)
  logits        = fc: linear(y, classes)
  output logits
  loss cross_entropy(logits, targets)
}
""")
def _():
    T, B, I, H, C = 4, 3, 4, 5, 3
    cell = mg.layernorm_params("rnn", I, 2, False, H)
    fc = nn.Linear(H, C)
    mg.perturb(fc)
    x = mg.randn(T, B, I)
    tgt = class_targets(T, B, C)
    params = tagger_params(cell, fc)
    zeros = torch.zeros(2, B, H)

    def forward():
        y, _ = mg.run_user_cell(mg.layernorm_lstm_step, cell, "rnn", mg.LAYERNORM_NAMES,
                                x, 2, False, None, [zeros, zeros])
        logits = fc(y)
        return F.cross_entropy(logits.view(-1, C), tgt.view(-1)), OD(logits=logits)

    def numpy(P, X):
        y, _ = np_recurrent(np_layernorm_lstm_step, P, "rnn", mg.LAYERNORM_NAMES, X["x"],
                            2, 1, [H, H])
        logits = np_linear(P, "fc", y)
        return np_cross_entropy(logits, X["targets"]), OD(logits=logits)

    weights = OD((k, v.detach().clone()) for k, v in params.items())
    return dict(weights=weights, params=params, inputs=OD(x=x, targets=tgt),
                forward=forward, numpy=numpy, ignore_index=-100)


# 5 ------------------------------------------------------------------------------------
@case("grad_tied_rnn_relu", 2005, """
# Language model with tied weights: the decoder reuses the embedding matrix, so the RNN's
# hidden size is emb. Two relu layers from a given initial state. loom has one parameter
# encoder.weight; its gradient sums the embedding's and the decoder's contributions.
model TiedRnnRelu(vocab = 13, emb = 6) {
  input tokens  : i64[T, B]
  input targets : i64[T, B]
  input h0      : f32[2, B, emb]
  x      = encoder: embedding(tokens, vocab, emb)
  y, h_n = rnn: rnn(x, emb, layers = 2, nonlinearity = relu, state = h0)
  logits = dec: linear(y, vocab, weight = encoder.weight)
  output logits, h_n
  loss cross_entropy(logits, targets)
}
""")
def _():
    T, B, V, E = 5, 3, 13, 6
    m = nn.Module()
    m.encoder = nn.Embedding(V, E)
    m.rnn = nn.RNN(E, E, num_layers=2, nonlinearity="relu")
    m.dec = nn.Linear(E, V)
    m.dec.weight = m.encoder.weight
    mg.perturb(m)
    tok, tgt = lm_batch(T, B, V)
    h0 = 0.5 * mg.randn(2, B, E)
    params = module_params(m)
    assert "dec.weight" not in params and "encoder.weight" in params

    def forward():
        y, h_n = m.rnn(m.encoder(tok), h0)
        logits = m.dec(y)
        return F.cross_entropy(logits.view(-1, V), tgt.view(-1)), OD(logits=logits, h_n=h_n)

    def numpy(P, X):
        x = P["encoder.weight"][X["tokens"]]
        y, (h_n,) = np_recurrent(np_rnn_relu_step, P, "rnn", PRELUDE_NAMES, x, 2, 1, [E],
                                 init=[X["h0"]])
        logits = np_linear(P, "dec", y, weight=P["encoder.weight"])
        return np_cross_entropy(logits, X["targets"]), OD(logits=logits, h_n=h_n)

    sd = mg.state_dict_of(m)  # holds dec.weight too (== encoder.weight), as tied_lm's
    assert torch.equal(sd["dec.weight"], sd["encoder.weight"])
    return dict(weights=sd, params=params, inputs=OD(tokens=tok, targets=tgt, h0=h0),
                forward=forward, numpy=numpy, ignore_index=-100)


# --------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------

LOSS_RE = re.compile(r"^\s*loss\s+cross_entropy\(\s*(\w+)\s*,\s*(\w+)\s*"
                     r"(?:,\s*ignore_index\s*=\s*(-?\d+)\s*)?\)\s*(#.*)?$")


def check_loss_line(name, text, c, outputs):
    """One loss statement; its targets are a declared int64 input whose entries are
    class ids of the logits or its ignore_index; the ignore_index is the case's."""
    lines = [l for l in text.splitlines() if re.match(r"^\s*loss\b", l)]
    assert len(lines) == 1, (name, lines)
    mm = LOSS_RE.match(lines[0])
    assert mm, (name, lines[0])
    logits_name, tgt_name, ign = mm.group(1), mm.group(2), mm.group(3)
    ignore = int(ign) if ign is not None else -100
    assert ignore == c["ignore_index"], (name, ignore, c["ignore_index"])
    assert re.search(r"^\s*%s\s*=" % logits_name, text, re.M), (name, logits_name)
    tgt = c["inputs"][tgt_name]
    assert tgt.dtype == torch.int64, (name, tgt_name)
    logits = outputs.get(logits_name)
    if logits is not None:
        assert tuple(logits.shape[:-1]) == tuple(tgt.shape), (name, logits.shape, tgt.shape)
        ncls = logits.shape[-1]
        ok = ((tgt >= 0) & (tgt < ncls)) | (tgt == ignore)
        assert bool(ok.all()), (name, tgt)
        assert bool((tgt != ignore).any()), name


def np_params(params):
    return OD((k, v.detach().double().numpy().copy()) for k, v in params.items())


def np_inputs(inputs):
    return {k: (v.double().numpy() if v.dtype == torch.float32 else v.numpy())
            for k, v in inputs.items()}


def check_against_numpy(name, c, loss, outputs, grads):
    """Loss and outputs against the float64 NumPy model; every gradient entry against
    central finite differences of it. Returns (loss rel. error, worst grad error / tol)."""
    P = np_params(c["params"])
    X = np_inputs(c["inputs"])
    loss64, outs64 = c["numpy"](P, X)
    rel = abs(float(loss) - loss64) / abs(loss64)
    assert rel <= LOSS_CHECK_RTOL, (name, float(loss), loss64)
    assert list(outs64) == list(outputs), (name, list(outs64), list(outputs))
    for k, v in outputs.items():
        e = outs64[k]
        assert np.allclose(v.detach().double().numpy(), e, rtol=1e-5, atol=1e-6), \
            (name, k, np.abs(v.detach().double().numpy() - e).max())
    worst = 0.0
    for pname, arr in P.items():
        g = grads[pname].double().numpy()
        fd = np.zeros_like(arr)
        for idx in np.ndindex(*arr.shape):
            keep = arr[idx]
            arr[idx] = keep + FD_EPS
            up = c["numpy"](P, X)[0]
            arr[idx] = keep - FD_EPS
            down = c["numpy"](P, X)[0]
            arr[idx] = keep
            fd[idx] = (up - down) / (2 * FD_EPS)
        ratio = np.abs(g - fd) / (GRAD_CHECK_ATOL + GRAD_CHECK_RTOL * np.abs(fd))
        assert ratio.max() <= 1.0, (name, pname, np.abs(g - fd).max(), fd.flat[ratio.argmax()])
        worst = max(worst, float(ratio.max()))
    return rel, worst


def save_scalar_npy(path, value):
    arr = np.array(value, dtype=np.float32)  # 0-d; np.ascontiguousarray would make it 1-d
    assert arr.shape == ()
    with open(path, "wb") as f:
        np.save(f, arr, allow_pickle=False)


# --------------------------------------------------------------------------------------

def write_case(name, seed, loom, build):
    torch.manual_seed(seed)
    np.random.seed(seed)
    c = build()
    params, inputs = c["params"], c["inputs"]
    for k, p in params.items():
        assert p.dtype == torch.float32 and p.requires_grad and p.is_leaf, (name, k)
    loss, outputs = c["forward"]()
    gl = torch.autograd.grad(loss, list(params.values()))
    grads = OD((k, g.detach().clone().contiguous()) for k, g in zip(params, gl))
    assert loss.dim() == 0 and torch.isfinite(loss), name
    for k, g in grads.items():
        assert g.shape == params[k].shape and torch.isfinite(g).all(), (name, k)
        assert bool((g != 0).any()), (name, k, "gradient is all zeros")

    mg.check_loom_text(name, loom, inputs, outputs)
    check_loss_line(name, loom, c, outputs)
    weights = OD((k, v.detach().float().contiguous()) for k, v in c["weights"].items())
    for k, p in params.items():  # every loom parameter is in the weights file, as is
        assert k in weights and torch.equal(weights[k], p.detach()), (name, k)
    extra = sorted(set(weights) - set(params))
    assert extra in ([], ["dec.weight"]), (name, extra)   # a tied copy, as state_dict()
    loss_rel, worst = check_against_numpy(name, c, loss, outputs, grads)

    folder = os.path.join(HERE, name)
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    os.makedirs(os.path.join(folder, "inputs"))
    os.makedirs(os.path.join(folder, "expected"))
    with open(os.path.join(folder, "model.loom"), "w", encoding="utf-8", newline="\n") as f:
        f.write(loom)
    for fname, tensors in (("weights.safetensors", weights),
                           (os.path.join("expected", "grads.safetensors"), grads)):
        path = os.path.join(folder, fname)
        with open(path, "wb") as f:
            f.write(mg.safetensors_bytes(tensors))
        back = mg.read_safetensors(path)
        assert sorted(back) == sorted(tensors), (name, fname)
        for k, v in tensors.items():
            assert np.array_equal(back[k], v.numpy()), (name, fname, k)
    for iname, t in inputs.items():
        mg.save_npy(os.path.join(folder, "inputs", iname + ".npy"), t.detach().numpy())
    lpath = os.path.join(folder, "expected", "loss.npy")
    save_scalar_npy(lpath, loss.item())
    assert np.load(lpath).shape == () and np.load(lpath) == np.float32(loss.item())

    gmax = max(float(g.abs().max()) for g in grads.values())
    return dict(loss=float(loss), ngrads=len(grads), gmax=gmax, loss_rel=loss_rel,
                worst=worst, size=mg.folder_size(folder),
                inputs=", ".join("%s%s" % (k, list(v.shape)) for k, v in inputs.items()))


def main():
    names = [c[0] for c in CASES]
    assert len(set(names)) == len(names)
    forward_cases = {c[0] for c in mg.CASES}
    assert not forward_cases & set(names)
    head = ("case", "loss", "#grads", "max|grad|", "loss vs f64", "grad err/tol", "bytes",
            "inputs")
    only = sys.argv[1:]  # case names: rewrite only these (default: all)
    assert all(n in names for n in only), "unknown case in %s" % only
    rows = []
    for name, seed, loom, build in CASES:
        if only and name not in only:
            continue
        r = write_case(name, seed, loom, build)
        rows.append((name, "%.7g" % r["loss"], str(r["ngrads"]), "%.4g" % r["gmax"],
                     "%.1e" % r["loss_rel"], "%.3f" % r["worst"], str(r["size"]),
                     r["inputs"]))
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head) - 1)]
    fmt = "  ".join("%%-%ds" % w for w in widths) + "  %s"
    print(fmt % head)
    print(fmt % tuple("-" * len(h) for h in head))
    for r in rows:
        print(fmt % r)
    total = sum(mg.folder_size(os.path.join(HERE, n)) for n in names
                if os.path.isdir(os.path.join(HERE, n)))
    print("\n%d gradient cases, %d bytes (grad err/tol: worst |autograd f32 - finite "
          "differences f64| / (%g + %g |fd|) over all parameter entries)"
          % (len(rows), total, GRAD_CHECK_ATOL, GRAD_CHECK_RTOL))
    assert total < SIZE_LIMIT, "gradient goldens grew past 300 KB"


if __name__ == "__main__":
    sys.exit(main())
