/* config.h: ward's configuration: defaults, the INI file (documented in ward.conf(5) and
 * docs/config.md), and validation of every key. Command-line options override the file. */
#ifndef WARD_CONFIG_H
#define WARD_CONFIG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_LIST 64
#define CONFIG_PATH_MAX 4096

enum ward_mode { WARD_MODE_PROTECT = 0, WARD_MODE_MONITOR };

struct ward_config {
	char *watch[CONFIG_MAX_LIST];      /* absolute paths, owned */
	int nwatch;
	char *exclude[CONFIG_MAX_LIST];
	int nexclude;
	char state_dir[CONFIG_PATH_MAX];   /* default /var/lib/ward */
	char runtime_dir[CONFIG_PATH_MAX]; /* control socket; default /run/ward, or state_dir
					      when --state is given */
	enum ward_mode mode;
	int log_level;                     /* syslog level */
	bool unlimited_queue;
	bool no_bpf;
	uint32_t proc_grace_s;
	char events_file[CONFIG_PATH_MAX]; /* "" = none: every event as ECS JSON lines */
	char alerts_file[CONFIG_PATH_MAX]; /* "" = STATE/alerts.json */
	uint64_t alerts_max_bytes;         /* rotation size of the alerts file */
	bool alerts_ocsf;                  /* alerts as OCSF Detection Findings instead of ECS */
	int syslog_transport;              /* -1 none, else enum syslog_transport */
	char syslog_address[256];          /* "" = /dev/log; "host:port" for udp/tcp */
	char metrics_listen[128];          /* "" = no metrics endpoint; "127.0.0.1:9477" */
	/* detection and response */
	bool detect;                       /* false: sensor only (benchmarks, trace) */
	double threshold;
	uint32_t half_life_s;
	bool kill;                         /* on detection: kill (default) or keep stopped */
	char *allow_exe[CONFIG_MAX_LIST];  /* executables never scored */
	int nallow;
	bool canaries;
	char *canary_names[CONFIG_MAX_LIST];
	int ncanary_names;
	uint32_t canary_depth;
	/* prevention: known-bad programs denied at exec */
	bool prevent;
	char *rules[CONFIG_MAX_LIST];      /* YARA rule files or directories */
	int nrules;
	char *exec_paths[CONFIG_MAX_LIST]; /* filesystems whose execs are checked; none: / */
	int nexec_paths;
	char feeds_dir[CONFIG_PATH_MAX];   /* indicator feeds imported at start and on SIGHUP */
	/* the vault: originals kept before untrusted writers change them */
	bool vault;
	char vault_dir[CONFIG_PATH_MAX];   /* "" = MOUNT/.ward-vault on each filesystem */
	uint64_t vault_max_bytes;
	uint32_t vault_max_age_s;
	bool vault_fail_closed;
	uint64_t vault_large_bytes;
};

void config_init(struct ward_config *c);
void config_free(struct ward_config *c);

/* Loads an INI file over the current values. Returns 0 or -errno with err set to
 * "FILE:LINE: problem" (or "FILE: problem"). */
int config_load_file(struct ward_config *c, const char *path, char *err, size_t errlen);
/* The same from memory; name is used in messages. */
int config_load_string(struct ward_config *c, const char *text, const char *name, char *err,
		       size_t errlen);

/* Adds a watched root (made absolute and normalized). Returns 0 or -errno with err. */
int config_add_watch(struct ward_config *c, const char *path, char *err, size_t errlen);
int config_add_exclude(struct ward_config *c, const char *path, char *err, size_t errlen);
/* Final checks once file and options are merged (at least one root, roots exist). */
int config_validate(const struct ward_config *c, char *err, size_t errlen);

/* Parsers shared with option handling: 0 or -EINVAL. */
int config_parse_bool(const char *s, bool *out);
int config_parse_duration(const char *s, uint32_t *seconds);   /* "90", "90s", "5m", "2h" */
int config_parse_mode(const char *s, enum ward_mode *out);
int config_parse_log_level(const char *s, int *out);
int config_parse_size(const char *s, uint64_t *bytes);           /* "10M", "1G", "4096" */
#endif
