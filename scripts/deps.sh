#!/bin/bash
# Installs what ward needs to build, test and run on Debian 12 (bookworm) or later.
# Idempotent: does nothing when everything is present. Run as root.
set -euo pipefail
pkgs=(
  build-essential clang llvm bpftool pkg-config
  libbpf-dev libelf-dev zlib1g-dev libjson-c-dev libinih-dev libfuzzy-dev libyara-dev
  libsqlite3-dev libssl-dev libmagic-dev libsystemd-dev libzstd-dev libcap-dev libseccomp-dev
  libclang-rt-14-dev
  python3 e2fsprogs xfsprogs btrfs-progs util-linux procps
  openssl zstd zip unzip p7zip-full rsync sqlite3 gnupg git xz-utils
  dpkg-dev man-db groff-base systemd rsyslog python3-seccomp python3-yaml libcap2-bin
  samba smbclient
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "deps: missing packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
