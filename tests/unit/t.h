/* t.h: the unit-test harness: checks that count, and one closing line per test program.
 * Tests are data tables where they can be: one row per case, checked with T_CHECK. */
#ifndef WARD_T_H
#define WARD_T_H
#include <stdio.h>
#include <string.h>

static int t_pass, t_fail;

#define T_CHECK(cond, ...)                                                        \
	do {                                                                      \
		if (cond) {                                                       \
			t_pass++;                                                 \
		} else {                                                          \
			t_fail++;                                                 \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__,   \
				#cond);                                           \
			fprintf(stderr, __VA_ARGS__);                             \
			fputc('\n', stderr);                                      \
		}                                                                 \
	} while (0)

/* Prints "name: N passed, N failed" and gives main's exit status. */
#define T_DONE(name) (printf("%s: %d passed, %d failed\n", (name), t_pass, t_fail), t_fail ? 1 : 0)
#endif
