/* canary.c: placing decoys. Run at start-up, before the sensor starts reading, by ward
 * itself (whose own events the sensor drops). */
#include "detect/canary.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const canary_default_names[] = {
	"!0000-Budget-Overview.pdf",   /* '!' and digits sort before letters */
	"~zzzz-Payroll-Archive.pdf",   /* '~' sorts after letters */
	NULL,
};

/* A small valid PDF: a walker that checks magic bytes or extension both take it. */
static const char pdf[] =
	"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
	"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
	"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\n"
	"xref\n0 4\n0000000000 65535 f \n0000000009 00000 n \n0000000052 00000 n \n"
	"0000000101 00000 n \ntrailer<</Size 4/Root 1 0 R>>\nstartxref\n166\n%%EOF\n";

static int place_one(int dirfd, const char *dir, const char *name, canary_fn fn, void *ctx)
{
	char path[4096];
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return -ENAMETOOLONG;
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd >= 0) {
		ssize_t w = write(fd, pdf, sizeof(pdf) - 1);
		int e = errno;
		close(fd);
		if (w != (ssize_t)(sizeof(pdf) - 1)) {
			unlinkat(dirfd, name, 0);
			return w < 0 ? -e : -EIO;
		}
	} else if (errno != EEXIST) {
		return -errno;
	}
	return fn ? fn(path, ctx) : 0;
}

static int walk(const char *dir, const char *const *names, int nnames, uint32_t depth, int *dirs_left,
		canary_fn fn, void *ctx)
{
	if (*dirs_left <= 0)
		return 0;
	(*dirs_left)--;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0)
		return -errno;
	int count = 0, rc = 0;
	for (int i = 0; i < nnames; i++) {
		rc = place_one(dfd, dir, names[i], fn, ctx);
		if (rc < 0)
			goto out;
		count++;
	}
	if (depth > 0) {
		DIR *d = fdopendir(dup(dfd));
		if (!d) {
			rc = -errno;
			goto out;
		}
		struct dirent *de;
		while ((de = readdir(d)) && *dirs_left > 0) {
			if (de->d_type != DT_DIR || de->d_name[0] == '.')
				continue;
			char sub[4096];
			if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name) >= sizeof(sub))
				continue;
			int r = walk(sub, names, nnames, depth - 1, dirs_left, fn, ctx);
			if (r > 0)
				count += r;
		}
		closedir(d);
	}
	rc = count;
out:
	close(dfd);
	return rc;
}

int canary_place(const char *root, const char *const *names, int nnames, uint32_t depth, int max_dirs,
		 canary_fn fn, void *ctx)
{
	if (!names || nnames == 0) {
		names = canary_default_names;
		for (nnames = 0; names[nnames]; nnames++)
			;
	}
	int left = max_dirs;
	return walk(root, names, nnames, depth, &left, fn, ctx);
}
