# Runs on the remote for ExecnetRSync: the receiving side of one target.
# Loaded with remote_exec only when an RSync sends; stdlib only.
#
# From the master, in order:
#   (dest_dir, delete)                       where to write, whether to delete extras
#   [(path, type, size, mtime_ns, mode, link), ...]   the source tree; type is
#                                            'd', 'f', 'l', 'p' (a FIFO) or 'h' (a hard
#                                            link to the earlier entry named by link);
#                                            paths relative, '/'-separated
# To the master: [(path, digest), ...] the files it needs; digest is the
#   SHA-256 of the file here when only the mtime differs, '' otherwise.
# Then from the master, any number of:
#   ('file', path, mode, mtime_ns) followed by bytes items, then ('close',)
#   ('meta', path, mode, mtime_ns)           content already equal
# and ('finish',), answered with ('done', files_written, bytes_written).
import hashlib
import os
import stat
import tempfile

root_arg, delete = channel.receive()
root = os.path.abspath(root_arg)


def fail(what, todo):
    raise OSError('rsync receiver: %s; %s' % (what, todo))


try:
    os.makedirs(root, exist_ok=True)
except OSError as e:
    fail('cannot create the destination directory (%s)' % e.strerror,
         'give a directory the remote user can create and write')
if not os.path.isdir(root) or not os.access(root, os.W_OK | os.X_OK):
    fail('the destination is not a writable directory',
         'give a directory the remote user can write')
real_root = os.path.realpath(root)


def target(path):
    parts = path.split('/')
    if not path or path.startswith('/') or '..' in parts or '' in parts:
        fail('the path %r leaves the destination' % path, 'send only relative paths')
    full = os.path.join(root, *parts)
    parent = os.path.realpath(os.path.dirname(full))
    if parent != real_root and not parent.startswith(real_root + os.sep):
        fail('%r would be written through a symbolic link leading outside the destination'
             ' (to %s)' % (path, parent),
             'remove that link from the destination or choose another destination')
    return full


def digest(full):
    h = hashlib.sha256()
    with open(full, 'rb') as f:
        while True:
            data = f.read(262144)
            if not data:
                break
            h.update(data)
    return h.hexdigest()


def temp_name(full):
    # A name beside @full that nothing uses, for a link made and then renamed.
    base = os.path.join(os.path.dirname(full), '.%s.' % os.path.basename(full))
    n = os.getpid()
    while os.path.lexists('%s%d.rsync-tmp' % (base, n)):
        n += 1
    return '%s%d.rsync-tmp' % (base, n)


def remove(full):
    if os.path.isdir(full) and not os.path.islink(full):
        for name in os.listdir(full):
            remove(os.path.join(full, name))
        os.rmdir(full)
    else:
        os.unlink(full)


entries = channel.receive()
# Every path is checked before anything is changed.
paths = {}
for path, kind, size, mtime, mode, link in entries:
    paths[path] = (target(path), kind, size, mtime, mode, link)

if delete:
    for top, dirs, files in os.walk(root, topdown=False):
        for name in files + dirs:
            full = os.path.join(top, name)
            rel = os.path.relpath(full, root).replace(os.sep, '/')
            if rel not in paths and os.path.lexists(full):
                remove(full)

need = []
dirs = []
hardlinks = []  # (full, full path of the file it is a link to), made at the end
for path in sorted(paths):
    full, kind, size, mtime, mode, link = paths[path]
    try:
        st = os.lstat(full)
    except OSError:
        st = None
    if kind == 'd':
        if st is not None and not stat.S_ISDIR(st.st_mode):
            remove(full)
            st = None
        if st is None:
            os.mkdir(full)
        dirs.append((full, mode, mtime))
    elif kind == 'l':
        if st is not None and stat.S_ISLNK(st.st_mode) and os.readlink(full) == link:
            continue
        tmp = temp_name(full)
        os.symlink(link, tmp)
        if st is not None and stat.S_ISDIR(st.st_mode):
            remove(full)
        os.replace(tmp, full)
        os.utime(full, ns=(mtime, mtime), follow_symlinks=False)
    elif kind == 'p':
        if st is None or not stat.S_ISFIFO(st.st_mode):
            tmp = temp_name(full)
            os.mkfifo(tmp, mode)
            if st is not None and stat.S_ISDIR(st.st_mode):
                remove(full)
            os.replace(tmp, full)
        os.chmod(full, mode)
        os.utime(full, ns=(mtime, mtime))
    elif kind == 'h':
        if link not in paths or paths[link][1] != 'f':
            fail('the hard link %r names %r, which is not a file sent with it' % (path, link),
                 'send the whole tree')
        if st is not None and stat.S_ISDIR(st.st_mode):
            remove(full)
        hardlinks.append((full, paths[link][0]))
    else:
        if st is not None and stat.S_ISDIR(st.st_mode):
            remove(full)
            st = None
        if st is None or not stat.S_ISREG(st.st_mode) or st.st_size != size:
            need.append((path, ''))
        elif st.st_mtime_ns != mtime:
            need.append((path, digest(full)))
        elif stat.S_IMODE(st.st_mode) != mode:
            os.chmod(full, mode)
channel.send(need)

written = 0
nbytes = 0
while True:
    item = channel.receive()
    if item[0] == 'finish':
        break
    path, mode, mtime = item[1], item[2], item[3]
    full = paths[path][0]
    if item[0] == 'meta':
        os.chmod(full, mode)
        os.utime(full, ns=(mtime, mtime))
        continue
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(full), suffix='.rsync-tmp',
                               dir=os.path.dirname(full))
    try:
        with os.fdopen(fd, 'wb') as f:
            while True:
                chunk = channel.receive()
                if isinstance(chunk, tuple):
                    break
                f.write(chunk)
                nbytes += len(chunk)
        os.chmod(tmp, mode)
        os.utime(tmp, ns=(mtime, mtime))
        os.replace(tmp, full)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    written += 1

# Once the files are in place, the later names of a file become links to
# its first one (unless they already are).
for full, first in hardlinks:
    try:
        if os.path.samefile(full, first) and not os.path.islink(full):
            continue
    except OSError:
        pass
    tmp = temp_name(full)
    os.link(first, tmp)
    os.replace(tmp, full)

for full, mode, mtime in reversed(dirs):
    os.chmod(full, mode)
    os.utime(full, ns=(mtime, mtime))
channel.send(('done', written, nbytes))
