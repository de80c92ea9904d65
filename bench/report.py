#!/usr/bin/env python3
"""Writes bench/RESULTS.md from one run of bench/run.sh (stdlib only).

  report.py OUT_DIR PEERS_DIR COMMAND

Reads OUT_DIR/loom.jsonl (loom-bench) and OUT_DIR/peers/raw/*.jsonl
(../shared/bench-peers), and takes FLOP counts from PEERS_DIR/configs.py, so
loom's GFLOP/s use the peers' formulas. Ratios are loom / peer times (below
1 means loom is faster); language models also show tokens/s.
"""
import glob
import json
import os
import sys

out_dir, peers_dir, command = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, peers_dir)
import configs  # noqa: E402


def rows(path):
    out = []
    for f in glob.glob(path):
        for line in open(f):
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    return out


# (cid, threads) -> row; rows written before threads existed count as 1.
loom = {(r["cid"], r.get("threads", 1)): r
        for r in rows(os.path.join(out_dir, "loom.jsonl"))}
peer_rows = rows(os.path.join(out_dir, "peers", "raw", "*.jsonl"))
peers = {}  # (cid, peer, threads) -> median seconds (the best of repeats)
peak = {}   # threads -> best sgemm GFLOP/s
for r in peer_rows:
    if "lib" in r and "gflops" in r and str(r.get("label", "")).startswith("square"):
        # sgemm references (OpenBLAS, BLIS, oneDNN) on square matrices.
        t = r.get("threads", 1)
        peak[t] = max(peak.get(t, 0.0), float(r["gflops"]))
        continue
    cid = r.get("cid") or r.get("config")
    if cid and "peer" in r and "median_s" in r:
        key = (cid, r["peer"], r.get("threads", 1))
        peers[key] = min(peers.get(key, float("inf")), float(r["median_s"]))

PEERS = [("pytorch", "PyTorch"), ("onednn", "oneDNN"), ("onnxruntime", "ONNX Runtime")]


def ms(s):
    return "—" if s is None else (f"{s * 1e3:.1f}" if s < 10 else f"{s:.1f} s")


def ratio(a, b):
    return "—" if a is None or b is None else f"{a / b:.2f}"


lines = ["# loom benchmark results", "",
         f"Produced by `{command}` (loom and the peers in one run; "
         "loom-bench for loom, ../shared/bench-peers for the peers). "
         "Median milliseconds. Every ratio compares loom and the peer at the "
         "same thread count (loom / peer: < 1 means loom is faster); "
         "\"% of sgemm peak\" is loom's GEMM throughput (bench-peers' FLOP "
         "formulas) against the best square sgemm of the run at that thread "
         "count; \"1T/2T\" is loom's speed-up from 1 to 2 threads.", ""]
if peak:
    lines.append("Best square sgemm measured in this run (OpenBLAS, BLIS, oneDNN): " + ", ".join(
        f"{v:.0f} GFLOP/s at {t} thread{'s' if t > 1 else ''}" for t, v in sorted(peak.items())) + ".")
    lines.append("")
head = "| config | threads | loom | " + " | ".join(n for _, n in PEERS) + \
    " | loom / best peer | loom / oneDNN | loom / PyTorch | loom GFLOP/s | % of sgemm peak | 1T/2T | compile s |"
lines += [head, "|" + "---|" * (head.count("|") - 1)]
for cid in configs.ORDER:
    for threads in (1, 2):
        r = loom.get((cid, threads))
        if r is None:
            continue
        t = r["median_s"]
        cells = []
        best = None
        for key, _ in PEERS:
            v = peers.get((cid, key, threads))
            cells.append(ms(v))
            if v is not None:
                best = v if best is None else min(best, v)
        gflops = configs.flops(cid) / t / 1e9
        pk = peak.get(threads)
        name = cid
        if configs.CONFIGS[cid]["kind"] == "lm":
            name += f" ({configs.tokens(cid) / t:,.0f} tok/s)"
        one = loom.get((cid, 1))
        speedup = f"{one['median_s'] / t:.2f}" if threads == 2 and one else "—"
        lines.append(
            f"| {name} | {threads} | {ms(t)} | " + " | ".join(cells) +
            f" | {ratio(t, best)} | {ratio(t, peers.get((cid, 'onednn', threads)))} | "
            f"{ratio(t, peers.get((cid, 'pytorch', threads)))} | {gflops:.1f} | "
            + (f"{100 * gflops / pk:.0f}%" if pk else "—") + f" | {speedup} | {r.get('compile_s', 0):.2f} |")

u = {k: v for (k, th), v in loom.items() if k.startswith("U1") and th == 1}
if u:
    lines += ["", "User-defined cell (U1, C3's sizes): a peephole LSTM written in the "
              "DSL, against loom's built-in LSTM and PyTorch's hand-written LSTM "
              "cell (the peers measure no peephole cell yet).", "",
              "| case | loom ms | vs loom built-in LSTM | vs PyTorch custom cell (TorchScript) |",
              "|---|---|---|---|"]
    ts = peers.get(("C3", "pytorch-custom-jit", 1))
    for cid, r in sorted(u.items()):
        builtin = loom.get(("U1-lstm-infer", 1) if "infer" in cid else ("C3", 1))
        lines.append(f"| {cid} | {ms(r['median_s'])} | "
                     f"{ratio(r['median_s'], builtin['median_s'] if builtin else None)} | "
                     f"{ratio(r['median_s'], ts) if 'train' in cid else '—'} |")
print("\n".join(lines))
