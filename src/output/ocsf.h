/* ocsf.h: the neutral description of one alert (struct alert_view) and its two JSON
 * renderings: ECS (what the sinks write) and an OCSF 1.1.0 Detection Finding, so that one
 * description feeds both formats and they cannot drift apart. */
#ifndef WARD_OUTPUT_OCSF_H
#define WARD_OUTPUT_OCSF_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct jsonw;

/* OCSF severity_id values; ECS event.severity carries the same number. */
enum alert_severity {
	ALERT_SEV_UNKNOWN = 0,
	ALERT_SEV_INFO = 1,
	ALERT_SEV_LOW = 2,
	ALERT_SEV_MEDIUM = 3,
	ALERT_SEV_HIGH = 4,
	ALERT_SEV_CRITICAL = 5,
};

#define ALERT_VIEW_MAX_FILES 64
#define ALERT_VIEW_MAX_EVIDENCE 64

/* Everything the renderers need, borrowed: every pointer stays the caller's and only has
 * to live through the render call. NULL or "" strings and zero pids are left out. */
struct alert_view {
	const char *incident_id;     /* ward.incident.id / finding_info.uid */
	const char *rule_name;       /* rule.name / finding_info.analytic.name */
	const char *title;           /* one line: ECS message, OCSF finding_info.title */
	const char *description;     /* longer text: OCSF finding_info.desc (title if NULL) */
	const char *action;          /* ECS event.action, e.g. "ransomware-detected" */
	bool blocked;                /* the activity was denied/stopped: event.type "denied" */
	double score;                /* ward's score 0..100 */
	enum alert_severity severity;
	struct timespec time;        /* when ward raised the alert (CLOCK_REALTIME) */
	struct timespec first_seen;  /* first event of the incident; 0: same as time */
	const char *const *files;    /* affected paths; files[0] is ECS file.path */
	size_t nfiles;
	struct {
		pid_t pid;           /* 0: no process block at all */
		pid_t ppid;
		uint32_t uid;
		bool uid_known;
		const char *exe;
		const char *args;    /* argv as NUL-separated strings (like ward_proc.args) */
		size_t args_len;
		const char *sha256;  /* hex digest of the executable */
	} proc;
	const char *hostname;
	const char *const *evidence; /* short human-readable indicator strings */
	size_t nevidence;
};

/* Writes the ECS object (one top-level object, appended to w). Returns 0, -EINVAL when
 * the view is unusable (no time), or -ENOMEM when the writer ran out of memory. */
int alert_view_to_ecs(const struct alert_view *v, struct jsonw *w);
/* Writes the OCSF Detection Finding (class_uid 2004) object. Same returns. */
int alert_view_to_ocsf(const struct alert_view *v, struct jsonw *w);

/* The OCSF/ECS severity names ("High") and the syslog level a sink should use (LOG_CRIT
 * for critical ... LOG_INFO for informational). */
const char *alert_severity_name(enum alert_severity s);
int alert_severity_to_syslog(enum alert_severity s);

#define OCSF_VERSION "1.1.0"
#define OCSF_VENDOR "ward project"
#endif
