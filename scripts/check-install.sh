#!/bin/sh
# Installs execnet-glib into a scratch prefix and checks it as a user would:
# a program built with pkg-config alone runs a popen gateway, finding the
# installed plugin without EXECNET_TRANSPORT_PATH.
set -eu
cd "$(dirname "$0")/.."

prefix="$(mktemp -d)"
trap 'rm -rf "$prefix"' EXIT

meson setup build-install --prefix="$prefix" -Dtests=false -Dbench=false >/dev/null
meson install -C build-install >/dev/null

export PKG_CONFIG_PATH="$prefix/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo)/pkgconfig:$prefix/lib/pkgconfig"
unset EXECNET_TRANSPORT_PATH

cc -o "$prefix/groups" doc/examples/groups.c $(pkg-config --cflags --libs execnet-1) \
   -Wl,-rpath,"$(pkg-config --variable=libdir execnet-1)"
"$prefix/groups" "popen//python=/usr/bin/python3"

test -x "$(pkg-config --variable=transportdir execnet-1)/libexecnet-popen.so"
test -f "$prefix/share/man/man1/execnet-tool.1"
LD_LIBRARY_PATH="$(pkg-config --variable=libdir execnet-1)" "$prefix/bin/execnet-tool" transports
echo "install check: OK"
