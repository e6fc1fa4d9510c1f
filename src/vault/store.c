/* store.c: the vault directory and its SQLite index.
 *
 * Layout: one flat directory per protected filesystem (".ward-vault" at its root by
 * default, so FICLONE and link() work: both need the same filesystem). It is flat on
 * purpose: the guard excludes the vault's own writes with one directory ignore mark with
 * FAN_EVENT_ON_CHILD, which covers direct children only.
 *   index.db (+ -wal, -shm)      the index
 *   v-<saved ns>-<seq>           one file per version (copy, reflink, hard link or range)
 *   .tmp-v-...                   a copy being written; removed at open after a crash
 *
 * Order of a save: temp file, (fsync if sync_copies), rename to the final name, insert the
 * row. A kill at any point leaves the index valid: a temp file or an unindexed final file
 * is garbage that vault_store_open() removes. The index runs in WAL mode with
 * synchronous=NORMAL: a crash of ward loses nothing committed; a power loss may lose the
 * last commits but never corrupts the index.
 *
 * Size accounting: a copy counts its allocated blocks, a reflink its full size (its extents
 * become the vault's own as soon as the original is overwritten), a range its length, a
 * hard link nothing (it only keeps alive what the filesystem already held). */
#include "vault/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

#define COPY_BUF (256 * 1024)

enum reflink_state { REFLINK_UNKNOWN = 0, REFLINK_YES, REFLINK_NO };

struct vault_store {
	char dir[WARD_PATH_MAX];
	int dirfd;                     /* O_PATH|O_DIRECTORY */
	struct vault_store_opts opts;
	sqlite3 *db;
	sqlite3_stmt *ins;
	pthread_mutex_t mu;            /* recursive: list callbacks may call back in */
	atomic_int reflink;
	atomic_uint_fast64_t seq;
	uint64_t bytes, versions;      /* under mu */
	struct vault_store_stats st;   /* under mu */
};

static const char *const kind_names[VAULT_KIND__COUNT] = {"copy", "reflink", "link", "range"};

const char *vault_kind_name(enum vault_kind k)
{
	return (unsigned)k < VAULT_KIND__COUNT ? kind_names[k] : "?";
}

int64_t vault_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t vault_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t ts_ns(struct timespec t)
{
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int sql_err(sqlite3 *db, const char *what)
{
	log_err("vault: %s: %s", what, sqlite3_errmsg(db));
	return -EIO;
}

static int exec_sql(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_err("vault: %s: %s", sql, msg ? msg : "?");
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS versions("
	" id INTEGER PRIMARY KEY, path BLOB NOT NULL, orig_path BLOB,"
	" dev INTEGER NOT NULL, ino INTEGER NOT NULL, size INTEGER NOT NULL,"
	" mode INTEGER, uid INTEGER, gid INTEGER, nlink INTEGER,"
	" atime_ns INTEGER, mtime_ns INTEGER, ctime_ns INTEGER, sha256 BLOB,"
	" saved_ns INTEGER NOT NULL, pid INTEGER, exe BLOB, kind INTEGER NOT NULL,"
	" range_off INTEGER, range_len INTEGER, incident INTEGER, epoch INTEGER,"
	" stored_bytes INTEGER NOT NULL, vname TEXT NOT NULL UNIQUE);"
	"CREATE INDEX IF NOT EXISTS versions_inode ON versions(dev, ino);"
	"CREATE INDEX IF NOT EXISTS versions_saved ON versions(saved_ns);"
	"CREATE TABLE IF NOT EXISTS incidents("
	" id INTEGER PRIMARY KEY, since_ns INTEGER NOT NULL, opened_ns INTEGER NOT NULL,"
	" closed_ns INTEGER);";

#define COLS "id, path, orig_path, dev, ino, size, mode, uid, gid, nlink, atime_ns, mtime_ns," \
	     " ctime_ns, sha256, saved_ns, pid, exe, kind, range_off, range_len, incident, epoch," \
	     " stored_bytes, vname"

/* A version is pinned while an open incident needs it. */
#define PINNED "(COALESCE(incident, 0) IN (SELECT id FROM incidents WHERE closed_ns IS NULL) OR" \
	       " saved_ns >= (SELECT COALESCE(MIN(since_ns), 9223372036854775807) FROM incidents" \
	       " WHERE closed_ns IS NULL))"

static size_t blob_copy(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
	const void *b = sqlite3_column_blob(st, col);
	size_t n = (size_t)sqlite3_column_bytes(st, col);
	if (n >= cap)
		n = cap - 1;
	if (b && n)
		memcpy(dst, b, n);
	dst[n] = '\0';
	return n;
}

static void row_to_version(sqlite3_stmt *st, struct vault_version *v)
{
	memset(v, 0, sizeof(*v));
	v->id = sqlite3_column_int64(st, 0);
	v->path_len = blob_copy(v->path, sizeof(v->path), st, 1);
	v->orig_path_len = blob_copy(v->orig_path, sizeof(v->orig_path), st, 2);
	v->dev = (uint64_t)sqlite3_column_int64(st, 3);
	v->ino = (uint64_t)sqlite3_column_int64(st, 4);
	v->size = sqlite3_column_int64(st, 5);
	v->mode = (uint32_t)sqlite3_column_int64(st, 6);
	v->uid = (uint32_t)sqlite3_column_int64(st, 7);
	v->gid = (uint32_t)sqlite3_column_int64(st, 8);
	v->nlink = (uint32_t)sqlite3_column_int64(st, 9);
	v->atime_ns = sqlite3_column_int64(st, 10);
	v->mtime_ns = sqlite3_column_int64(st, 11);
	v->ctime_ns = sqlite3_column_int64(st, 12);
	if (sqlite3_column_bytes(st, 13) == 32) {
		memcpy(v->sha256, sqlite3_column_blob(st, 13), 32);
		v->has_sha256 = true;
	}
	v->saved_ns = sqlite3_column_int64(st, 14);
	v->pid = (pid_t)sqlite3_column_int64(st, 15);
	blob_copy(v->exe, sizeof(v->exe), st, 16);
	int k = sqlite3_column_int(st, 17);
	v->kind = (k >= 0 && k < VAULT_KIND__COUNT) ? (enum vault_kind)k : VAULT_KIND_COPY;
	v->range_off = sqlite3_column_int64(st, 18);
	v->range_len = sqlite3_column_int64(st, 19);
	v->incident = sqlite3_column_int64(st, 20);
	v->epoch = (uint64_t)sqlite3_column_int64(st, 21);
	v->stored_bytes = (uint64_t)sqlite3_column_int64(st, 22);
	const unsigned char *vn = sqlite3_column_text(st, 23);
	snprintf(v->vname, sizeof(v->vname), "%s", vn ? (const char *)vn : "");
}

/* Removes what a crash left: temp files, and final files that no row names (killed
 * between rename and insert). Rows whose file vanished are dropped too. */
static int scrub(struct vault_store *s)
{
	int rc = 0;
	sqlite3_stmt *q = NULL;
	int fd = openat(s->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		goto out;
	}
	if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM versions WHERE vname = ?", -1, &q, NULL)) {
		rc = sql_err(s->db, "prepare scrub");
		goto out;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		bool tmp = strncmp(e->d_name, ".tmp-", 5) == 0;
		if (!tmp && strncmp(e->d_name, "v-", 2) != 0)
			continue;
		if (!tmp) {
			sqlite3_reset(q);
			sqlite3_bind_text(q, 1, e->d_name, -1, SQLITE_TRANSIENT);
			if (sqlite3_step(q) == SQLITE_ROW)
				continue;
		}
		if (unlinkat(s->dirfd, e->d_name, 0) == 0)
			s->st.orphans_removed++;
	}
	if (s->st.orphans_removed)
		log_warn("vault: %s: removed %" PRIu64 " files left by an interrupted save", s->dir,
			 s->st.orphans_removed);
out:
	sqlite3_finalize(q);
	if (d)
		closedir(d);
	return rc;
}

static int load_totals(struct vault_store *s)
{
	sqlite3_stmt *q = NULL;
	int rc = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT COUNT(*), COALESCE(SUM(stored_bytes),0) FROM versions",
			       -1, &q, NULL) ||
	    sqlite3_step(q) != SQLITE_ROW) {
		rc = sql_err(s->db, "totals");
		goto out;
	}
	s->versions = (uint64_t)sqlite3_column_int64(q, 0);
	s->bytes = (uint64_t)sqlite3_column_int64(q, 1);
out:
	sqlite3_finalize(q);
	return rc;
}

int vault_store_open(const char *dir, const struct vault_store_opts *opts, struct vault_store **out)
{
	int rc = 0;
	char dbpath[WARD_PATH_MAX + 32];
	struct vault_store *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->dirfd = -1;
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&s->mu, &ma);
	pthread_mutexattr_destroy(&ma);
	if (opts)
		s->opts = *opts;
	if (s->opts.no_reflink)
		atomic_store(&s->reflink, REFLINK_NO);
	if (snprintf(s->dir, sizeof(s->dir), "%s", dir) >= (int)sizeof(s->dir)) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		goto out;
	}
	s->dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0) {
		rc = -errno;
		goto out;
	}
	/* Only root reads the vault, whatever the umask made of an existing directory. */
	char self[64];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", s->dirfd);
	if (chmod(self, 0700) < 0) {
		rc = -errno;
		goto out;
	}
	snprintf(dbpath, sizeof(dbpath), "%s/" VAULT_INDEX_NAME, dir);
	if (sqlite3_open_v2(dbpath, &s->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
			    NULL) != SQLITE_OK) {
		rc = s->db ? sql_err(s->db, "open") : -ENOMEM;
		goto out;
	}
	sqlite3_busy_timeout(s->db, 5000);
	if ((rc = exec_sql(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")) ||
	    (rc = exec_sql(s->db, schema)))
		goto out;
	if (sqlite3_prepare_v2(s->db,
			       "INSERT INTO versions(path, orig_path, dev, ino, size, mode, uid, gid,"
			       " nlink, atime_ns, mtime_ns, ctime_ns, sha256, saved_ns, pid, exe, kind,"
			       " range_off, range_len, incident, epoch, stored_bytes, vname) VALUES"
			       " (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,"
			       "?20,?21,?22,?23)",
			       -1, &s->ins, NULL) != SQLITE_OK) {
		rc = sql_err(s->db, "prepare insert");
		goto out;
	}
	if ((rc = scrub(s)) || (rc = load_totals(s)))
		goto out;
	*out = s;
	s = NULL;
out:
	vault_store_close(s);
	return rc;
}

void vault_store_close(struct vault_store *s)
{
	if (!s)
		return;
	sqlite3_finalize(s->ins);
	if (s->db)
		sqlite3_close(s->db);
	if (s->dirfd >= 0)
		close(s->dirfd);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

int vault_store_dirfd(const struct vault_store *s) { return s->dirfd; }
const char *vault_store_dir(const struct vault_store *s) { return s->dir; }
void *vault_store_db(struct vault_store *s) { return s->db; }

static bool past(int64_t deadline_ns)
{
	return deadline_ns && vault_mono_ns() > deadline_ns;
}

static int write_all(int fd, const char *p, size_t n, int64_t off)
{
	while (n) {
		ssize_t w = pwrite(fd, p, n, off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

static const char zeros[64 * 1024];

static void hash_zeros(EVP_MD_CTX *sha, int64_t n)
{
	while (sha && n > 0) {
		size_t k = n > (int64_t)sizeof(zeros) ? sizeof(zeros) : (size_t)n;
		EVP_DigestUpdate(sha, zeros, k);
		n -= (int64_t)k;
	}
}

int vault_copy_range(int in, int out, int64_t off, int64_t len, int64_t out_off,
		     struct evp_md_ctx_st *sha, int64_t deadline_ns)
{
	int rc = 0;
	int64_t end = off + len, pos = off;
	char *buf = malloc(COPY_BUF);
	if (!buf)
		return -ENOMEM;
	while (pos < end) {
		/* Holes stay holes: the caller sizes the output with ftruncate. */
		off_t data = lseek(in, pos, SEEK_DATA);
		if (data < 0)
			data = errno == ENXIO ? end : pos;
		if (data > end)
			data = end;
		if (data > pos) {
			hash_zeros(sha, data - pos);
			pos = data;
			continue;
		}
		off_t hole = lseek(in, pos, SEEK_HOLE);
		if (hole < 0 || hole > end)
			hole = end;
		while (pos < hole) {
			if (past(deadline_ns)) {
				rc = -ETIMEDOUT;
				goto out;
			}
			size_t want = hole - pos > COPY_BUF ? COPY_BUF : (size_t)(hole - pos);
			ssize_t r = pread(in, buf, want, pos);
			if (r < 0) {
				if (errno == EINTR)
					continue;
				rc = -errno;
				goto out;
			}
			if (r == 0) {      /* shrank under us: the rest reads as zeros */
				hash_zeros(sha, end - pos);
				goto out;
			}
			if ((rc = write_all(out, buf, (size_t)r, out_off + (pos - off))))
				goto out;
			if (sha)
				EVP_DigestUpdate(sha, buf, (size_t)r);
			pos += r;
		}
	}
out:
	free(buf);
	return rc;
}

int vault_sha256_fd(int fd, uint8_t out[32])
{
	int rc = 0;
	char *buf = malloc(COPY_BUF);
	EVP_MD_CTX *sha = EVP_MD_CTX_new();
	int64_t pos = 0;
	if (!buf || !sha || !EVP_DigestInit_ex(sha, EVP_sha256(), NULL)) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t r = pread(fd, buf, COPY_BUF, pos);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		if (r == 0)
			break;
		EVP_DigestUpdate(sha, buf, (size_t)r);
		pos += r;
	}
	EVP_DigestFinal_ex(sha, out, NULL);
out:
	EVP_MD_CTX_free(sha);
	free(buf);
	return rc;
}

/* Reserves bytes of budget, pruning first if needed. -ENOSPC (counted, logged) when even
 * pruning cannot make room. */
static int reserve(struct vault_store *s, uint64_t need)
{
	int rc = 0;
	pthread_mutex_lock(&s->mu);
	if (s->opts.max_bytes && s->bytes + need > s->opts.max_bytes) {
		vault_store_prune(s, need);
		if (s->bytes + need > s->opts.max_bytes) {
			s->st.enospc++;
			/* Loud, but not once per event: every 1st, 10th, 100th... */
			uint64_t n = s->st.enospc;
			while (n % 10 == 0)
				n /= 10;
			if (n == 1)
				log_err("vault: %s is full (%" PRIu64 " of %" PRIu64 " bytes, %" PRIu64
					" more needed): %" PRIu64 " saves refused so far",
					s->dir, s->bytes, s->opts.max_bytes, need, s->st.enospc);
			rc = -ENOSPC;
			goto out;
		}
	}
	s->bytes += need;
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static void unreserve(struct vault_store *s, uint64_t n)
{
	pthread_mutex_lock(&s->mu);
	s->bytes = s->bytes >= n ? s->bytes - n : 0;
	pthread_mutex_unlock(&s->mu);
}

static void make_vname(struct vault_store *s, char *vn, size_t cap, int64_t saved_ns)
{
	uint64_t seq = atomic_fetch_add(&s->seq, 1);
	snprintf(vn, cap, "v-%016" PRIx64 "-%d-%" PRIu64, (uint64_t)saved_ns, (int)getpid(), seq);
}

/* The name this inode had when an untrusted actor first opened it in this epoch, if it
 * differs from path: how a file renamed away finds its way home. */
static void find_orig_path(struct vault_store *s, struct vault_version *v)
{
	sqlite3_stmt *q = NULL;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT path FROM versions WHERE dev=?1 AND ino=?2 AND kind=?3 AND"
			       " epoch=?4 ORDER BY id LIMIT 1",
			       -1, &q, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(q, 1, (int64_t)v->dev);
	sqlite3_bind_int64(q, 2, (int64_t)v->ino);
	sqlite3_bind_int(q, 3, VAULT_KIND_LINK);
	sqlite3_bind_int64(q, 4, (int64_t)v->epoch);
	if (sqlite3_step(q) == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(q, 0);
		if (n != v->path_len || memcmp(sqlite3_column_blob(q, 0), v->path, n) != 0)
			v->orig_path_len = blob_copy(v->orig_path, sizeof(v->orig_path), q, 0);
	}
out:
	sqlite3_finalize(q);
}

static int insert_row(struct vault_store *s, struct vault_version *v)
{
	int rc = 0;
	sqlite3_stmt *q = s->ins;
	pthread_mutex_lock(&s->mu);
	if (v->kind != VAULT_KIND_LINK)
		find_orig_path(s, v);
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	sqlite3_bind_blob(q, 1, v->path, (int)v->path_len, SQLITE_STATIC);
	if (v->orig_path_len)
		sqlite3_bind_blob(q, 2, v->orig_path, (int)v->orig_path_len, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, (int64_t)v->dev);
	sqlite3_bind_int64(q, 4, (int64_t)v->ino);
	sqlite3_bind_int64(q, 5, v->size);
	sqlite3_bind_int64(q, 6, v->mode);
	sqlite3_bind_int64(q, 7, v->uid);
	sqlite3_bind_int64(q, 8, v->gid);
	sqlite3_bind_int64(q, 9, v->nlink);
	sqlite3_bind_int64(q, 10, v->atime_ns);
	sqlite3_bind_int64(q, 11, v->mtime_ns);
	sqlite3_bind_int64(q, 12, v->ctime_ns);
	if (v->has_sha256)
		sqlite3_bind_blob(q, 13, v->sha256, 32, SQLITE_STATIC);
	sqlite3_bind_int64(q, 14, v->saved_ns);
	sqlite3_bind_int64(q, 15, v->pid);
	sqlite3_bind_blob(q, 16, v->exe, (int)strlen(v->exe), SQLITE_STATIC);
	sqlite3_bind_int(q, 17, v->kind);
	sqlite3_bind_int64(q, 18, v->range_off);
	sqlite3_bind_int64(q, 19, v->range_len);
	if (v->incident)
		sqlite3_bind_int64(q, 20, v->incident);
	sqlite3_bind_int64(q, 21, (int64_t)v->epoch);
	sqlite3_bind_int64(q, 22, (int64_t)v->stored_bytes);
	sqlite3_bind_text(q, 23, v->vname, -1, SQLITE_STATIC);
	if (sqlite3_step(q) != SQLITE_DONE) {
		rc = sql_err(s->db, "insert");
		goto out;
	}
	v->id = sqlite3_last_insert_rowid(s->db);
	s->versions++;
	s->st.saved[v->kind]++;
out:
	sqlite3_reset(q);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static int fill_meta(const struct vault_save_req *r, struct vault_version *v, struct stat *st)
{
	memset(v, 0, sizeof(*v));
	if (fstat(r->fd, st) < 0)
		return -errno;
	if (!S_ISREG(st->st_mode))
		return -EINVAL;
	size_t n = r->path_len ? r->path_len : strlen(r->path);
	if (n >= sizeof(v->path))
		return -ENAMETOOLONG;
	memcpy(v->path, r->path, n);
	v->path[n] = '\0';
	v->path_len = n;
	v->dev = st->st_dev;
	v->ino = st->st_ino;
	v->size = st->st_size;
	v->mode = st->st_mode;
	v->uid = st->st_uid;
	v->gid = st->st_gid;
	v->nlink = (uint32_t)st->st_nlink;
	v->atime_ns = ts_ns(st->st_atim);
	v->mtime_ns = ts_ns(st->st_mtim);
	v->ctime_ns = ts_ns(st->st_ctim);
	v->saved_ns = vault_now_ns();
	v->pid = r->pid;
	snprintf(v->exe, sizeof(v->exe), "%s", r->exe ? r->exe : "");
	v->incident = r->incident;
	v->epoch = r->epoch;
	return 0;
}

static void count_error(struct vault_store *s, int rc)
{
	pthread_mutex_lock(&s->mu);
	if (rc == -ETIMEDOUT)
		s->st.timeouts++;
	else if (rc != -ENOSPC)
		s->st.save_errors++;
	pthread_mutex_unlock(&s->mu);
}

static bool reflink_unsupported(int e)
{
	return e == EOPNOTSUPP || e == EXDEV || e == EINVAL || e == ENOTTY || e == ENOSYS;
}

/* The common body of whole and range saves: content [off, off+len) of r->fd. */
static int save_content(struct vault_store *s, const struct vault_save_req *r, bool range,
			int64_t *id_out)
{
	int rc, out = -1;
	bool reserved = false, renamed = false;
	struct vault_version v;
	struct stat st, ost;
	char tmp[VAULT_VNAME_MAX + 8];
	EVP_MD_CTX *sha = NULL;

	if ((rc = fill_meta(r, &v, &st)))
		goto out;
	int64_t off = 0, len = st.st_size;
	if (range) {
		off = r->range_off < 0 ? 0 : r->range_off;
		len = r->range_len;
		if (off > st.st_size)
			off = st.st_size;
		if (len < 0 || off + len > st.st_size)
			len = st.st_size - off;
		v.kind = VAULT_KIND_RANGE;
		v.range_off = off;
		v.range_len = len;
	}
	if ((rc = reserve(s, (uint64_t)len)))
		goto out;
	reserved = true;
	make_vname(s, v.vname, sizeof(v.vname), v.saved_ns);
	snprintf(tmp, sizeof(tmp), ".tmp-%s", v.vname);
	out = openat(s->dirfd, tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	if (out < 0) {
		rc = -errno;
		goto out;
	}
	bool cloned = false;
	if (atomic_load(&s->reflink) != REFLINK_NO && len > 0) {
		int e = 0;
		if (range) {
			struct file_clone_range cr = {.src_fd = r->fd, .src_offset = (uint64_t)off,
						      .src_length = (uint64_t)len, .dest_offset = 0};
			e = ioctl(out, FICLONERANGE, &cr) < 0 ? errno : 0;
		} else {
			e = ioctl(out, FICLONE, r->fd) < 0 ? errno : 0;
		}
		if (!e) {
			cloned = true;
			atomic_store(&s->reflink, REFLINK_YES);
		} else if (reflink_unsupported(e) && !range) {
			/* ext4, tmpfs: no reflink; decided once per store. A range clone may
			 * fail on alignment alone, so only a whole-file failure decides. */
			atomic_store(&s->reflink, REFLINK_NO);
		}
	}
	if (!cloned) {
		sha = range ? NULL : EVP_MD_CTX_new();
		if (sha && !EVP_DigestInit_ex(sha, EVP_sha256(), NULL)) {
			rc = -ENOMEM;
			goto out;
		}
		if ((rc = vault_copy_range(r->fd, out, off, len, 0, sha, r->deadline_ns)))
			goto out;
		if (ftruncate(out, len) < 0) {
			rc = -errno;
			goto out;
		}
		if (sha) {
			EVP_DigestFinal_ex(sha, v.sha256, NULL);
			v.has_sha256 = true;
		}
	}
	if (!range)
		v.kind = cloned ? VAULT_KIND_REFLINK : VAULT_KIND_COPY;
	if (s->opts.sync_copies && fsync(out) < 0) {
		rc = -errno;
		goto out;
	}
	if (fstat(out, &ost) < 0) {
		rc = -errno;
		goto out;
	}
	v.stored_bytes = v.kind == VAULT_KIND_COPY ? (uint64_t)ost.st_blocks * 512 : (uint64_t)len;
	if (renameat(s->dirfd, tmp, s->dirfd, v.vname) < 0) {
		rc = -errno;
		goto out;
	}
	renamed = true;
	if ((rc = insert_row(s, &v)))
		goto out;
	/* Settle the reservation to what the version really holds. */
	pthread_mutex_lock(&s->mu);
	s->bytes = s->bytes - (uint64_t)len + v.stored_bytes;
	pthread_mutex_unlock(&s->mu);
	reserved = false;
	if (id_out)
		*id_out = v.id;
out:
	EVP_MD_CTX_free(sha);
	if (out >= 0)
		close(out);
	if (rc) {
		if (out >= 0)
			unlinkat(s->dirfd, renamed ? v.vname : tmp, 0);
		if (reserved)
			unreserve(s, (uint64_t)len);
		count_error(s, rc);
	}
	return rc;
}

int vault_store_save(struct vault_store *s, const struct vault_save_req *r, int64_t *id_out)
{
	return save_content(s, r, false, id_out);
}

int vault_store_save_range(struct vault_store *s, const struct vault_save_req *r, int64_t *id_out)
{
	return save_content(s, r, true, id_out);
}

int vault_store_link(struct vault_store *s, const struct vault_save_req *r, int64_t *id_out)
{
	int rc;
	struct vault_version v;
	struct stat st;
	char proc[64];
	sqlite3_stmt *q = NULL;

	if ((rc = fill_meta(r, &v, &st)))
		goto out;
	v.kind = VAULT_KIND_LINK;
	/* The same name of the same unchanged inode is already kept: nothing to add. */
	pthread_mutex_lock(&s->mu);
	if (sqlite3_prepare_v2(s->db,
			       "SELECT id FROM versions WHERE dev=?1 AND ino=?2 AND kind=?3 AND"
			       " path=?4 AND mtime_ns=?5 AND size=?6 LIMIT 1",
			       -1, &q, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(q, 1, (int64_t)v.dev);
		sqlite3_bind_int64(q, 2, (int64_t)v.ino);
		sqlite3_bind_int(q, 3, VAULT_KIND_LINK);
		sqlite3_bind_blob(q, 4, v.path, (int)v.path_len, SQLITE_STATIC);
		sqlite3_bind_int64(q, 5, v.mtime_ns);
		sqlite3_bind_int64(q, 6, v.size);
		if (sqlite3_step(q) == SQLITE_ROW) {
			if (id_out)
				*id_out = sqlite3_column_int64(q, 0);
			pthread_mutex_unlock(&s->mu);
			goto out;
		}
	}
	pthread_mutex_unlock(&s->mu);
	make_vname(s, v.vname, sizeof(v.vname), v.saved_ns);
	/* linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; the /proc link with
	 * AT_SYMLINK_FOLLOW works for any fd of a file that still has a name. */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", r->fd);
	if (linkat(AT_FDCWD, proc, s->dirfd, v.vname, AT_SYMLINK_FOLLOW) < 0) {
		rc = -errno;
		goto out;
	}
	if ((rc = insert_row(s, &v))) {
		unlinkat(s->dirfd, v.vname, 0);
		goto out;
	}
	if (id_out)
		*id_out = v.id;
out:
	sqlite3_finalize(q);
	if (rc)
		count_error(s, rc);
	return rc;
}

int vault_store_get(struct vault_store *s, int64_t id, struct vault_version *v)
{
	int rc = 0;
	sqlite3_stmt *q = NULL;
	pthread_mutex_lock(&s->mu);
	if (sqlite3_prepare_v2(s->db, "SELECT " COLS " FROM versions WHERE id=?", -1, &q, NULL)) {
		rc = sql_err(s->db, "get");
		goto out;
	}
	sqlite3_bind_int64(q, 1, id);
	int r = sqlite3_step(q);
	if (r == SQLITE_ROW)
		row_to_version(q, v);
	else
		rc = r == SQLITE_DONE ? -ENOENT : sql_err(s->db, "get");
out:
	sqlite3_finalize(q);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int vault_store_open_version(struct vault_store *s, const struct vault_version *v, int *fd_out)
{
	if (strchr(v->vname, '/') || v->vname[0] == '\0' || v->vname[0] == '.')
		return -EINVAL;
	int fd = openat(s->dirfd, v->vname, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	*fd_out = fd;
	return 0;
}

int vault_store_list(struct vault_store *s, const char *prefix, size_t prefix_len,
		     int64_t before_ns, vault_version_cb cb, void *ctx)
{
	int rc = 0;
	sqlite3_stmt *q = NULL;
	struct vault_version *v = malloc(sizeof(*v));
	if (!v)
		return -ENOMEM;
	pthread_mutex_lock(&s->mu);
	if (sqlite3_prepare_v2(s->db,
			       "SELECT " COLS " FROM versions WHERE (?1 = 0 OR"
			       " substr(path, 1, ?1) = ?2 OR substr(orig_path, 1, ?1) = ?2)"
			       " AND (?3 = 0 OR saved_ns < ?3) ORDER BY id",
			       -1, &q, NULL)) {
		rc = sql_err(s->db, "list");
		goto out;
	}
	sqlite3_bind_int64(q, 1, (int64_t)prefix_len);
	sqlite3_bind_blob(q, 2, prefix ? prefix : "", (int)prefix_len, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, before_ns);
	int r;
	while ((r = sqlite3_step(q)) == SQLITE_ROW) {
		row_to_version(q, v);
		if ((rc = cb(ctx, v)))
			goto out;
	}
	if (r != SQLITE_DONE)
		rc = sql_err(s->db, "list");
out:
	sqlite3_finalize(q);
	pthread_mutex_unlock(&s->mu);
	free(v);
	return rc;
}

int vault_store_incident_open(struct vault_store *s, int64_t since_ns, int64_t *id_out)
{
	int rc = 0;
	sqlite3_stmt *q = NULL;
	pthread_mutex_lock(&s->mu);
	if (sqlite3_prepare_v2(s->db, "INSERT INTO incidents(since_ns, opened_ns) VALUES(?,?)", -1,
			       &q, NULL) != SQLITE_OK) {
		rc = sql_err(s->db, "incident");
		goto out;
	}
	sqlite3_bind_int64(q, 1, since_ns);
	sqlite3_bind_int64(q, 2, vault_now_ns());
	if (sqlite3_step(q) != SQLITE_DONE) {
		rc = sql_err(s->db, "incident");
		goto out;
	}
	if (id_out)
		*id_out = sqlite3_last_insert_rowid(s->db);
out:
	sqlite3_finalize(q);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int vault_store_incident_close(struct vault_store *s, int64_t id)
{
	int rc = 0;
	sqlite3_stmt *q = NULL;
	pthread_mutex_lock(&s->mu);
	if (sqlite3_prepare_v2(s->db, "UPDATE incidents SET closed_ns=? WHERE id=? AND closed_ns IS NULL",
			       -1, &q, NULL) != SQLITE_OK) {
		rc = sql_err(s->db, "incident close");
		goto out;
	}
	sqlite3_bind_int64(q, 1, vault_now_ns());
	sqlite3_bind_int64(q, 2, id);
	if (sqlite3_step(q) != SQLITE_DONE)
		rc = sql_err(s->db, "incident close");
	else if (sqlite3_changes(s->db) == 0)
		rc = -ENOENT;
out:
	sqlite3_finalize(q);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* Deletes under mu (held by the caller or taken here: the mutex is recursive). */
int vault_store_delete(struct vault_store *s, int64_t id)
{
	int rc = 0;
	sqlite3_stmt *q = NULL, *d = NULL;
	pthread_mutex_lock(&s->mu);
	if (sqlite3_prepare_v2(s->db, "SELECT vname, stored_bytes FROM versions WHERE id=?", -1, &q,
			       NULL) ||
	    sqlite3_prepare_v2(s->db, "DELETE FROM versions WHERE id=?", -1, &d, NULL)) {
		rc = sql_err(s->db, "delete");
		goto out;
	}
	sqlite3_bind_int64(q, 1, id);
	if (sqlite3_step(q) != SQLITE_ROW) {
		rc = -ENOENT;
		goto out;
	}
	char vname[VAULT_VNAME_MAX];
	snprintf(vname, sizeof(vname), "%s", (const char *)sqlite3_column_text(q, 0));
	uint64_t sb = (uint64_t)sqlite3_column_int64(q, 1);
	sqlite3_bind_int64(d, 1, id);
	if (sqlite3_step(d) != SQLITE_DONE) {
		rc = sql_err(s->db, "delete");
		goto out;
	}
	/* Row first: a crash now leaves an unindexed file, which the next open removes. */
	if (vname[0] && vname[0] != '.' && !strchr(vname, '/'))
		unlinkat(s->dirfd, vname, 0);
	s->bytes = s->bytes >= sb ? s->bytes - sb : 0;
	s->versions = s->versions ? s->versions - 1 : 0;
	s->st.pruned++;
out:
	sqlite3_finalize(q);
	sqlite3_finalize(d);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* Collects up to cap ids for a query (bounded so the delete loop never holds a cursor). */
static int collect_ids(struct vault_store *s, const char *sql, int64_t arg, int64_t *ids,
		       uint64_t *bytes, size_t cap, size_t *n)
{
	sqlite3_stmt *q = NULL;
	int rc = 0;
	*n = 0;
	if (sqlite3_prepare_v2(s->db, sql, -1, &q, NULL)) {
		rc = sql_err(s->db, "prune");
		goto out;
	}
	sqlite3_bind_int64(q, 1, arg);
	while (*n < cap && sqlite3_step(q) == SQLITE_ROW) {
		ids[*n] = sqlite3_column_int64(q, 0);
		bytes[*n] = (uint64_t)sqlite3_column_int64(q, 1);
		(*n)++;
	}
out:
	sqlite3_finalize(q);
	return rc;
}

int vault_store_prune(struct vault_store *s, uint64_t need_bytes)
{
	enum { BATCH = 256 };
	int64_t ids[BATCH];
	uint64_t bytes[BATCH];
	size_t n;
	int rc = 0, dropped = 0;
	pthread_mutex_lock(&s->mu);
	if (s->opts.max_age_s > 0) {
		int64_t cutoff = vault_now_ns() - s->opts.max_age_s * 1000000000LL;
		do {
			if ((rc = collect_ids(s, "SELECT id, stored_bytes FROM versions WHERE"
						 " saved_ns < ?1 AND NOT " PINNED " ORDER BY id LIMIT 256",
					      cutoff, ids, bytes, BATCH, &n)))
				goto out;
			for (size_t i = 0; i < n; i++)
				if (vault_store_delete(s, ids[i]) == 0)
					dropped++;
		} while (n == BATCH);
	}
	while (s->opts.max_bytes && s->bytes + need_bytes > s->opts.max_bytes) {
		if ((rc = collect_ids(s, "SELECT id, stored_bytes FROM versions WHERE"
					 " stored_bytes > ?1 AND NOT " PINNED " ORDER BY id LIMIT 256",
				      0, ids, bytes, BATCH, &n)))
			goto out;
		int before = dropped;
		for (size_t i = 0; i < n && s->bytes + need_bytes > s->opts.max_bytes; i++)
			if (vault_store_delete(s, ids[i]) == 0)
				dropped++;
		if (dropped == before)      /* nothing unpinned left (or deletes fail) */
			break;
	}
out:
	pthread_mutex_unlock(&s->mu);
	return rc ? rc : dropped;
}

void vault_store_stats(struct vault_store *s, struct vault_store_stats *out)
{
	pthread_mutex_lock(&s->mu);
	*out = s->st;
	out->versions = s->versions;
	out->bytes = s->bytes;
	pthread_mutex_unlock(&s->mu);
}
