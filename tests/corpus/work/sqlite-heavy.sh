#!/bin/bash
# sqlite-heavy.sh ROOT: an application hammering its SQLite database: batched inserts,
# hundreds of single-statement transactions (a journal file created and deleted for each),
# updates, deletes, then VACUUM (the whole file rewritten), on every *.db in the tree.
set -euo pipefail
. "$(dirname "$0")/../lib/work-common.sh"
work_init "$@"
dbs=()
while IFS= read -r -d '' f; do dbs+=("$f"); done < <(work_find '*.db' '*.sqlite')
[ ${#dbs[@]} -gt 0 ] || dbs=("$root/app.db")
for db in "${dbs[@]}"; do
	sqlite3 "$db" "CREATE TABLE IF NOT EXISTS work_log (id INTEGER PRIMARY KEY, t INTEGER, who TEXT, amount REAL, note TEXT);"
	{
		echo "BEGIN;"
		seq 1 20000 | awk '{ printf "INSERT INTO work_log (t, who, amount, note) VALUES (%d, \"user%d\", %.2f, \"batch row %d of the nightly import\");\n", 1700000000 + $1, $1 % 97, ($1 * 7919 % 100000) / 100, $1 }'
		echo "COMMIT;"
		seq 1 300 | awk '{ printf "INSERT INTO work_log (t, who, amount, note) VALUES (%d, \"web\", %d, \"single\");\n", $1, $1 }'
		echo "BEGIN;"
		seq 1 2000 | awk '{ printf "UPDATE work_log SET amount = amount * 1.01, note = note || \" (adj)\" WHERE id = %d;\n", $1 * 7 }'
		echo "DELETE FROM work_log WHERE id % 13 = 0;"
		echo "COMMIT;"
		echo "VACUUM;"
	} | sqlite3 "$db"
	[ "$(sqlite3 "$db" 'PRAGMA integrity_check;')" = ok ]
done
echo "sqlite-heavy: ${#dbs[@]} databases"
