# Runs in the gateway named by via=ID: starts the new gateway's interpreter
# here and relays its stdio over this channel, so the master speaks to it
# through ID's connection. Loaded only when a via= gateway is made.
#
# Items from the master: bytes for the child's stdin, ('eof',) when the
# master closed its writing side, ('kill',) to end the child at once.
# Items to the master: bytes the child wrote to stdout, in chunks as large
# as one read returns (not one item per frame), ('stderr', bytes) for what
# it wrote to stderr, then ('exit', returncode) after all of those. The
# child's stderr also goes on to this interpreter's own, as it would
# without the relay; the copy lets the master quote it when the child
# fails before its bootstrap (ssh's "Connection refused", a missing Python).
import os
import subprocess
import threading

argv = channel.receive()
try:
    child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, bufsize=0, close_fds=True)
except OSError as e:
    raise OSError('via %s: cannot start %r: %s' % (channel.gateway.id, argv[0], e))


def pump_err():
    fd = child.stderr.fileno()
    try:
        while True:
            data = os.read(fd, 4096)
            if not data:
                break
            try:
                os.write(2, data)
            except OSError:
                pass
            channel.send(('stderr', data.replace(b'\r\n', b'\n')))
    except (OSError, IOError):
        pass


def pump_out():
    errors = threading.Thread(target=pump_err, daemon=True)
    errors.start()
    fd = child.stdout.fileno()
    try:
        while True:
            data = os.read(fd, 262144)
            if not data:
                break
            channel.send(data)
    except (OSError, IOError):
        pass
    child.wait()
    # Bounded: a process the child left behind may hold its stderr open.
    errors.join(2.0)
    try:
        channel.send(('exit', child.returncode))
    except (OSError, IOError):
        pass


reader = threading.Thread(target=pump_out, daemon=True)
reader.start()
try:
    for item in channel:
        if isinstance(item, bytes):
            try:
                child.stdin.write(item)
            except (OSError, ValueError):
                pass
        elif item[0] == 'eof':
            try:
                child.stdin.close()
            except OSError:
                pass
        elif item[0] == 'kill':
            child.kill()
finally:
    # The master is gone or done with it: nothing may outlive the relay.
    if child.poll() is None:
        try:
            child.stdin.close()
        except OSError:
            pass
        try:
            child.wait(1.0)
        except subprocess.TimeoutExpired:
            child.kill()
    reader.join()
