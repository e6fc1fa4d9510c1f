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
 * roots on it). Suspects are the processes that saved versions of the incident's files
 * between a minute before its first event and its stop; for every file they touched the
 * earliest version they caused comes back; the incident's files that exist now and never
 * had a version of their own are the actor's outputs and go to quarantine. 0 or -errno. */
int recover_incident(struct vault_store *store, const char *const *roots, int nroots,
		     const struct incident *inc, const struct recover_opts *o,
		     struct vault_restore_stats *st);
#endif
