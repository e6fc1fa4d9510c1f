/* sensor.c: fanotify notification sensor.
 *
 * Design. One notification group reports directory-entry events with the parent's file
 * handle and the entry's name (FAN_REPORT_DFID_NAME), the object's own handle
 * (FAN_REPORT_TARGET_FID) and a pidfd. Marks are filesystem-wide (directory-entry events
 * are not available on mount marks), so every record is first placed: its directory handle
 * is looked up in a cache of handle -> path; a miss costs open_by_handle_at() plus a
 * readlink of /proc/self/fd. The cache also remembers "outside the watched subtrees", so
 * unwatched activity on the same filesystem costs one hash lookup.
 *
 * The process behind an event is looked up in the process cache, which the eBPF monitor
 * fills at fork/exec. The ring buffer is drained after each read() of the fanotify queue
 * and before its records are handled: every process that produced a record in that batch
 * was exec'd before the read, so its exec record is already in the ring.
 *
 * Event time is the time ward read the record: fanotify carries no timestamp. */
#include "capture/sensor.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "capture/proccache.h"
#include "capture/procmon.h"
#include "core/log.h"

#define MAX_FS 16
#define DC_MAX_ENTRIES 65536
#define HANDLE_MAX 128

struct dc_entry {
	struct dc_entry *next;
	uint64_t hash;
	uint8_t klen;
	uint8_t key[8 + 4 + HANDLE_MAX]; /* fsid, handle type, handle bytes */
	int8_t root;                     /* watched root index, -1 outside */
	uint32_t plen;
	char *path;
};

struct watched_fs {
	fsid_t fsid;
	int mount_fd;
};

struct sensor {
	int fan_fd;
	unsigned init_flags;
	uint64_t mask;
	bool have_rename, have_target_fid, have_pidfd;
	struct sensor_cfg cfg;
	size_t root_len[SENSOR_MAX_ROOTS];
	size_t excl_len[SENSOR_MAX_ROOTS];
	struct watched_fs fs[MAX_FS];
	int nfs;
	pid_t self;

	struct dc_entry **dc;
	size_t dc_nb;
	size_t dc_count;

	struct proccache *pc;
	struct procmon *pm;

	sensor_cb cb;
	void *ctx;
	struct sensor_stats st;
	uint64_t seq;
	char features[1024];
	char *buf;
	size_t buflen;
	struct ward_event ev; /* reused: large, so not on the stack per record */
};

static void feat(struct sensor *s, const char *fmt, ...)
{
	size_t len = strlen(s->features);
	if (len + 2 >= sizeof(s->features))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->features + len, sizeof(s->features) - len - 1, fmt, ap);
	va_end(ap);
	strcat(s->features, "\n");
}

/* ---- directory cache ---- */

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 1099511628211ull;
	}
	return h;
}

/* Builds the cache key of a handle; returns its length or 0 when the handle is too big. */
static size_t make_key(uint8_t *key, const fsid_t *fsid, const struct file_handle *fh)
{
	if (fh->handle_bytes > HANDLE_MAX)
		return 0;
	memcpy(key, fsid, 8);
	memcpy(key + 8, &fh->handle_type, 4);
	memcpy(key + 12, fh->f_handle, fh->handle_bytes);
	return 12 + fh->handle_bytes;
}

static struct dc_entry *dc_find(struct sensor *s, const uint8_t *key, size_t klen, uint64_t h)
{
	for (struct dc_entry *e = s->dc[h & (s->dc_nb - 1)]; e; e = e->next)
		if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
			return e;
	return NULL;
}

static void dc_clear(struct sensor *s)
{
	for (size_t i = 0; i < s->dc_nb; i++) {
		struct dc_entry *e = s->dc[i];
		while (e) {
			struct dc_entry *n = e->next;
			free(e->path);
			free(e);
			e = n;
		}
		s->dc[i] = NULL;
	}
	s->dc_count = 0;
}

/* Which watched root holds path, or -1. Excluded subtrees count as outside. */
static int place(const struct sensor *s, const char *path, size_t len)
{
	for (int i = 0; i < s->cfg.nexcludes; i++) {
		size_t l = s->excl_len[i];
		if (len >= l && memcmp(path, s->cfg.excludes[i], l) == 0 &&
		    (len == l || path[l] == '/'))
			return -1;
	}
	for (int i = 0; i < s->cfg.nroots; i++) {
		size_t l = s->root_len[i];
		if (l == 1) /* "/" */
			return i;
		if (len >= l && memcmp(path, s->cfg.roots[i], l) == 0 &&
		    (len == l || path[l] == '/'))
			return i;
	}
	return -1;
}

static struct dc_entry *dc_put(struct sensor *s, const uint8_t *key, size_t klen, uint64_t h,
			       const char *path, size_t plen)
{
	struct dc_entry *e = dc_find(s, key, klen, h);
	if (!e) {
		/* Bounded: a full cache is emptied and refilled on demand, which costs one
		 * open_by_handle_at per live directory; simpler than LRU and rare. */
		if (s->dc_count >= DC_MAX_ENTRIES)
			dc_clear(s);
		e = calloc(1, sizeof(*e));
		if (!e)
			return NULL;
		e->hash = h;
		e->klen = (uint8_t)klen;
		memcpy(e->key, key, klen);
		e->next = s->dc[h & (s->dc_nb - 1)];
		s->dc[h & (s->dc_nb - 1)] = e;
		s->dc_count++;
	}
	char *p = malloc(plen + 1);
	if (!p)
		return NULL;
	memcpy(p, path, plen);
	p[plen] = '\0';
	free(e->path);
	e->path = p;
	e->plen = (uint32_t)plen;
	e->root = (int8_t)place(s, path, plen);
	return e;
}

/* Drops cached paths at or below prefix: after a directory rename they are stale. */
static void dc_invalidate_prefix(struct sensor *s, const char *prefix, size_t len)
{
	for (size_t i = 0; i < s->dc_nb; i++) {
		struct dc_entry **pp = &s->dc[i];
		while (*pp) {
			struct dc_entry *e = *pp;
			if (e->plen >= len && memcmp(e->path, prefix, len) == 0 &&
			    (e->plen == len || e->path[len] == '/')) {
				*pp = e->next;
				free(e->path);
				free(e);
				s->dc_count--;
			} else {
				pp = &e->next;
			}
		}
	}
}

static int mount_fd_for(const struct sensor *s, const fsid_t *fsid)
{
	for (int i = 0; i < s->nfs; i++)
		if (memcmp(&s->fs[i].fsid, fsid, sizeof(*fsid)) == 0)
			return s->fs[i].mount_fd;
	return -1;
}

/* Resolves a directory handle to its cache entry (path + placement). NULL if the directory
 * is gone and was never seen. */
static struct dc_entry *resolve_dir(struct sensor *s, const fsid_t *fsid, struct file_handle *fh)
{
	uint8_t key[sizeof(((struct dc_entry *)0)->key)];
	size_t klen = make_key(key, fsid, fh);
	if (!klen)
		return NULL;
	uint64_t h = fnv1a(key, klen);
	struct dc_entry *e = dc_find(s, key, klen, h);
	if (e)
		return e;
	int mfd = mount_fd_for(s, fsid);
	if (mfd < 0)
		return NULL;
	int fd = open_by_handle_at(mfd, fh, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return NULL; /* ESTALE: deleted before we read the record */
	char link[32], path[WARD_PATH_MAX];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof(path) - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	path[n] = '\0';
	/* An unlinked directory reads as "/x/y (deleted)". Its path is not a place any more. */
	if (n > 10 && strcmp(path + n - 10, " (deleted)") == 0)
		return NULL;
	return dc_put(s, key, klen, h, path, (size_t)n);
}

/* Inode number from a file handle of a filesystem whose layout is known, else 0. Used
 * when the object is gone (deletes) and cannot be opened. */
static uint64_t handle_ino(const struct file_handle *fh)
{
	const uint8_t *p = fh->f_handle;
	uint32_t a, b, c;
	uint64_t v;
	switch (fh->handle_type) {
	case 1: /* FILEID_INO32_GEN: ext2/3/4 {ino, gen}; shmem {gen, ino_lo, ino_hi} */
		if (fh->handle_bytes == 8) {
			memcpy(&a, p, 4);
			return a;
		}
		if (fh->handle_bytes == 12) {
			memcpy(&b, p + 4, 4);
			memcpy(&c, p + 8, 4);
			return (uint64_t)c << 32 | b;
		}
		return 0;
	case 2: /* FILEID_INO32_GEN_PARENT */
		if (fh->handle_bytes >= 8) {
			memcpy(&a, p, 4);
			return a;
		}
		return 0;
	case 0x81: /* xfs FILEID_INO32_GEN | XFS_FILEID_TYPE_64FLAG: {u64 ino, u32 gen} */
	case 0x82:
	case 0x4d: /* btrfs FILEID_BTRFS_*: {u64 objectid, ...} */
	case 0x4e:
	case 0x4f:
		if (fh->handle_bytes >= 8) {
			memcpy(&v, p, 8);
			return v;
		}
		return 0;
	default:
		return 0;
	}
}

/* ---- kernel feature probing ---- */

/* Newest first; each fallback names the kernel it is for. */
static int make_group(struct sensor *s, char *err, size_t errlen)
{
	unsigned base = FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK;
	if (s->cfg.unlimited_queue)
		base |= FAN_UNLIMITED_QUEUE;
	static const struct {
		unsigned flags;
		bool target, pidfd;
		const char *what;
	} tries[] = {
		{FAN_REPORT_DFID_NAME_TARGET | FAN_REPORT_PIDFD, true, true, NULL},
		/* Linux < 5.15: no pidfd in events */
		{FAN_REPORT_DFID_NAME_TARGET, true, false, "pidfd in events (Linux >= 5.15)"},
		/* Linux < 5.17: no object handle with directory-entry events */
		{FAN_REPORT_DFID_NAME, false, false, "target handles (Linux >= 5.17)"},
	};
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		int fd = fanotify_init(base | tries[i].flags, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
		if (fd >= 0) {
			s->fan_fd = fd;
			s->init_flags = base | tries[i].flags;
			s->have_target_fid = tries[i].target;
			s->have_pidfd = tries[i].pidfd;
			if (tries[i].what)
				feat(s, "unavailable: %s", tries[i].what);
			return 0;
		}
		if (errno != EINVAL) {
			int e = errno;
			snprintf(err, errlen, "fanotify_init: %s%s", strerror(e),
				 e == EPERM ? " (ward needs CAP_SYS_ADMIN: run as root)" : "");
			return -e;
		}
	}
	/* Linux < 5.9: without names ward cannot see creations and deletions at all */
	snprintf(err, errlen,
		 "fanotify_init: this kernel lacks FAN_REPORT_DFID_NAME (Linux >= 5.9 needed)");
	return -ENOTSUP;
}

static int mark_root(struct sensor *s, int idx, char *err, size_t errlen)
{
	const char *root = s->cfg.roots[idx];
	struct statfs sfs;
	if (statfs(root, &sfs) < 0) {
		snprintf(err, errlen, "watch %s: %s", root, strerror(errno));
		return -errno;
	}
	fsid_t fsid = sfs.f_fsid;
	if (mount_fd_for(s, &fsid) >= 0)
		return 0; /* another root on the same filesystem: one mark covers both */
	if (s->nfs >= MAX_FS) {
		snprintf(err, errlen, "watch %s: more than %d filesystems", root, MAX_FS);
		return -E2BIG;
	}
	uint64_t mask = s->mask;
	int rc = fanotify_mark(s->fan_fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, mask, AT_FDCWD, root);
	if (rc < 0 && errno == EINVAL && (mask & FAN_RENAME)) {
		/* Linux < 5.17: no FAN_RENAME; the two halves arrive as separate events */
		mask = (mask & ~(uint64_t)FAN_RENAME) | FAN_MOVED_FROM | FAN_MOVED_TO;
		if (s->have_rename)
			feat(s, "unavailable: rename as one event (Linux >= 5.17): old and new path "
				"arrive separately");
		s->have_rename = false;
		s->mask = mask;
		rc = fanotify_mark(s->fan_fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, mask, AT_FDCWD, root);
	}
	if (rc < 0) {
		int e = errno;
		snprintf(err, errlen, "watch %s: fanotify_mark: %s%s", root, strerror(e),
			 e == ENODEV || e == EOPNOTSUPP || e == EXDEV
				 ? " (this filesystem cannot report file handles)"
				 : "");
		return -e;
	}
	int mfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mfd < 0) {
		snprintf(err, errlen, "watch %s: %s", root, strerror(errno));
		return -errno;
	}
	s->fs[s->nfs].fsid = fsid;
	s->fs[s->nfs].mount_fd = mfd;
	s->nfs++;
	return 0;
}

int sensor_open(struct sensor **out, const struct sensor_cfg *cfg, sensor_cb cb, void *ctx,
		char *err, size_t errlen)
{
	int rc;
	struct sensor *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->fan_fd = -1;
	s->cfg = *cfg;
	s->cb = cb;
	s->ctx = ctx;
	s->self = getpid();
	s->dc_nb = 4096;
	s->buflen = 256 * 1024;
	s->dc = calloc(s->dc_nb, sizeof(*s->dc));
	s->buf = malloc(s->buflen);
	if (!s->dc || !s->buf) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < cfg->nroots; i++)
		s->root_len[i] = strlen(cfg->roots[i]);
	for (int i = 0; i < cfg->nexcludes; i++)
		s->excl_len[i] = strlen(cfg->excludes[i]);

	rc = make_group(s, err, errlen);
	if (rc)
		goto out;
	s->have_rename = true;
	s->mask = FAN_CREATE | FAN_DELETE | FAN_RENAME | FAN_MODIFY | FAN_CLOSE_WRITE | FAN_ONDIR;
	for (int i = 0; i < cfg->nroots; i++) {
		rc = mark_root(s, i, err, errlen);
		if (rc)
			goto out;
	}

	uint64_t grace = cfg->proc_grace_ns ? cfg->proc_grace_ns : 60ull * 1000000000ull;
	rc = proccache_create(&s->pc, grace);
	if (rc) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (!cfg->no_bpf) {
		rc = procmon_open(&s->pm, s->pc);
		if (rc)
			feat(s, "unavailable: eBPF process monitor (%s): short-lived processes may go "
				"unattributed", strerror(-rc));
		else
			feat(s, "enabled: eBPF process monitor (exec/fork/exit tracepoints)");
	} else {
		feat(s, "disabled: eBPF process monitor (by configuration)");
	}
	/* after the monitor is attached, so no process falls between scan and monitor */
	proccache_scan(s->pc);

	feat(s, "enabled: fanotify filesystem marks on %d filesystem(s), %s queue", s->nfs,
	     cfg->unlimited_queue ? "unlimited" : "kernel-limited");
	feat(s, "%s: pidfd with events", s->have_pidfd ? "enabled" : "unavailable");
	*out = s;
	return 0;
out:
	sensor_close(s);
	return rc;
}

int sensor_fd(const struct sensor *s)
{
	return s->fan_fd;
}

int sensor_aux_fd(const struct sensor *s)
{
	return s->pm ? procmon_fd(s->pm) : -1;
}

const char *sensor_features(const struct sensor *s)
{
	return s->features;
}

static void emit(struct sensor *s, enum ward_op op)
{
	struct ward_event *ev = &s->ev;
	ev->op = op;
	ev->seq = ++s->seq;
	s->st.events++;
	s->st.by_op[op]++;
	s->cb(ev, s->ctx);
}

/* Builds dir + "/" + name into dst; returns the length or 0 when it does not fit. */
static size_t join(char *dst, const struct dc_entry *dir, const char *name)
{
	size_t nl = strlen(name);
	bool root = dir->plen == 1 && dir->path[0] == '/';
	size_t len = dir->plen + (root ? 0 : 1) + nl;
	if (len >= WARD_PATH_MAX)
		return 0;
	memcpy(dst, dir->path, dir->plen);
	size_t o = dir->plen;
	if (!root)
		dst[o++] = '/';
	memcpy(dst + o, name, nl + 1);
	return len;
}

struct rec {
	const struct fanotify_event_metadata *m;
	const struct fanotify_event_info_fid *dfid, *old_dfid, *new_dfid, *fid;
	int pidfd;
};

static struct file_handle *fid_handle(const struct fanotify_event_info_fid *f)
{
	return (struct file_handle *)f->handle;
}

static const char *fid_name(const struct fanotify_event_info_fid *f)
{
	struct file_handle *fh = fid_handle(f);
	return (const char *)fh->f_handle + fh->handle_bytes;
}

/* Parses the info records of one event; returns false when malformed (skipped). */
static bool parse_rec(const struct fanotify_event_metadata *m, const char *base, struct rec *r)
{
	memset(r, 0, sizeof(*r));
	r->m = m;
	r->pidfd = -1;
	const char *p = base + m->metadata_len;
	const char *end = base + m->event_len;
	while (p + sizeof(struct fanotify_event_info_header) <= end) {
		const struct fanotify_event_info_header *h = (const void *)p;
		if (h->len < sizeof(*h) || p + h->len > end)
			return false;
		switch (h->info_type) {
		case FAN_EVENT_INFO_TYPE_FID:
			r->fid = (const void *)p;
			break;
		case FAN_EVENT_INFO_TYPE_DFID_NAME:
		case FAN_EVENT_INFO_TYPE_DFID:
			r->dfid = (const void *)p;
			break;
		case FAN_EVENT_INFO_TYPE_OLD_DFID_NAME:
			r->old_dfid = (const void *)p;
			break;
		case FAN_EVENT_INFO_TYPE_NEW_DFID_NAME:
			r->new_dfid = (const void *)p;
			break;
		case FAN_EVENT_INFO_TYPE_PIDFD:
			r->pidfd = ((const struct fanotify_event_info_pidfd *)p)->pidfd;
			break;
		default:
			break; /* newer record kinds: ignored */
		}
		p += h->len;
	}
	return true;
}

/* Resolves the (dfid, name) record to a full path in dst. Returns the entry of the
 * directory (for placement) or NULL. For DFID records without a name the path is the
 * directory itself. */
static struct dc_entry *rec_path(struct sensor *s, const struct fanotify_event_info_fid *f,
				 char *dst, size_t *len)
{
	struct dc_entry *d = resolve_dir(s, (const fsid_t *)&f->fsid, fid_handle(f));
	if (!d)
		return NULL;
	if (f->hdr.info_type == FAN_EVENT_INFO_TYPE_DFID) {
		memcpy(dst, d->path, d->plen + 1);
		*len = d->plen;
		return d;
	}
	*len = join(dst, d, fid_name(f));
	return *len ? d : NULL;
}

static void handle_rec(struct sensor *s, const struct rec *r, const struct timespec *now)
{
	const struct fanotify_event_metadata *m = r->m;
	struct ward_event *ev = &s->ev;
	uint64_t mask = m->mask;

	ev->ts = *now;
	ev->is_dir = (mask & FAN_ONDIR) != 0;
	ev->pid = m->pid;
	ev->tid = 0;
	ev->ino = 0;
	ev->size = -1;
	ev->lost = 0;
	ev->old_path[0] = '\0';
	ev->old_path_len = 0;

	if ((pid_t)m->pid == s->self) {
		s->st.self++;
		return;
	}

	int where = -1, where_old = -1;
	if (mask & FAN_RENAME) {
		if (!r->old_dfid || !r->new_dfid)
			return;
		struct dc_entry *od = rec_path(s, r->old_dfid, ev->old_path, &ev->old_path_len);
		struct dc_entry *nd = rec_path(s, r->new_dfid, ev->path, &ev->path_len);
		if (!od || !nd) {
			s->st.unresolved++;
			return;
		}
		where_old = od->root;
		where = nd->root;
	} else {
		const struct fanotify_event_info_fid *f = r->dfid;
		if (!f) {
			s->st.unresolved++;
			return;
		}
		struct dc_entry *d = rec_path(s, f, ev->path, &ev->path_len);
		if (!d) {
			s->st.unresolved++;
			return;
		}
		where = d->root;
	}
	/* the entry itself may be an excluded subtree's root */
	if (where >= 0 && place(s, ev->path, ev->path_len) < 0)
		where = -1;
	if (where_old >= 0 && place(s, ev->old_path, ev->old_path_len) < 0)
		where_old = -1;

	/* Keep the directory cache right before filtering: a directory made or renamed
	 * outside a watched subtree may later hold watched paths (and the reverse). */
	if (ev->is_dir && r->fid && (mask & (FAN_CREATE | FAN_RENAME))) {
		uint8_t key[sizeof(((struct dc_entry *)0)->key)];
		size_t klen = make_key(key, (const fsid_t *)&r->fid->fsid, fid_handle(r->fid));
		if (mask & FAN_RENAME)
			dc_invalidate_prefix(s, ev->old_path, ev->old_path_len);
		if (klen)
			dc_put(s, key, klen, fnv1a(key, klen), ev->path, ev->path_len);
	}

	if (where < 0 && where_old < 0) {
		s->st.outside++;
		return;
	}

	const struct ward_proc *p = proccache_get(s->pc, (pid_t)m->pid);
	if (!p->known)
		s->st.attrib_fail++;
	ev->proc = p;

	ev->handle = NULL;
	ev->mount_fd = -1;
	ev->content.valid = false;
	if (r->fid) {
		struct file_handle *fh = fid_handle(r->fid);
		ev->handle = fh;
		ev->mount_fd = mount_fd_for(s, (const fsid_t *)&r->fid->fsid);
		ev->ino = handle_ino(fh);
		/* Size is reported where it means something (the final size at close-after-write,
		 * the size of a renamed file) and looked up only when a consumer asks for it
		 * (ward_event_size): a stat per record costs three syscalls. Deletes have nothing
		 * left to stat. */
		if (!ev->is_dir && (mask & (FAN_CLOSE_WRITE | FAN_RENAME)) && !(mask & FAN_DELETE) &&
		    ev->mount_fd >= 0)
			ev->size = WARD_SIZE_LAZY;
	}

	/* One fanotify record may carry several merged bits: report them in the order they
	 * happened. */
	if (mask & FAN_CREATE)
		emit(s, ev->is_dir ? WOP_MKDIR : WOP_CREATE);
	if (mask & FAN_MODIFY)
		emit(s, WOP_MODIFY);
	if (mask & FAN_CLOSE_WRITE)
		emit(s, WOP_CLOSE_WRITE);
	/* A rename out of the watched subtrees is reported too: its old path is watched. */
	if (mask & FAN_RENAME)
		emit(s, WOP_RENAME);
	if (mask & (FAN_MOVED_FROM | FAN_MOVED_TO))
		emit(s, WOP_RENAME); /* Linux < 5.17 fallback: half a rename */
	if (mask & FAN_DELETE)
		emit(s, ev->is_dir ? WOP_RMDIR : WOP_DELETE);
}

int sensor_process(struct sensor *s)
{
	int delivered = 0;
	uint64_t before = s->st.events;
	/* Bounded per call so that control requests and signals are served under a flood. */
	for (int round = 0; round < 64; round++) {
		struct timespec mono;
		clock_gettime(CLOCK_MONOTONIC, &mono);
		ssize_t len = read(s->fan_fd, s->buf, s->buflen);
		if (len < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				s->st.drained_ns = (uint64_t)mono.tv_sec * 1000000000ull + (uint64_t)mono.tv_nsec;
				break;
			}
			return -errno;
		}
		if (len == 0)
			break;
		/* after read(), before handling: see the design note at the top */
		if (s->pm)
			procmon_drain(s->pm);
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		/* Records are only 4-byte aligned (FID records end on 4-byte boundaries) while
		 * the metadata struct has a 64-bit member: each header is copied out. */
		for (size_t off = 0; off + FAN_EVENT_METADATA_LEN <= (size_t)len;) {
			struct fanotify_event_metadata md;
			const char *base = s->buf + off;
			memcpy(&md, base, sizeof(md));
			if (md.event_len < FAN_EVENT_METADATA_LEN || off + md.event_len > (size_t)len)
				break;
			off += md.event_len;
			if (md.vers != FANOTIFY_METADATA_VERSION)
				return -EPROTO;
			s->st.raw++;
			if (md.mask & FAN_Q_OVERFLOW) {
				s->st.overflows++;
				struct ward_event *ev = &s->ev;
				memset(ev, 0, offsetof(struct ward_event, path));
				ev->path[0] = ev->old_path[0] = '\0';
				ev->ts = now;
				ev->size = -1;
				ev->lost = s->st.overflows;
				ev->mount_fd = -1;
				ev->proc = proccache_get(s->pc, getpid());
				emit(s, WOP_OVERFLOW);
				continue;
			}
			struct rec r;
			if (parse_rec(&md, base, &r))
				handle_rec(s, &r, &now);
			if (r.pidfd >= 0)
				close(r.pidfd);
			if (md.fd >= 0)
				close(md.fd);
		}
	}
	if (s->pm)
		procmon_drain(s->pm);
	delivered = (int)(s->st.events - before);
	return delivered;
}

void sensor_housekeep(struct sensor *s)
{
	if (s->pm)
		procmon_drain(s->pm);
	proccache_expire(s->pc, proccache_now_ns());
}

void sensor_stats(const struct sensor *s, struct sensor_stats *out)
{
	*out = s->st;
	out->dircache_entries = s->dc_count;
	struct proccache_stats ps;
	proccache_stats(s->pc, &ps);
	out->proc_entries = ps.entries;
	out->bpf_lost = s->pm ? procmon_lost(s->pm) : 0;
}

const struct ward_proc *sensor_proc(struct sensor *s, pid_t pid)
{
	return proccache_get(s->pc, pid);
}

void sensor_close(struct sensor *s)
{
	if (!s)
		return;
	procmon_close(s->pm);
	proccache_destroy(s->pc);
	if (s->fan_fd >= 0)
		close(s->fan_fd);
	for (int i = 0; i < s->nfs; i++)
		close(s->fs[i].mount_fd);
	if (s->dc) {
		dc_clear(s);
		free(s->dc);
	}
	free(s->buf);
	free(s);
}
