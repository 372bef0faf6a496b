#!/usr/bin/python3
"""Checks that doc/getting-started.md shows the example files as they are.

Each fenced block that follows a `<!-- doc/examples/NAME -->` line must be
that file's text; the files themselves are built and run by other tests.

SPDX-License-Identifier: LGPL-2.1-or-later
"""
import os
import re
import sys

root = sys.argv[1]
page = open(os.path.join(root, 'doc', 'getting-started.md'), encoding='utf-8').read()
blocks = re.findall(r'<!-- (doc/examples/[^ ]+) -->\n```[a-z]*\n(.*?)```\n', page, re.S)
names = [name for name, _ in blocks]
for wanted in ('groups.c', 'groups.py', 'groups.js', 'groups.vala'):
    if 'doc/examples/' + wanted not in names:
        sys.exit('getting-started.md does not show doc/examples/%s' % wanted)
for name, text in blocks:
    actual = open(os.path.join(root, name), encoding='utf-8').read()
    if actual != text:
        sys.exit('getting-started.md shows an outdated copy of %s' % name)
