/* restore.h: putting vault versions back: content, mode, owner and times, written to a temp
 * name beside the target and renamed over it (in place for a name with other hard links),
 * idempotent and resumable; names that were hard links of one file come back as hard links;
 * moving unwanted files (encrypted copies, ransom notes) into a quarantine directory; dry
 * runs; a JSON-lines report of every action. */
#ifndef WARD_VAULT_RESTORE_H
#define WARD_VAULT_RESTORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "vault/store.h"

/* In the quarantine directory: one JSON line {"from", "to"} (and "from_hex"/"to_hex" for
 * names that are not UTF-8) per file moved there, written before the move. */
#define VAULT_QUARANTINE_LOG "moved.jsonl"

struct vault_restore_opts {
	bool dry_run;                      /* report what would change, change nothing */
	FILE *report;                      /* JSON lines, one per action; NULL: none */
	/* Files that should not be there: moved (renamed) into quarantine_dir, which must be
	 * on the same filesystem and is created if missing. Quarantine runs before restores;
	 * a quarantined path that is also a restore target gets its version back afterwards
	 * (the file there was the attacker's, the original returns). */
	const char *const *quarantine;
	size_t nquarantine;
	const char *quarantine_dir;
	/* By path: when set, for every path any of these processes caused a save of, the
	 * earliest such version wins (the content just before the suspect's first write),
	 * instead of the state at the time. */
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
	/* Added with restore by time: paths whose content at the time is not in the vault
	 * (written after it without a save, or created after it): left alone, reported. */
	uint64_t unknown;
};

struct vault_restore_item {
	int64_t id;
	const char *dest;                  /* NULL: the version's original path */
};

/* Restores each listed version. Items of one target: at most one whole version, then the
 * range versions to write into it. Whole versions of one inode state (same device, inode,
 * mtime and size, saved while it had several names) make their targets hard links of the
 * first one restored. Returns 0 if every item succeeded (unchanged counts as success),
 * -EINTR if the hook stopped it, else the first error (the rest still run). */
int vault_restore_items(struct vault_store *s, const struct vault_restore_item *items, size_t n,
			const struct vault_restore_opts *o, struct vault_restore_stats *st);

/* For every path under prefix (bytes; 0 length: all), restores:
 *   - before_ns > 0: the state the path had at before_ns: the earliest version saved at or
 *     after it (copy-before-write: it holds what the file had until that write). A path
 *     with no version since is unchanged since and left alone; one whose earliest version
 *     since was itself written after the time (its mtime) had no known content then: left
 *     alone, counted as unknown.
 *   - before_ns == 0: the newest version.
 *   - with suspects: the earliest version a suspect caused (saved before before_ns, if
 *     given); paths no suspect touched are left alone.
 * A version's path is its orig_path when it has one: a file renamed away comes back at the
 * name it had. Hard links whose inode changed since the link are skipped (stale). Large
 * files: the chosen whole version, then the range versions that hold older bytes. */
int vault_restore_by_path(struct vault_store *s, const char *prefix, size_t prefix_len,
			  int64_t before_ns, const struct vault_restore_opts *o,
			  struct vault_restore_stats *st);

/* Whether a version still holds the content it was saved with: always for copies, reflinks
 * and ranges; for a hard link, while its inode's mtime and size are unchanged. */
bool vault_restore_version_valid(struct vault_store *s, const struct vault_version *v);
/* Compares the file at path with a whole version's content (holes read as zeros, compared
 * without reading them): 1 same size and bytes, 0 different or absent, -errno. */
int vault_restore_same(struct vault_store *s, const struct vault_version *v, const char *path);
#endif
