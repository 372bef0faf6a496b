# malicious-agent.py: a remote side that bootstraps like an agent, then
# breaks the protocol; test-torture.c runs it as the interpreter of a popen
# gateway:
#
#     popen//python=python3 malicious-agent.py MODE
#
# The popen transport appends its own interpreter options and bootstrap
# snippet (-u -c "import sys;...") to that command line; they arrive here
# as further arguments and are ignored.
#
# It reads the bootstrap, acknowledges it with b"1" as an agent does,
# and waits for the first CHANNEL_EXEC frame. Then, by MODE:
#
#   garbage    random bytes (from a fixed seed, so every run is the same),
#              among them a frame header no reader can accept
#   oversize   a CHANNEL_DATA header claiming a 2 GiB payload, then silence
#   trickle    a CHANNEL_DATA header claiming just under 1 GiB, 1 MiB of
#              it, then silence: a well-formed frame that never completes
#   badcode    a frame with message code 99
#   badvalue   CHANNEL_DATA on the exec channel holding a corrupt value
#   truncated  half a frame, then exit
#
# Or, instead of acknowledging the bootstrap:
#
#   noisy      64 KiB of terminal escape sequences and bytes that are not
#              UTF-8 on stderr, then a refusal ("E" and a reason) made of
#              the same, and exit
#
# After that it keeps quiet until its input ends (the master closes it or
# goes away), then exits. Only the standard library; Python 3.8+.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import random
import struct
import sys

HEADER = struct.Struct("!bii")
CHANNEL_EXEC = 3
CHANNEL_DATA = 4

# The master's limit on a frame's payload (doc/protocol.md, section 6).
MAX_PAYLOAD = 1 << 30


class Input:
    """Reads fd 0 without the buffering of sys.stdin, which could swallow
    bytes that belong to the next frame."""

    def __init__(self):
        self.buffer = b""

    def _fill(self):
        data = os.read(0, 65536)
        if not data:
            raise EOFError
        self.buffer += data

    def read_line(self):
        while b"\n" not in self.buffer:
            self._fill()
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    def read(self, size):
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data


def write(data):
    view = memoryview(data)
    while view:
        view = view[os.write(1, view):]


def frame(code, channel, payload):
    return HEADER.pack(code, channel, len(payload)) + payload


def rejected_at(data):
    """Walks @data as the master's frame reader would. Returns the offset of
    the first header it must reject, or None if the data ends first (or a
    claimed payload runs past the end) without such a header."""
    offset = 0
    while offset + HEADER.size <= len(data):
        code, _, length = HEADER.unpack_from(data, offset)
        if not 0 <= code <= 7 or not 0 <= length <= MAX_PAYLOAD:
            return offset
        offset += HEADER.size + length
    return None


def garbage():
    # Random bytes can look like a header that claims a large payload and
    # then swallow the rest; take the first seed whose bytes reach a header
    # that is corrupt beyond doubt.
    seed = 0
    while True:
        data = random.Random(seed).getrandbits(8 * 4096).to_bytes(4096, "big")
        if rejected_at(data) is not None:
            return data
        seed += 1


def misbehave(mode, channel):
    if mode == "garbage":
        write(garbage())
    elif mode == "oversize":
        write(HEADER.pack(CHANNEL_DATA, channel, 2**31 - 1))
    elif mode == "trickle":
        write(HEADER.pack(CHANNEL_DATA, channel, MAX_PAYLOAD - 1))
        write(b"\0" * (1 << 20))
    elif mode == "badcode":
        write(frame(99, 0, b""))
    elif mode == "badvalue":
        # A string whose length runs past the end of the payload.
        write(frame(CHANNEL_DATA, channel, b"N" + struct.pack("!i", 1000) + b"abcQ"))
    elif mode == "truncated":
        whole = frame(CHANNEL_DATA, channel, b"N" + struct.pack("!i", 40) + b"x" * 40 + b"Q")
        write(whole[: len(whole) // 2])
        sys.exit(0)
    else:
        sys.stderr.write("malicious-agent.py: unknown mode %r\n" % mode)
        sys.exit(2)


def main():
    if len(sys.argv) < 2:
        sys.stderr.write("usage: malicious-agent.py MODE [ignored...]\n")
        sys.exit(2)
    mode = sys.argv[1]
    source = Input()

    try:
        # The bootstrap: one line, and with the compiled agent cached, the
        # line of code that the first one reads (doc/protocol.md 1.2.1).
        if b"_p = sys.stdin.readline()" in source.read_line():
            source.read_line()
        if mode == "noisy":
            noise = b"\x1b[2J\x1b]0;owned\x07\xff\xfe\xc3(\x9b31m"
            os.write(2, noise * (65536 // len(noise)) + b"\n")
            write(b"E" + noise * 8 + b"\n")
            sys.exit(1)
        write(b"1")

        while True:
            code, channel, length = HEADER.unpack(source.read(HEADER.size))
            source.read(length)
            if code == CHANNEL_EXEC:
                break

        misbehave(mode, channel)

        while True:
            source.read(65536)
    except EOFError:
        pass


main()
