/* engine.c: scoring.
 *
 * Indicators and their points (threshold 100 by default: two files destroyed, or one with
 * every sign of it):
 *   content.encrypted_in_place   40  a file that existed was rewritten with ciphertext, or a
 *                                    new file of ciphertext was renamed onto a name whose
 *                                    format it does not have (write a temp, mv over)
 *   content.partial              40  an existing file's head or stripes encrypted, the rest
 *                                    plain (intermittent and partial encryption: LockFile,
 *                                    Babuk, ESXiArgs, PLAY); also the head of a large file
 *                                    (> 64 KiB) found encrypted while it is still being
 *                                    written (looked at on its second MODIFY event)
 *   content.encoded              40  an existing file rewritten as base64/hex ciphertext
 *   content.locked_archive       30  an existing file rewritten as an archive that declares
 *                                    its own password encryption (10 for a new one, counted
 *                                    with encrypted_new)
 *   content.encrypted_new        10  a new file of ciphertext; at most 3 new ciphertext
 *                                    files count per session in 10 minutes: copying
 *                                    encrypted backups around is ordinary work
 *   format.broken                25  ciphertext in a file whose name (or the name it had
 *                                    before a rename to an unknown extension) promises a
 *                                    format the bytes no longer have
 *   rename.unknown_extension     15  a file of ciphertext renamed to an extension that no
 *                                    known format uses and its old name did not have (also
 *                                    when the rename came first and the ciphertext after)
 *   rename.after_encryption      20  a file of ciphertext renamed to a name that is not part
 *                                    of its old name (an atomic save renames a temp file
 *                                    onto the name it was derived from: not counted)
 *   delete.original              45  a file deleted after a ciphertext copy of it was
 *                                    written next to it (same directory and user, the
 *                                    copy's name starts with the deleted name or its stem,
 *                                    within 60 s)
 *   rate.files                   20  each further file destroyed (the four content
 *                                    indicators above on an existing file, or
 *                                    delete.original) by the same session within 60 s
 *   note.repeated                40  a new text file of the same name and size written into
 *                                    3 directories that existed before, within 10 minutes
 *                                    (+30 for each further one, at most 3 times);
 *                                    directories made in the last 10 minutes do not count,
 *                                    so copying a tree (cp -r, rsync, tar x, git checkout)
 *                                    adds nothing
 *   canary                     1000  a decoy file written, renamed or deleted
 * Every indicator counts once per file (rate.files and note.repeated once per file and
 * directory). No indicator looks at particular names, extensions or note texts: only at
 * whether a format parses, whether an extension is one of the real formats', whether one
 * name is part of another, and at repetition. A destroyed file (the four content indicators
 * on an existing file, delete.original) and a repeated note are strong: on_suspect is
 * called for the process each time one fires below the threshold (and at a note name's
 * second sighting, which scores nothing), so that a daemon may pause it while its queued
 * events are judged.
 *
 * Memory. What the engine knows of a file (created when, ciphertext or not, what its name
 * promised) is kept per path, for every process: in a shell loop `openssl enc` writes the
 * copy and `rm` deletes the original, and the indicator lands on the tree both belong to.
 *
 * Actors. Points go to the process and to each ancestor up to, not including, a process
 * whose parent is init (a service such as smbd or sshd: each of its children is a session,
 * and sessions are never merged; but an orphan still in a login session's cgroup scope,
 * such as a `nohup` script, is an ancestor like any other) — so a shell loop around
 * `openssl enc` adds up to the shell. The highest of those ancestors is the session: it keeps what is counted across
 * processes (notes, the rate, the cap on new ciphertext files). Points also go to the
 * executable (a binary started anew for each file by cron or xargs), except for a service's
 * own workers (smbd children). The actor stopped is the lowest node that reaches the
 * threshold, or the highest of its ancestors running the same executable (a program that
 * forks a worker per file is one actor). When the actor is a single process, its parent
 * keeps its score: a shell that starts one encryptor per file is stopped by the next one's
 * first indicator. Scores decay with a half-life, starting a minute after the last scored
 * event (a burst adds up in full, a slow attack still adds up, a single odd write fades). */
#include "detect/engine.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/allow.h"
#include "detect/content.h"
#include "detect/filetype.h"

#define SEC 1000000000ull
#define WINDOW_NS (60 * SEC)        /* "recent": creation, copies, the destruction rate */
#define DIR_FRESH_NS (600 * SEC)    /* a directory made this recently holds no notes */
#define NEW_WINDOW_NS (600 * SEC)
#define NEW_CAP 3                   /* new ciphertext files that count per session */
#define EXE_QUIET_NS (10 * SEC)     /* an executable-level actor ignores events after firing */
#define DECAY_HOLD_NS (60 * SEC)
#define NOTE_NAMES 16
#define NOTE_DIRS 8
#define NOTE_BONUS_MAX 3
#define COPIES 64

#define FMEM_SETS 1024u
#define FMEM_WAYS 4u
#define DMEM_SETS 1024u
#define DMEM_WAYS 4u

enum ind {
	IND_ENC_INPLACE, IND_PARTIAL, IND_ENCODED, IND_LOCKED, IND_ENC_NEW, IND_FORMAT,
	IND_RENAME_EXT, IND_RENAME_AFTER, IND_DELETE_ORIG, IND_RATE, IND_NOTE, IND_CANARY,
	IND__COUNT
};
static const struct {
	const char *name;
	uint16_t points;
} ind_tab[IND__COUNT] = {
	[IND_ENC_INPLACE] = {"content.encrypted_in_place", 40},
	[IND_PARTIAL] = {"content.partial", 40},
	[IND_ENCODED] = {"content.encoded", 40},
	[IND_LOCKED] = {"content.locked_archive", 30},
	[IND_ENC_NEW] = {"content.encrypted_new", 10},
	[IND_FORMAT] = {"format.broken", 25},
	[IND_RENAME_EXT] = {"rename.unknown_extension", 15},
	[IND_RENAME_AFTER] = {"rename.after_encryption", 20},
	[IND_DELETE_ORIG] = {"delete.original", 45},
	[IND_RATE] = {"rate.files", 20},
	[IND_NOTE] = {"note.repeated", 40},
	[IND_CANARY] = {"canary", 1000},
};
#define NOTE_MORE_POINTS 30
#define LOCKED_NEW_POINTS 10

/* What the engine remembers of a file it saw created, written or renamed. */
struct fmem {
	uint64_t path_hash;      /* 0: free slot */
	uint64_t t_ns;           /* last event on it */
	uint64_t created_ns;     /* when a CREATE was seen; 0: the file existed before */
	uint32_t fired;          /* bit per indicator already counted for this file */
	uint8_t want;            /* enum filetype_id its (original) name promised */
	uint8_t got;             /* enum filetype_id of its content at the last close */
	bool suspect;            /* its content looked encrypted at the last close */
	bool renamed_ext;        /* renamed to an unknown extension, content not judged since */
	bool head_checked;       /* its head was judged while being written (since the last close) */
	uint8_t modifies;        /* MODIFY events since the last close */
};
#define CONTENT_BITS ((1u << IND_ENC_INPLACE) | (1u << IND_PARTIAL) | (1u << IND_ENCODED) | (1u << IND_LOCKED))

/* A directory seen made (mkdir) recently. */
struct dmem {
	uint64_t hash;
	uint64_t t_ns;
};

/* A new file of ciphertext: the copy whose original may be deleted next. */
struct copy {
	uint64_t dir_hash;
	uint64_t t_ns;           /* 0: free or used up */
	uint32_t uid;
	uint16_t nl;
	char name[256];
};

/* A new file name seen in several existing directories. */
struct note {
	uint64_t name_hash;      /* 0: free */
	uint64_t first_ns;       /* the first directory: repetition counts within NEW_WINDOW_NS */
	int64_t size;
	uint32_t ndirs;
	uint8_t bonus;
	uint64_t dirs[NOTE_DIRS];
};

struct actor {
	struct actor *next;
	uint64_t key;
	bool is_exe;             /* an executable-level actor (key = exe path hash) */
	bool detected;           /* fired: its still-queued events change nothing */
	pid_t pid;
	uint64_t start_ns;
	pid_t ppid;
	uint32_t uid;
	char exe[WARD_EXE_MAX];
	char args[WARD_ARGS_MAX];
	uint16_t args_len;
	double score;
	uint64_t last_ns, first_ns;   /* last_ns: last scored event (decay) */
	uint64_t seen_ns;             /* last event of any kind */
	uint64_t quiet_until;         /* executable actors: ignore events until then */
	int nev;
	int nfiles, files_cap;
	uint32_t nfiles_total;
	char **files;
	uint64_t *file_hash;
	pid_t contrib[64];
	int ncontrib;
	/* session state, used on the highest node of a chain */
	struct note *notes;           /* NOTE_NAMES, allocated on the first new file */
	uint64_t last_destroy_ns;
	uint64_t new_since_ns;
	uint32_t nnew;
	struct evidence ev[ENGINE_MAX_EVIDENCE];  /* last: a recycled actor clears what is before */
};

/* Actors are recycled through a free list made at engine_create: on some VMs a page fault
 * costs 50-100 us, and the actors an attack creates must not pay for fresh memory. */
#define ACTOR_POOL 64
#define ACTOR_FREE_MAX 256

struct engine {
	struct engine_cfg cfg;
	struct actor *tab[1024];
	size_t nactors;
	struct actor *free_actors;
	size_t nfree;
	uint64_t *canary;        /* sorted hashes of canary paths */
	size_t ncanary, canary_cap;
	struct allow_entry *allow;
	int nallow, allow_cap;
	struct fmem *fmem;       /* FMEM_SETS * FMEM_WAYS */
	struct dmem *dmem;       /* DMEM_SETS * DMEM_WAYS */
	struct copy copies[COPIES];
	unsigned copy_next;
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
	/* Touched now, not on the first events of an attack: a page fault costs tens of
	 * microseconds on some VMs, and the first events are the ones that must be fast. */
	e->fmem = malloc(sizeof(*e->fmem) * FMEM_SETS * FMEM_WAYS);
	e->dmem = malloc(sizeof(*e->dmem) * DMEM_SETS * DMEM_WAYS);
	if (!e->fmem || !e->dmem) {
		engine_destroy(e);
		return -ENOMEM;
	}
	memset(e->fmem, 0, sizeof(*e->fmem) * FMEM_SETS * FMEM_WAYS);
	memset(e->dmem, 0, sizeof(*e->dmem) * DMEM_SETS * DMEM_WAYS);
	for (int i = 0; i < ACTOR_POOL; i++) {
		struct actor *a = calloc(1, sizeof(*a));
		if (!a)
			break;
		for (size_t o = 0; o < sizeof(*a); o += 2048) /* calloc may leave pages unmapped */
			((volatile char *)a)[o] = 0;
		a->next = e->free_actors;
		e->free_actors = a;
		e->nfree++;
	}
	content_warm();
	for (int i = 0; i < cfg->nallow; i++)
		if (engine_allow_exe(e, cfg->allow_exe[i])) {
			engine_destroy(e);
			return -EINVAL;
		}
	*out = e;
	return 0;
}

static void actor_free(struct engine *e, struct actor *a)
{
	for (int i = 0; i < a->nfiles; i++)
		free(a->files[i]);
	free(a->files);
	free(a->file_hash);
	free(a->notes);
	if (e && e->nfree < ACTOR_FREE_MAX) {
		a->next = e->free_actors;
		e->free_actors = a;
		e->nfree++;
	} else {
		free(a);
	}
}

static struct actor *actor_alloc(struct engine *e)
{
	struct actor *a = e->free_actors;
	if (!a)
		return calloc(1, sizeof(*a));
	e->free_actors = a->next;
	e->nfree--;
	memset(a, 0, offsetof(struct actor, ev)); /* the evidence array is overwritten as used */
	return a;
}

void engine_destroy(struct engine *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < 1024; i++) {
		struct actor *a = e->tab[i];
		while (a) {
			struct actor *n = a->next;
			actor_free(NULL, a);
			a = n;
		}
	}
	while (e->free_actors) {
		struct actor *n = e->free_actors->next;
		free(e->free_actors);
		e->free_actors = n;
	}
	free(e->allow);
	free(e->canary);
	free(e->fmem);
	free(e->dmem);
	free(e);
}

int engine_allow_exe(struct engine *e, const char *entry)
{
	struct allow_entry a;
	char err[256];
	if (allow_parse(entry, &a, err, sizeof(err)))
		return -EINVAL;
	if (e->nallow == e->allow_cap) {
		int cap = e->allow_cap ? e->allow_cap * 2 : 8;
		struct allow_entry *n = realloc(e->allow, (size_t)cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		e->allow = n;
		e->allow_cap = cap;
	}
	e->allow[e->nallow++] = a;
	return 0;
}

void engine_allow_clear(struct engine *e)
{
	e->nallow = 0;
}

void engine_set_tuning(struct engine *e, double threshold, double half_life_s)
{
	/* scores already held are kept: they decay with the new half-life from now on */
	e->cfg.threshold = threshold > 0 ? threshold : 100;
	e->cfg.half_life_s = half_life_s > 0 ? half_life_s : 600;
}

/* An entry with a hash trusts the path only while the running program's content matches
 * (a binary replaced in place is not trusted); without a hash callback it trusts nothing. */
static bool allowed(const struct engine *e, const struct ward_proc *p)
{
	for (int i = 0; i < e->nallow; i++) {
		const struct allow_entry *a = &e->allow[i];
		if (strcmp(a->path, p->exe))
			continue;
		if (!a->has_hash)
			return true;
		uint8_t h[32];
		if (e->cfg.exe_sha256 && e->cfg.exe_sha256(e->cfg.ctx, p, h) == 0 && !memcmp(h, a->sha256, 32))
			return true;
	}
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
	return (uint64_t)t->tv_sec * SEC + (uint64_t)t->tv_nsec;
}

/* ---- file and directory memory (set-associative: an old entry makes room) ---- */

static struct fmem *fmem_find(struct engine *e, uint64_t h)
{
	struct fmem *set = &e->fmem[(h % FMEM_SETS) * FMEM_WAYS];
	for (unsigned i = 0; i < FMEM_WAYS; i++)
		if (set[i].path_hash == h)
			return &set[i];
	return NULL;
}

/* The entry for h, made (as a file that existed before, named path) when absent. */
static struct fmem *fmem_get(struct engine *e, uint64_t h, const char *path, size_t len, uint64_t now)
{
	struct fmem *f = fmem_find(e, h);
	if (f)
		return f;
	struct fmem *set = &e->fmem[(h % FMEM_SETS) * FMEM_WAYS];
	f = &set[0];
	for (unsigned i = 1; i < FMEM_WAYS && f->path_hash; i++)
		if (!set[i].path_hash || set[i].t_ns < f->t_ns)
			f = &set[i];
	memset(f, 0, sizeof(*f));
	f->path_hash = h;
	f->t_ns = now;
	f->want = (uint8_t)content_type_for_name(path, len);
	return f;
}

static void dmem_add(struct engine *e, uint64_t h, uint64_t now)
{
	struct dmem *set = &e->dmem[(h % DMEM_SETS) * DMEM_WAYS], *d = &set[0];
	for (unsigned i = 0; i < DMEM_WAYS; i++) {
		if (set[i].hash == h) {
			d = &set[i];
			break;
		}
		if (set[i].t_ns < d->t_ns)
			d = &set[i];
	}
	d->hash = h;
	d->t_ns = now;
}

static bool dir_fresh(const struct engine *e, uint64_t h, uint64_t now)
{
	const struct dmem *set = &e->dmem[(h % DMEM_SETS) * DMEM_WAYS];
	for (unsigned i = 0; i < DMEM_WAYS; i++)
		if (set[i].hash == h)
			return set[i].t_ns + DIR_FRESH_NS > now;
	return false;
}

/* ---- actors ---- */

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
	a = actor_alloc(e);
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

void engine_forgive(struct engine *e, pid_t pid)
{
	/* `ward allow`: the alarm was false, so what the process and its ancestors scored
	 * from it must not count against them later (a parent keeps a single process's score,
	 * see "Actors" above: an administrator's shell would be the next actor) */
	const struct ward_proc *p = e->cfg.lookup ? e->cfg.lookup(e->cfg.lookup_ctx, pid) : NULL;
	for (int depth = 0; p && p->known && p->pid > 1 && depth < 16; depth++) {
		struct actor *a = find_actor(e, proc_key(p->pid, p->start_ns));
		if (a) {
			a->score = 0;
			a->nev = 0;
			a->first_ns = 0;
		}
		if (depth == 0 && p->exe[0] && (a = find_actor(e, hash(p->exe, strlen(p->exe)) ^ 0x5eedull))) {
			a->score = 0;
			a->nev = 0;
			a->first_ns = 0;
		}
		pid_t pp = p->ppid;
		p = pp > 1 ? e->cfg.lookup(e->cfg.lookup_ctx, pp) : NULL;
	}
}

/* Scores decay with the half-life, from DECAY_HOLD_NS after the last scored event on: what
 * one burst of activity scores adds up in full, a single odd write fades over minutes. */
static void decay(struct engine *e, struct actor *a, uint64_t now)
{
	if (a->last_ns && now > a->last_ns + DECAY_HOLD_NS && a->score > 0) {
		double dt = (double)(now - a->last_ns - DECAY_HOLD_NS) / 1e9;
		a->score *= exp2(-dt / e->cfg.half_life_s);
	}
	a->last_ns = now;
}

static void add_file(struct actor *a, const char *path, size_t len, uint64_t h)
{
	for (int i = a->nfiles - 1; i >= 0; i--)
		if (a->file_hash[i] == h)
			return;
	a->nfiles_total++;
	if (a->nfiles >= ENGINE_MAX_FILES)
		return;
	if (a->nfiles == a->files_cap) {
		int cap = a->files_cap ? a->files_cap * 4 : 16;
		if (cap > ENGINE_MAX_FILES)
			cap = ENGINE_MAX_FILES;
		char **f = realloc(a->files, (size_t)cap * sizeof(*f));
		if (!f)
			return;
		a->files = f;
		uint64_t *fh = realloc(a->file_hash, (size_t)cap * sizeof(*fh));
		if (!fh)
			return;
		a->file_hash = fh;
		a->files_cap = cap;
	}
	char *s = malloc(len + 1);
	if (!s)
		return;
	memcpy(s, path, len);
	s[len] = '\0';
	a->file_hash[a->nfiles] = h;
	a->files[a->nfiles++] = s;
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
	if (d->nevidence)
		memcpy(d->evidence, a->ev, sizeof(*a->ev) * (size_t)d->nevidence);
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

#define CHAIN_MAX 18

/* A child of init is a service (its children are sessions, never merged) unless systemd
 * says it belongs to a login session: a script started with nohup or setsid and orphaned
 * is reparented to init but stays in its session's scope, and its children are its own. */
static bool is_service(const struct ward_proc *p)
{
	const char *scope = strstr(p->cgroup, "/session-");
	return !(scope && strstr(scope, ".scope"));
}

/* The chain of actors that receive points: the process, its ancestors below the first
 * service (a process whose parent is init), and the executable. *ntree: how many of them
 * are processes (the last of those is the session). */
static int chain(struct engine *e, const struct ward_event *ev, struct actor **out, const char **levels,
		 int *ntree)
{
	int n = 0;
	const struct ward_proc *p = ev->proc;
	struct ward_proc copy;
	bool worker = false; /* a service's own child (smbd, sshd-session): never merged by executable */
	for (int depth = 0; p && n < CHAIN_MAX - 1 && depth < 16; depth++) {
		if (p->pid <= 1 || (depth > 0 && p->ppid == 2) || (depth > 0 && p->ppid <= 1 && is_service(p))) {
			worker = depth > 0 && p->ppid <= 1 && strcmp(p->exe, ev->proc->exe) == 0;
			break;
		}
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
	*ntree = n;
	if (ev->proc->known && ev->proc->exe[0] && !worker && n < CHAIN_MAX) {
		struct actor *x = get_actor(e, ev->proc, true);
		if (x) {
			levels[n] = "executable";
			out[n++] = x;
		}
	}
	return n;
}

/* ---- indicators ---- */

struct pending {
	struct evidence ev[8];
	int n;
	bool strong;             /* a file's content was destroyed */
	bool early;              /* no points yet, but worth a pause (a name's second sighting) */
	struct evidence early_ev;
};

static void hit(struct pending *pd, enum ind i, const char *path, size_t len, uint64_t now,
		const char *detail, uint16_t points)
{
	if (pd->n >= 8)
		return;
	struct evidence *x = &pd->ev[pd->n++];
	x->t_ns = now;
	x->points = points ? points : ind_tab[i].points;
	snprintf(x->indicator, sizeof(x->indicator), "%s", ind_tab[i].name);
	snprintf(x->detail, sizeof(x->detail), "%s", detail);
	size_t l = len < sizeof(x->path) - 1 ? len : sizeof(x->path) - 1;
	memcpy(x->path, path, l);
	x->path[l] = '\0';
}

/* Fires indicator i for file f unless it already counted for it. */
static void hit_once(struct pending *pd, struct fmem *f, enum ind i, const struct ward_event *ev,
		     uint64_t now, const char *detail)
{
	if (f->fired & (1u << i))
		return;
	f->fired |= 1u << i;
	hit(pd, i, ev->path, ev->path_len, now, detail, 0);
}

static void split(const char *path, size_t len, uint64_t *dir_hash, const char **name, size_t *nl)
{
	const char *slash = memrchr(path, '/', len);
	size_t dl = slash ? (size_t)(slash - path) : 0;
	*dir_hash = hash(path, dl);
	*name = slash ? slash + 1 : path;
	*nl = len - (size_t)(*name - path);
}

static const char *ext_of(const char *name, size_t nl, size_t *el)
{
	const char *dot = memrchr(name, '.', nl);
	if (!dot || dot == name) {
		*el = 0;
		return "";
	}
	*el = nl - (size_t)(dot + 1 - name);
	return dot + 1;
}

static bool contains(const char *hay, size_t hl, const char *needle, size_t nl)
{
	return nl <= hl && memmem(hay, hl, needle, nl) != NULL;
}

/* A file's content destroyed by the session: the rate indicator counts the further ones. */
static void destroyed(struct actor *s, struct pending *pd, const struct ward_event *ev, uint64_t now)
{
	pd->strong = true;
	if (s->last_destroy_ns && now - s->last_destroy_ns < WINDOW_NS)
		hit(pd, IND_RATE, ev->path, ev->path_len, now, "another file destroyed by the same session within 60 s", 0);
	s->last_destroy_ns = now;
}

/* A new file named name in directory dh, written with size bytes: a note if the same name
 * and size arrive in several directories that were there before. */
static void note_check(struct engine *e, struct actor *s, const struct ward_event *ev, uint64_t dh,
		       const char *name, size_t nl, uint64_t now, struct pending *pd)
{
	/* a note is written to be read: text or HTML (Finder's .DS_Store, Explorer's Thumbs.db
	 * appear in every folder a file browser opens, and are binary) */
	if (ev->size <= 0 || !filetype_is_text(ev->content.type) || dir_fresh(e, dh, now))
		return;
	if (!s->notes && !(s->notes = calloc(NOTE_NAMES, sizeof(*s->notes))))
		return;
	uint64_t nh = hash(name, nl);
	struct note *n = NULL, *victim = &s->notes[0];
	for (int i = 0; i < NOTE_NAMES; i++) {
		if (s->notes[i].name_hash && now - s->notes[i].first_ns > NEW_WINDOW_NS)
			memset(&s->notes[i], 0, sizeof(s->notes[i])); /* an old sighting */
		if (s->notes[i].name_hash == nh && s->notes[i].size == ev->size) {
			n = &s->notes[i];
			break;
		}
		if (s->notes[i].ndirs < victim->ndirs)
			victim = &s->notes[i];
	}
	if (!n) {
		if (victim->ndirs >= 3)
			return; /* keep names already repeated */
		memset(victim, 0, sizeof(*victim));
		victim->name_hash = nh;
		victim->first_ns = now;
		victim->size = ev->size;
		victim->dirs[0] = dh;
		victim->ndirs = 1;
		return;
	}
	for (uint32_t k = 0; k < n->ndirs && k < NOTE_DIRS; k++)
		if (n->dirs[k] == dh)
			return;
	if (n->ndirs < NOTE_DIRS)
		n->dirs[n->ndirs] = dh;
	n->ndirs++;
	if (n->ndirs == 2) {
		/* Scores nothing, but notes are written hundreds a second: a pause now keeps the
		 * writer from covering the tree while the next sightings are judged. */
		struct pending one = {0};
		hit(&one, IND_NOTE, ev->path, ev->path_len, now, "same new file name and size in 2 existing directories", 0);
		pd->early_ev = one.ev[0];
		pd->early_ev.points = 0;
		pd->early = true;
	} else if (n->ndirs == 3) {
		hit(pd, IND_NOTE, ev->path, ev->path_len, now, "same new file name and size in 3 existing directories", 0);
		pd->strong = true;
	}
	else if (n->ndirs > 3 && n->bonus < NOTE_BONUS_MAX) {
		n->bonus++;
		hit(pd, IND_NOTE, ev->path, ev->path_len, now, "same new file name and size in one more directory",
		    NOTE_MORE_POINTS);
	}
}

static void copy_push(struct engine *e, uint64_t dh, const char *name, size_t nl, uint32_t uid, uint64_t now)
{
	struct copy *c = &e->copies[e->copy_next++ % COPIES];
	c->dir_hash = dh;
	c->t_ns = now;
	c->uid = uid;
	c->nl = (uint16_t)(nl < sizeof(c->name) ? nl : sizeof(c->name));
	memcpy(c->name, name, c->nl);
}

/* A ciphertext copy of the file named name in dh, written recently by the same user. */
static struct copy *copy_of(struct engine *e, uint64_t dh, const char *name, size_t nl, uint32_t uid, uint64_t now)
{
	const char *dot = memrchr(name, '.', nl);
	size_t stem = dot && dot != name ? (size_t)(dot - name) : nl;
	for (int i = 0; i < COPIES; i++) {
		struct copy *c = &e->copies[i];
		if (!c->t_ns || c->dir_hash != dh || c->uid != uid || now - c->t_ns > WINDOW_NS)
			continue;
		if (c->nl > nl && memcmp(c->name, name, nl) == 0)
			return c;  /* name.docx -> name.docx.locked */
		if (c->nl > stem + 1 && memcmp(c->name, name, stem) == 0 && c->name[stem] == '.' &&
		    !(c->nl == nl && memcmp(c->name, name, nl) == 0))
			return c;  /* name.docx -> name.enc */
	}
	return NULL;
}

static void destroyed_file(struct actor *s, struct fmem *f, const struct ward_event *ev, uint64_t now,
			   struct pending *pd, enum ind i, const char *vn, int got);

static void on_close_write(struct engine *e, struct actor *s, const struct ward_event *ev, uint64_t now,
			   struct pending *pd)
{
	if (!ev->content.valid)
		return;
	uint64_t ph = hash(ev->path, ev->path_len), dh;
	const char *name;
	size_t nl;
	split(ev->path, ev->path_len, &dh, &name, &nl);
	struct fmem *f = fmem_get(e, ph, ev->path, ev->path_len, now);
	f->t_ns = now;
	f->got = ev->content.type;
	f->head_checked = false;
	f->modifies = 0;
	bool fresh = f->created_ns && now - f->created_ns < WINDOW_NS;
	enum content_verdict v = content_verdict(&ev->content);
	if (v == CONTENT_NORMAL) {
		f->suspect = false;
		if (fresh)
			note_check(e, s, ev, dh, name, nl, now, pd);
		return;
	}
	f->suspect = true;
	const char *vn = content_verdict_name(v);
	if (fresh) {
		copy_push(e, dh, name, nl, ev->proc->uid, now);
		if (v == CONTENT_ENCODED)
			return;  /* a new base64 file is a mail part or a PEM bundle, unless an original goes */
		if (now - s->new_since_ns > NEW_WINDOW_NS) {
			s->new_since_ns = now;
			s->nnew = 0;
		}
		if (s->nnew < NEW_CAP && !(f->fired & (1u << IND_ENC_NEW))) {
			s->nnew++;
			f->fired |= 1u << IND_ENC_NEW;
			if (v == CONTENT_LOCKED_ARCHIVE)
				hit(pd, IND_LOCKED, ev->path, ev->path_len, now, "new password-encrypted archive",
				    LOCKED_NEW_POINTS);
			else
				hit(pd, IND_ENC_NEW, ev->path, ev->path_len, now, vn, 0);
		}
		return;
	}
	/* An existing file: its content is gone. */
	enum ind i = v == CONTENT_PARTIAL ? IND_PARTIAL : v == CONTENT_ENCODED ? IND_ENCODED
		   : v == CONTENT_LOCKED_ARCHIVE ? IND_LOCKED : IND_ENC_INPLACE;
	if (f->fired & CONTENT_BITS)
		return; /* written again, or already judged by its head while being written */
	destroyed_file(s, f, ev, now, pd, i, vn, ev->content.type);
}

/* The content indicators of an existing file found destroyed (at close, or by its head while
 * being written): got is the format its content has now. */
static void destroyed_file(struct actor *s, struct fmem *f, const struct ward_event *ev, uint64_t now,
			   struct pending *pd, enum ind i, const char *vn, int got)
{
	hit_once(pd, f, i, ev, now, vn);
	int want = f->want;
	if (want != FILETYPE_UNKNOWN && !content_type_matches(want, got)) {
		char d[96];
		snprintf(d, sizeof(d), "named as %s, content is %s", filetype_name(want),
			 got == FILETYPE_UNKNOWN ? vn : filetype_name(got));
		hit_once(pd, f, IND_FORMAT, ev, now, d);
	}
	if (f->renamed_ext)
		hit_once(pd, f, IND_RENAME_EXT, ev, now, "renamed to an extension no known format uses, then encrypted");
	destroyed(s, pd, ev, now);
}

/* A large existing file being written: judged by its head (once until it is closed). */
static void on_modify(struct engine *e, struct actor *s, const struct ward_event *ev, uint64_t now,
		      struct pending *pd)
{
	struct fmem *f = fmem_find(e, hash(ev->path, ev->path_len));
	if (!f || (f->fired & CONTENT_BITS))
		return;
	int fd = ward_event_open(ev);
	if (fd < 0)
		return;
	struct ward_content c;
	uint64_t size = 0;
	int rc = content_inspect_head(fd, &size, &c);
	close(fd);
	if (rc)
		return;
	enum content_verdict v = content_verdict(&c);
	if (v == CONTENT_NORMAL || v == CONTENT_LOCKED_ARCHIVE)
		return;
	f->suspect = true;
	f->got = c.type;
	destroyed_file(s, f, ev, now, pd, v == CONTENT_ENCODED ? IND_ENCODED : IND_PARTIAL,
		       v == CONTENT_ENCODED ? "head rewritten as encoded ciphertext while being written"
					    : "head encrypted while being written", c.type);
}

/* Whether a MODIFY event calls for a look at the file's head: an existing file (not one just
 * created: those are judged whole when closed), on its second MODIFY since it was last closed
 * (a small file is written and closed before ward reads a second one), once. */
static bool modify_due(struct engine *e, const struct ward_event *ev, uint64_t now)
{
	if (ev->is_dir || !ev->handle || ev->mount_fd < 0)
		return false;
	struct fmem *f = fmem_get(e, hash(ev->path, ev->path_len), ev->path, ev->path_len, now);
	if ((f->created_ns && now - f->created_ns < WINDOW_NS) || f->head_checked || (f->fired & CONTENT_BITS))
		return false;
	if (++f->modifies < 2)
		return false;
	f->head_checked = true;
	return true;
}

static void on_rename(struct engine *e, struct actor *s, const struct ward_event *ev, uint64_t now,
		      struct pending *pd)
{
	uint64_t oh = hash(ev->old_path, ev->old_path_len), nh = hash(ev->path, ev->path_len), dh, odh;
	const char *name, *oname;
	size_t nl, onl;
	split(ev->path, ev->path_len, &dh, &name, &nl);
	split(ev->old_path, ev->old_path_len, &odh, &oname, &onl);
	struct fmem *old = fmem_find(e, oh), saved;
	bool have_old = old != NULL;
	if (have_old) {
		saved = *old;
		memset(old, 0, sizeof(*old));
	}
	/* the new name now holds the renamed file, whatever was known of it before */
	struct fmem *f = fmem_get(e, nh, ev->old_path, ev->old_path_len, now);
	if (have_old) {
		*f = saved;
	} else {
		memset(f, 0, sizeof(*f));
		f->want = (uint8_t)content_type_for_name(ev->old_path, ev->old_path_len);
	}
	f->path_hash = nh;
	f->t_ns = now;
	int new_type = content_type_for_name(ev->path, ev->path_len);
	size_t oel, nel;
	const char *oe = ext_of(oname, onl, &oel), *ne = ext_of(name, nl, &nel);
	bool derived = contains(oname, onl, name, nl);   /* a temp file renamed onto its target */
	bool new_ext = nel > 0 && new_type == FILETYPE_UNKNOWN && (oel != nel || memcmp(oe, ne, nel) != 0) &&
		       !derived;
	if (!f->suspect) {
		if (new_ext)
			f->renamed_ext = true; /* the promise of the old name is kept in f->want */
		else if (new_type != FILETYPE_UNKNOWN)
			f->want = (uint8_t)new_type;
		return;
	}
	if (new_ext)
		hit_once(pd, f, IND_RENAME_EXT, ev, now, "renamed to an extension no known format uses");
	if (!derived)
		hit_once(pd, f, IND_RENAME_AFTER, ev, now, "renamed after being filled with ciphertext");
	bool fresh = f->created_ns && now - f->created_ns < WINDOW_NS;
	if (fresh && new_type != FILETYPE_UNKNOWN && !content_type_matches(new_type, f->got)) {
		/* written aside, then moved over a document: the document is gone */
		f->want = (uint8_t)new_type;
		hit_once(pd, f, IND_ENC_INPLACE, ev, now, "ciphertext renamed over a file");
		char d[96];
		snprintf(d, sizeof(d), "named as %s, content is %s", filetype_name(new_type),
			 f->got == FILETYPE_UNKNOWN ? "ciphertext" : filetype_name(f->got));
		hit_once(pd, f, IND_FORMAT, ev, now, d);
		destroyed(s, pd, ev, now);
	} else if (fresh) {
		copy_push(e, dh, name, nl, ev->proc->uid, now);
	}
}

static void on_delete(struct engine *e, struct actor *s, const struct ward_event *ev, uint64_t now,
		      struct pending *pd)
{
	uint64_t ph = hash(ev->path, ev->path_len), dh;
	const char *name;
	size_t nl;
	split(ev->path, ev->path_len, &dh, &name, &nl);
	struct fmem *f = fmem_find(e, ph);
	if (f)
		memset(f, 0, sizeof(*f));
	struct copy *c = copy_of(e, dh, name, nl, ev->proc->uid, now);
	if (!c)
		return;
	c->t_ns = 0; /* one original per copy */
	hit(pd, IND_DELETE_ORIG, ev->path, ev->path_len, now, "original deleted after an encrypted copy was written", 0);
	destroyed(s, pd, ev, now);
}

/* Indicators of one event. s: the session (highest process of the chain). */
static void indicators(struct engine *e, struct actor *s, const struct ward_event *ev, uint64_t now,
		       struct pending *pd)
{
	if (engine_is_canary(e, ev->path, ev->path_len) ||
	    (ev->op == WOP_RENAME && engine_is_canary(e, ev->old_path, ev->old_path_len))) {
		if (ev->op == WOP_MODIFY || ev->op == WOP_CLOSE_WRITE || ev->op == WOP_RENAME ||
		    ev->op == WOP_DELETE) {
			e->st.canary_hits++;
			hit(pd, IND_CANARY, ev->path, ev->path_len, now, ward_op_name(ev->op), 0);
		}
		return;
	}
	switch (ev->op) {
	case WOP_CREATE: {
		struct fmem *f = fmem_get(e, hash(ev->path, ev->path_len), ev->path, ev->path_len, now);
		memset(f, 0, sizeof(*f));
		f->path_hash = hash(ev->path, ev->path_len);
		f->t_ns = f->created_ns = now;
		f->want = (uint8_t)content_type_for_name(ev->path, ev->path_len);
		break;
	}
	case WOP_CLOSE_WRITE:
		on_close_write(e, s, ev, now, pd);
		break;
	case WOP_MODIFY:
		on_modify(e, s, ev, now, pd);
		break;
	case WOP_RENAME:
		if (!ev->is_dir)
			on_rename(e, s, ev, now, pd);
		break;
	case WOP_DELETE:
		if (!ev->is_dir)
			on_delete(e, s, ev, now, pd);
		break;
	default:
		break;
	}
}

void engine_event(struct engine *e, const struct ward_event *ev)
{
	e->st.events++;
	uint64_t now = ts_ns(&ev->ts);
	switch (ev->op) {
	case WOP_OVERFLOW:
	case WOP_RMDIR:
		return;
	case WOP_MKDIR:
		dmem_add(e, hash(ev->path, ev->path_len), now);
		return;
	case WOP_MODIFY:
		/* a canary's; else content is judged when the file is closed, or by its head
		 * while a large file is being written */
		if (!engine_is_canary(e, ev->path, ev->path_len) && !modify_due(e, ev, now))
			return;
		break;
	case WOP_CREATE:
		if (ev->is_dir)
			return;
		break;
	default:
		break;
	}
	const struct ward_proc *p = ev->proc;
	if (p->known && allowed(e, p))
		return;

	struct actor *nodes[CHAIN_MAX];
	const char *levels[CHAIN_MAX];
	int ntree;
	int n = chain(e, ev, nodes, levels, &ntree);
	if (n == 0)
		return;
	for (int i = 0; i < n; i++) {
		nodes[i]->seen_ns = now;
		/* An actor already handled: what it still has queued changes nothing, and must not
		 * land on the ancestors above it either. */
		if (nodes[i]->detected && (!nodes[i]->is_exe || now < nodes[i]->quiet_until))
			return;
	}
	struct actor *session = nodes[ntree ? ntree - 1 : 0];

	struct pending pd = {.n = 0};
	indicators(e, session, ev, now, &pd);

	/* what every node remembers of the files, for the incident and for restore (a MODIFY
	 * when it scored: a canary written, a large file's head found encrypted) */
	if (ev->op == WOP_CLOSE_WRITE || ev->op == WOP_RENAME || ev->op == WOP_DELETE || ev->op == WOP_CREATE ||
	    (ev->op == WOP_MODIFY && pd.n)) {
		uint64_t h = hash(ev->path, ev->path_len), oh = 0;
		if (ev->op == WOP_RENAME)
			oh = hash(ev->old_path, ev->old_path_len);
		for (int i = 0; i < n; i++) {
			add_file(nodes[i], ev->path, ev->path_len, h);
			if (ev->op == WOP_RENAME)
				add_file(nodes[i], ev->old_path, ev->old_path_len, oh);
		}
	}
	if (pd.n == 0) {
		if (pd.early && e->cfg.on_suspect) {
			e->st.suspects++;
			struct suspect sp = {.pid = p->pid, .start_ns = p->start_ns, .score = nodes[0]->score,
					     .why = &pd.early_ev};
			e->cfg.on_suspect(&sp, e->cfg.ctx);
		}
		return;
	}
	e->st.scored++;

	uint32_t points = 0;
	for (int k = 0; k < pd.n; k++)
		points += pd.ev[k].points;
	for (int i = 0; i < n; i++) {
		struct actor *a = nodes[i];
		if (a->is_exe && a->detected) {
			/* quiet period over: a fresh start */
			a->detected = false;
			a->score = 0;
			a->nev = 0;
			a->ncontrib = 0;
			a->first_ns = 0;
		}
		decay(e, a, now);
		if (!a->first_ns)
			a->first_ns = now;
		a->score += points;
		for (int k = 0; k < pd.n; k++)
			add_evidence(a, &pd.ev[k]);
		add_contrib(a, p->pid);
	}
	/* the lowest node over the threshold is the actor; a process forked by the same program
	 * (a worker of its pool, a child per file) stands for that program */
	for (int i = 0; i < n; i++) {
		if (nodes[i]->score < e->cfg.threshold)
			continue;
		while (i + 1 < ntree && nodes[i + 1]->exe[0] && !strcmp(nodes[i + 1]->exe, nodes[i]->exe))
			i++;
		struct actor *a = nodes[i];
		struct detection d = {.last_ns = now, .level = levels[i]};
		fire(e, a, &d);
		if (a->is_exe)
			a->quiet_until = now + EXE_QUIET_NS;
		/* One attack, one incident: what the chain had scored is used up, except by the
		 * parent of a single process (it may be starting one encryptor per file). */
		for (int j = 0; j < n; j++) {
			if (i == 0 && j == 1 && j < ntree)
				continue;
			nodes[j]->score = 0;
			nodes[j]->nev = 0;
		}
		return;
	}
	if ((pd.strong || pd.early) && e->cfg.on_suspect) {
		e->st.suspects++;
		double top = 0;
		for (int i = 0; i < n; i++)
			if (nodes[i]->score > top)
				top = nodes[i]->score;
		struct suspect s = {.pid = p->pid, .start_ns = p->start_ns, .score = top,
				    .why = pd.strong && pd.n ? &pd.ev[0] : &pd.early_ev};
		e->cfg.on_suspect(&s, e->cfg.ctx);
	}
}

void engine_expire(struct engine *e, uint64_t now)
{
	/* Scored actors are kept for 4 half-lives (less than 1/16 of their score left),
	 * others for a minute after their last event; detected ones until their events stop. */
	uint64_t scored_idle = (uint64_t)(e->cfg.half_life_s * 4 * 1e9), idle = 60ull * SEC;
	for (size_t i = 0; i < 1024; i++) {
		struct actor **pp = &e->tab[i];
		while (*pp) {
			struct actor *a = *pp;
			uint64_t keep = a->score > 0 ? scored_idle : idle;
			if (a->seen_ns + keep < now) {
				*pp = a->next;
				actor_free(e, a);
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
