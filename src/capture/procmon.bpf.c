// SPDX-License-Identifier: GPL-2.0-or-later
/* procmon.bpf.c: kernel side of the process monitor. Records every exec, fork and exit
 * as it happens, so that a file event read later from fanotify is still attributed after
 * its short-lived process is gone (fanotify then reports pidfd -1 and /proc is empty).
 * tp_btf programs: kprobes and fentry do not load on the kernels ward targets (see
 * KERNEL-NOTES.md), BTF tracepoints do. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "capture/procmon.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20); /* ~1100 records; RSS counts it twice (wrap mapping) */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

static __always_inline void count_lost(void)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&lost, &k);
	if (v)
		(*v)++;
}

static __always_inline struct procmon_rec *start(__u32 kind, struct task_struct *t)
{
	struct procmon_rec *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		count_lost();
		return 0;
	}
	r->kind = kind;
	r->pid = BPF_CORE_READ(t, tgid);
	r->ppid = BPF_CORE_READ(t, real_parent, tgid);
	r->uid = BPF_CORE_READ(t, cred, uid.val);
	r->gid = BPF_CORE_READ(t, cred, gid.val);
	r->start_ns = BPF_CORE_READ(t, start_boottime);
	r->ts_ns = bpf_ktime_get_boot_ns();
	r->args_len = 0;
	r->filename[0] = 0;
	r->args[0] = 0;
	r->cgroup[0] = 0;
	r->cgroup_id = 0;
	BPF_CORE_READ_STR_INTO(&r->comm, t, comm);
	return r;
}

static __always_inline void read_cgroup(struct procmon_rec *r, struct task_struct *t)
{
	struct kernfs_node *kn = BPF_CORE_READ(t, cgroups, dfl_cgrp, kn);
	if (!kn)
		return;
	r->cgroup_id = BPF_CORE_READ(kn, id);
	const char *name = BPF_CORE_READ(kn, name);
	bpf_probe_read_kernel_str(r->cgroup, sizeof(r->cgroup), name);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct procmon_rec *r = start(PM_EXEC, p);
	if (!r)
		return 0;
	read_cgroup(r, p);
	bpf_probe_read_kernel_str(r->filename, sizeof(r->filename), BPF_CORE_READ(bprm, filename));
	/* The new image's argv is in place by now; current == p, so a user read works
	 * unless the pages are not present, in which case user space reads /proc. */
	struct mm_struct *mm = BPF_CORE_READ(p, mm);
	unsigned long a0 = BPF_CORE_READ(mm, arg_start);
	unsigned long a1 = BPF_CORE_READ(mm, arg_end);
	unsigned long n = a1 - a0;
	if (n > PM_ARGS - 1)
		n = PM_ARGS - 1;
	n &= PM_ARGS - 1; /* a bound the verifier can see */
	if (n > 0 && bpf_probe_read_user(r->args, n, (void *)a0) == 0)
		r->args_len = n;
	bpf_ringbuf_submit(r, 0);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	/* threads share the process: fanotify reports the tgid */
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0;
	struct procmon_rec *r = start(PM_FORK, child);
	if (!r)
		return 0;
	r->ppid = BPF_CORE_READ(parent, tgid);
	read_cgroup(r, child);
	bpf_ringbuf_submit(r, 0);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *p)
{
	if (BPF_CORE_READ(p, pid) != BPF_CORE_READ(p, tgid))
		return 0;
	struct procmon_rec *r = start(PM_EXIT, p);
	if (!r)
		return 0;
	bpf_ringbuf_submit(r, 0);
	return 0;
}
