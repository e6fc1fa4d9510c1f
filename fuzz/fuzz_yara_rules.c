/* fuzz_yara_rules.c: rule text as ward loads it (scanner_load_rules_string: compile,
 * error messages into a bounded buffer, atomic swap), then, if it compiled, one scan of
 * a small fixed buffer through the match callback and reason formatting. Includes are
 * refused by that entry point, so the fuzzer never reads files. */
#include "prevent/scanner.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static struct scanner *sc;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a rule file of ours is text: a NUL ends it for libyara, so cut there */
	char *src = malloc(size + 1);
	char err[512];
	struct scanner_result r;
	static const char sample[] = "MZ\x90\x00 \x7f" "ELF hello WARD-MARKER abcdefgh 0123456789";
	if (!src)
		return 0;
	if (!sc && scanner_create(&(struct scanner_opts){.timeout_s = 1}, &sc) < 0)
		abort();
	memcpy(src, data, size);
	src[size] = '\0';
	if (scanner_load_rules_string(sc, src, "fuzz.yar", err, sizeof(err)) == 0)
		scanner_scan_buf(sc, sample, sizeof(sample) - 1, &r);
	else if (memchr(err, '\0', sizeof(err)) == NULL)
		abort();   /* the message must stay inside its buffer */
	free(src);
	return 0;
}
