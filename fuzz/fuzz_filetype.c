/* fuzz_filetype.c: libFuzzer target for the format checks in src/detect/filetype.c (and the
 * block classifier in entropy.c, which reads the same untrusted bytes). The input is a whole
 * file; it is also presented as a head and tail cut from a larger file, so the offset
 * arithmetic that places the tail (7z next header, zip end record) is exercised. */
#include "detect/entropy.h"
#include "detect/filetype.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check(const struct filetype_result *r)
{
	/* Invariants every answer keeps, whatever the input. */
	if (r->id >= FILETYPE__COUNT || !r->name || strlen(r->why) >= sizeof(r->why))
		abort();
	if (r->encrypted != FILETYPE_CRYPT_NO && r->encrypted != FILETYPE_CRYPT_YES &&
	    r->encrypted != FILETYPE_CRYPT_MAYBE)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct filetype_result r;

	/* The whole file in the head. */
	if (filetype_identify(data, size, NULL, 0, size, &r) != 0)
		abort();
	check(&r);

	/* Head and tail of the same file, as filetype_identify_fd reads them. */
	size_t hn = size < FILETYPE_HEAD ? size : FILETYPE_HEAD;
	size_t tn = size < FILETYPE_TAIL ? size : FILETYPE_TAIL;
	if (filetype_identify(data, hn, data + size - tn, tn, size, &r) != 0)
		abort();
	check(&r);

	/* The same bytes as the head and the tail of a file three times as large: offsets that
	 * point between them must be rejected, not read. */
	size_t half = size / 2;
	if (filetype_identify(data, half, data + half, size - half, (uint64_t)size * 3, &r) != 0)
		abort();
	check(&r);

	struct entropy_stats st;
	enum entropy_class c = entropy_classify(data, size, &st);
	if (c >= ENTROPY__COUNT || st.entropy < 0 || st.entropy > 8.0001)
		abort();
	return 0;
}
