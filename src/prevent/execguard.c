/* execguard.c: the exec gate (see execguard.h for the thread model).
 *
 * Work items live in a fixed table of slots. A slot holds an event fd from the moment the
 * reader takes it until a worker closes it; all state changes happen under g->mu. The
 * permission response for a slot is written under g->mu by whoever first sees it
 * unanswered (the worker with its verdict, or the reader's deadline sweep with
 * FAN_ALLOW), and the fd is closed only after that, by the worker: so the fd number a
 * response names is always still the event's own (a closed number could be reused by a
 * newer event, which would then get someone else's answer). */
#include "prevent/execguard.h"

#include "core/log.h"
#include "output/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define NSLOTS 256
#define WRITE_SLOTS (NSLOTS / 2)    /* writes never take the slots execs need */
#define DEFAULT_WORKERS 2
#define DEFAULT_DEADLINE_MS 1000
#define MAX_WORKERS 64
#define WRITE_DEADLINE_NS (30ull * 1000000000ull)
#define TICK_MS 200                 /* generation check for ignore marks */

enum slot_state { SLOT_FREE = 0, SLOT_QUEUED, SLOT_BUSY };

struct slot {
	enum slot_state state;
	bool perm;          /* a permission event (else a close-write) */
	bool answered;
	int fd;
	pid_t pid;
	uint64_t deadline;  /* CLOCK_MONOTONIC ns; perm only */
	uint64_t t_read;    /* when read() returned the event, for perm_latency */
};

struct ring {
	unsigned idx[NSLOTS];
	unsigned head, n;
};

struct execguard {
	struct execguard_opts o;
	int perm_fd, write_fd, stop_fd;
	pthread_t reader;
	pthread_t workers[MAX_WORKERS];
	unsigned nworkers;
	bool reader_started;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stopping;
	struct slot slots[NSLOTS];
	unsigned freelist[NSLOTS], nfree;
	struct ring q_perm, q_write;
	unsigned write_slots;      /* slots held by close-write work */
	unsigned write_busy;       /* workers scanning a written file */

	pid_t self;
	uint64_t last_gen;
	atomic_uint_fast64_t n_events, n_allowed, n_denied, n_cache, n_scanned, n_deadline,
		n_error, n_overload, n_wevents, n_wscans, n_wmatches, n_wdrops, n_ignore;
};

static void ring_push(struct ring *r, unsigned v)
{
	r->idx[(r->head + r->n) % NSLOTS] = v;
	r->n++;
}

static unsigned ring_pop(struct ring *r)
{
	unsigned v = r->idx[r->head];
	r->head = (r->head + 1) % NSLOTS;
	r->n--;
	return v;
}

/* Writes the response; a response the kernel rejects leaves the event pending (and its
 * task blocked), so on failure FAN_ALLOW is sent instead. t_read is when read() returned
 * the event: fanotify_event_metadata carries no timestamp, so the time the event spent
 * queued in the kernel before that read is unknown, and perm_latency is read-to-answer
 * (a reader that falls behind shows as later events of one batch waiting longer). */
static void respond(struct execguard *g, int fd, uint32_t verdict, uint64_t t_read)
{
	struct fanotify_response r = {.fd = fd, .response = verdict};
	for (int tries = 0; tries < 3; tries++) {
		ssize_t n = write(g->perm_fd, &r, sizeof(r));
		if (n == (ssize_t)sizeof(r)) {
			atomic_fetch_add(verdict == FAN_DENY ? &g->n_denied : &g->n_allowed, 1);
			uint64_t now = scanner_now_ns();
			metric_observe(&ward_metrics.perm_latency, now > t_read ? now - t_read : 0);
			return;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENOENT)
			return;   /* no such pending event: the task was killed meanwhile */
		log_warn("execguard: response %u for fd %d failed: %s", verdict, fd,
			 n < 0 ? strerror(errno) : "short write");
		r.response = FAN_ALLOW;
		verdict = FAN_ALLOW;
		atomic_fetch_add(&g->n_error, 1);
	}
}

static void fd_path(int fd, char *buf, size_t len)
{
	char link[64];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, buf, len - 1);
	buf[n > 0 ? (size_t)n : 0] = '\0';
}

static void raise_alert(struct execguard *g, int fd, const char *path, pid_t pid,
			enum execguard_when when, bool denied,
			const struct scanner_result *res)
{
	char pbuf[4096];
	if (!g->o.alert)
		return;
	if (!path) {
		fd_path(fd, pbuf, sizeof(pbuf));
		path = pbuf;
	}
	struct execguard_alert a = {
		.pid = pid, .when = when, .denied = denied, .cached = res->cached,
		.path = path, .reason = res->reason,
	};
	g->o.alert(g->o.alert_ctx, &a);
}

/* An ignore mark on a clean inode stops further exec events for it until it is written. */
static void ignore_inode(struct execguard *g, int fd, uint64_t gen)
{
	if (fanotify_mark(g->perm_fd, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_EVICTABLE,
			  FAN_OPEN_EXEC_PERM, fd, NULL) < 0) {
		log_debug("execguard: ignore mark: %s", strerror(errno));
		return;
	}
	atomic_fetch_add(&g->n_ignore, 1);
	/* the indicators changed while we judged: the reader's flush may already have run,
	 * so this mark is not to be trusted */
	if (scanner_generation(g->o.scanner) != gen)
		fanotify_mark(g->perm_fd, FAN_MARK_REMOVE | FAN_MARK_IGNORED_MASK,
			      FAN_OPEN_EXEC_PERM, fd, NULL);
}

/* ---- the close-after-write path ---- */

static bool looks_executable(int fd, const struct stat *st)
{
	if (st->st_mode & 0111)
		return true;
	unsigned char h[4];
	ssize_t n = pread(fd, h, sizeof(h), 0);
	return (n >= 2 && h[0] == '#' && h[1] == '!') ||
	       (n == 4 && h[0] == 0x7f && h[1] == 'E' && h[2] == 'L' && h[3] == 'F');
}

static int scan_written(struct execguard *g, int fd, pid_t pid, const char *path)
{
	struct stat st;
	struct scanner_result res;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || !looks_executable(fd, &st))
		return 0;
	atomic_fetch_add(&g->n_wscans, 1);
	int rc = scanner_scan_fd(g->o.scanner, fd, 0, scanner_now_ns() + WRITE_DEADLINE_NS,
				 &res);
	if (rc < 0)
		return rc;
	if (res.verdict != SCANNER_MATCH)
		return 0;
	atomic_fetch_add(&g->n_wmatches, 1);
	raise_alert(g, fd, path, pid, EXECGUARD_AT_WRITE, false, &res);
	return 1;
}

int execguard_scan_fd(struct execguard *g, int fd, pid_t pid, const char *path)
{
	return scan_written(g, fd, pid, path);
}

/* ---- workers ---- */

static void work_perm(struct execguard *g, struct slot *sl)
{
	struct scanner_result res;
	uint64_t gen = scanner_generation(g->o.scanner);
	int rc = scanner_scan_fd(g->o.scanner, sl->fd, 0, sl->deadline, &res);
	bool deny = rc == 0 && res.verdict == SCANNER_MATCH;
	bool late;
	pthread_mutex_lock(&g->mu);
	late = sl->answered;
	if (!late) {
		respond(g, sl->fd, deny ? FAN_DENY : FAN_ALLOW, sl->t_read);
		sl->answered = true;
	}
	pthread_mutex_unlock(&g->mu);
	atomic_fetch_add(&g->n_scanned, 1);
	if (rc == -ETIMEDOUT && !late)
		atomic_fetch_add(&g->n_deadline, 1);
	else if (rc < 0 && !late)
		atomic_fetch_add(&g->n_error, 1);
	if (deny || (rc == 0 && res.verdict == SCANNER_MATCH))
		raise_alert(g, sl->fd, NULL, sl->pid, EXECGUARD_AT_EXEC, !late, &res);
	else if (rc == 0 && res.verdict == SCANNER_CLEAN && g->o.ignore_clean)
		ignore_inode(g, sl->fd, gen);
}

static void *worker_main(void *arg)
{
	struct execguard *g = arg;
	/* one worker always stays free for execs while others scan written files */
	unsigned max_wbusy = g->o.workers > 1 ? g->o.workers - 1 : 1;
	for (;;) {
		pthread_mutex_lock(&g->mu);
		while (!g->stopping && g->q_perm.n == 0 &&
		       (g->q_write.n == 0 || g->write_busy >= max_wbusy))
			pthread_cond_wait(&g->cv, &g->mu);
		if (g->stopping) {
			pthread_mutex_unlock(&g->mu);
			break;
		}
		bool perm = g->q_perm.n > 0;
		unsigned i = ring_pop(perm ? &g->q_perm : &g->q_write);
		struct slot *sl = &g->slots[i];
		sl->state = SLOT_BUSY;
		if (!perm)
			g->write_busy++;
		pthread_mutex_unlock(&g->mu);

		if (perm) {
			work_perm(g, sl);
		} else {
			int rc = scan_written(g, sl->fd, sl->pid, NULL);
			if (rc < 0 && rc != -ENOENT)
				log_debug("execguard: scan of written file: %s", strerror(-rc));
		}
		close(sl->fd);
		pthread_mutex_lock(&g->mu);
		sl->state = SLOT_FREE;
		sl->fd = -1;
		if (!perm) {
			g->write_busy--;
			g->write_slots--;
		}
		g->freelist[g->nfree++] = i;
		pthread_mutex_unlock(&g->mu);
	}
	return NULL;
}

/* ---- the reader ---- */

/* Queues an event fd; false when there is no room (the caller answers and closes). */
static bool enqueue(struct execguard *g, int fd, pid_t pid, bool perm, uint64_t t_read)
{
	bool ok = false;
	pthread_mutex_lock(&g->mu);
	if (g->nfree == 0 || (!perm && g->write_slots >= WRITE_SLOTS))
		goto out;
	unsigned i = g->freelist[--g->nfree];
	struct slot *sl = &g->slots[i];
	*sl = (struct slot){.state = SLOT_QUEUED, .perm = perm, .fd = fd, .pid = pid,
			    .t_read = t_read};
	if (perm) {
		sl->deadline = scanner_now_ns() + (uint64_t)g->o.deadline_ms * 1000000ull;
		ring_push(&g->q_perm, i);
	} else {
		g->write_slots++;
		ring_push(&g->q_write, i);
	}
	pthread_cond_signal(&g->cv);
	ok = true;
out:
	pthread_mutex_unlock(&g->mu);
	return ok;
}

static void on_perm_event(struct execguard *g, const struct fanotify_event_metadata *md,
			  uint64_t t_read)
{
	int fd = md->fd;
	struct stat st;
	struct scanner_result res;
	atomic_fetch_add(&g->n_events, 1);
	if (!(md->mask & FAN_OPEN_EXEC_PERM)) {
		respond(g, fd, FAN_ALLOW, t_read);
		goto out;
	}
	/* never judge ourselves: a guard waiting on its own exec would wait forever */
	if (md->pid == g->self) {
		respond(g, fd, FAN_ALLOW, t_read);
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		respond(g, fd, FAN_ALLOW, t_read);
		atomic_fetch_add(&g->n_error, 1);
		goto out;
	}
	if (scanner_lookup(g->o.scanner, &st, &res)) {
		bool deny = res.verdict == SCANNER_MATCH;
		respond(g, fd, deny ? FAN_DENY : FAN_ALLOW, t_read);
		atomic_fetch_add(&g->n_cache, 1);
		if (deny)
			raise_alert(g, fd, NULL, md->pid, EXECGUARD_AT_EXEC, true, &res);
		else if (res.verdict == SCANNER_CLEAN && g->o.ignore_clean)
			ignore_inode(g, fd, scanner_generation(g->o.scanner));
		goto out;
	}
	if (enqueue(g, fd, md->pid, true, t_read))
		return;   /* the worker owns fd now */
	respond(g, fd, FAN_ALLOW, t_read);
	atomic_fetch_add(&g->n_overload, 1);
out:
	close(fd);
}

static void on_write_event(struct execguard *g, const struct fanotify_event_metadata *md)
{
	atomic_fetch_add(&g->n_wevents, 1);
	if (enqueue(g, md->fd, md->pid, false, 0))
		return;
	atomic_fetch_add(&g->n_wdrops, 1);
	close(md->fd);
}

/* Reads one batch; false when the group fd failed for good. */
static bool read_events(struct execguard *g, int gfd, bool perm)
{
	/* fanotify needs the buffer aligned for the metadata structs */
	char buf[4096] __attribute__((aligned(__alignof__(struct fanotify_event_metadata))));
	ssize_t n = read(gfd, buf, sizeof(buf));
	if (n < 0)
		return errno == EAGAIN || errno == EINTR;
	uint64_t t_read = scanner_now_ns();
	const struct fanotify_event_metadata *md = (const void *)buf;
	for (; FAN_EVENT_OK(md, n); md = FAN_EVENT_NEXT(md, n)) {
		if (md->vers != FANOTIFY_METADATA_VERSION) {
			log_err("execguard: fanotify metadata version %u, expected %u",
				md->vers, FANOTIFY_METADATA_VERSION);
			if (md->fd >= 0) {
				if (perm)
					respond(g, md->fd, FAN_ALLOW, t_read);
				close(md->fd);
			}
			continue;
		}
		if (md->fd < 0)
			continue;   /* FAN_Q_OVERFLOW on the write group: nothing to answer */
		if (perm)
			on_perm_event(g, md, t_read);
		else
			on_write_event(g, md);
	}
	return true;
}

/* Allows every permission event past its deadline; returns ms until the next one. */
static int sweep_deadlines(struct execguard *g)
{
	uint64_t now = scanner_now_ns(), next = UINT64_MAX;
	pthread_mutex_lock(&g->mu);
	for (unsigned i = 0; i < NSLOTS; i++) {
		struct slot *sl = &g->slots[i];
		if (sl->state == SLOT_FREE || !sl->perm || sl->answered)
			continue;
		if (sl->deadline <= now) {
			respond(g, sl->fd, FAN_ALLOW, sl->t_read);
			sl->answered = true;
			atomic_fetch_add(&g->n_deadline, 1);
		} else if (sl->deadline < next) {
			next = sl->deadline;
		}
	}
	pthread_mutex_unlock(&g->mu);
	int tick = g->o.ignore_clean ? TICK_MS : -1;
	if (next == UINT64_MAX)
		return tick;
	int ms = (int)((next - now) / 1000000ull) + 1;
	return tick > 0 && tick < ms ? tick : ms;
}

static void *reader_main(void *arg)
{
	struct execguard *g = arg;
	for (;;) {
		int timeout = sweep_deadlines(g);
		if (g->o.ignore_clean) {
			uint64_t gen = scanner_generation(g->o.scanner);
			if (gen != g->last_gen) {
				/* FAN_MARK_FLUSH without MOUNT/FILESYSTEM drops only inode marks:
				 * the ignore marks go, the filesystem marks stay */
				if (fanotify_mark(g->perm_fd, FAN_MARK_FLUSH, 0, AT_FDCWD, NULL) < 0)
					log_warn("execguard: flush ignore marks: %s", strerror(errno));
				g->last_gen = gen;
			}
		}
		struct pollfd p[3] = {
			{.fd = g->stop_fd, .events = POLLIN},
			{.fd = g->perm_fd, .events = POLLIN},
			{.fd = g->write_fd, .events = POLLIN},   /* -1 is ignored by poll */
		};
		int n = poll(p, 3, timeout);
		if (n < 0 && errno != EINTR) {
			log_err("execguard: poll: %s", strerror(errno));
			break;
		}
		if (n <= 0)
			continue;
		if (p[0].revents)
			break;
		if ((p[1].revents & POLLIN) && !read_events(g, g->perm_fd, true)) {
			log_err("execguard: read: %s", strerror(errno));
			break;
		}
		if ((p[2].revents & POLLIN) && !read_events(g, g->write_fd, false))
			log_warn("execguard: read close-write events: %s", strerror(errno));
	}
	return NULL;
}

/* ---- start / stop ---- */

static int make_group(unsigned cls, uint64_t mask, const struct execguard_opts *o, int *out)
{
	int rc = 0;
	/* FAN_UNLIMITED_QUEUE: an overflowing queue would silently drop (that is, allow)
	 * permission events; each blocked task holds one event, so the queue stays bounded
	 * by the number of tasks anyway. O_CLOEXEC on event fds: a child spawned by the
	 * daemon must not inherit them. */
	int fd = fanotify_init(cls | FAN_CLOEXEC | FAN_NONBLOCK | FAN_UNLIMITED_QUEUE,
			       O_RDONLY | O_LARGEFILE | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		log_err("execguard: fanotify_init: %s", strerror(-rc));
		goto out;
	}
	for (size_t i = 0; i < o->npaths; i++) {
		if (fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, mask, AT_FDCWD,
				  o->paths[i]) < 0) {
			rc = -errno;
			/* FAN_MARK_FILESYSTEM is Linux 4.20+, FAN_OPEN_EXEC_PERM 5.0+ */
			log_err("execguard: mark %s: %s%s", o->paths[i], strerror(-rc),
				rc == -EINVAL ? " (kernel older than 5.0?)" : "");
			goto out;
		}
	}
	*out = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

int execguard_start(const struct execguard_opts *opts, struct execguard **out)
{
	struct execguard *g = NULL;
	int rc = 0;
	*out = NULL;
	if (!opts || !opts->scanner || opts->npaths == 0)
		return -EINVAL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->o = *opts;
	g->perm_fd = g->write_fd = g->stop_fd = -1;
	if (!g->o.workers)
		g->o.workers = DEFAULT_WORKERS;
	if (g->o.workers > MAX_WORKERS)
		g->o.workers = MAX_WORKERS;
	if (!g->o.deadline_ms)
		g->o.deadline_ms = DEFAULT_DEADLINE_MS;
	g->self = getpid();
	g->last_gen = scanner_generation(g->o.scanner);
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	for (unsigned i = 0; i < NSLOTS; i++) {
		g->slots[i].fd = -1;
		g->freelist[i] = NSLOTS - 1 - i;
	}
	g->nfree = NSLOTS;
	g->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (g->stop_fd < 0) {
		rc = -errno;
		goto out;
	}
	rc = make_group(FAN_CLASS_CONTENT, FAN_OPEN_EXEC_PERM, opts, &g->perm_fd);
	if (rc < 0)
		goto out;
	if (g->o.watch_writes) {
		rc = make_group(FAN_CLASS_NOTIF, FAN_CLOSE_WRITE, opts, &g->write_fd);
		if (rc < 0)
			goto out;
	}
	if (g->o.ignore_clean) {
		/* evictable marks (5.19+) do not pin inodes; without them every cleared
		 * file would stay in memory, so the option is dropped on older kernels */
		int probe = fanotify_mark(g->perm_fd, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK |
					  FAN_MARK_EVICTABLE, FAN_OPEN_EXEC_PERM, AT_FDCWD,
					  opts->paths[0]);
		if (probe < 0) {
			log_warn("execguard: evictable ignore marks unsupported (%s): "
				 "ignore_clean off", strerror(errno));
			g->o.ignore_clean = false;
		} else {
			fanotify_mark(g->perm_fd, FAN_MARK_FLUSH, 0, AT_FDCWD, NULL);
		}
	}
	for (unsigned i = 0; i < g->o.workers; i++) {
		rc = -pthread_create(&g->workers[i], NULL, worker_main, g);
		if (rc < 0)
			goto out;
		g->nworkers++;
	}
	rc = -pthread_create(&g->reader, NULL, reader_main, g);
	if (rc < 0)
		goto out;
	g->reader_started = true;
	*out = g;
	g = NULL;
out:
	execguard_stop(g);
	return rc;
}

void execguard_stop(struct execguard *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->mu);
	g->stopping = true;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
	if (g->stop_fd >= 0) {
		uint64_t one = 1;
		if (write(g->stop_fd, &one, sizeof(one)) < 0)
			log_warn("execguard: stop signal: %s", strerror(errno));
	}
	if (g->reader_started)
		pthread_join(g->reader, NULL);
	for (unsigned i = 0; i < g->nworkers; i++)
		pthread_join(g->workers[i], NULL);
	/* the threads are gone: whatever is still queued gets an answer here */
	for (unsigned i = 0; i < NSLOTS; i++) {
		struct slot *sl = &g->slots[i];
		if (sl->state == SLOT_FREE)
			continue;
		if (sl->perm && !sl->answered)
			respond(g, sl->fd, FAN_ALLOW, sl->t_read);
		close(sl->fd);
	}
	/* closing the group allows every event still unread in the kernel's queue */
	if (g->perm_fd >= 0)
		close(g->perm_fd);
	if (g->write_fd >= 0)
		close(g->write_fd);
	if (g->stop_fd >= 0)
		close(g->stop_fd);
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

void execguard_get_stats(struct execguard *g, struct execguard_stats *st)
{
	st->events = atomic_load(&g->n_events);
	st->allowed = atomic_load(&g->n_allowed);
	st->denied = atomic_load(&g->n_denied);
	st->cache_answers = atomic_load(&g->n_cache);
	st->scanned = atomic_load(&g->n_scanned);
	st->deadline_allows = atomic_load(&g->n_deadline);
	st->error_allows = atomic_load(&g->n_error);
	st->overload_allows = atomic_load(&g->n_overload);
	st->write_events = atomic_load(&g->n_wevents);
	st->write_scans = atomic_load(&g->n_wscans);
	st->write_matches = atomic_load(&g->n_wmatches);
	st->write_drops = atomic_load(&g->n_wdrops);
	st->ignore_marks = atomic_load(&g->n_ignore);
}
