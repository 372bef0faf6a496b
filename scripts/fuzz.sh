#!/bin/sh
# Builds the libFuzzer targets with clang and runs each for a bounded time
# (default 60 s) on a copy of its seed corpus. Any crash, leak or sanitizer
# report fails.
set -eu
cd "$(dirname "$0")/.."
seconds="${1:-60}"

sh scripts/install-deps.sh
[ -d build-fuzz ] || CC=clang meson setup build-fuzz -Dfuzzing=true -Db_sanitize=address,undefined \
  -Db_lundef=false -Dtests=false -Dbench=false -Dssh=disabled -Dtool=disabled -Dintrospection=disabled
meson compile -C build-fuzz

for target in value frame xspec; do
  corpus="build-fuzz/corpus-$target"
  rm -rf "$corpus"
  cp -r "fuzz/corpus/$target" "$corpus"
  echo "fuzzing $target for $seconds s"
  log="build-fuzz/fuzz-$target.log"
  if ! UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
       "build-fuzz/fuzz/fuzz-$target" -max_total_time="$seconds" -print_final_stats=1 \
       -artifact_prefix="build-fuzz/crash-$target-" "$corpus" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz-$target failed; the input that did it is in build-fuzz/crash-$target-*"
    exit 1
  fi
  grep -E '^(Done|stat::number_of_executed_units)' "$log" || true
done
