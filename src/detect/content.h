/* content.h: inspection of a file's content after a write: the entropy sampling
 * (entropy.h) and the format check (filetype.h) folded into struct ward_content, and the
 * judgement "does this look like encryption output" that the detector scores. */
#ifndef WARD_CONTENT_H
#define WARD_CONTENT_H
#include <stdint.h>

#include "core/event.h"

/* Inspects the file behind fd (read with pread only; at most ~76 KiB read). 0 or -errno. */
int content_inspect(int fd, uint64_t size, struct ward_content *out);
/* The same over a buffer holding a whole file. */
int content_inspect_buf(const void *buf, size_t len, struct ward_content *out);

enum content_verdict {
	CONTENT_NORMAL = 0,
	CONTENT_ENCRYPTED,        /* ciphertext where no known format parses */
	CONTENT_PARTIAL,          /* the head (or stripes) encrypted, the rest plain */
	CONTENT_ENCODED,          /* base64/hex ciphertext text */
	CONTENT_LOCKED_ARCHIVE,   /* an archive that declares itself password-encrypted */
};
enum content_verdict content_verdict(const struct ward_content *c);
const char *content_verdict_name(enum content_verdict v);

/* The format a file name's extension promises (enum filetype_id), FILETYPE_UNKNOWN when the
 * extension says nothing reliable. */
int content_type_for_name(const char *path, size_t len);
#endif
