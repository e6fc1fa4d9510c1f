/* sensor.h: the fanotify notification sensor: one group with FID, directory-entry names
 * and pidfds, a filesystem mark per watched filesystem, events filtered to the watched
 * subtrees and normalized into struct ward_event with the process behind each. Owns the
 * fanotify group, the directory-path cache and (through procmon) the process cache. */
#ifndef WARD_SENSOR_H
#define WARD_SENSOR_H
#include <stdbool.h>
#include <stdint.h>

#include "core/event.h"

#define SENSOR_MAX_ROOTS 64

struct sensor_cfg {
	const char *roots[SENSOR_MAX_ROOTS];   /* absolute, existing directories */
	int nroots;
	const char *excludes[SENSOR_MAX_ROOTS]; /* subtrees never reported (ward's own state) */
	int nexcludes;
	bool unlimited_queue;   /* FAN_UNLIMITED_QUEUE: no overflow, unbounded kernel memory */
	bool no_bpf;            /* do not load the eBPF process monitor */
	uint64_t proc_grace_ns; /* how long exited processes stay attributable (0: 60 s) */
};

struct sensor_stats {
	uint64_t events;        /* normalized events delivered */
	uint64_t raw;           /* fanotify records read */
	uint64_t outside;       /* records outside the watched subtrees */
	uint64_t self;          /* ward's own activity, dropped */
	uint64_t unresolved;    /* records whose directory no longer resolves */
	uint64_t overflows;     /* kernel queue overflows */
	uint64_t attrib_fail;   /* events whose process could not be identified */
	uint64_t bpf_lost;      /* process records the eBPF ring buffer dropped */
	uint64_t by_op[WOP__COUNT];
	uint64_t dircache_entries;
	uint64_t proc_entries;
	uint64_t drained_ns;    /* CLOCK_MONOTONIC just before the last read that found the
				   queue empty: every event queued before then has been handled */
};

struct sensor;
typedef void (*sensor_cb)(struct ward_event *ev, void *ctx);

/* Probes the kernel, creates the group and marks every root's filesystem. Prints nothing;
 * sensor_features() says what could and could not be enabled. Returns 0 or -errno and,
 * on error, a message in err (cap errlen). */
int sensor_open(struct sensor **out, const struct sensor_cfg *cfg, sensor_cb cb, void *ctx,
		char *err, size_t errlen);
/* Descriptors to poll: the fanotify group and, when loaded, the eBPF ring buffer. */
int sensor_fd(const struct sensor *s);
int sensor_aux_fd(const struct sensor *s);   /* -1 without eBPF */
/* Reads and dispatches what is pending without blocking. Returns events delivered or
 * -errno. Call when sensor_fd() or sensor_aux_fd() is readable. */
int sensor_process(struct sensor *s);
/* Periodic upkeep (expire dead processes); call about once a second. */
void sensor_housekeep(struct sensor *s);
void sensor_stats(const struct sensor *s, struct sensor_stats *out);
/* The process cache's record for pid (see proccache_get for its lifetime). */
const struct ward_proc *sensor_proc(struct sensor *s, pid_t pid);
/* One line per feature: "enabled: ..." / "unavailable: ... (reason)". Valid while s lives. */
const char *sensor_features(const struct sensor *s);
void sensor_close(struct sensor *s);          /* accepts NULL */
#endif
