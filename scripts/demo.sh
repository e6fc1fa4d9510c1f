#!/bin/bash
# The demo: ward watches a demo folder on a fresh loop-mounted ext4 filesystem, a few
# ordinary processes work in it, and ward shows what it saw (ECS JSON, one event a line).
set -euo pipefail
ward=$(realpath "${1:-build/ward}")
[ "$(id -u)" = 0 ] || { echo "demo: run as root (sudo make demo)" >&2; exit 1; }
d=$(mktemp -d /tmp/ward-demo.XXXXXX)
cleanup() { kill "$wpid" 2>/dev/null || true; wait "$wpid" 2>/dev/null || true; umount "$d/mnt" 2>/dev/null || true; rm -rf "$d"; }
trap cleanup EXIT
truncate -s 128M "$d/img" && mkfs.ext4 -q -F "$d/img" && mkdir "$d/mnt" && mount -o loop "$d/img" "$d/mnt"
share="$d/mnt/share"; mkdir -p "$share/finance"
echo "demo: ward protects $share"
"$ward" trace --watch "$share" > "$d/events.json" 2> "$d/ward.log" & wpid=$!
for _ in $(seq 100); do grep -q ready "$d/ward.log" && break; sleep 0.05; done
cat "$d/ward.log"
echo "demo: some ordinary work in the share..."
echo "quarterly figures" > "$share/finance/report.txt"
cp "$share/finance/report.txt" "$share/finance/report-copy.txt"
mv "$share/finance/report-copy.txt" "$share/finance/report-old.txt"
for i in 1 2 3; do sh -c "echo line $i >> '$share/finance/log.txt'"; done
rm "$share/finance/report-old.txt"
sleep 0.5
kill -INT "$wpid"; wait "$wpid" || true
echo "demo: what ward saw (action, path, process pid and executable):"
python3 - "$d/events.json" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    p = e["process"]
    extra = f' (from {e["ward"]["file"]["old_path"]})' if e["event"]["action"] == "rename" else ""
    print(f'  {e["event"]["action"]:<12} {e["file"]["path"]}{extra}  <- pid {p["pid"]} {p.get("executable", "?")}')
PY
echo "demo: the full ECS JSON of the first event:"
head -1 "$d/events.json" | python3 -m json.tool
