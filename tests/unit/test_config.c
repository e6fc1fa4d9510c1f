/* test_config: the config parser as a data table: text in, success or the exact error out. */
#include <string.h>

#include "config/config.h"
#include "t.h"

static const struct {
	const char *text;
	const char *err; /* NULL: must load */
} cases[] = {
	{"[ward]\nwatch = /srv/a\nwatch = /srv/b\n", NULL},
	{"; comment\n# comment\n\n[ward]\nmode = monitor\n", NULL},
	{"[ward]\nwatch = /srv/a/../b/./c//\n", NULL},
	{"[sensor]\nunlimited_queue = yes\nebpf = off\nprocess_grace = 5m\n", NULL},
	{"[output]\nevents_file = /var/log/ward/events.json\n", NULL},
	{"[ward]\nlog_level = debug\n", NULL},
	{"[ward]\nfoo = 1\n", "t.conf:2: unknown key \"foo\" in [ward]"},
	{"[ward]\n\n\nmode = loud\n", "t.conf:4: mode must be protect or monitor, not \"loud\""},
	{"[wrd]\nmode = monitor\n", "t.conf:2: unknown section [wrd]"},
	{"mode = monitor\n", "t.conf:1: key \"mode\" is outside any section (start with [ward])"},
	{"[ward\n", "t.conf:1: syntax error"},
	{"[ward]\njust words\n", "t.conf:2: syntax error"},
	{"[sensor]\nunlimited_queue = maybe\n", "t.conf:2: unlimited_queue must be yes or no"},
	{"[sensor]\nprocess_grace = 0\n", "t.conf:2: process_grace must be a positive duration"},
	{"[sensor]\nprocess_grace = 10x\n", "t.conf:2: process_grace must be a positive duration"},
	{"[ward]\nstate_dir = var/lib\n", "t.conf:2: state_dir must be an absolute path"},
	{"[ward]\nwatch =\n", "t.conf:2: watch \"\": empty path"},
	{"[ward]\nlog_level = chatty\n", "t.conf:2: log_level must be"},
	{"[output]\nsyslog = yes\n", "t.conf:2: syslog must be local, unix:/PATH, udp:HOST:PORT or tcp:HOST:PORT"},
	{"[output]\nsyslog = tcp:siem.example:6514\nmetrics = 127.0.0.1:9477\nalerts_format = ocsf\n", NULL},
	{"[output]\nmetrics = 9477\n", "t.conf:2: metrics must be ADDRESS:PORT"},
	{"[output]\nshout = yes\n", "t.conf:2: unknown key \"shout\" in [output]"},
	{"[vault]\nmax_size = 20G\nmax_age = 7d\non_failure = deny\n", NULL},
	{"[vault]\non_failure = maybe\n", "t.conf:2: on_failure must be allow"},
	{"[prevent]\nrules = relative.yar\n", "t.conf:2: rules must be an absolute path"},
	{"[detect]\nthreshold = 5\n", "t.conf:2: threshold must be a number from 10 to 100000"},
	{"[response]\naction = stop\n[canary]\nname = decoy.docx\ndepth = 1\n", NULL},
	{"[canary]\nname = a/b\n", "t.conf:2: name must be a plain file name"},
	{"[detect]\nallow_exe = /usr/bin/borg\nallow_exe = /usr/bin/restic "
	 "sha256:9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08\n", NULL},
	{"[detect]\nallow_exe = borg\n", "t.conf:2: allow_exe must be an absolute path"},
	{"[detect]\nallow_exe = /usr/bin/borg sha256:1234\n", "t.conf:2: allow_exe /usr/bin/borg: after the path only sha256:HEX"},
	{"[detect]\nallow_exe = /usr/bin/borg sha256:zz86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n",
	 "t.conf:2: allow_exe /usr/bin/borg: \"zz86"},
	{"[detect]\nallow_exe = /usr/bin/borg 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 x\n",
	 "t.conf:2: allow_exe /usr/bin/borg: after the path only"},
};

int main(void)
{
	char err[640];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ward_config c;
		config_init(&c);
		err[0] = '\0';
		int rc = config_load_string(&c, cases[i].text, "t.conf", err, sizeof(err));
		if (!cases[i].err)
			T_CHECK(rc == 0, "case %zu should load: %s", i, err);
		else
			T_CHECK(rc < 0 && strncmp(err, cases[i].err, strlen(cases[i].err)) == 0,
				"case %zu: got \"%s\", want \"%s\"", i, err, cases[i].err);
		config_free(&c);
	}

	/* an allow-list entry with a hash is kept in one normal form (lower-case hex) */
	{
		struct ward_config a;
		config_init(&a);
		int r = config_load_string(&a, "[detect]\nallow_exe = /usr/bin/restic   SHA256:9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08\n",
					   "t.conf", err, sizeof(err));
		T_CHECK(r != 0, "the prefix is lower-case sha256: (%s)", err);
		config_free(&a);
		config_init(&a);
		r = config_load_string(&a, "[detect]\nallow_exe = /usr/bin/restic   sha256:9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08\n",
				       "t.conf", err, sizeof(err));
		T_CHECK(r == 0 && a.nallow == 1 &&
				strcmp(a.allow_exe[0], "/usr/bin/restic sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08") == 0,
			"normal form: %s", a.nallow ? a.allow_exe[0] : "(none)");
		config_free(&a);
	}

	/* values really land where they should */
	struct ward_config c;
	config_init(&c);
	int rc = config_load_string(&c,
				    "[ward]\nwatch = /srv/a/../b/./c//\nwatch = /srv/b/c\nmode = monitor\n"
				    "state_dir = /data/ward/\n[sensor]\nprocess_grace = 2m\nebpf = no\n",
				    "t.conf", err, sizeof(err));
	T_CHECK(rc == 0, "load: %s", err);
	T_CHECK(c.nwatch == 1 && strcmp(c.watch[0], "/srv/b/c") == 0, "watch normalized, deduplicated: %d %s",
		c.nwatch, c.nwatch ? c.watch[0] : "");
	T_CHECK(c.mode == WARD_MODE_MONITOR, "mode");
	T_CHECK(strcmp(c.state_dir, "/data/ward") == 0, "state_dir: %s", c.state_dir);
	T_CHECK(c.proc_grace_s == 120, "grace %u", c.proc_grace_s);
	T_CHECK(c.no_bpf, "ebpf = no");
	config_free(&c);

	static const struct {
		const char *s;
		int ok;
		uint32_t v;
	} durs[] = {{"90", 1, 90}, {"90s", 1, 90}, {"5m", 1, 300}, {"2h", 1, 7200}, {"1d", 1, 86400},
		    {"", 0, 0}, {"-1", 0, 0}, {"1y", 0, 0}, {"99999999999h", 0, 0}, {"5 m", 0, 0}};
	for (size_t i = 0; i < sizeof(durs) / sizeof(durs[0]); i++) {
		uint32_t v = 0;
		int r = config_parse_duration(durs[i].s, &v);
		T_CHECK((r == 0) == durs[i].ok && (!durs[i].ok || v == durs[i].v), "duration \"%s\": rc %d v %u",
			durs[i].s, r, v);
	}
	return T_DONE("config");
}
