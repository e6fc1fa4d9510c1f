#!/bin/bash
# Runs every unit test program in BUILD/tests; prints each one's closing line.
build=${1:-build}
pass=0 fail=0 failed=()
for t in "$build"/tests/test_*; do
  [ -x "$t" ] || continue
  out=$("$t" 2>&1); rc=$?
  line=$(printf '%s\n' "$out" | grep -E '^[a-z_0-9-]+: [0-9]+ passed, [0-9]+ failed' | tail -1)
  if [ $rc -ne 0 ] || [ -z "$line" ]; then
    printf '%s\n' "$out" | tail -30
    failed+=("${t##*/}")
  fi
  echo "  ${line:-${t##*/}: crashed (exit $rc)}"
  p=$(sed -nE 's/.*: ([0-9]+) passed, ([0-9]+) failed.*/\1/p' <<<"$line"); f=$(sed -nE 's/.*: ([0-9]+) passed, ([0-9]+) failed.*/\2/p' <<<"$line")
  pass=$((pass + ${p:-0})); fail=$((fail + ${f:-0}))
  [ -z "$line" ] && fail=$((fail + 1))
done
echo "unit: $pass passed, $fail failed"
[ ${#failed[@]} -eq 0 ] && [ $fail -eq 0 ]
