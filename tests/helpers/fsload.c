/* fsload: file workloads for benchmarks and tests. Prints the elapsed wall time in seconds.
 *   fsload create DIR N SIZE            N new files of SIZE bytes (open, write, close)
 *   fsload overwrite DIR N SIZE CHUNKS  N existing files of SIZE rewritten in place with
 *                                       CHUNKS pwrites each (files are made first, untimed)
 *   fsload spawn DIR N                  N short-lived child processes (fork+exec of fsload
 *                                       itself) each creating one file, one after another */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int write_all(int fd, const char *b, size_t n, off_t off)
{
	while (n) {
		ssize_t w = off >= 0 ? pwrite(fd, b, n, off) : write(fd, b, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		b += w;
		n -= (size_t)w;
		if (off >= 0)
			off += w;
	}
	return 0;
}

static int make(const char *dir, long i, const char *buf, size_t size, const char *prefix)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/%s%ld", dir, prefix, i);
	int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write_all(fd, buf, size, -1) < 0) {
		perror(p);
		return -1;
	}
	return close(fd);
}

int main(int argc, char **argv)
{
	if (argc >= 4 && strcmp(argv[1], "child") == 0)
		return make(argv[2], atol(argv[3]), "x\n", 2, "s") ? 1 : 0;
	if (argc < 4) {
		fprintf(stderr, "usage: fsload create|overwrite|spawn DIR N [SIZE [CHUNKS]]\n");
		return 2;
	}
	const char *mode = argv[1], *dir = argv[2];
	long n = atol(argv[3]);
	size_t size = argc > 4 ? (size_t)atol(argv[4]) : 4096;
	long chunks = argc > 5 ? atol(argv[5]) : 16;
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return 1;
	for (size_t i = 0; i < size; i++)
		buf[i] = (char)(i * 131 + 7);
	double t0, t1;
	if (strcmp(mode, "create") == 0) {
		t0 = now();
		for (long i = 0; i < n; i++)
			if (make(dir, i, buf, size, "c"))
				return 1;
		t1 = now();
	} else if (strcmp(mode, "overwrite") == 0) {
		for (long i = 0; i < n; i++)
			if (make(dir, i, buf, size, "o"))
				return 1;
		sync();
		size_t chunk = size / (size_t)chunks;
		t0 = now();
		for (long i = 0; i < n; i++) {
			char p[4096];
			snprintf(p, sizeof(p), "%s/o%ld", dir, i);
			int fd = open(p, O_WRONLY | O_CLOEXEC);
			if (fd < 0) {
				perror(p);
				return 1;
			}
			buf[0] = (char)i;
			for (long c = 0; c < chunks; c++)
				if (write_all(fd, buf + c * chunk, chunk, (off_t)(c * chunk)) < 0)
					return 1;
			close(fd);
		}
		t1 = now();
	} else if (strcmp(mode, "spawn") == 0) {
		char self[4096];
		ssize_t l = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (l <= 0)
			return 1;
		self[l] = '\0';
		t0 = now();
		for (long i = 0; i < n; i++) {
			char num[32];
			snprintf(num, sizeof(num), "%ld", i);
			pid_t p = fork();
			if (p == 0) {
				execl(self, "fsload", "child", dir, num, (char *)NULL);
				_exit(127);
			}
			int st;
			if (p < 0 || waitpid(p, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
				return 1;
		}
		t1 = now();
	} else {
		fprintf(stderr, "fsload: unknown mode %s\n", mode);
		return 2;
	}
	printf("%.6f\n", t1 - t0);
	free(buf);
	return 0;
}
