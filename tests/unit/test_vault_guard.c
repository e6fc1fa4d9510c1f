/* test_vault_guard.c: the pre-content guard against real child processes on loop-mounted
 * ext4: what each kind of access saves, epochs and ignore marks, a trusted actor, the
 * vault denied to another root process, a full vault under fail-open and fail-closed,
 * and SIGKILL of the guard while writers wait on it. Run as root on Linux 6.14+. */
#include <sqlite3.h>
#include <sys/prctl.h>

#include "../helpers/vault_img.h"
#include "t.h"
#include "vault/guard.h"
#include "vault/store.h"

struct counts {
	const char *path;
	int n[VAULT_KIND__COUNT];
	int64_t last_id[VAULT_KIND__COUNT];
};

static int count_cb(void *ctx, const struct vault_version *v)
{
	struct counts *c = ctx;
	if (v->path_len != strlen(c->path) || memcmp(v->path, c->path, v->path_len) != 0)
		return 0;
	c->n[v->kind]++;
	c->last_id[v->kind] = v->id;
	return 0;
}

/* Versions saved under exactly this path. */
static struct counts versions_of(struct vault_store *s, const char *path)
{
	struct counts c = {.path = path};
	vault_store_list(s, path, strlen(path), 0, count_cb, &c);
	return c;
}

static bool version_sha_is(struct vault_store *s, int64_t id, const uint8_t want[32])
{
	struct vault_version v;
	int fd;
	uint8_t got[32];
	if (vault_store_get(s, id, &v) || vault_store_open_version(s, &v, &fd))
		return false;
	int rc = vault_sha256_fd(fd, got);
	close(fd);
	return rc == 0 && memcmp(got, want, 32) == 0;
}

static bool trusted_by_comm(void *ctx, pid_t tid)
{
	char p[64], comm[32] = "";
	snprintf(p, sizeof(p), "/proc/%d/comm", (int)tid);
	int fd = open(p, O_RDONLY);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, comm, sizeof(comm) - 1);
	close(fd);
	return n > 0 && strncmp(comm, "wardtrusted", 11) == 0;
}

static void mkfile(const char *dir, const char *name, size_t n, uint32_t seed, char *path, size_t cap,
		   uint8_t sha[32])
{
	snprintf(path, cap, "%s/%s", dir, name);
	char *b = malloc(n);
	vimg_fill(b, n, seed);
	vimg_write(path, b, n);
	free(b);
	if (sha)
		vimg_sha(path, sha);
}

static struct vault_guard_stats gstats(struct vault_guard *g)
{
	struct vault_guard_stats s;
	vault_guard_stats(g, &s);
	return s;
}

static void test_decisions(void)
{
	struct vimg im;
	char a[512], b[512], c[512], big[512], t[512], vdir[512], p[1024];
	uint8_t sa[32], sb[32], sc[32], sbig[32], st_[32];
	if (vimg_make(&im, "guard", "ext4", 256)) {
		T_CHECK(0, "image");
		return;
	}
	mkfile(im.mnt, "a.txt", 5000, 1, a, sizeof(a), sa);
	mkfile(im.mnt, "b.txt", 7000, 2, b, sizeof(b), sb);
	mkfile(im.mnt, "c.bin", 20000, 3, c, sizeof(c), sc);
	mkfile(im.mnt, "big.vmdk", 8 << 20, 4, big, sizeof(big), sbig);
	mkfile(im.mnt, "t.txt", 4000, 5, t, sizeof(t), st_);
	snprintf(vdir, sizeof(vdir), "%s/" VAULT_DIR_NAME, im.mnt);
	struct vault_store *s = NULL;
	struct vault_guard *g = NULL;
	T_CHECK(vault_store_open(vdir, NULL, &s) == 0, "store");
	struct vault_guard_fs fs = {.mount = im.mnt, .store = s};
	struct vault_guard_opts o = {.large_bytes = 4 << 20, .chunk_bytes = 1 << 20,
				     .trusted = trusted_by_comm};
	int rc = vault_guard_start(&fs, 1, &o, &g);
	T_CHECK(rc == 0, "guard start: %d", rc);
	if (rc)
		goto out;
	T_CHECK(gstats(g).tid_reporting, "FAN_REPORT_TID accepted with FAN_CLASS_PRE_CONTENT");

	/* A read-only open: allowed, and the name is linked once. */
	T_CHECK(vimg_wait(vimg_spawn("open", a, NULL)) == 0, "reader opens a");
	T_CHECK(vimg_wait(vimg_spawn("open", a, NULL)) == 0, "reader opens a again");
	struct counts k = versions_of(s, a);
	T_CHECK(k.n[VAULT_KIND_LINK] == 1 && k.n[VAULT_KIND_COPY] == 0, "reads: one link, no copy (%d %d)",
		k.n[VAULT_KIND_LINK], k.n[VAULT_KIND_COPY]);
	T_CHECK(vimg_sh("cat '%s' >/dev/null", a) == 0 && gstats(g).read_only >= 3,
		"cat's reads are recognised as reads (%llu)", (unsigned long long)gstats(g).read_only);
	k = versions_of(s, a);
	T_CHECK(k.n[VAULT_KIND_COPY] == 0, "reads never copy");

	/* open(O_TRUNC): saved before the truncation. */
	T_CHECK(vimg_wait(vimg_spawn("overwrite", a, NULL)) == 0, "overwrite a");
	k = versions_of(s, a);
	T_CHECK(k.n[VAULT_KIND_COPY] == 1 && version_sha_is(s, k.last_id[VAULT_KIND_COPY], sa),
		"O_TRUNC: the copy is the original (%d copies)", k.n[VAULT_KIND_COPY]);
	/* Another process truncates it again: its own pre-image is saved too. */
	uint8_t sa2[32];
	vimg_sha(a, sa2);
	T_CHECK(vimg_wait(vimg_spawn("overwrite", a, NULL)) == 0, "overwrite a by another process");
	k = versions_of(s, a);
	T_CHECK(k.n[VAULT_KIND_COPY] == 2 && version_sha_is(s, k.last_id[VAULT_KIND_COPY], sa2),
		"a different actor's O_TRUNC saves the content the first one left");

	/* One process appending twice: one save, then the ignore mark makes writes free. */
	uint64_t pre = gstats(g).pre_access;
	T_CHECK(vimg_sh("echo one >> '%s'; echo two >> '%s'; echo three >> '%s'", b, b, b) == 0, "append");
	k = versions_of(s, b);
	T_CHECK(k.n[VAULT_KIND_COPY] == 1 && version_sha_is(s, k.last_id[VAULT_KIND_COPY], sb),
		"append: one copy of the original (%d)", k.n[VAULT_KIND_COPY]);
	T_CHECK(gstats(g).pre_access - pre == 1, "only the first write raised FAN_PRE_ACCESS (%llu)",
		(unsigned long long)(gstats(g).pre_access - pre));
	/* A new epoch: the next write is saved again (content after the appends). */
	uint8_t sb2[32];
	vimg_sha(b, sb2);
	T_CHECK(vault_guard_new_epoch(g) == 0, "new epoch");
	T_CHECK(vimg_sh("echo four >> '%s'", b) == 0, "append in the new epoch");
	k = versions_of(s, b);
	T_CHECK(k.n[VAULT_KIND_COPY] == 2 && version_sha_is(s, k.last_id[VAULT_KIND_COPY], sb2),
		"new epoch: saved again, with the appended content (%d)", k.n[VAULT_KIND_COPY]);

	/* Rewrite through a shared writable mapping: saved at mmap time. */
	T_CHECK(vimg_wait(vimg_spawn("mmap", c, NULL)) == 0, "mmap rewrite");
	k = versions_of(s, c);
	T_CHECK(k.n[VAULT_KIND_COPY] == 1 && version_sha_is(s, k.last_id[VAULT_KIND_COPY], sc),
		"mmap: the copy is the original");
	uint8_t now[32];
	vimg_sha(c, now);
	T_CHECK(memcmp(now, sc, 32) != 0, "and the file did change");

	/* ftruncate via truncate(1): a write the syscall reveals. */
	T_CHECK(vimg_sh("truncate -s 100 '%s'", t) == 0, "truncate");
	k = versions_of(s, t);
	T_CHECK(k.n[VAULT_KIND_COPY] == 1 && version_sha_is(s, k.last_id[VAULT_KIND_COPY], st_),
		"ftruncate: saved first");

	/* A large file: only the 1 MiB chunk about to be written. */
	T_CHECK(vimg_wait(vimg_spawn("pwrite", big, "0x500800")) == 0, "pwrite into the large file");
	k = versions_of(s, big);
	struct vault_version v;
	vault_store_get(s, k.last_id[VAULT_KIND_RANGE], &v);
	T_CHECK(k.n[VAULT_KIND_RANGE] == 1 && k.n[VAULT_KIND_COPY] == 0 && v.range_off == 5 << 20 &&
			v.range_len == 1 << 20,
		"large: one range version %lld+%lld", (long long)v.range_off, (long long)v.range_len);
	{
		char *all = malloc(8 << 20);
		vimg_fill(all, 8 << 20, 4);
		int fd;
		char *got = malloc(1 << 20);
		bool same = vault_store_open_version(s, &v, &fd) == 0 &&
			    pread(fd, got, 1 << 20, 0) == 1 << 20 && memcmp(got, all + (5 << 20), 1 << 20) == 0;
		close(fd);
		T_CHECK(same, "range content is the original chunk");
		free(got);
		free(all);
	}
	T_CHECK(vimg_wait(vimg_spawn("pwrite", big, "0x500000")) == 0, "write the same chunk again");
	k = versions_of(s, big);
	T_CHECK(k.n[VAULT_KIND_RANGE] == 1, "same chunk, same epoch: not saved twice");

	/* A trusted actor: no save. */
	uint8_t dsha[32];
	mkfile(im.mnt, "d.txt", 3000, 9, p, sizeof(p), dsha);
	T_CHECK(vimg_wait(vimg_spawn("trusted-overwrite", p, NULL)) == 0, "trusted overwrite");
	k = versions_of(s, p);
	T_CHECK(k.n[VAULT_KIND_COPY] == 0 && gstats(g).trusted > 0, "trusted: nothing saved");

	/* Tamper: another root process cannot open the index or a version; ward can. */
	snprintf(p, sizeof(p), "%s/" VAULT_INDEX_NAME, vdir);
	T_CHECK(vimg_wait(vimg_spawn("open", p, NULL)) == EPERM, "root child: index.db EPERM");
	vault_store_get(s, k.last_id[VAULT_KIND_LINK] ? k.last_id[VAULT_KIND_LINK] : 1, &v);
	snprintf(p, sizeof(p), "%s/%s", vdir, v.vname);
	T_CHECK(vimg_wait(vimg_spawn("open", p, NULL)) == EPERM, "root child: version file EPERM");
	T_CHECK(vimg_sh("cat '%s' > /dev/null 2>&1", p) != 0, "root shell: cat fails");
	int fd = open(p, O_RDONLY);
	T_CHECK(fd >= 0, "ward itself opens the version");
	if (fd >= 0)
		close(fd);
	struct vault_guard_stats gs = gstats(g);
	T_CHECK(gs.tamper_denied >= 3, "tamper denials counted: %llu", (unsigned long long)gs.tamper_denied);
	T_CHECK(gs.fail_open == 0 && gs.save_failed == 0 && gs.timeouts == 0, "no failures");
	printf("guard: %llu events (%llu open, %llu pre-access, %llu own), %llu reads, %llu full saves,"
	       " %llu range saves, %llu links, %llu already saved, %llu tamper denials\n",
	       (unsigned long long)gs.events, (unsigned long long)gs.open_perm,
	       (unsigned long long)gs.pre_access, (unsigned long long)gs.self,
	       (unsigned long long)gs.read_only, (unsigned long long)gs.saved_full,
	       (unsigned long long)gs.saved_range, (unsigned long long)gs.linked,
	       (unsigned long long)gs.already_saved, (unsigned long long)gs.tamper_denied);
out:
	vault_guard_stop(g);
	vault_store_close(s);
	vimg_destroy(&im);
}

static void test_full(enum vault_guard_policy pol)
{
	struct vimg im;
	char f[512], vdir[512];
	uint8_t sf[32], now[32];
	if (vimg_make(&im, "full", "ext4", 64)) {
		T_CHECK(0, "image");
		return;
	}
	mkfile(im.mnt, "f.bin", 64 << 10, 7, f, sizeof(f), sf);
	snprintf(vdir, sizeof(vdir), "%s/" VAULT_DIR_NAME, im.mnt);
	struct vault_store_opts so = {.max_bytes = 16 << 10};
	struct vault_store *s = NULL;
	struct vault_guard *g = NULL;
	vault_store_open(vdir, &so, &s);
	struct vault_guard_fs fs = {.mount = im.mnt, .store = s};
	struct vault_guard_opts o = {.policy = pol};
	int rc = vault_guard_start(&fs, 1, &o, &g);
	T_CHECK(rc == 0, "start %d", rc);
	if (rc)
		goto out;
	int ex = vimg_wait(vimg_spawn("overwrite", f, NULL));
	vimg_sha(f, now);
	struct vault_guard_stats gs = gstats(g);
	struct vault_store_stats ss;
	vault_store_stats(s, &ss);
	if (pol == VAULT_FAIL_OPEN) {
		T_CHECK(ex == 0 && memcmp(now, sf, 32) != 0, "fail-open: the writer went on (%d)", ex);
		T_CHECK(gs.enospc == 1 && gs.fail_open == 1, "counted: enospc %llu fail_open %llu",
			(unsigned long long)gs.enospc, (unsigned long long)gs.fail_open);
	} else {
		T_CHECK(ex == 100 && memcmp(now, sf, 32) == 0, "fail-closed: the open failed (%d), file intact", ex);
		T_CHECK(gs.enospc == 1 && gs.fail_closed == 1, "counted: enospc %llu fail_closed %llu",
			(unsigned long long)gs.enospc, (unsigned long long)gs.fail_closed);
	}
	T_CHECK(ss.enospc == 1 && ss.versions == 0, "store: enospc %llu", (unsigned long long)ss.enospc);
out:
	vault_guard_stop(g);
	vault_store_close(s);
	vimg_destroy(&im);
}

/* ---- SIGKILL of the guard ---- */

static bool hold_everyone(void *ctx, pid_t tid)
{
	pause();   /* a guard that never answers: only SIGKILL ends it */
	return false;
}

/* The guard in its own process; writes one byte to ready_fd once marks are in place. */
static int guard_child(const char *mnt, const char *mode)
{
	char vdir[512];
	snprintf(vdir, sizeof(vdir), "%s/" VAULT_DIR_NAME, mnt);
	struct vault_store *s;
	struct vault_guard *g;
	if (vault_store_open(vdir, NULL, &s))
		return 1;
	struct vault_guard_fs fs = {.mount = mnt, .store = s};
	struct vault_guard_opts o = {.workers = 2};
	if (strcmp(mode, "hold") == 0)
		o.trusted = hold_everyone;
	if (vault_guard_start(&fs, 1, &o, &g))
		return 2;
	if (write(3, "r", 1) != 1)
		return 3;
	for (;;)
		pause();
}

static pid_t start_guard_child(const char *mnt, const char *mode)
{
	int pfd[2];
	if (pipe(pfd))
		return -1;
	pid_t p = fork();
	if (p == 0) {
		dup2(pfd[1], 3);
		execl("/proc/self/exe", "vault-child", "guard", mnt, mode, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	char c;
	ssize_t n = read(pfd[0], &c, 1);
	close(pfd[0]);
	return n == 1 ? p : -1;
}

static bool blocked_in_fanotify(pid_t p)
{
	char path[64], w[128] = "";
	snprintf(path, sizeof(path), "/proc/%d/wchan", (int)p);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, w, sizeof(w) - 1);
	close(fd);
	return n > 0 && strstr(w, "fanotify") != NULL;
}

static void test_kill(void)
{
	struct vimg im;
	char f[512], vdir[512];
	uint8_t sf[32];
	if (vimg_make(&im, "kill", "ext4", 512)) {
		T_CHECK(0, "image");
		return;
	}
	snprintf(vdir, sizeof(vdir), "%s/" VAULT_DIR_NAME, im.mnt);
	mkfile(im.mnt, "held.txt", 4096, 11, f, sizeof(f), sf);

	/* 1. A guard that never answers: the writer waits in fanotify until SIGKILL. */
	pid_t gp = start_guard_child(im.mnt, "hold");
	T_CHECK(gp > 0, "hold guard started");
	pid_t w = vimg_spawn("overwrite", f, NULL);
	bool blocked = false;
	for (int i = 0; i < 1000 && !(blocked = blocked_in_fanotify(w)); i++)
		usleep(10000);   /* waiting for a state, not asserting a time */
	T_CHECK(blocked, "writer is blocked in the permission wait");
	kill(gp, SIGKILL);
	vimg_wait(gp);
	T_CHECK(vimg_wait(w) == 0, "after SIGKILL of the guard the writer finishes");

	/* 2. Kill the guard in the middle of a saving workload. */
	uint8_t sha1[32];
	for (int i = 1; i <= 60; i++) {
		char name[32], p[512];
		snprintf(name, sizeof(name), "w%d.bin", i);
		mkfile(im.mnt, name, 300000, (uint32_t)(100 + i), p, sizeof(p), i == 1 ? sha1 : NULL);
	}
	gp = start_guard_child(im.mnt, "save");
	T_CHECK(gp > 0, "saving guard started");
	int out[2];
	pipe(out);
	pid_t sh = fork();
	if (sh == 0) {
		dup2(out[1], 1);
		close(out[0]);
		char cmd[512];
		snprintf(cmd, sizeof(cmd),
			 "cd '%s' && for i in $(seq 1 60); do head -c 300000 /dev/urandom > w$i.bin; echo $i; done",
			 im.mnt);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	FILE *in = fdopen(out[0], "r");
	char line[32];
	int lines = 0;
	while (lines < 20 && fgets(line, sizeof(line), in))
		lines++;
	kill(gp, SIGKILL);
	vimg_wait(gp);
	while (fgets(line, sizeof(line), in))
		lines++;
	fclose(in);
	T_CHECK(vimg_wait(sh) == 0 && lines == 60, "the workload finished after the kill (%d files)", lines);

	struct vault_store *s = NULL;
	T_CHECK(vault_store_open(vdir, NULL, &s) == 0, "store reopens");
	if (!s)
		goto out;
	sqlite3_stmt *q;
	sqlite3_prepare_v2(vault_store_db(s), "PRAGMA integrity_check", -1, &q, NULL);
	T_CHECK(sqlite3_step(q) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(q, 0), "ok") == 0,
		"integrity_check ok after SIGKILL");
	sqlite3_finalize(q);
	char w1[512];
	snprintf(w1, sizeof(w1), "%s/w1.bin", im.mnt);
	struct counts k = versions_of(s, w1);
	T_CHECK(k.n[VAULT_KIND_COPY] == 1 && version_sha_is(s, k.last_id[VAULT_KIND_COPY], sha1),
		"w1's original is in the vault");
	struct vault_store_stats ss;
	vault_store_stats(s, &ss);
	T_CHECK(ss.versions >= 20, "at least the 20 saves before the kill: %llu",
		(unsigned long long)ss.versions);
	printf("kill: %llu versions intact after SIGKILL mid-workload, %llu leftovers removed\n",
	       (unsigned long long)ss.versions, (unsigned long long)ss.orphans_removed);
out:
	vault_store_close(s);
	vimg_destroy(&im);
}

int main(int argc, char **argv)
{
	if (argc >= 4 && strcmp(argv[1], "guard") == 0)
		return guard_child(argv[2], argv[3]);
	if (argc >= 3 && strcmp(argv[1], "trusted-overwrite") == 0) {
		prctl(PR_SET_NAME, "wardtrusted");
		return vimg_child("overwrite", argv[2], argv[3]);
	}
	if (argc >= 4)
		return vimg_child(argv[1], argv[2], argv[3]);
	if (geteuid() != 0) {
		printf("test_vault_guard: needs root (loop mounts, fanotify)\n");
		return 77;
	}
	test_decisions();
	test_full(VAULT_FAIL_OPEN);
	test_full(VAULT_FAIL_CLOSED);
	test_kill();
	return T_DONE("test_vault_guard");
}
