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

bf = sorted(k for k in loom if k[0].endswith("-bf16"))
if bf:
    lines += ["", "bf16 weight storage (`--weight-storage=bf16`, inference): the packed "
              "weights as bfloat16, widened to f32 in the kernels; state, activations "
              "and sums stay f32. \"max |bf16 − f32|\" is the largest difference of "
              "any output from the f32 code's on the same inputs (loom-bench's random "
              "weights, uniform in ±0.1), next to the largest output.", "",
              "| config | threads | loom bf16 ms | bf16 / f32 | / oneDNN | / ONNX Runtime "
              "| max abs bf16 − f32 | max abs output |",
              "|---|---|---|---|---|---|---|---|"]
    for (cid, threads) in bf:
        r = loom[(cid, threads)]
        base = cid[:-len("-bf16")]
        f32 = loom.get((base, threads))
        t = r["median_s"]
        lines.append(f"| {base} | {threads} | {ms(t)} | "
                     f"{ratio(t, f32['median_s'] if f32 else None)} | "
                     f"{ratio(t, peers.get((base, 'onednn', threads)))} | "
                     f"{ratio(t, peers.get((base, 'onnxruntime', threads)))} | "
                     f"{r.get('bf16_max_abs_err', float('nan')):.2g} | "
                     f"{r.get('max_abs_output', float('nan')):.2g} |")

stream = {(r["cid"], r.get("threads", 1)): r
          for r in rows(os.path.join(out_dir, "stream.jsonl"))}
if stream:
    lines += ["", "Batch 1 against the memory bound: \"stream-read\" is the time to read "
              "the bytes a step must read (the packed recurrent weights: 1 MiB for C1, "
              "16 MiB for C2, half that as bf16) T times, split between the threads as loom splits them, "
              "with a plain vector sum over eight accumulators (bench/stream-read.cpp): the "
              "floor for any kernel that must read those bytes every step. The target is loom within 1.15× of it where 2× "
              "ONNX Runtime is out of reach.", "",
              "| config | threads | loom ms | stream-read ms | loom / stream-read | "
              "ONNX Runtime / stream-read | GB/s streamed |",
              "|---|---|---|---|---|---|---|"]
    for (cid, threads), r in sorted(stream.items()):
        lr = loom.get((cid, threads))
        t = r["median_s"]
        ort = peers.get((cid.split("-")[0], "onnxruntime", threads))
        gbs = r["bytes"] * r["passes"] / t / 1e9
        lines.append(f"| {cid} | {threads} | {ms(lr['median_s'] if lr else None)} | {ms(t)} | "
                     f"{ratio(lr['median_s'] if lr else None, t)} | {ratio(ort, t)} | {gbs:.0f} |")

u1 = sorted({k for (k, _th) in loom if k.startswith("U1-")})
if u1:
    lines += ["", "User-defined cells (U1, C3's sizes): cells written in the DSL "
              "(bench/models/U1-*.loom), against loom's built-in LSTM in the same "
              "mode and the same cells written for PyTorch as TorchScript "
              "(bench/torch_cells.py, the fastrnns custom-cell style). "
              "\"TorchScript / loom\" is the speed-up over TorchScript (target "
              "≥ 2.5); \"vs built-in\" is loom's time against its built-in LSTM "
              "(target ≤ 1.1).", "",
              "| case | threads | loom ms | vs loom built-in LSTM | TorchScript ms | TorchScript / loom |",
              "|---|---|---|---|---|---|"]
    for cid in u1:
        for threads in (1, 2):
            r = loom.get((cid, threads))
            if r is None:
                continue
            mode = cid.rsplit("-", 1)[1]
            builtin = loom.get((f"U1-lstm-{mode}", threads))
            ts = peers.get((cid, "pytorch-custom-jit", threads))
            t = r["median_s"]
            lines.append(f"| {cid} | {threads} | {ms(t)} | "
                         f"{ratio(t, builtin['median_s'] if builtin else None)} | {ms(ts)} | "
                         f"{ratio(ts, t)} |")

# The ablation: (cid, pass) -> (seconds without it, seconds of the full
# pipeline measured just before).
abl, base = {}, {}
for r in rows(os.path.join(out_dir, "ablation.jsonl")):
    peer = r["peer"]
    if peer.startswith("baseline for "):
        base[(r["cid"], peer[len("baseline for "):])] = r["median_s"]
    elif peer.startswith("without "):
        abl[(r["cid"], peer[len("without "):])] = r["median_s"]
if abl:
    cids = [c for c in ("C1", "C2", "C3", "C7", "U1-gates") if any(k[0] == c for k in abl)]
    passes = []
    for (_c, p) in abl:
        if p not in passes:
            passes.append(p)
    lines += ["", "Ablation (bench/ablation.sh; one thread, the median of at least 5 runs and "
              "1 s each): each optimization left out in turn (`loom-bench --disable-pass`) on "
              "C1 and C2 (batch-1 inference), C3 and C7 (training steps) and U1-gates (an LSTM "
              "written one gate at a time, inference at C3's sizes). Each cell is the time "
              "without the pass over the time of the full pipeline measured right before it "
              "(how much slower loom is without the pass; — where it does not apply), then "
              "the time without it. The first row is the median of the full pipeline's runs.",
              "",
              "| pass left out | " + " | ".join(cids) + " |",
              "|---|" + "---|" * len(cids)]
    medians = []
    for c in cids:
        v = sorted(t for (cc, _p), t in base.items() if cc == c)
        medians.append(ms(v[len(v) // 2]) if v else "—")
    lines.append("| (none: full pipeline) | " + " | ".join(medians) + " |")
    for p in passes:
        cells = []
        for c in cids:
            v, b0 = abl.get((c, p)), base.get((c, p))
            cells.append("—" if v is None or b0 is None else f"{v / b0:.2f}× ({ms(v)})")
        lines.append(f"| `{p}` | " + " | ".join(cells) + " |")
# Compile latency (bench/compile-latency.cpp): cold and from the cache.
compile = rows(os.path.join(out_dir, "compile.jsonl"))
if compile:
    when = ""
    cfile, lfile = (os.path.join(out_dir, f) for f in ("compile.jsonl", "loom.jsonl"))
    if os.path.exists(lfile) and os.path.getmtime(cfile) - os.path.getmtime(lfile) > 3600:
        when = (" Measured in a later run than the tables above (" +
                __import__("time").strftime("%Y-%m-%d", __import__("time").gmtime(
                    os.path.getmtime(cfile))) + ").")
    lines += ["", "Compile latency through the embedding API "
              "(`loom::Module::compileFile`, bench/compile-latency.cpp; median "
              "seconds): cold is an empty compile cache (every pass and LLVM), "
              "cached reads the objects the cold run stored (target: the word "
              "LM under 50 ms). C7 compiles the model and its training step "
              "(SGD with clipping; the API compiles the gradient on first use); C7-infer the model alone." + when, "",
              "| config | cold s | cached ms | cold / cached |", "|---|---|---|---|"]
    for r in compile:
        lines.append(f"| {r['cid']} | {r['cold_s']:.2f} | {r['cached_s'] * 1e3:.1f} | "
                     f"{r['cold_s'] / r['cached_s']:.0f}× |")
print("\n".join(lines))
