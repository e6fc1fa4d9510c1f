/* cmd_scan.c: `ward scan`. The main thread walks the trees with nftw (FTW_PHYS: links are
 * reported, never followed, so a walk cannot leave its tree) and feeds file names into a
 * bounded queue; worker threads open each file without following links, scan it by fd
 * and print matches under one output lock, so lines never interleave.
 *
 * The --hashes lists are read here into a sorted array: the daemon plugs in the ioc
 * store instead, through the same scanner_hash_check_fn. */
#include "cli/cmd_scan.h"

#include "core/jsonw.h"
#include "prevent/scanner.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QUEUE_CAP 1024
#define MAX_THREADS 64
#define MAX_LISTS 64
#define MAX_RULES 256
#define PROGRESS_NS 250000000ull

/* ---- the --hashes block list ---- */

struct hash_entry {
	uint8_t sha256[32];
	char source[96];
};

struct hash_list {
	struct hash_entry *e;
	size_t n, cap;
};

static int hash_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

static int hex_nibble(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Reads one list file; a malformed line is an error naming FILE:LINE. */
static int hash_list_load(struct hash_list *hl, const char *file)
{
	FILE *f = fopen(file, "re");
	char line[512];
	int rc = 0, lineno = 0;
	if (!f) {
		rc = -errno;
		fprintf(stderr, "ward scan: %s: %s\n", file, strerror(errno));
		goto out;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		char *p = line;
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '\0' || *p == '#')
			continue;
		struct hash_entry he = {0};
		int i;
		for (i = 0; i < 64; i++) {
			int hi = hex_nibble((unsigned char)p[i]);
			if (hi < 0)
				break;
			if (i % 2 == 0)
				he.sha256[i / 2] = (uint8_t)(hi << 4);
			else
				he.sha256[i / 2] |= (uint8_t)hi;
		}
		if (i != 64 || (p[64] && !isspace((unsigned char)p[64]))) {
			fprintf(stderr, "ward scan: %s:%d: expected a sha256 in hex\n", file,
				lineno);
			rc = -EINVAL;
			goto out;
		}
		char *src = p + 64;
		while (isspace((unsigned char)*src))
			src++;
		size_t sl = strcspn(src, "\r\n#");
		while (sl > 0 && isspace((unsigned char)src[sl - 1]))
			sl--;
		snprintf(he.source, sizeof(he.source), "source %.*s", (int)sl,
			 sl ? src : file);
		if (hl->n == hl->cap) {
			size_t cap = hl->cap ? hl->cap * 2 : 256;
			struct hash_entry *ne = realloc(hl->e, cap * sizeof(*ne));
			if (!ne) {
				rc = -ENOMEM;
				goto out;
			}
			hl->e = ne;
			hl->cap = cap;
		}
		hl->e[hl->n++] = he;
	}
	if (ferror(f))
		rc = -EIO;
out:
	if (f)
		fclose(f);
	return rc;
}

static int hash_list_check(void *ctx, const uint8_t sha256[32], char *why, size_t whylen)
{
	const struct hash_list *hl = ctx;
	const struct hash_entry *e = bsearch(sha256, hl->e, hl->n, sizeof(*hl->e), hash_cmp);
	if (!e)
		return 0;
	snprintf(why, whylen, "%s", e->source);
	return 1;
}

/* ---- the walk and the workers ---- */

struct scan_ctx {
	struct scanner *sc;
	bool json, tty;
	pthread_mutex_t mu;            /* queue */
	pthread_cond_t not_empty, not_full;
	char *q[QUEUE_CAP];
	unsigned head, n;
	bool done;
	pthread_mutex_t out_mu;        /* stdout and the progress line */
	atomic_uint_fast64_t files, found, errors, skipped;
	atomic_uint_fast64_t last_progress;
};

/* nftw has no user pointer: the one walk in progress (ward scan is single-shot) */
static struct scan_ctx *walk_ctx;

static void push(struct scan_ctx *c, char *path)
{
	pthread_mutex_lock(&c->mu);
	while (c->n == QUEUE_CAP)
		pthread_cond_wait(&c->not_full, &c->mu);
	c->q[(c->head + c->n) % QUEUE_CAP] = path;
	c->n++;
	pthread_cond_signal(&c->not_empty);
	pthread_mutex_unlock(&c->mu);
}

static char *pop(struct scan_ctx *c)
{
	char *p = NULL;
	pthread_mutex_lock(&c->mu);
	while (c->n == 0 && !c->done)
		pthread_cond_wait(&c->not_empty, &c->mu);
	if (c->n) {
		p = c->q[c->head];
		c->head = (c->head + 1) % QUEUE_CAP;
		c->n--;
		pthread_cond_signal(&c->not_full);
	}
	pthread_mutex_unlock(&c->mu);
	return p;
}

static void file_error(struct scan_ctx *c, const char *path, int err)
{
	atomic_fetch_add(&c->errors, 1);
	pthread_mutex_lock(&c->out_mu);
	fprintf(stderr, "%sward scan: %s: %s\n", c->tty ? "\r\033[K" : "", path, strerror(err));
	pthread_mutex_unlock(&c->out_mu);
}

static void progress(struct scan_ctx *c, bool force)
{
	if (!c->tty)
		return;
	uint64_t now = scanner_now_ns(), last = atomic_load(&c->last_progress);
	if (!force && (now - last < PROGRESS_NS ||
		       !atomic_compare_exchange_strong(&c->last_progress, &last, now)))
		return;
	pthread_mutex_lock(&c->out_mu);
	fprintf(stderr, "\r\033[Kscanned %llu files, %llu found, %llu errors",
		(unsigned long long)atomic_load(&c->files),
		(unsigned long long)atomic_load(&c->found),
		(unsigned long long)atomic_load(&c->errors));
	pthread_mutex_unlock(&c->out_mu);
}

static void report(struct scan_ctx *c, const char *path, const struct scanner_result *r)
{
	char hex[65] = "";
	if (r->have_sha256)
		scanner_hex(r->sha256, 32, hex);
	pthread_mutex_lock(&c->out_mu);
	if (c->tty)
		fputs("\r\033[K", stderr);
	if (c->json) {
		struct jsonw w;
		jsonw_init(&w);
		jsonw_obj_open(&w, NULL);
		jsonw_str(&w, "path", path);
		jsonw_str(&w, "verdict", "match");
		jsonw_str(&w, "reason", r->reason);
		if (hex[0])
			jsonw_str(&w, "sha256", hex);
		jsonw_int(&w, "size", r->size);
		jsonw_obj_close(&w);
		if (!w.oom)
			printf("%.*s\n", (int)w.len, w.buf);
		jsonw_free(&w);
	} else {
		printf("%s: %s\n", path, r->reason);
	}
	pthread_mutex_unlock(&c->out_mu);
}

static void scan_one(struct scan_ctx *c, const char *path)
{
	struct scanner_result r;
	/* O_NOFOLLOW: the name may have become a link since the walk saw it; O_NONBLOCK: a
	 * FIFO swapped in must not hang the open (it is then skipped as not regular) */
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno != ELOOP)   /* a link: not followed, by design */
			file_error(c, path, errno);
		return;
	}
	int rc = scanner_scan_fd(c->sc, fd, SCANNER_NOCACHE, 0, &r);
	close(fd);
	if (rc == -EINVAL)
		return;   /* not a regular file */
	if (rc < 0) {
		file_error(c, path, -rc);
		return;
	}
	atomic_fetch_add(&c->files, 1);
	if (r.verdict == SCANNER_MATCH) {
		atomic_fetch_add(&c->found, 1);
		report(c, path, &r);
	} else if (r.verdict == SCANNER_SKIPPED) {
		atomic_fetch_add(&c->skipped, 1);
	}
	progress(c, false);
}

static void *worker(void *arg)
{
	struct scan_ctx *c = arg;
	char *p;
	while ((p = pop(c))) {
		scan_one(c, p);
		free(p);
	}
	return NULL;
}

static int walk_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	struct scan_ctx *c = walk_ctx;
	switch (type) {
	case FTW_F: {
		char *dup = strdup(path);
		if (!dup)
			return -1;
		push(c, dup);
		break;
	}
	case FTW_DNR:
	case FTW_NS:
		file_error(c, path, errno ? errno : EACCES);
		break;
	default:   /* directories, and links (FTW_SL/FTW_SLN): not followed */
		break;
	}
	return 0;
}

/* ---- the command ---- */

static void usage(FILE *f)
{
	fputs("usage: ward scan [--json] [--rules FILE|DIR]... [--hashes FILE]... "
	      "[--threads N] [--max-size BYTES] PATH...\n", f);
}

int cmd_scan(int argc, char **argv)
{
	static const struct option lopts[] = {
		{"json", no_argument, NULL, 'j'},
		{"rules", required_argument, NULL, 'r'},
		{"hashes", required_argument, NULL, 'H'},
		{"threads", required_argument, NULL, 't'},
		{"max-size", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *rules[MAX_RULES], *lists[MAX_LISTS];
	size_t nrules = 0, nlists = 0;
	long threads = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned long long max_size = 0;
	struct hash_list hl = {0};
	struct scan_ctx c = {0};
	struct scanner *sc = NULL;
	pthread_t tid[MAX_THREADS];
	int nthreads = 0, ret = 2, o;
	char *end;

	c.json = false;
	optind = 0;   /* GNU getopt: full re-initialization (main may have parsed already) */
	opterr = 1;
	while ((o = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (o) {
		case 'j':
			c.json = true;
			break;
		case 'r':
			if (nrules == MAX_RULES)
				goto usage;
			rules[nrules++] = optarg;
			break;
		case 'H':
			if (nlists == MAX_LISTS)
				goto usage;
			lists[nlists++] = optarg;
			break;
		case 't':
			errno = 0;
			threads = strtol(optarg, &end, 10);
			if (errno || *end || threads < 1 || threads > MAX_THREADS)
				goto usage;
			break;
		case 'm':
			errno = 0;
			max_size = strtoull(optarg, &end, 10);
			if (errno || *end || max_size == 0)
				goto usage;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			goto usage;
		}
	}
	if (optind >= argc)
		goto usage;
	if (threads < 1)
		threads = 1;
	if (threads > MAX_THREADS)
		threads = MAX_THREADS;

	struct scanner_opts so = {.max_size = max_size, .cache_entries = 8};
	int rc = scanner_create(&so, &sc);
	if (rc < 0) {
		fprintf(stderr, "ward scan: %s\n", strerror(-rc));
		goto out;
	}
	if (nrules) {
		char err[SCANNER_ERR_MAX];
		rc = scanner_load_rules(sc, rules, nrules, err, sizeof(err));
		if (rc < 0) {
			fprintf(stderr, "ward scan: rules not loaded:\n%s\n", err);
			goto out;
		}
	}
	for (size_t i = 0; i < nlists; i++)
		if (hash_list_load(&hl, lists[i]) < 0)
			goto out;
	if (nlists) {
		qsort(hl.e, hl.n, sizeof(*hl.e), hash_cmp);
		scanner_set_hash_check(sc, hash_list_check, &hl);
	}
	if (!nrules && !nlists)
		fprintf(stderr, "ward scan: no --rules and no --hashes: nothing can match\n");

	c.sc = sc;
	c.tty = isatty(STDERR_FILENO);
	pthread_mutex_init(&c.mu, NULL);
	pthread_mutex_init(&c.out_mu, NULL);
	pthread_cond_init(&c.not_empty, NULL);
	pthread_cond_init(&c.not_full, NULL);
	for (long i = 0; i < threads; i++) {
		if (pthread_create(&tid[nthreads], NULL, worker, &c) != 0)
			break;
		nthreads++;
	}
	if (nthreads == 0) {
		fprintf(stderr, "ward scan: no threads\n");
		goto out_sync;
	}
	walk_ctx = &c;
	for (int i = optind; i < argc; i++) {
		/* a PATH given as a link is followed once; inside the tree nothing is */
		char *root = realpath(argv[i], NULL);
		if (!root) {
			file_error(&c, argv[i], errno);
			continue;
		}
		if (nftw(root, walk_cb, 32, FTW_PHYS) < 0)
			file_error(&c, root, errno ? errno : ENOMEM);
		free(root);
	}
	pthread_mutex_lock(&c.mu);
	c.done = true;
	pthread_cond_broadcast(&c.not_empty);
	pthread_mutex_unlock(&c.mu);
	for (int i = 0; i < nthreads; i++)
		pthread_join(tid[i], NULL);
	walk_ctx = NULL;
	fflush(stdout);
	if (c.tty)
		fputs("\r\033[K", stderr);
	if (!c.json || c.tty)
		fprintf(stderr, "ward scan: %llu files, %llu found, %llu errors, %llu too large\n",
			(unsigned long long)atomic_load(&c.files),
			(unsigned long long)atomic_load(&c.found),
			(unsigned long long)atomic_load(&c.errors),
			(unsigned long long)atomic_load(&c.skipped));
	ret = atomic_load(&c.found) ? 1 : atomic_load(&c.errors) ? 2 : 0;
out_sync:
	pthread_cond_destroy(&c.not_full);
	pthread_cond_destroy(&c.not_empty);
	pthread_mutex_destroy(&c.out_mu);
	pthread_mutex_destroy(&c.mu);
out:
	scanner_destroy(sc);
	free(hl.e);
	return ret;
usage:
	usage(stderr);
	return 2;
}
