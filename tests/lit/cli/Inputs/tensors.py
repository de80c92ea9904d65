#!/usr/bin/env python3
"""Writes and damages .npy and .safetensors files for the CLI error tests.

Standard library only (CI has no NumPy or PyTorch).

  tensors.py npy OUT DTYPE SHAPE [VALUES]
      DTYPE is a NumPy descr (<f4, <f8, <i8, <i4, ...); SHAPE is like 3,4 (or
      "" for a scalar); VALUES is a comma list, cycled to fill the array
      (default 0).
  tensors.py st-drop IN OUT NAME           remove tensor NAME
  tensors.py st-set IN OUT NAME DTYPE SHAPE
      replace (or add) tensor NAME with zeros of a safetensors DTYPE (F32, I64,
      ...) and SHAPE
  tensors.py st-header IN OUT TEXT         replace the JSON header by TEXT
  tensors.py st-header-len IN OUT N        overwrite the 8-byte header length
  tensors.py truncate IN OUT N             keep the first N bytes (N < 0: drop
                                           the last -N bytes)
  tensors.py st-split-rows IN OUT SRC=NAME,NAME,... ...
      replace F32 tensor SRC by equal blocks of its rows (dimension 0), one
      per NAME, in order (PyTorch's stacked gate weights into per-gate ones)
  tensors.py no-npy DIR                    succeed if DIR is absent or holds
                                           no .npy file (nor a temporary one)
"""
import json
import os
import struct
import sys

NPY_FORMATS = {"<f4": "f", "<f8": "d", "<f2": "e", "<i8": "q", "<i4": "i",
               "<i2": "h", "|i1": "b", "|u1": "B", "|b1": "?"}
ST_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4,
            "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def parse_shape(text):
    return [int(d) for d in text.split(",") if d.strip() != ""]


def count(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def write_npy(path, descr, shape, values):
    fmt = NPY_FORMATS[descr]
    n = count(shape)
    if fmt in "fde":
        vals = [float(v) for v in values] or [0.0]
    elif fmt == "?":
        vals = [bool(int(v)) for v in values] or [False]
    else:
        vals = [int(v) for v in values] or [0]
    data = b"".join(struct.pack("<" + fmt, vals[i % len(vals)]) for i in range(n))
    shape_text = "(" + "".join("%d, " % d for d in shape).rstrip(" ")
    if len(shape) > 1:
        shape_text = shape_text.rstrip(",")
    shape_text += ")"
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape_text)
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * (pad % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)))
        f.write(header.encode("latin1"))
        f.write(data)


def read_st(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    tensors = []
    meta = header.pop("__metadata__", None)
    for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        b, end = e["data_offsets"]
        tensors.append([name, e["dtype"], e["shape"], data[b:end]])
    return tensors, meta


def write_st(path, tensors, meta=None):
    header = {}
    if meta is not None:
        header["__metadata__"] = meta
    offset = 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for t in tensors:
            f.write(t[3])


def main(argv):
    cmd = argv[1]
    if cmd == "npy":
        values = argv[5].split(",") if len(argv) > 5 and argv[5] else []
        write_npy(argv[2], argv[3], parse_shape(argv[4]), values)
    elif cmd == "st-drop":
        tensors, meta = read_st(argv[2])
        kept = [t for t in tensors if t[0] != argv[4]]
        if len(kept) == len(tensors):
            sys.exit("no tensor '%s' in %s" % (argv[4], argv[2]))
        write_st(argv[3], kept, meta)
    elif cmd == "st-set":
        tensors, meta = read_st(argv[2])
        name, dtype, shape = argv[4], argv[5], parse_shape(argv[6])
        new = [name, dtype, shape, b"\0" * (count(shape) * ST_SIZES[dtype])]
        tensors = [new if t[0] == name else t for t in tensors]
        if new not in tensors:
            tensors.append(new)
        write_st(argv[3], tensors, meta)
    elif cmd == "st-split-rows":
        tensors, meta = read_st(argv[2])
        for spec in argv[4:]:
            src, names = spec.split("=")
            names = names.split(",")
            found = [t for t in tensors if t[0] == src]
            if not found:
                sys.exit("no tensor '%s' in %s" % (src, argv[2]))
            _, dtype, shape, data = found[0]
            if dtype != "F32" or shape[0] % len(names):
                sys.exit("cannot split %s %s into %d" % (dtype, shape, len(names)))
            rows = shape[0] // len(names)
            size = len(data) // len(names)
            at = tensors.index(found[0])
            tensors[at:at + 1] = [[n, dtype, [rows] + shape[1:],
                                   data[k * size:(k + 1) * size]]
                                  for k, n in enumerate(names)]
        write_st(argv[3], tensors, meta)
    elif cmd in ("st-header", "st-header-len", "truncate"):
        with open(argv[2], "rb") as f:
            raw = f.read()
        if cmd == "st-header":
            text = argv[4].encode()
            n = struct.unpack("<Q", raw[:8])[0]
            raw = struct.pack("<Q", len(text)) + text + raw[8 + n:]
        elif cmd == "st-header-len":
            raw = struct.pack("<Q", int(argv[4])) + raw[8:]
        else:
            n = int(argv[4])
            raw = raw[:n] if n >= 0 else raw[:len(raw) + n]
        with open(argv[3], "wb") as f:
            f.write(raw)
    elif cmd == "no-npy":
        d = argv[2]
        found = []
        if os.path.isdir(d):
            found = sorted(f for f in os.listdir(d)
                           if ".npy" in f and os.path.isfile(os.path.join(d, f)))
        if found:
            sys.exit("partial output in %s: %s" % (d, ", ".join(found)))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
