#!/bin/bash
# image-reencode.sh ROOT: a photo tool's batch "auto-level": decode every PNG, brighten it,
# re-encode with a different zlib level and write it back in place (compressed bytes over
# compressed bytes); convert every PPM to PNG alongside it.
set -euo pipefail
. "$(dirname "$0")/../lib/work-common.sh"
work_init "$@"
export PYTHONDONTWRITEBYTECODE=1
work_find '*.png' '*.ppm' | python3 -c '
import os, sys
sys.path.insert(0, sys.argv[1])
import formats
n = 0
for p in sys.stdin.buffer.read().split(b"\0"):
    if not p:
        continue
    with open(p, "rb") as f:
        data = f.read()
    if p.endswith(b".ppm"):
        w, h, rows = formats.ppm_decode(data)
        out = p[:-4] + b".png"
    else:
        w, h, ch, rows = formats.png_decode(data)
        if ch != 3:
            continue
        out = p
    rows = [bytes(min(255, v + 12) for v in r) for r in rows]
    with open(out, "wb") as f:  # in place: truncate and rewrite, as most tools do
        f.write(formats.png_encode(w, h, rows, level=9))
    n += 1
print("image-reencode: re-encoded %d images" % n)
' "$(cd "$(dirname "$0")/../lib" && pwd)"
