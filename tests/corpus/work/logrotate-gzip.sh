#!/bin/bash
# logrotate-gzip.sh ROOT: what logrotate's daily run does to every *.log: shift the older
# generations, move the live file to .1, recreate it empty, compress .1 with gzip (gzip
# writes X.1.gz and unlinks X.1: a new high-entropy file per deleted original, the same
# shape as WannaCry, and it must not alert).
set -euo pipefail
. "$(dirname "$0")/../lib/work-common.sh"
work_init "$@"
n=0
while IFS= read -r -d '' f; do
	for i in 3 2 1; do
		[ -e "$f.$i.gz" ] && mv -f -- "$f.$i.gz" "$f.$((i + 1)).gz"
	done
	mv -- "$f" "$f.1"
	: >"$f"
	chmod --reference="$f.1" -- "$f"
	gzip -9 -- "$f.1"
	n=$((n + 1))
done < <(work_find '*.log')
echo "logrotate-gzip: rotated $n logs"
