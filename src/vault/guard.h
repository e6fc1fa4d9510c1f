/* guard.h: the copy-before-write guard: a pre-content fanotify group on the protected
 * filesystems that holds every untrusted open-for-truncate and first write until the
 * file's current content (or the range about to change) is in the vault, takes name-level
 * hard links of files untrusted actors open, and denies everyone but ward the vault. */
#ifndef WARD_VAULT_GUARD_H
#define WARD_VAULT_GUARD_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "vault/store.h"

/* One protected filesystem: its mount point (marked with FAN_MARK_FILESYSTEM) and the
 * store whose directory is on it. The guard does not own the store. */
struct vault_guard_fs {
	const char *mount;
	struct vault_store *store;
};

enum vault_guard_policy {
	VAULT_FAIL_OPEN = 0,   /* a save failed or timed out: allow, count, log */
	VAULT_FAIL_CLOSED,     /* ... deny with EIO (FAN_DENY_ERRNO) */
};

struct vault_guard_opts {
	unsigned workers;              /* threads that save and answer; default 2 */
	unsigned queue_len;            /* events waiting for a worker; default 4096 */
	uint64_t large_bytes;          /* files above this are saved by range; default 64 MiB */
	uint64_t chunk_bytes;          /* range granularity for large files; default 1 MiB */
	int64_t deadline_ms;           /* per event; default 2000 */
	int64_t epoch_ms;              /* advance the epoch this often; 0: only on request */
	enum vault_guard_policy policy;
	bool no_name_history;          /* skip hard links at first untrusted open */
	/* True when pid (a thread id) may write without saves. Called from worker threads,
	 * concurrently: must be quick and must not touch the protected filesystems. */
	bool (*trusted)(void *ctx, pid_t pid);
	void *trusted_ctx;
	int64_t incident;              /* tag saves with this incident id; 0: none */
};

struct vault_guard_stats {
	uint64_t events, open_perm, pre_access, self;
	uint64_t trusted, read_only, already_saved;
	uint64_t saved_full, saved_range, linked, resaved_other_actor;
	uint64_t tamper_denied, save_failed, enospc, timeouts, queue_full;
	uint64_t fail_open, fail_closed, response_retries;
	uint64_t unknown_intent;       /* opens whose flags /proc could not tell: saved as O_TRUNC */
	uint64_t epoch, epochs_advanced;
	bool tid_reporting;            /* FAN_REPORT_TID accepted with FAN_CLASS_PRE_CONTENT */
};

struct vault_guard;

/* Creates the group, marks each filesystem and starts the threads. Stop with
 * vault_guard_stop(), which answers whatever is pending. */
int vault_guard_start(const struct vault_guard_fs *fs, unsigned nfs,
		      const struct vault_guard_opts *opts, struct vault_guard **out);
void vault_guard_stop(struct vault_guard *g);   /* accepts NULL */

/* Starts a new epoch: forgets which files were saved and flushes the ignore marks, so the
 * next untrusted write of every file is saved again. Call it when the detector suspects an
 * actor. Waits for saves in progress. */
int vault_guard_new_epoch(struct vault_guard *g);
uint64_t vault_guard_epoch(struct vault_guard *g);
void vault_guard_set_incident(struct vault_guard *g, int64_t incident);
void vault_guard_stats(struct vault_guard *g, struct vault_guard_stats *out);
#endif
