/* metrics.c: metric values, the registry, Prometheus text rendering and the /metrics
 * responder.
 *
 * Updates are single relaxed atomics on the metric itself; nothing on the update path
 * knows the registry exists. Histograms keep non-cumulative bucket counts (one increment
 * per observation) and the exporter sums them, deriving _count from the same reads so a
 * scrape is always self-consistent (+Inf bucket == _count) even while other threads
 * observe. Sums are kept in integer base units (ns) so they are atomic without a CAS loop.
 *
 * The HTTP side is deliberately small: one thread, one connection at a time, a bounded
 * request buffer, a deadline on all I/O with that client, and the stop eventfd in every
 * poll so metrics_server_stop() never waits for a client. */
#include "output/metrics.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "output/syslog.h"   /* syslog_split_hostport */

#define METRICS_LINGER_MS 200   /* discarding a client's unread input before close */

/* --- values --- */

void metric_observe(struct metric *m, uint64_t v)
{
	size_t i = 0;
	while (i < m->nbuckets && v > m->bounds[i])
		i++;
	atomic_fetch_add_explicit(&m->buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->sum, v, memory_order_relaxed);
}

uint64_t metric_value(const struct metric *m)
{
	return atomic_load_explicit(&m->v, memory_order_relaxed);
}

int64_t metric_gauge_value(const struct metric *m)
{
	return atomic_load_explicit(&m->g, memory_order_relaxed);
}

uint64_t metric_hist_count(const struct metric *m)
{
	uint64_t n = 0;
	for (size_t i = 0; i <= m->nbuckets; i++)
		n += atomic_load_explicit(&m->buckets[i], memory_order_relaxed);
	return n;
}

/* --- registry --- */

struct metrics_registry {
	pthread_mutex_t lock;        /* registration vs rendering; never on updates */
	struct metric *m[METRICS_REGISTRY_MAX];
	size_t n;
};

int metrics_registry_create(struct metrics_registry **out)
{
	struct metrics_registry *r = calloc(1, sizeof(*r));
	*out = NULL;
	if (!r)
		return -ENOMEM;
	pthread_mutex_init(&r->lock, NULL);
	*out = r;
	return 0;
}

void metrics_registry_destroy(struct metrics_registry *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

int metrics_register(struct metrics_registry *r, struct metric *m)
{
	int err = 0;
	if (!m->name || !m->help || m->nbuckets > METRIC_MAX_BUCKETS)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->n; i++) {
		if (str_eq(r->m[i]->name, m->name) &&
		    (r->m[i]->type != m->type || str_eq(r->m[i]->label_value, m->label_value))) {
			err = -EEXIST;
			goto out;
		}
	}
	if (r->n >= METRICS_REGISTRY_MAX) {
		err = -ENOSPC;
		goto out;
	}
	r->m[r->n++] = m;
out:
	pthread_mutex_unlock(&r->lock);
	return err;
}

/* --- text format 0.0.4 --- */

struct tbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void tb_printf(struct tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_printf(struct tbuf *b, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		if (b->oom)
			return;
		size_t room = b->cap - b->len;
		va_start(ap, fmt);
		int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap < b->len + (size_t)n + 1)
			cap *= 2;
		char *np = realloc(b->p, cap);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
}

/* HELP text escapes '\' and newline; label values also '"'. */
static void tb_escaped(struct tbuf *b, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			tb_printf(b, "\\\\");
		else if (*s == '\n')
			tb_printf(b, "\\n");
		else if (quote && *s == '"')
			tb_printf(b, "\\\"");
		else
			tb_printf(b, "%c", *s);
	}
}

static void tb_labels(struct tbuf *b, const struct metric *m, const char *le)
{
	if (!m->label_key && !le)
		return;
	tb_printf(b, "{");
	if (m->label_key) {
		tb_printf(b, "%s=\"", m->label_key);
		tb_escaped(b, m->label_value ? m->label_value : "", true);
		tb_printf(b, "\"%s", le ? "," : "");
	}
	if (le)
		tb_printf(b, "le=\"%s\"", le);
	tb_printf(b, "}");
}

static void render_series(struct tbuf *b, const struct metric *m)
{
	if (m->type == METRIC_COUNTER) {
		tb_printf(b, "%s", m->name);
		tb_labels(b, m, NULL);
		tb_printf(b, " %llu\n", (unsigned long long)metric_value(m));
	} else if (m->type == METRIC_GAUGE) {
		tb_printf(b, "%s", m->name);
		tb_labels(b, m, NULL);
		tb_printf(b, " %lld\n", (long long)metric_gauge_value(m));
	} else {
		uint64_t cum = 0;
		char le[48];
		for (size_t i = 0; i <= m->nbuckets; i++) {
			cum += atomic_load_explicit(&m->buckets[i], memory_order_relaxed);
			if (i < m->nbuckets)
				snprintf(le, sizeof(le), "%.9g", (double)m->bounds[i] * m->scale);
			else
				snprintf(le, sizeof(le), "+Inf");
			tb_printf(b, "%s_bucket", m->name);
			tb_labels(b, m, le);
			tb_printf(b, " %llu\n", (unsigned long long)cum);
		}
		double sum = (double)atomic_load_explicit(&m->sum, memory_order_relaxed) * m->scale;
		tb_printf(b, "%s_sum", m->name);
		tb_labels(b, m, NULL);
		tb_printf(b, " %.9g\n", sum);
		tb_printf(b, "%s_count", m->name);
		tb_labels(b, m, NULL);
		tb_printf(b, " %llu\n", (unsigned long long)cum);
	}
}

int metrics_render(struct metrics_registry *r, char **out, size_t *len)
{
	static const char *const tn[] = {"counter", "gauge", "histogram"};
	struct tbuf b = {0};

	*out = NULL;
	*len = 0;
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->n; i++) {
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = str_eq(r->m[j]->name, r->m[i]->name);
		if (seen)
			continue;   /* the family was written with its first member */
		tb_printf(&b, "# HELP %s ", r->m[i]->name);
		tb_escaped(&b, r->m[i]->help, false);
		tb_printf(&b, "\n# TYPE %s %s\n", r->m[i]->name, tn[r->m[i]->type]);
		for (size_t k = i; k < r->n; k++)
			if (str_eq(r->m[k]->name, r->m[i]->name))
				render_series(&b, r->m[k]);
	}
	pthread_mutex_unlock(&r->lock);
	if (!b.p)
		tb_printf(&b, "%s", "");
	if (b.oom) {
		free(b.p);
		return -ENOMEM;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}

/* --- HTTP --- */

int metrics_http_route(const char *req, size_t len, bool *head)
{
	const char *eol = memchr(req, '\n', len);
	const char *sp1, *sp2, *end;
	size_t ml, tl, vl;

	*head = false;
	if (!eol)
		return 400;
	end = eol;
	if (end > req && end[-1] == '\r')
		end--;
	sp1 = memchr(req, ' ', (size_t)(end - req));
	if (!sp1)
		return 400;
	sp2 = memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1));
	if (!sp2)
		return 400;
	ml = (size_t)(sp1 - req);
	tl = (size_t)(sp2 - sp1 - 1);
	vl = (size_t)(end - sp2 - 1);
	if (vl < 5 || memcmp(sp2 + 1, "HTTP/", 5) != 0)
		return 400;
	if (!(vl == 8 && (memcmp(sp2 + 1, "HTTP/1.0", 8) == 0 || memcmp(sp2 + 1, "HTTP/1.1", 8) == 0)))
		return 505;
	if (ml == 4 && memcmp(req, "HEAD", 4) == 0)
		*head = true;
	else if (!(ml == 3 && memcmp(req, "GET", 3) == 0))
		return 405;
	if (tl >= 8 && memcmp(sp1 + 1, "/metrics", 8) == 0 && (tl == 8 || sp1[9] == '?'))
		return 200;
	return 404;
}

struct metrics_server {
	struct metrics_registry *reg;
	int lfd, stopfd, port;
	pthread_t thread;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for ev on fd until deadline. 1 ready, 0 timed out or stopping, -errno. */
static int wait_fd(struct metrics_server *s, int fd, short ev, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - mono_ms();
		if (left <= 0)
			return 0;
		struct pollfd p[2] = {{.fd = fd, .events = ev}, {.fd = s->stopfd, .events = POLLIN}};
		int r = poll(p, 2, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (p[1].revents)
			return 0;
		if (p[0].revents)
			return 1;
	}
}

static int send_all(struct metrics_server *s, int fd, const char *p, size_t n, int64_t deadline)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			if (wait_fd(s, fd, POLLOUT, deadline) <= 0)
				return -ETIMEDOUT;
			continue;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void serve_one(struct metrics_server *s, int fd)
{
	static const char ctype[] = "text/plain; version=0.0.4; charset=utf-8";
	char req[METRICS_REQ_MAX];
	size_t got = 0;
	int64_t deadline = mono_ms() + METRICS_IO_TIMEOUT_MS;
	char *body = NULL;
	size_t blen = 0;
	bool head = false;
	int status;

	/* read until the end of the headers, a full buffer, EOF or the deadline */
	for (;;) {
		if (got >= 4 && (memmem(req, got, "\r\n\r\n", 4) || memmem(req, got, "\n\n", 2)))
			break;
		if (got == sizeof(req))
			break;
		ssize_t r = recv(fd, req + got, sizeof(req) - got, MSG_DONTWAIT);
		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		if (r == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return;
		if (wait_fd(s, fd, POLLIN, deadline) <= 0)
			return;   /* a stuck client gets closed, no answer */
	}
	status = metrics_http_route(req, got, &head);
	if (status == 200 && metrics_render(s->reg, &body, &blen) < 0)
		status = 500;
	const char *reason = status == 200 ? "OK" : status == 400 ? "Bad Request"
			   : status == 404 ? "Not Found" : status == 405 ? "Method Not Allowed"
			   : status == 505 ? "HTTP Version Not Supported" : "Internal Server Error";
	if (status != 200) {
		free(body);
		body = NULL;
		blen = strlen(reason) + 1;
	}
	char hdr[256];
	int hl = snprintf(hdr, sizeof(hdr),
			  "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
			  "Connection: close\r\n\r\n",
			  status, reason, status == 200 ? ctype : "text/plain; charset=utf-8", blen,
			  status == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (send_all(s, fd, hdr, (size_t)hl, deadline) == 0 && !head) {
		if (body) {
			send_all(s, fd, body, blen, deadline);
		} else {
			char msg[64];
			int ml = snprintf(msg, sizeof(msg), "%s\n", reason);
			send_all(s, fd, msg, (size_t)ml, deadline);
		}
	}
	free(body);
}

static void drain(struct metrics_server *s, int fd)
{
	char b[4096];
	int64_t deadline = mono_ms() + METRICS_LINGER_MS;
	for (size_t total = 0; total < 64 * 1024;) {
		ssize_t r = recv(fd, b, sizeof(b), MSG_DONTWAIT);
		if (r > 0) {
			total += (size_t)r;
			continue;
		}
		if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			return;
		if (wait_fd(s, fd, POLLIN, deadline) <= 0)
			return;
	}
}

static void *server_main(void *arg)
{
	struct metrics_server *s = arg;
	for (;;) {
		struct pollfd p[2] = {{.fd = s->lfd, .events = POLLIN}, {.fd = s->stopfd, .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_err("metrics: poll: %s", strerror(errno));
			break;
		}
		if (p[1].revents)
			break;
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				/* out of descriptors: do not spin on a ready listener */
				struct pollfd st = {.fd = s->stopfd, .events = POLLIN};
				poll(&st, 1, 100);
			}
			continue;
		}
		serve_one(s, fd);
		/* Closing with unread input makes the kernel send RST, which can destroy the
		 * answer before the client reads it (a 400 for an oversized request): send our
		 * FIN, then discard input for a short, bounded while before closing. */
		shutdown(fd, SHUT_WR);
		drain(s, fd);
		close(fd);
	}
	return NULL;
}

int metrics_server_start(struct metrics_registry *r, const char *addr,
			 struct metrics_server **out)
{
	struct metrics_server *s = NULL;
	struct addrinfo *res = NULL;
	char host[256], port[16];
	int one = 1, err = 0;

	*out = NULL;
	if (syslog_split_hostport(addr, host, sizeof(host), port, sizeof(port)))
		return -EINVAL;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
	if (getaddrinfo(host, port, &hints, &res) != 0 || !res)
		return -ENOENT;
	s = calloc(1, sizeof(*s));
	if (!s) {
		err = -ENOMEM;
		goto out;
	}
	s->reg = r;
	s->lfd = s->stopfd = -1;
	s->lfd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->lfd < 0) {
		err = -errno;
		goto out;
	}
	setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s->lfd, res->ai_addr, res->ai_addrlen) < 0 || listen(s->lfd, 16) < 0) {
		err = -errno;
		goto out;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(s->lfd, (struct sockaddr *)&ss, &sl) < 0) {
		err = -errno;
		goto out;
	}
	char pbuf[16];
	if (getnameinfo((struct sockaddr *)&ss, sl, NULL, 0, pbuf, sizeof(pbuf), NI_NUMERICSERV)) {
		err = -EINVAL;
		goto out;
	}
	s->port = atoi(pbuf);
	s->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->stopfd < 0) {
		err = -errno;
		goto out;
	}
	err = -pthread_create(&s->thread, NULL, server_main, s);
	if (err)
		goto out;
	*out = s;
	s = NULL;
out:
	if (s) {
		if (s->lfd >= 0)
			close(s->lfd);
		if (s->stopfd >= 0)
			close(s->stopfd);
		free(s);
	}
	freeaddrinfo(res);
	return err;
}

int metrics_server_port(const struct metrics_server *s)
{
	return s->port;
}

void metrics_server_stop(struct metrics_server *s)
{
	if (!s)
		return;
	uint64_t one = 1;
	if (write(s->stopfd, &one, sizeof(one)) < 0)
		log_warn("metrics: stop: %s", strerror(errno));
	pthread_join(s->thread, NULL);
	close(s->lfd);
	close(s->stopfd);
	free(s);
}

/* --- what ward exports --- */

#define EV(k) METRIC_COUNTER_L("ward_events_total", "File events seen, by kind.", "kind", k)

struct ward_metrics ward_metrics = {
	.events = {
		[WOP_CREATE] = EV("create"),
		[WOP_MODIFY] = EV("modify"),
		[WOP_CLOSE_WRITE] = EV("close_write"),
		[WOP_RENAME] = EV("rename"),
		[WOP_DELETE] = EV("delete"),
		[WOP_MKDIR] = EV("mkdir"),
		[WOP_RMDIR] = EV("rmdir"),
		[WOP_OVERFLOW] = EV("overflow"),
	},
	.events_dropped = METRIC_COUNTER_INIT("ward_events_dropped_total",
					      "Events ward read but could not process."),
	.queue_overflows = METRIC_COUNTER_INIT("ward_queue_overflows_total",
					       "Kernel event queue overflows (events lost)."),
	.perm_latency = {
		.name = "ward_permission_latency_seconds",
		.help = "Time from ward reading a permission event to writing its answer "
			"(time queued in the kernel before the read is not included).",
		.type = METRIC_HISTOGRAM,
		.nbuckets = 16,
		/* 10us .. 1s in ns */
		.bounds = {10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
			   5000000, 10000000, 25000000, 50000000, 100000000, 250000000,
			   500000000, 1000000000},
		.scale = 1e-9,
	},
	.vault_bytes = METRIC_GAUGE_INIT("ward_vault_bytes", "Bytes stored in the vault."),
	.vault_versions = METRIC_GAUGE_INIT("ward_vault_versions",
					    "File versions stored in the vault."),
	.incidents = METRIC_COUNTER_INIT("ward_incidents_total", "Incidents opened."),
	.actors_stopped = METRIC_COUNTER_INIT("ward_actors_stopped_total",
					      "Processes stopped by the response module."),
	.rules_loaded = METRIC_GAUGE_INIT("ward_rules_loaded", "YARA rules loaded."),
	.indicators_loaded = METRIC_GAUGE_INIT("ward_indicators_loaded",
					       "Indicators (hashes, feeds) loaded."),
	.sink_drops = METRIC_COUNTER_INIT("ward_sink_dropped_total",
					  "Alerts dropped by output sinks (full queue, dead receiver)."),
	.sink_errors = METRIC_COUNTER_INIT("ward_sink_errors_total",
					   "Failed alert writes, sends and connects; a TCP syslog "
					   "sink keeps the alert and retries it."),
};

_Static_assert(WOP__COUNT == 8, "ward_metrics.events needs a label for every ward_op");

int ward_metrics_register(struct metrics_registry *r)
{
	struct ward_metrics *w = &ward_metrics;
	struct metric *all[] = {&w->events_dropped, &w->queue_overflows, &w->perm_latency,
				&w->vault_bytes, &w->vault_versions, &w->incidents,
				&w->actors_stopped, &w->rules_loaded, &w->indicators_loaded,
				&w->sink_drops, &w->sink_errors};
	int err;

	for (size_t i = 0; i < WOP__COUNT; i++)
		if ((err = metrics_register(r, &w->events[i])))
			return err;
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if ((err = metrics_register(r, all[i])))
			return err;
	return 0;
}
