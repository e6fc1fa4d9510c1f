/* incident.h: the incident record: who was stopped, when, why (evidence), which files, and
 * what became of it (stopped, killed, allowed, or only reported in monitor mode). Stored in
 * STATE/incidents.db (SQLite, WAL) so that the CLI reads it while the daemon writes. */
#ifndef WARD_INCIDENT_H
#define WARD_INCIDENT_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

struct incident {
	char id[48];              /* "inc-20261125-114239-3fa2" */
	uint64_t created_ns;      /* realtime ns */
	char status[16];          /* "stopped", "killed", "allowed", "reported" */
	char level[16];           /* "process", "tree", "executable" */
	pid_t pid, ppid;
	uint64_t start_ns;
	uint32_t uid;
	char exe[512];
	char exe_sha256[65];
	char *args_json;          /* JSON array; owned */
	double score;
	uint64_t first_ns, detected_ns, stopped_ns;
	char *pids_json;          /* JSON array of stopped pids; owned */
	char *evidence_json;      /* JSON array of {indicator, points, detail, path, time}; owned */
	char *files_json;         /* JSON array of paths; owned */
	char *outputs_json;       /* JSON array of paths the actor created or renamed to; owned */
	uint32_t nfiles;
};

struct incident_db;
/* Opens (creating) STATE/incidents.db. 0 or -errno. */
int incident_db_open(struct incident_db **out, const char *state_dir, bool readonly);
void incident_db_close(struct incident_db *db);   /* accepts NULL */
/* Makes a fresh id from the time and random bytes. */
void incident_new_id(char id[48], uint64_t now_ns);
int incident_save(struct incident_db *db, const struct incident *inc);
int incident_set_status(struct incident_db *db, const char *id, const char *status);
int incident_set_outputs(struct incident_db *db, const char *id, const char *outputs_json);
/* Loads one incident; free with incident_clear(). -ENOENT when there is none. */
int incident_get(struct incident_db *db, const char *id, struct incident *out);
void incident_clear(struct incident *inc);
/* Calls fn for every incident, oldest first. */
int incident_each(struct incident_db *db, int (*fn)(const struct incident *, void *), void *ctx);
/* One incident as a JSON object (one line). */
void incident_print_json(FILE *f, const struct incident *inc);
#endif
