/* recover.c: incident-level restore.
 *
 * What the incident's actor did is read from three records, none complete alone:
 *   - the vault: every version says which process caused it (pid, exe), when, and what the
 *     file was then (inode, size, mtime, name, first name). The actor's versions are those
 *     of the incident's processes, of processes running the same executable in the attack's
 *     window (children of a fork-per-file attacker), and of processes that wrote (not only
 *     read) the incident's files before detection. Readers are never suspects: a backup or
 *     an indexer opening files during the attack must not decide what comes back.
 *   - the incident: its files, and its outputs, the names the actor's process tree created
 *     or renamed to, which the daemon keeps adding for a few seconds after detection (a
 *     restore started at once may see them incomplete).
 *   - the filesystem now: the directories the actor worked in are read once. A file there
 *     with the inode of one the actor saved, under another name, is that file renamed (or a
 *     hard link of it); a file born (statx btime) during the attack that never had content
 *     from before it is an output.
 * T0, the attack's start, is the earlier of the first scored event and the actor's first
 * version: both are recorded, so a second run finds the same T0. Content from before T0 (a
 * version whose mtime is older, by a margin) marks a path as an original; a file born after
 * it where the actor worked is an output.
 *
 * Per path: the actor's earliest version (the content just before its first change); if
 * it saved none but the path is gone or was replaced by an output (deleted, renamed over),
 * the newest version from before T0 if the actor worked in that directory. Outputs go to
 * quarantine (moved, never deleted), except where the original comes back in place.
 *
 * Safe to run twice (restore leaves files that are right alone, quarantine moves only what
 * is still there; nothing restore writes counts as an output: it is born after the attack
 * and holds content from before it) and safe to interrupt (each file is written to a
 * temporary name and renamed over). */
#include "response/recover.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/jsonw.h"
#include "core/log.h"

#define NS 1000000000ll
#define WINDOW_BEFORE_NS (60 * NS)   /* the actor may have started this long before it scored */
#define WINDOW_AFTER_NS (5 * NS)     /* saves finishing after the stop */
#define ACTOR_SLACK_NS (2 * NS)     /* the actor's doings just before its first scored event,
				     * or (not stopped) just after its last save */
#define QUEUED_NS (NS)                /* events still queued when the actor was detected */
#define CLOCK_SLACK_NS (NS / 10)

/* ---- a set of paths (C strings: kernel paths hold no NUL), with a value each ---- */

struct smap {
	char **key;
	ssize_t *val;
	size_t cap, n;
};

static uint64_t fnv(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

static ssize_t *smap_slot(const struct smap *m, const char *k)
{
	if (!m->cap)
		return NULL;
	for (size_t i = fnv(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (!m->key[i])
			return NULL;
		if (strcmp(m->key[i], k) == 0)
			return &m->val[i];
	}
}

static bool smap_has(const struct smap *m, const char *k) { return smap_slot(m, k) != NULL; }

static ssize_t smap_get(const struct smap *m, const char *k)
{
	ssize_t *v = smap_slot(m, k);
	return v ? *v : -1;
}

/* 1 added, 0 already there (value kept), -ENOMEM. */
static int smap_put(struct smap *m, const char *k, ssize_t val)
{
	if (smap_has(m, k))
		return 0;
	if ((m->n + 1) * 2 > m->cap) {
		struct smap g = {.cap = m->cap ? m->cap * 2 : 64};
		g.key = calloc(g.cap, sizeof(*g.key));
		g.val = calloc(g.cap, sizeof(*g.val));
		if (!g.key || !g.val) {
			free(g.key);
			free(g.val);
			return -ENOMEM;
		}
		for (size_t i = 0; i < m->cap; i++) {
			if (!m->key[i])
				continue;
			size_t j = fnv(m->key[i]) & (g.cap - 1);
			while (g.key[j])
				j = (j + 1) & (g.cap - 1);
			g.key[j] = m->key[i];
			g.val[j] = m->val[i];
		}
		g.n = m->n;
		free(m->key);
		free(m->val);
		*m = g;
	}
	size_t j = fnv(k) & (m->cap - 1);
	while (m->key[j])
		j = (j + 1) & (m->cap - 1);
	if (!(m->key[j] = strdup(k)))
		return -ENOMEM;
	m->val[j] = val;
	m->n++;
	return 1;
}

static void smap_free(struct smap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->key[i]);
	free(m->key);
	free(m->val);
	memset(m, 0, sizeof(*m));
}

/* ---- the plan ---- */

/* One version under the roots, what planning needs of it. */
struct ver {
	int64_t id, saved_ns, mtime_ns, size, range_off;
	uint64_t dev, ino;
	uint32_t nlink;
	pid_t pid;
	bool range, valid, suspect, write;
	char *home;          /* the first name known: orig_path, else path */
	char *path;          /* the name when saved */
};

struct plan {
	struct vault_store *store;
	const struct incident *inc;
	const char *const *roots;
	int nroots;
	pid_t *pids;
	size_t npids;
	json_object *files, *outs;
	int64_t lo, hi, t0, born_hi;
	int64_t cut;                /* content older than this was there before the attack */
	int64_t born_lo;            /* a file born in [born_lo, born_hi] where the actor worked,
				     * with nothing from before the attack, is its output */
	struct ver *v;
	size_t nv, cap;
	struct smap outputs;        /* the daemon's record, under the roots */
	struct smap dirs;           /* where the actor worked */
	struct smap homes;          /* home -> index of its first version (sorted by home) */
	struct smap targets;        /* home -> index of the chosen whole version, -1: ranges only */
	struct smap dests;          /* extra names restored as hard links of a target */
	struct smap quar;           /* what goes to quarantine */
	struct smap moved;          /* renamed files moved back to their names */
	struct smap target_inodes;  /* "dev:ino" of the files at target names now */
	struct vault_restore_item *items;
	size_t nitems, icap;
	char **dest_store;          /* strings the items point to */
	size_t ndest;
};

static bool under_roots(const struct plan *p, const char *path)
{
	for (int r = 0; r < p->nroots; r++) {
		size_t n = strlen(p->roots[r]);
		while (n > 1 && p->roots[r][n - 1] == '/')
			n--;
		if (strncmp(path, p->roots[r], n) == 0 && (path[n] == '/' || path[n] == '\0'))
			return true;
	}
	return false;
}

static bool is_pid(const struct plan *p, pid_t pid)
{
	for (size_t i = 0; i < p->npids; i++)
		if (p->pids[i] == pid)
			return true;
	return false;
}

static bool in_json(json_object *arr, const char *s, size_t n)
{
	for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
		json_object *f = json_object_array_get_idx(arr, i);
		if ((size_t)json_object_get_string_len(f) == n && memcmp(json_object_get_string(f), s, n) == 0)
			return true;
	}
	return false;
}

static int dir_add(struct plan *p, const char *path)
{
	const char *sl = strrchr(path, '/');
	if (!sl || sl == path)
		return 0;
	char *d = strndup(path, (size_t)(sl - path));
	if (!d)
		return -ENOMEM;
	int rc = under_roots(p, d) ? smap_put(&p->dirs, d, 0) : 0;
	free(d);
	return rc < 0 ? rc : 0;
}

static int on_version(void *ctx, const struct vault_version *v)
{
	struct plan *p = ctx;
	const char *home = v->orig_path_len ? v->orig_path : v->path;
	size_t hl = v->orig_path_len ? v->orig_path_len : v->path_len;
	/* A recorded name with a NUL byte cannot be a path: not ours to restore. */
	if (memchr(home, '\0', hl) || memchr(v->path, '\0', v->path_len))
		return 0;
	if (p->nv == p->cap) {
		size_t nc = p->cap ? p->cap * 2 : 256;
		struct ver *n = realloc(p->v, nc * sizeof(*n));
		if (!n)
			return -ENOMEM;
		p->v = n;
		p->cap = nc;
	}
	struct ver *x = &p->v[p->nv];
	memset(x, 0, sizeof(*x));
	x->home = strndup(home, hl);
	x->path = strndup(v->path, v->path_len);
	if (!x->home || !x->path) {
		free(x->home);
		free(x->path);
		return -ENOMEM;
	}
	/* The listing matched by prefix: "/srv/a" also finds "/srv/ab". */
	if (!under_roots(p, x->home) && !under_roots(p, x->path)) {
		free(x->home);
		free(x->path);
		return 0;
	}
	p->nv++;
	x->id = v->id;
	x->saved_ns = v->saved_ns;
	x->mtime_ns = v->mtime_ns;
	x->size = v->size;
	x->range = v->kind == VAULT_KIND_RANGE;
	x->range_off = x->range ? v->range_off : -1;
	x->dev = v->dev;
	x->ino = v->ino;
	x->nlink = v->nlink;
	x->pid = v->pid;
	x->write = v->kind != VAULT_KIND_LINK;
	x->valid = vault_restore_version_valid(p->store, v);
	bool window = v->saved_ns >= p->lo && v->saved_ns <= p->hi;
	/* Another process of the same executable (a fork-per-file child that exited before the
	 * stop, one of a shell loop's) when the incident is of a tree or an executable, and only
	 * from just before the first scored event: an earlier attack by the same program is an
	 * incident of its own, with its own restore. A single process is its pids alone. */
	bool same_exe = strcmp(p->inc->level, "process") != 0 && p->inc->exe[0] && v->exe[0] &&
			strcmp(p->inc->exe, v->exe) == 0 && v->saved_ns >= (int64_t)p->inc->first_ns - ACTOR_SLACK_NS;
	/* Writers of the incident's own files before it was detected: a child with another
	 * executable (a shell loop's openssl) that the incident does not name. */
	bool wrote_ours = x->write && v->saved_ns >= p->lo &&
			  v->saved_ns <= (int64_t)p->inc->detected_ns + NS &&
			  (in_json(p->files, v->path, v->path_len) || in_json(p->files, home, hl));
	/* The incident's pids: while it ran (and stopped, none of them wrote after); for one
	 * not stopped, later on only while the executable is the same (pids are reused). */
	bool pid_ok = is_pid(p, v->pid) && (v->saved_ns <= (int64_t)p->inc->detected_ns + WINDOW_AFTER_NS ||
					    same_exe || !v->exe[0] || !p->inc->exe[0]);
	/* The incident's pids count from a minute before; pids are reused, so not when the
	 * version names another executable. */
	if (pid_ok && p->inc->exe[0] && v->exe[0] && strcmp(p->inc->exe, v->exe) != 0 &&
	    v->saved_ns < (int64_t)p->inc->first_ns - ACTOR_SLACK_NS)
		pid_ok = false;
	x->suspect = window && v->pid > 0 && (pid_ok || same_exe || wrote_ours);
	return 0;
}

static int cmp_ver(const void *a, const void *b)
{
	const struct ver *x = a, *y = b;
	int r = strcmp(x->home, y->home);
	if (r)
		return r;
	if (x->range != y->range)
		return x->range - y->range;
	if (x->range_off != y->range_off)
		return x->range_off < y->range_off ? -1 : 1;
	if (x->saved_ns != y->saved_ns)
		return x->saved_ns < y->saved_ns ? -1 : 1;
	return (x->id > y->id) - (x->id < y->id);
}

static int item_add(struct plan *p, int64_t id, const char *dest)
{
	if (p->nitems == p->icap) {
		size_t nc = p->icap ? p->icap * 2 : 128;
		struct vault_restore_item *n = realloc(p->items, nc * sizeof(*n));
		if (!n)
			return -ENOMEM;
		p->items = n;
		p->icap = nc;
	}
	char *d = NULL;
	if (dest) {
		char **ds = realloc(p->dest_store, (p->ndest + 1) * sizeof(*ds));
		if (!ds)
			return -ENOMEM;
		p->dest_store = ds;
		if (!(d = strdup(dest)))
			return -ENOMEM;
		p->dest_store[p->ndest++] = d;
	}
	p->items[p->nitems++] = (struct vault_restore_item){.id = id, .dest = d};
	return 0;
}

/* statx of a name: inode, owner, links and birth (0 when the filesystem does not say). */
struct now {
	uint64_t dev, ino;
	uint32_t uid, nlink;
	int64_t btime_ns, mtime_ns;
	bool reg;
};

static int now_of(int dirfd, const char *name, struct now *n)
{
	struct statx x;
	if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME, &x) < 0)
		return -errno;
	n->dev = makedev(x.stx_dev_major, x.stx_dev_minor);
	n->ino = x.stx_ino;
	n->uid = x.stx_uid;
	n->nlink = x.stx_nlink;
	n->reg = S_ISREG(x.stx_mode);
	n->btime_ns = (x.stx_mask & STATX_BTIME) ? (int64_t)x.stx_btime.tv_sec * NS + x.stx_btime.tv_nsec : 0;
	n->mtime_ns = (int64_t)x.stx_mtime.tv_sec * NS + x.stx_mtime.tv_nsec;
	return 0;
}

/* A path held content from before the attack if a version shows it older than this: T0
 * less a little (the first files an attacker makes come microseconds before the event that
 * scores). For a name the actor made (the daemon's record), older than the whole window:
 * what it wrote just before it scored must not pass for an original. The cut does not
 * depend on what is on disk now, so a second run decides as the first did. */
static int64_t original_cut(const struct plan *p, bool output)
{
	return output ? p->lo : p->cut;
}

static bool in_actor_dir(const struct plan *p, const char *path)
{
	const char *sl = strrchr(path, '/');
	if (!sl || sl == path)
		return false;
	char *d = strndup(path, (size_t)(sl - path));
	bool in = d && smap_has(&p->dirs, d);
	free(d);
	return in;
}

/* Every directory under root (one filesystem, ward's own aside) changed since born_lo (an
 * entry created, removed or renamed in it): where the actor may have left files the
 * daemon's record does not name yet (it is written a moment after detection). Only
 * directories are read to find them, not every file. */
static int walk_changed_dirs(struct plan *p, const char *root)
{
	int rc = 0;
	size_t n = 0, cap = 64;
	char **stack = malloc(cap * sizeof(*stack));
	struct stat rs;
	if (!stack)
		return -ENOMEM;
	if (lstat(root, &rs) < 0 || !S_ISDIR(rs.st_mode) || !(stack[n++] = strdup(root))) {
		free(stack);
		return 0;
	}
	while (n && !rc) {
		char *dir = stack[--n];
		int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
		struct stat ds;
		if (!d) {
			if (fd >= 0)
				close(fd);
			free(dir);
			continue;
		}
		if (fstat(fd, &ds) < 0 || ds.st_dev != rs.st_dev) {   /* another filesystem */
			closedir(d);
			free(dir);
			continue;
		}
		if ((int64_t)ds.st_mtim.tv_sec * NS + ds.st_mtim.tv_nsec >= p->born_lo &&
		    smap_put(&p->dirs, dir, 0) < 0)
			rc = -ENOMEM;
		struct dirent *de;
		while (!rc && (de = readdir(d))) {
			if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
				continue;
			if (strcmp(de->d_name, VAULT_DIR_NAME) == 0 || strcmp(de->d_name, ".ward-quarantine") == 0)
				continue;
			struct stat es;
			if (de->d_type != DT_DIR && (de->d_type != DT_UNKNOWN ||
						     fstatat(fd, de->d_name, &es, AT_SYMLINK_NOFOLLOW) < 0 ||
						     !S_ISDIR(es.st_mode)))
				continue;
			if (n == cap) {
				char **ns = realloc(stack, cap * 2 * sizeof(*ns));
				if (!ns) {
					rc = -ENOMEM;
					break;
				}
				stack = ns;
				cap *= 2;
			}
			size_t dl = strlen(dir), el = strlen(de->d_name);
			char *sub = malloc(dl + el + 2);
			if (!sub) {
				rc = -ENOMEM;
				break;
			}
			snprintf(sub, dl + el + 2, "%s/%s", dir, de->d_name);
			stack[n++] = sub;
		}
		closedir(d);
		free(dir);
	}
	while (n)
		free(stack[--n]);
	free(stack);
	return rc;
}

/* The versions of one home: [first, end). */
static size_t home_end(const struct plan *p, size_t first)
{
	size_t e = first;
	while (e < p->nv && strcmp(p->v[e].home, p->v[first].home) == 0)
		e++;
	return e;
}

/* Chooses what comes back for every home. */
static int choose(struct plan *p)
{
	int rc = 0;
	for (size_t i = 0; i < p->nv && !rc;) {
		size_t e = home_end(p, i);
		const char *home = p->v[i].home;
		bool original = false, suspect = false;
		ssize_t whole = -1, before = -1;
		bool output = smap_has(&p->outputs, home);
		int64_t cut = original_cut(p, output);
		for (size_t k = i; k < e; k++) {
			const struct ver *x = &p->v[k];
			original |= x->mtime_ns < cut;
			suspect |= x->suspect;
			if (!x->range && x->valid && x->suspect && whole < 0)
				whole = (ssize_t)k;
			if (!x->range && x->valid && x->mtime_ns < cut && x->saved_ns <= p->hi)
				before = (ssize_t)k;      /* saved order: the newest wins */
		}
		if (whole >= 0 && !original && (output || p->v[whole].size == 0))
			whole = -1;             /* the actor's own file, seen again: not an original */
		if (whole < 0 && before >= 0 && original) {
			/* Gone, or replaced by something the actor made, where the actor worked:
			 * deleted, or renamed over (no version of the actor's shows it). */
			struct stat sb;
			bool gone = lstat(home, &sb) < 0 && errno == ENOENT;
			if (output || (gone && (suspect || in_actor_dir(p, home))))
				whole = before;
		}
		if (whole >= 0)
			rc = item_add(p, p->v[whole].id, NULL);
		/* Ranges of large files: the actor's earliest per offset, if it holds bytes the
		 * chosen whole version does not (saved before it). */
		bool any_range = false;
		for (size_t k = i; k < e && !rc;) {
			size_t g = k;
			while (g < e && p->v[g].range == p->v[k].range && p->v[g].range_off == p->v[k].range_off)
				g++;
			for (size_t r = k; r < g && p->v[k].range && !rc; r++) {
				const struct ver *x = &p->v[r];
				if (!x->suspect)
					continue;
				if (whole < 0 || x->saved_ns < p->v[whole].saved_ns) {
					any_range = true;
					rc = item_add(p, x->id, NULL);
				}
				break;
			}
			k = g;
		}
		if (!rc && (whole >= 0 || any_range))
			rc = smap_put(&p->targets, home, whole) < 0 ? -ENOMEM : 0;
		i = e;
	}
	return rc;
}

/* Whether name looks like one the actor gave the file at home (home's name plus an
 * extension: "report.pdf" -> "report.pdf.locked"). */
static bool renamed_from(const char *name, const char *home)
{
	const char *b = strrchr(home, '/');
	b = b ? b + 1 : home;
	size_t n = strlen(b);
	return strncmp(name, b, n) == 0 && name[n] == '.' && name[n + 1] != '\0';
}

/* A regular file in a directory the actor worked in, as it is now. */
struct entry {
	char *path;
	const char *name;            /* inside path */
	struct now n;
	const struct ver *w;         /* a version the actor caused of this inode, saved under
				      * another name; NULL: none */
	bool quarantined;            /* moved to quarantine by an earlier run */
};

struct scan {
	struct entry *e;
	size_t n, cap;
	struct smap suffixes;        /* what the actor appends to names it renames (".locked") */
};

/* One file into the scan: path is its name in the tree (for a file a previous run moved to
 * quarantine, the name it had there). */
static int add_entry(struct plan *p, struct scan *sc, const char *path, const struct now *n, bool quarantined)
{
	if (sc->n == sc->cap) {
		size_t nc = sc->cap ? sc->cap * 2 : 256;
		struct entry *x = realloc(sc->e, nc * sizeof(*x));
		if (!x)
			return -ENOMEM;
		sc->e = x;
		sc->cap = nc;
	}
	struct entry *x = &sc->e[sc->n];
	memset(x, 0, sizeof(*x));
	if (!(x->path = strdup(path)))
		return -ENOMEM;
	const char *sl = strrchr(x->path, '/');
	x->name = sl ? sl + 1 : x->path;
	x->n = *n;
	x->quarantined = quarantined;
	sc->n++;
	/* The inode of a version the actor caused, under another name than its home. */
	for (size_t k = 0; k < p->nv && !x->w; k++) {
		const struct ver *v = &p->v[k];
		if (v->suspect && v->ino == n->ino && v->dev == n->dev && strcmp(v->home, x->path) != 0 &&
		    (!n->btime_ns || n->btime_ns <= v->saved_ns))  /* born before: not a recycled number */
			x->w = v;
	}
	/* Renamed by appending to the name: learn what was appended. */
	if (x->w && renamed_from(x->name, x->w->home)) {
		const char *b = strrchr(x->w->home, '/');
		b = b ? b + 1 : x->w->home;
		if (smap_put(&sc->suffixes, x->name + strlen(b), 0) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* Reads one directory into the scan (ward's own temp files aside). */
static int scan_read(struct plan *p, struct scan *sc, const char *dir)
{
	int rc = 0;
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	struct dirent *de;
	char path[WARD_PATH_MAX];
	while ((de = readdir(d)) && !rc) {
		if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		if (strncmp(de->d_name, ".ward-restore-", 14) == 0)
			continue;
		struct now n = {0};
		if (now_of(dirfd(d), de->d_name, &n) < 0 || !n.reg)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path))
			continue;
		rc = add_entry(p, sc, path, &n, false);
	}
	closedir(d);
	return rc;
}

/* A string of the quarantine log: key_hex (exact bytes) when there, else key. */
static char *log_str(json_object *o, const char *key)
{
	char hk[16];
	json_object *v;
	snprintf(hk, sizeof(hk), "%s_hex", key);
	if (json_object_object_get_ex(o, hk, &v)) {
		const char *h = json_object_get_string(v);
		size_t n = h ? strlen(h) / 2 : 0;
		char *b = malloc(n + 1);
		for (size_t i = 0; b && i < n; i++) {
			unsigned x;
			if (sscanf(h + 2 * i, "%2x", &x) != 1 || x == 0) {
				free(b);
				return NULL;
			}
			b[i] = (char)x;
		}
		if (b)
			b[n] = '\0';
		return b;
	}
	return json_object_object_get_ex(o, key, &v) ? strdup(json_object_get_string(v)) : NULL;
}

/* What earlier runs of this restore moved to quarantine (their log), still there: they
 * count as found where they were (a hard link's other name may show only in them). */
static int scan_quarantine(struct plan *p, struct scan *sc, const char *qdir)
{
	char lp[WARD_PATH_MAX], line[3 * WARD_PATH_MAX];
	if (!qdir || snprintf(lp, sizeof(lp), "%s/" VAULT_QUARANTINE_LOG, qdir) >= (int)sizeof(lp))
		return 0;
	FILE *f = fopen(lp, "re");
	if (!f)
		return 0;
	int rc = 0;
	while (!rc && fgets(line, sizeof(line), f)) {
		json_object *o = json_tokener_parse(line);
		char *from = o ? log_str(o, "from") : NULL, *to = o ? log_str(o, "to") : NULL;
		struct now n = {0};
		if (from && to && under_roots(p, from) && now_of(AT_FDCWD, to, &n) == 0 && n.reg)
			rc = add_entry(p, sc, from, &n, true);
		free(from);
		free(to);
		json_object_put(o);
	}
	fclose(f);
	return rc;
}

/* name with a learnt suffix taken off, as a path in dir of path; NULL: none fits. */
static char *strip_suffix(const struct scan *sc, const char *path, const char *name)
{
	size_t nl = strlen(name);
	for (size_t i = 0; i < sc->suffixes.cap; i++) {
		const char *sfx = sc->suffixes.key[i];
		size_t sl = sfx ? strlen(sfx) : 0;
		if (!sl || sl >= nl || strcmp(name + nl - sl, sfx) != 0)
			continue;
		return strndup(path, strlen(path) - sl);
	}
	return NULL;
}

/* A file the actor renamed goes back to its name (reported; not in a dry run). */
static int move_back(struct plan *p, const char *from, const char *to, FILE *report, bool dry_run)
{
	if (report) {
		struct jsonw w;
		jsonw_init(&w);
		jsonw_obj_open(&w, NULL);
		jsonw_str(&w, "action", dry_run ? "would_move_back" : "moved_back");
		const char *const k[2] = {"path", "from"}, *const val[2] = {to, from};
		for (int i = 0; i < 2; i++) {
			jsonw_str(&w, k[i], val[i]);
			if (!jsonw_utf8_valid(val[i], strlen(val[i]))) {   /* exact bytes too */
				char hk[16];
				snprintf(hk, sizeof(hk), "%s_hex", k[i]);
				jsonw_hex(&w, hk, val[i], strlen(val[i]));
			}
		}
		jsonw_obj_close(&w);
		if (!w.oom)
			fprintf(report, "%.*s\n", (int)w.len, w.buf);
		jsonw_free(&w);
	}
	if (!dry_run && rename(from, to) < 0)
		return -errno;
	if (smap_put(&p->dests, to, 0) < 0 || smap_put(&p->moved, from, 0) < 0)
		return -ENOMEM;
	return 0;
}

/* What each file in the actor's directories is (after every directory is read, so that
 * suffixes learnt in one apply in all):
 *   - an inode the actor saved, under another name (w set): renamed by the actor (its name
 *     made, appended to, or the inode had no other name) -> output; a large file restored
 *     range by range goes back to its name instead (the ranges fix that inode). A name that
 *     is a learnt rename of a missing name, of an inode that had several: that name was
 *     another hard link -> comes back as a link of the restored file. Otherwise another
 *     name the inode already had -> restored as a link too.
 *   - else born in the attack's window, holding nothing from before it -> output. */
static int scan_decide(struct plan *p, struct scan *sc, FILE *report, bool dry_run)
{
	int rc = 0;
	int64_t cut = original_cut(p, false);
	for (size_t i = 0; i < sc->n && !rc; i++) {
		struct entry *x = &sc->e[i];
		if (smap_has(&p->targets, x->path) || smap_has(&p->dests, x->path))
			continue;
		ssize_t hv = smap_get(&p->homes, x->path);
		bool original = false;
		for (size_t k = hv < 0 ? p->nv : (size_t)hv; k < p->nv && strcmp(p->v[k].home, x->path) == 0; k++)
			original |= p->v[k].mtime_ns < cut;
		const struct ver *w = x->w;
		if (!w && x->quarantined)
			continue;
		if (!w) {
			/* Another name of a file being restored (a hard link a previous run made)
			 * holds the original, whenever it was born. */
			char key[48];
			snprintf(key, sizeof(key), "%llx:%llx", (unsigned long long)x->n.dev,
				 (unsigned long long)x->n.ino);
			if (smap_has(&p->target_inodes, key))
				continue;
			/* Renamed (a learnt suffix on a name that is gone) but never written: the
			 * content is the original's, from before the attack; only the name goes back. */
			char *y = x->n.mtime_ns < p->t0 ? strip_suffix(sc, x->path, x->name) : NULL;
			struct stat ys;
			if (y && !smap_has(&p->targets, y) && !smap_has(&p->dests, y) && lstat(y, &ys) < 0 &&
			    errno == ENOENT) {
				rc = move_back(p, x->path, y, report, dry_run);
				free(y);
				continue;
			}
			free(y);
			if (!original && x->n.btime_ns && x->n.btime_ns >= p->born_lo &&
			    x->n.btime_ns <= p->born_hi && x->n.uid == p->inc->uid)
				rc = smap_put(&p->quar, x->path, 0) < 0 ? -ENOMEM : 0;
			continue;
		}
		if (x->quarantined) {
			/* Only what it says of other names: below, a hard link's other name. */
			struct stat qs;
			char *y = strip_suffix(sc, x->path, x->name);
			ssize_t tv = smap_get(&p->targets, w->home);
			if (y && strcmp(y, w->home) != 0 && lstat(y, &qs) < 0 && errno == ENOENT && w->nlink > 1 &&
			    tv >= 0 && !smap_has(&p->dests, y) && !smap_has(&p->targets, y) &&
			    (rc = item_add(p, p->v[tv].id, y)) == 0)
				rc = smap_put(&p->dests, y, 0) < 0 ? -ENOMEM : 0;
			free(y);
			continue;
		}
		struct stat hs;
		bool home_gone = lstat(w->home, &hs) < 0;
		bool moved = home_gone || hs.st_ino != w->ino;
		ssize_t tv = smap_get(&p->targets, w->home);
		bool target = smap_has(&p->targets, w->home);
		char *y = strip_suffix(sc, x->path, x->name);
		bool renamed = smap_has(&p->outputs, x->path) ||
			       (moved && (renamed_from(x->name, w->home) || y || w->nlink < 2)) ||
			       (!original && w->nlink < 2);
		if (renamed && target && tv < 0 && home_gone && !smap_has(&p->dests, w->home)) {
			/* Restored range by range: the inode goes back to its name first. */
			rc = move_back(p, x->path, w->home, report, dry_run);
			free(y);
			continue;
		}
		if (y && strcmp(y, w->home) != 0 && lstat(y, &hs) < 0 && errno == ENOENT && w->nlink > 1 &&
		    tv >= 0 && !smap_has(&p->dests, y) && !smap_has(&p->targets, y)) {
			/* The other name of a hard-linked file, renamed too. */
			if ((rc = item_add(p, p->v[tv].id, y)) == 0)
				rc = smap_put(&p->dests, y, 0) < 0 ? -ENOMEM : 0;
		}
		free(y);
		if (rc)
			break;
		if (renamed) {
			rc = smap_put(&p->quar, x->path, 0) < 0 ? -ENOMEM : 0;
		} else if (tv >= 0) {
			/* Another name of a file the actor changed: back as a hard link of the
			 * restored one (restore groups by inode state). */
			if ((rc = item_add(p, p->v[tv].id, x->path)) == 0)
				rc = smap_put(&p->dests, x->path, 0) < 0 ? -ENOMEM : 0;
		}
	}
	return rc;
}

static void scan_free(struct scan *sc)
{
	for (size_t i = 0; i < sc->n; i++)
		free(sc->e[i].path);
	free(sc->e);
	smap_free(&sc->suffixes);
}

/* Test hook (fault injection, as SQLite's tests do): WARD_TEST_RESTORE_KILL_AFTER=N kills
 * the restoring process after N items, as a crash or a power cut would, so the tests can
 * show that a re-run completes. Unset: never called. */
static int kill_after(void *ctx, size_t done)
{
	if (done >= *(size_t *)ctx) {
		log_warn("restore: WARD_TEST_RESTORE_KILL_AFTER reached after %zu item(s): killed", done);
		raise(SIGKILL);
	}
	return 0;
}

static void plan_free(struct plan *p)
{
	for (size_t i = 0; i < p->nv; i++) {
		free(p->v[i].home);
		free(p->v[i].path);
	}
	free(p->v);
	for (size_t i = 0; i < p->ndest; i++)
		free(p->dest_store[i]);
	free(p->dest_store);
	free(p->items);
	free(p->pids);
	smap_free(&p->outputs);
	smap_free(&p->dirs);
	smap_free(&p->homes);
	smap_free(&p->targets);
	smap_free(&p->dests);
	smap_free(&p->quar);
	smap_free(&p->moved);
	smap_free(&p->target_inodes);
	json_object_put(p->files);
	json_object_put(p->outs);
}

static int parse_incident(struct plan *p)
{
	const struct incident *inc = p->inc;
	p->files = json_tokener_parse(inc->files_json ? inc->files_json : "[]");
	p->outs = json_tokener_parse(inc->outputs_json ? inc->outputs_json : "[]");
	json_object *pids = json_tokener_parse(inc->pids_json ? inc->pids_json : "[]");
	int rc = 0;
	if (!p->files || !json_object_is_type(p->files, json_type_array) || !p->outs ||
	    !json_object_is_type(p->outs, json_type_array)) {
		rc = -EINVAL;
		goto out;
	}
	size_t np = pids && json_object_is_type(pids, json_type_array) ? json_object_array_length(pids) : 0;
	if (!(p->pids = calloc(np + 1, sizeof(*p->pids)))) {
		rc = -ENOMEM;
		goto out;
	}
	if (inc->pid > 0)
		p->pids[p->npids++] = inc->pid;
	for (size_t i = 0; i < np; i++) {
		pid_t x = (pid_t)json_object_get_int(json_object_array_get_idx(pids, i));
		if (x > 0 && !is_pid(p, x))
			p->pids[p->npids++] = x;
	}
	int64_t now = vault_now_ns();
	p->lo = (int64_t)inc->first_ns - WINDOW_BEFORE_NS;
	/* Stopped: nothing of the actor's after that. Running on (monitor mode) or exited on
	 * its own: up to now, the pid and executable still tell its versions apart. */
	p->hi = inc->stopped_ns ? (int64_t)inc->stopped_ns + WINDOW_AFTER_NS : now;
out:
	json_object_put(pids);
	return rc;
}

int recover_incident(struct vault_store *store, const char *const *roots, int nroots,
		     const struct incident *inc, const struct recover_opts *o,
		     struct vault_restore_stats *st)
{
	int rc = 0;
	struct plan p = {.store = store, .inc = inc, .roots = roots, .nroots = nroots};
	struct scan sc = {0};
	const char **quarantine = NULL;
	if ((rc = parse_incident(&p)))
		goto out;
	for (int r = 0; r < nroots; r++)
		if ((rc = vault_store_list(store, roots[r], strlen(roots[r]), 0, on_version, &p)))
			goto out;
	if (p.nv)
		qsort(p.v, p.nv, sizeof(*p.v), cmp_ver);
	/* Two roots of one tree list a version twice. */
	size_t w = 0;
	for (size_t i = 0; i < p.nv; i++) {
		if (w && p.v[w - 1].id == p.v[i].id) {
			free(p.v[i].home);
			free(p.v[i].path);
			continue;
		}
		p.v[w++] = p.v[i];
	}
	p.nv = w;

	/* T0, and the window in which a file born where the actor worked is its output: the
	 * daemon's record holds what the actor made before detection (and may lack what it
	 * made after, when the restore runs soon after), so from a moment before detection
	 * (events still queued then), never before T0, to the stop; for an actor that was not
	 * stopped, to its last version. */
	p.t0 = (int64_t)inc->first_ns;
	int64_t last = (int64_t)inc->detected_ns;
	for (size_t i = 0; i < p.nv; i++) {
		if (!p.v[i].suspect)
			continue;
		if (p.v[i].saved_ns < p.t0)
			p.t0 = p.v[i].saved_ns;
		if (p.v[i].saved_ns > last)
			last = p.v[i].saved_ns;
	}
	p.cut = p.t0 - ACTOR_SLACK_NS;
	p.born_lo = (int64_t)inc->detected_ns - QUEUED_NS;
	if (p.born_lo < p.t0)
		p.born_lo = p.t0;
	p.born_hi = inc->stopped_ns ? (int64_t)inc->stopped_ns + CLOCK_SLACK_NS : last + ACTOR_SLACK_NS;
	for (size_t i = 0; i < json_object_array_length(p.outs); i++) {
		const char *q = json_object_get_string(json_object_array_get_idx(p.outs, i));
		if (!q || !under_roots(&p, q))
			continue;
		if ((rc = smap_put(&p.outputs, q, 0)) < 0 || (rc = dir_add(&p, q)))
			goto out;
	}
	for (size_t i = 0; i < json_object_array_length(p.files); i++) {
		const char *f = json_object_get_string(json_object_array_get_idx(p.files, i));
		if (f && (rc = dir_add(&p, f)))
			goto out;
	}
	for (size_t i = 0; i < p.nv; i++) {
		if (p.v[i].suspect && ((rc = dir_add(&p, p.v[i].home)) || (rc = dir_add(&p, p.v[i].path))))
			goto out;
		if ((i == 0 || strcmp(p.v[i - 1].home, p.v[i].home) != 0) &&
		    smap_put(&p.homes, p.v[i].home, (ssize_t)i) < 0) {
			rc = -ENOMEM;
			goto out;
		}
	}

	if ((rc = choose(&p)))
		goto out;
	for (size_t i = 0; i < p.targets.cap; i++) {
		struct stat sb;
		char key[48];
		if (!p.targets.key[i] || lstat(p.targets.key[i], &sb) < 0)
			continue;
		snprintf(key, sizeof(key), "%llx:%llx", (unsigned long long)sb.st_dev, (unsigned long long)sb.st_ino);
		if (smap_put(&p.target_inodes, key, 0) < 0) {
			rc = -ENOMEM;
			goto out;
		}
	}
	/* Outputs: what the directories show (it may name a renamed file's way home), then
	 * the rest of the daemon's record. */
	for (int r = 0; r < nroots && !rc; r++)
		rc = walk_changed_dirs(&p, roots[r]);
	for (size_t i = 0; i < p.dirs.cap && !rc; i++)
		if (p.dirs.key[i])
			rc = scan_read(&p, &sc, p.dirs.key[i]);
	if (!rc)
		rc = scan_quarantine(&p, &sc, o->quarantine_dir);
	if (rc || (rc = scan_decide(&p, &sc, o->report, o->dry_run)))
		goto out;
	for (size_t i = 0; i < p.outputs.cap; i++) {
		const char *q = p.outputs.key[i];
		struct stat sb;
		if (q && !smap_has(&p.moved, q) && lstat(q, &sb) == 0 && S_ISREG(sb.st_mode) &&
		    smap_put(&p.quar, q, 0) < 0) {
			rc = -ENOMEM;
			goto out;
		}
	}
	/* A target among them keeps its file when it is right already, or has other names
	 * (rewritten in place); else the actor's file is kept in quarantine and the original
	 * comes back in its place. */
	quarantine = calloc(p.quar.n + 1, sizeof(*quarantine));
	if (!quarantine) {
		rc = -ENOMEM;
		goto out;
	}
	size_t nq = 0;
	for (size_t i = 0; i < p.quar.cap; i++) {
		const char *q = p.quar.key[i];
		if (!q || smap_has(&p.dests, q))
			continue;
		ssize_t tv = smap_get(&p.targets, q);
		if (smap_has(&p.targets, q)) {
			struct stat sb;
			if (tv < 0 || lstat(q, &sb) < 0 || sb.st_nlink > 1)
				continue;
			struct vault_version *v = malloc(sizeof(*v));
			int same = v && vault_store_get(store, p.v[tv].id, v) == 0 ? vault_restore_same(store, v, q) : -ENOMEM;
			free(v);
			if (same != 0)
				continue;
		}
		quarantine[nq++] = q;
	}
	if (p.nitems == 0 && nq == 0)
		goto out;   /* nothing of this incident is in the vault or left on disk */
	size_t kill_n = 0;
	const char *kn = getenv("WARD_TEST_RESTORE_KILL_AFTER");
	if (kn && *kn)
		kill_n = (size_t)strtoul(kn, NULL, 10);
	struct vault_restore_opts ro = {
		.dry_run = o->dry_run, .report = o->report, .quarantine = quarantine, .nquarantine = nq,
		.quarantine_dir = o->quarantine_dir,
		.after_each = kill_n ? kill_after : NULL, .hook_ctx = &kill_n,
	};
	rc = vault_restore_items(store, p.items, p.nitems, &ro, st);
out:
	free(quarantine);
	scan_free(&sc);
	plan_free(&p);
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
