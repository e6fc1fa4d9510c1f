/* seal.c: inode flags on the vault (see seal.h).
 *
 * Why flags and not a mount or an LSM: they are what every filesystem ward runs on has
 * (ext4, xfs, btrfs; tmpfs since Linux 6.0), they hold against root without a policy to
 * load, and they survive ward's restart and a reboot. What they need: CAP_LINUX_IMMUTABLE,
 * and an fd of the inode to change them. What they cost: two ioctls per version saved
 * (get, then set: the other flags of the inode are kept), a few microseconds.
 *
 * SQLite in a directory whose names cannot be removed: the index runs in WAL mode with
 * SQLITE_FCNTL_PERSIST_WAL (store.c), so neither the -wal nor the -shm file is ever
 * deleted; a rollback journal exists only while the store sets the index up, before the
 * directory is sealed. */
#include "vault/seal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "core/log.h"

static int set_flag(int fd, int flag, bool on)
{
	int f;
	if (ioctl(fd, FS_IOC_GETFLAGS, &f) < 0)
		return -errno;
	int nf = on ? f | flag : f & ~flag;
	if (nf != f && ioctl(fd, FS_IOC_SETFLAGS, &nf) < 0)
		return -errno;
	return 0;
}

int vault_seal_init(struct vault_seal *z, const char *dir)
{
	memset(z, 0, sizeof(*z));
	pthread_mutex_init(&z->mu, NULL);
	z->inited = true;
	z->depth = 1;
	z->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (z->dirfd < 0)
		return -errno;
	/* The probe: set the flag, then clear it for the caller's setup. */
	int rc = set_flag(z->dirfd, FS_APPEND_FL, true);
	if (rc == 0)
		rc = set_flag(z->dirfd, FS_APPEND_FL, false);
	if (rc) {
		/* EOPNOTSUPP/ENOTTY: a filesystem without the flags (FUSE, NFS, vfat, tmpfs
		 * before Linux 6.0); EPERM: no CAP_LINUX_IMMUTABLE. */
		log_warn("unavailable: vault seal on %s (FS_IOC_SETFLAGS: %s): another root process "
			 "can delete or rename the vault's versions and index (opening them is still "
			 "denied while ward runs)", dir, strerror(-rc));
		return 0;
	}
	z->supported = true;
	return 0;
}

void vault_seal_fini(struct vault_seal *z)
{
	if (!z->inited)
		return;
	if (z->dirfd >= 0)
		close(z->dirfd);
	z->dirfd = -1;
	z->inited = false;
	pthread_mutex_destroy(&z->mu);
}

void vault_seal_open(struct vault_seal *z)
{
	pthread_mutex_lock(&z->mu);
	if (z->depth++ == 0 && z->supported) {
		int rc = set_flag(z->dirfd, FS_APPEND_FL, false);
		if (rc)
			log_warn("vault: cannot unseal the vault directory: %s", strerror(-rc));
	}
	pthread_mutex_unlock(&z->mu);
}

void vault_seal_close(struct vault_seal *z)
{
	pthread_mutex_lock(&z->mu);
	if (z->depth && --z->depth == 0 && z->supported) {
		int rc = set_flag(z->dirfd, FS_APPEND_FL, true);
		if (rc)
			log_err("vault: cannot seal the vault directory again: %s: its names can be "
				"removed by any root process", strerror(-rc));
	}
	pthread_mutex_unlock(&z->mu);
}

int vault_seal_file(struct vault_seal *z, int fd)
{
	if (!z->supported)
		return 0;
	int rc = set_flag(fd, FS_IMMUTABLE_FL, true);
	if (rc) {
		pthread_mutex_lock(&z->mu);
		bool first = !z->file_failed;
		z->file_failed = true;
		pthread_mutex_unlock(&z->mu);
		if (first)
			log_warn("vault: a version could not be made immutable (%s): it can be "
				 "overwritten by another root process", strerror(-rc));
	}
	return rc;
}

int vault_seal_unlink(struct vault_seal *z, const char *name)
{
	if (z->supported) {
		/* O_NONBLOCK: only regular files live here, but never hang on anything else. */
		int fd = openat(z->dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0) {
			set_flag(fd, FS_IMMUTABLE_FL, false);
			close(fd);
		}
	}
	return unlinkat(z->dirfd, name, 0) < 0 ? -errno : 0;
}
