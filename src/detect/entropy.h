/* entropy.h: the content-randomness indicator: per-block Shannon entropy and chi-square
 * statistics, the block classes derived from them (plain, compressed, random, encoded text,
 * striped), and the bounded sampling of a file that sees partial and intermittent encryption.
 *
 * What the statistics can and cannot tell (measured on this machine, see entropy.c):
 * ciphertext is uniform over 256 byte values; deflate (gzip/zip), zstd, bzip2, JPEG and PNG
 * are measurably non-uniform on enough bytes; LZMA output (xz, 7z) is not, at any sample
 * size. A "random" block therefore means "ciphertext or LZMA-like compressed data": whether
 * a known format still parses (filetype.h) is what tells the two apart. */
#ifndef WARD_DETECT_ENTROPY_H
#define WARD_DETECT_ENTROPY_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum entropy_class {
	ENTROPY_EMPTY = 0,    /* fewer than ENTROPY_MIN_BYTES: too little to judge */
	ENTROPY_PLAIN,        /* text, code, structured binary: clearly not uniform */
	ENTROPY_COMPRESSED,   /* near 8 bits/byte but chi-square says not uniform */
	ENTROPY_RANDOM,       /* uniform: ciphertext, or LZMA-like compressed data */
	ENTROPY_ENCODED,      /* base64 or hex text, uniform over its alphabet, no words */
	ENTROPY_STRIPED,      /* 16-byte chunks alternating between random and plain */
	ENTROPY__COUNT
};

#define ENTROPY_MIN_BYTES 64u
#define ENTROPY_BLOCK 4096u          /* bytes per sampled block */
#define ENTROPY_MAX_BLOCKS 16u       /* so at most 64 KiB read per file */

/* Statistics of one buffer. */
struct entropy_stats {
	double entropy;       /* Shannon entropy, bits per byte, 0..8 */
	double chi2;          /* Pearson chi-square against uniform over 256 values (255 dof) */
	double rnd16_frac;    /* fraction of whole 16-byte chunks that look random */
	double stripe;        /* |random fraction at even chunks - at odd chunks|, 0..1 */
	double stripe_chi2;   /* chi-square of the random chunks of the more random phase */
	uint32_t len;
};

struct entropy_block {
	uint64_t off;
	struct entropy_stats st;
	enum entropy_class cls;
	uint32_t suspect_bytes;  /* bytes of this block that look encrypted */
};

/* What the sampling of one file found. */
struct entropy_summary {
	uint64_t file_size;
	uint32_t nblocks;
	uint32_t bytes_read;
	struct entropy_block blocks[ENTROPY_MAX_BLOCKS];
	uint32_t count[ENTROPY__COUNT];  /* blocks per class */
	double suspect_frac;   /* suspect bytes / bytes read: 0 plain .. 1 all encrypted-looking */
	double max_entropy;
	enum entropy_class head_class;  /* class of the block at offset 0 */
	bool head_suspect;     /* the head is random, encoded or striped */
	/* Chi-square of the byte histogram of all RANDOM blocks pooled: with enough bytes this
	 * separates deflate/zstd (non-uniform) from ciphertext; LZMA stays uniform. */
	uint32_t pooled_bytes;
	double pooled_chi2;
	bool pooled_nonuniform;  /* pooled_bytes >= ENTROPY_POOL_MIN and chi2 above threshold */
};
#define ENTROPY_POOL_MIN (16u * 1024u)

/* Statistics of buf[0..len). Never fails; len 0 gives all zeros. */
void entropy_stats(const void *buf, size_t len, struct entropy_stats *out);

/* Classifies buf[0..len) (one block, any length; meant for <= a few KiB). st (may be NULL)
 * receives the statistics; the per-chunk ones (rnd16_frac, stripe, stripe_chi2) stay 0 for
 * blocks decided before they are needed (empty, random, encoded). */
enum entropy_class entropy_classify(const void *buf, size_t len, struct entropy_stats *st);

const char *entropy_class_name(enum entropy_class c);

/* True for the classes that look like encryption output. */
bool entropy_class_suspect(enum entropy_class c);

/* Samples the file behind fd (size bytes; pread only, the file offset is not moved): the
 * whole file when it fits in ENTROPY_MAX_BLOCKS blocks, else the head, the tail and blocks
 * spread over the middle. Reads at most ENTROPY_MAX_BLOCKS * ENTROPY_BLOCK bytes; measured
 * 0.08-0.22 ms of CPU per file (page-cached, this 2-vCPU VM), pread included.
 * Returns 0 or -errno from pread; a file that shrank meanwhile is judged on what was read. */
int entropy_sample_fd(int fd, uint64_t size, struct entropy_summary *out);

/* The same sampling over a buffer holding a whole file (for tests and callers that have
 * the content in memory). Returns 0. */
int entropy_sample_buf(const void *buf, size_t len, struct entropy_summary *out);

#endif
