# Shared by the work scripts: argument check and a NUL-separated file finder.
# Every work script takes the data tree root as its only argument, does ordinary admin or
# user work in it, exits 0, and leaves every file valid for its type (selftest checks).
work_init() {
	root=${1:-}
	if [ -z "$root" ] || [ ! -d "$root" ]; then
		echo "usage: $0 ROOT" >&2
		exit 2
	fi
	root=$(cd "$root" && pwd)
}

# work_find NAME-PATTERN...: regular files whose name matches any pattern, NUL-separated,
# outside Backups/ and .git/.
work_find() {
	local args=() p
	for p in "$@"; do
		args+=(-o -name "$p")
	done
	find "$root" \( -name .git -o -path "$root/Backups" \) -prune -o -type f \( -false "${args[@]}" \) -print0
}
