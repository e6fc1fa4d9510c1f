/* guard.h: the copy-before-write guard: a pre-content fanotify group on the protected
 * filesystems that holds every untrusted open-for-truncate, truncate(2) and first write
 * until the file's current content (or the range about to change) is in the vault, holds
 * open the files untrusted actors open so that a name deleted or renamed over keeps its
 * content (copied to the vault then), lets reads of files nobody can change unseen go
 * without events, and denies everyone but ward the vault. */
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
	unsigned workers;              /* threads for large saves, unknown intents and broken
					* leases (the reader saves small files itself); default 2 */
	unsigned queue_len;            /* events waiting for a worker; default 4096 */
	uint64_t large_bytes;          /* files above this are saved by range; default 64 MiB */
	uint64_t chunk_bytes;          /* range granularity for large files; default 1 MiB */
	int64_t deadline_ms;           /* per event; default 2000 */
	int64_t epoch_ms;              /* advance the epoch this often; 0: only on request */
	enum vault_guard_policy policy;
	bool no_name_history;          /* hold no files open: an unlink or a rename over a file
					* nobody wrote loses its content */
	/* True when pid (a thread id) may write without saves. Called from the reader thread
	 * and from worker threads, concurrently: must be quick (it delays every open) and must
	 * not touch the protected filesystems. Trust is decided at open: writes through a
	 * descriptor a trusted actor opened are free whoever makes them (fork, SCM_RIGHTS). */
	bool (*trusted)(void *ctx, pid_t pid);
	void *trusted_ctx;
	int64_t incident;              /* tag saves with this incident id; 0: none */
	/* Added with the read fast path (see guard.c). Zero values keep the defaults. */
	unsigned max_leases;           /* read leases held at once (one fd each); default 16384 */
	int lease_signal;              /* signal for lease breaks; 0: SIGRTMIN+6; -1: no leases
					* (then each read() of a file not saved in this epoch is a
					* round trip, as before). Needs fs.leases-enable = 1. */
	bool no_bpf;                   /* learn intent from /proc only (tests, comparisons) */
	/* Added with held files (name-level history without hard links). */
	unsigned max_holds;            /* files held open at once (one fd each); default 16384;
					* past it the least recently opened is let go (counted, logged) */
	int64_t hold_grace_ms;         /* let a file go this long after every untrusted process
					* that opened it has exited, if it still has its name;
					* default 10000 */
};

struct vault_guard_stats {
	uint64_t events, open_perm, pre_access, self;
	uint64_t trusted, read_only, already_saved;
	uint64_t saved_full, saved_range, resaved_other_actor;
	uint64_t linked;               /* name-level versions: = holds_saved (the name is older) */
	uint64_t tamper_denied, save_failed, enospc, timeouts, queue_full;
	uint64_t fail_open, fail_closed, response_retries;
	uint64_t unknown_intent;       /* opens whose flags /proc could not tell: saved as O_TRUNC */
	uint64_t epoch, epochs_advanced;
	bool tid_reporting;            /* FAN_REPORT_TID accepted with FAN_CLASS_PRE_CONTENT */
	/* Added with the read fast path. */
	bool bpf_intent;               /* the eBPF syscall-intent map is loaded */
	bool leases;                   /* read leases (and so free reads) are in use */
	bool tamper_group;             /* the vault has its own permission group */
	uint64_t fast;                 /* answered by the reader thread (small saves included) */
	uint64_t intent_bpf, intent_proc;   /* where the opener's syscall was learnt */
	uint64_t reads_freed;          /* inodes whose PRE_ACCESS got an ignore mark (reads free) */
	uint64_t leases_taken, leases_held, lease_breaks;
	uint64_t tamper_events;        /* events of the vault's own group */
	/* Added with held files. */
	uint64_t holds_taken;          /* files held open at an untrusted open */
	uint64_t holds_held;           /* ... held now (of max_holds) */
	unsigned max_holds;
	uint64_t holds_saved;          /* ... whose last name went away: content saved from the fd */
	uint64_t holds_changed;        /* ... of those, written since the first untrusted open */
	uint64_t holds_released;       /* let go: every actor gone for hold_grace_ms, name kept */
	uint64_t holds_evicted;        /* let go under pressure (max_holds): history lost, logged */
	uint64_t holds_failed;         /* could not be held (no fd left, no name) */
	uint64_t holds_unwatched;      /* held without a FAN_ATTRIB mark: found by the sweep */
	bool holds_watched;            /* the FAN_ATTRIB group is in use */
	uint64_t self_early;           /* ward's own events answered ahead of earlier ones */
};

struct vault_guard;

/* Creates the groups (the protected filesystems', the vault's own, and a notification group
 * for held files), marks each filesystem and starts the threads: "ward-reader" (answers),
 * "ward-vaultgate" (the vault's group), "ward-saver" x workers, "ward-holder" (held files),
 * "ward-epoch". Stop with vault_guard_stop(), which answers whatever is pending, saves held
 * files whose name is gone, and releases every lease and held file. Process-wide effects:
 * unless lease_signal is -1, a handler for that signal (restored at stop; one guard per
 * process holds leases; the guard's threads unblock it); RLIMIT_NOFILE raised to fit
 * max_leases + max_holds; unless no_bpf, a small eBPF program on the raw tracepoints
 * sys_enter and sys_exit (every syscall on the machine runs it while the guard runs;
 * without BPF the intents come from /proc). Every permission event answered is observed in
 * ward_metrics.perm_latency (read to answer). */
int vault_guard_start(const struct vault_guard_fs *fs, unsigned nfs,
		      const struct vault_guard_opts *opts, struct vault_guard **out);
void vault_guard_stop(struct vault_guard *g);   /* accepts NULL */

/* Starts a new epoch: forgets which files were saved and flushes the ignore marks, so the
 * next untrusted write of every file is saved again. Files under a read lease keep it and
 * their mark (nobody can change them without ward seeing it first). Call it when the
 * detector suspects an actor. Waits for saves in progress. */
int vault_guard_new_epoch(struct vault_guard *g);
uint64_t vault_guard_epoch(struct vault_guard *g);
void vault_guard_set_incident(struct vault_guard *g, int64_t incident);
void vault_guard_stats(struct vault_guard *g, struct vault_guard_stats *out);
#endif
