#!/bin/sh
# Builds execnet-glib and runs the benchmarks; arguments go to bench-popen.
set -eu
cd "$(dirname "$0")/.."

sh scripts/install-deps.sh
[ -d build ] || meson setup build
meson compile -C build
EXECNET_TRANSPORT_PATH="$PWD/build/plugins/popen:$PWD/build/plugins/ssh" build/bench/bench-popen "$@"
if [ -x build/bench/bench-ssh ]; then
  EXECNET_TRANSPORT_PATH="$PWD/build/plugins/popen:$PWD/build/plugins/ssh" build/bench/bench-ssh
fi
