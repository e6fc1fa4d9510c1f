/* proccache.c: a chained hash table of processes keyed by pid.
 *
 * Lifetime: an entry is created at fork/exec (eBPF) or on first sight (/proc), updated by
 * exec, marked at exit and freed by proccache_expire() once it has been dead for the grace
 * period. Fanotify events are read after the fact, so the exit record of a short-lived
 * process is usually consumed before that process's file events are handled: keeping dead
 * entries for a while is what makes attribution of `sh -c 'echo > f'` work.
 *
 * A pid reused by a new process replaces the entry at the new fork/exec (start time
 * differs). Events still queued from the old process would then be attributed to the new
 * one; pid reuse within the grace period needs pid_max wrapping and is accepted. */
#include "capture/proccache.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "capture/procmon.h"

struct pc_entry {
	struct pc_entry *next;
	struct ward_proc p;
};

struct proccache {
	struct pc_entry **buckets;
	size_t nbuckets;          /* power of two */
	size_t count;
	uint64_t grace_ns;
	struct ward_proc unknown; /* returned on attribution failure */
	struct proccache_stats st;
	long clk_tck;
	uint64_t boot_ns_at_tick0;
};

uint64_t proccache_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int proccache_create(struct proccache **out, uint64_t grace_ns)
{
	struct proccache *pc = calloc(1, sizeof(*pc));
	if (!pc)
		return -ENOMEM;
	pc->nbuckets = 1024;
	pc->buckets = calloc(pc->nbuckets, sizeof(*pc->buckets));
	if (!pc->buckets) {
		free(pc);
		return -ENOMEM;
	}
	pc->grace_ns = grace_ns;
	pc->clk_tck = sysconf(_SC_CLK_TCK);
	if (pc->clk_tck <= 0)
		pc->clk_tck = 100;
	*out = pc;
	return 0;
}

void proccache_destroy(struct proccache *pc)
{
	if (!pc)
		return;
	for (size_t i = 0; i < pc->nbuckets; i++) {
		struct pc_entry *e = pc->buckets[i];
		while (e) {
			struct pc_entry *n = e->next;
			free(e);
			e = n;
		}
	}
	free(pc->buckets);
	free(pc);
}

static size_t slot(const struct proccache *pc, pid_t pid)
{
	return ((uint32_t)pid * 2654435761u) & (pc->nbuckets - 1);
}

static struct pc_entry *find(struct proccache *pc, pid_t pid)
{
	for (struct pc_entry *e = pc->buckets[slot(pc, pid)]; e; e = e->next)
		if (e->p.pid == pid)
			return e;
	return NULL;
}

static void grow(struct proccache *pc)
{
	size_t nb = pc->nbuckets * 2;
	struct pc_entry **b = calloc(nb, sizeof(*b));
	if (!b)
		return; /* keep the longer chains: still correct */
	for (size_t i = 0; i < pc->nbuckets; i++) {
		struct pc_entry *e = pc->buckets[i];
		while (e) {
			struct pc_entry *n = e->next;
			size_t s = ((uint32_t)e->p.pid * 2654435761u) & (nb - 1);
			e->next = b[s];
			b[s] = e;
			e = n;
		}
	}
	free(pc->buckets);
	pc->buckets = b;
	pc->nbuckets = nb;
}

/* Returns the entry for pid, creating an empty one. NULL only when out of memory. */
static struct pc_entry *upsert(struct proccache *pc, pid_t pid)
{
	struct pc_entry *e = find(pc, pid);
	if (e)
		return e;
	if (pc->count >= pc->nbuckets)
		grow(pc);
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->p.pid = pid;
	size_t s = slot(pc, pid);
	e->next = pc->buckets[s];
	pc->buckets[s] = e;
	pc->count++;
	return e;
}

static void copy_str(char *dst, size_t cap, const char *src, size_t srccap)
{
	size_t n = strnlen(src, srccap);
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

void proccache_apply(struct proccache *pc, const struct procmon_rec *r)
{
	struct pc_entry *e;
	switch (r->kind) {
	case PM_FORK: {
		/* a forked child runs its parent's program until it execs */
		struct pc_entry *parent = find(pc, (pid_t)r->ppid);
		e = upsert(pc, (pid_t)r->pid);
		if (!e)
			return;
		if (parent && parent != e) {
			e->p = parent->p;
			e->p.pid = (pid_t)r->pid;
		} else {
			memset(&e->p, 0, sizeof(e->p));
			e->p.pid = (pid_t)r->pid;
		}
		e->p.ppid = (pid_t)r->ppid;
		e->p.uid = r->uid;
		e->p.gid = r->gid;
		e->p.start_ns = r->start_ns;
		e->p.exit_ns = 0;
		e->p.cgroup_id = r->cgroup_id;
		copy_str(e->p.cgroup, sizeof(e->p.cgroup), r->cgroup, sizeof(r->cgroup));
		copy_str(e->p.comm, sizeof(e->p.comm), r->comm, sizeof(r->comm));
		/* known only if the parent was: else the exec record or /proc will tell */
		e->p.known = parent != NULL && parent->p.known;
		break;
	}
	case PM_EXEC:
		e = upsert(pc, (pid_t)r->pid);
		if (!e)
			return;
		e->p.ppid = (pid_t)r->ppid;
		e->p.uid = r->uid;
		e->p.gid = r->gid;
		e->p.start_ns = r->start_ns;
		e->p.exit_ns = 0;
		e->p.cgroup_id = r->cgroup_id;
		copy_str(e->p.cgroup, sizeof(e->p.cgroup), r->cgroup, sizeof(r->cgroup));
		copy_str(e->p.comm, sizeof(e->p.comm), r->comm, sizeof(r->comm));
		copy_str(e->p.exe, sizeof(e->p.exe), r->filename, sizeof(r->filename));
		{
			size_t n = r->args_len < sizeof(r->args) ? r->args_len : sizeof(r->args);
			if (n > sizeof(e->p.args))
				n = sizeof(e->p.args);
			memcpy(e->p.args, r->args, n);
			e->p.args_len = (uint16_t)n;
		}
		e->p.known = true;
		/* a relative exec path ("./x") is made absolute from /proc while we can */
		if (e->p.exe[0] != '/') {
			char link[64], buf[WARD_EXE_MAX];
			snprintf(link, sizeof(link), "/proc/%d/exe", (int)r->pid);
			ssize_t n = readlink(link, buf, sizeof(buf) - 1);
			if (n > 0) {
				buf[n] = '\0';
				memcpy(e->p.exe, buf, (size_t)n + 1);
			}
		}
		break;
	case PM_EXIT:
		e = find(pc, (pid_t)r->pid);
		if (e && (e->p.start_ns == r->start_ns || e->p.start_ns == 0))
			e->p.exit_ns = r->ts_ns ? r->ts_ns : proccache_now_ns();
		break;
	default:
		break;
	}
}

/* Reads a small /proc file into buf; returns bytes read or -errno. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n;
	do {
		n = read(fd, buf, cap);
	} while (n < 0 && errno == EINTR);
	int err = errno;
	close(fd);
	return n < 0 ? -err : n;
}

int proccache_stat(pid_t pid, struct proc_stat *out)
{
	char path[64], buf[1024];
	memset(out, 0, sizeof(*out));
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	ssize_t n = read_small(path, buf, sizeof(buf) - 1);
	if (n <= 0)
		return n < 0 ? (int)n : -ESRCH;
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: the fields resume after the last ')' */
	char *lp = strchr(buf, '('), *rp = strrchr(buf, ')');
	if (!lp || !rp || rp < lp)
		return -EINVAL;
	size_t cl = (size_t)(rp - lp - 1);
	if (cl >= sizeof(out->comm))
		cl = sizeof(out->comm) - 1;
	memcpy(out->comm, lp + 1, cl);
	int ppid, tty;
	unsigned long long start_ticks = 0;
	/* fields 3.. : state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
	 * utime stime cutime cstime priority nice threads itrealvalue starttime */
	if (sscanf(rp + 2, "%c %d %*d %*d %d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
		   &out->state, &ppid, &tty, &start_ticks) != 4)
		return -EINVAL;
	out->ppid = ppid;
	out->tty_nr = tty;
	long tck = sysconf(_SC_CLK_TCK);
	out->start_ns = start_ticks * (1000000000ull / (unsigned long long)(tck > 0 ? tck : 100));
	return 0;
}

int proccache_read_proc(pid_t pid, struct ward_proc *p)
{
	char path[64], buf[1024];
	ssize_t n;
	struct proc_stat ps;
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	int rc = proccache_stat(pid, &ps);
	if (rc)
		return rc;
	memcpy(p->comm, ps.comm, sizeof(p->comm));
	p->ppid = ps.ppid;
	p->start_ns = ps.start_ns;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	n = read_small(path, buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = '\0';
		char *u = strstr(buf, "\nUid:");
		char *g = strstr(buf, "\nGid:");
		if (u)
			p->uid = (uint32_t)strtoul(u + 5, NULL, 10);
		if (g)
			p->gid = (uint32_t)strtoul(g + 5, NULL, 10);
	}

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, p->exe, sizeof(p->exe) - 1);
	p->exe[n > 0 ? n : 0] = '\0';

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	n = read_small(path, p->args, sizeof(p->args));
	p->args_len = (uint16_t)(n > 0 ? n : 0);

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	n = read_small(path, buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = '\0';
		/* the unified hierarchy's line is "0::/path" */
		char *l = strstr(buf, "0::");
		if (l && (l == buf || l[-1] == '\n')) {
			l += 3;
			size_t len = strcspn(l, "\n");
			if (len >= sizeof(p->cgroup))
				len = sizeof(p->cgroup) - 1;
			memcpy(p->cgroup, l, len);
			p->cgroup[len] = '\0';
		}
	}
	p->known = true;
	return 0;
}

const struct ward_proc *proccache_get(struct proccache *pc, pid_t pid)
{
	struct pc_entry *e = find(pc, pid);
	if (e && e->p.known) {
		pc->st.hits++;
		/* A live process whose recorded parent has exited was reparented by the kernel
		 * (to init or a subreaper), which sends no event: a daemon that forked itself
		 * into the background (smbd -D) is a service, a child of init, not a child of the
		 * shell that started it. Read the parent again, once. */
		if (!e->p.exit_ns && e->p.ppid > 1) {
			struct pc_entry *pe = find(pc, e->p.ppid);
			if (!pe || pe->p.exit_ns) { /* gone, or expired from the cache */
				struct proc_stat ps;
				if (proccache_stat(pid, &ps) == 0 && ps.ppid > 0)
					e->p.ppid = ps.ppid;
			}
		}
		return &e->p;
	}
	pc->st.misses++;
	struct ward_proc tmp;
	pc->st.proc_reads++;
	if (proccache_read_proc(pid, &tmp) == 0) {
		if (!e)
			e = upsert(pc, pid);
		if (e) {
			/* keep what eBPF saw of a forked child (cgroup) if /proc lacks it */
			if (!tmp.cgroup[0] && e->p.cgroup[0])
				memcpy(tmp.cgroup, e->p.cgroup, sizeof(tmp.cgroup));
			e->p = tmp;
			return &e->p;
		}
	}
	pc->st.failures++;
	if (e) /* a fork we saw, whose parent we did not know: pid and ppid are still true */
		return &e->p;
	memset(&pc->unknown, 0, sizeof(pc->unknown));
	pc->unknown.pid = pid;
	return &pc->unknown;
}

int proccache_scan(struct proccache *pc)
{
	DIR *d = opendir("/proc");
	if (!d)
		return -errno;
	int count = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid_t pid = (pid_t)strtol(de->d_name, NULL, 10);
		struct ward_proc tmp;
		if (proccache_read_proc(pid, &tmp) != 0)
			continue; /* exited meanwhile */
		struct pc_entry *e = upsert(pc, pid);
		if (!e)
			break;
		e->p = tmp;
		count++;
	}
	closedir(d);
	return count;
}

void proccache_expire(struct proccache *pc, uint64_t now_ns)
{
	for (size_t i = 0; i < pc->nbuckets; i++) {
		struct pc_entry **pp = &pc->buckets[i];
		while (*pp) {
			struct pc_entry *e = *pp;
			if (e->p.exit_ns && now_ns > e->p.exit_ns + pc->grace_ns) {
				*pp = e->next;
				free(e);
				pc->count--;
				pc->st.evicted++;
			} else {
				pp = &e->next;
			}
		}
	}
}

void proccache_stats(const struct proccache *pc, struct proccache_stats *out)
{
	*out = pc->st;
	out->entries = pc->count;
}
