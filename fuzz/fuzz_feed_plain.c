/* fuzz_feed_plain.c: the plain feed reader on arbitrary bytes: it must return 0 or an error with
 * a message, never crash, and only ever hand out well-formed records. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prevent/feed.h"

static int check(void *ctx, const struct ioc_record *rec)
{
	(void)ctx;
	if (!ioc_kind_len(rec->kind) || rec->confidence < -1 || rec->confidence > 100)
		abort();
	/* strings handed out must be NUL-terminated and bounded */
	if ((rec->name && strnlen(rec->name, 1 << 20) == 1 << 20) ||
	    (rec->tags && strnlen(rec->tags, 1 << 20) == 1 << 20))
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct feed_stats st;
	struct feed_error err;
	enum feed_format used;
	int r = feed_parse((const char *)data, size, FEED_PLAIN, check, NULL, &st, &err, &used);
	if (r < 0 && !err.msg[0])
		abort();   /* every failure says why */
	if (r == 0 && st.hashes > size)
		abort();   /* a hash takes at least one byte of input */
	/* and the same bytes through detection, which may pick any reader */
	r = feed_parse((const char *)data, size, FEED_AUTO, check, NULL, &st, &err, &used);
	if (r < 0 && !err.msg[0])
		abort();
	return 0;
}
