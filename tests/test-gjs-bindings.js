// test-gjs-bindings.js: the rest of Execnet-1.0 from GJS: specs,
// serialization, transports and their connections, RSync, the wire
// observer, and the gateway, group and channel calls test-gjs.js does not
// make. tests/check-binding-coverage.py checks that the two files together
// call every public symbol. One group and gateway serve every check.
//
// Run by meson with GI_TYPELIB_PATH, LD_LIBRARY_PATH and
// EXECNET_TRANSPORT_PATH pointing at the build tree; the first argument is
// the interpreter the gateways run. Exits non-zero if a check failed.
//
// SPDX-License-Identifier: LGPL-2.1-or-later
import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Execnet from 'gi://Execnet?version=1.0';
import {check, equal, finish} from './gjs-checks.js';

const python = ARGV[0] ?? '/usr/bin/python3';
const spec = `popen//python=${python}`;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function expectError(func, domain, code, what) {
    try {
        func();
        check(false, `${what}: no error`);
    } catch (error) {
        check(error.matches(domain, code), `${what}: ${error}`);
    }
}

// Runs the default main context until done(value) is called; gives value.
function runUntil(start) {
    const loop = new GLib.MainLoop(null, false);
    let finished = false;
    let value;
    const guard = GLib.timeout_add_seconds(GLib.PRIORITY_DEFAULT, 60, () => {
        check(false, 'timed out waiting for the main loop');
        loop.quit();
        return GLib.SOURCE_REMOVE;
    });
    start(result => {
        value = result;
        finished = true;
        loop.quit();
    });
    if (!finished)
        loop.run();
    GLib.source_remove(guard);
    return value;
}

function section(name, body) {
    try {
        body();
    } catch (error) {
        check(false, `${name}: ${error}\n${error.stack}`);
    }
}

const group = Execnet.Group.new_with_specs([spec]);
const gw = group.get_gateway(0); // covers: Group.get_gateway

section('XSpec', () => {
    const xspec = Execnet.XSpec.new(`${spec}//env:GREETING=hi//id=one`);
    equal(xspec.get_scheme(), 'popen', 'get_scheme');
    equal(xspec.get('python'), python, 'get');
    check(xspec.get('chdir') === null, 'get of an absent key');
    check(xspec.has('python') && !xspec.has('nice'), 'has');
    // covers: XSpec.get_keys
    equal(xspec.get_keys(), ['popen', 'python', 'env:GREETING', 'id'], 'XSpec.get_keys');
    equal(xspec.get_env(), {GREETING: 'hi'}, 'get_env');
    const copy = xspec.copy();
    copy.set_id('two');
    // covers: XSpec.get_id
    equal([copy.get_id(), xspec.get_id()], ['two', 'one'], 'set_id on a copy');
    // covers: XSpec.to_string
    equal(copy.to_string(), `${spec}//env:GREETING=hi//id=one`, 'to_string keeps the parsed text');
    const general = Execnet.XSpec.get_general_keys();
    check(general.includes('python') && !general.includes('popen'), 'get_general_keys');
    check(Execnet.XSpec.is_general_key('chdir') && !Execnet.XSpec.is_general_key('ssh'),
        'is_general_key');
    expectError(() => Execnet.XSpec.new('popen//=x'), Execnet.error_quark(),
        Execnet.Error.INVALID_SPEC, 'XSpec.new of a bad spec');
});

section('dumps and loads', () => {
    const data = Execnet.dumps(new GLib.Variant('(xsmv)', [7, 'text', null]));
    equal(data.get_data()[0], 2, 'dumps starts with the version byte');
    equal(Execnet.loads(data).recursiveUnpack(), [7, 'text', null], 'loads(dumps(x))');
    expectError(() => Execnet.loads(new GLib.Bytes(new Uint8Array([2, 255]))),
        Execnet.error_quark(), Execnet.Error.PROTOCOL, 'loads of garbage');
});

section('texts', () => {
    equal(Execnet.error_escape_text(new Uint8Array([97, 27, 98, 255]), 100), 'a\\x1bb\\xff',
        'error_escape_text');
    equal(Execnet.message_code_name(Execnet.MessageCode.CHANNEL_DATA), 'CHANNEL_DATA',
        'message_code_name');
});

section('Transport lookup', () => {
    Execnet.Transport.register_extension_point(); // again: harmless
    check(Execnet.Transport.list_schemes().includes('popen'), 'list_schemes');
    check(Execnet.Transport.get_search_path().length > 0, 'get_search_path');
    const module = Execnet.Transport.find_module('popen');
    check(module !== null && GLib.file_test(module, GLib.FileTest.EXISTS), 'find_module');
    check(Execnet.Transport.find_module('nosuchscheme') === null, 'find_module of nothing');
    const popen = Execnet.Transport.new_for_scheme('popen');
    equal(popen.describe(Execnet.XSpec.new(spec)).recursiveUnpack().command[0], python,
        'describe of popen');
    const described = Execnet.Transport.new_for_scheme('socket')
        .describe(Execnet.XSpec.new('socket=127.0.0.1:8888')).recursiveUnpack();
    equal([described.hostname, described.port], ['127.0.0.1', 8888], 'describe of socket');
    check(popen.check_xspec(Execnet.XSpec.new(spec)), 'check_xspec');
    expectError(() => popen.check_xspec(Execnet.XSpec.new('popen//bogus=1')),
        Execnet.error_quark(), Execnet.Error.INVALID_SPEC, 'check_xspec of an unknown key');
    // covers: Transport.get_keys
    check(Execnet.Transport.new_for_scheme('socket').get_keys().includes('installvia'),
        'Transport.get_keys');
    expectError(() => Execnet.Transport.new_for_scheme('nosuchscheme'), Execnet.error_quark(),
        Execnet.Error.UNKNOWN_TRANSPORT, 'new_for_scheme of an unknown scheme');
    const debug = GLib.getenv('EXECNET_DEBUG');
    equal(Execnet.Transport.debug_enabled('no-such-debug-key'),
        debug === 'all' || debug === 'no-such-debug-key', 'debug_enabled');
    equal(Execnet.Transport.build_python_argv(Execnet.XSpec.new(spec))[0], python,
        'build_python_argv');
    check(Execnet.Transport.build_python_command(Execnet.XSpec.new(spec)).includes(python),
        'build_python_command');
    Execnet.Transport.log_socket_client_phases(Execnet.XSpec.new('socket=127.0.0.1:1'),
        new Gio.SocketClient());
});

// write_stderr writes to this process's stderr: a child gjs calls it.
section('Transport.write_stderr', () => {
    const script = "imports.gi.versions.Execnet = '1.0';" +
        "imports.gi.Execnet.Transport.write_stderr(new TextEncoder().encode('from the remote\\n'));";
    const child = Gio.Subprocess.new(['gjs', '-c', script],
        Gio.SubprocessFlags.STDERR_PIPE);
    const [, , stderr] = child.communicate_utf8(null, null);
    equal(stderr, 'from the remote\n', 'write_stderr');
    check(child.get_successful(), 'the child gjs ran');
});

section('Connection from a transport', () => {
    const popen = Execnet.Transport.new_for_scheme('popen');
    const prepared = runUntil(done => popen.prepare_async(null, Execnet.XSpec.new(spec), null,
        (source, result) => done(source.prepare_finish(result))));
    equal(prepared.get('python'), python, 'prepare_async');
    const connection = runUntil(done => popen.open_async(prepared, null,
        (source, result) => done(source.open_finish(result))));
    equal(connection.get_bootstrap_mode(), Execnet.BootstrapMode.STDIO, 'get_bootstrap_mode');
    // covers: Connection.get_remote_address
    check(connection.get_remote_address().includes('pid'), 'Connection.get_remote_address');
    check(connection.dup_bootstrap_answer() === null, 'no bootstrap answer yet');
    check(connection.dup_error_output() === null, 'no error output yet');
    connection.append_error_output(encoder.encode('tail of\x1b stderr'));
    equal(connection.dup_error_output(), 'tail of\\x1b stderr', 'append_error_output');
    equal(connection.get_exit_status(), -1, 'no exit status while running');
    const error = new GLib.Error(Execnet.error_quark(), Execnet.Error.BOOTSTRAP, 'no answer');
    check(popen.explain_failure(prepared, connection, error) === null,
        'popen has nothing to add to a failure');
    // The interpreter runs the line it reads; close_write() ends its input.
    connection.get_stream().get_output_stream().write_all( // covers: Connection.get_stream
        encoder.encode('"import sys; sys.exit(7)"\n'), null);
    check(connection.close_write(), 'close_write');
    check(runUntil(done => connection.wait_async(null,
        (source, result) => done(source.wait_finish(result)))), 'wait_async');
    equal(connection.get_exit_status() >> 8, 7, 'exit status as waitpid() gives it');
    connection.set_exit_status(3);
    equal(connection.get_exit_status(), 3, 'set_exit_status');

    const spawned = Execnet.Transport.spawn(prepared, null, null);
    spawned.terminate(true); // covers: Connection.terminate
    check(runUntil(done => spawned.wait_async(null,
        (source, result) => done(source.wait_finish(result)))), 'spawned connection ended');
    check(spawned.get_exit_status() !== 0, 'terminated, not a clean exit');
});

section('Group calls', () => {
    const fresh = new Execnet.Group();
    equal(fresh.get_default_spec(), 'popen', 'get_default_spec');
    fresh.set_default_spec(spec);
    equal(fresh.get_default_spec(), spec, 'set_default_spec');
    const xspec = Execnet.XSpec.new(spec);
    fresh.allocate_id(xspec);
    equal(xspec.get_id(), 'gw0', 'allocate_id'); // covers: XSpec.get_id
    check(group.contains(gw) && !fresh.contains(gw), 'contains');
    equal(fresh.get_size(), 0, 'empty group'); // covers: Group.get_size
    equal(fresh.to_string(), '<Group []>', 'Group.to_string'); // covers: Group.to_string
});

section('default group', () => {
    const made = Execnet.make_gateway(spec);
    const defaultGroup = Execnet.default_group();
    check(made.get_group() === defaultGroup, 'make_gateway joins the default group');
    const more = defaultGroup.make_gateways([spec]);
    equal(defaultGroup.get_size(), 2, 'Group.get_size'); // covers: Group.get_size
    check(defaultGroup.get_gateway(1) === more[0], 'Group.get_gateway'); // covers: Group.get_gateway
    check(defaultGroup.terminate(10), 'Group.terminate'); // covers: Group.terminate
    equal(defaultGroup.get_size(), 0, 'default group empty'); // covers: Group.get_size
});

section('make_gateway_for_xspec', () => {
    const bySpec = group.make_gateway_for_xspec(Execnet.XSpec.new(`${spec}//id=byspec`));
    equal(bySpec.get_id(), 'byspec', 'make_gateway_for_xspec'); // covers: Gateway.get_id
    const bySpecAsync = runUntil(done => group.make_gateway_for_xspec_async(
        Execnet.XSpec.new(`${spec}//id=byspec2`), null,
        (source, result) => done(source.make_gateway_for_xspec_finish(result))));
    check(group.lookup('byspec2') === bySpecAsync, 'make_gateway_for_xspec_async');
    const many = runUntil(done => group.make_gateways_async([`${spec}//id=many`], null,
        (source, result) => done(source.make_gateways_finish(result))));
    // covers: Gateway.get_id
    equal(many.map(g => g.get_id()), ['many'], 'make_gateways_async');
});

section('Gateway calls', () => {
    check(gw.is_alive(), 'is_alive');
    check(gw.get_group() === group, 'get_group');
    // covers: Gateway.get_remote_address
    check(gw.get_remote_address().includes('pid'), 'Gateway.get_remote_address');
    equal(gw.get_xspec().get('python'), python, 'get_xspec');
    // covers: Gateway.to_string
    check(gw.to_string().includes("id='gw0'"), 'Gateway.to_string');
    check(gw.forward_logging('app', 20, 10), 'forward_logging');
    expectError(() => gw.join(0.01), Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT,
        'join of a live gateway times out');
});

section('remote code', () => {
    // covers: Gateway.remote_call_full
    const called = gw.remote_call_full('def f(channel, n):\n    channel.send(n * 2)\n',
        'named.py', 'f', new GLib.Variant('a{sv}', {n: new GLib.Variant('i', 21)}));
    equal(called.receive(10).recursiveUnpack(), 42, 'Gateway.remote_call_full');
    const plain = gw.remote_call('def f(channel):\n    channel.send("plain")\n', 'f', null);
    equal(plain.receive(10).recursiveUnpack(), 'plain', 'remote_call');
    const [file, ioStream] = Gio.File.new_tmp('execnet-XXXXXX.py');
    ioStream.get_output_stream().write_all(encoder.encode('channel.send(__name__)\n'), null);
    ioStream.close(null);
    // covers: Gateway.remote_exec_file
    const fromFile = gw.remote_exec_file(file, null);
    equal(fromFile.receive(10).recursiveUnpack(), '__channelexec__', 'Gateway.remote_exec_file');
    // covers: Group.remote_exec_file
    const multiFile = group.remote_exec_file(file, null);
    // covers: MultiChannel.get_size
    equal(multiFile.get_size(), group.get_size(), 'Group.remote_exec_file'); // covers: Group.get_size
    file.delete(null);
    // covers: Group.remote_call_full
    const multi = group.remote_call_full('def f(channel, n):\n    channel.send(n)\n', null, 'f',
        new GLib.Variant('a{sv}', {n: new GLib.Variant('s', 'x')}));
    const queue = multi.make_receive_queue(new GLib.Variant('s', 'end'));
    const got = [];
    let ends = 0;
    while (ends < group.get_size()) { // covers: Group.get_size
        const [item, channel] = queue.pop(10);
        if (item.recursiveUnpack() === 'end') {
            ends++;
            continue;
        }
        got.push([channel.get_gateway().get_id(), item.recursiveUnpack()]); // covers: Channel.get_gateway
    }
    equal(got.length, group.get_size(), 'one item per member'); // covers: Group.get_size
    check(got.every(([, value]) => value === 'x'), 'receive queue items');
    // covers: MultiChannel.wait_close
    check(multi.wait_close(10), 'MultiChannel.wait_close');
    const channels = [0, 1].map(() =>
        gw.remote_exec('channel.send(channel.receive() + 1)')); // covers: Gateway.remote_exec
    const pair = Execnet.MultiChannel.new(channels);
    check(pair.get_channel(1) === channels[1], 'MultiChannel.new and get_channel');
    pair.send_each(new GLib.Variant('i', 1));
    equal(pair.receive_each(10).recursiveUnpack(), [2, 2], 'send_each and receive_each');
    // covers: Group.remote_exec
    const everywhere = group.remote_exec('channel.send(1)');
    equal(everywhere.receive_each(10).recursiveUnpack().length, group.get_size(), // covers: Group.get_size
        'Group.remote_exec');
});

section('Channel calls', () => {
    // covers: Gateway.remote_exec
    const ch = gw.remote_exec('c = channel.gateway.newchannel()\n' +
        'channel.send(c)\nchannel.send(c.receive())\nchannel.send(channel.receive())\n');
    check(ch.get_id() > 0, 'Channel.get_id'); // covers: Channel.get_id
    check(ch.get_gateway() === gw, 'Channel.get_gateway'); // covers: Channel.get_gateway
    // covers: Channel.to_string
    equal(ch.to_string(), `<Channel id=${ch.get_id()} open>`, 'Channel.to_string'); // covers: Channel.get_id
    const value = ch.next();
    const sub = gw.channel_from_value(value);
    equal(sub.to_value().unpack(), value.unpack(), 'channel_from_value and to_value');
    check(gw.channel_from_value(new GLib.Variant('s', 'not a channel')) === null,
        'channel_from_value of another value');
    check(runUntil(done => sub.send_async(new GLib.Variant('s', 'via sub'), null, // covers: Channel.send_async
        (source, result) => done(source.send_finish(result)))), 'Channel.send_async'); // covers: Channel.send_finish
    const item = runUntil(done => ch.receive_async(null,
        (source, result) => done(source.receive_finish(result))));
    equal(item.unpack(), 'via sub', 'receive_async');
    ch.send(new GLib.Variant('s', 'last')); // covers: Channel.send
    equal(ch.next().unpack(), 'last', 'next');
    // covers: Channel.wait_close
    check(ch.wait_close(10), 'Channel.wait_close');
    check(ch.is_closed(), 'is_closed');
    check(ch.next() === null, 'next at a clean end');
    const local = gw.new_channel();
    check(!local.is_closed(), 'a new channel is open');
    local.close(null); // covers: Channel.close
    check(local.is_closed(), 'closed by close');

    // covers: Gateway.remote_exec
    const streamed = gw.remote_exec('channel.send(b"through a stream")');
    const stream = streamed.get_stream(); // covers: Channel.get_stream
    equal(decoder.decode(stream.get_input_stream().read_bytes(100, null).get_data()),
        'through a stream', 'Channel.get_stream');
});

section('remote-output', () => {
    const output = [];
    const handler = gw.connect('remote-output', (g, stream, data) => {
        output.push([stream, decoder.decode(data.get_data())]);
    });
    runUntil(done => {
        gw.remote_exec('import sys\nsys.stderr.write("to stderr\\n")\nsys.stderr.flush()');
        const poll = GLib.timeout_add(GLib.PRIORITY_DEFAULT, 10, () => {
            if (output.length === 0)
                return GLib.SOURCE_CONTINUE;
            done();
            return GLib.SOURCE_REMOVE;
        });
        check(poll > 0, 'poll source');
    });
    gw.disconnect(handler);
    equal(output, [['stderr', 'to stderr\n']], 'remote-output');
});

section('RSync', () => {
    const scratch = GLib.dir_make_tmp('execnet-rsync-XXXXXX');
    GLib.mkdir_with_parents(`${scratch}/src/sub`, 0o755);
    GLib.file_set_contents(`${scratch}/src/sub/f.txt`, 'from gjs\n');
    const rsync = Execnet.RSync.new(`${scratch}/src`);
    equal(rsync.get_source_dir(), `${scratch}/src`, 'get_source_dir');
    const progress = [];
    rsync.connect('progress', (r, target, path, done, total) => {
        progress.push([target.get_id(), path, done, total]); // covers: Gateway.get_id
    });
    check(rsync.add_target(gw, `${scratch}/dst`, Execnet.RSyncFlags.DELETE), 'add_target');
    check(rsync.send(null), 'RSync.send'); // covers: RSync.send
    equal(progress, [['gw0', 'sub/f.txt', 9, 9]], 'RSync::progress');
    const [, contents] = GLib.file_get_contents(`${scratch}/dst/sub/f.txt`);
    equal(decoder.decode(contents), 'from gjs\n', 'the file arrived');
    GLib.file_set_contents(`${scratch}/src/sub/f.txt`, 'changed\n');
    // covers: RSync.send_async, RSync.send_finish
    check(runUntil(done => rsync.send_async(null, (r, result) => done(r.send_finish(result)))),
        'RSync.send_async');
    equal(decoder.decode(GLib.file_get_contents(`${scratch}/dst/sub/f.txt`)[1]), 'changed\n',
        'the change arrived');
    expectError(() => Execnet.RSync.new(`${scratch}/missing`).send(null), // covers: RSync.send
        Gio.io_error_quark(), Gio.IOErrorEnum.NOT_FOUND, 'RSync of a missing directory');
    Gio.Subprocess.new(['rm', '-rf', scratch], Gio.SubprocessFlags.NONE).wait(null);
});

section('closed signals', () => {
    let gatewayClosed;
    let channelClosed;
    const ch = gw.remote_exec('channel.receive()'); // covers: Gateway.remote_exec
    // covers: Channel.closed
    ch.connect('closed', (c, reason) => {
        channelClosed = reason;
    });
    // covers: Gateway.closed
    gw.connect('closed', (g, reason) => {
        gatewayClosed = reason;
    });
    check(runUntil(done => group.terminate_async(10, null,
        (source, result) => done(source.terminate_finish(result)))), 'terminate_async');
    const context = GLib.MainContext.default();
    while (context.pending())
        context.iteration(false);
    check(gatewayClosed === null, 'Gateway::closed without a reason');
    check(channelClosed?.matches(Execnet.error_quark(), Execnet.Error.GATEWAY_CLOSED),
        'Channel::closed because its gateway ended');
    check(!gw.is_alive(), 'not alive after terminate');
});

finish('gjs-bindings');
