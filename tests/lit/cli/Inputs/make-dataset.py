#!/usr/bin/env python3
"""Writes a toy sequence-classification dataset as .npy files (stdlib only).

  make-dataset.py OUT_PREFIX N SEED [PAD]

Sequences of 2..8 token ids in [1, 12), padded to 8 with PAD (default 0; -1: random ids);
the label is 1 when the sequence contains token 3 before its length, else 0.
Writes OUT_PREFIX-tokens.npy [N, 8], -lengths.npy [N], -labels.npy [N].
"""
import random
import struct
import sys


def write_npy(path, shape, values):
    header = "{'descr': '<i8', 'fortran_order': False, 'shape': (%s), }" % (
        "".join("%d, " % d for d in shape) if len(shape) != 1 else "%d," % shape[0])
    header += " " * (63 - (len(header) + 10) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)))
        f.write(header.encode())
        f.write(struct.pack("<%dq" % len(values), *values))


prefix, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pad = int(sys.argv[4]) if len(sys.argv) > 4 else 0
rng = random.Random(seed)
pad_rng = random.Random(seed + 1000)  # padding never changes the data
T = 8
tokens, lengths, labels = [], [], []
for i in range(n):
    length = rng.randint(2, T)
    seq = [rng.randint(1, 11) for _ in range(length)]
    if i % 2 == 0 and 3 not in seq:
        seq[rng.randrange(length)] = 3
    if i % 2 == 1:
        seq = [t if t != 3 else 4 for t in seq]
    tokens += seq + [pad if pad >= 0 else pad_rng.randint(0, 11) for _ in range(T - length)]
    lengths.append(length)
    labels.append(1 if 3 in seq else 0)
write_npy(prefix + "-tokens.npy", [n, T], tokens)
write_npy(prefix + "-lengths.npy", [n], lengths)
write_npy(prefix + "-labels.npy", [n], labels)
