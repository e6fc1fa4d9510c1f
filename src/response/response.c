/* response.c: freezing a process tree. SIGSTOP is sent through a pidfd opened before the
 * start time is checked, so the signal reaches the process that was judged or nothing. A
 * stopped process cannot fork; children forked before the stop are found by walking /proc
 * until a pass finds nothing new (bounded passes: a fork bomb is not a reason to hang). */
#include "response/response.h"

#include "capture/proccache.h"

#include <ctype.h>
#include <stdbool.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int pidfd_signal(int fd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
}

static int stat_of(pid_t pid, pid_t *ppid, uint64_t *start_ns)
{
	struct proc_stat ps;
	int rc = proccache_stat(pid, &ps);
	if (rc == 0) {
		*ppid = ps.ppid;
		*start_ns = ps.start_ns;
	}
	return rc;
}

static bool have(const struct response_set *s, pid_t pid)
{
	for (int i = 0; i < s->n; i++)
		if (s->pid[i] == pid)
			return true;
	return false;
}

static int stop_one(struct response_set *s, pid_t pid)
{
	if (have(s, pid) || s->n >= RESPONSE_MAX)
		return 0;
	int fd = pidfd_open_(pid);
	if (fd < 0)
		return -errno;
	if (pidfd_signal(fd, SIGSTOP) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	s->pid[s->n] = pid;
	s->pidfd[s->n] = fd;
	s->n++;
	return 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One pass over /proc: stops every process whose parent is in the set. */
static int sweep(struct response_set *s)
{
	DIR *d = opendir("/proc");
	if (!d)
		return -errno;
	int added = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid_t pid = (pid_t)atoi(de->d_name), pp;
		uint64_t st;
		if (have(s, pid) || stat_of(pid, &pp, &st) != 0)
			continue;
		if (have(s, pp) && stop_one(s, pid) > 0)
			added++;
	}
	closedir(d);
	return added;
}

int response_stop_tree(pid_t root, uint64_t start_ns, struct response_set *s)
{
	pid_t pp;
	uint64_t st;
	int fd = pidfd_open_(root);
	if (fd < 0)
		return errno == ESRCH ? 0 : -errno;
	/* the pidfd pins the identity; now check it is the process that was judged (start
	 * times agree to the clock tick /proc reports in) */
	if (start_ns && stat_of(root, &pp, &st) == 0) {
		uint64_t diff = st > start_ns ? st - start_ns : start_ns - st;
		if (diff > 20000000ull) {
			close(fd);
			return 0;
		}
	}
	if (pidfd_signal(fd, SIGSTOP) < 0) {
		int e = errno;
		close(fd);
		return e == ESRCH ? 0 : -e;
	}
	s->stopped_ns = now_ns();
	s->pid[s->n] = root;
	s->pidfd[s->n] = fd;
	s->n++;
	for (int pass = 0; pass < 8; pass++)
		if (sweep(s) <= 0)
			break;
	return s->n;
}

int response_stop_more(const pid_t *pids, int n, struct response_set *s)
{
	int c = 0;
	for (int i = 0; i < n; i++)
		if (stop_one(s, pids[i]) > 0)
			c++;
	if (c && !s->stopped_ns)
		s->stopped_ns = now_ns();
	for (int pass = 0; c && pass < 8; pass++)
		if (sweep(s) <= 0)
			break;
	return c;
}

static void all(struct response_set *s, int sig)
{
	for (int i = 0; i < s->n; i++) {
		if (s->pidfd[i] >= 0) {
			if (sig)
				pidfd_signal(s->pidfd[i], sig);
			close(s->pidfd[i]);
			s->pidfd[i] = -1;
		}
	}
}

void response_kill(struct response_set *s)
{
	all(s, SIGKILL);
}

void response_resume(struct response_set *s)
{
	all(s, SIGCONT);
}

void response_release(struct response_set *s)
{
	all(s, 0);
}
