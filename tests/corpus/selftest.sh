#!/bin/bash
# selftest.sh: proves the corpus does what it claims, with no ward involved. On a fresh small
# data tree per case (under $CORPUS_TMP, default /tmp/corpus/selftest) it runs every ransim
# mode, both shell attacks and every work script, and checks: attacks turned exactly the
# claimed byte ranges into ciphertext (lib/check.py), logged every file before touching it,
# printed a sane JSON line, honour --limit, keep an accurate log under SIGKILL; work scripts
# exit 0 and leave every file valid for its type; mkdata is deterministic; manifest is exact.
# Closing line: "corpus: N passed, N failed". Uses $RANSIM if set, else build/helpers/ransim
# if up to date, else compiles tests/helpers/ransim.c into the scratch dir.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
tmp=${CORPUS_TMP:-/tmp/corpus/selftest}
export PYTHONDONTWRITEBYTECODE=1
check="python3 $here/lib/check.py"
passed=0 failed=0

ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }
t() { # t NAME CMD...: one case; output shown only on failure
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		ok "$name"
	else
		bad "$name"
		printf '%s\n' "$out" | tail -15 | sed 's/^/     /'
	fi
}

rm -rf "$tmp"
mkdir -p "$tmp"
ransim=${RANSIM:-}
if [ -z "$ransim" ]; then
	if [ -x "$repo/build/helpers/ransim" ] && [ "$repo/build/helpers/ransim" -nt "$repo/tests/helpers/ransim.c" ]; then
		# A copy: a concurrent `make` may be relinking the original mid-run.
		cp "$repo/build/helpers/ransim" "$tmp/ransim"
		ransim=$tmp/ransim
	else
		ransim=$tmp/ransim
		cc -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -pthread \
			"$repo/tests/helpers/ransim.c" -lcrypto -o "$ransim" || { echo "corpus: 0 passed, 1 failed"; exit 1; }
	fi
fi
echo "ransim: $ransim"

base=$tmp/base
fresh() { # fresh DIR: a copy of the base tree (sparse files stay sparse)
	rm -rf "$1"
	cp -a --sparse=always "$base" "$1"
}
randext() { LC_ALL=C tr -dc 'a-z0-9' </dev/urandom | head -c "$1" || true; }

# ---- mkdata and manifest ----
"$here/mkdata.sh" "$base" small 3 >/dev/null
t "mkdata: small tree built" test -d "$base/Finance"
"$here/mkdata.sh" "$tmp/base2" small 3 >/dev/null
"$here/mkdata.sh" "$tmp/base3" small 4 >/dev/null
"$here/manifest.sh" "$base" >"$tmp/m.base"
"$here/manifest.sh" "$tmp/base2" >"$tmp/m.base2"
"$here/manifest.sh" "$tmp/base3" >"$tmp/m.base3"
t "mkdata: same seed, same bytes" cmp "$tmp/m.base" "$tmp/m.base2"
t "mkdata: other seed, other bytes" bash -c "! cmp -s '$tmp/m.base' '$tmp/m.base3'"
kib=$(du -sk "$base" | cut -f1)
t "mkdata: small class under 30 MiB on disk ($((kib / 1024)) MiB)" test "$kib" -lt 30720
t "mkdata: sparse VM disks" bash -c "[ \$(du -k --apparent-size -s '$base/vm' | cut -f1) -gt \$((4 * \$(du -ks '$base/vm' | cut -f1))) ]"
t "mkdata: every file parses as its type" $check tree "$base"
t "mkdata: formats present" bash -c "cd '$base' && for e in txt csv json pdf docx xlsx png jpg db bin qcow2 vmdk log; do
	[ -n \"\$(find . -name \"*.\$e\" -print -quit)\" ] || { echo missing \$e; exit 1; }; done"
entries=$(find "$base" -mindepth 1 -printf x | wc -c)
t "manifest: one line per entry, odd names included ($entries)" \
	bash -c "[ \$(wc -l <'$tmp/m.base') -eq $entries ] && grep -q 'line\\\\x0abreak' '$tmp/m.base' && grep -q 'caf\\\\xe9' '$tmp/m.base'"
rm -rf "$tmp/base2" "$tmp/base3"
fresh "$tmp/w"
printf 'x' | dd of="$tmp/w/Finance/ledger.db" bs=1 seek=5000 conv=notrunc status=none
chmod 600 "$tmp/w/Shared/odd names/"caf*
t "manifest: sees a 1-byte change and a mode change" \
	bash -c "[ \$(diff '$tmp/m.base' <('$here/manifest.sh' '$tmp/w') | grep -c '^>') -eq 2 ]"

# ---- ransim modes ----
json_ok() { # json_ok OUT LOG MODE: the closing JSON line agrees with the log
	python3 - "$@" <<'EOF'
import json, sys, time
out, log, mode = sys.argv[1:4]
j = json.loads(open(out).read().strip().splitlines()[-1])
enc = sum(1 for l in open(log, "rb") if l.split(b" ")[2:3] == [b"enc"])
assert j["mode"] == mode, j
assert j["files_modified"] == enc, (j["files_modified"], enc)
assert enc == 0 or 0 < j["first_write_ns"] <= time.time_ns(), j
assert isinstance(j["pid"], int) and j.get("errors", 0) == 0, j
EOF
}

attack_case() { # attack_case MODE EXTRA-ARGS...
	local mode=$1 ext dir=$tmp/w log=$tmp/$1.log
	shift
	ext=$(randext 6)
	fresh "$dir"
	rm -f "$log"
	if ! "$ransim" --mode "$mode" --root "$dir" --log "$log" --ext "$ext" "$@" >"$tmp/out.json"; then
		bad "ransim $mode: exit status"
		return
	fi
	t "ransim $mode: JSON line matches the log" json_ok "$tmp/out.json" "$log" "$mode"
	t "ransim $mode: claimed pattern, real ciphertext, rest untouched" \
		$check attack "$mode" "$base" "$dir" "$log" "$ext"
}
for m in babuk-esxi babuk-nas wannacry header lockfile esxiargs base64 fork-per-file threads mmap otrunc; do
	attack_case "$m"
done
attack_case slow --delay-ms 20 --limit 6
t "ransim slow: stopped at --limit 6" bash -c "[ \$(grep -c ' enc ' '$tmp/slow.log') -eq 6 ]"
attack_case threads --threads 8 --cipher chacha20

# Checker sanity: a wrong pattern must be reported (esxiargs is not header-only).
fresh "$tmp/w"
"$ransim" --mode esxiargs --root "$tmp/w" --log "$tmp/sanity.log" --ext qq >/dev/null
t "check: esxiargs result passes as esxiargs" $check attack esxiargs "$base" "$tmp/w" "$tmp/sanity.log" qq
t "check: esxiargs result fails as header-only" bash -c "! $check attack header '$base' '$tmp/w' '$tmp/sanity.log' qq >/dev/null"

# --limit: exactly N files change.
fresh "$tmp/w"
"$ransim" --mode babuk-esxi --root "$tmp/w" --log "$tmp/limit.log" --limit 3 >"$tmp/out.json"
changed=$(diff "$tmp/m.base" <("$here/manifest.sh" "$tmp/w") | grep -c '^<')
t "ransim --limit 3: 3 logged, 3 changed ($changed)" bash -c "[ \$(grep -c ' enc ' '$tmp/limit.log') -eq 3 ] && [ $changed -eq 3 ]"

# Same seed and key, same ciphertext: the output is a function of the options.
for i in 1 2; do
	fresh "$tmp/k$i"
	"$ransim" --mode header --root "$tmp/k$i" --seed 42 --key "$(printf '%064d' 7)" >/dev/null
	(cd "$tmp/k$i" && "$here/manifest.sh" .) >"$tmp/m.k$i"
done
t "ransim: --seed/--key reproducible" cmp "$tmp/m.k1" "$tmp/m.k2"
rm -rf "$tmp/k1" "$tmp/k2"

# Names vary per run: no fixed extension or note name to key on.
fresh "$tmp/w"
"$ransim" --mode notes --root "$tmp/w" --log "$tmp/n1.log" --seed 1 >"$tmp/n1.json"
"$ransim" --mode notes --root "$tmp/w" --log "$tmp/n2.log" --seed 2 >"$tmp/n2.json"
t "ransim notes: one note per directory" $check notes "$tmp/w" "$tmp/n1.log"
t "ransim notes: name, text and extension differ per run" bash -c "
	a=\$($check notes '$tmp/w' '$tmp/n1.log' | tail -1); b=\$($check notes '$tmp/w' '$tmp/n2.log' | tail -1)
	[ \"\${a#NOTE }\" != \"\${b#NOTE }\" ] && [ \"\${a##* }\" != \"\${b##* }\" ] &&
	[ \"\$(grep -o '\"ext\":\"[^\"]*\"' '$tmp/n1.json')\" != \"\$(grep -o '\"ext\":\"[^\"]*\"' '$tmp/n2.json')\" ]"
attack_case header --notes
t "ransim header --notes: notes dropped too" $check notes "$tmp/w" "$tmp/header.log"

# SIGKILL mid-run: the log still accounts for every changed file (a file is logged just
# before its first write, so at most one logged file may be untouched).
fresh "$tmp/w"
rm -f "$tmp/kill.log"
"$ransim" --mode slow --delay-ms 250 --root "$tmp/w" --log "$tmp/kill.log" >/dev/null &
pid=$!
sleep 1.3
kill -KILL "$pid"
wait "$pid" 2>/dev/null
logged=$(grep -c ' enc ' "$tmp/kill.log")
changed=$(diff "$tmp/m.base" <("$here/manifest.sh" "$tmp/w") | grep '^<' | grep -c '^< f')
t "ransim SIGKILL: log ($logged) covers changed files ($changed)" \
	bash -c "[ $logged -ge 1 ] && [ $changed -le $logged ] && [ $logged -le \$(($changed + 1)) ]"

# SIGTERM: stops cleanly and still prints its JSON line.
fresh "$tmp/w"
"$ransim" --mode slow --delay-ms 200 --root "$tmp/w" >"$tmp/term.json" &
pid=$!
sleep 0.7
kill -TERM "$pid"
wait "$pid"
t "ransim SIGTERM: JSON line with stopped=true" grep -q '"stopped":true' "$tmp/term.json"

# ---- shell attacks ----
shell_attack() { # shell_attack SCRIPT EXT
	local name=$1 ext=$2 log=$tmp/$1.log
	fresh "$tmp/w"
	rm -f "$log"
	# LIMIT keeps the run short (a few processes per file); the check covers the rest too.
	if ! LIMIT=80 EXT=$ext PASS=hunter2 "$here/attacks/$name.sh" "$tmp/w" "$log" >"$tmp/out.json"; then
		bad "$name: exit status"
		return
	fi
	t "$name: JSON line matches the log" json_ok "$tmp/out.json" "$log" "$name"
	t "$name: each file replaced by ciphertext, others untouched" $check attack "$name" "$base" "$tmp/w" "$log" "$ext"
}
shell_attack openssl-loop "$(randext 5)"
first_logged() { grep -v '\\' "$1" | sed -n 's/^[0-9]* [0-9]* enc //p' | head -1; }
f=$(first_logged "$tmp/openssl-loop.log")
t "openssl-loop: decrypts back to the original" bash -c \
	"openssl enc -d -aes-256-cbc -pbkdf2 -pass pass:hunter2 -in '$f'.* | cmp - '$base/${f#"$tmp/w/"}'"
shell_attack 7z-qlocker 7z
f=$(first_logged "$tmp/7z-qlocker.log").7z
t "7z-qlocker: cannot even be listed without the password (-mhe)" bash -c "! 7z l -pwrong '$f' >/dev/null 2>&1"
t "7z-qlocker: extracts with the password" bash -c "7z t -phunter2 '$f' | grep -q 'Everything is Ok'"
fresh "$tmp/w"
LIMIT=2 "$here/attacks/openssl-loop.sh" "$tmp/w" "$tmp/ol2.log" >/dev/null
t "openssl-loop: LIMIT=2 honoured" bash -c "[ \$(grep -c ' enc ' '$tmp/ol2.log') -eq 2 ]"

# ---- work ----
for s in "$here"/work/*.sh; do
	name=$(basename "$s" .sh)
	fresh "$tmp/w"
	if out=$("$s" "$tmp/w" 2>&1); then
		if [[ $(printf '%s\n' "$out" | tail -1) =~ [1-9][0-9]*\ [a-z] ]]; then
			ok "work $name: exit 0 ($(printf '%s\n' "$out" | tail -1))"
		else
			bad "work $name: did nothing: $(printf '%s\n' "$out" | tail -1)"
		fi
	else
		bad "work $name: exit status"
		printf '%s\n' "$out" | tail -10 | sed 's/^/     /'
	fi
	t "work $name: tree consistent afterwards" $check tree "$tmp/w"
done
# Specific effects the scripts claim.
fresh "$tmp/w" && "$here/work/rsync-copy.sh" "$tmp/w" >/dev/null
t "work rsync-copy: tree unchanged after copy + rm -rf" cmp "$tmp/m.base" <("$here/manifest.sh" "$tmp/w")
fresh "$tmp/w" && "$here/work/logrotate-gzip.sh" "$tmp/w" >/dev/null
t "work logrotate-gzip: each .log now has a .log.1.gz" bash -c \
	"cd '$tmp/w' && for f in IT/logs/*.log; do [ -s \"\$f.1.gz\" ] && [ ! -s \"\$f\" ] || exit 1; done"

rm -rf "$tmp/w"
echo "corpus: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
