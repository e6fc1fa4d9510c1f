/* main.c: ward's command line. Parses the subcommand and its options, merges them over
 * the config file, and calls the module that does the work. The only place that exits. */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "control/control.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "daemon/daemon.h"
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
	OPT_JSON, OPT_EVENTS, OPT_HELP, OPT_SENSOR_ONLY, OPT_DETECT
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
	{0},
};

struct cli {
	const char *cmd;
	struct ward_config cfg;
	bool json;
	bool detect;
	char *pos[8]; /* positional arguments */
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
	if (config && config_load_file(&cl->cfg, config, err, sizeof(err))) {
		fprintf(stderr, "ward: %s\n", err);
		return EXIT_USAGE;
	}
	if (state) {
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
			if (config_add_watch(&cl->cfg, optarg, err, sizeof(err))) {
				fprintf(stderr, "ward: %s: %s\n", cl->cmd, err);
				return EXIT_USAGE;
			}
			break;
		case OPT_EXCLUDE:
			if (config_add_exclude(&cl->cfg, optarg, err, sizeof(err))) {
				fprintf(stderr, "ward: %s: %s\n", cl->cmd, err);
				return EXIT_USAGE;
			}
			break;
		case OPT_MODE:
			if (config_parse_mode(optarg, &cl->cfg.mode)) {
				fprintf(stderr, "ward: %s: --mode must be protect or monitor, not \"%s\"\n",
					cl->cmd, optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_LOG:
			if (config_parse_log_level(optarg, &cl->cfg.log_level)) {
				fprintf(stderr, "ward: %s: --log-level must be error, warning, notice, info or debug\n",
					cl->cmd);
				return EXIT_USAGE;
			}
			break;
		case OPT_NOBPF:
			cl->cfg.no_bpf = true;
			break;
		case OPT_JSON:
			cl->json = true;
			break;
		case OPT_SENSOR_ONLY:
			cl->cfg.detect = false;
			break;
		case OPT_DETECT:
			cl->detect = true;
			break;
		case OPT_EVENTS:
			if (optarg[0] != '/') {
				fprintf(stderr, "ward: %s: --events-file needs an absolute path\n", cl->cmd);
				return EXIT_USAGE;
			}
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
	struct daemon_opts o = {.cfg = &cl->cfg, .events_out = out, .control = control, .inspect = inspect, .what = cl->cmd};
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
