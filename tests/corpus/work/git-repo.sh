#!/bin/bash
# git-repo.sh ROOT: put the engineering sources under git: init, commit, edit, commit again,
# then `git gc` (zlib-compressed loose objects, then a packfile and the loose objects deleted).
set -euo pipefail
. "$(dirname "$0")/../lib/work-common.sh"
work_init "$@"
repo="$root/Engineering/src"
mkdir -p "$repo"
[ -n "$(ls -A "$repo")" ] || printf 'int main(void) { return 0; }\n' >"$repo/main.c"
g() { git -C "$repo" -c user.name=Corpus -c user.email=corpus@example.invalid -c init.defaultBranch=main -c gc.auto=0 "$@"; }
g init -q
g add -A
g commit -qm "Import sources"
for f in "$repo"/*.c; do
	printf '/* reviewed */\n' >>"$f"
done
g commit -qam "Review pass"
g gc -q --prune=now
g fsck --no-progress >/dev/null
echo "git-repo: $(g rev-list --count HEAD) commits in $repo"
