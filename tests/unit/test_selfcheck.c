/* test_selfcheck.c: the start-up self-check. The judgement as a data table (capabilities,
 * limits and features in, problems out); its capability list against the unit's
 * CapabilityBoundingSet=; and the real probe in forked children that drop capabilities
 * with capset(2) before running it (as root; skipped, and said, otherwise). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/selfcheck.h"
#include "t.h"

#define BIT(c) (1ull << (c))

static uint64_t all_caps(void)
{
	uint64_t m = 0;
	int cap;
	const char *name;
	for (size_t i = 0; selfcheck_cap_at(i, &cap, &name); i++)
		m |= BIT(cap);
	return m;
}

/* --- the judgement, as data --- */

enum feat { F_DEFAULT = 0, F_MONITOR = 1, F_NOVAULT = 2, F_NOCANARY = 4, F_NOPREVENT = 8,
	    F_UNLIMITED = 16, F_TRACE = 32 /* detect, prevent, vault off: `ward trace` */ };

struct jcase {
	const char *what;
	unsigned feat;
	uint64_t drop;             /* capabilities taken from the full set */
	long groups, marks, queued;
	uint64_t nofile;           /* 0: plenty */
	bool userns;
	int state_err;             /* with state_checked */
	int want_rc;
	const char *want[3];       /* substrings the report must hold */
	const char *not_want;      /* a substring it must not hold */
};

static const struct jcase jcases[] = {
	{"everything present", 0, 0, 128, 8192 * 4, 16384, 0, false, 0, 0, {NULL}, "missing"},
	/* the vault needs Linux 6.14, so an old kernel's fixed 8192 marks meet no vault */
	{"old kernel: limits not sysctls", F_NOVAULT, 0, -1, -1, -1, 0, false, 0, 0, {NULL}, "fanotify"},
	{"no CAP_SYS_ADMIN is fatal", 0, BIT(CAP_SYS_ADMIN), 128, 1 << 20, 16384, 0, false, 0, -EPERM,
	 {"missing CAP_SYS_ADMIN", "ward cannot run"}, "CAP_BPF"},
	{"CAP_BPF, CAP_PERFMON: CAP_SYS_ADMIN stands in", 0, BIT(CAP_BPF) | BIT(CAP_PERFMON), 128,
	 1 << 20, 16384, 0, false, 0, 0, {NULL}, "missing"},
	{"no CAP_SYS_ADMIN nor CAP_BPF", 0, BIT(CAP_SYS_ADMIN) | BIT(CAP_BPF), 128, 1 << 20, 16384, 0,
	 false, 0, -EPERM, {"missing CAP_SYS_ADMIN", "missing CAP_BPF", "eBPF"}, "CAP_PERFMON"},
	{"no CAP_KILL", 0, BIT(CAP_KILL), 128, 1 << 20, 16384, 0, false, 0, 1,
	 {"missing CAP_KILL", "cannot be stopped"}, NULL},
	{"no CAP_KILL in monitor mode: nothing is stopped", F_MONITOR, BIT(CAP_KILL), 128, 1 << 20,
	 16384, 0, false, 0, 0, {NULL}, "CAP_KILL"},
	{"no CAP_DAC_READ_SEARCH: paths lost", 0, BIT(CAP_DAC_READ_SEARCH), 128, 1 << 20, 16384, 0,
	 false, 0, 1, {"missing CAP_DAC_READ_SEARCH", "open_by_handle_at"}, NULL},
	{"no CAP_SYS_PTRACE: no hash", F_TRACE, BIT(CAP_SYS_PTRACE), 128, 1 << 20, 16384, 0, false,
	 0, 1, {"missing CAP_SYS_PTRACE", "sha256"}, NULL},
	{"vault capabilities without the vault", F_NOVAULT | F_NOCANARY,
	 BIT(CAP_LEASE) | BIT(CAP_FOWNER) | BIT(CAP_CHOWN) | BIT(CAP_FSETID) | BIT(CAP_DAC_OVERRIDE),
	 128, 1 << 20, 16384, 0, false, 0, 0, {NULL}, "missing"},
	{"vault capabilities with the vault", 0,
	 BIT(CAP_LEASE) | BIT(CAP_FOWNER) | BIT(CAP_CHOWN) | BIT(CAP_FSETID), 128, 1 << 20, 16384, 0,
	 false, 0, 4, {"missing CAP_LEASE", "missing CAP_CHOWN", "set-group-ID"}, NULL},
	{"no CAP_DAC_OVERRIDE, canaries only", F_NOVAULT, BIT(CAP_DAC_OVERRIDE), 128, 1 << 20, 16384,
	 0, false, 0, 1, {"missing CAP_DAC_OVERRIDE", "canaries"}, NULL},
	{"ward trace needs no CAP_KILL, vault or canary capabilities", F_TRACE,
	 BIT(CAP_KILL) | BIT(CAP_LEASE) | BIT(CAP_DAC_OVERRIDE) | BIT(CAP_CHOWN), 128, 1 << 20, 16384,
	 0, false, 0, 0, {NULL}, "missing"},
	{"too few fanotify groups", 0, 0, 3, 1 << 20, 16384, 0, false, 0, 1,
	 {"max_user_groups is 3, ward uses 5", "fail to start"}, NULL},
	{"groups for the sensor alone", F_TRACE, 0, 1, 1 << 20, 16384, 0, false, 0, 0, {NULL},
	 "groups"},
	{"too few fanotify marks for the vault's ignore marks", 0, 0, 128, 8192, 16384, 0, false, 0, 1,
	 {"max_user_marks is 8192", "ignore marks"}, NULL},
	{"a short kernel queue", 0, 0, 128, 1 << 20, 1000, 0, false, 0, 1,
	 {"max_queued_events is 1000", "lost to detection"}, NULL},
	{"a short queue does not matter when unlimited", F_UNLIMITED, 0, 128, 1 << 20, 1000, 0, false,
	 0, 0, {NULL}, "queued"},
	{"RLIMIT_NOFILE below the vault's leases", 0, 0, 128, 1 << 20, 16384, 20000, false, 0, 1,
	 {"hard limit is 20000", "at most 15904 read leases"}, NULL},
	{"RLIMIT_NOFILE without the vault", F_NOVAULT, 0, 128, 1 << 20, 16384, 1024, false, 0, 0,
	 {NULL}, "RLIMIT"},
	{"a user namespace", 0, 0, 128, 1 << 20, 16384, 0, true, 0, 1, {"user namespace"}, NULL},
	{"a read-only state directory is fatal", 0, 0, 128, 1 << 20, 16384, 0, false, -EROFS, -EPERM,
	 {"state directory /st is not writable (Read-only file system)", "cannot run"}, NULL},
	{"several at once", 0, BIT(CAP_KILL) | BIT(CAP_SYS_PTRACE), 2, 1 << 20, 16384, 0, true, 0, 4,
	 {"missing CAP_KILL", "missing CAP_SYS_PTRACE", "max_user_groups"}, NULL},
};

static void config_for(struct ward_config *c, unsigned feat)
{
	config_init(c);
	snprintf(c->state_dir, sizeof(c->state_dir), "/st");
	if (feat & F_MONITOR)
		c->mode = WARD_MODE_MONITOR;
	if (feat & F_NOVAULT)
		c->vault = false;
	if (feat & F_NOCANARY)
		c->canaries = false;
	if (feat & F_NOPREVENT)
		c->prevent = false;
	if (feat & F_UNLIMITED)
		c->unlimited_queue = true;
	if (feat & F_TRACE)
		c->detect = c->prevent = c->vault = false;
}

static void test_judge(void)
{
	for (size_t i = 0; i < sizeof(jcases) / sizeof(jcases[0]); i++) {
		const struct jcase *t = &jcases[i];
		struct ward_config c;
		config_for(&c, t->feat);
		struct selfcheck_env env = {
			.cap_eff = all_caps() & ~t->drop, .userns = t->userns, .fan_groups = t->groups,
			.fan_marks = t->marks, .fan_queued = t->queued,
			.nofile_hard = t->nofile ? t->nofile : 65536,
			.state_checked = true, .state_err = t->state_err,
		};
		char rep[SELFCHECK_REPORT_MAX];
		int rc = selfcheck_judge(&c, &env, rep, sizeof(rep));
		T_CHECK(rc == t->want_rc, "%s: rc %d, want %d; report:\n%s", t->what, rc, t->want_rc, rep);
		for (int k = 0; k < 3 && t->want[k]; k++)
			T_CHECK(strstr(rep, t->want[k]), "%s: report lacks \"%s\":\n%s", t->what, t->want[k], rep);
		if (t->not_want)
			T_CHECK(!strstr(rep, t->not_want), "%s: report has \"%s\":\n%s", t->what, t->not_want,
				rep);
		/* one line per problem */
		int lines = 0;
		for (const char *p = rep; *p; p++)
			lines += *p == '\n';
		T_CHECK(rc == -EPERM ? lines >= 1 : lines == rc, "%s: %d lines for rc %d", t->what, lines,
			rc);
		config_free(&c);
	}
	/* a short buffer: cut, terminated, the count unchanged */
	struct ward_config c;
	config_for(&c, 0);
	struct selfcheck_env env = {.cap_eff = 0, .fan_groups = 1, .fan_marks = 1, .fan_queued = 1,
				    .nofile_hard = 1};
	char small[24];
	memset(small, 'x', sizeof(small));
	int rc = selfcheck_judge(&c, &env, small, sizeof(small));
	T_CHECK(rc == -EPERM && strlen(small) < sizeof(small), "cut report: rc %d len %zu", rc,
		strnlen(small, sizeof(small)));
	T_CHECK(selfcheck_judge(&c, &env, NULL, 0) == -EPERM, "no report buffer at all");
	config_free(&c);
}

/* --- the list against the unit --- */

static char *read_unit(void)
{
	/* from the repository (make unit), else beside the build directory */
	const char *cands[] = {"packaging/ward.service", NULL};
	char exe[4096], alt[4200];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *s = strrchr(exe, '/');
		if (s) {
			*s = '\0';   /* BUILD/tests */
			snprintf(alt, sizeof(alt), "%s/../../packaging/ward.service", exe);
			cands[1] = alt;
		}
	}
	for (size_t i = 0; i < 2; i++) {
		if (!cands[i])
			continue;
		FILE *f = fopen(cands[i], "re");
		if (!f)
			continue;
		static char buf[1 << 16];
		size_t got = fread(buf, 1, sizeof(buf) - 1, f);
		buf[got] = '\0';
		fclose(f);
		return buf;
	}
	return NULL;
}

static void test_unit_bounding_set(void)
{
	char *text = read_unit();
	T_CHECK(text, "packaging/ward.service found");
	if (!text)
		return;
	char *line = strstr(text, "\nCapabilityBoundingSet=");
	T_CHECK(line, "the unit has CapabilityBoundingSet=");
	if (!line)
		return;
	line += strlen("\nCapabilityBoundingSet=");
	line[strcspn(line, "\n")] = '\0';
	int cap, inunit = 0, known = 0;
	const char *name;
	for (size_t i = 0; selfcheck_cap_at(i, &cap, &name); i++) {
		known++;
		/* whole words only: CAP_SYS_ADMIN must not match inside another name */
		char word[64];
		snprintf(word, sizeof(word), " %s ", name);
		char padded[1024];
		snprintf(padded, sizeof(padded), " %s ", line);
		T_CHECK(strstr(padded, word), "%s checked at start but not in the unit's bounding set",
			name);
	}
	char *save = NULL;
	for (char *w = strtok_r(line, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		inunit++;
		bool found = false;
		for (size_t i = 0; selfcheck_cap_at(i, &cap, &name); i++)
			found |= strcmp(name, w) == 0;
		T_CHECK(found, "%s in the unit's bounding set but not checked at start", w);
	}
	T_CHECK(inunit == known, "unit lists %d capabilities, the self-check %d", inunit, known);
}

/* --- the real probe, with capabilities dropped --- */

static int drop_caps(uint64_t drop)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
	if (syscall(SYS_capget, &h, d) < 0)
		return -errno;
	for (int i = 0; i < 2; i++) {
		uint32_t keep = ~(uint32_t)(drop >> (32 * i));
		d[i].effective &= keep;
		d[i].permitted &= keep;
		d[i].inheritable &= keep;
	}
	return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}

/* Runs the self-check in a child that first drops `drop`; returns its rc and report. */
static int in_child(uint64_t drop, const struct ward_config *c, bool state, char *rep, size_t len)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1000;
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		char r[SELFCHECK_REPORT_MAX] = "";
		int rc = drop_caps(drop);
		if (rc == 0)
			rc = selfcheck_run(c, state, r, sizeof(r));
		else
			snprintf(r, sizeof(r), "capset: %s", strerror(-rc));
		if (write(p[1], &rc, sizeof(rc)) != sizeof(rc) || write(p[1], r, strlen(r) + 1) < 0)
			_exit(2);
		_exit(0);
	}
	close(p[1]);
	int rc = -1000;
	size_t got = 0;
	if (read(p[0], &rc, sizeof(rc)) != sizeof(rc))
		rc = -1000;
	ssize_t n;
	while (got + 1 < len && (n = read(p[0], rep + got, len - 1 - got)) > 0)
		got += (size_t)n;
	rep[got] = '\0';
	close(p[0]);
	int st;
	waitpid(pid, &st, 0);
	return rc;
}

static void test_real(void)
{
	struct ward_config c;
	struct selfcheck_env env;
	char rep[SELFCHECK_REPORT_MAX];
	char dir[] = "/tmp/selfcheck.XXXXXX";

	config_for(&c, 0);
	T_CHECK(selfcheck_probe(&c, false, &env) == 0, "probe");
	if (!(env.cap_eff & BIT(CAP_SYS_ADMIN))) {
		printf("selfcheck: not root with CAP_SYS_ADMIN: the capset tests are skipped\n");
		config_free(&c);
		return;
	}
	/* the probe reads the kernel's own figures */
	FILE *f = fopen("/proc/sys/fs/fanotify/max_user_groups", "re");
	if (f) {
		long v = -2;
		T_CHECK(fscanf(f, "%ld", &v) == 1 && v == env.fan_groups, "max_user_groups %ld == %ld", v,
			env.fan_groups);
		fclose(f);
	}
	T_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	snprintf(c.state_dir, sizeof(c.state_dir), "%s", dir);

	/* as we are: no capability is missing, the state directory takes a file and keeps
	 * none (O_TMPFILE) */
	int rc = in_child(0, &c, true, rep, sizeof(rep));
	T_CHECK(rc >= 0 && !strstr(rep, "missing") && !strstr(rep, "state directory"),
		"root: nothing missing (rc %d):\n%s", rc, rep);
	int entries = 0;
	DIR *dd = opendir(dir);
	for (struct dirent *de; dd && (de = readdir(dd));)
		entries += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	if (dd)
		closedir(dd);
	T_CHECK(dd && entries == 0, "the probe left nothing in the directory (%d entries)", entries);

	/* CAP_KILL and CAP_LEASE gone: both named, with what is lost; ward still runs */
	rc = in_child(BIT(CAP_KILL) | BIT(CAP_LEASE), &c, true, rep, sizeof(rep));
	T_CHECK(rc >= 2 && strstr(rep, "missing CAP_KILL: an attacker running as another user") &&
			strstr(rep, "missing CAP_LEASE: no read leases") && !strstr(rep, "CAP_SYS_ADMIN"),
		"CAP_KILL and CAP_LEASE dropped (rc %d):\n%s", rc, rep);
	/* in monitor mode without the vault neither matters */
	c.mode = WARD_MODE_MONITOR;
	c.vault = false;
	rc = in_child(BIT(CAP_KILL) | BIT(CAP_LEASE), &c, true, rep, sizeof(rep));
	T_CHECK(rc >= 0 && !strstr(rep, "missing"), "monitor mode, no vault (rc %d):\n%s", rc, rep);
	c.mode = WARD_MODE_PROTECT;
	c.vault = true;

	/* CAP_SYS_ADMIN gone: ward cannot run */
	rc = in_child(BIT(CAP_SYS_ADMIN), &c, false, rep, sizeof(rep));
	T_CHECK(rc == -EPERM && strstr(rep, "missing CAP_SYS_ADMIN"), "CAP_SYS_ADMIN dropped (rc %d):\n%s",
		rc, rep);

	/* a state directory root may write only through CAP_DAC_OVERRIDE */
	T_CHECK(chmod(dir, 0555) == 0, "chmod");
	rc = in_child(BIT(CAP_DAC_OVERRIDE), &c, true, rep, sizeof(rep));
	T_CHECK(rc == -EPERM && strstr(rep, "is not writable (Permission denied)") &&
			strstr(rep, "missing CAP_DAC_OVERRIDE"),
		"state directory not writable (rc %d):\n%s", rc, rep);
	/* ... and `ward trace`, which keeps no state, is not stopped by it */
	rc = in_child(BIT(CAP_DAC_OVERRIDE), &c, false, rep, sizeof(rep));
	T_CHECK(rc >= 0 && !strstr(rep, "state directory"), "state not checked (rc %d):\n%s", rc, rep);
	/* a missing one */
	snprintf(c.state_dir, sizeof(c.state_dir), "%s/no/such", dir);
	rc = in_child(0, &c, true, rep, sizeof(rep));
	T_CHECK(rc == -EPERM && strstr(rep, "No such file or directory"), "missing state dir (rc %d):\n%s",
		rc, rep);
	rmdir(dir);
	config_free(&c);
}

int main(void)
{
	test_judge();
	test_unit_bounding_set();
	test_real();
	return T_DONE("selfcheck");
}
