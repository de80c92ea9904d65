#!/usr/bin/python3
"""Writes the .npy fixtures read by NpyTest.cpp (numpy 1.24, /usr/bin/python3).

Run from this directory; the outputs are committed, so the tests need no numpy.
"""
import struct

import numpy as np


def save(name, arr):
    np.save(name, arr)


# Version 1.0 files exactly as numpy.save writes them.
save("f32_2x3.npy", np.arange(6, dtype=np.float32).reshape(2, 3) / 4)
save("i64_5.npy", np.array([-3, 0, 7, 2**40, -(2**62)], dtype=np.int64))
save("f64_scalar.npy", np.array(3.25, dtype=np.float64))
save("bool_2x2.npy", np.array([[True, False], [False, True]]))
save("f16_4.npy", np.array([1.0, -2.0, 65504.0, 2.0**-24], dtype=np.float16))
save("f32_0x3.npy", np.zeros((0, 3), dtype=np.float32))
save("i32_3.npy", np.array([1, -1, 2**31 - 1], dtype=np.int32))
save("u8_4.npy", np.array([0, 1, 128, 255], dtype=np.uint8))

# Version 2.0, written by numpy itself when asked.
with open("i16_3_v2.npy", "wb") as f:
    np.lib.format.write_array(f, np.array([1, -2, 300], dtype=np.int16),
                              version=(2, 0))

# Version 3.0 (UTF-8 header), written by hand: numpy only picks it for
# non-Latin-1 field names, which plain arrays never have. Extra spaces and
# reordered keys check that the reader parses the dict, not numpy's layout.
arr = np.array([[1.5, -0.5]], dtype=np.float32)
header = "{'shape': (1, 2),  'fortran_order':False,'descr':'<f4'}"
header += " " * (64 - (12 + len(header) + 1) % 64) + "\n"
with open("f32_1x2_v3.npy", "wb") as f:
    f.write(b"\x93NUMPY\x03\x00" + struct.pack("<I", len(header)))
    f.write(header.encode("utf-8"))
    f.write(arr.tobytes())

# Rejected files: big-endian data and Fortran order.
save("f32_bigendian.npy", np.arange(3, dtype=">f4"))
save("f32_fortran.npy", np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))

# A safetensors file laid out as the reference implementation (Python
# safetensors 0.4) writes it: compact JSON, "__metadata__" first, tensors by
# decreasing dtype then name with their data back to back in that order, and
# the header padded with spaces to a multiple of 8. (Debian has no
# safetensors package, so the layout is reproduced here by hand.)
import json

tensors = {
    "rnn.weight_ih_l0": np.arange(12, dtype=np.float32).reshape(3, 4) / 8,
    "rnn.bias_ih_l0": np.array([0.5, -1.0, 2.0], dtype=np.float32),
    "steps": np.array(7, dtype=np.int64),
    "half": np.array([1.0, -0.25], dtype=np.float16),
    "mask": np.array([True, False, True]),
}
rank = {"BOOL": 0, "U8": 1, "I8": 2, "I16": 5, "F16": 7, "BF16": 8,
        "I32": 9, "F32": 11, "F64": 12, "I64": 13}
st_dtype = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64",
            np.dtype(np.float16): "F16", np.dtype(np.bool_): "BOOL"}
order = sorted(tensors, key=lambda n: (-rank[st_dtype[tensors[n].dtype]], n))
header = {"__metadata__": {"format": "pt", "step": "10"}}
data = b""
for name in order:
    raw = tensors[name].tobytes()
    header[name] = {"dtype": st_dtype[tensors[name].dtype],
                    "shape": list(tensors[name].shape),
                    "data_offsets": [len(data), len(data) + len(raw)]}
    data += raw
text = json.dumps(header, separators=(",", ":")).encode()
text += b" " * ((8 - len(text) % 8) % 8)
with open("mixed.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + data)
