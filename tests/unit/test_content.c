/* test_content.c: the content verdict and the name-to-format promise, as data tables: names
 * and the format they promise; which formats keep which promise; inspection summaries and
 * their verdicts; and whole buffers made here (ciphertext-like bytes, text, zlib streams,
 * a git pack, base64, partial and striped encryption) through content_inspect_buf, through a
 * real file with content_inspect, and the head of a file still being written. */
#include "detect/content.h"
#include "detect/entropy.h"
#include "detect/filetype.h"
#include "t.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

/* ---- names ---- */
static const struct {
	const char *path;
	int want;
} names[] = {
	{"/s/report.pdf", FILETYPE_PDF},
	{"/s/REPORT.PDF", FILETYPE_PDF},
	{"/s/a.b/plan.docx", FILETYPE_DOCX},
	{"/s/book.xlsm", FILETYPE_XLSX},
	{"/s/old.doc", FILETYPE_OLE},
	{"/s/photo.JPEG", FILETYPE_JPEG},
	{"/s/backup.tar", FILETYPE_TAR},
	{"/s/backup.tar.gz", FILETYPE_GZIP},
	{"/s/x.tgz", FILETYPE_GZIP},
	{"/s/data.zst", FILETYPE_ZSTD},
	{"/s/ledger.db", FILETYPE_SQLITE},
	{"/vm/disk.qcow2", FILETYPE_QCOW2},
	{"/s/notes.md", FILETYPE_TEXT},
	{"/s/app.log", FILETYPE_TEXT},
	{"/s/main.c", FILETYPE_TEXT},
	{"/s/conf.yaml", FILETYPE_TEXT},
	{"/s/data.csv", FILETYPE_CSV},
	{"/s/page.htm", FILETYPE_HTML},
	{"/s/icon.svg", FILETYPE_XML},
	{"/s/x.o", FILETYPE_ELF},
	/* extensions that promise nothing */
	{"/s/report.pdf.qkzv", FILETYPE_UNKNOWN},
	{"/s/app.log.1", FILETYPE_UNKNOWN},
	{"/s/plan.docx~", FILETYPE_UNKNOWN},
	{"/vm/web01.vmdk", FILETYPE_UNKNOWN},   /* a descriptor or a raw extent */
	{"/s/firmware.bin", FILETYPE_UNKNOWN},
	{"/s/Makefile", FILETYPE_UNKNOWN},
	{"/s/.bashrc", FILETYPE_UNKNOWN},       /* a dot file has no extension */
	{"/s/dir.pdf/file", FILETYPE_UNKNOWN},  /* the directory's name does not count */
	{"/s/trailing.", FILETYPE_UNKNOWN},
	{"", FILETYPE_UNKNOWN},
};

/* ---- promises kept ---- */
static const struct {
	int want, got;
	bool ok;
} matches[] = {
	{FILETYPE_PDF, FILETYPE_PDF, true},
	{FILETYPE_PDF, FILETYPE_UNKNOWN, false},
	{FILETYPE_PDF, FILETYPE_TEXT, false},
	{FILETYPE_TEXT, FILETYPE_CSV, true},        /* any text for a text name */
	{FILETYPE_CSV, FILETYPE_TEXT, true},
	{FILETYPE_JSON, FILETYPE_HTML, true},
	{FILETYPE_TEXT, FILETYPE_UNKNOWN, false},
	{FILETYPE_DOCX, FILETYPE_ZIP, true},        /* an office document is a zip */
	{FILETYPE_DOCX, FILETYPE_OLE, true},        /* ... or, password-protected, an OLE file */
	{FILETYPE_XLSX, FILETYPE_DOCX, true},
	{FILETYPE_DOCX, FILETYPE_7Z, false},
	{FILETYPE_JPEG, FILETYPE_PNG, true},        /* a misnamed image */
	{FILETYPE_PNG, FILETYPE_UNKNOWN, false},
	{FILETYPE_TAR, FILETYPE_GZIP, true},        /* a compressed tarball */
	{FILETYPE_SQLITE, FILETYPE_UNKNOWN, false},
	{FILETYPE_QCOW2, FILETYPE_QCOW2, true},
	{FILETYPE_UNKNOWN, FILETYPE_UNKNOWN, true}, /* no promise, nothing broken */
	{FILETYPE_PDF, FILETYPE_EMPTY, true},       /* emptied is not ciphertext */
};

/* ---- inspection summaries ---- */
struct wc {
	uint8_t type;
	bool type_valid;
	uint8_t crypt, head_class;
	bool head_suspect, pooled;
	float frac;
};
static const struct {
	const char *what;
	struct wc c;
	enum content_verdict v;
} verdicts[] = {
	{"ciphertext throughout", {FILETYPE_UNKNOWN, false, 0, ENTROPY_RANDOM, true, false, 1.0f}, CONTENT_ENCRYPTED},
	{"ciphertext after an intact magic (structure broken)", {FILETYPE_PDF, false, 0, ENTROPY_RANDOM, true, false, 0.95f}, CONTENT_ENCRYPTED},
	{"head encrypted, rest plain", {FILETYPE_UNKNOWN, false, 0, ENTROPY_RANDOM, true, false, 0.3f}, CONTENT_PARTIAL},
	{"striped head", {FILETYPE_UNKNOWN, false, 0, ENTROPY_STRIPED, true, false, 0.5f}, CONTENT_PARTIAL},
	{"striped even if pooled looks compressed", {FILETYPE_UNKNOWN, false, 0, ENTROPY_STRIPED, true, true, 0.5f}, CONTENT_PARTIAL},
	{"base64 ciphertext", {FILETYPE_TEXT, true, 0, ENTROPY_ENCODED, true, false, 1.0f}, CONTENT_ENCODED},
	{"a little base64 in a text file", {FILETYPE_TEXT, true, 0, ENTROPY_ENCODED, true, false, 0.2f}, CONTENT_NORMAL},
	{"plain text", {FILETYPE_TEXT, true, 0, ENTROPY_PLAIN, false, false, 0.0f}, CONTENT_NORMAL},
	{"xz parses (uniform bytes)", {FILETYPE_XZ, true, 0, ENTROPY_RANDOM, true, false, 1.0f}, CONTENT_NORMAL},
	{"zip parses", {FILETYPE_ZIP, true, 0, ENTROPY_RANDOM, true, false, 0.9f}, CONTENT_NORMAL},
	{"password zip", {FILETYPE_ZIP, true, FILETYPE_CRYPT_YES, ENTROPY_RANDOM, true, false, 0.9f}, CONTENT_LOCKED_ARCHIVE},
	{"7z with encrypted headers", {FILETYPE_7Z, true, FILETYPE_CRYPT_YES, ENTROPY_RANDOM, true, false, 1.0f}, CONTENT_LOCKED_ARCHIVE},
	{"encrypted PDF parses (not an archive)", {FILETYPE_PDF, true, FILETYPE_CRYPT_YES, ENTROPY_PLAIN, false, false, 0.5f}, CONTENT_NORMAL},
	{"compressed, unparsed format, pooled non-uniform", {FILETYPE_UNKNOWN, false, 0, ENTROPY_RANDOM, true, true, 1.0f}, CONTENT_NORMAL},
	{"plain binary", {FILETYPE_UNKNOWN, false, 0, ENTROPY_PLAIN, false, false, 0.0f}, CONTENT_NORMAL},
	{"a few random blocks inside, plain head", {FILETYPE_UNKNOWN, false, 0, ENTROPY_PLAIN, false, false, 0.4f}, CONTENT_NORMAL},
};

static void test_tables(void)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int got = content_type_for_name(names[i].path, strlen(names[i].path));
		T_CHECK(got == names[i].want, "%s: %s, not %s", names[i].path, filetype_name(got), filetype_name(names[i].want));
	}
	for (size_t i = 0; i < sizeof(matches) / sizeof(matches[0]); i++)
		T_CHECK(content_type_matches(matches[i].want, matches[i].got) == matches[i].ok, "%s holding %s: %d",
			filetype_name(matches[i].want), filetype_name(matches[i].got), !matches[i].ok);
	for (size_t i = 0; i < sizeof(verdicts) / sizeof(verdicts[0]); i++) {
		const struct wc *w = &verdicts[i].c;
		struct ward_content c = {.valid = true, .type = w->type, .type_valid = w->type_valid, .crypt = w->crypt,
					 .head_class = w->head_class, .head_suspect = w->head_suspect,
					 .pooled_nonuniform = w->pooled, .suspect_frac = w->frac};
		enum content_verdict v = content_verdict(&c);
		T_CHECK(v == verdicts[i].v, "%s: %s, not %s", verdicts[i].what, content_verdict_name(v),
			content_verdict_name(verdicts[i].v));
	}
	struct ward_content none = {.valid = false};
	T_CHECK(content_verdict(&none) == CONTENT_NORMAL, "not inspected: normal");
	T_CHECK(!strcmp(content_verdict_name(CONTENT_ENCRYPTED), "encrypted") && !strcmp(content_verdict_name(99), "?"),
		"verdict names");
}

/* ---- buffers ---- */
static uint64_t rng = 88172645463325252ull;
static unsigned char rbyte(void)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return (unsigned char)(rng >> 24);
}

static void fill_random(unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		b[i] = rbyte();
}

static const char *const words[] = {"invoice", "the", "quarterly", "report", "of", "customer", "shipment",
				    "and", "budget", "review", "for", "2024", "total", "amount"};
static void fill_text(unsigned char *b, size_t n)
{
	size_t i = 0, w = 0;
	while (i < n) {
		const char *s = words[(w * 7 + w / 3) % (sizeof(words) / sizeof(words[0]))];
		for (; *s && i < n; s++)
			b[i++] = (unsigned char)*s;
		if (i < n)
			b[i++] = (++w % 12) ? ' ' : '\n';
	}
}

/* base64 with line breaks every 76 characters, as tools write it */
static size_t b64(unsigned char *out, const unsigned char *in, size_t n)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0, col = 0;
	for (size_t i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		for (int k = 3; k >= 0; k--)
			out[o++] = (unsigned char)a[(v >> (6 * k)) & 63];
		if ((col += 4) >= 76) {
			out[o++] = '\n';
			col = 0;
		}
	}
	return o;
}

enum kind { K_RANDOM, K_TEXT, K_ZLIB_TEXT, K_ZLIB_SMALL, K_GITPACK, K_FAKE_ZLIB, K_BASE64, K_HEAD4K, K_STRIPED,
	    K_GZIP_RANDOM };

/* Makes n bytes of the kind into b (b holds 2n); returns the length used. */
static size_t make(enum kind k, unsigned char *b, size_t n)
{
	unsigned char *tmp = malloc(n);
	size_t len = n;
	switch (k) {
	case K_RANDOM:
		fill_random(b, n);
		break;
	case K_TEXT:
		fill_text(b, n);
		break;
	case K_ZLIB_TEXT:
	case K_ZLIB_SMALL: {
		/* what git writes for a loose object: a zlib stream of "blob N\0..." */
		size_t in = k == K_ZLIB_SMALL ? 300 : n;
		fill_text(tmp, in);
		memcpy(tmp, "blob 300", 9);
		uLongf zl = (uLongf)(2 * n);
		compress2(b, &zl, tmp, in, 9);
		len = zl;
		break;
	}
	case K_GITPACK: {
		memcpy(b, "PACK\0\0\0\2\0\0\0\1", 12);
		b[12] = (3 << 4) | 0x8f; /* object type blob (3), size in two varint bytes */
		b[13] = 0x7f;
		fill_text(tmp, n);
		uLongf zl = (uLongf)(2 * n);
		compress2(b + 14, &zl, tmp, n, 6);
		len = 14 + zl;
		break;
	}
	case K_FAKE_ZLIB:
		/* a zlib header in front of ciphertext: inflate fails, it stays ciphertext */
		fill_random(b, n);
		b[0] = 0x78;
		b[1] = 0x9c;
		break;
	case K_BASE64: {
		fill_random(tmp, n / 2);
		len = b64(b, tmp, n / 2 / 3 * 3);
		break;
	}
	case K_HEAD4K:
		fill_text(b, n);
		fill_random(b, 4096);
		break;
	case K_STRIPED:
		fill_text(b, n);
		for (size_t i = 0; i + 16 <= n; i += 32)
			for (size_t j = 0; j < 16; j++)
				b[i + j] = rbyte();
		break;
	case K_GZIP_RANDOM: {
		/* a gzip of ciphertext (compressing an encrypted backup): gzip parses */
		fill_random(tmp, n);
		z_stream z = {0};
		deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
		z.next_in = tmp;
		z.avail_in = (uInt)n;
		z.next_out = b;
		z.avail_out = (uInt)(2 * n);
		deflate(&z, Z_FINISH);
		len = z.total_out;
		deflateEnd(&z);
		break;
	}
	}
	free(tmp);
	return len;
}

static const struct {
	const char *what;
	enum kind k;
	size_t n;
	enum content_verdict v;
} bufs[] = {
	{"random 4 KiB", K_RANDOM, 4096, CONTENT_ENCRYPTED},
	{"random 300 bytes", K_RANDOM, 300, CONTENT_ENCRYPTED},
	{"random 1 MiB (sampled)", K_RANDOM, 1 << 20, CONTENT_ENCRYPTED},
	{"text", K_TEXT, 20000, CONTENT_NORMAL},
	{"zlib stream of text (git object)", K_ZLIB_TEXT, 60000, CONTENT_NORMAL},
	{"small zlib stream (git loose object)", K_ZLIB_SMALL, 300, CONTENT_NORMAL},
	{"git packfile", K_GITPACK, 60000, CONTENT_NORMAL},
	{"ciphertext behind a zlib header", K_FAKE_ZLIB, 8192, CONTENT_ENCRYPTED},
	{"base64 of ciphertext", K_BASE64, 16384, CONTENT_ENCODED},
	{"first 4 KiB encrypted", K_HEAD4K, 40000, CONTENT_PARTIAL},
	{"every other 16 bytes encrypted", K_STRIPED, 16384, CONTENT_PARTIAL},
	{"gzip of ciphertext", K_GZIP_RANDOM, 20000, CONTENT_NORMAL},
};

static int tmpfile_with(const unsigned char *b, size_t n)
{
	char path[] = "/tmp/ward-test-content-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	unlink(path);
	if (write(fd, b, n) != (ssize_t)n) {
		close(fd);
		return -1;
	}
	return fd;
}

static void test_buffers(void)
{
	size_t cap = 2 << 20;
	unsigned char *b = malloc(2 * cap);
	for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++) {
		size_t len = make(bufs[i].k, b, bufs[i].n);
		struct ward_content c, cf;
		T_CHECK(content_inspect_buf(b, len, &c) == 0 && c.valid, "%s: inspected", bufs[i].what);
		enum content_verdict v = content_verdict(&c);
		T_CHECK(v == bufs[i].v, "%s: %s, not %s (type %s, head %s, frac %.2f, pooled %d)", bufs[i].what,
			content_verdict_name(v), content_verdict_name(bufs[i].v), filetype_name(c.type),
			entropy_class_name(c.head_class), c.suspect_frac, c.pooled_nonuniform);
		/* the same bytes in a file: whole (<= 64 KiB) or sampled */
		int fd = tmpfile_with(b, len);
		T_CHECK(fd >= 0 && content_inspect(fd, len, &cf) == 0, "%s: file inspected", bufs[i].what);
		if (fd >= 0) {
			enum content_verdict vf = content_verdict(&cf);
			T_CHECK(vf == bufs[i].v, "%s (file): %s", bufs[i].what, content_verdict_name(vf));
			close(fd);
		}
	}
	free(b);
}

/* The head of a large file being written: ciphertext in front, old content behind. */
static void test_head(void)
{
	size_t n = 1 << 20;
	unsigned char *b = malloc(n);
	fill_text(b, n);
	fill_random(b, 256 * 1024);
	int fd = tmpfile_with(b, n);
	struct ward_content c;
	uint64_t size = 0;
	T_CHECK(fd >= 0 && content_inspect_head(fd, &size, &c) == 0, "head of 1 MiB inspected");
	T_CHECK(size == n, "size %llu", (unsigned long long)size);
	enum content_verdict v = content_verdict(&c);
	T_CHECK(v == CONTENT_ENCRYPTED || v == CONTENT_PARTIAL, "encrypted head: %s", content_verdict_name(v));
	close(fd);

	fill_text(b, n);
	fd = tmpfile_with(b, n);
	T_CHECK(fd >= 0 && content_inspect_head(fd, &size, &c) == 0 && content_verdict(&c) == CONTENT_NORMAL,
		"plain head: normal");
	close(fd);

	fd = tmpfile_with(b, CONTENT_HEAD_MIN);
	T_CHECK(content_inspect_head(fd, &size, &c) == -EAGAIN, "64 KiB: judged whole at close instead");
	close(fd);
	T_CHECK(content_inspect_head(-1, &size, &c) == -EBADF, "bad fd");
	free(b);
}

static void test_files(void)
{
	struct ward_content c;
	T_CHECK(content_inspect(-1, 10, &c) < 0, "bad fd fails");
	unsigned char b[100];
	fill_text(b, sizeof(b));
	int fd = tmpfile_with(b, sizeof(b));
	/* a file that shrank after the event: judged on what is there */
	T_CHECK(content_inspect(fd, 4096, &c) == 0 && c.valid && content_verdict(&c) == CONTENT_NORMAL,
		"shrunk file judged on what was read");
	close(fd);
	T_CHECK(content_inspect_buf(b, 0, &c) == 0 && c.valid && c.type == FILETYPE_EMPTY, "empty buffer");
	content_warm(); /* runs, touches nothing it should not */
	T_CHECK(true, "warm");
}

int main(void)
{
	test_tables();
	test_buffers();
	test_head();
	test_files();
	return T_DONE("content");
}
