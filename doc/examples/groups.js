// groups.js: two local Python interpreters in a group, each running code.
//
// The JavaScript (GJS) version of groups.c. Run it with
//   gjs -m groups.js [SPEC]
//
// SPDX-License-Identifier: LGPL-2.1-or-later
import GLib from 'gi://GLib';
import Execnet from 'gi://Execnet?version=1.0';
import System from 'system';

const remoteCode = `import os, sys
numbers = channel.receive()
channel.send((sum(numbers), os.getpid(), sys.version.split()[0]))
`;

const spec = ARGV[0] ?? 'popen';   // e.g. popen//python=/usr/bin/python3

// Both gateways start at the same time.
const group = Execnet.Group.new_with_specs([spec, spec]);
print(group.to_string());                            // <Group ['gw0', 'gw1']>

for (let i = 0; i < group.get_size(); i++) {
    const gateway = group.get_gateway(i);
    const channel = gateway.remote_exec(remoteCode);
    channel.send(new GLib.Variant('ai', [1, 2, 3, i]));
    const [total, pid, version] = channel.receive(10.0).deepUnpack();
    print(`${gateway.to_string()}: sum ${total} computed by Python ${version}, pid ${pid}`);
}

// Every member exits; whatever has not ended after 2 seconds is killed.
group.terminate(2.0);
print(group.to_string());                            // <Group []>
System.exit(0);
