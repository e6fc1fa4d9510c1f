#!/bin/bash
# test_package.sh: the Debian package end to end on this machine, as root.
#
# Builds the package (scripts/mkdeb.sh), installs it with dpkg -i, checks the files and
# that `man ward` renders, then starts the service. systemd is not PID 1 on the test
# machines, so the unit's ExecStart= runs under the unit's own restrictions reproduced
# without systemd, read from the installed unit and its drop-ins:
#   ProtectSystem=strict, ProtectHome=read-only, ReadWritePaths=, StateDirectory= ...:
#       a private mount namespace (unshare -m) where every mount is remounted read-only
#       except /dev, /proc and the writable paths, which are bind-mounted on themselves;
#   PrivateTmp=, PrivateDevices=: tmpfs on /tmp and /var/tmp, a tmpfs /dev with the
#       usual device nodes;
#   ProtectKernelTunables/Modules/Logs=, ProtectControlGroups=: /proc/sys, /sys and the
#       cgroup tree read-only, /proc/kallsyms, /proc/kcore, /proc/kmsg and the module
#       tree hidden;
#   CapabilityBoundingSet=, NoNewPrivileges=: setpriv --bounding-set --no-new-privs;
#   MemoryDenyWriteExecute=: prctl(PR_SET_MDWE) (the kernel's own W^X lock, Linux 6.3);
#   SystemCallFilter=, RestrictAddressFamilies=, SystemCallArchitectures=: a seccomp
#       filter built with python3-seccomp from `systemd-analyze syscall-filter`;
#   LimitNOFILE=, LimitMEMLOCK=, OOMScoreAdjust=: setrlimit and oom_score_adj (a machine
#       whose root lacks CAP_SYS_RESOURCE keeps its hard limits: said in the output);
#   Type=notify, NotifyAccess=main, WatchdogSec=: a NOTIFY_SOCKET the test listens on
#       (READY=1 from the main pid, WATCHDOG=1 often enough, STOPPING=1 at SIGTERM);
#   StandardError=journal: JOURNAL_STREAM is set, so ward prefixes lines with <N>.
# Not reproduced (said in the output): the device cgroup of PrivateDevices=, LockPersonality=,
# RestrictRealtime=, Restart= and the watchdog's kill.
#
# The demo share is a loop-mounted ext4 owned by "nobody", made writable with a drop-in as
# the guide says; ransim attacks it as "nobody", so stopping it needs CAP_KILL, naming it
# CAP_SYS_PTRACE, canaries in it CAP_DAC_OVERRIDE and `ward restore` CAP_CHOWN/CAP_FOWNER.
# Alerts also go to syslog over UDP and metrics are served (RestrictAddressFamilies=).
# Then SIGHUP, SIGTERM, dpkg -r (configuration kept) and dpkg --purge (everything gone).
# The system is left as it was found: a ward package already installed or a ward already
# answering on /run/ward makes the test skip; /etc/ward, /var/lib/ward and /var/log/ward
# that exist without a package are moved aside and put back.
#
# Also checks the snippets of docs/guide.md (JSON, YAML, XML parse; ward.conf snippets with
# ward check-config; rsyslog snippets with rsyslogd -N1 and by running them: an alert line
# appended to a scratch alerts file must reach a TCP receiver of the test's as syslog).
# Closing line: "blackbox-package: N passed, N failed".
set -u
name=blackbox-package
repo=$(realpath "$(dirname "${BASH_SOURCE[0]}")/../..")
build=${WARD_BUILD:-$repo/build}
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
note() { echo "note $*"; }
check() { # check WHAT COMMAND...: passes when COMMAND succeeds
	local what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}
py=/usr/bin/python3
[ -x $py ] || py=python3

tmp='' mnt='' ward_pid='' listener_pid='' rsyslog_pid='' udp_pid='' installed=0 dropin='' dropin_dir_made=0 run_made=0
declare -a moved=()

cleanup() {
	set +e
	if [ -n "$ward_pid" ] && kill -0 "$ward_pid" 2>/dev/null; then
		kill -TERM "$ward_pid"
		for _ in $(seq 50); do kill -0 "$ward_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$ward_pid" 2>/dev/null
	fi
	[ -n "$listener_pid" ] && kill "$listener_pid" 2>/dev/null
	[ -n "$rsyslog_pid" ] && kill "$rsyslog_pid" 2>/dev/null
	[ -n "$udp_pid" ] && kill "$udp_pid" 2>/dev/null
	if [ "$installed" = 1 ] && dpkg-query -W -f='${Status}' ward 2>/dev/null | grep -qE "installed|config-files"; then
		dpkg --purge ward >/dev/null 2>&1
	fi
	[ -n "$dropin" ] && rm -f "$dropin"
	[ "$dropin_dir_made" = 1 ] && rmdir /etc/systemd/system/ward.service.d 2>/dev/null
	[ "$run_made" = 1 ] && rm -rf /run/ward
	if [ -n "$mnt" ]; then
		for _ in $(seq 20); do umount "$mnt" 2>/dev/null && break; mountpoint -q "$mnt" || break; sleep 0.2; done
		rmdir "$mnt" 2>/dev/null
	fi
	for d in "${moved[@]}"; do # put back what was there before the test
		rm -rf "$d"
		mv "$tmp/moved/$(echo "$d" | tr / _)" "$d"
	done
	[ -n "$tmp" ] && rm -rf "$tmp"
	echo "$name: $pass passed, $fail failed"
	[ "$fail" = 0 ] && exit 0 || exit 1
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if [ "$(id -u)" != 0 ]; then
	bad "runs as root (dpkg -i, mounts, fanotify)"
	exit 1
fi
tmp=$(mktemp -d /tmp/ward-pkgtest.XXXXXX)
chmod 0755 "$tmp" # ransim runs as nobody from here

# ---------------------------------------------------------------- the guide's snippets
# rsyslog_forwards SNIPPET WHAT: runs rsyslogd on the snippet, pointed at a scratch alerts
# file and a TCP receiver of the test's, appends an alert and checks it arrives as syslog.
rsyslog_forwards() {
	local d=$tmp/rsyslog port
	mkdir -p "$d"
	: >"$d/alerts.json"
	port=$($py -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	{
		echo "global(workDirectory=\"$d\")"
		sed -e "s|/var/lib/ward/alerts.json|$d/alerts.json|" -e 's|target="[^"]*"|target="127.0.0.1"|' \
			-e "s|port=\"[0-9]*\"|port=\"$port\"|" "$1"
	} >"$d/fwd.conf"
	timeout 20 $py -c '
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1)
c, _ = s.accept(); c.settimeout(10); buf = b""
while b"\n" not in buf:
    d = c.recv(4096)
    if not d: break
    buf += d
open(sys.argv[2], "wb").write(buf)' "$port" "$d/received" &
	local lp=$!
	sleep 0.3
	rsyslogd -n -f "$d/fwd.conf" -i "$d/rsyslogd.pid" >"$d/rsyslogd.log" 2>&1 &
	rsyslog_pid=$!
	sleep 1
	echo '{"@timestamp":"2026-11-25T12:17:56Z","event":{"kind":"alert"},"rule":{"name":"ward.ransomware.behaviour"}}' >>"$d/alerts.json"
	for _ in $(seq 50); do [ -s "$d/received" ] && break; sleep 0.2; done
	kill "$rsyslog_pid" "$lp" 2>/dev/null
	wait "$rsyslog_pid" 2>/dev/null
	rsyslog_pid=
	check "$what forwards an alert line as an RFC 5424 syslog record" \
		grep -qE '^<162>1 .* ward - - - \{"@timestamp".*ward.ransomware.behaviour' "$d/received"
}

check_snippets() {
	local guide=$repo/docs/guide.md
	if [ ! -f "$guide" ]; then
		bad "docs/guide.md exists"
		return
	fi
	# each fenced block whose language is one of these is written to its own file
	mkdir -p "$tmp/snip"
	$py - "$guide" "$tmp/snip" <<'EOF'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
n = 0
for m in re.finditer(r"^```(\w+)[^\n]*\n(.*?)^```", text, re.S | re.M):
    lang, body = m.group(1), m.group(2)
    if lang in ("yaml", "json", "xml", "ini", "rsyslog"):
        n += 1
        line = text.count("\n", 0, m.start()) + 1
        open(f"{sys.argv[2]}/{n:02d}-line{line}.{lang}", "w").write(body)
EOF
	local f what
	for f in "$tmp"/snip/*; do
		[ -e "$f" ] || { bad "docs/guide.md has configuration snippets"; return; }
		what="guide snippet $(basename "$f")"
		case "$f" in
		*.json)
			check "$what parses as JSON" $py -c 'import json,sys; json.load(open(sys.argv[1]))' "$f" ;;
		*.yaml)
			if $py -c 'import yaml' 2>/dev/null; then
				check "$what parses as YAML" $py -c 'import yaml,sys; yaml.safe_load(open(sys.argv[1]))' "$f"
			else
				note "$what: not checked (package python3-yaml missing)"
			fi ;;
		*.xml) # Wazuh files hold several top-level elements
			check "$what parses as XML" $py -c 'import sys,xml.etree.ElementTree as E; E.fromstring("<r>"+open(sys.argv[1]).read()+"</r>")' "$f" ;;
		*.ini)
			local out
			out=$("$build/ward" check-config --config "$f" 2>&1)
			# a snippet may watch nothing, or shares that do not exist here: only those complaints pass
			if [ $? = 0 ] || grep -qE "watch .*: No such file or directory|nothing to watch" <<<"$out"; then
				ok "$what accepted by ward check-config"
			else
				bad "$what accepted by ward check-config: $out"
			fi ;;
		*.rsyslog)
			if command -v rsyslogd >/dev/null; then
				# a drop-in for /etc/rsyslog.d: checked after the main configuration (which
				# sets the work directory), without the other drop-ins of this machine
				if [ -f /etc/rsyslog.conf ]; then
					grep -viE '^[[:space:]]*(\$IncludeConfig|include\()' /etc/rsyslog.conf >"$f.conf"
				else
					echo "global(workDirectory=\"$tmp\")" >"$f.conf"
				fi
				cat "$f" >>"$f.conf"
				check "$what accepted by rsyslogd -N1" \
					bash -c 'rsyslogd -N1 -f "$1" >"$1.log" 2>&1 || { cat "$1.log"; exit 1; }' _ "$f.conf"
				rsyslog_forwards "$f" "$what"
			else
				note "$what: not checked (package rsyslog missing)"
			fi ;;
		esac
	done
}
check_snippets

# ---------------------------------------------------------------- preconditions
if dpkg-query -W -f='${Status}' ward 2>/dev/null | grep -q "ok installed"; then
	note "skipped the package test: a ward package is already installed here"
	exit 0
fi
if [ -S /run/ward/ward.sock ] && "$build/ward" status >/dev/null 2>&1; then
	note "skipped the package test: a ward is already running on /run/ward/ward.sock"
	exit 0
fi

# ---------------------------------------------------------------- build
out=$(bash "$repo/scripts/mkdeb.sh" "$build" 2>&1)
rc=$?
deb=$(sed -n 's/^mkdeb: \(.*\.deb\)$/\1/p' <<<"$out")
if [ $rc != 0 ] || [ ! -f "$deb" ]; then
	bad "scripts/mkdeb.sh builds a package: $out"
	exit 1
fi
ok "scripts/mkdeb.sh builds $(basename "$deb")"
info=$(dpkg-deb --info "$deb")
contents=$(dpkg-deb --contents "$deb")
check "control: Package ward, Section admin" grep -q "^ Section: admin" <<<"$info"
depends=$(sed -n 's/^ Depends: //p' <<<"$info")
check "control: Depends lists the shared libraries (libc6, libbpf, libyara)" \
	bash -c '[[ "$1" == *libc6* && "$1" == *libbpf* && "$1" == *libyara* ]]' _ "$depends"
for p in ./usr/sbin/ward ./lib/systemd/system/ward.service ./etc/ward/ward.conf \
	./usr/share/man/man8/ward.8.gz ./usr/share/man/man5/ward.conf.5.gz ./usr/share/doc/ward/copyright; do
	check "package holds $p" grep -qE " $p\$" <<<"$contents"
done
check "every file in the package belongs to root:root" bash -c '! awk "\$2 != \"root/root\"" <<<"$1" | grep -q .' _ "$contents"
check "/etc/ward/ward.conf is a conffile" bash -c 'dpkg-deb --ctrl-tarfile "$1" | tar -xOf - ./conffiles | grep -qx /etc/ward/ward.conf' _ "$deb"
if command -v lintian >/dev/null; then
	note "lintian: $(lintian --no-tag-display-limit "$deb" 2>&1 | grep -c '^E:') error(s)"
fi

# ---------------------------------------------------------------- install
mkdir -p "$tmp/moved"
for d in /etc/ward /var/lib/ward /var/log/ward; do
	if [ -e "$d" ]; then
		mv "$d" "$tmp/moved/$(echo "$d" | tr / _)" && moved+=("$d")
		note "moved the existing $d aside for the test (put back at the end)"
	fi
done
out=$(dpkg -i "$deb" 2>&1)
rc=$?
installed=1
if [ $rc != 0 ]; then
	bad "dpkg -i installs the package: $out"
	exit 1
fi
ok "dpkg -i installs the package"
check "dpkg says ward is installed" bash -c 'dpkg-query -W -f="\${Status}" ward | grep -qx "install ok installed"'
check "/usr/sbin/ward is an executable owned by root" bash -c '[ -x /usr/sbin/ward ] && [ "$(stat -c %U:%a /usr/sbin/ward)" = root:755 ]'
check "/usr/sbin/ward is the built version" bash -c '[ "$(/usr/sbin/ward version)" = "$("$1"/ward version)" ]' _ "$build"
check "postinst made /var/lib/ward (mode 700)" bash -c '[ "$(stat -c %a /var/lib/ward)" = 700 ]'
check "the unit is in /lib/systemd/system" test -f /lib/systemd/system/ward.service
check "dpkg lists /etc/ward/ward.conf as a conffile" bash -c 'dpkg-query -W -f="\${Conffiles}" ward | grep -q "/etc/ward/ward.conf "'
check "the copyright file is in /usr/share/doc/ward" test -f /usr/share/doc/ward/copyright
check "the copyright file says ward is GPL-2.0-or-later (Files: * License: GPL-2+)" \
	bash -c 'grep -A2 "^Files: \*$" "$1" | grep -qx "License: GPL-2+"' _ /usr/share/doc/ward/copyright
# machine-readable copyright format: every short name used has its own License: paragraph
check "every licence the copyright file names has its text or pointer" bash -c '
	for l in $(sed -n "s/^License: //p" "$1" | sort -u); do
		awk -v l="$l" "/^\$/ {p = 1; next} p && \$0 == \"License: \" l {f = 1} {p = 0} END {exit !f}" "$1" || exit 1
	done' _ /usr/share/doc/ward/copyright
out=$(/usr/sbin/ward check-config --config /etc/ward/ward.conf 2>&1)
check "the default config parses and asks for something to watch" grep -q "nothing to watch" <<<"$out"

# ---------------------------------------------------------------- manuals
if command -v man >/dev/null; then
	check "man ward renders (NAME section)" bash -c 'MANWIDTH=80 man -P cat ward 2>/dev/null | grep -q "^NAME"'
	check "man ward states the licence" bash -c 'MANWIDTH=80 man -P cat ward 2>/dev/null | grep -A3 "^LICENSE" | grep -q "GPL-2.0-or-later"'
	check "man ward.conf renders (NAME section)" bash -c 'MANWIDTH=80 man -P cat 5 ward.conf 2>/dev/null | grep -q "^NAME"'
else
	note "man not checked (package man-db missing)"
fi
if command -v groff >/dev/null; then
	for p in "$repo/docs/man/ward.8" "$repo/docs/man/ward.conf.5"; do
		w=$(groff -man -Tutf8 -ww -z "$p" 2>&1)
		check "groff -ww: no warnings in $(basename "$p")${w:+: $w}" test -z "$w"
	done
else
	note "groff warnings not checked (package groff-base missing)"
fi

# ---------------------------------------------------------------- a share to protect
img=$tmp/img
truncate -s 128M "$img" && mkfs.ext4 -q -F "$img" || { bad "mkfs.ext4 of the demo image"; exit 1; }
# not under /tmp: the unit's PrivateTmp= would hide it from ward
mkdir -p /mnt
mnt=$(mktemp -d /mnt/ward-pkgtest.XXXXXX)
mount -o loop "$img" "$mnt" || { bad "loop-mount the demo image"; exit 1; }
share=$mnt/share
mkdir "$share"
for i in $(seq 1 40); do
	{ printf '%%PDF-1.4\n'; for _ in $(seq 200); do printf 'quarterly report %d, page text and figures\n' "$i"; done; } >"$share/report$i.pdf"
	head -c 6000 "$repo/README.md" >"$share/notes$i.txt"
done
chown -R nobody:nogroup "$share"
chmod 0700 "$share"
(cd "$share" && md5sum -- * >"$tmp/before.md5")
# what the guide tells the administrator to do, with alerts to syslog over UDP and the
# metrics endpoint: the unit's RestrictAddressFamilies= must let both through
freeport() { $py -c 'import socket, sys; s = socket.socket(type=int(sys.argv[1])); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' "$1"; }
syslog_port=$(freeport 2) metrics_port=$(freeport 1)
printf '[ward]\nwatch = %s\n[output]\nsyslog = udp:127.0.0.1:%s\nmetrics = 127.0.0.1:%s\n' \
	"$share" "$syslog_port" "$metrics_port" >/etc/ward/ward.conf
$py -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", int(sys.argv[1])))
out = open(sys.argv[2], "ab", buffering=0)
while True:
    out.write(s.recv(70000) + b"\n")' "$syslog_port" "$tmp/syslog.got" &
udp_pid=$!
check "ward check-config accepts the share" /usr/sbin/ward check-config --config /etc/ward/ward.conf
[ -d /etc/systemd/system/ward.service.d ] || { mkdir -p /etc/systemd/system/ward.service.d && dropin_dir_made=1; }
dropin=/etc/systemd/system/ward.service.d/zz-pkgtest.conf
printf '[Service]\nReadWritePaths=%s\n' "$share" >"$dropin"

# ---------------------------------------------------------------- the unit
unit=/lib/systemd/system/ward.service
# unit_get KEY: the value systemd would use, from the unit and its drop-ins in order; list
# settings accumulate and an empty assignment resets them, as in systemd.
unit_get() {
	local f v acc='' list=$2
	for f in "$unit" /etc/systemd/system/ward.service.d/*.conf; do
		[ -f "$f" ] || continue
		while IFS= read -r v; do
			if [ "$list" = list ]; then
				if [ -z "$v" ]; then acc=; else acc="${acc:+$acc }$v"; fi
			else
				acc=$v
			fi
		done < <(sed -n "s/^$1=//p" "$f")
	done
	printf '%s' "$acc"
}
check "unit: Type=notify" test "$(unit_get Type one)" = notify
check "unit: NotifyAccess=main" test "$(unit_get NotifyAccess one)" = main
check "unit: ProtectSystem=strict" test "$(unit_get ProtectSystem one)" = strict
check "unit: NoNewPrivileges=yes" test "$(unit_get NoNewPrivileges one)" = yes
check "unit: PrivateTmp=yes" test "$(unit_get PrivateTmp one)" = yes
check "unit: Restart=on-failure" test "$(unit_get Restart one)" = on-failure
if command -v systemd-analyze >/dev/null; then
	out=$(systemd-analyze verify ward.service 2>&1 | grep -i "ward")
	check "systemd-analyze verify ward.service: no complaint${out:+: $out}" test -z "$out"
	sec=$(systemd-analyze security --offline=yes "$unit" 2>/dev/null | tail -1)
	[ -n "$sec" ] && note "systemd-analyze security --offline: ${sec#→ }"
else
	note "systemd-analyze verify not run (package systemd missing)"
fi

exec_start=$(unit_get ExecStart one)
exec_start=${exec_start#[-@:+!]}
bounding=$(unit_get CapabilityBoundingSet list)
rw_paths="$(unit_get ReadWritePaths list)"
for k in StateDirectory RuntimeDirectory LogsDirectory; do
	v=$(unit_get $k one)
	case $k in StateDirectory) base=/var/lib ;; RuntimeDirectory) base=/run ;; LogsDirectory) base=/var/log ;; esac
	[ -n "$v" ] && rw_paths="$rw_paths $base/$v"
done
[ -d /run/ward ] || { mkdir -m 0755 /run/ward && run_made=1; }
[ -d /var/log/ward ] || mkdir -m 0750 /var/log/ward

setpriv_caps=-all
for c in $bounding; do setpriv_caps="$setpriv_caps,+$(tr 'A-Z' 'a-z' <<<"${c#CAP_}")"; done
deny=
filter=$(unit_get SystemCallFilter list)
if [[ $filter == "~"* ]] && command -v systemd-analyze >/dev/null; then
	# shellcheck disable=SC2086
	deny=$(systemd-analyze syscall-filter ${filter#\~} 2>/dev/null | awk '/^    [a-z_0-9]+$/ {print $1}' | sort -u | paste -sd,)
fi
[ "$(unit_get ProtectHostname one)" = yes ] && deny="$deny,sethostname,setdomainname"
[ "$(unit_get RestrictNamespaces one)" = yes ] && deny="$deny,unshare,setns"

# The mount namespace: runs as the first command of `unshare -m`, then becomes ward.
cat >"$tmp/sandbox.sh" <<'EOF'
set -eu
# fd 3 is the log, opened before unshare: a file open for writing through this namespace's
# copy of a mount would keep that mount from becoming read-only (EBUSY)
say() { echo "sandbox: $*" >&3; }
under() { case "$1/" in "$2"/*) return 0 ;; esac; return 1; }
rw=()
for p in $RW_PATHS; do
	opt=0
	case $p in -*) p=${p#-}; opt=1 ;; esac
	if [ ! -e "$p" ]; then
		[ $opt = 1 ] && continue
		say "ReadWritePaths=$p does not exist: systemd would refuse to start"; exit 1
	fi
	mount --bind "$p" "$p"
	rw+=("$p")
done
say "writable: ${rw[*]}"
# PrivateDevices=: a tmpfs /dev with the nodes systemd puts there
stage=$SANDBOX_STAGE
if [ "$PRIVATE_DEVICES" = yes ]; then
	mkdir -p "$stage/dev"
	mount -t tmpfs -o mode=0755,nosuid tmpfs "$stage/dev"
	for n in null zero full random urandom tty; do
		touch "$stage/dev/$n"; mount --bind "/dev/$n" "$stage/dev/$n"
	done
	mkdir "$stage/dev/pts" "$stage/dev/shm"
	mount --bind /dev/pts "$stage/dev/pts"; ln -s pts/ptmx "$stage/dev/ptmx"
	mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$stage/dev/shm"
	if [ -S /dev/log ]; then touch "$stage/dev/log"; mount --bind /dev/log "$stage/dev/log"; fi
	ln -s /proc/self/fd "$stage/dev/fd"
	mount --move "$stage/dev" /dev
	say "PrivateDevices: /dev is a tmpfs with null zero full random urandom tty pts shm"
fi
# ProtectSystem=strict, ProtectHome=read-only, ProtectKernelTunables (/sys),
# ProtectControlGroups: every other mount read-only, /dev and /proc excepted
n=0
while IFS= read -r t; do
	t=$(printf '%b' "$t")
	skip=0
	for p in "${rw[@]}"; do under "$t" "$p" && skip=1; done
	under "$t" /dev && skip=1
	under "$t" /proc && skip=1
	under "$t" /tmp && skip=1
	under "$t" /var/tmp && skip=1
	if under "$t" /sys && [ "$PROTECT_KERNEL_TUNABLES" != yes ]; then skip=1; fi
	[ $skip = 1 ] && continue
	if mount -o remount,bind,ro "$t" 2>/dev/null; then n=$((n + 1)); else say "could not make $t read-only"; fi
done < <(findmnt -rno TARGET)
say "ProtectSystem=strict: $n mounts read-only"
# PrivateTmp=: what was mounted under /tmp is not ward's business
if [ "$PRIVATE_TMP" = yes ]; then
	for t in /tmp /var/tmp; do
		findmnt -rno TARGET | awk -v t="$t" 'index($0, t "/") == 1' | sort -r | while read -r m; do umount -l "$(printf '%b' "$m")" 2>/dev/null || true; done
		mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$t"
	done
	say "PrivateTmp: empty /tmp and /var/tmp"
fi
# ProtectKernelTunables/Logs/Modules: the rest of what they hide or lock
hide_file=/dev/null
if [ "$PROTECT_KERNEL_TUNABLES" = yes ]; then
	mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys
	if [ -e /proc/sysrq-trigger ]; then
		mount --bind /proc/sysrq-trigger /proc/sysrq-trigger && mount -o remount,bind,ro /proc/sysrq-trigger
	fi
	for f in /proc/kallsyms /proc/kcore; do [ -e "$f" ] && mount --bind "$hide_file" "$f"; done
	say "ProtectKernelTunables: /proc/sys, /sys read-only; kallsyms, kcore hidden"
fi
if [ "$PROTECT_KERNEL_LOGS" = yes ]; then
	[ -e /proc/kmsg ] && mount --bind "$hide_file" /proc/kmsg
	say "ProtectKernelLogs: /proc/kmsg hidden"
fi
if [ "$PROTECT_KERNEL_MODULES" = yes ]; then
	for d in /usr/lib/modules /lib/modules; do
		[ -d "$d" ] && ! mountpoint -q "$d" && mount -t tmpfs -o ro,mode=0 tmpfs "$d"
	done
	say "ProtectKernelModules: module tree hidden"
fi
exec "$@"
EOF

# The launcher: rlimits, W^X, seccomp, then setpriv (NoNewPrivileges, bounding set), ward.
launcher='
import ctypes, errno, os, resource, socket, sys
args = sys.argv[1:]
opt = {}
while args[0] != "--":
    k, _, v = args.pop(0).partition("=")
    opt[k] = v
args.pop(0)
log = os.fdopen(3, "a")  # opened by sandbox.sh
def say(s): print("sandbox: " + s, file=log, flush=True)
def setlimit(key, res):
    if not opt.get(key):
        return
    v = opt[key]
    want = resource.RLIM_INFINITY if v == "infinity" else int(v)
    try:
        resource.setrlimit(res, (want, want)); say("Limit%s=%s" % (key.upper(), v))
    except (ValueError, OSError):
        # systemd (PID 1, every capability) could; a machine without CAP_SYS_RESOURCE cannot
        hard = resource.getrlimit(res)[1]
        resource.setrlimit(res, (hard, hard))
        say("Limit%s=%s not reproduced: raising the hard limit needs CAP_SYS_RESOURCE, which this machine lacks; %s used" % (key.upper(), v, hard))
setlimit("nofile", resource.RLIMIT_NOFILE)
setlimit("memlock", resource.RLIMIT_MEMLOCK)
if opt.get("oom"):
    try:
        open("/proc/self/oom_score_adj", "w").write(opt["oom"]); say("OOMScoreAdjust=" + opt["oom"])
    except OSError as e:
        say("OOMScoreAdjust=%s not reproduced: %s" % (opt["oom"], e.strerror))
if opt.get("mdwe") == "yes":
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(65, 1, 0, 0, 0) == 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
        say("MemoryDenyWriteExecute: prctl(PR_SET_MDWE)")
    else:
        say("MemoryDenyWriteExecute not reproduced: PR_SET_MDWE: " + os.strerror(ctypes.get_errno()))
try:
    import seccomp
except ImportError:
    say("SystemCallFilter, RestrictAddressFamilies, SystemCallArchitectures not reproduced (package python3-seccomp missing)")
else:
    f = seccomp.SyscallFilter(seccomp.ALLOW)
    n = 0
    for name in filter(None, opt.get("deny", "").split(",")):
        try:
            f.add_rule(seccomp.ERRNO(errno.EPERM), name); n += 1
        except Exception:
            pass  # not a syscall on this architecture
    fams = [getattr(socket, a) for a in opt.get("af", "").split(",") if a]
    if fams:
        for fam in range(0, 64):
            if fam not in fams:
                f.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", seccomp.Arg(0, seccomp.EQ, fam))
        f.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", seccomp.Arg(0, seccomp.GE, 64))
    f.load()
    say("seccomp: %d syscalls denied (EPERM), socket families limited to %s, native architecture only" % (n, opt.get("af")))
log.close()
os.execvp(args[0], args)
'

# The notify socket systemd would listen on (abstract, so PrivateTmp cannot hide it).
notify_name="ward-pkgtest-$$"
$py -c '
import socket, sys, time, struct
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + sys.argv[1])
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
out = open(sys.argv[2], "a", buffering=1)
while True:
    msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = -1
    for lvl, typ, data in anc:
        if lvl == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", data[:12])[0]
    for line in msg.decode(errors="replace").splitlines():
        out.write("%.3f %d %s\n" % (time.monotonic(), pid, line))
' "$notify_name" "$tmp/notify.log" &
listener_pid=$!
for _ in $(seq 50); do grep -q "@$notify_name" /proc/net/unix && break; sleep 0.1; done

touch "$tmp/ward.err"
: >"$tmp/sandbox.log"
mkdir -p "$tmp/stage"
# JOURNAL_STREAM names the stderr stream the way systemd does for StandardError=journal
jstream=$(stat -c '%d:%i' "$tmp/ward.err")
# shellcheck disable=SC2086
env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
	${ASAN_OPTIONS:+ASAN_OPTIONS=$ASAN_OPTIONS} ${UBSAN_OPTIONS:+UBSAN_OPTIONS=$UBSAN_OPTIONS} \
	NOTIFY_SOCKET="@$notify_name" JOURNAL_STREAM="$jstream" WATCHDOG_USEC=30000000 \
	SANDBOX_STAGE="$tmp/stage" RW_PATHS="$rw_paths" \
	PRIVATE_TMP="$(unit_get PrivateTmp one)" PRIVATE_DEVICES="$(unit_get PrivateDevices one)" \
	PROTECT_KERNEL_TUNABLES="$(unit_get ProtectKernelTunables one)" \
	PROTECT_KERNEL_LOGS="$(unit_get ProtectKernelLogs one)" \
	PROTECT_KERNEL_MODULES="$(unit_get ProtectKernelModules one)" \
	unshare -m --propagation private bash "$tmp/sandbox.sh" \
	$py -c "$launcher" nofile="$(unit_get LimitNOFILE one)" memlock="$(unit_get LimitMEMLOCK one)" \
	oom="$(unit_get OOMScoreAdjust one)" mdwe="$(unit_get MemoryDenyWriteExecute one)" \
	deny="$deny" af="$(unit_get RestrictAddressFamilies list | tr ' ' ,)" -- \
	setpriv --no-new-privs --inh-caps=-all --bounding-set="$setpriv_caps" -- $exec_start \
	>/dev/null 2>"$tmp/ward.err" 3>>"$tmp/sandbox.log" &
ward_pid=$!
note "systemd is not PID 1 here: ran \"$exec_start\" under the unit's restrictions reproduced without systemd:"
for _ in $(seq 200); do
	grep -q "READY=1" "$tmp/notify.log" 2>/dev/null && break
	kill -0 "$ward_pid" 2>/dev/null || break
	sleep 0.1
done
sed 's/^/     /' "$tmp/sandbox.log"
note "not reproduced: the device cgroup of PrivateDevices=, LockPersonality=, RestrictRealtime=, the rest of RestrictNamespaces= (clone flags), Restart=, the watchdog's kill"
if ! grep -q "READY=1" "$tmp/notify.log" 2>/dev/null; then
	bad "ward started and sent READY=1 under the unit's restrictions"
	sed 's/^/     /' "$tmp/ward.err" | tail -20
	exit 1
fi
ok "ward started and sent READY=1 under the unit's restrictions"
check "READY=1 came from the main process (NotifyAccess=main)" grep -q "^[0-9.]* $ward_pid READY=1" "$tmp/notify.log"
check "ward status answers (exit 0)" /usr/sbin/ward status
check "stderr lines carry a <N> priority for journald" grep -qE '^<[0-7]>' "$tmp/ward.err"
st=/proc/$ward_pid/status
if command -v capsh >/dev/null; then
	want=$(for c in $bounding; do tr 'A-Z' 'a-z' <<<"$c"; done | sort | paste -sd,)
	have=$(capsh --decode="$(awk '/^CapBnd:/ {print $2}' "$st")" | sed 's/.*=//' | tr , '\n' | sort | paste -sd,)
	check "ward's bounding set is exactly the unit's ($have)" test -n "$want" -a "$have" = "$want"
else
	note "bounding set not decoded (package libcap2-bin missing)"
fi
check "ward's effective set is within it" test "$(awk '/^CapEff:/ {print $2}' "$st")" = "$(awk '/^CapBnd:/ {print $2}' "$st")"
check "ward runs with no_new_privs" grep -qE '^NoNewPrivs:\s+1' "$st"
if grep -q "seccomp:" "$tmp/sandbox.log"; then
	check "ward runs under the seccomp filter" grep -qE '^Seccomp:\s+2' "$st"
fi
check "ward's / is read-only" bash -c 'nsenter -t "$1" -m sh -c "touch /etc/ward-pkgtest-probe" 2>/dev/null && { rm -f /etc/ward-pkgtest-probe; exit 1; } || exit 0' _ "$ward_pid"
check "ward's state directory is writable" nsenter -t "$ward_pid" -m sh -c 'touch /var/lib/ward/.probe && rm /var/lib/ward/.probe'
check "the vault is at the top of the writable share, as the manuals say" test -d "$share/.ward-vault"
check "ward's /tmp is private" bash -c '[ -z "$(nsenter -t "$1" -m ls -A /tmp)" ]' _ "$ward_pid"
# the start-up self-check against the unit: every capability it wants is in the unit's
# bounding set (also checked statically by test_selfcheck), the limits and state dir hold
grep "self-check:" "$tmp/ward.err" | sed 's/^/note ward: /'
check "the start-up self-check ran" grep -q "self-check:" "$tmp/ward.err"
check "the self-check finds no capability missing under the unit's restrictions" \
	bash -c '! grep -q "self-check: missing" "$1"' _ "$tmp/ward.err"
check "the self-check finds the state directory writable" \
	bash -c '! grep -q "self-check: state directory" "$1"' _ "$tmp/ward.err"
# the open-file limit: named exactly when the launcher could not give ward LimitNOFILE=
if grep -q "LimitNOFILE=.* not reproduced" "$tmp/sandbox.log"; then
	check "the self-check names the open-file limit the launcher could not raise" \
		grep -q "self-check: RLIMIT_NOFILE hard limit is $(ulimit -Hn)," "$tmp/ward.err"
else
	check "the self-check finds the unit's LimitNOFILE= enough" \
		bash -c '! grep -q "self-check: RLIMIT_NOFILE" "$1"' _ "$tmp/ward.err"
fi

# ---------------------------------------------------------------- an attack, as nobody
cp "$build/helpers/ransim" "$tmp/ransim"
chmod 0755 "$tmp/ransim"
touch "$tmp/ransim.log"
chown nobody "$tmp/ransim.log"
total=$(find "$share" -type f ! -name '.*' | wc -l)
{ timeout 120 setpriv --reuid=nobody --regid=nogroup --clear-groups \
	"$tmp/ransim" --mode header --root "$share" --log "$tmp/ransim.log" --delay-ms 20 >"$tmp/ransim.out" 2>&1; } 2>/dev/null # not "Killed" from bash
rc=$?
changed=$(wc -l <"$tmp/ransim.log")
check "the attack was stopped (ransim exit $rc, $changed of $total files touched)" test $rc = 137 -a "$changed" -lt 10
inc=$(/usr/sbin/ward incidents --json | head -1)
check "an incident is in ward incidents --json" test -n "$inc"
id=$($py -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$inc" 2>/dev/null)
check "the incident names ransim and its status is killed" $py -c '
import json, sys
i = json.loads(sys.argv[1])
assert i["status"] == "killed", i["status"]
assert i["process"]["executable"] == sys.argv[2], i["process"]["executable"]' "$inc" "$tmp/ransim"
check "the incident has the attacker's sha256 (CAP_SYS_PTRACE: /proc/PID/exe of another user)" $py -c '
import json, sys
h = json.loads(sys.argv[1])["process"].get("hash", {}).get("sha256", "")
assert len(h) == 64, h' "$inc"
check "the alert is in /var/lib/ward/alerts.json" grep -q "$id" /var/lib/ward/alerts.json
sleep 0.5
check "the alert reached the syslog receiver over UDP (RFC 5424, facility auth, crit)" \
	grep -q "^<34>1 .* ward [0-9]* ALERT \[ward@32473 incident=\"$id\"" "$tmp/syslog.got"
$py -c 'import urllib.request, sys; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' \
	"http://127.0.0.1:$metrics_port/metrics" >"$tmp/metrics.txt" 2>&1
check "the metrics endpoint answers and counts the incident (ward_incidents_total 1)" \
	grep -qx "ward_incidents_total 1" "$tmp/metrics.txt"
check "canaries were placed in the nobody-owned share (CAP_DAC_OVERRIDE)" \
	bash -c '[ "$(find "$1" -maxdepth 1 -type f -user root | wc -l)" -gt 0 ]' _ "$share"
out=$(/usr/sbin/ward restore "$id" 2>&1)
check "ward restore $id (through the sandboxed daemon): $out" grep -q "restored [1-9][0-9]* file(s).* 0 failed" <<<"$out"
check "every file is back as it was" bash -c 'cd "$1" && md5sum --quiet -c "$2"' _ "$share" "$tmp/before.md5"
check "restored files keep their owner nobody (CAP_CHOWN, CAP_FOWNER)" \
	bash -c '[ -z "$(find "$1" -type f \( -name "report*" -o -name "notes*" \) ! -user nobody)" ]' _ "$share"

# ---------------------------------------------------------------- reload, stop, remove
kill -HUP "$ward_pid"
sleep 1
check "SIGHUP (ExecReload=): ward still running and answering" /usr/sbin/ward status
check "SIGHUP was logged" grep -q "SIGHUP" "$tmp/ward.err"
gaps=$(awk '$3 == "WATCHDOG=1" { if (p) { g = $1 - p; if (g > m) m = g }; p = $1; n++ } END { printf "%d %.1f", n, m }' "$tmp/notify.log")
check "WATCHDOG=1 well within WatchdogSec=30 (count, longest gap: $gaps s)" \
	bash -c 'set -- $1; [ "$1" -ge 2 ] && awk -v g="$2" "BEGIN { exit !(g < 15) }"' _ "$gaps"
kill -TERM "$ward_pid"
wait "$ward_pid"
rc=$?
ward_pid=
check "SIGTERM: ward exits 0 (exit $rc)" test $rc = 0
check "STOPPING=1 sent at exit" grep -q "STOPPING=1" "$tmp/notify.log"
/usr/sbin/ward status >/dev/null 2>&1
check "ward status says not running (exit 3) after the stop" test $? = 3
kill "$listener_pid" 2>/dev/null
listener_pid=

out=$(dpkg -r ward 2>&1)
rc=$?
check "dpkg -r ward (exit $rc)" test $rc = 0
check "dpkg -r left the configuration only" \
	bash -c 'dpkg-query -W -f="\${Status}" ward 2>/dev/null | grep -qx "deinstall ok config-files"'
for p in /usr/sbin/ward /lib/systemd/system/ward.service /usr/share/man/man8/ward.8.gz /usr/share/doc/ward; do
	check "dpkg -r removed $p" test ! -e "$p"
done
check "dpkg -r kept /etc/ward/ward.conf and /var/lib/ward" test -f /etc/ward/ward.conf -a -d /var/lib/ward
out=$(dpkg --purge ward 2>&1)
rc=$?
check "dpkg --purge ward (exit $rc)" test $rc = 0
installed=0
check "dpkg says ward is gone" bash -c '! dpkg-query -W -f="\${Status}" ward 2>/dev/null | grep -q "ok"'
for p in /etc/ward /var/lib/ward /var/log/ward; do
	check "purge removed $p" test ! -e "$p"
done
