// groups.vala: two local Python interpreters in a group, each running code.
//
// The Vala version of groups.c. Build it against an installed library with
//   valac --pkg execnet-1 groups.vala
//
// SPDX-License-Identifier: LGPL-2.1-or-later

const string REMOTE_CODE = """import os, sys
numbers = channel.receive()
channel.send((sum(numbers), os.getpid(), sys.version.split()[0]))
""";

int main (string[] args) {
    string spec = args.length > 1 ? args[1] : "popen";   // popen//python=/usr/bin/python3

    try {
        // Both gateways start at the same time.
        var group = new Execnet.Group.with_specs ({ spec, spec });
        print ("%s\n", group.to_string ());              // <Group ['gw0', 'gw1']>

        for (uint i = 0; i < group.get_size (); i++) {
            var gateway = group.get_gateway (i);
            var channel = gateway.remote_exec (REMOTE_CODE);
            channel.send (new Variant.parsed ("[1, 2, 3, %i]", (int32) i));
            var reply = channel.receive (10.0);
            int64 total, pid;
            string version;
            reply.get ("(xxs)", out total, out pid, out version);
            print ("%s: sum %lld computed by Python %s, pid %lld\n",
                   gateway.to_string (), total, version, pid);
        }

        // Every member exits; whatever has not ended after 2 seconds is killed.
        group.terminate (2.0);
        print ("%s\n", group.to_string ());              // <Group []>
    } catch (Error error) {
        printerr ("%s\n", error.message);
        return 1;
    }
    return 0;
}
