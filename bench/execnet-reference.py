"""Measures Python execnet on the same workloads as bench-popen, for comparison.

Run with the interpreter that has execnet installed; prints one JSON object.
Usage: execnet-reference.py PYTHON STARTS ROUNDTRIPS MEGABYTES
"""
import json
import sys
import time

import execnet

python, starts, roundtrips, megabytes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
spec = "popen//python=" + python


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


start_times = []
for _ in range(starts):
    t0 = time.perf_counter()
    gw = execnet.makegateway(spec)
    start_times.append(time.perf_counter() - t0)
    gw.exit()
    gw.join()

gw = execnet.makegateway(spec)

ch = gw.remote_exec("for item in channel:\n    channel.send(item)\n")
ch.send(0)
ch.receive()
t0 = time.perf_counter()
for i in range(roundtrips):
    ch.send(i)
    ch.receive()
roundtrip = (time.perf_counter() - t0) / roundtrips
ch.close()

item = b"x" * (1 << 20)
ch = gw.remote_exec(
    "n = 0\n"
    "while True:\n"
    "    item = channel.receive()\n"
    "    if item is None:\n"
    "        break\n"
    "    n += len(item)\n"
    "channel.send(n)\n"
)
t0 = time.perf_counter()
for _ in range(megabytes):
    ch.send(item)
ch.send(None)
ch.receive()
upload = megabytes / (time.perf_counter() - t0)

ch = gw.remote_exec(
    "item = b'x' * (1 << 20)\n"
    "for _ in range(channel.receive()):\n"
    "    channel.send(item)\n"
)
t0 = time.perf_counter()
ch.send(megabytes)
for _ in range(megabytes):
    ch.receive()
download = megabytes / (time.perf_counter() - t0)

gw.exit()
gw.join()

json.dump({
    "start": median(start_times),
    "roundtrip": roundtrip,
    "upload": upload,
    "download": download,
    "version": execnet.__version__,
}, sys.stdout)
