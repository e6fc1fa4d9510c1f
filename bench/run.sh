#!/bin/bash
# Runs every benchmark and prints its figures (each one measures its own baseline in the
# same run). As root. BENCH=name runs one ("sensor", "detect", "ioc_lookup", ...).
set -e
build=${1:-build}
want=${BENCH:-}
for b in bench/*.py; do
  n=$(basename "$b" .py); [ -n "$want" ] && [ "$want" != "$n" ] && continue
  echo "== bench/$n"; python3 "$b" "$build"
done
for b in "$build"/bench/*; do
  n=$(basename "$b"); [ "$n" = minlisten ] && continue   # the sensor benchmark's baseline
  [ -n "$want" ] && [ "$want" != "$n" ] && continue
  echo "== bench/$n"; "$b"
done
