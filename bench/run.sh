#!/bin/bash
# Runs every benchmark under bench/ and prints its figures. As root.
set -e
build=${1:-build}
for b in bench/*.py; do echo "== $b"; python3 "$b" "$build"; done
for b in bench/*.sh; do [ "$b" = bench/run.sh ] && continue; echo "== $b"; bash "$b" "$build"; done
