#!/usr/bin/python3
"""Runs one language's version of the seed example and checks its output.

Usage: run-example.py COMMAND... ; every version prints the same lines, up
to process ids, the Python version and how many channels are still open
(a garbage-collected language may not have dropped them yet).

SPDX-License-Identifier: LGPL-2.1-or-later
"""
import re
import subprocess
import sys

EXPECTED = """<Group ['gw0', 'gw1']>
<PopenGateway id='gw0' receive-live, N active channels>: sum 6 computed by Python V, pid P
<PopenGateway id='gw1' receive-live, N active channels>: sum 7 computed by Python V, pid P
<Group []>
"""

result = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        text=True, timeout=120)
out = result.stdout
out = re.sub(r'\d+ active channels', 'N active channels', out)
out = re.sub(r'Python \d[0-9a-z.+]*', 'Python V', out)
out = re.sub(r'pid \d+', 'pid P', out)
if result.returncode != 0 or out != EXPECTED:
    sys.stderr.write('command: %r\nexit status %d\nstdout:\n%s\nstderr:\n%s\n'
                     % (sys.argv[1:], result.returncode, result.stdout, result.stderr))
    sys.exit(1)
