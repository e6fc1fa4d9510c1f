#!/bin/bash
# mkdeb.sh BUILD_DIR: builds the Debian package of an already-built BUILD_DIR/ward into
# BUILD_DIR/ward_VERSION_ARCH.deb with dpkg-deb (no debian/ tree, no dpkg-buildpackage).
#
# What goes where:
#   /usr/sbin/ward                          the binary (stripped)
#   /lib/systemd/system/ward.service        packaging/ward.service
#   /etc/ward/ward.conf                     packaging/ward.conf (a conffile)
#   /usr/share/man/man8/ward.8.gz           docs/man/ward.8
#   /usr/share/man/man5/ward.conf.5.gz      docs/man/ward.conf.5
#   /usr/share/doc/ward/                    copyright, guide.md.gz, README.md.gz
#   DEBIAN/{postinst,prerm,postrm}          packaging/deb/
# Depends comes from dpkg-shlibdeps, or from ldd + dpkg -S when dpkg-dev is missing.
# Reproducible: file times are SOURCE_DATE_EPOCH (default: the newest packaged source).
set -euo pipefail

die() { echo "mkdeb: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: bash scripts/mkdeb.sh BUILD_DIR"
build=$(realpath "$1")
repo=$(realpath "$(dirname "${BASH_SOURCE[0]}")/..")
bin=$build/ward
[ -x "$bin" ] || die "$bin not found: run make first"
command -v dpkg-deb >/dev/null || die "dpkg-deb not found (package dpkg)"
for f in packaging/ward.service packaging/ward.conf packaging/deb/copyright \
	packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm \
	docs/man/ward.8 docs/man/ward.conf.5; do
	[ -f "$repo/$f" ] || die "$repo/$f is missing"
done

version=$("$bin" version | awk '{print $2}')
[[ $version =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || die "cannot read the version from $bin version"
arch=$(dpkg --print-architecture)
maintainer=${DEB_MAINTAINER:-"ward developers <ward@localhost>"}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(stat -c %Y "$bin" "$repo"/packaging/ward.* \
	"$repo"/docs/man/* | sort -n | tail -1)}

work=$build/deb
root=$work/ward_${version}_$arch
rm -rf "$work"
umask 022
mkdir -p "$root/DEBIAN"

# --- files ---
install -D -m 0755 "$bin" "$root/usr/sbin/ward"
# Debian strips binaries (debug symbols would go to a -dbgsym package, which this is not)
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/sbin/ward"
install -D -m 0644 "$repo/packaging/ward.service" "$root/lib/systemd/system/ward.service"
install -D -m 0644 "$repo/packaging/ward.conf" "$root/etc/ward/ward.conf"
install -d -m 0755 "$root/usr/share/man/man8" "$root/usr/share/man/man5" "$root/usr/share/doc/ward"
gzip -9nc "$repo/docs/man/ward.8" >"$root/usr/share/man/man8/ward.8.gz"
gzip -9nc "$repo/docs/man/ward.conf.5" >"$root/usr/share/man/man5/ward.conf.5.gz"
install -m 0644 "$repo/packaging/deb/copyright" "$root/usr/share/doc/ward/copyright"
for doc in docs/guide.md README.md; do
	[ -f "$repo/$doc" ] && gzip -9nc "$repo/$doc" >"$root/usr/share/doc/ward/$(basename "$doc").gz"
done
for s in postinst prerm postrm; do
	install -m 0755 "$repo/packaging/deb/$s" "$root/DEBIAN/$s"
done
echo /etc/ward/ward.conf >"$root/DEBIAN/conffiles"

# --- Depends ---
depends=
if command -v dpkg-shlibdeps >/dev/null; then
	# dpkg-shlibdeps wants a debian/control naming the package it computes for
	mkdir -p "$work/debian"
	printf 'Source: ward\n\nPackage: ward\nArchitecture: any\n' >"$work/debian/control"
	depends=$(cd "$work" && dpkg-shlibdeps -O -e"$root/usr/sbin/ward" 2>"$work/shlibdeps.log" |
		sed -n 's/^shlibs:Depends=//p') || { cat "$work/shlibdeps.log" >&2; depends=; }
fi
if [ -z "$depends" ]; then
	# by hand: the package that holds each library the binary is linked against
	libs=$(ldd "$root/usr/sbin/ward" | awk '$3 ~ /^\// {print $3}')
	pkgs=()
	for l in $libs; do
		p=$(dpkg -S "$(realpath "$l")" 2>/dev/null || dpkg -S "$l" 2>/dev/null) || die "no package holds $l"
		pkgs+=("${p%%:*}")
	done
	depends=$(printf '%s\n' "${pkgs[@]}" | sort -u | paste -sd, | sed 's/,/, /g')
fi
[ -n "$depends" ] || die "could not compute Depends"

size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<EOF
Package: ward
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Depends: $depends
Section: admin
Priority: optional
Description: ransomware defence for Linux file servers
 ward watches file activity on shares (fanotify, with eBPF to name every process),
 stops a process that encrypts files within its first few files, keeps the
 originals of what it changed and puts them back.
 .
 The package installs the daemon, a hardened systemd unit (not enabled: set
 watch= in /etc/ward/ward.conf first), and the manuals ward(8) and ward.conf(5).
EOF
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
	xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums" "$root/DEBIAN/conffiles"
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

out=$build/ward_${version}_$arch.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
echo "mkdeb: $out"
