#!/bin/bash
# dd-head.sh ROOT LOG: overwrite the first MiB of every file (all of it if smaller) with
# /dev/urandom in place: no rename, no new file. DESTROYS ROOT's files.
set -u
root=$1 logf=$2
exec {log}>>"$logf"
find "$root" -type f -size +0 -printf '%s %p\0' | while IFS= read -r -d '' line; do
	size=${line%% *} f=${line#* }
	[ "$size" -gt 1048576 ] && size=1048576
	t=${EPOCHREALTIME/./}000
	p=${f//\\/\\\\}
	printf '%s %s enc %s\n' "$t" "$$" "${p//$'\n'/\\n}" >&$log
	dd if=/dev/urandom of="$f" bs="$size" count=1 iflag=fullblock conv=notrunc status=none
done
echo '{"mode":"dd-head"}'
