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
    _i4 = _struct.Struct('!i').pack
    _unpack = _struct.unpack_from
    _evlock = _lock()

_BIG = 65536       # larger items are written without being copied
_NOEND = object()  # setcallback() without an endmarker
_END = object()    # queued behind the last item of a closed channel


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
    # One-shot: the lock is held until set().
    def __init__(self):
        self.flag = False
        self._l = _lock()
        self._l.acquire()

    def set(self):
        with _evlock:
            if self.flag:
                return
            self.flag = True
        self._l.release()

    def wait(self, timeout=None):
        if not self.flag and self._l.acquire(True, _secs(timeout)):
            self._l.release()
        return self.flag


class _Queue(object):
    # _avail is unlocked exactly when items are queued and no getter holds it.
    def __init__(self):
        self._d = deque()
        self._m = _lock()
        self._avail = _lock()
        self._avail.acquire()

    def put(self, x):
        with self._m:
            self._d.append(x)
            if len(self._d) == 1:
                self._avail.release()

    def get(self, timeout=None):
        if not self._avail.acquire(True, _secs(timeout)):
            raise TimeoutError('no item after %r seconds' % (timeout,))
        with self._m:
            x = self._d.popleft()
            if self._d:
                self._avail.release()
        return x


def _errtext(e, skip=1):
    # The traceback of e without its first `skip` entries (agent frames).
    try:
        import traceback
        tb = e.__traceback__
        for _ in range(skip):
            tb = tb and tb.tb_next
        return ''.join(traceback.format_exception(type(e), e, tb))
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

    def __repr__(self):
        return '<Channel id=%d %s>' % (self.id, self._closed and 'closed' or 'open')

    def __del__(self):
        # Dropped while open: tell the other side, as execnet does.
        if not (self._closed or self._rclosed.flag):
            try:
                self.gateway._send(self._items is None and 7 or 5, self.id)
            except Exception:
                pass

    def isclosed(self):
        return self._closed

    def send(self, item):
        if self._closed:
            raise IOError('cannot send to %r' % (self,))
        self.gateway._send(4, self.id, _dumps(item))

    def receive(self, timeout=None):
        q = self._items
        if q is None:
            raise IOError('cannot receive(), channel has receiver callback')
        x = q.get(timeout)
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
                    self.gateway._send(5, self.id)
                else:
                    self.gateway._send(6, self.id, _dumps(error))
        finally:
            self._closed = True
            self._rclosed.set()
            if self._items is not None:
                self._items.put(_END)
            self.gateway._gone(self.id)

    def setcallback(self, callback, endmarker=_NOEND):
        with self.gateway._rl:
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
                callback(x)
            if not (self._closed or self._rclosed.flag):
                self.gateway._cbs[self.id] = (callback, endmarker)

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
        self.buf += op + _i4(n)

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
                self.blob(b'N', o.encode('utf-8'))
            except UnicodeEncodeError:
                raise DumpError('strings must be utf-8 encodable')
        elif t is int:
            if -0x80000000 <= o <= 0x7fffffff:
                self.buf += b'F' + _i4(o)
            else:
                self.blob(b'H', str(o).encode('ascii'))
        elif t is bytes:
            self.blob(b'A', o)
        elif t is list:
            self.n4(b'K', len(o))
            for i, x in enumerate(o):
                self.buf += b'F' + _i4(i)
                self.enc(x)
                self.buf += b'P'
        elif t is dict:
            self.buf += b'J'
            for k, v in o.items():
                self.enc(k)
                self.enc(v)
                self.buf += b'P'
        elif t is tuple or t is set or t is frozenset:
            for x in o:
                self.enc(x)
            self.n4(t is tuple and b'@' or t is set and b'O' or b'E', len(o))
        elif o is None:
            self.buf += b'L'
        elif t is bool:
            self.buf += o and b'R' or b'C'
        elif t is float:
            self.buf += b'D' + _struct.pack('!d', o)
        elif t is complex:
            self.buf += b'T' + _struct.pack('!dd', o.real, o.imag)
        elif t is Channel:
            self.buf += b'B' + _i4(o.id)
        else:
            raise DumpError("can't serialize %s" % (t,))


def _dumps(obj):
    e = _Enc()
    try:
        e.enc(obj)
    except (RecursionError, ValueError) as x:
        if isinstance(x, DumpError):
            raise
        raise DumpError("can't serialize: %s" % (x,))
    e.buf += b'Q'
    e.parts.append(e.buf)
    return e.parts


def _loads(data, gw):
    # The postfix stack machine. Any inconsistency raises, which the reader
    # treats as a fatal protocol error.
    m = memoryview(data)
    n = len(data)
    st = []
    push = st.append
    i = 0
    while 1:
        op = data[i]
        i += 1
        if op in b'FGB@OEKANSMHI':
            k = _unpack('!i', data, i)[0]
            i += 4
            if op in b'FG':
                push(k)
            elif op == 66:
                push(gw._chan(k))
            elif op in b'ANSMHI':
                if k < 0 or i + k > n:
                    raise ValueError('truncated item')
                x = bytes(m[i:i + k])
                i += k
                if op in b'NS':
                    x = x.decode('utf-8')
                elif op == 77:
                    try:
                        x = x.decode('utf-8')
                    except UnicodeDecodeError:
                        pass
                elif op != 65:
                    x = int(x)
                push(x)
            elif op == 75:
                if k < 0 or k > n - i:
                    raise ValueError('bad list length')
                push([None] * k)
            else:
                if k < 0 or k > len(st):
                    raise ValueError('bad collection length')
                x = (op == 64 and tuple or op == 79 and set or frozenset)(st[len(st) - k:])
                del st[len(st) - k:]
                push(x)
        elif op == 80:
            if len(st) < 3:
                raise ValueError('not enough items for setitem')
            v = st.pop()
            k = st.pop()
            st[-1][k] = v
        elif op == 81:
            if len(st) != 1:
                raise ValueError('unbalanced stack at stop')
            return st[0]
        elif op in b'LRCJ':
            push({} if op == 74 else (None, True, False)[b'LRC'.index(op)])
        elif op == 68:
            push(_unpack('!d', data, i)[0])
            i += 8
        elif op == 84:
            push(complex(*_unpack('!dd', data, i)))
            i += 16
        else:
            raise ValueError('unknown opcode %r' % (chr(op),))


class _Reader(object):
    # Each header and each payload is read straight into a bytearray of its
    # exact size: large payloads are never staged or concatenated.
    def __init__(self, readinto):
        self._ri = readinto

    def _readn(self, n):
        b = bytearray(n)
        m = memoryview(b)
        have = 0
        while have < n:
            k = self._ri(m[have:])
            if not k:
                raise EOFError('connection to the master was closed')
            have += k
        return b

    def frame(self):
        code, cid, n = _hdr.unpack(self._readn(9))
        if n < 0:
            raise ValueError('negative payload length')
        return code, cid, self._readn(n)


class _Gateway(object):
    def __init__(self, id, model, stdio, reader, write):
        self.id = id
        self._model = model
        self._stdio = stdio
        self._rd = reader
        self._write = write  # write(buffers) -> bytes written
        self._eof = None  # what receivers raise after EOF
        self._rl = _thread.RLock()  # held while the reader handles a message
        self._fl = _thread.RLock()  # guards _chans, _count, _done
        self._chans = {}  # id -> weak reference to Channel
        self._cbs = {}  # id -> (callback, endmarker)
        self._count = 2
        self._done = False
        self._wl = _thread.RLock()  # guards the output stream and _w*
        self._wbusy = self._wdead = False
        self._wq = []
        self._sl = _lock()  # guards _busy, _idle, _mbusy, _mtask
        self._busy = 0  # executing tasks
        self._idle = _lock()  # held while _busy
        self._mbusy = self._canint = False
        self._mtask = None  # for the main thread, which waits on _mgate
        self._mgate = _lock()
        self._mgate.acquire()
        self._tready = _Event()  # the main thread imported threading

    def newchannel(self):
        with self._fl:
            self._count += 2
            return self._chan(self._count - 2)

    def _chan(self, id):
        with self._fl:
            if self._done:
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
        cb = self._cbs.pop(id, None)
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
        bufs = [p for p in parts if len(p)]
        n = sum(map(len, bufs))
        if n > 0x7fffffff:
            raise DumpError('message is too large')
        bufs.insert(0, _hdr.pack(code, id, n))
        with self._wl:
            if self._wdead:
                raise IOError('cannot send (already closed?)')
            if self._wbusy:
                # A finalizer (Channel.__del__) ran in the middle of a write.
                return self._wq.append(bufs)
            self._wbusy = True
            try:
                self._wq.append(bufs)
                while self._wq:
                    self._writeall(self._wq.pop(0))
            except BaseException as e:
                self._wdead = True  # a partial frame may be out
                if isinstance(e, OSError):
                    raise IOError('cannot send (already closed?)')
                raise
            finally:
                self._wbusy = False

    def _writeall(self, bufs):
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

    # The reader thread.

    def _readloop(self):
        try:
            while 1:
                code, id, data = self._rd.frame()
                if code == 2:
                    break
                with self._rl:
                    self._handle(code, id, data)
        except (EOFError, OSError) as e:
            self._eof = EOFError('%s' % (e,))
        except BaseException as e:
            _stderr('execnet agent %s: protocol error: %s: %s\n' % (self.id, type(e).__name__, e))
            os._exit(2)
        self._end()

    def _handle(self, code, id, data):
        if code == 4:
            cb = self._cbs.get(id)
            ch = self._get(id)
            if cb:
                x = _loads(data, self)
                try:
                    cb[0](x)
                except BaseException as e:
                    text = _errtext(e)
                    try:
                        self._send(6, id, _dumps(text))
                    finally:
                        self._local_close(id, RemoteError(text))
            elif ch is not None and ch._items is not None:
                ch._items.put(_loads(data, self))
        elif code == 3:
            ch = self._chan(id)
            self._schedule(ch, _loads(data, self))
        elif 5 <= code <= 7:
            self._local_close(id, code == 6 and RemoteError(_loads(data, self)) or None,
                              code == 7)
        elif code == 0:
            self._send(4, id, _dumps({'numchannels': len(self._chans),
                                      'numexecuting': self._busy,
                                      'execmodel': self._model}))
            self._send(5, id)
        elif code != 1:
            raise ValueError('unknown message code %d' % (code,))

    def _schedule(self, ch, task):
        err = 'concurrent remote_exec would cause deadlock for main_thread_only execmodel'
        with self._sl:
            if not self._mbusy:
                self._mbusy = True
                self._add(1)
                self._mtask = (ch, task)
                return self._mgate.release()
            if self._model == 'thread':
                self._add(1)
                try:
                    return _thread.start_new_thread(self._runw, (ch, task))
                except Exception as e:
                    self._add(-1)
                    err = _errtext(e, 0)
        ch.close(err)

    def _add(self, d):
        # Called with _sl held; _idle is held exactly while _busy > 0.
        if not self._busy:
            self._idle.acquire()
        self._busy += d
        if not self._busy:
            self._idle.release()

    def _end(self):
        # The master said goodbye or went away: wake every receiver, give
        # running tasks a second, then let the main thread return.
        with self._rl:
            with self._fl:
                self._done = True
            for id in list(self._chans):
                self._local_close(id, None, True)
            for id in list(self._cbs):
                self._gone(id)
        if self._stdio and _signal.getsignal(_signal.SIGALRM) == _signal.SIG_DFL:
            _signal.alarm(3)  # even if user code never releases the GIL
        # Tasks woken by EOFError usually end by themselves; a main thread
        # task that does not gets a KeyboardInterrupt.
        if self._busy and not self._idle.acquire(True, 0.2):
            if self._mbusy and self._canint:
                if callable(_signal.getsignal(_signal.SIGINT)):
                    _signal.pthread_kill(self._mident, _signal.SIGINT)
                else:
                    _thread.interrupt_main()
            if not self._idle.acquire(True, 0.8):
                os._exit(1)
        self._mtask = None
        self._mgate.release()

    # Task execution.

    def _runw(self, ch, task):
        self._tready.wait()
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
            if not (isinstance(e, EOFError) or self._done):
                err = _errtext(e)
        finally:
            # Free before the close reaches the master: it may send the next
            # task the moment it sees the close.
            with self._sl:
                self._mbusy = self._mbusy and not main
                self._add(-1)
        try:
            ch.close(err)
        except Exception:
            pass


def execnet_agent_serve(mode='stdio', sock=None, gateway_id='gw', execmodel='thread',
                        chdir=None, nice=0, env=None):
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
        import io
        reader = _Reader(io.FileIO(rfd, 'rb', closefd=False).readinto)
        write = lambda bufs: os.writev(wfd, bufs)
    else:
        sock.setblocking(True)
        reader = _Reader(sock.recv_into)
        write = sock.sendmsg
    gw = _Gateway(gateway_id, execmodel, stdio, reader, write)
    try:
        write([b'1'])
    except OSError:
        return
    gw._mident = _thread.get_ident()
    _thread.start_new_thread(gw._readloop, ())
    if sys.version_info < (3, 13):
        # Before 3.13 the first thread that imports threading becomes its
        # main_thread(): import it here, before any task can.
        import threading
        main = threading.main_thread().ident
    else:
        main = _thread._get_main_thread_ident()
    gw._canint = main == gw._mident
    gw._tready.set()
    while 1:
        try:
            gw._mgate.acquire()
            task, gw._mtask = gw._mtask, None
            if task is None:
                break
            gw._run(task[0], task[1], True)
        except KeyboardInterrupt:
            pass
    gw._wdead = True  # finalizers must not write: the stream may be gone
    if not stdio:
        try:
            sock.close()
        except OSError:
            pass
        return

    # Leave through the normal interpreter exit (atexit handlers run), but
    # never let user threads keep the process alive for long.
    def watchdog():
        l = _lock()
        l.acquire()
        l.acquire(True, 1.0)
        os._exit(0)
    _thread.start_new_thread(watchdog, ())
