/* recover.c: incident-level restore. Safe to run twice (restore leaves unchanged files
 * alone, quarantine moves only what is still there) and safe to interrupt (restore writes
 * each file to a temporary name and renames it over). */
#include "response/recover.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>

#define MAX_SUSPECTS 256

struct scan_ctx {
	json_object *files;       /* the incident's paths */
	int64_t lo, hi;           /* the attack's window, realtime ns */
	pid_t suspects[MAX_SUSPECTS];
	size_t nsuspects;
	bool *has_version;        /* per incident file: some suspect saved a version of it */
	int64_t *first_saved;     /* per incident file: its earliest version in the window... */
	bool *first_born;         /* ...was empty and of an inode created inside the window */
};

static bool in_files(struct scan_ctx *c, const char *p, size_t n, size_t *idx)
{
	for (size_t i = 0; i < json_object_array_length(c->files); i++) {
		json_object *f = json_object_array_get_idx(c->files, i);
		if ((size_t)json_object_get_string_len(f) == n && memcmp(json_object_get_string(f), p, n) == 0) {
			*idx = i;
			return true;
		}
	}
	return false;
}

static int on_version(void *ctx, const struct vault_version *v)
{
	struct scan_ctx *c = ctx;
	size_t i;
	bool mine = in_files(c, v->path, v->path_len, &i) ||
		    (v->orig_path_len && in_files(c, v->orig_path, v->orig_path_len, &i));
	if (!mine || v->saved_ns < c->lo || v->saved_ns > c->hi)
		return 0;
	c->has_version[i] = true;
	if (!c->first_saved[i] || v->saved_ns < c->first_saved[i]) {
		/* A file the actor created is first seen empty, as an inode born during the
		 * attack: that is an output, not an original (an original that was empty has an
		 * older inode). */
		c->first_saved[i] = v->saved_ns;
		c->first_born[i] = v->size == 0 && v->ctime_ns >= c->lo;
	}
	for (size_t k = 0; k < c->nsuspects; k++)
		if (c->suspects[k] == v->pid)
			return 0;
	if (c->nsuspects < MAX_SUSPECTS)
		c->suspects[c->nsuspects++] = v->pid;
	return 0;
}

int recover_incident(struct vault_store *store, const char *const *roots, int nroots,
		     const struct incident *inc, const struct recover_opts *o,
		     struct vault_restore_stats *st)
{
	int rc = 0;
	struct scan_ctx c = {0};
	json_object *outs = NULL;
	const char **quarantine = NULL;
	c.files = json_tokener_parse(inc->files_json ? inc->files_json : "[]");
	if (!c.files || !json_object_is_type(c.files, json_type_array)) {
		rc = -EINVAL;
		goto out;
	}
	size_t nf = json_object_array_length(c.files);
	c.has_version = calloc(nf + 1, sizeof(bool));
	c.first_saved = calloc(nf + 1, sizeof(int64_t));
	c.first_born = calloc(nf + 1, sizeof(bool));
	quarantine = calloc(nf + 1, sizeof(*quarantine));
	if (!c.has_version || !quarantine || !c.first_saved || !c.first_born) {
		rc = -ENOMEM;
		goto out;
	}
	c.lo = (int64_t)inc->first_ns - 60ll * 1000000000ll;
	c.hi = (int64_t)(inc->stopped_ns ? inc->stopped_ns : inc->detected_ns) + 5ll * 1000000000ll;
	for (int r = 0; r < nroots; r++) {
		rc = vault_store_list(store, roots[r], strlen(roots[r]), 0, on_version, &c);
		if (rc)
			goto out;
	}
	/* The actor's outputs: what it created or renamed files to (the daemon's record of its
	 * process tree), that is there now and was never an original: no version of it, or a
	 * first version that was an empty inode born during the attack. */
	size_t nq = 0;
	outs = json_tokener_parse(inc->outputs_json ? inc->outputs_json : "[]");
	size_t no = outs && json_object_is_type(outs, json_type_array) ? json_object_array_length(outs) : 0;
	const char **q2 = realloc(quarantine, (nf + no + 1) * sizeof(*quarantine));
	if (!q2) {
		rc = -ENOMEM;
		goto out;
	}
	quarantine = q2;
	for (size_t i = 0; i < no; i++) {
		const char *p = json_object_get_string(json_object_array_get_idx(outs, i));
		size_t k, pl = strlen(p);
		struct stat sb;
		bool original = in_files(&c, p, pl, &k) && c.has_version[k] && !c.first_born[k];
		bool dup = false;
		for (size_t j = 0; j < nq && !dup; j++)
			dup = strcmp(quarantine[j], p) == 0;
		if (!original && !dup && lstat(p, &sb) == 0 && S_ISREG(sb.st_mode))
			quarantine[nq++] = p;
	}
	struct vault_restore_opts ro = {
		.dry_run = o->dry_run, .report = o->report, .quarantine = quarantine, .nquarantine = nq,
		.quarantine_dir = o->quarantine_dir, .suspects = c.suspects, .nsuspects = c.nsuspects,
	};
	if (c.nsuspects == 0 && nq == 0)
		goto out; /* nothing of this incident is in the vault */
	for (int r = 0; r < nroots; r++) {
		int e = vault_restore_by_path(store, roots[r], strlen(roots[r]), 0, &ro, st);
		if (e && !rc)
			rc = e;
		ro.nquarantine = 0; /* moved once */
	}
out:
	free(quarantine);
	free(c.has_version);
	free(c.first_saved);
	free(c.first_born);
	json_object_put(c.files);
	json_object_put(outs);
	return rc;
}

/* The mount point holding path: the longest mount point in /proc/self/mountinfo that is a
 * prefix of path and has path's device. */
static int mount_of(const char *path, char *out, size_t cap)
{
	struct stat ps;
	if (stat(path, &ps) < 0)
		return -errno;
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	char line[8192], best[4096] = "";
	size_t bestlen = 0;
	while (fgets(line, sizeof(line), f)) {
		char mp[4096];
		/* id parent major:minor root mountpoint ... */
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
			continue;
		/* unescape \040 (space) and friends */
		char un[4096];
		size_t o = 0;
		for (size_t i = 0; mp[i] && o + 1 < sizeof(un); i++) {
			if (mp[i] == '\\' && mp[i + 1] >= '0' && mp[i + 1] <= '3' && mp[i + 2] && mp[i + 3]) {
				un[o++] = (char)((mp[i + 1] - '0') * 64 + (mp[i + 2] - '0') * 8 + (mp[i + 3] - '0'));
				i += 3;
			} else {
				un[o++] = mp[i];
			}
		}
		un[o] = '\0';
		size_t l = strlen(un);
		bool prefix = (l == 1 && un[0] == '/') ||
			      (strncmp(path, un, l) == 0 && (path[l] == '/' || path[l] == '\0'));
		struct stat ms;
		if (prefix && l >= bestlen && stat(un, &ms) == 0 && ms.st_dev == ps.st_dev) {
			snprintf(best, sizeof(best), "%s", un);
			bestlen = l;
		}
	}
	fclose(f);
	if (!best[0])
		return -ENOENT;
	snprintf(out, cap, "%s", best);
	return 0;
}

int recover_open_all(const char *const *roots, int nroots, const char *vault_dir,
		     const struct vault_store_opts *vo, struct recover_fs *fs, char *err, size_t errlen)
{
	int n = 0, rc;
	for (int i = 0; i < nroots; i++) {
		char m[4096];
		if ((rc = mount_of(roots[i], m, sizeof(m)))) {
			snprintf(err, errlen, "%s: cannot find its filesystem: %s", roots[i], strerror(-rc));
			goto fail;
		}
		int k;
		for (k = 0; k < n; k++)
			if (strcmp(fs[k].mount, m) == 0)
				break;
		if (k == n) {
			if (n >= RECOVER_MAX_FS) {
				snprintf(err, errlen, "more than %d filesystems", RECOVER_MAX_FS);
				rc = -E2BIG;
				goto fail;
			}
			memset(&fs[n], 0, sizeof(fs[n]));
			snprintf(fs[n].mount, sizeof(fs[n].mount), "%s", m);
			const char *base = strcmp(m, "/") == 0 ? "" : m;
			if (vault_dir && vault_dir[0])
				snprintf(fs[n].vault_dir, sizeof(fs[n].vault_dir), "%s", vault_dir);
			else
				snprintf(fs[n].vault_dir, sizeof(fs[n].vault_dir), "%s/" VAULT_DIR_NAME, base);
			snprintf(fs[n].quarantine_dir, sizeof(fs[n].quarantine_dir), "%s/.ward-quarantine", base);
			if ((rc = vault_store_open(fs[n].vault_dir, vo, &fs[n].store))) {
				snprintf(err, errlen, "vault %s: %s", fs[n].vault_dir, strerror(-rc));
				goto fail;
			}
			n++;
		}
		if (fs[k].nroots < 64)
			fs[k].roots[fs[k].nroots++] = roots[i];
	}
	return n;
fail:
	recover_close_all(fs, n);
	return rc;
}

void recover_close_all(struct recover_fs *fs, int n)
{
	for (int i = 0; i < n; i++) {
		vault_store_close(fs[i].store);
		fs[i].store = NULL;
	}
}
