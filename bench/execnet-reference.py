"""Measures a Python peer (execnet or mitogen) on bench-popen's workloads.

Usage: execnet-reference.py execnet|mitogen PYTHON

Prints a JSON line {"version": ...} once ready, then reads commands, one a
line, and answers each with one JSON number, so that bench-popen can
interleave them with its own measures and the floors in one run:

  cycle N      median seconds of N times: start a gateway (a local context
               for mitogen), one round trip, terminate and reap it
  roundtrip N  seconds per small item round trip (mitogen: per call())
  ints-up N    items per second, N small ints master to remote
  ints-down N  items per second, N small ints remote to master
  upload N     MB/s, N items of 1 MiB master to remote
  download N   MB/s, N items of 1 MiB remote to master

A command the peer does not have answers null.
"""
import json
import sys
import time

ECHO = "for item in channel:\n    channel.send(item)\n"
COUNT = (
    "n = 0\n"
    "while True:\n"
    "    item = channel.receive()\n"
    "    if item is None:\n"
    "        break\n"
    "    n += 1\n"
    "channel.send(n)\n"
)
PRODUCE_INTS = "for i in range(channel.receive()):\n    channel.send(i)\n"
COUNT_BYTES = COUNT.replace("n += 1", "n += len(item)")
PRODUCE_BYTES = (
    "item = b'x' * (1 << 20)\n"
    "for _ in range(channel.receive()):\n"
    "    channel.send(item)\n"
)


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


class Execnet:
    def __init__(self, python):
        import execnet
        self.execnet = execnet
        self.spec = "popen//python=" + python
        self.version = "execnet " + execnet.__version__
        self.gw = None

    def gateway(self):
        if self.gw is None:
            self.gw = self.execnet.makegateway(self.spec)
        return self.gw

    def cycle(self, n):
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            group = self.execnet.Group()
            gw = group.makegateway(self.spec)
            gw.remote_exec("channel.send(1)").receive()
            group.terminate(5.0)
            samples.append(time.perf_counter() - t0)
        return median(samples)

    def roundtrip(self, n):
        ch = self.gateway().remote_exec(ECHO)
        ch.send(-1)
        ch.receive()
        t0 = time.perf_counter()
        for i in range(n):
            ch.send(i)
            ch.receive()
        elapsed = time.perf_counter() - t0
        ch.close()
        ch.waitclose()
        return elapsed / n

    def ints_up(self, n):
        ch = self.gateway().remote_exec(COUNT)
        t0 = time.perf_counter()
        for i in range(n):
            ch.send(i)
        ch.send(None)
        assert ch.receive() == n
        return n / (time.perf_counter() - t0)

    def ints_down(self, n):
        ch = self.gateway().remote_exec(PRODUCE_INTS)
        t0 = time.perf_counter()
        ch.send(n)
        for _ in range(n):
            ch.receive()
        return n / (time.perf_counter() - t0)

    def upload(self, n):
        item = b"x" * (1 << 20)
        ch = self.gateway().remote_exec(COUNT_BYTES)
        t0 = time.perf_counter()
        for _ in range(n):
            ch.send(item)
        ch.send(None)
        ch.receive()
        return n / (time.perf_counter() - t0)

    def download(self, n):
        ch = self.gateway().remote_exec(PRODUCE_BYTES)
        t0 = time.perf_counter()
        ch.send(n)
        for _ in range(n):
            ch.receive()
        return n / (time.perf_counter() - t0)

    def close(self):
        if self.gw is not None:
            self.gw.exit()
            self.gw.join()


class Mitogen:
    def __init__(self, python):
        import mitogen
        import mitogen.master
        self.python = python
        self.version = "mitogen " + ".".join(map(str, mitogen.__version__))
        self.broker = mitogen.master.Broker()
        self.router = mitogen.master.Router(self.broker)
        self.ctx = None

    def context(self):
        if self.ctx is None:
            self.ctx = self.router.local(python_path=self.python)
        return self.ctx

    def cycle(self, n):
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            ctx = self.router.local(python_path=self.python)
            ctx.call(int, 1)
            ctx.shutdown(wait=True)
            samples.append(time.perf_counter() - t0)
        return median(samples)

    def roundtrip(self, n):
        ctx = self.context()
        ctx.call(int, -1)
        t0 = time.perf_counter()
        for i in range(n):
            ctx.call(int, i)
        return (time.perf_counter() - t0) / n

    def close(self):
        if self.ctx is not None:
            self.ctx.shutdown(wait=True)
        self.broker.shutdown()
        self.broker.join()


def main():
    kind, python = sys.argv[1], sys.argv[2]
    peer = (Execnet if kind == "execnet" else Mitogen)(python)
    out = sys.stdout
    out.write(json.dumps({"version": peer.version}) + "\n")
    out.flush()
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        method = getattr(peer, words[0].replace("-", "_"), None)
        result = method(int(words[1])) if method else None
        out.write(json.dumps(result) + "\n")
        out.flush()
    peer.close()


if __name__ == "__main__":
    main()
