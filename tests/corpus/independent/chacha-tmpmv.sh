#!/bin/bash
# chacha-tmpmv.sh ROOT LOG: per file, `openssl enc -chacha20` into a temp file beside it, then
# `mv -f` over the original, so every name is kept. DESTROYS ROOT's files.
set -u
root=$1 logf=$2
pass=$(head -c 18 /dev/urandom | base64)
exec {log}>>"$logf"
n=0
find "$root" -type f -size +0 -print0 | sort -z | while IFS= read -r -d '' f; do
	t=${EPOCHREALTIME/./}000
	p=${f//\\/\\\\}
	printf '%s %s enc %s\n' "$t" "$$" "${p//$'\n'/\\n}" >&$log
	tmp="$f.$RANDOM$RANDOM"
	openssl enc -chacha20 -pbkdf2 -iter 1000 -pass "pass:$pass" -in "$f" -out "$tmp" && mv -f -- "$tmp" "$f"
	n=$((n + 1))
done
echo '{"mode":"chacha-tmpmv"}'
