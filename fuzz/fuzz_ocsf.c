/* fuzz_ocsf.c: hostile strings (file names, argv, host names, rule names) through the
 * alert encoders: the ECS and OCSF renderings must always parse back as one JSON object,
 * and an RFC 5424 message's structured data must end exactly where its MSG starts, so no
 * value can escape its quotes. Also feeds the raw input to the /metrics request check,
 * the one parser in src/output that reads from the network.
 *
 * Input: fields separated by NUL bytes, in the order of struct alert_view's strings;
 * the first byte picks severity, flags and how many files/evidence strings there are. */
#include <errno.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonw.h"
#include "output/metrics.h"
#include "output/ocsf.h"
#include "output/syslog.h"

#define NF 16

static void check_json(const struct alert_view *v,
		       int (*fn)(const struct alert_view *, struct jsonw *))
{
	struct jsonw w;
	jsonw_init(&w);
	int err = fn(v, &w);
	if (err == 0) {
		struct json_tokener *tok = json_tokener_new();
		struct json_object *o = json_tokener_parse_ex(tok, w.buf, (int)w.len);
		/* the whole buffer must be exactly one object */
		if (!o || !json_object_is_type(o, json_type_object) ||
		    json_tokener_get_parse_end(tok) != w.len || memchr(w.buf, '\n', w.len))
			abort();
		json_object_put(o);
		json_tokener_free(tok);
	} else if (err != -ENOMEM && err != -EINVAL) {
		abort();
	}
	jsonw_free(&w);
}

static void check_syslog(const char *const *f, size_t nf, const char *msg, size_t msg_len)
{
	static char buf[SYSLOG_MSG_MAX];
	struct syslog_sd_param p[4];
	size_t np = 0, n;
	for (size_t i = 0; i + 1 < nf && np < 4; i += 2)
		p[np++] = (struct syslog_sd_param){f[i], f[i + 1]};
	struct syslog_fields sf = {.facility = 4, .severity = 3, .sec = 1, .hostname = f[0],
				   .app_name = f[1], .procid = f[2], .msgid = f[3],
				   .sd_id = SYSLOG_SD_ID, .params = p, .nparams = np,
				   .msg = msg, .msg_len = msg_len};
	if (syslog_format(&sf, buf, sizeof(buf), &n) != 0)
		return;
	/* skip PRI/VERSION and the five header fields, each ending in one space */
	size_t i = 0;
	for (int k = 0; k < 6; k++) {
		while (i < n && buf[i] != ' ')
			i++;
		if (i++ >= n)
			abort();
	}
	if (i >= n || buf[i] != '[')
		abort();
	bool in_value = false;
	for (i++; i < n; i++) {
		char c = buf[i];
		if (in_value && c == '\\') {
			i++;
			if (i >= n || (buf[i] != '"' && buf[i] != '\\' && buf[i] != ']'))
				abort();   /* only the three RFC escapes are written */
		} else if (c == '"') {
			in_value = !in_value;
		} else if (!in_value && c == ']') {
			break;
		} else if (in_value && c == ']') {
			abort();   /* an unescaped ']' inside a value */
		}
	}
	if (i >= n || i + 1 + msg_len + 1 != n || buf[i + 1] != ' ' ||
	    memcmp(buf + i + 2, msg, msg_len) != 0)
		abort();
	if (!jsonw_utf8_valid(buf, i + 1))
		abort();   /* header and SD are always UTF-8 */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool head;
	metrics_http_route((const char *)data, size, &head);
	if (size < 1)
		return 0;

	/* split the rest into NUL-terminated fields in a private copy */
	char *copy = malloc(size);
	if (!copy)
		return 0;
	memcpy(copy, data + 1, size - 1);
	copy[size - 1] = '\0';
	const char *f[NF];
	size_t nf = 0, start = 0;
	for (size_t i = 0; i < size && nf < NF; i++) {
		if (copy[i] == '\0') {
			f[nf++] = copy + start;
			start = i + 1;
		}
	}
	while (nf < NF)
		f[nf++] = "";

	uint8_t ctl = data[0];
	struct alert_view v = {
		.incident_id = f[0], .rule_name = f[1], .title = f[2], .description = f[3],
		.action = f[4], .hostname = f[5], .blocked = ctl & 1,
		.severity = (enum alert_severity)(ctl >> 5), .score = (double)(ctl * 7) / 3.0,
		.time = {1764070262, (long)ctl * 3000000L}, .first_seen = {ctl & 2 ? 1764070000 : 0, 0},
		.files = f + 6, .nfiles = (ctl >> 2) & 3, .evidence = f + 9, .nevidence = (ctl >> 4) & 3,
	};
	v.proc.pid = ctl & 8 ? 1234 : 0;
	v.proc.ppid = 1;
	v.proc.uid = ctl;
	v.proc.uid_known = ctl & 16;
	v.proc.exe = f[12];
	v.proc.sha256 = f[13];
	/* argv: the tail of the input, NULs and all, as the kernel would hand it over */
	v.proc.args = size > 1 ? copy + start : NULL;
	v.proc.args_len = size > 1 && start < size - 1 ? size - 1 - start : 0;

	check_json(&v, alert_view_to_ecs);
	check_json(&v, alert_view_to_ocsf);
	check_syslog(f, 8, f[14], strlen(f[14]));
	free(copy);
	return 0;
}
