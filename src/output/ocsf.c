/* ocsf.c: alert_view rendered as ECS and as an OCSF 1.1.0 Detection Finding.
 *
 * Both renderers walk the same view and leave out what is unknown rather than writing
 * empty strings or zero pids, so a consumer can tell "not known" from "0". Types follow
 * the schemas: ECS keyword fields (including process.user.id) are strings, counts and pids
 * are longs, times are RFC 3339 strings; OCSF times are epoch milliseconds and user.uid is
 * a string. Free-form strings pass through jsonw, which replaces invalid UTF-8, so a
 * hostile file name cannot break the JSON. */
#include "output/ocsf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "core/jsonw.h"

static bool has(const char *s)
{
	return s && *s;
}

static enum alert_severity sev_clamp(enum alert_severity s)
{
	return (unsigned)s <= ALERT_SEV_CRITICAL ? s : ALERT_SEV_UNKNOWN;
}

const char *alert_severity_name(enum alert_severity s)
{
	static const char *const n[] = {"Unknown", "Informational", "Low", "Medium", "High",
					"Critical"};
	return n[sev_clamp(s)];
}

int alert_severity_to_syslog(enum alert_severity s)
{
	static const int lv[] = {LOG_WARNING, LOG_INFO, LOG_NOTICE, LOG_WARNING, LOG_ERR,
				 LOG_CRIT};
	return lv[sev_clamp(s)];
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s && s[1] ? s + 1 : p;
}

static int64_t ms_of(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000 + t->tv_nsec / 1000000;
}

static bool ts_set(const struct timespec *t)
{
	return t->tv_sec != 0 || t->tv_nsec != 0;
}

/* Calls fn for each NUL-separated argument in args[0..len); the last may lack its NUL. */
static size_t args_each(const char *args, size_t len, struct jsonw *w,
			void (*fn)(struct jsonw *, const char *, size_t, size_t))
{
	size_t i = 0, k = 0;
	while (args && i < len) {
		const char *nul = memchr(args + i, '\0', len - i);
		size_t n = nul ? (size_t)(nul - (args + i)) : len - i;
		if (fn)
			fn(w, args + i, n, k);
		k++;
		i += n + 1;
	}
	return k;
}

static void arg_elem(struct jsonw *w, const char *s, size_t n, size_t k)
{
	jsonw_strn(w, NULL, s, n);
}

/* command_line: the arguments joined by spaces. jsonw has no append-to-string call, so
 * build it in a bounded local buffer (args are bounded by WARD_ARGS_MAX upstream). */
static void cmdline(struct jsonw *w, const char *key, const char *args, size_t len)
{
	char buf[4096];
	size_t o = 0, i = 0;
	while (args && i < len && o < sizeof(buf)) {
		const char *nul = memchr(args + i, '\0', len - i);
		size_t n = nul ? (size_t)(nul - (args + i)) : len - i;
		if (o && o < sizeof(buf))
			buf[o++] = ' ';
		size_t c = n < sizeof(buf) - o ? n : sizeof(buf) - o;
		memcpy(buf + o, args + i, c);
		o += c;
		i += n + 1;
	}
	jsonw_strn(w, key, buf, o);
}

static int finish(const struct jsonw *w)
{
	return w->oom ? -ENOMEM : 0;
}

int alert_view_to_ecs(const struct alert_view *v, struct jsonw *w)
{
	if (!ts_set(&v->time))
		return -EINVAL;
	jsonw_obj_open(w, NULL);
	jsonw_time(w, "@timestamp", v->time.tv_sec, v->time.tv_nsec);

	jsonw_obj_open(w, "event");
	jsonw_str(w, "kind", "alert");
	jsonw_arr_open(w, "category");
	jsonw_str(w, NULL, "file");
	jsonw_str(w, NULL, "malware");
	jsonw_arr_close(w);
	jsonw_arr_open(w, "type");
	jsonw_str(w, NULL, "info");
	if (v->blocked)
		jsonw_str(w, NULL, "denied");
	jsonw_arr_close(w);
	jsonw_str(w, "action", has(v->action) ? v->action : "ransomware-detected");
	jsonw_int(w, "severity", sev_clamp(v->severity));
	jsonw_double(w, "risk_score", v->score);
	if (ts_set(&v->first_seen))
		jsonw_time(w, "start", v->first_seen.tv_sec, v->first_seen.tv_nsec);
	jsonw_obj_close(w);

	if (has(v->rule_name)) {
		jsonw_obj_open(w, "rule");
		jsonw_str(w, "name", v->rule_name);
		jsonw_obj_close(w);
	}
	if (has(v->title))
		jsonw_str(w, "message", v->title);
	if (v->nfiles && has(v->files[0])) {
		jsonw_obj_open(w, "file");
		jsonw_str(w, "path", v->files[0]);
		jsonw_str(w, "name", base_name(v->files[0]));
		jsonw_obj_close(w);
	}
	if (v->proc.pid > 0) {
		jsonw_obj_open(w, "process");
		jsonw_int(w, "pid", v->proc.pid);
		if (has(v->proc.exe)) {
			jsonw_str(w, "executable", v->proc.exe);
			jsonw_str(w, "name", base_name(v->proc.exe));
		}
		if (v->proc.args && v->proc.args_len) {
			jsonw_arr_open(w, "args");
			size_t n = args_each(v->proc.args, v->proc.args_len, w, arg_elem);
			jsonw_arr_close(w);
			jsonw_int(w, "args_count", (int64_t)n);
			cmdline(w, "command_line", v->proc.args, v->proc.args_len);
		}
		if (v->proc.ppid > 0) {
			jsonw_obj_open(w, "parent");
			jsonw_int(w, "pid", v->proc.ppid);
			jsonw_obj_close(w);
		}
		if (v->proc.uid_known) {
			char uid[16];
			snprintf(uid, sizeof(uid), "%u", v->proc.uid);
			jsonw_obj_open(w, "user");
			jsonw_str(w, "id", uid);   /* ECS user.id is a keyword */
			jsonw_obj_close(w);
		}
		if (has(v->proc.sha256)) {
			jsonw_obj_open(w, "hash");
			jsonw_str(w, "sha256", v->proc.sha256);
			jsonw_obj_close(w);
		}
		jsonw_obj_close(w);
	}
	if (has(v->hostname)) {
		jsonw_obj_open(w, "host");
		jsonw_str(w, "hostname", v->hostname);
		jsonw_obj_close(w);
	}

	jsonw_obj_open(w, "ward");
	if (has(v->incident_id)) {
		jsonw_obj_open(w, "incident");
		jsonw_str(w, "id", v->incident_id);
		jsonw_obj_close(w);
	}
	jsonw_double(w, "score", v->score);
	if (v->nfiles > 1) {
		jsonw_arr_open(w, "files");
		for (size_t i = 0; i < v->nfiles && i < ALERT_VIEW_MAX_FILES; i++)
			if (has(v->files[i]))
				jsonw_str(w, NULL, v->files[i]);
		jsonw_arr_close(w);
	}
	jsonw_arr_open(w, "evidence");
	for (size_t i = 0; i < v->nevidence && i < ALERT_VIEW_MAX_EVIDENCE; i++)
		if (has(v->evidence[i]))
			jsonw_str(w, NULL, v->evidence[i]);
	jsonw_arr_close(w);
	jsonw_obj_close(w);

	jsonw_obj_close(w);
	return finish(w);
}

/* OCSF file object; type is unknown to us (the path may be gone by now). */
static void ocsf_file(struct jsonw *w, const char *key, const char *path)
{
	jsonw_obj_open(w, key);
	jsonw_str(w, "name", base_name(path));
	jsonw_str(w, "path", path);
	jsonw_int(w, "type_id", 0);
	jsonw_str(w, "type", "Unknown");
	jsonw_obj_close(w);
}

static void ocsf_process(struct jsonw *w, const struct alert_view *v)
{
	jsonw_obj_open(w, "process");
	jsonw_int(w, "pid", v->proc.pid);
	if (v->proc.args && v->proc.args_len)
		cmdline(w, "cmd_line", v->proc.args, v->proc.args_len);
	if (has(v->proc.exe)) {
		jsonw_obj_open(w, "file");
		jsonw_str(w, "name", base_name(v->proc.exe));
		jsonw_str(w, "path", v->proc.exe);
		jsonw_int(w, "type_id", 1);
		jsonw_str(w, "type", "Regular File");
		if (has(v->proc.sha256)) {
			jsonw_arr_open(w, "hashes");
			jsonw_obj_open(w, NULL);
			jsonw_int(w, "algorithm_id", 3);
			jsonw_str(w, "algorithm", "SHA-256");
			jsonw_str(w, "value", v->proc.sha256);
			jsonw_obj_close(w);
			jsonw_arr_close(w);
		}
		jsonw_obj_close(w);
	}
	if (v->proc.uid_known) {
		char uid[16];
		snprintf(uid, sizeof(uid), "%u", v->proc.uid);
		jsonw_obj_open(w, "user");
		jsonw_str(w, "uid", uid);
		jsonw_obj_close(w);
	}
	if (v->proc.ppid > 0) {
		jsonw_obj_open(w, "parent_process");
		jsonw_int(w, "pid", v->proc.ppid);
		jsonw_obj_close(w);
	}
	jsonw_obj_close(w);
}

int alert_view_to_ocsf(const struct alert_view *v, struct jsonw *w)
{
	enum alert_severity sev = sev_clamp(v->severity);
	int64_t t = ms_of(&v->time);
	size_t nfiles = v->nfiles < ALERT_VIEW_MAX_FILES ? v->nfiles : ALERT_VIEW_MAX_FILES;

	if (!ts_set(&v->time))
		return -EINVAL;
	jsonw_obj_open(w, NULL);
	jsonw_int(w, "activity_id", 1);
	jsonw_str(w, "activity_name", "Create");
	jsonw_int(w, "category_uid", 2);
	jsonw_str(w, "category_name", "Findings");
	jsonw_int(w, "class_uid", 2004);
	jsonw_str(w, "class_name", "Detection Finding");
	jsonw_int(w, "type_uid", 200401);
	jsonw_str(w, "type_name", "Detection Finding: Create");
	jsonw_int(w, "severity_id", sev);
	jsonw_str(w, "severity", alert_severity_name(sev));
	jsonw_int(w, "time", t);
	jsonw_int(w, "status_id", 1);
	jsonw_str(w, "status", "New");
	if (has(v->title))
		jsonw_str(w, "message", v->title);
	jsonw_int(w, "risk_score", (int64_t)(v->score + 0.5));

	jsonw_obj_open(w, "metadata");
	jsonw_str(w, "version", OCSF_VERSION);
	jsonw_obj_open(w, "product");
	jsonw_str(w, "name", "ward");
	jsonw_str(w, "vendor_name", OCSF_VENDOR);
	jsonw_obj_close(w);
	jsonw_obj_close(w);

	jsonw_obj_open(w, "finding_info");
	if (has(v->incident_id))
		jsonw_str(w, "uid", v->incident_id);
	jsonw_str(w, "title", has(v->title) ? v->title : "ransomware activity");
	if (has(v->description) || has(v->title))
		jsonw_str(w, "desc", has(v->description) ? v->description : v->title);
	jsonw_arr_open(w, "types");
	jsonw_str(w, NULL, "Ransomware");
	jsonw_arr_close(w);
	jsonw_int(w, "first_seen_time", ts_set(&v->first_seen) ? ms_of(&v->first_seen) : t);
	jsonw_int(w, "last_seen_time", t);
	if (has(v->rule_name)) {
		jsonw_obj_open(w, "analytic");
		jsonw_str(w, "name", v->rule_name);
		jsonw_int(w, "type_id", 1);
		jsonw_str(w, "type", "Rule");
		jsonw_obj_close(w);
	}
	jsonw_obj_close(w);

	if (has(v->hostname)) {
		jsonw_obj_open(w, "device");
		jsonw_str(w, "hostname", v->hostname);
		jsonw_int(w, "type_id", 0);
		jsonw_str(w, "type", "Unknown");
		jsonw_obj_close(w);
	}

	jsonw_arr_open(w, "resources");
	for (size_t i = 0; i < nfiles; i++) {
		if (!has(v->files[i]))
			continue;
		jsonw_obj_open(w, NULL);
		jsonw_str(w, "type", "File");
		jsonw_str(w, "name", v->files[i]);
		jsonw_obj_close(w);
	}
	jsonw_arr_close(w);

	/* one evidence per file; the first also carries the process and the indicators */
	jsonw_arr_open(w, "evidences");
	size_t first = 0;
	while (first < nfiles && !has(v->files[first]))
		first++;
	for (size_t i = first; i < nfiles || i == first; i++) {
		if (i < nfiles && !has(v->files[i]))
			continue;
		jsonw_obj_open(w, NULL);
		if (i < nfiles)
			ocsf_file(w, "file", v->files[i]);
		if (i == first) {
			if (v->proc.pid > 0)
				ocsf_process(w, v);
			jsonw_obj_open(w, "data");
			jsonw_arr_open(w, "indicators");
			for (size_t k = 0; k < v->nevidence && k < ALERT_VIEW_MAX_EVIDENCE; k++)
				if (has(v->evidence[k]))
					jsonw_str(w, NULL, v->evidence[k]);
			jsonw_arr_close(w);
			jsonw_obj_close(w);
		}
		jsonw_obj_close(w);
	}
	jsonw_arr_close(w);

	jsonw_obj_open(w, "unmapped");
	jsonw_obj_open(w, "ward");
	jsonw_double(w, "score", v->score);
	jsonw_obj_close(w);
	jsonw_obj_close(w);

	jsonw_obj_close(w);
	return finish(w);
}
