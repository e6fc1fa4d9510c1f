/* content.h: inspection of a file's content after a write: the entropy sampling
 * (entropy.h) and the format check (filetype.h) folded into struct ward_content, and the
 * judgement "does this look like encryption output" that the detector scores. */
#ifndef WARD_CONTENT_H
#define WARD_CONTENT_H
#include <stdbool.h>
#include <stdint.h>

#include "core/event.h"

/* Inspects the file behind fd (read with pread only: files up to 64 KiB whole in one read,
 * larger ones sampled, at most ~84 KiB). 0 or -errno. */
int content_inspect(int fd, uint64_t size, struct ward_content *out);
/* The first 64 KiB of a file still being written (read with pread), for files larger
 * than that: in-place encryption of a large file shows in its head long before the writer
 * closes it. *size receives the file's size. 0, -errno, or -EAGAIN for a file of 64 KiB or
 * less (judge it whole when it is closed). */
int content_inspect_head(int fd, uint64_t *size, struct ward_content *out);
#define CONTENT_HEAD_MIN (64u * 1024u)
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

/* Runs the inspection once over made-up bytes, so that its code, tables and the stack
 * below the caller are in memory before the first real file: a page fault costs 50-100 us
 * on some VMs, and the first files of an attack must not pay for them. */
void content_warm(void);

/* The format a file name's extension promises (enum filetype_id), FILETYPE_UNKNOWN when the
 * extension says nothing reliable. Source code, logs and other plain-text files promise
 * FILETYPE_TEXT. */
int content_type_for_name(const char *path, size_t len);

/* Whether content identified as `got` keeps the promise of a name that says `want`: the same
 * format or one of its family (any text for a text name, a zip for an office document,
 * qcow2/vmdk/raw data for a disk image). Both are enum filetype_id. */
bool content_type_matches(int want, int got);
#endif
