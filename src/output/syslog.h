/* syslog.h: RFC 5424 syslog for ward's alerts: the message formatter (a pure function) and
 * the three transports (local /dev/log datagrams, remote UDP, remote TCP with RFC 6587
 * octet-counting framing, reconnect and backoff). Queueing and threads live in sink.c:
 * everything here runs on a sink's writer thread, never on ward's event loop. */
#ifndef WARD_OUTPUT_SYSLOG_H
#define WARD_OUTPUT_SYSLOG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ward's private enterprise number as used in the SD-ID ("ward@32473"; 32473 is the
 * number RFC 5612 reserves for documentation). */
#define SYSLOG_SD_ID "ward@32473"
/* Largest message the formatter writes. UDP payloads cannot exceed 65507 bytes; TCP and
 * the local socket use the same bound so one alert behaves the same on every transport. */
#define SYSLOG_MSG_MAX 65507

enum syslog_transport {
	SYSLOG_UNIX = 0,   /* a unix datagram socket, "/dev/log" unless address says otherwise */
	SYSLOG_UDP,        /* "host:port" or "[v6]:port" */
	SYSLOG_TCP,        /* "host:port", octet-counting framing */
};

/* How a syslog sink connects and what its header says. Strings are copied by
 * syslog_conn_open(); the caller keeps ownership of this struct. Zero means default. */
struct syslog_cfg {
	enum syslog_transport transport;
	const char *address;         /* NULL: "/dev/log" for SYSLOG_UNIX; required otherwise */
	int facility;                /* 0..23; 0 (kern) is not for us, so 0 means 4 (auth) */
	const char *app_name;        /* NULL: "ward" */
	const char *hostname;        /* NULL: gethostname() */
	bool bom;                    /* prefix MSG with the UTF-8 BOM (RFC 5424 6.4) */
	int io_timeout_ms;           /* connect/send bound on the writer thread; 0: 1000 */
	int backoff_min_ms;          /* first TCP reconnect delay; 0: 100 */
	int backoff_max_ms;          /* delay cap, doubled per failure; 0: 30000 */
};

struct syslog_sd_param {
	const char *name;            /* SD-NAME: printable ASCII except '=', ' ', ']', '"' */
	const char *value;           /* UTF-8; '"', '\' and ']' are escaped by the formatter */
};

/* One message's fields. NULL or "" header fields become the NILVALUE "-"; characters
 * outside printable US-ASCII are replaced by '_' and fields are cut to their RFC limits. */
struct syslog_fields {
	int facility;                /* 0..23 */
	int severity;                /* 0..7 (LOG_EMERG..LOG_DEBUG) */
	int64_t sec;                 /* UTC timestamp; sec < 0 writes "-" */
	long nsec;
	const char *hostname;        /* at most 255 characters */
	const char *app_name;        /* at most 48 */
	const char *procid;          /* at most 128 */
	const char *msgid;           /* at most 32 */
	const char *sd_id;           /* NULL: no structured data ("-") */
	const struct syslog_sd_param *params;
	size_t nparams;
	bool bom;
	const char *msg;             /* may be NULL: no MSG part */
	size_t msg_len;
};

/* Formats one RFC 5424 message into buf (not NUL-terminated), *out_len its length.
 * Returns 0, -EINVAL on bad facility/severity, or -EMSGSIZE when it does not fit in cap. */
int syslog_format(const struct syslog_fields *f, char *buf, size_t cap, size_t *out_len);

/* A transport connection. Owned by the caller: close with syslog_conn_close(). */
struct syslog_conn;

/* Validates cfg and resolves the address; TCP connects lazily on the first send.
 * Returns 0 or -errno (-EINVAL for a malformed address, -ENOENT if it does not resolve). */
int syslog_conn_open(const struct syslog_cfg *cfg, struct syslog_conn **out);
/* Sends one formatted message (adding the octet-count frame on TCP). Blocks at most about
 * io_timeout_ms. Returns 0; -EAGAIN while a TCP reconnect is backing off (retry after
 * syslog_conn_retry_ms()); or -errno of a failed send, after which TCP reconnects. */
int syslog_conn_send(struct syslog_conn *c, const char *msg, size_t len);
/* Milliseconds until a backed-off TCP connection may try again; 0 when it may now. */
int syslog_conn_retry_ms(const struct syslog_conn *c);
/* True for TCP: a failed message can be retried on the next connection. */
bool syslog_conn_is_stream(const struct syslog_conn *c);
/* The header fields from cfg (hostname resolved, app name defaulted). Valid while c is. */
const char *syslog_conn_hostname(const struct syslog_conn *c);
const char *syslog_conn_app_name(const struct syslog_conn *c);
int syslog_conn_facility(const struct syslog_conn *c);
bool syslog_conn_bom(const struct syslog_conn *c);
/* Accepts NULL. */
void syslog_conn_close(struct syslog_conn *c);

/* Splits "host:port", "[v6]:port" into host and port. Returns 0 or -EINVAL. */
int syslog_split_hostport(const char *addr, char *host, size_t hcap, char *port, size_t pcap);
#endif
