/* similarity.h: the old-versus-new content indicator: a digest of a file's content kept for
 * later, and a 0..100 similarity between two contents or digests. ssdeep (context-triggered
 * piecewise hashing, libfuzzy) where it can score; a byte-histogram intersection where it
 * cannot (small buffers, incomparable ssdeep block sizes).
 *
 * What each says: ssdeep near 0 for two versions of one file means the content was
 * replaced wholesale, as encryption does; an edit keeps it high. The histogram only says
 * "same kind of bytes": any two English texts score high, text against ciphertext low. */
#ifndef WARD_DETECT_SIMILARITY_H
#define WARD_DETECT_SIMILARITY_H
#include <stddef.h>
#include <stdint.h>

#define SIMILARITY_FUZZY_MAX 148   /* FUZZY_MAX_RESULT of libfuzzy 2.14 */
/* Below this many bytes (either side) ssdeep stops scoring edited copies: measured with
 * prose and a 16-byte edit, mean score 44 at 128 bytes, 18 at 64, 0 in 15 of 20 at 32. */
#define SIMILARITY_SSDEEP_MIN 256u

enum similarity_method {
	SIMILARITY_NONE = 0,    /* an empty side: nothing to compare */
	SIMILARITY_SSDEEP,
	SIMILARITY_HISTOGRAM,
};

/* A content digest: ~670 bytes, plain data, safe to copy and store. */
struct similarity_digest {
	uint64_t len;
	char fuzzy[SIMILARITY_FUZZY_MAX];  /* ssdeep "blocksize:hash1:hash2", NUL-terminated */
	uint16_t hist[256];                /* byte frequencies scaled to sum ~65535 */
};

/* Digest of buf[0..len). Returns 0, -EINVAL (NULL out, NULL buf with len), -EFBIG (len >
 * 4 GiB, libfuzzy's limit) or -EIO (libfuzzy failed). */
int similarity_digest_buf(const void *buf, size_t len, struct similarity_digest *out);

/* Similarity 0..100 of two digests, or -EINVAL. *method (may be NULL) says how it was
 * measured. Two empty contents are 100 alike, an empty and a non-empty one 0. */
int similarity_compare(const struct similarity_digest *a, const struct similarity_digest *b,
		       enum similarity_method *method);

/* Same for two buffers (digests both, then compares). */
int similarity_compare_buf(const void *a, size_t alen, const void *b, size_t blen,
			   enum similarity_method *method);

#endif
