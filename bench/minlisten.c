/* minlisten: the kernel's floor for ward's sensor: a fanotify group with exactly ward's
 * flags and marks that reads every event and discards it (closing pidfds). The benchmark
 * compares ward against this, in the same run.
 *   minlisten DIR   (runs until SIGTERM/SIGINT; prints the events read; "ready" on stderr) */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/fanotify.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_sig(int s)
{
	stop = 1;
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	int fd = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_DFID_NAME_TARGET | FAN_REPORT_PIDFD,
			       O_RDONLY | O_LARGEFILE | O_CLOEXEC);
	if (fd < 0 || fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM,
				    FAN_CREATE | FAN_DELETE | FAN_RENAME | FAN_MODIFY | FAN_CLOSE_WRITE | FAN_ONDIR,
				    AT_FDCWD, argv[1]) < 0) {
		perror("fanotify");
		return 1;
	}
	struct sigaction sa = {.sa_handler = on_sig};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	static char buf[256 * 1024];
	unsigned long long n = 0;
	fprintf(stderr, "ready\n");
	/* the same read pattern as ward's loop: epoll, then read until EAGAIN */
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ee = {.events = EPOLLIN, .data.fd = fd};
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ee);
	while (!stop) {
		if (epoll_wait(ep, &ee, 1, -1) < 0)
			continue;
		ssize_t len = read(fd, buf, sizeof(buf));
		if (len <= 0) {
			if (len < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			break;
		}
		struct fanotify_event_metadata *m = (void *)buf;
		for (; FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len)) {
			n++;
			char *p = (char *)m + m->metadata_len, *end = (char *)m + m->event_len;
			while (p < end) {
				struct fanotify_event_info_header *h = (void *)p;
				if (h->info_type == FAN_EVENT_INFO_TYPE_PIDFD) {
					int pfd = ((struct fanotify_event_info_pidfd *)p)->pidfd;
					if (pfd >= 0)
						close(pfd);
				}
				if (h->len == 0)
					break;
				p += h->len;
			}
		}
	}
	printf("%llu\n", n);
	return 0;
}
