/* restore.h: putting vault versions back: content, mode, owner and times, written to a temp
 * name beside the target and renamed over it (in place for a name with other hard links),
 * idempotent and resumable; moving unwanted files (encrypted copies, ransom notes) into a
 * quarantine directory; dry runs; a JSON-lines report of every action. */
#ifndef WARD_VAULT_RESTORE_H
#define WARD_VAULT_RESTORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "vault/store.h"

struct vault_restore_opts {
	bool dry_run;                      /* report what would change, change nothing */
	FILE *report;                      /* JSON lines, one per action; NULL: none */
	/* Files that should not be there: moved (renamed) into quarantine_dir, which must be
	 * on the same filesystem and is created if missing. Quarantine runs before restores. */
	const char *const *quarantine;
	size_t nquarantine;
	const char *quarantine_dir;
	/* By path: when set, for every path any of these processes caused a save of, the
	 * earliest such version wins (the content just before the suspect's first write),
	 * instead of the newest before the time. */
	const pid_t *suspects;
	size_t nsuspects;
	/* Restore under this directory instead of the original paths (dest_root + path). */
	const char *dest_root;
	/* Test hook: called after each version is handled; nonzero stops the run (-EINTR). */
	int (*after_each)(void *ctx, size_t done);
	void *hook_ctx;
};

struct vault_restore_stats {
	uint64_t restored, unchanged, would_restore, quarantined, would_quarantine;
	uint64_t stale_links, failed;
};

struct vault_restore_item {
	int64_t id;
	const char *dest;                  /* NULL: the version's original path */
};

/* Restores each listed version. Returns 0 if every item succeeded (unchanged counts as
 * success), -EINTR if the hook stopped it, else the first error (the rest still run). */
int vault_restore_items(struct vault_store *s, const struct vault_restore_item *items, size_t n,
			const struct vault_restore_opts *o, struct vault_restore_stats *st);

/* For every path under prefix (bytes; 0 length: all), restores the newest version saved
 * before before_ns (0: no limit), or with suspects the earliest version a suspect caused.
 * A version's path is its orig_path when it has one: a file renamed away comes back at
 * the name it had. Hard links whose inode changed since the link are skipped (stale).
 * Large files: the chosen whole version, then every later range version. */
int vault_restore_by_path(struct vault_store *s, const char *prefix, size_t prefix_len,
			  int64_t before_ns, const struct vault_restore_opts *o,
			  struct vault_restore_stats *st);
#endif
