/* response.h: stopping an actor: its process and every descendant, frozen with SIGSTOP
 * through pidfds (a pid reused meanwhile is never signalled), then killed or resumed.
 * Owns the pidfds of what it stopped. */
#ifndef WARD_RESPONSE_H
#define WARD_RESPONSE_H
#include <stdint.h>
#include <sys/types.h>

#define RESPONSE_MAX 512

struct response_set {
	int n;
	pid_t pid[RESPONSE_MAX];
	int pidfd[RESPONSE_MAX];
	uint64_t stopped_ns;   /* CLOCK_REALTIME ns when the root was stopped */
};

/* Stops root (if its start time matches start_ns, CLOCK_BOOTTIME ns as in ward_proc; 0
 * skips the check) and its descendants, repeating until no new child appears. Returns the
 * number stopped (0 when root is already gone) or -errno. */
int response_stop_tree(pid_t root, uint64_t start_ns, struct response_set *set);
/* Also stops extra processes (executable-level actors: every contributor). */
int response_stop_more(const pid_t *pids, int n, struct response_set *set);
/* SIGKILL everything stopped; the pidfds are closed. */
void response_kill(struct response_set *set);
/* SIGCONT everything stopped (after a false alarm); the pidfds are closed. */
void response_resume(struct response_set *set);
void response_release(struct response_set *set);   /* closes pidfds, signals nothing */
#endif
