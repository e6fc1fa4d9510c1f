#!/bin/bash
# archive-tree.sh ROOT: an admin's ad-hoc backup: tar, tar.gz, zip and zstd archives of
# department folders written into ROOT/Backups, each tested after writing.
set -euo pipefail
. "$(dirname "$0")/../lib/work-common.sh"
work_init "$@"
mkdir -p "$root/Backups"
stamp=$(date +%Y%m%d-%H%M%S)
cd "$root"
n=0
for d in $(find . -mindepth 1 -maxdepth 1 -type d ! -name Backups ! -name vm ! -name '.*' -printf '%f\n' | sort | head -4); do
	tar -cf "Backups/$d-$stamp.tar" -- "$d"
	tar -czf "Backups/$d-$stamp.tgz" -- "$d"
	zip -qr "Backups/$d-$stamp.zip" -- "$d"
	zstd -q -T1 --rm -- "Backups/$d-$stamp.tar"
	zstd -q -t -- "Backups/$d-$stamp.tar.zst"
	gzip -t -- "Backups/$d-$stamp.tgz"
	unzip -tq -- "Backups/$d-$stamp.zip" >/dev/null
	n=$((n + 1))
done
echo "archive-tree: archived $n folders"
