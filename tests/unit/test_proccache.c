/* test_proccache: fork/exec/exit records build the right entries; dead processes stay
 * attributable for the grace period and go after it; /proc reads fill a live process. */
#include <string.h>
#include <unistd.h>

#include "capture/proccache.h"
#include "capture/procmon.h"
#include "t.h"

static struct procmon_rec rec(unsigned kind, unsigned pid, unsigned ppid, const char *file, uint64_t start)
{
	struct procmon_rec r;
	memset(&r, 0, sizeof(r));
	r.kind = kind;
	r.pid = pid;
	r.ppid = ppid;
	r.uid = 1000;
	r.start_ns = start;
	r.ts_ns = start + 10;
	strcpy(r.comm, "x");
	if (file) {
		strcpy(r.filename, file);
		memcpy(r.args, "prog\0-v\0", 8);
		r.args_len = 8;
	}
	return r;
}

int main(void)
{
	struct proccache *pc;
	T_CHECK(proccache_create(&pc, 1000) == 0, "create");
	/* a shell execs, forks a child, the child execs, then exits */
	struct procmon_rec r = rec(PM_EXEC, 900001, 1, "/bin/sh", 100);
	proccache_apply(pc, &r);
	r = rec(PM_FORK, 900002, 900001, NULL, 200);
	proccache_apply(pc, &r);
	const struct ward_proc *p = proccache_get(pc, 900002);
	T_CHECK(p->known && strcmp(p->exe, "/bin/sh") == 0 && p->ppid == 900001,
		"forked child runs its parent's program: %s", p->exe);
	r = rec(PM_EXEC, 900002, 900001, "/usr/bin/openssl", 200);
	proccache_apply(pc, &r);
	p = proccache_get(pc, 900002);
	T_CHECK(strcmp(p->exe, "/usr/bin/openssl") == 0 && p->args_len == 8 &&
			memcmp(p->args, "prog\0-v\0", 8) == 0 && p->uid == 1000,
		"exec replaces the program: %s", p->exe);
	r = rec(PM_EXIT, 900002, 900001, NULL, 200);
	r.ts_ns = 5000;
	proccache_apply(pc, &r);
	proccache_expire(pc, 5500);
	p = proccache_get(pc, 900002);
	T_CHECK(p->known && p->exit_ns == 5000, "dead process still attributable within grace");
	proccache_expire(pc, 7000);
	p = proccache_get(pc, 900002);
	T_CHECK(!p->known && p->pid == 900002, "dead process gone after grace");
	/* an exit record of an older process with the same pid does not kill the new one */
	r = rec(PM_EXEC, 900003, 1, "/bin/new", 300);
	proccache_apply(pc, &r);
	r = rec(PM_EXIT, 900003, 1, NULL, 299);
	proccache_apply(pc, &r);
	p = proccache_get(pc, 900003);
	T_CHECK(p->exit_ns == 0, "stale exit ignored");
	/* a fork whose parent is unknown: pid/ppid kept, unknown until exec or /proc */
	r = rec(PM_FORK, 900004, 900999, NULL, 400);
	proccache_apply(pc, &r);
	p = proccache_get(pc, 900004);
	T_CHECK(!p->known && p->ppid == 900999, "orphan fork keeps its ids");
	/* many entries: the table grows and still finds everything */
	for (unsigned i = 0; i < 5000; i++) {
		r = rec(PM_EXEC, 1000000 + i, 1, "/bin/many", 1);
		proccache_apply(pc, &r);
	}
	int found = 0;
	for (unsigned i = 0; i < 5000; i++)
		found += strcmp(proccache_get(pc, (pid_t)(1000000 + i))->exe, "/bin/many") == 0;
	T_CHECK(found == 5000, "5000 entries found: %d", found);
	/* a live process read from /proc: ourselves */
	p = proccache_get(pc, getpid());
	char self[512];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = '\0';
	T_CHECK(p->known && strcmp(p->exe, self) == 0 && p->ppid == getppid(), "self from /proc: %s", p->exe);
	struct proccache_stats st;
	proccache_stats(pc, &st);
	T_CHECK(st.proc_reads >= 1 && st.entries >= 5000, "stats");
	T_CHECK(proccache_scan(pc) > 0, "scan /proc");
	proccache_destroy(pc);
	return T_DONE("proccache");
}
