"""Uses execnet-glib from Python through GObject Introspection (Execnet-1.0).

Run by test-introspection with GI_TYPELIB_PATH and LD_LIBRARY_PATH pointing
at the build tree; the first argument is the interpreter gateways run.
"""
import sys

import gi

gi.require_version('Execnet', '1.0')
from gi.repository import Execnet, GLib  # noqa: E402

python = sys.argv[1]

group = Execnet.Group.new()
assert group.get_property('default-spec') == 'popen'
gw = group.make_gateway('popen//python=%s//id=py1' % python)
assert gw.get_id() == 'py1'
assert gw.to_string() == "<PopenGateway id='py1' receive-live, 0 active channels>", gw.to_string()
assert group.get_n_items() == 1 and group.get_item(0) == gw

channel = gw.remote_exec('channel.send(channel.receive() * 2)')
channel.send(GLib.Variant('i', 21))
assert channel.receive(10.0).unpack() == 42
assert channel.wait_close(10.0)

channel = gw.remote_exec('raise ValueError("from python")')
try:
    channel.receive(10.0)
except GLib.Error as error:
    assert error.matches(Execnet.error_quark(), Execnet.Error.REMOTE), error
    assert 'ValueError: from python' in error.message
else:
    raise AssertionError('the remote error did not arrive')

info = gw.remote_info().unpack()
assert info['executable'] and info['pid'] > 0

assert group.terminate(5.0)
assert group.to_string() == '<Group []>'
print('introspection: ok')
