/* test_ioc.c: the digest set against a brute-force oracle, and the store: lookups,
 * persistence, idempotent and atomic imports, merge rules for duplicates. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

#include "prevent/feed.h"
#include "prevent/ioc.h"
#include "t.h"

#define A256 "f24ba2577e338654d6abf5d702e86cde761ed280ffc5ceb11e54525536bc008a"
#define A5 "61da6393cea00fbb94dc1cdccf9e74db"
#define A1 "fbda16541536b835c5be1ca007310aed6b96b054"
#define B256 "d0d9173c66331ba3238e0435ecdf75237b3ec7201cc266bfb4c4796de6f634c3"
#define C256 "54fdfdc90c5355916a437e15baf284d93186bf5eab2fe0530d2f4b76c1d4eebe"
#define D256 "136b8c16db71c0c3b2f4f1e60c479b550d1972d49dec66321108683d4d5b460f"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void rand_digest(uint8_t *d, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = next_rand();
		memcpy(d + i, &v, n - i < 8 ? n - i : 8);
	}
}

static int cmp32(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

/* The set against qsort+bsearch on the same data, uniform and skewed (one bucket). */
static void test_set(void)
{
	static const struct { const char *what; size_t n; bool skewed; } cases[] = {
		{"empty", 0, false}, {"one", 1, false}, {"uniform", 20000, false},
		{"skewed into one bucket", 3000, true},
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		size_t n = cases[c].n, dups = n / 10;
		struct ioc_set s;
		uint8_t *ref = malloc((n + dups + 1) * 32);
		T_CHECK(ioc_set_init(&s, IOC_SHA256) == 0, "init");
		for (size_t i = 0; i < n; i++) {
			rand_digest(ref + i * 32, 32);
			if (cases[c].skewed)
				memset(ref + i * 32, 0xab, 6);   /* same top bits: one big bucket */
			ioc_set_add(&s, ref + i * 32);
		}
		for (size_t i = 0; i < dups; i++)   /* every tenth added twice */
			ioc_set_add(&s, ref + (i * 10) * 32);
		T_CHECK(ioc_set_build(&s) == 0, "%s: build", cases[c].what);
		T_CHECK(s.n == n, "%s: %zu entries after dropping duplicates, want %zu", cases[c].what,
			s.n, n);
		qsort(ref, n, 32, cmp32);
		size_t bad = 0;
		for (size_t i = 0; i < n; i++)
			bad += !ioc_set_contains(&s, ref + i * 32);
		T_CHECK(bad == 0, "%s: %zu inserted digests not found", cases[c].what, bad);
		bad = 0;
		for (size_t i = 0; i < 20000; i++) {
			uint8_t probe[32];
			rand_digest(probe, 32);
			if (cases[c].skewed && (i & 1))
				memset(probe, 0xab, 6);
			bool oracle = n && bsearch(probe, ref, n, 32, cmp32);
			bad += ioc_set_contains(&s, probe) != oracle;
		}
		T_CHECK(bad == 0, "%s: %zu probes disagree with bsearch", cases[c].what, bad);
		for (size_t i = 1; i < s.n; i++)
			if (memcmp(s.digests + (i - 1) * 32, s.digests + i * 32, 32) >= 0)
				bad++;
		T_CHECK(bad == 0, "%s: set not strictly sorted", cases[c].what);
		ioc_set_free(&s);
		free(ref);
	}
	struct ioc_set s;
	T_CHECK(ioc_set_init(&s, 7) == -EINVAL, "unknown kind");
}

static void hex(const char *h, uint8_t *out)
{
	ioc_hex_decode(h, strlen(h), out, strlen(h) / 2);
}

static int import(struct ioc_store *s, const char *text, const char *source,
		  struct feed_import *res, struct feed_error *err)
{
	return feed_import_buf(s, text, strlen(text), FEED_AUTO, source, res, err);
}

static const char *mkstate(char *buf, size_t n)
{
	snprintf(buf, n, "/tmp/ioc/test_ioc.XXXXXX");
	if (mkdir("/tmp/ioc", 0700) < 0 && errno != EEXIST)
		return NULL;
	return mkdtemp(buf);
}

static void rm_state(const char *dir)
{
	char p[512];
	static const char *const files[] = {"ioc.db", "ioc.db-wal", "ioc.db-shm"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		unlink(p);
	}
	rmdir(dir);
}

static void test_store(void)
{
	char dir[64];
	struct ioc_store *s = NULL;
	struct feed_import res;
	struct feed_error err;
	struct ioc_match m;
	uint8_t d[32];
	T_CHECK(mkstate(dir, sizeof(dir)), "state dir");
	T_CHECK(ioc_open(&s, dir) == 0 && s, "open");
	if (!s)
		return;
	T_CHECK(ioc_count(s, 0) == 0, "empty store");

	const char *list = "# list\n" A256 "  # LockBit\n" A5 "\n" A1 "\n";
	T_CHECK(import(s, list, "list.txt", &res, &err) == 0, "import: %s", err.msg);
	T_CHECK(res.added == 3 && res.updated == 0 && res.format == FEED_PLAIN, "added %zu",
		res.added);
	T_CHECK(ioc_count(s, 0) == 3 && ioc_count(s, IOC_SHA256) == 1 && ioc_count(s, IOC_MD5) == 1,
		"counts");

	hex(A256, d);
	T_CHECK(ioc_lookup_sha256(s, d, &m) == 1, "sha256 hit");
	T_CHECK(!strcmp(m.source, "list.txt") && !strcmp(m.name, "LockBit") &&
			m.confidence == IOC_CONFIDENCE_DEFAULT && m.kind == IOC_SHA256,
		"match fields: %s %s %d", m.source, m.name, m.confidence);
	T_CHECK(m.first_seen > 0 && llabs(m.first_seen - time(NULL)) < 60,
		"unknown first-seen becomes the import time");
	T_CHECK(ioc_lookup_sha256(s, d, NULL) == 1, "memory-only hit");
	hex(A5, d);
	T_CHECK(ioc_lookup_md5(s, d, &m) == 1, "md5 hit");
	hex(A1, d);
	T_CHECK(ioc_lookup_sha1(s, d, NULL) == 1, "sha1 hit");
	hex(B256, d);
	T_CHECK(ioc_lookup_sha256(s, d, &m) == 0, "miss");
	hex(A256, d);
	T_CHECK(ioc_lookup_md5(s, d, NULL) == 0, "a sha256 prefix is not an md5");
	T_CHECK(ioc_memory(s) > 0, "sets built");

	/* idempotent: same feed again adds and changes nothing */
	T_CHECK(import(s, list, "list.txt", &res, &err) == 0, "reimport");
	T_CHECK(res.added == 0 && res.updated == 0 && res.stats.hashes == 3, "reimport added %zu "
		"updated %zu", res.added, res.updated);
	T_CHECK(ioc_count(s, 0) == 3, "count after reimport");

	/* merge: a second source with an earlier time and higher confidence */
	const char *stix_late =
		"{\"type\":\"bundle\",\"objects\":[{\"type\":\"indicator\",\"pattern_type\":\"stix\","
		"\"valid_from\":\"2024-03-01T00:00:00Z\",\"confidence\":40,"
		"\"pattern\":\"[file:hashes.'SHA-256' = '" B256 "']\"}]}";
	const char *stix_early =
		"{\"type\":\"bundle\",\"objects\":[{\"type\":\"indicator\",\"pattern_type\":\"stix\","
		"\"valid_from\":\"2024-01-01T00:00:00Z\",\"confidence\":90,\"name\":\"later name\","
		"\"pattern\":\"[file:hashes.'SHA-256' = '" B256 "']\"}]}";
	const char *stix_worse =
		"{\"type\":\"bundle\",\"objects\":[{\"type\":\"indicator\",\"pattern_type\":\"stix\","
		"\"valid_from\":\"2024-06-01T00:00:00Z\",\"confidence\":10,"
		"\"pattern\":\"[file:hashes.'SHA-256' = '" B256 "']\"}]}";
	T_CHECK(import(s, stix_late, "feed-a", &res, &err) == 0 && res.added == 1, "feed a");
	T_CHECK(import(s, stix_early, "feed-b", &res, &err) == 0 && res.added == 0 &&
			res.updated == 1,
		"feed b updates (added %zu updated %zu)", res.added, res.updated);
	T_CHECK(import(s, stix_worse, "feed-c", &res, &err) == 0 && res.added == 0 &&
			res.updated == 0,
		"feed c changes nothing");
	hex(B256, d);
	T_CHECK(ioc_lookup_sha256(s, d, &m) == 1, "merged hit");
	struct tm jan1 = {.tm_year = 124, .tm_mon = 0, .tm_mday = 1};
	T_CHECK(m.first_seen == (int64_t)timegm(&jan1), "earliest first-seen kept");
	T_CHECK(m.confidence == 90, "highest confidence kept: %d", m.confidence);
	T_CHECK(!strcmp(m.source, "feed-a"), "first source kept: %s", m.source);
	T_CHECK(!strcmp(m.name, "later name"), "a missing name is filled in: %s", m.name);

	/* atomic: a bad line 4 keeps lines 1-3 out */
	int64_t before = ioc_count(s, 0);
	const char *bad = C256 "\n" D256 "\n# ok so far\nnot-a-hash\n";
	T_CHECK(import(s, bad, "bad.txt", &res, &err) == -EBADMSG, "bad feed fails");
	T_CHECK(err.line == 4, "error line %zu", err.line);
	T_CHECK(ioc_count(s, 0) == before, "nothing from the bad feed in the database");
	hex(C256, d);
	T_CHECK(ioc_lookup_sha256(s, d, NULL) == 0, "nothing from the bad feed in memory");
	const char *bad_misp =
		"{\"Event\":{\"Attribute\":[{\"type\":\"sha256\",\"to_ids\":true,\"value\":\"" D256 "\"},"
		"{\"type\":\"sha256\",\"to_ids\":true,\"value\":\"xyz\"}]}}";
	T_CHECK(import(s, bad_misp, "bad.json", &res, &err) == -EBADMSG && res.added == 0,
		"bad MISP fails");
	T_CHECK(!strcmp(err.where, "$.Event.Attribute[1].value"), "where %s", err.where);
	hex(D256, d);
	T_CHECK(ioc_lookup_sha256(s, d, NULL) == 0 && ioc_count(s, 0) == before,
		"nothing from the bad MISP event");

	/* files: errors name the file */
	char msg[600];
	T_CHECK(feed_import_file(s, "/nonexistent/feed.txt", FEED_AUTO, NULL, &res, &err) == -ENOENT,
		"missing file");
	feed_error_format(&err, "/nonexistent/feed.txt", msg, sizeof(msg));
	T_CHECK(strstr(msg, "/nonexistent/feed.txt") != NULL, "%s", msg);
	char path[128];
	snprintf(path, sizeof(path), "%s/feed.txt", dir);
	FILE *f = fopen(path, "w");
	fputs(C256 "\n", f);
	fclose(f);
	T_CHECK(feed_import_file(s, path, FEED_AUTO, NULL, &res, &err) == 0 && res.added == 1,
		"file import");
	hex(C256, d);
	T_CHECK(ioc_lookup_sha256(s, d, &m) == 1 && !strcmp(m.source, "feed.txt"),
		"source defaults to the base name: %s", m.source);
	unlink(path);
	T_CHECK(feed_import_file(s, "/tmp", FEED_AUTO, NULL, &res, &err) == -EINVAL,
		"a directory is refused");

	/* persistence */
	int64_t total = ioc_count(s, 0);
	ioc_close(s);
	s = NULL;
	T_CHECK(ioc_open(&s, dir) == 0, "reopen");
	T_CHECK(ioc_count(s, 0) == total, "count survives reopen");
	T_CHECK(ioc_load(s) == 0, "load");
	hex(B256, d);
	T_CHECK(ioc_lookup_sha256(s, d, &m) == 1 && m.confidence == 90, "hit after reopen");

	/* transactions by hand: a rollback leaves nothing */
	struct ioc_record rec = {.kind = IOC_SHA256, .confidence = 101};
	hex(D256, rec.digest);
	T_CHECK(ioc_put(s, &rec, "x") == -EINVAL, "put outside a transaction");
	T_CHECK(ioc_begin(s) == 0, "begin");
	T_CHECK(ioc_put(s, &rec, "x") == -EINVAL, "confidence 101 refused");
	rec.confidence = 70;
	T_CHECK(ioc_put(s, &rec, "x") == IOC_PUT_NEW, "put");
	T_CHECK(ioc_put(s, &rec, "x") == IOC_PUT_SAME, "same again");
	ioc_rollback(s);
	hex(D256, d);
	T_CHECK(ioc_lookup_sha256(s, d, NULL) == 0 && ioc_count(s, 0) == total, "rolled back");
	ioc_close(s);
	rm_state(dir);
}

struct walk { size_t n; enum ioc_kind last; bool ordered; };
static int walk_fn(void *ctx, const uint8_t *digest, const struct ioc_match *m)
{
	struct walk *w = ctx;
	w->ordered &= m->kind >= w->last;
	w->last = m->kind;
	w->n++;
	return 0;
}

static void test_walk(void)
{
	char dir[64];
	struct ioc_store *s = NULL;
	struct feed_import res;
	struct feed_error err;
	T_CHECK(mkstate(dir, sizeof(dir)) && ioc_open(&s, dir) == 0, "open");
	if (!s)
		return;
	T_CHECK(import(s, A256 "\n" A5 "\n" A1 "\n" B256 "\n", "w", &res, &err) == 0, "import");
	struct walk w = {.ordered = true};
	T_CHECK(ioc_walk(s, walk_fn, &w) == 0 && w.n == 4 && w.ordered, "walk %zu", w.n);
	ioc_close(s);
	rm_state(dir);
}

int main(void)
{
	ward_log_level = LOG_CRIT;   /* expected failures below log errors */
	test_set();
	test_store();
	test_walk();
	return T_DONE("ioc");
}
