#!/usr/bin/python3
"""Generate loom's PyTorch training golden cases (for `loom train`).

Run with Debian's interpreter (python3-torch 1.13 and numpy import only there):

    /usr/bin/python3 tests/golden/make_train_goldens.py

Every case is a folder tests/golden/train_<name>/ holding
    model.loom                  the model with its `loss` statement. A language model's
                                inputs are tokens, targets and the recurrent states, its
                                outputs the logits followed by the final states in the
                                states' order; a classifier's inputs are the dataset's
                                arrays (tokens, lengths, labels), its output the logits,
    flags.txt                   the `loom train` flags: steps, batch size, bptt (LMs),
                                optimizer, L1, schedule, seed (datasets),
    tokens.npy                  an LM's training stream, 1-D int64, or
    dataset/<name>.npy          a classifier's named arrays, one sample per row (int64
                                tokens [N, Tmax] padded with random ids, lengths [N],
                                labels [N]), for `--dataset tokens=...,lengths=...,labels=...`,
    init.safetensors            the initial state_dict(), F32, PyTorch names,
    expected/losses.npy         f32 [N]: the logged loss of each of the N steps (its
                                forward, before its update; with --l1 it includes the
                                L1 term),
    expected/final.safetensors  every parameter after N steps and the optimizer state
                                (optimizer.<param>.exp_avg / .exp_avg_sq for adam/adamw,
                                optimizer.<param>.momentum_buffer for sgd with momentum).

A language model's trajectory is pytorch/examples/word_language_model's: batchify() the
stream into [nbatch, B] columns (tail dropped), one step per BPTT chunk i in range(0,
nbatch - 1, bptt) of seq_len = min(bptt, nbatch - 1 - i), the final states of a step
carried (detached) into the next, all states zero again at the start of each epoch;
loss = cross_entropy over the T*B positions. A dataset's: per epoch e the rows in the
order loom::shuffledOrder(N, seed, e) (runtime/Dataset.cpp, replicated here and checked
against the values of its unit test), cut into ceil(N / B) batches (the last one
short), each a packed (pack_padded_sequence, enforce_sorted=False) run from zero
states; loss = cross_entropy over the batch. Then, for both: plus l1 * sum |p| over the
parameters (if --l1; minimized and logged); backward; clip_grad_norm_ (if --clip, of the
total gradient); one torch.optim SGD / Adam / AdamW step (1.13, foreach=False, amsgrad
off); StepLR.step() (if --lr-schedule step). No dropout.

Before writing, the script checks each case against an independent transcription of the
contract (its own batch indexing, its own L1, clipping, schedule and optimizer formulas;
for datasets every sample run alone over its own length instead of packing) run in
float64, which must agree with the float32 golden well inside the training tolerance,
and runs that transcription with one ingredient changed at a time (no weight decay, no
momentum, no clipping, no state reset, L1 after clipping, the schedule stepped early,
no shuffling, the short batch dropped, ...) to show that every such mistake moves the
final weights (or the optimizer state, or the logged losses) far outside the tolerance.
It prints a table of the cases and of those margins.

The script reuses make_goldens.py's writers. It is deterministic (fixed seed per case,
one thread, deterministic algorithms): re-running it rewrites byte-identical files. It
deletes and recreates only the train_* case folders it lists below.
"""

import collections
import copy
import math
import os
import shutil
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_goldens as mg  # noqa: E402  (its main() only runs as a script)

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
torch.set_default_dtype(torch.float32)

OD = collections.OrderedDict

# DESIGN.md §3: per-step training losses and trained weights, rtol 1e-4, atol 2e-5.
RTOL, ATOL = 1e-4, 2e-5
# The float64 transcription must agree with the float32 golden to this fraction of the
# tolerance, and every "must fail" perturbation must exceed the tolerance this many times.
F64_MAX_RATIO = 0.1
MIN_MARGIN = 10.0
SIZE_LIMIT = 200 * 1024
STEPS = 30


# --------------------------------------------------------------------------------------
# The model: embedding -> recurrent layer -> linear (optionally tied to the embedding),
# as pytorch/examples/word_language_model's RNNModel without dropout.
# --------------------------------------------------------------------------------------

class LM(nn.Module):
    def __init__(self, kind, V, E, H, layers=1, tie=False, examples_init=True):
        super().__init__()
        self.kind, self.layers, self.H = kind, layers, H
        self.encoder = nn.Embedding(V, E)
        self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[kind](E, H, layers)
        self.decoder = nn.Linear(H, V)
        if tie:
            assert E == H
            self.decoder.weight = self.encoder.weight
        if examples_init:  # RNNModel.init_weights()
            nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
            nn.init.zeros_(self.decoder.bias)
            if not tie:
                nn.init.uniform_(self.decoder.weight, -0.1, 0.1)
        mg.perturb(self)  # every bias nonzero and distinct (the decoder's zeros too)

    def n_states(self):
        return 2 if self.kind == "lstm" else 1

    def zero_states(self, B, dtype=torch.float32):
        return [torch.zeros(self.layers, B, self.H, dtype=dtype)
                for _ in range(self.n_states())]

    def forward(self, tokens, states):
        hx = tuple(states) if self.kind == "lstm" else states[0]
        y, hn = self.rnn(self.encoder(tokens), hx)
        finals = list(hn) if self.kind == "lstm" else [hn]
        return self.decoder(y), finals


# --------------------------------------------------------------------------------------
# Sequence classification from named arrays (loom train --dataset): the sentiment model
# and its data, tokens [N, Tmax] (one padded sample per row), lengths [N], labels [N].
# --------------------------------------------------------------------------------------

class Classifier(nn.Module):
    """embedding -> bidirectional LSTM over each sample's length -> linear on the final
    states of both directions (loom's names: embedding.*, rnn.*, fc.*)."""

    def __init__(self, V, E, H, C):
        super().__init__()
        self.embedding = nn.Embedding(V, E)
        self.rnn = nn.LSTM(E, H, bidirectional=True)
        self.fc = nn.Linear(2 * H, C)
        mg.perturb(self)

    def forward(self, tokens, lengths):
        """tokens [T, b] (sequence-major, as loom feeds them), lengths [b]: PyTorch's
        packed-sequence semantics (pack_padded_sequence, enforce_sorted=False; h_n is
        returned in the batch's order)."""
        packed = pack_padded_sequence(self.embedding(tokens), lengths, enforce_sorted=False)
        _, (h_n, _) = self.rnn(packed)
        return self.fc(torch.cat([h_n[0], h_n[1]], dim=-1))


def classification_data(N, TMAX, V, C, pad_only):
    """N samples of lengths in 1..TMAX (both ends present, unsorted); valid positions
    hold ids 0..V-1 except pad_only, padding holds random ids 1..V-1 (not a pad id 0;
    pad_only occurs only there, so its embedding row gets no cross-entropy gradient).
    The label is the most frequent residue (id mod C) of the sample's valid ids."""
    lengths = torch.randint(1, TMAX + 1, (N,))
    lengths[int(torch.randint(0, N // 2, (1,)))] = 1
    lengths[N // 2 + int(torch.randint(0, N - N // 2, (1,)))] = TMAX
    valid_ids = torch.tensor([v for v in range(V) if v != pad_only])
    tokens = valid_ids[torch.randint(0, V - 1, (N, TMAX))]
    pads = torch.randint(1, V, (N, TMAX))
    mask = torch.arange(TMAX)[None, :] >= lengths[:, None]
    tokens = torch.where(mask, pads, tokens)
    labels = torch.empty(N, dtype=torch.int64)
    for n in range(N):
        counts = torch.bincount(tokens[n, :lengths[n]] % C, minlength=C)
        labels[n] = int(torch.argmax(counts))  # the first on ties
    assert int(lengths.min()) == 1 and int(lengths.max()) == TMAX
    assert lengths.tolist() != sorted(lengths.tolist(), reverse=True)
    assert set(labels.tolist()) == set(range(C)), labels
    valid = tokens[~mask]
    assert set(valid.tolist()) == set(range(V)) - {pad_only}
    assert int((tokens[mask] == pad_only).sum()) >= 3 and not (tokens[mask] == 0).any()
    return OD(tokens=tokens, lengths=lengths, labels=labels)


def splitmix64(state):
    """runtime/Dataset.cpp's splitMix64: returns (new state, output)."""
    M = (1 << 64) - 1
    state = (state + 0x9e3779b97f4a7c15) & M
    z = state
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
    return state, z ^ (z >> 31)


def shuffled_order(n, seed, epoch):
    """loom::shuffledOrder (runtime/Dataset.cpp): Fisher-Yates driven by splitmix64
    seeded from (seed, epoch), bounded draws by rejection."""
    M = (1 << 64) - 1
    _, first = splitmix64(seed & M)
    state = first ^ (epoch & M)
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        bound = i + 1
        threshold = ((1 << 64) - bound) % bound  # 2^64 mod bound
        while True:
            state, r = splitmix64(state)
            if r >= threshold:
                break
        j = r % bound
        order[i], order[j] = order[j], order[i]
    return order


def check_shuffled_order():
    """The values tests/unit/runtime/DatasetTest.cpp holds for the C++ code."""
    st, a = splitmix64(0)
    _, b = splitmix64(st)
    assert (a, b) == (0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4)
    assert shuffled_order(10, 42, 0) == [4, 6, 7, 0, 9, 5, 1, 2, 3, 8]
    assert shuffled_order(10, 42, 1) == [8, 7, 9, 0, 1, 2, 5, 6, 4, 3]
    assert shuffled_order(10, 7, 0) == [7, 6, 9, 2, 8, 4, 0, 3, 5, 1]
    assert shuffled_order(20, 1234, 3) == [19, 0, 3, 18, 4, 10, 9, 5, 12, 16,
                                           15, 14, 1, 11, 2, 7, 17, 6, 13, 8]
    assert shuffled_order(1, 1, 0) == [0]


# --------------------------------------------------------------------------------------
# The cases. A builder returns dict(model=LM, stream=1-D int64 tensor, cfg=dict) where cfg
# holds steps, batch_size, bptt, optimizer, lr and the optional momentum, nesterov,
# dampening, weight_decay, beta1, beta2, eps, clip, l1, lr_schedule ("step": lr_step,
# lr_gamma); states: the state input names; zero_rows: (parameter, row) pairs that start
# at exactly zero and get no cross-entropy gradient. A dataset case returns
# dict(model=Classifier, data=OD of arrays, vocab=V, cfg=dict) with seed instead of bptt.
# --------------------------------------------------------------------------------------

CASES = []


def case(name, seed, loom):
    assert name.startswith("train_")

    def register(fn):
        CASES.append((name, seed, loom.strip("\n") + "\n", fn))
        return fn
    return register


def markov_stream(n, V, absent=None):
    """n tokens of a random first-order Markov chain over V ids (each id has a few
    likely successors, so there is something to learn); every id occurs in the first
    half of the stream, except `absent` (if given), which never occurs: the chain runs
    over V - 1 ids and the ids from `absent` on are shifted up by one."""
    if absent is not None:
        out = markov_stream(n, V - 1)
        out[out >= absent] += 1
        assert absent not in set(out.tolist())
        assert set(out[:n // 2].tolist()) == set(range(V)) - {absent}
        return out
    P = torch.softmax(2.5 * torch.randn(V, V, dtype=torch.float64), dim=-1)
    out = torch.empty(n, dtype=torch.int64)
    cur = int(torch.randint(0, V, (1,)))
    for k in range(n):
        out[k] = cur
        cur = int(torch.multinomial(P[cur], 1))
    half = out[:n // 2]
    missing = sorted(set(range(V)) - set(half.tolist()))
    pos = 3
    for v in missing:  # overwrite the first repeated ids, spread out
        while int((half == half[pos]).sum()) < 2:
            pos += 1
        half[pos] = v
        pos += 5
    assert set(out[:n // 2].tolist()) == set(range(V))
    return out


def stream_for(nbatch, B, tail, V, absent=None):
    """A stream whose batchify() gives nbatch rows of B columns, `tail` ids dropped."""
    assert 0 <= tail < B
    return markov_stream(nbatch * B + tail, V, absent)


# 1 ------------------------------------------------------------------------------------
@case("train_sgd_clip", 3001, """
# pytorch/examples word_language_model (2-layer LSTM, untied, no dropout) trained with
# SGD: momentum 0.9, nesterov, weight decay 1e-3, gradient norm clipped to 0.25.
model WordLM(vocab = 23, emb = 6, hidden = 8) {
  input tokens  : i64[T, B]
  input targets : i64[T, B]
  input h0      : f32[2, B, hidden]
  input c0      : f32[2, B, hidden]
  x             = encoder: embedding(tokens, vocab, emb)
  h, (h_n, c_n) = rnn: lstm(x, hidden, layers = 2, state = (h0, c0))
  logits        = decoder: linear(h, vocab)
  output logits, h_n, c_n
  loss cross_entropy(logits, targets)
}
""")
def _():
    V, E, H, B, T = 23, 6, 8, 4, 5
    m = LM("lstm", V, E, H, layers=2)
    # nbatch 38: 37 = 7 * 5 + 2, so an epoch is 7 chunks of 5 and one of 2 (8 steps);
    # 30 steps cross three epoch boundaries. 3 trailing ids are dropped.
    return dict(model=m, stream=stream_for(38, B, 3, V), states=["h0", "c0"],
                cfg=dict(steps=STEPS, batch_size=B, bptt=T, optimizer="sgd", lr=0.5,
                         momentum=0.9, nesterov=True, weight_decay=1e-3, clip=0.25))


# 2 ------------------------------------------------------------------------------------
@case("train_adam", 3002, """
# GRU language model trained with Adam (default betas), L2 weight decay 0.01 added to
# the gradient (Adam's weight_decay), gradient norm clipped to 0.4.
model GruLM(vocab = 17, emb = 5, hidden = 7) {
  input tokens  : i64[T, B]
  input targets : i64[T, B]
  input h0      : f32[1, B, hidden]
  x      = encoder: embedding(tokens, vocab, emb)
  h, h_n = rnn: gru(x, hidden, state = h0)
  logits = decoder: linear(h, vocab)
  output logits, h_n
  loss cross_entropy(logits, targets)
}
""")
def _():
    V, E, H, B, T = 17, 5, 7, 3, 6
    m = LM("gru", V, E, H, examples_init=False)  # PyTorch's default init: N(0, 1) embedding
    # nbatch 43: 42 = 7 * 6, an epoch is exactly 7 full chunks (no short one); 1 id dropped.
    return dict(model=m, stream=stream_for(43, B, 1, V), states=["h0"],
                cfg=dict(steps=STEPS, batch_size=B, bptt=T, optimizer="adam", lr=0.01,
                         weight_decay=0.01, clip=0.4))


# 3 ------------------------------------------------------------------------------------
@case("train_adamw", 3003, """
# 2-layer LSTM language model trained with AdamW: decoupled weight decay 0.1,
# betas (0.85, 0.99), eps 1e-7, no clipping.
model WordLM(vocab = 19, emb = 5, hidden = 9) {
  input tokens  : i64[T, B]
  input targets : i64[T, B]
  input h0      : f32[2, B, hidden]
  input c0      : f32[2, B, hidden]
  x             = encoder: embedding(tokens, vocab, emb)
  h, (h_n, c_n) = rnn: lstm(x, hidden, layers = 2, state = (h0, c0))
  logits        = decoder: linear(h, vocab)
  output logits, h_n, c_n
  loss cross_entropy(logits, targets)
}
""")
def _():
    V, E, H, B, T = 19, 5, 9, 5, 4
    m = LM("lstm", V, E, H, layers=2)
    # nbatch 114: 113 = 28 * 4 + 1, an epoch is 28 chunks of 4 and one of length 1
    # (29 steps); step 30 is the first of epoch 2, from zero states. 2 ids dropped.
    return dict(model=m, stream=stream_for(114, B, 2, V), states=["h0", "c0"],
                cfg=dict(steps=STEPS, batch_size=B, bptt=T, optimizer="adamw", lr=0.01,
                         weight_decay=0.1, beta1=0.85, beta2=0.99, eps=1e-7))


# 4 ------------------------------------------------------------------------------------
@case("train_sgd_plain", 3004, """
# tanh RNN language model with tied weights (the decoder reuses encoder.weight, so the
# hidden size is emb): one parameter encoder.weight, whose gradient sums both uses.
# Plain SGD (no momentum, no weight decay), gradient norm clipped to 0.3.
model TiedRnnLM(vocab = 13, emb = 6) {
  input tokens  : i64[T, B]
  input targets : i64[T, B]
  input h0      : f32[1, B, emb]
  x      = encoder: embedding(tokens, vocab, emb)
  y, h_n = rnn: rnn(x, emb, state = h0)
  logits = decoder: linear(y, vocab, weight = encoder.weight)
  output logits, h_n
  loss cross_entropy(logits, targets)
}
""")
def _():
    V, E, B, T = 13, 6, 6, 3
    m = LM("rnn", V, E, E, tie=True)
    # nbatch 21: 20 = 6 * 3 + 2, an epoch is 6 chunks of 3 and one of 2 (7 steps);
    # 5 ids dropped.
    return dict(model=m, stream=stream_for(21, B, 5, V), states=["h0"],
                cfg=dict(steps=STEPS, batch_size=B, bptt=T, optimizer="sgd", lr=1.0,
                         clip=0.3))


# 5 ------------------------------------------------------------------------------------
@case("train_sgd_l1_steplr", 3005, """
# LSTM language model trained with SGD (momentum 0.9, no nesterov) on
# cross_entropy + 1e-3 * sum |p| over all parameters (--l1), the total gradient's norm
# clipped to 0.5, and a step schedule: lr halved every 7 optimizer steps (StepLR).
# Id 11 never occurs in the data and its embedding row starts at exactly zero: |p|'s
# gradient at 0 is 0, so that row never moves.
model LstmLM(vocab = 21, emb = 6, hidden = 9) {
  input tokens  : i64[T, B]
  input targets : i64[T, B]
  input h0      : f32[1, B, hidden]
  input c0      : f32[1, B, hidden]
  x             = encoder: embedding(tokens, vocab, emb)
  h, (h_n, c_n) = rnn: lstm(x, hidden, state = (h0, c0))
  logits        = decoder: linear(h, vocab)
  output logits, h_n, c_n
  loss cross_entropy(logits, targets)
}
""")
def _():
    V, E, H, B, T, ABSENT = 21, 6, 9, 3, 4, 11
    m = LM("lstm", V, E, H, examples_init=False)  # PyTorch's init: N(0, 1) embedding
    with torch.no_grad():
        m.encoder.weight[ABSENT] = 0.0
    # nbatch 31: 30 = 7 * 4 + 2, an epoch is 7 chunks of 4 and one of 2 (8 steps, so
    # epochs and the 7-step schedule do not line up); 1 id dropped.
    return dict(model=m, stream=stream_for(31, B, 1, V, absent=ABSENT),
                states=["h0", "c0"], zero_rows=[("encoder.weight", ABSENT)],
                cfg=dict(steps=STEPS, batch_size=B, bptt=T, optimizer="sgd", lr=1.0,
                         momentum=0.9, clip=0.5, l1=1e-3, lr_schedule="step",
                         lr_step=7, lr_gamma=0.5))


# 6 ------------------------------------------------------------------------------------
@case("train_dataset_adam", 3006, """
# Sequence classification from named arrays (loom train --dataset): the sentiment
# model, embedding -> bidirectional LSTM over each sample's own length -> linear on
# the final states of both directions; one label per sample. Adam with L2 weight decay.
# Padding positions hold random ids, and id 14 occurs only there: neither the loss nor
# the gradient may see them (row 14 of the embedding moves by weight decay alone).
model Sentiment(vocab = 15, emb = 6, hidden = 7) {
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
    V, E, H, C, TMAX, N, B = 15, 6, 7, 3, 8, 27, 4
    m = Classifier(V, E, H, C)
    data = classification_data(N, TMAX, V, C, pad_only=V - 1)
    # 27 samples in batches of 4: 6 full batches and one of 3 per epoch (7 steps);
    # 30 steps are 4 epochs and 2 steps, each epoch in its own shuffled order.
    return dict(model=m, data=data, vocab=V,
                cfg=dict(steps=STEPS, batch_size=B, optimizer="adam", lr=0.01,
                         weight_decay=1e-3, seed=7))


# --------------------------------------------------------------------------------------
# The golden trajectory: pytorch/examples' batchify / get_batch and torch.optim.
# --------------------------------------------------------------------------------------

def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    return data.view(bsz, -1).t().contiguous()


def get_batch(source, i, bptt):
    seq_len = min(bptt, len(source) - 1 - i)
    return source[i:i + seq_len], source[i + 1:i + 1 + seq_len]


def make_optimizer(cfg, params):
    o = cfg["optimizer"]
    wd = cfg.get("weight_decay", 0.0)
    if o == "sgd":
        return torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg.get("momentum", 0.0),
                               dampening=cfg.get("dampening", 0.0), weight_decay=wd,
                               nesterov=cfg.get("nesterov", False), foreach=False)
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[o]
    return cls(params, lr=cfg["lr"], betas=(cfg.get("beta1", 0.9), cfg.get("beta2", 0.999)),
               eps=cfg.get("eps", 1e-8), weight_decay=wd, amsgrad=False, foreach=False)


def make_scheduler(cfg, opt):
    """torch.optim.lr_scheduler.StepLR for --lr-schedule step (stepped after every
    optimizer step), else None."""
    if cfg.get("lr_schedule") is None:
        return None
    assert cfg["lr_schedule"] == "step", cfg["lr_schedule"]
    return torch.optim.lr_scheduler.StepLR(opt, step_size=cfg["lr_step"],
                                           gamma=cfg["lr_gamma"])


def l1_penalty(named):
    """sum over the parameters (a tied tensor once) of sum |p|."""
    return sum(p.abs().sum() for p in named.values())


def optimizer_state(named, opt):
    out = OD()
    for k, p in named.items():
        st = opt.state[p]
        for s in ("exp_avg", "exp_avg_sq", "momentum_buffer"):
            if s in st and st[s] is not None:
                out["optimizer.%s.%s" % (k, s)] = st[s].detach().clone()
    return out


def golden_trajectory(model, stream, cfg):
    """Returns (losses [N] float32, final OD, the first step's inputs and outputs, the
    gradient norm of each step if clipping, the parameters before each step)."""
    B, bptt, N = cfg["batch_size"], cfg["bptt"], cfg["steps"]
    source = batchify(stream, B)
    named = OD(model.named_parameters())  # a tied tensor once, under its owner's name
    opt = make_optimizer(cfg, list(named.values()))
    sched = make_scheduler(cfg, opt)
    losses, norms, first, before = [], [], None, []
    while len(losses) < N:
        hidden = model.zero_states(B)  # a new epoch
        for i in range(0, source.size(0) - 1, bptt):
            if len(losses) == N:
                break
            tokens, targets = get_batch(source, i, bptt)
            hidden = [h.detach() for h in hidden]
            h_in = [h.clone() for h in hidden]
            logits, hidden = model(tokens, hidden)
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))
            if first is None:
                first = (tokens.clone(), targets.clone(), h_in,
                         logits.detach().clone(), [h.detach().clone() for h in hidden])
            if cfg.get("l1"):  # minimized and logged: cross_entropy + l1 * sum |p|
                loss = loss + cfg["l1"] * l1_penalty(named)
            before.append(OD((k, p.detach().clone()) for k, p in named.items()))
            opt.zero_grad()
            loss.backward()
            if cfg.get("clip") is not None:
                norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(),
                                                                  cfg["clip"])))
            opt.step()
            if sched is not None:
                sched.step()
            losses.append(loss.item())
    final = OD((k, p.detach().clone()) for k, p in named.items())
    final.update(optimizer_state(named, opt))
    return np.array(losses, dtype=np.float32), final, first, norms, before


# --------------------------------------------------------------------------------------
# An independent transcription of the contract: batches by index arithmetic on the raw
# stream, the L1 term, clipping, the schedule and optimizers written out. dtype float64
# for the check; the variant keys change one ingredient at a time.
# --------------------------------------------------------------------------------------

def scheduled_lr(cfg, s, variant):
    """The learning rate of optimizer step s (0-based): StepLR's lr * gamma^(s // step)
    (s scheduler steps done)."""
    if cfg.get("lr_schedule") is None:
        return cfg["lr"]
    k = s // cfg["lr_step"]
    if variant.get("schedule_before_step"):  # scheduler.step() before optimizer.step()
        k = (s + 1) // cfg["lr_step"]
    if variant.get("schedule_per_epoch") is not None:  # decays at epoch boundaries
        k = s // variant["schedule_per_epoch"]
    return cfg["lr"] * cfg["lr_gamma"] ** k


def transcribed_update(cfg, named, g, state, s, variant):
    """One step after the backward pass: the L1 term, clipping, the optimizer. g: the
    cross-entropy gradients by name (modified). s: the 0-based step."""
    decoupled = variant.get("decoupled", cfg["optimizer"] == "adamw")
    bias_correction = variant.get("bias_correction", True)
    clip_after_wd = variant.get("clip_after_wd", False)
    lr, wd = scheduled_lr(cfg, s, variant), cfg.get("weight_decay", 0.0)
    mom, damp = cfg.get("momentum", 0.0), cfg.get("dampening", 0.0)
    b1, b2, eps = cfg.get("beta1", 0.9), cfg.get("beta2", 0.999), cfg.get("eps", 1e-8)
    l1 = cfg.get("l1", 0.0)

    def add_l1():
        for name, p in named.items():
            if variant.get("l1_weights_only") and ".bias" in name:
                continue
            sgn = torch.sign(p)
            if variant.get("l1_sign0_one"):  # a subgradient of +1 at 0
                sgn = torch.where(p == 0, torch.ones_like(p), sgn)
            g[name] += l1 * sgn

    with torch.no_grad():
        if l1 and not variant.get("l1_after_clip"):
            add_l1()
        if clip_after_wd and wd and not decoupled:
            for name, p in named.items():
                g[name] += wd * p
        if cfg.get("clip") is not None:
            total = math.sqrt(sum(float((x.double() ** 2).sum()) for x in g.values()))
            coef = min(1.0, cfg["clip"] / (total + 1e-6))
            for x in g.values():
                x.mul_(coef)
        if l1 and variant.get("l1_after_clip"):
            add_l1()
        for name, p in named.items():
            d, st = g[name], state[name]
            if wd and not decoupled and not clip_after_wd:
                d = d + wd * p
            if cfg["optimizer"] == "sgd":
                if mom:
                    st["momentum_buffer"] = (d.clone() if "momentum_buffer" not in st
                                             else mom * st["momentum_buffer"]
                                             + (1 - damp) * d)
                    d = d + mom * st["momentum_buffer"] if cfg.get("nesterov") \
                        else st["momentum_buffer"]
                p.sub_(lr * d)
            else:
                t = s + 1
                if decoupled:
                    p.mul_(1 - lr * wd)
                st["exp_avg"] = b1 * st.get("exp_avg", torch.zeros_like(p)) + (1 - b1) * d
                st["exp_avg_sq"] = (b2 * st.get("exp_avg_sq", torch.zeros_like(p))
                                    + (1 - b2) * d * d)
                bc1 = 1 - b1 ** t if bias_correction else 1.0
                bc2 = 1 - b2 ** t if bias_correction else 1.0
                p.sub_(lr / bc1 * st["exp_avg"]
                       / (st["exp_avg_sq"].sqrt() / math.sqrt(bc2) + eps))


def logged_loss(cfg, named, ce, variant):
    """The step's logged loss: cross_entropy plus the L1 term (unless the variant drops
    it from the log)."""
    if cfg.get("l1") and not variant.get("l1_not_logged"):
        return float(ce) + cfg["l1"] * sum(float(p.abs().sum()) for p in named.values())
    return float(ce)


def final_tensors(named, state):
    final = OD((k, p.detach().clone()) for k, p in named.items())
    for k in named:
        for s, v in state[k].items():
            final["optimizer.%s.%s" % (k, s)] = v
    return final


def transcribed_trajectory(model0, stream, cfg, dtype=torch.float64, **variant):
    cfg = dict(cfg, **{k: v for k, v in variant.items() if k in cfg or k in OPT_KEYS})
    reset = variant.get("reset", True)          # zero states at each epoch start
    carry = variant.get("carry", True)          # final states feed the next step
    drop_short = variant.get("drop_short", False)  # skip an epoch's short last chunk

    model = copy.deepcopy(model0).to(dtype)
    named = OD(model.named_parameters())
    B, bptt, N = cfg["batch_size"], cfg["bptt"], cfg["steps"]
    data = stream.tolist()
    nbatch = len(data) // B
    starts = [i for i in range(0, nbatch - 1, bptt)
              if not (drop_short and nbatch - 1 - i < bptt)]

    def chunk(i, n, shift):  # column b is data[b*nbatch : (b+1)*nbatch]
        return torch.tensor([[data[b * nbatch + i + t + shift] for b in range(B)]
                             for t in range(n)], dtype=torch.int64)

    state = {k: {} for k in named}
    losses = []
    states = model.zero_states(B, dtype)
    for s in range(N):
        k = s % len(starts)
        if (k == 0 and reset) or not carry:
            states = model.zero_states(B, dtype)
        i = starts[k]
        n = min(bptt, nbatch - 1 - i)
        logits, finals = model(chunk(i, n, 0), states)
        tgt = chunk(i, n, 1)
        lsm = torch.log_softmax(logits, dim=-1)
        loss = -lsm.gather(-1, tgt[..., None]).mean()
        grads = torch.autograd.grad(loss, list(named.values()))
        states = [h.detach() for h in finals]
        losses.append(logged_loss(cfg, named, loss, variant))
        if "record" in variant:  # the parameters before each update
            variant["record"].append(OD((k, p.detach().clone()) for k, p in named.items()))
        g = OD(zip(named, [x.detach().clone() for x in grads]))
        transcribed_update(cfg, named, g, state, s, variant)
    return np.array(losses), final_tensors(named, state)


OPT_KEYS = ("momentum", "nesterov", "dampening", "weight_decay", "beta1", "beta2", "eps",
            "clip", "lr", "l1", "lr_schedule", "lr_step", "lr_gamma", "seed")


# --------------------------------------------------------------------------------------
# Datasets: the golden trajectory (pack_padded_sequence, torch.optim) and an independent
# transcription (every sample run alone over its own length, the optimizer written out).
# --------------------------------------------------------------------------------------

def dataset_batches(n, cfg):
    """The rows of each of the cfg["steps"] steps: per epoch e the order
    shuffled_order(n, seed, e) cut into ceil(n / B) batches (the last one short)."""
    B, seed = cfg["batch_size"], cfg["seed"]
    per_epoch = (n + B - 1) // B
    out = []
    for s in range(cfg["steps"]):
        e, k = divmod(s, per_epoch)
        order = shuffled_order(n, seed, e)
        out.append((e, order[k * B:(k + 1) * B]))
    return out


def golden_dataset_trajectory(model, data, cfg):
    """Returns (losses [N] float32, final OD, the first step's inputs and outputs,
    the epoch and rows of each step)."""
    named = OD(model.named_parameters())
    opt = make_optimizer(cfg, list(named.values()))
    losses, first = [], None
    batches = dataset_batches(len(data["labels"]), cfg)
    for _, rows in batches:
        idx = torch.tensor(rows, dtype=torch.int64)
        tokens = data["tokens"][idx].t().contiguous()  # [Tmax, b], as loom feeds it
        lengths, labels = data["lengths"][idx], data["labels"][idx]
        logits = model(tokens, lengths)
        loss = F.cross_entropy(logits, labels)
        if first is None:
            first = (OD(tokens=tokens, lengths=lengths, labels=labels),
                     OD(logits=logits.detach().clone()))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    final = OD((k, p.detach().clone()) for k, p in named.items())
    final.update(optimizer_state(named, opt))
    return np.array(losses, dtype=np.float32), final, first, batches


def transcribed_dataset_trajectory(model0, data, cfg, dtype=torch.float64, **variant):
    cfg = dict(cfg, **{k: v for k, v in variant.items() if k in cfg or k in OPT_KEYS})
    model = copy.deepcopy(model0).to(dtype)
    named = OD(model.named_parameters())
    tokens, lengths, labels = (data[k].tolist() for k in ("tokens", "lengths", "labels"))
    n, B = len(labels), cfg["batch_size"]
    per_epoch = n // B if variant.get("drop_short") else (n + B - 1) // B
    Tmax = len(tokens[0])

    def order_of(e):
        if variant.get("no_shuffle"):
            return list(range(n))
        return shuffled_order(n, cfg["seed"], 0 if variant.get("one_order") else e)

    def final_states(seq):  # seq: the ids one sample is run over -> h_n [2, H]
        x = model.embedding(torch.tensor(seq, dtype=torch.int64))[:, None, :]
        _, (h, _) = model.rnn(x)
        return h[:, 0, :]

    state = {k: {} for k in named}
    losses = []
    for s in range(cfg["steps"]):
        e, k = divmod(s, per_epoch)
        rows = order_of(e)[k * B:(k + 1) * B]
        total = 0
        for r in rows:
            L = Tmax if variant.get("ignore_lengths") else lengths[r]
            h = final_states(tokens[r][:L])
            fwd, rev = h[0], h[1]
            if variant.get("reverse_from_tmax"):  # the reverse direction reads the pads
                rev = final_states(tokens[r])[1]
            feats = torch.cat([rev, fwd] if variant.get("swap_directions") else [fwd, rev])
            logits = model.fc(feats)
            total = total - torch.log_softmax(logits, dim=-1)[labels[r]]
        loss = total / (B if variant.get("divide_by_B") else len(rows))
        grads = torch.autograd.grad(loss, list(named.values()))
        losses.append(logged_loss(cfg, named, loss, variant))
        g = OD(zip(named, [x.detach().clone() for x in grads]))
        transcribed_update(cfg, named, g, state, s, variant)
    return np.array(losses), final_tensors(named, state)


def dataset_variants(cfg, data, n_rows):
    """(label, variant kwargs, must_fail) for a dataset case."""
    out = optimizer_variants(cfg)
    out.append(("no shuffle", dict(no_shuffle=True), WEIGHTS))
    out.append(("epoch 0's order always", dict(one_order=True), WEIGHTS))
    out.append(("seed %d" % (cfg["seed"] + 1), dict(seed=cfg["seed"] + 1), WEIGHTS))
    if n_rows % cfg["batch_size"]:
        out.append(("short batch dropped", dict(drop_short=True), WEIGHTS))
        out.append(("short batch mean / B", dict(divide_by_B=True), WEIGHTS))
    out.append(("lengths ignored", dict(ignore_lengths=True), WEIGHTS))
    out.append(("reverse from Tmax", dict(reverse_from_tmax=True), WEIGHTS))
    out.append(("directions swapped", dict(swap_directions=True), WEIGHTS))
    return out


def redraw_padding(data, V):
    """data with other random ids (0 included) at every padding position."""
    mask = torch.arange(data["tokens"].shape[1])[None, :] >= data["lengths"][:, None]
    g = torch.Generator().manual_seed(1)
    other = torch.randint(0, V, data["tokens"].shape, generator=g)
    out = OD(data)
    out["tokens"] = torch.where(mask, other, data["tokens"])
    assert int((out["tokens"] != data["tokens"]).sum()) > int(mask.sum()) // 2
    return out


def ratio(actual, expected):
    """max |a - e| / (atol + rtol |e|): above 1 fails the test."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    assert a.shape == e.shape, (a.shape, e.shape)
    return float((np.abs(a - e) / (ATOL + RTOL * np.abs(e))).max())


def tensors_ratio(actual, expected, only_params=False):
    worst = 0.0
    for k, e in expected.items():
        if only_params and k.startswith("optimizer."):
            continue
        if k not in actual:  # e.g. no momentum buffer: the test fails on it
            return math.inf
        worst = max(worst, ratio(actual[k].double().numpy(), e.double().numpy()))
    return worst


# A variant's must_fail: WEIGHTS (the final weights must move at least MIN_MARGIN
# tolerances), STATE (the final weights or optimizer state, everything the test
# compares, must), LOSSES (the logged losses must) or None (informative only).
WEIGHTS, STATE, LOSSES = True, "state", "losses"


def optimizer_variants(cfg):
    out = []
    o = cfg["optimizer"]
    wd = cfg.get("weight_decay", 0.0)
    if wd:
        out.append(("weight_decay 0", dict(weight_decay=0.0), True))
        out.append(("weight_decay x2", dict(weight_decay=2 * wd), True))
    if o == "sgd" and cfg.get("momentum"):
        out.append(("momentum 0", dict(momentum=0.0), True))
        if cfg.get("nesterov"):
            out.append(("nesterov off", dict(nesterov=False), True))
        else:
            out.append(("nesterov on", dict(nesterov=True), True))
    if o in ("adam", "adamw"):
        if wd:
            out.append(("adam<->adamw decay", dict(decoupled=(o == "adam")), True))
        out.append(("no bias correction", dict(bias_correction=False), True))
        if "beta1" in cfg:
            out.append(("beta1 0.9", dict(beta1=0.9), True))
        if "beta2" in cfg:
            out.append(("beta2 0.999", dict(beta2=0.999), True))
        if "eps" in cfg:
            out.append(("eps 1e-8", dict(eps=1e-8), True))
    if cfg.get("l1"):
        out.append(("l1 0", dict(l1=0.0), WEIGHTS))
        out.append(("l1 x2", dict(l1=2 * cfg["l1"]), WEIGHTS))
        out.append(("l1 after clip", dict(l1_after_clip=True), WEIGHTS))
        out.append(("l1 not on biases", dict(l1_weights_only=True), WEIGHTS))
        # The zero row leaves 0 and L1 pulls it back: its momentum shows the difference.
        out.append(("l1: |p|'(0) = 1", dict(l1_sign0_one=True), STATE))
        out.append(("l1 not logged", dict(l1_not_logged=True), LOSSES))
    if cfg.get("clip") is not None:
        out.append(("no clip", dict(clip=None), True))
        if wd and o != "adamw":
            out.append(("clip after decay", dict(clip_after_wd=True), True))
    if cfg.get("lr_schedule") == "step":
        out.append(("constant lr", dict(lr_schedule=None), WEIGHTS))
        out.append(("schedule before step", dict(schedule_before_step=True), WEIGHTS))
        out.append(("gamma x1.01", dict(lr_gamma=cfg["lr_gamma"] * 1.01), WEIGHTS))
    out.append(("lr x1.01", dict(lr=cfg["lr"] * 1.01), True))
    return out


def variants(cfg, stream):
    """(label, variant kwargs, must_fail): one ingredient wrong at a time."""
    out = optimizer_variants(cfg)
    if cfg.get("lr_schedule") == "step":
        nbatch = len(stream) // cfg["batch_size"]
        per_epoch = len(range(0, nbatch - 1, cfg["bptt"]))
        assert per_epoch != cfg["lr_step"]
        out.append(("schedule per epoch", dict(schedule_per_epoch=per_epoch), WEIGHTS))
    out.append(("no state reset", dict(reset=False), True))
    out.append(("no state carry", dict(carry=False), True))
    nbatch = len(stream) // cfg["batch_size"]
    if (nbatch - 1) % cfg["bptt"]:
        out.append(("short chunk dropped", dict(drop_short=True), True))
    return out


# --------------------------------------------------------------------------------------

def flags_text(cfg):
    f = ["--steps %d" % cfg["steps"], "--batch-size %d" % cfg["batch_size"]]
    if "bptt" in cfg:
        f.append("--bptt %d" % cfg["bptt"])
    f += ["--optimizer %s" % cfg["optimizer"], "--lr %r" % cfg["lr"]]
    for key in ("momentum", "dampening", "weight_decay", "beta1", "beta2", "eps", "clip"):
        if cfg.get(key) is not None:
            f.append("--%s %r" % (key.replace("_", "-"), float(cfg[key])))
    if cfg.get("nesterov"):
        f.append("--nesterov")
    if cfg.get("l1"):
        f.append("--l1 %r" % float(cfg["l1"]))
    if cfg.get("lr_schedule") is not None:
        f.append("--lr-schedule %s --lr-step %d --lr-gamma %r"
                 % (cfg["lr_schedule"], cfg["lr_step"], float(cfg["lr_gamma"])))
    if "seed" in cfg:
        f.append("--seed %d" % cfg["seed"])
    return " ".join(f) + "\n"


def write_tensors(path, tensors):
    with open(path, "wb") as f:
        f.write(mg.safetensors_bytes(tensors))
    back = mg.read_safetensors(path)
    assert sorted(back) == sorted(tensors), path
    for k, v in tensors.items():
        assert np.array_equal(back[k], v.numpy()), (path, k)


def write_case(name, seed, loom, build):
    torch.manual_seed(seed)
    np.random.seed(seed)
    c = build()
    model, cfg = c["model"], c["cfg"]
    lm = "stream" in c
    B, N = cfg["batch_size"], cfg["steps"]
    init = OD((k, v.detach().float().clone().contiguous())
              for k, v in model.state_dict().items())
    params = OD(model.named_parameters())
    model0 = copy.deepcopy(model)
    extra = {}

    if lm:
        stream, bptt = c["stream"], cfg["bptt"]
        assert N == STEPS and B > 1 and B != bptt
        nbatch = len(stream) // B
        chunks = [min(bptt, nbatch - 1 - i) for i in range(0, nbatch - 1, bptt)]
        if name == "train_sgd_clip":
            assert len(chunks) < N and chunks[-1] < bptt, chunks
        losses, final, first, norms, before = golden_trajectory(model, stream, cfg)
        ntok = str(len(stream))
    else:
        data = c["data"]
        n_rows, Tmax = data["tokens"].shape
        assert N == STEPS and 1 < B < n_rows and n_rows % B and B != Tmax
        assert "seed" in cfg and "bptt" not in cfg and cfg.get("clip") is None
        chunks = [len(range(k, min(k + B, n_rows))) for k in range(0, n_rows, B)]
        assert N > 2 * len(chunks), "several epochs"
        losses, final, first, batches = golden_dataset_trajectory(model, data, cfg)
        # The padding does not matter: PyTorch gives bit-identical results with other
        # ids there.
        lp, fp, _, _ = golden_dataset_trajectory(copy.deepcopy(model0),
                                                 redraw_padding(data, c["vocab"]), cfg)
        assert np.array_equal(lp, losses) and list(fp) == list(final)
        assert all(torch.equal(fp[k], final[k]) for k in final), name
        norms = []
        ntok = "%dx%d" % (n_rows, Tmax)
        # Every epoch visits every row once; epochs differ in order.
        epochs = collections.defaultdict(list)
        for e, rows in batches:
            epochs[e].extend(rows)
        for e, rows in epochs.items():
            assert len(rows) == n_rows or e == max(epochs), (name, e)
            assert len(set(rows)) == len(rows)
        orders = [tuple(shuffled_order(n_rows, cfg["seed"], e)) for e in epochs]
        assert len(set(orders)) == len(orders)
        extra["batches"] = batches

    clipped = sum(1 for x in norms if x > cfg["clip"]) if norms else 0
    if cfg.get("clip") is not None:  # clipping must matter in some steps, not in all
        assert 0 < clipped < N, (name, norms)
    assert losses.shape == (N,) and np.isfinite(losses).all()
    for k, v in final.items():
        assert v.dtype == torch.float32 and torch.isfinite(v).all(), (name, k)
    assert [k for k in final if not k.startswith("optimizer.")] == list(params)

    if lm:
        # model.loom against the first step's tensors; the outputs after the logits are
        # the final states, in the order of the state inputs.
        tok, tgt, h_init, logits, h_fin = first
        inputs = OD([("tokens", tok), ("targets", tgt)] + list(zip(c["states"], h_init)))
        outputs = OD([("logits", logits)] + [("%s_n" % s[0], h) for s, h in
                                             zip(c["states"], h_fin)])
        assert [s[1:] for s in c["states"]] == ["0"] * len(c["states"])
        mg.check_loom_text(name, loom, inputs, outputs)
        for s, h in zip(c["states"], h_init):
            assert h.shape == outputs["%s_n" % s[0]].shape
    else:
        inputs, outputs = first
        mg.check_loom_text(name, loom, inputs, outputs)

    if cfg.get("l1"):
        # |p|'s gradient at 0 is 0: a zero row without cross-entropy gradient stays zero
        # (parameters and momentum). Elsewhere no parameter comes so near zero before a
        # step that float32 rounding could flip its sign (and its L1 gradient): checked
        # against the transcriptions' parameter errors below.
        for pname, row in c.get("zero_rows", []):
            assert float(init[pname][row].abs().max()) == 0.0
            for k in (pname, "optimizer.%s.momentum_buffer" % pname):
                if k in final:
                    assert float(final[k][row].abs().max()) == 0.0, (name, k, row)
        nz = [float(p[p != 0].abs().min()) for snap in before for p in snap.values()]
        extra["min_abs"] = min(nz)
    if cfg.get("lr_schedule") == "step":
        extra["lrs"] = sorted({scheduled_lr(cfg, s, {}) for s in range(N)}, reverse=True)
        assert len(extra["lrs"]) == (N - 1) // cfg["lr_step"] + 1

    # The independent float64 and float32 transcriptions.
    if lm:
        def transcribe(dtype, **var):
            return transcribed_trajectory(model0, stream, cfg, dtype=dtype, **var)
        var_list = variants(cfg, stream)
    else:
        def transcribe(dtype, **var):
            return transcribed_dataset_trajectory(model0, data, cfg, dtype=dtype, **var)
        var_list = dataset_variants(cfg, data, n_rows)
    rec64, rec32 = [], []
    l64, f64 = transcribe(torch.float64, record=rec64)
    r64 = max(ratio(losses, l64), tensors_ratio(f64, final))
    for k, v in final.items():  # same names (and optimizer state) in both
        assert k in f64, (name, k)
    assert sorted(f64) == sorted(final), (name, sorted(f64), sorted(final))
    assert r64 <= F64_MAX_RATIO, (name, "float64 transcription vs golden", r64)
    l32, f32 = transcribe(torch.float32, record=rec32)
    r32 = max(ratio(losses, l32), tensors_ratio(f32, final))
    assert r32 <= F64_MAX_RATIO, (name, "float32 transcription vs golden", r32)
    if "min_abs" in extra:
        # Before every step, every nonzero parameter entry is at least 10 times farther
        # from zero than the transcriptions are from it (so the same sign in both).
        worst = math.inf
        for snaps in (rec64, rec32):
            assert len(snaps) == len(before)
            for gold, other in zip(before, snaps):
                for k, p in gold.items():
                    p, q = p.double(), other[k].double()
                    nzm = p != 0
                    assert bool((q[~nzm] == 0).all()), (name, k)
                    d = (p - q).abs()[nzm].clamp_min(1e-30)
                    worst = min(worst, float((p.abs()[nzm] / d).min()))
        extra["sign_margin"] = worst
        assert worst >= 10, (name, "a parameter is near zero", extra)

    # One ingredient wrong at a time.
    margins = []
    for label, var, must_fail in var_list:
        lv, fv = transcribe(torch.float32, **var)
        rw = tensors_ratio(fv, final, only_params=True)
        rs = tensors_ratio(fv, final)
        rl = ratio(lv, losses)
        if must_fail == LOSSES:
            assert rl >= MIN_MARGIN, (name, label, rl)
        elif must_fail == STATE:
            assert rs >= MIN_MARGIN, (name, label, rs)
        elif must_fail:
            assert rw >= MIN_MARGIN, (name, label, rw)
        margins.append((label, rw, rs, rl, must_fail))

    folder = os.path.join(HERE, name)
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    os.makedirs(os.path.join(folder, "expected"))
    with open(os.path.join(folder, "model.loom"), "w", encoding="utf-8", newline="\n") as f:
        f.write(loom)
    with open(os.path.join(folder, "flags.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write(flags_text(cfg))
    if lm:
        mg.save_npy(os.path.join(folder, "tokens.npy"), stream.numpy())
    else:
        os.makedirs(os.path.join(folder, "dataset"))
        for k, v in data.items():
            assert v.dtype == torch.int64
            mg.save_npy(os.path.join(folder, "dataset", k + ".npy"), v.numpy())
    write_tensors(os.path.join(folder, "init.safetensors"), init)
    mg.save_npy(os.path.join(folder, "expected", "losses.npy"), losses)
    write_tensors(os.path.join(folder, "expected", "final.safetensors"),
                  OD((k, v.contiguous()) for k, v in final.items()))
    back = np.load(os.path.join(folder, "expected", "losses.npy"))
    assert back.dtype == np.float32 and np.array_equal(back, losses)

    moved = max(float((final[k] - init[k]).abs().max()) for k in params)
    return dict(losses=losses, moved=moved, r64=r64, r32=r32, margins=margins, chunks=chunks,
                nparams=sum(p.numel() for p in params.values()), ntok=ntok,
                clipped="%d/%d" % (clipped, N) if norms else "-", extra=extra,
                size=mg.folder_size(folder), flags=flags_text(cfg).strip())


MARKS = {WEIGHTS: "*", STATE: "+", LOSSES: "L", None: " ", False: " "}


def main():
    check_shuffled_order()
    names = [c[0] for c in CASES]
    assert len(set(names)) == len(names)
    head = ("case", "tokens", "#params", "epoch chunks", "loss first/min/max/last",
            "clipped", "max|final-init|", "f64/f32 err/tol", "bytes")
    rows, details = [], []
    total = 0
    for name, seed, loom, build in CASES:
        r = write_case(name, seed, loom, build)
        total += r["size"]
        ch = r["chunks"]
        chs = "%dx%d" % (sum(1 for x in ch if x == ch[0]), ch[0])
        if ch[-1] != ch[0]:
            chs += "+%d" % ch[-1]
        lo = r["losses"]
        rows.append((name, r["ntok"], str(r["nparams"]), chs,
                     "%.4f/%.4f/%.4f/%.4f" % (lo[0], lo.min(), lo.max(), lo[-1]),
                     r["clipped"],
                     "%.4f" % r["moved"], "%.1e/%.1e" % (r["r64"], r["r32"]), str(r["size"])))
        details.append((name, r["flags"], r["margins"], r["extra"]))
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head) - 1)]
    fmt = "  ".join("%%-%ds" % w for w in widths) + "  %s"
    print(fmt % head)
    print(fmt % tuple("-" * len(h) for h in head))
    for r in rows:
        print(fmt % r)
    print("\nPerturbations: worst err/tol of the final weights (of the weights and the "
          "optimizer state; of the losses) when one ingredient is wrong; must exceed %g: "
          "'*' the weights, '+' weights or state, 'L' the losses" % MIN_MARGIN)
    for name, flags, margins, extra in details:
        print("\n%s: %s" % (name, flags))
        if "min_abs" in extra:
            print("  smallest nonzero |p| before a step: %.3g; min over steps and entries of "
                  "|p| / |p - transcription|: %.3g" % (extra["min_abs"], extra["sign_margin"]))
        if "lrs" in extra:
            print("  learning rates: %s" % ", ".join("%g" % x for x in extra["lrs"]))
        if "batches" in extra:
            print("  batches (epoch: rows): %s ..." % "; ".join(
                "%d: %s" % (e, ",".join(map(str, rows))) for e, rows in extra["batches"][:8]))
        for label, rw, rs, rl, must in margins:
            print("  %s %-24s weights %10.3g   +state %10.3g   losses %10.3g"
                  % (MARKS[must], label, rw, rs, rl))
    print("\n%d training cases, %d bytes (f64/f32 err/tol: the float64 and float32 runs "
          "of the transcription against the golden, worst over losses, weights and "
          "optimizer state, in units of rtol %g, atol %g)" % (len(rows), total, RTOL, ATOL))
    assert total < SIZE_LIMIT, "training goldens grew past %d bytes" % SIZE_LIMIT


if __name__ == "__main__":
    sys.exit(main())
