# execnet-ssh spawner: starts the interpreters of further gateways on a
# shared ssh connection, so that each costs a forwarded channel and a
# fork instead of a session and a login shell (doc/ssh.md, "Spawner").
#
# Runs in a session of its own on the connection, started by the master
# with python -u -c and a short loader that reads this source from the
# start of its stdin (execnet-ssh-spawner.c). It listens on a Unix socket in a private directory
# (mode 0700) and first says on its stdout one of
#   ready PATH         listening at PATH
#   fail MESSAGE       cannot serve; the master starts sessions instead
# The master opens a direct-streamlocal channel to PATH per gateway and
# writes "spawn ID LENGTH\n" (each number in ten columns) and LENGTH bytes
# of NUL-separated words: how to start the child, then the interpreter's
# command line, which ends in "-c CODE":
#   fork      the command names this interpreter: a fork of the spawner,
#             with a clean __main__, runs CODE (-B is honoured)
#   exec      run the command line
#   default   the same, but where there is no python3, with python
# The connection becomes the child's stdin and stdout. The child runs in a
# process group of its own; when it ends, the rest of its group gets
# SIGTERM, as the session's sh wrapper does.
#
# Frames to the master (stdout):
#   err ID LENGTH\n + LENGTH bytes    what the child wrote to stderr
#   exit ID STATUS\n                  the child ended (raw wait status),
#                                     after all of its err frames
# Lines from the master (stdin, after the source):
#   kill ID SIGNAL                    signal the child's process group
# End-of-file on stdin (the connection is gone) ends every child still
# running (SIGTERM, SIGKILL after a grace period) and then the spawner.
#
# Only modules a fresh interpreter has loaded anyway, and the C halves of
# signal and socket: start-up time is what this is for, and a forked child
# should look like a fresh interpreter.
import _signal
import _socket
import os
import select
import sys

MAX_REQUEST = 65536
HEADER = len(b'spawn %10d %10d\n' % (0, 0))
GRACE = 3.0

master_gone = False


def write_all(data):
    # Once the master has gone, reports go nowhere; the spawner still
    # ends its children before it ends.
    global master_gone
    while data and not master_gone:
        try:
            data = data[os.write(1, data):]
        except InterruptedError:
            pass
        except OSError:
            master_gone = True


class Child(object):
    """What a forked child needs once it has left the spawner."""

    def __init__(self, code, dont_write_bytecode):
        self.code = code
        self.dont_write_bytecode = dont_write_bytecode


class Spawner(object):
    def __init__(self, listener, path):
        self.listener = listener
        self.path = path
        self.poll = select.poll()
        self.pending = {}      # fd -> bytes so far: requests being read
        self.children = {}     # id -> pid
        self.by_pid = {}       # pid -> id
        self.errors = {}       # stderr pipe fd -> id
        self.control = b''
        self.stopping = False
        self.wake, self.wake_w = os.pipe()
        os.set_blocking(self.wake, False)
        os.set_blocking(self.wake_w, False)
        _signal.set_wakeup_fd(self.wake_w)
        for signum in (_signal.SIGCHLD, _signal.SIGTERM, _signal.SIGHUP):
            _signal.signal(signum, self.on_signal)
        self.poll.register(0, select.POLLIN)
        self.poll.register(listener.fileno(), select.POLLIN)
        self.poll.register(self.wake, select.POLLIN)

    def on_signal(self, signum, frame):
        if signum != _signal.SIGCHLD:
            self.stopping = True

    def run(self):
        """Serves until told to stop (returns None), or returns a Child
        in a forked child."""
        while not self.stopping:
            for fd, events in self.poll.poll():
                child = self.ready(fd)
                if child is not None:
                    return child
            self.reap()
        self.stop()
        return None

    def ready(self, fd):
        if fd == 0:
            self.read_control()
        elif fd == self.listener.fileno():
            self.accept()
        elif fd == self.wake:
            self.drain_wake()
        elif fd in self.pending:
            return self.read_request(fd)
        elif fd in self.errors:
            self.forward_errors(fd)
        return None

    def drain_wake(self):
        try:
            while os.read(self.wake, 512):
                pass
        except OSError:
            pass

    def read_control(self):
        try:
            data = os.read(0, 4096)
        except OSError:
            data = b''
        if not data:
            self.stopping = True
            return
        self.control += data
        while b'\n' in self.control:
            line, self.control = self.control.split(b'\n', 1)
            words = line.split()
            if len(words) == 3 and words[0] == b'kill' and words[1].isdigit() and words[2].isdigit():
                self.kill(int(words[1]), int(words[2]))

    def kill(self, ident, signum):
        pid = self.children.get(ident)
        if pid is not None:
            try:
                os.killpg(pid, signum)
            except OSError:
                pass

    def accept(self):
        try:
            fd, _ = self.listener._accept()
        except OSError:
            return
        os.set_blocking(fd, False)
        self.pending[fd] = b''
        self.poll.register(fd, select.POLLIN)

    def drop(self, fd):
        self.poll.unregister(fd)
        del self.pending[fd]
        os.close(fd)

    def read_request(self, fd):
        # Never read past the request: what follows is the child's input.
        request = self.pending[fd]
        words = request[:HEADER].split()
        if len(request) < HEADER:
            need = HEADER
        elif (len(words) == 3 and words[0] == b'spawn' and words[1].isdigit() and
              words[2].isdigit() and 0 < int(words[2]) <= MAX_REQUEST):
            need = HEADER + int(words[2])
        else:
            self.drop(fd)
            return None
        try:
            data = os.read(fd, need - len(request))
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            data = b''
        if not data:
            self.drop(fd)
            return None
        request += data
        self.pending[fd] = request
        if len(request) == HEADER:
            return self.read_request(fd)
        if len(request) < need:
            return None
        self.poll.unregister(fd)
        del self.pending[fd]
        argv = request[HEADER:].split(b'\0')
        ident = int(words[1])
        if (len(argv) < 4 or argv[-2] != b'-c' or argv[0] not in (b'fork', b'exec', b'default') or
                ident in self.children):
            os.close(fd)
            return None
        return self.spawn(fd, ident, argv[0], argv[1:])

    def spawn(self, fd, ident, how, argv):
        err_r, err_w = os.pipe()
        # The child's stdio must block; the flag is the connection's, not
        # this descriptor's.
        os.set_blocking(fd, True)
        try:
            pid = os.fork() if how == b'fork' else self.exec_child(fd, err_w, how, argv)
        except OSError as e:
            os.close(err_r)
            os.close(err_w)
            os.close(fd)
            message = 'execnet-ssh spawner: cannot start %s: %s\n' % (os.fsdecode(argv[0]), e.strerror)
            message = message.encode('utf-8', 'replace')
            write_all(b'err %d %d\n' % (ident, len(message)) + message)
            write_all(b'exit %d %d\n' % (ident, 127 << 8))
            return None
        if pid == 0:
            os.close(err_r)
            return self.become_child(fd, err_w, argv)
        os.close(err_w)
        os.close(fd)
        self.children[ident] = pid
        self.by_pid[pid] = ident
        self.errors[err_r] = ident
        self.poll.register(err_r, select.POLLIN)
        return None

    def exec_child(self, fd, err_w, how, argv):
        options = dict(file_actions=[(os.POSIX_SPAWN_DUP2, fd, 0),
                                     (os.POSIX_SPAWN_DUP2, fd, 1),
                                     (os.POSIX_SPAWN_DUP2, err_w, 2)],
                       setpgroup=0,
                       setsigdef=(_signal.SIGPIPE, _signal.SIGXFSZ))
        try:
            return os.posix_spawnp(argv[0], argv, os.environ, **options)
        except FileNotFoundError:
            if how != b'default':
                raise
        return os.posix_spawnp(b'python', [b'python'] + argv[1:], os.environ, **options)

    def become_child(self, fd, err_w, argv):
        # In the forked child: nothing of the spawner may stay behind.
        os.setpgid(0, 0)
        _signal.set_wakeup_fd(-1)
        for signum in (_signal.SIGCHLD, _signal.SIGTERM, _signal.SIGHUP):
            _signal.signal(signum, _signal.SIG_DFL)
        os.dup2(fd, 0)
        os.dup2(fd, 1)
        os.dup2(err_w, 2)
        os.close(fd)
        os.close(err_w)
        self.listener.close()
        for other in list(self.pending) + list(self.errors) + [self.wake, self.wake_w]:
            os.close(other)
        return Child(os.fsdecode(argv[-1]), b'-B' in argv[1:-2])

    def forward_errors(self, fd, final=False):
        ident = self.errors[fd]
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b''
            if data:
                write_all(b'err %d %d\n' % (ident, len(data)) + data)
            if not data or not final or not select.select([fd], [], [], 0)[0]:
                break
        if not data:
            self.poll.unregister(fd)
            del self.errors[fd]
            os.close(fd)

    def reap(self):
        while self.by_pid:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            ident = self.by_pid.pop(pid, None)
            if ident is None:
                continue
            self.children.pop(ident, None)
            # What is left of its process group goes with it.
            try:
                os.killpg(pid, _signal.SIGTERM)
            except OSError:
                pass
            for fd, owner in list(self.errors.items()):
                if owner == ident and select.select([fd], [], [], 0)[0]:
                    self.forward_errors(fd, final=True)
            write_all(b'exit %d %d\n' % (ident, status))

    def stop(self):
        for signum in (_signal.SIGTERM, _signal.SIGKILL):
            for pid in list(self.by_pid):
                try:
                    os.killpg(pid, signum)
                except OSError:
                    pass
            left = GRACE
            while self.by_pid and left > 0:
                select.select([self.wake], [], [], 0.1)
                self.drain_wake()
                self.reap()
                left -= 0.1
        try:
            os.unlink(self.path)
            os.rmdir(os.path.dirname(self.path))
        except OSError:
            pass


def listen():
    """A socket in a new private directory: (socket, path), or a string
    saying why not."""
    problems = []
    for parent in (os.environ.get('TMPDIR'), '/tmp', '/var/tmp', os.path.expanduser('~')):
        if not parent:
            continue
        directory = os.path.join(parent, 'execnet-ssh-' + os.urandom(6).hex())
        path = os.path.join(directory, 's')
        if len(os.fsencode(path)) >= 100 or '\n' in path:
            problems.append('%s: name too long or odd' % parent)
            continue
        try:
            os.mkdir(directory, 0o700)
        except OSError as e:
            problems.append('%s: %s' % (parent, e.strerror))
            continue
        try:
            listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            listener.bind(path)
            listener.listen(64)
            return listener, path
        except OSError as e:
            problems.append('%s: %s' % (directory, e.strerror))
            os.rmdir(directory)
    return 'cannot listen on a Unix socket (%s)' % '; '.join(problems)


def main():
    if not hasattr(os, 'posix_spawnp'):
        write_all(b'fail Python 3.8 or newer is needed\n')
        return None
    listening = listen()
    if isinstance(listening, str):
        write_all(('fail %s\n' % listening).encode('utf-8', 'replace'))
        return None
    listener, path = listening
    spawner = Spawner(listener, path)
    write_all(('ready %s\n' % path).encode('utf-8', 'surrogateescape'))
    return spawner.run()


child = main()
if child is None:
    sys.exit(0)
# A forked child: run the bootstrap as `python -c` would, in a clean
# __main__ (this frame stays below it, and keeps the old one alive).
sys.dont_write_bytecode = child.dont_write_bytecode
main_module = type(sys)('__main__')
main_module.__dict__.update(__builtins__=__builtins__, __loader__=__loader__, __annotations__={})
sys.modules['__main__'] = main_module
exec(child.code, main_module.__dict__)
