/* content.c: what a written file's bytes say. The verdict rests on the method, not on names:
 * a format that still parses is not ciphertext (deflate, JPEG, PNG and zstd are also shown
 * non-uniform by pooled chi-square); LZMA (xz/7z) is as uniform as ciphertext, so only its
 * parsing header clears it; an archive that declares its own encryption is reported as such.
 *
 * Compressed data that filetype.h does not parse and that is too short for the pooled test
 * (git's loose objects are single zlib streams of a few hundred bytes; its packs are zlib
 * streams behind a 12-byte header) is cleared here by decoding it: ciphertext fed to inflate
 * fails within a few bytes, a real stream decodes. */
#include "detect/content.h"
#include "core/io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "detect/entropy.h"
#include "detect/filetype.h"

#define HEAD_PROBE 8192u           /* bytes of the head decoded to clear a zlib stream */
#define WHOLE_MAX (ENTROPY_BLOCK * ENTROPY_MAX_BLOCKS) /* files read whole: sampling reads all */
_Static_assert(WHOLE_MAX == CONTENT_HEAD_MIN, "one size for whole files and heads");
#define INFLATE_OUT_MAX (256u * 1024u) /* enough output to believe it; bounds a bomb's cost */

static void fold(const struct entropy_summary *es, const struct filetype_result *ft,
		 struct ward_content *out)
{
	memset(out, 0, sizeof(*out));
	out->valid = true;
	out->type = (uint8_t)ft->id;
	out->type_valid = ft->valid;
	out->crypt = (uint8_t)ft->encrypted;
	out->head_class = (uint8_t)es->head_class;
	out->head_suspect = es->head_suspect;
	out->pooled_nonuniform = es->pooled_nonuniform;
	out->suspect_frac = (float)es->suspect_frac;
	out->max_entropy = (float)es->max_entropy;
}

/* Whether p[0..n) starts a zlib (RFC 1950) stream that decodes without error until the end
 * of the buffer, the end of the stream or INFLATE_OUT_MAX bytes of output. */
static bool may_be_zlib(const unsigned char *p)
{
	/* CM 8 (deflate), window <= 32 KiB, header check, no preset dictionary */
	return (p[0] & 0x0f) == 8 && (p[0] >> 4) <= 7 && ((p[0] << 8) | p[1]) % 31 == 0 && !(p[1] & 0x20);
}

static bool zlib_decodes(const unsigned char *p, size_t n)
{
	if (n < 8 || !may_be_zlib(p))
		return false;
	z_stream z;
	memset(&z, 0, sizeof(z));
	if (inflateInit(&z) != Z_OK)
		return false;
	unsigned char out[16384];
	z.next_in = (Bytef *)(uintptr_t)p;
	z.avail_in = (uInt)n;
	int rc;
	do {
		z.next_out = out;
		z.avail_out = sizeof(out);
		rc = inflate(&z, Z_NO_FLUSH);
	} while (rc == Z_OK && z.avail_in > 0 && z.total_out < INFLATE_OUT_MAX);
	bool ok = (rc == Z_STREAM_END || rc == Z_OK || (rc == Z_BUF_ERROR && z.avail_in == 0)) && z.total_out > 0;
	inflateEnd(&z);
	return ok;
}

/* A git packfile: "PACK", version 2 or 3, then objects, each a size varint (and a delta
 * base) before a zlib stream: the first object's stream has to decode. */
static bool gitpack_decodes(const unsigned char *p, size_t n)
{
	if (n < 16 || memcmp(p, "PACK", 4) != 0 || p[4] || p[5] || p[6] || (p[7] != 2 && p[7] != 3))
		return false;
	size_t i = 12;
	unsigned type = (p[i] >> 4) & 7;
	if (type == 0 || type == 5)
		return false;
	while (i < n && (p[i] & 0x80))
		i++;
	i++;
	if (type == 6) { /* offset delta: a second varint */
		while (i < n && (p[i] & 0x80))
			i++;
		i++;
	} else if (type == 7) {
		i += 20;     /* reference delta: the base's object id */
	}
	return i < n && zlib_decodes(p + i, n - i);
}

/* Compressed streams that filetype.h does not parse, checked only when the bytes would
 * otherwise be taken for ciphertext: the random-looking blocks are marked as compressed
 * data (pooled_nonuniform, as the pooled test would have found with enough bytes). */
static void clear_compressed(const unsigned char *head, size_t n, struct ward_content *c)
{
	if (c->type != FILETYPE_UNKNOWN || !c->head_suspect || c->pooled_nonuniform)
		return;
	if (zlib_decodes(head, n) || gitpack_decodes(head, n))
		c->pooled_nonuniform = true;
}

int content_inspect(int fd, uint64_t size, struct ward_content *out)
{
	struct entropy_summary es;
	struct filetype_result ft;
	if (size <= WHOLE_MAX) {
		/* One read for both indicators: each read of a file on a filesystem with
		 * pre-content marks (the vault) is a round trip to its handler. */
		unsigned char buf[WHOLE_MAX];
		ssize_t got = io_pread_full(fd, buf, (size_t)size, 0); /* shrank meanwhile: judge what is there */
		if (got < 0)
			return (int)got;
		return content_inspect_buf(buf, (size_t)got, out);
	}
	int rc = entropy_sample_fd(fd, size, &es);
	if (rc)
		return rc;
	rc = filetype_identify_fd(fd, size, &ft);
	if (rc)
		return rc;
	fold(&es, &ft, out);
	if (out->type == FILETYPE_UNKNOWN && out->head_suspect && !out->pooled_nonuniform) {
		/* the common case is ciphertext: look at two bytes before reading more */
		unsigned char head[HEAD_PROBE];
		ssize_t n = pread(fd, head, 16, 0);
		if (n == 16 && (may_be_zlib(head) || memcmp(head, "PACK", 4) == 0) &&
		    (n = pread(fd, head, sizeof(head), 0)) > 0)
			clear_compressed(head, (size_t)n, out);
	}
	return 0;
}

int content_inspect_head(int fd, uint64_t *size, struct ward_content *out)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	*size = (uint64_t)st.st_size;
	if (*size <= CONTENT_HEAD_MIN)
		return -EAGAIN;
	unsigned char buf[CONTENT_HEAD_MIN];
	ssize_t rd = io_pread_full(fd, buf, sizeof(buf), 0);
	if (rd < 0)
		return (int)rd;
	size_t got = (size_t)rd;
	struct entropy_summary es;
	struct filetype_result ft;
	entropy_sample_buf(buf, got, &es);
	/* no tail: the checks that need the file's end are skipped */
	filetype_identify(buf, got, NULL, 0, *size, &ft);
	fold(&es, &ft, out);
	clear_compressed(buf, got < HEAD_PROBE ? got : HEAD_PROBE, out);
	return 0;
}

int content_inspect_buf(const void *buf, size_t len, struct ward_content *out)
{
	struct entropy_summary es;
	struct filetype_result ft;
	entropy_sample_buf(buf, len, &es);
	size_t tail = len > FILETYPE_TAIL ? FILETYPE_TAIL : len;
	filetype_identify(buf, len, (const char *)buf + len - tail, tail, len, &ft);
	fold(&es, &ft, out);
	clear_compressed(buf, len < HEAD_PROBE ? len : HEAD_PROBE, out);
	return 0;
}

static __attribute__((noinline)) void prefault_stack(void)
{
	volatile unsigned char b[256 * 1024];
	for (size_t i = 0; i < sizeof(b); i += 4096)
		b[i] = 0;
}

void content_warm(void)
{
	prefault_stack();
	size_t n = 64 * 1024;
	unsigned char *buf = malloc(n);
	if (!buf)
		return;
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < n; i++) {
		if (i < n / 2) {
			buf[i] = (unsigned char)("the quick brown fox, 1234\n"[i % 26]);
		} else {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			buf[i] = (unsigned char)x;
		}
	}
	struct ward_content c;
	content_inspect_buf(buf, n, &c);
	content_inspect_buf(buf + n / 2, n / 2, &c);
	uLongf zl = (uLongf)n / 2;
	if (compress2(buf + n / 2, &zl, buf, n / 2, 6) == Z_OK)
		(void)zlib_decodes(buf + n / 2, zl);
	free(buf);
}

enum content_verdict content_verdict(const struct ward_content *c)
{
	if (!c->valid)
		return CONTENT_NORMAL;
	enum filetype_id t = (enum filetype_id)c->type;
	if (c->crypt == FILETYPE_CRYPT_YES && (t == FILETYPE_ZIP || t == FILETYPE_7Z || t == FILETYPE_RAR ||
					       t == FILETYPE_DOCX || t == FILETYPE_XLSX || t == FILETYPE_PPTX ||
					       t == FILETYPE_ODF))
		return CONTENT_LOCKED_ARCHIVE;
	/* A known format whose structure parses is what it says it is. */
	bool known = t != FILETYPE_UNKNOWN && t != FILETYPE_EMPTY && c->type_valid;
	if (known && !filetype_is_text(t))
		return CONTENT_NORMAL;
	enum entropy_class h = (enum entropy_class)c->head_class;
	if (h == ENTROPY_ENCODED && c->suspect_frac >= 0.5f)
		return CONTENT_ENCODED;
	if (known)
		return CONTENT_NORMAL; /* parsing text */
	if (c->pooled_nonuniform && h != ENTROPY_STRIPED)
		return CONTENT_NORMAL; /* compressed data of a format we do not parse */
	if (c->head_suspect && c->suspect_frac >= 0.9f)
		return CONTENT_ENCRYPTED;
	if (c->head_suspect || h == ENTROPY_STRIPED)
		return CONTENT_PARTIAL;
	return CONTENT_NORMAL;
}

const char *content_verdict_name(enum content_verdict v)
{
	static const char *const n[] = {"normal", "encrypted", "partially encrypted", "encoded ciphertext",
					"password-encrypted archive"};
	return (unsigned)v < sizeof(n) / sizeof(n[0]) ? n[v] : "?";
}

int content_type_for_name(const char *path, size_t len)
{
	static const struct {
		const char *ext;
		enum filetype_id t;
	} map[] = {
		{"pdf", FILETYPE_PDF},   {"docx", FILETYPE_DOCX}, {"docm", FILETYPE_DOCX},
		{"dotx", FILETYPE_DOCX}, {"xlsx", FILETYPE_XLSX}, {"xlsm", FILETYPE_XLSX},
		{"pptx", FILETYPE_PPTX}, {"pptm", FILETYPE_PPTX}, {"odt", FILETYPE_ODF},
		{"ods", FILETYPE_ODF},   {"odp", FILETYPE_ODF},   {"odg", FILETYPE_ODF},
		{"doc", FILETYPE_OLE},   {"xls", FILETYPE_OLE},   {"ppt", FILETYPE_OLE},
		{"msg", FILETYPE_OLE},   {"png", FILETYPE_PNG},   {"jpg", FILETYPE_JPEG},
		{"jpeg", FILETYPE_JPEG}, {"gif", FILETYPE_GIF},   {"tif", FILETYPE_TIFF},
		{"tiff", FILETYPE_TIFF}, {"webp", FILETYPE_WEBP}, {"mp4", FILETYPE_MP4},
		{"m4a", FILETYPE_MP4},   {"m4v", FILETYPE_MP4},   {"heic", FILETYPE_MP4},
		{"mov", FILETYPE_MOV},   {"gz", FILETYPE_GZIP},   {"tgz", FILETYPE_GZIP},
		{"bz2", FILETYPE_BZIP2}, {"xz", FILETYPE_XZ},     {"zst", FILETYPE_ZSTD},
		{"7z", FILETYPE_7Z},     {"rar", FILETYPE_RAR},   {"zip", FILETYPE_ZIP},
		{"jar", FILETYPE_ZIP},   {"tar", FILETYPE_TAR},   {"sqlite", FILETYPE_SQLITE},
		{"sqlite3", FILETYPE_SQLITE}, {"db", FILETYPE_SQLITE}, {"qcow2", FILETYPE_QCOW2},
		{"json", FILETYPE_JSON}, {"csv", FILETYPE_CSV},   {"xml", FILETYPE_XML},
		{"svg", FILETYPE_XML},   {"html", FILETYPE_HTML}, {"htm", FILETYPE_HTML},
		/* plain text: documents, logs, configuration, source code */
		{"txt", FILETYPE_TEXT},  {"md", FILETYPE_TEXT},   {"rst", FILETYPE_TEXT},
		{"log", FILETYPE_TEXT},  {"ini", FILETYPE_TEXT},  {"cfg", FILETYPE_TEXT},
		{"conf", FILETYPE_TEXT}, {"yaml", FILETYPE_TEXT}, {"yml", FILETYPE_TEXT},
		{"toml", FILETYPE_TEXT}, {"tex", FILETYPE_TEXT},  {"tsv", FILETYPE_TEXT},
		{"sql", FILETYPE_TEXT},  {"c", FILETYPE_TEXT},    {"h", FILETYPE_TEXT},
		{"cc", FILETYPE_TEXT},   {"cpp", FILETYPE_TEXT},  {"hpp", FILETYPE_TEXT},
		{"py", FILETYPE_TEXT},   {"sh", FILETYPE_TEXT},   {"pl", FILETYPE_TEXT},
		{"rb", FILETYPE_TEXT},   {"go", FILETYPE_TEXT},   {"rs", FILETYPE_TEXT},
		{"java", FILETYPE_TEXT}, {"js", FILETYPE_TEXT},   {"ts", FILETYPE_TEXT},
		{"css", FILETYPE_TEXT},  {"php", FILETYPE_TEXT},  {"eml", FILETYPE_TEXT},
		{"ics", FILETYPE_TEXT},  {"vcf", FILETYPE_TEXT},
		/* binaries */
		{"o", FILETYPE_ELF},     {"so", FILETYPE_ELF},
	};
	const char *slash = memrchr(path, '/', len);
	const char *name = slash ? slash + 1 : path;
	size_t nl = len - (size_t)(name - path);
	const char *dot = memrchr(name, '.', nl);
	if (!dot || dot == name)
		return FILETYPE_UNKNOWN;
	size_t el = nl - (size_t)(dot + 1 - name);
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strlen(map[i].ext) == el && strncasecmp(dot + 1, map[i].ext, el) == 0)
			return map[i].t;
	return FILETYPE_UNKNOWN;
}

/* Formats that one name may rightly hold: a family number per filetype_id, 0 for none. */
static int family(int t)
{
	switch (t) {
	case FILETYPE_TEXT: case FILETYPE_JSON: case FILETYPE_CSV: case FILETYPE_XML: case FILETYPE_HTML:
		return 1;
	case FILETYPE_ZIP: case FILETYPE_DOCX: case FILETYPE_XLSX: case FILETYPE_PPTX: case FILETYPE_ODF:
	case FILETYPE_OLE: /* .doc, and password-protected OOXML */
		return 2;
	case FILETYPE_PNG: case FILETYPE_JPEG: case FILETYPE_GIF: case FILETYPE_TIFF: case FILETYPE_WEBP:
		return 3;
	case FILETYPE_MP4: case FILETYPE_MOV:
		return 4;
	case FILETYPE_TAR: case FILETYPE_GZIP: case FILETYPE_BZIP2: case FILETYPE_XZ: case FILETYPE_ZSTD:
		return 5; /* a compressed tarball under either name */
	default:
		return 0;
	}
}

bool content_type_matches(int want, int got)
{
	if (want == got || want == FILETYPE_UNKNOWN || got == FILETYPE_EMPTY)
		return true;
	int f = family(want);
	return f && f == family(got);
}
