/* proccache.h: the process cache: what ward knows of every process that may be behind a
 * file event, kept after the process exits long enough for its queued events to be read.
 * Fed by the eBPF monitor (exec/fork/exit as they happen), by a /proc scan at start-up and
 * by /proc reads on a miss. Single-threaded: owned by the sensor's thread. */
#ifndef WARD_PROCCACHE_H
#define WARD_PROCCACHE_H
#include <stdint.h>
#include <sys/types.h>

#include "core/event.h"

struct proccache;
struct procmon_rec;

struct proccache_stats {
	uint64_t entries, hits, misses, proc_reads, failures, evicted;
};

/* grace_ns: how long an exited process stays in the cache. */
int proccache_create(struct proccache **out, uint64_t grace_ns);
void proccache_destroy(struct proccache *pc);   /* accepts NULL */

/* Reads every process in /proc into the cache. Returns the count or -errno. */
int proccache_scan(struct proccache *pc);

/* Applies one eBPF record (exec, fork or exit). */
void proccache_apply(struct proccache *pc, const struct procmon_rec *r);

/* The process for pid: from the cache, else read from /proc (only if alive), else an
 * "unknown" record with known=false. Never NULL; valid until the next call that modifies
 * the cache (apply, expire, scan) — i.e. until the current event has been handled. */
const struct ward_proc *proccache_get(struct proccache *pc, pid_t pid);

/* Drops entries of processes that exited more than grace_ns ago. now_ns: boot-time ns. */
void proccache_expire(struct proccache *pc, uint64_t now_ns);

void proccache_stats(const struct proccache *pc, struct proccache_stats *out);

/* What /proc/<pid>/stat says of a process. */
struct proc_stat {
	char comm[16];
	char state;          /* 'R', 'S', 'T' (stopped), ... */
	pid_t ppid;
	int tty_nr;          /* controlling terminal, 0: none */
	uint64_t start_ns;   /* CLOCK_BOOTTIME ns, to the clock tick */
};
int proccache_stat(pid_t pid, struct proc_stat *out);   /* 0 or -errno */

/* Reads one process from /proc into p (known=true on success). Returns 0 or -errno. */
int proccache_read_proc(pid_t pid, struct ward_proc *p);

/* CLOCK_BOOTTIME in ns, the clock of ward_proc start/exit times. */
uint64_t proccache_now_ns(void);
#endif
