#!/bin/bash
# gpg-encrypt.sh ROOT: a user encrypts one document to send it: `gpg -c` (symmetric AES256,
# batch passphrase) writes FILE.gpg next to it; the original stays. One legitimate
# encryption must not look like an attack. Needs gnupg.
set -euo pipefail
. "$(dirname "$0")/../lib/work-common.sh"
work_init "$@"
f='' best=-1
while IFS= read -r -d '' c; do # the largest document
	s=$(stat -c %s -- "$c")
	if [ "$s" -gt "$best" ]; then
		best=$s f=$c
	fi
done < <(work_find '*.pdf' '*.docx' '*.xlsx')
[ -n "$f" ] || { echo "gpg-encrypt: nothing to encrypt"; exit 0; }
home=$(mktemp -d /tmp/corpus-gnupg.XXXXXX)
trap 'rm -rf "$home"' EXIT
gpg --homedir "$home" --batch --yes --quiet --pinentry-mode loopback --passphrase "correct horse" \
	--symmetric --cipher-algo AES256 -o "$f.gpg" -- "$f"
gpg --homedir "$home" --batch --quiet --pinentry-mode loopback --passphrase "correct horse" \
	--decrypt -- "$f.gpg" 2>/dev/null | cmp -s - "$f"
echo "gpg-encrypt: encrypted 1 file ($(basename "$f"))"
