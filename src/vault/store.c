/* store.c: the vault directory and its SQLite index.
 *
 * Layout: one flat directory per protected filesystem (".ward-vault" at its root by
 * default, so FICLONE and link() work: both need the same filesystem). It is flat on
 * purpose: the guard excludes the vault's own writes with one directory ignore mark with
 * FAN_EVENT_ON_CHILD, which covers direct children only.
 *   index.db (+ -wal, -shm)      the index
 *   pending.0, pending.1         rows saved but not yet committed (deferred saves)
 *   v-<saved ns>-<seq>           one file per version (copy, reflink, hard link or range)
 *   .tmp-v-...                   a copy being written (when O_TMPFILE is not available)
 *
 * Order of a save: an unnamed O_TMPFILE (or a ".tmp-" name), (fsync if sync_copies), a
 * link (or rename) to the final name, then the row. A kill at any point leaves the index
 * valid: a temp file or an unindexed final file is garbage that vault_store_open() removes.
 * The index runs in WAL mode with synchronous=NORMAL: a crash of ward loses nothing
 * committed; a power loss may lose the last commits but never corrupts the index.
 *
 * Deferred rows (vault_save_req.defer_index, what the guard asks for). A commit costs
 * ~8 page writes and a few lock calls, and every ~120 commits SQLite's automatic
 * checkpoint fsyncs while holding the connection: measured on the guard's benchmark, the
 * writers waiting for saves saw p99 ~27 ms, max ~42 ms. So a deferred save appends its row,
 * serialized and checksummed, to a pending log with one write() (no fsync: the same
 * durability as WAL with synchronous=NORMAL, it survives a kill of ward) and returns; a
 * store thread commits the pending rows in one transaction every few ms (or when 64 wait),
 * then truncates the log. Two logs alternate so that appends never wait for a commit.
 * vault_store_open() replays both (INSERT OR IGNORE: a row committed but not yet cleared
 * from the log is not doubled; a torn last record is ignored) before it removes unindexed
 * files. Every read of the index (get, list, stats, prune) commits pending rows first.
 * Checkpoints run in that thread on a second connection, outside the store's mutex.
 * The same thread keeps a few O_TMPFILE files open in the vault, so that a save opens
 * nothing (an open in the vault is a permission round trip through the guard's vault group).
 *
 * Size accounting: a copy counts its allocated blocks, a reflink its full size (its extents
 * become the vault's own as soon as the original is overwritten), a range its length, a
 * hard link nothing (it only keeps alive what the filesystem already held).
 *
 * Seal (seal.c): the directory is append-only except while the store removes names (open,
 * prune, delete, a failed save); a copy, reflink or range becomes immutable once indexed. A
 * hard link is the user's own inode: never sealed. */
#include "vault/store.h"
#include "core/io.h"

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
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "vault/seal.h"

#define COPY_BUF (256 * 1024)

enum reflink_state { REFLINK_UNKNOWN = 0, REFLINK_YES, REFLINK_NO };

#define POOL_MAX 64             /* spare O_TMPFILE files kept open */
#define FLUSH_MS 5              /* pending rows wait at most this long for their commit */
#define FLUSH_ROWS 64           /* ... or until this many wait */
#define CKPT_PAGES 2000         /* checkpoint when the WAL holds this many pages */

struct pbuf {
	char *p;
	size_t len, cap, rows;
};

struct vault_store {
	char dir[WARD_PATH_MAX];
	int dirfd;                     /* O_PATH|O_DIRECTORY */
	struct vault_store_opts opts;
	sqlite3 *db, *ckdb;            /* ckdb: checkpoints only, used by the store thread */
	sqlite3_stmt *ins, *ins_ignore, *q_orig, *q_link;
	pthread_mutex_t mu;            /* recursive: list callbacks may call back in. db, counters */
	atomic_int reflink;
	atomic_uint_fast64_t seq;
	uint64_t versions;             /* under mu */
	struct vault_store_stats st;   /* under mu */
	_Atomic int wal_pages;
	pid_t pid;                     /* in version names: unique across restarts with saved_ns */

	/* Under pmu: deferred rows, the log they go to, the tmpfile pool, the budget. Never
	 * held while waiting for the db: a save takes pmu only. */
	pthread_mutex_t pmu;
	pthread_cond_t pcv;
	struct pbuf pend;
	int plog[2], pcur;
	int pool[POOL_MAX];
	unsigned npool;
	bool tmpfile_ok, stopping, thread_started;
	uint64_t bytes;
	pthread_t thread;

	struct vault_seal seal;        /* the directory and finished versions: seal.h */
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
	if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM versions LIMIT 1", -1, &q, NULL)) {
		rc = sql_err(s->db, "prepare scrub");
		goto out;
	}
	/* An index with no rows beside versions is not a crash's leftover but a lost (or
	 * removed) index: removing every version would finish an attacker's work. */
	bool empty = sqlite3_step(q) != SQLITE_ROW;
	uint64_t kept = 0;
	sqlite3_finalize(q);
	q = NULL;
	if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM versions WHERE vname = ?", -1, &q, NULL)) {
		rc = sql_err(s->db, "prepare scrub");
		goto out;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		bool tmp = strncmp(e->d_name, ".tmp-", 5) == 0;
		if (!tmp && strncmp(e->d_name, "v-", 2) != 0)
			continue;
		if (!tmp && empty) {
			kept++;
			continue;
		}
		if (!tmp) {
			sqlite3_reset(q);
			sqlite3_bind_text(q, 1, e->d_name, -1, SQLITE_TRANSIENT);
			if (sqlite3_step(q) == SQLITE_ROW)
				continue;
		}
		if (vault_seal_unlink(&s->seal, e->d_name) == 0)  /* unsealed during open */
			s->st.orphans_removed++;
	}
	if (s->st.orphans_removed)
		log_warn("vault: %s: removed %" PRIu64 " files left by an interrupted save", s->dir,
			 s->st.orphans_removed);
	if (kept)
		log_err("vault: %s: the index is empty but %" PRIu64 " versions are there: it was lost "
			"or removed; the versions are kept, restore cannot use them", s->dir, kept);
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

/* ---- pending rows: serialized versions, appended to a log, committed in batches ---- */

#define REC_MAGIC 0x31505657u          /* "WVP1" */
struct rec_hdr {
	uint32_t magic, len, sum;
};

static uint32_t fnv1a(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

static bool pb_put(struct pbuf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t nc = b->cap ? b->cap * 2 : 65536;
		while (nc < b->len + n)
			nc *= 2;
		char *q = realloc(b->p, nc);
		if (!q)
			return false;
		b->p = q;
		b->cap = nc;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return true;
}

static bool pb_str(struct pbuf *b, const char *p, size_t n)
{
	uint32_t l = (uint32_t)n;
	return pb_put(b, &l, sizeof(l)) && pb_put(b, p, n);
}

/* One record: header, then the fixed fields, then path, orig_path, exe, vname. */
static bool rec_encode(struct pbuf *b, const struct vault_version *v)
{
	struct rec_hdr h = {.magic = REC_MAGIC};
	size_t start = b->len;
	int64_t f[18] = {(int64_t)v->dev, (int64_t)v->ino, v->size, v->mode, v->uid, v->gid,
			 v->nlink, v->atime_ns, v->mtime_ns, v->ctime_ns, v->saved_ns, v->pid,
			 v->kind, v->range_off, v->range_len, v->incident, (int64_t)v->epoch,
			 (int64_t)v->stored_bytes};
	uint8_t has = v->has_sha256;
	if (!pb_put(b, &h, sizeof(h)) || !pb_put(b, f, sizeof(f)) || !pb_put(b, &has, 1) ||
	    !pb_put(b, v->sha256, 32) || !pb_str(b, v->path, v->path_len) ||
	    !pb_str(b, v->orig_path, v->orig_path_len) || !pb_str(b, v->exe, strlen(v->exe)) ||
	    !pb_str(b, v->vname, strlen(v->vname))) {
		b->len = start;
		return false;
	}
	/* Records follow each other unaligned: the header is copied, not cast. */
	h.len = (uint32_t)(b->len - start - sizeof(h));
	h.sum = fnv1a(b->p + start + sizeof(h), h.len);
	memcpy(b->p + start, &h, sizeof(h));
	return true;
}

static bool take_str(const char **p, const char *end, char *dst, size_t cap, size_t *out_len)
{
	uint32_t l;
	if (end - *p < (ptrdiff_t)sizeof(l))
		return false;
	memcpy(&l, *p, sizeof(l));
	*p += sizeof(l);
	if (l >= cap || end - *p < (ptrdiff_t)l)
		return false;
	memcpy(dst, *p, l);
	dst[l] = '\0';
	*p += l;
	if (out_len)
		*out_len = l;
	return true;
}

/* Decodes the record at *p (advancing it). False at the end or at a torn/corrupt record. */
static bool rec_decode(const char **p, const char *end, struct vault_version *v)
{
	struct rec_hdr h;
	if (end - *p < (ptrdiff_t)sizeof(h))
		return false;
	memcpy(&h, *p, sizeof(h));
	const char *body = *p + sizeof(h);
	if (h.magic != REC_MAGIC || end - body < (ptrdiff_t)h.len || fnv1a(body, h.len) != h.sum)
		return false;
	const char *q = body, *bend = body + h.len;
	int64_t f[18];
	uint8_t has;
	memset(v, 0, sizeof(*v));
	if (bend - q < (ptrdiff_t)(sizeof(f) + 1 + 32))
		return false;
	memcpy(f, q, sizeof(f));
	q += sizeof(f);
	memcpy(&has, q, 1);
	q += 1;
	memcpy(v->sha256, q, 32);
	q += 32;
	if (!take_str(&q, bend, v->path, sizeof(v->path), &v->path_len) ||
	    !take_str(&q, bend, v->orig_path, sizeof(v->orig_path), &v->orig_path_len) ||
	    !take_str(&q, bend, v->exe, sizeof(v->exe), NULL) ||
	    !take_str(&q, bend, v->vname, sizeof(v->vname), NULL))
		return false;
	v->dev = (uint64_t)f[0];
	v->ino = (uint64_t)f[1];
	v->size = f[2];
	v->mode = (uint32_t)f[3];
	v->uid = (uint32_t)f[4];
	v->gid = (uint32_t)f[5];
	v->nlink = (uint32_t)f[6];
	v->atime_ns = f[7];
	v->mtime_ns = f[8];
	v->ctime_ns = f[9];
	v->saved_ns = f[10];
	v->pid = (pid_t)f[11];
	v->kind = f[12] >= 0 && f[12] < VAULT_KIND__COUNT ? (enum vault_kind)f[12] : VAULT_KIND_COPY;
	v->range_off = f[13];
	v->range_len = f[14];
	v->incident = f[15];
	v->epoch = (uint64_t)f[16];
	v->stored_bytes = (uint64_t)f[17];
	v->has_sha256 = has;
	*p = bend;
	return true;
}

static void bind_version(sqlite3_stmt *q, const struct vault_version *v)
{
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
}

/* Inserts every record of buf (INSERT OR IGNORE) in one transaction, under mu. replay: a
 * record whose file is gone is skipped. Returns the rows added, or -errno. */
static int insert_records(struct vault_store *s, const char *buf, size_t len, bool replay)
{
	struct vault_version *v = malloc(sizeof(*v));
	if (!v)
		return -ENOMEM;
	int added = 0, rc = 0;
	if (exec_sql(s->db, "BEGIN")) {
		free(v);
		return -EIO;
	}
	const char *p = buf, *end = buf + len;
	while (p < end && rec_decode(&p, end, v)) {
		struct stat st;
		if (replay && (v->vname[0] == '.' || strchr(v->vname, '/') ||
			       fstatat(s->dirfd, v->vname, &st, AT_SYMLINK_NOFOLLOW) < 0))
			continue;
		bind_version(s->ins_ignore, v);
		if (sqlite3_step(s->ins_ignore) != SQLITE_DONE) {
			rc = sql_err(s->db, "insert pending");
			break;
		}
		if (sqlite3_changes(s->db) > 0) {
			added++;
			s->versions++;
			s->st.saved[v->kind]++;
			if (replay)
				s->st.replayed++;
		}
	}
	sqlite3_reset(s->ins_ignore);
	if (rc || exec_sql(s->db, "COMMIT")) {
		exec_sql(s->db, "ROLLBACK");
		rc = rc ? rc : -EIO;
	}
	free(v);
	return rc ? rc : added;
}

/* Commits the pending rows (caller holds mu). Appends go to the other log meanwhile. */
static int flush_locked(struct vault_store *s)
{
	pthread_mutex_lock(&s->pmu);
	if (!s->pend.rows) {
		pthread_mutex_unlock(&s->pmu);
		return 0;
	}
	struct pbuf b = s->pend;
	int log = s->plog[s->pcur];
	memset(&s->pend, 0, sizeof(s->pend));
	s->pcur ^= 1;
	pthread_mutex_unlock(&s->pmu);

	int rc = insert_records(s, b.p, b.len, false);
	if (rc >= 0) {
		if (log >= 0 && ftruncate(log, 0) < 0)
			log_warn("vault: %s: cannot clear the pending log: %s", s->dir, strerror(errno));
	} else {
		/* Keep them: back into the buffer and the current log, retried next time. */
		log_err("vault: %s: committing %zu pending rows failed; retrying", s->dir, b.rows);
		pthread_mutex_lock(&s->pmu);
		if (s->plog[s->pcur] >= 0 && write(s->plog[s->pcur], b.p, b.len) != (ssize_t)b.len)
			log_err("vault: %s: pending log: %s", s->dir, strerror(errno));
		if (pb_put(&s->pend, b.p, b.len))
			s->pend.rows += b.rows;
		pthread_mutex_unlock(&s->pmu);
	}
	free(b.p);
	return rc < 0 ? rc : 0;
}

/* At open: rows of a previous run that were saved but not committed. */
static int replay_logs(struct vault_store *s)
{
	int rc = 0;
	for (int i = 0; i < 2 && !rc; i++) {
		int fd = s->plog[i];
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0 || st.st_size == 0)
			continue;
		char *buf = malloc((size_t)st.st_size);
		if (!buf)
			return -ENOMEM;
		ssize_t n = pread(fd, buf, (size_t)st.st_size, 0);
		if (n > 0) {
			int r = insert_records(s, buf, (size_t)n, true);
			rc = r < 0 ? r : 0;
		}
		free(buf);
		if (!rc && ftruncate(fd, 0) < 0)
			rc = -errno;
	}
	if (s->st.replayed)
		log_warn("vault: %s: %" PRIu64 " versions saved before a crash were indexed now", s->dir,
			 s->st.replayed);
	return rc;
}

/* ---- the store thread: commits, checkpoints, spare temp files ---- */

static int wal_hook(void *ctx, sqlite3 *db, const char *name, int pages)
{
	struct vault_store *s = ctx;
	atomic_store(&s->wal_pages, pages);
	return SQLITE_OK;
}

static void refill_pool(struct vault_store *s)
{
	for (;;) {
		pthread_mutex_lock(&s->pmu);
		bool want = s->tmpfile_ok && !s->stopping && s->npool < POOL_MAX;
		pthread_mutex_unlock(&s->pmu);
		if (!want)
			return;
		int fd = openat(s->dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		pthread_mutex_lock(&s->pmu);
		if (fd < 0) {
			s->tmpfile_ok = false;     /* the filesystem cannot: named temp files */
		} else if (s->npool < POOL_MAX && !s->stopping) {
			s->pool[s->npool++] = fd;
			fd = -1;
		}
		pthread_mutex_unlock(&s->pmu);
		if (fd >= 0)
			close(fd);
	}
}

static void *store_main(void *arg)
{
	struct vault_store *s = arg;
	pthread_setname_np(pthread_self(), "ward-vault");
	pthread_mutex_lock(&s->pmu);
	while (!s->stopping) {
		if (s->pend.rows < FLUSH_ROWS && (s->npool >= POOL_MAX * 3 / 4 || !s->tmpfile_ok)) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += FLUSH_MS * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&s->pcv, &s->pmu, &ts);
		}
		if (s->stopping)
			break;
		bool rows = s->pend.rows > 0;
		pthread_mutex_unlock(&s->pmu);
		if (rows) {
			pthread_mutex_lock(&s->mu);
			flush_locked(s);
			pthread_mutex_unlock(&s->mu);
		}
		if (s->ckdb && atomic_load(&s->wal_pages) >= CKPT_PAGES) {
			/* PASSIVE: never waits for the writer; the next one restarts the WAL. */
			if (sqlite3_wal_checkpoint_v2(s->ckdb, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) ==
			    SQLITE_OK)
				atomic_store(&s->wal_pages, 0);
		}
		refill_pool(s);
		pthread_mutex_lock(&s->pmu);
	}
	pthread_mutex_unlock(&s->pmu);
	return NULL;
}

/* The -wal and -shm files stay when the last connection closes (SQLite deletes them
 * otherwise): the sealed directory lets no name go, and a failed delete at close would be
 * an I/O error in the log at every stop. Set before the WAL is first opened. */
static int persist_wal(sqlite3 *db)
{
	int one = 1;
	if (sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &one) != SQLITE_OK)
		return sql_err(db, "persist WAL");
	return 0;
}

int vault_store_open(const char *dir, const struct vault_store_opts *opts, struct vault_store **out)
{
	int rc = 0;
	char dbpath[WARD_PATH_MAX + 32];
	struct vault_store *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->dirfd = s->plog[0] = s->plog[1] = s->seal.dirfd = -1;
	s->pid = getpid();
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&s->mu, &ma);
	pthread_mutexattr_destroy(&ma);
	pthread_mutex_init(&s->pmu, NULL);
	pthread_cond_init(&s->pcv, NULL);
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
	/* Unsealed until the index is set up: a new index goes through a rollback journal,
	 * a crashed one may leave one to roll back and remove, and an append-only directory
	 * refuses chmod. */
	if ((rc = vault_seal_init(&s->seal, dir)))
		goto out;
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
	if ((rc = persist_wal(s->db)) ||
	    (rc = exec_sql(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")) ||
	    (rc = exec_sql(s->db, schema)))
		goto out;
	static const char cols[] = "INTO versions(path, orig_path, dev, ino, size, mode, uid, gid,"
				   " nlink, atime_ns, mtime_ns, ctime_ns, sha256, saved_ns, pid, exe, kind,"
				   " range_off, range_len, incident, epoch, stored_bytes, vname) VALUES"
				   " (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,"
				   "?20,?21,?22,?23)";
	char sql[512];
	snprintf(sql, sizeof(sql), "INSERT %s", cols);
	if (sqlite3_prepare_v2(s->db, sql, -1, &s->ins, NULL) != SQLITE_OK) {
		rc = sql_err(s->db, "prepare insert");
		goto out;
	}
	snprintf(sql, sizeof(sql), "INSERT OR IGNORE %s", cols);
	if (sqlite3_prepare_v2(s->db, sql, -1, &s->ins_ignore, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db,
			       "SELECT path FROM versions WHERE dev=?1 AND ino=?2 AND kind=?3 AND"
			       " epoch=?4 ORDER BY id LIMIT 1",
			       -1, &s->q_orig, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db,
			       "SELECT id FROM versions WHERE dev=?1 AND ino=?2 AND kind=?3 AND"
			       " path=?4 AND mtime_ns=?5 AND size=?6 LIMIT 1",
			       -1, &s->q_link, NULL) != SQLITE_OK) {
		rc = sql_err(s->db, "prepare");
		goto out;
	}
	static const char *const plog_names[2] = {"pending.0", "pending.1"};
	for (int i = 0; i < 2; i++) {
		s->plog[i] = openat(s->dirfd, plog_names[i], O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (s->plog[i] < 0) {
			rc = -errno;
			goto out;
		}
	}
	if ((rc = replay_logs(s)) || (rc = scrub(s)) || (rc = load_totals(s)))
		goto out;
	/* Checkpoints on their own connection, outside mu; without one, SQLite's automatic
	 * checkpoint (on the committing connection) stays. */
	if (sqlite3_open_v2(dbpath, &s->ckdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL) ==
	    SQLITE_OK && persist_wal(s->ckdb) == 0) {
		sqlite3_busy_timeout(s->ckdb, 1000);
		sqlite3_wal_hook(s->db, wal_hook, s);
	} else {
		sqlite3_close(s->ckdb);
		s->ckdb = NULL;
	}
	s->tmpfile_ok = true;
	if ((rc = -pthread_create(&s->thread, NULL, store_main, s)))
		goto out;
	s->thread_started = true;
	vault_seal_close(&s->seal);
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
	if (s->thread_started) {
		pthread_mutex_lock(&s->pmu);
		s->stopping = true;
		pthread_cond_broadcast(&s->pcv);
		pthread_mutex_unlock(&s->pmu);
		pthread_join(s->thread, NULL);
	}
	if (s->db && s->ins_ignore) {
		pthread_mutex_lock(&s->mu);
		flush_locked(s);
		pthread_mutex_unlock(&s->mu);
	}
	for (unsigned i = 0; i < s->npool; i++)
		close(s->pool[i]);
	free(s->pend.p);
	for (int i = 0; i < 2; i++)
		if (s->plog[i] >= 0)
			close(s->plog[i]);
	sqlite3_finalize(s->ins);
	sqlite3_finalize(s->ins_ignore);
	sqlite3_finalize(s->q_orig);
	sqlite3_finalize(s->q_link);
	if (s->ckdb)
		sqlite3_close(s->ckdb);
	if (s->db)
		sqlite3_close(s->db);
	if (s->dirfd >= 0)
		close(s->dirfd);
	vault_seal_fini(&s->seal);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->pmu);
	pthread_cond_destroy(&s->pcv);
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

/* Copies of at most this many bytes go through one stack buffer with one read and one
 * write: no hole search, no heap (a 256 KiB malloc is an mmap and a munmap per copy). */
#define SMALL_COPY (64 * 1024)

/* A small range in one go. Returns the bytes copied (less at EOF) or -errno. */
static int64_t copy_small(int in, int out, int64_t off, int64_t len, int64_t out_off,
			  EVP_MD_CTX *sha)
{
	char buf[SMALL_COPY];
	int64_t got = io_pread_full(in, buf, (size_t)len, (uint64_t)off);
	if (got < 0)
		return got;
	int rc = write_all(out, buf, (size_t)got, out_off);
	if (rc)
		return rc;
	if (sha)
		EVP_DigestUpdate(sha, buf, (size_t)got);
	return got;
}

int vault_copy_range(int in, int out, int64_t off, int64_t len, int64_t out_off,
		     struct evp_md_ctx_st *sha, int64_t deadline_ns)
{
	int rc = 0;
	int64_t end = off + len, pos = off;
	if (len <= SMALL_COPY) {
		int64_t got = copy_small(in, out, off, len, out_off, sha);
		if (got < 0)
			return (int)got;
		hash_zeros(sha, len - got);     /* shrank under us: the rest reads as zeros */
		return 0;
	}
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
 * pruning cannot make room. Under budget, only pmu is taken. */
static int reserve(struct vault_store *s, uint64_t need)
{
	int rc = 0;
	pthread_mutex_lock(&s->pmu);
	if (!s->opts.max_bytes || s->bytes + need <= s->opts.max_bytes) {
		s->bytes += need;
		pthread_mutex_unlock(&s->pmu);
		return 0;
	}
	pthread_mutex_unlock(&s->pmu);
	pthread_mutex_lock(&s->mu);
	vault_store_prune(s, need);
	pthread_mutex_lock(&s->pmu);
	uint64_t have = s->bytes;
	if (have + need <= s->opts.max_bytes)
		s->bytes += need;
	pthread_mutex_unlock(&s->pmu);
	if (have + need > s->opts.max_bytes) {
		s->st.enospc++;
		/* Loud, but not once per event: every 1st, 10th, 100th... */
		uint64_t n = s->st.enospc;
		while (n % 10 == 0)
			n /= 10;
		if (n == 1)
			log_err("vault: %s is full (%" PRIu64 " of %" PRIu64 " bytes, %" PRIu64
				" more needed): %" PRIu64 " saves refused so far",
				s->dir, have, s->opts.max_bytes, need, s->st.enospc);
		rc = -ENOSPC;
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static void unreserve(struct vault_store *s, uint64_t n)
{
	pthread_mutex_lock(&s->pmu);
	s->bytes = s->bytes >= n ? s->bytes - n : 0;
	pthread_mutex_unlock(&s->pmu);
}

static uint64_t bytes_now(struct vault_store *s)
{
	pthread_mutex_lock(&s->pmu);
	uint64_t b = s->bytes;
	pthread_mutex_unlock(&s->pmu);
	return b;
}

static void make_vname(struct vault_store *s, char *vn, size_t cap, int64_t saved_ns)
{
	uint64_t seq = atomic_fetch_add(&s->seq, 1);
	snprintf(vn, cap, "v-%016" PRIx64 "-%d-%" PRIu64, (uint64_t)saved_ns, (int)s->pid, seq);
}

/* Removes one name from the sealed directory (a version deleted, or one a failed save had
 * already named). */
static int drop_name(struct vault_store *s, const char *vname)
{
	vault_seal_open(&s->seal);
	int rc = vault_seal_unlink(&s->seal, vname);
	vault_seal_close(&s->seal);
	return rc;
}

/* The name this inode had when an untrusted actor first opened it in this epoch, if it
 * differs from path: how a file renamed away finds its way home. Under mu, pending rows
 * committed first (the link version may be one of them). */
static void find_orig_path(struct vault_store *s, struct vault_version *v)
{
	sqlite3_stmt *q = s->q_orig;
	flush_locked(s);
	sqlite3_reset(q);
	sqlite3_bind_int64(q, 1, (int64_t)v->dev);
	sqlite3_bind_int64(q, 2, (int64_t)v->ino);
	sqlite3_bind_int(q, 3, VAULT_KIND_LINK);
	sqlite3_bind_int64(q, 4, (int64_t)v->epoch);
	if (sqlite3_step(q) == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(q, 0);
		if (n != v->path_len || memcmp(sqlite3_column_blob(q, 0), v->path, n) != 0)
			v->orig_path_len = blob_copy(v->orig_path, sizeof(v->orig_path), q, 0);
	}
	sqlite3_reset(q);
}

/* lookup_orig: find orig_path in the index (the caller did not say). */
static int insert_row(struct vault_store *s, struct vault_version *v, bool lookup_orig)
{
	int rc = 0;
	sqlite3_stmt *q = s->ins;
	pthread_mutex_lock(&s->mu);
	if (v->kind != VAULT_KIND_LINK && lookup_orig)
		find_orig_path(s, v);
	bind_version(q, v);
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

/* A deferred row: one write() to the pending log, committed by the store thread. The
 * version's file already has its final name, so a replayed row always names a whole file. */
static int append_pending(struct vault_store *s, struct vault_version *v)
{
	int rc = 0;
	pthread_mutex_lock(&s->pmu);
	size_t start = s->pend.len;
	if (!rec_encode(&s->pend, v)) {
		rc = -ENOMEM;
		goto out;
	}
	int log = s->plog[s->pcur];
	const char *rec = s->pend.p + start;
	size_t n = s->pend.len - start;
	ssize_t w = log >= 0 ? write(log, rec, n) : -1;
	if (w != (ssize_t)n) {
		rc = w < 0 ? -errno : -EIO;
		s->pend.len = start;
		goto out;
	}
	s->pend.rows++;
	if (s->pend.rows >= FLUSH_ROWS)
		pthread_cond_signal(&s->pcv);
	v->id = 0;                     /* known after the commit */
out:
	pthread_mutex_unlock(&s->pmu);
	return rc;
}

/* A spare O_TMPFILE from the pool, or -1 (the caller opens one). */
static int pool_take(struct vault_store *s)
{
	int fd = -1;
	pthread_mutex_lock(&s->pmu);
	if (s->npool)
		fd = s->pool[--s->npool];
	if (s->npool < POOL_MAX * 3 / 4 && s->tmpfile_ok)
		pthread_cond_signal(&s->pcv);
	pthread_mutex_unlock(&s->pmu);
	return fd;
}

static int fill_meta(const struct vault_save_req *r, struct vault_version *v, struct stat *st)
{
	memset(v, 0, sizeof(*v));
	if (fstat(r->fd, st) < 0)
		return -errno;
	if (!S_ISREG(st->st_mode))
		return -EINVAL;
	/* Checked on the same stat that is recorded: a write after it makes the version stale
	 * (restore compares), never wrong. */
	if (r->if_unchanged && (ts_ns(st->st_mtim) != r->unchanged_mtime_ns || st->st_size != r->unchanged_size))
		return -ESTALE;
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
	v->saved_ns = r->saved_ns ? r->saved_ns : vault_now_ns();
	if (r->orig_path) {
		/* The caller knows the first name: no index lookup. */
		if (r->orig_path_len != n || memcmp(r->orig_path, v->path, n) != 0) {
			if (r->orig_path_len >= sizeof(v->orig_path))
				return -ENAMETOOLONG;
			memcpy(v->orig_path, r->orig_path, r->orig_path_len);
			v->orig_path[r->orig_path_len] = '\0';
			v->orig_path_len = r->orig_path_len;
		}
	}
	v->pid = r->pid;
	snprintf(v->exe, sizeof(v->exe), "%s", r->exe ? r->exe : "");
	v->incident = r->incident;
	v->epoch = r->epoch;
	return 0;
}

static void count_error(struct vault_store *s, int rc)
{
	if (rc == -ESTALE)
		return;
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
	bool reserved = false, named = false, tmpname = false, dense = false;
	struct vault_version v;
	struct stat st, ost;
	char tmp[VAULT_VNAME_MAX + 8], proc[64];
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
	/* An unnamed file, linked in when complete; a named temp file where the filesystem
	 * has no O_TMPFILE (ext4, xfs and btrfs have). */
	out = pool_take(s);
	if (out < 0) {
		out = openat(s->dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (out < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
			snprintf(tmp, sizeof(tmp), ".tmp-%s", v.vname);
			out = openat(s->dirfd, tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
			tmpname = true;
		}
	}
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
		if (len <= SMALL_COPY && (int64_t)st.st_blocks * 512 >= len) {
			/* Small and not sparse: one read, one write, and the size is right. */
			int64_t got = copy_small(r->fd, out, off, len, 0, sha);
			if (got < 0) {
				rc = (int)got;
				goto out;
			}
			if (got < len && ftruncate(out, len) < 0) {
				rc = -errno;
				goto out;
			}
			hash_zeros(sha, len - got);
			dense = true;
		} else {
			if ((rc = vault_copy_range(r->fd, out, off, len, 0, sha, r->deadline_ns)))
				goto out;
			if (ftruncate(out, len) < 0) {
				rc = -errno;
				goto out;
			}
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
	if (dense) {
		/* What the filesystem allocates for a dense copy: whole blocks. */
		v.stored_bytes = ((uint64_t)len + 4095) & ~(uint64_t)4095;
	} else {
		if (fstat(out, &ost) < 0) {
			rc = -errno;
			goto out;
		}
		v.stored_bytes = v.kind == VAULT_KIND_COPY ? (uint64_t)ost.st_blocks * 512 : (uint64_t)len;
	}
	if (tmpname) {
		vault_seal_open(&s->seal);       /* a rename takes a name away */
		int e = renameat(s->dirfd, tmp, s->dirfd, v.vname) < 0 ? -errno : 0;
		vault_seal_close(&s->seal);
		if ((rc = e))
			goto out;
	} else {
		/* An O_TMPFILE without O_EXCL may be linked: AT_EMPTY_PATH needs
		 * CAP_DAC_READ_SEARCH, the /proc link works without. */
		if (linkat(out, "", s->dirfd, v.vname, AT_EMPTY_PATH) < 0) {
			snprintf(proc, sizeof(proc), "/proc/self/fd/%d", out);
			if (linkat(AT_FDCWD, proc, s->dirfd, v.vname, AT_SYMLINK_FOLLOW) < 0) {
				rc = -errno;
				goto out;
			}
		}
	}
	named = true;
	if ((rc = r->defer_index ? append_pending(s, &v) : insert_row(s, &v, !r->orig_path)))
		goto out;
	/* Indexed (or in the pending log): from now on only ward's own delete removes it. */
	vault_seal_file(&s->seal, out);
	/* Settle the reservation to what the version really holds. */
	pthread_mutex_lock(&s->pmu);
	s->bytes = s->bytes - (uint64_t)len + v.stored_bytes;
	pthread_mutex_unlock(&s->pmu);
	reserved = false;
	if (id_out)
		*id_out = v.id;
out:
	EVP_MD_CTX_free(sha);
	if (out >= 0)
		close(out);
	if (rc) {
		if (named)
			drop_name(s, v.vname);
		else if (tmpname && out >= 0)
			drop_name(s, tmp);
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

	if ((rc = fill_meta(r, &v, &st)))
		goto out;
	v.kind = VAULT_KIND_LINK;
	/* The same name of the same unchanged inode is already kept: nothing to add. (A twin
	 * still pending is not seen: at worst one extra link.) */
	pthread_mutex_lock(&s->mu);
	if (!r->defer_index)
		flush_locked(s);
	sqlite3_stmt *q = s->q_link;
	sqlite3_reset(q);
	sqlite3_bind_int64(q, 1, (int64_t)v.dev);
	sqlite3_bind_int64(q, 2, (int64_t)v.ino);
	sqlite3_bind_int(q, 3, VAULT_KIND_LINK);
	sqlite3_bind_blob(q, 4, v.path, (int)v.path_len, SQLITE_STATIC);
	sqlite3_bind_int64(q, 5, v.mtime_ns);
	sqlite3_bind_int64(q, 6, v.size);
	bool dup = sqlite3_step(q) == SQLITE_ROW;
	if (dup && id_out)
		*id_out = sqlite3_column_int64(q, 0);
	sqlite3_reset(q);
	pthread_mutex_unlock(&s->mu);
	if (dup)
		goto out;
	make_vname(s, v.vname, sizeof(v.vname), v.saved_ns);
	/* linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; the /proc link with
	 * AT_SYMLINK_FOLLOW works for any fd of a file that still has a name. */
	if (linkat(r->fd, "", s->dirfd, v.vname, AT_EMPTY_PATH) < 0) {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", r->fd);
		if (linkat(AT_FDCWD, proc, s->dirfd, v.vname, AT_SYMLINK_FOLLOW) < 0) {
			rc = -errno;
			goto out;
		}
	}
	if ((rc = r->defer_index ? append_pending(s, &v) : insert_row(s, &v, false))) {
		drop_name(s, v.vname);
		goto out;
	}
	if (id_out)
		*id_out = v.id;
out:
	if (rc)
		count_error(s, rc);
	return rc;
}

int vault_store_get(struct vault_store *s, int64_t id, struct vault_version *v)
{
	int rc = 0;
	sqlite3_stmt *q = NULL;
	pthread_mutex_lock(&s->mu);
	flush_locked(s);
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
	flush_locked(s);
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
	flush_locked(s);
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
		drop_name(s, vname);
	unreserve(s, sb);
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
	flush_locked(s);
	vault_seal_open(&s->seal);     /* once for the batch, not per delete */
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
	while (s->opts.max_bytes && bytes_now(s) + need_bytes > s->opts.max_bytes) {
		if ((rc = collect_ids(s, "SELECT id, stored_bytes FROM versions WHERE"
					 " stored_bytes > ?1 AND NOT " PINNED " ORDER BY id LIMIT 256",
				      0, ids, bytes, BATCH, &n)))
			goto out;
		int before = dropped;
		for (size_t i = 0; i < n && bytes_now(s) + need_bytes > s->opts.max_bytes; i++)
			if (vault_store_delete(s, ids[i]) == 0)
				dropped++;
		if (dropped == before)      /* nothing unpinned left (or deletes fail) */
			break;
	}
out:
	vault_seal_close(&s->seal);
	pthread_mutex_unlock(&s->mu);
	return rc ? rc : dropped;
}

void vault_store_stats(struct vault_store *s, struct vault_store_stats *out)
{
	pthread_mutex_lock(&s->mu);
	flush_locked(s);
	*out = s->st;
	out->versions = s->versions;
	out->bytes = bytes_now(s);
	pthread_mutex_unlock(&s->mu);
}
