#!/usr/bin/python3
"""Generate loom's PyTorch training golden cases (for `loom train`).

Run with Debian's interpreter (python3-torch 1.13 and numpy import only there):

    /usr/bin/python3 tests/golden/make_train_goldens.py

Every case is a folder tests/golden/train_<name>/ holding
    model.loom                  a language model with its `loss` statement; its inputs are
                                tokens, targets and the recurrent states, its outputs the
                                logits followed by the final states in the states' order,
    flags.txt                   the `loom train` flags: steps, batch size, bptt, optimizer,
    tokens.npy                  the training stream, 1-D int64,
    init.safetensors            the initial state_dict(), F32, PyTorch names,
    expected/losses.npy         f32 [N]: the loss of each of the N steps (its forward,
                                before its update),
    expected/final.safetensors  every parameter after N steps and the optimizer state
                                (optimizer.<param>.exp_avg / .exp_avg_sq for adam/adamw,
                                optimizer.<param>.momentum_buffer for sgd with momentum).

The trajectory is pytorch/examples/word_language_model's: batchify() the stream into
[nbatch, B] columns (tail dropped), one step per BPTT chunk i in range(0, nbatch - 1,
bptt) of seq_len = min(bptt, nbatch - 1 - i), the final states of a step carried
(detached) into the next, all states zero again at the start of each epoch; loss =
cross_entropy over the T*B positions; backward; clip_grad_norm_ (if --clip); one
torch.optim SGD / Adam / AdamW step (1.13, foreach=False, amsgrad off). No dropout.

Before writing, the script checks each case against an independent transcription of the
contract (its own batch indexing and its own optimizer and clipping formulas) run in
float64, which must agree with the float32 golden well inside the training tolerance,
and runs that transcription with one ingredient changed at a time (no weight decay, no
momentum, no clipping, no state reset, ...) to show that every such mistake moves the
final weights far outside the tolerance. It prints a table of the cases and of those
margins.

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
# The cases. A builder returns dict(model=LM, stream=1-D int64 tensor, cfg=dict) where cfg
# holds steps, batch_size, bptt, optimizer, lr and the optional momentum, nesterov,
# dampening, weight_decay, beta1, beta2, eps, clip; states: the state input names.
# --------------------------------------------------------------------------------------

CASES = []


def case(name, seed, loom):
    assert name.startswith("train_")

    def register(fn):
        CASES.append((name, seed, loom.strip("\n") + "\n", fn))
        return fn
    return register


def markov_stream(n, V):
    """n tokens of a random first-order Markov chain over V ids (each id has a few
    likely successors, so there is something to learn); every id occurs in the first
    half of the stream."""
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


def stream_for(nbatch, B, tail, V):
    """A stream whose batchify() gives nbatch rows of B columns, `tail` ids dropped."""
    assert 0 <= tail < B
    return markov_stream(nbatch * B + tail, V)


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


def golden_trajectory(model, stream, cfg):
    """Returns (losses [N] float32, final OD, the first step's inputs and outputs, the
    gradient norm of each step if clipping)."""
    B, bptt, N = cfg["batch_size"], cfg["bptt"], cfg["steps"]
    source = batchify(stream, B)
    named = OD(model.named_parameters())  # a tied tensor once, under its owner's name
    opt = make_optimizer(cfg, list(named.values()))
    losses, norms, first = [], [], None
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
            opt.zero_grad()
            loss.backward()
            if cfg.get("clip") is not None:
                norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(),
                                                                  cfg["clip"])))
            opt.step()
            losses.append(loss.item())
    final = OD((k, p.detach().clone()) for k, p in named.items())
    for k, p in named.items():
        st = opt.state[p]
        for s in ("exp_avg", "exp_avg_sq", "momentum_buffer"):
            if s in st and st[s] is not None:
                final["optimizer.%s.%s" % (k, s)] = st[s].detach().clone()
    return np.array(losses, dtype=np.float32), final, first, norms


# --------------------------------------------------------------------------------------
# An independent transcription of the contract: batches by index arithmetic on the raw
# stream, clipping and optimizers written out. dtype float64 for the check; the variant
# keys change one ingredient at a time.
# --------------------------------------------------------------------------------------

def transcribed_trajectory(model0, stream, cfg, dtype=torch.float64, **variant):
    cfg = dict(cfg, **{k: v for k, v in variant.items() if k in cfg or k in OPT_KEYS})
    reset = variant.get("reset", True)          # zero states at each epoch start
    carry = variant.get("carry", True)          # final states feed the next step
    drop_short = variant.get("drop_short", False)  # skip an epoch's short last chunk
    decoupled = variant.get("decoupled", cfg["optimizer"] == "adamw")
    bias_correction = variant.get("bias_correction", True)
    clip_after_wd = variant.get("clip_after_wd", False)

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

    lr, wd = cfg["lr"], cfg.get("weight_decay", 0.0)
    mom, damp = cfg.get("momentum", 0.0), cfg.get("dampening", 0.0)
    b1, b2, eps = cfg.get("beta1", 0.9), cfg.get("beta2", 0.999), cfg.get("eps", 1e-8)
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
        losses.append(float(loss))
        with torch.no_grad():
            g = OD(zip(named, [x.clone() for x in grads]))
            if clip_after_wd and wd and not decoupled:
                for name, p in named.items():
                    g[name] += wd * p
            if cfg.get("clip") is not None:
                total = math.sqrt(sum(float((x.double() ** 2).sum()) for x in g.values()))
                coef = min(1.0, cfg["clip"] / (total + 1e-6))
                for x in g.values():
                    x.mul_(coef)
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
    final = OD((k, p.detach().clone()) for k, p in named.items())
    for k in named:
        for s, v in state[k].items():
            final["optimizer.%s.%s" % (k, s)] = v
    return np.array(losses), final


OPT_KEYS = ("momentum", "nesterov", "dampening", "weight_decay", "beta1", "beta2", "eps",
            "clip", "lr")


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
        worst = max(worst, ratio(actual[k].double().numpy(), e.double().numpy()))
    return worst


def variants(cfg, stream):
    """(label, variant kwargs, must_fail): one ingredient wrong at a time."""
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
    if cfg.get("clip") is not None:
        out.append(("no clip", dict(clip=None), True))
        if wd and o != "adamw":
            out.append(("clip after decay", dict(clip_after_wd=True), True))
    out.append(("lr x1.01", dict(lr=cfg["lr"] * 1.01), True))
    out.append(("no state reset", dict(reset=False), True))
    out.append(("no state carry", dict(carry=False), True))
    nbatch = len(stream) // cfg["batch_size"]
    if (nbatch - 1) % cfg["bptt"]:
        out.append(("short chunk dropped", dict(drop_short=True), True))
    return out


# --------------------------------------------------------------------------------------

def flags_text(cfg):
    f = ["--steps %d" % cfg["steps"], "--batch-size %d" % cfg["batch_size"],
         "--bptt %d" % cfg["bptt"], "--optimizer %s" % cfg["optimizer"],
         "--lr %r" % cfg["lr"]]
    for key in ("momentum", "dampening", "weight_decay", "beta1", "beta2", "eps", "clip"):
        if cfg.get(key) is not None:
            f.append("--%s %r" % (key.replace("_", "-"), float(cfg[key])))
    if cfg.get("nesterov"):
        f.append("--nesterov")
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
    model, stream, cfg = c["model"], c["stream"], c["cfg"]
    B, bptt, N = cfg["batch_size"], cfg["bptt"], cfg["steps"]
    assert N == STEPS and B > 1 and B != bptt
    init = OD((k, v.detach().float().clone().contiguous())
              for k, v in model.state_dict().items())
    params = OD(model.named_parameters())
    model0 = copy.deepcopy(model)

    nbatch = len(stream) // B
    chunks = [min(bptt, nbatch - 1 - i) for i in range(0, nbatch - 1, bptt)]
    if name == "train_sgd_clip":
        assert len(chunks) < N and chunks[-1] < bptt, chunks

    losses, final, first, norms = golden_trajectory(model, stream, cfg)
    clipped = sum(1 for x in norms if x > cfg["clip"]) if norms else 0
    if cfg.get("clip") is not None:  # clipping must matter in some steps, not in all
        assert 0 < clipped < N, (name, norms)
    assert losses.shape == (N,) and np.isfinite(losses).all()
    for k, v in final.items():
        assert v.dtype == torch.float32 and torch.isfinite(v).all(), (name, k)
    assert [k for k in final if not k.startswith("optimizer.")] == list(params)

    # model.loom against the first step's tensors; the outputs after the logits are the
    # final states, in the order of the state inputs.
    tok, tgt, h_init, logits, h_fin = first
    inputs = OD([("tokens", tok), ("targets", tgt)] + list(zip(c["states"], h_init)))
    outputs = OD([("logits", logits)] + [("%s_n" % s[0], h) for s, h in
                                         zip(c["states"], h_fin)])
    assert [s[1:] for s in c["states"]] == ["0"] * len(c["states"])
    mg.check_loom_text(name, loom, inputs, outputs)
    for s, h in zip(c["states"], h_init):
        assert h.shape == outputs["%s_n" % s[0]].shape

    # The independent float64 transcription.
    l64, f64 = transcribed_trajectory(model0, stream, cfg)
    r64 = max(ratio(losses, l64), tensors_ratio(f64, final))
    for k, v in final.items():  # same names (and optimizer state) in both
        assert k in f64, (name, k)
    assert sorted(f64) == sorted(final), (name, sorted(f64), sorted(final))
    assert r64 <= F64_MAX_RATIO, (name, "float64 transcription vs golden", r64)
    l32, f32 = transcribed_trajectory(model0, stream, cfg, dtype=torch.float32)
    r32 = max(ratio(losses, l32), tensors_ratio(f32, final))
    assert r32 <= F64_MAX_RATIO, (name, "float32 transcription vs golden", r32)

    # One ingredient wrong at a time.
    margins = []
    for label, var, must_fail in variants(cfg, stream):
        lv, fv = transcribed_trajectory(model0, stream, cfg, dtype=torch.float32, **var)
        rw = tensors_ratio(fv, final, only_params=True)
        rl = ratio(lv, losses)
        if must_fail:
            assert rw >= MIN_MARGIN, (name, label, rw)
        margins.append((label, rw, rl, must_fail))

    folder = os.path.join(HERE, name)
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    os.makedirs(os.path.join(folder, "expected"))
    with open(os.path.join(folder, "model.loom"), "w", encoding="utf-8", newline="\n") as f:
        f.write(loom)
    with open(os.path.join(folder, "flags.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write(flags_text(cfg))
    mg.save_npy(os.path.join(folder, "tokens.npy"), stream.numpy())
    write_tensors(os.path.join(folder, "init.safetensors"), init)
    mg.save_npy(os.path.join(folder, "expected", "losses.npy"), losses)
    write_tensors(os.path.join(folder, "expected", "final.safetensors"),
                  OD((k, v.contiguous()) for k, v in final.items()))
    back = np.load(os.path.join(folder, "expected", "losses.npy"))
    assert back.dtype == np.float32 and np.array_equal(back, losses)

    moved = max(float((final[k] - init[k]).abs().max()) for k in params)
    return dict(losses=losses, moved=moved, r64=r64, r32=r32, margins=margins, chunks=chunks,
                nparams=sum(p.numel() for p in params.values()), ntok=len(stream),
                clipped="%d/%d" % (clipped, N) if norms else "-",
                size=mg.folder_size(folder), flags=flags_text(cfg).strip())


def main():
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
        rows.append((name, str(r["ntok"]), str(r["nparams"]), chs,
                     "%.4f/%.4f/%.4f/%.4f" % (lo[0], lo.min(), lo.max(), lo[-1]),
                     r["clipped"],
                     "%.4f" % r["moved"], "%.1e/%.1e" % (r["r64"], r["r32"]), str(r["size"])))
        details.append((name, r["flags"], r["margins"]))
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head) - 1)]
    fmt = "  ".join("%%-%ds" % w for w in widths) + "  %s"
    print(fmt % head)
    print(fmt % tuple("-" * len(h) for h in head))
    for r in rows:
        print(fmt % r)
    print("\nPerturbations: worst err/tol of the final weights (and of the losses) when "
          "one ingredient is wrong; '*' must exceed %g" % MIN_MARGIN)
    for name, flags, margins in details:
        print("\n%s: %s" % (name, flags))
        for label, rw, rl, must in margins:
            print("  %s %-20s weights %10.3g   losses %10.3g" % ("*" if must else " ",
                                                                  label, rw, rl))
    print("\n%d training cases, %d bytes (f64/f32 err/tol: the float64 and float32 runs "
          "of the transcription against the golden, worst over losses, weights and "
          "optimizer state, in units of rtol %g, atol %g)" % (len(rows), total, RTOL, ATOL))
    assert total < SIZE_LIMIT, "training goldens grew past %d bytes" % SIZE_LIMIT


if __name__ == "__main__":
    sys.exit(main())
