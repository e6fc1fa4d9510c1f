/* restore.c: vault versions back onto their paths.
 *
 * Each whole version is written to ".ward-restore-<id>.tmp" in the target's directory,
 * given the saved mode, owner and times, fsynced and renamed over the target: a reader
 * never sees a half-restored file, an interrupted run leaves at most that temp file, and a
 * re-run rewrites it and completes. A target whose content already hashes to the saved
 * sha256 is left alone ("unchanged"): re-running a finished restore changes nothing but
 * metadata. Two exceptions to rename-over: a target with other hard links is rewritten in
 * place (renaming would split it from its other names), and a range version is written
 * into the existing file at its offset (a multi-GiB file is not copied to be restored).
 * Ward reads the vault through its own directory fd: the guard lets ward's own opens in. */
#include "vault/restore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/jsonw.h"
#include "core/log.h"

static void path_json(struct jsonw *w, const char *key, const char *p, size_t n)
{
	jsonw_strn(w, key, p, n);
	if (!jsonw_utf8_valid(p, n)) {         /* exact bytes for names that are not UTF-8 */
		char hk[32];
		snprintf(hk, sizeof(hk), "%s_hex", key);
		jsonw_hex(w, hk, p, n);
	}
}

static void report(const struct vault_restore_opts *o, const char *action,
		   const struct vault_version *v, const char *target, size_t tlen, int err)
{
	if (!o->report)
		return;
	struct jsonw w;
	jsonw_init(&w);
	jsonw_obj_open(&w, NULL);
	jsonw_str(&w, "action", action);
	path_json(&w, "path", target, tlen);
	if (v) {
		jsonw_int(&w, "version", v->id);
		jsonw_str(&w, "kind", vault_kind_name(v->kind));
		jsonw_int(&w, "size", v->size);
		if (v->kind == VAULT_KIND_RANGE) {
			jsonw_int(&w, "range_off", v->range_off);
			jsonw_int(&w, "range_len", v->range_len);
		}
		if (v->has_sha256)
			jsonw_hex(&w, "sha256", v->sha256, 32);
		jsonw_time(&w, "saved", v->saved_ns / 1000000000, (long)(v->saved_ns % 1000000000));
		jsonw_int(&w, "actor_pid", v->pid);
		if (v->exe[0])
			jsonw_str(&w, "actor_exe", v->exe);
		if (v->path_len != tlen || memcmp(v->path, target, tlen) != 0)
			path_json(&w, "saved_as", v->path, v->path_len);
	}
	if (err)
		jsonw_str(&w, "error", strerror(-err));
	jsonw_obj_close(&w);
	if (!w.oom)
		fprintf(o->report, "%.*s\n", (int)w.len, w.buf);
	jsonw_free(&w);
}

static int mkdir_parents(const char *path)
{
	char tmp[WARD_PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

static int apply_meta(int fd, const struct vault_version *v)
{
	/* chown first: it clears set-id bits that chmod then puts back. */
	if (fchown(fd, v->uid, v->gid) < 0 || fchmod(fd, v->mode & 07777) < 0)
		return -errno;
	struct timespec ts[2] = {
		{.tv_sec = v->atime_ns / 1000000000, .tv_nsec = v->atime_ns % 1000000000},
		{.tv_sec = v->mtime_ns / 1000000000, .tv_nsec = v->mtime_ns % 1000000000},
	};
	return futimens(fd, ts) < 0 ? -errno : 0;
}

/* Whether target already holds exactly the saved content. */
static bool same_content(const char *target, const struct vault_version *v, const uint8_t sha[32])
{
	struct stat st;
	uint8_t cur[32];
	if (lstat(target, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size != v->size)
		return false;
	int fd = open(target, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	int rc = vault_sha256_fd(fd, cur);
	close(fd);
	return rc == 0 && memcmp(cur, sha, 32) == 0;
}

/* Whether target's bytes at the range already equal the saved range. */
static bool same_range(int vfd, const char *target, const struct vault_version *v)
{
	enum { B = 64 * 1024 };
	bool same = false;
	char *a = malloc(B), *b = malloc(B);
	int fd = open(target, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (!a || !b || fd < 0)
		goto out;
	for (int64_t pos = 0; pos < v->range_len; pos += B) {
		size_t n = v->range_len - pos > B ? B : (size_t)(v->range_len - pos);
		if (pread(vfd, a, n, pos) != (ssize_t)n ||
		    pread(fd, b, n, v->range_off + pos) != (ssize_t)n || memcmp(a, b, n) != 0)
			goto out;
	}
	same = true;
out:
	if (fd >= 0)
		close(fd);
	free(a);
	free(b);
	return same;
}

static int restore_range(const struct vault_version *v, int vfd, const char *target, size_t tlen,
			 const struct vault_restore_opts *o, struct vault_restore_stats *st)
{
	int rc = 0;
	if (same_range(vfd, target, v)) {
		st->unchanged++;
		report(o, "unchanged", v, target, tlen, 0);
		return 0;
	}
	if (o->dry_run) {
		st->would_restore++;
		report(o, "would_restore", v, target, tlen, 0);
		return 0;
	}
	int fd = open(target, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* Writing the same bytes again is harmless: ranges are idempotent by nature. */
	if ((rc = vault_copy_range(vfd, fd, 0, v->range_len, v->range_off, NULL, 0)) == 0 &&
	    fsync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc == 0) {
		st->restored++;
		report(o, "restored", v, target, tlen, 0);
	}
	return rc;
}

static int restore_one(struct vault_store *s, const struct vault_version *v, const char *target,
		       const struct vault_restore_opts *o, struct vault_restore_stats *st)
{
	int rc = 0, vfd = -1, tfd = -1;
	size_t tlen = strlen(target);
	char tmp[WARD_PATH_MAX];
	bool tmp_made = false;
	uint8_t sha[32];
	struct stat ts;

	if ((rc = vault_store_open_version(s, v, &vfd)))
		goto out;
	if (v->kind == VAULT_KIND_RANGE) {
		rc = restore_range(v, vfd, target, tlen, o, st);
		goto out;
	}
	if (v->has_sha256)
		memcpy(sha, v->sha256, 32);
	else if ((rc = vault_sha256_fd(vfd, sha)))
		goto out;
	if (same_content(target, v, sha)) {
		int fd = o->dry_run ? -1 : open(target, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0) {
			rc = apply_meta(fd, v);
			close(fd);
		}
		st->unchanged++;
		report(o, "unchanged", v, target, tlen, 0);
		goto out;
	}
	if (o->dry_run) {
		st->would_restore++;
		report(o, "would_restore", v, target, tlen, 0);
		goto out;
	}
	bool exists = lstat(target, &ts) == 0;
	if (exists && S_ISREG(ts.st_mode) && ts.st_nlink > 1) {
		/* Keep the inode and so its other names: rewrite in place. */
		tfd = open(target, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
		if (tfd < 0 || ftruncate(tfd, 0) < 0) {
			rc = -errno;
			goto out;
		}
	} else {
		const char *slash = strrchr(target, '/');
		size_t dl = slash ? (size_t)(slash - target) + 1 : 0;
		if (snprintf(tmp, sizeof(tmp), "%.*s.ward-restore-%lld.tmp", (int)dl, target,
			     (long long)v->id) >= (int)sizeof(tmp)) {
			rc = -ENAMETOOLONG;
			goto out;
		}
		if ((rc = mkdir_parents(target)))
			goto out;
		tfd = open(tmp, O_CREAT | O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (tfd < 0) {
			rc = -errno;
			goto out;
		}
		tmp_made = true;
	}
	if ((rc = vault_copy_range(vfd, tfd, 0, v->size, 0, NULL, 0)))
		goto out;
	if (ftruncate(tfd, v->size) < 0) {
		rc = -errno;
		goto out;
	}
	if ((rc = apply_meta(tfd, v)))
		goto out;
	if (fsync(tfd) < 0) {
		rc = -errno;
		goto out;
	}
	if (tmp_made && rename(tmp, target) < 0) {
		rc = -errno;
		goto out;
	}
	tmp_made = false;
	st->restored++;
	report(o, "restored", v, target, tlen, 0);
out:
	if (tfd >= 0)
		close(tfd);
	if (vfd >= 0)
		close(vfd);
	if (tmp_made)
		unlink(tmp);
	return rc;
}

static int quarantine_all(const struct vault_restore_opts *o, struct vault_restore_stats *st)
{
	int rc = 0;
	static unsigned seq;
	if (!o->nquarantine)
		return 0;
	if (!o->quarantine_dir)
		return -EINVAL;
	if (!o->dry_run && mkdir(o->quarantine_dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	for (size_t i = 0; i < o->nquarantine; i++) {
		const char *p = o->quarantine[i];
		struct stat sb;
		if (lstat(p, &sb) < 0) {
			report(o, "absent", NULL, p, strlen(p), 0);   /* done by an earlier run */
			continue;
		}
		if (o->dry_run) {
			st->would_quarantine++;
			report(o, "would_quarantine", NULL, p, strlen(p), 0);
			continue;
		}
		const char *base = strrchr(p, '/');
		base = base ? base + 1 : p;
		char to[WARD_PATH_MAX];
		if (snprintf(to, sizeof(to), "%s/%lld-%u-%s", o->quarantine_dir,
			     (long long)vault_now_ns(), seq++, base) >= (int)sizeof(to)) {
			rc = rc ? rc : -ENAMETOOLONG;
			st->failed++;
			continue;
		}
		/* A move, never a delete: the evidence stays, out of the way. */
		if (rename(p, to) < 0) {
			int e = -errno;
			report(o, "quarantine_failed", NULL, p, strlen(p), e);
			st->failed++;
			rc = rc ? rc : e;
			continue;
		}
		st->quarantined++;
		report(o, "quarantined", NULL, to, strlen(to), 0);
	}
	return rc;
}

int vault_restore_items(struct vault_store *s, const struct vault_restore_item *items, size_t n,
			const struct vault_restore_opts *o, struct vault_restore_stats *st)
{
	int rc = 0;
	struct vault_version *v = malloc(sizeof(*v));
	if (!v)
		return -ENOMEM;
	rc = quarantine_all(o, st);
	for (size_t i = 0; i < n; i++) {
		int r = vault_store_get(s, items[i].id, v);
		char target[WARD_PATH_MAX];
		if (r == 0) {
			const char *home = v->orig_path_len ? v->orig_path : v->path;
			size_t hl = v->orig_path_len ? v->orig_path_len : v->path_len;
			if (items[i].dest)
				snprintf(target, sizeof(target), "%s", items[i].dest);
			else if (o->dest_root &&
				 snprintf(target, sizeof(target), "%s%.*s", o->dest_root, (int)hl,
					  home) >= (int)sizeof(target))
				r = -ENAMETOOLONG;
			else if (!o->dest_root)
				snprintf(target, sizeof(target), "%.*s", (int)hl, home);
			for (size_t k = 0; r == 0 && k < o->nquarantine; k++)
				if (strcmp(o->quarantine[k], target) == 0)
					r = 1;      /* it is to be moved away, not brought back */
			if (r == 1) {
				report(o, "skipped_quarantined", v, target, strlen(target), 0);
				r = 0;
			} else if (r == 0) {
				r = restore_one(s, v, target, o, st);
			}
			if (r) {
				report(o, "failed", v, target, strlen(target), r);
				log_warn("restore: version %lld: %s", (long long)items[i].id, strerror(-r));
			}
		}
		if (r) {
			st->failed++;
			rc = rc ? rc : r;
		}
		if (o->after_each && o->after_each(o->hook_ctx, i + 1)) {
			rc = -EINTR;
			break;
		}
	}
	if (o->report)
		fflush(o->report);
	free(v);
	return rc;
}

/* ---- by path ---- */

struct cand {
	int64_t id, saved_ns, range_off;
	char *home;
	size_t home_len;
	pid_t pid;
	bool range, suspect;
};

struct collect {
	struct vault_store *s;
	const struct vault_restore_opts *o;
	struct vault_restore_stats *st;
	const char *prefix;
	size_t prefix_len;
	struct cand *c;
	size_t n, cap;
};

/* A hard link shares its inode: it only holds the saved content while that is unchanged. */
static bool link_stale(struct vault_store *s, const struct vault_version *v)
{
	int fd;
	struct stat sb;
	if (vault_store_open_version(s, v, &fd))
		return true;
	bool stale = fstat(fd, &sb) < 0 || sb.st_size != v->size ||
		     (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec != v->mtime_ns;
	close(fd);
	return stale;
}

static int collect_cb(void *ctx, const struct vault_version *v)
{
	struct collect *c = ctx;
	const char *home = v->orig_path_len ? v->orig_path : v->path;
	size_t hl = v->orig_path_len ? v->orig_path_len : v->path_len;
	if (hl < c->prefix_len || memcmp(home, c->prefix, c->prefix_len) != 0)
		return 0;
	if (v->kind == VAULT_KIND_LINK && link_stale(c->s, v)) {
		c->st->stale_links++;
		return 0;
	}
	if (c->n == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 64;
		struct cand *p = realloc(c->c, nc * sizeof(*p));
		if (!p)
			return -ENOMEM;
		c->c = p;
		c->cap = nc;
	}
	struct cand *k = &c->c[c->n];
	memset(k, 0, sizeof(*k));
	k->home = malloc(hl ? hl : 1);
	if (!k->home)
		return -ENOMEM;
	memcpy(k->home, home, hl);
	k->home_len = hl;
	k->id = v->id;
	k->saved_ns = v->saved_ns;
	k->pid = v->pid;
	k->range = v->kind == VAULT_KIND_RANGE;
	k->range_off = k->range ? v->range_off : -1;
	for (size_t i = 0; i < c->o->nsuspects; i++)
		k->suspect |= c->o->suspects[i] == v->pid;
	c->n++;
	return 0;
}

static int cmp_home(const struct cand *a, const struct cand *b)
{
	size_t n = a->home_len < b->home_len ? a->home_len : b->home_len;
	int r = memcmp(a->home, b->home, n);
	return r ? r : (a->home_len > b->home_len) - (a->home_len < b->home_len);
}

static int cmp_cand(const void *x, const void *y)
{
	const struct cand *a = x, *b = y;
	int r = cmp_home(a, b);
	if (r)
		return r;
	if (a->range != b->range)
		return a->range - b->range;       /* whole versions first */
	if (a->range_off != b->range_off)
		return a->range_off < b->range_off ? -1 : 1;
	return (a->saved_ns > b->saved_ns) - (a->saved_ns < b->saved_ns);
}

int vault_restore_by_path(struct vault_store *s, const char *prefix, size_t prefix_len,
			  int64_t before_ns, const struct vault_restore_opts *o,
			  struct vault_restore_stats *st)
{
	int rc;
	struct collect c = {.s = s, .o = o, .st = st, .prefix = prefix, .prefix_len = prefix_len};
	struct vault_restore_item *items = NULL;
	size_t ni = 0;

	if ((rc = vault_store_list(s, prefix, prefix_len, before_ns, collect_cb, &c)))
		goto out;
	qsort(c.c, c.n, sizeof(*c.c), cmp_cand);
	items = calloc(c.n ? c.n : 1, sizeof(*items));
	if (!items) {
		rc = -ENOMEM;
		goto out;
	}
	/* Walk groups: one home path, then within it the whole versions and each range offset. */
	int64_t whole_saved = INT64_MIN;
	bool whole_chosen = false;
	for (size_t i = 0; i < c.n;) {
		size_t j = i;
		while (j < c.n && cmp_home(&c.c[i], &c.c[j]) == 0 && c.c[j].range == c.c[i].range &&
		       c.c[j].range_off == c.c[i].range_off)
			j++;
		if (i == 0 || cmp_home(&c.c[i - 1], &c.c[i]) != 0) {
			whole_saved = INT64_MIN;
			whole_chosen = false;
		}
		/* The group's candidates are in saved order: newest is last; with suspects, the
		 * earliest a suspect caused, and nothing at all if no suspect touched it. */
		ssize_t pick = -1;
		if (o->nsuspects) {
			for (size_t k = i; k < j && pick < 0; k++)
				if (c.c[k].suspect)
					pick = (ssize_t)k;
		} else {
			pick = (ssize_t)j - 1;
		}
		if (pick >= 0) {
			struct cand *k = &c.c[pick];
			if (!k->range) {
				whole_saved = k->saved_ns;
				whole_chosen = true;
				items[ni++].id = k->id;
			} else if (!whole_chosen || k->saved_ns > whole_saved) {
				items[ni++].id = k->id;
			}
		}
		i = j;
	}
	rc = vault_restore_items(s, items, ni, o, st);
out:
	for (size_t i = 0; i < c.n; i++)
		free(c.c[i].home);
	free(c.c);
	free(items);
	return rc;
}
