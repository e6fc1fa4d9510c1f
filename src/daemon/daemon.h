/* daemon.h: ward's main loop: owns the sensor, the control socket, signals and upkeep, and
 * hands every event to its consumers (event output, detection). Used by `ward run`,
 * `ward trace` and `ward record`. */
#ifndef WARD_DAEMON_H
#define WARD_DAEMON_H
#include <stdbool.h>
#include <stdio.h>

#include "config/config.h"

struct daemon_opts {
	const struct ward_config *cfg;
	FILE *events_out;   /* every event as an ECS JSON line, or NULL */
	bool control;       /* serve the control socket in cfg->runtime_dir */
	bool inspect;       /* inspect written content even without detection (record) */
	const char *what;   /* "run", "trace", "record": for messages */
};

/* Runs until SIGINT/SIGTERM. Returns 0 or -errno (the message is already logged). */
int daemon_run(const struct daemon_opts *o);
#endif
