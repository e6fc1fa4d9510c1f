/* test_scanner.c: the scanner against real files under /tmp/exg: rule compile errors
 * name their file and line (a table of broken rules), a YARA match and a sha256 block-list
 * match name their indicator, the cache answers an unchanged file and rescans a changed
 * one, stays within its bound, and a reload while scans run; then `ward scan` on a tree. */
#include "cli/cmd_scan.h"
#include "prevent/scanner.h"
#include "t.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIR_ "/tmp/exg/scanner"

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		perror(path);
		exit(2);
	}
	close(fd);
}

static void append_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		perror(path);
		exit(2);
	}
	close(fd);
}

static int scan_path(struct scanner *s, const char *path, unsigned flags,
		     struct scanner_result *r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = scanner_scan_fd(s, fd, flags, 0, r);
	close(fd);
	return rc;
}

/* sha256 computed here, independently of the scanner's code path */
static void sha256_hex_of(const char *text, char hex[65])
{
	uint8_t d[32];
	unsigned int n = 0;
	EVP_Digest(text, strlen(text), d, &n, EVP_sha256(), NULL);
	scanner_hex(d, 32, hex);
}

/* ---- a test-local block list behind the callback ---- */
struct list {
	uint8_t d[4][32];
	int n;
	int calls;
};

static int list_check(void *ctx, const uint8_t sha256[32], char *why, size_t whylen)
{
	struct list *l = ctx;
	l->calls++;
	for (int i = 0; i < l->n; i++)
		if (!memcmp(l->d[i], sha256, 32)) {
			snprintf(why, whylen, "source test-list");
			return 1;
		}
	return 0;
}

static void list_add_hex(struct list *l, const char *hex)
{
	for (int i = 0; i < 32; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		l->d[l->n][i] = (uint8_t)v;
	}
	l->n++;
}

/* ---- compile errors: one broken rule file per row ---- */
static const struct {
	const char *name;
	const char *text;
	int line;          /* the line the message must name */
	const char *words; /* a word the message must contain */
} broken[] = {
	{"undefined_ident", "rule ok { condition: true }\n\nrule bad {\n  condition:\n"
			    "    nosuchthing\n}\n", 5, "nosuchthing"},
	{"duplicate_rule", "rule a { condition: true }\nrule a { condition: true }\n", 2,
	 "duplicated"},
	{"unknown_module", "import \"nosuchmodule\"\nrule a { condition: true }\n", 1,
	 "nosuchmodule"},
	/* libyara 4.2 checks string references when the rule closes: the "}" line */
	{"undefined_string", "rule a {\n  strings:\n    $x = \"abc\"\n  condition:\n"
			     "    $y\n}\n", 6, "$y"},
	{"syntax", "rule a {\n  strings:\n    $x = \"abc\"\n  condition\n    $x\n}\n", 5,
	 "syntax error"},
};

static void test_compile_errors(void)
{
	struct scanner *s;
	char err[SCANNER_ERR_MAX], path[256], want[300];
	T_CHECK(scanner_create(NULL, &s) == 0, "create");
	/* a good set first: a failed load must leave it in place */
	snprintf(path, sizeof(path), DIR_ "/good.yar");
	write_file(path, "rule marker_rule { strings: $a = \"WARD-MARKER\" condition: $a }\n");
	const char *good[] = {path};
	T_CHECK(scanner_load_rules(s, good, 1, err, sizeof(err)) == 0, "good rules: %s", err);
	uint64_t gen = scanner_generation(s);

	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		char bpath[256];
		snprintf(bpath, sizeof(bpath), DIR_ "/%s.yar", broken[i].name);
		write_file(bpath, broken[i].text);
		const char *p[] = {bpath};
		int rc = scanner_load_rules(s, p, 1, err, sizeof(err));
		snprintf(want, sizeof(want), "%s:%d: ", bpath, broken[i].line);
		T_CHECK(rc == -EINVAL, "%s: rc %d", broken[i].name, rc);
		T_CHECK(strncmp(err, want, strlen(want)) == 0, "%s: got \"%s\", want prefix \"%s\"",
			broken[i].name, err, want);
		T_CHECK(strstr(err, broken[i].words) != NULL, "%s: \"%s\" lacks \"%s\"",
			broken[i].name, err, broken[i].words);
	}
	/* a directory: the good file loads, the broken one is named */
	mkdir(DIR_ "/rdir", 0755);
	write_file(DIR_ "/rdir/a_good.yar", "rule g { condition: false }\n");
	write_file(DIR_ "/rdir/b_bad.yar", "rule b {\n condition:\n  nope\n}\n");
	write_file(DIR_ "/rdir/ignored.txt", "this is not a rule file {{{\n");
	const char *d[] = {DIR_ "/rdir"};
	T_CHECK(scanner_load_rules(s, d, 1, err, sizeof(err)) == -EINVAL, "dir with a bad file");
	T_CHECK(strncmp(err, DIR_ "/rdir/b_bad.yar:3: ", strlen(DIR_ "/rdir/b_bad.yar:3: ")) == 0,
		"dir error: %s", err);
	const char *missing[] = {DIR_ "/no-such-file.yar"};
	T_CHECK(scanner_load_rules(s, missing, 1, err, sizeof(err)) == -ENOENT, "missing file");
	T_CHECK(strstr(err, "no-such-file.yar") != NULL, "missing file named: %s", err);

	/* failures changed nothing: same generation, the good rule still matches */
	T_CHECK(scanner_generation(s) == gen, "generation moved on failed loads");
	struct scanner_result r;
	T_CHECK(scanner_scan_buf(s, "xx WARD-MARKER xx", 17, &r) == 0 &&
		r.verdict == SCANNER_MATCH, "old rules still active");
	remove(DIR_ "/rdir/b_bad.yar");
	T_CHECK(scanner_load_rules(s, d, 1, err, sizeof(err)) == 0, "dir without the bad file: %s",
		err);
	struct scanner_stats st;
	scanner_get_stats(s, &st);
	T_CHECK(st.rule_count == 1, "rules from the directory: %u", st.rule_count);
	scanner_destroy(s);
}

static void test_yara_match(void)
{
	struct scanner *s;
	struct scanner_result r;
	char err[SCANNER_ERR_MAX];
	T_CHECK(scanner_create(NULL, &s) == 0, "create");
	mkdir(DIR_ "/rules", 0755);
	write_file(DIR_ "/rules/evil.yar",
		   "rule evil_marker {\n strings:\n  $a = \"WARD_TEST_EVIL_MARKER\"\n"
		   " condition:\n  $a\n}\n");
	const char *p[] = {DIR_ "/rules"};
	T_CHECK(scanner_load_rules(s, p, 1, err, sizeof(err)) == 0, "load: %s", err);
	write_file(DIR_ "/evil.sh", "#!/bin/sh\necho WARD_TEST_EVIL_MARKER\n");
	write_file(DIR_ "/fine.sh", "#!/bin/sh\necho hello\n");
	T_CHECK(scan_path(s, DIR_ "/evil.sh", 0, &r) == 0, "scan evil");
	T_CHECK(r.verdict == SCANNER_MATCH, "evil verdict %d", r.verdict);
	T_CHECK(!strcmp(r.reason, "yara rule evil_marker (" DIR_ "/rules/evil.yar)"),
		"reason: %s", r.reason);
	T_CHECK(scan_path(s, DIR_ "/fine.sh", 0, &r) == 0 && r.verdict == SCANNER_CLEAN &&
		r.reason[0] == '\0', "fine verdict %d %s", r.verdict, r.reason);
	/* not regular: refused, not judged */
	int dfd = open(DIR_, O_RDONLY | O_DIRECTORY);
	T_CHECK(scanner_scan_fd(s, dfd, 0, 0, &r) == -EINVAL, "directory refused");
	close(dfd);
	/* over the size cap: skipped, not read */
	struct scanner *small;
	struct scanner_opts so = {.max_size = 8};
	T_CHECK(scanner_create(&so, &small) == 0, "create small");
	T_CHECK(scanner_load_rules(small, p, 1, err, sizeof(err)) == 0, "load small");
	T_CHECK(scan_path(small, DIR_ "/evil.sh", 0, &r) == 0 && r.verdict == SCANNER_SKIPPED,
		"size cap verdict %d", r.verdict);
	scanner_destroy(small);
	scanner_destroy(s);
}

static void test_hash_match(void)
{
	struct scanner *s;
	struct scanner_result r;
	struct list l = {0};
	char hex[65], want[200];
	const char *bad = "#!/bin/sh\necho a program on the block list\n";
	T_CHECK(scanner_create(NULL, &s) == 0, "create");
	write_file(DIR_ "/listed.sh", bad);
	write_file(DIR_ "/unlisted.sh", "#!/bin/sh\necho another program\n");
	sha256_hex_of(bad, hex);
	list_add_hex(&l, hex);
	scanner_set_hash_check(s, list_check, &l);
	T_CHECK(scan_path(s, DIR_ "/listed.sh", SCANNER_ALL_DIGESTS, &r) == 0, "scan listed");
	snprintf(want, sizeof(want), "sha256 %s on block list (source test-list)", hex);
	T_CHECK(r.verdict == SCANNER_MATCH && !strcmp(r.reason, want), "reason \"%s\"", r.reason);
	char got[65];
	scanner_hex(r.sha256, 32, got);
	T_CHECK(r.have_sha256 && r.have_all && !strcmp(got, hex), "digest %s", got);
	T_CHECK(scan_path(s, DIR_ "/unlisted.sh", 0, &r) == 0 && r.verdict == SCANNER_CLEAN,
		"unlisted verdict %d", r.verdict);

	/* the standalone digests agree with the scan's, over a file larger than one chunk */
	int fd = open(DIR_ "/big", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	char *blob = malloc(3u << 20);
	for (size_t i = 0; i < (3u << 20); i++)
		blob[i] = (char)(i * 7 + (i >> 11));
	T_CHECK(write(fd, blob, 3u << 20) == (ssize_t)(3u << 20), "write big");
	uint8_t s256[32], s1[20], m5[16], e256[32], e1[20], e5[16];
	unsigned int n;
	EVP_Digest(blob, 3u << 20, e256, &n, EVP_sha256(), NULL);
	EVP_Digest(blob, 3u << 20, e1, &n, EVP_sha1(), NULL);
	EVP_Digest(blob, 3u << 20, e5, &n, EVP_md5(), NULL);
	T_CHECK(scanner_digest_fd(fd, 64u << 20, s256, s1, m5) == 0, "digest_fd");
	T_CHECK(!memcmp(s256, e256, 32) && !memcmp(s1, e1, 20) && !memcmp(m5, e5, 16),
		"digest_fd values");
	T_CHECK(scanner_digest_fd(fd, 1u << 20, s256, s1, m5) == -EFBIG, "digest_fd cap");
	T_CHECK(scanner_scan_fd(s, fd, SCANNER_ALL_DIGESTS, 0, &r) == 0 &&
		!memcmp(r.sha256, e256, 32) && !memcmp(r.sha1, e1, 20) && !memcmp(r.md5, e5, 16),
		"scan digests over 3 MiB");
	free(blob);
	close(fd);
	scanner_destroy(s);
}

static void test_cache(void)
{
	struct scanner *s;
	struct scanner_result r;
	struct scanner_stats a, b;
	char err[SCANNER_ERR_MAX];
	T_CHECK(scanner_create(NULL, &s) == 0, "create");
	const char *p[] = {DIR_ "/rules"};
	T_CHECK(scanner_load_rules(s, p, 1, err, sizeof(err)) == 0, "load: %s", err);
	write_file(DIR_ "/prog.sh", "#!/bin/sh\necho harmless\n");

	T_CHECK(scan_path(s, DIR_ "/prog.sh", 0, &r) == 0 && !r.cached &&
		r.verdict == SCANNER_CLEAN, "first scan: cached %d verdict %d", r.cached, r.verdict);
	scanner_get_stats(s, &a);
	T_CHECK(scan_path(s, DIR_ "/prog.sh", 0, &r) == 0 && r.cached &&
		r.verdict == SCANNER_CLEAN, "second scan cached %d", r.cached);
	scanner_get_stats(s, &b);
	T_CHECK(b.scans == a.scans && b.cache_hits == a.cache_hits + 1,
		"hit: scans %llu->%llu hits %llu->%llu", (unsigned long long)a.scans,
		(unsigned long long)b.scans, (unsigned long long)a.cache_hits,
		(unsigned long long)b.cache_hits);

	/* cleared, then changed in place (same inode): read again, and now it matches */
	append_file(DIR_ "/prog.sh", "echo WARD_TEST_EVIL_MARKER\n");
	T_CHECK(scan_path(s, DIR_ "/prog.sh", 0, &r) == 0 && !r.cached &&
		r.verdict == SCANNER_MATCH, "changed file: cached %d verdict %d", r.cached,
		r.verdict);
	T_CHECK(scan_path(s, DIR_ "/prog.sh", 0, &r) == 0 && r.cached &&
		r.verdict == SCANNER_MATCH && strstr(r.reason, "evil_marker"),
		"match cached with its reason: %s", r.reason);
	/* a metadata-only change moves ctime too: judged again */
	chmod(DIR_ "/prog.sh", 0755);
	T_CHECK(scan_path(s, DIR_ "/prog.sh", 0, &r) == 0 && !r.cached, "chmod rescans");
	/* a reload invalidates every verdict */
	T_CHECK(scanner_load_rules(s, p, 1, err, sizeof(err)) == 0, "reload");
	T_CHECK(scan_path(s, DIR_ "/prog.sh", 0, &r) == 0 && !r.cached, "reload rescans");
	/* NOCACHE neither answers from nor fills the cache */
	T_CHECK(scan_path(s, DIR_ "/prog.sh", SCANNER_NOCACHE, &r) == 0 && !r.cached, "nocache");
	scanner_destroy(s);

	/* the bound: one set of 8; 20 files through it evict the first (least recent) */
	struct scanner_opts so = {.cache_entries = 8};
	T_CHECK(scanner_create(&so, &s) == 0, "create small cache");
	char path[64];
	for (int i = 0; i < 20; i++) {
		snprintf(path, sizeof(path), DIR_ "/c%02d", i);
		write_file(path, path);
		T_CHECK(scan_path(s, path, 0, &r) == 0 && !r.cached, "fill %d", i);
	}
	struct stat st;
	int hits = 0;
	for (int i = 0; i < 20; i++) {
		snprintf(path, sizeof(path), DIR_ "/c%02d", i);
		stat(path, &st);
		hits += scanner_lookup(s, &st, &r);
	}
	T_CHECK(hits <= 8, "cache holds %d > 8 entries", hits);
	snprintf(path, sizeof(path), DIR_ "/c%02d", 19);
	stat(path, &st);
	T_CHECK(scanner_lookup(s, &st, &r), "most recent entry kept");
	scanner_destroy(s);
}

/* ---- reload while scanning: each scan sees one whole rule set ---- */
struct race {
	struct scanner *s;
	int bad;
};

static void *race_scan(void *arg)
{
	struct race *rc = arg;
	struct scanner_result r;
	for (int i = 0; i < 300; i++) {
		if (scanner_scan_buf(rc->s, "..AAAA..BBBB..", 14, &r) != 0)
			rc->bad++;
		else if (r.verdict == SCANNER_MATCH && !strstr(r.reason, "rule_a") &&
			 !strstr(r.reason, "rule_b"))
			rc->bad++;
	}
	return NULL;
}

static void test_reload_race(void)
{
	struct race rc = {0};
	char err[SCANNER_ERR_MAX];
	T_CHECK(scanner_create(NULL, &rc.s) == 0, "create");
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, race_scan, &rc);
	int fails = 0;
	for (int i = 0; i < 40; i++)
		fails += scanner_load_rules_string(
			rc.s, i % 2 ? "rule rule_a { strings: $a = \"AAAA\" condition: $a }"
				    : "rule rule_b { strings: $b = \"BBBB\" condition: $b }",
			"race", err, sizeof(err)) != 0;
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	T_CHECK(fails == 0 && rc.bad == 0, "reloads failed %d, bad scans %d", fails, rc.bad);
	/* includes are refused in text rules */
	T_CHECK(scanner_load_rules_string(rc.s, "include \"/etc/passwd\"\n", "inc", err,
					  sizeof(err)) == -EINVAL, "include refused");
	T_CHECK(strncmp(err, "inc:1: ", 7) == 0, "include error: %s", err);
	scanner_destroy(rc.s);
}

/* ---- ward scan: exit codes and output on a real tree ---- */
static int run_scan(const char *out, char **argv, int argc)
{
	fflush(stdout);
	int saved = dup(1), saved_err = dup(2);
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	dup2(fd, 1);
	dup2(devnull, 2);
	int rc = cmd_scan(argc, argv);
	fflush(stdout);
	dup2(saved, 1);
	dup2(saved_err, 2);
	close(fd);
	close(devnull);
	close(saved);
	close(saved_err);
	return rc;
}

static void read_all(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, len - 1) : -1;
	buf[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
}

static void test_cmd_scan(void)
{
	char out[4096], hex[65], line[128];
	const char *listed = "listed program body\n";
	mkdir(DIR_ "/tree", 0755);
	mkdir(DIR_ "/tree/sub", 0755);
	mkdir(DIR_ "/outside", 0755);
	write_file(DIR_ "/tree/a.txt", "nothing here\n");
	write_file(DIR_ "/tree/sub/evil.sh", "#!/bin/sh\necho WARD_TEST_EVIL_MARKER\n");
	write_file(DIR_ "/tree/sub/listed", listed);
	write_file(DIR_ "/outside/evil2.sh", "WARD_TEST_EVIL_MARKER\n");
	unlink(DIR_ "/tree/link");
	T_CHECK(symlink(DIR_ "/outside", DIR_ "/tree/link") == 0, "symlink");
	sha256_hex_of(listed, hex);
	snprintf(line, sizeof(line), "# test list\n%s  unit-test-feed\n", hex);
	write_file(DIR_ "/hashes.txt", line);

	char *a1[] = {"scan", "--json", "--threads", "2", "--rules", DIR_ "/rules",
		      "--hashes", DIR_ "/hashes.txt", DIR_ "/tree", NULL};
	int rc = run_scan(DIR_ "/out.json", a1, 9);
	read_all(DIR_ "/out.json", out, sizeof(out));
	T_CHECK(rc == 1, "found: exit %d", rc);
	T_CHECK(strstr(out, "\"path\":\"" DIR_ "/tree/sub/evil.sh\"") &&
		strstr(out, "yara rule evil_marker"), "yara match in output: %s", out);
	T_CHECK(strstr(out, "\"path\":\"" DIR_ "/tree/sub/listed\"") &&
		strstr(out, "source unit-test-feed") && strstr(out, hex),
		"hash match in output: %s", out);
	T_CHECK(!strstr(out, "evil2.sh"), "followed a link out of the tree: %s", out);
	int lines = 0;
	for (char *p = out; (p = strchr(p, '\n')); p++)
		lines++;
	T_CHECK(lines == 2, "two JSON lines, got %d", lines);

	char *a2[] = {"scan", "--rules", DIR_ "/rules", DIR_ "/tree/a.txt", NULL};
	T_CHECK(run_scan(DIR_ "/out.txt", a2, 4) == 0, "clean file: exit 0");
	char *a3[] = {"scan", "--rules", DIR_ "/syntax.yar", DIR_ "/tree", NULL};
	T_CHECK(run_scan(DIR_ "/out.txt", a3, 4) == 2, "broken rules: exit 2");
	char *a4[] = {"scan", "--rules", DIR_ "/rules", DIR_ "/no/such/path", NULL};
	T_CHECK(run_scan(DIR_ "/out.txt", a4, 4) == 2, "missing path: exit 2");
	char *a5[] = {"scan", "--rules", DIR_ "/rules", DIR_ "/tree/link", NULL};
	rc = run_scan(DIR_ "/out.txt", a5, 4);
	read_all(DIR_ "/out.txt", out, sizeof(out));
	T_CHECK(rc == 1 && strstr(out, "/outside/evil2.sh: yara rule evil_marker"),
		"a PATH that is a link is followed: exit %d, %s", rc, out);
}

int main(void)
{
	if (system("rm -rf " DIR_ " && mkdir -p " DIR_) != 0)
		return 2;
	test_compile_errors();
	test_yara_match();
	test_hash_match();
	test_cache();
	test_reload_race();
	test_cmd_scan();
	return T_DONE("scanner");
}
