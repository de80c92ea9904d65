#!/usr/bin/env python3
"""Kills `loom train` with SIGKILL while it writes a checkpoint, then checks
that the checkpoint it had written before is intact.

  kill-mid-checkpoint.py CKPT -- LOOM-TRAIN-COMMAND...

The command must write CKPT with --checkpoint-every 1. Once the first
checkpoint exists, the directory is polled for the writer's temporary file
(CKPT.tmp-*); the moment one appears the process is killed, mid-write. Then:
the temporary file is still there (the kill really landed during a write),
and CKPT is a complete safetensors file -- every tensor's data inside the
file, the file exactly as long as its header says -- holding a loom
checkpoint. Prints the step of the surviving checkpoint.
"""
import json
import os
import signal
import struct
import subprocess
import sys
import time

ckpt = sys.argv[1]
assert sys.argv[2] == "--"
cmd = sys.argv[3:]
folder = os.path.dirname(os.path.abspath(ckpt))
prefix = os.path.basename(ckpt) + ".tmp-"


def temporaries():
    return [f for f in os.listdir(folder) if f.startswith(prefix)]


def check_complete(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    end = 0
    for name, t in header.items():
        if name == "__metadata__":
            continue
        begin, stop = t["data_offsets"]
        end = max(end, stop)
    assert 8 + n + end == len(data), "size %d, header says %d" % (
        len(data), 8 + n + end)
    meta = header["__metadata__"]
    assert meta["format"] == "loom-checkpoint-1", meta
    return int(meta["step"])


assert not temporaries(), "stale temporary files before the run"
proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
deadline = time.time() + 120
while not os.path.exists(ckpt):
    assert proc.poll() is None, "loom train exited before its first checkpoint"
    assert time.time() < deadline, "no checkpoint after 120 s"
    time.sleep(0.001)
before = check_complete(ckpt)
killed = False
while time.time() < deadline:
    if temporaries():
        os.kill(proc.pid, signal.SIGKILL)
        killed = True
        break
    assert proc.poll() is None, "loom train finished without being killed"
proc.wait()
assert killed, "never saw a checkpoint being written"
assert proc.returncode == -signal.SIGKILL, proc.returncode
left = temporaries()
assert left, "the kill did not land during a write"
step = check_complete(ckpt)
assert step >= before, (step, before)
for f in left:
    os.remove(os.path.join(folder, f))
print("killed while writing; checkpoint intact at step %d" % step)
