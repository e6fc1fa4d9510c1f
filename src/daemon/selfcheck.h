/* selfcheck.h: the start-up self-check: whether this process holds the capabilities, the
 * kernel's fanotify limits, the file-descriptor limit and the writable state directory
 * that the configured features need, and for each shortfall what fails and what is lost.
 *
 * It reads and probes only (capget, /proc, one O_TMPFILE in the state directory): it
 * never changes a limit or a capability. Its capability list is the unit's
 * CapabilityBoundingSet= (packaging/ward.service); the unit test keeps the two equal. */
#ifndef WARD_DAEMON_SELFCHECK_H
#define WARD_DAEMON_SELFCHECK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

#define SELFCHECK_REPORT_MAX 4096

/* What the checks look at. selfcheck_probe() fills it from this process and kernel; tests
 * build it by hand. */
struct selfcheck_env {
	uint64_t cap_eff;          /* effective capabilities, bit (1ull << CAP_x) */
	bool userns;               /* uid_map is not the identity: not the initial namespace */
	/* fs.fanotify.max_user_groups, max_user_marks, max_queued_events; -1 where the
	 * sysctl is missing (Linux < 5.13: fixed at 128, 8192 and 16384) */
	long fan_groups, fan_marks, fan_queued;
	uint64_t nofile_hard;      /* RLIMIT_NOFILE hard limit */
	bool state_checked;        /* the state directory was probed */
	int state_err;             /* 0 writable, else -errno of creating a file there */
};

/* The i-th capability ward uses: its number and name ("CAP_SYS_ADMIN", a static
 * string). False past the last one. */
bool selfcheck_cap_at(size_t i, int *cap, const char **name);

/* Fills env. check_state: probe cfg->state_dir (the daemon with a control socket; `ward
 * trace` keeps no state). Returns 0 or -errno when capget() itself fails. */
int selfcheck_probe(const struct ward_config *cfg, bool check_state, struct selfcheck_env *env);

/* Judges env against what cfg enables. Writes one problem per line into report (always
 * NUL-terminated, cut at len; "" when there is none): what fails, then what is lost.
 * Returns the number of problems, or -EPERM when ward cannot run at all (no
 * CAP_SYS_ADMIN, or the state directory cannot be written). */
int selfcheck_judge(const struct ward_config *cfg, const struct selfcheck_env *env,
		    char *report, size_t len);

/* selfcheck_probe() then selfcheck_judge(). */
int selfcheck_run(const struct ward_config *cfg, bool check_state, char *report, size_t len);
#endif
