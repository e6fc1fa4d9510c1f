/* engine.c: scoring.
 *
 * Indicators and their points (threshold 100 by default: any two strong signals):
 *   content.encrypted_in_place   40  a file that existed was rewritten with ciphertext
 *   content.encrypted_new        30  a new file full of ciphertext
 *   content.partial              40  head or stripes encrypted, rest plain (intermittent
 *                                    and partial encryption: LockFile, Babuk, ESXiArgs, PLAY)
 *   content.encoded              35  base64/hex ciphertext where data was
 *   content.locked_archive       30  an archive declaring its own password encryption
 *   format.broken                25  the extension promises a format the bytes no longer have
 *   rename.unknown_extension     15  renamed to an extension no known format uses
 *   rename.after_encryption      20  a file this actor just filled with ciphertext renamed
 *   delete.original              25  an original deleted after an encrypted copy of it was
 *                                    written (same directory, copy's name starts with it)
 *   note.repeated                40  the same new file name in 3 directories (+10 each
 *                                    further directory, at most 3 times)
 *   canary                     1000  a decoy file written, renamed or deleted
 * Every indicator counts once per file and actor. No indicator looks at particular names,
 * extensions or note texts: only at whether a format parses, whether an extension is one of
 * the real formats', and at repetition.
 *
 * Actors. Points go to the process and to each ancestor up to, not including, a process
 * whose parent is init (a service such as smbd or sshd: each of its children is a session,
 * and sessions are never merged) — so a shell loop around `openssl enc` adds up to the
 * shell. Points also go to the executable (a binary started anew for each file by cron or
 * xargs). The actor stopped is the lowest node that reaches the threshold. Scores decay
 * with a half-life (a slow attack still adds up; a single odd write fades). */
#include "detect/engine.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/content.h"
#include "detect/filetype.h"

#define NOTE_NAMES 16
#define RECENT 32

struct note {
	char name[128];
	uint32_t dirs;
	uint64_t dir_hash[8];
	uint8_t bonus;
};

struct recent {
	uint64_t path_hash;      /* a file this actor wrote or renamed */
	uint64_t dir_hash;
	char name[128];          /* its name, for delete.original */
	bool suspect;            /* its content looked encrypted */
	bool created;            /* this actor created it */
	uint32_t fired;          /* bit per indicator already counted for this file */
};

struct actor {
	struct actor *next;
	bool is_exe;             /* an executable-level actor (key = exe path hash) */
	pid_t pid;
	uint64_t start_ns;
	uint64_t key;
	pid_t ppid;
	uint32_t uid;
	char exe[WARD_EXE_MAX];
	char args[WARD_ARGS_MAX];
	uint16_t args_len;
	double score;
	uint64_t last_ns, first_ns;   /* last_ns: last scored event (decay) */
	uint64_t seen_ns;             /* last event of any kind */
	bool detected;
	int nev;
	struct evidence ev[ENGINE_MAX_EVIDENCE];
	int nfiles;
	uint32_t nfiles_total;
	char (*files)[WARD_PATH_MAX];
	uint64_t file_hash[ENGINE_MAX_FILES];
	struct recent recent[RECENT];
	int nrecent;
	struct note notes[NOTE_NAMES];
	pid_t contrib[64];
	int ncontrib;
};

struct engine {
	struct engine_cfg cfg;
	struct actor *tab[1024];
	size_t nactors;
	uint64_t *canary;        /* sorted hashes of canary paths */
	size_t ncanary, canary_cap;
	char **allow;
	int nallow, allow_cap;
	struct engine_stats st;
};

static uint64_t hash(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 1099511628211ull;
	}
	return h ? h : 1;
}

int engine_create(struct engine **out, const struct engine_cfg *cfg)
{
	struct engine *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->cfg = *cfg;
	if (e->cfg.threshold <= 0)
		e->cfg.threshold = 100;
	if (e->cfg.half_life_s <= 0)
		e->cfg.half_life_s = 600;
	for (int i = 0; i < cfg->nallow; i++)
		if (engine_allow_exe(e, cfg->allow_exe[i])) {
			engine_destroy(e);
			return -ENOMEM;
		}
	*out = e;
	return 0;
}

static void actor_free(struct actor *a)
{
	free(a->files);
	free(a);
}

void engine_destroy(struct engine *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < 1024; i++) {
		struct actor *a = e->tab[i];
		while (a) {
			struct actor *n = a->next;
			actor_free(a);
			a = n;
		}
	}
	for (int i = 0; i < e->nallow; i++)
		free(e->allow[i]);
	free(e->allow);
	free(e->canary);
	free(e);
}

int engine_allow_exe(struct engine *e, const char *exe)
{
	if (e->nallow == e->allow_cap) {
		int cap = e->allow_cap ? e->allow_cap * 2 : 8;
		char **n = realloc(e->allow, (size_t)cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		e->allow = n;
		e->allow_cap = cap;
	}
	e->allow[e->nallow] = strdup(exe);
	if (!e->allow[e->nallow])
		return -ENOMEM;
	e->nallow++;
	return 0;
}

static bool allowed(const struct engine *e, const char *exe)
{
	for (int i = 0; i < e->nallow; i++)
		if (strcmp(e->allow[i], exe) == 0)
			return true;
	return false;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int engine_add_canary(struct engine *e, const char *path)
{
	if (e->ncanary == e->canary_cap) {
		size_t cap = e->canary_cap ? e->canary_cap * 2 : 64;
		uint64_t *n = realloc(e->canary, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		e->canary = n;
		e->canary_cap = cap;
	}
	e->canary[e->ncanary++] = hash(path, strlen(path));
	qsort(e->canary, e->ncanary, sizeof(*e->canary), cmp_u64);
	return 0;
}

bool engine_is_canary(const struct engine *e, const char *path, size_t len)
{
	if (!e->ncanary)
		return false;
	uint64_t h = hash(path, len);
	return bsearch(&h, e->canary, e->ncanary, sizeof(h), cmp_u64) != NULL;
}

static uint64_t ts_ns(const struct timespec *t)
{
	return (uint64_t)t->tv_sec * 1000000000ull + (uint64_t)t->tv_nsec;
}

static struct actor *find_actor(struct engine *e, uint64_t key)
{
	for (struct actor *a = e->tab[key & 1023]; a; a = a->next)
		if (a->key == key)
			return a;
	return NULL;
}

static uint64_t proc_key(pid_t pid, uint64_t start_ns)
{
	uint64_t k[2] = {(uint64_t)pid, start_ns};
	return hash(k, sizeof(k));
}

static struct actor *get_actor(struct engine *e, const struct ward_proc *p, bool is_exe)
{
	uint64_t key = is_exe ? hash(p->exe, strlen(p->exe)) ^ 0x5eedull : proc_key(p->pid, p->start_ns);
	struct actor *a = find_actor(e, key);
	if (a)
		return a;
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->key = key;
	a->is_exe = is_exe;
	a->pid = p->pid;
	a->start_ns = p->start_ns;
	a->ppid = p->ppid;
	a->uid = p->uid;
	snprintf(a->exe, sizeof(a->exe), "%s", p->exe);
	memcpy(a->args, p->args, p->args_len);
	a->args_len = p->args_len;
	a->next = e->tab[key & 1023];
	e->tab[key & 1023] = a;
	e->nactors++;
	return a;
}

static void decay(struct engine *e, struct actor *a, uint64_t now)
{
	if (a->last_ns && now > a->last_ns && a->score > 0) {
		double dt = (double)(now - a->last_ns) / 1e9;
		a->score *= exp2(-dt / e->cfg.half_life_s);
	}
	a->last_ns = now;
}

static void add_file(struct actor *a, const char *path, size_t len)
{
	uint64_t h = hash(path, len);
	for (int i = 0; i < a->nfiles; i++)
		if (a->file_hash[i] == h)
			return;
	a->nfiles_total++;
	if (a->nfiles >= ENGINE_MAX_FILES)
		return;
	if (!a->files) {
		a->files = calloc(ENGINE_MAX_FILES, WARD_PATH_MAX);
		if (!a->files)
			return;
	}
	a->file_hash[a->nfiles] = h;
	memcpy(a->files[a->nfiles], path, len);
	a->files[a->nfiles][len] = '\0';
	a->nfiles++;
}

static void add_evidence(struct actor *a, const struct evidence *ev)
{
	if (a->nev < ENGINE_MAX_EVIDENCE)
		a->ev[a->nev++] = *ev;
	else /* keep the first ones (how it started) and the latest */
		a->ev[ENGINE_MAX_EVIDENCE - 1] = *ev;
}

static void fire(struct engine *e, struct actor *a, const struct detection *tmpl)
{
	struct detection *d = calloc(1, sizeof(*d));
	if (!d)
		return;
	*d = *tmpl;
	d->pid = a->pid;
	d->start_ns = a->start_ns;
	snprintf(d->exe, sizeof(d->exe), "%s", a->exe);
	memcpy(d->args, a->args, a->args_len);
	d->args_len = a->args_len;
	d->ppid = a->ppid;
	d->uid = a->uid;
	d->score = a->score;
	d->first_ns = a->first_ns;
	d->nevidence = a->nev;
	memcpy(d->evidence, a->ev, sizeof(a->ev));
	d->nfiles = a->nfiles;
	d->nfiles_total = a->nfiles_total;
	d->files = a->files;
	memcpy(d->contributors, a->contrib, sizeof(a->contrib));
	d->ncontributors = a->ncontrib;
	a->detected = true;
	e->st.detections++;
	e->cfg.on_detect(d, e->cfg.ctx);
	free(d);
}

static void add_contrib(struct actor *a, pid_t pid)
{
	for (int i = 0; i < a->ncontrib; i++)
		if (a->contrib[i] == pid)
			return;
	if (a->ncontrib < 64)
		a->contrib[a->ncontrib++] = pid;
}

/* The chain of actors that receive points: the process, its ancestors below the first
 * service (a process whose parent is init), and the executable. */
static int chain(struct engine *e, const struct ward_event *ev, struct actor **out, int cap,
		 const char **levels)
{
	int n = 0;
	const struct ward_proc *p = ev->proc;
	struct ward_proc copy;
	for (int depth = 0; p && n < cap - 1 && depth < 16; depth++) {
		if (p->pid <= 1 || (depth > 0 && p->ppid <= 1) || (depth > 0 && p->ppid == 2))
			break;
		struct actor *a = get_actor(e, p, false);
		if (!a)
			break;
		out[n] = a;
		levels[n] = depth ? "tree" : "process";
		n++;
		if (!e->cfg.lookup || p->ppid <= 1)
			break;
		const struct ward_proc *pp = e->cfg.lookup(e->cfg.lookup_ctx, p->ppid);
		if (!pp || !pp->known)
			break;
		copy = *pp; /* the lookup's record is only valid until its next call */
		p = &copy;
	}
	if (ev->proc->known && ev->proc->exe[0] && n < cap) {
		struct actor *x = get_actor(e, ev->proc, true);
		if (x) {
			levels[n] = "executable";
			out[n++] = x;
		}
	}
	return n;
}

static struct recent *recent_for(struct actor *a, uint64_t ph, bool create)
{
	for (int i = 0; i < a->nrecent; i++)
		if (a->recent[i].path_hash == ph)
			return &a->recent[i];
	if (!create)
		return NULL;
	struct recent *r = &a->recent[a->nrecent < RECENT ? a->nrecent++ : (int)(ph % RECENT)];
	memset(r, 0, sizeof(*r));
	r->path_hash = ph;
	return r;
}

enum ind {
	IND_ENC_INPLACE, IND_ENC_NEW, IND_PARTIAL, IND_ENCODED, IND_LOCKED, IND_FORMAT,
	IND_RENAME_EXT, IND_RENAME_AFTER, IND_DELETE_ORIG, IND_NOTE, IND_CANARY
};
static const struct {
	const char *name;
	uint16_t points;
} ind_tab[] = {
	[IND_ENC_INPLACE] = {"content.encrypted_in_place", 40},
	[IND_ENC_NEW] = {"content.encrypted_new", 30},
	[IND_PARTIAL] = {"content.partial", 40},
	[IND_ENCODED] = {"content.encoded", 35},
	[IND_LOCKED] = {"content.locked_archive", 30},
	[IND_FORMAT] = {"format.broken", 25},
	[IND_RENAME_EXT] = {"rename.unknown_extension", 15},
	[IND_RENAME_AFTER] = {"rename.after_encryption", 20},
	[IND_DELETE_ORIG] = {"delete.original", 25},
	[IND_NOTE] = {"note.repeated", 40},
	[IND_CANARY] = {"canary", 1000},
};

struct pending {
	struct evidence ev[8];
	int n;
};

static void hit(struct pending *pd, enum ind i, const struct ward_event *ev, const char *detail,
		uint16_t points)
{
	if (pd->n >= 8)
		return;
	struct evidence *x = &pd->ev[pd->n++];
	memset(x, 0, sizeof(*x));
	x->t_ns = ts_ns(&ev->ts);
	x->points = points ? points : ind_tab[i].points;
	snprintf(x->indicator, sizeof(x->indicator), "%s", ind_tab[i].name);
	snprintf(x->detail, sizeof(x->detail), "%s", detail);
	size_t l = ev->path_len < sizeof(x->path) - 1 ? ev->path_len : sizeof(x->path) - 1;
	memcpy(x->path, ev->path, l);
	x->path[l] = '\0';
}

static const char *ext_of(const char *path, size_t len, size_t *el)
{
	const char *slash = memrchr(path, '/', len);
	const char *name = slash ? slash + 1 : path;
	size_t nl = len - (size_t)(name - path);
	const char *dot = memrchr(name, '.', nl);
	if (!dot || dot == name) {
		*el = 0;
		return "";
	}
	*el = nl - (size_t)(dot + 1 - name);
	return dot + 1;
}

static void split(const char *path, size_t len, uint64_t *dir_hash, const char **name, size_t *nl)
{
	const char *slash = memrchr(path, '/', len);
	size_t dl = slash ? (size_t)(slash - path) : 0;
	*dir_hash = hash(path, dl);
	*name = slash ? slash + 1 : path;
	*nl = len - (size_t)(*name - path);
}

/* Indicators of one event, judged on the process-level actor (a: per-file memory). */
static void indicators(struct engine *e, struct actor *a, const struct ward_event *ev, struct pending *pd)
{
	uint64_t ph = hash(ev->path, ev->path_len), dh;
	const char *name;
	size_t nl;
	split(ev->path, ev->path_len, &dh, &name, &nl);

	if (engine_is_canary(e, ev->path, ev->path_len) ||
	    (ev->op == WOP_RENAME && engine_is_canary(e, ev->old_path, ev->old_path_len))) {
		if (ev->op == WOP_MODIFY || ev->op == WOP_CLOSE_WRITE || ev->op == WOP_RENAME ||
		    ev->op == WOP_DELETE) {
			e->st.canary_hits++;
			hit(pd, IND_CANARY, ev, ward_op_name(ev->op), 0);
		}
		return;
	}

	switch (ev->op) {
	case WOP_CREATE: {
		struct recent *r = recent_for(a, ph, true);
		r->created = true;
		r->dir_hash = dh;
		snprintf(r->name, sizeof(r->name), "%.*s", (int)nl, name);
		/* the same new name in several directories: a note left in each */
		struct note *free_slot = NULL;
		for (int i = 0; i < NOTE_NAMES; i++) {
			struct note *n = &a->notes[i];
			if (!n->dirs) {
				if (!free_slot)
					free_slot = n;
				continue;
			}
			if (strlen(n->name) == nl && memcmp(n->name, name, nl) == 0) {
				for (uint32_t k = 0; k < n->dirs && k < 8; k++)
					if (n->dir_hash[k] == dh)
						return;
				if (n->dirs < 8)
					n->dir_hash[n->dirs] = dh;
				n->dirs++;
				if (n->dirs == 3)
					hit(pd, IND_NOTE, ev, "same new file name in 3 directories", 0);
				else if (n->dirs > 3 && n->bonus < 3) {
					n->bonus++;
					hit(pd, IND_NOTE, ev, "same new file name in one more directory", 10);
				}
				return;
			}
		}
		if (free_slot && nl < sizeof(free_slot->name)) {
			memcpy(free_slot->name, name, nl);
			free_slot->name[nl] = '\0';
			free_slot->dirs = 1;
			free_slot->dir_hash[0] = dh;
		}
		break;
	}
	case WOP_CLOSE_WRITE: {
		if (!ev->content.valid)
			break;
		struct recent *r = recent_for(a, ph, true);
		r->dir_hash = dh;
		snprintf(r->name, sizeof(r->name), "%.*s", (int)nl, name);
		enum content_verdict v = content_verdict(&ev->content);
		enum ind i = IND_ENC_INPLACE;
		switch (v) {
		case CONTENT_ENCRYPTED:
			i = r->created ? IND_ENC_NEW : IND_ENC_INPLACE;
			break;
		case CONTENT_PARTIAL:
			i = IND_PARTIAL;
			break;
		case CONTENT_ENCODED:
			i = IND_ENCODED;
			break;
		case CONTENT_LOCKED_ARCHIVE:
			i = IND_LOCKED;
			break;
		default:
			return;
		}
		r->suspect = true;
		if (!(r->fired & (1u << i))) {
			r->fired |= 1u << i;
			hit(pd, i, ev, content_verdict_name(v), 0);
		}
		int want = content_type_for_name(ev->path, ev->path_len);
		if (want != FILETYPE_UNKNOWN && want != ev->content.type && !(r->fired & (1u << IND_FORMAT))) {
			r->fired |= 1u << IND_FORMAT;
			char d[96];
			snprintf(d, sizeof(d), "named as %s, content is %s", filetype_name(want),
				 filetype_name(ev->content.type));
			hit(pd, IND_FORMAT, ev, d, 0);
		}
		break;
	}
	case WOP_RENAME: {
		if (ev->is_dir)
			break;
		uint64_t oh = hash(ev->old_path, ev->old_path_len);
		struct recent *old = recent_for(a, oh, false);
		struct recent *r = recent_for(a, ph, true);
		if (old && old != r) {
			r->suspect = old->suspect;
			r->created = old->created;
			r->fired = old->fired;
		}
		r->dir_hash = dh;
		snprintf(r->name, sizeof(r->name), "%.*s", (int)nl, name);
		size_t ol, nle;
		const char *oe = ext_of(ev->old_path, ev->old_path_len, &ol);
		const char *ne = ext_of(ev->path, ev->path_len, &nle);
		bool changed = ol != nle || strncmp(oe, ne, ol) != 0;
		/* a new extension that no known format uses (editors' temp-file dances rename
		 * *to* a real extension, and are not counted) */
		if (changed && nle > 0 && content_type_for_name(ev->path, ev->path_len) == FILETYPE_UNKNOWN &&
		    !(r->fired & (1u << IND_RENAME_EXT))) {
			r->fired |= 1u << IND_RENAME_EXT;
			hit(pd, IND_RENAME_EXT, ev, "renamed to an extension no known format uses", 0);
		}
		if (r->suspect && !(r->fired & (1u << IND_RENAME_AFTER))) {
			r->fired |= 1u << IND_RENAME_AFTER;
			hit(pd, IND_RENAME_AFTER, ev, "renamed after being filled with ciphertext", 0);
		}
		break;
	}
	case WOP_DELETE: {
		/* an original removed after an encrypted copy of it appeared next to it */
		for (int i = 0; i < a->nrecent; i++) {
			struct recent *r = &a->recent[i];
			if (r->suspect && r->created && r->dir_hash == dh && r->path_hash != ph &&
			    strlen(r->name) > nl && strncmp(r->name, name, nl) == 0) {
				hit(pd, IND_DELETE_ORIG, ev, "original deleted after an encrypted copy was written", 0);
				break;
			}
		}
		break;
	}
	default:
		break;
	}
}

void engine_event(struct engine *e, const struct ward_event *ev)
{
	e->st.events++;
	if (ev->op == WOP_OVERFLOW || ev->op == WOP_MKDIR || ev->op == WOP_RMDIR || ev->op == WOP_MODIFY)
		return;
	const struct ward_proc *p = ev->proc;
	if (p->known && allowed(e, p->exe))
		return;

	struct actor *nodes[18];
	const char *levels[18];
	int n = chain(e, ev, nodes, 18, levels);
	if (n == 0)
		return;
	uint64_t now = ts_ns(&ev->ts);
	for (int i = 0; i < n; i++)
		nodes[i]->seen_ns = now;
	if (nodes[0]->detected)
		return; /* already being handled; its remaining queued events change nothing */

	struct pending pd = {.n = 0};
	indicators(e, nodes[0], ev, &pd);

	/* what every node remembers of the files, for the incident and for restore */
	if (ev->op == WOP_CLOSE_WRITE || ev->op == WOP_RENAME || ev->op == WOP_DELETE || ev->op == WOP_CREATE)
		for (int i = 0; i < n; i++) {
			add_file(nodes[i], ev->path, ev->path_len);
			if (ev->op == WOP_RENAME)
				add_file(nodes[i], ev->old_path, ev->old_path_len);
		}
	if (pd.n == 0)
		return;
	e->st.scored++;

	uint32_t points = 0;
	for (int k = 0; k < pd.n; k++)
		points += pd.ev[k].points;
	for (int i = 0; i < n; i++) {
		struct actor *a = nodes[i];
		decay(e, a, now);
		if (!a->first_ns)
			a->first_ns = now;
		a->score += points;
		for (int k = 0; k < pd.n; k++)
			add_evidence(a, &pd.ev[k]);
		add_contrib(a, p->pid);
	}
	/* the lowest node over the threshold is the actor */
	for (int i = 0; i < n; i++) {
		struct actor *a = nodes[i];
		if (a->score >= e->cfg.threshold && !a->detected) {
			struct detection d = {.last_ns = now, .level = levels[i]};
			fire(e, a, &d);
			/* One attack, one incident: what the chain had scored is used up. The
			 * actor stays marked, so its still-queued events change nothing. */
			for (int j = 0; j < n; j++) {
				nodes[j]->score = 0;
				nodes[j]->nev = 0;
			}
			break;
		}
	}
}

void engine_expire(struct engine *e, uint64_t now)
{
	/* Scored actors are kept for 4 half-lives (less than 1/16 of their score left),
	 * others for a minute after their last event; detected ones until their events stop. */
	uint64_t scored_idle = (uint64_t)(e->cfg.half_life_s * 4 * 1e9), idle = 60ull * 1000000000ull;
	for (size_t i = 0; i < 1024; i++) {
		struct actor **pp = &e->tab[i];
		while (*pp) {
			struct actor *a = *pp;
			uint64_t keep = a->score > 0 ? scored_idle : idle;
			if (a->seen_ns + keep < now) {
				*pp = a->next;
				actor_free(a);
				e->nactors--;
			} else {
				pp = &a->next;
			}
		}
	}
}

void engine_stats(const struct engine *e, struct engine_stats *out)
{
	*out = e->st;
	out->actors = e->nactors;
}
