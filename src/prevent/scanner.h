/* scanner.h: file verdicts for prevention: the compiled YARA rule set (loaded from files
 * and directories, hot-reloaded by an atomic swap), file digests by fd (sha256, sha1, md5
 * with OpenSSL EVP), the hook to a hash block list, and the bounded, thread-safe verdict
 * cache keyed by (dev, ino) and invalidated by ctime, mtime and size.
 *
 * A scan reads the file through the fd it is given (never by path), once, into memory:
 * pread into a buffer rather than mmap, because a file truncated under a mapping raises
 * SIGBUS in the scanner, and the guard scans files other processes may still be writing.
 * Files larger than max_size are not read: their verdict is SCANNER_SKIPPED.
 *
 * Every function is safe to call from several threads at once, including
 * scanner_load_rules() while scans run (scans in flight keep the rule set they started
 * with; it is freed when the last of them ends). */
#ifndef WARD_PREVENT_SCANNER_H
#define WARD_PREVENT_SCANNER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

/* The hash block list, provided by the daemon (the ioc store) or a test. Returns 1 when
 * the digest is listed, with a short description of where it came from in why (e.g.
 * "source abuse.ch"), 0 when not listed, -errno on error (treated as not listed and
 * counted). Called from scanning threads: must be thread-safe and must not block. */
typedef int (*scanner_hash_check_fn)(void *ctx, const uint8_t sha256[32], char *why,
				     size_t whylen);

enum scanner_verdict {
	SCANNER_CLEAN = 0,
	SCANNER_MATCH = 1,   /* reason names the indicator */
	SCANNER_SKIPPED = 2, /* larger than max_size: not read, not judged */
};

#define SCANNER_REASON_MAX 320
#define SCANNER_ERR_MAX 4096

struct scanner_opts {
	uint64_t max_size;      /* bytes; 0: 64 MiB */
	unsigned cache_entries; /* 0: 8192; rounded up to a multiple of the set size (8) */
	unsigned timeout_s;     /* YARA timeout per scan when no deadline is given; 0: 10 */
};

struct scanner_result {
	enum scanner_verdict verdict;
	bool cached;            /* answered from the cache: no digest fields are set */
	bool have_sha256;
	bool have_all;          /* sha1 and md5 too (SCANNER_ALL_DIGESTS) */
	uint8_t sha256[32];
	uint8_t sha1[20];
	uint8_t md5[16];
	int64_t size;
	/* "sha256 <hex> on block list (<why>)" or "yara rule <name> (<file>)"; "" if clean */
	char reason[SCANNER_REASON_MAX];
};

struct scanner_stats {
	uint64_t scans;         /* files read and judged */
	uint64_t cache_hits, cache_misses;
	uint64_t matches;
	uint64_t skipped_large;
	uint64_t timeouts;      /* scans that ran past their deadline (no verdict cached) */
	uint64_t errors;        /* read, digest, YARA or hash-list errors */
	uint64_t generation;    /* bumped by every rule load and scanner_invalidate() */
	unsigned rule_count;
};

struct scanner;

/* Creates a scanner with no rules and no hash list (every file clean). opts may be NULL.
 * Initializes libyara (reference counted by libyara). Free with scanner_destroy(). */
int scanner_create(const struct scanner_opts *opts, struct scanner **out);
void scanner_destroy(struct scanner *s);   /* accepts NULL; no scan may be running */

/* Compiles every rule file named in paths (a file, or a directory whose *.yar and *.yara
 * files are taken in name order) into one new rule set and swaps it in; each file is its
 * own YARA namespace named by its path, so a match can name its file. On a compile error
 * nothing changes, -EINVAL is returned and err holds "FILE:LINE: message" lines. n == 0
 * removes all rules. Bumps the generation (cached verdicts are judged again). */
int scanner_load_rules(struct scanner *s, const char *const *paths, size_t n, char *err,
		       size_t errlen);
/* The same from one in-memory source; name stands for the file in messages and matches.
 * includes are refused here (the text may be untrusted: the fuzz target uses this). */
int scanner_load_rules_string(struct scanner *s, const char *src, const char *name,
			      char *err, size_t errlen);

/* Sets the hash block list (fn NULL: none). Bumps the generation. The daemon calls
 * scanner_invalidate() after the list it points to changes. */
void scanner_set_hash_check(struct scanner *s, scanner_hash_check_fn fn, void *ctx);
void scanner_invalidate(struct scanner *s);
uint64_t scanner_generation(const struct scanner *s);

#define SCANNER_NOCACHE 0x1     /* neither look up nor store a verdict */
#define SCANNER_ALL_DIGESTS 0x2 /* also sha1 and md5 (for reports; the cache is skipped) */

/* Judges the regular file open at fd (readable; offset untouched). deadline_ns is an
 * absolute CLOCK_MONOTONIC time, 0 for none (opts.timeout_s applies to YARA). Returns 0
 * with res filled, -ETIMEDOUT when the deadline passed (res->verdict CLEAN, nothing
 * cached), -EINVAL for a file that is not regular, other -errno on errors. */
int scanner_scan_fd(struct scanner *s, int fd, unsigned flags, uint64_t deadline_ns,
		    struct scanner_result *res);
/* Judges a buffer (no cache, no deadline): for tests and the fuzz target. */
int scanner_scan_buf(struct scanner *s, const void *buf, size_t len,
		     struct scanner_result *res);

/* The cache alone, no I/O: true and res filled (cached = true) when st (from fstat of the
 * file) matches a verdict stored under the current generation. */
bool scanner_lookup(struct scanner *s, const struct stat *st, struct scanner_result *res);
void scanner_get_stats(struct scanner *s, struct scanner_stats *st);

/* sha256, sha1 and md5 of the file at fd read with pread (offset untouched), at most max
 * bytes (-EFBIG beyond). Standalone: no scanner needed. */
int scanner_digest_fd(int fd, uint64_t max, uint8_t sha256[32], uint8_t sha1[20],
		      uint8_t md5[16]);
/* Writes 2*n lowercase hex digits and a NUL (out has 2*n+1 bytes). */
void scanner_hex(const uint8_t *in, size_t n, char *out);
uint64_t scanner_now_ns(void);   /* CLOCK_MONOTONIC, for deadlines */
#endif
