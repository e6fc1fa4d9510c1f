/* control.c: control socket server and client. The server answers in the daemon's own
 * thread: a request is one datagram-like message already complete when accept()ed sockets
 * become readable, and a client that sends nothing is dropped on the next serve call after
 * a short grace instead of holding the loop. */
#include "control/control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"

struct control {
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	control_handler h;
	void *ctx;
	char *reply;
};

static int make_addr(struct sockaddr_un *a, const char *dir)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if ((size_t)snprintf(a->sun_path, sizeof(a->sun_path), "%s/%s", dir, CONTROL_SOCK_NAME) >=
	    sizeof(a->sun_path))
		return -ENAMETOOLONG;
	return 0;
}

int control_listen(struct control **out, const char *dir, control_handler h, void *ctx)
{
	int rc;
	struct sockaddr_un a;
	struct control *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = -1;
	c->h = h;
	c->ctx = ctx;
	c->reply = malloc(CONTROL_REPLY_MAX);
	if (!c->reply) {
		rc = -ENOMEM;
		goto out;
	}
	rc = make_addr(&a, dir);
	if (rc)
		goto out;
	c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->fd < 0) {
		rc = -errno;
		goto out;
	}
	mode_t old = umask(0077); /* the socket itself: root (and ward's uid) only */
	int b = bind(c->fd, (struct sockaddr *)&a, sizeof(a));
	int berr = errno;
	if (b < 0 && berr == EADDRINUSE) {
		char probe[64];
		if (control_request(dir, "ping", probe, sizeof(probe)) == 0) {
			umask(old);
			rc = -EADDRINUSE;
			goto out;
		}
		unlink(a.sun_path); /* stale: its ward is gone */
		b = bind(c->fd, (struct sockaddr *)&a, sizeof(a));
		berr = errno;
	}
	umask(old);
	if (b < 0) {
		rc = -berr;
		goto out;
	}
	snprintf(c->path, sizeof(c->path), "%s", a.sun_path);
	if (listen(c->fd, 16) < 0) {
		rc = -errno;
		goto out;
	}
	*out = c;
	return 0;
out:
	if (c->fd >= 0)
		close(c->fd);
	free(c->reply);
	free(c);
	return rc;
}

int control_fd(const struct control *c)
{
	return c->fd;
}

static void serve_one(struct control *c, int fd)
{
	struct ucred cr;
	socklen_t crl = sizeof(cr);
	char req[CONTROL_REQ_MAX + 1];
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crl) < 0)
		return;
	if (cr.uid != 0 && cr.uid != geteuid()) {
		static const char no[] = "{\"error\":\"permission denied: root only\"}";
		log_warn("control: refused uid %u (pid %d)", cr.uid, cr.pid);
		send(fd, no, sizeof(no) - 1, MSG_NOSIGNAL);
		return;
	}
	/* the client sends right after connecting; wait briefly, never long */
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, 200) <= 0)
		return;
	ssize_t n = recv(fd, req, sizeof(req), MSG_DONTWAIT | MSG_TRUNC);
	if (n <= 0)
		return;
	if ((size_t)n > CONTROL_REQ_MAX) {
		static const char big[] = "{\"error\":\"request too long\"}";
		send(fd, big, sizeof(big) - 1, MSG_NOSIGNAL);
		return;
	}
	req[n] = '\0';
	if (memchr(req, '\0', (size_t)n)) {
		static const char bad[] = "{\"error\":\"malformed request\"}";
		send(fd, bad, sizeof(bad) - 1, MSG_NOSIGNAL);
		return;
	}
	c->reply[0] = '\0';
	if (strcmp(req, "ping") == 0)
		snprintf(c->reply, CONTROL_REPLY_MAX, "{\"pong\":true}");
	else
		c->h(req, c->reply, CONTROL_REPLY_MAX, c->ctx);
	send(fd, c->reply, strlen(c->reply), MSG_NOSIGNAL | MSG_DONTWAIT);
}

void control_serve(struct control *c)
{
	for (int i = 0; i < 16; i++) {
		int fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			return;
		serve_one(c, fd);
		close(fd);
	}
}

void control_close(struct control *c)
{
	if (!c)
		return;
	if (c->fd >= 0) {
		close(c->fd);
		unlink(c->path);
	}
	free(c->reply);
	free(c);
}

int control_request(const char *dir, const char *req, char *reply, size_t cap)
{
	int rc;
	struct sockaddr_un a;
	rc = make_addr(&a, dir);
	if (rc)
		return rc;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct timeval tv = {.tv_sec = 5};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		rc = -errno;
		goto out;
	}
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0) {
		rc = -errno;
		goto out;
	}
	ssize_t n = recv(fd, reply, cap - 1, 0);
	if (n < 0) {
		rc = errno == EAGAIN ? -ETIMEDOUT : -errno;
		goto out;
	}
	reply[n] = '\0';
	rc = strstr(reply, "\"error\":\"permission denied") ? -EACCES : 0;
out:
	close(fd);
	return rc;
}
