/* fuzz_content.c: libFuzzer target for src/detect/content.c: the whole-buffer inspection
 * (entropy sampling, format checks, and content.c's own decoding of zlib streams and git
 * packs, which read untrusted bytes) and the verdict on whatever it found. */
#include "detect/content.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ward_content c;
	if (content_inspect_buf(data, size, &c) != 0 || !c.valid)
		abort();
	enum content_verdict v = content_verdict(&c);
	if ((unsigned)v > CONTENT_LOCKED_ARCHIVE || !content_verdict_name(v))
		abort();
	/* the promise of a name made of the same bytes */
	int t = content_type_for_name((const char *)data, size);
	(void)content_type_matches(t, c.type);
	return 0;
}
