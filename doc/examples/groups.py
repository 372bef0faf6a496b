#!/usr/bin/python3
"""groups.py: two local Python interpreters in a group, each running code.

The Python version of groups.c, through GObject Introspection and the
gi.overrides.Execnet module installed with the library. Run it with
  python3 groups.py [SPEC]

SPDX-License-Identifier: LGPL-2.1-or-later
"""
import sys

import gi
gi.require_version('Execnet', '1.0')
from gi.repository import Execnet  # noqa: E402

remote_code = """
import os, sys
numbers = channel.receive()
channel.send((sum(numbers), os.getpid(), sys.version.split()[0]))
"""

spec = sys.argv[1] if len(sys.argv) > 1 else 'popen'  # popen//python=/usr/bin/python3

# Both gateways start at the same time.
group = Execnet.Group.new_with_specs([spec, spec])
print(group)                                         # <Group ['gw0', 'gw1']>

for i, gateway in enumerate(group):
    channel = gateway.remote_exec(remote_code)
    channel.send([1, 2, 3, i])
    total, pid, version = channel.receive(timeout=10)
    print('%r: sum %d computed by Python %s, pid %d' % (gateway, total, version, pid))

# Every member exits; whatever has not ended after 2 seconds is killed.
group.terminate(timeout=2)
print(group)                                         # <Group []>
