/* store.h: the vault on disk: saved versions of files (full copies, reflinks, hard links of
 * a name, byte ranges of large files) in one flat directory per protected filesystem, and
 * the SQLite index (WAL) that says what each version is, when and why it was saved.
 *
 * Crash safety: a copy is written to an unnamed O_TMPFILE (or a ".tmp-" name), linked (or
 * renamed) to its final name, and only then is its row inserted, or, for a deferred save,
 * appended to a pending log that the next open replays; a store opened after a crash
 * deletes temp files and files no row names, so every row names a complete file.
 * Thread-safe: one mutex serialises index access; copies and deferred rows run outside it.
 * Each store runs one thread of its own (batched commits, checkpoints, spare temp files).
 *
 * Sealed (seal.h): the directory is append-only and each finished copy, reflink or range
 * immutable, so no other process, root included, removes or renames anything in it; the
 * index keeps its -wal and -shm files (SQLITE_FCNTL_PERSIST_WAL). Removing a vault by hand
 * takes `chattr -R -ia DIR` first (while ward runs, the guard denies that too). */
#ifndef WARD_VAULT_STORE_H
#define WARD_VAULT_STORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/event.h"

#define VAULT_DIR_NAME ".ward-vault"
#define VAULT_INDEX_NAME "index.db"
#define VAULT_VNAME_MAX 96
#define VAULT_EXE_MAX 256

enum vault_kind {
	VAULT_KIND_COPY = 0,   /* whole content copied byte by byte (sparse-aware) */
	VAULT_KIND_REFLINK,    /* whole content shared copy-on-write (FICLONE) */
	VAULT_KIND_LINK,       /* a hard link of the inode: keeps the name's file alive, shares content */
	VAULT_KIND_RANGE,      /* bytes [range_off, range_off+range_len) of a large file */
	VAULT_KIND__COUNT
};
const char *vault_kind_name(enum vault_kind k);

struct vault_store_opts {
	uint64_t max_bytes;    /* 0: unlimited. Counts copies, reflinks and ranges (not links) */
	int64_t max_age_s;     /* 0: unlimited. Older versions go unless an open incident pins them */
	bool sync_copies;      /* fsync each copy before its rename (power-loss safety, costs ms) */
	bool no_reflink;       /* never try FICLONE (tests, benchmarks) */
};

/* What was known about the file and the actor when a version was saved. */
struct vault_version {
	int64_t id;
	char path[WARD_PATH_MAX];        /* the name at save time (bytes, not NUL-safe: see path_len) */
	size_t path_len;
	char orig_path[WARD_PATH_MAX];   /* an earlier name of the same inode in the vault, or "" */
	size_t orig_path_len;
	uint64_t dev, ino;
	int64_t size;                    /* file size at save time */
	uint32_t mode, uid, gid, nlink;
	int64_t atime_ns, mtime_ns, ctime_ns;
	uint8_t sha256[32];
	bool has_sha256;                 /* false for reflinks and links (not read at save time) */
	int64_t saved_ns;                /* CLOCK_REALTIME */
	pid_t pid;
	char exe[VAULT_EXE_MAX];
	enum vault_kind kind;
	int64_t range_off, range_len;    /* VAULT_KIND_RANGE only */
	int64_t incident;                /* 0: none */
	uint64_t epoch;
	uint64_t stored_bytes;           /* what the version counts against max_bytes */
	char vname[VAULT_VNAME_MAX];     /* file name inside the vault directory */
};

/* What the caller says about a save: the file is fd (any fd open on it: the guard passes
 * the fanotify event fd, which reads without raising events), the rest is recorded. */
struct vault_save_req {
	int fd;
	const char *path;
	size_t path_len;
	pid_t pid;
	const char *exe;                 /* NULL: unknown */
	uint64_t epoch;
	int64_t incident;                /* 0: none */
	int64_t range_off, range_len;    /* for vault_store_save_range */
	int64_t deadline_ns;             /* CLOCK_MONOTONIC; 0: none. Past it a copy stops with -ETIMEDOUT */
	/* Added for the guard's deferred name links. */
	int64_t saved_ns;                /* CLOCK_REALTIME the content was seen as saved; 0: now */
	/* The inode's name when an untrusted actor first opened it in this epoch, when the caller
	 * knows it (recorded as orig_path if it differs from path); NULL: looked up in the index
	 * (the first link version of the inode in this epoch). */
	const char *orig_path;
	size_t orig_path_len;
	/* The row may be committed a few ms later, in a batch (id_out is then 0): the save
	 * costs one write() to a pending log in the vault instead of a transaction, and stays
	 * crash-safe: vault_store_open() replays the log. Reads of the index see it at once. */
	bool defer_index;
	/* Only if the file still has this mtime and size (else -ESTALE, nothing saved): for a
	 * name link taken after the open was answered, whose file may have been written since
	 * (that write was saved; a link now would hold the new content under the old name). */
	bool if_unchanged;
	int64_t unchanged_mtime_ns, unchanged_size;
};

struct vault_store_stats {
	uint64_t versions, bytes;        /* in the index now */
	uint64_t saved[VAULT_KIND__COUNT];
	uint64_t save_errors, enospc, timeouts, pruned, orphans_removed;
	uint64_t replayed;               /* rows of deferred saves indexed at open after a crash */
};

struct vault_store;

/* Opens (creating when missing) the vault in dir: mode 0700, index in dir/index.db.
 * Indexes the deferred rows a crash left in the pending logs, then removes temp files and
 * unindexed files (all but temp files are kept if the index is empty: lost, not crashed).
 * Seals the directory, or logs that the filesystem cannot. Starts the store's thread
 * ("ward-vault"). Caller closes with vault_store_close(), which commits what is pending. */
int vault_store_open(const char *dir, const struct vault_store_opts *opts, struct vault_store **out);
void vault_store_close(struct vault_store *s);   /* accepts NULL */
/* The directory fd (O_PATH) and its device and inode, for the guard's tamper check. */
int vault_store_dirfd(const struct vault_store *s);
const char *vault_store_dir(const struct vault_store *s);
/* The open sqlite3 handle, for PRAGMA checks in tests (use under no concurrent saves). */
void *vault_store_db(struct vault_store *s);

/* Saves the whole current content of r->fd: a reflink when the filesystem can, else a
 * sparse-aware copy with its sha256. -ENOSPC when the size budget is spent even after
 * pruning (counted), -ETIMEDOUT past the deadline. id_out may be NULL. */
int vault_store_save(struct vault_store *s, const struct vault_save_req *r, int64_t *id_out);
/* Saves bytes [range_off, range_off+range_len) (clipped to the size) of r->fd. */
int vault_store_save_range(struct vault_store *s, const struct vault_save_req *r, int64_t *id_out);
/* Name-level history: a hard link of r->fd's inode into the vault, with its path. The link
 * keeps the content alive if the name is unlinked, and stays valid while the inode's
 * content is unchanged (restore checks mtime, ctime is not compared: link() changes it). */
int vault_store_link(struct vault_store *s, const struct vault_save_req *r, int64_t *id_out);

int vault_store_get(struct vault_store *s, int64_t id, struct vault_version *v);
/* Opens a version's file read-only. Caller closes. */
int vault_store_open_version(struct vault_store *s, const struct vault_version *v, int *fd_out);
/* Calls cb for every version whose path or orig_path starts with prefix (prefix_len bytes;
 * 0: all) and saved_ns < before_ns (0: no limit), by id ascending. A nonzero return from
 * cb stops the walk and is returned. v is valid during the call only. */
typedef int (*vault_version_cb)(void *ctx, const struct vault_version *v);
int vault_store_list(struct vault_store *s, const char *prefix, size_t prefix_len,
		     int64_t before_ns, vault_version_cb cb, void *ctx);

/* Incidents pin versions: nothing saved at or after since_ns, and nothing tagged with the
 * incident, is pruned while it is open. */
int vault_store_incident_open(struct vault_store *s, int64_t since_ns, int64_t *id_out);
int vault_store_incident_close(struct vault_store *s, int64_t id);

/* Drops versions older than max_age and, oldest first, as many as needed to get need_bytes
 * under max_bytes, skipping pinned ones. Returns the number dropped or -errno. */
int vault_store_prune(struct vault_store *s, uint64_t need_bytes);
/* Deletes one version (row first, then its file). */
int vault_store_delete(struct vault_store *s, int64_t id);

void vault_store_stats(struct vault_store *s, struct vault_store_stats *out);

/* Sparse-aware copy of in[off, off+len) to out at out_off, optionally hashing (holes hash
 * as zeros). Shared with restore. deadline_ns: CLOCK_MONOTONIC, 0 none. */
struct evp_md_ctx_st;
int vault_copy_range(int in, int out, int64_t off, int64_t len, int64_t out_off,
		     struct evp_md_ctx_st *sha, int64_t deadline_ns);
/* sha256 of a whole fd's content (holes as zeros). */
int vault_sha256_fd(int fd, uint8_t out[32]);
int64_t vault_now_ns(void);        /* CLOCK_REALTIME in ns */
int64_t vault_mono_ns(void);       /* CLOCK_MONOTONIC in ns */
#endif
