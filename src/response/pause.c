/* pause.c: brief pauses of suspects (see pause.h).
 *
 * Why: the daemon judges events one after the other, and an attacker writes faster than a
 * file's content can be read back and inspected. Between the first destroyed file and the
 * decision the attacker keeps going; every file it reaches in that lag is one more to
 * restore. A process that destroyed a file is paused at once; all events it caused before
 * the SIGSTOP are already in the fanotify queue (they are queued in the syscall itself),
 * so once the daemon has read that queue empty after the pause began, everything the
 * process did has been judged. If that was not enough to detect it, it goes on as if
 * nothing happened (a few milliseconds later); if it was, detection's own stop has taken
 * the process over and it is never resumed here.
 *
 * A process with a controlling terminal is not paused: an interactive shell with job
 * control reaps a stopped foreground job ("[1]+ Stopped"), takes the terminal back and
 * leaves the job in the background after SIGCONT. Non-interactive parents (scripts, smbd,
 * cron) wait without WUNTRACED and see nothing. */
#include "response/pause.h"

#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "capture/proccache.h"

static int signal_fd(int fd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
}

int pause_add(struct pause_set *s, pid_t pid, uint64_t start_ns, uint64_t now_ns)
{
	for (int i = 0; i < s->n; i++)
		if (s->p[i].pid == pid)
			return 0;
	if (s->n >= PAUSE_MAX || pid <= 1 || pid == getpid()) {
		s->skipped++;
		return 0;
	}
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return errno == ESRCH ? 0 : -errno;
	/* the pidfd pins the identity; now check it is the process the engine judged */
	struct proc_stat ps;
	int rc = proccache_stat(pid, &ps);
	if (rc) {
		close(fd);
		return rc == -ENOENT || rc == -ESRCH ? 0 : rc;
	}
	uint64_t diff = ps.start_ns > start_ns ? ps.start_ns - start_ns : start_ns - ps.start_ns;
	if ((start_ns && diff > 20000000ull) || ps.tty_nr != 0) {
		close(fd);
		s->skipped++;
		return 0;
	}
	if (signal_fd(fd, SIGSTOP) < 0) {
		int e = errno;
		close(fd);
		return e == ESRCH ? 0 : -e;
	}
	s->p[s->n].pid = pid;
	s->p[s->n].pidfd = fd;
	s->p[s->n].since_ns = now_ns;
	s->n++;
	s->paused++;
	return 1;
}

static void drop(struct pause_set *s, int i, bool resume)
{
	if (resume) {
		signal_fd(s->p[i].pidfd, SIGCONT);
		s->resumed++;
	}
	close(s->p[i].pidfd);
	s->p[i] = s->p[--s->n];
}

void pause_forget(struct pause_set *s, pid_t pid)
{
	for (int i = 0; i < s->n; i++)
		if (s->p[i].pid == pid) {
			drop(s, i, false);
			return;
		}
}

int pause_release(struct pause_set *s, uint64_t drained_ns, uint64_t now_ns, uint64_t max_ns)
{
	int c = 0;
	for (int i = 0; i < s->n;) {
		if (s->p[i].since_ns < drained_ns || now_ns - s->p[i].since_ns > max_ns) {
			drop(s, i, true);
			c++;
		} else {
			i++;
		}
	}
	return c;
}

void pause_release_all(struct pause_set *s)
{
	while (s->n)
		drop(s, 0, true);
}
