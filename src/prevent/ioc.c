/* ioc.c: the indicator store. SQLite is the record of truth (source, times, names);
 * the sorted digest sets are a cache of its keys rebuilt by ioc_load(), so a crash can
 * never leave memory and disk disagreeing for longer than one reload. */
#include "prevent/ioc.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include "core/log.h"

size_t ioc_kind_len(enum ioc_kind kind)
{
	switch (kind) {
	case IOC_MD5: return 16;
	case IOC_SHA1: return 20;
	case IOC_SHA256: return 32;
	}
	return 0;
}

const char *ioc_kind_name(enum ioc_kind kind)
{
	switch (kind) {
	case IOC_MD5: return "md5";
	case IOC_SHA1: return "sha1";
	case IOC_SHA256: return "sha256";
	}
	return "?";
}

enum ioc_kind ioc_kind_for_hexlen(size_t hexlen)
{
	switch (hexlen) {
	case 32: return IOC_MD5;
	case 40: return IOC_SHA1;
	case 64: return IOC_SHA256;
	}
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int ioc_hex_decode(const char *hex, size_t hexlen, uint8_t *out, size_t len)
{
	if (hexlen != 2 * len)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

void ioc_hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

/* ---------------------------------------------------------------- the set */

int ioc_set_init(struct ioc_set *s, enum ioc_kind kind)
{
	memset(s, 0, sizeof(*s));
	s->dlen = ioc_kind_len(kind);
	return s->dlen ? 0 : -EINVAL;
}

void ioc_set_free(struct ioc_set *s)
{
	free(s->digests);
	free(s->bucket);
	size_t dlen = s->dlen;
	memset(s, 0, sizeof(*s));
	s->dlen = dlen;
}

/* A lookup in a large set is a random access into hundreds of MiB; with 4 KiB pages it
 * also misses the TLB, which under virtualisation costs a two-level page walk. Transparent
 * huge pages in "madvise" mode (Debian's default) need asking for. Advisory: errors are
 * ignored. */
static void advise_huge(void *p, size_t len)
{
	const uintptr_t huge = (uintptr_t)2 << 20;
	uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1), e = ((uintptr_t)p + len) & ~(huge - 1);
	if (len >= 4 * huge && e > a)
		madvise((void *)a, e - a, MADV_HUGEPAGE);
}

int ioc_set_reserve(struct ioc_set *s, size_t n)
{
	if (n <= s->cap)
		return 0;
	if (n > UINT32_MAX)
		return -EOVERFLOW;
	uint8_t *nd = realloc(s->digests, n * s->dlen);
	if (!nd)
		return -ENOMEM;
	s->digests = nd;
	s->cap = n;
	advise_huge(nd, n * s->dlen);
	return 0;
}

int ioc_set_add(struct ioc_set *s, const uint8_t *digest)
{
	if (s->n == s->cap) {
		int r = ioc_set_reserve(s, s->cap ? s->cap * 2 : 1024);
		if (r < 0)
			return r;
	}
	memcpy(s->digests + s->n * s->dlen, digest, s->dlen);
	s->n++;
	s->built = false;
	return 0;
}

static inline uint32_t top_bits(const uint8_t *d, unsigned bits)
{
	uint32_t v = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
	return v >> (32 - bits);
}

static int cmp_digest(const void *a, const void *b, void *dlen)
{
	return memcmp(a, b, *(size_t *)dlen);
}

/* Sorts one bucket: insertion sort for the usual handful, qsort_r when a skewed input
 * (not uniform digests, e.g. a crafted feed) piles many into one bucket. */
static void sort_bucket(uint8_t *base, size_t k, size_t dlen)
{
	if (k > 16) {
		qsort_r(base, k, dlen, cmp_digest, &dlen);
		return;
	}
	uint8_t tmp[IOC_DIGEST_MAX];
	for (size_t i = 1; i < k; i++) {
		size_t j = i;
		memcpy(tmp, base + i * dlen, dlen);
		while (j > 0 && memcmp(base + (j - 1) * dlen, tmp, dlen) > 0) {
			memcpy(base + j * dlen, base + (j - 1) * dlen, dlen);
			j--;
		}
		memcpy(base + j * dlen, tmp, dlen);
	}
}

static void count_buckets(struct ioc_set *s, size_t nb)
{
	memset(s->bucket, 0, (nb + 1) * sizeof(*s->bucket));
	for (size_t i = 0; i < s->n; i++)
		s->bucket[top_bits(s->digests + i * s->dlen, s->bits) + 1]++;
	for (size_t b = 0; b < nb; b++)
		s->bucket[b + 1] += s->bucket[b];
}

/* In-place MSD radix sort, one byte per level ("American flag sort": each digest is
 * swapped straight into its byte's region). 256 regions per pass keep the writes to 256
 * advancing cursors, which caches and the TLB follow; a single pass over 2^22 buckets was
 * measured 10x slower at 10 million digests because every swap missed the TLB. After two
 * levels the regions are cache-sized and small, so the whole sort is O(n), needs no
 * second copy of the digests, and uniform digests never go past the third byte. */
static void msd_sort(uint8_t *base, size_t n, size_t dlen, size_t byte)
{
	if (n <= 16 || byte >= dlen) {
		if (byte < dlen)
			sort_bucket(base, n, dlen);
		return;   /* byte == dlen: all equal */
	}
	uint32_t start[257], next[256];
	memset(start, 0, sizeof(start));
	for (size_t i = 0; i < n; i++)
		start[base[i * dlen + byte] + 1]++;
	for (int b = 0; b < 256; b++)
		start[b + 1] += start[b];
	memcpy(next, start, sizeof(next));
	uint8_t tmp[IOC_DIGEST_MAX];
	for (int b = 0; b < 256; b++) {
		while (next[b] < start[b + 1]) {
			uint8_t *d = base + (size_t)next[b] * dlen;
			unsigned to = d[byte];
			if (to == (unsigned)b) {
				next[b]++;
				continue;
			}
			uint8_t *o = base + (size_t)next[to] * dlen;
			memcpy(tmp, o, dlen);
			memcpy(o, d, dlen);
			memcpy(d, tmp, dlen);
			next[to]++;
		}
	}
	for (int b = 0; b < 256; b++)
		msd_sort(base + (size_t)start[b] * dlen, start[b + 1] - start[b], dlen, byte + 1);
}

int ioc_set_build(struct ioc_set *s)
{
	if (s->n > UINT32_MAX)
		return -EOVERFLOW;
	/* about 4 digests per bucket: the index costs 1 byte per entry for sha256 and a
	 * lookup's binary search stays within one or two cache lines */
	unsigned bits = 8;
	while (bits < 24 && ((size_t)1 << bits) < s->n / 4)
		bits++;
	size_t nb = (size_t)1 << bits;
	uint32_t *bucket = realloc(s->bucket, (nb + 1) * sizeof(*bucket));
	if (!bucket)
		return -ENOMEM;
	s->bucket = bucket;
	s->bits = bits;
	advise_huge(bucket, (nb + 1) * sizeof(*bucket));
	size_t dlen = s->dlen;
	msd_sort(s->digests, s->n, dlen, 0);

	/* duplicates are adjacent now; compacting keeps the order */
	size_t w = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (w && !memcmp(s->digests + (w - 1) * dlen, s->digests + i * dlen, dlen))
			continue;
		if (w != i)
			memcpy(s->digests + w * dlen, s->digests + i * dlen, dlen);
		w++;
	}
	s->n = w;
	count_buckets(s, nb);
	s->built = true;
	return 0;
}

bool ioc_set_contains(const struct ioc_set *s, const uint8_t *digest)
{
	if (!s->built || !s->n)
		return false;
	uint32_t b = top_bits(digest, s->bits);
	size_t lo = s->bucket[b], hi = s->bucket[b + 1];
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(s->digests + mid * s->dlen, digest, s->dlen);
		if (!c)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

size_t ioc_set_bytes(const struct ioc_set *s)
{
	size_t idx = s->bucket ? (((size_t)1 << s->bits) + 1) * sizeof(*s->bucket) : 0;
	return s->cap * s->dlen + idx;
}

/* ---------------------------------------------------------------- the store */

#define NKINDS 3

struct ioc_store {
	sqlite3 *db;
	sqlite3_stmt *ins, *upd, *get;
	struct ioc_set sets[NKINDS];   /* indexed by kind - 1 */
	bool loaded;                   /* the sets mirror the database */
	bool in_tx;
	bool tx_changed;
	int64_t tx_now;
};

static const char SCHEMA[] =
	"CREATE TABLE IF NOT EXISTS ioc("
	" kind INTEGER NOT NULL,"        /* enum ioc_kind */
	" digest BLOB NOT NULL,"
	" source TEXT NOT NULL,"
	" first_seen INTEGER NOT NULL,"  /* unix seconds */
	" confidence INTEGER NOT NULL,"  /* 0-100 */
	" name TEXT, tags TEXT,"
	" PRIMARY KEY(kind, digest)) WITHOUT ROWID;";

static int sql_err(sqlite3 *db, const char *what)
{
	int rc = sqlite3_errcode(db);
	log_err("ioc: %s: %s", what, sqlite3_errmsg(db));
	switch (rc) {
	case SQLITE_NOMEM: return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED: return -EBUSY;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH: return -EACCES;
	case SQLITE_FULL: return -ENOSPC;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB: return -EBADMSG;
	}
	return -EIO;
}

static int exec_sql(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return sql_err(db, sql);
	return 0;
}

int ioc_open(struct ioc_store **out, const char *state_dir)
{
	int r = 0;
	char path[4096];
	struct ioc_store *s = calloc(1, sizeof(*s));
	*out = NULL;
	if (!s)
		return -ENOMEM;
	for (int k = 0; k < NKINDS; k++)
		ioc_set_init(&s->sets[k], (enum ioc_kind)(k + 1));
	if ((size_t)snprintf(path, sizeof(path), "%s/ioc.db", state_dir) >= sizeof(path)) {
		r = -ENAMETOOLONG;
		goto out;
	}
	/* the state dir holds the vault too: keep it private if we are the ones creating it */
	if (mkdir(state_dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		log_err("ioc: cannot create %s: %s", state_dir, strerror(errno));
		goto out;
	}
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
	    SQLITE_OK) {
		r = s->db ? sql_err(s->db, path) : -ENOMEM;
		goto out;
	}
	/* the daemon reads while `ward ioc import` writes: WAL lets both proceed */
	sqlite3_busy_timeout(s->db, 5000);
	/* digests are random keys: a big feed inserts all over the B-tree, and SQLite's 2 MiB
	 * default page cache would reread pages for most rows */
	if ((r = exec_sql(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
				 " PRAGMA cache_size=-32768;")) < 0 ||
	    (r = exec_sql(s->db, SCHEMA)) < 0)
		goto out;
	static const char *const sql[] = {
		"INSERT INTO ioc(kind,digest,source,first_seen,confidence,name,tags)"
		" VALUES(?1,?2,?7,?3,?4,?5,?6) ON CONFLICT(kind,digest) DO NOTHING",
		/* the WHERE keeps a re-import from counting (or writing) unchanged rows */
		"UPDATE ioc SET first_seen=min(first_seen,?3), confidence=max(confidence,?4),"
		" name=coalesce(name,?5), tags=coalesce(tags,?6)"
		" WHERE kind=?1 AND digest=?2 AND (first_seen>?3 OR confidence<?4"
		" OR (name IS NULL AND ?5 IS NOT NULL) OR (tags IS NULL AND ?6 IS NOT NULL))",
		"SELECT source,first_seen,confidence,name,tags FROM ioc WHERE kind=?1 AND digest=?2",
	};
	sqlite3_stmt **stmts[] = {&s->ins, &s->upd, &s->get};
	for (size_t i = 0; i < 3; i++) {
		if (sqlite3_prepare_v2(s->db, sql[i], -1, stmts[i], NULL) != SQLITE_OK) {
			r = sql_err(s->db, "prepare");
			goto out;
		}
	}
	*out = s;
	s = NULL;
out:
	ioc_close(s);
	return r;
}

void ioc_close(struct ioc_store *s)
{
	if (!s)
		return;
	if (s->in_tx)
		ioc_rollback(s);
	sqlite3_finalize(s->ins);
	sqlite3_finalize(s->upd);
	sqlite3_finalize(s->get);
	sqlite3_close(s->db);
	for (int k = 0; k < NKINDS; k++)
		ioc_set_free(&s->sets[k]);
	free(s);
}

int ioc_load(struct ioc_store *s)
{
	int r = 0;
	sqlite3_stmt *st = NULL;
	struct ioc_set fresh[NKINDS];
	for (int k = 0; k < NKINDS; k++)
		ioc_set_init(&fresh[k], (enum ioc_kind)(k + 1));
	/* size the arrays once: at 10 million rows, doubling would copy gigabytes */
	if (sqlite3_prepare_v2(s->db, "SELECT kind,count(*) FROM ioc GROUP BY kind", -1, &st,
			       NULL) != SQLITE_OK) {
		r = sql_err(s->db, "count");
		goto out;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		int k = sqlite3_column_int(st, 0);
		if (k >= 1 && k <= NKINDS &&
		    (r = ioc_set_reserve(&fresh[k - 1], (size_t)sqlite3_column_int64(st, 1))) < 0)
			goto out;
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(s->db, "SELECT kind,digest FROM ioc", -1, &st, NULL) != SQLITE_OK) {
		r = sql_err(s->db, "load");
		goto out;
	}
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int k = sqlite3_column_int(st, 0);
		const void *d = sqlite3_column_blob(st, 1);
		/* a row another tool wrote with a bad kind or length is ignored, not trusted */
		if (k < 1 || k > NKINDS || !d ||
		    (size_t)sqlite3_column_bytes(st, 1) != fresh[k - 1].dlen)
			continue;
		if ((r = ioc_set_add(&fresh[k - 1], d)) < 0)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		r = sql_err(s->db, "load");
		goto out;
	}
	for (int k = 0; k < NKINDS; k++)
		if ((r = ioc_set_build(&fresh[k])) < 0)
			goto out;
	for (int k = 0; k < NKINDS; k++) {
		struct ioc_set old = s->sets[k];
		s->sets[k] = fresh[k];
		fresh[k] = old;
	}
	s->loaded = true;
out:
	sqlite3_finalize(st);
	for (int k = 0; k < NKINDS; k++)
		ioc_set_free(&fresh[k]);
	return r;
}

static void copy_text(char *dst, const unsigned char *src)
{
	snprintf(dst, IOC_TEXT_MAX, "%s", src ? (const char *)src : "");
}

int ioc_lookup(struct ioc_store *s, enum ioc_kind kind, const uint8_t *digest,
	       struct ioc_match *m)
{
	int r;
	if (!ioc_kind_len(kind))
		return -EINVAL;
	if (!s->loaded && (r = ioc_load(s)) < 0)
		return r;
	if (!ioc_set_contains(&s->sets[kind - 1], digest))
		return 0;
	if (!m)
		return 1;
	sqlite3_stmt *st = s->get;
	sqlite3_bind_int(st, 1, kind);
	sqlite3_bind_blob(st, 2, digest, (int)ioc_kind_len(kind), SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		memset(m, 0, sizeof(*m));
		m->kind = kind;
		copy_text(m->source, sqlite3_column_text(st, 0));
		m->first_seen = sqlite3_column_int64(st, 1);
		m->confidence = sqlite3_column_int(st, 2);
		copy_text(m->name, sqlite3_column_text(st, 3));
		copy_text(m->tags, sqlite3_column_text(st, 4));
		r = 1;
	} else if (rc == SQLITE_DONE) {
		r = 0;   /* removed from the database behind our back: not a hit any more */
	} else {
		r = sql_err(s->db, "lookup");
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

int ioc_lookup_md5(struct ioc_store *s, const uint8_t digest[16], struct ioc_match *m)
{
	return ioc_lookup(s, IOC_MD5, digest, m);
}

int ioc_lookup_sha1(struct ioc_store *s, const uint8_t digest[20], struct ioc_match *m)
{
	return ioc_lookup(s, IOC_SHA1, digest, m);
}

int ioc_lookup_sha256(struct ioc_store *s, const uint8_t digest[32], struct ioc_match *m)
{
	return ioc_lookup(s, IOC_SHA256, digest, m);
}

int64_t ioc_count(struct ioc_store *s, enum ioc_kind kind)
{
	sqlite3_stmt *st = NULL;
	int64_t r;
	const char *sql = kind ? "SELECT count(*) FROM ioc WHERE kind=?1" : "SELECT count(*) FROM ioc";
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return sql_err(s->db, "count");
	if (kind)
		sqlite3_bind_int(st, 1, kind);
	if (sqlite3_step(st) == SQLITE_ROW)
		r = sqlite3_column_int64(st, 0);
	else
		r = sql_err(s->db, "count");
	sqlite3_finalize(st);
	return r;
}

size_t ioc_memory(const struct ioc_store *s)
{
	size_t n = 0;
	for (int k = 0; k < NKINDS; k++)
		n += ioc_set_bytes(&s->sets[k]);
	return n;
}

int ioc_begin(struct ioc_store *s)
{
	if (s->in_tx)
		return -EBUSY;
	/* IMMEDIATE takes the write lock now, so a concurrent import waits here (busy
	 * timeout) instead of failing half-way through a feed */
	int r = exec_sql(s->db, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	s->in_tx = true;
	s->tx_changed = false;
	s->tx_now = time(NULL);
	return 0;
}

/* Binds text cut to IOC_TEXT_MAX-1 bytes on a UTF-8 boundary; empty becomes NULL. */
static void bind_text(sqlite3_stmt *st, int idx, const char *t)
{
	if (!t || !*t) {
		sqlite3_bind_null(st, idx);
		return;
	}
	size_t n = strnlen(t, IOC_TEXT_MAX);
	if (n > IOC_TEXT_MAX - 1) {
		n = IOC_TEXT_MAX - 1;
		while (n > 0 && ((unsigned char)t[n] & 0xc0) == 0x80)
			n--;
	}
	sqlite3_bind_text(st, idx, t, (int)n, SQLITE_TRANSIENT);
}

static void bind_record(sqlite3_stmt *st, const struct ioc_record *rec, int64_t first_seen,
			int confidence)
{
	sqlite3_bind_int(st, 1, rec->kind);
	sqlite3_bind_blob(st, 2, rec->digest, (int)ioc_kind_len(rec->kind), SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, first_seen);
	sqlite3_bind_int(st, 4, confidence);
	bind_text(st, 5, rec->name);
	bind_text(st, 6, rec->tags);
}

static int step_changes(struct ioc_store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	int r = rc == SQLITE_DONE ? sqlite3_changes(s->db) : sql_err(s->db, what);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

int ioc_put(struct ioc_store *s, const struct ioc_record *rec, const char *source)
{
	if (!s->in_tx)
		return -EINVAL;
	if (!ioc_kind_len(rec->kind) || rec->confidence < -1 || rec->confidence > 100)
		return -EINVAL;
	int64_t first_seen = rec->first_seen ? rec->first_seen : s->tx_now;
	int confidence = rec->confidence < 0 ? IOC_CONFIDENCE_DEFAULT : rec->confidence;

	bind_record(s->ins, rec, first_seen, confidence);
	bind_text(s->ins, 7, source && *source ? source : "unknown");
	int r = step_changes(s, s->ins, "insert");
	if (r < 0)
		return r;
	if (r > 0) {
		s->tx_changed = true;
		return IOC_PUT_NEW;
	}
	bind_record(s->upd, rec, first_seen, confidence);
	r = step_changes(s, s->upd, "update");
	if (r < 0)
		return r;
	return r > 0 ? IOC_PUT_UPDATED : IOC_PUT_SAME;
}

int ioc_commit(struct ioc_store *s)
{
	if (!s->in_tx)
		return -EINVAL;
	int r = exec_sql(s->db, "COMMIT");
	if (r < 0) {
		ioc_rollback(s);
		return r;
	}
	s->in_tx = false;
	/* only new digests change the sets; the next lookup rebuilds them */
	if (s->tx_changed)
		s->loaded = false;
	return 0;
}

void ioc_rollback(struct ioc_store *s)
{
	if (!s->in_tx)
		return;
	/* fails only if SQLite already rolled back itself (e.g. on SQLITE_FULL): fine */
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	s->in_tx = false;
}

int ioc_walk(struct ioc_store *s, ioc_walk_fn fn, void *ctx)
{
	int r = 0, rc;
	sqlite3_stmt *st = NULL;
	struct ioc_match m;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT kind,digest,source,first_seen,confidence,name,tags FROM ioc"
			       " ORDER BY kind,digest",
			       -1, &st, NULL) != SQLITE_OK)
		return sql_err(s->db, "walk");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int k = sqlite3_column_int(st, 0);
		const void *d = sqlite3_column_blob(st, 1);
		if (!ioc_kind_len(k) || !d || (size_t)sqlite3_column_bytes(st, 1) != ioc_kind_len(k))
			continue;
		memset(&m, 0, sizeof(m));
		m.kind = k;
		copy_text(m.source, sqlite3_column_text(st, 2));
		m.first_seen = sqlite3_column_int64(st, 3);
		m.confidence = sqlite3_column_int(st, 4);
		copy_text(m.name, sqlite3_column_text(st, 5));
		copy_text(m.tags, sqlite3_column_text(st, 6));
		if ((r = fn(ctx, d, &m)) != 0)
			goto out;
	}
	if (rc != SQLITE_DONE)
		r = sql_err(s->db, "walk");
out:
	sqlite3_finalize(st);
	return r;
}

int ioc_sources(struct ioc_store *s, ioc_source_fn fn, void *ctx)
{
	int r = 0, rc;
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT source,count(*),min(first_seen),max(first_seen) FROM ioc"
			       " GROUP BY source ORDER BY source",
			       -1, &st, NULL) != SQLITE_OK)
		return sql_err(s->db, "sources");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *src = sqlite3_column_text(st, 0);
		if ((r = fn(ctx, src ? (const char *)src : "", sqlite3_column_int64(st, 1),
			    sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3))) != 0)
			goto out;
	}
	if (rc != SQLITE_DONE)
		r = sql_err(s->db, "sources");
out:
	sqlite3_finalize(st);
	return r;
}
