#!/bin/bash
# c-build.sh ROOT: a C build in the tree: write sources, compile each to an object, archive
# a static library, link and run the program, compile the existing sources too.
set -euo pipefail
. "$(dirname "$0")/../lib/work-common.sh"
work_init "$@"
b="$root/Engineering/build"
mkdir -p "$b/obj"
cat >"$b/util.h" <<'C'
#ifndef UTIL_H
#define UTIL_H
unsigned long checksum(const char *s);
#endif
C
cat >"$b/util.c" <<'C'
#include "util.h"
unsigned long checksum(const char *s)
{
	unsigned long h = 5381;
	while (*s)
		h = h * 33 + (unsigned char)*s++;
	return h;
}
C
for i in 1 2 3 4 5 6; do
	cat >"$b/part$i.c" <<C
#include "util.h"
unsigned long part$i(void) { return checksum("part $i") % $((i * 97)); }
C
done
cat >"$b/main.c" <<'C'
#include <stdio.h>
#include "util.h"
unsigned long part1(void), part2(void), part3(void), part4(void), part5(void), part6(void);
int main(void)
{
	printf("%lu\n", part1() + part2() + part3() + part4() + part5() + part6());
	return 0;
}
C
for f in "$b"/*.c; do
	cc -O2 -c -o "$b/obj/$(basename "${f%.c}").o" "$f"
done
ar rcs "$b/libparts.a" "$b"/obj/part*.o "$b/obj/util.o"
cc -o "$b/app" "$b/obj/main.o" -L"$b" -lparts
"$b/app" >"$b/app.out"
n=0
for f in "$root"/Engineering/src/*.c; do
	[ -e "$f" ] || continue
	cc -O2 -w -c -o "$b/obj/src-$(basename "${f%.c}").o" "$f"
	n=$((n + 1))
done
echo "c-build: built app and $n existing sources"
