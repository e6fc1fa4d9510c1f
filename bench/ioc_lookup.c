/* ioc_lookup.c: how fast and how big the in-memory indicator set is at 10 million sha256
 * digests, against a 1,000-entry set (cache-resident) measured in the same run, plus the
 * import rate of a plain feed through the SQLite store.
 *
 * Usage: ioc_lookup [entries] (default 10000000). Digests are pseudo-random (splitmix64,
 * fixed seed) like real cryptographic hashes; hit queries are entries picked at random,
 * miss queries are fresh digests. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "prevent/feed.h"
#include "prevent/ioc.h"

static uint64_t mix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Digest number i: a pure function of i, so queries can name entries without a copy. */
static void digest_of(uint64_t i, uint8_t d[32])
{
	for (int k = 0; k < 4; k++) {
		uint64_t v = mix(i * 4 + (uint64_t)k);
		memcpy(d + 8 * k, &v, 8);
	}
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int build(struct ioc_set *s, uint64_t n, double *add_s, double *sort_s)
{
	uint8_t d[32];
	int r;
	double t0 = now();
	if ((r = ioc_set_init(s, IOC_SHA256)) < 0 || (r = ioc_set_reserve(s, n)) < 0)
		return r;
	for (uint64_t i = 0; i < n; i++) {
		digest_of(i, d);
		ioc_set_add(s, d);
	}
	double t1 = now();
	r = ioc_set_build(s);
	*add_s = t1 - t0;
	*sort_s = now() - t1;
	return r;
}

/* Queries: hits are entries [0, n) at random, misses are digests numbered past n. */
static uint8_t *queries(uint64_t q, uint64_t n, bool hits, uint64_t seed)
{
	uint8_t *a = malloc(q * 32);
	if (!a)
		return NULL;
	for (uint64_t i = 0; i < q; i++) {
		uint64_t r = mix(seed + i);
		digest_of(hits ? r % n : n + 1 + r % (1ull << 40), a + i * 32);
	}
	return a;
}

static double run(const struct ioc_set *s, const uint8_t *q, uint64_t nq, uint64_t *found)
{
	uint64_t f = 0;
	double t0 = now();
	for (uint64_t i = 0; i < nq; i++)
		f += ioc_set_contains(s, q + i * 32);
	*found = f;
	return now() - t0;
}

/* Import rate through the real store: a plain feed into a fresh state dir. */
static int import_rate(uint64_t lines, double *secs)
{
	int r;
	char dir[256], path[300];
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/ward-bench-ioc.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		return -errno;
	char *buf = malloc(lines * 65);
	struct ioc_store *st = NULL;
	struct feed_import res;
	struct feed_error err;
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	for (uint64_t i = 0; i < lines; i++) {
		uint8_t d[32];
		digest_of(~i, d);
		ioc_hex_encode(d, 32, buf + i * 65);
		buf[i * 65 + 64] = '\n';
	}
	if ((r = ioc_open(&st, dir)) < 0)
		goto out;
	double t0 = now();
	r = feed_import_buf(st, buf, lines * 65, FEED_PLAIN, "bench", &res, &err);
	*secs = now() - t0;
	if (!r && res.added != lines)
		r = -EIO;
out:
	ioc_close(st);
	free(buf);
	static const char *const files[] = {"ioc.db", "ioc.db-wal", "ioc.db-shm"};
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
	return r;
}

int main(int argc, char **argv)
{
	uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000;
	const uint64_t small_n = 1000, nq = 10000000, import_lines = 200000;
	struct ioc_set big, small;
	double add_s, sort_s, sadd, ssort;
	uint64_t f;
	int status = 0;
	if (n < 2 * small_n) {
		fprintf(stderr, "ioc_lookup: need at least %llu entries\n",
			(unsigned long long)(2 * small_n));
		return 2;
	}
	ward_log_level = LOG_ERR;

	if (build(&big, n, &add_s, &sort_s) < 0 || build(&small, small_n, &sadd, &ssort) < 0) {
		fprintf(stderr, "ioc_lookup: out of memory\n");
		return 1;
	}
	size_t bytes = ioc_set_bytes(&big);
	printf("ioc_lookup: %llu sha256 digests: load %.2f s (generate+append %.2f s, sort+index "
	       "%.2f s), %.1f MiB = %.1f bytes/entry (raw digest 32)\n",
	       (unsigned long long)n, add_s + sort_s, add_s, sort_s, (double)bytes / 1048576.0,
	       (double)bytes / (double)big.n);

	uint8_t *qh = queries(nq, n, true, 1), *qm = queries(nq, n, false, 2);
	uint8_t *sh = queries(nq, small_n, true, 3), *sm = queries(nq, small_n, false, 4);
	if (!qh || !qm || !sh || !sm) {
		fprintf(stderr, "ioc_lookup: out of memory\n");
		return 1;
	}
	struct { const char *what; const struct ioc_set *s; const uint8_t *q; bool hit; double t; }
	runs[] = {
		{"10M-entry set, hits", &big, qh, true, 0}, {"10M-entry set, misses", &big, qm, false, 0},
		{"1k-entry set, hits", &small, sh, true, 0}, {"1k-entry set, misses", &small, sm, false, 0},
	};
	for (size_t i = 0; i < 4; i++) {
		runs[i].t = run(runs[i].s, runs[i].q, nq, &f);
		/* every hit query must be found and no miss query: a fast wrong answer is no answer */
		if (f != (runs[i].hit ? nq : 0)) {
			fprintf(stderr, "ioc_lookup: %s: %llu found, expected %llu\n", runs[i].what,
				(unsigned long long)f, (unsigned long long)(runs[i].hit ? nq : 0));
			status = 1;
		}
		printf("ioc_lookup: %-22s %llu lookups in %.3f s = %.2f M lookups/s (%.0f ns each)\n",
		       runs[i].what, (unsigned long long)nq, runs[i].t, (double)nq / runs[i].t / 1e6,
		       runs[i].t / (double)nq * 1e9);
	}
	printf("ioc_lookup: ratio 10M/1k time per lookup: hits %.2fx, misses %.2fx\n",
	       runs[0].t / runs[2].t, runs[1].t / runs[3].t);

	double isecs = 0;
	int r = import_rate(import_lines, &isecs);
	if (r < 0) {
		fprintf(stderr, "ioc_lookup: import: %s\n", strerror(-r));
		status = 1;
	} else {
		printf("ioc_lookup: import of a %llu-line plain feed into SQLite: %.2f s = %.0f "
		       "hashes/s (vs %.0f digests/s appended in memory: %.0fx)\n",
		       (unsigned long long)import_lines, isecs, (double)import_lines / isecs,
		       (double)n / add_s, ((double)n / add_s) / ((double)import_lines / isecs));
	}
	free(qh);
	free(qm);
	free(sh);
	free(sm);
	ioc_set_free(&big);
	ioc_set_free(&small);
	return status;
}
