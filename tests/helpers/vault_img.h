/* vault_img.h: what the vault tests share: loop-mounted scratch filesystems under
 * /tmp/vlt2/, file hashing, and real child processes (the test binary re-executed with an
 * operation, or /bin/sh) to play the untrusted writer. Header-only (static functions):
 * each test program includes it once. */
#ifndef WARD_VAULT_IMG_H
#define WARD_VAULT_IMG_H
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define VIMG_ROOT "/tmp/vlt2"

struct vimg {
	char img[256], mnt[256];
	bool mounted;
};

static __attribute__((unused)) int vimg_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2), unused));
static __attribute__((unused)) int vimg_sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	pid_t p = fork();
	if (p == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	int st;
	if (p < 0 || waitpid(p, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Makes and mounts a fresh image of type fstype ("ext4", "xfs", "btrfs"). */
static __attribute__((unused)) int vimg_make(struct vimg *v, const char *name, const char *fstype, int size_mb)
{
	memset(v, 0, sizeof(*v));
	mkdir(VIMG_ROOT, 0700);
	snprintf(v->img, sizeof(v->img), VIMG_ROOT "/%s.img", name);
	snprintf(v->mnt, sizeof(v->mnt), VIMG_ROOT "/%s", name);
	vimg_sh("umount -l '%s' 2>/dev/null; rm -f '%s'", v->mnt, v->img);
	mkdir(v->mnt, 0755);
	const char *mkfs = strcmp(fstype, "xfs") == 0     ? "mkfs.xfs -q -f"
			   : strcmp(fstype, "btrfs") == 0 ? "mkfs.btrfs -q -f"
							  : "mkfs.ext4 -q -F";
	if (vimg_sh("truncate -s %dM '%s' && %s '%s' >/dev/null 2>&1 && mount -o loop '%s' '%s'",
		    size_mb, v->img, mkfs, v->img, v->img, v->mnt))
		return -1;
	v->mounted = true;
	return 0;
}

static __attribute__((unused)) void vimg_destroy(struct vimg *v)
{
	if (v->mounted)
		vimg_sh("umount '%s' || umount -l '%s'", v->mnt, v->mnt);
	v->mounted = false;
	unlink(v->img);
	rmdir(v->mnt);
}

static __attribute__((unused)) int vimg_write(const char *path, const void *data, size_t n)
{
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	if (fd < 0)
		return -errno;
	ssize_t w = write(fd, data, n);
	close(fd);
	return w == (ssize_t)n ? 0 : -EIO;
}

/* Deterministic pseudo-random content. */
static __attribute__((unused)) void vimg_fill(void *buf, size_t n, uint32_t seed)
{
	uint8_t *p = buf;
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

static __attribute__((unused)) int vimg_sha(const char *path, uint8_t out[32])
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	char buf[65536];
	ssize_t r;
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		EVP_DigestUpdate(c, buf, (size_t)r);
	EVP_DigestFinal_ex(c, out, NULL);
	EVP_MD_CTX_free(c);
	close(fd);
	return r < 0 ? -EIO : 0;
}

/* Runs the test binary itself as a separate process: argv[1] names the operation
 * (see each test's child_main). Returns the child's pid; wait with vimg_wait. */
static __attribute__((unused)) pid_t vimg_spawn(const char *op, const char *a1, const char *a2)
{
	pid_t p = fork();
	if (p == 0) {
		execl("/proc/self/exe", "vault-child", op, a1 ? a1 : "", a2 ? a2 : "", (char *)NULL);
		_exit(127);
	}
	return p;
}

static __attribute__((unused)) int vimg_wait(pid_t p)
{
	int st;
	if (p < 0 || waitpid(p, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Child operations shared by the tests: the untrusted writer's repertoire. Returns an
 * exit status; for "open" the errno of a failed open (0 on success). "rdwr-wait" holds a
 * file open for writing until the parent writes to the fifo a2 (vimg_fifo_ready, then
 * vimg_fifo_go). */
static __attribute__((unused)) int vimg_child(const char *op, const char *a1, const char *a2)
{
	if (strcmp(op, "open") == 0) {                 /* open a1 read-only */
		int fd = open(a1, O_RDONLY);
		if (fd < 0)
			return errno;
		close(fd);
		return 0;
	}
	if (strcmp(op, "overwrite") == 0) {            /* O_TRUNC and new bytes */
		int fd = open(a1, O_WRONLY | O_TRUNC);
		if (fd < 0)
			return 100;
		char b[3000];
		vimg_fill(b, sizeof(b), 99);
		ssize_t w = write(fd, b, sizeof(b));
		close(fd);
		return w == (ssize_t)sizeof(b) ? 0 : 101;
	}
	if (strcmp(op, "mmap") == 0) {                 /* rewrite every byte through a mapping */
		int fd = open(a1, O_RDWR);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0 || st.st_size == 0)
			return 100;
		unsigned char *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m == MAP_FAILED)
			return 101;
		for (off_t i = 0; i < st.st_size; i++)
			m[i] ^= 0x5a;
		msync(m, (size_t)st.st_size, MS_SYNC);
		munmap(m, (size_t)st.st_size);
		close(fd);
		return 0;
	}
	if (strcmp(op, "pwrite") == 0) {               /* a2 bytes of garbage at offset a1... */
		int fd = open(a1, O_WRONLY);
		if (fd < 0)
			return 100;
		long off = strtol(a2, NULL, 0);
		char b[8192];
		vimg_fill(b, sizeof(b), 7);
		ssize_t w = pwrite(fd, b, sizeof(b), off);
		close(fd);
		return w == (ssize_t)sizeof(b) ? 0 : 101;
	}
	if (strcmp(op, "read") == 0) {                 /* open a1 read-only and read it all */
		int fd = open(a1, O_RDONLY);
		if (fd < 0)
			return 100;
		char b[16384];
		while (read(fd, b, sizeof(b)) > 0)
			;
		close(fd);
		return 0;
	}
	if (strcmp(op, "read-unlink") == 0) {          /* read a1, then delete its name at once */
		int fd = open(a1, O_RDONLY);
		if (fd < 0)
			return 100;
		char b[16384];
		while (read(fd, b, sizeof(b)) > 0)
			;
		close(fd);
		return unlink(a1) == 0 ? 0 : 101;
	}
	if (strcmp(op, "rdwr-wait") == 0) {            /* open a1 O_RDWR, wait on fifo a2, write */
		int fd = open(a1, O_RDWR);
		if (fd < 0)
			return 100;
		int ff = open(a2, O_RDONLY);           /* the parent opens it once we hold fd */
		char c;
		if (ff < 0 || read(ff, &c, 1) != 1)
			return 101;
		close(ff);
		char b[8192];
		vimg_fill(b, sizeof(b), 13);
		ssize_t w = pwrite(fd, b, sizeof(b), 0);
		close(fd);
		return w == (ssize_t)sizeof(b) ? 0 : 102;
	}
	if (strcmp(op, "truncate-path") == 0)          /* truncate(2) by name, no open */
		return truncate(a1, strtol(a2, NULL, 0)) == 0 ? 0 : 100;
	if (strcmp(op, "rdonly-trunc") == 0) {         /* O_RDONLY|O_TRUNC: Linux truncates */
		int fd = open(a1, O_RDONLY | O_TRUNC);
		if (fd < 0)
			return 100;
		close(fd);
		return 0;
	}
	if (strcmp(op, "append") == 0) {               /* a2 appends of 100 bytes, one open */
		int fd = open(a1, O_WRONLY | O_APPEND);
		if (fd < 0)
			return 100;
		char b[100];
		vimg_fill(b, sizeof(b), 21);
		for (long i = 0; i < strtol(a2, NULL, 0); i++)
			if (write(fd, b, sizeof(b)) != (ssize_t)sizeof(b))
				return 101;
		close(fd);
		return 0;
	}
	return 126;
}

/* A "rdwr-wait" child: vimg_fifo_ready() returns (the fifo's write end) once the child
 * holds its file open (it opens the fifo only after the file); vimg_fifo_go() lets it
 * write. */
static __attribute__((unused)) int vimg_fifo_ready(const char *fifo)
{
	return open(fifo, O_WRONLY);
}

static __attribute__((unused)) int vimg_fifo_go(int f)
{
	int rc = f >= 0 && write(f, "g", 1) == 1 ? 0 : -EIO;
	if (f >= 0)
		close(f);
	return rc;
}
#endif
