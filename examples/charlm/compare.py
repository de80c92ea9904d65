#!/usr/bin/python3
"""Compare a `loom run` output folder with PyTorch's reference outputs.

    loom run examples/charlm/charlm.loom --weights examples/charlm/charlm.safetensors \
        --input tokens=examples/charlm/reference/tokens.npy \
        --input h0=examples/charlm/reference/h0.npy \
        --input c0=examples/charlm/reference/c0.npy --output-dir /tmp/charlm-out
    /usr/bin/python3 examples/charlm/compare.py /tmp/charlm-out

Passes when every element satisfies |a - e| <= 1e-5 + 1e-4 |e| (DESIGN.md's forward
tolerance). Exit status 0 on success, 1 otherwise.
"""
import os
import sys

import numpy as np

REF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: compare.py OUTPUT_DIR")
    ok = True
    for name in ("logits", "h_n", "c_n"):
        want = np.load(os.path.join(REF, name + ".npy"))
        path = os.path.join(sys.argv[1], name + ".npy")
        if not os.path.exists(path):
            print("%s: missing %s" % (name, path))
            ok = False
            continue
        got = np.load(path)
        if got.shape != want.shape:
            print("%s: shape %s, expected %s" % (name, got.shape, want.shape))
            ok = False
            continue
        err = np.abs(got.astype(np.float64) - want)
        bad = err > 1e-5 + 1e-4 * np.abs(want)
        print("%s: max abs error %.3g, %d of %d elements out of tolerance"
              % (name, err.max(), bad.sum(), bad.size))
        ok = ok and not bad.any()
    print("ok" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
