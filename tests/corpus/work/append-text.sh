#!/bin/bash
# append-text.sh ROOT: appends: new rows at the end of every CSV, a line at the end of every
# text file and log (O_APPEND writes, the most common modification on a share).
set -euo pipefail
. "$(dirname "$0")/../lib/work-common.sh"
work_init "$@"
n=0
while IFS= read -r -d '' f; do
	case $f in
	*.csv) for i in 1 2 3; do printf '2024-01-%02d,Appended,item,%d,1.00,%d.00\n' "$i" "$i" "$i" >>"$f"; done ;;
	*) printf '%s appended by %s\n' "$(date -Is)" "${USER:-user}" >>"$f" ;;
	esac
	n=$((n + 1))
done < <(work_find '*.csv' '*.txt' '*.log' '*.md')
echo "append-text: appended to $n files"
