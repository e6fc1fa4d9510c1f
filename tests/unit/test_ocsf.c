/* test_ocsf.c: one alert_view rendered as ECS and as OCSF, parsed back with json-c and
 * checked field by field: names, JSON types and values, as a table per format. */
#include <errno.h>
#include <json-c/json.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "core/jsonw.h"
#include "output/ocsf.h"
#include "t.h"

/* "a.b.0.c": object keys and array indexes. NULL when absent. */
static struct json_object *at(struct json_object *o, const char *path)
{
	char buf[256], *save = NULL;
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *tok = strtok_r(buf, ".", &save); tok && o; tok = strtok_r(NULL, ".", &save)) {
		if (json_object_is_type(o, json_type_array)) {
			char *end;
			long i = strtol(tok, &end, 10);
			o = *end ? NULL : json_object_array_get_idx(o, (size_t)i);
		} else if (!json_object_object_get_ex(o, tok, &o)) {
			o = NULL;
		}
	}
	return o;
}

enum want { W_STR, W_INT, W_NUM, W_ARR, W_OBJ, W_DATE, W_ABSENT };

struct row {
	const char *path;
	enum want type;
	const char *value;   /* json_object_get_string() of it, NULL: not compared */
};

static bool rfc3339(const char *s)
{
	regex_t re;
	bool ok;
	regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$",
		REG_EXTENDED | REG_NOSUB);
	ok = regexec(&re, s, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

static void check_rows(const char *fmt, struct json_object *root, const struct row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct row *r = &rows[i];
		struct json_object *o = at(root, r->path);
		if (r->type == W_ABSENT) {
			T_CHECK(o == NULL, "%s: %s should be absent", fmt, r->path);
			continue;
		}
		T_CHECK(o != NULL, "%s: %s missing", fmt, r->path);
		if (!o)
			continue;
		enum json_type jt = json_object_get_type(o);
		bool ok = false;
		switch (r->type) {
		case W_STR: ok = jt == json_type_string; break;
		case W_INT: ok = jt == json_type_int; break;
		case W_NUM: ok = jt == json_type_int || jt == json_type_double; break;
		case W_ARR: ok = jt == json_type_array; break;
		case W_OBJ: ok = jt == json_type_object; break;
		case W_DATE: ok = jt == json_type_string && rfc3339(json_object_get_string(o)); break;
		case W_ABSENT: break;
		}
		T_CHECK(ok, "%s: %s has JSON type %s", fmt, r->path, json_type_to_name(jt));
		if (r->value)
			T_CHECK(strcmp(json_object_get_string(o), r->value) == 0, "%s: %s = %s, want %s",
				fmt, r->path, json_object_get_string(o), r->value);
	}
}

static const char args[] = "/usr/bin/python3\0-c\0encrypt \"all\"\0/home";
static const char *const files[] = {"/home/alice/doc.txt", "/home/alice/a b/photo.jpg"};
static const char *const evidence[] = {"entropy 7.99 after write", "magic changed pdf->data",
				       "name \xff\xfe broken utf8"};

static struct alert_view sample(void)
{
	struct alert_view v = {
		.incident_id = "inc-42",
		.rule_name = "mass-encrypt",
		.title = "ransomware activity by python3",
		.description = "12 files rewritten with high entropy",
		.action = "actor-stopped",
		.blocked = true,
		.score = 87.5,
		.severity = ALERT_SEV_HIGH,
		.time = {1764070262, 123456789},          /* 2025-11-25T11:31:02.123456Z */
		.first_seen = {1764070260, 500000000},
		.files = files,
		.nfiles = 2,
		.hostname = "host1",
		.evidence = evidence,
		.nevidence = 3,
	};
	v.proc.pid = 4242;
	v.proc.ppid = 1;
	v.proc.uid = 1000;
	v.proc.uid_known = true;
	v.proc.exe = "/usr/bin/python3.11";
	v.proc.args = args;
	v.proc.args_len = sizeof(args) - 1;   /* last argument without its NUL: truncated argv */
	v.proc.sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
	return v;
}

static struct json_object *render(int (*fn)(const struct alert_view *, struct jsonw *),
				  const struct alert_view *v, const char *what)
{
	struct jsonw w;
	jsonw_init(&w);
	int err = fn(v, &w);
	T_CHECK(err == 0, "%s render: %d", what, err);
	T_CHECK(w.buf && !memchr(w.buf, '\n', w.len), "%s: one line", what);
	struct json_object *o = w.buf ? json_tokener_parse(w.buf) : NULL;
	T_CHECK(o != NULL, "%s parses: %s", what, w.buf ? w.buf : "(null)");
	jsonw_free(&w);
	return o;
}

static void test_ecs(void)
{
	static const struct row rows[] = {
		{"@timestamp", W_DATE, "2025-11-25T11:31:02.123456Z"},
		{"event.kind", W_STR, "alert"},
		{"event.category", W_ARR, NULL},
		{"event.category.0", W_STR, "file"},
		{"event.category.1", W_STR, "malware"},
		{"event.type.0", W_STR, "info"},
		{"event.type.1", W_STR, "denied"},
		{"event.action", W_STR, "actor-stopped"},
		{"event.severity", W_INT, "4"},
		{"event.risk_score", W_NUM, NULL},
		{"event.start", W_DATE, "2025-11-25T11:31:00.500000Z"},
		{"rule.name", W_STR, "mass-encrypt"},
		{"message", W_STR, "ransomware activity by python3"},
		{"file.path", W_STR, "/home/alice/doc.txt"},
		{"file.name", W_STR, "doc.txt"},
		{"process.pid", W_INT, "4242"},
		{"process.executable", W_STR, "/usr/bin/python3.11"},
		{"process.name", W_STR, "python3.11"},
		{"process.args", W_ARR, NULL},
		{"process.args.0", W_STR, "/usr/bin/python3"},
		{"process.args.2", W_STR, "encrypt \"all\""},
		{"process.args.3", W_STR, "/home"},
		{"process.args_count", W_INT, "4"},
		{"process.command_line", W_STR, "/usr/bin/python3 -c encrypt \"all\" /home"},
		{"process.parent.pid", W_INT, "1"},
		{"process.user.id", W_STR, "1000"},
		{"process.hash.sha256", W_STR, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		{"host.hostname", W_STR, "host1"},
		{"ward.incident.id", W_STR, "inc-42"},
		{"ward.score", W_NUM, "87.5"},
		{"ward.files.1", W_STR, "/home/alice/a b/photo.jpg"},
		{"ward.evidence", W_ARR, NULL},
		{"ward.evidence.0", W_STR, "entropy 7.99 after write"},
		{"ward.evidence.2", W_STR, "name \xef\xbf\xbd\xef\xbf\xbd broken utf8"},
	};
	struct alert_view v = sample();
	struct json_object *o = render(alert_view_to_ecs, &v, "ecs");
	if (o) {
		check_rows("ecs", o, rows, sizeof(rows) / sizeof(rows[0]));
		T_CHECK(json_object_array_length(at(o, "process.args")) == 4, "4 args");
		T_CHECK(json_object_array_length(at(o, "ward.evidence")) == 3, "3 evidence");
		json_object_put(o);
	}

	/* unknown facts are left out, not written as "" or 0 */
	static const struct row sparse[] = {
		{"@timestamp", W_DATE, "2025-11-25T11:31:02.000000Z"},
		{"event.type.0", W_STR, "info"},
		{"event.type.1", W_ABSENT, NULL},
		{"event.action", W_STR, "ransomware-detected"},
		{"event.severity", W_INT, "0"},
		{"event.start", W_ABSENT, NULL},
		{"process", W_ABSENT, NULL},
		{"file", W_ABSENT, NULL},
		{"host", W_ABSENT, NULL},
		{"rule", W_ABSENT, NULL},
		{"ward.incident", W_ABSENT, NULL},
		{"ward.evidence", W_ARR, NULL},
	};
	struct alert_view e = {.time = {1764070262, 0}, .severity = 99};
	o = render(alert_view_to_ecs, &e, "ecs sparse");
	if (o) {
		check_rows("ecs sparse", o, sparse, sizeof(sparse) / sizeof(sparse[0]));
		json_object_put(o);
	}
	struct jsonw w;
	jsonw_init(&w);
	struct alert_view none = {0};
	T_CHECK(alert_view_to_ecs(&none, &w) == -EINVAL, "a view without time is refused");
	T_CHECK(alert_view_to_ocsf(&none, &w) == -EINVAL, "a view without time is refused");
	jsonw_free(&w);
}

static void test_ocsf(void)
{
	static const struct row rows[] = {
		{"class_uid", W_INT, "2004"},
		{"category_uid", W_INT, "2"},
		{"activity_id", W_INT, "1"},
		{"activity_name", W_STR, "Create"},
		{"type_uid", W_INT, "200401"},
		{"severity_id", W_INT, "4"},
		{"severity", W_STR, "High"},
		{"time", W_INT, "1764070262123"},
		{"risk_score", W_INT, "88"},
		{"metadata.version", W_STR, "1.1.0"},
		{"metadata.product.name", W_STR, "ward"},
		{"metadata.product.vendor_name", W_STR, OCSF_VENDOR},
		{"finding_info.uid", W_STR, "inc-42"},
		{"finding_info.title", W_STR, "ransomware activity by python3"},
		{"finding_info.desc", W_STR, "12 files rewritten with high entropy"},
		{"finding_info.types.0", W_STR, "Ransomware"},
		{"finding_info.first_seen_time", W_INT, "1764070260500"},
		{"finding_info.last_seen_time", W_INT, "1764070262123"},
		{"finding_info.analytic.name", W_STR, "mass-encrypt"},
		{"finding_info.analytic.type_id", W_INT, "1"},
		{"device.hostname", W_STR, "host1"},
		{"resources.0.type", W_STR, "File"},
		{"resources.0.name", W_STR, "/home/alice/doc.txt"},
		{"resources.1.name", W_STR, "/home/alice/a b/photo.jpg"},
		{"evidences.0.file.path", W_STR, "/home/alice/doc.txt"},
		{"evidences.0.file.name", W_STR, "doc.txt"},
		{"evidences.0.file.type_id", W_INT, "0"},
		{"evidences.0.process.pid", W_INT, "4242"},
		{"evidences.0.process.cmd_line", W_STR, "/usr/bin/python3 -c encrypt \"all\" /home"},
		{"evidences.0.process.file.path", W_STR, "/usr/bin/python3.11"},
		{"evidences.0.process.file.hashes.0.algorithm_id", W_INT, "3"},
		{"evidences.0.process.file.hashes.0.value", W_STR,
		 "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		{"evidences.0.process.user.uid", W_STR, "1000"},
		{"evidences.0.process.parent_process.pid", W_INT, "1"},
		{"evidences.0.data.indicators.1", W_STR, "magic changed pdf->data"},
		{"evidences.1.file.path", W_STR, "/home/alice/a b/photo.jpg"},
		{"evidences.1.process", W_ABSENT, NULL},
		{"evidences.2", W_ABSENT, NULL},
		{"unmapped.ward.score", W_NUM, "87.5"},
	};
	struct alert_view v = sample();
	struct json_object *o = render(alert_view_to_ocsf, &v, "ocsf");
	if (o) {
		check_rows("ocsf", o, rows, sizeof(rows) / sizeof(rows[0]));
		json_object_put(o);
	}
	/* no files: still one evidence, carrying the process */
	v.nfiles = 0;
	o = render(alert_view_to_ocsf, &v, "ocsf no files");
	if (o) {
		static const struct row r2[] = {
			{"resources", W_ARR, NULL},
			{"resources.0", W_ABSENT, NULL},
			{"evidences.0.process.pid", W_INT, "4242"},
			{"evidences.0.file", W_ABSENT, NULL},
			{"evidences.1", W_ABSENT, NULL},
		};
		check_rows("ocsf no files", o, r2, sizeof(r2) / sizeof(r2[0]));
		json_object_put(o);
	}
}

static void test_severity(void)
{
	static const struct {
		enum alert_severity s;
		const char *name;
		int syslog;
	} rows[] = {
		{ALERT_SEV_CRITICAL, "Critical", LOG_CRIT}, {ALERT_SEV_HIGH, "High", LOG_ERR},
		{ALERT_SEV_MEDIUM, "Medium", LOG_WARNING},  {ALERT_SEV_LOW, "Low", LOG_NOTICE},
		{ALERT_SEV_INFO, "Informational", LOG_INFO}, {(enum alert_severity)42, "Unknown", LOG_WARNING},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		T_CHECK(strcmp(alert_severity_name(rows[i].s), rows[i].name) == 0, "name %d", rows[i].s);
		T_CHECK(alert_severity_to_syslog(rows[i].s) == rows[i].syslog, "syslog %d", rows[i].s);
	}
}

int main(void)
{
	test_ecs();
	test_ocsf();
	test_severity();
	return T_DONE("ocsf");
}
