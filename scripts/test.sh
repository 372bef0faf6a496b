#!/bin/sh
# Builds execnet-glib and runs the whole test suite (meson test).
# Extra arguments go to meson test, e.g. --suite gateway.
set -eu
cd "$(dirname "$0")/.."

sh scripts/install-deps.sh
[ -d build ] || meson setup build
# The API reference is built too: a broken doc comment fails the build.
meson configure build -Ddocs=true
meson compile -C build
meson test -C build --print-errorlogs "$@"
