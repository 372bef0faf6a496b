#!/bin/sh
# podman-fixture.sh: a private, rootful podman for the container tests.
#
#   podman-fixture.sh up STATE_DIR     prints the environment to use it
#   podman-fixture.sh down STATE_DIR   removes every container of the store
#
# Everything lives under STATE_DIR (in the build directory): the image
# store, podman's run-time state and the two configuration files that the
# environment variables CONTAINERS_CONF and CONTAINERS_STORAGE_CONF point
# podman at, so nothing of the machine's own podman setup is read or
# changed. The store is kept between runs: the test image is built once.
#
# The image, execnet-test-python (its file tree cached as a tar file in
# STATE_DIR), holds only this machine's python3, its
# standard library and the shared libraries they load: built in seconds,
# without a network or a Debian mirror (debootstrap of a minimal Debian
# with python3 works too, but takes minutes).
#
# Exit status 77: this machine cannot run rootful podman (not root, podman
# or runc missing); the caller skips.
set -eu

cmd=${1:?usage: podman-fixture.sh up|down STATE_DIR}
B=${2:?usage: podman-fixture.sh up|down STATE_DIR}
IMAGE=execnet-test-python
mkdir -p "$B"
B=$(cd "$B" && pwd)

export CONTAINERS_CONF="$B/containers.conf" CONTAINERS_STORAGE_CONF="$B/storage.conf"

# One user of the store at a time (two build directories' suites, or two
# test programs, may start at once).
exec 9> "$B/lock"
flock 9

case $cmd in
down)
  [ -f "$CONTAINERS_CONF" ] && podman rm --all --force --time 0 >/dev/null 2>&1
  exit 0
  ;;
up) ;;
*) echo "podman-fixture.sh: unknown command $cmd" >&2; exit 2 ;;
esac

unavailable () {
  echo "podman-fixture.sh: $*" >&2
  exit 77
}
[ "$(id -u)" -eq 0 ] || unavailable "rootful podman needs root (the suite runs as $(id -un))"
for p in podman runc catatonit; do
  command -v $p >/dev/null 2>&1 || [ -x /usr/libexec/podman/$p ] ||
    unavailable "$p is not installed (scripts/install-deps.sh installs it)"
done
PYTHON=$(readlink -f /usr/bin/python3)
[ -x "$PYTHON" ] || unavailable "/usr/bin/python3 is missing"

# The store itself needs a short path: conmon's attach socket lives in it,
# and with the long path of a build directory (over the 108 bytes of a
# socket address) `podman run` misses its container's end and waits
# forever. The image's file tree is kept in the build directory.
R=/tmp/execnet-podman-$(printf '%s' "$B" | cksum | cut -d ' ' -f 1)
mkdir -p "$R/root" "$R/runroot" "$R/tmp"

if [ ! -f "$CONTAINERS_STORAGE_CONF" ] || ! grep -q "$R" "$CONTAINERS_STORAGE_CONF"; then
  # overlayfs when the file system under the build directory allows it
  # (ext4, xfs), else the slow but portable vfs driver.
  driver=vfs
  t=$(mktemp -d "$R/overlay-check.XXXXXX")
  mkdir "$t/l" "$t/u" "$t/w" "$t/m"
  if mount -t overlay overlay -o "lowerdir=$t/l,upperdir=$t/u,workdir=$t/w" "$t/m" 2>/dev/null; then
    umount "$t/m"
    driver=overlay
  fi
  rm -rf "$t"
  cat > "$CONTAINERS_STORAGE_CONF" <<EOF
[storage]
driver = "$driver"
graphroot = "$R/root"
runroot = "$R/runroot"
EOF
fi

# - no network: the tests talk over stdin/stdout only;
# - init: an init process as PID 1 forwards signals to Python (PID 1
#   ignores SIGTERM without a handler);
# - ulimits: root in a container here may not raise them to podman's
#   default of 1048576 (no CAP_SYS_RESOURCE), and the OCI runtime fails;
# - runc and cgroupfs: crun refuses hybrid cgroup hierarchies, and there
#   is no systemd to manage cgroups.
cat > "$CONTAINERS_CONF" <<EOF
[containers]
netns = "none"
init = true
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
tmp_dir = "$R/tmp"
EOF

# Whatever a previous run that was killed left.
podman rm --all --force --time 0 >/dev/null 2>&1 || true

if [ ! -f "$B/$IMAGE.tar" ]; then
  rootfs="$B/rootfs"
  rm -rf "$rootfs"
  mkdir -p "$rootfs/usr/bin" "$rootfs/tmp" "$rootfs/root"
  chmod 1777 "$rootfs/tmp"
  cp -a "$PYTHON" "$rootfs/usr/bin/"
  ln -s "$(basename "$PYTHON")" "$rootfs/usr/bin/python3"
  stdlib=/usr/lib/$(basename "$PYTHON")
  mkdir -p "$rootfs/usr/lib"
  tar -C /usr/lib -c --exclude=test --exclude=dist-packages --exclude=site-packages \
      --exclude=__pycache__ --exclude=idlelib --exclude=tkinter "$(basename "$stdlib")" |
    tar -C "$rootfs/usr/lib" -x
  # The shared libraries of the interpreter and of its extension modules,
  # at the same paths.
  # (libgcc_s is not linked but loaded by the C library when a thread
  # exits.)
  for lib in $( { ldd "$PYTHON"; ldd "$stdlib"/lib-dynload/*.so;
                  ldconfig -p | awk '$1 == "libgcc_s.so.1" && /x86-64|x32|64/ {print "\t" $1 " => " $NF " (0)"; exit}'; } 2>/dev/null |
                awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $2 ~ /^\(/ {print $1}' | sort -u); do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done
  mkdir -p "$rootfs/etc"
  printf 'root:x:0:0:root:/root:/bin/sh\n' > "$rootfs/etc/passwd"
  tar -C "$rootfs" -cf "$B/$IMAGE.tar.part" .
  mv "$B/$IMAGE.tar.part" "$B/$IMAGE.tar"
  rm -rf "$rootfs"
fi
podman image exists $IMAGE 2>/dev/null || podman import --quiet "$B/$IMAGE.tar" $IMAGE >/dev/null


echo "CONTAINERS_CONF=$CONTAINERS_CONF"
echo "CONTAINERS_STORAGE_CONF=$CONTAINERS_STORAGE_CONF"
echo "IMAGE=$IMAGE"
