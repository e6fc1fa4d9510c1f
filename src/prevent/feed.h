/* feed.h: the indicator feed readers (plain hash lists, MalwareBazaar CSV exports, STIX 2.1
 * bundles, MISP event JSON) and the import of a feed file into the ioc store as one
 * transaction. Readers work on a memory buffer, trust nothing in it, and report the first
 * problem with its position (line, byte offset or JSON path). */
#ifndef WARD_PREVENT_FEED_H
#define WARD_PREVENT_FEED_H
#include <stddef.h>

#include "prevent/ioc.h"

enum feed_format { FEED_AUTO = 0, FEED_PLAIN, FEED_CSV, FEED_STIX, FEED_MISP };

#define FEED_MAX_BYTES ((size_t)512 << 20)   /* bigger feed files are refused */

struct feed_stats {
	size_t hashes;              /* indicators handed to the callback */
	size_t skipped;             /* entries recognised but not file hashes (counted, skipped) */
	char skipped_kinds[160];    /* what was skipped, distinct, comma-separated */
};

struct feed_error {
	size_t line;       /* 1-based; 0 when the position is a JSON path */
	size_t offset;     /* byte offset into the buffer, when known */
	char where[128];   /* JSON path such as "$.objects[3].pattern", or "" */
	char msg[192];
};

/* Called once per hash; the record's strings live until the callback returns. A negative
 * return stops the parse and is passed back. */
typedef int (*feed_cb)(void *ctx, const struct ioc_record *rec);

const char *feed_format_name(enum feed_format f);
/* "auto", "plain", "csv" (or "malwarebazaar"), "stix", "misp"; -EINVAL otherwise. */
int feed_format_parse(const char *name, enum feed_format *out);

/* Parses buf[0..len) as format fmt (FEED_AUTO: detect). Returns 0, -EBADMSG for a
 * malformed feed (err says where and why), or the callback's error. *detected (may be
 * NULL) receives the format used. st and err may not be NULL. */
int feed_parse(const char *buf, size_t len, enum feed_format fmt, feed_cb cb, void *ctx,
	       struct feed_stats *st, struct feed_error *err, enum feed_format *detected);

struct feed_import {
	enum feed_format format;
	struct feed_stats stats;
	size_t added;      /* digests the store did not know */
	size_t updated;    /* known digests given an earlier first-seen or higher confidence */
};

/* Imports one feed into the store in a single transaction: on any error nothing from this
 * feed is kept. source NULL means the file's base name. */
int feed_import_buf(struct ioc_store *s, const char *buf, size_t len, enum feed_format fmt,
		    const char *source, struct feed_import *res, struct feed_error *err);
/* path "-" reads standard input. */
int feed_import_file(struct ioc_store *s, const char *path, enum feed_format fmt,
		     const char *source, struct feed_import *res, struct feed_error *err);

/* "FILE:LINE: msg", "FILE: $.objects[2].pattern: msg" or "FILE: msg" into out. */
void feed_error_format(const struct feed_error *e, const char *file, char *out, size_t n);
#endif
