/* main.c: ward's command line. Parses the subcommand and its options, merges them over
 * the config file, and calls the module that does the work. The only place that exits. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <time.h>

#include "config/config.h"
#include "control/control.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "cli/cmd_ioc.h"
#include "cli/cmd_scan.h"
#include "daemon/daemon.h"
#include "prevent/scanner.h"
#include "prevent/stix.h"
#include "response/recover.h"
#include "detect/engine.h"
#include "response/incident.h"
#include "trace/ecs.h"
#include "trace/trace.h"

#define WARD_VERSION "0.1.0"

enum { EXIT_USAGE = 2, EXIT_NOT_RUNNING = 3 };

static void usage(FILE *f)
{
	fputs("usage: ward COMMAND [OPTIONS]\n"
	      "\n"
	      "commands:\n"
	      "  run      [--watch PATH]... [--state DIR] [--config FILE] [--mode protect|monitor]\n"
	      "           run the daemon in the foreground until SIGTERM/SIGINT\n"
	      "  trace    --watch PATH... print every file event as an ECS JSON line\n"
	      "  record   FILE --watch PATH...  save the event stream to FILE (a versioned trace)\n"
	      "  replay   FILE [--detect]  read a trace back: its events, or what the detector finds\n"
	      "  status   [--state DIR] [--json]  is ward running and watching? (exit 0 if so, 3 if not)\n"
	      "  incidents [ID] [--json]  list incidents (or show one)\n"
	      "  allow    ID      resume a stopped actor after a false alarm and allow-list it\n"
	      "  restore  ID [--dry-run]  put back every file the incident's actor changed\n"
	      "  restore  --path P [--before TIME] [--dry-run]  files under P as they were before TIME\n"
	      "  incident export ID  the incident as a STIX 2.1 bundle (for peers, MISP, OpenCTI)\n"
	      "  scan     [--json] [--rules FILE|DIR]... [--hashes FILE]... PATH...  scan files\n"
	      "  ioc      import FILE... | list [--json] | stats | lookup HASH...  indicators\n"
	      "  check-config [--config FILE]  validate a configuration without starting\n"
	      "  version\n"
	      "\n"
	      "common options:\n"
	      "  --state DIR        state directory (default /var/lib/ward; the control socket is\n"
	      "                     then DIR/ward.sock instead of /run/ward/ward.sock)\n"
	      "  --config FILE      configuration file (see ward.conf(5))\n"
	      "  --watch PATH       a directory tree to protect (repeatable)\n"
	      "  --exclude PATH     a subtree never reported (repeatable)\n"
	      "  --log-level LEVEL  error, warning, notice, info or debug\n"
	      "  --mode MODE        protect (stop attackers, the default) or monitor (alert only)\n"
	      "  --no-ebpf          do not load the eBPF process monitor\n"
	      "  --sensor-only      run the sensor without detection (benchmarks)\n",
	      f);
}

enum {
	OPT_STATE = 1000, OPT_CONFIG, OPT_WATCH, OPT_EXCLUDE, OPT_MODE, OPT_LOG, OPT_NOBPF,
	OPT_JSON, OPT_EVENTS, OPT_HELP, OPT_SENSOR_ONLY, OPT_DETECT, OPT_PATH, OPT_BEFORE, OPT_DRY
};
static const struct option opts[] = {
	{"state", required_argument, NULL, OPT_STATE},
	{"config", required_argument, NULL, OPT_CONFIG},
	{"watch", required_argument, NULL, OPT_WATCH},
	{"exclude", required_argument, NULL, OPT_EXCLUDE},
	{"mode", required_argument, NULL, OPT_MODE},
	{"log-level", required_argument, NULL, OPT_LOG},
	{"no-ebpf", no_argument, NULL, OPT_NOBPF},
	{"json", no_argument, NULL, OPT_JSON},
	{"events-file", required_argument, NULL, OPT_EVENTS},
	{"help", no_argument, NULL, OPT_HELP},
	{"sensor-only", no_argument, NULL, OPT_SENSOR_ONLY},
	{"detect", no_argument, NULL, OPT_DETECT},
	{"path", required_argument, NULL, OPT_PATH},
	{"before", required_argument, NULL, OPT_BEFORE},
	{"dry-run", no_argument, NULL, OPT_DRY},
	{0},
};

struct cli {
	const char *cmd;
	struct ward_config cfg;
	bool json;
	bool detect;
	bool dry_run;
	const char *path;
	int64_t before_ns;
	char *pos[8]; /* positional arguments */
	const char *config_path;
	unsigned cli_set; /* DAEMON_CLI_*: what options set over the file */
	int npos;
};

/* Two passes: the config file first, then options over it. Returns 0 or an exit code. */
static int parse(struct cli *cl, int argc, char **argv)
{
	char err[640];
	const char *config = NULL, *state = NULL;
	opterr = 0;
	optind = 0;
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == OPT_CONFIG)
			config = optarg;
		else if (c == OPT_STATE)
			state = optarg;
	}
	cl->config_path = config;
	if (config && config_load_file(&cl->cfg, config, err, sizeof(err))) {
		fprintf(stderr, "ward: %s\n", err);
		return EXIT_USAGE;
	}
	if (state) {
		cl->cli_set |= DAEMON_CLI_STATE;
		if (state[0] == '\0') {
			fprintf(stderr, "ward: %s: --state needs a directory\n", cl->cmd);
			return EXIT_USAGE;
		}
		/* with an explicit state directory everything lives there, socket included */
		char *abs = realpath(state, NULL);
		snprintf(cl->cfg.state_dir, sizeof(cl->cfg.state_dir), "%s", abs ? abs : state);
		snprintf(cl->cfg.runtime_dir, sizeof(cl->cfg.runtime_dir), "%s", abs ? abs : state);
		free(abs);
	}
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_STATE:
		case OPT_CONFIG:
			break;
		case OPT_WATCH:
			cl->cli_set |= DAEMON_CLI_WATCH;
			if (config_add_watch(&cl->cfg, optarg, err, sizeof(err))) {
				fprintf(stderr, "ward: %s: %s\n", cl->cmd, err);
				return EXIT_USAGE;
			}
			break;
		case OPT_EXCLUDE:
			cl->cli_set |= DAEMON_CLI_WATCH;
			if (config_add_exclude(&cl->cfg, optarg, err, sizeof(err))) {
				fprintf(stderr, "ward: %s: %s\n", cl->cmd, err);
				return EXIT_USAGE;
			}
			break;
		case OPT_MODE:
			cl->cli_set |= DAEMON_CLI_MODE;
			if (config_parse_mode(optarg, &cl->cfg.mode)) {
				fprintf(stderr, "ward: %s: --mode must be protect or monitor, not \"%s\"\n",
					cl->cmd, optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_LOG:
			cl->cli_set |= DAEMON_CLI_LOG;
			if (config_parse_log_level(optarg, &cl->cfg.log_level)) {
				fprintf(stderr, "ward: %s: --log-level must be error, warning, notice, info or debug\n",
					cl->cmd);
				return EXIT_USAGE;
			}
			break;
		case OPT_NOBPF:
			cl->cli_set |= DAEMON_CLI_FEATURES;
			cl->cfg.no_bpf = true;
			break;
		case OPT_JSON:
			cl->json = true;
			break;
		case OPT_SENSOR_ONLY:
			cl->cli_set |= DAEMON_CLI_FEATURES;
			cl->cfg.detect = false;
			cl->cfg.prevent = false;
			cl->cfg.vault = false;
			break;
		case OPT_DETECT:
			cl->detect = true;
			break;
		case OPT_DRY:
			cl->dry_run = true;
			break;
		case OPT_PATH:
			if (optarg[0] != '/') {
				fprintf(stderr, "ward: %s: --path needs an absolute path\n", cl->cmd);
				return EXIT_USAGE;
			}
			cl->path = optarg;
			break;
		case OPT_BEFORE: {
			/* RFC 3339 UTC ("2026-11-25T12:00:00Z"), local "YYYY-MM-DD HH:MM[:SS]" or @EPOCH */
			struct tm tm = {0};
			char *end = NULL;
			time_t t = -1;
			if (optarg[0] == '@') {
				long long v = strtoll(optarg + 1, &end, 10);
				if (end && *end == '\0' && end != optarg + 1)
					t = (time_t)v;
			} else if ((end = strptime(optarg, "%Y-%m-%dT%H:%M:%S", &tm)) && (strcmp(end, "Z") == 0 || *end == '\0')) {
				t = timegm(&tm);
			} else {
				memset(&tm, 0, sizeof(tm));
				tm.tm_isdst = -1;
				if (((end = strptime(optarg, "%Y-%m-%d %H:%M:%S", &tm)) && *end == '\0') ||
				    ((end = strptime(optarg, "%Y-%m-%d %H:%M", &tm)) && *end == '\0'))
					t = mktime(&tm);
			}
			if (t == (time_t)-1) {
				fprintf(stderr, "ward: %s: --before \"%s\": give a time as 2026-11-25T12:00:00Z, "
					"\"2026-11-25 13:00\" (local) or @EPOCH\n", cl->cmd, optarg);
				return EXIT_USAGE;
			}
			cl->before_ns = (int64_t)t * 1000000000ll;
			break;
		}
		case OPT_EVENTS:
			if (optarg[0] != '/') {
				fprintf(stderr, "ward: %s: --events-file needs an absolute path\n", cl->cmd);
				return EXIT_USAGE;
			}
			cl->cli_set |= DAEMON_CLI_EVENTS;
			snprintf(cl->cfg.events_file, sizeof(cl->cfg.events_file), "%s", optarg);
			break;
		case 'h':
		case OPT_HELP:
			usage(stdout);
			exit(0);
		default:
			fprintf(stderr, "ward: %s: unknown or incomplete option %s\n", cl->cmd,
				argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	for (int i = optind; i < argc; i++) {
		if (cl->npos >= 8) {
			fprintf(stderr, "ward: %s: too many arguments\n", cl->cmd);
			return EXIT_USAGE;
		}
		cl->pos[cl->npos++] = argv[i];
	}
	ward_log_level = cl->cfg.log_level;
	return 0;
}

static int need_pos(struct cli *cl, int n, const char *what)
{
	if (cl->npos != n) {
		fprintf(stderr, "ward: %s: %s\n", cl->cmd, what);
		return EXIT_USAGE;
	}
	return 0;
}

static int run_daemon(struct cli *cl, FILE *out, bool control, bool inspect)
{
	char err[640];
	if (config_validate(&cl->cfg, err, sizeof(err))) {
		fprintf(stderr, "ward: %s: %s\n", cl->cmd, err);
		return EXIT_USAGE;
	}
	/* trace and record have no reload: their configuration is their command line */
	struct daemon_opts o = {.cfg = &cl->cfg, .config_path = control ? cl->config_path : NULL,
				.cli = cl->cli_set | (cl->cfg.detect ? 0u : DAEMON_CLI_FEATURES), .events_out = out, .control = control, .inspect = inspect, .what = cl->cmd};
	return daemon_run(&o) ? 1 : 0;
}

static int cmd_record(struct cli *cl)
{
	int rc = need_pos(cl, 1, "usage: ward record FILE --watch PATH...");
	if (rc)
		return rc;
	FILE *f = fopen(cl->pos[0], "we");
	if (!f) {
		fprintf(stderr, "ward: record: %s: %s\n", cl->pos[0], strerror(errno));
		return 1;
	}
	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	trace_write_header(f, host);
	cl->cfg.detect = false; /* recording only: content is inspected and kept in the trace */
	rc = run_daemon(cl, f, false, true);
	if (fclose(f) != 0) {
		fprintf(stderr, "ward: record: %s: %s\n", cl->pos[0], strerror(errno));
		rc = 1;
	}
	return rc;
}

static void replay_detect(const struct detection *d, void *ctx)
{
	struct jsonw w;
	jsonw_init(&w);
	jsonw_obj_open(&w, NULL);
	jsonw_str(&w, "detection", d->level);
	jsonw_int(&w, "pid", d->pid);
	jsonw_str(&w, "executable", d->exe);
	jsonw_double(&w, "score", d->score);
	jsonw_uint(&w, "files", d->nfiles_total);
	jsonw_arr_open(&w, "evidence");
	for (int i = 0; i < d->nevidence; i++) {
		jsonw_obj_open(&w, NULL);
		jsonw_str(&w, "indicator", d->evidence[i].indicator);
		jsonw_int(&w, "points", d->evidence[i].points);
		jsonw_str(&w, "path", d->evidence[i].path);
		jsonw_obj_close(&w);
	}
	jsonw_arr_close(&w);
	jsonw_obj_close(&w);
	puts(w.buf ? w.buf : "{}");
	(*(unsigned long *)ctx)++;
	jsonw_free(&w);
}

static int cmd_replay(struct cli *cl)
{
	int rc = need_pos(cl, 1, "usage: ward replay FILE");
	if (rc)
		return rc;
	char err[640];
	struct trace_reader *r;
	if (trace_reader_open(&r, cl->pos[0], err, sizeof(err))) {
		fprintf(stderr, "ward: replay: %s\n", err);
		return 1;
	}
	struct ward_event *ev = malloc(sizeof(*ev));
	struct jsonw w;
	jsonw_init(&w);
	unsigned long n = 0, detections = 0;
	rc = 0;
	int got = 0;
	/* --detect: the detector runs over the recorded events as it would have live (monitor
	 * mode: nothing is stopped); each detection is printed as a JSON line */
	struct engine *eng = NULL;
	if (cl->detect) {
		struct engine_cfg ec = {.threshold = cl->cfg.threshold, .half_life_s = cl->cfg.half_life_s,
					.allow_exe = (const char *const *)cl->cfg.allow_exe, .nallow = cl->cfg.nallow,
					.on_detect = replay_detect, .ctx = &detections};
		if (engine_create(&eng, &ec)) {
			fprintf(stderr, "ward: replay: out of memory\n");
			rc = 1;
			goto done;
		}
	}
	while (ev && (got = trace_reader_next(r, ev, err, sizeof(err))) == 1) {
		n++;
		if (eng) {
			engine_event(eng, ev);
			continue;
		}
		jsonw_reset(&w);
		ecs_event(&w, ev, NULL);
		puts(w.buf ? w.buf : "");
	}
	if (!ev || got < 0) {
		fprintf(stderr, "ward: replay: %s\n", ev ? err : "out of memory");
		rc = 1;
	}
	fprintf(stderr, "ward: replay: %lu events", n);
	if (eng)
		fprintf(stderr, ", %lu detection(s)", detections);
	fputc('\n', stderr);
done:
	engine_destroy(eng);
	jsonw_free(&w);
	free(ev);
	trace_reader_close(r);
	return rc;
}

static int cmd_status(struct cli *cl)
{
	static char reply[CONTROL_REPLY_MAX];
	int rc = control_request(cl->cfg.runtime_dir, "status", reply, sizeof(reply));
	if (rc) {
		if (cl->json)
			printf("{\"running\":false}\n");
		fprintf(stderr, "ward: status: not running (%s/%s: %s)\n", cl->cfg.runtime_dir,
			CONTROL_SOCK_NAME, rc == -EACCES ? "permission denied" : strerror(-rc));
		return rc == -EACCES ? 4 : EXIT_NOT_RUNNING;
	}
	json_object *o = json_tokener_parse(reply);
	json_object *w = NULL, *v;
	bool watching = o && json_object_object_get_ex(o, "watching", &w) && json_object_get_boolean(w);
	if (cl->json) {
		printf("%s\n", reply);
	} else if (o) {
		printf("ward is running (pid %d, %s mode, up %lds)\n",
		       json_object_object_get_ex(o, "pid", &v) ? json_object_get_int(v) : 0,
		       json_object_object_get_ex(o, "mode", &v) ? json_object_get_string(v) : "?",
		       json_object_object_get_ex(o, "uptime_s", &v) ? (long)json_object_get_int64(v) : 0L);
		if (json_object_object_get_ex(o, "watch", &v))
			for (size_t i = 0; i < json_object_array_length(v); i++)
				printf("  watching %s\n", json_object_get_string(json_object_array_get_idx(v, i)));
		json_object *ev;
		if (json_object_object_get_ex(o, "events", &ev) && json_object_object_get_ex(ev, "total", &v))
			printf("  events: %lld\n", (long long)json_object_get_int64(v));
		if (json_object_object_get_ex(o, "overflows", &v))
			printf("  queue overflows: %lld\n", (long long)json_object_get_int64(v));
		if (json_object_object_get_ex(o, "features", &v))
			for (size_t i = 0; i < json_object_array_length(v); i++)
				printf("  %s\n", json_object_get_string(json_object_array_get_idx(v, i)));
	}
	json_object_put(o);
	return watching ? 0 : EXIT_NOT_RUNNING;
}

static int print_incident(const struct incident *i, void *ctx)
{
	struct cli *cl = ctx;
	if (cl->json) {
		incident_print_json(stdout, i);
		return 0;
	}
	time_t t = (time_t)(i->created_ns / 1000000000ull);
	struct tm tm;
	char when[32];
	localtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	printf("%-26s %s  %-9s score %-5.0f pid %-7d %s (%u files)\n", i->id, when, i->status, i->score, i->pid,
	       i->exe, i->nfiles);
	return 0;
}

static int cmd_incidents(struct cli *cl)
{
	struct incident_db *db;
	int rc = incident_db_open(&db, cl->cfg.state_dir, true);
	if (rc == -ENOENT) {
		if (!cl->json)
			printf("no incidents (no %s/incidents.db)\n", cl->cfg.state_dir);
		return 0;
	}
	if (rc) {
		fprintf(stderr, "ward: incidents: %s/incidents.db: %s\n", cl->cfg.state_dir, strerror(-rc));
		return 1;
	}
	if (cl->npos == 1) {
		struct incident i;
		rc = incident_get(db, cl->pos[0], &i);
		if (rc == 0) {
			incident_print_json(stdout, &i);
			incident_clear(&i);
		} else {
			fprintf(stderr, "ward: incidents: %s: %s\n", cl->pos[0], rc == -ENOENT ? "no such incident" : strerror(-rc));
		}
	} else {
		rc = incident_each(db, print_incident, cl);
		if (rc)
			fprintf(stderr, "ward: incidents: %s\n", strerror(-rc));
	}
	incident_db_close(db);
	return rc ? 1 : 0;
}

static int cmd_allow(struct cli *cl)
{
	int rc = need_pos(cl, 1, "usage: ward allow INCIDENT-ID");
	if (rc)
		return rc;
	char req[CONTROL_REQ_MAX], reply[4096];
	if (strlen(cl->pos[0]) > 64 || strchr(cl->pos[0], '\n')) {
		fprintf(stderr, "ward: allow: not an incident id: %s\n", cl->pos[0]);
		return EXIT_USAGE;
	}
	snprintf(req, sizeof(req), "allow %s", cl->pos[0]);
	rc = control_request(cl->cfg.runtime_dir, req, reply, sizeof(reply));
	if (rc) {
		fprintf(stderr, "ward: allow: ward is not running (%s)\n", strerror(-rc));
		return EXIT_NOT_RUNNING;
	}
	json_object *o = json_tokener_parse(reply), *v;
	if (o && json_object_object_get_ex(o, "error", &v)) {
		fprintf(stderr, "ward: allow: %s: %s\n", cl->pos[0], json_object_get_string(v));
		json_object_put(o);
		return 1;
	}
	printf("%s: allowed %s, resumed %d process(es)\n", cl->pos[0],
	       o && json_object_object_get_ex(o, "allowed", &v) ? json_object_get_string(v) : "?",
	       o && json_object_object_get_ex(o, "resumed", &v) ? json_object_get_int(v) : 0);
	json_object_put(o);
	return 0;
}

/* sha256 of a file by path, "" when unreadable. */
static void file_sha256(const char *path, char out[65])
{
	uint8_t sha256[32], sha1[20], md5[16];
	out[0] = '\0';
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (scanner_digest_fd(fd, 1ull << 32, sha256, sha1, md5) == 0)
		scanner_hex(sha256, 32, out);
	close(fd);
}

/* ward incident export ID: the incident as a STIX 2.1 bundle (stdout). The executable's
 * hash, the extensions it renamed files to and the ransom note's name and hash come from
 * the incident's evidence. */
static int cmd_incident(struct cli *cl)
{
	if (cl->npos != 2 || strcmp(cl->pos[0], "export") != 0) {
		fprintf(stderr, "ward: incident: usage: ward incident export ID [--state DIR]\n");
		return EXIT_USAGE;
	}
	struct incident_db *db;
	struct incident inc;
	int rc = incident_db_open(&db, cl->cfg.state_dir, true);
	if (rc || (rc = incident_get(db, cl->pos[1], &inc))) {
		fprintf(stderr, "ward: incident: %s: %s\n", cl->pos[1],
			rc == -ENOENT ? "no such incident" : strerror(-rc));
		if (db)
			incident_db_close(db);
		return 1;
	}
	static char exts[16][32], notes[8][256], note_sha[65];
	const char *ext_p[16], *note_p[8];
	size_t next = 0, nnotes = 0;
	note_sha[0] = '\0';
	json_object *ev = json_tokener_parse(inc.evidence_json ? inc.evidence_json : "[]");
	for (size_t i = 0; ev && i < json_object_array_length(ev); i++) {
		json_object *e = json_object_array_get_idx(ev, i), *v, *p;
		if (!json_object_object_get_ex(e, "indicator", &v) || !json_object_object_get_ex(e, "path", &p))
			continue;
		const char *ind = json_object_get_string(v), *path = json_object_get_string(p);
		const char *base = strrchr(path, '/');
		base = base ? base + 1 : path;
		if (strcmp(ind, "rename.unknown_extension") == 0 && next < 16) {
			const char *dot = strrchr(base, '.');
			bool dup = false;
			for (size_t k = 0; dot && k < next; k++)
				dup = dup || strcmp(exts[k], dot) == 0;
			if (dot && !dup && strlen(dot) < sizeof(exts[0])) {
				snprintf(exts[next], sizeof(exts[0]), "%s", dot);
				ext_p[next] = exts[next];
				next++;
			}
		} else if (strcmp(ind, "note.repeated") == 0 && nnotes < 8) {
			bool dup = false;
			for (size_t k = 0; k < nnotes; k++)
				dup = dup || strcmp(notes[k], base) == 0;
			if (!dup) {
				snprintf(notes[nnotes], sizeof(notes[0]), "%s", base);
				note_p[nnotes] = notes[nnotes];
				nnotes++;
				if (!note_sha[0])
					file_sha256(path, note_sha);
			}
		}
	}
	json_object_put(ev);
	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	struct stix_incident si = {
		.id = inc.id,
		.first_seen = {.tv_sec = (time_t)(inc.first_ns / 1000000000ull), .tv_nsec = (long)(inc.first_ns % 1000000000ull)},
		.last_seen = {.tv_sec = (time_t)(inc.detected_ns / 1000000000ull), .tv_nsec = (long)(inc.detected_ns % 1000000000ull)},
		.host = host, .exe_path = inc.exe, .exe_sha256 = inc.exe_sha256[0] ? inc.exe_sha256 : NULL,
		.extensions = ext_p, .n_extensions = next, .note_names = note_p, .n_note_names = nnotes,
		.note_sha256 = note_sha[0] ? note_sha : NULL, .files_touched = inc.nfiles, .confidence = 90,
	};
	struct jsonw w;
	jsonw_init(&w);
	rc = stix_export(&si, &w);
	if (rc)
		fprintf(stderr, "ward: incident: %s: cannot export: %s\n", inc.id,
			rc == -EINVAL ? "no executable or note hash recorded" : strerror(-rc));
	else
		printf("%s\n", w.buf);
	jsonw_free(&w);
	incident_clear(&inc);
	incident_db_close(db);
	return rc ? 1 : 0;
}

static void print_restore(json_object *o)
{
	json_object *v;
	if (json_object_object_get_ex(o, "error", &v)) {
		fprintf(stderr, "ward: restore: %s\n", json_object_get_string(v));
		return;
	}
	bool dry = json_object_object_get_ex(o, "dry_run", &v) && json_object_get_boolean(v);
#define F(k) (json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0)
	printf("%s %lld file(s), %lld already right, %lld moved to quarantine, %lld stale, %lld failed\n",
	       dry ? "would restore" : "restored", (long long)F("restored"), (long long)F("unchanged"),
	       (long long)F("quarantined"), (long long)F("stale"), (long long)F("failed"));
#undef F
	if (json_object_object_get_ex(o, "report", &v))
		printf("report: %s\n", json_object_get_string(v));
}

/* ward restore ID | --path P [--before TIME], [--dry-run]. Through the running daemon
 * (the vault admits only ward itself while it runs), else directly. */
static int cmd_restore(struct cli *cl)
{
	char req[CONTROL_REQ_MAX];
	static char reply[CONTROL_REPLY_MAX];
	if ((cl->npos == 1) == (cl->path != NULL)) {
		fprintf(stderr, "ward: restore: usage: ward restore INCIDENT-ID [--dry-run] | "
			"ward restore --path PATH [--before TIME] [--dry-run]\n");
		return EXIT_USAGE;
	}
	if (cl->path)
		snprintf(req, sizeof(req), "restore-path %lld %d %s", (long long)cl->before_ns, cl->dry_run, cl->path);
	else
		snprintf(req, sizeof(req), "%s %s", cl->dry_run ? "restore-dry" : "restore", cl->pos[0]);
	if (strlen(req) >= sizeof(req) - 1 || strchr(cl->path ? cl->path : cl->pos[0], '\n')) {
		fprintf(stderr, "ward: restore: argument too long or malformed\n");
		return EXIT_USAGE;
	}
	int rc = control_request(cl->cfg.runtime_dir, req, reply, sizeof(reply));
	if (rc == 0) {
		json_object *o = json_tokener_parse(reply), *v;
		if (!o) {
			fprintf(stderr, "ward: restore: bad reply from ward\n");
			return 1;
		}
		if (cl->json)
			printf("%s\n", reply);
		else
			print_restore(o);
		rc = json_object_object_get_ex(o, "error", &v) ? 1 : 0;
		if (!rc && json_object_object_get_ex(o, "failed", &v) && json_object_get_int64(v) > 0)
			rc = 1;
		json_object_put(o);
		return rc;
	}
	/* ward is not running: open the vaults here */
	struct incident inc = {0};
	struct incident_db *db = NULL;
	const char *roots[64];
	int nroots = 0;
	json_object *files = NULL;
	if (cl->path) {
		roots[nroots++] = cl->path;
	} else if (cl->cfg.nwatch) {
		for (int i = 0; i < cl->cfg.nwatch && i < 64; i++)
			roots[nroots++] = cl->cfg.watch[i];
	}
	if (!cl->path) {
		if ((rc = incident_db_open(&db, cl->cfg.state_dir, true)) || (rc = incident_get(db, cl->pos[0], &inc))) {
			fprintf(stderr, "ward: restore: %s: %s\n", cl->pos[0], rc == -ENOENT ? "no such incident" : strerror(-rc));
			incident_db_close(db);
			return 1;
		}
		if (!nroots) { /* the incident's own files tell where to look */
			files = json_tokener_parse(inc.files_json ? inc.files_json : "[]");
			for (size_t i = 0; files && i < json_object_array_length(files) && nroots < 64; i++)
				roots[nroots++] = json_object_get_string(json_object_array_get_idx(files, i));
		}
	}
	/* a root must be a directory that exists for its filesystem to be found */
	char dirs[64][4096];
	for (int i = 0; i < nroots; i++) {
		snprintf(dirs[i], sizeof(dirs[i]), "%s", roots[i]);
		struct stat sb;
		while (stat(dirs[i], &sb) != 0 || !S_ISDIR(sb.st_mode)) {
			char *sl = strrchr(dirs[i], '/');
			if (!sl || sl == dirs[i]) {
				strcpy(dirs[i], "/");
				break;
			}
			*sl = '\0';
		}
		roots[i] = dirs[i];
	}
	struct recover_fs *fs = calloc(RECOVER_MAX_FS, sizeof(*fs));
	char err[512];
	struct vault_store_opts vo = {0};
	int n = fs ? recover_open_all(roots, nroots, cl->cfg.vault_dir, &vo, fs, err, sizeof(err)) : -ENOMEM;
	if (n < 0) {
		fprintf(stderr, "ward: restore: %s\n", fs ? err : "out of memory");
		rc = 1;
		goto out;
	}
	struct vault_restore_stats st = {0};
	FILE *report = cl->json ? stdout : NULL;
	rc = 0;
	for (int i = 0; i < n; i++) {
		int e;
		if (cl->path) {
			struct vault_restore_opts ro = {.dry_run = cl->dry_run, .report = report};
			e = vault_restore_by_path(fs[i].store, cl->path, strlen(cl->path), cl->before_ns, &ro, &st);
		} else {
			char q[4300];
			mkdir(fs[i].quarantine_dir, 0700);
			snprintf(q, sizeof(q), "%s/%s", fs[i].quarantine_dir, inc.id);
			struct recover_opts ro = {.dry_run = cl->dry_run, .report = report, .quarantine_dir = q};
			e = recover_incident(fs[i].store, fs[i].roots, fs[i].nroots, &inc, &ro, &st);
		}
		if (e && !rc)
			rc = e;
	}
	recover_close_all(fs, n);
	if (!cl->json)
		printf("%s %llu file(s), %llu already right, %llu moved to quarantine, %llu stale, %llu failed\n",
		       cl->dry_run ? "would restore" : "restored",
		       (unsigned long long)(cl->dry_run ? st.would_restore : st.restored), (unsigned long long)st.unchanged,
		       (unsigned long long)(cl->dry_run ? st.would_quarantine : st.quarantined),
		       (unsigned long long)st.stale_links, (unsigned long long)st.failed);
	if (rc)
		fprintf(stderr, "ward: restore: %s\n", strerror(-rc));
	rc = rc || st.failed ? 1 : 0;
out:
	free(fs);
	json_object_put(files);
	incident_clear(&inc);
	incident_db_close(db);
	return rc;
}

static int cmd_check_config(struct cli *cl)
{
	char err[640];
	if (config_validate(&cl->cfg, err, sizeof(err))) {
		fprintf(stderr, "ward: check-config: %s\n", err);
		return 1;
	}
	printf("configuration is valid: %d watched root(s), %s mode, state in %s\n", cl->cfg.nwatch,
	       cl->cfg.mode == WARD_MODE_PROTECT ? "protect" : "monitor", cl->cfg.state_dir);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	struct cli cl = {.cmd = argv[1]};
	config_init(&cl.cfg);
	if (strcmp(cl.cmd, "help") == 0 || strcmp(cl.cmd, "--help") == 0 || strcmp(cl.cmd, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(cl.cmd, "version") == 0 || strcmp(cl.cmd, "--version") == 0) {
		printf("ward %s\n", WARD_VERSION);
		return 0;
	}
	/* commands with their own option parsers */
	if (strcmp(cl.cmd, "scan") == 0)
		return cmd_scan(argc - 1, argv + 1);
	if (strcmp(cl.cmd, "ioc") == 0) {
		/* ward ioc SUB [--state DIR] ...: the state option is taken out here */
		const char *state = NULL;
		int n = 0;
		char **av = calloc((size_t)argc + 1, sizeof(*av));
		if (!av)
			return 1;
		for (int i = 2; i < argc; i++) {
			if (strcmp(argv[i], "--state") == 0 && i + 1 < argc)
				state = argv[++i];
			else if (strncmp(argv[i], "--state=", 8) == 0)
				state = argv[i] + 8;
			else
				av[n++] = argv[i];
		}
		if (n == 0) {
			fprintf(stderr, "ward: ioc: usage: ward ioc import|list|stats|lookup ... [--state DIR]\n");
			free(av);
			return EXIT_USAGE;
		}
		int r = cmd_ioc(n, av, state ? state : cl.cfg.state_dir);
		free(av);
		return r;
	}
	int rc = parse(&cl, argc - 1, argv + 1);
	if (rc)
		goto out;
	if (strcmp(cl.cmd, "run") == 0)
		rc = need_pos(&cl, 0, "run takes no arguments (did you mean --watch PATH?)") ?: run_daemon(&cl, NULL, true, false);
	else if (strcmp(cl.cmd, "trace") == 0) {
		setvbuf(stdout, NULL, _IOFBF, 1 << 16);
		rc = need_pos(&cl, 0, "trace takes no arguments (did you mean --watch PATH?)") ?: (cl.cfg.detect = false, run_daemon(&cl, stdout, false, false));
	} else if (strcmp(cl.cmd, "record") == 0)
		rc = cmd_record(&cl);
	else if (strcmp(cl.cmd, "replay") == 0)
		rc = cmd_replay(&cl);
	else if (strcmp(cl.cmd, "status") == 0)
		rc = cmd_status(&cl);
	else if (strcmp(cl.cmd, "incidents") == 0)
		rc = cmd_incidents(&cl);
	else if (strcmp(cl.cmd, "restore") == 0)
		rc = cmd_restore(&cl);
	else if (strcmp(cl.cmd, "incident") == 0)
		rc = cmd_incident(&cl);
	else if (strcmp(cl.cmd, "allow") == 0)
		rc = cmd_allow(&cl);
	else if (strcmp(cl.cmd, "check-config") == 0)
		rc = cmd_check_config(&cl);
	else {
		fprintf(stderr, "ward: unknown command \"%s\" (see ward help)\n", cl.cmd);
		rc = EXIT_USAGE;
	}
out:
	config_free(&cl.cfg);
	return rc;
}
