#!/bin/bash
# sed-inplace.sh ROOT: a bulk search-and-replace with `sed -i` over every text, Markdown,
# CSV and C file (sed writes a temp file next to each and renames it over the original).
set -euo pipefail
. "$(dirname "$0")/../lib/work-common.sh"
work_init "$@"
n=0
while IFS= read -r -d '' f; do
	sed -i -e 's/\bbudget\b/Budget/g' -e 's/^2023-/FY23-/' -e 's/\binvoice\b/invoice (rev. B)/g' -- "$f"
	n=$((n + 1))
done < <(work_find '*.txt' '*.md' '*.csv' '*.c')
echo "sed-inplace: edited $n files"
