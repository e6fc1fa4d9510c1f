#!/bin/bash
# office-edit.sh ROOT: edit Word and Excel files the way a script or a plain zip tool does:
# unzip, change the XML part, and update that member of the existing archive in place with
# `zip` (which itself writes a temp archive and renames it over the original).
set -euo pipefail
. "$(dirname "$0")/../lib/work-common.sh"
work_init "$@"
tmp=$(mktemp -d /tmp/corpus-office.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
n=0
while IFS= read -r -d '' f; do
	rm -rf "${tmp:?}"/*
	unzip -q -d "$tmp" -- "$f"
	case $f in
	*.docx)
		part=word/document.xml
		sed -i 's|<w:body>|<w:body><w:p><w:r><w:t>Reviewed and approved.</w:t></w:r></w:p>|' "$tmp/$part" ;;
	*.xlsx)
		part=xl/worksheets/sheet1.xml
		sed -i 's|<sheetData>|<sheetData><row r="1000"><c r="A1000" t="inlineStr"><is><t>Checked</t></is></c></row>|' "$tmp/$part" ;;
	esac
	(cd "$tmp" && zip -q -X "$f" "$part")
	n=$((n + 1))
done < <(work_find '*.docx' '*.xlsx')
echo "office-edit: edited $n documents"
