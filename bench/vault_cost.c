/* vault_cost.c: what the copy-before-write guard costs a file server. On a loop-mounted
 * image (ext4 by default, or argv[1]: xfs/btrfs), two ordinary untrusted worker processes
 * run a mix over many small files (80% whole-file reads, 20% rewrites with O_TRUNC) and
 * overwrite 1 MiB pieces of a few large files (above the range threshold). Each round runs,
 * in turn: no guard; the kernel's floor (a FAN_OPEN_PERM group of the same class that
 * allows every open at once: what any guard that must see every open pays); the guard
 * protecting the filesystem (vault on the same image); the guard without name-level history
 * (no held files);
 * and with --ablate the guard without its eBPF intent map (/proc/<tid>/syscall) and without
 * read leases (every read() a round trip). Median of VAULT_COST_ROUNDS (default 3) rounds,
 * same run. Prints times, ratios to the unguarded run, and the guard's breakdown. Root. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/fanotify.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vault/guard.h"
#include "vault/store.h"

#define NSMALL 3000
#define NLARGE 4
#define LARGE_MB 80
#define MAX_ROUNDS 15
#define OPS_PER_WORKER 6000
#define LARGE_WRITES 24

static char mnt[256], img[256], vdir[300];

static int sh(const char *cmd)
{
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void fill(char *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		b[i] = (char)(seed >> 16);
	}
}

/* One untrusted worker process: its own slice of the mix, seeded. */
static void worker(int id)
{
	char p[512], buf[64 * 1024], wbuf[16 * 1024];
	unsigned seed = 1234u + (unsigned)id;
	fill(wbuf, sizeof(wbuf), seed);
	for (int op = 0; op < OPS_PER_WORKER; op++) {
		seed = seed * 1103515245u + 12345u;
		int f = (int)((seed >> 8) % NSMALL);
		snprintf(p, sizeof(p), "%s/d%02d/s%05d", mnt, f % 50, f);
		if ((seed >> 4) % 10 < 8) {
			int fd = open(p, O_RDONLY);
			if (fd < 0)
				_exit(1);
			while (read(fd, buf, sizeof(buf)) > 0)
				;
			close(fd);
		} else {
			int fd = open(p, O_WRONLY | O_TRUNC);
			if (fd < 0 || write(fd, wbuf, 4096 + (seed >> 12) % 8192) < 0)
				_exit(2);
			close(fd);
		}
	}
	for (int i = 0; i < LARGE_WRITES; i++) {
		seed = seed * 1103515245u + 12345u;
		snprintf(p, sizeof(p), "%s/large%d", mnt, (int)((seed >> 8) % NLARGE));
		int fd = open(p, O_WRONLY);
		char *mb = malloc(1 << 20);
		fill(mb, 1 << 20, seed);
		off_t off = (off_t)((seed >> 4) % (LARGE_MB - 1)) << 20;
		if (fd < 0 || pwrite(fd, mb, 1 << 20, off) != 1 << 20)
			_exit(3);
		free(mb);
		close(fd);
	}
	_exit(0);
}

static double run_workload(void)
{
	double t0 = now_s();
	pid_t w[2];
	for (int i = 0; i < 2; i++)
		if ((w[i] = fork()) == 0)
			worker(i);
	int bad = 0;
	for (int i = 0; i < 2; i++) {
		int st;
		waitpid(w[i], &st, 0);
		bad |= !WIFEXITED(st) || WEXITSTATUS(st);
	}
	if (bad)
		fprintf(stderr, "vault_cost: a worker failed\n");
	return now_s() - t0;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_d);
	return v[n / 2];
}

struct breakdown {
	struct vault_guard_stats g;
	struct vault_store_stats s;
};

/* ---- the floor: every open answered at once, nothing else ---- */

static int floor_fan;
static atomic_bool floor_stop;
static atomic_ulong floor_events;

static void *floor_reader(void *arg)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct fanotify_event_metadata))));
	struct pollfd pf = {.fd = floor_fan, .events = POLLIN};
	while (!atomic_load(&floor_stop)) {
		if (poll(&pf, 1, 50) <= 0)
			continue;
		ssize_t n = read(floor_fan, buf, sizeof(buf));
		const struct fanotify_event_metadata *m = (const void *)buf;
		for (; n > 0 && FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
			struct fanotify_response r = {.fd = m->fd, .response = FAN_ALLOW};
			if (write(floor_fan, &r, sizeof(r)) < 0)
				perror("vault_cost: floor answer");
			close(m->fd);
			atomic_fetch_add(&floor_events, 1);
		}
	}
	return NULL;
}

static double floor_run(void)
{
	pthread_t t;
	double d = -1;
	floor_fan = fanotify_init(FAN_CLASS_PRE_CONTENT | FAN_REPORT_TID | FAN_CLOEXEC |
					  FAN_UNLIMITED_QUEUE,
				  O_RDONLY | O_LARGEFILE | O_CLOEXEC);
	if (floor_fan < 0)
		return -1;
	atomic_store(&floor_stop, false);
	atomic_store(&floor_events, 0);
	pthread_create(&t, NULL, floor_reader, NULL);
	if (fanotify_mark(floor_fan, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_OPEN_PERM, AT_FDCWD, mnt) == 0)
		d = run_workload();
	atomic_store(&floor_stop, true);
	pthread_join(t, NULL);
	close(floor_fan);
	return d;
}

enum variant { V_FULL, V_NOHOLDS, V_NOBPF, V_NOLEASES, V__N };
static const char *const vname[V__N] = {
	"guard (protect, held files)  ", "guard (protect, none held)   ",
	"guard, intent from /proc     ", "guard, no leases (reads paid)"};

static double guarded(enum variant v, struct breakdown *bd)
{
	char cmd[1024];
	/* A fresh vault per run; its files and directory carry the seal's immutable and
	 * append-only flags (vault/seal.h), which rm cannot get past. */
	snprintf(cmd, sizeof(cmd), "chattr -R -i -a '%s' 2>/dev/null; rm -rf '%s'", vdir, vdir);
	sh(cmd);
	struct vault_store *s = NULL;
	struct vault_guard *g = NULL;
	double t = -1;
	if (vault_store_open(vdir, NULL, &s))
		return -1;
	struct vault_guard_fs fs = {.mount = mnt, .store = s};
	struct vault_guard_opts o = {.workers = 2, .no_name_history = v == V_NOHOLDS,
				     .no_bpf = v == V_NOBPF, .lease_signal = v == V_NOLEASES ? -1 : 0};
	if (vault_guard_start(&fs, 1, &o, &g) == 0) {
		t = run_workload();
		vault_guard_stats(g, &bd->g);
		vault_store_stats(s, &bd->s);
		vault_guard_stop(g);
	}
	vault_store_close(s);
	return t;
}

int main(int argc, char **argv)
{
	const char *fstype = argc > 1 && argv[1][0] != '-' ? argv[1] : "ext4";
	bool ablate = argc > 1 && strcmp(argv[argc - 1], "--ablate") == 0;
	int rounds = getenv("VAULT_COST_ROUNDS") ? atoi(getenv("VAULT_COST_ROUNDS")) : 3;
	if (rounds < 1 || rounds > MAX_ROUNDS)
		rounds = 3;
	char cmd[4096];
	if (strcmp(fstype, "ext4") && strcmp(fstype, "xfs") && strcmp(fstype, "btrfs")) {
		fprintf(stderr, "usage: vault_cost [ext4|xfs|btrfs] [--ablate]\n");
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "vault_cost: needs root\n");
		return 77;
	}
	mkdir("/tmp/vlt2", 0700);
	snprintf(img, sizeof(img), "/tmp/vlt2/bench-%s.img", fstype);
	snprintf(mnt, sizeof(mnt), "/tmp/vlt2/bench-%s", fstype);
	snprintf(vdir, sizeof(vdir), "%s/" VAULT_DIR_NAME, mnt);
	snprintf(cmd, sizeof(cmd),
		 "umount '%s' 2>/dev/null; rm -f '%s'; mkdir -p '%s' && truncate -s 2G '%s' &&"
		 " mkfs.%s %s '%s' >/dev/null 2>&1 && mount -o loop '%s' '%s'",
		 mnt, img, mnt, img, fstype, strcmp(fstype, "ext4") == 0 ? "-q -F" : "-q -f", img, img, mnt);
	if (sh(cmd)) {
		fprintf(stderr, "vault_cost: cannot make the %s image\n", fstype);
		return 1;
	}
	char p[512], buf[16384];
	for (int d = 0; d < 50; d++) {
		snprintf(p, sizeof(p), "%s/d%02d", mnt, d);
		mkdir(p, 0755);
	}
	for (int i = 0; i < NSMALL; i++) {
		snprintf(p, sizeof(p), "%s/d%02d/s%05d", mnt, i % 50, i);
		size_t n = 4096 + (size_t)(i * 37 % 12288);
		fill(buf, n, (unsigned)i);
		int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
		if (fd < 0 || write(fd, buf, n) != (ssize_t)n)
			return 1;
		close(fd);
	}
	for (int i = 0; i < NLARGE; i++) {
		snprintf(cmd, sizeof(cmd), "head -c %dM /dev/urandom > '%s/large%d'", LARGE_MB, mnt, i);
		sh(cmd);
	}
	sync();

	double base[MAX_ROUNDS], flo[MAX_ROUNDS], t[V__N][MAX_ROUNDS];
	struct breakdown bd[V__N];
	memset(bd, 0, sizeof(bd));
	int nv = ablate ? V__N : V_NOBPF;
	for (int r = 0; r < rounds; r++) {
		base[r] = run_workload();
		flo[r] = floor_run();
		for (int v = 0; v < nv; v++)
			t[v][r] = guarded((enum variant)v, &bd[v]);
	}
	double b = median(base, rounds), fl = median(flo, rounds);
	printf("vault_cost (%s): 2 untrusted processes x %d ops on %d small files (80%% read, 20%%"
	       " O_TRUNC rewrite) + %d x 1 MiB pwrites into %d x %d MiB files; median of %d\n",
	       fstype, OPS_PER_WORKER, NSMALL, 2 * LARGE_WRITES, NLARGE, LARGE_MB, rounds);
	printf("  no guard                       %7.3f s  1.00x\n", b);
	printf("  floor: FAN_OPEN_PERM, allowed  %7.3f s  %.2fx  (%lu opens, each a round trip)\n",
	       fl, fl / b, (unsigned long)atomic_load(&floor_events));
	for (int v = 0; v < nv; v++) {
		double m = median(t[v], rounds);
		printf("  %s  %7.3f s  %.2fx  (%.2fx the floor)\n", vname[v], m, m / b, m / fl);
	}
	for (int v = 0; v < nv; v++) {
		const struct vault_guard_stats *g = &bd[v].g;
		printf("  breakdown, %s (last round):\n", vname[v]);
		printf("    %llu events = %llu open + %llu pre-access; %llu ward's own; %llu answered by"
		       " the reader (no worker); intent: %llu eBPF, %llu /proc, %llu unknown\n",
		       (unsigned long long)g->events, (unsigned long long)g->open_perm,
		       (unsigned long long)g->pre_access, (unsigned long long)g->self,
		       (unsigned long long)g->fast, (unsigned long long)g->intent_bpf,
		       (unsigned long long)g->intent_proc, (unsigned long long)g->unknown_intent);
		printf("    %llu reads allowed at once; %llu inodes with free reads (%llu leases taken,"
		       " %llu held at the end, %llu broken)\n",
		       (unsigned long long)g->read_only, (unsigned long long)g->reads_freed,
		       (unsigned long long)g->leases_taken, (unsigned long long)g->leases_held,
		       (unsigned long long)g->lease_breaks);
		printf("    %llu full saves, %llu range saves, %llu already saved; %llu files held"
		       " (%llu at the end, %llu saved as their name went); %llu vault-group events;"
		       " fail-open %llu, timeouts %llu\n",
		       (unsigned long long)g->saved_full, (unsigned long long)g->saved_range,
		       (unsigned long long)g->already_saved, (unsigned long long)g->holds_taken,
		       (unsigned long long)g->holds_held, (unsigned long long)g->holds_saved,
		       (unsigned long long)g->tamper_events, (unsigned long long)g->fail_open,
		       (unsigned long long)g->timeouts);
		printf("    vault: %llu versions, %.1f MiB counted\n",
		       (unsigned long long)bd[v].s.versions, (double)bd[v].s.bytes / (1 << 20));
	}
	snprintf(cmd, sizeof(cmd), "umount '%s'; rm -f '%s'; rmdir '%s'", mnt, img, mnt);
	sh(cmd);
	return 0;
}
