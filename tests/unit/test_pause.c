/* test_pause.c: brief pauses of suspects, on real child processes: a pause really stops
 * the process (state T), a drained queue resumes only pauses begun before it, the bound
 * resumes the rest, detection's takeover (forget) is never resumed, a process that is not
 * the one judged (other start time) or has a controlling terminal is left alone. */
#include "capture/proccache.h"
#include "response/pause.h"
#include "t.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char state_of(pid_t pid)
{
	/* a stop takes effect when the signal is delivered: poll briefly */
	struct proc_stat ps;
	for (int i = 0; i < 200; i++) {
		if (proccache_stat(pid, &ps))
			return '?';
		if (ps.state == 'T')
			return 'T';
		usleep(1000);
	}
	return 'R';
}

static pid_t spawn(bool new_session)
{
	pid_t p = fork();
	if (p == 0) {
		if (new_session)
			setsid(); /* no controlling terminal */
		for (;;)
			pause();
	}
	return p;
}

static uint64_t start_of(pid_t pid)
{
	struct proc_stat ps;
	return proccache_stat(pid, &ps) ? 0 : ps.start_ns;
}

int main(void)
{
	struct pause_set s = {0};
	pid_t a = spawn(true), b = spawn(true), c = spawn(true);
	uint64_t now = 1000000000ull;

	T_CHECK(pause_add(&s, a, start_of(a), now) == 1 && state_of(a) == 'T', "a paused (state T)");
	T_CHECK(pause_add(&s, a, start_of(a), now) == 0 && s.n == 1, "a second pause of a is a no-op");
	T_CHECK(pause_add(&s, b, start_of(b) + 5000000000ull, now) == 0 && state_of(b) != 'T',
		"b with another start time is not the process judged: left alone");
	T_CHECK(pause_add(&s, b, start_of(b), now + 10) == 1, "b paused later");
	T_CHECK(pause_add(&s, c, start_of(c), now + 20) == 1, "c paused");

	/* the queue was read empty after a's pause and before b's: only a goes on */
	T_CHECK(pause_release(&s, now + 5, now + 30, 250000000ull) == 1 && s.n == 2, "drained: one resumed");
	T_CHECK(state_of(a) != 'T' && state_of(b) == 'T', "a runs again, b still paused");

	/* detection took c over: forgetting it never resumes it */
	pause_forget(&s, c);
	T_CHECK(s.n == 1 && state_of(c) == 'T', "c forgotten: stays stopped");

	/* nothing drained, but the bound has passed for b */
	T_CHECK(pause_release(&s, 0, now + 10 + 250000001ull, 250000000ull) == 1 && s.n == 0 && state_of(b) != 'T',
		"the bound resumes b");
	T_CHECK(s.paused == 3 && s.resumed == 2 && s.skipped == 1, "counters %llu paused %llu resumed %llu skipped",
		(unsigned long long)s.paused, (unsigned long long)s.resumed, (unsigned long long)s.skipped);

	/* a process gone is no error */
	kill(a, SIGKILL);
	waitpid(a, NULL, 0);
	T_CHECK(pause_add(&s, a, 0, now) == 0, "a gone: nothing to pause");
	T_CHECK(pause_add(&s, getpid(), 0, now) == 0 && pause_add(&s, 1, 0, now) == 0, "never ward itself or init");

	/* a process with a controlling terminal (if this test has one to give) is not paused */
	int tty = open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC);
	if (tty >= 0) {
		close(tty);
		pid_t t = spawn(false);
		T_CHECK(pause_add(&s, t, start_of(t), now) == 0 && state_of(t) != 'T', "a terminal's process is left alone");
		kill(t, SIGKILL);
		waitpid(t, NULL, 0);
	}
	pause_release_all(&s);
	kill(b, SIGKILL);
	kill(c, SIGKILL);
	waitpid(b, NULL, 0);
	waitpid(c, NULL, 0);
	return T_DONE("pause");
}
