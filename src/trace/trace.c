/* trace.c: trace header writer and the trace reader (JSON lines via json-c). */
#include "trace/trace.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/jsonw.h"

int trace_write_header(FILE *f, const char *hostname)
{
	struct jsonw w;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	jsonw_init(&w);
	jsonw_obj_open(&w, NULL);
	jsonw_obj_open(&w, "ward_trace");
	jsonw_int(&w, "version", TRACE_VERSION);
	jsonw_time(&w, "created", now.tv_sec, now.tv_nsec);
	jsonw_str(&w, "host", hostname ? hostname : "");
	jsonw_obj_close(&w);
	jsonw_obj_close(&w);
	int rc = w.oom ? -ENOMEM : 0;
	if (!rc && fprintf(f, "%s\n", w.buf) < 0)
		rc = -EIO;
	jsonw_free(&w);
	return rc;
}

static json_object *parse(const char *line, size_t len, char *err, size_t errlen)
{
	if (len > 1 << 20) {
		snprintf(err, errlen, "line longer than 1 MiB");
		return NULL;
	}
	json_tokener *tok = json_tokener_new();
	if (!tok) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	json_object *o = json_tokener_parse_ex(tok, line, (int)len);
	enum json_tokener_error je = json_tokener_get_error(tok);
	if (!o || je != json_tokener_success) {
		snprintf(err, errlen, "invalid JSON: %s",
			 je == json_tokener_continue ? "unexpected end of line" : json_tokener_error_desc(je));
		json_object_put(o);
		o = NULL;
	} else if ((size_t)json_tokener_get_parse_end(tok) < len) {
		/* trailing bytes after the object: only white space is allowed */
		for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
			if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r' && line[i] != '\n') {
				snprintf(err, errlen, "invalid JSON: trailing data at column %zu", i + 1);
				json_object_put(o);
				o = NULL;
				break;
			}
	}
	json_tokener_free(tok);
	if (o && !json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "a line must be a JSON object");
		json_object_put(o);
		o = NULL;
	}
	return o;
}

/* Follows a dotted path ("process.parent.pid"); NULL when absent. */
static json_object *get(json_object *o, const char *dotted)
{
	char key[64];
	const char *p = dotted;
	while (o && *p) {
		size_t n = strcspn(p, ".");
		if (n >= sizeof(key))
			return NULL;
		memcpy(key, p, n);
		key[n] = '\0';
		if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &o))
			return NULL;
		p += n;
		if (*p == '.')
			p++;
	}
	return o;
}

int trace_parse_header(const char *line, size_t len, char *err, size_t errlen)
{
	json_object *o = parse(line, len, err, errlen);
	if (!o)
		return -EINVAL;
	int rc = 0;
	json_object *v = get(o, "ward_trace.version");
	if (!v || !json_object_is_type(v, json_type_int)) {
		snprintf(err, errlen, "not a ward trace (the first line has no ward_trace.version)");
		rc = -EINVAL;
	} else if (json_object_get_int64(v) != TRACE_VERSION) {
		snprintf(err, errlen, "trace version %lld is not supported (this ward reads version %d)",
			 (long long)json_object_get_int64(v), TRACE_VERSION);
		rc = -ENOTSUP;
	}
	json_object_put(o);
	return rc;
}

static int hexdecode(const char *hex, char *out, size_t cap, size_t *outlen)
{
	size_t n = strlen(hex);
	if (n % 2 || n / 2 >= cap)
		return -EINVAL;
	for (size_t i = 0; i < n / 2; i++) {
		int v = 0;
		for (int k = 0; k < 2; k++) {
			char c = hex[2 * i + k];
			int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
			if (d < 0)
				return -EINVAL;
			v = v * 16 + d;
		}
		out[i] = (char)v;
	}
	out[n / 2] = '\0';
	*outlen = n / 2;
	return 0;
}

/* A string field copied into dst; -EINVAL when present with the wrong type or too long. */
static int str_field(json_object *o, const char *name, char *dst, size_t cap, size_t *len,
		     bool required, char *err, size_t errlen)
{
	json_object *v = get(o, name);
	if (!v) {
		if (required) {
			snprintf(err, errlen, "missing field %s", name);
			return -EINVAL;
		}
		dst[0] = '\0';
		if (len)
			*len = 0;
		return 0;
	}
	if (!json_object_is_type(v, json_type_string)) {
		snprintf(err, errlen, "field %s must be a string", name);
		return -EINVAL;
	}
	size_t n = (size_t)json_object_get_string_len(v);
	if (n >= cap) {
		snprintf(err, errlen, "field %s is too long (%zu bytes, at most %zu)", name, n, cap - 1);
		return -EINVAL;
	}
	memcpy(dst, json_object_get_string(v), n + 1);
	if (len)
		*len = n;
	return 0;
}

static int int_field(json_object *o, const char *name, int64_t *out, int64_t lo, int64_t hi,
		     bool required, char *err, size_t errlen)
{
	json_object *v = get(o, name);
	if (!v) {
		if (required) {
			snprintf(err, errlen, "missing field %s", name);
			return -EINVAL;
		}
		return 0;
	}
	if (!json_object_is_type(v, json_type_int)) {
		snprintf(err, errlen, "field %s must be an integer", name);
		return -EINVAL;
	}
	int64_t x = json_object_get_int64(v);
	if (x < lo || x > hi) {
		snprintf(err, errlen, "field %s is out of range", name);
		return -EINVAL;
	}
	*out = x;
	return 0;
}

/* "2026-11-25T11:31:02.123456Z" -> timespec */
static int parse_time(const char *s, struct timespec *ts)
{
	struct tm tm = {0};
	char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end)
		return -EINVAL;
	long ns = 0;
	if (*end == '.') {
		int digits = 0;
		end++;
		while (*end >= '0' && *end <= '9') {
			if (digits < 9) {
				ns = ns * 10 + (*end - '0');
				digits++;
			}
			end++;
		}
		while (digits++ < 9)
			ns *= 10;
	}
	if (strcmp(end, "Z") != 0)
		return -EINVAL;
	ts->tv_sec = timegm(&tm);
	ts->tv_nsec = ns;
	return 0;
}

int trace_parse_event(const char *line, size_t len, struct ward_event *ev, struct ward_proc *p,
		      char *err, size_t errlen)
{
	int rc = -EINVAL;
	int64_t v;
	char buf[64], hex[2 * WARD_PATH_MAX + 1];
	json_object *o = parse(line, len, err, errlen);
	if (!o)
		return -EINVAL;
	memset(p, 0, sizeof(*p));
	memset(ev, 0, offsetof(struct ward_event, path));
	ev->path[0] = ev->old_path[0] = '\0';
	ev->proc = p;
	ev->size = -1;
	ev->mount_fd = -1;

	if (str_field(o, "event.action", buf, sizeof(buf), NULL, true, err, errlen))
		goto out;
	int op = ward_op_parse(buf);
	if (op < 0) {
		snprintf(err, errlen, "field event.action: unknown action \"%.32s\"", buf);
		goto out;
	}
	ev->op = (enum ward_op)op;
	if (str_field(o, "@timestamp", buf, sizeof(buf), NULL, true, err, errlen))
		goto out;
	if (parse_time(buf, &ev->ts)) {
		snprintf(err, errlen, "field @timestamp: not an RFC 3339 UTC time");
		goto out;
	}
	v = 0;
	if (int_field(o, "event.sequence", &v, 0, INT64_MAX, false, err, errlen))
		goto out;
	ev->seq = (uint64_t)v;

	if (ev->op != WOP_OVERFLOW) {
		size_t n;
		if (str_field(o, "ward.file.path_hex", hex, sizeof(hex), &n, false, err, errlen))
			goto out;
		if (n) {
			if (hexdecode(hex, ev->path, sizeof(ev->path), &ev->path_len)) {
				snprintf(err, errlen, "field ward.file.path_hex: not hex");
				goto out;
			}
		} else if (str_field(o, "file.path", ev->path, sizeof(ev->path), &ev->path_len, true,
				     err, errlen)) {
			goto out;
		}
		if (str_field(o, "ward.file.old_path_hex", hex, sizeof(hex), &n, false, err, errlen))
			goto out;
		if (n) {
			if (hexdecode(hex, ev->old_path, sizeof(ev->old_path), &ev->old_path_len)) {
				snprintf(err, errlen, "field ward.file.old_path_hex: not hex");
				goto out;
			}
		} else if (str_field(o, "ward.file.old_path", ev->old_path, sizeof(ev->old_path),
				     &ev->old_path_len, ev->op == WOP_RENAME, err, errlen)) {
			goto out;
		}
		if (str_field(o, "file.type", buf, sizeof(buf), NULL, false, err, errlen))
			goto out;
		ev->is_dir = strcmp(buf, "dir") == 0;
		if (str_field(o, "file.inode", buf, sizeof(buf), NULL, false, err, errlen))
			goto out;
		if (buf[0]) {
			char *end;
			errno = 0;
			unsigned long long ino = strtoull(buf, &end, 10);
			if (*end || errno) {
				snprintf(err, errlen, "field file.inode: not a number");
				goto out;
			}
			ev->ino = ino;
		}
		v = -1;
		if (int_field(o, "file.size", &v, 0, INT64_MAX, false, err, errlen))
			goto out;
		ev->size = v;
	} else {
		v = 0;
		if (int_field(o, "ward.overflow.count", &v, 0, INT64_MAX, false, err, errlen))
			goto out;
		ev->lost = (uint64_t)v;
	}

	json_object *ct = get(o, "ward.content");
	if (ct) {
		struct ward_content *c = &ev->content;
		json_object *x;
		c->valid = true;
		v = 0;
		if (int_field(ct, "type", &v, 0, 255, true, err, errlen))
			goto out;
		c->type = (uint8_t)v;
		v = 0;
		if (int_field(ct, "encrypted", &v, 0, 2, false, err, errlen))
			goto out;
		c->crypt = (uint8_t)v;
		v = 0;
		if (int_field(ct, "head_class", &v, 0, 255, false, err, errlen))
			goto out;
		c->head_class = (uint8_t)v;
		c->type_valid = (x = get(ct, "type_valid")) && json_object_get_boolean(x);
		c->head_suspect = (x = get(ct, "head_suspect")) && json_object_get_boolean(x);
		c->pooled_nonuniform = (x = get(ct, "pooled_nonuniform")) && json_object_get_boolean(x);
		if ((x = get(ct, "suspect_frac")))
			c->suspect_frac = (float)json_object_get_double(x);
		if ((x = get(ct, "max_entropy")))
			c->max_entropy = (float)json_object_get_double(x);
		if (!(c->suspect_frac >= 0 && c->suspect_frac <= 1)) {
			snprintf(err, errlen, "field ward.content.suspect_frac must be from 0 to 1");
			goto out;
		}
	}
	v = 0;
	if (int_field(o, "process.pid", &v, 0, INT32_MAX, true, err, errlen))
		goto out;
	ev->pid = p->pid = (pid_t)v;
	json_object *att = get(o, "ward.process.attributed");
	p->known = att && json_object_is_type(att, json_type_boolean) && json_object_get_boolean(att);
	if (p->known) {
		if (str_field(o, "process.name", p->comm, sizeof(p->comm), NULL, false, err, errlen) ||
		    str_field(o, "process.executable", p->exe, sizeof(p->exe), NULL, false, err, errlen) ||
		    str_field(o, "ward.process.cgroup", p->cgroup, sizeof(p->cgroup), NULL, false, err,
			      errlen))
			goto out;
		v = 0;
		if (int_field(o, "process.parent.pid", &v, 0, INT32_MAX, false, err, errlen))
			goto out;
		p->ppid = (pid_t)v;
		v = 0;
		if (int_field(o, "ward.process.start_ns", &v, 0, INT64_MAX, false, err, errlen))
			goto out;
		p->start_ns = (uint64_t)v;
		if (str_field(o, "process.user.id", buf, sizeof(buf), NULL, false, err, errlen))
			goto out;
		p->uid = (uint32_t)strtoul(buf, NULL, 10);
		if (str_field(o, "process.group.id", buf, sizeof(buf), NULL, false, err, errlen))
			goto out;
		p->gid = (uint32_t)strtoul(buf, NULL, 10);
		json_object *args = get(o, "process.args");
		if (args) {
			if (!json_object_is_type(args, json_type_array)) {
				snprintf(err, errlen, "field process.args must be an array");
				goto out;
			}
			size_t n = json_object_array_length(args), off = 0;
			for (size_t i = 0; i < n; i++) {
				json_object *a = json_object_array_get_idx(args, i);
				if (!json_object_is_type(a, json_type_string)) {
					snprintf(err, errlen, "field process.args[%zu] must be a string", i);
					goto out;
				}
				size_t l = (size_t)json_object_get_string_len(a);
				if (off + l + 1 > sizeof(p->args))
					break; /* truncated, as when recorded */
				memcpy(p->args + off, json_object_get_string(a), l + 1);
				off += l + 1;
			}
			p->args_len = (uint16_t)off;
		}
	}
	rc = 0;
out:
	json_object_put(o);
	return rc;
}

struct trace_reader {
	FILE *f;
	bool own;
	char *path;
	char *line;
	size_t cap;
	unsigned long lineno;
	struct ward_proc proc;
};

int trace_reader_open(struct trace_reader **out, const char *path, char *err, size_t errlen)
{
	int rc;
	char msg[256];
	struct trace_reader *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->path = strdup(path);
	if (strcmp(path, "-") == 0) {
		r->f = stdin;
	} else {
		r->f = fopen(path, "re");
		r->own = true;
	}
	if (!r->f || !r->path) {
		rc = r->f ? -ENOMEM : -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		goto out;
	}
	ssize_t n = getline(&r->line, &r->cap, r->f);
	r->lineno = 1;
	if (n <= 0) {
		snprintf(err, errlen, "%s: empty file, not a ward trace", path);
		rc = -EINVAL;
		goto out;
	}
	rc = trace_parse_header(r->line, (size_t)n, msg, sizeof(msg));
	if (rc) {
		snprintf(err, errlen, "%s:1: %s", path, msg);
		goto out;
	}
	*out = r;
	return 0;
out:
	trace_reader_close(r);
	return rc;
}

int trace_reader_next(struct trace_reader *r, struct ward_event *ev, char *err, size_t errlen)
{
	char msg[256];
	for (;;) {
		ssize_t n = getline(&r->line, &r->cap, r->f);
		if (n < 0) {
			if (ferror(r->f)) {
				snprintf(err, errlen, "%s: read error", r->path);
				return -EIO;
			}
			return 0;
		}
		r->lineno++;
		if (n == 0 || (n == 1 && r->line[0] == '\n'))
			continue; /* blank lines are allowed */
		if ((size_t)n != strlen(r->line)) {
			snprintf(err, errlen, "%s:%lu: NUL byte in line", r->path, r->lineno);
			return -EINVAL;
		}
		if (trace_parse_event(r->line, (size_t)n, ev, &r->proc, msg, sizeof(msg))) {
			snprintf(err, errlen, "%s:%lu: %s", r->path, r->lineno, msg);
			return -EINVAL;
		}
		return 1;
	}
}

void trace_reader_close(struct trace_reader *r)
{
	if (!r)
		return;
	if (r->own && r->f)
		fclose(r->f);
	free(r->line);
	free(r->path);
	free(r);
}
