/* engine.h: the ransomware detector: per-actor scores built from behaviour and content
 * indicators, decayed over time, aggregated up the process tree, and the decision that an
 * actor must be stopped. Owns the actor table and what it remembers of recently written
 * files. Single-threaded (the daemon's loop). */
#ifndef WARD_ENGINE_H
#define WARD_ENGINE_H
#include <stdbool.h>
#include <stdint.h>

#include "core/event.h"

#define ENGINE_MAX_EVIDENCE 16
#define ENGINE_MAX_FILES 256

/* One indicator that fired: what, on which file, for how many points. */
struct evidence {
	uint64_t t_ns;        /* realtime ns of the event */
	uint16_t points;
	char indicator[32];   /* "content.encrypted_in_place", "rename.unknown_extension", ... */
	char detail[96];
	char path[256];
};

/* The decision handed to the daemon: stop (or, in monitor mode, report) this actor. */
struct detection {
	pid_t pid;            /* the actor: the process whose subtree is stopped */
	uint64_t start_ns;
	char exe[WARD_EXE_MAX];
	char args[WARD_ARGS_MAX];
	uint16_t args_len;
	pid_t ppid;
	uint32_t uid;
	double score;
	uint64_t first_ns, last_ns;        /* realtime ns: first scored event, this event */
	const char *level;                 /* "process", "tree" or "executable" */
	int nevidence;
	struct evidence evidence[ENGINE_MAX_EVIDENCE];
	int nfiles;                        /* files the actor's subtree modified, renamed or deleted */
	char *const *files;                /* nfiles paths; valid during the callback */
	uint32_t nfiles_total;             /* including those past ENGINE_MAX_FILES */
	pid_t contributors[64];            /* processes whose events scored (for exe-level actors) */
	int ncontributors;
};

/* A process that just destroyed a file's content (a strong indicator) without its actor
 * reaching the threshold yet. */
struct suspect {
	pid_t pid;
	uint64_t start_ns;
	double score;                      /* of the process's most loaded actor */
	const struct evidence *why;        /* valid during the callback */
};

struct engine_cfg {
	double threshold;       /* score that stops an actor (default 100) */
	double half_life_s;     /* score decay (default 600) */
	const char *const *allow_exe; /* executables never scored: "PATH [sha256:HEX]" (core/allow.h) */
	int nallow;
	const struct ward_proc *(*lookup)(void *ctx, pid_t pid);  /* parent chain; may be NULL */
	void *lookup_ctx;
	/* Called once per actor when its score reaches the threshold. */
	void (*on_detect)(const struct detection *d, void *ctx);
	void *ctx;
	/* Optional (NULL: not used). Called, with ctx, each time a process below the threshold
	 * destroys a file (or writes a new file whose name and size it already wrote in
	 * another directory). A daemon in protect mode may pause the process
	 * (SIGSTOP) so that it cannot go on while the events it already caused, still queued,
	 * are judged; once its queue is drained (and on_detect was not called for the process
	 * or a tree holding it) it resumes it (SIGCONT). */
	void (*on_suspect)(const struct suspect *s, void *ctx);
	/* sha256 of the program p runs, for allow-list entries pinned to a hash; 0 or -errno.
	 * Called with ctx. NULL: entries with a hash never match. */
	int (*exe_sha256)(void *ctx, const struct ward_proc *p, uint8_t out[32]);
};

struct engine;
int engine_create(struct engine **out, const struct engine_cfg *cfg);
void engine_destroy(struct engine *e);    /* accepts NULL */
/* Feeds one event (content already inspected). */
void engine_event(struct engine *e, const struct ward_event *ev);
/* Canary files: any write, rename or delete of one of these paths is a certain signal. */
int engine_add_canary(struct engine *e, const char *path);
bool engine_is_canary(const struct engine *e, const char *path, size_t len);
/* Adds an allow-list entry ("PATH [sha256:HEX]") at run time (ward allow). 0, -EINVAL (a
 * malformed entry) or -ENOMEM. */
int engine_allow_exe(struct engine *e, const char *entry);
/* Configuration reload: empties the allow-list (then add again), changes the threshold and
 * the half-life (0: defaults). */
void engine_allow_clear(struct engine *e);
/* A false alarm (ward allow): drops what pid and its ancestors scored so far. */
void engine_forgive(struct engine *e, pid_t pid);
void engine_set_tuning(struct engine *e, double threshold, double half_life_s);
/* Forgets actors idle for a long time; call about once a second. */
void engine_expire(struct engine *e, uint64_t now_realtime_ns);

struct engine_stats {
	uint64_t events, scored, detections, actors, canary_hits, suspects;
};
void engine_stats(const struct engine *e, struct engine_stats *out);
#endif
