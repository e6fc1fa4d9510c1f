#!/bin/bash
# Every test ward has, in the order CI runs them. Exits non-zero if any part fails and
# prints one closing line "check: N passed, N failed" over all parts.
set -u
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "check: the tests need root (fanotify, eBPF, loop mounts)" >&2; exit 1; }
jobs=$(nproc)
status=0 parts_ok=0 parts_fail=0
part() { # name, command...
  local name=$1; shift
  echo "== $name"
  if "$@"; then parts_ok=$((parts_ok + 1)); else parts_fail=$((parts_fail + 1)); status=1; echo "== $name FAILED"; fi
}
part "build" make -j"$jobs" all
part "unit tests" bash tests/run-unit.sh build
part "black-box tests (real kernel, real files)" bash tests/run-blackbox.sh build
part "sanitizer build (ASan+UBSan)" make -j"$jobs" SAN=1 all
part "unit tests under ASan+UBSan" bash tests/run-unit.sh build-san
part "black-box tests under ASan+UBSan" env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 bash tests/run-blackbox.sh build-san
part "fuzz targets, ${FUZZ_SECONDS:-20}s each" make -j"$jobs" fuzz-run FUZZ_SECONDS=${FUZZ_SECONDS:-20}
echo "check: $parts_ok passed, $parts_fail failed"
exit $status
