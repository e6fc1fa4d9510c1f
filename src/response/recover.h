/* recover.h: putting an incident right: which vault versions hold the content "just before
 * the actor's first change", which files the actor left behind (encrypted copies, notes) to
 * move to quarantine, and the restore itself through vault/restore.h. */
#ifndef WARD_RECOVER_H
#define WARD_RECOVER_H
#include <stdbool.h>
#include <stdio.h>

#include "response/incident.h"
#include "vault/restore.h"
#include "vault/store.h"

#define RECOVER_MAX_FS 16

/* One protected filesystem: its mount point, the watched roots on it, its vault. */
struct recover_fs {
	char mount[4096];
	char vault_dir[4200];
	char quarantine_dir[4200];
	const char *roots[64];
	int nroots;
	struct vault_store *store;
};

/* Groups roots by filesystem and opens (creating) each filesystem's vault at
 * MOUNT/.ward-vault, or under vault_dir when given (then one filesystem only makes sense:
 * links and reflinks need the same filesystem). Returns the count or -errno with err. */
int recover_open_all(const char *const *roots, int nroots, const char *vault_dir,
		     const struct vault_store_opts *vo, struct recover_fs *out, char *err, size_t errlen);
void recover_close_all(struct recover_fs *fs, int n);

struct recover_opts {
	bool dry_run;
	FILE *report;              /* JSON lines, one per action */
	const char *quarantine_dir;
};

/* Restores what the incident's actor changed on the filesystem of store (roots: the watched
 * roots on it): every file it modified, renamed or deleted comes back with its content,
 * name, mode, owner and times from just before the actor's first change, and what it made
 * (encrypted copies, renamed files, notes) is moved to o->quarantine_dir. The actor is the
 * incident's processes (and, for a tree or an executable, other processes of its
 * executable during the attack), never a process that only read; its outputs are the
 * daemon's record plus what the vault and the directories it worked in show (recover.c).
 * Safe to run twice, and to re-run after an interrupted run: a log in the quarantine
 * directory says where moved files came from. 0 or -errno.
 * Test hook: WARD_TEST_RESTORE_KILL_AFTER=N in the environment kills the process after N
 * restored items (a crash, to test re-runs). */
int recover_incident(struct vault_store *store, const char *const *roots, int nroots,
		     const struct incident *inc, const struct recover_opts *o,
		     struct vault_restore_stats *st);
#endif
