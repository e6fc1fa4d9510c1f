/* test_metrics.c: the Prometheus text format line by line, atomic updates from many
 * threads, and the /metrics endpoint scraped over real TCP connections: values move after
 * updates, bad requests get the right status, a stuck client does not block the next
 * scraper for longer than the I/O timeout, and stop is bounded. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "output/metrics.h"
#include "t.h"

static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = text; (p = strstr(p, line)); p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

/* The value on the line that starts with "series ", or -1. */
static double value_of(const char *text, const char *series)
{
	size_t n = strlen(series);
	for (const char *p = text; (p = strstr(p, series)); p++)
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

static void test_render(void)
{
	static struct metric a = METRIC_COUNTER_L("t_ops_total", "Ops by kind.", "kind", "read");
	static struct metric b = METRIC_COUNTER_L("t_ops_total", "Ops by kind.", "kind", "wr\"ite");
	static struct metric g = METRIC_GAUGE_INIT("t_level", "A level\\with\nnewline.");
	static struct metric h = {.name = "t_size", .help = "Sizes.", .type = METRIC_HISTOGRAM,
				  .nbuckets = 3, .bounds = {1, 5, 10}, .scale = 1.0};
	static struct metric dup = METRIC_COUNTER_L("t_ops_total", "Ops by kind.", "kind", "read");
	static struct metric clash = METRIC_GAUGE_INIT("t_ops_total", "x");
	struct metrics_registry *r = NULL;
	char *text = NULL;
	size_t len = 0;

	T_CHECK(metrics_registry_create(&r) == 0, "registry");
	T_CHECK(metrics_register(r, &a) == 0 && metrics_register(r, &g) == 0 &&
			metrics_register(r, &h) == 0 && metrics_register(r, &b) == 0,
		"register");
	T_CHECK(metrics_register(r, &dup) == -EEXIST, "same name and label twice");
	T_CHECK(metrics_register(r, &clash) == -EEXIST, "same name, other type");

	metric_add(&a, 3);
	metric_inc(&b);
	metric_set(&g, -7);
	metric_gauge_add(&g, 2);
	static const uint64_t obs[] = {0, 1, 2, 5, 6, 10, 11, 1000};   /* bounds are inclusive */
	for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++)
		metric_observe(&h, obs[i]);

	T_CHECK(metrics_render(r, &text, &len) == 0 && text && strlen(text) == len, "render");
	static const char *const want[] = {
		"# HELP t_ops_total Ops by kind.",
		"# TYPE t_ops_total counter",
		"t_ops_total{kind=\"read\"} 3",
		"t_ops_total{kind=\"wr\\\"ite\"} 1",
		"# HELP t_level A level\\\\with\\nnewline.",
		"# TYPE t_level gauge",
		"t_level -5",
		"# TYPE t_size histogram",
		"t_size_bucket{le=\"1\"} 2",
		"t_size_bucket{le=\"5\"} 4",
		"t_size_bucket{le=\"10\"} 6",
		"t_size_bucket{le=\"+Inf\"} 8",
		"t_size_sum 1035",
		"t_size_count 8",
	};
	for (size_t i = 0; text && i < sizeof(want) / sizeof(want[0]); i++)
		T_CHECK(has_line(text, want[i]), "line '%s' in:\n%s", want[i], text);
	/* one HELP per family, its members together right after it */
	if (text) {
		const char *h1 = strstr(text, "# HELP t_ops_total");
		T_CHECK(h1 && !strstr(h1 + 1, "# HELP t_ops_total"), "one HELP per family");
		const char *s2 = strstr(text, "t_ops_total{kind=\"wr");
		const char *next = strstr(text, "# HELP t_level");
		T_CHECK(s2 && next && s2 < next, "family members grouped");
		T_CHECK(len > 0 && text[len - 1] == '\n', "ends with a newline");
	}
	free(text);
	metrics_registry_destroy(r);
	metrics_registry_destroy(NULL);
}

struct hammer {
	struct metric *c, *h;
};

static void *hammer_main(void *arg)
{
	struct hammer *x = arg;
	for (int i = 0; i < 100000; i++) {
		metric_inc(x->c);
		metric_observe(x->h, (uint64_t)(i % 20));
	}
	return NULL;
}

static void test_atomic(void)
{
	static struct metric c = METRIC_COUNTER_INIT("t_c", "c");
	static struct metric h = {.name = "t_h", .help = "h", .type = METRIC_HISTOGRAM,
				  .nbuckets = 2, .bounds = {4, 9}, .scale = 1.0};
	pthread_t th[4];
	struct hammer x = {&c, &h};
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, hammer_main, &x);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	T_CHECK(metric_value(&c) == 400000, "counter %llu", (unsigned long long)metric_value(&c));
	T_CHECK(metric_hist_count(&h) == 400000, "hist count");
	/* each thread: i%20 sums to 190 per 20 iterations, 5000 rounds */
	T_CHECK(atomic_load(&h.sum) == 4ull * 5000 * 190, "hist sum %llu",
		(unsigned long long)atomic_load(&h.sum));
	T_CHECK(atomic_load(&h.buckets[0]) == 4ull * 5000 * 5, "bucket le=4");
}

static void test_route(void)
{
	static const struct {
		const char *req;
		int status;
		bool head;
	} rows[] = {
		{"GET /metrics HTTP/1.1\r\n", 200, false},
		{"GET /metrics HTTP/1.0\n", 200, false},
		{"GET /metrics?x=1 HTTP/1.1\r\n", 200, false},
		{"HEAD /metrics HTTP/1.1\r\n", 200, true},
		{"GET /metricsx HTTP/1.1\r\n", 404, false},
		{"GET / HTTP/1.1\r\n", 404, false},
		{"POST /metrics HTTP/1.1\r\n", 405, false},
		{"GET /metrics HTTP/2.0\r\n", 505, false},
		{"GET /metrics FTP/1.0\r\n", 400, false},
		{"GET /metrics HTTP/1.1", 400, false},     /* no end of line yet */
		{"GET\r\n", 400, false},
		{"GET /metrics\r\n", 400, false},          /* HTTP/0.9 */
		{"", 400, false},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		bool head = !rows[i].head;
		int s = metrics_http_route(rows[i].req, strlen(rows[i].req), &head);
		T_CHECK(s == rows[i].status, "'%s': %d want %d", rows[i].req, s, rows[i].status);
		if (s == 200)
			T_CHECK(head == rows[i].head, "'%s': head", rows[i].req);
	}
}

static int dial(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Sends req, reads the whole response until the server closes (generous bound). */
static char *http(int port, const char *req, size_t reqlen)
{
	int fd = dial(port);
	size_t cap = 1 << 16, got = 0;
	char *buf = calloc(1, cap);
	if (fd < 0 || !buf) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (send(fd, req, reqlen, MSG_NOSIGNAL) < 0)
		goto out;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 10000) <= 0)
			break;
		ssize_t r = recv(fd, buf + got, cap - 1 - got, 0);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
out:
	close(fd);
	return buf;
}

static char *scrape(int port)
{
	static const char req[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\n\r\n";
	return http(port, req, sizeof(req) - 1);
}

static void test_endpoint(void)
{
	struct metrics_registry *r = NULL;
	struct metrics_server *srv = NULL;
	T_CHECK(metrics_registry_create(&r) == 0, "registry");
	T_CHECK(ward_metrics_register(r) == 0, "ward metrics");
	T_CHECK(ward_metrics_register(r) == -EEXIST, "twice is refused");
	T_CHECK(metrics_server_start(r, "127.0.0.1:0", &srv) == 0, "start");
	struct metrics_server *bad = NULL;
	T_CHECK(metrics_server_start(r, "nonsense", &bad) == -EINVAL && !bad, "bad address");
	if (!srv) {
		metrics_registry_destroy(r);
		return;
	}
	int port = metrics_server_port(srv);
	T_CHECK(port > 0, "port %d", port);

	char *a = scrape(port);
	T_CHECK(a && strncmp(a, "HTTP/1.1 200 OK\r\n", 17) == 0, "200");
	T_CHECK(a && strstr(a, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
		"content type 0.0.4");
	const char *body = a ? strstr(a, "\r\n\r\n") : NULL;
	T_CHECK(body != NULL, "headers end");
	body = body ? body + 4 : "";
	const char *cl = a ? strstr(a, "Content-Length: ") : NULL;
	T_CHECK(cl && (size_t)atol(cl + 16) == strlen(body), "content length matches body");
	static const char *const names[] = {
		"# TYPE ward_events_total counter", "# TYPE ward_events_dropped_total counter",
		"# TYPE ward_queue_overflows_total counter",
		"# TYPE ward_permission_latency_seconds histogram", "# TYPE ward_vault_bytes gauge",
		"# TYPE ward_vault_versions gauge", "# TYPE ward_incidents_total counter",
		"# TYPE ward_actors_stopped_total counter", "# TYPE ward_rules_loaded gauge",
		"# TYPE ward_indicators_loaded gauge", "# TYPE ward_sink_dropped_total counter",
		"# TYPE ward_sink_errors_total counter",
		"ward_permission_latency_seconds_bucket{le=\"1e-05\"} 0",
		"ward_permission_latency_seconds_bucket{le=\"1\"} 0",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		T_CHECK(has_line(body, names[i]), "'%s' exported", names[i]);
	double c0 = value_of(body, "ward_events_total{kind=\"create\"}");
	double r0 = value_of(body, "ward_events_total{kind=\"rename\"}");
	double i0 = value_of(body, "ward_incidents_total");
	double e0 = value_of(body, "ward_sink_errors_total");
	T_CHECK(c0 >= 0 && r0 >= 0 && i0 >= 0, "values present");

	/* update, scrape again: the values moved by exactly what we did */
	metric_add(&ward_metrics.events[WOP_CREATE], 5);
	metric_inc(&ward_metrics.incidents);
	metric_add(&ward_metrics.sink_errors, 3);
	metric_set(&ward_metrics.vault_bytes, 123456789);
	metric_observe(&ward_metrics.perm_latency, 30000);      /* 30 us */
	metric_observe(&ward_metrics.perm_latency, 2000000000); /* 2 s: past every bound */
	char *b = scrape(port);
	const char *body2 = b ? strstr(b, "\r\n\r\n") : NULL;
	body2 = body2 ? body2 + 4 : "";
	T_CHECK(value_of(body2, "ward_events_total{kind=\"create\"}") == c0 + 5, "create +5");
	T_CHECK(value_of(body2, "ward_events_total{kind=\"rename\"}") == r0, "rename unchanged");
	T_CHECK(value_of(body2, "ward_incidents_total") == i0 + 1, "incidents +1");
	T_CHECK(value_of(body2, "ward_sink_errors_total") == e0 + 3, "sink errors +3");
	T_CHECK(value_of(body2, "ward_vault_bytes") == 123456789, "gauge set");
	T_CHECK(value_of(body2, "ward_permission_latency_seconds_bucket{le=\"2.5e-05\"}") == 0, "30us not <= 25us");
	T_CHECK(value_of(body2, "ward_permission_latency_seconds_bucket{le=\"5e-05\"}") == 1, "30us <= 50us");
	T_CHECK(value_of(body2, "ward_permission_latency_seconds_bucket{le=\"1\"}") == 1, "2s not <= 1s");
	T_CHECK(value_of(body2, "ward_permission_latency_seconds_bucket{le=\"+Inf\"}") == 2, "+Inf");
	T_CHECK(value_of(body2, "ward_permission_latency_seconds_count") == 2, "count");
	double sum = value_of(body2, "ward_permission_latency_seconds_sum");
	T_CHECK(sum > 2.00002 && sum < 2.00004, "sum %.9g s", sum);
	free(a);
	free(b);

	/* statuses */
	static const struct {
		const char *req;
		const char *status;
	} rows[] = {
		{"GET /nope HTTP/1.1\r\n\r\n", "HTTP/1.1 404 "},
		{"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 405 "},
		{"garbage\r\n\r\n", "HTTP/1.1 400 "},
		{"GET /metrics HTTP/3\r\n\r\n", "HTTP/1.1 505 "},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *x = http(port, rows[i].req, strlen(rows[i].req));
		T_CHECK(x && strncmp(x, rows[i].status, strlen(rows[i].status)) == 0, "'%s' -> %.20s",
			rows[i].req, x ? x : "(none)");
		free(x);
	}
	char *hd = http(port, "HEAD /metrics HTTP/1.0\r\n\r\n", 26);
	T_CHECK(hd && strncmp(hd, "HTTP/1.1 200", 12) == 0 && strstr(hd, "\r\n\r\n") &&
			strstr(hd, "\r\n\r\n")[4] == '\0',
		"HEAD: headers only");
	free(hd);

	/* an oversized request (no end of headers in METRICS_REQ_MAX bytes) is refused */
	static char big[METRICS_REQ_MAX + 512];
	memset(big, 'A', sizeof(big));
	char *x = http(port, big, sizeof(big));
	T_CHECK(x && strncmp(x, "HTTP/1.1 400", 12) == 0, "oversized -> 400");
	free(x);

	/* a client that connects and says nothing is dropped after the I/O timeout; the next
	 * scraper is served after it (sleep-polling inside http(): generous 10 s bound) */
	int stuck = dial(port);
	T_CHECK(stuck >= 0, "stuck client connected");
	char *y = scrape(port);
	T_CHECK(y && strncmp(y, "HTTP/1.1 200", 12) == 0, "served after a stuck client");
	free(y);
	if (stuck >= 0) {
		char c;
		struct pollfd p = {.fd = stuck, .events = POLLIN};
		T_CHECK(poll(&p, 1, 10000) == 1 && recv(stuck, &c, 1, 0) == 0,
			"stuck client closed without an answer");
		close(stuck);
	}

	/* stop while a client hangs: bounded, the stop eventfd interrupts its wait */
	stuck = dial(port);
	usleep(50000);   /* let the server pick it up: stop must not need it to go away */
	metrics_server_stop(srv);
	int after = dial(port);
	T_CHECK(after < 0, "listener closed after stop");
	if (after >= 0)
		close(after);
	if (stuck >= 0)
		close(stuck);
	metrics_server_stop(NULL);
	metrics_registry_destroy(r);
}

int main(void)
{
	test_render();
	test_atomic();
	test_route();
	test_endpoint();
	return T_DONE("metrics");
}
