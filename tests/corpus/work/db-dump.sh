#!/bin/bash
# db-dump.sh ROOT: the nightly database dump: `sqlite3 DB .dump` to Backups/NAME-DATE.sql,
# then gzip it (the .sql is replaced by .sql.gz).
set -euo pipefail
. "$(dirname "$0")/../lib/work-common.sh"
work_init "$@"
mkdir -p "$root/Backups"
n=0
while IFS= read -r -d '' db; do
	out="$root/Backups/$(basename "${db%.*}")-$(date +%Y%m%d-%H%M%S)-$n.sql"
	sqlite3 "$db" .dump >"$out"
	gzip -9 -- "$out"
	gzip -t -- "$out.gz"
	n=$((n + 1))
done < <(work_find '*.db' '*.sqlite')
echo "db-dump: dumped $n databases"
