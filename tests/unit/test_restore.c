/* test_restore.c: an attack by real child processes while the guard runs (overwrite,
 * O_TRUNC, append, mmap rewrite, ftruncate, encrypted copy + delete, rename away, a write
 * into a large file, hard links, a sparse file, odd names, a ransom note), then restore by
 * path to the time before the attack: dry run, a run stopped after one file and re-run, a
 * third run that changes nothing. Every file must hash as before the attack. On ext4
 * (copies) and xfs (reflinks). Then restore by time at several moments of a file's history,
 * and, on the store alone, names of one file restored as hard links and a range with holes
 * written back sparse. */
#include <dirent.h>
#include <sys/stat.h>

#include "../helpers/vault_img.h"
#include "t.h"
#include "vault/guard.h"
#include "vault/restore.h"
#include "vault/store.h"

#define NFILES 14
static const char *const names[NFILES] = {
	"f1.doc", "f2.log", "f3.xls", "f4.pdf", "f5.db", "f6.txt", "big.vmdk", "h1", "h2",
	"sparse.img", "sp ace.txt", "new\nline.txt", "\xff\xfe-latin1.txt", "untouched.txt",
};

static int stop_after_one(void *ctx, size_t done) { return done >= 1; }

static int count_lines(const char *buf, const char *needle)
{
	int n = 0;
	for (const char *p = buf; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static void scenario(const char *fstype)
{
	struct vimg im;
	char dir[512], p[1024], vdir[512], q[512];
	uint8_t sha[NFILES][32], now[32];
	struct stat orig_st[NFILES];
	if (vimg_make(&im, "restore", fstype, 320)) {
		T_CHECK(0, "%s image", fstype);
		return;
	}
	snprintf(dir, sizeof(dir), "%s/data", im.mnt);
	mkdir(dir, 0755);
	for (int i = 0; i < NFILES; i++) {
		if (strcmp(names[i], "h2") == 0) {
			char h1[600];
			snprintf(h1, sizeof(h1), "%s/h1", dir);
			snprintf(p, sizeof(p), "%s/h2", dir);
			link(h1, p);
		} else if (strcmp(names[i], "sparse.img") == 0) {
			snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
			int fd = open(p, O_CREAT | O_RDWR | O_TRUNC, 0644);
			char b[4096];
			vimg_fill(b, sizeof(b), 77);
			pwrite(fd, b, sizeof(b), 0);
			pwrite(fd, b, sizeof(b), 2 << 20);
			ftruncate(fd, 3 << 20);
			close(fd);
		} else {
			size_t n = strcmp(names[i], "big.vmdk") == 0 ? 8 << 20 : 1000 + 777 * (size_t)i;
			char *b = malloc(n);
			vimg_fill(b, n, (uint32_t)i + 1);
			snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
			vimg_write(p, b, n);
			free(b);
		}
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		chmod(p, 0640);
		chown(p, 1234, 5678);
		struct timespec t[2] = {{1600000000, 111}, {1600000000 + i, 222000}};
		utimensat(AT_FDCWD, p, t, 0);
		vimg_sha(p, sha[i]);
		stat(p, &orig_st[i]);
	}

	snprintf(vdir, sizeof(vdir), "%s/" VAULT_DIR_NAME, im.mnt);
	struct vault_store *s = NULL;
	struct vault_guard *g = NULL;
	T_CHECK(vault_store_open(vdir, NULL, &s) == 0, "store");
	struct vault_guard_fs fs = {.mount = im.mnt, .store = s};
	struct vault_guard_opts o = {.large_bytes = 4 << 20, .chunk_bytes = 1 << 20};
	int rc = vault_guard_start(&fs, 1, &o, &g);
	T_CHECK(rc == 0, "guard %d", rc);
	if (rc)
		goto out;

	/* The attack, by processes that are not ward. */
	int64_t t_start = vault_now_ns();
	rc = vimg_sh("cd '%s' && echo evil > f1.doc && echo more >> f2.log &&"
		     " cat f3.xls | tr a-z n-za-m > f3.xls.enc && rm f3.xls &&"
		     " cat f4.pdf > /dev/null && mv f4.pdf f4.pdf.locked && echo x >> f4.pdf.locked &&"
		     " truncate -s 0 f6.txt && echo evil > h1 &&"
		     " printf XXXX | dd of=sparse.img conv=notrunc status=none &&"
		     " cat untouched.txt > /dev/null && echo 'pay up' > README-RANSOM.txt", dir);
	T_CHECK(rc == 0, "attack script: %d", rc);
	snprintf(p, sizeof(p), "%s/f5.db", dir);
	T_CHECK(vimg_wait(vimg_spawn("mmap", p, NULL)) == 0, "mmap rewrite");
	snprintf(p, sizeof(p), "%s/big.vmdk", dir);
	T_CHECK(vimg_wait(vimg_spawn("pwrite", p, "0x500800")) == 0, "large file write");
	for (int i = 10; i < 13; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		T_CHECK(vimg_wait(vimg_spawn("overwrite", p, NULL)) == 0, "odd name %d overwritten", i);
	}
	int changed = 0;
	for (int i = 0; i < NFILES; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		changed += vimg_sha(p, now) != 0 || memcmp(now, sha[i], 32) != 0;
	}
	T_CHECK(changed == NFILES - 1, "%s: the attack changed %d of %d files", fstype, changed, NFILES);
	struct vault_guard_stats gs;
	vault_guard_stats(g, &gs);
	T_CHECK(gs.fail_open == 0 && gs.save_failed == 0, "no save failed");

	/* Restore while the guard still runs: ward reads its own vault. */
	char q1[600], q2[600], q3[600];
	snprintf(q1, sizeof(q1), "%s/f3.xls.enc", dir);
	snprintf(q2, sizeof(q2), "%s/f4.pdf.locked", dir);
	snprintf(q3, sizeof(q3), "%s/README-RANSOM.txt", dir);
	const char *quar[] = {q1, q2, q3};
	snprintf(q, sizeof(q), "%s/.ward-quarantine", im.mnt);
	char *rep = NULL;
	size_t replen = 0;
	FILE *rf = open_memstream(&rep, &replen);
	struct vault_restore_opts ro = {.dry_run = true, .report = rf, .quarantine = quar,
					.nquarantine = 3, .quarantine_dir = q};
	struct vault_restore_stats rs = {0};
	/* The state at t_start: for each path the earliest version saved since (what it held
	 * until that first change); untouched.txt was only read: nothing to do. */
	rc = vault_restore_by_path(s, dir, strlen(dir), t_start, &ro, &rs);
	fflush(rf);
	T_CHECK(rc == 0 && rs.would_restore == NFILES - 2 && rs.would_quarantine == 3 && rs.restored == 0,
		"dry run: %d, would restore %llu (h1 and h2 are one inode), quarantine %llu", rc,
		(unsigned long long)rs.would_restore, (unsigned long long)rs.would_quarantine);
	snprintf(p, sizeof(p), "%s/f1.doc", dir);
	vimg_sha(p, now);
	T_CHECK(memcmp(now, sha[0], 32) != 0 && access(q1, F_OK) == 0, "dry run changed nothing");
	T_CHECK(count_lines(rep, "\"would_restore\"") == NFILES - 2, "dry run reported");

	/* Stopped after the first file... */
	ro.dry_run = false;
	ro.after_each = stop_after_one;
	memset(&rs, 0, sizeof(rs));
	rc = vault_restore_by_path(s, dir, strlen(dir), t_start, &ro, &rs);
	T_CHECK(rc == -EINTR && rs.restored + rs.unchanged == 1 && rs.quarantined == 3,
		"interrupted: %d, restored %llu", rc, (unsigned long long)rs.restored);
	/* ...and run again to the end. */
	ro.after_each = NULL;
	memset(&rs, 0, sizeof(rs));
	rc = vault_restore_by_path(s, dir, strlen(dir), t_start, &ro, &rs);
	fflush(rf);
	T_CHECK(rc == 0 && rs.failed == 0, "re-run: %d, %llu failed", rc, (unsigned long long)rs.failed);
	int same = 0;
	for (int i = 0; i < NFILES; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		bool ok = vimg_sha(p, now) == 0 && memcmp(now, sha[i], 32) == 0;
		same += ok;
		T_CHECK(ok, "%s: file %d byte-identical after restore", fstype, i);
	}
	printf("restore(%s): %d of %d files byte-identical; %llu restored, %llu unchanged, "
	       "%llu stale links skipped\n",
	       fstype, same, NFILES, (unsigned long long)rs.restored, (unsigned long long)rs.unchanged,
	       (unsigned long long)rs.stale_links);
	struct stat st1;
	snprintf(p, sizeof(p), "%s/f1.doc", dir);
	stat(p, &st1);
	T_CHECK((st1.st_mode & 07777) == 0640 && st1.st_uid == 1234 && st1.st_gid == 5678 &&
			st1.st_mtim.tv_sec == orig_st[0].st_mtim.tv_sec &&
			st1.st_mtim.tv_nsec == orig_st[0].st_mtim.tv_nsec,
		"mode, owner and mtime restored");
	snprintf(p, sizeof(p), "%s/h1", dir);
	struct stat h1, h2;
	stat(p, &h1);
	snprintf(p, sizeof(p), "%s/h2", dir);
	stat(p, &h2);
	T_CHECK(h1.st_ino == h2.st_ino && h1.st_nlink == 2, "hard link kept");
	snprintf(p, sizeof(p), "%s/sparse.img", dir);
	stat(p, &st1);
	T_CHECK(st1.st_size == 3 << 20 && st1.st_blocks * 512 < (1 << 20),
		"sparse stays sparse: %lld bytes allocated", (long long)st1.st_blocks * 512);
	snprintf(p, sizeof(p), "%s/f3.xls", dir);
	T_CHECK(access(p, F_OK) == 0, "deleted file is back (held open, saved when its name went)");
	snprintf(p, sizeof(p), "%s/f4.pdf", dir);
	T_CHECK(access(p, F_OK) == 0 && access(q2, F_OK) != 0, "renamed-away file is back at its name");
	int inq = 0;
	DIR *d = opendir(q);
	for (struct dirent *e; d && (e = readdir(d));)
		inq += e->d_name[0] != '.' && strcmp(e->d_name, VAULT_QUARANTINE_LOG) != 0;
	if (d)
		closedir(d);
	T_CHECK(inq == 3 && access(q1, F_OK) != 0 && access(q3, F_OK) != 0,
		"encrypted copy, locked file and note are in quarantine (%d)", inq);
	T_CHECK(vimg_sh("test $(grep -c '\"from\"' '%s/" VAULT_QUARANTINE_LOG "') = 3", q) == 0,
		"the quarantine's log says where each of the 3 came from");
	T_CHECK(vimg_sh("find '%s' -name '.ward-restore-*' | grep -q .", dir) != 0, "no temp files left");

	/* A third run changes nothing. */
	memset(&rs, 0, sizeof(rs));
	rc = vault_restore_by_path(s, dir, strlen(dir), t_start, &ro, &rs);
	fclose(rf);
	if (getenv("VAULT_TEST_VERBOSE"))
		fputs(rep, stderr);
	T_CHECK(rc == 0 && rs.restored == 0 && rs.unchanged == NFILES - 2,
		"idempotent: %llu restored, %llu unchanged", (unsigned long long)rs.restored,
		(unsigned long long)rs.unchanged);
	T_CHECK(count_lines(rep, "\"restored\"") >= NFILES - 3 && strstr(rep, "path_hex"),
		"JSON report lists restores, with exact bytes for the non-UTF-8 name");

	/* Restore one version to another path. */
	struct vault_restore_item it = {.id = 1};
	snprintf(p, sizeof(p), "%s/elsewhere.bin", im.mnt);
	it.dest = p;
	struct vault_restore_opts ro2 = {0};
	memset(&rs, 0, sizeof(rs));
	rc = vault_restore_items(s, &it, 1, &ro2, &rs);
	T_CHECK(rc == 0 && rs.restored == 1 && access(p, F_OK) == 0, "restore to a given path: %d", rc);
	free(rep);
out:
	vault_guard_stop(g);
	vault_store_close(s);
	vimg_destroy(&im);
}

static bool file_is(const char *path, const char *want)
{
	char buf[256];
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
	if (fd >= 0)
		close(fd);
	return n == (ssize_t)strlen(want) && memcmp(buf, want, (size_t)n) == 0;
}

/* Restore by time: each moment of a file's history comes back; a file made after the time
 * is left alone (its content then is unknown); after the last change, nothing to do. */
static void scenario_times(void)
{
	struct vimg im;
	char dir[512], f[600], late[600], vdir[512];
	if (vimg_make(&im, "restore-t", "ext4", 64)) {
		T_CHECK(0, "image");
		return;
	}
	snprintf(dir, sizeof(dir), "%s/data", im.mnt);
	mkdir(dir, 0755);
	snprintf(f, sizeof(f), "%s/f.txt", dir);
	snprintf(late, sizeof(late), "%s/late.txt", dir);
	vimg_write(f, "one\n", 4);
	snprintf(vdir, sizeof(vdir), "%s/" VAULT_DIR_NAME, im.mnt);
	struct vault_store *s = NULL;
	struct vault_guard *g = NULL;
	T_CHECK(vault_store_open(vdir, NULL, &s) == 0, "store");
	struct vault_guard_fs fs = {.mount = im.mnt, .store = s};
	struct vault_guard_opts o = {0};
	if (!s || vault_guard_start(&fs, 1, &o, &g)) {
		T_CHECK(0, "guard");
		goto out;
	}
	int64_t t0 = vault_now_ns();
	T_CHECK(vimg_sh("echo two > '%s' && echo L1 > '%s'", f, late) == 0, "changes after t0");
	int64_t t1 = vault_now_ns();
	T_CHECK(vimg_sh("echo three > '%s' && echo L2 > '%s'", f, late) == 0, "changes after t1");
	int64_t t2 = vault_now_ns();
	struct vault_restore_opts ro = {0};
	struct vault_restore_stats rs = {0};
	int rc = vault_restore_by_path(s, dir, strlen(dir), t2, &ro, &rs);
	T_CHECK(rc == 0 && rs.restored == 0 && rs.unchanged == 0 && file_is(f, "three\n"),
		"nothing changed since t2: nothing to do (%d, %llu restored)", rc, (unsigned long long)rs.restored);
	memset(&rs, 0, sizeof(rs));
	rc = vault_restore_by_path(s, dir, strlen(dir), t1, &ro, &rs);
	T_CHECK(rc == 0 && file_is(f, "two\n") && file_is(late, "L1\n"), "state at t1: %d", rc);
	memset(&rs, 0, sizeof(rs));
	rc = vault_restore_by_path(s, dir, strlen(dir), t0, &ro, &rs);
	T_CHECK(rc == 0 && file_is(f, "one\n"), "state at t0: %d", rc);
	T_CHECK(rs.unknown == 1 && file_is(late, "L1\n"),
		"late.txt did not exist at t0: left alone, reported unknown (%llu)", (unsigned long long)rs.unknown);
	memset(&rs, 0, sizeof(rs));
	rc = vault_restore_by_path(s, dir, strlen(dir), t0, &ro, &rs);
	T_CHECK(rc == 0 && rs.restored == 0 && rs.unchanged == 1, "again at t0: nothing to do (%llu restored)",
		(unsigned long long)rs.restored);
out:
	vault_guard_stop(g);
	vault_store_close(s);
	vimg_destroy(&im);
}

static int64_t save_named(struct vault_store *s, const char *path, bool range, int64_t off, int64_t len)
{
	int fd = open(path, O_RDONLY);
	struct vault_save_req r = {.fd = fd, .path = path, .pid = getpid(), .exe = "/test", .epoch = 1,
				   .range_off = off, .range_len = len};
	int64_t id = 0;
	int rc = fd < 0 ? -errno : range ? vault_store_save_range(s, &r, &id) : vault_store_save(s, &r, &id);
	if (fd >= 0)
		close(fd);
	return rc ? rc : id;
}

/* The store alone: two names of one file, both gone, come back as one file again; a range
 * saved with holes goes back over a file the attacker made dense, holes included. */
static void scenario_links_holes(const char *fstype)
{
	struct vimg im;
	char dir[512], l1[600], l2[600], big[600], vdir[512];
	uint8_t want[32], now[32];
	if (vimg_make(&im, "restore-lh", fstype, 320)) {
		T_CHECK(0, "image");
		return;
	}
	snprintf(dir, sizeof(dir), "%s/d", im.mnt);
	mkdir(dir, 0755);
	snprintf(l1, sizeof(l1), "%s/l1", dir);
	snprintf(l2, sizeof(l2), "%s/l2", dir);
	snprintf(big, sizeof(big), "%s/big.img", dir);
	char data[20000];
	vimg_fill(data, sizeof(data), 42);
	vimg_write(l1, data, sizeof(data));
	link(l1, l2);
	int fd = open(big, O_CREAT | O_RDWR | O_TRUNC, 0644);
	pwrite(fd, data, 4096, 0);
	pwrite(fd, data, 4096, 6 << 20);
	ftruncate(fd, 8 << 20);
	close(fd);
	vimg_sha(big, want);
	snprintf(vdir, sizeof(vdir), "%s/" VAULT_DIR_NAME, im.mnt);
	struct vault_store *s = NULL;
	T_CHECK(vault_store_open(vdir, NULL, &s) == 0, "store");
	if (!s)
		goto out;
	int64_t v1 = save_named(s, l1, false, 0, 0), v2 = save_named(s, l2, false, 0, 0);
	int64_t vr = save_named(s, big, true, 0, 8 << 20);
	T_CHECK(v1 > 0 && v2 > 0 && vr > 0, "saved %lld %lld %lld", (long long)v1, (long long)v2, (long long)vr);
	/* The attack: both names renamed away, the disk image filled and grown. */
	T_CHECK(vimg_sh("cd '%s' && mv l1 l1.x && mv l2 l2.x && echo evil >> l1.x &&"
			" dd if=/dev/urandom of=big.img bs=1M count=9 status=none", dir) == 0, "attack");
	struct vault_restore_item it[3] = {{.id = v1}, {.id = v2}, {.id = vr}};
	struct vault_restore_opts ro = {0};
	struct vault_restore_stats rs = {0};
	int rc = vault_restore_items(s, it, 3, &ro, &rs);
	struct stat a, b;
	T_CHECK(rc == 0 && stat(l1, &a) == 0 && stat(l2, &b) == 0 && a.st_ino == b.st_ino && a.st_nlink == 2,
		"%s: l1 and l2 are one file again (%d)", fstype, rc);
	uint8_t link_want[32];
	EVP_Digest(data, sizeof(data), link_want, NULL, EVP_sha256(), NULL);
	T_CHECK(vimg_sha(l2, now) == 0 && memcmp(now, link_want, 32) == 0, "%s: with their content", fstype);
	T_CHECK(vimg_sha(big, now) == 0 && memcmp(now, want, 32) == 0 && stat(big, &a) == 0 && a.st_size == 8 << 20,
		"%s: the disk image is back, size %lld", fstype, (long long)a.st_size);
	T_CHECK(a.st_blocks * 512 < (1 << 20), "%s: holes punched back: %lld bytes allocated", fstype,
		(long long)a.st_blocks * 512);
	memset(&rs, 0, sizeof(rs));
	rc = vault_restore_items(s, it, 3, &ro, &rs);
	T_CHECK(rc == 0 && rs.restored == 0 && rs.unchanged == 3, "%s: again: nothing to do (%llu restored)",
		fstype, (unsigned long long)rs.restored);
out:
	vault_store_close(s);
	vimg_destroy(&im);
}

int main(int argc, char **argv)
{
	if (argc >= 4)
		return vimg_child(argv[1], argv[2], argv[3]);
	if (geteuid() != 0) {
		printf("test_restore: needs root (loop mounts, fanotify)\n");
		return 77;
	}
	scenario("ext4");
	scenario("xfs");
	scenario_times();
	scenario_links_holes("ext4");
	scenario_links_holes("xfs");
	return T_DONE("test_restore");
}
