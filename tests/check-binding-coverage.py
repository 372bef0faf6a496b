#!/usr/bin/python3
"""Every public function, method, constructor and signal of Execnet-1.0
is called from the Python tests and from the GJS test.

Usage: check-binding-coverage.py GIR --python FILE... --gjs FILE...

Reads the built GIR and searches the test sources for a call of each
symbol. A method whose short name belongs to one class only matches
`name(`; a short name several classes share (send, close, get_id, the
`closed` signals...) also needs a `covers: Class.name` comment on the
line of the call or up to three lines above it, so a call on one class
does not count for another. Constructors named `new` match `Class(` or
`Class.new(`, functions outside a class `Execnet.name(`, static
functions `Class.name(`, signals `connect('name'`. The Python overrides
rename a few calls; PYTHON_ALIASES lists those.

EXCLUDED names what a binding cannot call, EXCLUDED_IN what one language
cannot call, each with its reason. The check fails when a symbol is
neither called nor excluded (a new public symbol must come with its
tests), and when an excluded symbol is called after all or no longer
exists (the lists only shrink).

SPDX-License-Identifier: LGPL-2.1-or-later
"""
import re
import sys
import xml.etree.ElementTree as ET

CORE = '{http://www.gtk.org/introspection/core/1.0}'
C_ID = '{http://www.gtk.org/introspection/c/1.0}identifier'
GLIB = '{http://www.gtk.org/introspection/glib/1.0}'

# What a binding cannot call, with the reason.
EXCLUDED = {
    'execnet_xspec_ref': 'the binding owns boxed copies and takes its references itself',
    'execnet_xspec_unref': 'the binding owns boxed copies and drops its references itself',
}

# What one language cannot call, with the reason.
EXCLUDED_IN = {
    'gjs': {
        'execnet_gateway_set_wire_observer':
            'the observer runs in the I/O thread, and GJS refuses to run JS there',
    },
    'python': {},
}

# Override spellings (Python): C identifier -> patterns that call it.
PYTHON_ALIASES = {
    'execnet_channel_is_closed': [r'\.isclosed\('],
    'execnet_channel_wait_close': [r'\.waitclose\('],
    'execnet_channel_get_id': [r'\bch\w*\.id\b'],
    'execnet_channel_get_gateway': [r'\bch\w*\.gateway\b'],
    'execnet_channel_next': [r'\bnext\(\s*ch\w*\s*\)'],
    'execnet_multi_channel_wait_close': [r'\bmc\w*\.waitclose\('],
    'execnet_multi_channel_get_size': [r'\blen\(\s*mc\w*\s*\)'],
    'execnet_multi_channel_get_channel': [r'\bmc\w*\[\s*-?\d+\s*\]'],
    'execnet_gateway_get_id': [r'\bgw\w*\.id\b'],
    'execnet_gateway_new_channel': [r'\.newchannel\('],
    'execnet_gateway_get_xspec': [r'\bgw\w*\.spec\b'],
    'execnet_group_get_size': [r'\blen\(\s*(self\.)?group\w*\s*\)'],
    'execnet_group_get_gateway': [r'\bgroup\w*\[\s*-?\d+\s*\]'],
    'execnet_group_lookup': [r"\bgroup\w*\[\s*'[^']*'\s*\]"],
    'execnet_group_contains': [r'\bassert(Not)?In\(\s*\w+,\s*(self\.)?group\b'],
    'execnet_group_to_string': [r'\brepr\(\s*(self\.)?group\w*\s*\)'],
    'execnet_gateway_to_string': [r'\brepr\(\s*(self\.)?gw\w*\s*\)'],
    'execnet_channel_to_string': [r'\brepr\(\s*ch\w*\s*\)'],
    'execnet_make_gateway': [r'\bExecnet\.makegateway\('],
}


def symbols(gir):
    """C identifier (or Class::signal) -> (class or None, name, kind)."""
    namespace = ET.parse(gir).getroot().find(CORE + 'namespace')
    found = {}
    moved = {}  # C identifier -> the name it also has outside its class
    for element in namespace:
        tag = element.tag.replace(CORE, '')
        if tag == 'function':
            if element.get('moved-to'):
                moved[element.get(C_ID)] = element.get('name')
            elif element.get('introspectable') != '0':
                found[element.get(C_ID)] = (None, element.get('name'), 'function')
            continue
        cls = element.get('name')
        for child in element:
            kind = child.tag.replace(CORE, '').replace(GLIB, '')
            if kind in ('method', 'constructor', 'function'):
                if child.get('introspectable') != '0' and not child.get('moved-to'):
                    found[child.get(C_ID)] = (cls, child.get('name'), kind)
            elif kind == 'signal':
                found['%s::%s' % (cls, child.get('name'))] = (cls, child.get('name'), 'signal')
    return found, moved


def marked(text, match_start, cls, name):
    """Whether a covers: Class.name comment is near the call at match_start."""
    line = text.count('\n', 0, match_start)
    lines = text.split('\n')[max(0, line - 3):line + 1]
    marker = re.compile(r'covers:[^\n]*\b%s\.%s\b' % (re.escape(cls), re.escape(name)))
    return any(marker.search(each) for each in lines)


def called(text, cid, cls, name, kind, shared, aliases):
    if kind == 'signal':
        patterns = [r"""connect\(\s*['"]%s['"]""" % re.escape(name)]
    elif kind == 'constructor' and name == 'new':
        patterns = [r'\b%s(\.new)?\(' % re.escape(cls)]
    elif kind == 'function' and cls is None:
        patterns = [r'\bExecnet\.%s\(' % re.escape(name)]
    elif kind in ('function', 'constructor'):
        patterns = [r'\b%s\.%s\(' % (re.escape(cls), re.escape(name))]
    else:
        patterns = [r'\b%s\s*\(' % re.escape(name)]
    patterns += aliases.get(cid, [])
    for pattern in patterns:
        for match in re.finditer(pattern, text):
            if not shared or cls is None or marked(text, match.start(), cls, name):
                return True
    return False


def main(argv):
    gir = argv[1]
    files = {'python': [], 'gjs': []}
    current = None
    for arg in argv[2:]:
        if arg in ('--python', '--gjs'):
            current = arg[2:]
        else:
            files[current].append(arg)
    texts = {lang: '\n'.join(open(f, encoding='utf-8').read() for f in paths)
             for lang, paths in files.items()}
    found, moved = symbols(gir)
    aliases = {'python': dict(PYTHON_ALIASES), 'gjs': {}}
    for cid, name in moved.items():
        for lang in aliases:
            aliases[lang][cid] = aliases[lang].get(cid, []) + [r'\bExecnet\.%s\(' % name]
    names = {}
    for cls, name, kind in found.values():
        if cls is not None and kind in ('method', 'signal'):
            names.setdefault((kind, name), set()).add(cls)
    def is_shared(cls, name, kind):
        return kind in ('method', 'signal') and len(names.get((kind, name), ())) > 1

    problems = []
    for cid, (cls, name, kind) in sorted(found.items()):
        shared = is_shared(cls, name, kind)
        missing = [lang for lang in ('python', 'gjs')
                   if not called(texts[lang], cid, cls, name, kind, shared,
                                 aliases[lang])]
        if cid in EXCLUDED:
            continue
        missing = [lang for lang in missing if cid not in EXCLUDED_IN[lang]]
        for lang in missing:
            hint = ' (add a "covers: %s.%s" comment by the call)' % (cls, name) if shared else ''
            problems.append('%s is not called from the %s tests%s' % (cid, lang, hint))
    listed = set(EXCLUDED)
    for lang, excluded in EXCLUDED_IN.items():
        listed |= set(excluded)
        for cid in excluded:
            if cid in found and cid not in EXCLUDED and called(
                    texts[lang], cid, *found[cid], is_shared(*found[cid]), aliases[lang]):
                problems.append('%s is called from the %s tests: take it off EXCLUDED_IN'
                                % (cid, lang))
    for cid in sorted(listed):
        if cid not in found:
            problems.append('%s is listed here but not in the GIR: take it off' % cid)
    for problem in problems:
        print(problem)
    print('%d symbols, %d excluded, %d excluded in one language, %d problems'
          % (len(found), len(EXCLUDED), sum(len(e) for e in EXCLUDED_IN.values()),
             len(problems)))
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
