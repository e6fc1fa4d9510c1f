# Shared by the shell-driven attacks: per-run names, the log line and the closing JSON line,
# in the same formats as tests/helpers/ransim.c so one harness reads both.
#   log line:  <realtime_ns> <pid> enc <path>   ('\' written "\\", newline "\n")
#   last line: {"mode":..,"files_modified":N,"first_write_ns":N,"pid":N,...} on stdout
# Environment: EXT (default: random per run), PASS (default: random), LIMIT (files, 0 = all),
# DELAY_MS (pause between files).

rand_word() { # rand_word LEN
	local w
	w=$(LC_ALL=C tr -dc 'a-z0-9' </dev/urandom | head -c "$1") || true
	printf '%s' "$w"
}

attack_init() { # attack_init MODE ROOT LOG
	mode=$1 root=$2 logf=$3
	if [ ! -d "$root" ] || [ -z "$logf" ]; then
		echo "usage: $0 ROOT LOG" >&2
		exit 2
	fi
	ext=${EXT:-$(rand_word $((4 + RANDOM % 4)))}
	pass=${PASS:-$(rand_word 24)}
	limit=${LIMIT:-0}
	delay_ms=${DELAY_MS:-0}
	modified=0 first_ns=0 errors=0
	# Opened once, before the attack, so a SIGKILL loses nothing already written.
	exec {logfd}>>"$logf"
	trap attack_done EXIT
	trap 'exit 143' TERM INT
}

attack_log() { # attack_log PATH: called before the first change to PATH
	local ns p=$1
	ns=${EPOCHREALTIME/./}000 # bash 5: microseconds, no fork per file
	[ "$first_ns" = 0 ] && first_ns=$ns
	p=${p//\\/\\\\}
	p=${p//$'\n'/\\n}
	printf '%s %s enc %s\n' "$ns" "$$" "$p" >&"$logfd"
	modified=$((modified + 1))
}

attack_more() { # true while --limit allows another file
	[ "$limit" = 0 ] || [ "$modified" -lt "$limit" ]
}

attack_pause() {
	if [ "$delay_ms" != 0 ]; then
		sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
	fi
}

attack_done() {
	printf '{"mode":"%s","files_modified":%d,"first_write_ns":%s,"pid":%d,"errors":%d,"ext":"%s"}\n' \
		"$mode" "$modified" "$first_ns" "$$" "$errors" "$ext"
}

# Regular, non-empty files under ROOT, NUL-separated, skipping our own output.
attack_files() {
	find "$root" -type f -size +0 ! -name "*.$ext" -print0
}
