#!/bin/bash
# mkdata.sh ROOT [SIZE_CLASS] [SEED]: build the corpus data tree, a small company file share.
#   SIZE_CLASS  small (~15 MiB on disk, for tests) or default (~200 MiB on disk; VM disks are
#               2 GiB sparse files).  SEED  any integer (default 1, or $MKDATA_SEED).
# Nested department folders with text, CSV, JSON, PDF, docx/xlsx (real zip containers),
# PNG, baseline JPEG, PPM, SQLite databases, MiB-sized binaries, sparse VM disks (qcow2
# header / raw MBR + .vmdk descriptor), already-compressed archives, a symlink and odd
# file names (spaces, newline, backslash, non-UTF-8 bytes). Same seed + class = same bytes
# (compare with manifest.sh). ROOT must be absent or empty.
set -euo pipefail
if [ $# -lt 1 ] || [ $# -gt 3 ]; then
	echo "usage: $0 ROOT [small|default] [SEED]" >&2
	exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
export PYTHONDONTWRITEBYTECODE=1
exec python3 "$here/lib/mkdata.py" "$1" "${2:-default}" "${3:-${MKDATA_SEED:-1}}"
