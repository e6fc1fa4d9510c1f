/* test_sink.c: alert sinks with real pipes and files: lines arrive whole and in order,
 * a reader that never reads costs drops (counted, also in a metric), not a blocked
 * sink_emit(); size-based rotation keeps N files of consecutive alerts; sink_reopen()
 * follows a file moved away; concurrent emitters lose nothing; bad paths fail early; a
 * dead receiver's failed writes reach ward's metrics unless the set counts elsewhere. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "output/metrics.h"
#include "output/sink.h"
#include "t.h"

static char dir[] = "/tmp/out/sinktest.XXXXXX";

/* Sleep-polls until sink 0 of set has written `want` alerts; generous bound. */
static bool wait_written(struct sink_set *set, size_t idx, uint64_t want)
{
	struct sink_stat st[SINK_MAX];
	for (int i = 0; i < 1000; i++) {
		sink_stats(set, st, SINK_MAX);
		if (st[idx].written + st[idx].dropped >= want && st[idx].queued == 0)
			return st[idx].written >= want;
		usleep(10000);
	}
	return false;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0;
	*len = 0;
	if (!f)
		return NULL;
	for (;;) {
		if (*len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			buf = realloc(buf, cap);
		}
		size_t r = fread(buf + *len, 1, cap - *len - 1, f);
		*len += r;
		if (r == 0)
			break;
	}
	fclose(f);
	buf[*len] = '\0';
	return buf;
}

/* Parses every line of path as JSON with an integer "seq"; fills seqs; -1 on a bad line. */
static int read_seqs(const char *path, int *seqs, int cap, size_t *bytes)
{
	size_t len;
	char *buf = slurp(path, &len), *save = NULL;
	int n = 0;
	*bytes = len;
	if (!buf)
		return -1;
	if (len && buf[len - 1] != '\n')
		n = -1;
	for (char *l = strtok_r(buf, "\n", &save); l && n >= 0; l = strtok_r(NULL, "\n", &save)) {
		struct json_object *o = json_tokener_parse(l), *v;
		if (!o || !json_object_object_get_ex(o, "seq", &v) || n >= cap) {
			n = -1;
		} else {
			seqs[n++] = json_object_get_int(v);
		}
		json_object_put(o);
	}
	free(buf);
	return n;
}

static int line(char *buf, size_t cap, int seq, int pad)
{
	return snprintf(buf, cap, "{\"seq\":%d,\"pad\":\"%.*s\"}", seq, pad,
			"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
}

static void test_fd_lines(void)
{
	struct sink_set *set = NULL;
	int p[2];
	char buf[4096];
	T_CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe");
	T_CHECK(sink_set_create(&set) == 0, "create");
	T_CHECK(sink_add_fd(set, p[1], "pipe") == 0, "add fd");
	static const char *const in[] = {"{\"seq\":1}", "{\"seq\":2,\"s\":\"a\\nb\"}", "{\"seq\":3}"};
	for (int i = 0; i < 3; i++)
		T_CHECK(sink_emit(set, 4, in[i], strlen(in[i]), "m") == 0, "emit %d", i);
	T_CHECK(wait_written(set, 0, 3), "3 written");
	ssize_t n = read(p[0], buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	T_CHECK(strcmp(buf, "{\"seq\":1}\n{\"seq\":2,\"s\":\"a\\nb\"}\n{\"seq\":3}\n") == 0,
		"lines in order, one per alert: %s", buf);
	struct sink_stat st;
	T_CHECK(sink_stats(set, &st, 1) == 1 && strcmp(st.name, "pipe") == 0, "name");
	T_CHECK(st.emitted == 3 && st.written == 3 && st.dropped == 0 && st.write_errors == 0,
		"stats %llu/%llu", (unsigned long long)st.emitted, (unsigned long long)st.written);
	T_CHECK(sink_emit(set, 8, "{}", 2, NULL) == -EINVAL, "severity > 7 refused");
	T_CHECK(sink_emit(set, 4, NULL, 2, NULL) == -EINVAL, "NULL json refused");
	sink_set_destroy(set);
	close(p[0]);
	close(p[1]);
}

/* A reader that never reads: the pipe fills, the writer waits, emits keep returning. */
static void test_stuck_reader(void)
{
	enum { QLEN = 8, N = 2000 };
	static struct metric drops = METRIC_COUNTER_INIT("test_drops_total", "drops");
	struct sink_set *set = NULL;
	int p[2];
	char buf[256];
	T_CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe");
	fcntl(p[1], F_SETPIPE_SZ, 4096);   /* fill it quickly */
	T_CHECK(sink_set_create(&set) == 0, "create");
	sink_set_options(set, QLEN, 200);
	sink_set_drop_counter(set, &drops);
	T_CHECK(sink_add_fd(set, p[1], "stuck") == 0, "add");
	int refused = 0, other = 0;
	for (int i = 0; i < N; i++) {
		int l = line(buf, sizeof(buf), i, 100);
		int r = sink_emit(set, 4, buf, (size_t)l, NULL);
		refused += r == -ENOBUFS;
		other += r != 0 && r != -ENOBUFS;
	}
	struct sink_stat st;
	sink_stats(set, &st, 1);
	T_CHECK(other == 0, "only 0 or -ENOBUFS");
	/* the pipe holds ~4 KiB (< 40 lines), the queue QLEN, the writer one in hand */
	T_CHECK(refused >= N - QLEN - 40, "emits refused instead of waiting: %d", refused);
	T_CHECK(st.dropped >= (uint64_t)refused && st.emitted + (uint64_t)refused == N,
		"drops counted: dropped %llu emitted %llu", (unsigned long long)st.dropped,
		(unsigned long long)st.emitted);
	T_CHECK(metric_value(&drops) == st.dropped, "drop metric %llu == %llu",
		(unsigned long long)metric_value(&drops), (unsigned long long)st.dropped);
	/* destroy is bounded even though the reader never reads: leftovers become drops */
	sink_set_destroy(set);
	/* every alert is now either a whole line in the pipe or a counted drop */
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	static char rb[1 << 16];
	size_t got = 0;
	ssize_t n;
	while ((n = read(p[0], rb + got, sizeof(rb) - 1 - got)) > 0)
		got += (size_t)n;
	rb[got] = '\0';
	int lines = 0;
	char *save = NULL;
	for (char *l = strtok_r(rb, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		struct json_object *o = json_tokener_parse(l);
		lines += o != NULL;
		json_object_put(o);
	}
	T_CHECK(lines > 0, "some lines reached the pipe");
	T_CHECK((uint64_t)lines + metric_value(&drops) == N, "%d lines + %llu drops == %d", lines,
		(unsigned long long)metric_value(&drops), N);
	close(p[0]);
	close(p[1]);
}

static void path_of(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", dir, name);
}

static void test_rotation(void)
{
	enum { N = 50, MAX = 1000, KEEP = 2 };
	struct sink_set *set = NULL;
	char path[256], rp[300], buf[256];
	int seqs[KEEP + 1][64], cnt[KEEP + 1];
	size_t bytes;
	path_of(path, sizeof(path), "alerts.json");

	T_CHECK(sink_set_create(&set) == 0, "create");
	T_CHECK(sink_add_file(set, path, MAX, KEEP) == 0, "add file");
	for (int i = 0; i < N; i++) {
		int l = line(buf, sizeof(buf), i, 80);   /* ~100 bytes a line */
		T_CHECK(sink_emit(set, 4, buf, (size_t)l, NULL) == 0, "emit %d", i);
	}
	T_CHECK(wait_written(set, 0, N), "all written");
	struct sink_stat st;
	sink_stats(set, &st, 1);
	T_CHECK(st.rotations >= 4, "rotated %llu times", (unsigned long long)st.rotations);
	sink_set_destroy(set);

	for (int k = 0; k <= KEEP; k++) {
		if (k)
			snprintf(rp, sizeof(rp), "%s.%d", path, k);
		else
			snprintf(rp, sizeof(rp), "%s", path);
		cnt[k] = read_seqs(rp, seqs[k], 64, &bytes);
		T_CHECK(cnt[k] > 0, "%s: valid JSON lines (%d)", rp, cnt[k]);
		T_CHECK(bytes <= MAX, "%s: %zu bytes <= %d", rp, bytes, MAX);
		for (int i = 1; i < cnt[k]; i++)
			T_CHECK(seqs[k][i] == seqs[k][i - 1] + 1, "%s: consecutive", rp);
	}
	snprintf(rp, sizeof(rp), "%s.%d", path, KEEP + 1);
	T_CHECK(access(rp, F_OK) < 0, "only %d old files kept", KEEP);
	if (cnt[0] > 0 && cnt[1] > 0 && cnt[2] > 0) {
		T_CHECK(seqs[0][cnt[0] - 1] == N - 1, "newest alert in the live file");
		T_CHECK(seqs[1][cnt[1] - 1] + 1 == seqs[0][0], "file.1 continues into file");
		T_CHECK(seqs[2][cnt[2] - 1] + 1 == seqs[1][0], "file.2 continues into file.1");
	}

	/* keep 0: the file restarts, nothing else appears */
	char p0[256];
	path_of(p0, sizeof(p0), "nokeep.json");
	T_CHECK(sink_set_create(&set) == 0 && sink_add_file(set, p0, 300, 0) == 0, "add nokeep");
	for (int i = 0; i < 10; i++) {
		int l = line(buf, sizeof(buf), i, 80);
		sink_emit(set, 4, buf, (size_t)l, NULL);
	}
	T_CHECK(wait_written(set, 0, 10), "nokeep written");
	sink_set_destroy(set);
	int s0[16];
	int c0 = read_seqs(p0, s0, 16, &bytes);
	T_CHECK(c0 > 0 && c0 < 10 && bytes <= 300 && s0[c0 - 1] == 9, "nokeep: %d lines, %zu bytes", c0, bytes);
	snprintf(rp, sizeof(rp), "%s.1", p0);
	T_CHECK(access(rp, F_OK) < 0, "keep 0 keeps no old file");
}

static void test_reopen(void)
{
	struct sink_set *set = NULL;
	char path[256], moved[256];
	int seqs[8];
	size_t bytes;
	path_of(path, sizeof(path), "reopen.json");
	path_of(moved, sizeof(moved), "reopen.json.moved");

	T_CHECK(sink_set_create(&set) == 0 && sink_add_file(set, path, 0, 0) == 0, "add");
	sink_emit(set, 4, "{\"seq\":1}", 9, NULL);
	T_CHECK(wait_written(set, 0, 1), "first written");
	T_CHECK(rename(path, moved) == 0, "logrotate moves the file");
	sink_emit(set, 4, "{\"seq\":2}", 9, NULL);   /* still the old, moved file */
	T_CHECK(wait_written(set, 0, 2), "second written");
	sink_reopen(set);
	sink_emit(set, 4, "{\"seq\":3}", 9, NULL);
	T_CHECK(wait_written(set, 0, 3), "third written");
	sink_set_destroy(set);
	int n = read_seqs(moved, seqs, 8, &bytes);
	T_CHECK(n == 2 && seqs[0] == 1 && seqs[1] == 2, "moved file has 1,2 (%d)", n);
	n = read_seqs(path, seqs, 8, &bytes);
	T_CHECK(n == 1 && seqs[0] == 3, "new file has 3 (%d)", n);
	struct stat sb;
	T_CHECK(stat(path, &sb) == 0 && (sb.st_mode & 07777) == 0640, "mode 0640: %o", sb.st_mode & 07777);
}

struct th {
	struct sink_set *set;
	int base;
};

static void *emitter(void *arg)
{
	struct th *t = arg;
	char buf[64];
	for (int i = 0; i < 1000; i++) {
		int l = snprintf(buf, sizeof(buf), "{\"seq\":%d}", t->base + i);
		sink_emit(t->set, 4, buf, (size_t)l, NULL);
	}
	return NULL;
}

static void test_threads(void)
{
	enum { T = 4 };
	struct sink_set *set = NULL;
	pthread_t th[T];
	struct th args[T];
	char path[256];
	static int seqs[T * 1000 + 1];
	static bool seen[T * 1000];
	size_t bytes;
	path_of(path, sizeof(path), "threads.json");

	T_CHECK(sink_set_create(&set) == 0, "create");
	sink_set_options(set, T * 1000, 0);
	T_CHECK(sink_add_file(set, path, 0, 0) == 0, "add");
	for (int i = 0; i < T; i++) {
		args[i] = (struct th){set, i * 1000};
		pthread_create(&th[i], NULL, emitter, &args[i]);
	}
	for (int i = 0; i < T; i++)
		pthread_join(th[i], NULL);
	sink_set_destroy(set);   /* drains: nothing is left behind with room in the queue */
	int n = read_seqs(path, seqs, T * 1000 + 1, &bytes);
	T_CHECK(n == T * 1000, "%d lines from %d threads", n, T);
	int dup = 0;
	for (int i = 0; i < n; i++) {
		if (seqs[i] < 0 || seqs[i] >= T * 1000 || seen[seqs[i]])
			dup++;
		else
			seen[seqs[i]] = true;
	}
	T_CHECK(dup == 0, "each alert once");
}

static void test_errors(void)
{
	struct sink_set *set = NULL;
	char path[256], link[256];
	T_CHECK(sink_set_create(&set) == 0, "create");
	path_of(path, sizeof(path), "no/such/dir/a.json");
	T_CHECK(sink_add_file(set, path, 0, 0) == -ENOENT, "missing dir");
	T_CHECK(sink_add_file(set, dir, 0, 0) == -EISDIR, "a directory");
	path_of(path, sizeof(path), "target.json");
	path_of(link, sizeof(link), "link.json");
	T_CHECK(symlink(path, link) == 0, "symlink");
	T_CHECK(sink_add_file(set, link, 0, 0) == -ELOOP, "symlink refused (O_NOFOLLOW)");
	T_CHECK(sink_add_fd(set, -1, "bad") == -EBADF, "bad fd");
	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	for (int i = 0; i < SINK_MAX; i++)
		T_CHECK(sink_add_fd(set, devnull, "null") == 0, "add %d", i);
	T_CHECK(sink_add_fd(set, devnull, "null") == -ENOSPC, "at most SINK_MAX sinks");
	T_CHECK(sink_emit(set, 4, "{}", 2, NULL) == 0, "emit to all");
	sink_set_destroy(set);
	sink_set_destroy(NULL);
	close(devnull);
	/* an empty set accepts and discards */
	T_CHECK(sink_set_create(&set) == 0 && sink_emit(set, 4, "{}", 2, NULL) == 0, "empty set");
	sink_set_destroy(set);
}

/* Sleep-polls until sink 0 of set has failed `want` writes. */
static bool wait_errors(struct sink_set *set, uint64_t want)
{
	struct sink_stat st;
	for (int i = 0; i < 1000; i++) {
		sink_stats(set, &st, 1);
		if (st.write_errors >= want && st.queued == 0)
			return true;
		usleep(10000);
	}
	return false;
}

/* A socket whose peer is gone: every write fails. By default the failures and drops go to
 * ward_metrics (what the daemon exports); a set can count into its own metrics, or not. */
static void test_error_counters(void)
{
	static struct metric errs = METRIC_COUNTER_INIT("test_sink_errors_total", "errors");
	struct sink_set *set = NULL;
	int sv[2];
	T_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	close(sv[1]);
	uint64_t e0 = metric_value(&ward_metrics.sink_errors);
	uint64_t d0 = metric_value(&ward_metrics.sink_drops);
	T_CHECK(sink_set_create(&set) == 0 && sink_add_fd(set, sv[0], "dead") == 0, "add");
	for (int i = 0; i < 3; i++)
		T_CHECK(sink_emit(set, 3, "{}", 2, NULL) == 0, "emit %d: queued, not failed", i);
	T_CHECK(wait_errors(set, 3), "three failed writes");
	struct sink_stat st;
	sink_stats(set, &st, 1);
	T_CHECK(st.write_errors == 3 && st.dropped == 3 && st.written == 0, "stats %llu errors %llu drops",
		(unsigned long long)st.write_errors, (unsigned long long)st.dropped);
	T_CHECK(metric_value(&ward_metrics.sink_errors) - e0 == 3, "ward_sink_errors_total +%llu",
		(unsigned long long)(metric_value(&ward_metrics.sink_errors) - e0));
	T_CHECK(metric_value(&ward_metrics.sink_drops) - d0 == 3, "ward_sink_dropped_total +%llu",
		(unsigned long long)(metric_value(&ward_metrics.sink_drops) - d0));
	sink_set_destroy(set);

	e0 = metric_value(&ward_metrics.sink_errors);
	d0 = metric_value(&ward_metrics.sink_drops);
	T_CHECK(sink_set_create(&set) == 0, "create");
	sink_set_error_counter(set, &errs);
	sink_set_drop_counter(set, NULL);
	T_CHECK(sink_add_fd(set, sv[0], "dead") == 0, "add");
	T_CHECK(sink_emit(set, 3, "{}", 2, NULL) == 0 && sink_emit(set, 3, "{}", 2, NULL) == 0, "emit");
	T_CHECK(wait_errors(set, 2), "two failed writes");
	T_CHECK(metric_value(&errs) == 2, "own error counter %llu", (unsigned long long)metric_value(&errs));
	T_CHECK(metric_value(&ward_metrics.sink_errors) == e0 && metric_value(&ward_metrics.sink_drops) == d0,
		"ward's metrics untouched");
	sink_set_destroy(set);
	close(sv[0]);
}

static void cleanup(void)
{
	static const char *const names[] = {
		"alerts.json", "alerts.json.1", "alerts.json.2", "nokeep.json", "reopen.json",
		"reopen.json.moved", "threads.json", "link.json"};
	char p[256];
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		path_of(p, sizeof(p), names[i]);
		unlink(p);
	}
	rmdir(dir);
}

int main(void)
{
	mkdir("/tmp/out", 0755);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_fd_lines();
	test_stuck_reader();
	test_rotation();
	test_reopen();
	test_threads();
	test_errors();
	test_error_counters();
	cleanup();
	return T_DONE("sink");
}
