/* scanner.c: YARA rule sets, digests, the hash-list hook and the verdict cache.
 *
 * Rule sets are reference counted: a scan takes a reference under rules_mu (a pointer
 * copy and an increment, nothing else is done under the lock) and drops it when done, so
 * a reload swaps the pointer at once and the old set dies with its last scan.
 *
 * The cache is set-associative: (dev, ino) hashes to one set of CACHE_WAYS entries with
 * its own mutex, and a full set evicts its least recently used entry. Lookups on
 * different sets never contend, and the bound is fixed at creation. An entry is valid
 * only while the file's ctime, mtime and size are those fstat saw before the file was
 * read, and while the generation (rules and hash list) is the one it was judged under.
 * The stat is taken before reading, so a write racing with the scan leaves a newer
 * ctime on the file than in the entry: the next lookup misses and the file is read
 * again. ctime cannot be set from user space; since Linux 6.13 ext4, xfs, btrfs and tmpfs
 * use multigrain timestamps, so a change after our fstat gets a distinct ctime even
 * within one clock tick (older kernels: a same-size rewrite within one tick, usually
 * 1-4 ms, could keep the old ctime; mtime and size are compared as well). */
#include "prevent/scanner.h"

#include "core/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <yara.h>

#define CACHE_WAYS 8
#define DEFAULT_MAX_SIZE (64ull << 20)
#define DEFAULT_CACHE 8192u
#define DEFAULT_TIMEOUT_S 10u
#define READ_CHUNK (1u << 20)  /* the deadline is checked between chunks */

struct rules_ref {
	YR_RULES *rules;
	atomic_int refs;
	unsigned count;
};

struct cache_entry {
	bool used;
	dev_t dev;
	ino_t ino;
	struct timespec ctim, mtim;
	off_t size;
	uint64_t gen;
	uint64_t tick;          /* LRU clock */
	enum scanner_verdict verdict;
	char reason[SCANNER_REASON_MAX];
};

struct cache_set {
	pthread_mutex_t mu;
	struct cache_entry e[CACHE_WAYS];
};

struct scanner {
	struct scanner_opts o;
	pthread_mutex_t rules_mu;        /* guards rules, hash_fn, hash_ctx */
	struct rules_ref *rules;
	scanner_hash_check_fn hash_fn;
	void *hash_ctx;
	atomic_uint_fast64_t gen;
	struct cache_set *sets;
	size_t nsets;                    /* a power of two */
	atomic_uint_fast64_t tick;
	atomic_uint_fast64_t n_scans, n_hits, n_misses, n_matches, n_large, n_timeouts,
		n_errors;
};

uint64_t scanner_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void scanner_hex(const uint8_t *in, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[in[i] >> 4];
		out[2 * i + 1] = d[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* ---- rule sets ---- */

static void rules_put(struct rules_ref *r)
{
	if (r && atomic_fetch_sub(&r->refs, 1) == 1) {
		if (r->rules)
			yr_rules_destroy(r->rules);
		free(r);
	}
}

static struct rules_ref *rules_get(struct scanner *s, scanner_hash_check_fn *fn, void **ctx)
{
	pthread_mutex_lock(&s->rules_mu);
	struct rules_ref *r = s->rules;
	if (r)
		atomic_fetch_add(&r->refs, 1);
	if (fn) {
		*fn = s->hash_fn;
		*ctx = s->hash_ctx;
	}
	pthread_mutex_unlock(&s->rules_mu);
	return r;
}

static void rules_swap(struct scanner *s, struct rules_ref *r)
{
	pthread_mutex_lock(&s->rules_mu);
	struct rules_ref *old = s->rules;
	s->rules = r;
	atomic_fetch_add(&s->gen, 1);
	pthread_mutex_unlock(&s->rules_mu);
	rules_put(old);
}

struct compile_ctx {
	char *err;
	size_t errlen, used;
	const char *name;        /* the file being added, for messages without one */
	int nerrors;
};

/* Appends one "FILE:LINE: message" line; the buffer is cut, never overrun. */
static void compile_cb(int level, const char *file, int line, const YR_RULE *rule,
		       const char *msg, void *user)
{
	struct compile_ctx *c = user;
	const char *f = file ? file : (c->name ? c->name : "<rules>");
	if (level != YARA_ERROR_LEVEL_ERROR) {
		log_debug("yara: %s:%d: warning: %s", f, line, msg);
		return;
	}
	c->nerrors++;
	if (!c->err || c->errlen == 0 || c->used + 1 >= c->errlen)
		return;
	int n = snprintf(c->err + c->used, c->errlen - c->used, "%s%s:%d: %s",
			 c->used ? "\n" : "", f, line, msg);
	if (n > 0)
		c->used += (size_t)n < c->errlen - c->used ? (size_t)n : c->errlen - c->used - 1;
}

static void set_err(struct compile_ctx *c, const char *name, const char *what, int e)
{
	if (c->err && c->errlen > c->used + 1)
		snprintf(c->err + c->used, c->errlen - c->used, "%s%s: %s: %s",
			 c->used ? "\n" : "", name, what, strerror(e));
}

static int is_rule_file(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	if (d->d_name[0] == '.')
		return 0;
	return (n > 4 && !strcmp(d->d_name + n - 4, ".yar")) ||
	       (n > 5 && !strcmp(d->d_name + n - 5, ".yara"));
}

static int add_rule_file(YR_COMPILER *cc, struct compile_ctx *c, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int e = errno;
		set_err(c, path, "open", e);
		return -e;
	}
	c->name = path;
	/* The namespace is the path: rules of different files cannot clash, and a match
	 * names its file through rule->ns. */
	int nerr = yr_compiler_add_fd(cc, fd, path, path);
	close(fd);
	return nerr ? -EINVAL : 0;
}

static int add_rule_path(YR_COMPILER *cc, struct compile_ctx *c, const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		int e = errno;
		set_err(c, path, "stat", e);
		return -e;
	}
	if (!S_ISDIR(st.st_mode))
		return add_rule_file(cc, c, path);
	struct dirent **ents = NULL;
	int n = scandir(path, &ents, is_rule_file, alphasort);
	if (n < 0) {
		int e = errno;
		set_err(c, path, "scandir", e);
		return -e;
	}
	int rc = 0;
	for (int i = 0; i < n; i++) {
		char full[4096];
		int len = snprintf(full, sizeof(full), "%s/%s", path, ents[i]->d_name);
		if (rc == 0 && (len < 0 || (size_t)len >= sizeof(full))) {
			set_err(c, path, "path too long", ENAMETOOLONG);
			rc = -ENAMETOOLONG;
		}
		/* libyara refuses further files once one failed: stop at the first error */
		if (rc == 0)
			rc = add_rule_file(cc, c, full);
		free(ents[i]);
	}
	free(ents);
	return rc;
}

static unsigned count_rules(YR_RULES *rules)
{
	unsigned n = 0;
	const YR_RULE *rule;
	yr_rules_foreach(rules, rule) n++;
	return n;
}

/* Compiles from files (paths) or one string (src); swaps in the result on success. */
static int load_rules(struct scanner *s, const char *const *paths, size_t n,
		      const char *src, const char *name, char *err, size_t errlen)
{
	struct compile_ctx c = {.err = err, .errlen = errlen, .name = name};
	YR_COMPILER *cc = NULL;
	struct rules_ref *r = NULL;
	int rc = 0;
	if (err && errlen)
		err[0] = '\0';
	if (!src && n == 0) {
		rules_swap(s, NULL);
		return 0;
	}
	if (yr_compiler_create(&cc) != ERROR_SUCCESS) {
		rc = -ENOMEM;
		goto out;
	}
	yr_compiler_set_callback(cc, compile_cb, &c);
	if (src) {
		/* no include callback: "include" in untrusted text would read any file */
		yr_compiler_set_include_callback(cc, NULL, NULL, NULL);
		if (yr_compiler_add_string(cc, src, name) != 0)
			rc = -EINVAL;
	} else {
		for (size_t i = 0; i < n && rc == 0; i++)
			rc = add_rule_path(cc, &c, paths[i]);
	}
	if (rc < 0)
		goto out;
	r = calloc(1, sizeof(*r));
	if (!r) {
		rc = -ENOMEM;
		goto out;
	}
	atomic_init(&r->refs, 1);
	if (yr_compiler_get_rules(cc, &r->rules) != ERROR_SUCCESS) {
		rc = -ENOMEM;
		goto out;
	}
	r->count = count_rules(r->rules);
	rules_swap(s, r);
	r = NULL;
out:
	if (r)
		rules_put(r);
	if (cc)
		yr_compiler_destroy(cc);
	return rc;
}

int scanner_load_rules(struct scanner *s, const char *const *paths, size_t n, char *err,
		       size_t errlen)
{
	return load_rules(s, paths, n, NULL, NULL, err, errlen);
}

int scanner_load_rules_string(struct scanner *s, const char *src, const char *name,
			      char *err, size_t errlen)
{
	return load_rules(s, NULL, 0, src, name ? name : "<string>", err, errlen);
}

void scanner_set_hash_check(struct scanner *s, scanner_hash_check_fn fn, void *ctx)
{
	pthread_mutex_lock(&s->rules_mu);
	s->hash_fn = fn;
	s->hash_ctx = ctx;
	atomic_fetch_add(&s->gen, 1);
	pthread_mutex_unlock(&s->rules_mu);
}

void scanner_invalidate(struct scanner *s)
{
	atomic_fetch_add(&s->gen, 1);
}

uint64_t scanner_generation(const struct scanner *s)
{
	return atomic_load(&((struct scanner *)s)->gen);
}

/* ---- create / destroy ---- */

int scanner_create(const struct scanner_opts *opts, struct scanner **out)
{
	struct scanner *s = NULL;
	int rc = 0;
	bool yr = false;
	*out = NULL;
	if (yr_initialize() != ERROR_SUCCESS) {
		rc = -ENOMEM;
		goto out;
	}
	yr = true;
	s = calloc(1, sizeof(*s));
	if (!s) {
		rc = -ENOMEM;
		goto out;
	}
	if (opts)
		s->o = *opts;
	if (!s->o.max_size)
		s->o.max_size = DEFAULT_MAX_SIZE;
	if (!s->o.timeout_s)
		s->o.timeout_s = DEFAULT_TIMEOUT_S;
	size_t want = s->o.cache_entries ? s->o.cache_entries : DEFAULT_CACHE;
	s->nsets = 1;
	while (s->nsets * CACHE_WAYS < want)
		s->nsets <<= 1;
	s->o.cache_entries = (unsigned)(s->nsets * CACHE_WAYS);
	s->sets = calloc(s->nsets, sizeof(*s->sets));
	if (!s->sets) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < s->nsets; i++)
		pthread_mutex_init(&s->sets[i].mu, NULL);
	pthread_mutex_init(&s->rules_mu, NULL);
	atomic_init(&s->gen, 1);
	*out = s;
	s = NULL;
	yr = false;
out:
	if (s) {
		free(s->sets);
		free(s);
	}
	if (yr)
		yr_finalize();
	return rc;
}

void scanner_destroy(struct scanner *s)
{
	if (!s)
		return;
	rules_put(s->rules);
	for (size_t i = 0; i < s->nsets; i++)
		pthread_mutex_destroy(&s->sets[i].mu);
	pthread_mutex_destroy(&s->rules_mu);
	free(s->sets);
	free(s);
	yr_finalize();
}

/* ---- cache ---- */

static struct cache_set *cache_set_for(struct scanner *s, dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ull ^ (uint64_t)dev * 0xc2b2ae3d27d4eb4full;
	h ^= h >> 29;
	return &s->sets[h & (s->nsets - 1)];
}

static bool ts_eq(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

bool scanner_lookup(struct scanner *s, const struct stat *st, struct scanner_result *res)
{
	struct cache_set *set = cache_set_for(s, st->st_dev, st->st_ino);
	uint64_t gen = atomic_load(&s->gen);
	bool hit = false;
	pthread_mutex_lock(&set->mu);
	for (int i = 0; i < CACHE_WAYS; i++) {
		struct cache_entry *e = &set->e[i];
		if (!e->used || e->dev != st->st_dev || e->ino != st->st_ino)
			continue;
		if (e->gen == gen && e->size == st->st_size && ts_eq(e->ctim, st->st_ctim) &&
		    ts_eq(e->mtim, st->st_mtim)) {
			e->tick = atomic_fetch_add(&s->tick, 1);
			memset(res, 0, sizeof(*res));
			res->verdict = e->verdict;
			res->cached = true;
			res->size = e->size;
			memcpy(res->reason, e->reason, sizeof(res->reason));
			hit = true;
		} else {
			e->used = false;   /* stale: the file or the indicators changed */
		}
		break;
	}
	pthread_mutex_unlock(&set->mu);
	atomic_fetch_add(hit ? &s->n_hits : &s->n_misses, 1);
	return hit;
}

static void cache_store(struct scanner *s, const struct stat *st, uint64_t gen,
			const struct scanner_result *res)
{
	struct cache_set *set = cache_set_for(s, st->st_dev, st->st_ino);
	pthread_mutex_lock(&set->mu);
	struct cache_entry *victim = NULL;
	for (int i = 0; i < CACHE_WAYS; i++) {
		struct cache_entry *e = &set->e[i];
		if (e->used && e->dev == st->st_dev && e->ino == st->st_ino) {
			victim = e;
			break;
		}
		if (!victim || (victim->used && (!e->used || e->tick < victim->tick)))
			victim = e;
	}
	victim->used = true;
	victim->dev = st->st_dev;
	victim->ino = st->st_ino;
	victim->ctim = st->st_ctim;
	victim->mtim = st->st_mtim;
	victim->size = st->st_size;
	victim->gen = gen;
	victim->tick = atomic_fetch_add(&s->tick, 1);
	victim->verdict = res->verdict;
	memcpy(victim->reason, res->reason, sizeof(victim->reason));
	pthread_mutex_unlock(&set->mu);
}

/* ---- scanning ---- */

struct match_ctx {
	char *reason;
	size_t len;
	bool hit;
};

static int yara_cb(YR_SCAN_CONTEXT *ctx, int msg, void *data, void *user)
{
	struct match_ctx *m = user;
	if (msg != CALLBACK_MSG_RULE_MATCHING)
		return CALLBACK_CONTINUE;
	const YR_RULE *rule = data;
	const char *ns = rule->ns && rule->ns->name ? rule->ns->name : "?";
	snprintf(m->reason, m->len, "yara rule %s (%s)", rule->identifier, ns);
	m->hit = true;
	return CALLBACK_ABORT;   /* one indicator is enough to name the verdict */
}

static int digest(const EVP_MD *md, const void *buf, size_t len, uint8_t *out)
{
	unsigned int outlen = 0;
	return EVP_Digest(buf, len, out, &outlen, md, NULL) == 1 ? 0 : -EIO;
}

/* Hash list, then YARA, over len bytes at buf. timeout_s 0: the scanner's default. */
static int judge(struct scanner *s, const uint8_t *buf, size_t len, unsigned flags,
		 unsigned timeout_s, struct scanner_result *res)
{
	scanner_hash_check_fn fn = NULL;
	void *ctx = NULL;
	struct rules_ref *r = rules_get(s, &fn, &ctx);
	int rc = 0;
	if (digest(EVP_sha256(), buf, len, res->sha256) < 0) {
		rc = -EIO;
		goto out;
	}
	res->have_sha256 = true;
	if (flags & SCANNER_ALL_DIGESTS) {
		if (digest(EVP_sha1(), buf, len, res->sha1) < 0 ||
		    digest(EVP_md5(), buf, len, res->md5) < 0) {
			rc = -EIO;
			goto out;
		}
		res->have_all = true;
	}
	if (fn) {
		char why[160] = "";
		int h = fn(ctx, res->sha256, why, sizeof(why));
		if (h < 0) {
			atomic_fetch_add(&s->n_errors, 1);
		} else if (h > 0) {
			char hex[65];
			scanner_hex(res->sha256, 32, hex);
			snprintf(res->reason, sizeof(res->reason), "sha256 %s on block list (%s)",
				 hex, why[0] ? why : "unknown source");
			res->verdict = SCANNER_MATCH;
			goto out;
		}
	}
	if (r && r->rules) {
		struct match_ctx m = {.reason = res->reason, .len = sizeof(res->reason)};
		int yr = yr_rules_scan_mem(r->rules, buf, len, SCAN_FLAGS_FAST_MODE, yara_cb, &m,
					   (int)(timeout_s ? timeout_s : s->o.timeout_s));
		if (m.hit) {
			res->verdict = SCANNER_MATCH;
		} else if (yr == ERROR_SCAN_TIMEOUT) {
			rc = -ETIMEDOUT;
		} else if (yr != ERROR_SUCCESS) {
			log_debug("yara scan error %d", yr);
			rc = yr == ERROR_INSUFFICIENT_MEMORY ? -ENOMEM : -EIO;
		}
	}
out:
	rules_put(r);
	return rc;
}

int scanner_scan_buf(struct scanner *s, const void *buf, size_t len,
		     struct scanner_result *res)
{
	memset(res, 0, sizeof(*res));
	res->size = (int64_t)len;
	int rc = judge(s, buf, len, SCANNER_ALL_DIGESTS, 0, res);
	if (rc == 0 && res->verdict == SCANNER_MATCH)
		atomic_fetch_add(&s->n_matches, 1);
	return rc;
}

static unsigned remaining_s(uint64_t deadline_ns)
{
	if (!deadline_ns)
		return 0;
	uint64_t now = scanner_now_ns();
	if (now >= deadline_ns)
		return 1;
	uint64_t left = (deadline_ns - now + 999999999ull) / 1000000000ull;
	return left ? (unsigned)left : 1;   /* libyara counts whole seconds */
}

int scanner_scan_fd(struct scanner *s, int fd, unsigned flags, uint64_t deadline_ns,
		    struct scanner_result *res)
{
	struct stat st;
	uint8_t *buf = NULL;
	int rc = 0;
	bool use_cache = !(flags & (SCANNER_NOCACHE | SCANNER_ALL_DIGESTS));
	memset(res, 0, sizeof(*res));
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		goto out;
	}
	/* read the generation before the data: a reload during the scan leaves this verdict
	 * stored under the old generation, so it is not trusted afterwards */
	uint64_t gen = atomic_load(&s->gen);
	if (use_cache && scanner_lookup(s, &st, res))
		goto out;
	res->size = st.st_size;
	if ((uint64_t)st.st_size > s->o.max_size) {
		res->verdict = SCANNER_SKIPPED;
		atomic_fetch_add(&s->n_large, 1);
		goto store;
	}
	size_t len = (size_t)st.st_size, got = 0;
	buf = malloc(len ? len : 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	while (got < len) {
		if (deadline_ns && scanner_now_ns() > deadline_ns) {
			rc = -ETIMEDOUT;
			goto out;
		}
		size_t want = len - got < READ_CHUNK ? len - got : READ_CHUNK;
		ssize_t n = pread(fd, buf + got, want, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto out;
		}
		if (n == 0)
			break;   /* shrank since fstat: judge what is there; ctime differs now */
		got += (size_t)n;
	}
	rc = judge(s, buf, got, flags, remaining_s(deadline_ns), res);
	if (rc < 0)
		goto out;
	if (deadline_ns && scanner_now_ns() > deadline_ns && res->verdict != SCANNER_MATCH) {
		rc = -ETIMEDOUT;
		goto out;
	}
	atomic_fetch_add(&s->n_scans, 1);
	if (res->verdict == SCANNER_MATCH)
		atomic_fetch_add(&s->n_matches, 1);
store:
	if (use_cache)
		cache_store(s, &st, gen, res);
out:
	if (rc == -ETIMEDOUT) {
		atomic_fetch_add(&s->n_timeouts, 1);
		res->verdict = SCANNER_CLEAN;
	} else if (rc < 0 && rc != -EINVAL) {
		atomic_fetch_add(&s->n_errors, 1);
	}
	free(buf);
	return rc;
}

void scanner_get_stats(struct scanner *s, struct scanner_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->scans = atomic_load(&s->n_scans);
	st->cache_hits = atomic_load(&s->n_hits);
	st->cache_misses = atomic_load(&s->n_misses);
	st->matches = atomic_load(&s->n_matches);
	st->skipped_large = atomic_load(&s->n_large);
	st->timeouts = atomic_load(&s->n_timeouts);
	st->errors = atomic_load(&s->n_errors);
	st->generation = atomic_load(&s->gen);
	struct rules_ref *r = rules_get(s, NULL, NULL);
	st->rule_count = r ? r->count : 0;
	rules_put(r);
}

int scanner_digest_fd(int fd, uint64_t max, uint8_t sha256[32], uint8_t sha1[20],
		      uint8_t md5[16])
{
	EVP_MD_CTX *c[3] = {NULL, NULL, NULL};
	const EVP_MD *md[3] = {EVP_sha256(), EVP_sha1(), EVP_md5()};
	uint8_t *out[3] = {sha256, sha1, md5};
	uint8_t *buf = NULL;
	int rc = 0;
	uint64_t off = 0;
	buf = malloc(READ_CHUNK);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < 3; i++) {
		c[i] = EVP_MD_CTX_new();
		if (!c[i] || EVP_DigestInit_ex(c[i], md[i], NULL) != 1) {
			rc = -ENOMEM;
			goto out;
		}
	}
	for (;;) {
		ssize_t n = pread(fd, buf, READ_CHUNK, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto out;
		}
		if (n == 0)
			break;
		off += (uint64_t)n;
		if (off > max) {
			rc = -EFBIG;
			goto out;
		}
		for (int i = 0; i < 3; i++)
			if (EVP_DigestUpdate(c[i], buf, (size_t)n) != 1) {
				rc = -EIO;
				goto out;
			}
	}
	for (int i = 0; i < 3; i++)
		if (EVP_DigestFinal_ex(c[i], out[i], NULL) != 1) {
			rc = -EIO;
			goto out;
		}
out:
	for (int i = 0; i < 3; i++)
		EVP_MD_CTX_free(c[i]);
	free(buf);
	return rc;
}
