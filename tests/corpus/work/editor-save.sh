#!/bin/bash
# editor-save.sh ROOT: how editors save. vim (backupcopy=no): rename FILE to FILE~, write a
# new FILE, delete FILE~. gedit/VS Code: write .FILE.XXXXXX next to it, rename over FILE.
# LibreOffice: create .~lock.FILE#, write a temp document in the folder, rename it over the
# original, remove the lock. Many renames and replaced files, all legitimate.
set -euo pipefail
. "$(dirname "$0")/../lib/work-common.sh"
work_init "$@"
n=0
while IFS= read -r -d '' f; do
	d=$(dirname -- "$f") b=$(basename -- "$f")
	case $((n % 2)) in
	0) # vim
		mv -- "$f" "$f~"
		{ cat -- "$f~"; echo "edited in vim"; } >"$f"
		chmod --reference="$f~" -- "$f"
		rm -f -- "$f~" ;;
	1) # gedit / VS Code atomic save
		t=$(mktemp "$d/.$b.XXXXXX")
		{ cat -- "$f"; echo "edited in gedit"; } >"$t"
		chmod --reference="$f" -- "$t"
		mv -f -- "$t" "$f" ;;
	esac
	n=$((n + 1))
done < <(work_find '*.txt' '*.md' | head -z -n 40)
m=0
x=$(mktemp -d /tmp/corpus-lo.XXXXXX)
trap 'rm -rf "$x"' EXIT
while IFS= read -r -d '' f; do
	d=$(dirname -- "$f") b=$(basename -- "$f")
	lock="$d/.~lock.$b#"
	printf 'Corpus User,corpus,host,%s,file:///%s;\n' "$(date '+%d.%m.%Y %H:%M')" "$b" >"$lock"
	rm -rf "${x:?}"/* && unzip -q -d "$x" -- "$f"
	t="$d/lu$$-$m.tmp"   # LibreOffice writes the whole document anew in the folder ...
	(cd "$x" && zip -q -X -r "$t" '[Content_Types].xml' . -x '[Content_Types].xml')
	chmod --reference="$f" -- "$t"
	mv -f -- "$t" "$f"   # ... renames it over the original, then drops the lock
	rm -f -- "$lock"
	m=$((m + 1))
done < <(work_find '*.docx' '*.xlsx' | head -z -n 10)
echo "editor-save: saved $n text files and $m documents"
