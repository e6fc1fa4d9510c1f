/* execguard.h: the exec-time gate: a fanotify content group with FAN_OPEN_EXEC_PERM marks
 * on whole filesystems, whose events are answered from the scanner's verdicts (FAN_DENY
 * on a known-bad program: execve fails with EPERM, a shell exits 126), and the scan of
 * newly written executables and scripts when they are closed after writing.
 *
 * Threads: one reader answers every cached verdict at once (an fstat and a cache lookup,
 * no file I/O) and enforces the deadline; N workers hash and YARA-scan the uncached files
 * through the event fd (never by path). Every permission event is answered: FAN_DENY
 * only on a match; FAN_ALLOW on a clean verdict, on any internal error, when the work
 * queue is full and when the deadline passes (each counted). execguard_stop(), or the
 * process dying, closes the group and the kernel allows whatever was still pending.
 * Each answer's read-to-answer time goes to ward_metrics.perm_latency (metrics.h).
 *
 * Writes: with watch_writes the guard owns a second, notification-class group with
 * FAN_CLOSE_WRITE on the same filesystems (a separate group so a burst of writes never
 * queues ahead of an exec), and scans closed files that have an exec bit or start with
 * "#!" or an ELF header; a match raises an alert (nothing can be denied there) and is
 * cached, so a later exec of the file is denied without reading it again. A daemon with
 * its own close-write events calls execguard_scan_fd() instead. */
#ifndef WARD_PREVENT_EXECGUARD_H
#define WARD_PREVENT_EXECGUARD_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "prevent/scanner.h"

enum execguard_when {
	EXECGUARD_AT_EXEC = 0,   /* a program about to run */
	EXECGUARD_AT_WRITE = 1,  /* a file closed after writing */
};

struct execguard_alert {
	pid_t pid;                  /* the process that ran or wrote the file */
	enum execguard_when when;
	bool denied;                /* false: written file, or allowed after the deadline */
	bool cached;                /* the verdict came from the cache */
	const char *path;           /* readlink of the event fd; "" if unknown */
	const char *reason;         /* the scanner's reason: names the indicator */
};

/* Called from guard threads after the event is answered; must be thread-safe. The
 * alert's strings are valid during the call only. */
typedef void (*execguard_alert_fn)(void *ctx, const struct execguard_alert *a);

struct execguard_opts {
	struct scanner *scanner;     /* borrowed: must outlive the guard */
	const char *const *paths;    /* one FAN_MARK_FILESYSTEM mark on each path's filesystem */
	size_t npaths;
	unsigned workers;            /* scanning threads; 0: 2 */
	unsigned deadline_ms;        /* per uncached exec; 0: 1000 */
	bool watch_writes;           /* scan executables and scripts at close-after-write */
	/* After a clean verdict, put an evictable ignore mark on the inode so later execs
	 * raise no event at all. The kernel clears it on the next write or truncate (it has
	 * no FAN_MARK_IGNORED_SURV_MODIFY), and the guard flushes all such marks when the
	 * scanner's generation changes; but a write through a shared writable mmap raises no
	 * modify event and would leave the mark in place. Off by default for that reason. */
	bool ignore_clean;
	execguard_alert_fn alert;
	void *alert_ctx;
};

struct execguard_stats {
	uint64_t events;             /* exec permission events read */
	uint64_t allowed, denied;
	uint64_t cache_answers;      /* answered by the reader from the cache */
	uint64_t scanned;            /* answered after a scan */
	uint64_t deadline_allows;    /* allowed because the deadline passed */
	uint64_t error_allows;       /* allowed after an internal error */
	uint64_t overload_allows;    /* allowed because the work queue was full */
	uint64_t write_events, write_scans, write_matches, write_drops;
	uint64_t ignore_marks;       /* clean inodes given an ignore mark (ignore_clean) */
};

struct execguard;

/* Creates both groups, marks every path, starts the threads. -errno on failure (with a
 * log line saying what the kernel refused); nothing is left running then. */
int execguard_start(const struct execguard_opts *opts, struct execguard **out);
/* Stops the threads, allows anything unanswered, closes the groups. Accepts NULL. */
void execguard_stop(struct execguard *g);
void execguard_get_stats(struct execguard *g, struct execguard_stats *st);

/* The close-after-write path on the caller's thread, for a daemon that has the fd of a
 * file just written: skips files that are neither executable nor start with "#!" or an
 * ELF header, scans the rest (caching the verdict) and raises an AT_WRITE alert on a
 * match. path may be NULL (then it is read from the fd). 1 on a match, 0 if clean or
 * skipped, -errno on error. */
int execguard_scan_fd(struct execguard *g, int fd, pid_t pid, const char *path);
#endif
