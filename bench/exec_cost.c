/* exec_cost.c: what the exec guard adds to running a program. Runs a program located on
 * a loop-mounted ext4 image under /tmp/exg N times (posix_spawn + waitpid) with no guard,
 * with the guard marking that filesystem (every exec a FAN_OPEN_EXEC_PERM round trip
 * answered from the verdict cache), and with the guard plus ignore marks (a cleared file
 * raises no event), all in the same run, taking turns in blocks of 500 runs. Prints the
 * times and the ratios to the unguarded run (of the totals, and the median of the
 * per-block ratios), and the median time of posix_spawn alone (the execve path, where
 * the check sits) with its difference to the unguarded one. Two programs: a copy of
 * /bin/true (dynamic: the common case) and a 129-byte static ELF that only calls exit
 * (the worst case: nothing to hide the round trip behind).
 *
 * usage (root): exec_cost [RUNS]   (default 10000 per configuration and program) */
#include "prevent/execguard.h"
#include "prevent/scanner.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#define BASE "/tmp/exg/bench-exec"
#define IMG BASE "/fs.img"
#define MNT BASE "/mnt"

extern char **environ;

enum cfg { NONE, GUARD, GUARD_IGNORE, NCFG };
static const char *const cfg_name[NCFG] = {"no guard", "guard (cached verdict)",
					   "guard + ignore marks"};

static int copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC), rc = -1;
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	ssize_t n;
	if (in < 0 || out < 0)
		goto out;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			goto out;
	rc = n < 0 ? -1 : 0;
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return rc;
}

#ifdef __x86_64__
/* ELF64 header, one PT_LOAD of the whole file at 0x400000, then
 * mov eax, 60 (exit); xor edi, edi; syscall */
static int write_tiny_elf(const char *path)
{
	unsigned char f[129] = {
		0x7f, 'E', 'L', 'F', 2, 1, 1, 0, [16] = 2, 0, 0x3e, 0, 1, 0, 0, 0,
		[24] = 0x78, 0x00, 0x40, 0, 0, 0, 0, 0,    /* e_entry */
		[32] = 64,                                 /* e_phoff */
		[52] = 64, 0, 56, 0, 1, 0,                 /* ehsize, phentsize, phnum */
		[64] = 1, 0, 0, 0, 5, 0, 0, 0,             /* PT_LOAD, R+X */
		[80] = 0x00, 0x00, 0x40,                   /* p_vaddr */
		[88] = 0x00, 0x00, 0x40,                   /* p_paddr */
		[96] = 129,                                /* p_filesz */
		[104] = 129,                               /* p_memsz */
		[112] = 0x00, 0x10,                        /* p_align */
		[120] = 0xb8, 0x3c, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05,
	};
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	if (fd < 0)
		return -1;
	int rc = write(fd, f, sizeof(f)) == (ssize_t)sizeof(f) ? 0 : -1;
	close(fd);
	return rc;
}
#endif

static double now_s(void)
{
	return (double)scanner_now_ns() / 1e9;
}

/* Seconds for n runs; -1 if a run failed. lat[i] gets how long posix_spawn itself took:
 * it returns once the child's execve succeeded (glibc spawns with CLONE_VFORK), so that
 * is the exec path with the guard's check in it, without the program's run and exit. */
static double spawn_loop(const char *prog, long n, double *lat)
{
	char *argv[] = {(char *)prog, NULL};
	double t0 = now_s();
	for (long i = 0; i < n; i++) {
		pid_t pid;
		int st;
		double s0 = now_s();
		if (posix_spawn(&pid, prog, NULL, NULL, argv, environ) != 0)
			return -1;
		lat[i] = now_s() - s0;
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			return -1;
	}
	return now_s() - t0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The configurations take turns in blocks of BLOCK runs, so a burst of load from
 * elsewhere on the machine hits all of them alike; t gets the totals, med the median of
 * the per-block ratios to the unguarded block (robust to such bursts). */
#define BLOCK 500
#define MAX_BLOCKS 200
static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(double), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* lat_med gets the median posix_spawn latency per configuration. */
static int measure(struct scanner *sc, const char *prog, long runs, double t[NCFG],
		   double med[NCFG], double lat_med[NCFG])
{
	const char *paths[] = {MNT};
	static double ratio[NCFG][MAX_BLOCKS];
	static double lat[NCFG][MAX_BLOCKS * BLOCK];
	long nblocks = runs / BLOCK, per = BLOCK;
	if (nblocks < 1) {
		nblocks = 1;
		per = runs;
	}
	if (nblocks > MAX_BLOCKS)
		nblocks = MAX_BLOCKS;
	memset(t, 0, sizeof(double) * NCFG);
	for (long b = 0; b < nblocks; b++) {
		double bt[NCFG];
		/* each block starts with another configuration: no order bias */
		for (int k = 0; k < NCFG; k++) {
			int c = (int)((k + b) % NCFG);
			struct execguard *g = NULL;
			struct execguard_opts o = {.scanner = sc, .paths = paths, .npaths = 1,
						   .workers = 2, .ignore_clean = c == GUARD_IGNORE};
			if (c != NONE) {
				int rc = execguard_start(&o, &g);
				if (rc < 0) {
					fprintf(stderr, "exec_cost: guard: %s\n", strerror(-rc));
					return -1;
				}
			}
			double s = spawn_loop(prog, per, &lat[c][b * per]);
			struct execguard_stats st = {0};
			if (g)
				execguard_get_stats(g, &st);
			execguard_stop(g);
			if (s < 0) {
				fprintf(stderr, "exec_cost: running %s failed\n", prog);
				return -1;
			}
			if (c == GUARD && st.events < (uint64_t)per) {
				fprintf(stderr, "exec_cost: guard saw %llu of %ld execs\n",
					(unsigned long long)st.events, per);
				return -1;
			}
			bt[c] = s;
			t[c] += s;
		}
		for (int c = 0; c < NCFG; c++)
			ratio[c][b] = bt[c] / bt[NONE];
	}
	for (int c = 0; c < NCFG; c++) {
		med[c] = median(ratio[c], (size_t)nblocks);
		lat_med[c] = median(lat[c], (size_t)(nblocks * per));
	}
	return (int)(nblocks * per);
}

static void print(const char *what, long runs, const double t[NCFG], const double med[NCFG],
		  const double lat[NCFG])
{
	printf("exec_cost: %s, %ld runs per configuration\n", what, runs);
	printf("  %-24s %9s %12s %8s %13s %15s\n", "", "total", "per run", "ratio",
	       "median/block", "median execve");
	for (int c = 0; c < NCFG; c++)
		printf("  %-24s %7.3f s %9.1f us %7.3fx %12.3fx %9.1f us %+6.1f\n", cfg_name[c],
		       t[c], t[c] / (double)runs * 1e6, t[c] / t[NONE], med[c], lat[c] * 1e6,
		       (lat[c] - lat[NONE]) * 1e6);
}

int main(int argc, char **argv)
{
	long runs = argc > 1 ? strtol(argv[1], NULL, 10) : 10000;
	struct scanner *sc = NULL;
	struct stat st;
	double t[NCFG], med[NCFG], lat[NCFG];
	int done;
	int ret = 1;
	if (runs < 2) {
		fprintf(stderr, "usage: exec_cost [RUNS]\n");
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "exec_cost: needs root (fanotify permission events, mount)\n");
		return 2;
	}
	umount2(MNT, MNT_DETACH);
	if (system("rm -rf " BASE " && mkdir -p " MNT " && truncate -s 32M " IMG
		   " && mkfs.ext4 -q -F " IMG " >/dev/null 2>&1 && mount -o loop " IMG " " MNT) != 0 ||
	    stat(MNT, &st) < 0 || major(st.st_dev) != 7) {
		/* only ever mark a loop image made here: never a filesystem others use */
		fprintf(stderr, "exec_cost: could not mount a loop image on %s\n", MNT);
		goto out;
	}
	if (copy_file("/bin/true", MNT "/true") < 0) {
		fprintf(stderr, "exec_cost: copy /bin/true: %s\n", strerror(errno));
		goto out;
	}
	if (scanner_create(NULL, &sc) < 0)
		goto out;
	if ((done = measure(sc, MNT "/true", runs, t, med, lat)) < 0)
		goto out;
	print("dynamic /bin/true copy", done, t, med, lat);
#ifdef __x86_64__
	if (write_tiny_elf(MNT "/tiny") < 0 || (done = measure(sc, MNT "/tiny", runs, t, med, lat)) < 0)
		goto out;
	print("129-byte static ELF (worst case)", done, t, med, lat);
#endif
	ret = 0;
out:
	scanner_destroy(sc);
	if (umount2(MNT, 0) < 0)
		umount2(MNT, MNT_DETACH);
	unlink(IMG);
	return ret;
}
