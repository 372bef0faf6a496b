#!/usr/bin/env python3
"""Checks that the built API reference navigates.

Usage: check-docs.py HTML_DIR PAGE...

Every page has a title (gi-docgen shows a content page without a
"Title:" line as "Unknown document"), every link to a .md or .html page
leads to a file of the reference, and each PAGE (a content page such as
getting-started.html) exists and is linked from the index.
"""
import html.parser
import os
import sys
import urllib.parse


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs = []

    def handle_starttag(self, tag, attrs):
        if tag == 'a':
            for name, value in attrs:
                if name == 'href' and value:
                    self.hrefs.append(value)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    root = sys.argv[1]
    problems = []
    index_links = set()

    for name in sorted(os.listdir(root)):
        if not name.endswith('.html'):
            continue
        path = os.path.join(root, name)
        with open(path, encoding='utf-8') as f:
            text = f.read()
        if 'Unknown document' in text:
            problems.append('%s: a page without a title ("Unknown document"); '
                            'start its Markdown source with a "Title:" line' % name)
        parser = Links()
        parser.feed(text)
        for href in parser.hrefs:
            url = urllib.parse.urlsplit(href)
            if url.scheme or url.netloc or not url.path:
                continue
            target = urllib.parse.unquote(url.path)
            if name == 'index.html':
                index_links.add(target)
            if not target.endswith(('.md', '.html')):
                continue
            if not os.path.isfile(os.path.join(root, target)):
                problems.append('%s: the link "%s" leads to no page of the reference'
                                % (name, href))

    for page in sys.argv[2:]:
        if not os.path.isfile(os.path.join(root, page)):
            problems.append('%s is missing: add its Markdown source to content_files '
                            'in doc/execnet.toml.in' % page)
        elif page not in index_links:
            problems.append('index.html does not link to %s' % page)

    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        sys.exit(1)
    print('%s: every page has a title and every page link resolves' % root)


if __name__ == '__main__':
    main()
