/* test_syslog.c: the RFC 5424 formatter field by field (tables of inputs and expected
 * text), then every transport against sockets this test listens on: a unix datagram
 * socket standing in for /dev/log, UDP and TCP on 127.0.0.1. The TCP sink test kills the
 * receiver mid-stream, shows sink_emit() keeps returning with drops counted, and that the
 * sink reconnects when the receiver comes back. */
#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "output/sink.h"
#include "output/syslog.h"
#include "t.h"

#define WAIT_MS 5000   /* generous bound for something to arrive */

/* --- a small RFC 5424 parser for checking what arrived --- */

struct parsed {
	char head[6][300];           /* PRI+VERSION, TIMESTAMP, HOSTNAME, APP-NAME, PROCID, MSGID */
	char sd[2048];               /* the structured data as written, or "-" */
	const char *msg;             /* into the parsed buffer, NULL without MSG */
	size_t msg_len;
};

static int parse5424(const char *s, size_t n, struct parsed *p)
{
	size_t i = 0;
	memset(p, 0, sizeof(*p));
	for (int f = 0; f < 6; f++) {
		size_t k = 0;
		while (i < n && s[i] != ' ' && k < sizeof(p->head[f]) - 1)
			p->head[f][k++] = s[i++];
		if (i >= n || s[i] != ' ')
			return -1;
		i++;
	}
	size_t st = i;
	if (i < n && s[i] == '-') {
		i++;
	} else if (i < n && s[i] == '[') {
		while (i < n && s[i] != ']') {
			if (s[i] == '\\')
				i++;   /* escaped char inside a value */
			i++;
		}
		if (i >= n)
			return -1;
		i++;
	} else {
		return -1;
	}
	if (i - st >= sizeof(p->sd))
		return -1;
	memcpy(p->sd, s + st, i - st);
	if (i < n) {
		if (s[i] != ' ')
			return -1;
		p->msg = s + i + 1;
		p->msg_len = n - i - 1;
	}
	return 0;
}

/* --- formatter --- */

static void test_format_fields(void)
{
	static const struct syslog_sd_param params[] = {
		{"incident", "inc-7"}, {"score", "91.50"}, {"msg", "mass \"encrypt\" [x] a\\b"}};
	static const char json[] = "{\"event\":{\"kind\":\"alert\"}}";
	struct syslog_fields f = {
		.facility = 4, .severity = 2, .sec = 1764070262, .nsec = 123456789,
		.hostname = "host1", .app_name = "ward", .procid = "4242", .msgid = "ALERT",
		.sd_id = SYSLOG_SD_ID, .params = params, .nparams = 3,
		.msg = json, .msg_len = sizeof(json) - 1,
	};
	char buf[1024];
	size_t n = 0;
	struct parsed p;

	T_CHECK(syslog_format(&f, buf, sizeof(buf), &n) == 0, "format");
	T_CHECK(parse5424(buf, n, &p) == 0, "parses: %.*s", (int)n, buf);
	static const char *const want[6] = {"<34>1", "2025-11-25T11:31:02.123456Z", "host1",
					    "ward", "4242", "ALERT"};
	for (int i = 0; i < 6; i++)
		T_CHECK(strcmp(p.head[i], want[i]) == 0, "field %d = %s, want %s", i, p.head[i], want[i]);
	T_CHECK(strcmp(p.sd, "[ward@32473 incident=\"inc-7\" score=\"91.50\" "
			     "msg=\"mass \\\"encrypt\\\" [x\\] a\\\\b\"]") == 0, "sd = %s", p.sd);
	T_CHECK(p.msg && p.msg_len == sizeof(json) - 1 && memcmp(p.msg, json, p.msg_len) == 0,
		"MSG is the JSON");

	/* with the BOM, MSG starts with EF BB BF */
	f.bom = true;
	T_CHECK(syslog_format(&f, buf, sizeof(buf), &n) == 0 && parse5424(buf, n, &p) == 0, "bom");
	T_CHECK(p.msg && memcmp(p.msg, "\xef\xbb\xbf{", 4) == 0, "BOM before MSG");

	/* the exact size fits, one byte less does not */
	f.bom = false;
	syslog_format(&f, buf, sizeof(buf), &n);
	size_t exact = n;
	T_CHECK(syslog_format(&f, buf, exact, &n) == 0 && n == exact, "exact fit");
	T_CHECK(syslog_format(&f, buf, exact - 1, &n) == -EMSGSIZE && n == 0, "EMSGSIZE");
}

static void test_format_table(void)
{
	static const char *const long_app = "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz0123456789";
	static const struct syslog_sd_param bad_name[] = {{"a=b c]\"d", "v"}};
	static const struct syslog_sd_param utf8[] = {{"path", "/home/\xc3\xa9t\xc3\xa9/\xff.txt"}};
	static const struct {
		const char *what;
		struct syslog_fields f;
		int ret;
		const char *out;   /* whole message */
	} rows[] = {
		{"all nil", {.facility = 1, .severity = 6, .sec = -1}, 0, "<14>1 - - - - - -"},
		{"pri max", {.facility = 23, .severity = 7, .sec = -1}, 0, "<191>1 - - - - - -"},
		{"pri min", {.facility = 0, .severity = 0, .sec = 0}, 0,
		 "<0>1 1970-01-01T00:00:00.000000Z - - - - -"},
		{"bad facility", {.facility = 24, .severity = 0}, -EINVAL, NULL},
		{"bad severity", {.facility = 1, .severity = 8}, -EINVAL, NULL},
		{"bad nsec", {.facility = 1, .severity = 1, .sec = 5, .nsec = 1000000000L}, 0,
		 "<9>1 - - - - - -"},
		{"unprintable host", {.facility = 1, .severity = 1, .sec = -1, .hostname = "my host\x01\xc3\xa9"},
		 0, "<9>1 - my_host___ - - - -"},
		{"app cut to 48", {.facility = 1, .severity = 1, .sec = -1, .app_name = long_app}, 0,
		 "<9>1 - - abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuv - - -"},
		{"empty sd element", {.facility = 1, .severity = 1, .sec = -1, .sd_id = SYSLOG_SD_ID}, 0,
		 "<9>1 - - - - - [ward@32473]"},
		{"sd-name sanitized", {.facility = 1, .severity = 1, .sec = -1, .sd_id = "x@1",
				       .params = bad_name, .nparams = 1}, 0,
		 "<9>1 - - - - - [x@1 a_b_c__d=\"v\"]"},
		{"utf8 kept, invalid replaced", {.facility = 1, .severity = 1, .sec = -1, .sd_id = "x@1",
						 .params = utf8, .nparams = 1}, 0,
		 "<9>1 - - - - - [x@1 path=\"/home/\xc3\xa9t\xc3\xa9/\xef\xbf\xbd.txt\"]"},
		{"empty msg", {.facility = 1, .severity = 1, .sec = -1, .msg = "", .msg_len = 0}, 0,
		 "<9>1 - - - - - - "},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char buf[512];
		size_t n = 0;
		int r = syslog_format(&rows[i].f, buf, sizeof(buf), &n);
		T_CHECK(r == rows[i].ret, "%s: ret %d want %d", rows[i].what, r, rows[i].ret);
		if (rows[i].out)
			T_CHECK(n == strlen(rows[i].out) && memcmp(buf, rows[i].out, n) == 0,
				"%s: got '%.*s' want '%s'", rows[i].what, (int)n, buf, rows[i].out);
	}
}

static void test_escape_table(void)
{
	static const struct {
		const char *in, *out;
	} rows[] = {
		{"plain", "plain"},   {"a\"b", "a\\\"b"}, {"a\\b", "a\\\\b"},
		{"a]b", "a\\]b"},     {"[ok", "[ok"},     {"\"\\]", "\\\"\\\\\\]"},
		{"", ""},             {"x=y z", "x=y z"}, {"\xe2\x82\xac", "\xe2\x82\xac"},
		{"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},   /* overlong '/' is not UTF-8 */
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct syslog_sd_param p = {"v", rows[i].in};
		struct syslog_fields f = {.facility = 1, .severity = 1, .sec = -1, .sd_id = "x@1",
					  .params = &p, .nparams = 1};
		char buf[256], want[256];
		size_t n;
		int wl = snprintf(want, sizeof(want), "<9>1 - - - - - [x@1 v=\"%s\"]", rows[i].out);
		T_CHECK(syslog_format(&f, buf, sizeof(buf), &n) == 0 && n == (size_t)wl &&
				memcmp(buf, want, n) == 0,
			"escape '%s': got '%.*s'", rows[i].in, (int)n, buf);
	}
}

static void test_hostport(void)
{
	static const struct {
		const char *in;
		int ret;
		const char *host, *port;
	} rows[] = {
		{"127.0.0.1:514", 0, "127.0.0.1", "514"},
		{"[::1]:6514", 0, "::1", "6514"},
		{"logs.example.org:601", 0, "logs.example.org", "601"},
		{"::1:514", -EINVAL, NULL, NULL},
		{"host", -EINVAL, NULL, NULL},
		{"host:", -EINVAL, NULL, NULL},
		{":514", -EINVAL, NULL, NULL},
		{"host:51a", -EINVAL, NULL, NULL},
		{"[::1]514", -EINVAL, NULL, NULL},
		{"", -EINVAL, NULL, NULL},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char h[64] = "", p[16] = "";
		int r = syslog_split_hostport(rows[i].in, h, sizeof(h), p, sizeof(p));
		T_CHECK(r == rows[i].ret, "'%s': %d", rows[i].in, r);
		if (rows[i].host)
			T_CHECK(strcmp(h, rows[i].host) == 0 && strcmp(p, rows[i].port) == 0,
				"'%s' -> '%s' '%s'", rows[i].in, h, p);
	}
}

/* --- transports --- */

static int wait_readable(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, ms);
}

static ssize_t recv_dgram(int fd, char *buf, size_t cap)
{
	if (wait_readable(fd, WAIT_MS) <= 0)
		return -1;
	return recv(fd, buf, cap, 0);
}

static int listen_tcp(int port, int *out_port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 4) < 0) {
		close(fd);
		return -1;
	}
	getsockname(fd, (struct sockaddr *)&a, &al);
	*out_port = ntohs(a.sin_port);
	return fd;
}

static int accept_wait(int lfd)
{
	if (wait_readable(lfd, WAIT_MS) <= 0)
		return -1;
	return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

/* Octet-counting reader: a buffer of bytes received from one TCP connection. */
struct framer {
	int fd;
	char buf[1 << 16];
	size_t len;
};

/* Next frame into out (NUL-terminated). 1 got one, 0 EOF/timeout, -1 malformed frame. */
static int next_frame(struct framer *fr, char *out, size_t cap, int ms)
{
	for (;;) {
		char *sp = memchr(fr->buf, ' ', fr->len);
		if (sp) {
			char *end;
			unsigned long n = strtoul(fr->buf, &end, 10);
			if (end != sp || fr->buf[0] < '1' || fr->buf[0] > '9' || n >= cap)
				return -1;
			size_t hl = (size_t)(sp - fr->buf) + 1;
			if (fr->len >= hl + n) {
				memcpy(out, sp + 1, n);
				out[n] = '\0';
				memmove(fr->buf, fr->buf + hl + n, fr->len - hl - n);
				fr->len -= hl + n;
				return 1;
			}
		} else if (fr->len > 10) {
			return -1;
		}
		if (wait_readable(fr->fd, ms) <= 0)
			return 0;
		ssize_t r = recv(fr->fd, fr->buf + fr->len, sizeof(fr->buf) - fr->len, 0);
		if (r <= 0)
			return 0;
		fr->len += (size_t)r;
	}
}

static void test_unix_udp_tcp_conn(void)
{
	char dir[] = "/tmp/out/syslogtest.XXXXXX", path[96], buf[4096];
	static const char m1[] = "<14>1 - - - - - - hello";
	struct syslog_conn *c = NULL;

	mkdir("/tmp/out", 0755);
	T_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	snprintf(path, sizeof(path), "%s/log", dir);

	/* /dev/log stand-in */
	int ufd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
	T_CHECK(bind(ufd, (struct sockaddr *)&un, sizeof(un)) == 0, "bind unix");
	struct syslog_cfg ucfg = {.transport = SYSLOG_UNIX, .address = path};
	T_CHECK(syslog_conn_open(&ucfg, &c) == 0, "open unix");
	T_CHECK(c && syslog_conn_send(c, m1, sizeof(m1) - 1) == 0, "send unix");
	ssize_t n = recv_dgram(ufd, buf, sizeof(buf));
	T_CHECK(n == (ssize_t)sizeof(m1) - 1 && memcmp(buf, m1, (size_t)n) == 0, "unix datagram arrives whole");
	syslog_conn_close(c);
	c = NULL;
	/* no receiver: an error, not a hang */
	close(ufd);
	unlink(path);
	T_CHECK(syslog_conn_open(&ucfg, &c) == 0, "open unix again");
	T_CHECK(c && syslog_conn_send(c, m1, sizeof(m1) - 1) == -ENOENT, "missing /dev/log -> ENOENT");
	syslog_conn_close(c);
	c = NULL;
	rmdir(dir);

	/* UDP */
	int dfd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	bind(dfd, (struct sockaddr *)&a, sizeof(a));
	getsockname(dfd, (struct sockaddr *)&a, &al);
	char addr[64];
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(a.sin_port));
	struct syslog_cfg dcfg = {.transport = SYSLOG_UDP, .address = addr};
	T_CHECK(syslog_conn_open(&dcfg, &c) == 0, "open udp");
	T_CHECK(c && syslog_conn_send(c, m1, sizeof(m1) - 1) == 0, "send udp");
	n = recv_dgram(dfd, buf, sizeof(buf));
	T_CHECK(n == (ssize_t)sizeof(m1) - 1 && memcmp(buf, m1, (size_t)n) == 0, "udp datagram arrives whole");
	syslog_conn_close(c);
	c = NULL;
	close(dfd);

	/* TCP, octet counting: three messages, one a byte-exact 0-length-free edge case */
	int port, lfd = listen_tcp(0, &port);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	struct syslog_cfg tcfg = {.transport = SYSLOG_TCP, .address = addr};
	T_CHECK(syslog_conn_open(&tcfg, &c) == 0, "open tcp");
	static const char *const msgs[] = {"<14>1 - - - - - - one", "<14>1 - - - - - - two 2",
					   "<14>1 - - - - - - with\nnewline"};
	for (int i = 0; i < 3; i++)
		T_CHECK(c && syslog_conn_send(c, msgs[i], strlen(msgs[i])) == 0, "send tcp %d", i);
	static struct framer fr;
	fr.fd = accept_wait(lfd);
	fr.len = 0;
	T_CHECK(fr.fd >= 0, "accept");
	for (int i = 0; i < 3; i++) {
		int r = next_frame(&fr, buf, sizeof(buf), WAIT_MS);
		T_CHECK(r == 1 && strcmp(buf, msgs[i]) == 0, "frame %d: '%s'", i, r == 1 ? buf : "");
	}
	syslog_conn_close(c);
	c = NULL;
	close(fr.fd);
	close(lfd);

	/* nothing listening: connect refused, then backoff says wait */
	struct syslog_cfg rcfg = {.transport = SYSLOG_TCP, .address = addr,
				  .backoff_min_ms = 60000, .backoff_max_ms = 60000};
	T_CHECK(syslog_conn_open(&rcfg, &c) == 0, "open tcp (no listener)");
	T_CHECK(c && syslog_conn_send(c, m1, sizeof(m1) - 1) == -ECONNREFUSED, "refused");
	T_CHECK(c && syslog_conn_send(c, m1, sizeof(m1) - 1) == -EAGAIN, "backing off");
	T_CHECK(c && syslog_conn_retry_ms(c) > 0, "retry later");
	syslog_conn_close(c);

	struct syslog_cfg bad = {.transport = SYSLOG_UDP, .address = "nocolon"};
	c = NULL;
	T_CHECK(syslog_conn_open(&bad, &c) == -EINVAL && c == NULL, "bad address");
}

/* A syslog sink end to end over the unix socket: PRI from severity, SD from meta. */
static void test_sink_unix(void)
{
	char dir[] = "/tmp/out/syslogsink.XXXXXX", path[96], buf[8192];
	static const char json[] = "{\"event\":{\"kind\":\"alert\"},\"ward\":{\"score\":91.5}}";
	struct sink_set *set = NULL;
	struct parsed p;

	T_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	snprintf(path, sizeof(path), "%s/log", dir);
	int ufd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
	bind(ufd, (struct sockaddr *)&un, sizeof(un));

	struct syslog_cfg cfg = {.transport = SYSLOG_UNIX, .address = path, .facility = 10,
				 .hostname = "box", .app_name = "ward"};
	T_CHECK(sink_set_create(&set) == 0, "create");
	T_CHECK(sink_add_syslog(set, &cfg) == 0, "add syslog");
	struct sink_meta meta = {.incident = "inc-9", .rule = "r]1", .score = 91.5, .has_score = true};
	T_CHECK(sink_emit_meta(set, 3, json, sizeof(json) - 1, "stopped \"x\"", &meta) == 0, "emit");
	ssize_t n = recv_dgram(ufd, buf, sizeof(buf));
	T_CHECK(n > 0 && parse5424(buf, (size_t)n, &p) == 0, "sink message parses");
	if (n > 0) {
		char pid[16];
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		T_CHECK(strcmp(p.head[0], "<83>1") == 0, "PRI authpriv.err: %s", p.head[0]);
		T_CHECK(strlen(p.head[1]) == 27 && p.head[1][26] == 'Z', "timestamp %s", p.head[1]);
		T_CHECK(strcmp(p.head[2], "box") == 0 && strcmp(p.head[3], "ward") == 0, "host/app");
		T_CHECK(strcmp(p.head[4], pid) == 0 && strcmp(p.head[5], "ALERT") == 0, "procid/msgid");
		T_CHECK(strcmp(p.sd, "[ward@32473 incident=\"inc-9\" rule=\"r\\]1\" score=\"91.50\" "
				     "msg=\"stopped \\\"x\\\"\"]") == 0, "sd %s", p.sd);
		T_CHECK(p.msg && p.msg_len == sizeof(json) - 1 && memcmp(p.msg, json, p.msg_len) == 0,
			"MSG is the alert JSON");
	}
	sink_set_destroy(set);
	close(ufd);
	unlink(path);
	rmdir(dir);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Reads frames until one whose MSG holds needle; counts frames read. */
static bool read_until(struct framer *fr, const char *needle, int *frames)
{
	static char buf[1 << 16];
	for (;;) {
		int r = next_frame(fr, buf, sizeof(buf), WAIT_MS);
		if (r != 1)
			return false;
		(*frames)++;
		struct parsed p;
		if (parse5424(buf, strlen(buf), &p) == 0 && p.msg && strstr(p.msg, needle))
			return true;
	}
}

static void test_sink_tcp_outage(void)
{
	enum { QLEN = 16, FLOOD = 500 };
	struct sink_set *set = NULL;
	struct sink_stat st;
	char addr[64], json[128];
	int port, lfd = listen_tcp(0, &port), frames = 0;
	static struct framer fr;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	struct syslog_cfg cfg = {.transport = SYSLOG_TCP, .address = addr, .io_timeout_ms = 200,
				 .backoff_min_ms = 20, .backoff_max_ms = 100};
	T_CHECK(sink_set_create(&set) == 0, "create");
	sink_set_options(set, QLEN, 500);
	T_CHECK(sink_add_syslog(set, &cfg) == 0, "add tcp syslog");

	/* a healthy stream first */
	for (int i = 0; i < 5; i++) {
		int l = snprintf(json, sizeof(json), "{\"seq\":%d}", i);
		T_CHECK(sink_emit(set, 4, json, (size_t)l, NULL) == 0, "emit %d", i);
	}
	fr.fd = accept_wait(lfd);
	fr.len = 0;
	T_CHECK(fr.fd >= 0, "accept");
	T_CHECK(read_until(&fr, "{\"seq\":4}", &frames) && frames == 5, "5 frames in order (%d)", frames);

	/* the receiver dies: connection and listener gone */
	close(fr.fd);
	close(lfd);

	/* flood: every call returns at once; what the queue cannot hold is dropped and counted */
	int nobufs = 0;
	double t0 = now_s(), worst = 0;
	for (int i = 0; i < FLOOD; i++) {
		int l = snprintf(json, sizeof(json), "{\"seq\":%d}", 100 + i);
		double a = now_s();
		int r = sink_emit(set, 4, json, (size_t)l, NULL);
		double d = now_s() - a;
		worst = d > worst ? d : worst;
		nobufs += r == -ENOBUFS;
		T_CHECK(r == 0 || r == -ENOBUFS, "emit during outage: %d", r);
	}
	double total = now_s() - t0;
	sink_stats(set, &st, 1);
	printf("tcp outage: %d emits in %.3f ms (worst call %.3f ms), %d refused, stats: "
	       "emitted %llu dropped %llu errors %llu queued %zu\n",
	       FLOOD, total * 1e3, worst * 1e3, nobufs, (unsigned long long)st.emitted,
	       (unsigned long long)st.dropped, (unsigned long long)st.write_errors, st.queued);
	/* Blocking on the dead receiver would cost at least one backoff (20 ms) per call,
	 * 10 s in all: a bound of 2 s cannot be met by a sink that waits on its receiver. */
	T_CHECK(total < 2.0, "%d emits took %.3f s", FLOOD, total);
	T_CHECK(nobufs >= FLOOD - QLEN - 1, "queue bounded: %d of %d refused", nobufs, FLOOD);
	T_CHECK(st.dropped >= (uint64_t)nobufs, "drops counted: %llu", (unsigned long long)st.dropped);
	/* the writer notices the dead receiver on its own (sleep-polling, generous bound) */
	for (int i = 0; i < 500 && st.write_errors == 0; i++) {
		usleep(10000);
		sink_stats(set, &st, 1);
	}
	T_CHECK(st.write_errors > 0, "failed connects counted");
	/* every alert taken in is written or still waiting, the one the writer holds for its
	 * retry included: nothing accepted is lost while the receiver is down */
	sink_stats(set, &st, 1);
	T_CHECK(st.emitted == st.written + st.queued && st.queued >= QLEN,
		"emitted %llu == written %llu + queued %zu", (unsigned long long)st.emitted,
		(unsigned long long)st.written, st.queued);
	T_CHECK(st.emitted + (uint64_t)nobufs == 5 + FLOOD, "every emit accounted for");

	/* the receiver comes back on the same port: the sink, still holding queued alerts,
	 * reconnects by itself within its backoff */
	lfd = listen_tcp(port, &port);
	T_CHECK(lfd >= 0, "relisten on %d", port);
	fr.fd = accept_wait(lfd);
	fr.len = 0;
	frames = 0;
	T_CHECK(fr.fd >= 0, "sink reconnected");
	/* the backlog drains, then a new alert follows it */
	int mr;
	do
		mr = sink_emit(set, 4, "{\"marker\":1}", 12, NULL);
	while (mr == -ENOBUFS && (usleep(10000), 1) && now_s() - t0 < 10);
	T_CHECK(mr == 0, "marker queued");
	T_CHECK(fr.fd >= 0 && read_until(&fr, "\"marker\"", &frames), "marker delivered after reconnect");
	T_CHECK(frames >= 1 && frames <= QLEN + 2, "backlog then marker: %d frames", frames);
	sink_stats(set, &st, 1);
	T_CHECK(st.written >= 6, "written after reconnect: %llu", (unsigned long long)st.written);
	sink_set_destroy(set);
	if (fr.fd >= 0)
		close(fr.fd);
	close(lfd);
}

int main(void)
{
	test_format_fields();
	test_format_table();
	test_escape_table();
	test_hostport();
	test_unix_udp_tcp_conn();
	test_sink_unix();
	test_sink_tcp_outage();
	return T_DONE("syslog");
}
