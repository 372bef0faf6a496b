"""Uses execnet-glib from Python through GObject Introspection (Execnet-1.0).

Run by test-introspection with GI_TYPELIB_PATH and LD_LIBRARY_PATH pointing
at the build tree; the first argument is the interpreter gateways run.
"""
import os
import sys
import tempfile

import gi

gi.require_version('Execnet', '1.0')
from gi.repository import Execnet, Gio, GLib  # noqa: E402

python = sys.argv[1]

group = Execnet.Group.new()
assert group.get_property('default-spec') == 'popen'
gw = group.make_gateway('popen//python=%s//id=py1' % python)
assert gw.get_id() == 'py1'
# covers: Gateway.to_string
assert gw.to_string() == "<PopenGateway id='py1' receive-live, 0 active channels>", gw.to_string()
assert group.get_n_items() == 1 and group.get_item(0) == gw

channel = gw.remote_exec('channel.send(channel.receive() * 2)')
channel.send(GLib.Variant('i', 21))
assert channel.receive(10.0).unpack() == 42
# covers: Channel.wait_close
assert channel.wait_close(10.0)

channel = gw.remote_exec('raise ValueError("from python")')
try:
    channel.receive(10.0)
except GLib.Error as error:
    assert error.matches(Execnet.error_quark(), Execnet.Error.REMOTE), error
    assert 'ValueError: from python' in error.message
else:
    raise AssertionError('the remote error did not arrive')

# Remote bytes reach messages as valid UTF-8 with controls escaped: PyGObject
# could not convert a message holding invalid UTF-8.
channel = gw.remote_exec('raise ValueError("\\x1b[2J")')
try:
    channel.receive(10.0)
except GLib.Error as error:
    assert 'ValueError: \\x1b[2J' in error.message, error.message
else:
    raise AssertionError('the remote error did not arrive')
noisy = ('popen//python=%s -c "import os; os.write(1, b\'E\' + bytes([0xff, 0x1b]) + b\'[2J\\n\')"'
         % python)
try:
    group.make_gateway(noisy)
except GLib.Error as error:
    assert error.matches(Execnet.error_quark(), Execnet.Error.BOOTSTRAP), error
    assert '\\xff\\x1b[2J' in error.message, error.message
else:
    raise AssertionError('a remote that exits at once made a gateway')

info = gw.remote_info().unpack()
assert info['executable'] and info['pid'] > 0

# remote_exec as execnet does it: dedented sources, file names, whole files.
channel = gw.remote_exec("""
    def double(x):
        return 2 * x
    channel.send(double(21))
""")
assert channel.receive(10.0).unpack() == 42
# covers: Gateway.remote_call_full
channel = gw.remote_call_full('def f(channel, n):\n    raise KeyError(n)\n', 'named.py', 'f',
                              GLib.Variant('a{sv}', {'n': GLib.Variant('i', 5)}))
try:
    channel.receive(10.0)
except GLib.Error as error:
    assert 'File "named.py", line 2, in f' in error.message, error.message
else:
    raise AssertionError('the remote error did not arrive')
try:
    gw.remote_call('channel.send(1)', None, GLib.Variant('a{sv}', {'n': GLib.Variant('i', 5)}))
except GLib.Error as error:
    assert error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.INVALID_ARGUMENT), error
else:
    raise AssertionError('kwargs without a function were accepted')
with tempfile.NamedTemporaryFile('w', suffix='.py') as source_file:
    source_file.write('channel.send(__name__)\n')
    source_file.flush()
    # covers: Gateway.remote_exec_file
    channel = gw.remote_exec_file(Gio.File.new_for_path(source_file.name), None)
    assert channel.receive(10.0).unpack() == '__channelexec__'
    # covers: Group.remote_exec_file
    multi = group.remote_exec_file(Gio.File.new_for_path(source_file.name), None)
    # covers: MultiChannel.get_size
    assert multi.get_size() == 1
    assert multi.get_channel(0).receive(10.0).unpack() == '__channelexec__'
# covers: Group.remote_call_full
multi = group.remote_call_full('def f(channel, n):\n    channel.send(n)\n', None, 'f',
                               GLib.Variant('a{sv}', {'n': GLib.Variant('s', 'x')}))
assert multi.get_channel(0).receive(10.0).unpack() == 'x'

# Receive queues and receive_each, owned by the caller without crashes.
gw2 = group.make_gateway('popen//python=%s//id=py2' % python)
# covers: Group.remote_exec
multi = group.remote_exec('channel.send(channel.gateway.id)\nchannel.send(channel.receive())\n')
assert sorted(multi.receive_each(10.0).unpack()) == ['py1-worker', 'py2-worker']
assert multi.send_each(GLib.Variant('s', 'again'))
queue = multi.make_receive_queue(GLib.Variant('s', 'end'))
seen = {}
while len(seen) < 4:
    item, from_channel = queue.pop(10.0)
    seen[(from_channel.get_gateway().get_id(), item.unpack())] = True
assert set(seen) == {('py1', 'again'), ('py2', 'again'), ('py1', 'end'), ('py2', 'end')}, seen
try:
    queue.pop(0.1)
except GLib.Error as error:
    assert error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT), error
else:
    raise AssertionError('an empty queue popped something')

# Remote output through the signal; logging forwarded on request.
output = []
gw.connect('remote-output', lambda gateway, stream, data: output.append((stream, data.get_data())))
channel = gw.remote_exec('import sys\nsys.stderr.write("to stderr\\n")\nsys.stderr.flush()\n')
assert channel.wait_close(10.0)
context = GLib.MainContext.default()
deadline = GLib.get_monotonic_time() + 10 * 1000000
while b'\n' not in b''.join(data for _, data in output) and GLib.get_monotonic_time() < deadline:
    context.iteration(True)
assert {stream for stream, _ in output} == {'stderr'}, output
assert b''.join(data for _, data in output) == b'to stderr\n', output
assert gw.forward_logging(None, 20, 10.0)

# RSync: a directory to a gateway, progress reported, the async form.
with tempfile.TemporaryDirectory() as scratch:
    os.makedirs(scratch + '/src/sub')
    with open(scratch + '/src/sub/f.txt', 'w') as f:
        f.write('from python\n')
    rsync = Execnet.RSync.new(scratch + '/src')
    assert rsync.get_source_dir() == scratch + '/src'
    progress = []
    rsync.connect('progress', lambda r, gateway, path, done, total:
                  progress.append((gateway.get_id(), path, done, total)))
    assert rsync.add_target(gw, scratch + '/dst', Execnet.RSyncFlags.DELETE)
    results = []
    # covers: RSync.send_async, RSync.send_finish
    rsync.send_async(None, lambda r, result: results.append(r.send_finish(result)))
    context = GLib.MainContext.default()
    while not results:
        context.iteration(True)
    assert results == [True], results
    assert progress == [('py1', 'sub/f.txt', 12, 12)], progress
    with open(scratch + '/dst/sub/f.txt') as f:
        assert f.read() == 'from python\n'
    try:
        # covers: RSync.send
        Execnet.RSync.new(scratch + '/missing').send(None)
    except GLib.Error as error:
        assert error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.NOT_FOUND), error
    else:
        raise AssertionError('a missing source was sent')

assert group.terminate(5.0)
# covers: Group.to_string
assert group.to_string() == '<Group []>'
print('introspection: ok')
