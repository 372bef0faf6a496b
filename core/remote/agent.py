# agent.py: the remote half of an execnet-glib gateway
#
# The master sends this file as one ASCII string literal followed by a call
# of execnet_agent_serve(), then speaks execnet's message protocol with it.
# Compiling this file is most of our start-up time: keep it small, import
# only builtin modules on the fast path. It must parse even on Python 2 so
# that the version check can answer: no f-strings, keyword-only arguments,
# print or nonlocal.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import io
import os
import sys

if sys.version_info >= (3, 8):
    import _signal
    import _struct
    import _thread
    from _collections import deque
    from _weakref import ref as _wref

    _lock = _thread.allocate_lock
    _hdr = _struct.Struct('!bii')
    _op4 = _struct.Struct('!Bi').pack
    _i4u = _struct.Struct('!i').unpack_from
    _int_item = _struct.Struct('!BiB').pack
    _int_frame = _struct.Struct('!biiBiB')  # a frame of one small int item
    _int_frame_pack = _int_frame.pack
    _int_frame = _int_frame.unpack_from
    _unpack = _struct.unpack_from
    _event_flags_lock = _lock()  # guards every _Event.flag

# Message codes, as in core/execnet-frame-private.h.
_MSG_STATUS = 0
_MSG_RECONFIGURE = 1
_MSG_GATEWAY_TERMINATE = 2
_MSG_CHANNEL_EXEC = 3
_MSG_CHANNEL_DATA = 4
_MSG_CHANNEL_CLOSE = 5
_MSG_CHANNEL_CLOSE_ERROR = 6
_MSG_CHANNEL_LAST_MESSAGE = 7

# Serializer opcodes (one byte each), as in core/execnet-value.c.
_OP_BUILDTUPLE = 64  # '@'
_OP_BYTES = 65       # 'A'
_OP_CHANNEL = 66     # 'B'
_OP_FALSE = 67       # 'C'
_OP_FLOAT = 68       # 'D'
_OP_FROZENSET = 69   # 'E'
_OP_INT = 70         # 'F'
_OP_LONG = 71        # 'G'
_OP_LONGINT = 72     # 'H'
_OP_LONGLONG = 73    # 'I'
_OP_NEWDICT = 74     # 'J'
_OP_NEWLIST = 75     # 'K'
_OP_NONE = 76        # 'L'
_OP_PY2STRING = 77   # 'M'
_OP_PY3STRING = 78   # 'N'
_OP_SET = 79         # 'O'
_OP_SETITEM = 80     # 'P'
_OP_STOP = 81        # 'Q'
_OP_TRUE = 82        # 'R'
_OP_UNICODE = 83     # 'S'
_OP_COMPLEX = 84     # 'T'

# Opcodes by what follows them in the stream.
_OPS_WITH_INT4 = b'FGB@OEKANSMHI'  # a 4-byte signed integer
_OPS_WITH_BLOB = b'ANSMHI'         # ...that counts the bytes after it
_OPS_STRING = b'NS'                # UTF-8 text
_OPS_INT = b'FG'                   # the integer is the value
_OPS_STRING_ALONE = b'ANSM'         # strings that _Blob reads apart

_BIG = 65536       # larger items are written without being copied
_COALESCE = 262144  # bytes queued for a busy writer before senders wait
_CHUNK = 262144    # the read buffer: many small frames per read(2)
_NOEND = object()  # setcallback() without an endmarker
_END = object()    # queued behind the last item of a closed channel
_WAKE = object()   # queued to a waiting receiver: the stream may have no reader
_TIMEOUT = object()  # a leading receiver's time ran out
_GRACE = 0.01      # seconds the reader thread leaves the stream to the task that read it last
_MAIN_WAIT = 1.0   # seconds a main_thread_only task waits for the main thread
_OUTPUT_CHANNEL = -1  # CHANNEL_DATA to the master: ('stdout'|'stderr'|'log', data)
_DEADLOCK = 'concurrent remote_exec would cause deadlock for main_thread_only execmodel'


class RemoteError(Exception):
    def __init__(self, formatted):
        Exception.__init__(self, formatted)
        self.formatted = formatted

    def __str__(self):
        return '%s' % (self.formatted,)


class TimeoutError(IOError):
    pass


class DumpError(ValueError):
    pass


def _secs(t):
    return -1 if t is None else min(max(t, 0), _thread.TIMEOUT_MAX)


class _Event(object):
    # One-shot: _unset is held until set().
    def __init__(self):
        self.flag = False
        self._unset = _lock()
        self._unset.acquire()

    def set(self):
        with _event_flags_lock:
            if self.flag:
                return
            self.flag = True
        self._unset.release()

    def wait(self, timeout=None):
        if not self.flag and self._unset.acquire(True, _secs(timeout)):
            self._unset.release()
        return self.flag


class _Queue(object):
    # _nonempty is unlocked exactly when items are queued and no getter
    # holds it.
    def __init__(self):
        self._items = deque()
        self._items_lock = _lock()
        self._nonempty = _lock()
        self._nonempty.acquire()

    def put(self, x):
        with self._items_lock:
            self._items.append(x)
            if len(self._items) == 1:
                self._nonempty.release()

    def put_many(self, xs):
        with self._items_lock:
            self._items.extend(xs)
            if len(self._items) == len(xs):
                self._nonempty.release()

    def get(self, timeout=None):
        if not (self._nonempty.acquire(False)
                or timeout != 0 and self._nonempty.acquire(True, _secs(timeout))):
            raise TimeoutError('no item after %r seconds' % (timeout,))
        with self._items_lock:
            x = self._items.popleft()
            if self._items:
                self._nonempty.release()
        return x


def _errtext(e, skip=1):
    # The traceback of e without its first `skip` entries (agent frames).
    try:
        import traceback
        tb = e.__traceback__
        for _ in range(skip):
            tb = tb and tb.tb_next
        text = ''.join(traceback.format_exception(type(e), e, tb))
        # A SyntaxError has no frame of its own: keep the header anyway.
        if tb is None:
            text = 'Traceback (most recent call last):\n' + text
        return text
    except Exception:
        return '%s: %s' % (type(e).__name__, e)


def _stderr(text):
    try:
        os.write(2, text.encode('utf-8', 'replace'))
    except Exception:
        pass


class Channel(object):
    RemoteError = RemoteError
    TimeoutError = TimeoutError

    def __init__(self, gateway, id):
        self.gateway = gateway
        self.id = id
        self._items = _Queue()     # None once a callback is set
        self._closed = False
        self._rclosed = _Event()   # nothing more will arrive
        self._errors = []
        self._led = False          # a receiver of this channel read the stream

    def __repr__(self):
        return '<Channel id=%d %s>' % (self.id, self._closed and 'closed' or 'open')

    def __del__(self):
        # Dropped while open: tell the other side, as execnet does.
        if not (self._closed or self._rclosed.flag):
            try:
                self.gateway._send(self._items is None and _MSG_CHANNEL_LAST_MESSAGE
                                   or _MSG_CHANNEL_CLOSE, self.id)
            except Exception:
                pass

    def isclosed(self):
        return self._closed

    def send(self, item):
        if self._closed:
            raise IOError('cannot send to %r' % (self,))
        if item.__class__ is int and -0x80000000 <= item <= 0x7fffffff:
            # The commonest item, framed with one pack().
            self.gateway._send_bufs(
                [_int_frame_pack(_MSG_CHANNEL_DATA, self.id, 6, _OP_INT, item, _OP_STOP)], 15)
        else:
            self.gateway._send(_MSG_CHANNEL_DATA, self.id, _dumps(item))

    def receive(self, timeout=None):
        q = self._items
        if q is None:
            raise IOError('cannot receive(), channel has receiver callback')
        gw = self.gateway
        gw._receives += 1
        if q._items or gw._stop is not None or not gw._lead.acquire(False):
            x = gw._receive(self, q, timeout, False)
        else:
            # The stream is ours to read (see _Gateway._receive); the
            # commonest case, a whole frame of ours with a small int at
            # hand, is taken here. Not if the thread that held _lead
            # before queued items for us meanwhile: they come first.
            rd = gw._rd
            pos = rd._pos
            if rd._end - pos >= 15 and rd._back is None and not q._items:
                code, id, n, op, v, stop = _int_frame(rd._buf, pos)
                if id == self.id and code == _MSG_CHANNEL_DATA and n == 6 and op == _OP_INT and stop == _OP_STOP:
                    rd._pos = pos + 15
                    gw._unlead()
                    return v
            x = gw._receive(self, q, timeout, True)
        if x is _END:
            q.put(x)
            raise self._error() or EOFError()
        return x

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return self.receive()
        except EOFError:
            raise StopIteration

    def _error(self):
        return self._errors and self._errors.pop(0) or self.gateway._eof

    def waitclose(self, timeout=None):
        if not self._rclosed.wait(timeout):
            raise TimeoutError('Timeout after %r seconds' % (timeout,))
        e = self._error()
        if e:
            raise e

    def close(self, error=None):
        if self._closed:
            return
        try:
            if not self._rclosed.flag:
                if error is None:
                    self.gateway._send(_MSG_CHANNEL_CLOSE, self.id)
                else:
                    self.gateway._send(_MSG_CHANNEL_CLOSE_ERROR, self.id, _dumps(error))
        finally:
            self._closed = True
            self._rclosed.set()
            if self._items is not None:
                self._items.put(_END)
                if self.gateway._leading is self:
                    self.gateway._poke()  # its receiver reads the stream: wake it
            self.gateway._gone(self.id)

    def setcallback(self, callback, endmarker=_NOEND):
        _threading(self.gateway._main_ident)  # callbacks run in whichever thread reads the stream
        with self.gateway._dispatch_lock:
            q = self._items
            if q is None:
                raise IOError('%r has callback already registered' % (self,))
            self._items = None
            while 1:
                try:
                    x = q.get(0)
                except TimeoutError:
                    break
                if x is _END:
                    if endmarker is not _NOEND:
                        callback(endmarker)
                    return
                if x is not _WAKE:
                    callback(x)
            if not (self._closed or self._rclosed.flag):
                self.gateway._callbacks[self.id] = (callback, endmarker)

    def makefile(self, mode='w', proxyclose=False):
        if mode != 'w':
            raise ValueError('mode %r not available' % (mode,))
        f = _ChannelFile()
        f.write, f.channel, f._proxyclose = self.send, self, proxyclose
        return f

    def reconfigure(self, py2str_as_py3str=True, py3str_as_py2str=False):
        pass


class _ChannelFile(object):
    def flush(self):
        pass

    def isatty(self):
        return False

    def close(self):
        if self._proxyclose:
            self.channel.close()


class _Enc(object):
    # Serializes into a list of buffers; large bytes and strings stay
    # separate buffers so that they are written without a copy.
    def __init__(self):
        self.buf = bytearray()
        self.parts = []

    def n4(self, op, n):
        if n > 0x7fffffff:
            raise DumpError('item is too long')
        self.buf += _op4(op, n)

    def blob(self, op, b):
        self.n4(op, len(b))
        if len(b) < _BIG:
            self.buf += b
        else:
            self.parts += (self.buf, b)
            self.buf = bytearray()

    def enc(self, o):
        t = type(o)
        if t is str:
            try:
                self.blob(_OP_PY3STRING, o.encode('utf-8'))
            except UnicodeEncodeError:
                raise DumpError('strings must be utf-8 encodable')
        elif t is int:
            if -0x80000000 <= o <= 0x7fffffff:
                self.buf += _op4(_OP_INT, o)
            else:
                self.blob(_OP_LONGINT, str(o).encode('ascii'))
        elif t is bytes:
            self.blob(_OP_BYTES, o)
        elif t is list:
            self.n4(_OP_NEWLIST, len(o))
            for i, x in enumerate(o):
                self.buf += _op4(_OP_INT, i)
                self.enc(x)
                self.buf.append(_OP_SETITEM)
        elif t is dict:
            self.buf.append(_OP_NEWDICT)
            for k, v in o.items():
                self.enc(k)
                self.enc(v)
                self.buf.append(_OP_SETITEM)
        elif t is tuple or t is set or t is frozenset:
            for x in o:
                self.enc(x)
            self.n4(t is tuple and _OP_BUILDTUPLE or t is set and _OP_SET or _OP_FROZENSET,
                    len(o))
        elif o is None:
            self.buf.append(_OP_NONE)
        elif t is bool:
            self.buf.append(o and _OP_TRUE or _OP_FALSE)
        elif t is float:
            self.buf += _struct.pack('!Bd', _OP_FLOAT, o)
        elif t is complex:
            self.buf += _struct.pack('!Bdd', _OP_COMPLEX, o.real, o.imag)
        elif t is Channel:
            self.buf += _op4(_OP_CHANNEL, o.id)
        else:
            raise DumpError("can't serialize %s" % (t,))


def _dumps(obj):
    if obj.__class__ is int and -0x80000000 <= obj <= 0x7fffffff:
        return [_int_item(_OP_INT, obj, _OP_STOP)]  # the commonest item
    e = _Enc()
    try:
        e.enc(obj)
    except (RecursionError, ValueError) as x:
        if isinstance(x, DumpError):
            raise
        raise DumpError("can't serialize: %s" % (x,))
    e.buf.append(_OP_STOP)
    e.parts.append(e.buf)
    return e.parts


def _loads(data, gw):
    # The postfix stack machine. Any inconsistency raises, which the reader
    # treats as a fatal protocol error.
    if data.__class__ is _Blob:
        return data.value()
    n = len(data)
    op = n and data[0]
    if op == _OP_INT and n == 6 and data[5] == _OP_STOP:
        return _i4u(data, 1)[0]  # a small int, the commonest item
    if op == _OP_PY3STRING and n > 5 and data[n - 1] == _OP_STOP and _i4u(data, 1)[0] == n - 6:
        return data[5:n - 1].decode('utf-8')  # a string alone
    m = memoryview(data)
    st = []
    push = st.append
    i = 0
    while 1:
        op = data[i]
        i += 1
        if op in _OPS_WITH_INT4:
            k = _unpack('!i', data, i)[0]
            i += 4
            if op in _OPS_INT:
                push(k)
            elif op == _OP_CHANNEL:
                push(gw._chan(k))
            elif op in _OPS_WITH_BLOB:
                if k < 0 or i + k > n:
                    raise ValueError('truncated item')
                x = bytes(m[i:i + k])
                i += k
                if op in _OPS_STRING:
                    x = x.decode('utf-8')
                elif op == _OP_PY2STRING:
                    try:
                        x = x.decode('utf-8')
                    except UnicodeDecodeError:
                        pass
                elif op != _OP_BYTES:
                    x = int(x)
                push(x)
            elif op == _OP_NEWLIST:
                if k < 0 or k > n - i:
                    raise ValueError('bad list length')
                push([None] * k)
            else:
                if k < 0 or k > len(st):
                    raise ValueError('bad collection length')
                x = (op == _OP_BUILDTUPLE and tuple or op == _OP_SET and set
                     or frozenset)(st[len(st) - k:])
                del st[len(st) - k:]
                push(x)
        elif op == _OP_SETITEM:
            if len(st) < 3:
                raise ValueError('not enough items for setitem')
            v = st.pop()
            k = st.pop()
            st[-1][k] = v
        elif op == _OP_STOP:
            if len(st) != 1:
                raise ValueError('unbalanced stack at stop')
            return st[0]
        elif op == _OP_NONE:
            push(None)
        elif op == _OP_TRUE:
            push(True)
        elif op == _OP_FALSE:
            push(False)
        elif op == _OP_NEWDICT:
            push({})
        elif op == _OP_FLOAT:
            push(_unpack('!d', data, i)[0])
            i += 8
        elif op == _OP_COMPLEX:
            push(complex(*_unpack('!dd', data, i)))
            i += 16
        else:
            raise ValueError('unknown opcode %r' % (chr(op),))


class _Blob(object):
    # A payload that is one large string item, read into a bytes object of
    # its own: decoding it costs no copy (and text no more than the decode).
    __slots__ = ('op', 'raw')

    def __init__(self, op, raw):
        self.op = op
        self.raw = raw

    def value(self):
        if self.op == _OP_BYTES:
            return self.raw
        if self.op == _OP_PY2STRING:
            try:
                return self.raw.decode('utf-8')
            except UnicodeDecodeError:
                return self.raw
        return self.raw.decode('utf-8')


class _Reader(object):
    # Frames are parsed out of a buffer of _CHUNK bytes, so that one read(2)
    # brings many small frames; a small payload is the one copy made of its
    # bytes. A large payload is read past the buffer into a bytes object of
    # its own, and a large payload that is a single string item is read
    # into its own bytes object (see _Blob).
    def __init__(self, readinto, fd):
        self._ri = readinto
        self.fd = fd
        self._buf = bytearray(_CHUNK)
        self._mv = memoryview(self._buf)
        self._pos = self._end = 0  # the unparsed bytes: _buf[_pos:_end]
        self._back = None  # a frame read but given back: frame() returns it first
        # Reads of exact sizes (a 1-byte buffer never reads ahead) through
        # what _buf holds, then straight from the stream.
        drain = _Drain(self)
        self._into = drain.readinto
        self._read = io.BufferedReader(drain, 1).read

    def more(self):
        # True when a whole frame is at hand: frame() would not block.
        a = self._end - self._pos
        return self._back is not None or a >= 9 and a - 9 >= _i4u(self._buf, self._pos + 5)[0]

    def _fill(self, n):
        # Makes _buf hold n <= _CHUNK unparsed bytes.
        pos, end = self._pos, self._end
        if pos + n > _CHUNK:
            self._buf[:end - pos] = self._buf[pos:end]
            pos, end = 0, end - pos
            self._pos = 0
        while end - pos < n:
            k = self._ri(self._mv[end:])
            if not k:
                self._end = end
                raise EOFError('connection to the master was closed')
            end += k
        self._end = end

    def _readn(self, n):
        b = self._read(n)
        if len(b) != n:
            raise EOFError('connection to the master was closed')
        return b

    def frame(self):
        if self._back is not None:
            f, self._back = self._back, None
            return f
        if self._end - self._pos < 9:
            if self._pos == self._end:
                self._pos = self._end = 0
            self._fill(9)
        code, cid, n = _hdr.unpack_from(self._buf, self._pos)
        if n < 0:
            raise ValueError('negative payload length')
        self._pos += 9
        if n < _BIG:
            if self._end - self._pos < n:
                self._fill(n)
            pos = self._pos
            self._pos = pos + n
            return code, cid, self._buf[pos:pos + n]
        head = self._readn(5)
        op = head[0]
        if op in _OPS_STRING_ALONE and _unpack('!i', head, 1)[0] == n - 6:
            raw = self._readn(n - 6)
            tail = self._readn(1)
            if tail[0] == _OP_STOP:
                return code, cid, _Blob(op, raw)
            return code, cid, head + raw + tail  # not one item: fails decoding
        b = bytearray(n)
        b[:5] = head
        m = memoryview(b)[5:]
        while m:
            k = self._into(m)
            if not k:
                raise EOFError('connection to the master was closed')
            m = m[k:]
        return code, cid, b


class _Drain(io.RawIOBase):
    # The stream under _Reader's large reads: first what _Reader's buffer
    # holds, then the stream itself.
    def __init__(self, rd):
        self._rd = rd

    def readable(self):
        return True

    def readinto(self, b):
        rd = self._rd
        k = min(len(b), rd._end - rd._pos)
        if not k:
            return rd._ri(b)
        b[:k] = rd._mv[rd._pos:rd._pos + k]
        rd._pos += k
        return k


class _Gateway(object):
    def __init__(self, id, model, stdio, reader, write):
        self.id = id
        self._model = model
        self._stdio = stdio
        self._rd = reader
        self._write = write  # write(buffers) -> bytes written
        self._eof = None  # what receivers raise after EOF
        # Held while a message is handled, so that setcallback()
        # sees either the queued items or the callback, never neither.
        self._dispatch_lock = _thread.RLock()
        self._chans_lock = _thread.RLock()  # guards _chans, _next_id, _ended
        self._chans = {}  # id -> weak reference to Channel
        self._callbacks = {}  # id -> (callback, endmarker); run by whoever holds _lead
        self._next_id = 2
        self._ended = False  # the master said goodbye or went away
        # Held by the thread writing to the output stream, for as long as it
        # writes. Frames sent meanwhile are queued (up to _COALESCE bytes)
        # and that thread writes them too, many in one writev.
        self._write_lock = _thread.RLock()
        # Guards _writing, _output_closed, _write_queue, _queued. Re-entrant:
        # a finalizer (Channel.__del__) may send while it is held.
        self._queue_lock = _thread.RLock()
        self._writing = self._output_closed = False
        self._write_queue = []
        self._queued = 0
        # Guards _n_tasks, _tasks_done, _main_busy, _main_task.
        self._tasks_lock = _lock()
        self._n_tasks = 0  # executing tasks
        self._tasks_done = _lock()  # held while _n_tasks > 0
        self._main_busy = False  # the main thread runs a task
        self._main_interruptible = False  # our main thread is Python's
        self._main_task = None  # for the main thread, which waits on _main_wakeup
        self._main_wakeup = _lock()
        self._main_wakeup.acquire()
        # main_thread_only: (channel, task, deadline) waiting for the main
        # thread, and whether a thread expires them; guarded by _tasks_lock.
        self._main_waiting = []
        self._main_expiring = False
        self._threading_ready = _Event()  # the main thread imported threading
        # Leader/follower receive: whoever holds _lead reads the stream and
        # dispatches what it reads; see _receive() and _readloop().
        self._lead = _lock()
        self._leading = None  # the channel whose receiver holds _lead
        self._stop = None  # the end a leader met: a GATEWAY_TERMINATE frame or an error
        self._poll = None  # the leaders' select.poll() of the stream and _wake_r
        self._wake_r = self._wake_w = None  # a pipe that wakes a leader in poll()
        # Guards the reader thread's states (parked until _lead is released;
        # napping for _GRACE first; urgent: no nap) and _followers, the
        # queues of receivers waiting while another thread holds _lead.
        self._lead_mx = _lock()
        self._reader_wake = _lock()
        self._reader_wake.acquire()
        self._reader_parked = self._reader_napping = self._reader_urgent = False
        self._followers = []
        self._reader_polling = False  # the reader thread holds _lead, waiting in poll()
        self._receives = 0  # counts receive() calls, so that the reader thread sees tasks at work
        self._yield = False  # the reader thread queued items for a channel whose receiver led

    def newchannel(self):
        with self._chans_lock:
            self._next_id += 2
            return self._chan(self._next_id - 2)

    def _chan(self, id):
        with self._chans_lock:
            if self._ended:
                raise IOError('gateway %s is closed' % (self.id,))
            ch = self._get(id)
            if ch is None:
                ch = Channel(self, id)
                self._chans[id] = _wref(
                    ch, lambda r, d=self._chans, i=id: d.get(i) is r and d.pop(i))
            return ch

    def _get(self, id):
        r = self._chans.get(id)
        return r and r()

    def _gone(self, id):
        self._chans.pop(id, None)
        cb = self._callbacks.pop(id, None)
        if cb and cb[1] is not _NOEND:
            try:
                cb[0](cb[1])
            except BaseException as e:
                _stderr(_errtext(e, 0))

    def _local_close(self, id, error=None, sendonly=False):
        ch = self._get(id)
        if ch is not None:
            if error is not None:
                ch._errors.append(error)
            if ch._items is not None:
                ch._items.put(_END)
        self._gone(id)
        if ch is not None:
            ch._closed = ch._closed or not sendonly
            ch._rclosed.set()

    def _send(self, code, id, parts=()):
        if len(parts) == 1 and len(parts[0]) < _BIG:
            # A small item: one buffer, one write.
            n = len(parts[0])
            bufs = [_hdr.pack(code, id, n) + parts[0]]
        else:
            bufs = [p for p in parts if len(p)]
            n = sum(map(len, bufs))
            if n > 0x7fffffff:
                raise DumpError('message is too large')
            bufs.insert(0, _hdr.pack(code, id, n))
        self._send_bufs(bufs, n)

    def _send_bufs(self, bufs, n):
        # Writes bufs (whole frames, n bytes), or queues them for the thread
        # that is writing.
        if not self._write_lock.acquire(False):
            with self._queue_lock:
                if self._output_closed:
                    raise IOError('cannot send (already closed?)')
                if self._writing and self._queued < _COALESCE:
                    # The thread writing takes it along.
                    self._write_queue += bufs
                    self._queued += n
                    return
            self._write_lock.acquire()
        # _writing is only set and cleared with _write_lock held: set, it is
        # our own write, interrupted by a finalizer that sends.
        try:
            if self._output_closed:
                raise IOError('cannot send (already closed?)')
            if self._writing:
                with self._queue_lock:
                    self._write_queue += bufs
                    self._queued += n
                return
            self._writing = True
            self._write_out(bufs)
        finally:
            self._write_lock.release()

    def _write_out(self, bufs):
        # Called with _write_lock held and _writing set: writes bufs, then
        # what other threads queued meanwhile, until the queue is empty.
        try:
            while bufs:
                self._writeall(bufs)
                with self._queue_lock:
                    bufs, self._write_queue, self._queued = self._write_queue, [], 0
                    self._writing = bool(bufs)
        except BaseException as e:
            with self._queue_lock:
                self._output_closed = True  # a partial frame may be out
                self._writing = False
                self._write_queue = []
            if isinstance(e, OSError):
                raise IOError('cannot send (already closed?)')
            raise

    def _close_output(self):
        # What other threads queued is written by the thread writing, which
        # holds _write_lock until the queue is empty: wait for it (a second
        # at most: the master may have stopped reading).
        if self._write_lock.acquire(True, 1.0):
            self._write_lock.release()
        with self._queue_lock:
            self._output_closed = True  # finalizers must not write: the stream may be gone

    def _writeall(self, bufs):
        if len(bufs) == 1:
            n = self._write(bufs)
            if n == len(bufs[0]):
                return
            bufs = [memoryview(bufs[0])[n:]] if n else bufs
        i = 0
        while i < len(bufs):
            n = self._write(bufs[i:i + 512])
            if not n:
                raise IOError('short write')
            while n:
                k = len(bufs[i])
                if n < k:
                    bufs[i] = memoryview(bufs[i])[n:]
                    break
                n -= k
                i += 1

    # Receiving: leader/follower. Whoever holds _lead reads the stream and
    # dispatches what it reads. A task whose receive() finds its queue empty
    # and _lead free reads the stream itself, returns its own item without
    # any thread switch, and releases _lead; the reader thread takes the
    # stream back only when no task has taken it again within _GRACE (or at
    # once when a task ends). A receiver that finds _lead held waits on its
    # queue as a follower; whoever releases _lead wakes one follower with
    # _WAKE so that it may lead.

    def _receive(self, ch, q, timeout, leading):
        # The next item of ch's queue q (perhaps _END); leading: the caller
        # holds _lead and q is empty.
        end = None
        if timeout is not None:
            t = _secs(timeout)
            if t != t:
                if leading:
                    self._unlead()
                return q.get(timeout)  # NaN: the error of Lock.acquire()
            from time import monotonic
            end = monotonic() + t
        while 1:
            if leading or not q._items and self._stop is None and self._lead.acquire(False):
                leading = False
                try:
                    x = self._lead_receive(ch, q, end)
                finally:
                    self._unlead()
            elif q._items:
                try:
                    x = q.get(0)
                except TimeoutError:
                    continue  # another receiver of ch took it
            else:
                x = self._follow(q, end)
            if x is _TIMEOUT:
                raise TimeoutError('no item after %r seconds' % (timeout,))
            if x is not _WAKE:
                return x

    def _follow(self, q, end):
        # An item of q, _WAKE (try to lead) or _TIMEOUT.
        with self._lead_mx:
            self._followers.append(q)
        if self._reader_polling:
            self._poke()  # the reader thread waits for the master: take over
        try:
            if not q._items and self._stop is None and not self._lead.locked():
                return _WAKE  # released meanwhile, perhaps without waking us
            t = None
            if end is not None:
                from time import monotonic
                t = max(0, end - monotonic())
            try:
                return q.get(t)
            except TimeoutError:
                return _TIMEOUT
        finally:
            with self._lead_mx:
                if q in self._followers:
                    self._followers.remove(q)

    def _lead_receive(self, ch, q, end):
        # Called with _lead held: reads frames until one brings ch an item
        # (returned), q gets one otherwise (_WAKE), the stream ends (_WAKE,
        # _stop set) or end passes (_TIMEOUT).
        rd = self._rd
        cid = ch.id
        self._leading = ch
        ch._led = True
        try:
            while not q._items:
                if not rd.more():
                    ready = self._await(end)
                    if ready is None:
                        return _TIMEOUT
                    if not ready:
                        continue  # poked: look at q
                elif rd._back is None:
                    # A whole frame at hand: ours and small, it is taken
                    # straight from the buffer.
                    buf = rd._buf
                    pos = rd._pos
                    code, id, n = _hdr.unpack_from(buf, pos)
                    if id == cid and code == _MSG_CHANNEL_DATA and 0 <= n < _BIG and ch._items is q:
                        rd._pos = pos + 9 + n
                        if n == 6 and buf[pos + 9] == _OP_INT and buf[pos + 14] == _OP_STOP:
                            return _i4u(buf, pos + 10)[0]
                        return _loads(buf[pos + 9:pos + 9 + n], self)
                frame = rd.frame()
                code, id, data = frame
                if code == _MSG_GATEWAY_TERMINATE:
                    self._stop = frame
                    break
                if id == cid and code == _MSG_CHANNEL_DATA and ch._items is q:
                    return _loads(data, self)
                with self._dispatch_lock:
                    rd._back = self._dispatch(frame)
            return _WAKE
        except (EOFError, OSError) as e:
            self._stop = e
            return _WAKE
        except Exception as e:
            self._protocol_error(e)
        finally:
            self._leading = None

    def _await(self, end):
        # Waits until the stream can be read (True), Channel.close() pokes
        # (False) or end passes (None).
        t = None
        if end is not None:
            from time import monotonic
            t = max(0, end - monotonic()) * 1000
        ready = False
        for fd, _ in self._poll.poll(t):
            if fd == self._wake_r:
                os.read(fd, 512)
            else:
                ready = True
        if ready:
            return True
        if end is not None and monotonic() >= end:
            return None
        return False

    def _poke(self):
        try:
            os.write(self._wake_w, b'.')
        except (OSError, TypeError):
            pass

    def _unlead(self):
        self._lead.release()
        if self._followers or self._reader_parked or self._stop is not None:
            self._kick(self._stop is not None, True)

    def _kick(self, urgent, follower=False):
        # Wakes the reader thread (at once when urgent, else after _GRACE
        # unless a task takes _lead first) and, for follower, one follower.
        q = None
        with self._lead_mx:
            if follower and self._followers:
                q = self._followers.pop(0)
            if urgent:
                self._reader_urgent = True
            if self._reader_parked or urgent and self._reader_napping:
                self._reader_parked = self._reader_napping = False
                self._reader_wake.release()
        if q is not None:
            q.put(_WAKE)

    def _park(self):
        # The reader thread: sleeps until _lead is released.
        with self._lead_mx:
            self._reader_parked = True
        if self._lead.locked():
            self._reader_wake.acquire()
        else:
            with self._lead_mx:
                if self._reader_parked:
                    self._reader_parked = False
                else:
                    self._reader_wake.acquire()  # released meanwhile: take the wake back

    def _nap(self):
        # The reader thread: gives the task that read last _GRACE to read
        # again. True when cut short by an urgent _kick().
        with self._lead_mx:
            if self._reader_urgent:
                self._reader_urgent = False
                return True
            self._reader_napping = True
        woken = self._reader_wake.acquire(True, _GRACE)
        with self._lead_mx:
            urgent, self._reader_urgent = self._reader_urgent, False
            if not woken:
                if self._reader_napping:
                    self._reader_napping = False
                else:
                    self._reader_wake.acquire()  # woken just too late: take the wake back
        return urgent

    def _protocol_error(self, e):
        _stderr('execnet agent %s: protocol error: %s: %s\n' % (self.id, type(e).__name__, e))
        os._exit(2)

    # The reader thread.

    def _readloop(self):
        import select
        rd = self._rd
        self._wake_r, self._wake_w = os.pipe()
        self._poll = select.poll()
        self._poll.register(rd.fd, select.POLLIN)
        self._poll.register(self._wake_r, select.POLLIN)
        nap = False
        seen = -1
        while 1:
            if nap and not self._nap() and seen != self._receives:
                seen = self._receives
                continue  # tasks are receiving: the stream is theirs while they do
            nap = True
            if not self._lead.acquire(False):
                self._park()
                continue
            if self._stop is not None:
                break  # a leading task met the end; _lead stays held
            try:
                frame = None
                while 1:
                    if frame is None and not rd.more():
                        # Waiting for the master: a task that comes to
                        # receive() meanwhile pokes us to let it read.
                        self._reader_polling = True
                        if self._followers or not self._await(None):
                            self._reader_polling = False
                            if self._followers:
                                break
                            continue
                        self._reader_polling = False
                    if frame is None:
                        frame = rd.frame()
                    if frame[0] == _MSG_GATEWAY_TERMINATE:
                        self._stop = frame
                        break
                    with self._dispatch_lock:
                        frame = self._dispatch(frame)
                    if frame is None and (self._followers or self._yield):
                        self._yield = False
                        break  # let a waiting task read, or one that did
            except (EOFError, OSError) as e:
                self._stop = e
            except Exception as e:
                self._protocol_error(e)
            if self._stop is not None:
                break
            rd._back = frame
            self._lead.release()
            self._kick(False, True)
        if self._stop.__class__ is not tuple:
            self._eof = EOFError('%s' % (self._stop,))
        self._end()

    def _dispatch(self, frame):
        # Handles frame. Items for a receive queue go in together with
        # those of the whole frames that follow for the same channel, so
        # that a receiver is woken once per read rather than per item.
        # Returns a frame read but not handled, or None.
        code, id, data = frame
        ch = self._get(id)
        if code != _MSG_CHANNEL_DATA or id in self._callbacks or ch is None or ch._items is None:
            self._handle(code, id, data)
            return None
        items = [_loads(data, self)]
        rd = self._rd
        frame = None
        while rd.more():
            frame = rd.frame()
            if frame[0] != _MSG_CHANNEL_DATA or frame[1] != id:
                break
            items.append(_loads(frame[2], self))
            frame = None
        ch._items.put_many(items)
        self._yield = self._yield or ch._led
        return frame

    def _handle(self, code, id, data):
        if code == _MSG_CHANNEL_DATA:
            cb = self._callbacks.get(id)
            ch = self._get(id)
            if cb:
                x = _loads(data, self)
                try:
                    cb[0](x)
                except BaseException as e:
                    text = _errtext(e)
                    try:
                        self._send(_MSG_CHANNEL_CLOSE_ERROR, id, _dumps(text))
                    finally:
                        self._local_close(id, RemoteError(text))
            elif ch is not None and ch._items is not None:
                ch._items.put(_loads(data, self))
        elif code == _MSG_CHANNEL_EXEC:
            ch = self._chan(id)
            self._schedule(ch, _loads(data, self))
        elif _MSG_CHANNEL_CLOSE <= code <= _MSG_CHANNEL_LAST_MESSAGE:
            error = None
            if code == _MSG_CHANNEL_CLOSE_ERROR:
                error = RemoteError(_loads(data, self))
            self._local_close(id, error, code == _MSG_CHANNEL_LAST_MESSAGE)
        elif code == _MSG_STATUS:
            self._send(_MSG_CHANNEL_DATA, id, _dumps({'numchannels': len(self._chans),
                                      'numexecuting': self._n_tasks,
                                      'execmodel': self._model}))
            self._send(_MSG_CHANNEL_CLOSE, id)
        elif code != _MSG_RECONFIGURE:
            raise ValueError('unknown message code %d' % (code,))

    def _schedule(self, ch, task):
        err = _DEADLOCK
        with self._tasks_lock:
            if not self._main_busy:
                self._main_busy = True
                self._add(1)
                self._main_task = (ch, task)
                return self._main_wakeup.release()
            if self._model == 'thread':
                self._add(1)
                try:
                    return _thread.start_new_thread(self._runw, (ch, task))
                except Exception as e:
                    self._add(-1)
                    err = _errtext(e, 0)
            else:
                # The main thread may only be returning from its task: the
                # master sends the next one as soon as it has the last item.
                # Wait for it as execnet does, for a while, in arrival order.
                from time import monotonic
                self._main_waiting.append((ch, task, monotonic() + _MAIN_WAIT))
                if not self._main_expiring:
                    self._main_expiring = True
                    try:
                        return _thread.start_new_thread(self._expire_waiting, ())
                    except Exception as e:
                        self._main_expiring = False
                        self._main_waiting.pop()
                        err = _errtext(e, 0)
                else:
                    return
        ch.close(err)

    def _expire_waiting(self):
        # Refuses the tasks still waiting for the main thread after
        # _MAIN_WAIT seconds; _run() hands the others over.
        from time import monotonic
        nap = _lock()
        nap.acquire()
        while 1:
            with self._tasks_lock:
                now = monotonic()
                expired = [w for w in self._main_waiting if w[2] <= now]
                self._main_waiting = [w for w in self._main_waiting if w[2] > now]
                if not (expired or self._main_waiting):
                    self._main_expiring = False
                    return
                until = self._main_waiting and self._main_waiting[0][2] or now
            for ch, _, _ in expired:
                try:
                    ch.close(_DEADLOCK)
                except Exception:
                    pass
            if until > now:
                nap.acquire(True, until - now)

    def _add(self, d):
        # Called with _tasks_lock held; _tasks_done is held exactly while _n_tasks > 0.
        if not self._n_tasks:
            self._tasks_done.acquire()
        self._n_tasks += d
        if not self._n_tasks:
            self._tasks_done.release()

    def _end(self):
        # The master said goodbye or went away: wake every receiver, give
        # running tasks a second, then let the main thread return.
        with self._tasks_lock:
            self._main_waiting = []
        with self._dispatch_lock:
            with self._chans_lock:
                self._ended = True
            for id in list(self._chans):
                self._local_close(id, None, True)
            for id in list(self._callbacks):
                self._gone(id)
        if self._stdio and _signal.getsignal(_signal.SIGALRM) == _signal.SIG_DFL:
            _signal.alarm(3)  # even if user code never releases the GIL
        # Tasks woken by EOFError usually end by themselves; a main thread
        # task that does not gets a KeyboardInterrupt.
        if self._n_tasks and not self._tasks_done.acquire(True, 0.2):
            if self._main_busy and self._main_interruptible:
                if callable(_signal.getsignal(_signal.SIGINT)):
                    _signal.pthread_kill(self._main_ident, _signal.SIGINT)
                else:
                    _thread.interrupt_main()
            if not self._tasks_done.acquire(True, 0.8):
                os._exit(1)
        self._main_task = None
        self._main_wakeup.release()

    # Remote output (output=True): fds 1 and 2 are pipes read by a thread.

    def _forward_output(self):
        # What user code or its child processes write to fd 1 or 2 reaches
        # the master as items on _OUTPUT_CHANNEL; while the master cannot
        # take it, it goes to the original stderr, so writers never block.
        self._orig_err = os.dup(2)
        names = {}
        for fd, name in ((1, 'stdout'), (2, 'stderr')):
            r, w = os.pipe()
            os.dup2(w, fd)
            os.close(w)
            names[r] = name
        done = _lock()
        done.acquire()
        self._pumps = [done]
        _thread.start_new_thread(self._pump_output, (names, done))

    def _pump_output(self, names, done):
        # One thread for both pipes (a thread costs start-up time): each
        # read goes out as it comes; a pipe is done at its end of file.
        try:
            import select
            poll = select.poll()
            for fd in names:
                poll.register(fd, select.POLLIN)
            while names:
                for fd, _ in poll.poll():
                    data = os.read(fd, 65536)
                    if not data:
                        poll.unregister(fd)
                        os.close(fd)
                        del names[fd]
                        continue
                    try:
                        self._output((names[fd], data))
                    except Exception:
                        os.write(self._orig_err, data)
        except Exception:
            pass
        finally:
            for fd in names:
                os.close(fd)
            done.release()

    def _output(self, item):
        self._send(_MSG_CHANNEL_DATA, _OUTPUT_CHANNEL, _dumps(item))

    def _end_output(self):
        # Flushes what was written before the end, for a second at most.
        for f in (sys.stdout, sys.stderr):
            try:
                f.flush()
            except Exception:
                pass
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        os.close(null)
        for done in self._pumps:
            done.acquire(True, 1.0)
        os.dup2(self._orig_err, 2)

    # Task execution.

    def _runw(self, ch, task):
        self._threading_ready.wait()
        _threading(self._main_ident)
        self._run(ch, task, False)

    def _run(self, ch, task, main):
        err = None
        try:
            source, file_name, call_name, kwargs = task
            ns = {'channel': ch, '__name__': '__channelexec__'}
            exec(compile(source + '\n', file_name or '<remote exec>', 'exec'), ns)
            if call_name:
                ns[call_name](ch, **kwargs)
        except BaseException as e:
            if not (isinstance(e, EOFError) or self._ended):
                err = _errtext(e)
        finally:
            # Free before the close reaches the master: it may send the next
            # task the moment it sees the close.
            with self._tasks_lock:
                self._main_busy = self._main_busy and not main
                self._add(-1)
                if main and self._main_waiting:
                    nch, ntask, _ = self._main_waiting.pop(0)
                    self._main_busy = True
                    self._add(1)
                    self._main_task = (nch, ntask)
                    self._main_wakeup.release()
        self._kick(True)  # the stream may have no reader now: no grace
        try:
            ch.close(err)
        except Exception:
            pass


class _MainThreadFix(object):
    # A meta path finder for one import of threading in a thread other than
    # the main one (before Python 3.13): threading takes the thread that
    # imports it for main_thread(), so the module is set right before its
    # import completes, while threads that import it too wait for it.
    def __init__(self, main):
        self._main = main
        self._loader = None

    def find_spec(self, name, path=None, target=None):
        if name != 'threading' or _thread.get_ident() == self._main:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, 'find_spec', None)
            spec = finder is not self and find is not None and find(name, path, target)
            if spec:
                break
        else:
            return None
        if hasattr(spec.loader, 'exec_module') and self._loader is None:
            self._loader, spec.loader = spec.loader, self
        return spec

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        try:
            main = module._main_thread
            if main._ident == self._main:
                return
            with module._active_limbo_lock:
                module._active.pop(main._ident, None)
                main._ident = self._main
                if getattr(main, '_native_id', None) is not None:
                    main._native_id = os.getpid()
                # The lock of the importing thread's state would end with
                # that thread; the main thread's is released at shutdown.
                old, main._tstate_lock = main._tstate_lock, _lock()
                main._tstate_lock.acquire()
                locks = getattr(module, '_shutdown_locks', None)
                if locks is not None and old in locks:
                    locks.discard(old)
                    locks.add(main._tstate_lock)
                module._active[self._main] = main
        except Exception:
            pass


def _threading(main):
    # Makes sure threading is imported before user code may import it in a
    # thread other than main (Python's main thread). Callable from any thread.
    if 'threading' in sys.modules or _thread.get_ident() == main or \
            hasattr(_thread, '_get_main_thread_ident'):
        import threading
        return
    fix = _MainThreadFix(main)
    sys.meta_path.insert(0, fix)
    try:
        import threading
    finally:
        # A new list: another thread may be iterating over the old one.
        sys.meta_path = [f for f in sys.meta_path if f is not fix]


def _nothing_left():
    # True when a normal interpreter exit would run no atexit handler and
    # wait for no thread: then it would do nothing the process needs.
    import atexit
    if atexit._ncallbacks():
        return False
    threading = sys.modules.get('threading')
    if threading is None:
        return True
    if getattr(threading, '_threading_atexits', None):
        return False
    main = threading.main_thread()
    for t in threading.enumerate():
        if t is not main and not t.daemon and t.is_alive():
            return False
    return True


def _compiled_answer(code):
    # What precedes the "1" when the master asked for the compiled agent:
    # "C", this Python's 4-byte bytecode magic number, the length of the
    # marshalled code as a big-endian int32, the code (see
    # core/execnet-bootstrap.c). Nothing when the magic is unknown.
    magic = getattr(sys.modules.get('_frozen_importlib_external'), 'MAGIC_NUMBER', None)
    if code is None or not isinstance(magic, bytes) or len(magic) != 4:
        return []
    return [b'C', magic, _struct.pack('!i', len(code)), code]


def execnet_agent_serve(mode='stdio', sock=None, gateway_id='gw', execmodel='thread',
                        chdir=None, nice=0, env=None, code=None, output=False):
    stdio = mode != 'socket'
    out = [1]

    def fail(what, e=None):
        if e is not None:
            errno = getattr(e, 'errno', None)
            what += errno and ': [Errno %s] %s' % (errno, e.strerror) or ': %s' % (e,)
        data = b'E' + what.replace('\n', ' ').encode('utf-8', 'replace') + b'\n'
        try:
            if stdio:
                os.write(out[0], data)
            else:
                sock.sendall(data)
                sock.close()
        finally:
            if stdio:
                os._exit(1)

    if sys.version_info < (3, 8):
        return fail('Python 3.8 or newer is required, this is %s' % sys.version.split()[0])
    if execmodel not in ('thread', 'main_thread_only'):
        return fail('execmodel %r is not supported by this agent; '
                    'use thread or main_thread_only' % (execmodel,))
    if stdio:
        # The protocol gets private copies of fds 0 and 1; fd 0 becomes
        # /dev/null and fd 1 a copy of fd 2, so that nothing user code does
        # with them can corrupt the stream.
        try:
            rfd = os.dup(0)
            out[0] = wfd = os.dup(1)
            fd = os.open(os.devnull, os.O_RDONLY)
            os.dup2(fd, 0)
            os.close(fd)
            os.dup2(2, 1)
            os.set_blocking(rfd, True)
            os.set_blocking(wfd, True)
            enc, errs = sys.stdout.encoding, sys.stdout.errors
            sys.stdin = open(0, closefd=False)
            sys.stdout = open(1, 'w', 1, enc, errs, closefd=False)
        except OSError as e:
            return fail('cannot set up the protocol streams', e)
    what = 'cannot change directory to %r' % (chdir,)
    try:
        if chdir:
            os.makedirs(chdir, exist_ok=True)
            os.chdir(chdir)
        what = 'cannot set nice level %r' % (nice,)
        # Niceness is per thread on Linux: set here, before the agent starts
        # any thread, it holds for every thread of the process.
        if nice:
            os.nice(nice)
        for k, v in (env or {}).items():
            what = 'cannot set environment variable %r' % (k,)
            os.environ[k] = v
    except Exception as e:
        return fail(what, e)

    if stdio:
        reader = _Reader(io.FileIO(rfd, 'rb', closefd=False).readinto, rfd)
        from _functools import partial
        write = partial(os.writev, wfd)
    else:
        sock.setblocking(True)
        reader = _Reader(sock.recv_into, sock.fileno())
        write = sock.sendmsg
    gw = _Gateway(gateway_id, execmodel, stdio, reader, write)
    try:
        gw._writeall(_compiled_answer(code) + [b'1'])
    except OSError:
        return
    gw._main_ident = _thread.get_ident()
    gw._pumps = None
    if output:
        try:
            gw._forward_output()
        except OSError:
            pass
    _thread.start_new_thread(gw._readloop, ())
    if stdio:
        # Started by "python -c": this is Python's main thread. threading
        # is imported when user code needs it (_threading()), not here:
        # that would cost a quarter of a bare start-up.
        main = gw._main_ident
    elif hasattr(_thread, '_get_main_thread_ident'):
        main = _thread._get_main_thread_ident()
    else:
        # Behind a socket server this may be any thread: the first thread
        # that imports threading becomes its main_thread(), so import it
        # here, before any task can.
        import threading
        main = threading.main_thread().ident
    gw._main_interruptible = main == gw._main_ident
    gw._threading_ready.set()
    # The first compile() of a process builds Python's AST types, which
    # takes about 5% of a bare start-up: get it done while the first task
    # is on its way.
    compile('', '<remote exec>', 'exec')
    while 1:
        try:
            gw._main_wakeup.acquire()
            task, gw._main_task = gw._main_task, None
            if task is None:
                break
            gw._run(task[0], task[1], True)
        except KeyboardInterrupt:
            pass
    if gw._pumps is not None:
        gw._end_output()
    gw._close_output()
    if not stdio:
        try:
            sock.close()
        except OSError:
            pass
        return

    if _nothing_left():
        # Tearing the interpreter down takes about a third of its start-up
        # and nothing needs it: leave once the output is flushed.
        for f in (sys.stdout, sys.stderr):
            try:
                f.flush()
            except Exception:
                pass
        os._exit(0)
    # Leave through the normal interpreter exit (atexit handlers run), but
    # never let user threads keep the process alive for long.
    def watchdog():
        l = _lock()
        l.acquire()
        l.acquire(True, 1.0)
        os._exit(0)
    _thread.start_new_thread(watchdog, ())
