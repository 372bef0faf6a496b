// test-gjs.js: the library from GJS: arrays, GVariants, callbacks with
// endmarkers and destroy notifies, out parameters, async calls, signals.
//
// Run by meson with GI_TYPELIB_PATH and LD_LIBRARY_PATH pointing at the
// build tree; the first argument is the interpreter the gateways run.
// Exits non-zero on the first failed check.
//
// SPDX-License-Identifier: LGPL-2.1-or-later
import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Execnet from 'gi://Execnet?version=1.0';
import {check, equal, finish} from './gjs-checks.js';

const spec = `popen//python=${ARGV[0] ?? '/usr/bin/python3'}`;

// Runs the default main context until done() is called, or fails after 30 s.
function runUntil(start) {
    const loop = new GLib.MainLoop(null, false);
    let finished = false;
    const guard = GLib.timeout_add_seconds(GLib.PRIORITY_DEFAULT, 30, () => {
        check(false, 'timed out waiting for the main loop');
        loop.quit();
        return GLib.SOURCE_REMOVE;
    });
    start(() => {
        finished = true;
        loop.quit();
    });
    if (!finished)
        loop.run();
    GLib.source_remove(guard);
}

function expectError(func, code, what) {
    try {
        func();
        check(false, `${what}: no error`);
    } catch (error) {
        check(error.matches(Execnet.error_quark(), code), `${what}: ${error}`);
    }
}

const group = new Execnet.Group();
const seenChanges = [];
group.connect('items-changed', (model, position, removed, added) => {
    seenChanges.push([position, removed, added]);
});

// Arrays in and out: make_gateways takes a string array, gives an object array.
const gateways = group.make_gateways([spec, spec]);
equal(gateways.map(gw => gw.get_id()), ['gw0', 'gw1'], 'make_gateways ids');
equal(group.get_n_items(), 2, 'the list model has both');
equal(seenChanges.length, 2, 'items-changed once per gateway');
check(group.lookup('gw1') === gateways[1], 'lookup gives the same wrapper');
const gw = gateways[0];

// Out parameters.
const [complete, connectUs, bootstrapUs] = gw.get_startup_times();
check(complete && connectUs >= 0 && bootstrapUs >= 0, 'get_startup_times out parameters');

// GVariants both ways.
const echo = gw.remote_exec('for x in channel: channel.send(x)');
echo.send(new GLib.Variant('ai', [1, 2, 3]));
equal(echo.receive(10).deepUnpack().map(v => v.unpack()), [1, 2, 3], 'ai arrives as av');
echo.send(new GLib.Variant('a{sv}', {k: new GLib.Variant('s', 'v')}));
equal(echo.receive(10).recursiveUnpack(), {k: 'v'}, 'a{sv} round trip');
echo.send(null);
check(echo.receive(10).get_type_string() === 'mv', 'null is None');
echo.close(null);

const info = gw.remote_info().recursiveUnpack();
check(info.pid > 1 && info.executable.length > 0, 'remote_info a{sv}');
const status = gw.remote_status().recursiveUnpack();
check(status.numexecuting >= 0, 'remote_status a{sv}');

// Errors.
expectError(() => gw.remote_exec('raise ValueError(1)').receive(10),
    Execnet.Error.REMOTE, 'remote error');
expectError(() => group.make_gateway('popen//=x'), Execnet.Error.INVALID_SPEC, 'bad spec');
check(Execnet.Error.REMOTE !== Execnet.Error.PROTOCOL, 'enum values are named');

// receive_each: one av, items in channel order, which is the group's order:
// the order of the specs, whichever gateway became ready first.
const multi = group.remote_exec('channel.send(channel.gateway.id)');
const items = multi.receive_each(10);
equal([0, 1].map(i => group.get_item(i).get_id()), ['gw0', 'gw1'], 'members in spec order');
equal(items.deepUnpack().map(v => v.unpack()), ['gw0-worker', 'gw1-worker'], 'receive_each');

// receive_each_async.
runUntil(done => {
    const again = group.remote_exec('channel.send(channel.receive() * 2)');
    again.send_each(new GLib.Variant('i', 21));
    again.receive_each_async(10, null, (source, result) => {
        equal(source.receive_each_finish(result).deepUnpack().map(v => v.unpack()), [42, 42],
            'receive_each_async');
        done();
    });
});

// A callback with an endmarker and a destroy notify: every item, then the
// endmarker, in this thread.
runUntil(done => {
    const got = [];
    const channel = gw.remote_exec('for i in range(3): channel.send(i)');
    channel.set_callback((ch, item) => {
        got.push(item.unpack());
        if (item.unpack() === 'END') {
            equal(got, [0, 1, 2, 'END'], 'callback items then endmarker');
            done();
        }
    }, new GLib.Variant('s', 'END'));
});

// A callback without endmarker.
runUntil(done => {
    const channel = gw.remote_exec('channel.send("one")');
    channel.set_callback((ch, item) => {
        equal(item.unpack(), 'one', 'callback without endmarker');
        done();
    }, null);
});

// Async pairs with a callback each.
runUntil(done => {
    gw.remote_info_async(null, (source, result) => {
        check(source.remote_info_finish(result).recursiveUnpack().pid > 1, 'remote_info_async');
        done();
    });
});
runUntil(done => {
    gw.remote_status_async(null, (source, result) => {
        check(source.remote_status_finish(result) !== null, 'remote_status_async');
        done();
    });
});
// ExecnetRSync: a directory to two gateways, with progress, asynchronously.
runUntil(done => {
    const base = GLib.dir_make_tmp('execnet-gjs-rsync-XXXXXX');
    const src = GLib.build_filenamev([base, 'src']);
    GLib.mkdir_with_parents(GLib.build_filenamev([src, 'sub']), 0o755);
    GLib.file_set_contents(GLib.build_filenamev([src, 'sub', 'f.txt']), 'rsync from gjs\n');
    const rsync = Execnet.RSync.new(src);
    equal(rsync.get_source_dir(), src, 'rsync source_dir');
    const finished = [];
    rsync.connect('progress', (r, gateway, path, bytesDone, total) => {
        if (bytesDone === total)
            finished.push(`${gateway.id}:${path}`);
    });
    check(rsync.add_target(gateways[0], GLib.build_filenamev([base, 'd0']), Execnet.RSyncFlags.NONE),
        'rsync add_target');
    check(rsync.add_target(gateways[1], GLib.build_filenamev([base, 'd1']), Execnet.RSyncFlags.DELETE),
        'rsync add_target with DELETE');
    rsync.send_async(null, (source, result) => {
        check(source.send_finish(result), 'rsync send_async');
        for (const d of ['d0', 'd1']) {
            const [ok, bytes] = GLib.file_get_contents(GLib.build_filenamev([base, d, 'sub', 'f.txt']));
            check(ok && new TextDecoder().decode(bytes) === 'rsync from gjs\n', `rsync wrote ${d}`);
        }
        // The progress signals are queued in this context; let them run.
        GLib.idle_add(GLib.PRIORITY_LOW, () => {
            equal(finished.sort(), gateways.map(g => `${g.id}:sub/f.txt`).sort(), 'rsync progress per file');
            GLib.spawn_command_line_sync(`rm -rf ${GLib.shell_quote(base)}`);
            done();
            return GLib.SOURCE_REMOVE;
        });
    });
});
runUntil(done => {
    gw.forward_logging_async('app', 20, 10, null, (source, result) => {
        check(source.forward_logging_finish(result), 'forward_logging_async');
        done();
    });
});
runUntil(done => {
    const channel = gw.remote_exec('channel.receive()');
    channel.send_async(new GLib.Variant('s', 'x'), null, (source, result) => {
        check(source.send_finish(result), 'send_async');
        source.wait_close_async(10, null, (ch, closeResult) => {
            check(ch.wait_close_finish(closeResult), 'wait_close_async');
            done();
        });
    });
});
runUntil(done => {
    const cancellable = new Gio.Cancellable();
    gw.join_async(-1, cancellable, (source, result) => {
        try {
            source.join_finish(result);
            check(false, 'join_async was cancelled');
        } catch (error) {
            check(error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED), 'join_async cancelled');
        }
        done();
    });
    cancellable.cancel();
});
runUntil(done => {
    group.make_gateway_async(spec, null, (source, result) => {
        check(source.make_gateway_finish(result).get_id() === 'gw2', 'make_gateway_async');
        done();
    });
});

// Signals: closed on gateway and channel, in this thread, after terminate_async.
runUntil(done => {
    let gatewayClosed = null;
    let channelClosed = null;
    const channel = gw.remote_exec('channel.receive()');
    channel.connect('closed', (ch, reason) => {
        channelClosed = reason;
    });
    gw.connect('closed', (g, reason) => {
        gatewayClosed = reason;
    });
    group.terminate_async(10, null, (source, result) => {
        check(source.terminate_finish(result), 'terminate_async');
        equal(source.get_size(), 0, 'group empty');
        // The signals are queued in this context; let them run.
        GLib.idle_add(GLib.PRIORITY_LOW, () => {
            check(gatewayClosed === null, 'gateway closed without a reason');
            check(channelClosed !== null &&
                channelClosed.matches(Execnet.error_quark(), Execnet.Error.GATEWAY_CLOSED),
            'channel closed because its gateway ended');
            done();
            return GLib.SOURCE_REMOVE;
        });
    });
});

finish('gjs');
