/* selfcheck.c: the start-up self-check (see selfcheck.h).
 *
 * Capabilities are read with capget(2) directly rather than through libcap: the effective
 * mask is all the check needs, cap_get_proc() is the same call behind an allocation, and
 * ward then links no extra library. What is deliberately not in the list:
 * CAP_SYS_RESOURCE (ward only raises its soft RLIMIT_NOFILE up to the hard limit, which
 * needs no privilege, so the hard limit is checked instead).
 *
 * The fanotify limits are per user (uid 0 here) and shared with every other fanotify user
 * of that uid on the machine, which ward cannot see: the check compares the limit with
 * ward's own needs only, so passing it does not promise the groups will be granted. */
#include "daemon/selfcheck.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* the vault guard's read leases and the room it keeps beside them (vault/guard.c) */
#define VAULT_LEASES 16384u
#define VAULT_SPARE_FDS 4096u
/* the kernel's defaults before the limits became sysctls (Linux < 5.13) */
#define FAN_DEFAULT_GROUPS 128
#define FAN_DEFAULT_MARKS 8192
#define FAN_DEFAULT_QUEUED 16384

enum need_when {
	W_ALWAYS = 0,
	W_BPF,            /* the eBPF process monitor or the vault guard's tracer */
	W_STOP,           /* protect mode with detection: attackers are stopped */
	W_WRITE_SHARE,    /* canaries or the vault write into the shares */
	W_VAULT,          /* copy-before-write and restore */
};

struct need {
	int cap;
	int alt;          /* a capability the kernel accepts instead, or -1 */
	enum need_when when;
	bool fatal;
	const char *name;
	const char *lost;
};

/* In the order of packaging/ward.service's CapabilityBoundingSet=, whose comment says
 * which code needs each. */
static const struct need needs[] = {
	{CAP_SYS_ADMIN, -1, W_ALWAYS, true, "CAP_SYS_ADMIN",
	 "fanotify_init() of the sensor's group and of the exec and vault guards' permission "
	 "groups is refused: ward cannot run"},
	{CAP_DAC_READ_SEARCH, -1, W_ALWAYS, false, "CAP_DAC_READ_SEARCH",
	 "open_by_handle_at() is refused: events lose their paths, written files are not "
	 "inspected and attacks go undetected"},
	{CAP_BPF, CAP_SYS_ADMIN, W_BPF, false, "CAP_BPF",
	 "the eBPF programs do not load: a process that exits before ward reads its events "
	 "goes unnamed, and the vault guard reads /proc for how each file is opened"},
	{CAP_PERFMON, CAP_SYS_ADMIN, W_BPF, false, "CAP_PERFMON",
	 "the eBPF programs cannot attach to their tracepoints: a process that exits before "
	 "ward reads its events goes unnamed"},
	{CAP_KILL, -1, W_STOP, false, "CAP_KILL",
	 "an attacker running as another user cannot be stopped or killed"},
	{CAP_SYS_PTRACE, -1, W_ALWAYS, false, "CAP_SYS_PTRACE",
	 "/proc/PID/exe of other users' processes is unreadable: incidents lack the "
	 "attacker's executable and sha256"},
	{CAP_DAC_OVERRIDE, -1, W_WRITE_SHARE, false, "CAP_DAC_OVERRIDE",
	 "canaries, vault copies and restored files cannot be written in directories that "
	 "belong to the share's users"},
	{CAP_FOWNER, -1, W_VAULT, false, "CAP_FOWNER",
	 "restored files do not get their mode and times back"},
	{CAP_LINUX_IMMUTABLE, -1, W_VAULT, false, "CAP_LINUX_IMMUTABLE",
	 "the vault is not sealed (append-only directory, immutable versions): another root "
	 "process can delete or rename what it keeps"},
	{CAP_CHOWN, -1, W_VAULT, false, "CAP_CHOWN",
	 "restored files do not get their owner and group back"},
	{CAP_FSETID, -1, W_VAULT, false, "CAP_FSETID",
	 "restored set-group-ID files lose the bit"},
	{CAP_LEASE, -1, W_VAULT, false, "CAP_LEASE",
	 "no read leases on other users' files: each of their reads waits for the vault "
	 "guard"},
};
#define NNEEDS (sizeof(needs) / sizeof(needs[0]))

bool selfcheck_cap_at(size_t i, int *cap, const char **name)
{
	if (i >= NNEEDS)
		return false;
	*cap = needs[i].cap;
	*name = needs[i].name;
	return true;
}

/* --- probing --- */

static long read_long(const char *path)
{
	char buf[32];
	long v = -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n > 0) {
		char *end;
		buf[n] = '\0';
		errno = 0;
		v = strtol(buf, &end, 10);
		if (errno || end == buf || v < 0)
			v = -1;
	}
	close(fd);
	return v;
}

/* The initial user namespace maps all of 0..2^32-2 onto itself in one line. */
static bool in_userns(void)
{
	char buf[256];
	unsigned long a, b, n;
	int fd = open("/proc/self/uid_map", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;   /* no /proc: nothing to say */
	ssize_t r = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (r <= 0)
		return false;
	buf[r] = '\0';
	if (sscanf(buf, "%lu %lu %lu", &a, &b, &n) != 3)
		return false;
	const char *nl = strchr(buf, '\n');
	bool one_line = !nl || nl[1] == '\0';
	return !(one_line && a == 0 && b == 0 && n == 4294967295ul);
}

/* Creates, writes and removes one file in dir: what opening incidents.db or alerts.json
 * will need. O_TMPFILE leaves no name behind even if ward dies here. */
static int probe_writable(const char *dir)
{
	char path[CONFIG_PATH_MAX + 32];
	int fd, err = 0;

	fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		/* O_TMPFILE is Linux 3.11+ and not on every filesystem: a named file instead */
		if (snprintf(path, sizeof(path), "%s/.ward-selfcheck.XXXXXX", dir) >= (int)sizeof(path))
			return -ENAMETOOLONG;
		fd = mkostemp(path, O_CLOEXEC);
		if (fd >= 0)
			unlink(path);
	}
	if (fd < 0)
		return -errno;
	if (write(fd, "w", 1) != 1)
		err = errno ? -errno : -EIO;
	close(fd);
	return err;
}

int selfcheck_probe(const struct ward_config *cfg, bool check_state, struct selfcheck_env *env)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	struct rlimit rl;

	memset(env, 0, sizeof(*env));
	if (syscall(SYS_capget, &hdr, data) < 0)
		return -errno;
	env->cap_eff = (uint64_t)data[0].effective | (uint64_t)data[1].effective << 32;
	env->userns = in_userns();
	env->fan_groups = read_long("/proc/sys/fs/fanotify/max_user_groups");
	env->fan_marks = read_long("/proc/sys/fs/fanotify/max_user_marks");
	env->fan_queued = read_long("/proc/sys/fs/fanotify/max_queued_events");
	env->nofile_hard = UINT64_MAX;   /* unknown: nothing to say */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY)
		env->nofile_hard = (uint64_t)rl.rlim_max;
	if (check_state) {
		env->state_checked = true;
		env->state_err = probe_writable(cfg->state_dir);
	}
	return 0;
}

/* --- judging --- */

struct report {
	char *p;
	size_t len, used;
	int problems;
	bool fatal;
};

static void add(struct report *r, bool fatal, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void add(struct report *r, bool fatal, const char *fmt, ...)
{
	va_list ap;
	r->problems++;
	r->fatal |= fatal;
	if (r->used + 1 >= r->len)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(r->p + r->used, r->len - r->used, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	r->used += (size_t)n < r->len - r->used ? (size_t)n : r->len - r->used - 1;
	if (r->used + 1 < r->len) {
		r->p[r->used++] = '\n';
		r->p[r->used] = '\0';
	}
}

static bool has(const struct selfcheck_env *env, int cap)
{
	return cap >= 0 && cap < 64 && (env->cap_eff >> cap & 1);
}

static bool needed(const struct ward_config *cfg, enum need_when w)
{
	switch (w) {
	case W_ALWAYS:
		return true;
	case W_BPF:
		return !cfg->no_bpf || cfg->vault;
	case W_STOP:
		return cfg->detect && cfg->mode == WARD_MODE_PROTECT;
	case W_WRITE_SHARE:
		return (cfg->detect && cfg->canaries) || cfg->vault;
	case W_VAULT:
		return cfg->vault;
	}
	return true;
}

int selfcheck_judge(const struct ward_config *cfg, const struct selfcheck_env *env,
		    char *report, size_t len)
{
	struct report r = {.p = report, .len = len};
	if (len)
		report[0] = '\0';

	for (size_t i = 0; i < NNEEDS; i++) {
		const struct need *n = &needs[i];
		if (!needed(cfg, n->when) || has(env, n->cap) || has(env, n->alt))
			continue;
		add(&r, n->fatal, "missing %s: %s", n->name, n->lost);
	}
	if (env->userns)
		add(&r, false, "running in a user namespace (uid_map is not the identity): its "
		    "capabilities do not reach filesystems mounted outside it, whose fanotify "
		    "marks fail");

	/* fanotify: the sensor's group; the exec guard's permission and close-write groups;
	 * the vault guard's pre-content and tamper groups */
	long groups = 1 + (cfg->prevent ? 2 : 0) + (cfg->vault ? 2 : 0);
	long g = env->fan_groups >= 0 ? env->fan_groups : FAN_DEFAULT_GROUPS;
	if (g < groups)
		add(&r, false, "fs.fanotify.max_user_groups is %ld, ward uses %ld: the sensor, "
		    "exec guard or vault guard will fail to start", g, groups);
	/* a filesystem mark per watched root in every group (an upper bound: roots on one
	 * filesystem share it), plus one evictable ignore mark per vault guard lease */
	long nexec = cfg->nexec_paths ? cfg->nexec_paths : 1;
	long marks = cfg->nwatch + (cfg->prevent ? 2 * nexec : 0) +
		     (cfg->vault ? 2L * cfg->nwatch + VAULT_LEASES : 0);
	long m = env->fan_marks >= 0 ? env->fan_marks : FAN_DEFAULT_MARKS;
	if (m < marks)
		add(&r, false, "fs.fanotify.max_user_marks is %ld, ward may use %ld: past the "
		    "limit the vault guard adds no ignore marks (more reads wait for it) and new "
		    "roots cannot be marked", m, marks);
	long q = env->fan_queued >= 0 ? env->fan_queued : FAN_DEFAULT_QUEUED;
	if (!cfg->unlimited_queue && q < FAN_DEFAULT_QUEUED)
		add(&r, false, "fs.fanotify.max_queued_events is %ld: a burst of more events than "
		    "that between two reads overflows the sensor's queue (reported, but the "
		    "events are lost to detection)", q);

	if (cfg->vault && env->nofile_hard < VAULT_LEASES + VAULT_SPARE_FDS) {
		uint64_t leases = env->nofile_hard > VAULT_SPARE_FDS + 64 ?
					  env->nofile_hard - VAULT_SPARE_FDS : 64;
		add(&r, false, "RLIMIT_NOFILE hard limit is %llu, the vault guard wants %u: it "
		    "holds at most %llu read leases, so more reads wait for it (the unit sets "
		    "LimitNOFILE=65536)", (unsigned long long)env->nofile_hard,
		    VAULT_LEASES + VAULT_SPARE_FDS, (unsigned long long)leases);
	}

	if (env->state_checked && env->state_err)
		add(&r, true, "state directory %s is not writable (%s): incidents, alerts and "
		    "indicators cannot be recorded: ward cannot run", cfg->state_dir,
		    strerror(-env->state_err));

	return r.fatal ? -EPERM : r.problems;
}

int selfcheck_run(const struct ward_config *cfg, bool check_state, char *report, size_t len)
{
	struct selfcheck_env env;
	int rc = selfcheck_probe(cfg, check_state, &env);
	if (rc < 0) {
		if (len)
			snprintf(report, len, "capget: %s: capabilities not checked\n", strerror(-rc));
		return 1;
	}
	return selfcheck_judge(cfg, &env, report, len);
}
