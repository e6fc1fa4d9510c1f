/* seal.h: the vault directory sealed against every other process, root included, with inode
 * flags the kernel enforces for everyone until they are cleared: FS_APPEND_FL on the
 * directory (names can be added, never removed or renamed) and FS_IMMUTABLE_FL on each
 * finished version file (no write, truncate, unlink, rename or link). fanotify has no unlink
 * or rename hook, so this is what stops `rm`; clearing a flag takes an open of the file or
 * the directory (FS_IOC_SETFLAGS on an fd), which the guard's vault group denies to every
 * process but ward. ward unseals the directory briefly for its own deletes (retention,
 * crash leftovers): vault_seal_open()/vault_seal_close() nest, from any thread. */
#ifndef WARD_VAULT_SEAL_H
#define WARD_VAULT_SEAL_H
#include <pthread.h>
#include <stdbool.h>

struct vault_seal {
	int dirfd;                 /* O_RDONLY|O_DIRECTORY: the flag ioctls need a real open */
	bool supported;            /* the filesystem (and our capabilities) allow the flags */
	unsigned depth;            /* vault_seal_open() calls not yet closed */
	bool file_failed;          /* a version could not be made immutable (logged once) */
	bool inited;
	pthread_mutex_t mu;
};

/* Probes the flags on dir (any path of the vault directory) and leaves it unsealed, as if
 * vault_seal_open() had been called once: the caller sets up (SQLite may create and remove
 * journals) and then calls vault_seal_close(). Never fails for lack of support: says so in
 * the log (what is lost) and carries on without. -errno only when dir cannot be opened. */
int vault_seal_init(struct vault_seal *z, const char *dir);
/* Closes the directory fd; the seal stays on the directory. Accepts an unset seal. */
void vault_seal_fini(struct vault_seal *z);
/* Lets ward remove names in the directory until the matching vault_seal_close(). */
void vault_seal_open(struct vault_seal *z);
void vault_seal_close(struct vault_seal *z);
/* Makes a finished version immutable (fd: any open fd of it). 0 or -errno (not fatal). */
int vault_seal_file(struct vault_seal *z, int fd);
/* Removes name from the directory, clearing its immutable flag first; the caller has
 * called vault_seal_open(). 0 or -errno (-ENOENT: no such name). */
int vault_seal_unlink(struct vault_seal *z, const char *name);
#endif
