#!/bin/sh
# Runs the suites that exercise our remote agent (test-gateway, test-async)
# against the oldest and the newest Python 3 this machine has besides the
# system's, since the agent promises to run on Python 3.8 and later. Uses
# the build directory that scripts/test.sh made. Interpreters are looked
# for on PATH (python3.8 ... python3.13) and among pyenv's versions; a
# machine with only the system's Python runs nothing here and says so.
set -eu
cd "$(dirname "$0")/.."

found=""
pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
for minor in 8 9 10 11 12 13 14; do
  for candidate in "$(command -v "python3.$minor" 2>/dev/null || true)" \
                   "$pyenv_root"/versions/3."$minor".*/bin/python3."$minor"; do
    # A pyenv shim for a version that is not selected exits non-zero.
    if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" -c pass 2>/dev/null; then
      found="$found $candidate"
      break
    fi
  done
done

oldest=""
newest=""
for python in $found; do
  [ -n "$oldest" ] || oldest="$python"
  newest="$python"
done

if [ -z "$oldest" ]; then
  echo "test-pythons: no Python 3.8 or later besides the system's; nothing to run"
  exit 0
fi

pythons="$oldest"
[ "$newest" = "$oldest" ] || pythons="$pythons $newest"
for python in $pythons; do
  echo "test-pythons: the agent's suites with $python ($("$python" -c 'import sys; print(sys.version.split()[0])'))"
  EXECNET_TEST_PYTHON="$python" meson test -C build --print-errorlogs test-gateway test-async
done
