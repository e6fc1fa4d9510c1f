/* metrics.h: ward's metrics: counters, gauges and histograms updated with lock-free atomics
 * from any thread, the ward_metrics set every module updates, and a Prometheus text-format
 * (0.0.4) endpoint served by its own thread (off unless started). */
#ifndef WARD_OUTPUT_METRICS_H
#define WARD_OUTPUT_METRICS_H
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/event.h"

enum metric_type { METRIC_COUNTER = 0, METRIC_GAUGE, METRIC_HISTOGRAM };

#define METRIC_MAX_BUCKETS 16
#define METRICS_REGISTRY_MAX 64

/* One time series. Metrics sharing a name form a family (one # HELP / # TYPE block) and
 * differ by the value of their one label. Name, help and label strings must outlive the
 * metric (string literals in practice). */
struct metric {
	const char *name;            /* "ward_events_total" */
	const char *help;
	const char *label_key;       /* NULL: no label */
	const char *label_value;
	enum metric_type type;
	/* histograms: bucket upper bounds in integer base units (e.g. ns), ascending, and the
	 * factor that turns base units into the exported unit (1e-9 for seconds) */
	size_t nbuckets;
	uint64_t bounds[METRIC_MAX_BUCKETS];
	double scale;
	/* values: counters use v, gauges g, histograms buckets[] (non-cumulative, the last one
	 * past every bound) and sum in base units */
	_Atomic uint64_t v;
	_Atomic int64_t g;
	_Atomic uint64_t buckets[METRIC_MAX_BUCKETS + 1];
	_Atomic uint64_t sum;
};

/* Static initializers, so a metric can be updated before anything registered it. */
#define METRIC_COUNTER_INIT(n, h) {.name = (n), .help = (h), .type = METRIC_COUNTER}
#define METRIC_COUNTER_L(n, h, k, val) \
	{.name = (n), .help = (h), .label_key = (k), .label_value = (val), .type = METRIC_COUNTER}
#define METRIC_GAUGE_INIT(n, h) {.name = (n), .help = (h), .type = METRIC_GAUGE}

/* Update path: one relaxed atomic each (histograms: three), no locks, any thread. */
static inline void metric_add(struct metric *m, uint64_t n)
{
	atomic_fetch_add_explicit(&m->v, n, memory_order_relaxed);
}
static inline void metric_inc(struct metric *m)
{
	metric_add(m, 1);
}
static inline void metric_set(struct metric *m, int64_t v)
{
	atomic_store_explicit(&m->g, v, memory_order_relaxed);
}
static inline void metric_gauge_add(struct metric *m, int64_t d)
{
	atomic_fetch_add_explicit(&m->g, d, memory_order_relaxed);
}
/* Records v (in base units) into the first bucket whose bound is >= v. */
void metric_observe(struct metric *m, uint64_t v);
/* Reads for tests and status output. */
uint64_t metric_value(const struct metric *m);
int64_t metric_gauge_value(const struct metric *m);
uint64_t metric_hist_count(const struct metric *m);

/* A list of metrics to export. Registration takes a lock (start-up only); updates never. */
struct metrics_registry;
int metrics_registry_create(struct metrics_registry **out);
void metrics_registry_destroy(struct metrics_registry *r);   /* accepts NULL */
/* m must stay valid while registered. Returns 0, -EEXIST (same name and label), -ENOSPC. */
int metrics_register(struct metrics_registry *r, struct metric *m);
/* Renders every registered family in Prometheus text format 0.0.4 into a malloc'd,
 * NUL-terminated buffer the caller frees. Returns 0 or -ENOMEM. */
int metrics_render(struct metrics_registry *r, char **out, size_t *len);

/* The HTTP endpoint: GET (or HEAD) /metrics over HTTP/1.0-1.1 on a local address such as
 * "127.0.0.1:9477" or "[::1]:9477" (port 0 picks a free one). One connection at a time,
 * each bounded to METRICS_REQ_MAX request bytes and METRICS_IO_TIMEOUT_MS of I/O, then
 * closed: a stuck client delays other scrapers, never ward. */
#define METRICS_REQ_MAX 4096
#define METRICS_IO_TIMEOUT_MS 2000
struct metrics_server;
int metrics_server_start(struct metrics_registry *r, const char *addr,
			 struct metrics_server **out);
int metrics_server_port(const struct metrics_server *s);
void metrics_server_stop(struct metrics_server *s);          /* accepts NULL */

/* The request check the endpoint uses, on req[0..len) (the bytes read so far, at least
 * the request line). Returns the HTTP status to answer: 200 (*head tells GET from HEAD),
 * 400, 404, 405 or 505. Never reads past len. */
int metrics_http_route(const char *req, size_t len, bool *head);

/* What ward exports. Modules update these fields directly, e.g.
 * metric_inc(&ward_metrics.events[WOP_CREATE]); metric_observe(&ward_metrics.perm_latency, ns). */
struct ward_metrics {
	struct metric events[WOP__COUNT];   /* ward_events_total{kind="create"...} */
	struct metric events_dropped;       /* ward_events_dropped_total */
	struct metric queue_overflows;      /* ward_queue_overflows_total (kernel queue) */
	/* ward_permission_latency_seconds, observe in ns: from reading a permission event to
	 * writing its answer (exec guard, vault guard). The kernel stamps no arrival time on
	 * fanotify events, so time spent queued before the read is not in it. */
	struct metric perm_latency;
	struct metric vault_bytes;          /* ward_vault_bytes (gauge) */
	struct metric vault_versions;       /* ward_vault_versions (gauge) */
	struct metric incidents;            /* ward_incidents_total */
	struct metric actors_stopped;       /* ward_actors_stopped_total */
	struct metric rules_loaded;         /* ward_rules_loaded (gauge) */
	struct metric indicators_loaded;    /* ward_indicators_loaded (gauge) */
	struct metric sink_drops;           /* ward_sink_dropped_total */
	struct metric sink_errors;          /* ward_sink_errors_total */
};
extern struct ward_metrics ward_metrics;
/* Adds every ward_metrics series to r. Returns 0 or -errno. */
int ward_metrics_register(struct metrics_registry *r);
#endif
