#!/bin/sh
# Installs what is missing, builds execnet-glib and runs the demo: two local
# Python gateways in a group, each running a bit of code, then terminated.
set -eu
cd "$(dirname "$0")/.."

sh scripts/install-deps.sh
[ -d build ] || meson setup build
meson compile -C build
EXECNET_TRANSPORT_PATH="$PWD/build/plugins/popen" ./build/doc/examples/example-groups
