/* ioc.h: the indicator-of-compromise store: file hashes (md5, sha1, sha256) with their
 * source, first-seen time, confidence and optional name and tags, persisted in
 * <state_dir>/ioc.db (SQLite) and mirrored in memory as sorted digest sets so that a
 * lookup at exec or write time costs a few cache misses and no I/O.
 *
 * Memory layout: one ioc_set per hash kind holds the bare digests (16, 20 or 32 bytes)
 * back to back, sorted, plus a bucket index on the top bits of the digest. Cryptographic
 * digests are uniform, so each bucket holds a handful of entries and a lookup is one
 * index read and a binary search over one or two cache lines. Everything else about an
 * indicator (source, name, ...) stays in SQLite and is read only on a hit. */
#ifndef WARD_PREVENT_IOC_H
#define WARD_PREVENT_IOC_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ioc_kind { IOC_MD5 = 1, IOC_SHA1 = 2, IOC_SHA256 = 3 };

#define IOC_DIGEST_MAX 32
#define IOC_TEXT_MAX 256          /* bound on name, tags and source, including the NUL */
#define IOC_CONFIDENCE_DEFAULT 50 /* used when a feed does not say */

/* Digest length for a kind (16, 20, 32), 0 for an unknown kind. */
size_t ioc_kind_len(enum ioc_kind kind);
const char *ioc_kind_name(enum ioc_kind kind);
/* The kind whose hex form has hexlen digits (32, 40, 64), 0 if none. */
enum ioc_kind ioc_kind_for_hexlen(size_t hexlen);
/* Decodes exactly 2*len hex digits (either case); -EINVAL on anything else. */
int ioc_hex_decode(const char *hex, size_t hexlen, uint8_t *out, size_t len);
/* Writes 2*len lowercase hex digits and a NUL into out (size >= 2*len+1). */
void ioc_hex_encode(const uint8_t *in, size_t len, char *out);

/* ---- the in-memory set (usable on its own: the benchmark drives it directly) ---- */
struct ioc_set {
	uint8_t *digests;  /* n * dlen bytes, sorted after ioc_set_build() */
	size_t n, cap;
	size_t dlen;
	uint32_t *bucket;  /* (1 << bits) + 1 offsets into digests, built by ioc_set_build() */
	unsigned bits;
	bool built;
};

int ioc_set_init(struct ioc_set *s, enum ioc_kind kind);
void ioc_set_free(struct ioc_set *s);
int ioc_set_reserve(struct ioc_set *s, size_t n);
/* Appends a digest; the set is unusable for lookups until the next ioc_set_build(). */
int ioc_set_add(struct ioc_set *s, const uint8_t *digest);
/* Sorts in place, drops duplicates, builds the bucket index. At most UINT32_MAX entries. */
int ioc_set_build(struct ioc_set *s);
bool ioc_set_contains(const struct ioc_set *s, const uint8_t *digest);
size_t ioc_set_bytes(const struct ioc_set *s);

/* ---- the store ---- */
struct ioc_store;

/* An indicator as a feed describes it. first_seen 0 means "unknown" (the store uses the
 * import time); confidence -1 means "unknown" (IOC_CONFIDENCE_DEFAULT). name and tags may
 * be NULL; longer than IOC_TEXT_MAX-1 bytes they are cut. */
struct ioc_record {
	enum ioc_kind kind;
	uint8_t digest[IOC_DIGEST_MAX];
	int64_t first_seen;
	int confidence;
	const char *name;
	const char *tags;
};

/* What the store knows about a hit. */
struct ioc_match {
	enum ioc_kind kind;
	int64_t first_seen;
	int confidence;
	char source[IOC_TEXT_MAX];
	char name[IOC_TEXT_MAX];
	char tags[IOC_TEXT_MAX];
};

/* Opens (creating if needed) state_dir/ioc.db. The in-memory sets are built on the first
 * lookup, or now with ioc_load(). The caller closes with ioc_close(). */
int ioc_open(struct ioc_store **out, const char *state_dir);
void ioc_close(struct ioc_store *s);   /* accepts NULL */
/* (Re)builds the in-memory sets from the database; -errno leaves the old sets in place. */
int ioc_load(struct ioc_store *s);

/* 1 on a hit (m filled from the database when not NULL), 0 on a miss, -errno on error.
 * A NULL m makes the lookup pure memory. */
int ioc_lookup(struct ioc_store *s, enum ioc_kind kind, const uint8_t *digest,
	       struct ioc_match *m);
int ioc_lookup_md5(struct ioc_store *s, const uint8_t digest[16], struct ioc_match *m);
int ioc_lookup_sha1(struct ioc_store *s, const uint8_t digest[20], struct ioc_match *m);
int ioc_lookup_sha256(struct ioc_store *s, const uint8_t digest[32], struct ioc_match *m);

/* Number of indicators of a kind, or of all kinds with kind 0; negative -errno. */
int64_t ioc_count(struct ioc_store *s, enum ioc_kind kind);
/* Bytes held by the in-memory sets (0 before they are built). */
size_t ioc_memory(const struct ioc_store *s);

/* Imports are transactions: ioc_begin(), any number of ioc_put(), then ioc_commit() or
 * ioc_rollback(); nothing is visible (on disk or in lookups) before the commit. */
enum ioc_put_result { IOC_PUT_SAME = 0, IOC_PUT_NEW = 1, IOC_PUT_UPDATED = 2 };
int ioc_begin(struct ioc_store *s);
/* Adds or merges one indicator: a known digest keeps the earliest first-seen and the
 * highest confidence, its source, and its name/tags unless it had none. Returns an
 * ioc_put_result or -errno. */
int ioc_put(struct ioc_store *s, const struct ioc_record *r, const char *source);
int ioc_commit(struct ioc_store *s);
void ioc_rollback(struct ioc_store *s);

/* Walks every indicator in (kind, digest) order; a non-zero return from fn stops the walk
 * and is returned. The match is valid during the call only. */
typedef int (*ioc_walk_fn)(void *ctx, const uint8_t *digest, const struct ioc_match *m);
int ioc_walk(struct ioc_store *s, ioc_walk_fn fn, void *ctx);

/* Per-source counts for `ward ioc stats`: fn called once per source. */
typedef int (*ioc_source_fn)(void *ctx, const char *source, int64_t count, int64_t oldest,
			     int64_t newest);
int ioc_sources(struct ioc_store *s, ioc_source_fn fn, void *ctx);
#endif
