/* daemon.h: ward's main loop: owns the sensor, the control socket, signals and upkeep, and
 * hands every event to its consumers (event output, detection). Used by `ward run`,
 * `ward trace` and `ward record`. */
#ifndef WARD_DAEMON_H
#define WARD_DAEMON_H
#include <stdbool.h>
#include <stdio.h>

#include "config/config.h"

/* What the command line set: a reload of the configuration file leaves these alone. */
enum {
	DAEMON_CLI_MODE = 1 << 0,
	DAEMON_CLI_LOG = 1 << 1,
	DAEMON_CLI_WATCH = 1 << 2,     /* --watch or --exclude */
	DAEMON_CLI_STATE = 1 << 3,
	DAEMON_CLI_FEATURES = 1 << 4,  /* --sensor-only, --no-bpf */
	DAEMON_CLI_EVENTS = 1 << 5,
};

struct daemon_opts {
	struct ward_config *cfg;       /* reloadable keys change on SIGHUP */
	const char *config_path;       /* re-read on SIGHUP; NULL: nothing to reload */
	unsigned cli;                  /* DAEMON_CLI_* */
	FILE *events_out;   /* every event as an ECS JSON line, or NULL */
	bool control;       /* serve the control socket in cfg->runtime_dir */
	bool inspect;       /* inspect written content even without detection (record) */
	const char *what;   /* "run", "trace", "record": for messages */
};

/* Runs until SIGINT/SIGTERM. SIGHUP re-reads the configuration file (keys that need a
 * restart are named in the log and left as they are), YARA rules and indicator feeds, and
 * reopens the output files. Returns 0 or -errno (the message is already logged). */
int daemon_run(const struct daemon_opts *o);
#endif
