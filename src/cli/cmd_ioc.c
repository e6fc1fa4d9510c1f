/* cmd_ioc.c: `ward ioc import|list|stats|lookup`. Each feed file is imported on its own:
 * one bad file is reported (file and position) and kept out, the others still go in. */
#include "cli/cmd_ioc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/jsonw.h"
#include "prevent/feed.h"
#include "prevent/ioc.h"

static const char usage[] =
	"usage: ward ioc import [--format auto|plain|csv|stix|misp] [--source NAME] FILE...\n"
	"       ward ioc list [--json]\n"
	"       ward ioc stats [--json]\n"
	"       ward ioc lookup HEX...\n";

static int usage_err(const char *why)
{
	if (why)
		fprintf(stderr, "ward: ioc: %s\n", why);
	fputs(usage, stderr);
	return 2;
}

static void fmt_time(int64_t t, char out[32])
{
	struct tm tm;
	time_t tt = (time_t)t;
	if (!gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, 32, "%lld", (long long)t);
}

/* Feed text is untrusted: control characters must not reach a terminal. */
static void put_clean(const char *s, FILE *f)
{
	for (; *s; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
}

static int do_import(struct ioc_store *s, int argc, char **argv)
{
	enum feed_format fmt = FEED_AUTO;
	const char *source = NULL;
	int i = 1, failed = 0, files = 0;
	for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		}
		if (!strcmp(argv[i], "--format") && i + 1 < argc) {
			if (feed_format_parse(argv[++i], &fmt) < 0)
				return usage_err("unknown feed format");
		} else if (!strcmp(argv[i], "--source") && i + 1 < argc) {
			source = argv[++i];
		} else {
			return usage_err("unknown option");
		}
	}
	if (i == argc)
		return usage_err("no feed file");
	for (; i < argc; i++, files++) {
		struct feed_import res;
		struct feed_error err;
		char msg[1024];
		int r = feed_import_file(s, argv[i], fmt, source, &res, &err);
		if (r < 0) {
			feed_error_format(&err, argv[i], msg, sizeof(msg));
			fprintf(stderr, "ward: ioc import: ");
			put_clean(msg, stderr);
			fprintf(stderr, "\nward: ioc import: nothing imported from %s\n", argv[i]);
			failed++;
			continue;
		}
		printf("%s: %s feed, %zu hashes (%zu new, %zu updated)", argv[i],
		       feed_format_name(res.format), res.stats.hashes, res.added, res.updated);
		if (res.stats.skipped) {
			printf(", %zu skipped (", res.stats.skipped);
			put_clean(res.stats.skipped_kinds, stdout);
			putchar(')');
		}
		putchar('\n');
	}
	return failed ? 1 : 0;
}

struct list_ctx {
	bool json;
	struct jsonw w;
};

static int list_one(void *ctx, const uint8_t *digest, const struct ioc_match *m)
{
	struct list_ctx *lc = ctx;
	char hex[2 * IOC_DIGEST_MAX + 1], t[32];
	ioc_hex_encode(digest, ioc_kind_len(m->kind), hex);
	if (lc->json) {
		/* JSON Lines: a 10-million-entry store streams instead of building one array */
		jsonw_reset(&lc->w);
		jsonw_obj_open(&lc->w, NULL);
		jsonw_str(&lc->w, "type", ioc_kind_name(m->kind));
		jsonw_str(&lc->w, "hash", hex);
		jsonw_time(&lc->w, "first_seen", m->first_seen, 0);
		jsonw_int(&lc->w, "confidence", m->confidence);
		jsonw_str(&lc->w, "source", m->source);
		if (m->name[0])
			jsonw_str(&lc->w, "name", m->name);
		if (m->tags[0])
			jsonw_str(&lc->w, "tags", m->tags);
		jsonw_obj_close(&lc->w);
		if (lc->w.oom)
			return -ENOMEM;
		puts(lc->w.buf);
	} else {
		fmt_time(m->first_seen, t);
		printf("%s\t%s\t%s\t%d\t", ioc_kind_name(m->kind), hex, t, m->confidence);
		put_clean(m->source, stdout);
		putchar('\t');
		put_clean(m->name, stdout);
		putchar('\t');
		put_clean(m->tags, stdout);
		putchar('\n');
	}
	return ferror(stdout) ? -EIO : 0;
}

static int do_list(struct ioc_store *s, int argc, char **argv)
{
	struct list_ctx lc = {0};
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			lc.json = true;
		else
			return usage_err("unknown option");
	}
	jsonw_init(&lc.w);
	int r = ioc_walk(s, list_one, &lc);
	jsonw_free(&lc.w);
	if (fflush(stdout) == EOF && !r)
		r = -EIO;
	if (r < 0)
		fprintf(stderr, "ward: ioc list: %s\n", strerror(-r));
	return r < 0 ? 1 : 0;
}

struct stats_ctx {
	bool json;
	struct jsonw *w;
};

static int stats_source(void *ctx, const char *source, int64_t count, int64_t oldest,
			int64_t newest)
{
	struct stats_ctx *sc = ctx;
	char a[32], b[32];
	if (sc->json) {
		jsonw_obj_open(sc->w, NULL);
		jsonw_str(sc->w, "source", source);
		jsonw_int(sc->w, "count", count);
		jsonw_time(sc->w, "oldest", oldest, 0);
		jsonw_time(sc->w, "newest", newest, 0);
		jsonw_obj_close(sc->w);
		return 0;
	}
	fmt_time(oldest, a);
	fmt_time(newest, b);
	printf("  %-32s %10lld  first seen %s .. %s\n", source, (long long)count, a, b);
	return 0;
}

static int do_stats(struct ioc_store *s, int argc, char **argv)
{
	struct jsonw w;
	struct stats_ctx sc = {.w = &w};
	int r;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			sc.json = true;
		else
			return usage_err("unknown option");
	}
	/* memory is what the daemon's lookups would hold: build the sets to measure them */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((r = ioc_load(s)) < 0) {
		fprintf(stderr, "ward: ioc stats: %s\n", strerror(-r));
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double load_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	int64_t n[4];
	for (int k = 0; k < 4; k++)
		if ((n[k] = ioc_count(s, (enum ioc_kind)k)) < 0) {
			fprintf(stderr, "ward: ioc stats: %s\n", strerror((int)-n[k]));
			return 1;
		}
	jsonw_init(&w);
	if (sc.json) {
		jsonw_obj_open(&w, NULL);
		jsonw_int(&w, "total", n[0]);
		jsonw_int(&w, "md5", n[IOC_MD5]);
		jsonw_int(&w, "sha1", n[IOC_SHA1]);
		jsonw_int(&w, "sha256", n[IOC_SHA256]);
		jsonw_uint(&w, "memory_bytes", ioc_memory(s));
		jsonw_double(&w, "load_ms", load_ms);
		jsonw_arr_open(&w, "sources");
	} else {
		printf("indicators: %lld (md5 %lld, sha1 %lld, sha256 %lld)\n", (long long)n[0],
		       (long long)n[IOC_MD5], (long long)n[IOC_SHA1], (long long)n[IOC_SHA256]);
		printf("lookup memory: %.1f MiB, built in %.0f ms\n",
		       (double)ioc_memory(s) / (1024.0 * 1024.0), load_ms);
		if (n[0])
			printf("sources:\n");
	}
	r = ioc_sources(s, stats_source, &sc);
	if (sc.json) {
		jsonw_arr_close(&w);
		jsonw_obj_close(&w);
		if (!r && w.oom)
			r = -ENOMEM;
		if (!r)
			puts(w.buf);
	}
	jsonw_free(&w);
	if (r < 0) {
		fprintf(stderr, "ward: ioc stats: %s\n", strerror(-r));
		return 1;
	}
	return 0;
}

static int do_lookup(struct ioc_store *s, int argc, char **argv)
{
	int missing = 0;
	if (argc < 2)
		return usage_err("no hash");
	for (int i = 1; i < argc; i++) {
		uint8_t d[IOC_DIGEST_MAX];
		size_t len = strlen(argv[i]);
		enum ioc_kind k = ioc_kind_for_hexlen(len);
		struct ioc_match m;
		char t[32];
		if (!k || ioc_hex_decode(argv[i], len, d, ioc_kind_len(k)) < 0)
			return usage_err("not an md5, sha1 or sha256 hex digest");
		int r = ioc_lookup(s, k, d, &m);
		if (r < 0) {
			fprintf(stderr, "ward: ioc lookup: %s\n", strerror(-r));
			return 1;
		}
		if (!r) {
			printf("%s: not found\n", argv[i]);
			missing++;
			continue;
		}
		fmt_time(m.first_seen, t);
		printf("%s: %s, source ", argv[i], ioc_kind_name(k));
		put_clean(m.source, stdout);
		printf(", first seen %s, confidence %d", t, m.confidence);
		if (m.name[0]) {
			printf(", name ");
			put_clean(m.name, stdout);
		}
		putchar('\n');
	}
	return missing ? 1 : 0;
}

int cmd_ioc(int argc, char **argv, const char *state_dir)
{
	static const struct {
		const char *name;
		int (*fn)(struct ioc_store *, int, char **);
	} cmds[] = {{"import", do_import}, {"list", do_list}, {"stats", do_stats},
		    {"lookup", do_lookup}};
	struct ioc_store *s = NULL;
	if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))
		return usage_err(NULL);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[0], cmds[i].name))
			continue;
		int r = ioc_open(&s, state_dir);
		if (r < 0) {
			fprintf(stderr, "ward: ioc: cannot open the store in %s: %s\n", state_dir,
				strerror(-r));
			return 1;
		}
		int status = cmds[i].fn(s, argc, argv);
		ioc_close(s);
		return status;
	}
	return usage_err("unknown subcommand");
}
