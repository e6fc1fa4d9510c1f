#!/bin/bash
# manifest.sh ROOT: print a recursive manifest of ROOT, one line per entry, sorted by the raw
# bytes of the path, so two trees can be compared byte for byte with diff/cmp:
#   TYPE MODE SIZE SHA256 PATH
# TYPE f (regular: SHA-256 of content), d (dir), l (symlink: SHA-256 of the target, SIZE is
# its length), o (other). PATH is relative to ROOT; bytes outside printable ASCII (newline,
# tab, non-UTF-8, any UTF-8) are written \xHH and a backslash as \\, so every entry is one
# line. Symlinks are not followed. ROOT itself is not listed. mtimes are left out on purpose:
# the harness compares content.
set -euo pipefail
if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 ROOT" >&2
	exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
export PYTHONDONTWRITEBYTECODE=1
exec python3 "$here/lib/manifest.py" "$1"
