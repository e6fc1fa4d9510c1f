#!/bin/bash
# rsync-copy.sh ROOT: copy department folders with rsync -a and with cp -r, check the copies,
# then rm -rf them: a migration rehearsal, lots of creates followed by lots of deletes.
set -euo pipefail
. "$(dirname "$0")/../lib/work-common.sh"
work_init "$@"
cd "$root"
n=0
for d in $(find . -mindepth 1 -maxdepth 1 -type d ! -name vm ! -name '.*' ! -name '*.copy-*' -printf '%f\n' | sort); do
	rsync -a -- "$d/" "$d.copy-rsync/"
	cp -r -- "$d" "$d.copy-cp"
	diff -r -- "$d" "$d.copy-rsync" >/dev/null
	diff -r -- "$d" "$d.copy-cp" >/dev/null
	rm -rf -- "$d.copy-rsync" "$d.copy-cp"
	n=$((n + 1))
done
echo "rsync-copy: copied and removed $n folders"
