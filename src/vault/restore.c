/* restore.c: vault versions back onto their paths.
 *
 * Each whole version is written to ".ward-restore-<id>.tmp" in the target's directory
 * (a reflink where the filesystem can, else a sparse-aware copy), given the saved mode,
 * owner and times, fsynced and renamed over the target: a reader never sees a half-restored
 * file, an interrupted run leaves at most that temp file, and a re-run rewrites it and
 * completes. A target that already holds the saved bytes is left alone ("unchanged"; only
 * its metadata is set again): re-running a finished restore changes nothing. Bytes are
 * compared directly, holes skipped on both sides, so a sparse disk image costs its data.
 *
 * Exceptions to rename-over: a target with other hard links is rewritten in place
 * (renaming would split it from its other names); a range version is written into the
 * existing file at its offset (a multi-GiB file is not copied to be restored), holes of the
 * saved range punched back; and names that were hard links of one file when it was saved
 * (same inode and content state) are linked to the first of them restored, so they come
 * back as one file, not as copies.
 * Ward reads the vault through its own directory fd: the guard lets ward's own opens in. */
#include "vault/restore.h"
#include "core/io.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/jsonw.h"
#include "core/log.h"

#define CMP_BUF (256 * 1024)

static void path_json(struct jsonw *w, const char *key, const char *p, size_t n)
{
	jsonw_strn(w, key, p, n);
	if (!jsonw_utf8_valid(p, n)) {         /* exact bytes for names that are not UTF-8 */
		char hk[32];
		snprintf(hk, sizeof(hk), "%s_hex", key);
		jsonw_hex(w, hk, p, n);
	}
}

/* One JSON line. link_of: the target this one was made a hard link of, or NULL. */
static void report_ex(const struct vault_restore_opts *o, const char *action,
		      const struct vault_version *v, const char *target, size_t tlen, int err,
		      const char *link_of)
{
	if (!o->report)
		return;
	struct jsonw w;
	jsonw_init(&w);
	jsonw_obj_open(&w, NULL);
	jsonw_str(&w, "action", action);
	path_json(&w, "path", target, tlen);
	if (v) {
		jsonw_int(&w, "version", v->id);
		jsonw_str(&w, "kind", vault_kind_name(v->kind));
		jsonw_int(&w, "size", v->size);
		if (v->kind == VAULT_KIND_RANGE) {
			jsonw_int(&w, "range_off", v->range_off);
			jsonw_int(&w, "range_len", v->range_len);
		}
		if (v->has_sha256)
			jsonw_hex(&w, "sha256", v->sha256, 32);
		jsonw_time(&w, "saved", v->saved_ns / 1000000000, (long)(v->saved_ns % 1000000000));
		jsonw_int(&w, "actor_pid", v->pid);
		if (v->exe[0])
			jsonw_str(&w, "actor_exe", v->exe);
		if (v->path_len != tlen || memcmp(v->path, target, tlen) != 0)
			path_json(&w, "saved_as", v->path, v->path_len);
	}
	if (link_of)
		path_json(&w, "link_of", link_of, strlen(link_of));
	if (err)
		jsonw_str(&w, "error", strerror(-err));
	jsonw_obj_close(&w);
	if (!w.oom)
		fprintf(o->report, "%.*s\n", (int)w.len, w.buf);
	jsonw_free(&w);
}

static void report(const struct vault_restore_opts *o, const char *action,
		   const struct vault_version *v, const char *target, size_t tlen, int err)
{
	report_ex(o, action, v, target, tlen, err, NULL);
}

static int mkdir_parents(const char *path)
{
	char tmp[WARD_PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

/* ".ward-restore-<id>.tmp" beside target. */
static int temp_name(char *out, size_t cap, const char *target, int64_t id)
{
	const char *slash = strrchr(target, '/');
	size_t dl = slash ? (size_t)(slash - target) + 1 : 0;
	if (snprintf(out, cap, "%.*s.ward-restore-%lld.tmp", (int)dl, target, (long long)id) >= (int)cap)
		return -ENAMETOOLONG;
	return 0;
}

static int apply_meta(int fd, const struct vault_version *v)
{
	/* chown first: it clears set-id bits that chmod then puts back. */
	if (fchown(fd, v->uid, v->gid) < 0 || fchmod(fd, v->mode & 07777) < 0)
		return -errno;
	struct timespec ts[2] = {
		{.tv_sec = v->atime_ns / 1000000000, .tv_nsec = v->atime_ns % 1000000000},
		{.tv_sec = v->mtime_ns / 1000000000, .tv_nsec = v->mtime_ns % 1000000000},
	};
	return futimens(fd, ts) < 0 ? -errno : 0;
}

/* Where the next data at or after pos starts (end when only a hole is left). A filesystem
 * without SEEK_DATA reports everything as data. */
static int64_t next_data(int fd, int64_t pos, int64_t end)
{
	off_t d = lseek(fd, pos, SEEK_DATA);
	if (d < 0)
		return errno == ENXIO ? end : pos;
	return d > end ? end : d;
}

static int64_t next_hole(int fd, int64_t pos, int64_t end)
{
	off_t h = lseek(fd, pos, SEEK_HOLE);
	return h < 0 || h > end ? end : h;
}

static int read_full(int fd, char *buf, size_t n, int64_t off)
{
	ssize_t r = io_pread_full(fd, buf, n, (uint64_t)off);
	if (r < 0)
		return (int)r;
	size_t got = (size_t)r;
	memset(buf + got, 0, n - got);   /* past EOF reads as zeros: sizes are compared apart */
	return 0;
}

/* Whether a[aoff, aoff+len) and b[boff, boff+len) hold the same bytes. Stretches that are
 * holes in both are skipped unread. 1 same, 0 different, -errno. */
static int same_bytes(int a, int64_t aoff, int b, int64_t boff, int64_t len)
{
	int rc = 1;
	char *x = malloc(CMP_BUF), *y = malloc(CMP_BUF);
	if (!x || !y) {
		rc = -ENOMEM;
		goto out;
	}
	for (int64_t pos = 0; pos < len;) {
		int64_t da = next_data(a, aoff + pos, aoff + len) - aoff;
		int64_t db = next_data(b, boff + pos, boff + len) - boff;
		int64_t d = da < db ? da : db;
		if (d > pos) {
			pos = d;
			continue;
		}
		size_t n = len - pos > CMP_BUF ? CMP_BUF : (size_t)(len - pos);
		int e;
		if ((e = read_full(a, x, n, aoff + pos)) || (e = read_full(b, y, n, boff + pos))) {
			rc = e;
			goto out;
		}
		if (memcmp(x, y, n) != 0) {
			rc = 0;
			goto out;
		}
		pos += (int64_t)n;
	}
out:
	free(x);
	free(y);
	return rc;
}

/* Whether the regular file at target holds exactly vfd's v->size bytes. */
static bool same_content(const char *target, int vfd, const struct vault_version *v)
{
	struct stat st;
	if (lstat(target, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size != v->size)
		return false;
	int fd = open(target, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	int rc = same_bytes(vfd, 0, fd, 0, v->size);
	close(fd);
	return rc == 1;
}

int vault_restore_same(struct vault_store *s, const struct vault_version *v, const char *path)
{
	int vfd, rc;
	if (v->kind == VAULT_KIND_RANGE)
		return -EINVAL;
	if ((rc = vault_store_open_version(s, v, &vfd)))
		return rc;
	rc = same_content(path, vfd, v) ? 1 : 0;
	close(vfd);
	return rc;
}

bool vault_restore_version_valid(struct vault_store *s, const struct vault_version *v)
{
	if (v->kind != VAULT_KIND_LINK)
		return true;
	/* A hard link shares its inode: it only holds the saved content while that is unchanged. */
	int fd;
	struct stat sb;
	if (vault_store_open_version(s, v, &fd))
		return false;
	bool ok = fstat(fd, &sb) == 0 && sb.st_size == v->size &&
		  (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec == v->mtime_ns;
	close(fd);
	return ok;
}

/* Zeros over [off, off+len) of fd: a punched hole where the filesystem can. */
static int zero_range(int fd, int64_t off, int64_t len)
{
	static const char zeros[64 * 1024];
	if (len <= 0 || fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) == 0)
		return 0;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	/* Beyond the end nothing needs zeroing: a later size change reads as zeros. */
	if (off >= st.st_size)
		return 0;
	if (off + len > st.st_size)
		len = st.st_size - off;
	while (len > 0) {
		size_t n = len > (int64_t)sizeof(zeros) ? sizeof(zeros) : (size_t)len;
		ssize_t w = pwrite(fd, zeros, n, off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		off += w;
		len -= w;
	}
	return 0;
}

/* vfd[0, len) to fd at off, holes of vfd becoming holes (or zeros) in fd. */
static int write_sparse(int vfd, int fd, int64_t len, int64_t off)
{
	int rc = 0;
	for (int64_t pos = 0; pos < len && !rc;) {
		int64_t d = next_data(vfd, pos, len);
		if (d > pos) {
			rc = zero_range(fd, off + pos, d - pos);
			pos = d;
			continue;
		}
		int64_t h = next_hole(vfd, pos, len);
		if (h <= pos)
			h = len;
		rc = vault_copy_range(vfd, fd, pos, h - pos, off + pos, NULL, 0);
		pos = h;
	}
	return rc;
}

static int restore_range(const struct vault_version *v, int vfd, const char *target, size_t tlen,
			 const struct vault_restore_opts *o, struct vault_restore_stats *st)
{
	int rc = 0, fd = open(target, (o->dry_run ? O_RDONLY : O_RDWR) | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	if (same_bytes(vfd, 0, fd, v->range_off, v->range_len) == 1) {
		st->unchanged++;
		report(o, "unchanged", v, target, tlen, 0);
		goto out;
	}
	if (o->dry_run) {
		st->would_restore++;
		report(o, "would_restore", v, target, tlen, 0);
		goto out;
	}
	/* Writing the same bytes again is harmless: ranges are idempotent by nature. */
	if ((rc = write_sparse(vfd, fd, v->range_len, v->range_off)))
		goto out;
	if (fsync(fd) < 0) {
		rc = -errno;
		goto out;
	}
	st->restored++;
	report(o, "restored", v, target, tlen, 0);
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* A range-only target (a large file no whole version of was chosen): its size and metadata
 * from the earliest of its range versions, the file as it was before the first write. */
static int finish_ranges(const struct vault_version *v, const char *target,
			 const struct vault_restore_opts *o)
{
	if (o->dry_run)
		return 0;
	int rc = 0, fd = open(target, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) < 0) {
		rc = -errno;
		goto out;
	}
	if (sb.st_size != v->size && ftruncate(fd, v->size) < 0) {
		rc = -errno;
		goto out;
	}
	if ((rc = apply_meta(fd, v)) == 0 && fsync(fd) < 0)
		rc = -errno;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* The whole content of vfd into fd (empty or fresh): a reflink where the filesystem can
 * (sharing the vault's blocks), else a sparse-aware copy. */
static int fill_whole(int vfd, int fd, int64_t size)
{
	if (size > 0 && ioctl(fd, FICLONE, vfd) == 0)
		return 0;
	int rc = vault_copy_range(vfd, fd, 0, size, 0, NULL, 0);
	if (rc == 0 && ftruncate(fd, size) < 0)
		rc = -errno;
	return rc;
}

static int restore_one(struct vault_store *s, const struct vault_version *v, const char *target,
		       const struct vault_restore_opts *o, struct vault_restore_stats *st)
{
	int rc = 0, vfd = -1, tfd = -1;
	size_t tlen = strlen(target);
	char tmp[WARD_PATH_MAX];
	bool tmp_made = false;
	struct stat ts;

	if ((rc = vault_store_open_version(s, v, &vfd)))
		goto out;
	if (v->kind == VAULT_KIND_RANGE) {
		rc = restore_range(v, vfd, target, tlen, o, st);
		goto out;
	}
	if ((rc = temp_name(tmp, sizeof(tmp), target, v->id)))
		goto out;
	if (same_content(target, vfd, v)) {
		if (!o->dry_run) {
			int fd = open(target, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			if (fd >= 0) {
				rc = apply_meta(fd, v);
				close(fd);
			}
			unlink(tmp);      /* what a run killed after its rename may have left */
		}
		st->unchanged++;
		report(o, "unchanged", v, target, tlen, 0);
		goto out;
	}
	if (o->dry_run) {
		st->would_restore++;
		report(o, "would_restore", v, target, tlen, 0);
		goto out;
	}
	bool exists = lstat(target, &ts) == 0;
	if (exists && S_ISREG(ts.st_mode) && ts.st_nlink > 1) {
		/* Keep the inode and so its other names: rewrite in place. */
		tfd = open(target, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
		if (tfd < 0 || ftruncate(tfd, 0) < 0) {
			rc = -errno;
			goto out;
		}
	} else {
		if ((rc = mkdir_parents(target)))
			goto out;
		tfd = open(tmp, O_CREAT | O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (tfd < 0) {
			rc = -errno;
			goto out;
		}
		tmp_made = true;
	}
	if ((rc = fill_whole(vfd, tfd, v->size)) || (rc = apply_meta(tfd, v)))
		goto out;
	if (fsync(tfd) < 0) {
		rc = -errno;
		goto out;
	}
	if (tmp_made && rename(tmp, target) < 0) {
		rc = -errno;
		goto out;
	}
	tmp_made = false;
	st->restored++;
	report(o, "restored", v, target, tlen, 0);
out:
	if (tfd >= 0)
		close(tfd);
	if (vfd >= 0)
		close(vfd);
	if (tmp_made)
		unlink(tmp);
	return rc;
}

/* target as another name of leader's file (already restored). 1: done; 0: not possible
 * (restore target from its own version instead); -errno. */
static int restore_link(const struct vault_version *v, const char *target, const char *leader,
			const struct vault_restore_opts *o, struct vault_restore_stats *st)
{
	struct stat a, b;
	size_t tlen = strlen(target);
	char tmp[WARD_PATH_MAX];
	int rc;
	if (lstat(leader, &b) < 0 || !S_ISREG(b.st_mode))
		return 0;
	if (lstat(target, &a) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
		st->unchanged++;
		report_ex(o, "unchanged", v, target, tlen, 0, leader);
		return 1;
	}
	if (o->dry_run) {
		st->would_restore++;
		report_ex(o, "would_restore", v, target, tlen, 0, leader);
		return 1;
	}
	if ((rc = temp_name(tmp, sizeof(tmp), target, v->id)) || (rc = mkdir_parents(target)))
		return rc;
	unlink(tmp);
	if (link(leader, tmp) < 0)
		return 0;     /* another filesystem, too many links: a copy of its own */
	if (rename(tmp, target) < 0) {
		rc = -errno;
		unlink(tmp);
		return rc;
	}
	st->restored++;
	report_ex(o, "restored", v, target, tlen, 0, leader);
	return 1;
}

/* One line of the quarantine's log, written (and synced) before the move: a run killed
 * part-way leaves a record of where each moved file came from, which the next run reads
 * (a file moved away may be the only sign of a name to bring back). */
static int log_move(int fd, const char *from, const char *to)
{
	struct jsonw w;
	jsonw_init(&w);
	jsonw_obj_open(&w, NULL);
	path_json(&w, "from", from, strlen(from));
	path_json(&w, "to", to, strlen(to));
	jsonw_obj_close(&w);
	int rc = 0;
	/* One writev: the line and its newline land together, or not at all. */
	struct iovec iov[2] = {{.iov_base = w.buf, .iov_len = w.len}, {.iov_base = "\n", .iov_len = 1}};
	if (w.oom)
		rc = -ENOMEM;
	else if (writev(fd, iov, 2) != (ssize_t)w.len + 1 || fdatasync(fd) < 0)
		rc = -EIO;
	jsonw_free(&w);
	return rc;
}

static int quarantine_all(const struct vault_restore_opts *o, struct vault_restore_stats *st)
{
	int rc = 0, logfd = -1;
	static unsigned seq;
	if (!o->nquarantine)
		return 0;
	if (!o->quarantine_dir)
		return -EINVAL;
	if (!o->dry_run && mkdir(o->quarantine_dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (!o->dry_run) {
		char lp[WARD_PATH_MAX];
		if (snprintf(lp, sizeof(lp), "%s/" VAULT_QUARANTINE_LOG, o->quarantine_dir) >= (int)sizeof(lp))
			return -ENAMETOOLONG;
		if ((logfd = open(lp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0)
			return -errno;
	}
	for (size_t i = 0; i < o->nquarantine; i++) {
		const char *p = o->quarantine[i];
		struct stat sb;
		if (lstat(p, &sb) < 0) {
			report(o, "absent", NULL, p, strlen(p), 0);   /* done by an earlier run */
			continue;
		}
		if (o->dry_run) {
			st->would_quarantine++;
			report(o, "would_quarantine", NULL, p, strlen(p), 0);
			continue;
		}
		const char *base = strrchr(p, '/');
		base = base ? base + 1 : p;
		char to[WARD_PATH_MAX];
		if (snprintf(to, sizeof(to), "%s/%lld-%u-%s", o->quarantine_dir,
			     (long long)vault_now_ns(), seq++, base) >= (int)sizeof(to)) {
			rc = rc ? rc : -ENAMETOOLONG;
			st->failed++;
			continue;
		}
		/* A move, never a delete: the evidence stays, out of the way. */
		int e = log_move(logfd, p, to);
		if (!e && rename(p, to) < 0)
			e = -errno;
		if (e) {
			report(o, "quarantine_failed", NULL, p, strlen(p), e);
			st->failed++;
			rc = rc ? rc : e;
			continue;
		}
		st->quarantined++;
		report_ex(o, "quarantined", NULL, to, strlen(to), 0, NULL);
	}
	if (logfd >= 0)
		close(logfd);
	return rc;
}

/* An item resolved: its target and what grouping needs of its version. */
struct ritem {
	char *target;
	int err;
	uint64_t dev, ino;
	int64_t mtime_ns, size, saved_ns;
	uint32_t nlink;
	bool range;
	ssize_t leader;          /* whole versions: the item whose target this one links to */
	ssize_t range_meta;      /* range items: the item whose version sets size and meta */
	bool ok;                 /* restored or already right */
};

static int resolve(struct vault_store *s, const struct vault_restore_item *it,
		   const struct vault_restore_opts *o, struct vault_version *v, struct ritem *r)
{
	int rc = vault_store_get(s, it->id, v);
	if (rc)
		return rc;
	const char *home = v->orig_path_len ? v->orig_path : v->path;
	size_t hl = v->orig_path_len ? v->orig_path_len : v->path_len;
	char target[WARD_PATH_MAX];
	int n;
	if (it->dest)
		n = snprintf(target, sizeof(target), "%s", it->dest);
	else if (o->dest_root)
		n = snprintf(target, sizeof(target), "%s%.*s", o->dest_root, (int)hl, home);
	else
		n = snprintf(target, sizeof(target), "%.*s", (int)hl, home);
	if (n < 0 || n >= (int)sizeof(target))
		return -ENAMETOOLONG;
	if (strlen(target) != (size_t)n)
		return -EINVAL;           /* a NUL byte in a recorded path */
	if (!(r->target = strdup(target)))
		return -ENOMEM;
	r->dev = v->dev;
	r->ino = v->ino;
	r->mtime_ns = v->mtime_ns;
	r->size = v->size;
	r->saved_ns = v->saved_ns;
	r->nlink = v->nlink;
	r->range = v->kind == VAULT_KIND_RANGE;
	return 0;
}

/* Sort orders for grouping: arrays of item indexes, the items as context. */
static int cmp_inode(const void *x, const void *y, void *ctx)
{
	const struct ritem *r = ctx, *a = &r[*(const size_t *)x], *b = &r[*(const size_t *)y];
#define CMP(f) if (a->f != b->f) return a->f < b->f ? -1 : 1
	CMP(dev);
	CMP(ino);
	CMP(mtime_ns);
	CMP(size);
#undef CMP
	return *(const size_t *)x < *(const size_t *)y ? -1 : 1;
}

static int cmp_target(const void *x, const void *y, void *ctx)
{
	const struct ritem *r = ctx, *a = &r[*(const size_t *)x], *b = &r[*(const size_t *)y];
	int c = strcmp(a->target, b->target);
	return c ? c : *(const size_t *)x < *(const size_t *)y ? -1 : 1;
}

/* Once every item is resolved: hard-link leaders (whole versions of one inode in one
 * content state, saved while it had several names: the first in item order leads) and,
 * for targets with range versions only, the earliest range (it sets size and metadata). */
static int group_items(struct ritem *r, size_t n)
{
	size_t *ix = malloc((n ? n : 1) * sizeof(*ix)), m = 0;
	if (!ix)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		r[i].leader = r[i].range_meta = -1;
	for (size_t i = 0; i < n; i++)
		if (!r[i].err && !r[i].range && r[i].nlink > 1)
			ix[m++] = i;
	qsort_r(ix, m, sizeof(*ix), cmp_inode, r);
	for (size_t a = 0; a < m;) {
		size_t b = a + 1;
		while (b < m && r[ix[a]].dev == r[ix[b]].dev && r[ix[a]].ino == r[ix[b]].ino &&
		       r[ix[a]].mtime_ns == r[ix[b]].mtime_ns && r[ix[a]].size == r[ix[b]].size)
			b++;
		for (size_t k = a + 1; k < b; k++)
			if (strcmp(r[ix[k]].target, r[ix[a]].target) != 0)
				r[ix[k]].leader = (ssize_t)ix[a];
		a = b;
	}
	m = 0;
	for (size_t i = 0; i < n; i++)
		if (!r[i].err)
			ix[m++] = i;
	qsort_r(ix, m, sizeof(*ix), cmp_target, r);
	for (size_t a = 0; a < m;) {
		size_t b = a + 1;
		while (b < m && strcmp(r[ix[a]].target, r[ix[b]].target) == 0)
			b++;
		ssize_t meta = -1;
		bool whole = false;
		for (size_t k = a; k < b; k++) {
			if (!r[ix[k]].range)
				whole = true;
			else if (meta < 0 || r[ix[k]].saved_ns < r[meta].saved_ns)
				meta = (ssize_t)ix[k];
		}
		for (size_t k = a; k < b && !whole; k++)
			r[ix[k]].range_meta = meta;
		a = b;
	}
	free(ix);
	return 0;
}

int vault_restore_items(struct vault_store *s, const struct vault_restore_item *items, size_t n,
			const struct vault_restore_opts *o, struct vault_restore_stats *st)
{
	int rc = 0;
	bool stopped = false;
	struct vault_version *v = malloc(sizeof(*v));
	struct ritem *r = calloc(n ? n : 1, sizeof(*r));
	if (!v || !r) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		r[i].err = resolve(s, &items[i], o, v, &r[i]);
	if ((rc = group_items(r, n)))
		goto out;
	rc = quarantine_all(o, st);
	for (size_t i = 0; i < n; i++) {
		int e = r[i].err;
		if (!e) {
			e = vault_store_get(s, items[i].id, v);
			int linked = 0;
			if (!e && r[i].leader >= 0 && r[r[i].leader].ok)
				linked = restore_link(v, r[i].target, r[r[i].leader].target, o, st);
			if (linked < 0)
				e = linked;
			else if (!e && !linked)
				e = restore_one(s, v, r[i].target, o, st);
			if (e) {
				report(o, "failed", v, r[i].target, strlen(r[i].target), e);
				log_warn("restore: version %lld: %s", (long long)items[i].id, strerror(-e));
			}
		}
		if (e) {
			st->failed++;
			rc = rc ? rc : e;
		} else {
			r[i].ok = true;
		}
		if (o->after_each && o->after_each(o->hook_ctx, i + 1)) {
			stopped = true;
			break;
		}
	}
	for (size_t i = 0; i < n && !stopped; i++) {
		if (r[i].range_meta != (ssize_t)i || !r[i].ok)
			continue;
		int e = vault_store_get(s, items[i].id, v);
		if (!e)
			e = finish_ranges(v, r[i].target, o);
		if (e) {
			report(o, "failed", v, r[i].target, strlen(r[i].target), e);
			st->failed++;
			rc = rc ? rc : e;
		}
	}
	if (stopped)
		rc = -EINTR;
	if (o->report)
		fflush(o->report);
out:
	for (size_t i = 0; r && i < n; i++)
		free(r[i].target);
	free(r);
	free(v);
	return rc;
}

/* ---- by path ---- */

struct cand {
	int64_t id, saved_ns, range_off, mtime_ns;
	char *home;
	size_t home_len;
	bool range, suspect;
};

struct collect {
	struct vault_store *s;
	const struct vault_restore_opts *o;
	struct vault_restore_stats *st;
	const char *prefix;
	size_t prefix_len;
	struct cand *c;
	size_t n, cap;
};

static int collect_cb(void *ctx, const struct vault_version *v)
{
	struct collect *c = ctx;
	const char *home = v->orig_path_len ? v->orig_path : v->path;
	size_t hl = v->orig_path_len ? v->orig_path_len : v->path_len;
	if (hl < c->prefix_len || memcmp(home, c->prefix, c->prefix_len) != 0)
		return 0;
	/* Under a directory prefix, "/a/b" must not take in "/a/bc". */
	if (c->prefix_len && hl > c->prefix_len && c->prefix[c->prefix_len - 1] != '/' &&
	    home[c->prefix_len] != '/')
		return 0;
	if (!vault_restore_version_valid(c->s, v)) {
		c->st->stale_links++;
		return 0;
	}
	if (c->n == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 64;
		struct cand *p = realloc(c->c, nc * sizeof(*p));
		if (!p)
			return -ENOMEM;
		c->c = p;
		c->cap = nc;
	}
	struct cand *k = &c->c[c->n];
	memset(k, 0, sizeof(*k));
	k->home = malloc(hl ? hl : 1);
	if (!k->home)
		return -ENOMEM;
	memcpy(k->home, home, hl);
	k->home_len = hl;
	k->id = v->id;
	k->saved_ns = v->saved_ns;
	k->mtime_ns = v->mtime_ns;
	k->range = v->kind == VAULT_KIND_RANGE;
	k->range_off = k->range ? v->range_off : -1;
	for (size_t i = 0; i < c->o->nsuspects; i++)
		k->suspect |= c->o->suspects[i] == v->pid;
	c->n++;
	return 0;
}

static int cmp_home(const struct cand *a, const struct cand *b)
{
	size_t n = a->home_len < b->home_len ? a->home_len : b->home_len;
	int r = memcmp(a->home, b->home, n);
	return r ? r : (a->home_len > b->home_len) - (a->home_len < b->home_len);
}

static int cmp_cand(const void *x, const void *y)
{
	const struct cand *a = x, *b = y;
	int r = cmp_home(a, b);
	if (r)
		return r;
	if (a->range != b->range)
		return a->range - b->range;       /* whole versions first */
	if (a->range_off != b->range_off)
		return a->range_off < b->range_off ? -1 : 1;
	if (a->saved_ns != b->saved_ns)
		return (a->saved_ns > b->saved_ns) - (a->saved_ns < b->saved_ns);
	return (a->id > b->id) - (a->id < b->id);
}

enum pick_mode { PICK_AT, PICK_NEWEST, PICK_SUSPECT };

/* In one group (one home; its whole versions, or its ranges at one offset; saved order):
 * the version to restore, or -1. */
static ssize_t pick(const struct cand *c, size_t i, size_t j, enum pick_mode m, int64_t t)
{
	for (size_t k = i; k < j; k++) {
		if (m == PICK_SUSPECT && c[k].suspect && (!t || c[k].saved_ns < t))
			return (ssize_t)k;
		if (m == PICK_AT && c[k].saved_ns >= t)
			return (ssize_t)k;
	}
	return m == PICK_NEWEST ? (ssize_t)j - 1 : -1;
}

int vault_restore_by_path(struct vault_store *s, const char *prefix, size_t prefix_len,
			  int64_t before_ns, const struct vault_restore_opts *o,
			  struct vault_restore_stats *st)
{
	int rc;
	struct collect c = {.s = s, .o = o, .st = st, .prefix = prefix, .prefix_len = prefix_len};
	struct vault_restore_item *items = NULL;
	size_t ni = 0;
	enum pick_mode mode = o->nsuspects ? PICK_SUSPECT : before_ns > 0 ? PICK_AT : PICK_NEWEST;

	if ((rc = vault_store_list(s, prefix, prefix_len, 0, collect_cb, &c)))
		goto out;
	if (c.n)
		qsort(c.c, c.n, sizeof(*c.c), cmp_cand);
	items = calloc(c.n ? c.n : 1, sizeof(*items));
	if (!items) {
		rc = -ENOMEM;
		goto out;
	}
	/* Walk groups: one home path, then within it the whole versions and each range offset.
	 * A whole version is the file at one moment; a range saved before it holds bytes the
	 * whole one already shows changed (the earliest-first modes), one saved after it bytes
	 * changed later (newest mode). */
	int64_t whole_saved = 0;
	bool whole_chosen = false, skip_home = false;
	for (size_t i = 0; i < c.n;) {
		size_t j = i;
		while (j < c.n && cmp_home(&c.c[i], &c.c[j]) == 0 && c.c[j].range == c.c[i].range &&
		       c.c[j].range_off == c.c[i].range_off)
			j++;
		if (i == 0 || cmp_home(&c.c[i - 1], &c.c[i]) != 0)
			whole_chosen = skip_home = false;
		ssize_t p = skip_home ? -1 : pick(c.c, i, j, mode, before_ns);
		if (p >= 0) {
			struct cand *k = &c.c[p];
			if (!k->range) {
				if (mode == PICK_AT && k->mtime_ns > before_ns) {
					/* Written after the time without a save, or made after it:
					 * its content then is not known. */
					st->unknown++;
					char *t = strndup(k->home, k->home_len);
					if (t)
						report(o, "unknown", NULL, t, strlen(t), 0);
					free(t);
					skip_home = true;
				} else {
					whole_saved = k->saved_ns;
					whole_chosen = true;
					items[ni++].id = k->id;
				}
			} else if (!whole_chosen || (mode == PICK_NEWEST ? k->saved_ns > whole_saved
									 : k->saved_ns < whole_saved)) {
				items[ni++].id = k->id;
			}
		}
		i = j;
	}
	rc = vault_restore_items(s, items, ni, o, st);
out:
	for (size_t i = 0; i < c.n; i++)
		free(c.c[i].home);
	free(c.c);
	free(items);
	return rc;
}
