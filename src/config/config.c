/* config.c: INI parsing through inih, with every key checked. inih reports only the line of
 * the first error; the handler keeps the first message and the two are joined. */
#include "config/config.h"

#include "core/allow.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <syslog.h>

void config_init(struct ward_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->state_dir, sizeof(c->state_dir), "/var/lib/ward");
	snprintf(c->runtime_dir, sizeof(c->runtime_dir), "/run/ward");
	c->mode = WARD_MODE_PROTECT;
	c->log_level = LOG_INFO;
	c->proc_grace_s = 60;
	c->alerts_max_bytes = 64ull << 20;
	c->syslog_transport = -1;
	c->detect = true;
	c->threshold = 100;
	c->half_life_s = 600;
	c->kill = true;
	c->canaries = true;
	c->canary_depth = 2;
	c->prevent = true;
	c->vault = true;
	c->vault_max_bytes = 0;
	c->vault_max_age_s = 7 * 86400;
	c->vault_large_bytes = 64ull << 20;
}

void config_free(struct ward_config *c)
{
	for (int i = 0; i < c->nwatch; i++)
		free(c->watch[i]);
	for (int i = 0; i < c->nexclude; i++)
		free(c->exclude[i]);
	for (int i = 0; i < c->nallow; i++)
		free(c->allow_exe[i]);
	for (int i = 0; i < c->ncanary_names; i++)
		free(c->canary_names[i]);
	for (int i = 0; i < c->nrules; i++)
		free(c->rules[i]);
	for (int i = 0; i < c->nexec_paths; i++)
		free(c->exec_paths[i]);
	c->nwatch = c->nexclude = c->nallow = c->ncanary_names = c->nrules = c->nexec_paths = 0;
}

int config_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"yes", "true", "on", "1"}, *const no[] = {"no", "false", "off", "0"};
	for (int i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

int config_parse_duration(const char *s, uint32_t *seconds)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (end == s || errno || s[0] == '-')
		return -EINVAL;
	unsigned long mul = 1;
	if (*end == 's')
		end++;
	else if (*end == 'm')
		mul = 60, end++;
	else if (*end == 'h')
		mul = 3600, end++;
	else if (*end == 'd')
		mul = 86400, end++;
	if (*end || v > UINT32_MAX / mul)
		return -EINVAL;
	*seconds = (uint32_t)(v * mul);
	return 0;
}

int config_parse_size(const char *s, uint64_t *bytes)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s || errno || s[0] == '-')
		return -EINVAL;
	unsigned shift = 0;
	switch (*end) {
	case 'K': case 'k': shift = 10; end++; break;
	case 'M': case 'm': shift = 20; end++; break;
	case 'G': case 'g': shift = 30; end++; break;
	case 'T': case 't': shift = 40; end++; break;
	default: break;
	}
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return -EINVAL;
	*bytes = (uint64_t)v << shift;
	return 0;
}

static int add_str(char **list, int *n, const char *v, const char *what, char *err, size_t errlen)
{
	if (!v[0]) {
		snprintf(err, errlen, "%s must not be empty", what);
		return -EINVAL;
	}
	if (*n >= CONFIG_MAX_LIST) {
		snprintf(err, errlen, "%s: more than %d entries", what, CONFIG_MAX_LIST);
		return -E2BIG;
	}
	if (!(list[*n] = strdup(v))) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	(*n)++;
	return 0;
}

int config_parse_mode(const char *s, enum ward_mode *out)
{
	if (strcmp(s, "protect") == 0)
		*out = WARD_MODE_PROTECT;
	else if (strcmp(s, "monitor") == 0)
		*out = WARD_MODE_MONITOR;
	else
		return -EINVAL;
	return 0;
}

int config_parse_log_level(const char *s, int *out)
{
	static const struct {
		const char *n;
		int l;
	} t[] = {{"error", LOG_ERR}, {"warning", LOG_WARNING}, {"notice", LOG_NOTICE},
		 {"info", LOG_INFO}, {"debug", LOG_DEBUG}};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(s, t[i].n) == 0) {
			*out = t[i].l;
			return 0;
		}
	return -EINVAL;
}

/* Makes path absolute and removes "." / ".." / duplicate slashes without touching the
 * filesystem (the root may not exist yet when a config is checked). */
static int normalize(const char *in, char *out, size_t cap)
{
	char tmp[CONFIG_PATH_MAX];
	if (in[0] == '\0')
		return -EINVAL;
	if (in[0] != '/') {
		char cwd[CONFIG_PATH_MAX];
		if (!getcwd(cwd, sizeof(cwd)))
			return -errno;
		if ((size_t)snprintf(tmp, sizeof(tmp), "%s/%s", cwd, in) >= sizeof(tmp))
			return -ENAMETOOLONG;
	} else {
		if (strlen(in) >= sizeof(tmp))
			return -ENAMETOOLONG;
		strcpy(tmp, in);
	}
	size_t o = 0;
	char *save = NULL;
	for (char *seg = strtok_r(tmp, "/", &save); seg; seg = strtok_r(NULL, "/", &save)) {
		if (strcmp(seg, ".") == 0)
			continue;
		if (strcmp(seg, "..") == 0) {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
			continue;
		}
		size_t l = strlen(seg);
		if (o + 1 + l + 1 > cap)
			return -ENAMETOOLONG;
		out[o++] = '/';
		memcpy(out + o, seg, l);
		o += l;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	return 0;
}

static int add_path(char **list, int *n, const char *what, const char *path, char *err,
		    size_t errlen)
{
	char norm[CONFIG_PATH_MAX];
	int rc = normalize(path, norm, sizeof(norm));
	if (rc) {
		snprintf(err, errlen, "%s \"%s\": %s", what, path,
			 rc == -EINVAL ? "empty path" : strerror(-rc));
		return rc;
	}
	for (int i = 0; i < *n; i++)
		if (strcmp(list[i], norm) == 0)
			return 0; /* listed twice: harmless */
	if (*n >= CONFIG_MAX_LIST) {
		snprintf(err, errlen, "%s: more than %d paths", what, CONFIG_MAX_LIST);
		return -E2BIG;
	}
	list[*n] = strdup(norm);
	if (!list[*n]) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	(*n)++;
	return 0;
}

int config_add_watch(struct ward_config *c, const char *path, char *err, size_t errlen)
{
	return add_path(c->watch, &c->nwatch, "watch", path, err, errlen);
}

int config_add_exclude(struct ward_config *c, const char *path, char *err, size_t errlen)
{
	return add_path(c->exclude, &c->nexclude, "exclude", path, err, errlen);
}

static int set_dir(char *dst, const char *key, const char *v, char *err, size_t errlen)
{
	char norm[CONFIG_PATH_MAX];
	if (v[0] != '/') {
		snprintf(err, errlen, "%s must be an absolute path, not \"%s\"", key, v);
		return -EINVAL;
	}
	int rc = normalize(v, norm, sizeof(norm));
	if (rc) {
		snprintf(err, errlen, "%s: %s", key, strerror(-rc));
		return rc;
	}
	strcpy(dst, norm);
	return 0;
}

struct parse_ctx {
	struct ward_config *c;
	char msg[512];
	bool failed;
};

/* inih handler: 1 = accepted, 0 = error (inih then reports this line). */
static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *pc = user;
	struct ward_config *c = pc->c;
	char *m = pc->msg;
	size_t ml = sizeof(pc->msg);
	int rc = 0;
	if (pc->failed)
		return 1; /* keep the first error only */

	if (!name) { /* a section header (INI_CALL_HANDLER_ON_NEW_SECTION builds) */
		return 1;
	}
	if (strcmp(section, "ward") == 0) {
		if (strcmp(name, "watch") == 0)
			rc = config_add_watch(c, value, m, ml);
		else if (strcmp(name, "exclude") == 0)
			rc = config_add_exclude(c, value, m, ml);
		else if (strcmp(name, "state_dir") == 0)
			rc = set_dir(c->state_dir, name, value, m, ml);
		else if (strcmp(name, "runtime_dir") == 0)
			rc = set_dir(c->runtime_dir, name, value, m, ml);
		else if (strcmp(name, "mode") == 0) {
			if ((rc = config_parse_mode(value, &c->mode)))
				snprintf(m, ml, "mode must be protect or monitor, not \"%s\"", value);
		} else if (strcmp(name, "log_level") == 0) {
			if ((rc = config_parse_log_level(value, &c->log_level)))
				snprintf(m, ml, "log_level must be error, warning, notice, info or debug, not \"%s\"",
					 value);
		} else {
			snprintf(m, ml, "unknown key \"%s\" in [ward]", name);
			rc = -EINVAL;
		}
	} else if (strcmp(section, "sensor") == 0) {
		if (strcmp(name, "unlimited_queue") == 0) {
			if ((rc = config_parse_bool(value, &c->unlimited_queue)))
				snprintf(m, ml, "unlimited_queue must be yes or no, not \"%s\"", value);
		} else if (strcmp(name, "ebpf") == 0) {
			bool on;
			if ((rc = config_parse_bool(value, &on)))
				snprintf(m, ml, "ebpf must be yes or no, not \"%s\"", value);
			else
				c->no_bpf = !on;
		} else if (strcmp(name, "process_grace") == 0) {
			if ((rc = config_parse_duration(value, &c->proc_grace_s)) || c->proc_grace_s == 0) {
				snprintf(m, ml, "process_grace must be a positive duration such as 60s or 5m, not \"%s\"",
					 value);
				rc = -EINVAL;
			}
		} else {
			snprintf(m, ml, "unknown key \"%s\" in [sensor]", name);
			rc = -EINVAL;
		}
	} else if (strcmp(section, "detect") == 0) {
		if (strcmp(name, "threshold") == 0) {
			char *end;
			double v = strtod(value, &end);
			if (end == value || *end || !(v >= 10 && v <= 100000)) {
				snprintf(m, ml, "threshold must be a number from 10 to 100000, not \"%s\"", value);
				rc = -EINVAL;
			} else {
				c->threshold = v;
			}
		} else if (strcmp(name, "half_life") == 0) {
			if ((rc = config_parse_duration(value, &c->half_life_s)) || c->half_life_s == 0) {
				snprintf(m, ml, "half_life must be a positive duration such as 10m, not \"%s\"", value);
				rc = -EINVAL;
			}
		} else if (strcmp(name, "enabled") == 0) {
			if ((rc = config_parse_bool(value, &c->detect)))
				snprintf(m, ml, "enabled must be yes or no, not \"%s\"", value);
		} else if (strcmp(name, "allow_exe") == 0) {
			struct allow_entry a;
			char norm[WARD_EXE_MAX + 80];
			if (!(rc = allow_parse(value, &a, m, ml))) {
				allow_format(&a, norm, sizeof(norm));
				rc = add_str(c->allow_exe, &c->nallow, norm, name, m, ml);
			}
		} else {
			snprintf(m, ml, "unknown key \"%s\" in [detect]", name);
			rc = -EINVAL;
		}
	} else if (strcmp(section, "response") == 0) {
		if (strcmp(name, "action") == 0) {
			if (strcmp(value, "kill") == 0)
				c->kill = true;
			else if (strcmp(value, "stop") == 0)
				c->kill = false;
			else {
				snprintf(m, ml, "action must be kill or stop, not \"%s\"", value);
				rc = -EINVAL;
			}
		} else {
			snprintf(m, ml, "unknown key \"%s\" in [response]", name);
			rc = -EINVAL;
		}
	} else if (strcmp(section, "canary") == 0) {
		if (strcmp(name, "enabled") == 0) {
			if ((rc = config_parse_bool(value, &c->canaries)))
				snprintf(m, ml, "enabled must be yes or no, not \"%s\"", value);
		} else if (strcmp(name, "name") == 0) {
			if (strchr(value, '/') || strcmp(value, ".") == 0 || strcmp(value, "..") == 0) {
				snprintf(m, ml, "name must be a plain file name, not \"%s\"", value);
				rc = -EINVAL;
			} else {
				rc = add_str(c->canary_names, &c->ncanary_names, value, name, m, ml);
			}
		} else if (strcmp(name, "depth") == 0) {
			char *end;
			unsigned long v = strtoul(value, &end, 10);
			if (end == value || *end || v > 16) {
				snprintf(m, ml, "depth must be a number from 0 to 16, not \"%s\"", value);
				rc = -EINVAL;
			} else {
				c->canary_depth = (uint32_t)v;
			}
		} else {
			snprintf(m, ml, "unknown key \"%s\" in [canary]", name);
			rc = -EINVAL;
		}
	} else if (strcmp(section, "prevent") == 0) {
		if (strcmp(name, "enabled") == 0) {
			if ((rc = config_parse_bool(value, &c->prevent)))
				snprintf(m, ml, "enabled must be yes or no, not \"%s\"", value);
		} else if (strcmp(name, "rules") == 0 || strcmp(name, "exec_path") == 0) {
			if (value[0] != '/') {
				snprintf(m, ml, "%s must be an absolute path, not \"%s\"", name, value);
				rc = -EINVAL;
			} else if (name[0] == 'r') {
				rc = add_str(c->rules, &c->nrules, value, name, m, ml);
			} else {
				rc = add_str(c->exec_paths, &c->nexec_paths, value, name, m, ml);
			}
		} else if (strcmp(name, "feeds_dir") == 0) {
			rc = set_dir(c->feeds_dir, name, value, m, ml);
		} else {
			snprintf(m, ml, "unknown key \"%s\" in [prevent]", name);
			rc = -EINVAL;
		}
	} else if (strcmp(section, "vault") == 0) {
		if (strcmp(name, "enabled") == 0) {
			if ((rc = config_parse_bool(value, &c->vault)))
				snprintf(m, ml, "enabled must be yes or no, not \"%s\"", value);
		} else if (strcmp(name, "dir") == 0) {
			rc = set_dir(c->vault_dir, name, value, m, ml);
		} else if (strcmp(name, "max_size") == 0) {
			if ((rc = config_parse_size(value, &c->vault_max_bytes)))
				snprintf(m, ml, "max_size must be a size such as 20G (0: unlimited), not \"%s\"", value);
		} else if (strcmp(name, "max_age") == 0) {
			if ((rc = config_parse_duration(value, &c->vault_max_age_s)))
				snprintf(m, ml, "max_age must be a duration such as 7d, not \"%s\"", value);
		} else if (strcmp(name, "large_file") == 0) {
			if ((rc = config_parse_size(value, &c->vault_large_bytes)) || c->vault_large_bytes < 4096) {
				snprintf(m, ml, "large_file must be a size of at least 4K such as 64M, not \"%s\"", value);
				rc = -EINVAL;
			}
		} else if (strcmp(name, "on_failure") == 0) {
			if (strcmp(value, "allow") == 0)
				c->vault_fail_closed = false;
			else if (strcmp(value, "deny") == 0)
				c->vault_fail_closed = true;
			else {
				snprintf(m, ml, "on_failure must be allow (fail open, alert) or deny (fail closed), not \"%s\"", value);
				rc = -EINVAL;
			}
		} else {
			snprintf(m, ml, "unknown key \"%s\" in [vault]", name);
			rc = -EINVAL;
		}
	} else if (strcmp(section, "output") == 0) {
		if (strcmp(name, "events_file") == 0)
			rc = set_dir(c->events_file, name, value, m, ml);
		else if (strcmp(name, "alerts_file") == 0)
			rc = set_dir(c->alerts_file, name, value, m, ml);
		else if (strcmp(name, "alerts_format") == 0) {
			if (strcmp(value, "ecs") == 0)
				c->alerts_ocsf = false;
			else if (strcmp(value, "ocsf") == 0)
				c->alerts_ocsf = true;
			else {
				snprintf(m, ml, "alerts_format must be ecs or ocsf, not \"%s\"", value);
				rc = -EINVAL;
			}
		} else if (strcmp(name, "syslog") == 0) {
			/* "local" (/dev/log), "unix:/path", "udp:host:port" or "tcp:host:port" */
			const char *addr = NULL;
			if (strcmp(value, "local") == 0) {
				c->syslog_transport = 0;
				addr = "";
			} else if (strncmp(value, "unix:", 5) == 0 && value[5] == '/') {
				c->syslog_transport = 0;
				addr = value + 5;
			} else if (strncmp(value, "udp:", 4) == 0 || strncmp(value, "tcp:", 4) == 0) {
				c->syslog_transport = value[0] == 'u' ? 1 : 2;
				addr = value + 4;
				char h[200], pt[32];
				char *colon = strrchr(addr, ':');
				if (!colon || colon == addr || !colon[1] || strlen(addr) >= sizeof(h) ||
				    strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
					addr = NULL;
				}
				(void)h;
				(void)pt;
			}
			if (!addr || strlen(addr) >= sizeof(c->syslog_address)) {
				snprintf(m, ml, "syslog must be local, unix:/PATH, udp:HOST:PORT or tcp:HOST:PORT, not \"%s\"", value);
				rc = -EINVAL;
				c->syslog_transport = -1;
			} else {
				snprintf(c->syslog_address, sizeof(c->syslog_address), "%s", addr);
			}
		} else if (strcmp(name, "metrics") == 0) {
			char *colon = strrchr(value, ':');
			if (!colon || colon == value || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
			    strlen(value) >= sizeof(c->metrics_listen)) {
				snprintf(m, ml, "metrics must be ADDRESS:PORT such as 127.0.0.1:9477, not \"%s\"", value);
				rc = -EINVAL;
			} else {
				snprintf(c->metrics_listen, sizeof(c->metrics_listen), "%s", value);
			}
		}
		else if (strcmp(name, "alerts_max_size") == 0) {
			if ((rc = config_parse_size(value, &c->alerts_max_bytes)) || c->alerts_max_bytes < 4096) {
				snprintf(m, ml, "alerts_max_size must be a size of at least 4K such as 64M, not \"%s\"", value);
				rc = -EINVAL;
			}
		} else {
			snprintf(m, ml, "unknown key \"%s\" in [output]", name);
			rc = -EINVAL;
		}
	} else if (section[0] == '\0') {
		snprintf(m, ml, "key \"%s\" is outside any section (start with [ward])", name);
		rc = -EINVAL;
	} else {
		snprintf(m, ml, "unknown section [%s]", section);
		rc = -EINVAL;
	}
	if (rc) {
		pc->failed = true;
		return 0;
	}
	return 1;
}

static int finish(int r, struct parse_ctx *pc, const char *name, char *err, size_t errlen)
{
	if (r == 0)
		return 0;
	if (r == -1) {
		snprintf(err, errlen, "%s: %s", name, strerror(errno ? errno : ENOENT));
		return -ENOENT;
	}
	if (r == -2) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -ENOMEM;
	}
	snprintf(err, errlen, "%s:%d: %s", name, r,
		 pc->failed ? pc->msg : "syntax error (expected [section], key = value or a comment)");
	return -EINVAL;
}

int config_load_file(struct ward_config *c, const char *path, char *err, size_t errlen)
{
	struct parse_ctx pc = {.c = c};
	FILE *f = fopen(path, "re");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	int r = ini_parse_file(f, handler, &pc);
	fclose(f);
	return finish(r, &pc, path, err, errlen);
}

int config_load_string(struct ward_config *c, const char *text, const char *name, char *err,
		       size_t errlen)
{
	struct parse_ctx pc = {.c = c};
	return finish(ini_parse_string(text, handler, &pc), &pc, name, err, errlen);
}

int config_validate(const struct ward_config *c, char *err, size_t errlen)
{
	if (c->nwatch == 0) {
		snprintf(err, errlen, "nothing to watch: give --watch PATH or watch = PATH in [ward]");
		return -EINVAL;
	}
	for (int i = 0; i < c->nwatch; i++) {
		struct stat st;
		if (stat(c->watch[i], &st) < 0) {
			snprintf(err, errlen, "watch %s: %s", c->watch[i], strerror(errno));
			return -errno;
		}
		if (!S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "watch %s: not a directory", c->watch[i]);
			return -ENOTDIR;
		}
	}
	return 0;
}
