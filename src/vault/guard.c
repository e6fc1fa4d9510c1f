/* guard.c: copy-before-write with a pre-content fanotify group (Linux 6.14+).
 *
 * DESIGN NOTE. Figures from bench/vault_cost (ext4 loop image, 2 vCPU VM shared with other
 * jobs, Linux 6.18; ratios to the same workload without ward, same run, median of 5; they
 * move with the machine's load, the order between them does not).
 *
 * Events. One FAN_CLASS_PRE_CONTENT group marks each protected filesystem
 * (FAN_MARK_FILESYSTEM) for FAN_OPEN_PERM and FAN_PRE_ACCESS. The opener or writer is
 * blocked until we answer; meanwhile we read the old bytes through the event's fd, which
 * raises no events of its own. A second group (FAN_CLASS_CONTENT, its own thread) holds an
 * inode mark with FAN_EVENT_ON_CHILD on each vault directory and denies every open of a
 * vault file by anyone but ward (EPERM), root included; the main group ignores the vault's
 * children (an ignore mark for FAN_OPEN_PERM and FAN_PRE_ACCESS with FAN_EVENT_ON_CHILD), so
 * ordinary files pay nothing for the tamper check. The vault is flat for that reason.
 *
 * Where the time went (before: 7.7x to 14.3x; the colleague measured 5.4x). Every event went
 * to a worker, which read /proc/<tid>/syscall (10-50 us per event here: "running" until
 * the task sleeps, and wait_task_inactive() sleeps a tick if the task was preempted on its
 * way; a cached fd read with pread was no better), /proc/<tid>/status and the path; every
 * read() raised FAN_PRE_ACCESS, which has no read/write bit (13,660 of 27,780 events); each
 * save paid a vault open (a round trip of its own) and a SQLite commit (whose checkpoint
 * fsyncs under the store mutex: writers waiting for saves saw p99 27 ms, max 42 ms). What
 * was tried and measured:
 *   - F_GETFL on the event fd: always O_RDONLY|O_LARGEFILE (our event_f_flags). Useless.
 *   - An fd-less group for FAN_OPEN_PERM: FID reporting is EINVAL for permission classes
 *     (KERNEL-NOTES), and holds and saves need the fd anyway.
 *   - More workers, a SCHED_FIFO or nice -10 reader, spinning on the group for 50 us before
 *     sleeping: no gain, or worse (2 vCPUs, shared).
 *   - Batching: the reader takes every queued event per read(); answers are one write()
 *     each (the kernel takes one response per write); with two openers the queue is short.
 * What stayed, in order of effect:
 *
 * 1. Reads free (13,660 FAN_PRE_ACCESS events down to 48; without it 4.7x instead of 4.0x).
 *    A file opened read-only cannot be written through that fd, so at a read-only open (or
 *    a read) the inode gets an evictable ignore mark for FAN_PRE_ACCESS. But an ignore mark
 *    also hides truncate(2) by name (no open, only FAN_PRE_ACCESS) and writes through fds
 *    opened for writing before it. So the mark is set only while ward holds a read lease
 *    (F_SETLEASE F_RDLCK) on the inode: a read lease can be taken only while nobody has the
 *    file open for writing (i_writecount), and a new open for writing or a truncate(2) must
 *    break it. Opens for writing are seen at FAN_OPEN_PERM and drop lease and mark before
 *    they are answered (break_lease() runs after fsnotify_open_perm()). truncate(2), measured
 *    on 6.18, raises FAN_PRE_ACCESS *before* it breaks leases (so the mark has let it pass),
 *    then waits in break_lease(): the kernel signals ward (lease_signal, si_fd), a worker
 *    saves the whole file while the truncater waits, then releases the lease. The breaker's
 *    identity is not in the signal: it is taken from the eBPF map (the one thread inside
 *    truncate(2)), else recorded as unknown (pid 0). open(O_RDONLY|O_TRUNC) truncates too
 *    (Linux does) and breaks no lease: it is an O_TRUNC open, seen by its flags. The lease
 *    sits on a dup of the event fd: the event fd is answered and closed only by whoever
 *    handles the event (a lease fd may be closed by any thread, and an answer naming a
 *    closed, maybe reused, fd would answer some other event). Leases cost one fd each
 *    (max_leases; the soft RLIMIT_NOFILE is raised to fit) and pin the inode; they and
 *    their marks survive epoch changes (releasing one could let a truncate(2) that already
 *    passed its FAN_PRE_ACCESS through unsaved). Large files (above large_bytes) get none:
 *    a lease break carries no range, and they keep their per-read round trips. Without
 *    leases (lease_signal -1, a second guard in the process) an ignore mark is set only
 *    after a save, as before.
 * 2. The opener's intent without /proc (5.6x with /proc instead). A tiny eBPF program (raw
 *    tracepoints sys_enter and sys_exit, assembled below instruction by instruction, so no
 *    build step) writes, for the current thread, its syscall number and its open flags (or
 *    mmap flags) into an mmap-able array indexed by tid, and clears it at syscall exit. The
 *    reader reads it with one load. A slot is (tid << 32 | nr << 23 | flags), one 64-bit
 *    store, so a reader sees the whole record of that tid or a word whose tid does not
 *    match: unknown (io_uring workers, kernel threads, a tid collision, no BPF), which goes
 *    to a worker and /proc as before. The map is frozen: no process, root included, can
 *    forge a record (an open made to look read-only, or ward's own) by bpf() or mmap.
 * 3. The reader answers almost everything itself: ward's own events, trusted actors,
 *    read-only opens, opens for writing without O_TRUNC, reads, and small saves (O_TRUNC
 *    opens and first writes of files up to 64 KiB: a hand-off costs two wake-ups, which on
 *    this VM cost more than the copy). A small save runs only if the epoch lock can be taken
 *    without waiting: an epoch change's flush lifts the vault's ignore mark for a moment,
 *    and ward's own writes there would then wait for the reader. Workers take large and
 *    range saves, unknown intents and broken leases.
 * 4. Saves cost one write() to the index's pending log, not a transaction (store.c), and no
 *    open: the store keeps O_TMPFILE files ready (its thread opens them; the vault group's
 *    thread answers those opens at once).
 * 5. Held files instead of hard links (name-level history). Rename and unlink cannot be
 *    intercepted, so a file an untrusted actor opens must survive losing its name (read,
 *    write an encrypted copy elsewhere, unlink: WannaCry). This used to be a hard link into
 *    the vault at the first untrusted open, which changed what users see: gzip (logrotate)
 *    refused the file ("has 1 other link -- unchanged") and tar saw its ctime move ("file
 *    changed as we read it"). Now nothing on the file changes: the reader keeps a dup of
 *    the event fd (FMODE_NONOTIFY: reading it raises no events), and an open fd keeps the
 *    inode and its content alive after its last name is unlinked or renamed over. A
 *    notification group (FAN_REPORT_FID, which permission classes cannot have) puts an
 *    evictable FAN_ATTRIB inode mark on each held file: unlink and rename-over raise
 *    FS_ATTRIB on the victim (fsnotify_link_count), and the event's file handle finds the
 *    hold (name_to_handle_at(AT_HANDLE_FID) gives the same bytes). If fstat says nlink 0,
 *    the "ward-holder" thread copies the content from the fd into the vault as a version of
 *    the name the file had at the first untrusted open (restore brings it home), attributed
 *    to the process that removed the name, then closes the fd. A copy, not a link: linkat
 *    (AT_EMPTY_PATH) of a file with nlink 0 fails with ENOENT. Its date is the first open's
 *    if mtime and size are as they were then (the content of that open, as the link was
 *    dated), else now (written since: by a trusted writer, or by an untrusted one whose
 *    write saved the original first). The reader only dups, records the name (readlink,
 *    while the opener waits: a later rename must not change it) and inserts into a table;
 *    the holder marks new holds after the answer, napping HOLDER_NAP_MS between looks in a
 *    burst (a wake-up per hold cost the reader 12 us; a name removed before its mark is in
 *    place is caught by an nlink check right after it). Bounds: max_holds fds (LRU; at the
 *    limit the least recently opened is let go: counted in holds_evicted and logged, as its
 *    deletion is then no longer caught; one whose name is already gone is saved first), and
 *    a hold is let go when every untrusted process that opened it has exited for
 *    hold_grace_ms and the file still has its name (a sweep every second, which also
 *    fstat()s holds without a mark and, after a queue overflow, all of them). RLIMIT_NOFILE
 *    is raised to fit holds and leases. Saves carry the held name as orig_path, so a file
 *    renamed away and then written comes home. Cost: instrumented, 3 us of the reader per
 *    new hold (dup, insert) plus the readlink (5 us), 12 us of the holder's; against the
 *    hard links, alternating runs of vault_cost agree within this VM's noise (links 1.39 to
 *    1.98 s, held 1.22 to 2.11 s; none 1.05 to 1.99 s).
 * 6. A trusted actor pays one round trip per open: its opens for writing drop the lease and
 *    put (or keep) the ignore mark, unless an untrusted writer is pending.
 * 7. Ward's own events never wait behind saves. The daemon reads files closed after writing
 *    (open_by_handle_at), which raises FAN_OPEN_PERM here; in the detect benchmark the worst
 *    stop (70 files) came from that read waiting behind the reader's saves of the
 *    attacker's files in the same batch. Every batch is triaged as it is read: ward's own
 *    events (its pid or any of its threads) are answered then, before anything else of the
 *    batch; the rest waits in the reader's own queue (pend). Before each event that may
 *    save, and every 32 events, the reader reads again (the group is FAN_NONBLOCK) and
 *    triages what came meanwhile: ward's own open waits for at most one small save
 *    (test_vault_guard: 1-3 ms behind five 100 ms events, 510 ms before).
 * 8. ward_permission_latency_seconds: every answer (both groups) is observed from the
 *    read() that returned the event to the write() of the answer. The kernel stamps no
 *    queueing time on fanotify events, so the wait before read() is not in it.
 *
 * Result (before this design's held files): 4.0x with name links, 3.1x without; the floor,
 * FAN_OPEN_PERM answered at once by a group that does nothing else, was 1.9x in the same run
 * (1.2x to 3.5x over the day: a round trip wakes two threads, and on an idle vCPU a wake-up
 * is dear). Back to back with the colleague's guard on a quiet machine: 14.3x before, 5.3x
 * after, floor 2.6x. 1.10x is not reachable with permission events here: the floor alone is
 * above it. What remains above the floor: ~2,000 copies of the files rewritten with O_TRUNC
 * (~135 us each on the reader, which serialises them: a fresh file written in the page
 * cache and linked; a syscall costs ~2 us on this VM), the answer itself (write + close),
 * and ~2,000 round trips of the vault's group for the store's spare temp files.
 *
 * Decisions (any event of ward's own threads is allowed at once):
 *   - FAN_OPEN_PERM, read-only or for writing without O_TRUNC, untrusted: hold the file
 *     (5); read-only: lease and ignore mark as in 1.
 *   - FAN_OPEN_PERM for writing, untrusted: drop lease and ignore mark (unless this actor
 *     saved the file in this epoch), mark the inode ST_PENDING; O_TRUNC of a non-empty file:
 *     save whole now (open(O_TRUNC) raises no FAN_PRE_ACCESS), large or not; otherwise the
 *     first write saves. Flags unknown: treated as O_TRUNC.
 *   - FAN_PRE_ACCESS: read, pread64, readv, preadv(2), execve(at), and mmap without
 *     MAP_SHARED are reads (checked against the i386 table: no compat syscall with one of
 *     these numbers writes a file); a MAP_SHARED mmap asks /proc/<tid>/fdinfo whether the
 *     fd is writable (a read-only mapping can be mprotect()ed later). Anything else is a
 *     write: save the whole file when small, the chunk-aligned range when large, then allow.
 *
 * Epochs: once a small file is saved, an ignore mark makes its further writes free. The
 * saved-set and those marks belong to an epoch. A file edited legitimately and attacked
 * later is restored to its state just before the attack because:
 *   1. opens are never ignored: an open for writing by a different process than the one
 *      whose write caused the save in this epoch re-arms FAN_PRE_ACCESS, and its first
 *      write saves again (capturing the legitimately edited content);
 *   2. the epoch advances every epoch_ms, whenever the detector suspects an actor
 *      (vault_guard_new_epoch) and when the table fills: the table is cleared (pending
 *      writers and leases stay), FAN_MARK_FLUSH drops every inode mark (leased ones are put
 *      back), so the next write by anyone is saved again;
 *   3. the vault keeps every version; restore picks, per path, the version saved just
 *      before the attacker's first write (restore.h: by suspect actor, or by time).
 *
 * What is still missed, and why:
 *   - writes through descriptors opened before ward started: the kernel decides at open
 *     whether a file raises pre-content events (FMODE_NONOTIFY_HSM, 6.14+). Start early.
 *   - after a save, writes in the same epoch by processes that had opened the file for
 *     writing before that save: the ignore mark is per inode. Bounded by epoch_ms.
 *   - writes through a shared writable mapping made earlier: FAN_PRE_ACCESS fires at mmap()
 *     time only, not on page faults, so after an epoch change they are not saved again.
 *   - truncate(2) of a file whose ignore mark has no lease: a trusted actor opened it for
 *     writing in this epoch (6), or it was saved in this epoch (as before: bounded by
 *     epoch_ms), or leases are off.
 *   - a truncate(2) that passed its (ignored) FAN_PRE_ACCESS exactly while an open for
 *     writing of the same file drops the lease: a window of microseconds; the next attempt
 *     is saved.
 *   - a held file whose name went away lives only in ward's fd until its copy is done
 *     (milliseconds, longer for a large file): a ward killed in between loses it (never
 *     the content of files written afterwards, which was saved before the write). The hard
 *     link lasted on disk instead, but broke gzip and tar.
 *   - a name removed after its hold was let go (every opener gone for hold_grace_ms, or
 *     max_holds reached: logged) or a file no untrusted process opened in ward's lifetime
 *     (rm without a read).
 *   - deleting a large held file costs a copy of it on ext4 (xfs and btrfs reflink it),
 *     within the vault's size budget; the deleter does not wait for it.
 *   - io_uring: its workers make no syscalls of their own: unknown intent, saved as O_TRUNC.
 *
 * Bounded time: every event carries a deadline; a copy past it stops; an event that waited
 * in the queue past it, a full queue, or a failed save is answered by the policy (fail
 * open: allow, counted and logged; fail closed: FAN_DENY_ERRNO(EIO)). A truncate(2) cannot
 * be denied: a failed save before one is counted as fail-open. Every event is answered
 * exactly once, also on shutdown. The reader never waits for the epoch lock, and opens no
 * file but a spare in the vault (answered by the vault group's thread): anything the
 * workers or the store do may need it to answer. */
#include "vault/guard.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/bpf.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/log.h"
#include "output/metrics.h"

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

/* Linux 6.5: the handle fanotify reports (Debian 12's headers are 6.1's). */
#ifndef AT_HANDLE_FID
#define AT_HANDLE_FID AT_REMOVEDIR
#endif

#define MAX_FS 16
#define TABLE_CAP (1u << 17)   /* slots per epoch; 3/4 full starts a new epoch */
#define KEY_WHOLE UINT64_MAX   /* chunk index meaning "the whole file" */
#define PEND_CAP 8192          /* events the reader has read and not handled yet */

/* ---- what the workers get ---- */

enum { EV_PERM = 0, EV_LEASE };

struct gev {
	int kind;
	int fd;                      /* EV_PERM: the event fd; EV_LEASE: the lease's fd */
	pid_t tid, tgid;             /* tgid 0: not known yet */
	uint64_t mask;
	bool has_range;
	uint64_t off, cnt;
	int64_t t_read;              /* CLOCK_MONOTONIC ns when the event was read */
	int64_t deadline;            /* CLOCK_MONOTONIC ns */
	int nr;                      /* the blocked task's syscall; -1: unknown */
	long flags;                  /* its open or mmap flags, when nr is known */
};

/* A file as the guard keys it: btime tells a recycled inode number from the file it had. */
struct fst {
	uint64_t dev, ino, btime;
	int64_t size, mtime;
	uint32_t mode, nlink;
};

enum {
	ST_USED = 1,
	ST_SAVED = 4,      /* content saved in this epoch, at tgid's first write */
	ST_SAVING = 8,
	ST_IGN = 16,       /* we put an ignore mark for FAN_PRE_ACCESS on the inode */
	ST_LEASED = 32,    /* we hold a read lease on lease_fd */
	ST_PENDING = 64,   /* an untrusted writer opened it and has not written yet (survives epochs) */
};

struct slot {
	uint64_t dev, ino, chunk, btime;
	pid_t tgid;                  /* whose write caused the save */
	int lease_fd;
	uint8_t state;
};

/* A file an untrusted actor opened, held open (design note, 5). Created by whoever answers
 * the open (reader or worker); closed and freed by the holder thread only, so the holder may
 * use a hold outside hmu; everyone else touches one only under hmu. */
#define HOLD_ACTORS 4
#define HOLDER_NAP_MS 20              /* in a burst of new holds, the holder looks this often */
#define HOLD_FH_MAX 64
struct hold {
	uint64_t dev, ino, btime;
	int fd;                       /* a dup of the event fd: reads raise no events */
	struct gfs *fsx;
	char *path;                   /* the name at the first untrusted open */
	size_t plen;
	int64_t when;                 /* CLOCK_REALTIME of that open */
	int64_t mtime, size;          /* the file then */
	pid_t actors[HOLD_ACTORS];    /* untrusted processes that opened it, most recent first */
	int64_t dead_since;           /* CLOCK_MONOTONIC since every actor is gone; 0: one lives */
	bool in_table;                /* false once detached for the holder to finish */
	bool evicted;                 /* detached under pressure (max_holds) */
	bool watched;                 /* FAN_ATTRIB mark in place, in the handle table */
	bool fresh;                   /* on g->fresh: only hold_watch may finish it then */
	int fh_type;                  /* the inode's file handle, as FAN_REPORT_FID reports it */
	unsigned fh_len;
	uint32_t fh_hash;
	int32_t fsid[2];
	uint8_t fh[HOLD_FH_MAX];
	struct hold *newer, *older;   /* LRU: g->lru_new is the most recently opened */
	struct hold *ino_next, *fh_next;
	struct hold *fresh_next;      /* on the list of holds to watch */
	struct hold *q_next;          /* on the list of holds to finish */
};

struct gfs {
	char mount[WARD_PATH_MAX];
	size_t mount_len;
	char vault[WARD_PATH_MAX];   /* realpath of the vault directory, with a trailing '/' */
	size_t vault_len;
	struct vault_store *store;
};

struct ring {
	struct gev *q;
	unsigned head, len, cap;
};

struct vault_guard {
	struct vault_guard_opts o;
	int fan;
	int tamper;                  /* the vault's own group; -1: the path check does it */
	int wake;                    /* eventfd: stop */
	int taskdir;                 /* /proc/self/task, for "is this tid ours?" */
	pid_t self;
	bool tid_ok;
	struct gfs fs[MAX_FS];
	unsigned nfs;

	/* eBPF intent map (NULL: none) */
	const volatile uint64_t *intent;
	int bpf_map, bpf_links[2];

	/* leases */
	bool leases_ok;
	int lease_sig;
	int lease_pipe[2];
	unsigned max_leases, nleases;        /* nleases under tmu */
	struct sigaction old_sa;

	pthread_t reader, timer, gate;
	pthread_t *workers;
	bool gate_started;
	unsigned nworkers;
	bool timer_started;

	pthread_mutex_t qmu;
	pthread_cond_t qcv;
	struct ring evq;                     /* events for the workers */
	struct ring pend;                    /* the reader's own: read, not yet handled */
	bool stopping;

	/* held files (design note, 5): everything below under hmu, but fid and hold_efd */
	pthread_mutex_t hmu;
	struct hold **ino_ht, **fh_ht;
	unsigned ht_mask;
	struct hold *lru_new, *lru_old;
	struct hold *fresh, *release;        /* for the holder: to watch; to finish */
	unsigned nholds, max_holds;
	bool holds_off;                      /* stopping, or no_name_history */
	int fid;                             /* FAN_REPORT_FID group for FAN_ATTRIB; -1: sweeps only */
	int hold_efd;                        /* eventfd: the holder has work */
	int handle_flags;                    /* AT_HANDLE_FID when the kernel knows it */
	pthread_t holder;
	bool holder_started;
	bool hold_stop;
	bool holder_napping;                 /* the holder looks at g->fresh soon by itself */

	pthread_rwlock_t epoch_lock;   /* saves hold it shared; an epoch change exclusive */
	pthread_mutex_t tmu;
	pthread_cond_t tcv;            /* a SAVING slot changed */
	struct slot *table;
	unsigned tused;
	bool pending_lost;             /* a writer could not be recorded: no save-based marks */
	_Atomic uint64_t epoch;
	_Atomic int64_t incident;

	pthread_mutex_t timer_mu;
	pthread_cond_t timer_cv;
	bool want_epoch;               /* under timer_mu: the table is full */

	struct {
		_Atomic uint64_t events, open_perm, pre_access, self, trusted, read_only,
			already_saved, saved_full, saved_range, resaved_other_actor,
			tamper_denied, save_failed, enospc, timeouts, queue_full, fail_open,
			fail_closed, response_retries, epochs_advanced, unknown_intent, fast,
			intent_bpf, intent_proc, reads_freed, leases_taken, lease_breaks,
			tamper_events, holds_taken, holds_saved, holds_changed, holds_released,
			holds_evicted, holds_failed, holds_unwatched, self_early;
	} n;
};

static _Atomic int lease_pipe_w = -1;   /* the signal handler's way out; one guard per process */

/* ---- answering ---- */

/* t_read: when the event was read. The kernel does not say when it queued an event, so
 * ward_permission_latency_seconds is read-to-answer: it shows ward's own share of the
 * wait (queues, saves), not the time the event sat in the kernel before read(). */
static void respond_fd(int fan, struct vault_guard *g, int fd, uint32_t verdict, int64_t t_read)
{
	struct fanotify_response r = {.fd = fd, .response = verdict};
	while (write(fan, &r, sizeof(r)) < 0) {
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
	int64_t dt = vault_mono_ns() - t_read;
	metric_observe(&ward_metrics.perm_latency, dt > 0 ? (uint64_t)dt : 0);
}

/* Answers and closes the event fd (nobody else ever closes it: see reads_free). */
static void respond(struct vault_guard *g, int fd, uint32_t verdict, int64_t t_read)
{
	respond_fd(g->fan, g, fd, verdict, t_read);
	close(fd);
}

static void respond_policy(struct vault_guard *g, int fd, int64_t t_read, const char *why, int err)
{
	static _Atomic uint64_t logged;
	uint64_t n = atomic_fetch_add(&logged, 1);
	if (n < 10 || (n & (n - 1)) == 0)
		log_warn("guard: %s (%s): %s", why, strerror(-err),
			 g->o.policy == VAULT_FAIL_OPEN ? "allowed unsaved (fail-open)"
							: "denied with EIO (fail-closed)");
	if (g->o.policy == VAULT_FAIL_OPEN) {
		atomic_fetch_add(&g->n.fail_open, 1);
		respond(g, fd, FAN_ALLOW, t_read);
	} else {
		atomic_fetch_add(&g->n.fail_closed, 1);
		respond(g, fd, FAN_DENY_ERRNO(EIO), t_read);
	}
}

/* ---- the opener's intent from eBPF ---- */

/* The map: one 16-byte slot per (tid mod INTENT_SLOTS): word 0 is tid << 32 | nr << 23 |
 * flags (nr 511: not a syscall we can name), word 1 is tid << 32 | tgid. */
#define INTENT_SLOTS 65536u
#define NR_OTHER 511
#define FLAGS_MASK 0x7fffff            /* every O_* flag fits (__O_TMPFILE is 1 << 22) */

/* x86-64 syscall numbers: these are ABI, the same on every kernel. */
enum {
	X_READ = 0, X_OPEN = 2, X_MMAP = 9, X_PREAD64 = 17, X_READV = 19, X_EXECVE = 59,
	X_TRUNCATE = 76, X_CREAT = 85, X_OPENAT = 257, X_PREADV = 295, X_OPEN_BY_HANDLE_AT = 304,
	X_EXECVEAT = 322, X_PREADV2 = 327, X_OPENAT2 = 437,
};
/* struct pt_regs offsets (x86-64): the syscall arguments are di si dx r10 r8 r9. */
enum { PT_SI = 104, PT_DX = 96, PT_R10 = 56 };

#define INSN(c, d, s, o, i) \
	((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define MOV_REG(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV_IMM(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define ALU_IMM(op, d, i) INSN(BPF_ALU64 | (op) | BPF_K, d, 0, 0, i)
#define ALU_REG(op, d, s) INSN(BPF_ALU64 | (op) | BPF_X, d, s, 0, 0)
#define LDX(sz, d, s, o) INSN(BPF_LDX | (sz) | BPF_MEM, d, s, o, 0)
#define STX(sz, d, s, o) INSN(BPF_STX | (sz) | BPF_MEM, d, s, o, 0)
#define ST(sz, d, o, i) INSN(BPF_ST | (sz) | BPF_MEM, d, 0, o, i)
#define JMP_IMM(op, d, i) INSN(BPF_JMP | (op) | BPF_K, d, 0, 0, i)
#define JMP_REG(op, d, s) INSN(BPF_JMP | (op) | BPF_X, d, s, 0, 0)
#define JA() INSN(BPF_JMP | BPF_JA, 0, 0, 0, 0)
#define CALL(f) INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/* A tiny assembler: jumps name a label, resolved at the end. */
enum { L_DX, L_SI, L_R10, L_GOT, L_CREAT, L_EXEC, L_OA2, L_UNKNOWN, L_STORE, L_NROK, L_OUT, L__N };
struct basm {
	struct bpf_insn i[128];
	unsigned n, nfix;
	int label[L__N];
	struct {
		unsigned at;
		int l;
	} fix[64];
};

static void emit(struct basm *a, struct bpf_insn x) { a->i[a->n++] = x; }
static void jump(struct basm *a, struct bpf_insn x, int l)
{
	a->fix[a->nfix].at = a->n;
	a->fix[a->nfix++].l = l;
	emit(a, x);
}
static void label(struct basm *a, int l) { a->label[l] = (int)a->n; }

/* r1 = fp-8, r2 = 8, r3 = regs + off: probe_read_kernel(fp-8, 8, &regs->arg). */
static void read_arg(struct basm *a, int off)
{
	emit(a, MOV_REG(1, 10));
	emit(a, ALU_IMM(BPF_ADD, 1, -8));
	emit(a, MOV_IMM(2, 8));
	emit(a, MOV_REG(3, 6));
	emit(a, ALU_IMM(BPF_ADD, 3, off));
	emit(a, CALL(BPF_FUNC_probe_read_kernel));
}

/* r0 = this thread's slot (or exit), r9 = pid_tgid, r2 = tid << 32. */
static void find_slot(struct basm *a, int map)
{
	emit(a, CALL(BPF_FUNC_get_current_pid_tgid));
	emit(a, MOV_REG(9, 0));
	emit(a, MOV_REG(2, 0));
	emit(a, ALU_IMM(BPF_AND, 2, INTENT_SLOTS - 1));
	emit(a, STX(BPF_W, 10, 2, -12));
	emit(a, INSN(BPF_LD | BPF_DW | BPF_IMM, 1, BPF_PSEUDO_MAP_FD, 0, map));
	emit(a, INSN(0, 0, 0, 0, 0));
	emit(a, MOV_REG(2, 10));
	emit(a, ALU_IMM(BPF_ADD, 2, -12));
	emit(a, CALL(BPF_FUNC_map_lookup_elem));
	jump(a, JMP_IMM(BPF_JEQ, 0, 0), L_OUT);
	emit(a, MOV_REG(2, 9));
	emit(a, ALU_IMM(BPF_LSH, 2, 32));
}

/* sys_enter (ctx: regs, id): record this thread's syscall and its flags. sys_exit: clear
 * the record, so that an open outside any syscall of the task (a core dump, io_uring work)
 * finds no stale flags. Runs for every syscall of every task while ward runs: a few dozen
 * instructions, no loops. */
static int intent_prog(int map, bool enter, char *log, size_t logsz)
{
	struct basm a = {0};
	if (enter) {
		emit(&a, LDX(BPF_DW, 6, 1, 0));        /* r6 = regs */
		emit(&a, LDX(BPF_DW, 7, 1, 8));        /* r7 = syscall nr */
		emit(&a, MOV_IMM(8, 0));               /* r8 = flags */
		jump(&a, JMP_IMM(BPF_JEQ, 7, X_OPENAT), L_DX);
		jump(&a, JMP_IMM(BPF_JEQ, 7, X_OPEN_BY_HANDLE_AT), L_DX);
		jump(&a, JMP_IMM(BPF_JEQ, 7, X_OPEN), L_SI);
		jump(&a, JMP_IMM(BPF_JEQ, 7, X_MMAP), L_R10);
		jump(&a, JMP_IMM(BPF_JEQ, 7, X_CREAT), L_CREAT);
		jump(&a, JMP_IMM(BPF_JEQ, 7, X_EXECVE), L_EXEC);
		jump(&a, JMP_IMM(BPF_JEQ, 7, X_EXECVEAT), L_EXEC);
		jump(&a, JMP_IMM(BPF_JEQ, 7, X_OPENAT2), L_OA2);
		jump(&a, JA(), L_STORE);
		label(&a, L_DX);
		read_arg(&a, PT_DX);
		jump(&a, JA(), L_GOT);
		label(&a, L_SI);
		read_arg(&a, PT_SI);
		jump(&a, JA(), L_GOT);
		label(&a, L_R10);
		read_arg(&a, PT_R10);
		label(&a, L_GOT);
		jump(&a, JMP_IMM(BPF_JNE, 0, 0), L_UNKNOWN);
		emit(&a, LDX(BPF_DW, 8, 10, -8));
		jump(&a, JA(), L_STORE);
		label(&a, L_CREAT);
		emit(&a, MOV_IMM(8, O_CREAT | O_WRONLY | O_TRUNC));
		jump(&a, JA(), L_STORE);
		label(&a, L_EXEC);
		emit(&a, MOV_IMM(8, O_RDONLY));
		jump(&a, JA(), L_STORE);
		label(&a, L_OA2);                       /* struct open_how starts with __u64 flags */
		read_arg(&a, PT_DX);
		jump(&a, JMP_IMM(BPF_JNE, 0, 0), L_UNKNOWN);
		emit(&a, MOV_REG(1, 10));
		emit(&a, ALU_IMM(BPF_ADD, 1, -8));
		emit(&a, MOV_IMM(2, 8));
		emit(&a, LDX(BPF_DW, 3, 10, -8));
		emit(&a, CALL(BPF_FUNC_probe_read_user));
		jump(&a, JMP_IMM(BPF_JNE, 0, 0), L_UNKNOWN);
		emit(&a, LDX(BPF_DW, 8, 10, -8));
		jump(&a, JA(), L_STORE);
		label(&a, L_UNKNOWN);
		emit(&a, MOV_IMM(7, NR_OTHER));
		emit(&a, MOV_IMM(8, 0));
		label(&a, L_STORE);
		/* r8 = tid << 32 | nr << 23 | flags; a negative or large nr becomes "other" */
		jump(&a, JMP_IMM(BPF_JLT, 7, NR_OTHER), L_NROK);
		emit(&a, MOV_IMM(7, NR_OTHER));
		label(&a, L_NROK);
		emit(&a, ALU_IMM(BPF_AND, 8, FLAGS_MASK));
		emit(&a, ALU_IMM(BPF_LSH, 7, 23));
		emit(&a, ALU_REG(BPF_OR, 8, 7));
		find_slot(&a, map);
		emit(&a, ALU_REG(BPF_OR, 8, 2));
		emit(&a, MOV_REG(3, 9));
		emit(&a, ALU_IMM(BPF_RSH, 3, 32));          /* tgid */
		emit(&a, ALU_REG(BPF_OR, 3, 2));
		emit(&a, STX(BPF_DW, 0, 3, 8));             /* word 1 first: word 0 validates it */
		emit(&a, STX(BPF_DW, 0, 8, 0));
		jump(&a, JA(), L_OUT);
	} else {
		find_slot(&a, map);
		emit(&a, LDX(BPF_DW, 3, 0, 0));
		emit(&a, ALU_IMM(BPF_RSH, 3, 32));
		emit(&a, ALU_IMM(BPF_RSH, 2, 32));
		jump(&a, JMP_REG(BPF_JNE, 3, 2), L_OUT);    /* another tid's record: leave it */
		emit(&a, ST(BPF_DW, 0, 0, 0));
	}
	label(&a, L_OUT);
	emit(&a, MOV_IMM(0, 0));
	emit(&a, EXIT());
	for (unsigned k = 0; k < a.nfix; k++)
		a.i[a.fix[k].at].off = (int16_t)(a.label[a.fix[k].l] - (int)a.fix[k].at - 1);

	LIBBPF_OPTS(bpf_prog_load_opts, po, .log_buf = log, .log_size = (unsigned)logsz,
		    .log_level = log ? 1 : 0);
	/* GPL: bpf_probe_read_kernel is GPL-only. */
	int prog = bpf_prog_load(BPF_PROG_TYPE_RAW_TRACEPOINT, enter ? "ward_intent_in" : "ward_intent_out",
				 "GPL", a.i, a.n, &po);
	if (prog < 0)
		return -errno;
	int link = bpf_raw_tracepoint_open(enter ? "sys_enter" : "sys_exit", prog);
	int e = errno;
	close(prog);                   /* the attachment keeps the program */
	return link < 0 ? -e : link;
}

static void intent_unload(struct vault_guard *g)
{
	for (int i = 0; i < 2; i++)
		if (g->bpf_links[i] >= 0)
			close(g->bpf_links[i]);
	g->bpf_links[0] = g->bpf_links[1] = -1;
	if (g->intent)
		munmap((void *)g->intent, INTENT_SLOTS * 16);
	g->intent = NULL;
	if (g->bpf_map >= 0)
		close(g->bpf_map);
	g->bpf_map = -1;
}

static int intent_load(struct vault_guard *g)
{
#ifndef __x86_64__
	return -ENOTSUP;             /* the register offsets and syscall numbers are x86-64's */
#else
	int rc;
	LIBBPF_OPTS(bpf_map_create_opts, mo, .map_flags = BPF_F_MMAPABLE);
	g->bpf_map = bpf_map_create(BPF_MAP_TYPE_ARRAY, "ward_intent", 4, 16, INTENT_SLOTS, &mo);
	if (g->bpf_map < 0)
		return -errno;
	void *m = mmap(NULL, INTENT_SLOTS * 16, PROT_READ, MAP_SHARED, g->bpf_map, 0);
	if (m == MAP_FAILED) {
		rc = -errno;
		goto out;
	}
	g->intent = m;
	/* Frozen: no process, root included, may write it through bpf() or a writable mapping
	 * (a forged record could make an open look read-only, or look like ward's own); the
	 * programs still can. */
	if (bpf_map_freeze(g->bpf_map) < 0) {
		rc = -errno;
		goto out;
	}
	static char log[16384];      /* start-up only */
	for (int i = 0; i < 2; i++) {
		log[0] = '\0';
		if ((rc = intent_prog(g->bpf_map, i == 0, log, sizeof(log))) < 0) {
			log_debug("guard: eBPF verifier: %s", log);
			goto out;
		}
		g->bpf_links[i] = rc;
	}
	return 0;
out:
	intent_unload(g);
	return rc;
#endif
}

/* The syscall tid is in and its flags, when the eBPF map knows (tgid too, 0 if not). */
static bool intent_get(struct vault_guard *g, pid_t tid, int *nr, long *flags, pid_t *tgid)
{
	if (!g->intent || tid <= 0)
		return false;
	const volatile uint64_t *s = g->intent + 2 * ((uint32_t)tid & (INTENT_SLOTS - 1));
	uint64_t w0 = __atomic_load_n(&s[0], __ATOMIC_ACQUIRE);
	uint64_t w1 = __atomic_load_n(&s[1], __ATOMIC_ACQUIRE);
	if ((w0 >> 32) != (uint32_t)tid)
		return false;
	*tgid = (w1 >> 32) == (uint32_t)tid ? (pid_t)(uint32_t)w1 : 0;
	int n = (int)((w0 >> 23) & 511);
	if (n == NR_OTHER)
		return false;
	*nr = n;
	*flags = (long)(w0 & FLAGS_MASK);
	return true;
}

static bool nr_is_open(int nr)
{
	return nr == X_OPEN || nr == X_OPENAT || nr == X_OPENAT2 || nr == X_CREAT ||
	       nr == X_OPEN_BY_HANDLE_AT || nr == X_EXECVE || nr == X_EXECVEAT;
}

/* 1: a read; 0: a write; -1: ask /proc (a MAP_SHARED mapping: depends on the fd's mode). */
static int nr_is_read(int nr, long flags)
{
	switch (nr) {
	case X_READ:
	case X_PREAD64:
	case X_READV:
	case X_PREADV:
	case X_PREADV2:
	case X_EXECVE:
	case X_EXECVEAT:
		return 1;
	case X_MMAP:
		return (flags & MAP_SHARED) ? -1 : 1;
	default:
		return 0;
	}
}

/* ---- the opener's intent from /proc (fallback) ---- */

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

static bool is_self(struct vault_guard *g, pid_t tid, pid_t tgid)
{
	if (tid == g->self || tgid == g->self)
		return true;
	if (tgid > 0)                  /* known from eBPF: someone else */
		return false;
	if (!g->tid_ok || g->taskdir < 0)
		return false;
	char name[16];
	snprintf(name, sizeof(name), "%d", (int)tid);
	return faccessat(g->taskdir, name, F_OK, 0) == 0;
}

static int fst_get(int fd, struct fst *f)
{
	struct statx x;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS | STATX_BTIME, &x) < 0)
		return -errno;
	f->dev = makedev(x.stx_dev_major, x.stx_dev_minor);
	f->ino = x.stx_ino;
	f->btime = (x.stx_mask & STATX_BTIME)
			   ? (uint64_t)x.stx_btime.tv_sec * 1000000000u + x.stx_btime.tv_nsec
			   : 0;
	f->size = (int64_t)x.stx_size;
	f->mtime = (int64_t)x.stx_mtime.tv_sec * 1000000000 + x.stx_mtime.tv_nsec;
	f->mode = x.stx_mode;
	f->nlink = x.stx_nlink;
	return 0;
}

/* ---- the per-epoch table ---- */

static uint64_t mix(uint64_t dev, uint64_t ino, uint64_t chunk)
{
	uint64_t h = dev * 0x9e3779b97f4a7c15ULL ^ ino * 0xc2b2ae3d27d4eb4fULL ^ chunk * 0x165667b19e3779f9ULL;
	return h ^ (h >> 29);
}

static void wake_timer_for_epoch(struct vault_guard *g)
{
	pthread_mutex_lock(&g->timer_mu);
	if (!g->want_epoch) {
		g->want_epoch = true;
		pthread_cond_broadcast(&g->timer_cv);
	}
	pthread_mutex_unlock(&g->timer_mu);
}

static void slot_reset(struct vault_guard *g, struct slot *s)
{
	if (s->state & ST_LEASED) {
		fcntl(s->lease_fd, F_SETLEASE, F_UNLCK);
		close(s->lease_fd);
		g->nleases--;
	}
	s->tgid = 0;
	s->state = ST_USED;
}

/* Finds or claims the slot for a key (under tmu). NULL when the table is full (which asks
 * for a new epoch). A slot whose inode number was recycled (other btime) starts afresh. */
static struct slot *slot_get(struct vault_guard *g, const struct fst *f, uint64_t chunk, bool create)
{
	uint32_t i = (uint32_t)mix(f->dev, f->ino, chunk) & (TABLE_CAP - 1);
	for (unsigned probe = 0; probe < TABLE_CAP; probe++, i = (i + 1) & (TABLE_CAP - 1)) {
		struct slot *s = &g->table[i];
		if (!s->state) {
			if (!create)
				return NULL;
			if (g->tused >= TABLE_CAP * 3 / 4) {
				wake_timer_for_epoch(g);
				return NULL;
			}
			s->dev = f->dev;
			s->ino = f->ino;
			s->chunk = chunk;
			s->btime = f->btime;
			s->tgid = 0;
			s->state = ST_USED;
			g->tused++;
			return s;
		}
		if (s->dev == f->dev && s->ino == f->ino && s->chunk == chunk) {
			if (s->btime != f->btime) {
				if (!create)
					return NULL;
				slot_reset(g, s);
				s->btime = f->btime;
			}
			return s;
		}
	}
	return NULL;
}

/* ---- ignore marks and leases (under tmu) ---- */

static void ign_add(struct vault_guard *g, int fd)
{
	/* Evictable: the mark does not pin the inode (a lease does); if evicted, the next read
	 * costs one more round trip and puts it back. */
	fanotify_mark(g->fan, FAN_MARK_ADD | FAN_MARK_IGNORE_SURV | FAN_MARK_EVICTABLE,
		      FAN_PRE_ACCESS, fd, NULL);
}

static void ign_del(struct vault_guard *g, int fd)
{
	if (fanotify_mark(g->fan, FAN_MARK_REMOVE | FAN_MARK_IGNORE, FAN_PRE_ACCESS, fd, NULL) < 0 &&
	    errno != ENOENT)
		log_warn("guard: cannot remove an ignore mark: %s", strerror(errno));
}

static void lease_drop(struct vault_guard *g, struct slot *s)
{
	if (!(s->state & ST_LEASED))
		return;
	fcntl(s->lease_fd, F_SETLEASE, F_UNLCK);
	close(s->lease_fd);
	s->state &= (uint8_t)~ST_LEASED;
	g->nleases--;
}

/* A read-only open or a read of the inode: make its reads free when that is safe (design
 * note, 3). The lease is taken on a dup of the event fd: the event fd itself is answered and
 * closed by whoever handles the event, while the lease fd may be closed by any thread (a
 * writer's open, a broken lease), and a response must never name a closed (maybe reused)
 * fd. again: the mark may have been evicted or flushed (a read raised an event): put it
 * back. */
static void reads_free(struct vault_guard *g, struct slot *s, int fd, bool again, const struct fst *f)
{
	/* Large files keep their round trips: a lease break carries no range, and saving a
	 * VM disk whole before a truncate(2) may go on is what ranges are for. */
	if (!s || (uint64_t)f->size > g->o.large_bytes)
		return;
	if (s->state & ST_IGN) {
		if (again)
			ign_add(g, fd);
		return;
	}
	int lfd = -1;
	if (g->leases_ok && g->nleases < g->max_leases)
		lfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (lfd >= 0 && fcntl(lfd, F_SETSIG, g->lease_sig) == 0 && fcntl(lfd, F_SETLEASE, F_RDLCK) == 0) {
		/* Nobody has it open for writing: no writer is pending either. */
		s->lease_fd = lfd;
		s->state = (uint8_t)((s->state | ST_LEASED) & ~ST_PENDING);
		g->nleases++;
		atomic_fetch_add(&g->n.leases_taken, 1);
	} else {
		if (lfd >= 0)
			close(lfd);
		if (!(s->state & ST_SAVED) || (s->state & ST_PENDING) || g->pending_lost)
			return;
	}
	ign_add(g, fd);
	s->state |= ST_IGN;
	atomic_fetch_add(&g->n.reads_freed, 1);
}

/* An untrusted open for writing: its first write must be seen (unless it saved already). */
static void writer_opens(struct vault_guard *g, struct slot *s, int fd, pid_t tgid)
{
	if (!s) {
		g->pending_lost = true;    /* could not record it: no save-based marks from now on */
		return;
	}
	lease_drop(g, s);
	if ((s->state & ST_SAVED) && s->tgid == tgid && !(s->state & ST_PENDING))
		return;
	s->state |= ST_PENDING;
	if (s->state & ST_IGN) {
		ign_del(g, fd);
		s->state &= (uint8_t)~ST_IGN;
	}
}

/* A trusted open for writing: one round trip per open, its writes free (design note, 4). */
static void trusted_writer_opens(struct vault_guard *g, struct slot *s, int fd)
{
	if (!s)
		return;
	lease_drop(g, s);
	if (!(s->state & (ST_IGN | ST_PENDING))) {
		ign_add(g, fd);
		s->state |= ST_IGN;
	}
}

/* After the whole content was saved (saved_now) or found saved by this actor. */
static void after_save(struct vault_guard *g, struct slot *s, int fd, bool saved_now)
{
	if (!s)
		return;
	if (saved_now)
		s->state &= (uint8_t)~ST_PENDING;
	if (!(s->state & (ST_PENDING | ST_IGN))) {
		ign_add(g, fd);
		s->state |= ST_IGN;
	}
}

/* ---- lease breaks: truncate(2) or an unseen writer wants the file ---- */

static void on_lease_signal(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	int e = errno, w = atomic_load(&lease_pipe_w), fd = si->si_fd;
	if (w >= 0 && write(w, &fd, sizeof(fd)) < 0) {
		/* pipe full: the breaker waits for lease-break-time, then goes on */
	}
	errno = e;
}

static void to_worker(struct vault_guard *g, struct gev *e);

/* Reader: the kernel is breaking the lease on fd. Measured on 6.18, truncate(2) raises
 * FAN_PRE_ACCESS before it breaks leases (vfs_truncate: fsnotify_truncate_perm, then
 * break_lease), so the ignore mark has already let it pass; but the truncater now waits in
 * break_lease() with the content still intact. A worker saves the file, then releases the
 * lease, and only then does the truncation happen. (An open for writing is seen at
 * FAN_OPEN_PERM and drops the lease before it is answered: it never trips it.) */
static void lease_broken(struct vault_guard *g, int fd)
{
	struct fst f;
	if (fst_get(fd, &f) < 0)
		return;
	pthread_mutex_lock(&g->tmu);
	struct slot *s = slot_get(g, &f, KEY_WHOLE, false);
	/* The fd number may have been reused since the signal: act only on our own lease. */
	bool ours = s && (s->state & ST_LEASED) && s->lease_fd == fd && fcntl(fd, F_GETLEASE) != F_RDLCK;
	if (ours) {
		/* The worker owns it now; the ignore mark stays (the truncater is past it, and
		 * anyone else must open for writing, which is seen). */
		s->state &= (uint8_t)~ST_LEASED;
		g->nleases--;
	}
	pthread_mutex_unlock(&g->tmu);
	if (!ours)
		return;
	atomic_fetch_add(&g->n.lease_breaks, 1);
	struct gev e = {.kind = EV_LEASE, .fd = fd, .nr = -1,
			.deadline = vault_mono_ns() + g->o.deadline_ms * 1000000};
	to_worker(g, &e);
}

/* The thread in truncate(2) right now, if exactly one is: the likely breaker. */
static pid_t find_truncater(struct vault_guard *g, pid_t *tgid)
{
	pid_t tid = 0;
	*tgid = 0;
	if (!g->intent)
		return 0;
	for (unsigned i = 0; i < INTENT_SLOTS; i++) {
		uint64_t w0 = __atomic_load_n(&g->intent[2 * i], __ATOMIC_RELAXED);
		if (!w0 || ((w0 >> 23) & 511) != X_TRUNCATE)
			continue;
		if (tid)
			return 0;              /* two candidates: unknown */
		tid = (pid_t)(w0 >> 32);
		uint64_t w1 = __atomic_load_n(&g->intent[2 * i + 1], __ATOMIC_RELAXED);
		*tgid = (w1 >> 32) == (uint32_t)tid ? (pid_t)(uint32_t)w1 : 0;
	}
	return tid;
}

/* ---- epochs ---- */

static int mark_vault_dirs(struct vault_guard *g)
{
	for (unsigned i = 0; i < g->nfs; i++) {
		/* The vault's children are the tamper group's business: the main group ignores
		 * them (ward's own writes there, and opens, which the tamper group judges). Without
		 * a tamper group the main group must see the opens to deny them. */
		uint64_t mask = FAN_PRE_ACCESS | FAN_EVENT_ON_CHILD;
		if (g->tamper >= 0)
			mask |= FAN_OPEN_PERM;
		if (fanotify_mark(g->fan, FAN_MARK_ADD | FAN_MARK_IGNORE_SURV, mask, AT_FDCWD,
				  vault_store_dir(g->fs[i].store)) < 0)
			return -errno;
	}
	return 0;
}

static int new_epoch_locked(struct vault_guard *g)
{
	int rc = 0;
	pthread_mutex_lock(&g->tmu);
	/* FAN_MARK_FLUSH drops every inode mark (we hold no fd for most of them). Leased inodes
	 * keep lease and ignore mark: the lease means nobody can change them unseen, whatever
	 * the epoch; releasing it now could let a truncate(2) that already passed its (ignored)
	 * FAN_PRE_ACCESS through unsaved. Pending writers stay pending. The rest is forgotten. */
	if (fanotify_mark(g->fan, FAN_MARK_FLUSH, 0, AT_FDCWD, NULL) < 0)
		rc = -errno;
	int rc2 = mark_vault_dirs(g);
	unsigned nkeep = 0;
	struct slot *keep = malloc(sizeof(*keep) * (g->tused ? g->tused : 1));
	for (unsigned i = 0; i < TABLE_CAP; i++) {
		struct slot *s = &g->table[i];
		if (!s->state)
			continue;
		if (!(s->state & (ST_PENDING | ST_LEASED)))
			continue;
		if (!keep) {
			if (s->state & ST_PENDING)
				g->pending_lost = true;
			if (s->state & ST_LEASED) {
				fcntl(s->lease_fd, F_SETLEASE, F_UNLCK);
				close(s->lease_fd);
			}
			continue;
		}
		keep[nkeep] = *s;
		keep[nkeep].state = s->state & (ST_USED | ST_PENDING | ST_LEASED);
		nkeep++;
	}
	memset(g->table, 0, sizeof(*g->table) * TABLE_CAP);
	g->tused = 0;
	g->nleases = 0;
	for (unsigned k = 0; k < nkeep; k++) {
		struct fst f = {.dev = keep[k].dev, .ino = keep[k].ino, .btime = keep[k].btime};
		struct slot *s = slot_get(g, &f, keep[k].chunk, true);
		if (!s) {              /* cannot happen: fewer than before */
			if (keep[k].state & ST_LEASED) {
				fcntl(keep[k].lease_fd, F_SETLEASE, F_UNLCK);
				close(keep[k].lease_fd);
			}
			continue;
		}
		s->state = keep[k].state;
		s->lease_fd = keep[k].lease_fd;
		if (s->state & ST_LEASED) {
			ign_add(g, s->lease_fd);
			s->state |= ST_IGN;
			g->nleases++;
		}
	}
	free(keep);
	/* Epoch ids are wall-clock ms, so they stay unique across restarts of ward. */
	uint64_t e = (uint64_t)(vault_now_ns() / 1000000);
	uint64_t old = atomic_load(&g->epoch);
	atomic_store(&g->epoch, e > old ? e : old + 1);
	pthread_mutex_unlock(&g->tmu);
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

/* ---- saves (workers) ---- */

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

/* /proc/<pid>/exe per save is a readlink each: a few recent ones are kept for a second
 * (the name is for the record; a pid reused within that second may show the old name). */
#define EXE_CACHE 64
static struct {
	pid_t pid;
	int64_t at;
	char exe[VAULT_EXE_MAX];
} exe_cache[EXE_CACHE];
static pthread_mutex_t exe_mu = PTHREAD_MUTEX_INITIALIZER;

static void exe_of(pid_t pid, char *out, size_t cap)
{
	int64_t now = vault_mono_ns();
	unsigned i = (unsigned)pid % EXE_CACHE;
	pthread_mutex_lock(&exe_mu);
	if (exe_cache[i].pid == pid && now - exe_cache[i].at < 1000000000) {
		snprintf(out, cap, "%s", exe_cache[i].exe);
		pthread_mutex_unlock(&exe_mu);
		return;
	}
	pthread_mutex_unlock(&exe_mu);
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/exe", (int)pid);
	ssize_t n = readlink(p, out, cap - 1);
	out[n > 0 ? n : 0] = '\0';
	if (n <= 0)
		return;
	pthread_mutex_lock(&exe_mu);
	exe_cache[i].pid = pid;
	exe_cache[i].at = now;
	snprintf(exe_cache[i].exe, sizeof(exe_cache[i].exe), "%s", out);
	pthread_mutex_unlock(&exe_mu);
}

struct req_buf {
	char exe[VAULT_EXE_MAX];
	char first[WARD_PATH_MAX];
	struct vault_save_req r;
};

static struct hold *hold_find(struct vault_guard *g, uint64_t dev, uint64_t ino, uint64_t btime);

/* Fills a save request. f: look up the inode's first name (the held file's name at the
 * first untrusted open), recorded as orig_path so that a file renamed away comes home. */
static void fill_req(struct vault_guard *g, int fd, pid_t tid, pid_t tgid, int64_t deadline,
		     const struct fst *f, const char *path, size_t plen, struct req_buf *b)
{
	exe_of(tgid > 0 ? tgid : tid, b->exe, sizeof(b->exe));
	memset(&b->r, 0, sizeof(b->r));
	b->r.fd = fd;
	b->r.path = path;
	b->r.path_len = plen;
	b->r.pid = tgid > 0 ? tgid : tgid_of(tid);   /* the process, as restore's suspects are named */
	b->r.exe = b->exe;
	b->r.epoch = atomic_load(&g->epoch);
	b->r.incident = atomic_load(&g->incident);
	b->r.deadline_ns = deadline;
	/* Rows are committed in batches (crash-safe: store.c). */
	b->r.defer_index = true;
	/* No hold: this name is the first we know. */
	b->r.orig_path = path;
	b->r.orig_path_len = plen;
	if (f) {
		pthread_mutex_lock(&g->hmu);
		struct hold *h = hold_find(g, f->dev, f->ino, f->btime);
		if (h && h->plen < sizeof(b->first)) {
			memcpy(b->first, h->path, h->plen);
			b->r.orig_path = b->first;
			b->r.orig_path_len = h->plen;
		}
		pthread_mutex_unlock(&g->hmu);
	}
}

/* Waits (under tmu) while another worker saves the same key; false on deadline. */
static bool wait_saving(struct vault_guard *g, struct slot **s, const struct fst *f, uint64_t chunk,
			int64_t deadline)
{
	while (*s && ((*s)->state & ST_SAVING)) {
		struct timespec ts = {.tv_sec = deadline / 1000000000, .tv_nsec = deadline % 1000000000};
		if (pthread_cond_timedwait(&g->tcv, &g->tmu, &ts) == ETIMEDOUT)
			return false;
		*s = slot_get(g, f, chunk, false);   /* an epoch change may have cleared it */
	}
	return true;
}

/* Saves the whole file (chunk KEY_WHOLE) or a range, at most once per key, actor and
 * epoch. Returns 1 when already saved, 0 when saved now, else -errno. */
static int save_once(struct vault_guard *g, struct gfs *fsx, const struct gev *e, const struct fst *f,
		     const char *path, size_t plen, uint64_t chunk, pid_t tgid, bool whole)
{
	int rc = 0;
	pthread_mutex_lock(&g->tmu);
	struct slot *s = slot_get(g, f, chunk, true);
	if (!wait_saving(g, &s, f, chunk, e->deadline)) {
		pthread_mutex_unlock(&g->tmu);
		return -ETIMEDOUT;
	}
	if (!s)   /* cleared by an epoch change while we waited, or the table is full */
		s = slot_get(g, f, chunk, true);
	if (s && (s->state & ST_SAVED) && (s->tgid == tgid || !whole)) {
		pthread_mutex_unlock(&g->tmu);
		atomic_fetch_add(&g->n.already_saved, 1);
		return 1;
	}
	bool resave = s && (s->state & ST_SAVED);
	if (s)
		s->state |= ST_SAVING;
	pthread_mutex_unlock(&g->tmu);

	struct req_buf *b = malloc(sizeof(*b));
	if (!b) {
		rc = -ENOMEM;
	} else {
		fill_req(g, e->fd, e->tid, tgid, e->deadline, f, path, plen, b);
		if (whole) {
			rc = vault_store_save(fsx->store, &b->r, NULL);
		} else {
			b->r.range_off = (int64_t)(chunk * g->o.chunk_bytes);
			b->r.range_len = (int64_t)g->o.chunk_bytes;
			rc = vault_store_save_range(fsx->store, &b->r, NULL);
		}
		free(b);
	}
	if (rc == 0) {
		atomic_fetch_add(whole ? &g->n.saved_full : &g->n.saved_range, 1);
		if (resave)
			atomic_fetch_add(&g->n.resaved_other_actor, 1);
	}

	pthread_mutex_lock(&g->tmu);
	s = slot_get(g, f, chunk, false);
	if (s) {
		s->state &= (uint8_t)~ST_SAVING;
		if (rc == 0) {
			s->state |= ST_SAVED;
			s->tgid = tgid;
		}
	}
	pthread_cond_broadcast(&g->tcv);
	pthread_mutex_unlock(&g->tmu);
	return rc;
}

/* ---- queues ---- */

static bool ring_push(struct ring *r, const struct gev *e)
{
	if (r->len >= r->cap)
		return false;
	r->q[(r->head + r->len) % r->cap] = *e;
	r->len++;
	return true;
}

static bool ring_pop(struct ring *r, struct gev *e)
{
	if (!r->len)
		return false;
	*e = r->q[r->head];
	r->head = (r->head + 1) % r->cap;
	r->len--;
	return true;
}

/* ---- held files: name-level history that leaves the file alone (design note, 5) ---- */

static uint64_t hold_ino_hash(uint64_t dev, uint64_t ino) { return mix(dev, ino, 0); }

static uint32_t fh_hash_of(const int32_t fsid[2], int type, const uint8_t *b, unsigned n)
{
	uint32_t h = 2166136261u ^ (uint32_t)type ^ (uint32_t)fsid[0] * 31u ^ (uint32_t)fsid[1];
	for (unsigned i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

/* Under hmu. */
static struct hold *hold_find(struct vault_guard *g, uint64_t dev, uint64_t ino, uint64_t btime)
{
	if (!g->ino_ht)
		return NULL;
	for (struct hold *h = g->ino_ht[hold_ino_hash(dev, ino) & g->ht_mask]; h; h = h->ino_next)
		if (h->dev == dev && h->ino == ino && h->btime == btime)
			return h;
	return NULL;
}

static void lru_unlink(struct vault_guard *g, struct hold *h)
{
	if (h->newer)
		h->newer->older = h->older;
	else
		g->lru_new = h->older;
	if (h->older)
		h->older->newer = h->newer;
	else
		g->lru_old = h->newer;
	h->newer = h->older = NULL;
}

static void lru_push_new(struct vault_guard *g, struct hold *h)
{
	h->older = g->lru_new;
	h->newer = NULL;
	if (g->lru_new)
		g->lru_new->newer = h;
	g->lru_new = h;
	if (!g->lru_old)
		g->lru_old = h;
}

static void chain_remove(struct hold **head, struct hold *h, bool by_fh)
{
	for (struct hold **pp = head; *pp; pp = by_fh ? &(*pp)->fh_next : &(*pp)->ino_next)
		if (*pp == h) {
			*pp = by_fh ? h->fh_next : h->ino_next;
			return;
		}
}

/* Under hmu: takes h out of the tables; the caller hands it to the holder (or is it). */
static void hold_detach(struct vault_guard *g, struct hold *h)
{
	if (!h->in_table)
		return;
	chain_remove(&g->ino_ht[hold_ino_hash(h->dev, h->ino) & g->ht_mask], h, false);
	if (h->watched)
		chain_remove(&g->fh_ht[h->fh_hash & g->ht_mask], h, true);
	lru_unlink(g, h);
	h->in_table = false;
	g->nholds--;
}

static void holder_kick(struct vault_guard *g)
{
	uint64_t one = 1;
	if (write(g->hold_efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("guard: holder wake: %s", strerror(errno));
}

static void hold_add_actor(struct hold *h, pid_t tgid)
{
	unsigned i = 0;
	while (i < HOLD_ACTORS - 1 && h->actors[i] && h->actors[i] != tgid)
		i++;
	memmove(&h->actors[1], &h->actors[0], i * sizeof(h->actors[0]));
	h->actors[0] = tgid;
	h->dead_since = 0;
}

/* Under hmu: another untrusted open of a held file. If it changed since (a trusted writer,
 * or a write that was saved), the content as of now is what a deletion would save: its
 * date moves to this open, as the old per-epoch hard link's did. */
static void hold_again(struct vault_guard *g, struct hold *h, const struct fst *f, pid_t tgid)
{
	hold_add_actor(h, tgid);
	lru_unlink(g, h);
	lru_push_new(g, h);
	if (f->mtime != h->mtime || f->size != h->size) {
		h->when = vault_now_ns();
		h->mtime = f->mtime;
		h->size = f->size;
	}
}

/* A file already held: one more actor, most recently used. False if not held. */
static bool hold_touch(struct vault_guard *g, const struct fst *f, pid_t tgid)
{
	pthread_mutex_lock(&g->hmu);
	struct hold *h = hold_find(g, f->dev, f->ino, f->btime);
	if (h)
		hold_again(g, h, f, tgid);
	bool done = h != NULL || g->holds_off;
	pthread_mutex_unlock(&g->hmu);
	return done;
}

/* An untrusted open (not O_TRUNC, whose open saves the content anyway): hold the file open,
 * or note one more actor on the hold it has. Costs the opener a dup() and a table insert;
 * the holder thread puts the FAN_ATTRIB mark on it after the answer. path: the name now. */
static void hold_take(struct vault_guard *g, int fd, const struct fst *f, struct gfs *fsx,
		      const char *path, size_t plen, pid_t tgid)
{
	bool kick = false;
	pthread_mutex_lock(&g->hmu);
	if (g->holds_off)
		goto out;
	struct hold *h = hold_find(g, f->dev, f->ino, f->btime);
	if (h) {
		hold_again(g, h, f, tgid);
		goto out;
	}
	h = calloc(1, sizeof(*h));
	char *p = malloc(plen + 1);
	int dfd = h && p ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
	if (dfd < 0) {
		free(h);
		free(p);
		atomic_fetch_add(&g->n.holds_failed, 1);
		goto out;
	}
	/* Pressure: the least recently opened goes (the holder saves it if its name is gone
	 * already, else counts and logs the loss). */
	if (g->nholds >= g->max_holds && g->lru_old) {
		struct hold *old = g->lru_old;
		hold_detach(g, old);
		old->evicted = true;
		kick = !g->release && !g->holder_napping;
		old->q_next = g->release;
		g->release = old;
	}
	memcpy(p, path, plen);
	p[plen] = '\0';
	*h = (struct hold){.dev = f->dev, .ino = f->ino, .btime = f->btime, .fd = dfd, .fsx = fsx,
			   .path = p, .plen = plen, .when = vault_now_ns(), .mtime = f->mtime,
			   .size = f->size, .in_table = true};
	h->actors[0] = tgid;
	struct hold **b = &g->ino_ht[hold_ino_hash(f->dev, f->ino) & g->ht_mask];
	h->ino_next = *b;
	*b = h;
	lru_push_new(g, h);
	g->nholds++;
	/* A wake-up costs the reader more than the hold itself (12 us here): only when the
	 * holder sleeps; in a burst it looks again on its own every HOLDER_NAP_MS. */
	kick |= !g->fresh && !g->holder_napping;
	h->fresh = true;
	h->fresh_next = g->fresh;
	g->fresh = h;
	atomic_fetch_add(&g->n.holds_taken, 1);
out:
	pthread_mutex_unlock(&g->hmu);
	if (kick)
		holder_kick(g);
}

/* Holder: h is detached; if the file has no name left, its content goes to the vault as a
 * version of the name it had at the first untrusted open; then the fd is closed. who: the
 * process that made the name go away, when known (the FAN_ATTRIB event's), else 0. */
static void hold_finish(struct vault_guard *g, struct hold *h, pid_t who)
{
	struct fst now;
	bool gone = fst_get(h->fd, &now) == 0 && now.nlink == 0;
	if (gone) {
		struct req_buf *b = malloc(sizeof(*b));
		int rc = -ENOMEM;
		if (who <= 0 || who == g->self)
			who = h->actors[0];
		if (b) {
			fill_req(g, h->fd, who, who, 0, NULL, h->path, h->plen, b);
			/* Unchanged since the open (by mtime and size): the content is that of the
			 * open, and is dated so, as the hard link was. Written since (a trusted
			 * writer, or an untrusted one whose write was saved): dated now, the last
			 * content the name had. */
			bool same = now.mtime == h->mtime && now.size == h->size;
			b->r.saved_ns = same ? h->when : 0;
			rc = vault_store_save(h->fsx->store, &b->r, NULL);
			free(b);
			if (!same)
				atomic_fetch_add(&g->n.holds_changed, 1);
		}
		if (rc == 0) {
			atomic_fetch_add(&g->n.holds_saved, 1);
		} else {
			atomic_fetch_add(rc == -ENOSPC ? &g->n.enospc : &g->n.save_failed, 1);
			log_warn("guard: %.*s lost its last name: could not save its content: %s",
				 (int)h->plen, h->path, strerror(-rc));
		}
	} else {
		if (h->evicted) {
			uint64_t n = atomic_fetch_add(&g->n.holds_evicted, 1) + 1;
			if (n < 10 || (n & (n - 1)) == 0)
				log_warn("guard: %llu held files released under pressure (max_holds %u), "
					 "oldest first, last %.*s: if their names are now deleted or renamed "
					 "over, their content is lost unless a write saved it",
					 (unsigned long long)n, g->max_holds, (int)h->plen, h->path);
		} else {
			atomic_fetch_add(&g->n.holds_released, 1);
		}
		/* The mark would outlive us while the inode stays cached. */
		if (h->watched)
			fanotify_mark(g->fid, FAN_MARK_REMOVE, FAN_ATTRIB, h->fd, NULL);
	}
	close(h->fd);
	free(h->path);
	free(h);
}

/* Holder: a new hold gets its FAN_ATTRIB mark (unlink and rename-over raise it on the
 * inode: fsnotify_link_count) and its handle, to find it from the event. A name that went
 * away before the mark was in place is caught by the nlink check after it. */
static void hold_watch(struct vault_guard *g, struct hold *h)
{
	struct {
		struct file_handle fh;
		unsigned char b[HOLD_FH_MAX];
	} hb;
	struct statfs sf;
	int mnt;
	hb.fh.handle_bytes = HOLD_FH_MAX;
	pthread_mutex_lock(&g->hmu);
	bool live = h->in_table;       /* else evicted already: on the release list */
	pthread_mutex_unlock(&g->hmu);
	if (!live)
		return;
	bool ok = g->fid >= 0 &&
		  name_to_handle_at(h->fd, "", &hb.fh, &mnt, AT_EMPTY_PATH | g->handle_flags) == 0 &&
		  fstatfs(h->fd, &sf) == 0 &&
		  fanotify_mark(g->fid, FAN_MARK_ADD | FAN_MARK_EVICTABLE, FAN_ATTRIB, h->fd, NULL) == 0;
	if (!ok)
		atomic_fetch_add(&g->n.holds_unwatched, 1);   /* the sweep checks it instead */
	pthread_mutex_lock(&g->hmu);
	if (ok && h->in_table) {
		h->fh_type = hb.fh.handle_type;
		h->fh_len = hb.fh.handle_bytes;
		memcpy(h->fh, hb.fh.f_handle, h->fh_len);
		memcpy(h->fsid, &sf.f_fsid, sizeof(h->fsid));
		h->fh_hash = fh_hash_of(h->fsid, h->fh_type, h->fh, h->fh_len);
		struct hold **b = &g->fh_ht[h->fh_hash & g->ht_mask];
		h->fh_next = *b;
		*b = h;
		h->watched = true;
	}
	pthread_mutex_unlock(&g->hmu);
	struct fst now;
	if (fst_get(h->fd, &now) == 0 && now.nlink == 0) {
		pthread_mutex_lock(&g->hmu);
		bool mine = h->in_table;
		hold_detach(g, h);
		pthread_mutex_unlock(&g->hmu);
		if (mine)              /* else the reader evicted it: on the release list */
			hold_finish(g, h, 0);
	}
}

/* Holder: nlink of every hold (check_all: after a queue overflow) or of those without a
 * mark; releases holds whose actors all left grace_ms ago. */
static void holds_sweep(struct vault_guard *g, bool check_all)
{
	enum { PIDS = 4096 };
	pid_t pid[PIDS];
	int8_t alive[PIDS];            /* 0: not asked, 1 alive, -1 gone */
	memset(alive, 0, sizeof(alive));
	memset(pid, 0, sizeof(pid));
	int64_t now = vault_mono_ns(), grace = g->o.hold_grace_ms * 1000000;
	struct hold **chk = NULL, *done = NULL;
	unsigned nchk = 0;
	/* Which actors are alive: asked once each, outside hmu. */
	pthread_mutex_lock(&g->hmu);
	unsigned n = g->nholds;
	pid_t *ask = malloc(sizeof(*ask) * (size_t)(n * HOLD_ACTORS + 1));
	unsigned nask = 0;
	for (struct hold *h = g->lru_old; h && ask; h = h->newer)
		for (unsigned i = 0; i < HOLD_ACTORS && h->actors[i]; i++)
			ask[nask++] = h->actors[i];
	pthread_mutex_unlock(&g->hmu);
	for (unsigned k = 0; k < nask; k++) {
		unsigned i = (unsigned)ask[k] % PIDS;
		if (alive[i] && pid[i] == ask[k])
			continue;
		pid[i] = ask[k];
		alive[i] = kill(ask[k], 0) == 0 || errno != ESRCH ? 1 : -1;
	}
	free(ask);
	pthread_mutex_lock(&g->hmu);
	chk = malloc(sizeof(*chk) * (g->nholds + 1));
	for (struct hold *h = g->lru_old, *nx; h; h = nx) {
		nx = h->newer;
		bool dead = true;
		for (unsigned i = 0; i < HOLD_ACTORS && h->actors[i] && dead; i++) {
			unsigned k = (unsigned)h->actors[i] % PIDS;
			dead = pid[k] == h->actors[i] && alive[k] < 0;
		}
		if (!dead) {
			h->dead_since = 0;
		} else if (!h->dead_since) {
			h->dead_since = now;
		} else if (now - h->dead_since >= grace && !h->fresh) {
			hold_detach(g, h);
			h->q_next = done;
			done = h;
			continue;
		}
		if (chk && !h->fresh && (check_all || !h->watched))
			chk[nchk++] = h;
	}
	pthread_mutex_unlock(&g->hmu);
	/* Only the holder frees holds: the pointers stay valid; a detached one is finished
	 * from the release list. */
	for (unsigned k = 0; k < nchk; k++) {
		struct fst st;
		if (fst_get(chk[k]->fd, &st) == 0 && st.nlink == 0) {
			pthread_mutex_lock(&g->hmu);
			bool mine = chk[k]->in_table;
			hold_detach(g, chk[k]);
			pthread_mutex_unlock(&g->hmu);
			if (mine)
				hold_finish(g, chk[k], 0);
		}
	}
	free(chk);
	while (done) {
		struct hold *h = done;
		done = h->q_next;
		hold_finish(g, h, 0);
	}
}

/* Holder: FAN_ATTRIB events; false after an overflow (then every hold is checked). */
static bool holds_events(struct vault_guard *g, char *buf, size_t cap)
{
	bool ok = true;
	for (;;) {
		ssize_t n = read(g->fid, buf, cap);
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				log_err("guard: read (held files): %s", strerror(errno));
			return ok;
		}
		/* FID records make events 4-byte aligned only, so FAN_EVENT_NEXT's pointers would
		 * be misaligned (UBSan): walk by offset and copy the headers out. */
		struct fanotify_event_metadata md;
		for (size_t off = 0; (size_t)n - off >= sizeof(md); off += md.event_len) {
			struct fanotify_event_info_fid fi;
			struct file_handle fh;
			memcpy(&md, buf + off, sizeof(md));
			if (md.event_len < sizeof(md) || md.event_len > (size_t)n - off)
				break;
			if (md.mask & FAN_Q_OVERFLOW) {
				ok = false;
				continue;
			}
			const char *rec = buf + off + sizeof(md), *end = buf + off + md.event_len;
			if (rec + sizeof(fi) + sizeof(fh) > end)
				continue;
			memcpy(&fi, rec, sizeof(fi));
			memcpy(&fh, rec + sizeof(fi), sizeof(fh));
			const uint8_t *bytes = (const uint8_t *)rec + sizeof(fi) + sizeof(fh);
			if (fi.hdr.info_type != FAN_EVENT_INFO_TYPE_FID || fh.handle_bytes > HOLD_FH_MAX ||
			    (const char *)bytes + fh.handle_bytes > end)
				continue;
			int32_t fsid[2];
			memcpy(fsid, &fi.fsid, sizeof(fsid));
			uint32_t hh = fh_hash_of(fsid, fh.handle_type, bytes, fh.handle_bytes);
			pthread_mutex_lock(&g->hmu);
			struct hold *h = g->fh_ht ? g->fh_ht[hh & g->ht_mask] : NULL;
			for (; h; h = h->fh_next)
				if (h->fh_hash == hh && h->fh_type == fh.handle_type &&
				    h->fh_len == fh.handle_bytes && memcmp(h->fsid, fsid, sizeof(fsid)) == 0 &&
				    memcmp(h->fh, bytes, h->fh_len) == 0)
					break;
			pthread_mutex_unlock(&g->hmu);
			struct fst st;
			if (!h || fst_get(h->fd, &st) < 0 || st.nlink > 0)
				continue;      /* a chmod, or one of several names went */
			pthread_mutex_lock(&g->hmu);
			bool mine = h->in_table;
			hold_detach(g, h);
			pthread_mutex_unlock(&g->hmu);
			if (mine)
				hold_finish(g, h, md.pid);
		}
	}
}

/* "ward-holder": watches new holds, saves held files whose last name went away, releases
 * holds whose actors are gone and those evicted under pressure. At stop, saves what lost
 * its name and closes everything. */
static void *holder_main(void *arg)
{
	struct vault_guard *g = arg;
	pthread_setname_np(pthread_self(), "ward-holder");
	char buf[16 * 1024] __attribute__((aligned(__alignof__(struct fanotify_event_metadata))));
	int64_t period = g->o.hold_grace_ms / 2 < 1000 ? g->o.hold_grace_ms / 2 : 1000;
	if (period < 20)
		period = 20;
	int64_t next_sweep = vault_mono_ns() + period * 1000000;
	bool napping = false;
	struct pollfd pf[2] = {{.fd = g->hold_efd, .events = POLLIN}, {.fd = g->fid, .events = POLLIN}};
	for (;;) {
		int64_t wait = (next_sweep - vault_mono_ns()) / 1000000;
		if (napping && wait > HOLDER_NAP_MS)
			wait = HOLDER_NAP_MS;
		pthread_mutex_lock(&g->hmu);
		bool idle = !g->nholds && !napping;   /* nothing to sweep: sleep until kicked */
		pthread_mutex_unlock(&g->hmu);
		int pr = poll(pf, 2, idle ? -1 : wait < 0 ? 0 : (int)wait + 1);
		if (pr < 0 && errno != EINTR) {
			log_err("guard: poll (held files): %s", strerror(errno));
			break;
		}
		uint64_t cnt;
		if (pr > 0 && (pf[0].revents & POLLIN) && read(g->hold_efd, &cnt, sizeof(cnt)) < 0 &&
		    errno != EAGAIN)
			log_warn("guard: holder wake: %s", strerror(errno));
		pthread_mutex_lock(&g->hmu);
		struct hold *fresh = g->fresh, *rel = g->release;
		g->fresh = g->release = NULL;
		for (struct hold *h = fresh; h; h = h->fresh_next)
			h->fresh = false;      /* ours now: the sweep may look at them */
		bool stop = g->hold_stop;
		/* New holds now: more are likely; nap instead of waiting for a kick. None: sleep
		 * until kicked (the reader sees holder_napping false under hmu). */
		napping = g->holder_napping = fresh != NULL;
		pthread_mutex_unlock(&g->hmu);
		/* Fresh ones first: one evicted since is on rel too, and freed there. */
		while (fresh) {
			struct hold *h = fresh;
			fresh = h->fresh_next;
			hold_watch(g, h);
		}
		while (rel) {
			struct hold *h = rel;
			rel = h->q_next;
			hold_finish(g, h, 0);
		}
		bool overflow = false;
		if (pr > 0 && (pf[1].revents & POLLIN))
			overflow = !holds_events(g, buf, sizeof(buf));
		if (overflow || vault_mono_ns() >= next_sweep) {
			holds_sweep(g, overflow);
			next_sweep = vault_mono_ns() + period * 1000000;
		}
		if (stop)
			break;
	}
	/* Stop: whatever lost its name is saved now; the rest is let go. */
	if (g->fid >= 0)
		holds_events(g, buf, sizeof(buf));
	pthread_mutex_lock(&g->hmu);
	g->holds_off = true;
	struct hold *all = g->release;
	g->release = g->fresh = NULL;
	while (g->lru_old) {
		struct hold *h = g->lru_old;
		hold_detach(g, h);
		h->q_next = all;
		all = h;
	}
	pthread_mutex_unlock(&g->hmu);
	while (all) {
		struct hold *h = all;
		all = h->q_next;
		hold_finish(g, h, 0);
	}
	return NULL;
}

/* ---- the slow path (workers): saves, unknown intents ---- */

/* Saves the reader makes itself (a hand-off to a sleeping worker costs two wake-ups):
 * whole copies of files up to this size, of known intent. */
#define INLINE_MAX (64 * 1024)

/* Decides, saves if needed, answers. reader: called by the reader thread for a small save
 * of known intent; returns false, having changed nothing, when a worker must take it
 * instead (the file is larger, or an epoch change is under way: its flush briefly lifts
 * the vault's ignore mark, and ward's writes there would then wait for the reader). */
static bool handle(struct vault_guard *g, struct gev *e, bool reader)
{
	char path[WARD_PATH_MAX], lp[64];
	struct fst f;
	int rc = 0;

	if (vault_mono_ns() > e->deadline) {
		atomic_fetch_add(&g->n.timeouts, 1);
		respond_policy(g, e->fd, e->t_read, "event waited past its deadline", -ETIMEDOUT);
		return true;
	}
	snprintf(lp, sizeof(lp), "/proc/self/fd/%d", e->fd);
	ssize_t pl = readlink(lp, path, sizeof(path) - 1);
	if (pl < 0 || fst_get(e->fd, &f) < 0 || !S_ISREG(f.mode)) {
		respond(g, e->fd, FAN_ALLOW, e->t_read);
		return true;
	}
	path[pl] = '\0';
	size_t plen = (size_t)pl;
	struct gfs *fsx = fs_of(g, path, plen);
	if (!fsx) {                    /* a bind mount elsewhere: no vault to save into */
		respond(g, e->fd, FAN_ALLOW, e->t_read);
		return true;
	}
	/* The vault is ward's alone (ward's own opens never reach a worker). */
	if (plen >= fsx->vault_len && memcmp(path, fsx->vault, fsx->vault_len) == 0) {
		atomic_fetch_add(&g->n.tamper_denied, 1);
		respond(g, e->fd, FAN_DENY, e->t_read);
		return true;
	}
	pid_t tgid = e->tgid > 0 ? e->tgid : tgid_of(e->tid);

	if (!reader) {
		pthread_rwlock_rdlock(&g->epoch_lock);
	} else if (e->nr < 0 || f.size > INLINE_MAX || pthread_rwlock_tryrdlock(&g->epoch_lock) != 0) {
		return false;
	}
	bool small = (uint64_t)f.size <= g->o.large_bytes;
	if (e->nr < 0)
		atomic_fetch_add(&g->n.intent_proc, 1);
	if (e->mask & FAN_OPEN_PERM) {
		long fl = e->nr >= 0 ? e->flags : open_flags(e->tid);
		if (fl < 0)
			atomic_fetch_add(&g->n.unknown_intent, 1);
		bool trunc = fl < 0 || (fl & O_TRUNC);
		bool writes = fl < 0 || (fl & O_ACCMODE) != O_RDONLY || (fl & O_TRUNC);
		pthread_mutex_lock(&g->tmu);
		struct slot *s = slot_get(g, &f, KEY_WHOLE, true);
		if (!writes) {
			atomic_fetch_add(&g->n.read_only, 1);
			reads_free(g, s, e->fd, false, &f);
		} else {
			writer_opens(g, s, e->fd, tgid);
		}
		pthread_mutex_unlock(&g->tmu);
		if (!trunc && !g->o.no_name_history)
			hold_take(g, e->fd, &f, fsx, path, plen, tgid);
		if (trunc && f.size > 0) {
			/* O_TRUNC destroys everything before any FAN_PRE_ACCESS: save whole, large
			 * or not. */
			rc = save_once(g, fsx, e, &f, path, plen, KEY_WHOLE, tgid, true);
			if (rc >= 0 && small) {
				pthread_mutex_lock(&g->tmu);
				after_save(g, slot_get(g, &f, KEY_WHOLE, false), e->fd, rc == 0);
				pthread_mutex_unlock(&g->tmu);
			}
		}
	} else if (e->mask & FAN_PRE_ACCESS) {
		int rd = e->nr >= 0 ? nr_is_read(e->nr, e->flags) : -1;
		bool is_read = rd == 1 || (rd < 0 && access_is_read(e->tid));
		if (is_read) {
			atomic_fetch_add(&g->n.read_only, 1);
			pthread_mutex_lock(&g->tmu);
			reads_free(g, slot_get(g, &f, KEY_WHOLE, true), e->fd, true, &f);
			pthread_mutex_unlock(&g->tmu);
		} else if (f.size == 0) {
			/* Empty: nothing to save (as good as saved now), and its later writes (a
			 * new file being filled, such as an encrypted copy) need no saves in this
			 * epoch either. */
			pthread_mutex_lock(&g->tmu);
			struct slot *s = slot_get(g, &f, KEY_WHOLE, true);
			if (s && !(s->state & ST_SAVING)) {
				s->state |= ST_SAVED;
				s->tgid = tgid;
				after_save(g, s, e->fd, true);
			}
			pthread_mutex_unlock(&g->tmu);
		} else if (small) {
			rc = save_once(g, fsx, e, &f, path, plen, KEY_WHOLE, tgid, true);
			if (rc >= 0) {
				pthread_mutex_lock(&g->tmu);
				after_save(g, slot_get(g, &f, KEY_WHOLE, false), e->fd, rc == 0);
				pthread_mutex_unlock(&g->tmu);
			}
		} else {
			/* The range record is page-aligned; extend it to whole chunks. A count of
			 * 0 or past EOF (truncate) means "from offset to the end". */
			uint64_t cb = g->o.chunk_bytes, size = (uint64_t)f.size;
			uint64_t off = e->has_range ? e->off : 0;
			uint64_t end = e->has_range && e->cnt ? e->off + e->cnt : size;
			if (end > size || end < off)
				end = size;
			if (off < size) {
				uint64_t c0 = off / cb, c1 = (end + cb - 1) / cb;
				/* One range version per unsaved chunk: a run of saved chunks
				 * between them costs nothing. */
				for (uint64_t c = c0; c < c1 && rc >= 0; c++)
					rc = save_once(g, fsx, e, &f, path, plen, c, tgid, false);
			}
		}
	}
	pthread_rwlock_unlock(&g->epoch_lock);

	if (rc >= 0) {
		respond(g, e->fd, FAN_ALLOW, e->t_read);
		return true;
	}
	if (rc == -ENOSPC)
		atomic_fetch_add(&g->n.enospc, 1);
	else if (rc == -ETIMEDOUT)
		atomic_fetch_add(&g->n.timeouts, 1);
	else
		atomic_fetch_add(&g->n.save_failed, 1);
	respond_policy(g, e->fd, e->t_read, "could not save before a write", rc);
	return true;
}

/* A broken lease: save the file while its truncater waits, then release. */
static void do_lease_job(struct vault_guard *g, struct gev *e)
{
	char path[WARD_PATH_MAX], lp[64];
	struct fst f;
	int rc = 0;
	pid_t tgid = 0;
	e->tid = find_truncater(g, &tgid);
	e->tgid = tgid > 0 ? tgid : e->tid;
	snprintf(lp, sizeof(lp), "/proc/self/fd/%d", e->fd);
	ssize_t pl = readlink(lp, path, sizeof(path) - 1);
	struct gfs *fsx = NULL;
	if (pl > 0 && fst_get(e->fd, &f) == 0 && f.size > 0) {
		path[pl] = '\0';
		fsx = fs_of(g, path, (size_t)pl);
	}
	if (fsx) {
		pthread_rwlock_rdlock(&g->epoch_lock);
		rc = save_once(g, fsx, e, &f, path, (size_t)pl, KEY_WHOLE, e->tgid, true);
		pthread_rwlock_unlock(&g->epoch_lock);
		if (rc < 0) {
			atomic_fetch_add(&g->n.fail_open, 1);   /* a truncate cannot be denied */
			atomic_fetch_add(rc == -ENOSPC ? &g->n.enospc : &g->n.save_failed, 1);
			log_warn("guard: %.*s: could not save before a truncate(2): %s", (int)pl, path,
				 strerror(-rc));
		}
	}
	fcntl(e->fd, F_SETLEASE, F_UNLCK);
	close(e->fd);
}

static void *worker_main(void *arg)
{
	struct vault_guard *g = arg;
	pthread_setname_np(pthread_self(), "ward-saver");
	for (;;) {
		struct gev e;
		pthread_mutex_lock(&g->qmu);
		while (!g->evq.len && !g->stopping)
			pthread_cond_wait(&g->qcv, &g->qmu);
		bool got = ring_pop(&g->evq, &e);
		pthread_mutex_unlock(&g->qmu);
		if (!got)
			return NULL;
		if (e.kind == EV_LEASE)
			do_lease_job(g, &e);
		else
			handle(g, &e, false);
	}
}

/* ---- the reader: no filesystem writes, no epoch lock, ever ---- */

static void to_worker(struct vault_guard *g, struct gev *e)
{
	pthread_mutex_lock(&g->qmu);
	if (!g->stopping && ring_push(&g->evq, e)) {
		pthread_cond_signal(&g->qcv);
		pthread_mutex_unlock(&g->qmu);
		return;
	}
	bool stopping = g->stopping;
	pthread_mutex_unlock(&g->qmu);
	if (e->kind == EV_LEASE) {     /* let the breaker go on: counted as unsaved */
		if (!stopping) {
			atomic_fetch_add(&g->n.queue_full, 1);
			atomic_fetch_add(&g->n.fail_open, 1);
		}
		fcntl(e->fd, F_SETLEASE, F_UNLCK);
		close(e->fd);
		return;
	}
	if (stopping) {                /* shutting down: the kernel would allow it anyway */
		respond(g, e->fd, FAN_ALLOW, e->t_read);
		return;
	}
	atomic_fetch_add(&g->n.queue_full, 1);
	respond_policy(g, e->fd, e->t_read, "too many events waiting for a worker", -EAGAIN);
}

/* The reader's path: every event of known intent ends here. Returns false when a worker
 * must take the event (unknown intent, a large save, a save during an epoch change). */
static bool fast(struct vault_guard *g, struct gev *e)
{
	struct fst f;
	bool open = e->mask & FAN_OPEN_PERM;
	/* A write is a worker's job: no need to look at the file here. (An O_TRUNC open is
	 * looked at: an empty or new file needs no save.) Trust is asked first. */
	bool trusted = g->o.trusted && g->o.trusted(g->o.trusted_ctx, e->tid);
	if (!trusted && e->nr >= 0 && !open && nr_is_read(e->nr, e->flags) == 0)
		return handle(g, e, true);     /* a write: saved here when small */
	if (fst_get(e->fd, &f) < 0 || !S_ISREG(f.mode)) {
		respond(g, e->fd, FAN_ALLOW, e->t_read);
		return true;
	}
	char path[WARD_PATH_MAX];
	ssize_t pl = -1;
	if (g->tamper < 0) {
		/* No tamper group: the path decides whether this is the vault. */
		char lp[64];
		snprintf(lp, sizeof(lp), "/proc/self/fd/%d", e->fd);
		pl = readlink(lp, path, sizeof(path) - 1);
		if (pl < 0)
			return false;
		path[pl] = '\0';
		struct gfs *fsx = fs_of(g, path, (size_t)pl);
		if (fsx && (size_t)pl >= fsx->vault_len && memcmp(path, fsx->vault, fsx->vault_len) == 0) {
			atomic_fetch_add(&g->n.tamper_denied, 1);
			respond(g, e->fd, FAN_DENY, e->t_read);
			return true;
		}
	}
	if (e->nr < 0 && !trusted)
		return false;
	long fl = e->flags;
	bool writes = open && ((fl & O_ACCMODE) != O_RDONLY || (fl & O_TRUNC));

	if (trusted) {
		atomic_fetch_add(&g->n.trusted, 1);
		if (e->nr >= 0 && open) {
			pthread_mutex_lock(&g->tmu);
			struct slot *s = slot_get(g, &f, KEY_WHOLE, true);
			if (writes)
				trusted_writer_opens(g, s, e->fd);
			else
				reads_free(g, s, e->fd, false, &f);
			pthread_mutex_unlock(&g->tmu);
		}
		respond(g, e->fd, FAN_ALLOW, e->t_read);
		return true;
	}

	if (!open) {
		int rd = nr_is_read(e->nr, fl);
		if (rd != 1)
			return false;          /* a write, or a shared mapping: the slow path */
		atomic_fetch_add(&g->n.read_only, 1);
		pthread_mutex_lock(&g->tmu);
		reads_free(g, slot_get(g, &f, KEY_WHOLE, true), e->fd, true, &f);
		pthread_mutex_unlock(&g->tmu);
		respond(g, e->fd, FAN_ALLOW, e->t_read);
		return true;
	}

	bool trunc = fl & O_TRUNC;
	if (trunc && f.size > 0)
		return handle(g, e, true);     /* a save before the answer: here when small */
	if (!writes)
		atomic_fetch_add(&g->n.read_only, 1);
	pthread_mutex_lock(&g->tmu);
	struct slot *s = slot_get(g, &f, KEY_WHOLE, true);
	if (writes)
		writer_opens(g, s, e->fd, e->tgid > 0 ? e->tgid : e->tid);
	/* Name-level history: the file held open until its actors are gone (note, 5). */
	pthread_mutex_unlock(&g->tmu);
	pid_t tgid = e->tgid > 0 ? e->tgid : e->tid;
	if (!trunc && !g->o.no_name_history && !hold_touch(g, &f, tgid)) {
		if (pl < 0) {
			char lp[64];
			snprintf(lp, sizeof(lp), "/proc/self/fd/%d", e->fd);
			pl = readlink(lp, path, sizeof(path) - 1);
			if (pl >= 0)
				path[pl] = '\0';
		}
		struct gfs *fsx = pl > 0 ? fs_of(g, path, (size_t)pl) : NULL;
		if (fsx)
			hold_take(g, e->fd, &f, fsx, path, (size_t)pl, tgid);
		else
			atomic_fetch_add(&g->n.holds_failed, 1);
	}
	if (!writes) {
		pthread_mutex_lock(&g->tmu);
		reads_free(g, slot_get(g, &f, KEY_WHOLE, true), e->fd, false, &f);
		pthread_mutex_unlock(&g->tmu);
	}
	respond(g, e->fd, FAN_ALLOW, e->t_read);
	return true;
}

/* First look at an event of the main group, at read time: ward's own are answered here,
 * before anything else of the batch (ward's content reads must never wait behind saves);
 * the rest is parsed into e. True when answered. */
static bool triage(struct vault_guard *g, const struct fanotify_event_metadata *m, int64_t now,
		   struct gev *e)
{
	atomic_fetch_add(&g->n.events, 1);
	atomic_fetch_add(m->mask & FAN_OPEN_PERM ? &g->n.open_perm : &g->n.pre_access, 1);
	int nr = -1;
	long fl = 0;
	pid_t tgid = 0;
	bool known = intent_get(g, m->pid, &nr, &fl, &tgid);
	if (is_self(g, m->pid, tgid)) {
		atomic_fetch_add(&g->n.self, 1);
		if (g->pend.len)           /* it jumped the queue */
			atomic_fetch_add(&g->n.self_early, 1);
		respond(g, m->fd, FAN_ALLOW, now);
		return true;
	}
	*e = (struct gev){.kind = EV_PERM, .fd = m->fd, .tid = m->pid, .tgid = tgid, .mask = m->mask,
			  .nr = -1, .t_read = now, .deadline = now + g->o.deadline_ms * 1000000};
	/* An open must be in an open syscall, a read in a read: anything else is unknown. */
	if (known && ((m->mask & FAN_OPEN_PERM) ? nr_is_open(nr) : !nr_is_open(nr) || nr == X_EXECVE ||
						   nr == X_EXECVEAT)) {
		e->nr = nr;
		e->flags = fl;
		atomic_fetch_add(&g->n.intent_bpf, 1);
	}
	const char *p = (const char *)(m + 1), *end = (const char *)m + m->event_len;
	while (p + sizeof(struct fanotify_event_info_header) <= end) {
		struct fanotify_event_info_header h;
		memcpy(&h, p, sizeof(h));      /* records are 4-byte aligned only */
		if (h.len < sizeof(h) || p + h.len > end)
			break;
		if (h.info_type == FAN_EVENT_INFO_TYPE_RANGE &&
		    h.len >= sizeof(struct fanotify_event_info_range)) {
			struct fanotify_event_info_range r;
			memcpy(&r, p, sizeof(r));
			e->has_range = true;
			e->off = r.offset;
			e->cnt = r.count;
		}
		p += h.len;
	}
	return false;
}

/* The vault's own group: ward may, nobody else may open a file there. */
static void dispatch_tamper(struct vault_guard *g, const struct fanotify_event_metadata *m, int64_t now)
{
	atomic_fetch_add(&g->n.tamper_events, 1);
	int nr;
	long fl;
	pid_t tgid = 0;
	intent_get(g, m->pid, &nr, &fl, &tgid);
	struct stat st;
	uint32_t v = FAN_ALLOW;
	if (!is_self(g, m->pid, tgid) && fstat(m->fd, &st) == 0 && S_ISREG(st.st_mode)) {
		atomic_fetch_add(&g->n.tamper_denied, 1);
		v = FAN_DENY;
	}
	respond_fd(g->tamper, g, m->fd, v, now);
	close(m->fd);
}

/* Reads what a group has queued (both are FAN_NONBLOCK). The vault's group is answered
 * here; the main group's events are triaged (ward's own answered) and the rest appended
 * to g->pend, which the caller drains. False when nothing was read. */
static bool read_group(struct vault_guard *g, int fan, char *buf, size_t cap)
{
	ssize_t n = read(fan, buf, cap);
	if (n <= 0) {
		if (n < 0 && errno != EINTR && errno != EAGAIN)
			log_err("guard: read: %s", strerror(errno));
		return false;
	}
	int64_t now = vault_mono_ns();
	const struct fanotify_event_metadata *m = (const void *)buf;
	for (; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
		if (m->vers != FANOTIFY_METADATA_VERSION) {
			log_err("guard: fanotify metadata version %u, expected %u", m->vers,
				FANOTIFY_METADATA_VERSION);
			if (m->fd >= 0) {
				respond_fd(fan, g, m->fd, FAN_ALLOW, now);
				close(m->fd);
			}
			continue;
		}
		if (m->fd < 0)   /* FAN_NOFD: overflow; permission events always have an fd */
			continue;
		if (fan != g->fan) {
			dispatch_tamper(g, m, now);
			continue;
		}
		struct gev e;
		if (triage(g, m, now, &e))
			continue;
		if (!ring_push(&g->pend, &e)) {  /* cannot happen: reads fit the room left */
			if (!fast(g, &e))
				to_worker(g, &e);
		}
	}
	return true;
}

/* Events that may make the reader save before it answers. */
static bool may_save(const struct gev *e)
{
	if (e->nr < 0)
		return false;              /* unknown intent: a worker's */
	if (e->mask & FAN_OPEN_PERM)
		return e->flags & O_TRUNC;
	return nr_is_read(e->nr, e->flags) != 1;
}

/* The reader's batch: every event read is triaged first (ward's own answered), then the
 * rest in order. Before each event that may save, and every 32 events, whatever was queued
 * meanwhile is read and triaged, so ward's own opens wait for at most one small save. */
static void drain_main(struct vault_guard *g, char *buf, size_t cap)
{
	const size_t ev_min = sizeof(struct fanotify_event_metadata);
	if (!read_group(g, g->fan, buf, cap))
		return;
	struct gev e;
	unsigned since = 0;
	while (ring_pop(&g->pend, &e)) {
		if (may_save(&e) || ++since >= 32) {
			since = 0;
			size_t room = (size_t)(g->pend.cap - g->pend.len) * ev_min;
			if (room >= 64 * ev_min)
				read_group(g, g->fan, buf, room < cap ? room : cap);
		}
		if (fast(g, &e))
			atomic_fetch_add(&g->n.fast, 1);
		else
			to_worker(g, &e);
	}
}

static void unblock_lease_signal(struct vault_guard *g)
{
	if (!g->leases_ok)
		return;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, g->lease_sig);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

/* The vault's group has its own thread: ward's own opens there (the store's spare temp
 * files) are answered at once, not after a batch of the main group's events. */
static void *gate_main(void *arg)
{
	struct vault_guard *g = arg;
	pthread_setname_np(pthread_self(), "ward-vaultgate");
	char buf[16 * 1024] __attribute__((aligned(__alignof__(struct fanotify_event_metadata))));
	struct pollfd pf[2] = {{.fd = g->tamper, .events = POLLIN}, {.fd = g->wake, .events = POLLIN}};
	for (;;) {
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_err("guard: poll: %s", strerror(errno));
			break;
		}
		if (pf[1].revents)
			break;
		if (pf[0].revents & POLLIN)
			read_group(g, g->tamper, buf, sizeof(buf));
	}
	return NULL;
}

static void *reader_main(void *arg)
{
	struct vault_guard *g = arg;
	pthread_setname_np(pthread_self(), "ward-reader");
	char buf[64 * 1024] __attribute__((aligned(__alignof__(struct fanotify_event_metadata))));
	unblock_lease_signal(g);
	struct pollfd pf[3] = {{.fd = g->fan, .events = POLLIN},
			       {.fd = g->wake, .events = POLLIN},
			       {.fd = g->leases_ok ? g->lease_pipe[0] : -1, .events = POLLIN}};
	for (;;) {
		if (poll(pf, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_err("guard: poll: %s", strerror(errno));
			break;
		}
		if (pf[1].revents)
			break;
		if (pf[2].revents & POLLIN) {
			int fds[64];
			ssize_t n = read(g->lease_pipe[0], fds, sizeof(fds));
			for (ssize_t i = 0; i < n / (ssize_t)sizeof(int); i++)
				lease_broken(g, fds[i]);
		}
		if (pf[0].revents & POLLIN)
			drain_main(g, buf, sizeof(buf));
	}
	return NULL;
}

static void *timer_main(void *arg)
{
	struct vault_guard *g = arg;
	pthread_setname_np(pthread_self(), "ward-epoch");
	unblock_lease_signal(g);
	pthread_mutex_lock(&g->timer_mu);
	while (!g->stopping) {
		int r = 0;
		if (!g->want_epoch) {
			if (g->o.epoch_ms > 0) {
				struct timespec ts;
				clock_gettime(CLOCK_REALTIME, &ts);
				int64_t t = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + g->o.epoch_ms * 1000000;
				ts.tv_sec = t / 1000000000;
				ts.tv_nsec = t % 1000000000;
				r = pthread_cond_timedwait(&g->timer_cv, &g->timer_mu, &ts);
			} else {
				pthread_cond_wait(&g->timer_cv, &g->timer_mu);
			}
		}
		if (g->stopping)
			break;
		if (r == ETIMEDOUT || g->want_epoch) {
			g->want_epoch = false;
			pthread_mutex_unlock(&g->timer_mu);
			vault_guard_new_epoch(g);
			pthread_mutex_lock(&g->timer_mu);
		}
	}
	pthread_mutex_unlock(&g->timer_mu);
	return NULL;
}

/* ---- start / stop ---- */

/* Leases: a signal handler that hands the broken lease's fd to the reader, and enough fds. */
static int leases_setup(struct vault_guard *g)
{
	if (g->o.lease_signal < 0)
		return -ENOTSUP;
	int expected = -1;
	if (pipe2(g->lease_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	if (!atomic_compare_exchange_strong(&lease_pipe_w, &expected, g->lease_pipe[1])) {
		log_warn("guard: another guard in this process holds leases: reads cost a round trip");
		return -EBUSY;
	}
	g->lease_sig = g->o.lease_signal ? g->o.lease_signal : SIGRTMIN + 6;
	struct sigaction sa = {.sa_sigaction = on_lease_signal, .sa_flags = SA_SIGINFO | SA_RESTART};
	sigemptyset(&sa.sa_mask);
	if (sigaction(g->lease_sig, &sa, &g->old_sa) < 0) {
		atomic_store(&lease_pipe_w, -1);
		return -errno;
	}
	g->max_leases = g->o.max_leases ? g->o.max_leases : 16384;
	g->leases_ok = true;
	return 0;
}

/* One fd per lease and per held file, plus room for everything else: the soft
 * RLIMIT_NOFILE is raised to fit (and the hard one, which root may raise up to
 * fs.nr_open); if it cannot be, both budgets shrink, and the log says so. */
static void fds_setup(struct vault_guard *g)
{
	const rlim_t spare = 4096;
	unsigned leases = g->leases_ok ? g->max_leases : 0;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	rlim_t want = (rlim_t)leases + g->max_holds + spare;
	if (rl.rlim_cur < want) {
		struct rlimit nl = {.rlim_cur = want, .rlim_max = rl.rlim_max > want ? rl.rlim_max : want};
		if (setrlimit(RLIMIT_NOFILE, &nl) < 0) {
			nl.rlim_max = rl.rlim_max;
			nl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
			if (setrlimit(RLIMIT_NOFILE, &nl) < 0)
				nl = rl;
		}
		if (nl.rlim_cur != rl.rlim_cur)
			log_info("guard: RLIMIT_NOFILE raised to %llu for read leases and held files",
				 (unsigned long long)nl.rlim_cur);
		rl = nl;
	}
	if (rl.rlim_cur >= want)
		return;
	/* Both shrink in proportion, never above what was asked, at least 64 (or what was asked). */
	rlim_t avail = rl.rlim_cur > spare + 128 ? rl.rlim_cur - spare : 128;
	rlim_t holds = avail * g->max_holds / ((rlim_t)leases + g->max_holds);
	rlim_t floor_h = g->max_holds < 64 ? g->max_holds : 64;
	g->max_holds = (unsigned)(holds > floor_h ? holds : floor_h);
	if (g->leases_ok) {
		rlim_t l = avail > g->max_holds ? avail - g->max_holds : 0;
		rlim_t floor_l = leases < 64 ? leases : 64;
		g->max_leases = (unsigned)(l < leases ? (l > floor_l ? l : floor_l) : leases);
	}
	log_warn("guard: RLIMIT_NOFILE %llu: at most %u held files and %u read leases",
		 (unsigned long long)rl.rlim_cur, g->max_holds, g->max_leases);
}

/* Held files: the tables, the FAN_ATTRIB group and the holder's wake-up. Without the
 * group (fanotify FID reporting needs Linux 5.1, evictable marks 5.19) the holder finds
 * deleted names by its periodic sweep instead. */
static int holds_setup(struct vault_guard *g)
{
	g->max_holds = g->o.max_holds ? g->o.max_holds : 16384;
	if (!g->o.hold_grace_ms)
		g->o.hold_grace_ms = 10000;
	g->holds_off = g->o.no_name_history;
	unsigned cap = 64;
	while (cap < 2 * g->max_holds && cap < (1u << 30))
		cap <<= 1;
	g->ht_mask = cap - 1;
	g->ino_ht = calloc(cap, sizeof(*g->ino_ht));
	g->fh_ht = calloc(cap, sizeof(*g->fh_ht));
	g->hold_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!g->ino_ht || !g->fh_ht)
		return -ENOMEM;
	if (g->hold_efd < 0)
		return -errno;
	if (g->holds_off)
		return 0;
	g->fid = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_FID | FAN_CLOEXEC | FAN_NONBLOCK |
				       FAN_UNLIMITED_QUEUE | FAN_UNLIMITED_MARKS,
			       O_RDONLY | O_CLOEXEC);
	if (g->fid < 0) {
		log_warn("guard: fanotify FID group for held files: %s: deleted names are found by "
			 "a sweep every second instead", strerror(errno));
		return 0;
	}
	/* AT_HANDLE_FID (6.5+) asks for the handle fanotify reports; without it the same
	 * bytes for ext4, xfs and btrfs (no parent requested either way). */
	struct {
		struct file_handle fh;
		unsigned char b[HOLD_FH_MAX];
	} hb = {.fh.handle_bytes = HOLD_FH_MAX};
	int mnt;
	g->handle_flags = AT_HANDLE_FID;
	if (name_to_handle_at(AT_FDCWD, g->fs[0].mount, &hb.fh, &mnt, g->handle_flags) < 0 &&
	    errno == EINVAL)
		g->handle_flags = 0;
	return 0;
}

static void leases_teardown(struct vault_guard *g)
{
	if (g->leases_ok) {
		sigaction(g->lease_sig, &g->old_sa, NULL);
		atomic_store(&lease_pipe_w, -1);
		g->leases_ok = false;
	}
	for (int i = 0; i < 2; i++)
		if (g->lease_pipe[i] >= 0)
			close(g->lease_pipe[i]);
	g->lease_pipe[0] = g->lease_pipe[1] = -1;
}

static void free_guard(struct vault_guard *g)
{
	if (g->table) {
		for (unsigned i = 0; i < TABLE_CAP; i++) {
			struct slot *s = &g->table[i];
			if (s->state & ST_LEASED) {
				fcntl(s->lease_fd, F_SETLEASE, F_UNLCK);
				close(s->lease_fd);
			}
		}
	}
	intent_unload(g);
	leases_teardown(g);
	if (g->wake >= 0)
		close(g->wake);
	if (g->taskdir >= 0)
		close(g->taskdir);
	for (struct hold *h = g->lru_old, *nx; h; h = nx) {   /* a failed start's leftovers */
		nx = h->newer;
		close(h->fd);
		free(h->path);
		free(h);
	}
	if (g->fid >= 0)
		close(g->fid);
	if (g->hold_efd >= 0)
		close(g->hold_efd);
	free(g->ino_ht);
	free(g->fh_ht);
	free(g->evq.q);
	free(g->pend.q);
	free(g->table);
	free(g->workers);
	free(g);
}

int vault_guard_start(const struct vault_guard_fs *fs, unsigned nfs,
		      const struct vault_guard_opts *opts, struct vault_guard **out)
{
	int rc = 0;
	if (!nfs || nfs > MAX_FS)
		return -EINVAL;
	struct vault_guard *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->fan = g->tamper = g->wake = g->taskdir = g->bpf_map = g->fid = g->hold_efd = -1;
	g->bpf_links[0] = g->bpf_links[1] = g->lease_pipe[0] = g->lease_pipe[1] = -1;
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
	pthread_mutex_init(&g->hmu, NULL);
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
	g->evq.cap = g->o.queue_len;
	g->evq.q = calloc(g->o.queue_len, sizeof(*g->evq.q));
	g->pend.cap = PEND_CAP;
	g->pend.q = calloc(PEND_CAP, sizeof(*g->pend.q));
	g->table = calloc(TABLE_CAP, sizeof(*g->table));
	g->workers = calloc(g->o.workers, sizeof(*g->workers));
	if (!g->evq.q || !g->pend.q || !g->table || !g->workers) {
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

	/* FAN_REPORT_TID gives the blocked thread, whose syscall is the open or write in
	 * question; accepted with FAN_CLASS_PRE_CONTENT (probed on 6.18). Fall back to
	 * thread-group ids, which read the main thread's syscall. */
	unsigned base = FAN_CLASS_PRE_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK | FAN_UNLIMITED_QUEUE;
	g->fan = fanotify_init(base | FAN_REPORT_TID, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
	g->tid_ok = g->fan >= 0;
	if (g->fan < 0 && errno == EINVAL)
		g->fan = fanotify_init(base, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
	if (g->fan < 0) {
		rc = -errno;
		log_err("guard: fanotify_init(FAN_CLASS_PRE_CONTENT): %s", strerror(errno));
		goto out;
	}
	g->tamper = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK | FAN_UNLIMITED_QUEUE |
					  (g->tid_ok ? FAN_REPORT_TID : 0),
				  O_RDONLY | O_LARGEFILE | O_CLOEXEC);
	for (unsigned i = 0; g->tamper >= 0 && i < nfs; i++) {
		if (fanotify_mark(g->tamper, FAN_MARK_ADD, FAN_OPEN_PERM | FAN_EVENT_ON_CHILD | FAN_ONDIR, AT_FDCWD,
				  vault_store_dir(g->fs[i].store)) < 0) {
			log_warn("guard: vault group mark %s: %s: the path check guards the vault",
				 vault_store_dir(g->fs[i].store), strerror(errno));
			close(g->tamper);
			g->tamper = -1;
		}
	}
	g->taskdir = open("/proc/self/task", O_PATH | O_DIRECTORY | O_CLOEXEC);
	g->wake = eventfd(0, EFD_CLOEXEC);
	if (g->wake < 0) {
		rc = -errno;
		goto out;
	}
	if (!g->o.no_bpf && g->tid_ok) {
		int e = intent_load(g);
		if (e)
			log_warn("guard: eBPF intent map unavailable (%s): intents come from /proc",
				 strerror(-e));
	}
	if (!g->tid_ok)
		intent_unload(g);      /* the map is keyed by thread id */
	if (leases_setup(g))
		leases_teardown(g);
	if ((rc = holds_setup(g)))
		goto out;
	fds_setup(g);
	atomic_store(&g->epoch, (uint64_t)(vault_now_ns() / 1000000));
	if ((rc = mark_vault_dirs(g))) {
		log_err("guard: ignore mark on the vault: %s", strerror(-rc));
		goto out;
	}
	/* Threads first, marks after: from the first mark on, events need answering. The
	 * timer thread also starts epochs when the table fills. */
	if ((rc = -pthread_create(&g->reader, NULL, reader_main, g)))
		goto out;
	if (g->tamper >= 0) {
		if ((rc = -pthread_create(&g->gate, NULL, gate_main, g)))
			goto out;
		g->gate_started = true;
	}
	if ((rc = -pthread_create(&g->holder, NULL, holder_main, g)))
		goto out;
	g->holder_started = true;
	for (; g->nworkers < g->o.workers; g->nworkers++)
		if ((rc = -pthread_create(&g->workers[g->nworkers], NULL, worker_main, g)))
			goto out;
	if ((rc = -pthread_create(&g->timer, NULL, timer_main, g)))
		goto out;
	g->timer_started = true;
	for (unsigned i = 0; i < nfs; i++) {
		/* FAN_PRE_ACCESS: Linux 6.14+, ext4/xfs/btrfs (tmpfs says EOPNOTSUPP). */
		if (fanotify_mark(g->fan, FAN_MARK_ADD | FAN_MARK_FILESYSTEM,
				  FAN_OPEN_PERM | FAN_PRE_ACCESS, AT_FDCWD, g->fs[i].mount) < 0) {
			rc = -errno;
			log_err("guard: mark %s: %s", g->fs[i].mount, strerror(errno));
			goto out;
		}
	}
	log_info("guard: intent from %s; reads %s; vault guarded by %s",
		 g->intent ? "eBPF" : "/proc/<tid>/syscall",
		 g->leases_ok ? "free under read leases" : "cost a round trip each",
		 g->tamper >= 0 ? "its own fanotify group" : "a path check");
	*out = g;
	g = NULL;
out:
	if (g && g->reader)
		vault_guard_stop(g);
	else if (g) {
		if (g->fan >= 0)
			close(g->fan);
		if (g->tamper >= 0)
			close(g->tamper);
		free_guard(g);
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
	/* The holder saves what lost its name while the vault group's thread still answers
	 * the store's opens there. */
	pthread_mutex_lock(&g->hmu);
	g->holds_off = g->hold_stop = true;
	pthread_mutex_unlock(&g->hmu);
	if (g->holder_started) {
		holder_kick(g);
		pthread_join(g->holder, NULL);
	}
	uint64_t one = 1;
	if (g->wake >= 0 && write(g->wake, &one, sizeof(one)) < 0)
		log_warn("guard: wake: %s", strerror(errno));
	if (g->reader)
		pthread_join(g->reader, NULL);
	if (g->gate_started)
		pthread_join(g->gate, NULL);
	/* Whatever the reader queued after the workers left: allow. */
	struct gev e;
	while (ring_pop(&g->evq, &e)) {
		if (e.kind == EV_LEASE) {
			fcntl(e.fd, F_SETLEASE, F_UNLCK);
			close(e.fd);
		} else {
			respond(g, e.fd, FAN_ALLOW, e.t_read);
		}
	}
	/* Closing a group allows every event still pending in the kernel. */
	close(g->fan);
	if (g->tamper >= 0)
		close(g->tamper);
	pthread_rwlock_destroy(&g->epoch_lock);
	free_guard(g);
}

void vault_guard_stats(struct vault_guard *g, struct vault_guard_stats *o)
{
	memset(o, 0, sizeof(*o));
#define C(x) o->x = atomic_load(&g->n.x)
	C(events); C(open_perm); C(pre_access); C(self); C(trusted); C(read_only);
	C(already_saved); C(saved_full); C(saved_range); C(resaved_other_actor);
	C(tamper_denied); C(save_failed); C(enospc); C(timeouts); C(queue_full);
	C(fail_open); C(fail_closed); C(response_retries); C(epochs_advanced);
	C(unknown_intent); C(fast); C(intent_bpf); C(intent_proc); C(reads_freed);
	C(leases_taken); C(lease_breaks); C(tamper_events); C(holds_taken); C(holds_saved);
	C(holds_changed); C(holds_released); C(holds_evicted); C(holds_failed); C(holds_unwatched);
	C(self_early);
#undef C
	o->linked = o->holds_saved;
	pthread_mutex_lock(&g->tmu);
	o->leases_held = g->nleases;
	pthread_mutex_unlock(&g->tmu);
	pthread_mutex_lock(&g->hmu);
	o->holds_held = g->nholds;
	o->max_holds = g->max_holds;
	pthread_mutex_unlock(&g->hmu);
	o->holds_watched = g->fid >= 0;
	o->epoch = atomic_load(&g->epoch);
	o->tid_reporting = g->tid_ok;
	o->bpf_intent = g->intent != NULL;
	o->leases = g->leases_ok;
	o->tamper_group = g->tamper >= 0;
}
