#!/usr/bin/python3
"""U1's PyTorch peers: user-written recurrent cells in TorchScript at C3's sizes.

../shared/bench-peers measures one hand-written cell (a plain LSTM, C3's training step).
U1 asks for the cells loom's U1 models define, written the way a PyTorch user writes
a custom cell (pytorch/benchmarks/fastrnns/custom_lstms.py): the plain LSTM, the
peephole LSTM (bench/models/U1-peephole.loom) and the layer-norm LSTM
(bench/models/U1-layernorm.loom, as fastrnns' LayerNormLSTMCell), each scripted with
torch.jit.script, inference (no_grad) and a training step (forward + backward with
a given dy, as bench-peers' C3). Timing is bench-peers' `measure` (same warm-up,
medians, CPU accounting).

  torch_cells.py --threads N [--reps 10] [--cases lstm,peephole,layernorm]

Run with /usr/bin/python3 (python3-torch), OMP_NUM_THREADS and
OPENBLAS_NUM_THREADS set to N before start-up. Prints one JSON line per case with
cid "U1-<cell>-<infer|train>" and peer "pytorch-custom-jit".
"""
import argparse
import json
import math
import os
import sys
from typing import List, Tuple

import torch
import torch.nn as nn
from torch import Tensor

T, B, I, H = 50, 32, 512, 512  # C3's sizes


def uniform(*shape):
    k = 1.0 / math.sqrt(H)
    return nn.Parameter(torch.empty(*shape).uniform_(-k, k))


class LSTMCell(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight_ih = uniform(4 * H, I)
        self.weight_hh = uniform(4 * H, H)
        self.bias_ih = uniform(4 * H)
        self.bias_hh = uniform(4 * H)

    def forward(self, x: Tensor, state: Tuple[Tensor, Tensor]) -> Tuple[Tensor, Tensor]:
        h, c = state
        gates = (torch.mm(x, self.weight_ih.t()) + self.bias_ih
                 + torch.mm(h, self.weight_hh.t()) + self.bias_hh)
        i, f, g, o = gates.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class PeepholeLSTMCell(nn.Module):
    def __init__(self):
        super().__init__()
        self.W = uniform(4 * H, I)
        self.U = uniform(4 * H, H)
        self.b = uniform(4 * H)
        self.p_i = uniform(H)
        self.p_f = uniform(H)
        self.p_o = uniform(H)

    def forward(self, x: Tensor, state: Tuple[Tensor, Tensor]) -> Tuple[Tensor, Tensor]:
        h, c = state
        gates = torch.mm(x, self.W.t()) + torch.mm(h, self.U.t()) + self.b
        i, f, g, o = gates.chunk(4, 1)
        i = torch.sigmoid(i + self.p_i * c)
        f = torch.sigmoid(f + self.p_f * c)
        c = f * c + i * torch.tanh(g)
        return torch.sigmoid(o + self.p_o * c) * torch.tanh(c), c


class LayerNormLSTMCell(nn.Module):
    """fastrnns' LayerNormLSTMCell: normalized gate projections and cell state."""

    def __init__(self):
        super().__init__()
        self.weight_ih = uniform(4 * H, I)
        self.weight_hh = uniform(4 * H, H)
        self.layernorm_i = nn.LayerNorm(4 * H)
        self.layernorm_h = nn.LayerNorm(4 * H)
        self.layernorm_c = nn.LayerNorm(H)

    def forward(self, x: Tensor, state: Tuple[Tensor, Tensor]) -> Tuple[Tensor, Tensor]:
        h, c = state
        gates = (self.layernorm_i(torch.mm(x, self.weight_ih.t()))
                 + self.layernorm_h(torch.mm(h, self.weight_hh.t())))
        i, f, g, o = gates.chunk(4, 1)
        c = self.layernorm_c(torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g))
        return torch.sigmoid(o) * torch.tanh(c), c


class Layer(nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    def forward(self, x: Tensor, state: Tuple[Tensor, Tensor]) -> Tuple[Tensor, Tuple[Tensor, Tensor]]:
        outputs: List[Tensor] = []
        for xt in x.unbind(0):
            state = self.cell(xt, state)
            outputs.append(state[0])
        return torch.stack(outputs), state


CELLS = {"lstm": LSTMCell, "peephole": PeepholeLSTMCell, "layernorm": LayerNormLSTMCell}


def step_fn(cell, mode):
    torch.manual_seed(0)
    m = torch.jit.script(Layer(CELLS[cell]()))
    x = torch.randn(T, B, I)
    state = (torch.zeros(B, H), torch.zeros(B, H))
    if mode == "infer":
        m.eval()

        def infer():
            with torch.no_grad():
                m(x, state)
        return infer
    x.requires_grad_(True)
    dy = torch.randn(T, B, H)
    params = list(m.parameters())

    def train():
        x.grad = None
        for p in params:
            p.grad = None
        y, _ = m(x, state)
        y.backward(dy)
    return train


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--cases", default=",".join(CELLS))
    ap.add_argument("--peers", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                    "..", "..", "shared", "bench-peers"))
    a = ap.parse_args()
    sys.path.insert(0, a.peers)
    from torch_bench import measure  # bench-peers' timing loop

    torch.set_num_threads(a.threads)
    for cell in a.cases.split(","):
        for mode in ("infer", "train"):
            # The profiling executor optimizes after a few runs: warm up 10.
            r = measure(step_fn(cell, mode), a.reps, min_warmup_iters=10)
            print(json.dumps(dict(cid=f"U1-{cell}-{mode}", peer="pytorch-custom-jit",
                                  threads=a.threads, torch=torch.__version__, **r)),
                  flush=True)


if __name__ == "__main__":
    main()
