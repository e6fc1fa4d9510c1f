/* sink.c: alert sinks behind bounded queues.
 *
 * Design: sink_emit() copies the alert once into a reference-counted item and pushes a
 * pointer onto each sink's ring under that sink's mutex. The mutex is only ever held for a
 * few pointer moves (never across I/O), so emit cannot wait on a receiver; a full ring
 * drops the item for that sink and bumps a counter. Each sink's writer thread pops items
 * and does the slow part: write(2), rotation, fdatasync, syslog formatting and sending.
 *
 * Warnings about drops and errors come from the writer threads, at most one per sink per
 * SINK_WARN_INTERVAL_MS: the emit path does no I/O at all, not even to stderr.
 *
 * A TCP syslog sink keeps the item it could not send and retries it after the backoff, so
 * a short receiver outage is absorbed by the queue; a long one fills the queue and turns
 * into counted drops. Datagram transports and files drop the failed item instead: there is
 * no reconnect that would make a retry succeed. */
#include "output/sink.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "output/metrics.h"

#define SINK_WARN_INTERVAL_MS 10000
#define SINK_FD_TIMEOUT_MS 1000      /* how long one chunk waits for a stuck fd reader */

enum sink_kind { SK_FD, SK_FILE, SK_SYSLOG };

struct sink_item {
	atomic_int refs;
	int severity;
	bool has_score;
	double score;
	struct timespec ts;          /* CLOCK_REALTIME at emit: the syslog TIMESTAMP */
	const char *incident, *rule, *msg;   /* into data[], NULL when absent */
	size_t len;                  /* JSON bytes, not counting the '\n' that follows */
	char data[];                 /* json '\n' NUL, then the meta strings */
};

struct sink {
	struct sink_set *set;
	enum sink_kind kind;
	char name[64];
	pthread_t thread;
	bool started;

	pthread_mutex_t lock;
	pthread_cond_t cond;         /* CLOCK_MONOTONIC */
	struct sink_item **ring;
	size_t cap, head, count;
	bool stop, reopen;
	int64_t deadline_ms;         /* after stop: give up draining at this time */

	/* counters: written under lock or by the writer alone, read by sink_stats() */
	_Atomic uint64_t emitted, written, dropped, write_errors, rotations;
	atomic_bool in_hand;         /* the writer has an item off the ring: delivering it,
					or keeping it for a retry (set under lock at the pop) */

	/* writer-thread state */
	int fd;                      /* SK_FD: the caller's; SK_FILE: ours */
	char *path;
	uint64_t max_bytes, size;
	unsigned keep;
	bool dirty;                  /* written since the last fdatasync */
	bool is_sock;                /* SK_FD: send() with MSG_DONTWAIT */
	bool partial;                /* SK_FD: the last line was cut short */
	struct syslog_conn *conn;
	char *fmt;                   /* SYSLOG_MSG_MAX bytes */
	char procid[16];
	int64_t last_warn_ms;
	uint64_t warned_drops, warned_errors;
};

struct sink_set {
	struct sink *sinks[SINK_MAX];
	size_t n;
	size_t queue_len;
	int flush_ms;
	struct metric *drop_counter, *error_counter;   /* NULL: not counted */
	atomic_bool closing;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void item_put(struct sink_item *it)
{
	if (it && atomic_fetch_sub_explicit(&it->refs, 1, memory_order_acq_rel) == 1)
		free(it);
}

static void count_drop(struct sink *s, uint64_t n)
{
	atomic_fetch_add_explicit(&s->dropped, n, memory_order_relaxed);
	if (s->set->drop_counter)
		metric_add(s->set->drop_counter, n);
}

static void count_error(struct sink *s)
{
	atomic_fetch_add_explicit(&s->write_errors, 1, memory_order_relaxed);
	if (s->set->error_counter)
		metric_inc(s->set->error_counter);
}

int sink_set_create(struct sink_set **out)
{
	struct sink_set *set = calloc(1, sizeof(*set));
	*out = NULL;
	if (!set)
		return -ENOMEM;
	set->queue_len = SINK_QUEUE_DEFAULT;
	set->flush_ms = SINK_FLUSH_DEFAULT_MS;
	/* ward's metrics by default, so no caller can forget to export a dead receiver */
	set->drop_counter = &ward_metrics.sink_drops;
	set->error_counter = &ward_metrics.sink_errors;
	*out = set;
	return 0;
}

void sink_set_options(struct sink_set *set, size_t queue_len, int flush_timeout_ms)
{
	set->queue_len = queue_len ? queue_len : SINK_QUEUE_DEFAULT;
	set->flush_ms = flush_timeout_ms > 0 ? flush_timeout_ms : SINK_FLUSH_DEFAULT_MS;
}

void sink_set_drop_counter(struct sink_set *set, struct metric *counter)
{
	set->drop_counter = counter;
}

void sink_set_error_counter(struct sink_set *set, struct metric *counter)
{
	set->error_counter = counter;
}

/* --- warnings (writer thread only) --- */

static void maybe_warn(struct sink *s, int err)
{
	int64_t now = mono_ms();
	uint64_t d = atomic_load(&s->dropped), e = atomic_load(&s->write_errors);
	if ((d == s->warned_drops && e == s->warned_errors) ||
	    (s->last_warn_ms && now - s->last_warn_ms < SINK_WARN_INTERVAL_MS))
		return;
	log_warn("sink %s: %" PRIu64 " alerts dropped, %" PRIu64 " write errors so far%s%s",
		 s->name, d, e, err ? ", last: " : "", err ? strerror(-err) : "");
	s->last_warn_ms = now;
	s->warned_drops = d;
	s->warned_errors = e;
}

/* --- files --- */

static int file_open(struct sink *s)
{
	struct stat st;
	/* O_NOFOLLOW: ward runs as root and the log directory may not be root's alone */
	int fd = open(s->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		int err = S_ISREG(st.st_mode) ? -errno : -EINVAL;
		close(fd);
		return err;
	}
	s->fd = fd;
	s->size = (uint64_t)st.st_size;
	s->dirty = false;
	return 0;
}

static void file_sync(struct sink *s)
{
	if (s->fd >= 0 && s->dirty) {
		if (fdatasync(s->fd) < 0)
			count_error(s);
		s->dirty = false;
	}
}

static void file_close(struct sink *s)
{
	file_sync(s);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

/* path.N-1 -> path.N, ..., path -> path.1 (keep 0: path is simply started over). */
static int file_rotate(struct sink *s)
{
	size_t pl = strlen(s->path) + 16;
	char *from = malloc(pl), *to = malloc(pl);
	int err = 0;

	if (!from || !to) {
		err = -ENOMEM;
		goto out;
	}
	file_close(s);
	if (s->keep == 0) {
		if (unlink(s->path) < 0 && errno != ENOENT)
			err = -errno;
	} else {
		for (unsigned i = s->keep; i > 1; i--) {
			snprintf(from, pl, "%s.%u", s->path, i - 1);
			snprintf(to, pl, "%s.%u", s->path, i);
			if (rename(from, to) < 0 && errno != ENOENT)
				err = -errno;
		}
		snprintf(to, pl, "%s.1", s->path);
		if (rename(s->path, to) < 0 && errno != ENOENT)
			err = -errno;
	}
	atomic_fetch_add(&s->rotations, 1);
	{
		int oerr = file_open(s);
		if (oerr)
			err = oerr;
	}
out:
	free(from);
	free(to);
	return err;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t r = write(fd, p, n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* A caller's fd (stdout, a pipe, a tty, a socket) may have a stuck reader, and it is not
 * ours to make non-blocking. So: wait for POLLOUT with a bound, then write at most
 * PIPE_BUF bytes, which a pipe with POLLOUT set takes without blocking; sockets get
 * MSG_DONTWAIT. A line cut short by the timeout is ended with '\n' before the next one
 * so a reader sees one broken line, not two glued together. */
static int write_fd(struct sink *s, const char *p, size_t n)
{
	if (s->partial) {
		s->partial = false;
		int err = write_fd(s, "\n", 1);
		if (err)
			return err;
	}
	bool started = false;
	while (n) {
		struct pollfd pf = {.fd = s->fd, .events = POLLOUT};
		int pr = poll(&pf, 1, SINK_FD_TIMEOUT_MS);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0 || (pf.revents & (POLLERR | POLLNVAL))) {
			s->partial = started;
			return pr < 0 ? -errno : pr == 0 ? -ETIMEDOUT : -EPIPE;
		}
		size_t chunk = n < PIPE_BUF ? n : PIPE_BUF;
		ssize_t r = s->is_sock ? send(s->fd, p, chunk, MSG_DONTWAIT | MSG_NOSIGNAL)
				       : write(s->fd, p, chunk);
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			s->partial = started;
			return -errno;
		}
		started = true;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* --- writing one item: 0 done, -EAGAIN retry the same item later, else -errno (dropped) */

static int deliver_file(struct sink *s, const struct sink_item *it)
{
	size_t n = it->len + 1;
	int err;

	if (s->fd < 0 && (err = file_open(s)))
		return err;
	if (s->max_bytes && s->size > 0 && s->size + n > s->max_bytes) {
		err = file_rotate(s);
		if (s->fd < 0)
			return err ? err : -EBADF;
		if (err)   /* renames failed but a file is open: note it, keep writing */
			count_error(s);
	}
	err = write_all(s->fd, it->data, n);
	if (err) {
		/* a short write may leave half a line: a new open file starts clean */
		file_close(s);
		return err;
	}
	s->size += n;
	s->dirty = true;
	return 0;
}

static int deliver_syslog(struct sink *s, const struct sink_item *it)
{
	struct syslog_sd_param p[4];
	size_t np = 0, flen;
	char score[32];
	int err;

	if (it->incident)
		p[np++] = (struct syslog_sd_param){"incident", it->incident};
	if (it->rule)
		p[np++] = (struct syslog_sd_param){"rule", it->rule};
	if (it->has_score) {
		snprintf(score, sizeof(score), "%.2f", it->score);
		p[np++] = (struct syslog_sd_param){"score", score};
	}
	if (it->msg)
		p[np++] = (struct syslog_sd_param){"msg", it->msg};
	struct syslog_fields f = {
		.facility = syslog_conn_facility(s->conn),
		.severity = it->severity,
		.sec = it->ts.tv_sec,
		.nsec = it->ts.tv_nsec,
		.hostname = syslog_conn_hostname(s->conn),
		.app_name = syslog_conn_app_name(s->conn),
		.procid = s->procid,
		.msgid = "ALERT",
		.sd_id = SYSLOG_SD_ID,
		.params = p,
		.nparams = np,
		.bom = syslog_conn_bom(s->conn),
		.msg = it->data,
		.msg_len = it->len,
	};
	err = syslog_format(&f, s->fmt, SYSLOG_MSG_MAX, &flen);
	if (err)
		return err;
	return syslog_conn_send(s->conn, s->fmt, flen);
}

static int deliver(struct sink *s, const struct sink_item *it)
{
	switch (s->kind) {
	case SK_FD:
		return write_fd(s, it->data, it->len + 1);
	case SK_FILE:
		return deliver_file(s, it);
	case SK_SYSLOG:
		return deliver_syslog(s, it);
	}
	return -EINVAL;
}

/* Waits on the sink's condvar until woken or ms elapsed. Called with the lock held. */
static void wait_ms(struct sink *s, int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&s->cond, &s->lock, &ts);
}

static void *writer(void *arg)
{
	struct sink *s = arg;
	struct sink_item *it = NULL;   /* held for a retry (TCP syslog) */

	pthread_mutex_lock(&s->lock);
	for (;;) {
		if (s->reopen) {
			s->reopen = false;
			if (s->kind == SK_FILE) {
				pthread_mutex_unlock(&s->lock);
				file_close(s);
				int err = file_open(s);
				if (err) {
					count_error(s);
					maybe_warn(s, err);
				}
				pthread_mutex_lock(&s->lock);
			}
		}
		if (s->stop && mono_ms() >= s->deadline_ms)
			break;
		if (!it) {
			if (s->count == 0) {
				if (s->stop)
					break;
				if (s->kind == SK_FILE && s->dirty) {
					/* the queue ran dry: one fdatasync for the whole batch */
					pthread_mutex_unlock(&s->lock);
					file_sync(s);
					pthread_mutex_lock(&s->lock);
					continue;
				}
				pthread_cond_wait(&s->cond, &s->lock);
				continue;
			}
			it = s->ring[s->head];
			s->ring[s->head] = NULL;
			s->head = (s->head + 1) % s->cap;
			s->count--;
			atomic_store_explicit(&s->in_hand, true, memory_order_relaxed);
		}
		pthread_mutex_unlock(&s->lock);

		int err = deliver(s, it);
		bool retry = false;
		if (err == 0) {
			atomic_store_explicit(&s->in_hand, false, memory_order_relaxed);
			atomic_fetch_add(&s->written, 1);
		} else if (s->kind == SK_SYSLOG && syslog_conn_is_stream(s->conn) &&
			   err != -EMSGSIZE && err != -EINVAL) {
			/* TCP is backing off: keep the item (still in hand, still queued in
			 * sink_stats()); a failed connect counts once */
			if (err != -EAGAIN)
				count_error(s);
			retry = true;
		} else {
			atomic_store_explicit(&s->in_hand, false, memory_order_relaxed);
			count_error(s);
			count_drop(s, 1);
		}
		/* outside the lock: stderr may block, sink_emit() must not wait on it */
		maybe_warn(s, err == -EAGAIN ? 0 : err);
		if (!retry) {
			item_put(it);
			it = NULL;
		}
		pthread_mutex_lock(&s->lock);
		if (retry && !s->stop) {
			int ms = syslog_conn_retry_ms(s->conn);
			wait_ms(s, ms > 0 ? ms : 1);
		} else if (retry && s->stop) {
			int64_t left = s->deadline_ms - mono_ms();
			int ms = syslog_conn_retry_ms(s->conn);
			if (left > 0)
				wait_ms(s, ms < left ? (ms > 0 ? ms : 1) : (int)left);
		}
	}
	/* shutdown: what could not be delivered in time is dropped, and said so */
	size_t left = s->count + (it ? 1 : 0);
	while (s->count) {
		item_put(s->ring[s->head]);
		s->ring[s->head] = NULL;
		s->head = (s->head + 1) % s->cap;
		s->count--;
	}
	pthread_mutex_unlock(&s->lock);
	item_put(it);
	if (left) {
		count_drop(s, left);
		log_warn("sink %s: %zu alerts undelivered at shutdown", s->name, left);
	}
	if (s->kind == SK_FILE)
		file_close(s);
	return NULL;
}

/* --- set-up --- */

static void sink_free(struct sink *s)
{
	if (!s)
		return;
	if (s->kind == SK_FILE && s->fd >= 0)
		close(s->fd);
	syslog_conn_close(s->conn);
	free(s->fmt);
	free(s->path);
	free(s->ring);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static int sink_new(struct sink_set *set, enum sink_kind kind, const char *name,
		    struct sink **out)
{
	struct sink *s;
	pthread_condattr_t ca;

	*out = NULL;
	if (set->n >= SINK_MAX)
		return -ENOSPC;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->set = set;
	s->kind = kind;
	s->fd = -1;
	snprintf(s->name, sizeof(s->name), "%s", name);
	snprintf(s->procid, sizeof(s->procid), "%d", (int)getpid());
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	s->cap = set->queue_len;
	s->ring = calloc(s->cap, sizeof(*s->ring));
	if (!s->ring) {
		sink_free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

static int sink_start(struct sink_set *set, struct sink *s)
{
	int err = pthread_create(&s->thread, NULL, writer, s);
	if (err) {
		sink_free(s);
		return -err;
	}
	s->started = true;
	set->sinks[set->n++] = s;
	return 0;
}

int sink_add_fd(struct sink_set *set, int fd, const char *name)
{
	struct sink *s;
	int err;

	if (fd < 0)
		return -EBADF;
	err = sink_new(set, SK_FD, name ? name : "fd", &s);
	if (err)
		return err;
	s->fd = fd;
	struct stat st;
	s->is_sock = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
	return sink_start(set, s);
}

int sink_add_stdout(struct sink_set *set)
{
	return sink_add_fd(set, STDOUT_FILENO, "stdout");
}

int sink_add_stderr(struct sink_set *set)
{
	return sink_add_fd(set, STDERR_FILENO, "stderr");
}

int sink_add_file(struct sink_set *set, const char *path, uint64_t max_bytes, unsigned keep)
{
	struct sink *s = NULL;
	char name[64];
	int err;

	if (!path || !*path || keep > 1000)
		return -EINVAL;
	snprintf(name, sizeof(name), "file:%s", path);
	err = sink_new(set, SK_FILE, name, &s);
	if (err)
		return err;
	s->path = strdup(path);
	if (!s->path) {
		err = -ENOMEM;
		goto out;
	}
	s->max_bytes = max_bytes;
	s->keep = keep;
	err = file_open(s);
	if (err)
		goto out;
	return sink_start(set, s);
out:
	sink_free(s);
	return err;
}

int sink_add_syslog(struct sink_set *set, const struct syslog_cfg *cfg)
{
	static const char *const tn[] = {"unix", "udp", "tcp"};
	struct sink *s = NULL;
	char name[64];
	int err;

	if ((unsigned)cfg->transport > SYSLOG_TCP)
		return -EINVAL;
	snprintf(name, sizeof(name), "syslog:%s:%s", tn[cfg->transport],
		 cfg->address ? cfg->address : "/dev/log");
	err = sink_new(set, SK_SYSLOG, name, &s);
	if (err)
		return err;
	s->fmt = malloc(SYSLOG_MSG_MAX);
	if (!s->fmt) {
		err = -ENOMEM;
		goto out;
	}
	err = syslog_conn_open(cfg, &s->conn);
	if (err)
		goto out;
	return sink_start(set, s);
out:
	sink_free(s);
	return err;
}

/* --- emit --- */

static size_t meta_len(const char *s)
{
	return s ? strnlen(s, SINK_META_MAX) : 0;
}

static const char *meta_copy(char **p, const char *s)
{
	if (!s)
		return NULL;
	size_t n = meta_len(s);
	char *d = *p;
	memcpy(d, s, n);
	d[n] = '\0';
	*p += n + 1;
	return d;
}

int sink_emit_meta(struct sink_set *set, int severity, const char *json, size_t len,
		   const char *msg, const struct sink_meta *meta)
{
	struct sink_item *it;
	const char *inc = meta ? meta->incident : NULL, *rule = meta ? meta->rule : NULL;
	int ret = 0;

	if (!set || !json || severity < 0 || severity > 7 || len > SIZE_MAX / 2)
		return -EINVAL;
	if (atomic_load(&set->closing) || set->n == 0)
		return 0;
	size_t extra = meta_len(inc) + meta_len(rule) + meta_len(msg) + 3;
	it = malloc(sizeof(*it) + len + 2 + extra);
	if (!it) {
		for (size_t i = 0; i < set->n; i++)
			count_drop(set->sinks[i], 1);
		return -ENOMEM;
	}
	atomic_init(&it->refs, 1);   /* ours until every sink took its reference */
	it->severity = severity;
	it->has_score = meta && meta->has_score;
	it->score = meta ? meta->score : 0;
	clock_gettime(CLOCK_REALTIME, &it->ts);
	it->len = len;
	memcpy(it->data, json, len);
	it->data[len] = '\n';
	it->data[len + 1] = '\0';
	char *p = it->data + len + 2;
	it->incident = meta_copy(&p, inc);
	it->rule = meta_copy(&p, rule);
	it->msg = meta_copy(&p, msg);

	for (size_t i = 0; i < set->n; i++) {
		struct sink *s = set->sinks[i];
		bool queued = false;
		pthread_mutex_lock(&s->lock);
		if (s->count < s->cap && !s->stop) {
			atomic_fetch_add_explicit(&it->refs, 1, memory_order_relaxed);
			s->ring[(s->head + s->count) % s->cap] = it;
			s->count++;
			queued = true;
			atomic_fetch_add_explicit(&s->emitted, 1, memory_order_relaxed);
			pthread_cond_signal(&s->cond);
		}
		pthread_mutex_unlock(&s->lock);
		if (!queued) {
			count_drop(s, 1);
			ret = -ENOBUFS;
		}
	}
	item_put(it);
	return ret;
}

int sink_emit(struct sink_set *set, int severity, const char *json, size_t len, const char *msg)
{
	return sink_emit_meta(set, severity, json, len, msg, NULL);
}

void sink_reopen(struct sink_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		struct sink *s = set->sinks[i];
		pthread_mutex_lock(&s->lock);
		s->reopen = true;
		pthread_cond_signal(&s->cond);
		pthread_mutex_unlock(&s->lock);
	}
}

size_t sink_stats(struct sink_set *set, struct sink_stat *out, size_t cap)
{
	for (size_t i = 0; i < set->n && i < cap; i++) {
		struct sink *s = set->sinks[i];
		struct sink_stat *st = &out[i];
		memset(st, 0, sizeof(*st));
		snprintf(st->name, sizeof(st->name), "%s", s->name);
		st->emitted = atomic_load(&s->emitted);
		st->written = atomic_load(&s->written);
		st->dropped = atomic_load(&s->dropped);
		st->write_errors = atomic_load(&s->write_errors);
		st->rotations = atomic_load(&s->rotations);
		pthread_mutex_lock(&s->lock);
		st->queued = s->count + atomic_load_explicit(&s->in_hand, memory_order_relaxed);
		pthread_mutex_unlock(&s->lock);
	}
	return set->n;
}

void sink_set_destroy(struct sink_set *set)
{
	if (!set)
		return;
	atomic_store(&set->closing, true);
	int64_t deadline = mono_ms() + set->flush_ms;
	for (size_t i = 0; i < set->n; i++) {
		struct sink *s = set->sinks[i];
		pthread_mutex_lock(&s->lock);
		s->stop = true;
		s->deadline_ms = deadline;
		pthread_cond_signal(&s->cond);
		pthread_mutex_unlock(&s->lock);
	}
	for (size_t i = 0; i < set->n; i++) {
		if (set->sinks[i]->started)
			pthread_join(set->sinks[i]->thread, NULL);
		sink_free(set->sinks[i]);
	}
	free(set);
}
