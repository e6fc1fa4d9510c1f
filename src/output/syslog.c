/* syslog.c: RFC 5424 formatting and the syslog transports.
 *
 * The formatter writes into a caller's buffer and never allocates, so it is easy to test
 * field by field and to fuzz. The transports are written for a sink's writer thread: every
 * blocking call is bounded by io_timeout_ms (SO_SNDTIMEO, poll on connect), SIGPIPE is
 * suppressed per send, and a dead TCP receiver moves the connection into exponential
 * backoff instead of being retried in a tight loop. Datagram transports use sendto() on an
 * unconnected socket so a restarted syslog daemon (a new /dev/log) is picked up with no
 * reconnect logic and no sticky ICMP errors. */
#include "output/syslog.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/jsonw.h"

/* --- formatter --- */

struct obuf {
	char *p;
	size_t len, cap;
	bool full;
};

static void ob_put(struct obuf *b, const char *s, size_t n)
{
	if (b->full || n > b->cap - b->len) {
		b->full = true;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void ob_c(struct obuf *b, char c)
{
	ob_put(b, &c, 1);
}

/* A header field: printable US-ASCII (33..126), at most max characters, "-" when empty.
 * Replacing rather than rejecting keeps the message deliverable when, say, the host name
 * holds a space; the JSON in MSG still carries the exact value. */
static void ob_field(struct obuf *b, const char *s, size_t max)
{
	if (!s || !*s) {
		ob_c(b, '-');
		return;
	}
	for (size_t i = 0; s[i] && i < max; i++) {
		unsigned char c = (unsigned char)s[i];
		ob_c(b, c >= 33 && c <= 126 ? (char)c : '_');
	}
}

/* SD-NAME (RFC 5424 6.3.2): like a header field but also without '=', ']' and '"'. */
static void ob_sdname(struct obuf *b, const char *s)
{
	if (!s || !*s) {
		ob_c(b, '_');
		return;
	}
	for (size_t i = 0; s[i] && i < 32; i++) {
		unsigned char c = (unsigned char)s[i];
		bool ok = c >= 33 && c <= 126 && c != '=' && c != ']' && c != '"';
		ob_c(b, ok ? (char)c : '_');
	}
}

/* Length of the UTF-8 sequence a lead byte announces; 0 for a byte that cannot lead. */
static size_t utf8_lead_len(unsigned char c)
{
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0)
		return 2;
	if ((c & 0xf0) == 0xe0)
		return 3;
	if ((c & 0xf8) == 0xf0)
		return 4;
	return 0;
}

/* PARAM-VALUE (RFC 5424 6.3.3): UTF-8 with '"', '\' and ']' escaped by a backslash.
 * Invalid UTF-8 (and NUL, which a C string cannot hold anyway) becomes U+FFFD. */
static void ob_sdvalue(struct obuf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)p);
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		if (c == '"' || c == '\\' || c == ']') {
			ob_c(b, '\\');
			ob_c(b, (char)c);
			i++;
			continue;
		}
		size_t l = utf8_lead_len(c);
		if (l && l <= n - i && jsonw_utf8_valid((const char *)p + i, l)) {
			ob_put(b, (const char *)p + i, l);
			i += l;
		} else {
			ob_put(b, "\xef\xbf\xbd", 3);
			i++;
		}
	}
}

int syslog_format(const struct syslog_fields *f, char *buf, size_t cap, size_t *out_len)
{
	struct obuf b = {.p = buf, .cap = cap};
	char tmp[64];
	int n;

	*out_len = 0;
	if (f->facility < 0 || f->facility > 23 || f->severity < 0 || f->severity > 7)
		return -EINVAL;
	n = snprintf(tmp, sizeof(tmp), "<%d>1 ", f->facility * 8 + f->severity);
	ob_put(&b, tmp, (size_t)n);

	if (f->sec < 0 || f->nsec < 0 || f->nsec >= 1000000000L) {
		ob_c(&b, '-');
	} else {
		struct tm tm;
		time_t t = (time_t)f->sec;
		if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 > 9999) {
			ob_c(&b, '-');
		} else {
			n = snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ",
				     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
				     tm.tm_min, tm.tm_sec, f->nsec / 1000);
			ob_put(&b, tmp, (size_t)n);
		}
	}
	ob_c(&b, ' ');
	ob_field(&b, f->hostname, 255);
	ob_c(&b, ' ');
	ob_field(&b, f->app_name, 48);
	ob_c(&b, ' ');
	ob_field(&b, f->procid, 128);
	ob_c(&b, ' ');
	ob_field(&b, f->msgid, 32);
	ob_c(&b, ' ');

	if (!f->sd_id) {
		ob_c(&b, '-');
	} else {
		ob_c(&b, '[');
		ob_sdname(&b, f->sd_id);
		for (size_t i = 0; i < f->nparams; i++) {
			ob_c(&b, ' ');
			ob_sdname(&b, f->params[i].name);
			ob_put(&b, "=\"", 2);
			ob_sdvalue(&b, f->params[i].value);
			ob_c(&b, '"');
		}
		ob_c(&b, ']');
	}
	if (f->msg) {
		ob_c(&b, ' ');
		if (f->bom)
			ob_put(&b, "\xef\xbb\xbf", 3);
		ob_put(&b, f->msg, f->msg_len);
	}
	if (b.full)
		return -EMSGSIZE;
	*out_len = b.len;
	return 0;
}

/* --- transports --- */

struct syslog_conn {
	enum syslog_transport transport;
	int fd;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	int facility;
	bool bom;
	int io_timeout_ms;
	int backoff_min_ms, backoff_max_ms;
	int backoff_ms;              /* current TCP delay; 0 after a successful connect */
	int64_t next_try_ms;         /* CLOCK_MONOTONIC ms before which TCP does not retry */
	char hostname[256];
	char app_name[49];
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int syslog_split_hostport(const char *addr, char *host, size_t hcap, char *port, size_t pcap)
{
	const char *h, *colon;
	size_t hl;

	if (!addr || !*addr)
		return -EINVAL;
	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		h = addr + 1;
		hl = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon || strchr(addr, ':') != colon)  /* bare v6 needs brackets */
			return -EINVAL;
		h = addr;
		hl = (size_t)(colon - addr);
	}
	size_t pl = strlen(colon + 1);
	if (hl == 0 || hl >= hcap || pl == 0 || pl >= pcap)
		return -EINVAL;
	for (size_t i = 0; i < pl; i++)
		if (colon[1 + i] < '0' || colon[1 + i] > '9')
			return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	memcpy(port, colon + 1, pl + 1);
	return 0;
}

static void set_timeouts(int fd, int ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

int syslog_conn_open(const struct syslog_cfg *cfg, struct syslog_conn **out)
{
	struct syslog_conn *c = NULL;
	struct addrinfo *res = NULL;
	int err = 0;

	*out = NULL;
	if (cfg->facility < 0 || cfg->facility > 23 || cfg->io_timeout_ms < 0 ||
	    cfg->backoff_min_ms < 0 || cfg->backoff_max_ms < 0)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = -1;
	c->transport = cfg->transport;
	c->facility = cfg->facility ? cfg->facility : 4;
	c->bom = cfg->bom;
	c->io_timeout_ms = cfg->io_timeout_ms ? cfg->io_timeout_ms : 1000;
	c->backoff_min_ms = cfg->backoff_min_ms ? cfg->backoff_min_ms : 100;
	c->backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : 30000;
	if (c->backoff_max_ms < c->backoff_min_ms)
		c->backoff_max_ms = c->backoff_min_ms;
	snprintf(c->app_name, sizeof(c->app_name), "%s", cfg->app_name ? cfg->app_name : "ward");
	if (cfg->hostname)
		snprintf(c->hostname, sizeof(c->hostname), "%s", cfg->hostname);
	else if (gethostname(c->hostname, sizeof(c->hostname) - 1) < 0)
		c->hostname[0] = '\0';   /* the formatter writes "-" */

	if (cfg->transport == SYSLOG_UNIX) {
		const char *path = cfg->address ? cfg->address : "/dev/log";
		struct sockaddr_un *sun = (struct sockaddr_un *)&c->addr;
		size_t pl = strlen(path);
		if (pl == 0 || pl >= sizeof(sun->sun_path)) {
			err = -EINVAL;
			goto out;
		}
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, path, pl + 1);
		c->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + pl + 1);
		c->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (c->fd < 0) {
			err = -errno;
			goto out;
		}
		set_timeouts(c->fd, c->io_timeout_ms);
	} else if (cfg->transport == SYSLOG_UDP || cfg->transport == SYSLOG_TCP) {
		char host[256], port[16];
		struct addrinfo hints = {.ai_family = AF_UNSPEC,
					 .ai_socktype = cfg->transport == SYSLOG_UDP ? SOCK_DGRAM
										     : SOCK_STREAM,
					 .ai_flags = AI_NUMERICSERV};
		if (syslog_split_hostport(cfg->address, host, sizeof(host), port, sizeof(port))) {
			err = -EINVAL;
			goto out;
		}
		/* resolved once, here: a DNS lookup on every reconnect could stall the writer
		 * for much longer than io_timeout_ms */
		if (getaddrinfo(host, port, &hints, &res) != 0 || !res) {
			err = -ENOENT;
			goto out;
		}
		if (res->ai_addrlen > sizeof(c->addr)) {
			err = -EINVAL;
			goto out;
		}
		memcpy(&c->addr, res->ai_addr, res->ai_addrlen);
		c->addr_len = res->ai_addrlen;
		if (cfg->transport == SYSLOG_UDP) {
			c->fd = socket(c->addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			if (c->fd < 0) {
				err = -errno;
				goto out;
			}
			set_timeouts(c->fd, c->io_timeout_ms);
		}
	} else {
		err = -EINVAL;
		goto out;
	}
	*out = c;
	c = NULL;
out:
	if (res)
		freeaddrinfo(res);
	syslog_conn_close(c);
	return err;
}

static void tcp_fail(struct syslog_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : c->backoff_min_ms;
	if (c->backoff_ms > c->backoff_max_ms)
		c->backoff_ms = c->backoff_max_ms;
	c->next_try_ms = now_ms() + c->backoff_ms;
}

static int tcp_connect(struct syslog_conn *c)
{
	int fd, err = 0;

	fd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&c->addr, c->addr_len) < 0) {
		if (errno != EINPROGRESS) {
			err = -errno;
			goto out;
		}
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int r;
		do
			r = poll(&p, 1, c->io_timeout_ms);
		while (r < 0 && errno == EINTR);
		if (r <= 0) {
			err = r < 0 ? -errno : -ETIMEDOUT;
			goto out;
		}
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
			err = soerr ? -soerr : -errno;
			goto out;
		}
	}
	/* back to blocking sends bounded by SO_SNDTIMEO: simpler than a poll loop per write */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
		err = -errno;
		goto out;
	}
	set_timeouts(fd, c->io_timeout_ms);
	c->fd = fd;
	fd = -1;
	c->backoff_ms = 0;
out:
	if (fd >= 0)
		close(fd);
	return err;
}

/* Syslog receivers never write to us, so a readable socket means EOF or reset: noticing
 * it before sending saves the message the kernel would otherwise accept and then lose. */
static bool tcp_peer_gone(int fd)
{
	char b[256];
	for (;;) {
		ssize_t r = recv(fd, b, sizeof(b), MSG_DONTWAIT);
		if (r > 0)
			continue;   /* unexpected data: discard it */
		if (r == 0)
			return true;
		return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
	}
}

static int tcp_send(struct syslog_conn *c, const char *msg, size_t len)
{
	char hdr[24];
	int hl = snprintf(hdr, sizeof(hdr), "%zu ", len);
	struct iovec iov[2] = {{hdr, (size_t)hl}, {(void *)msg, len}};
	size_t total = (size_t)hl + len, done = 0;
	int err;

	if (c->fd >= 0 && tcp_peer_gone(c->fd)) {
		close(c->fd);
		c->fd = -1;
	}
	if (c->fd < 0) {
		if (now_ms() < c->next_try_ms)
			return -EAGAIN;
		err = tcp_connect(c);
		if (err) {
			tcp_fail(c);
			return err;
		}
	}
	while (done < total) {
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
		ssize_t r = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			/* a frame cut in the middle corrupts the stream: start a new one */
			err = errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
			tcp_fail(c);
			return err;
		}
		done += (size_t)r;
		/* advance the iovecs past what was sent */
		size_t adv = (size_t)r;
		for (int i = 0; i < 2; i++) {
			size_t k = adv < iov[i].iov_len ? adv : iov[i].iov_len;
			iov[i].iov_base = (char *)iov[i].iov_base + k;
			iov[i].iov_len -= k;
			adv -= k;
		}
	}
	return 0;
}

int syslog_conn_send(struct syslog_conn *c, const char *msg, size_t len)
{
	if (len > SYSLOG_MSG_MAX)
		return -EMSGSIZE;
	if (c->transport == SYSLOG_TCP)
		return tcp_send(c, msg, len);
	for (;;) {
		ssize_t r = sendto(c->fd, msg, len, MSG_NOSIGNAL, (struct sockaddr *)&c->addr,
				   c->addr_len);
		if (r >= 0)
			return 0;
		if (errno == EINTR)
			continue;
		return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
	}
}

int syslog_conn_retry_ms(const struct syslog_conn *c)
{
	if (c->transport != SYSLOG_TCP || c->fd >= 0)
		return 0;
	int64_t d = c->next_try_ms - now_ms();
	return d > 0 ? (int)d : 0;
}

bool syslog_conn_is_stream(const struct syslog_conn *c)
{
	return c->transport == SYSLOG_TCP;
}

const char *syslog_conn_hostname(const struct syslog_conn *c)
{
	return c->hostname;
}

const char *syslog_conn_app_name(const struct syslog_conn *c)
{
	return c->app_name;
}

int syslog_conn_facility(const struct syslog_conn *c)
{
	return c->facility;
}

bool syslog_conn_bom(const struct syslog_conn *c)
{
	return c->bom;
}

void syslog_conn_close(struct syslog_conn *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}
