/* sink.h: the alert sinks: where ward's already-formatted JSON alerts go (stdout/stderr or
 * any fd, a rotating JSON-lines file, syslog), each behind a bounded queue drained by its
 * own writer thread so that sink_emit() never blocks the event loop. A slow or dead
 * receiver costs a drop counter and a rate-limited warning, never a stall. */
#ifndef WARD_OUTPUT_SINK_H
#define WARD_OUTPUT_SINK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "output/syslog.h"

#define SINK_MAX 8                   /* sinks per set */
#define SINK_QUEUE_DEFAULT 1024      /* alerts queued per sink before drops */
#define SINK_FLUSH_DEFAULT_MS 2000   /* how long sink_set_destroy() lets queues drain */
#define SINK_META_MAX 256            /* longest incident/rule/msg kept for syslog SD */

struct sink_set;
struct metric;

/* Creates an empty set. The caller owns it: sink_set_destroy(). Returns 0 or -ENOMEM. */
int sink_set_create(struct sink_set **out);
/* Queue length for sinks added afterwards (0: default) and the drain bound used by
 * sink_set_destroy() (0: default). */
void sink_set_options(struct sink_set *set, size_t queue_len, int flush_timeout_ms);
/* The counters (metrics.h) every dropped alert and every failed write, send or connect
 * is added to: ward_metrics.sink_drops and ward_metrics.sink_errors unless changed here
 * (NULL: not counted). Set before the first sink_emit(). */
void sink_set_drop_counter(struct sink_set *set, struct metric *counter);
void sink_set_error_counter(struct sink_set *set, struct metric *counter);

/* Sinks are added during start-up, before the first sink_emit(); each starts its writer
 * thread. All return 0 or -errno (-ENOSPC when the set already has SINK_MAX sinks). */
/* One JSON line per alert to fd, which stays the caller's (not closed, flags untouched).
 * A reader that stops reading costs each alert at most about a second on the writer
 * thread before it is dropped, so shutdown stays bounded even with a stuck stdout pipe. */
int sink_add_fd(struct sink_set *set, int fd, const char *name);
int sink_add_stdout(struct sink_set *set);
int sink_add_stderr(struct sink_set *set);
/* A JSON-lines file, opened now (so a bad path fails at start-up). When a line would take
 * the file past max_bytes it is rotated: path.N-1 -> path.N ... path -> path.1, keeping
 * `keep` old files (0: none, the file restarts empty). max_bytes 0: never rotate.
 * Data is fdatasync()ed whenever the queue runs empty and before each rotation. */
int sink_add_file(struct sink_set *set, const char *path, uint64_t max_bytes, unsigned keep);
/* RFC 5424 syslog over cfg's transport (syslog.h). cfg is copied. */
int sink_add_syslog(struct sink_set *set, const struct syslog_cfg *cfg);

/* Optional facts about an alert that syslog puts in its structured data
 * ([ward@32473 incident="..." rule="..." score="..." msg="..."]). */
struct sink_meta {
	const char *incident;        /* NULL: left out */
	const char *rule;            /* NULL: left out */
	double score;
	bool has_score;
};

/* Queues one alert on every sink. json[0..len) is one JSON object without newline; msg is
 * a short human summary (may be NULL); severity is a syslog level 0..7. Both are copied.
 * Never blocks on I/O: returns 0, -ENOBUFS when at least one sink's queue was full (the
 * alert is dropped there and counted), -EINVAL, or -ENOMEM. Safe from any thread. */
int sink_emit(struct sink_set *set, int severity, const char *json, size_t len, const char *msg);
int sink_emit_meta(struct sink_set *set, int severity, const char *json, size_t len,
		   const char *msg, const struct sink_meta *meta);

/* Asks file sinks to reopen their path (after logrotate moved it away) before their next
 * write. Call from the event loop on SIGHUP (e.g. via signalfd), not from a handler. */
void sink_reopen(struct sink_set *set);

struct sink_stat {
	char name[64];               /* "stdout", "file:/var/log/ward.json", "syslog:tcp:..." */
	uint64_t emitted;            /* accepted into the queue */
	uint64_t written;            /* delivered to the fd / file / socket */
	uint64_t dropped;            /* queue full, undeliverable, or left at shutdown */
	uint64_t write_errors;       /* failed writes, sends and connects */
	uint64_t rotations;          /* file sinks */
	size_t queued;               /* not yet delivered: on the queue, or in the writer's hand
					(being written, or kept for a TCP retry) */
};
/* Fills up to cap entries, one per sink in the order added; returns how many sinks. */
size_t sink_stats(struct sink_set *set, struct sink_stat *out, size_t cap);

/* Stops accepting alerts, lets each queue drain for at most flush_timeout_ms (plus one
 * bounded I/O timeout), counts what is left as dropped, joins the writers, frees the set.
 * Accepts NULL. */
void sink_set_destroy(struct sink_set *set);
#endif
