#!/usr/bin/env python3
"""Copies doc/*.md pages for the API reference, with their links rewritten.

Usage: md-for-reference.py OUTDIR BASE_URL PAGE.md...

The pages link to each other as NAME.md, which works where they are read
as files (a repository browser); in the reference they are NAME.html. A
link to a page that is not part of the reference, or to another file
(doc/examples/...), becomes a link into the repository at BASE_URL.
"""
import os
import re
import sys

LINK = re.compile(r'\]\((?!\w+:|#)([^)\s#]+)(#[^)\s]*)?\)')


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    outdir, base_url, pages = sys.argv[1], sys.argv[2], sys.argv[3:]
    names = {os.path.basename(page) for page in pages}

    def rewrite(match):
        target, fragment = match.group(1), match.group(2) or ''
        if target in names:
            return '](%s%s)' % (target[:-len('.md')] + '.html', fragment)
        if target.endswith('.html'):
            return match.group(0)
        return '](%s%s%s)' % (base_url, os.path.normpath(os.path.join('doc', target)), fragment)

    for page in pages:
        with open(page, encoding='utf-8') as f:
            text = f.read()
        with open(os.path.join(outdir, os.path.basename(page)), 'w', encoding='utf-8') as f:
            f.write(LINK.sub(rewrite, text))


if __name__ == '__main__':
    main()
