#!/bin/bash
# Runs every black-box test (tests/blackbox/test_*.py and *.sh) against BUILD/ward, as root.
build=${1:-build}
export WARD_BIN=$(realpath "$build/ward") WARD_BUILD=$(realpath "$build")
pass=0 fail=0 failed=()
for t in tests/blackbox/test_*; do
  # tests of work still in progress are listed in tests/blackbox/wip.list and not run
  if [ -f tests/blackbox/wip.list ] && grep -qxF "${t##*/}" tests/blackbox/wip.list; then
    echo "  ${t##*/}: not run (listed in tests/blackbox/wip.list)"; continue
  fi
  case "$t" in *.py) cmd=(python3 "$t") ;; *.sh) cmd=(bash "$t") ;; *) continue ;; esac
  out=$(timeout 900 "${cmd[@]}" 2>&1); rc=$?
  line=$(printf '%s\n' "$out" | grep -E '^[a-z_0-9-]+: [0-9]+ passed, [0-9]+ failed' | tail -1)
  if [ $rc -ne 0 ] || [ -z "$line" ]; then printf '%s\n' "$out" | tail -60; failed+=("$t"); fi
  echo "  ${line:-$t: crashed (exit $rc)}"
  p=$(sed -nE 's/.*: ([0-9]+) passed, ([0-9]+) failed.*/\1/p' <<<"$line"); f=$(sed -nE 's/.*: ([0-9]+) passed, ([0-9]+) failed.*/\2/p' <<<"$line")
  pass=$((pass + ${p:-0})); fail=$((fail + ${f:-0}))
  [ -z "$line" ] && fail=$((fail + 1))
done
echo "blackbox: $pass passed, $fail failed"
[ ${#failed[@]} -eq 0 ] && [ $fail -eq 0 ]
