/* test_execguard.c: the exec guard on a real kernel, as root, on an ext4 image
 * loop-mounted under /tmp/exg (never any other filesystem: the guard's marks would block
 * every exec on it while the test is stopped). Programs run through `sh -c`, so a denied
 * exec shows as the shell's exit status 126. Covers: a sha256 on the block list, a YARA
 * rule on a script, a cached answer, a cleared file changed and judged again, a written
 * executable caught at close, the deadline, and ignore marks cleared by a write.
 *
 * Safety: alarm() kills the test if anything hangs; the kernel then allows everything
 * the dead group had pending. Needs root, mkfs.ext4 and loop devices; skips without. */
#include "output/metrics.h"
#include "prevent/execguard.h"
#include "prevent/scanner.h"
#include "t.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BASE "/tmp/exg/execguard"
#define IMG BASE "/fs.img"
#define MNT BASE "/mnt"
#define RULES BASE "/rules.yar"
#define LOOP_MAJOR 7

extern char **environ;

/* ---- alerts seen by the callback ---- */
struct seen {
	pid_t pid;
	enum execguard_when when;
	bool denied, cached;
	char path[256];
	char reason[SCANNER_REASON_MAX];
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct seen a[64];
	int n;
} alerts = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {{0}}, 0};

static void on_alert(void *ctx, const struct execguard_alert *a)
{
	pthread_mutex_lock(&alerts.mu);
	if (alerts.n < 64) {
		struct seen *s = &alerts.a[alerts.n++];
		s->pid = a->pid;
		s->when = a->when;
		s->denied = a->denied;
		s->cached = a->cached;
		snprintf(s->path, sizeof(s->path), "%s", a->path);
		snprintf(s->reason, sizeof(s->reason), "%s", a->reason);
	}
	pthread_cond_broadcast(&alerts.cv);
	pthread_mutex_unlock(&alerts.mu);
}

/* Waits (at most 10 s: a missing alert fails, it never hangs) for an alert numbered
 * from or later about path at stage when; alerts from other files may come in between. */
static bool alert_find(int from, const char *path, enum execguard_when when, struct seen *out)
{
	struct timespec until;
	bool ok = false;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&alerts.mu);
	for (;;) {
		for (int i = from; i < alerts.n && !ok; i++)
			if (!strcmp(alerts.a[i].path, path) && alerts.a[i].when == when) {
				*out = alerts.a[i];
				ok = true;
			}
		if (ok || pthread_cond_timedwait(&alerts.cv, &alerts.mu, &until) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&alerts.mu);
	return ok;
}

static int alert_count(void)
{
	pthread_mutex_lock(&alerts.mu);
	int n = alerts.n;
	pthread_mutex_unlock(&alerts.mu);
	return n;
}

/* ---- a test-local block list; one digest can be made to stall its check ---- */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint8_t d[8][32];
	int n;
	uint8_t slow[32];
	bool have_slow, release, stalled;
} list = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {{0}}, 0, {0}, 0, 0, 0};

static int list_check(void *ctx, const uint8_t sha256[32], char *why, size_t whylen)
{
	pthread_mutex_lock(&list.mu);
	if (list.have_slow && !memcmp(sha256, list.slow, 32)) {
		/* stands for a scan that outlives the deadline; bounded so a failing test
		 * cannot hang here */
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 20;
		list.stalled = true;
		pthread_cond_broadcast(&list.cv);
		while (!list.release &&
		       pthread_cond_timedwait(&list.cv, &list.mu, &until) != ETIMEDOUT)
			;
	}
	int hit = 0;
	for (int i = 0; i < list.n && !hit; i++)
		hit = !memcmp(list.d[i], sha256, 32);
	pthread_mutex_unlock(&list.mu);
	if (hit)
		snprintf(why, whylen, "source test-list");
	return hit;
}

static void list_add(const uint8_t d[32])
{
	pthread_mutex_lock(&list.mu);
	memcpy(list.d[list.n++], d, 32);
	pthread_mutex_unlock(&list.mu);
}

/* ---- files ---- */
static void put_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len || fchmod(fd, mode) < 0) {
		perror(path);
		exit(2);
	}
	close(fd);
}

static void append(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		perror(path);
		exit(2);
	}
	close(fd);
}

static char *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		perror(path);
		exit(2);
	}
	char *buf = malloc((size_t)st.st_size + 64);
	if (!buf || read(fd, buf, (size_t)st.st_size) != st.st_size)
		exit(2);
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

static void sha256_of_file(const char *path, uint8_t d[32], char hex[65])
{
	size_t len;
	char *buf = slurp(path, &len);
	unsigned int n;
	EVP_Digest(buf, len, d, &n, EVP_sha256(), NULL);
	scanner_hex(d, 32, hex);
	free(buf);
}

/* Runs `sh -c cmd` with output discarded; the shell's exit status, or -1. */
static int run(const char *cmd)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st;
	char *argv[] = {"sh", "-c", (char *)cmd, NULL};
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	int rc = posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int setup_image(void)
{
	struct stat st;
	umount2(MNT, MNT_DETACH);
	if (system("rm -rf " BASE " && mkdir -p " MNT " && truncate -s 64M " IMG
		   " && mkfs.ext4 -q -F " IMG " >/dev/null 2>&1 && mount -o loop " IMG " " MNT) != 0)
		return -1;
	/* refuse to go on unless MNT really is the loop device we just mounted */
	if (stat(MNT, &st) < 0 || major(st.st_dev) != LOOP_MAJOR) {
		fprintf(stderr, "test_execguard: %s is not a loop mount\n", MNT);
		return -1;
	}
	return 0;
}

static void teardown_image(void)
{
	if (umount2(MNT, 0) < 0)
		umount2(MNT, MNT_DETACH);
	unlink(IMG);
}

int main(void)
{
	struct scanner *sc = NULL;
	struct execguard *g = NULL;
	struct execguard_stats a, b;
	struct seen s;
	char err[SCANNER_ERR_MAX], hex_bad[65], want[256];
	uint8_t d_bad[32];
	int na;

	if (geteuid() != 0) {
		printf("execguard: skipped (needs root)\n");
		return T_DONE("execguard");
	}
	alarm(240);   /* last resort: dying closes the group, the kernel allows the rest */
	if (setup_image() < 0) {
		T_CHECK(0, "could not set up the loop image");
		teardown_image();
		return T_DONE("execguard");
	}

	/* programs: a copy of /bin/true, and a variant with bytes appended (still runs, has
	 * another sha256); a clean script and one with the YARA marker */
	size_t tlen;
	char *tbin = slurp("/bin/true", &tlen);
	put_file(MNT "/good_true", tbin, tlen, 0755);
	memcpy(tbin + tlen, "\nward-bad-variant\n", 18);
	put_file(MNT "/bad_true", tbin, tlen + 18, 0755);
	free(tbin);
	const char *fine = "#!/bin/sh\nexit 0\n", *evil = "#!/bin/sh\necho WARD_TEST_EVIL_MARKER\n";
	put_file(MNT "/fine.sh", fine, strlen(fine), 0755);
	put_file(MNT "/later.sh", fine, strlen(fine), 0755);
	put_file(MNT "/evil.sh", evil, strlen(evil), 0755);
	sha256_of_file(MNT "/bad_true", d_bad, hex_bad);
	const char *rule = "rule evil_marker {\n strings:\n  $a = \"WARD_TEST_EVIL_MARKER\"\n"
			   " condition:\n  $a\n}\n";
	put_file(RULES, rule, strlen(rule), 0644);

	T_CHECK(run(MNT "/bad_true") == 0 && run(MNT "/evil.sh") == 0,
		"without the guard both programs run");

	T_CHECK(scanner_create(NULL, &sc) == 0, "scanner");
	const char *rp[] = {RULES};
	T_CHECK(scanner_load_rules(sc, rp, 1, err, sizeof(err)) == 0, "rules: %s", err);
	list_add(d_bad);
	scanner_set_hash_check(sc, list_check, NULL);

	const char *paths[] = {MNT};
	struct execguard_opts o = {
		.scanner = sc, .paths = paths, .npaths = 1, .workers = 2, .deadline_ms = 300,
		.watch_writes = true, .alert = on_alert,
	};
	int rc = execguard_start(&o, &g);
	T_CHECK(rc == 0, "execguard_start: %s", strerror(-rc));
	if (rc < 0)
		goto out;

	/* 1. sha256 on the block list: denied, exit 126, alert names the hash */
	na = alert_count();
	T_CHECK(run(MNT "/bad_true") == 126, "listed program not denied");
	T_CHECK(alert_find(na, MNT "/bad_true", EXECGUARD_AT_EXEC, &s),
		"no alert for the listed program");
	snprintf(want, sizeof(want), "sha256 %s on block list (source test-list)", hex_bad);
	T_CHECK(s.denied && s.when == EXECGUARD_AT_EXEC && s.pid > 0 && !strcmp(s.reason, want),
		"alert: denied %d pid %d reason \"%s\"", s.denied, s.pid, s.reason);
	T_CHECK(!strcmp(s.path, MNT "/bad_true"), "alert path \"%s\"", s.path);
	/* ...while another program on the same filesystem runs */
	T_CHECK(run(MNT "/good_true") == 0, "good program denied");

	/* 2. a YARA rule on a script */
	na = alert_count();
	T_CHECK(run(MNT "/evil.sh") == 126, "script matching a rule not denied");
	T_CHECK(alert_find(na, MNT "/evil.sh", EXECGUARD_AT_EXEC, &s) && s.denied &&
		!strcmp(s.reason, "yara rule evil_marker (" RULES ")") &&
		!strcmp(s.path, MNT "/evil.sh"), "yara alert: \"%s\" on \"%s\"", s.reason, s.path);
	T_CHECK(run(MNT "/fine.sh") == 0, "clean script denied");

	/* 3. cached verdicts: answered by the reader, nothing read again; each answer is
	 * one observation of the permission-latency histogram */
	execguard_get_stats(g, &a);
	uint64_t h0 = metric_hist_count(&ward_metrics.perm_latency);
	T_CHECK(run(MNT "/good_true") == 0 && run(MNT "/bad_true") == 126, "cached answers");
	execguard_get_stats(g, &b);
	T_CHECK(metric_hist_count(&ward_metrics.perm_latency) == h0 + 2, "perm_latency +%llu",
		(unsigned long long)(metric_hist_count(&ward_metrics.perm_latency) - h0));
	T_CHECK(b.cache_answers == a.cache_answers + 2 && b.scanned == a.scanned,
		"cache answers %llu->%llu, scans %llu->%llu",
		(unsigned long long)a.cache_answers, (unsigned long long)b.cache_answers,
		(unsigned long long)a.scanned, (unsigned long long)b.scanned);

	/* 4. a cleared file changed in place is judged again (by the exec, or by the
	 * close-write scan if that came first: either way it is read again) */
	struct scanner_stats ss0, ss1;
	scanner_get_stats(sc, &ss0);
	append(MNT "/fine.sh", "echo WARD_TEST_EVIL_MARKER\n");
	T_CHECK(run(MNT "/fine.sh") == 126, "changed script not denied");
	scanner_get_stats(sc, &ss1);
	T_CHECK(ss1.scans > ss0.scans, "changed script not rescanned");

	/* 5. a new executable caught when closed after writing; its exec is then denied
	 * from the cache */
	na = alert_count();
	put_file(MNT "/dropped.sh", evil, strlen(evil), 0755);
	T_CHECK(alert_find(na, MNT "/dropped.sh", EXECGUARD_AT_WRITE, &s) && !s.denied &&
		strstr(s.reason, "evil_marker"), "write alert: reason \"%s\"", s.reason);
	execguard_get_stats(g, &a);
	T_CHECK(run(MNT "/dropped.sh") == 126, "dropped script not denied");
	execguard_get_stats(g, &b);
	T_CHECK(b.cache_answers == a.cache_answers + 1, "dropped script was read again");
	/* the daemon's entry point: the same content without an exec bit or "#!" is not
	 * a program and is skipped; with "#!" it is judged */
	const char *text = "notes: WARD_TEST_EVIL_MARKER\n";
	put_file(MNT "/notes.txt", text, strlen(text), 0644);
	int fd = open(MNT "/notes.txt", O_RDONLY | O_CLOEXEC);
	T_CHECK(execguard_scan_fd(g, fd, getpid(), NULL) == 0, "plain text judged");
	close(fd);
	put_file(MNT "/notes.txt", evil, strlen(evil), 0644);
	fd = open(MNT "/notes.txt", O_RDONLY | O_CLOEXEC);
	T_CHECK(execguard_scan_fd(g, fd, getpid(), NULL) == 1, "#! script not judged");
	close(fd);

	/* 6. the deadline: a check that stalls past it is allowed (and counted); once it
	 * finishes, the match is alerted as not denied, and cached for the next exec */
	uint8_t d_slow[32];
	char hex_slow[65];
	sha256_of_file(MNT "/later.sh", d_slow, hex_slow);
	pthread_mutex_lock(&list.mu);
	memcpy(list.slow, d_slow, 32);
	list.have_slow = true;
	pthread_mutex_unlock(&list.mu);
	list_add(d_slow);
	execguard_get_stats(g, &a);
	na = alert_count();
	T_CHECK(run(MNT "/later.sh") == 0, "stalled check not allowed at the deadline");
	execguard_get_stats(g, &b);
	T_CHECK(b.deadline_allows == a.deadline_allows + 1, "deadline allows %llu->%llu",
		(unsigned long long)a.deadline_allows, (unsigned long long)b.deadline_allows);
	pthread_mutex_lock(&list.mu);
	T_CHECK(list.stalled, "the check never ran");
	list.release = true;
	list.have_slow = false;
	pthread_cond_broadcast(&list.cv);
	pthread_mutex_unlock(&list.mu);
	T_CHECK(alert_find(na, MNT "/later.sh", EXECGUARD_AT_EXEC, &s) && !s.denied &&
		strstr(s.reason, hex_slow),
		"late match alert: denied %d \"%s\"", s.denied, s.reason);
	T_CHECK(run(MNT "/later.sh") == 126, "late match not denied on the next exec");

	execguard_get_stats(g, &b);
	T_CHECK(b.error_allows == 0 && b.overload_allows == 0, "errors %llu overload %llu",
		(unsigned long long)b.error_allows, (unsigned long long)b.overload_allows);
	T_CHECK(b.events == b.allowed + b.denied, "every event answered once: %llu events, "
		"%llu allowed, %llu denied", (unsigned long long)b.events,
		(unsigned long long)b.allowed, (unsigned long long)b.denied);
	execguard_stop(g);
	g = NULL;
	T_CHECK(run(MNT "/bad_true") == 0, "stopped guard still denies");

	/* 7. ignore marks: a cleared file raises no event until it is written to */
	const char *quiet = "#!/bin/sh\n# quiet\nexit 0\n";   /* a hash no list holds */
	put_file(MNT "/quiet.sh", quiet, strlen(quiet), 0755);
	o.watch_writes = false;
	o.ignore_clean = true;
	rc = execguard_start(&o, &g);
	T_CHECK(rc == 0, "execguard_start (ignore_clean): %s", strerror(-rc));
	if (rc < 0)
		goto out;
	T_CHECK(run(MNT "/quiet.sh") == 0, "quiet.sh first run");
	execguard_get_stats(g, &a);
	T_CHECK(run(MNT "/quiet.sh") == 0, "quiet.sh second run");
	execguard_get_stats(g, &b);
	T_CHECK(a.ignore_marks == 1 && b.events == a.events,
		"ignore mark: marks %llu, events %llu->%llu", (unsigned long long)a.ignore_marks,
		(unsigned long long)a.events, (unsigned long long)b.events);
	append(MNT "/quiet.sh", "echo WARD_TEST_EVIL_MARKER\n");
	T_CHECK(run(MNT "/quiet.sh") == 126, "a write did not clear the ignore mark");
	/* new indicators flush every ignore mark (the reader notices within its tick) */
	put_file(MNT "/quiet2.sh", "#!/bin/sh\nexit 3\n", 17, 0755);
	T_CHECK(run(MNT "/quiet2.sh") == 3, "quiet2.sh first run");
	uint8_t d_q2[32];
	char hex_q2[65];
	sha256_of_file(MNT "/quiet2.sh", d_q2, hex_q2);
	list_add(d_q2);
	scanner_invalidate(sc);
	int tries = 0;
	while (run(MNT "/quiet2.sh") != 126 && ++tries < 100)
		usleep(50000);
	T_CHECK(tries < 100, "newly listed file never denied after invalidation");

out:
	execguard_stop(g);
	scanner_destroy(sc);
	teardown_image();
	return T_DONE("execguard");
}
