/* procmon.h: the record the eBPF process monitor (procmon.bpf.c) sends to user space, and
 * the loader that turns those records into process-cache updates. Shared by both sides. */
#ifndef WARD_PROCMON_H
#define WARD_PROCMON_H

#ifndef __bpf__
#include <linux/types.h>
#endif

enum procmon_kind { PM_EXEC = 1, PM_FORK = 2, PM_EXIT = 3 };

#define PM_COMM 16
#define PM_NAME 256
#define PM_ARGS 512
#define PM_CGROUP 64

struct procmon_rec {
	__u32 kind;
	__u32 pid;          /* tgid */
	__u32 ppid;         /* real parent's tgid */
	__u32 uid, gid;
	__u32 args_len;
	__u64 start_ns;     /* task->start_boottime, as /proc/<pid>/stat field 22 */
	__u64 ts_ns;        /* bpf_ktime_get_boot_ns() when recorded */
	__u64 cgroup_id;
	char comm[PM_COMM];
	char cgroup[PM_CGROUP];
	char filename[PM_NAME];
	char args[PM_ARGS];
};

#ifndef __bpf__
struct proccache;
struct procmon;

/* Loads and attaches the tracepoint programs. Returns 0 or -errno (e.g. -EPERM without
 * CAP_BPF, -ENOENT without BTF); on failure ward falls back to reading /proc at event time. */
int procmon_open(struct procmon **out, struct proccache *cache);
/* Feeds every pending record into the cache; returns the number consumed or -errno. */
int procmon_drain(struct procmon *pm);
/* A file descriptor to poll for readability. */
int procmon_fd(const struct procmon *pm);
/* Records the kernel could not deliver (ring buffer full). */
unsigned long long procmon_lost(const struct procmon *pm);
void procmon_close(struct procmon *pm);   /* accepts NULL */
#endif
#endif
