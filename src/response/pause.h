/* pause.h: brief pauses of suspects. When a process destroys its first file without its
 * actor reaching the detection threshold yet, protect mode pauses it (SIGSTOP through a
 * pidfd) so that it cannot go on while the events it already caused, still queued in the
 * kernel, are read and judged; once the queue has been seen empty after the pause began it
 * is resumed (SIGCONT) unless detection took it over. Owns the pidfds of paused processes. */
#ifndef WARD_PAUSE_H
#define WARD_PAUSE_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define PAUSE_MAX 64

struct pause_set {
	int n;
	struct {
		pid_t pid;
		int pidfd;
		uint64_t since_ns;   /* CLOCK_MONOTONIC ns when paused */
	} p[PAUSE_MAX];
	uint64_t paused, resumed, skipped;
};

/* Pauses pid if it still is the process that started at start_ns (CLOCK_BOOTTIME ns, 0 skips
 * the check) and has no controlling terminal (an interactive shell with job control would
 * see its foreground job stop and take the terminal back; such processes are only stopped
 * on detection). Returns 1 paused, 0 skipped (gone, already paused, terminal, set full),
 * or -errno. */
int pause_add(struct pause_set *s, pid_t pid, uint64_t start_ns, uint64_t now_ns);
/* Detection took pid over (stopped, to be killed or kept): never resume it. */
void pause_forget(struct pause_set *s, pid_t pid);
/* The event queue was read empty at drained_ns (CLOCK_MONOTONIC): every pause begun before
 * then has had its queued events judged and is resumed. Also resumes any pause older than
 * max_ns whatever the queue (a flood must not hold an innocent process). Returns the number
 * resumed. */
int pause_release(struct pause_set *s, uint64_t drained_ns, uint64_t now_ns, uint64_t max_ns);
/* Resumes everything (ward stopping). */
void pause_release_all(struct pause_set *s);
#endif
