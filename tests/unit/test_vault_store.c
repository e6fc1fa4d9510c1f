/* test_vault_store.c: the vault store on real loop-mounted filesystems: copies (ext4),
 * reflinks (xfs), ranges, hard links, sparse files, the size budget and incident pins, an
 * index that survives a SIGKILL in the middle of saves, and the seal: versions immutable,
 * the directory append-only, so that no other root process removes or renames anything in
 * it, while the store's own deletes still work; unsealed, logged, where the flags cannot be
 * set; a lost index does not make the store delete its versions. Run as root. */
#include <dirent.h>
#include <linux/capability.h>
#include <linux/fs.h>
#include <sqlite3.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#include "../helpers/vault_img.h"
#include "t.h"
#include "vault/store.h"

static int open_rd(const char *p) { return open(p, O_RDONLY | O_CLOEXEC); }

static struct vault_save_req req(int fd, const char *path)
{
	struct vault_save_req r = {.fd = fd, .path = path, .pid = getpid(), .exe = "/test", .epoch = 1};
	return r;
}

static bool vault_file_equals(struct vault_store *s, int64_t id, const void *want, size_t n, off_t off)
{
	struct vault_version v;
	int fd;
	if (vault_store_get(s, id, &v) || vault_store_open_version(s, &v, &fd))
		return false;
	char *got = malloc(n + 1);
	ssize_t r = pread(fd, got, n + 1, off);
	bool ok = r == (ssize_t)n && memcmp(got, want, n) == 0;
	free(got);
	close(fd);
	return ok;
}

/* The inode flags of path (or of fd when path is NULL); -1 on error. */
static int flags_of(const char *path, int fd)
{
	int f = -1, own = -1;
	if (path)
		fd = own = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, FS_IOC_GETFLAGS, &f) < 0)
		f = -1;
	if (own >= 0)
		close(own);
	return f;
}

/* Version files ("v-...") in the vault directory. */
static int count_files(const char *vdir)
{
	int n = 0;
	DIR *d = opendir(vdir);
	for (struct dirent *e; d && (e = readdir(d));)
		n += strncmp(e->d_name, "v-", 2) == 0;
	if (d)
		closedir(d);
	return n;
}

static int count_cb(void *ctx, const struct vault_version *x)
{
	(void)x;
	++*(int *)ctx;
	return 0;
}

struct verify {
	struct vault_store *s;
	uint8_t want[32];
	int rows, good;
};

static int verify_cb(void *ctx, const struct vault_version *v)
{
	struct verify *k = ctx;
	int fd;
	uint8_t got[32];
	k->rows++;
	if (vault_store_open_version(k->s, v, &fd) == 0) {
		k->good += vault_sha256_fd(fd, got) == 0 && memcmp(got, k->want, 32) == 0 &&
			   memcmp(v->sha256, k->want, 32) == 0;
		close(fd);
	}
	return 0;
}

static void test_basic(const char *fstype, bool expect_reflink)
{
	struct vimg im;
	char path[512], vdir[512];
	if (vimg_make(&im, fstype, fstype, 320)) {
		T_CHECK(0, "cannot make %s image", fstype);
		return;
	}
	snprintf(vdir, sizeof(vdir), "%s/" VAULT_DIR_NAME, im.mnt);
	struct vault_store *s = NULL;
	int rc = vault_store_open(vdir, NULL, &s);
	T_CHECK(rc == 0, "%s: open: %d", fstype, rc);
	if (rc)
		goto out;
	struct stat vst;
	T_CHECK(stat(vdir, &vst) == 0 && (vst.st_mode & 0777) == 0700, "%s: vault mode %o", fstype,
		vst.st_mode & 0777);

	/* whole file */
	size_t n = 300000;
	char *data = malloc(n);
	vimg_fill(data, n, 1);
	snprintf(path, sizeof(path), "%s/doc.bin", im.mnt);
	vimg_write(path, data, n);
	chmod(path, 0640);
	int fd = open_rd(path);
	struct vault_save_req r = req(fd, path);
	int64_t id = 0;
	rc = vault_store_save(s, &r, &id);
	T_CHECK(rc == 0 && id > 0, "%s: save: %d", fstype, rc);
	struct vault_version v;
	rc = vault_store_get(s, id, &v);
	T_CHECK(rc == 0, "get %d", rc);
	T_CHECK(v.kind == (expect_reflink ? VAULT_KIND_REFLINK : VAULT_KIND_COPY), "%s: kind %s",
		fstype, vault_kind_name(v.kind));
	T_CHECK(v.size == (int64_t)n && (v.mode & 0777) == 0640 && v.uid == 0, "meta size %lld mode %o",
		(long long)v.size, v.mode);
	T_CHECK(strcmp(v.path, path) == 0 && v.pid == getpid() && strcmp(v.exe, "/test") == 0,
		"path/actor %s %d %s", v.path, v.pid, v.exe);
	uint8_t sha[32];
	vimg_sha(path, sha);
	T_CHECK(expect_reflink || (v.has_sha256 && memcmp(v.sha256, sha, 32) == 0), "sha recorded");
	T_CHECK(vault_file_equals(s, id, data, n, 0), "%s: vault content equals the file", fstype);

	/* the original changes: the version does not */
	char *evil = malloc(n);
	vimg_fill(evil, n, 666);
	int wfd = open(path, O_WRONLY);
	T_CHECK(pwrite(wfd, evil, n, 0) == (ssize_t)n, "overwrite");
	close(wfd);
	T_CHECK(vault_file_equals(s, id, data, n, 0), "%s: version unchanged after overwrite", fstype);

	/* range: bytes [65536, 65536+131072) of the overwritten file */
	r.range_off = 65536;
	r.range_len = 131072;
	int64_t rid = 0;
	rc = vault_store_save_range(s, &r, &rid);
	T_CHECK(rc == 0, "range save %d", rc);
	vault_store_get(s, rid, &v);
	T_CHECK(v.kind == VAULT_KIND_RANGE && v.range_off == 65536 && v.range_len == 131072,
		"range row %s %lld+%lld", vault_kind_name(v.kind), (long long)v.range_off,
		(long long)v.range_len);
	T_CHECK(vault_file_equals(s, rid, evil + 65536, 131072, 0), "range content");
	/* a range past the end is clipped to the size */
	r.range_off = (int64_t)n - 1000;
	r.range_len = 1 << 20;
	rc = vault_store_save_range(s, &r, &rid);
	vault_store_get(s, rid, &v);
	T_CHECK(rc == 0 && v.range_len == 1000, "clipped range %lld", (long long)v.range_len);
	close(fd);

	/* hard link of the name */
	fd = open_rd(path);
	r = req(fd, path);
	int64_t lid = 0, lid2 = 0;
	rc = vault_store_link(s, &r, &lid);
	T_CHECK(rc == 0, "link %d", rc);
	vault_store_get(s, lid, &v);
	struct stat a, b;
	fstat(fd, &a);
	char vp[1024];
	snprintf(vp, sizeof(vp), "%s/%s", vdir, v.vname);
	T_CHECK(v.kind == VAULT_KIND_LINK && stat(vp, &b) == 0 && a.st_ino == b.st_ino,
		"link is the same inode");
	rc = vault_store_link(s, &r, &lid2);
	T_CHECK(rc == 0 && lid2 == lid, "same name, same inode, unchanged: no second link (%lld %lld)",
		(long long)lid, (long long)lid2);
	close(fd);
	unlink(path);
	T_CHECK(vault_file_equals(s, lid, evil, n, 0), "linked content survives unlink of the name");

	/* sparse: 8 MiB with two 4 KiB islands */
	snprintf(path, sizeof(path), "%s/sparse.img", im.mnt);
	fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
	pwrite(fd, data, 4096, 0);
	pwrite(fd, data + 4096, 4096, 5 << 20);
	ftruncate(fd, 8 << 20);
	close(fd);
	fd = open_rd(path);
	r = req(fd, path);
	rc = vault_store_save(s, &r, &id);
	vault_store_get(s, id, &v);
	vimg_sha(path, sha);
	snprintf(vp, sizeof(vp), "%s/%s", vdir, v.vname);
	stat(vp, &b);
	T_CHECK(rc == 0 && v.size == 8 << 20, "sparse save %d", rc);
	T_CHECK(expect_reflink || memcmp(v.sha256, sha, 32) == 0, "sparse sha (holes hash as zeros)");
	T_CHECK(b.st_blocks * 512 < (1 << 20), "sparse stays sparse in the vault: %lld bytes allocated",
		(long long)b.st_blocks * 512);
	close(fd);

	/* The seal: what another root process tries in the vault fails; the store's own
	 * delete works and leaves the directory sealed. */
	int df = flags_of(vdir, -1);
	T_CHECK(df >= 0 && (df & FS_APPEND_FL), "%s: vault directory is append-only (flags %#x)", fstype, df);
	int vfd = -1;
	vault_store_get(s, id, &v);
	T_CHECK(vault_store_open_version(s, &v, &vfd) == 0 && (flags_of(NULL, vfd) & FS_IMMUTABLE_FL),
		"%s: a finished copy is immutable", fstype);
	if (vfd >= 0)
		close(vfd);
	snprintf(vp, sizeof(vp), "%s/%s", vdir, v.vname);
	char ip[600], other[600];
	snprintf(ip, sizeof(ip), "%s/" VAULT_INDEX_NAME, vdir);
	snprintf(other, sizeof(other), "%s/moved", vdir);
	errno = 0;
	T_CHECK(unlink(ip) < 0 && errno == EPERM, "%s: root cannot unlink the index: %s", fstype, strerror(errno));
	errno = 0;
	T_CHECK(rename(ip, other) < 0 && errno == EPERM, "%s: nor rename it: %s", fstype, strerror(errno));
	errno = 0;
	T_CHECK(unlink(vp) < 0 && errno == EPERM, "%s: nor unlink a version: %s", fstype, strerror(errno));
	errno = 0;
	T_CHECK(open(vp, O_WRONLY) < 0 && errno == EPERM, "%s: nor open a version for writing: %s", fstype,
		strerror(errno));
	vault_store_get(s, lid, &v);
	fd = -1;
	T_CHECK(vault_store_open_version(s, &v, &fd) == 0 && !(flags_of(NULL, fd) & FS_IMMUTABLE_FL),
		"%s: a hard link (the user's own inode) is not made immutable", fstype);
	if (fd >= 0)
		close(fd);
	int64_t gone = rid;
	vault_store_get(s, gone, &v);
	snprintf(vp, sizeof(vp), "%s/%s", vdir, v.vname);
	T_CHECK(vault_store_delete(s, gone) == 0 && access(vp, F_OK) < 0 && errno == ENOENT,
		"%s: the store deletes a sealed version", fstype);
	df = flags_of(vdir, -1);
	T_CHECK(df >= 0 && (df & FS_APPEND_FL), "%s: sealed again after the delete", fstype);

	/* list: by prefix, by time */
	int count = 0;
	vault_store_list(s, path, strlen(path), 0, count_cb, &count);
	T_CHECK(count == 1, "list by prefix: %d", count);
	count = 0;
	vault_store_list(s, im.mnt, strlen(im.mnt), 0, count_cb, &count);
	T_CHECK(count == 4, "list all under the mount (copy, a range, link, sparse): %d", count);
	count = 0;
	vault_store_list(s, NULL, 0, 1, count_cb, &count);
	T_CHECK(count == 0, "nothing saved before t=1: %d", count);
	free(data);
	free(evil);
	/* Closed and reopened: SQLite keeps its -wal and -shm (it could not remove them). */
	vault_store_close(s);
	s = NULL;
	snprintf(ip, sizeof(ip), "%s/" VAULT_INDEX_NAME "-wal", vdir);
	T_CHECK(access(ip, F_OK) == 0, "%s: the WAL file persists after close", fstype);
	rc = vault_store_open(vdir, NULL, &s);
	count = 0;
	if (rc == 0)
		vault_store_list(s, NULL, 0, 0, count_cb, &count);
	df = flags_of(vdir, -1);
	T_CHECK(rc == 0 && count == 4 && (df & FS_APPEND_FL), "%s: reopened sealed with every version: %d, %d",
		fstype, rc, count);
out:
	vault_store_close(s);
	vimg_destroy(&im);
}

/* The index removed while ward was stopped (after clearing the seal): the next open keeps the
 * versions it no longer knows rather than clean them away as crash leftovers. */
static void test_lost_index(void)
{
	struct vimg im;
	char vdir[512], path[512], p[600];
	if (vimg_make(&im, "lostidx", "ext4", 64)) {
		T_CHECK(0, "image");
		return;
	}
	snprintf(vdir, sizeof(vdir), "%s/" VAULT_DIR_NAME, im.mnt);
	snprintf(path, sizeof(path), "%s/f", im.mnt);
	char buf[8192];
	vimg_fill(buf, sizeof(buf), 9);
	vimg_write(path, buf, sizeof(buf));
	struct vault_store *s = NULL;
	T_CHECK(vault_store_open(vdir, NULL, &s) == 0, "open");
	for (int i = 0; s && i < 2; i++) {
		int fd = open_rd(path);
		struct vault_save_req r = req(fd, path);
		T_CHECK(vault_store_save(s, &r, NULL) == 0, "save %d", i);
		close(fd);
	}
	vault_store_close(s);
	s = NULL;
	int dfd = open(vdir, O_RDONLY | O_DIRECTORY), f = 0;
	ioctl(dfd, FS_IOC_GETFLAGS, &f);
	f &= ~FS_APPEND_FL;
	T_CHECK(ioctl(dfd, FS_IOC_SETFLAGS, &f) == 0, "an administrator clears the seal");
	close(dfd);
	static const char *const idx[] = {"", "-wal", "-shm"};
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/" VAULT_INDEX_NAME "%s", vdir, idx[i]);
		unlink(p);
	}
	T_CHECK(vault_store_open(vdir, NULL, &s) == 0, "reopen without an index");
	struct vault_store_stats st = {0};
	if (s)
		vault_store_stats(s, &st);
	T_CHECK(st.orphans_removed == 0 && count_files(vdir) == 2,
		"versions kept: %llu removed, %d left", (unsigned long long)st.orphans_removed, count_files(vdir));
	vault_store_close(s);
	vimg_destroy(&im);
}

/* Without CAP_LINUX_IMMUTABLE (or on a filesystem without the flags) the store works
 * unsealed and says so in the log. The child drops the capability from its effective set. */
static void test_no_seal(void)
{
	struct vimg im;
	char vdir[512], path[512], logp[600];
	if (vimg_make(&im, "noseal", "ext4", 64)) {
		T_CHECK(0, "image");
		return;
	}
	snprintf(vdir, sizeof(vdir), "%s/" VAULT_DIR_NAME, im.mnt);
	snprintf(path, sizeof(path), "%s/f", im.mnt);
	snprintf(logp, sizeof(logp), "%s/log", im.mnt);
	vimg_write(path, "some content\n", 13);
	pid_t c = fork();
	if (c == 0) {
		struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
		struct __user_cap_data_struct d[2];
		int lfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (lfd < 0 || dup2(lfd, 2) < 0 || syscall(SYS_capget, &h, d))
			_exit(1);
		d[CAP_LINUX_IMMUTABLE / 32].effective &= ~(1u << (CAP_LINUX_IMMUTABLE % 32));
		if (syscall(SYS_capset, &h, d))
			_exit(2);
		struct vault_store *s;
		if (vault_store_open(vdir, NULL, &s))
			_exit(3);
		int fd = open_rd(path);
		struct vault_save_req r = req(fd, path);
		int64_t id = 0;
		int rc = vault_store_save(s, &r, &id);
		close(fd);
		vault_store_close(s);
		_exit(rc || id <= 0 ? 4 : 0);
	}
	T_CHECK(vimg_wait(c) == 0, "unsealed: the store still saves");
	int df = flags_of(vdir, -1);
	T_CHECK(df >= 0 && !(df & FS_APPEND_FL), "the directory is not sealed (flags %#x)", df);
	T_CHECK(vimg_sh("grep -q 'unavailable: vault seal' '%s'", logp) == 0, "the log says what is lost");
	vimg_destroy(&im);
}

static void test_budget(void)
{
	struct vimg im;
	char path[512], vdir[512];
	if (vimg_make(&im, "budget", "ext4", 64)) {
		T_CHECK(0, "image");
		return;
	}
	snprintf(vdir, sizeof(vdir), "%s/" VAULT_DIR_NAME, im.mnt);
	struct vault_store_opts o = {.max_bytes = 200 * 1024};
	struct vault_store *s = NULL;
	T_CHECK(vault_store_open(vdir, &o, &s) == 0, "open");
	char buf[64 * 1024];
	vimg_fill(buf, sizeof(buf), 3);
	int64_t ids[8] = {0};
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/f%d", im.mnt, i);
		vimg_write(path, buf, sizeof(buf));
		int fd = open_rd(path);
		struct vault_save_req r = req(fd, path);
		T_CHECK(vault_store_save(s, &r, &ids[i]) == 0, "save %d within budget", i);
		close(fd);
	}
	/* The 4th does not fit: the oldest unpinned version goes. */
	snprintf(path, sizeof(path), "%s/f3", im.mnt);
	vimg_write(path, buf, sizeof(buf));
	int fd = open_rd(path);
	struct vault_save_req r = req(fd, path);
	T_CHECK(vault_store_save(s, &r, &ids[3]) == 0, "4th save prunes the oldest");
	struct vault_version v;
	T_CHECK(vault_store_get(s, ids[0], &v) == -ENOENT, "oldest pruned");
	/* An open incident pins everything saved since: now the store is full. */
	int64_t inc;
	T_CHECK(vault_store_incident_open(s, 0, &inc) == 0, "incident");
	int rc = vault_store_save(s, &r, NULL);
	struct vault_store_stats st;
	vault_store_stats(s, &st);
	T_CHECK(rc == -ENOSPC && st.enospc == 1, "full with pinned versions: %d, enospc %llu", rc,
		(unsigned long long)st.enospc);
	T_CHECK(vault_store_get(s, ids[1], &v) == 0, "pinned version kept");
	vault_store_incident_close(s, inc);
	rc = vault_store_save(s, &r, NULL);
	T_CHECK(rc == 0, "after the incident closes, pruning makes room: %d", rc);
	T_CHECK(vault_store_get(s, ids[1], &v) == -ENOENT, "unpinned oldest pruned");
	close(fd);
	vault_store_close(s);
	/* Age: everything older than 1 s goes (the file is still there: links count nothing). */
	o.max_bytes = 0;
	o.max_age_s = 1;
	vault_store_open(vdir, &o, &s);
	struct timespec ts = {1, 100000000};
	nanosleep(&ts, NULL);
	rc = vault_store_prune(s, 0);
	vault_store_stats(s, &st);
	T_CHECK(rc == 3 && st.versions == 0 && st.bytes == 0, "age prune dropped %d, left %llu", rc,
		(unsigned long long)st.versions);
	T_CHECK(count_files(vdir) == 0, "pruned versions are gone from the sealed directory: %d left",
		count_files(vdir));
	vault_store_close(s);
	vimg_destroy(&im);
}

/* A child saves in a loop; SIGKILL lands mid-copy; the reopened index is intact and every
 * row's file is complete. */
static void test_crash(void)
{
	struct vimg im;
	char vdir[512], path[512];
	if (vimg_make(&im, "crash", "ext4", 512)) {
		T_CHECK(0, "image");
		return;
	}
	snprintf(vdir, sizeof(vdir), "%s/" VAULT_DIR_NAME, im.mnt);
	snprintf(path, sizeof(path), "%s/big.bin", im.mnt);
	size_t n = 8 << 20;
	char *data = malloc(n);
	vimg_fill(data, n, 5);
	vimg_write(path, data, n);
	free(data);
	int pfd[2];
	pipe(pfd);
	pid_t c = fork();
	if (c == 0) {
		struct vault_store *s;
		if (vault_store_open(vdir, NULL, &s))
			_exit(1);
		for (int i = 0;; i++) {
			int fd = open_rd(path);
			struct vault_save_req r = req(fd, path);
			if (vault_store_save(s, &r, NULL))
				_exit(2);
			close(fd);
			if (i == 5)
				write(pfd[1], "x", 1);
		}
	}
	close(pfd[1]);
	char x;
	T_CHECK(read(pfd[0], &x, 1) == 1, "child saved 6 versions");
	kill(c, SIGKILL);
	vimg_wait(c);
	close(pfd[0]);
	int tmps = vimg_sh("ls -a '%s' | grep -q '^\\.tmp-'", vdir);
	struct vault_store *s = NULL;
	T_CHECK(vault_store_open(vdir, NULL, &s) == 0, "reopen after SIGKILL");
	if (!s)
		goto out;
	sqlite3_stmt *q;
	sqlite3_prepare_v2(vault_store_db(s), "PRAGMA integrity_check", -1, &q, NULL);
	T_CHECK(sqlite3_step(q) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(q, 0), "ok") == 0,
		"integrity_check ok");
	sqlite3_finalize(q);
	struct verify k = {.s = s};
	vimg_sha(path, k.want);
	vault_store_list(s, NULL, 0, 0, verify_cb, &k);
	T_CHECK(k.rows >= 6 && k.rows == k.good, "every row names a complete copy: %d rows, %d good",
		k.rows, k.good);
	T_CHECK(vimg_sh("ls -a '%s' | grep -q '^\\.tmp-'", vdir) != 0, "temp files removed (before: %s)",
		tmps == 0 ? "present" : "none");
	struct vault_store_stats st;
	vault_store_stats(s, &st);
	printf("crash: %d intact versions after SIGKILL, %llu leftovers removed\n", k.rows,
	       (unsigned long long)st.orphans_removed);
out:
	vault_store_close(s);
	vimg_destroy(&im);
}

/* Deferred rows: visible to readers of the index at once, and after a crash replayed from
 * the pending log (the child dies while the store thread cannot commit: it holds the
 * store's mutex inside a list callback). */
struct deferred_child {
	struct vault_store *s;
	const char *path;
	int n;
};

static int save_deferred_then_die(void *ctx, const struct vault_version *v)
{
	struct deferred_child *d = ctx;
	for (int i = 0; i < d->n; i++) {
		int fd = open_rd(d->path);
		struct vault_save_req r = req(fd, d->path);
		r.defer_index = true;
		if (vault_store_save(d->s, &r, NULL))
			_exit(2);
		close(fd);
	}
	_exit(0);   /* no close: rows only in the pending log */
}

static void test_deferred(void)
{
	struct vimg im;
	char vdir[512], path[512], link2[600];
	if (vimg_make(&im, "deferred", "ext4", 128)) {
		T_CHECK(0, "image");
		return;
	}
	snprintf(vdir, sizeof(vdir), "%s/" VAULT_DIR_NAME, im.mnt);
	snprintf(path, sizeof(path), "%s/d.bin", im.mnt);
	char data[20000];
	vimg_fill(data, sizeof(data), 3);
	vimg_write(path, data, sizeof(data));
	struct vault_store *s = NULL;
	T_CHECK(vault_store_open(vdir, NULL, &s) == 0, "open");
	if (!s)
		goto out;
	/* In-process: a deferred save is listed at once, with its content and sha256. */
	int fd = open_rd(path);
	struct vault_save_req r = req(fd, path);
	r.defer_index = true;
	int64_t id = -1;
	T_CHECK(vault_store_save(s, &r, &id) == 0 && id == 0, "deferred save: no id yet (%lld)", (long long)id);
	snprintf(link2, sizeof(link2), "%s/other-name", im.mnt);
	r.orig_path = link2;
	r.orig_path_len = strlen(link2);
	T_CHECK(vault_store_save(s, &r, NULL) == 0, "deferred save with a given first name");
	r.orig_path = NULL;
	r.orig_path_len = 0;
	T_CHECK(vault_store_link(s, &r, NULL) == 0, "deferred link");
	close(fd);
	struct verify k = {.s = s};
	vimg_sha(path, k.want);
	vault_store_list(s, path, strlen(path), 0, verify_cb, &k);
	T_CHECK(k.rows == 3 && k.good == 2, "listed at once: 2 intact copies and the link (%d rows, %d good)",
		k.rows, k.good);
	k.rows = k.good = 0;
	vault_store_list(s, link2, strlen(link2), 0, verify_cb, &k);
	T_CHECK(k.rows == 1, "the given first name is the orig_path (%d)", k.rows);
	struct vault_store_stats st;
	vault_store_stats(s, &st);
	T_CHECK(st.versions == 3 && st.saved[VAULT_KIND_COPY] == 2 && st.saved[VAULT_KIND_LINK] == 1,
		"stats count deferred rows: %llu", (unsigned long long)st.versions);
	vault_store_close(s);
	s = NULL;

	/* A child: one committed save, then 5 deferred ones, then death. */
	pid_t c = fork();
	if (c == 0) {
		struct vault_store *cs;
		if (vault_store_open(vdir, NULL, &cs))
			_exit(1);
		int cfd = open_rd(path);
		struct vault_save_req cr = req(cfd, path);
		if (vault_store_save(cs, &cr, NULL))
			_exit(3);
		close(cfd);
		struct deferred_child d = {.s = cs, .path = path, .n = 5};
		vault_store_list(cs, NULL, 0, 0, save_deferred_then_die, &d);
		_exit(4);
	}
	T_CHECK(vimg_wait(c) == 0, "child saved and died");
	T_CHECK(vimg_sh("test -s '%s/pending.0' -o -s '%s/pending.1'", vdir, vdir) == 0,
		"its deferred rows are in a pending log");
	T_CHECK(vault_store_open(vdir, NULL, &s) == 0, "reopen");
	if (!s)
		goto out;
	vault_store_stats(s, &st);
	k.s = s;
	k.rows = k.good = 0;
	vault_store_list(s, path, strlen(path), 0, verify_cb, &k);
	T_CHECK(st.replayed == 5 && k.rows == 3 + 1 + 5 && k.good == k.rows - 1,
		"replayed %llu rows; %d versions of the path, %d intact copies", (unsigned long long)st.replayed,
		k.rows, k.good);
	T_CHECK(vimg_sh("test -s '%s/pending.0' -o -s '%s/pending.1'", vdir, vdir) != 0,
		"pending logs cleared after the replay");
	vault_store_close(s);
	s = NULL;
	/* Replaying twice adds nothing (a crash between commit and clearing the log). */
	T_CHECK(vault_store_open(vdir, NULL, &s) == 0, "reopen again");
	if (s) {
		vault_store_stats(s, &st);
		T_CHECK(st.replayed == 0 && st.versions == 3 + 1 + 5, "nothing doubled: %llu versions",
			(unsigned long long)st.versions);
	}
	printf("deferred: %d versions after a crash with 5 rows pending, all indexed\n", k.rows);
out:
	vault_store_close(s);
	vimg_destroy(&im);
}

int main(int argc, char **argv)
{
	if (geteuid() != 0) {
		printf("test_vault_store: needs root (loop mounts)\n");
		return 77;
	}
	test_basic("ext4", false);
	test_basic("xfs", true);
	test_budget();
	test_crash();
	test_deferred();
	test_lost_index();
	test_no_seal();
	return T_DONE("test_vault_store");
}
