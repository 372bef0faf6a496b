#!/usr/bin/python3
"""The rest of Execnet-1.0 from plain PyGObject (no overrides): specs,
serialization, transports and their connections, and the gateway, group
and channel calls the other tests do not make.

Run by meson with GI_TYPELIB_PATH, LD_LIBRARY_PATH and
EXECNET_TRANSPORT_PATH pointing at the build tree; the first argument is
the interpreter the gateways run. tests/check-binding-coverage.py checks
that this file, test-overrides.py and introspection.py together call
every public symbol. One group and gateway serve every test.

SPDX-License-Identifier: LGPL-2.1-or-later
"""
import os
import sys
import unittest

import gi

gi.require_version('Execnet', '1.0')
from gi.repository import Execnet, Gio, GLib  # noqa: E402

PYTHON = sys.argv.pop(1) if len(sys.argv) > 1 else '/usr/bin/python3'
SPEC = 'popen//python=' + PYTHON


def run_async(start):
    """Runs the default main context until the callback start() was given
    has been called; returns what that callback returned (or raised)."""
    loop = GLib.MainLoop()
    results = []

    def done(source, result):
        try:
            results.append(finish(source, result))
        except GLib.Error as error:
            results.append(error)
        loop.quit()

    finish = start(done)
    guard = GLib.timeout_add_seconds(60, loop.quit)
    if not results:
        loop.run()
    GLib.source_remove(guard)
    if not results:
        raise AssertionError('the async call did not complete in 60 s')
    return results[0]


class BindingsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.group = Execnet.Group.new_with_specs([SPEC])
        cls.gw = cls.group.get_gateway(0)  # covers: Group.get_gateway

    @classmethod
    def tearDownClass(cls):
        # covers: Group.terminate
        assert cls.group.terminate(10.0)

    def test_xspec(self):
        spec = Execnet.XSpec.new(SPEC + '//env:GREETING=hi//id=one')
        self.assertEqual(spec.get_scheme(), 'popen')
        self.assertEqual(spec.get('python'), PYTHON)
        self.assertIsNone(spec.get('chdir'))
        self.assertTrue(spec.has('python'))
        self.assertFalse(spec.has('nice'))
        # covers: XSpec.get_keys
        self.assertEqual(spec.get_keys(), ['popen', 'python', 'env:GREETING', 'id'])
        self.assertEqual(spec.get_env(), {'GREETING': 'hi'})
        # covers: XSpec.get_id
        self.assertEqual(spec.get_id(), 'one')
        copy = spec.copy()
        copy.set_id('two')
        self.assertEqual(copy.get_id(), 'two')  # covers: XSpec.get_id
        self.assertEqual(spec.get_id(), 'one')
        # covers: XSpec.to_string
        self.assertEqual(copy.to_string(), SPEC + '//env:GREETING=hi//id=one',
                         'the text as parsed, without the changed id')
        general = Execnet.XSpec.get_general_keys()
        self.assertIn('python', general)
        self.assertNotIn('popen', general)
        self.assertTrue(Execnet.XSpec.is_general_key('chdir'))
        self.assertFalse(Execnet.XSpec.is_general_key('ssh'))
        with self.assertRaises(GLib.Error) as raised:
            Execnet.XSpec.new('popen//=x')
        self.assertTrue(raised.exception.matches(Execnet.error_quark(), Execnet.Error.INVALID_SPEC))

    def test_dumps_and_loads(self):
        value = GLib.Variant('(xsmv)', (7, 'text', None))
        data = Execnet.dumps(value)
        self.assertEqual(data.get_data()[0], 2)  # the serializer's version byte
        self.assertEqual(Execnet.loads(data).unpack(), (7, 'text', None))
        with self.assertRaises(GLib.Error) as raised:
            Execnet.loads(GLib.Bytes.new(b'\x02\xff'))
        self.assertEqual(raised.exception.domain, GLib.quark_to_string(Execnet.error_quark()))

    def test_texts(self):
        self.assertEqual(Execnet.error_escape_text(b'a\x1bb\xff', 100), 'a\\x1bb\\xff')
        long = Execnet.error_escape_text(b'x' * 1000, 40)
        self.assertLess(len(long), 100)
        self.assertTrue(long.startswith('xxx') and long.endswith('xxx'))
        self.assertEqual(Execnet.message_code_name(Execnet.MessageCode.CHANNEL_DATA), 'CHANNEL_DATA')

    def test_transport_lookup(self):
        Execnet.Transport.register_extension_point()  # again: harmless
        self.assertIn('popen', Execnet.Transport.list_schemes())
        self.assertTrue(Execnet.Transport.get_search_path())
        module = Execnet.Transport.find_module('popen')
        self.assertTrue(os.path.exists(module), module)
        self.assertIsNone(Execnet.Transport.find_module('nosuchscheme'))
        popen = Execnet.Transport.new_for_scheme('popen')
        self.assertTrue(popen.check_xspec(Execnet.XSpec.new(SPEC)))
        with self.assertRaises(GLib.Error) as raised:
            popen.check_xspec(Execnet.XSpec.new('popen//bogus=1'))
        self.assertIn('bogus', raised.exception.message)
        socket = Execnet.Transport.new_for_scheme('socket')
        described = socket.describe(Execnet.XSpec.new('socket=127.0.0.1:8888')).unpack()
        self.assertEqual((described['hostname'], described['port']), ('127.0.0.1', 8888))
        described = popen.describe(Execnet.XSpec.new(SPEC)).unpack()
        self.assertEqual(described['command'][0], PYTHON)
        # covers: Transport.get_keys
        self.assertIn('installvia', socket.get_keys())
        with self.assertRaises(GLib.Error) as raised:
            Execnet.Transport.new_for_scheme('nosuchscheme')
        self.assertTrue(raised.exception.matches(Execnet.error_quark(),
                                                 Execnet.Error.UNKNOWN_TRANSPORT))
        self.assertEqual(Execnet.Transport.debug_enabled('no-such-debug-key'),
                         os.environ.get('EXECNET_DEBUG') in ('all', 'no-such-debug-key'))
        argv = Execnet.Transport.build_python_argv(Execnet.XSpec.new(SPEC))
        self.assertEqual(argv[0], PYTHON)
        self.assertIn(PYTHON, Execnet.Transport.build_python_command(Execnet.XSpec.new(SPEC)))
        client = Gio.SocketClient.new()
        Execnet.Transport.log_socket_client_phases(Execnet.XSpec.new('socket=127.0.0.1:1'), client)

    def test_write_stderr(self):
        saved = os.dup(2)
        read_end, write_end = os.pipe()
        try:
            os.dup2(write_end, 2)
            Execnet.Transport.write_stderr(b'from the remote\n')
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(write_end)
        with os.fdopen(read_end, 'rb') as pipe:
            self.assertEqual(pipe.read(), b'from the remote\n')

    def test_connection_from_a_transport(self):
        popen = Execnet.Transport.new_for_scheme('popen')
        spec = run_async(lambda done: (
            popen.prepare_async(None, Execnet.XSpec.new(SPEC), None, done),
            lambda source, result: source.prepare_finish(result))[1])
        self.assertEqual(spec.get('python'), PYTHON)
        connection = run_async(lambda done: (
            popen.open_async(spec, None, done),
            lambda source, result: source.open_finish(result))[1])
        self.assertEqual(connection.get_bootstrap_mode(), Execnet.BootstrapMode.STDIO)
        # covers: Connection.get_remote_address
        self.assertIn('pid', connection.get_remote_address())
        # covers: Connection.get_stream
        self.assertIsInstance(connection.get_stream(), Gio.IOStream)
        self.assertIsNone(connection.dup_bootstrap_answer())
        self.assertIsNone(connection.dup_error_output())
        connection.append_error_output(b'tail of\x1b stderr')
        self.assertEqual(connection.dup_error_output(), 'tail of\\x1b stderr')
        self.assertEqual(connection.get_exit_status(), -1)
        error = GLib.Error.new_literal(Execnet.error_quark(), 'no answer', Execnet.Error.BOOTSTRAP)
        self.assertIsNone(popen.explain_failure(spec, connection, error))
        # The interpreter runs the line it reads; close_write() ends its input.
        connection.get_stream().get_output_stream().write_all(  # covers: Connection.get_stream
            b'"import sys; sys.exit(7)"\n', None)
        self.assertTrue(connection.close_write())
        self.assertTrue(run_async(lambda done: (
            connection.wait_async(None, done),
            lambda source, result: source.wait_finish(result))[1]))
        self.assertEqual(os.waitstatus_to_exitcode(connection.get_exit_status()), 7)
        connection.set_exit_status(3)
        self.assertEqual(connection.get_exit_status(), 3)

        spawned = Execnet.Transport.spawn(spec, None, None)
        self.assertEqual(spawned.get_bootstrap_mode(), Execnet.BootstrapMode.STDIO)
        spawned.terminate(True)  # covers: Connection.terminate
        self.assertTrue(run_async(lambda done: (
            spawned.wait_async(None, done),
            lambda source, result: source.wait_finish(result))[1]))
        self.assertNotEqual(spawned.get_exit_status(), 0)

    def test_group_calls(self):
        group = Execnet.Group.new()
        self.assertEqual(group.get_default_spec(), 'popen')
        group.set_default_spec(SPEC)
        self.assertEqual(group.get_default_spec(), SPEC)
        spec = Execnet.XSpec.new(SPEC)
        group.allocate_id(spec)
        self.assertEqual(spec.get_id(), 'gw0')  # covers: XSpec.get_id
        self.assertIsNone(self.group.lookup('nosuch'))
        self.assertTrue(self.group.contains(self.gw))
        self.assertFalse(group.contains(self.gw))
        # covers: Group.get_size
        self.assertEqual(group.get_size(), 0)
        self.assertIsNone(group.get_gateway(0))  # covers: Group.get_gateway

    def test_default_group(self):
        gw = Execnet.make_gateway(SPEC)
        default = Execnet.default_group()
        self.assertIs(gw.get_group(), default)
        gws = default.make_gateways([SPEC, SPEC])
        self.assertEqual(default.get_size(), 3)  # covers: Group.get_size
        self.assertIs(default.get_gateway(2), gws[1])  # covers: Group.get_gateway
        self.assertTrue(default.terminate(10.0))  # covers: Group.terminate
        self.assertEqual(default.get_size(), 0)  # covers: Group.get_size

    def test_make_gateway_for_xspec(self):
        spec = Execnet.XSpec.new(SPEC + '//id=byspec')
        gw = self.group.make_gateway_for_xspec(spec)
        self.assertEqual(gw.get_id(), 'byspec')  # covers: Gateway.get_id
        gw = run_async(lambda done: (
            self.group.make_gateway_for_xspec_async(Execnet.XSpec.new(SPEC + '//id=byspec2'),
                                                    None, done),
            lambda source, result: source.make_gateway_for_xspec_finish(result))[1])
        self.assertIs(self.group.lookup('byspec2'), gw)
        gws = run_async(lambda done: (
            self.group.make_gateways_async([SPEC + '//id=many'], None, done),
            lambda source, result: source.make_gateways_finish(result))[1])
        self.assertEqual([g.get_id() for g in gws], ['many'])  # covers: Gateway.get_id
        gw = run_async(lambda done: (
            self.group.make_gateway_async(SPEC + '//id=one', None, done),
            lambda source, result: source.make_gateway_finish(result))[1])
        self.assertTrue(gw.is_alive())
        # covers: Gateway.get_id
        self.assertEqual([g.get_id() for g in gws + [gw]], ['many', 'one'])

    def test_gateway_calls(self):
        gw = self.gw
        self.assertTrue(gw.is_alive())
        self.assertIs(gw.get_group(), self.group)
        # covers: Gateway.get_remote_address
        self.assertIn('pid', gw.get_remote_address())
        self.assertEqual(gw.get_xspec().get('python'), PYTHON)
        # covers: Gateway.to_string
        self.assertIn("id='gw0'", gw.to_string())
        complete, connect_us, bootstrap_us = gw.get_startup_times()
        self.assertTrue(complete)
        self.assertGreaterEqual(min(connect_us, bootstrap_us), 0)
        info = run_async(lambda done: (
            gw.remote_info_async(None, done),
            lambda source, result: source.remote_info_finish(result))[1])
        self.assertGreater(info.unpack()['pid'], 1)
        status = run_async(lambda done: (
            gw.remote_status_async(None, done),
            lambda source, result: source.remote_status_finish(result))[1])
        self.assertGreaterEqual(status.unpack()['numexecuting'], 0)
        cancellable = Gio.Cancellable()
        cancellable.cancel()
        joined = run_async(lambda done: (
            gw.join_async(-1, cancellable, done),
            lambda source, result: source.join_finish(result))[1])
        self.assertTrue(joined.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED))

    def test_channel_calls(self):
        gw = self.gw
        # covers: Gateway.remote_exec
        ch = gw.remote_exec('c = channel.gateway.newchannel()\n'
                            'channel.send(c)\n'
                            'channel.send(c.receive())\n'
                            'channel.send(channel.receive())\n')
        # covers: Channel.get_id
        self.assertGreater(ch.get_id(), 0)
        # covers: Channel.get_gateway
        self.assertIs(ch.get_gateway(), gw)
        # covers: Channel.to_string
        self.assertEqual(ch.to_string(), '<Channel id=%d open>' % ch.get_id())
        value = ch.next()
        sub = gw.channel_from_value(value)
        self.assertEqual(sub.to_value().unpack(), value.unpack())
        self.assertIsNone(gw.channel_from_value(GLib.Variant('s', 'not a channel')))
        sent = run_async(lambda done: (
            # covers: Channel.send_async
            sub.send_async(GLib.Variant('s', 'via sub'), None, done),
            # covers: Channel.send_finish
            lambda source, result: source.send_finish(result))[1])
        self.assertTrue(sent)
        item = run_async(lambda done: (
            ch.receive_async(None, done),
            lambda source, result: source.receive_finish(result))[1])
        self.assertEqual(item.unpack(), 'via sub')
        # covers: Channel.send
        ch.send(GLib.Variant('s', 'last'))
        self.assertEqual(ch.next().unpack(), 'last')
        closed = run_async(lambda done: (
            # covers: Channel.wait_close
            ch.wait_close_async(10.0, None, done),
            lambda source, result: source.wait_close_finish(result))[1])
        self.assertTrue(closed)
        self.assertTrue(ch.is_closed())
        self.assertIsNone(ch.next(), 'a clean end is None, not an error')
        local = gw.new_channel()
        self.assertFalse(local.is_closed())
        # covers: Channel.close
        local.close(None)
        self.assertTrue(local.is_closed())

    def test_channel_stream(self):
        # covers: Gateway.remote_exec
        ch = self.gw.remote_exec('channel.send(b"through a stream")')
        # covers: Channel.get_stream
        stream = ch.get_stream()
        data = stream.get_input_stream().read_bytes(100, None)
        self.assertEqual(data.get_data(), b'through a stream')

    def test_wire_observer(self):
        seen = []
        self.gw.set_wire_observer(
            lambda gw, outgoing, code, channel, payload:
            seen.append((outgoing, Execnet.message_code_name(code), channel)))
        # covers: Gateway.remote_exec
        ch = self.gw.remote_exec('channel.send(5)')
        self.assertEqual(ch.next().unpack(), 5)
        self.gw.set_wire_observer(None)
        self.assertIn((True, 'CHANNEL_EXEC', ch.get_id()), seen)  # covers: Channel.get_id
        self.assertIn((False, 'CHANNEL_DATA', ch.get_id()), seen)  # covers: Channel.get_id
        before = len(seen)
        self.gw.remote_exec('pass')  # covers: Gateway.remote_exec
        self.assertEqual(len(seen), before)

    def test_multichannel_calls(self):
        # covers: Gateway.remote_exec
        channels = [self.gw.remote_exec('channel.send(channel.receive() + 1)') for _ in range(2)]
        multi = Execnet.MultiChannel.new(channels)
        # covers: MultiChannel.get_size
        self.assertEqual(multi.get_size(), 2)
        self.assertIs(multi.get_channel(1), channels[1])
        multi.send_each(GLib.Variant('i', 41))
        items = run_async(lambda done: (
            multi.receive_each_async(10.0, None, done),
            lambda source, result: source.receive_each_finish(result))[1])
        self.assertEqual(items.unpack(), [42, 42])
        # covers: MultiChannel.wait_close
        self.assertTrue(multi.wait_close(10.0))


if __name__ == '__main__':
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
