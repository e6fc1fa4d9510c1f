/* guard.c: copy-before-write with a pre-content fanotify group (Linux 6.14+).
 *
 * Events and decisions. One FAN_CLASS_PRE_CONTENT group marks each protected filesystem
 * (FAN_MARK_FILESYSTEM) for FAN_OPEN_PERM and FAN_PRE_ACCESS. The writer is blocked until
 * we answer; while it waits we read the old bytes through the event's fd, which raises no
 * events of its own.
 *   - ward itself (any thread of this process): allowed at once by the reader thread,
 *     which never touches a filesystem, so a worker whose vault write raises an event is
 *     never waiting on itself;
 *   - an open of a file inside a vault directory by anyone else, root included: denied
 *     (EPERM). There is no ignore mark for opens in the vault: the vault lives on the
 *     marked filesystem precisely so that reflinks and hard links work, and so it must be
 *     defended there. Its directory carries an ignore mark for FAN_PRE_ACCESS only
 *     (FAN_EVENT_ON_CHILD), so ward's own copies into it cost no round trips;
 *   - a trusted actor (the caller's callback): allowed;
 *   - FAN_OPEN_PERM: the opener's flags come from /proc/<tid>/syscall (this is why the
 *     group reports thread ids: FAN_REPORT_TID is accepted with FAN_CLASS_PRE_CONTENT on
 *     6.18). O_TRUNC, or flags we cannot read: save the whole file now, because
 *     open(O_TRUNC) raises no FAN_PRE_ACCESS. Otherwise allow, after taking a name-level
 *     hard link the first time in the epoch an untrusted actor opens the file;
 *   - FAN_PRE_ACCESS: it has no read/write bit (a read looks like a write), so the blocked
 *     task's syscall decides: read, pread64, readv, preadv(2), execve, and mmap without a
 *     writable shared mapping are reads, allowed. Anything else (write, pwrite,
 *     ftruncate, truncate, fallocate, copy_file_range, sendfile, splice, a writable
 *     MAP_SHARED mmap, io_uring workers we cannot read) is a first write: save the whole
 *     file when small, the chunk-aligned range when large, then allow.
 *
 * Epochs: once a small file is saved, an evictable ignore mark (FAN_MARK_IGNORE_SURV |
 * FAN_MARK_EVICTABLE, FAN_PRE_ACCESS) on its inode makes its further writes free. The
 * saved-set and those marks belong to an epoch. A file edited legitimately and attacked
 * later is still restored to its state just before the attack because:
 *   1. opens are never ignored: an open for writing by a different process than the one
 *      whose write caused the save in this epoch saves the file again (the attacker's
 *      open captures the legitimately edited content);
 *   2. the epoch advances every epoch_ms and whenever the detector suspects an actor
 *      (vault_guard_new_epoch): the table is cleared and FAN_MARK_FLUSH drops every inode
 *      mark, so the next write by anyone is saved again;
 *   3. the vault keeps every version; restore picks, per path, the version saved just
 *      before the attacker's first write (restore.h: by suspect actor, or by time).
 * What can still be missed: a write by the same process that did a legitimate edit
 * earlier in the same epoch, through an fd it already had open. Bounded by epoch_ms.
 *
 * Bounded time: every event carries a deadline; a copy past it stops; an event that waited
 * in the queue past it, a full queue, or a failed save is answered by the policy (fail
 * open: allow, counted and logged; fail closed: FAN_DENY_ERRNO(EIO)). Every event is
 * answered exactly once, also on shutdown. */
#include "vault/guard.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/log.h"

/* Linux 6.14 pre-content API; Debian 12's headers are 6.1's. */
#ifndef FAN_PRE_ACCESS
#define FAN_PRE_ACCESS 0x00100000
#endif
#ifndef FAN_EVENT_INFO_TYPE_RANGE
#define FAN_EVENT_INFO_TYPE_RANGE 6
struct fanotify_event_info_range {
	struct fanotify_event_info_header hdr;
	__u32 pad;
	__u64 offset;
	__u64 count;
};
#endif
#ifndef FAN_DENY_ERRNO
#define FAN_ERRNO_SHIFT 24
#define FAN_DENY_ERRNO(err) (FAN_DENY | ((((__u32)(err)) & 0xff) << FAN_ERRNO_SHIFT))
#endif

#define MAX_FS 16
#define TABLE_CAP (1u << 16)   /* saved-set entries per epoch; a full table starts a new epoch */
#define KEY_WHOLE UINT64_MAX   /* chunk index meaning "the whole file" */

struct gev {
	int fd;
	pid_t tid;
	uint64_t mask;
	bool has_range;
	uint64_t off, cnt;
	int64_t deadline;            /* CLOCK_MONOTONIC ns */
};

enum { ST_LINKED = 1, ST_SAVED = 2, ST_SAVING = 4 };
struct slot {
	uint64_t dev, ino, chunk;
	pid_t tgid;                  /* whose write caused the save */
	uint8_t state;               /* 0: empty */
};

struct gfs {
	char mount[WARD_PATH_MAX];
	size_t mount_len;
	char vault[WARD_PATH_MAX];   /* realpath of the vault directory, with a trailing '/' */
	size_t vault_len;
	struct vault_store *store;
};

struct vault_guard {
	struct vault_guard_opts o;
	int fan;
	int wake;                    /* eventfd: stop */
	int taskdir;                 /* /proc/self/task, for "is this tid ours?" */
	pid_t self;
	bool tid_ok;
	struct gfs fs[MAX_FS];
	unsigned nfs;

	pthread_t reader, timer;
	pthread_t *workers;
	unsigned nworkers;
	bool timer_started;

	pthread_mutex_t qmu;
	pthread_cond_t qcv;
	struct gev *q;
	unsigned qhead, qlen;
	bool stopping;

	pthread_rwlock_t epoch_lock;   /* saves hold it shared; an epoch change exclusive */
	pthread_mutex_t tmu;
	pthread_cond_t tcv;            /* a SAVING slot changed */
	struct slot *table;
	unsigned tused;
	_Atomic uint64_t epoch;
	_Atomic int64_t incident;

	pthread_mutex_t timer_mu;
	pthread_cond_t timer_cv;

	struct {
		_Atomic uint64_t events, open_perm, pre_access, self, trusted, read_only,
			already_saved, saved_full, saved_range, linked, resaved_other_actor,
			tamper_denied, save_failed, enospc, timeouts, queue_full, fail_open,
			fail_closed, response_retries, epochs_advanced, unknown_intent;
	} n;
};

/* ---- answering ---- */

static void respond(struct vault_guard *g, int fd, uint32_t verdict)
{
	struct fanotify_response r = {.fd = fd, .response = verdict};
	while (write(g->fan, &r, sizeof(r)) < 0) {
		if (errno == EINTR)
			continue;
		/* A response the kernel rejects leaves the event pending: answer again with a
		 * plain verdict that every kernel accepts. */
		atomic_fetch_add(&g->n.response_retries, 1);
		if (r.response == FAN_ALLOW || r.response == FAN_DENY) {
			log_err("guard: cannot answer a permission event: %s", strerror(errno));
			break;
		}
		r.response = (r.response & FAN_DENY) ? FAN_DENY : FAN_ALLOW;
	}
	close(fd);
}

static void respond_policy(struct vault_guard *g, int fd, const char *why, int err)
{
	static _Atomic uint64_t logged;
	uint64_t n = atomic_fetch_add(&logged, 1);
	if (n < 10 || (n & (n - 1)) == 0)
		log_warn("guard: %s (%s): %s", why, strerror(-err),
			 g->o.policy == VAULT_FAIL_OPEN ? "allowed unsaved (fail-open)"
							: "denied with EIO (fail-closed)");
	if (g->o.policy == VAULT_FAIL_OPEN) {
		atomic_fetch_add(&g->n.fail_open, 1);
		respond(g, fd, FAN_ALLOW);
	} else {
		atomic_fetch_add(&g->n.fail_closed, 1);
		respond(g, fd, FAN_DENY_ERRNO(EIO));
	}
}

/* ---- the opener's intent, from /proc/<tid> ---- */

/* Reads "nr a1 a2 ... a6 sp pc" from /proc/<tid>/syscall. -1 when the task is not in a
 * syscall or the file cannot be read. */
static long read_syscall(pid_t tid, unsigned long args[6])
{
	char p[64], buf[256];
	ssize_t n = -1;
	snprintf(p, sizeof(p), "/proc/%d/syscall", (int)tid);
	/* The kernel queues the event before the task goes to sleep on it; until it sleeps,
	 * the file says "running" (task_current_syscall needs an inactive task). The wait
	 * is short and certain: the task is about to block on our answer. */
	for (int attempt = 0; attempt < 200; attempt++) {
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -1;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			return -1;
		if (strncmp(buf, "running", 7) != 0)
			break;
		n = -1;
		if (attempt < 20)
			sched_yield();
		else
			usleep(50);
	}
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *s = buf, *end;
	errno = 0;
	long nr = strtol(s, &end, 10);
	if (end == s || errno)
		return -1;
	s = end;
	for (int i = 0; i < 6; i++) {
		errno = 0;
		args[i] = strtoul(s, &end, 16);
		if (end == s || errno)
			return -1;
		s = end;
	}
	return nr;
}

/* The open flags of fd in task tid, from /proc/<tid>/fdinfo; -1 if unknown. */
static long fd_flags(pid_t tid, unsigned long fd)
{
	char p[80], buf[512];
	snprintf(p, sizeof(p), "/proc/%d/fdinfo/%lu", (int)tid, fd);
	int f = open(p, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return -1;
	ssize_t n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *s = strstr(buf, "flags:");
	return s ? strtol(s + 6, NULL, 8) : -1;
}

/* The flags the blocked task passes to open, or -1 if unknown (io_uring, other arches). */
static long open_flags(pid_t tid)
{
	unsigned long a[6];
	long nr = read_syscall(tid, a);
#ifdef __x86_64__
	switch (nr) {
	case SYS_open:
		return (long)a[1];
	case SYS_openat:
	case SYS_open_by_handle_at:
		return (long)a[2];
	case SYS_creat:
		return O_CREAT | O_WRONLY | O_TRUNC;
	case SYS_execve:
	case SYS_execveat:
		return O_RDONLY;
	case SYS_openat2: {
		/* struct open_how starts with __u64 flags, in the blocked task's memory. */
		uint64_t fl;
		struct iovec l = {&fl, sizeof(fl)}, r = {(void *)a[2], sizeof(fl)};
		if (process_vm_readv(tid, &l, 1, &r, 1, 0) == (ssize_t)sizeof(fl))
			return (long)fl;
		return -1;
	}
	default:
		log_debug("guard: open intent of %d unknown: syscall %ld", (int)tid, nr);
		return -1;
	}
#else
	(void)nr;
	return -1;
#endif
}

/* Whether the blocked task's syscall only reads the file. Unknown counts as a write. */
static bool access_is_read(pid_t tid)
{
	unsigned long a[6];
	long nr = read_syscall(tid, a);
#ifdef __x86_64__
	switch (nr) {
	case SYS_read:
	case SYS_pread64:
	case SYS_readv:
	case SYS_preadv:
	case SYS_preadv2:
	case SYS_execve:
	case SYS_execveat:
		return true;
	case SYS_mmap:
		/* Pre-content fires at mmap time only, not on page faults: a shared mapping of
		 * a writable fd may be written later even if mapped read-only now (mprotect). */
		if (!(a[3] & MAP_SHARED))
			return true;
		{
			long fl = fd_flags(tid, a[4]);
			return fl >= 0 && (fl & O_ACCMODE) == O_RDONLY;
		}
	default:
		return false;
	}
#else
	(void)nr;
	return false;
#endif
}

static pid_t tgid_of(pid_t tid)
{
	char p[64], buf[1024];
	snprintf(p, sizeof(p), "/proc/%d/status", (int)tid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return tid;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return tid;
	buf[n] = '\0';
	char *s = strstr(buf, "\nTgid:");
	return s ? (pid_t)strtol(s + 6, NULL, 10) : tid;
}

static bool is_self(struct vault_guard *g, pid_t tid)
{
	if (tid == g->self)
		return true;
	if (!g->tid_ok || g->taskdir < 0)
		return false;
	char name[16];
	snprintf(name, sizeof(name), "%d", (int)tid);
	return faccessat(g->taskdir, name, F_OK, 0) == 0;
}

/* ---- the per-epoch saved set ---- */

static uint64_t mix(uint64_t dev, uint64_t ino, uint64_t chunk)
{
	uint64_t h = dev * 0x9e3779b97f4a7c15ULL ^ ino * 0xc2b2ae3d27d4eb4fULL ^ chunk * 0x165667b19e3779f9ULL;
	return h ^ (h >> 29);
}

/* Finds or claims the slot for a key (under tmu). NULL when the table is full. */
static struct slot *slot_get(struct vault_guard *g, uint64_t dev, uint64_t ino, uint64_t chunk,
			     bool create)
{
	uint32_t i = (uint32_t)mix(dev, ino, chunk) & (TABLE_CAP - 1);
	for (unsigned probe = 0; probe < TABLE_CAP; probe++, i = (i + 1) & (TABLE_CAP - 1)) {
		struct slot *s = &g->table[i];
		if (!s->state) {
			if (!create || g->tused >= TABLE_CAP * 3 / 4)
				return NULL;
			s->dev = dev;
			s->ino = ino;
			s->chunk = chunk;
			s->tgid = 0;
			g->tused++;
			return s;
		}
		if (s->dev == dev && s->ino == ino && s->chunk == chunk)
			return s;
	}
	return NULL;
}

/* ---- epochs ---- */

static int mark_vault_dirs(struct vault_guard *g)
{
	for (unsigned i = 0; i < g->nfs; i++) {
		/* Ignore ward's own writes into the vault (not its opens: those are how others
		 * are denied). FAN_EVENT_ON_CHILD: the ignore mask applies to the children. */
		if (fanotify_mark(g->fan, FAN_MARK_ADD | FAN_MARK_IGNORE_SURV,
				  FAN_PRE_ACCESS | FAN_EVENT_ON_CHILD, AT_FDCWD,
				  vault_store_dir(g->fs[i].store)) < 0)
			return -errno;
	}
	return 0;
}

static int new_epoch_locked(struct vault_guard *g)
{
	pthread_mutex_lock(&g->tmu);
	memset(g->table, 0, sizeof(*g->table) * TABLE_CAP);
	g->tused = 0;
	/* Epoch ids are wall-clock ms, so they stay unique across restarts of ward. */
	uint64_t e = (uint64_t)(vault_now_ns() / 1000000);
	uint64_t old = atomic_load(&g->epoch);
	atomic_store(&g->epoch, e > old ? e : old + 1);
	pthread_mutex_unlock(&g->tmu);
	/* Without a type flag FAN_MARK_FLUSH removes inode marks only: the filesystem marks
	 * stay. The vault directory's ignore mark is an inode mark too: put it back. */
	int rc = 0;
	if (fanotify_mark(g->fan, FAN_MARK_FLUSH, 0, AT_FDCWD, NULL) < 0)
		rc = -errno;
	int rc2 = mark_vault_dirs(g);
	atomic_fetch_add(&g->n.epochs_advanced, 1);
	return rc ? rc : rc2;
}

int vault_guard_new_epoch(struct vault_guard *g)
{
	pthread_rwlock_wrlock(&g->epoch_lock);
	int rc = new_epoch_locked(g);
	pthread_rwlock_unlock(&g->epoch_lock);
	return rc;
}

uint64_t vault_guard_epoch(struct vault_guard *g) { return atomic_load(&g->epoch); }

void vault_guard_set_incident(struct vault_guard *g, int64_t incident)
{
	atomic_store(&g->incident, incident);
}

/* ---- the decision (workers) ---- */

static struct gfs *fs_of(struct vault_guard *g, const char *path, size_t len)
{
	struct gfs *best = NULL;
	for (unsigned i = 0; i < g->nfs; i++) {
		struct gfs *f = &g->fs[i];
		if (len >= f->mount_len && memcmp(path, f->mount, f->mount_len) == 0 &&
		    (len == f->mount_len || path[f->mount_len] == '/' || f->mount_len == 1) &&
		    (!best || f->mount_len > best->mount_len))
			best = f;
	}
	return best;
}

static void fill_req(struct vault_guard *g, const struct gev *e, const char *path, size_t plen,
		     char *exe, size_t exe_cap, struct vault_save_req *r)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/exe", (int)e->tid);
	ssize_t n = readlink(p, exe, exe_cap - 1);
	exe[n > 0 ? n : 0] = '\0';
	memset(r, 0, sizeof(*r));
	r->fd = e->fd;
	r->path = path;
	r->path_len = plen;
	r->pid = tgid_of(e->tid);     /* the process, as restore's suspects are named */
	r->exe = exe;
	r->epoch = atomic_load(&g->epoch);
	r->incident = atomic_load(&g->incident);
	r->deadline_ns = e->deadline;
}

/* Waits (under tmu) while another worker saves the same key; false on deadline. */
static bool wait_saving(struct vault_guard *g, struct slot **s, uint64_t dev, uint64_t ino,
			uint64_t chunk, int64_t deadline)
{
	while (*s && ((*s)->state & ST_SAVING)) {
		struct timespec ts = {.tv_sec = deadline / 1000000000, .tv_nsec = deadline % 1000000000};
		if (pthread_cond_timedwait(&g->tcv, &g->tmu, &ts) == ETIMEDOUT)
			return false;
		*s = slot_get(g, dev, ino, chunk, false);   /* an epoch change may have cleared it */
	}
	return true;
}

/* Saves the whole file (chunk KEY_WHOLE) or a range, at most once per key, actor and
 * epoch. Returns 0 when the content is safe (saved now or before), else -errno. */
static int save_once(struct vault_guard *g, struct gfs *f, const struct gev *e, const struct stat *st,
		     const char *path, size_t plen, uint64_t chunk, uint64_t nchunks, pid_t tgid,
		     bool whole)
{
	int rc = 0;
	pthread_mutex_lock(&g->tmu);
	struct slot *s = slot_get(g, st->st_dev, st->st_ino, chunk, true);
	if (!wait_saving(g, &s, st->st_dev, st->st_ino, chunk, e->deadline)) {
		pthread_mutex_unlock(&g->tmu);
		return -ETIMEDOUT;
	}
	if (!s)   /* cleared by an epoch change while we waited, or the table is full */
		s = slot_get(g, st->st_dev, st->st_ino, chunk, true);
	if (s && (s->state & ST_SAVED) && (s->tgid == tgid || !whole)) {
		pthread_mutex_unlock(&g->tmu);
		atomic_fetch_add(&g->n.already_saved, 1);
		return 0;
	}
	bool resave = s && (s->state & ST_SAVED);
	if (s)
		s->state |= ST_SAVING;
	pthread_mutex_unlock(&g->tmu);

	char exe[VAULT_EXE_MAX];
	struct vault_save_req r;
	fill_req(g, e, path, plen, exe, sizeof(exe), &r);
	if (whole) {
		rc = vault_store_save(f->store, &r, NULL);
	} else {
		r.range_off = (int64_t)(chunk * g->o.chunk_bytes);
		r.range_len = (int64_t)(nchunks * g->o.chunk_bytes);
		rc = vault_store_save_range(f->store, &r, NULL);
	}
	if (rc == 0) {
		atomic_fetch_add(whole ? &g->n.saved_full : &g->n.saved_range, 1);
		if (resave)
			atomic_fetch_add(&g->n.resaved_other_actor, 1);
	}

	pthread_mutex_lock(&g->tmu);
	s = slot_get(g, st->st_dev, st->st_ino, chunk, false);
	if (s) {
		s->state &= (uint8_t)~ST_SAVING;
		if (rc == 0) {
			s->state |= ST_SAVED;
			s->tgid = tgid;
		}
	}
	/* Range saves cover nchunks chunks: mark the others too. */
	for (uint64_t c = 1; rc == 0 && !whole && c < nchunks; c++) {
		struct slot *o = slot_get(g, st->st_dev, st->st_ino, chunk + c, true);
		if (o) {
			o->state |= ST_SAVED;
			o->tgid = tgid;
		}
	}
	pthread_cond_broadcast(&g->tcv);
	pthread_mutex_unlock(&g->tmu);
	return rc;
}

static void name_link(struct vault_guard *g, struct gfs *f, const struct gev *e,
		      const struct stat *st, const char *path, size_t plen)
{
	if (g->o.no_name_history || st->st_nlink == 0)
		return;
	pthread_mutex_lock(&g->tmu);
	struct slot *s = slot_get(g, st->st_dev, st->st_ino, KEY_WHOLE, true);
	bool todo = s && !(s->state & ST_LINKED);
	if (todo)
		s->state |= ST_LINKED;
	pthread_mutex_unlock(&g->tmu);
	if (!todo)
		return;
	char exe[VAULT_EXE_MAX];
	struct vault_save_req r;
	fill_req(g, e, path, plen, exe, sizeof(exe), &r);
	if (vault_store_link(f->store, &r, NULL) == 0)
		atomic_fetch_add(&g->n.linked, 1);
}

static void ignore_inode(struct vault_guard *g, int fd)
{
	/* Evictable: the mark does not pin the inode; if evicted, the next write costs one
	 * more round trip and finds the file saved in the table. */
	fanotify_mark(g->fan, FAN_MARK_ADD | FAN_MARK_IGNORE_SURV | FAN_MARK_EVICTABLE,
		      FAN_PRE_ACCESS, fd, NULL);
}

static void handle(struct vault_guard *g, struct gev *e)
{
	char path[WARD_PATH_MAX], lp[64];
	struct stat st;
	int rc = 0;

	if (vault_mono_ns() > e->deadline) {
		atomic_fetch_add(&g->n.timeouts, 1);
		respond_policy(g, e->fd, "event waited past its deadline", -ETIMEDOUT);
		return;
	}
	snprintf(lp, sizeof(lp), "/proc/self/fd/%d", e->fd);
	ssize_t pl = readlink(lp, path, sizeof(path) - 1);
	if (pl < 0 || fstat(e->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		respond(g, e->fd, FAN_ALLOW);
		return;
	}
	path[pl] = '\0';
	size_t plen = (size_t)pl;
	struct gfs *f = fs_of(g, path, plen);
	if (!f) {                      /* a bind mount elsewhere: no vault to save into */
		respond(g, e->fd, FAN_ALLOW);
		return;
	}
	/* The vault is ward's alone (ward's own opens never reach a worker). */
	if (plen >= f->vault_len && memcmp(path, f->vault, f->vault_len) == 0) {
		atomic_fetch_add(&g->n.tamper_denied, 1);
		respond(g, e->fd, FAN_DENY);
		return;
	}
	if (g->o.trusted && g->o.trusted(g->o.trusted_ctx, e->tid)) {
		atomic_fetch_add(&g->n.trusted, 1);
		respond(g, e->fd, FAN_ALLOW);
		return;
	}

	pthread_rwlock_rdlock(&g->epoch_lock);
	bool small = (uint64_t)st.st_size <= g->o.large_bytes;
	if (e->mask & FAN_OPEN_PERM) {
		long fl = open_flags(e->tid);
		if (fl < 0)
			atomic_fetch_add(&g->n.unknown_intent, 1);
		bool trunc = fl < 0 || (fl & O_TRUNC);
		bool writes = fl < 0 || (fl & O_ACCMODE) != O_RDONLY || (fl & O_TRUNC);
		if (!writes)
			atomic_fetch_add(&g->n.read_only, 1);
		if (!trunc)
			name_link(g, f, e, &st, path, plen);
		if (st.st_size > 0 && (trunc || (writes && small))) {
			/* O_TRUNC destroys everything before any FAN_PRE_ACCESS: save whole, large
			 * or not. A plain open for writing of a file already saved in this epoch
			 * by another process: save again (the attacker's open catches a file that
			 * was legitimately edited after the first save). */
			pid_t tgid = tgid_of(e->tid);
			bool need = trunc;
			if (!need) {
				pthread_mutex_lock(&g->tmu);
				struct slot *s = slot_get(g, st.st_dev, st.st_ino, KEY_WHOLE, false);
				need = s && (s->state & ST_SAVED) && s->tgid != tgid;
				pthread_mutex_unlock(&g->tmu);
			}
			if (need) {
				rc = save_once(g, f, e, &st, path, plen, KEY_WHOLE, 1, tgid, true);
				if (rc == 0 && small)
					ignore_inode(g, e->fd);
			}
		}
	} else if (e->mask & FAN_PRE_ACCESS) {
		if (access_is_read(e->tid)) {
			atomic_fetch_add(&g->n.read_only, 1);
		} else if (st.st_size == 0) {
			/* Empty: nothing to save, and its later writes (a new file being filled,
			 * such as an encrypted copy) need no saves in this epoch either. */
			pthread_mutex_lock(&g->tmu);
			struct slot *s = slot_get(g, st.st_dev, st.st_ino, KEY_WHOLE, true);
			if (s && !(s->state & ST_SAVING)) {
				s->state |= ST_SAVED;
				s->tgid = tgid_of(e->tid);
			}
			pthread_mutex_unlock(&g->tmu);
			ignore_inode(g, e->fd);
		} else if (small) {
			rc = save_once(g, f, e, &st, path, plen, KEY_WHOLE, 1, tgid_of(e->tid), true);
			if (rc == 0)
				ignore_inode(g, e->fd);
		} else {
			/* The range record is page-aligned; extend it to whole chunks. A count of
			 * 0 or past EOF (truncate) means "from offset to the end". */
			uint64_t cb = g->o.chunk_bytes, size = (uint64_t)st.st_size;
			uint64_t off = e->has_range ? e->off : 0;
			uint64_t end = e->has_range && e->cnt ? e->off + e->cnt : size;
			if (end > size || end < off)
				end = size;
			if (off < size) {
				uint64_t c0 = off / cb, c1 = (end + cb - 1) / cb;
				pid_t tgid = tgid_of(e->tid);
				/* One range version per unsaved chunk: a run of saved chunks
				 * between them costs nothing. */
				for (uint64_t c = c0; c < c1 && rc == 0; c++)
					rc = save_once(g, f, e, &st, path, plen, c, 1, tgid, false);
			}
		}
	}
	pthread_rwlock_unlock(&g->epoch_lock);

	if (rc == 0) {
		respond(g, e->fd, FAN_ALLOW);
		return;
	}
	if (rc == -ENOSPC)
		atomic_fetch_add(&g->n.enospc, 1);
	else if (rc == -ETIMEDOUT)
		atomic_fetch_add(&g->n.timeouts, 1);
	else
		atomic_fetch_add(&g->n.save_failed, 1);
	respond_policy(g, e->fd, "could not save before a write", rc);
}

static void *worker_main(void *arg)
{
	struct vault_guard *g = arg;
	for (;;) {
		pthread_mutex_lock(&g->qmu);
		while (!g->qlen && !g->stopping)
			pthread_cond_wait(&g->qcv, &g->qmu);
		if (!g->qlen) {
			pthread_mutex_unlock(&g->qmu);
			return NULL;
		}
		struct gev e = g->q[g->qhead];
		g->qhead = (g->qhead + 1) % g->o.queue_len;
		g->qlen--;
		pthread_mutex_unlock(&g->qmu);
		handle(g, &e);
	}
}

/* ---- the reader: no filesystem I/O here, ever ---- */

static void dispatch(struct vault_guard *g, const struct fanotify_event_metadata *m, int64_t now)
{
	struct gev e = {.fd = m->fd, .tid = m->pid, .mask = m->mask,
			.deadline = now + g->o.deadline_ms * 1000000};
	atomic_fetch_add(&g->n.events, 1);
	atomic_fetch_add(m->mask & FAN_OPEN_PERM ? &g->n.open_perm : &g->n.pre_access, 1);
	if (is_self(g, m->pid)) {
		atomic_fetch_add(&g->n.self, 1);
		respond(g, m->fd, FAN_ALLOW);
		return;
	}
	const char *p = (const char *)(m + 1), *end = (const char *)m + m->event_len;
	while (p + sizeof(struct fanotify_event_info_header) <= end) {
		const struct fanotify_event_info_header *h = (const void *)p;
		if (h->len < sizeof(*h) || p + h->len > end)
			break;
		if (h->info_type == FAN_EVENT_INFO_TYPE_RANGE &&
		    h->len >= sizeof(struct fanotify_event_info_range)) {
			const struct fanotify_event_info_range *r = (const void *)p;
			e.has_range = true;
			e.off = r->offset;
			e.cnt = r->count;
		}
		p += h->len;
	}
	pthread_mutex_lock(&g->qmu);
	if (g->qlen < g->o.queue_len && !g->stopping) {
		g->q[(g->qhead + g->qlen) % g->o.queue_len] = e;
		g->qlen++;
		pthread_cond_signal(&g->qcv);
		pthread_mutex_unlock(&g->qmu);
		return;
	}
	bool stopping = g->stopping;
	pthread_mutex_unlock(&g->qmu);
	if (stopping) {                /* shutting down: the kernel would allow it anyway */
		respond(g, m->fd, FAN_ALLOW);
		return;
	}
	atomic_fetch_add(&g->n.queue_full, 1);
	respond_policy(g, m->fd, "too many events waiting for a worker", -EAGAIN);
}

static void *reader_main(void *arg)
{
	struct vault_guard *g = arg;
	char buf[64 * 1024] __attribute__((aligned(__alignof__(struct fanotify_event_metadata))));
	struct pollfd pf[2] = {{.fd = g->fan, .events = POLLIN}, {.fd = g->wake, .events = POLLIN}};
	for (;;) {
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_err("guard: poll: %s", strerror(errno));
			break;
		}
		if (pf[1].revents)
			break;
		ssize_t n = read(g->fan, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			log_err("guard: read: %s", strerror(errno));
			break;
		}
		int64_t now = vault_mono_ns();
		const struct fanotify_event_metadata *m = (const void *)buf;
		for (; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
			if (m->vers != FANOTIFY_METADATA_VERSION) {
				log_err("guard: fanotify metadata version %u, expected %u", m->vers,
					FANOTIFY_METADATA_VERSION);
				if (m->fd >= 0)
					respond(g, m->fd, FAN_ALLOW);
				continue;
			}
			if (m->fd < 0)   /* FAN_NOFD: overflow; permission events always have an fd */
				continue;
			dispatch(g, m, now);
		}
	}
	return NULL;
}

static void *timer_main(void *arg)
{
	struct vault_guard *g = arg;
	pthread_mutex_lock(&g->timer_mu);
	while (!g->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t t = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + g->o.epoch_ms * 1000000;
		ts.tv_sec = t / 1000000000;
		ts.tv_nsec = t % 1000000000;
		if (pthread_cond_timedwait(&g->timer_cv, &g->timer_mu, &ts) == ETIMEDOUT &&
		    !g->stopping) {
			pthread_mutex_unlock(&g->timer_mu);
			vault_guard_new_epoch(g);
			pthread_mutex_lock(&g->timer_mu);
		}
	}
	pthread_mutex_unlock(&g->timer_mu);
	return NULL;
}

/* ---- start / stop ---- */

int vault_guard_start(const struct vault_guard_fs *fs, unsigned nfs,
		      const struct vault_guard_opts *opts, struct vault_guard **out)
{
	int rc = 0;
	if (!nfs || nfs > MAX_FS)
		return -EINVAL;
	struct vault_guard *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->fan = g->wake = g->taskdir = -1;
	g->self = getpid();
	if (opts)
		g->o = *opts;
	if (!g->o.workers)
		g->o.workers = 2;
	if (!g->o.queue_len)
		g->o.queue_len = 4096;
	if (!g->o.large_bytes)
		g->o.large_bytes = 64ull << 20;
	if (!g->o.chunk_bytes)
		g->o.chunk_bytes = 1ull << 20;
	if (!g->o.deadline_ms)
		g->o.deadline_ms = 2000;
	atomic_store(&g->incident, g->o.incident);
	pthread_mutex_init(&g->qmu, NULL);
	pthread_cond_init(&g->qcv, NULL);
	pthread_mutex_init(&g->tmu, NULL);
	pthread_mutex_init(&g->timer_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);   /* deadlines are monotonic */
	pthread_cond_init(&g->tcv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&g->timer_cv, NULL);
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	/* An epoch change must not starve behind a steady stream of saves. */
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&g->epoch_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	g->q = calloc(g->o.queue_len, sizeof(*g->q));
	g->table = calloc(TABLE_CAP, sizeof(*g->table));
	g->workers = calloc(g->o.workers, sizeof(*g->workers));
	if (!g->q || !g->table || !g->workers) {
		rc = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < nfs; i++) {
		struct gfs *f = &g->fs[i];
		char real[PATH_MAX];
		if (!realpath(fs[i].mount, real) ||
		    snprintf(f->mount, sizeof(f->mount), "%s", real) >= (int)sizeof(f->mount)) {
			rc = -errno ? -errno : -ENAMETOOLONG;
			goto out;
		}
		f->mount_len = strlen(f->mount);
		if (!realpath(vault_store_dir(fs[i].store), real) ||
		    snprintf(f->vault, sizeof(f->vault), "%s/", real) >= (int)sizeof(f->vault)) {
			rc = -errno ? -errno : -ENAMETOOLONG;
			goto out;
		}
		f->vault_len = strlen(f->vault);
		f->store = fs[i].store;
	}
	g->nfs = nfs;

	/* FAN_REPORT_TID gives the blocked thread, whose /proc/<tid>/syscall is the open or
	 * write in question; accepted with FAN_CLASS_PRE_CONTENT (probed on 6.18). Fall back
	 * to thread-group ids, which read the main thread's syscall. */
	unsigned base = FAN_CLASS_PRE_CONTENT | FAN_CLOEXEC | FAN_UNLIMITED_QUEUE;
	g->fan = fanotify_init(base | FAN_REPORT_TID, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
	g->tid_ok = g->fan >= 0;
	if (g->fan < 0 && errno == EINVAL)
		g->fan = fanotify_init(base, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
	if (g->fan < 0) {
		rc = -errno;
		log_err("guard: fanotify_init(FAN_CLASS_PRE_CONTENT): %s", strerror(errno));
		goto out;
	}
	g->taskdir = open("/proc/self/task", O_PATH | O_DIRECTORY | O_CLOEXEC);
	g->wake = eventfd(0, EFD_CLOEXEC);
	if (g->wake < 0) {
		rc = -errno;
		goto out;
	}
	atomic_store(&g->epoch, (uint64_t)(vault_now_ns() / 1000000));
	if ((rc = mark_vault_dirs(g))) {
		log_err("guard: ignore mark on the vault: %s", strerror(-rc));
		goto out;
	}
	/* Threads first, marks after: from the first mark on, events need answering. */
	if ((rc = -pthread_create(&g->reader, NULL, reader_main, g)))
		goto out;
	for (; g->nworkers < g->o.workers; g->nworkers++)
		if ((rc = -pthread_create(&g->workers[g->nworkers], NULL, worker_main, g)))
			goto out;
	for (unsigned i = 0; i < nfs; i++) {
		/* FAN_PRE_ACCESS: Linux 6.14+, ext4/xfs/btrfs (tmpfs says EOPNOTSUPP). */
		if (fanotify_mark(g->fan, FAN_MARK_ADD | FAN_MARK_FILESYSTEM,
				  FAN_OPEN_PERM | FAN_PRE_ACCESS, AT_FDCWD, g->fs[i].mount) < 0) {
			rc = -errno;
			log_err("guard: mark %s: %s", g->fs[i].mount, strerror(errno));
			goto out;
		}
	}
	if (g->o.epoch_ms > 0) {
		if ((rc = -pthread_create(&g->timer, NULL, timer_main, g)))
			goto out;
		g->timer_started = true;
	}
	*out = g;
	g = NULL;
out:
	if (g && g->fan >= 0)
		vault_guard_stop(g);
	else if (g) {
		free(g->q);
		free(g->table);
		free(g->workers);
		if (g->wake >= 0)
			close(g->wake);
		if (g->taskdir >= 0)
			close(g->taskdir);
		free(g);
	}
	return rc;
}

void vault_guard_stop(struct vault_guard *g)
{
	if (!g)
		return;
	/* Remove the marks first: no new events; then let the threads finish what is queued. */
	for (unsigned i = 0; i < g->nfs; i++)
		fanotify_mark(g->fan, FAN_MARK_REMOVE | FAN_MARK_FILESYSTEM,
			      FAN_OPEN_PERM | FAN_PRE_ACCESS, AT_FDCWD, g->fs[i].mount);
	pthread_mutex_lock(&g->timer_mu);
	pthread_mutex_lock(&g->qmu);
	g->stopping = true;
	pthread_cond_broadcast(&g->qcv);
	pthread_mutex_unlock(&g->qmu);
	pthread_cond_broadcast(&g->timer_cv);
	pthread_mutex_unlock(&g->timer_mu);
	if (g->timer_started)
		pthread_join(g->timer, NULL);
	for (unsigned i = 0; i < g->nworkers; i++)
		pthread_join(g->workers[i], NULL);
	uint64_t one = 1;
	if (g->wake >= 0 && write(g->wake, &one, sizeof(one)) < 0)
		log_warn("guard: wake: %s", strerror(errno));
	if (g->reader)
		pthread_join(g->reader, NULL);
	/* Whatever the reader queued after the workers left: allow. */
	while (g->qlen) {
		respond(g, g->q[g->qhead].fd, FAN_ALLOW);
		g->qhead = (g->qhead + 1) % g->o.queue_len;
		g->qlen--;
	}
	/* Closing the group allows every event still pending in the kernel. */
	close(g->fan);
	if (g->wake >= 0)
		close(g->wake);
	if (g->taskdir >= 0)
		close(g->taskdir);
	free(g->q);
	free(g->table);
	free(g->workers);
	pthread_rwlock_destroy(&g->epoch_lock);
	free(g);
}

void vault_guard_stats(struct vault_guard *g, struct vault_guard_stats *o)
{
	memset(o, 0, sizeof(*o));
#define C(x) o->x = atomic_load(&g->n.x)
	C(events); C(open_perm); C(pre_access); C(self); C(trusted); C(read_only);
	C(already_saved); C(saved_full); C(saved_range); C(linked); C(resaved_other_actor);
	C(tamper_denied); C(save_failed); C(enospc); C(timeouts); C(queue_full);
	C(fail_open); C(fail_closed); C(response_retries); C(epochs_advanced);
	C(unknown_intent);
#undef C
	o->epoch = atomic_load(&g->epoch);
	o->tid_reporting = g->tid_ok;
}
