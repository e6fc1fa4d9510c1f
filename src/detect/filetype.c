/* filetype.c: magic numbers and bounded structure checks (see filetype.h).
 *
 * Every read goes through get()/u16le()/... with an explicit offset check against the
 * buffer it reads from; nothing here trusts a length field from the file without checking
 * it against what was actually read. The head is the file's first bytes, the "end" view the
 * file's last bytes (the tail buffer, or the head when it holds the whole file).
 *
 * Encryption markers, as seen on this machine (p7zip 16.02, Info-ZIP 3.0):
 *  - zip -P:                 local header flags bit 0 (traditional PKWARE encryption)
 *  - 7z a -tzip -mem=AES256: flags bit 0 and method 99 (WinZip AES)
 *  - 7z a -p, small archive: plain header (0x01) listing coder 06F10701 (7zAES)
 *  - 7z a -p, larger archive:encoded header (0x17) whose own coder is LZMA: the AES coder is
 *                            inside the compressed header, so only "maybe"
 *  - 7z a -p -mhe=on:        encoded header (0x17) whose coder list holds 06F10701 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1  /* memmem */
#endif
#include "detect/filetype.h"
#include "core/io.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct view {
	const unsigned char *p;
	size_t n;
};

struct ctx {
	struct view head;
	struct view end;   /* the file's last bytes; n == 0 when unknown */
	uint64_t size;     /* file size */
	uint64_t end_off;  /* file offset of end.p[0] */
	struct filetype_result *r;
};

static bool has(const struct view *v, size_t off, size_t len)
{
	return off <= v->n && len <= v->n - off;
}

static uint16_t u16le(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint16_t u16be(const unsigned char *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t u32le(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint32_t u32be(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}
static uint64_t u64le(const unsigned char *p)
{
	return (uint64_t)u32le(p) | (uint64_t)u32le(p + 4) << 32;
}
static uint64_t u64be(const unsigned char *p)
{
	return (uint64_t)u32be(p) << 32 | (uint64_t)u32be(p + 4);
}

/* CRC-32 (IEEE, reflected), bitwise: only short headers are checked, so no table. */
static uint32_t crc32_ieee(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
	}
	return ~c;
}

static const unsigned char *find(const struct view *v, size_t from, const void *needle,
				 size_t nlen)
{
	if (from >= v->n || nlen == 0)
		return NULL;
	return memmem(v->p + from, v->n - from, needle, nlen);
}

static bool starts(const struct view *v, size_t off, const void *magic, size_t len)
{
	return has(v, off, len) && memcmp(v->p + off, magic, len) == 0;
}

/* Bytes [off, off+len) of the file, if the end view covers them. */
static const unsigned char *at_end(const struct ctx *c, uint64_t off, uint64_t len)
{
	if (c->end.n == 0 || off < c->end_off || len > c->end.n)
		return NULL;
	uint64_t rel = off - c->end_off;
	if (rel > c->end.n - len)
		return NULL;
	return c->end.p + rel;
}

static void set(struct ctx *c, enum filetype_id id, bool valid)
{
	c->r->id = id;
	c->r->valid = valid;
}

static void why(struct ctx *c, const char *s)
{
	if (!c->r->why[0])
		snprintf(c->r->why, sizeof(c->r->why), "%s", s);
}

static void fail(struct ctx *c, enum filetype_id id, const char *s)
{
	set(c, id, false);
	why(c, s);
}

/* YES outranks MAYBE outranks NO: a later, weaker finding does not undo a stronger one. */
static int crypt_rank(enum filetype_crypt e)
{
	return e == FILETYPE_CRYPT_YES ? 2 : e == FILETYPE_CRYPT_MAYBE ? 1 : 0;
}

static void declare_crypt(struct ctx *c, enum filetype_crypt e, const char *s)
{
	if (crypt_rank(e) > crypt_rank(c->r->encrypted)) {
		c->r->encrypted = e;
		snprintf(c->r->why, sizeof(c->r->why), "%s", s);
	}
}

/* ---- ZIP and its document formats ---- */

#define ZIP_LFH 30u
#define ZIP_EOCD 22u

/* Checks a local file header at off; fills name view, flags, method; returns the offset of
 * the next header when the compressed size is known (0 when not). */
static bool zip_lfh(const struct view *h, size_t off, struct view *name, uint16_t *flags,
		    uint16_t *method, size_t *next)
{
	if (!has(h, off, ZIP_LFH) || memcmp(h->p + off, "PK\3\4", 4) != 0)
		return false;
	const unsigned char *p = h->p + off;
	uint16_t ver = u16le(p + 4), nlen = u16le(p + 26), xlen = u16le(p + 28);
	*flags = u16le(p + 6);
	*method = u16le(p + 8);
	/* Version needed is a small number (<= 6.3 in today's APPNOTE); names are not empty. */
	if ((ver & 0xff) > 100 || nlen == 0 || !has(h, off + ZIP_LFH, nlen))
		return false;
	if (*method > 99 && *method != 0xffff)
		return false;
	name->p = p + ZIP_LFH;
	name->n = nlen;
	uint64_t csize = u32le(p + 18);
	*next = 0;
	if (!(*flags & 8) && csize != 0xffffffffu)
		*next = off + ZIP_LFH + nlen + xlen + (size_t)csize;
	return true;
}

static bool name_is(const struct view *n, const char *s)
{
	size_t l = strlen(s);
	return n->n == l && memcmp(n->p, s, l) == 0;
}

static bool name_starts(const struct view *n, const char *s)
{
	size_t l = strlen(s);
	return n->n >= l && memcmp(n->p, s, l) == 0;
}

static enum filetype_id ooxml_from(const struct view *v)
{
	if (find(v, 0, "word/", 5))
		return FILETYPE_DOCX;
	if (find(v, 0, "xl/", 3))
		return FILETYPE_XLSX;
	if (find(v, 0, "ppt/", 4))
		return FILETYPE_PPTX;
	return FILETYPE_ZIP;
}

static void check_zip(struct ctx *c)
{
	const struct view *h = &c->head;
	enum filetype_id id = FILETYPE_ZIP;
	bool ooxml = false;

	if (starts(h, 0, "PK\5\6", 4)) {  /* an empty archive is only an end record */
		set(c, id, has(h, 0, ZIP_EOCD));
		return;
	}
	struct view name;
	uint16_t flags, method;
	size_t next, off = 0;
	if (!zip_lfh(h, 0, &name, &flags, &method, &next)) {
		fail(c, id, "zip local header does not parse");
		return;
	}
	if (name_is(&name, "mimetype") && method == 0) {
		size_t data = ZIP_LFH + name.n + u16le(h->p + 28);
		if (starts(h, data, "application/vnd.oasis.opendocument", 34))
			id = FILETYPE_ODF;
	}
	/* Walk the local headers the head holds: any entry may carry the encryption flag. */
	for (int i = 0; i < 64; i++) {
		if (name_is(&name, "[Content_Types].xml") || name_starts(&name, "_rels/"))
			ooxml = true;
		if (flags & 1)
			declare_crypt(c, FILETYPE_CRYPT_YES, method == 99 ? "zip entry: WinZip AES"
								  : "zip entry: encrypted flag");
		if (flags & 0x40)
			declare_crypt(c, FILETYPE_CRYPT_YES, "zip entry: strong encryption flag");
		if (next == 0 || next <= off)
			break;
		off = next;
		if (!zip_lfh(h, off, &name, &flags, &method, &next))
			break;
	}
	if (c->end.n) {
		/* The end record sits in the last 22 bytes unless a comment follows it. */
		const unsigned char *e = NULL;
		for (size_t k = c->end.n >= ZIP_EOCD ? c->end.n - ZIP_EOCD + 1 : 0; k-- > 0;) {
			if (memcmp(c->end.p + k, "PK\5\6", 4) == 0) {
				e = c->end.p + k;
				break;
			}
		}
		if (!e) {
			fail(c, id, "zip end of central directory missing");
			return;
		}
		uint64_t cd_size = u32le(e + 12), cd_off = u32le(e + 16);
		if (cd_off != 0xffffffffu && cd_off + cd_size > c->size) {
			fail(c, id, "zip central directory beyond end of file");
			return;
		}
		/* The central directory lists every name: the document kind is there. */
		if (ooxml && id == FILETYPE_ZIP)
			id = ooxml_from(&c->end);
	}
	if (ooxml && id == FILETYPE_ZIP)
		id = ooxml_from(h);
	set(c, id, true);
}

/* ---- 7z ---- */

static const unsigned char SEVENZ_AES[] = {0x06, 0xf1, 0x07, 0x01};

static void check_7z(struct ctx *c)
{
	const struct view *h = &c->head;
	if (!has(h, 0, 32) || h->p[6] != 0 || u32le(h->p + 8) != crc32_ieee(h->p + 12, 20)) {
		fail(c, FILETYPE_7Z, "7z start header crc mismatch");
		return;
	}
	uint64_t nho = u64le(h->p + 12), nhs = u64le(h->p + 20);
	uint32_t nhcrc = u32le(h->p + 28);
	if (nho > c->size || nhs > c->size || 32 + nho + nhs > c->size) {
		fail(c, FILETYPE_7Z, "7z next header beyond end of file");
		return;
	}
	set(c, FILETYPE_7Z, true);
	const unsigned char *nh = at_end(c, 32 + nho, nhs);
	if (!nh && 32 + nho + nhs <= h->n)
		nh = h->p + 32 + nho;
	if (!nh || nhs == 0)
		return;  /* header not read: structure checked as far as we can */
	if (crc32_ieee(nh, (size_t)nhs) != nhcrc) {
		fail(c, FILETYPE_7Z, "7z next header crc mismatch");
		return;
	}
	struct view v = {nh, (size_t)nhs};
	bool aes = find(&v, 0, SEVENZ_AES, sizeof(SEVENZ_AES)) != NULL;
	if (nh[0] == 0x01 && aes)
		declare_crypt(c, FILETYPE_CRYPT_YES, "7z: AES coder in header");
	else if (nh[0] == 0x17 && aes)
		declare_crypt(c, FILETYPE_CRYPT_YES, "7z: header encrypted (AES)");
	else if (nh[0] == 0x17)
		declare_crypt(c, FILETYPE_CRYPT_MAYBE, "7z: compressed header hides coders");
	else if (nh[0] != 0x01)
		fail(c, FILETYPE_7Z, "7z next header of unknown kind");
}

/* ---- RAR (magic and main header; no RAR tool on the build machine to test more) ---- */

static void check_rar(struct ctx *c)
{
	const struct view *h = &c->head;
	if (starts(h, 0, "Rar!\x1a\x07\x01\x00", 8)) {
		/* RAR5: crc32, vint size, vint type. Type 4 is the archive encryption header,
		 * present when the headers themselves are encrypted. */
		if (!has(h, 8, 6)) {
			fail(c, FILETYPE_RAR, "rar5 header truncated");
			return;
		}
		size_t o = 12;
		uint64_t hsize = 0;
		for (int s = 0; s < 28 && has(h, o, 1); s += 7) {
			hsize |= (uint64_t)(h->p[o] & 0x7f) << s;
			if (!(h->p[o++] & 0x80))
				break;
		}
		if (hsize == 0 || hsize > 2u * 1024 * 1024 || !has(h, o, (size_t)hsize) ||
		    crc32_ieee(h->p + 12, o - 12 + (size_t)hsize) != u32le(h->p + 8)) {
			fail(c, FILETYPE_RAR, "rar5 header crc mismatch");
			return;
		}
		set(c, FILETYPE_RAR, true);
		if (h->p[o] == 4)
			declare_crypt(c, FILETYPE_CRYPT_YES, "rar5: archive encryption header");
		return;
	}
	/* RAR 1.5-4: 7-byte marker, then main header: crc16, type 0x73, flags, size. */
	if (!has(h, 7, 7) || h->p[9] != 0x73) {
		fail(c, FILETYPE_RAR, "rar main header missing");
		return;
	}
	uint16_t flags = u16le(h->p + 10), hs = u16le(h->p + 12);
	if (hs < 7 || !has(h, 7, hs) ||
	    (crc32_ieee(h->p + 9, hs - 2u) & 0xffff) != u16le(h->p + 7)) {
		fail(c, FILETYPE_RAR, "rar main header crc mismatch");
		return;
	}
	set(c, FILETYPE_RAR, true);
	if (flags & 0x0080)
		declare_crypt(c, FILETYPE_CRYPT_YES, "rar: headers encrypted");
	size_t f = 7 + (size_t)hs;  /* first file header: flag 0x04 = password */
	if (has(h, f, 7) && h->p[f + 2] == 0x74 && (u16le(h->p + f + 3) & 0x04))
		declare_crypt(c, FILETYPE_CRYPT_YES, "rar: file encrypted");
}

/* ---- compressed streams ---- */

static void check_gzip(struct ctx *c)
{
	const struct view *h = &c->head;
	if (!has(h, 0, 10) || h->p[2] != 8 || (h->p[3] & 0xe0)) {
		fail(c, FILETYPE_GZIP, "gzip method or reserved flags wrong");
		return;
	}
	uint8_t fl = h->p[3];
	size_t o = 10;
	if (fl & 4) {  /* FEXTRA */
		if (!has(h, o, 2) || !has(h, o + 2, u16le(h->p + o))) {
			fail(c, FILETYPE_GZIP, "gzip extra field truncated");
			return;
		}
		o += 2 + u16le(h->p + o);
	}
	for (int bit = 8; bit <= 16; bit <<= 1) {  /* FNAME, FCOMMENT: NUL-terminated */
		if (!(fl & bit))
			continue;
		const unsigned char *z = o < h->n ? memchr(h->p + o, 0, h->n - o) : NULL;
		if (!z) {
			fail(c, FILETYPE_GZIP, "gzip name or comment unterminated");
			return;
		}
		o = (size_t)(z - h->p) + 1;
	}
	if ((fl & 2) && !has(h, o, 2)) {
		fail(c, FILETYPE_GZIP, "gzip header crc truncated");
		return;
	}
	/* A deflate stream follows: its first block type (bits 1-2) is never 3. */
	o += (fl & 2) ? 2 : 0;
	if (has(h, o, 1) && ((h->p[o] >> 1) & 3) == 3) {
		fail(c, FILETYPE_GZIP, "gzip deflate block type invalid");
		return;
	}
	set(c, FILETYPE_GZIP, true);
}

static void check_xz(struct ctx *c)
{
	const struct view *h = &c->head;
	if (!has(h, 0, 12) || h->p[6] != 0 || (h->p[7] & 0xf0) ||
	    crc32_ieee(h->p + 6, 2) != u32le(h->p + 8)) {
		fail(c, FILETYPE_XZ, "xz stream flags crc mismatch");
		return;
	}
	const unsigned char *e = at_end(c, c->size >= 2 ? c->size - 2 : 0, 2);
	if (e && c->size >= 24 && memcmp(e, "YZ", 2) != 0) {
		fail(c, FILETYPE_XZ, "xz stream footer missing");
		return;
	}
	set(c, FILETYPE_XZ, true);
}

static void check_zstd(struct ctx *c)
{
	const struct view *h = &c->head;
	/* Frame header descriptor: bit 3 is reserved and must be zero. */
	if (!has(h, 0, 5) || (h->p[4] & 0x08)) {
		fail(c, FILETYPE_ZSTD, "zstd frame header reserved bit set");
		return;
	}
	set(c, FILETYPE_ZSTD, true);
}

static void check_bzip2(struct ctx *c)
{
	const struct view *h = &c->head;
	bool ok = has(h, 0, 10) && h->p[3] >= '1' && h->p[3] <= '9' &&
		  (memcmp(h->p + 4, "\x31\x41\x59\x26\x53\x59", 6) == 0 ||
		   memcmp(h->p + 4, "\x17\x72\x45\x38\x50\x90", 6) == 0);
	if (ok)
		set(c, FILETYPE_BZIP2, true);
	else
		fail(c, FILETYPE_BZIP2, "bzip2 block magic missing");
}

/* The header checksum: octal digits at 148..155, the byte sum of the header with that field
 * read as spaces. Returns true when it matches (v7 tar has no "ustar" magic, only this). */
static bool tar_sum_ok(const struct view *h)
{
	unsigned long want = 0, sum = 0;
	int digits = 0;
	for (int i = 148; i < 156; i++) {
		unsigned char ch = h->p[i];
		if (ch >= '0' && ch <= '7') {
			want = want * 8 + (ch - '0');
			digits++;
		} else if (ch != ' ' && ch != 0) {
			digits = -100;
		}
	}
	for (int i = 0; i < 512; i++)
		sum += (i >= 148 && i < 156) ? ' ' : h->p[i];
	return digits > 0 && sum == want;
}

static void check_tar(struct ctx *c)
{
	if (tar_sum_ok(&c->head))
		set(c, FILETYPE_TAR, true);
	else
		fail(c, FILETYPE_TAR, "tar header checksum mismatch");
}

/* ---- images and media ---- */

static void check_png(struct ctx *c)
{
	const struct view *h = &c->head;
	if (!has(h, 8, 25) || u32be(h->p + 8) != 13 || memcmp(h->p + 12, "IHDR", 4) != 0 ||
	    crc32_ieee(h->p + 12, 17) != u32be(h->p + 29)) {
		fail(c, FILETYPE_PNG, "png IHDR crc mismatch");
		return;
	}
	if (u32be(h->p + 16) == 0 || u32be(h->p + 20) == 0) {
		fail(c, FILETYPE_PNG, "png zero width or height");
		return;
	}
	const unsigned char *e = at_end(c, c->size >= 12 ? c->size - 12 : 0, 12);
	if (e && memcmp(e, "\0\0\0\0IEND\xae\x42\x60\x82", 12) != 0) {
		fail(c, FILETYPE_PNG, "png IEND chunk missing at end");
		return;
	}
	set(c, FILETYPE_PNG, true);
}

static void check_jpeg(struct ctx *c)
{
	const struct view *h = &c->head;
	size_t o = 2;
	int segs = 0;
	/* Segments up to the start of scan: FF marker, big-endian length including itself. */
	while (has(h, o, 2)) {
		if (h->p[o] != 0xff) {
			fail(c, FILETYPE_JPEG, "jpeg segment marker expected");
			return;
		}
		uint8_t m = h->p[o + 1];
		if (m == 0xff) {  /* fill byte */
			o++;
			continue;
		}
		if (m == 0x01 || (m >= 0xd0 && m <= 0xd7)) {  /* no length */
			o += 2;
			continue;
		}
		if (m == 0x00 || m == 0xd8 || m == 0xd9) {
			fail(c, FILETYPE_JPEG, "jpeg marker out of place");
			return;
		}
		if (!has(h, o + 2, 2))
			break;
		uint16_t len = u16be(h->p + o + 2);
		if (len < 2) {
			fail(c, FILETYPE_JPEG, "jpeg segment length invalid");
			return;
		}
		segs++;
		if (m == 0xda)  /* start of scan: entropy-coded data follows */
			break;
		o += 2 + (size_t)len;
	}
	if (segs == 0) {
		fail(c, FILETYPE_JPEG, "jpeg has no segment");
		return;
	}
	if (c->end.n >= 2) {
		/* EOI, allowing the padding some writers leave after it. */
		size_t k = c->end.n < 1024 ? c->end.n : 1024;
		struct view last = {c->end.p + c->end.n - k, k};
		if (!find(&last, 0, "\xff\xd9", 2)) {
			fail(c, FILETYPE_JPEG, "jpeg end-of-image marker missing");
			return;
		}
	}
	set(c, FILETYPE_JPEG, true);
}

static void check_gif(struct ctx *c)
{
	const struct view *h = &c->head;
	/* No trailer check: GIFs without the final 0x3b are common and still display. */
	if (!has(h, 0, 13) || u16le(h->p + 6) == 0 || u16le(h->p + 8) == 0) {
		fail(c, FILETYPE_GIF, "gif screen descriptor invalid");
		return;
	}
	set(c, FILETYPE_GIF, true);
}

static void check_tiff(struct ctx *c)
{
	const struct view *h = &c->head;
	bool le = h->p[0] == 'I';
	uint32_t ifd = le ? u32le(h->p + 4) : u32be(h->p + 4);
	if (ifd < 8 || ifd >= c->size) {
		fail(c, FILETYPE_TIFF, "tiff first IFD offset invalid");
		return;
	}
	set(c, FILETYPE_TIFF, true);
}

static void check_webp(struct ctx *c)
{
	const struct view *h = &c->head;
	uint64_t riff = (uint64_t)u32le(h->p + 4) + 8;
	if (!has(h, 12, 4) || (memcmp(h->p + 12, "VP8 ", 4) && memcmp(h->p + 12, "VP8L", 4) &&
			       memcmp(h->p + 12, "VP8X", 4))) {
		fail(c, FILETYPE_WEBP, "webp first chunk unknown");
		return;
	}
	if (riff != c->size && riff + 1 != c->size) {
		fail(c, FILETYPE_WEBP, "webp RIFF size differs from file size");
		return;
	}
	set(c, FILETYPE_WEBP, true);
}

static bool box_known(const unsigned char *t)
{
	static const char k[][5] = {"ftyp", "moov", "mdat", "free", "skip", "wide", "meta",
				    "uuid", "pdin", "moof", "sidx", "styp", "mfra", "pnot"};
	for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++)
		if (memcmp(t, k[i], 4) == 0)
			return true;
	return false;
}

/* ISO base media (mp4, mov): top-level boxes of size + type, walked while in the head. */
static void check_isobmff(struct ctx *c)
{
	const struct view *h = &c->head;
	enum filetype_id id = FILETYPE_MP4;
	if (memcmp(h->p + 4, "ftyp", 4) == 0) {
		if (has(h, 8, 4) && memcmp(h->p + 8, "qt  ", 4) == 0)
			id = FILETYPE_MOV;
	} else {
		id = FILETYPE_MOV;  /* QuickTime files before ftyp existed */
	}
	uint64_t o = 0;
	int boxes = 0;
	while (o + 8 <= h->n && boxes < 64) {
		uint64_t sz = u32be(h->p + o);
		if (!box_known(h->p + o + 4)) {
			fail(c, id, "mp4 box of unknown type");
			return;
		}
		if (sz == 1) {
			if (!has(h, (size_t)o + 8, 8))
				break;
			sz = u64be(h->p + o + 8);
			if (sz < 16) {
				fail(c, id, "mp4 large box size invalid");
				return;
			}
		} else if (sz == 0) {
			sz = c->size - o;  /* to the end of the file */
		}
		if (sz < 8 || sz > c->size - o) {
			fail(c, id, "mp4 box beyond end of file");
			return;
		}
		boxes++;
		o += sz;
	}
	set(c, id, true);
}

/* ---- executables, databases, disk images, compound files ---- */

static void check_elf(struct ctx *c)
{
	const struct view *h = &c->head;
	uint8_t cls = h->p[4], data = h->p[5];
	if ((cls != 1 && cls != 2) || (data != 1 && data != 2) || h->p[6] != 1) {
		fail(c, FILETYPE_ELF, "elf ident invalid");
		return;
	}
	size_t eh = cls == 2 ? 64 : 52, at = cls == 2 ? 52 : 40;
	if (!has(h, at, 2)) {
		fail(c, FILETYPE_ELF, "elf header truncated");
		return;
	}
	uint16_t ehsize = data == 1 ? u16le(h->p + at) : u16be(h->p + at);
	if (ehsize != eh) {
		fail(c, FILETYPE_ELF, "elf header size wrong");
		return;
	}
	set(c, FILETYPE_ELF, true);
}

static void check_sqlite(struct ctx *c)
{
	const struct view *h = &c->head;
	if (!has(h, 0, 100)) {
		fail(c, FILETYPE_SQLITE, "sqlite header truncated");
		return;
	}
	uint32_t ps = u16be(h->p + 16);
	if (ps == 1)
		ps = 65536;
	bool pow2 = ps >= 512 && ps <= 65536 && (ps & (ps - 1)) == 0;
	/* Payload fractions are fixed at 64/32/32; read/write versions 1 (legacy) or 2 (WAL). */
	if (!pow2 || h->p[18] < 1 || h->p[18] > 2 || h->p[19] < 1 || h->p[19] > 2 ||
	    h->p[21] != 64 || h->p[22] != 32 || h->p[23] != 32) {
		fail(c, FILETYPE_SQLITE, "sqlite header fields invalid");
		return;
	}
	if (c->size % ps) {
		fail(c, FILETYPE_SQLITE, "sqlite size not a multiple of the page size");
		return;
	}
	/* The in-header page count is valid when the change counter matches version-valid-for. */
	uint32_t pages = u32be(h->p + 28);
	if (u32be(h->p + 24) == u32be(h->p + 92) && pages && (uint64_t)pages * ps != c->size) {
		fail(c, FILETYPE_SQLITE, "sqlite page count differs from file size");
		return;
	}
	set(c, FILETYPE_SQLITE, true);
}

static void check_qcow2(struct ctx *c)
{
	const struct view *h = &c->head;
	uint32_t ver = has(h, 0, 48) ? u32be(h->p + 4) : 0;
	if (ver < 1 || ver > 3) {
		fail(c, FILETYPE_QCOW2, "qcow version invalid");
		return;
	}
	if (ver >= 2) {
		uint32_t cb = u32be(h->p + 20);
		if (cb < 9 || cb > 21) {
			fail(c, FILETYPE_QCOW2, "qcow2 cluster bits invalid");
			return;
		}
	}
	set(c, FILETYPE_QCOW2, true);
	uint32_t cm = u32be(h->p + (ver == 1 ? 36 : 32));
	if (cm == 1)
		declare_crypt(c, FILETYPE_CRYPT_YES, "qcow: AES encryption");
	else if (cm == 2)
		declare_crypt(c, FILETYPE_CRYPT_YES, "qcow2: LUKS encryption");
}

static void check_vmdk(struct ctx *c)
{
	const struct view *h = &c->head;
	uint32_t ver = has(h, 0, 8) ? u32le(h->p + 4) : 0;
	if (ver < 1 || ver > 3)
		fail(c, FILETYPE_VMDK, "vmdk sparse header version invalid");
	else
		set(c, FILETYPE_VMDK, true);
}

static const char OLE_ENCPKG[] = "E\0n\0c\0r\0y\0p\0t\0e\0d\0P\0a\0c\0k\0a\0g\0e";

static void check_ole(struct ctx *c)
{
	const struct view *h = &c->head;
	uint16_t major = has(h, 0, 32) ? u16le(h->p + 26) : 0;
	if ((major != 3 && major != 4) || u16le(h->p + 28) != 0xfffe) {
		fail(c, FILETYPE_OLE, "compound file header invalid");
		return;
	}
	set(c, FILETYPE_OLE, true);
	/* Office stores a password-protected docx/xlsx as a compound file with this stream. */
	if (find(h, 0, OLE_ENCPKG, sizeof(OLE_ENCPKG) - 1) ||
	    find(&c->end, 0, OLE_ENCPKG, sizeof(OLE_ENCPKG) - 1))
		declare_crypt(c, FILETYPE_CRYPT_YES, "office: EncryptedPackage stream");
}

static void check_pdf(struct ctx *c, size_t at)
{
	const struct view *h = &c->head;
	if (!has(h, at, 8) || (h->p[at + 5] != '1' && h->p[at + 5] != '2') || h->p[at + 6] != '.') {
		fail(c, FILETYPE_PDF, "pdf version invalid");
		return;
	}
	if (c->end.n) {
		size_t k = c->end.n < 1024 ? c->end.n : 1024;
		struct view last = {c->end.p + c->end.n - k, k};
		if (!find(&last, 0, "%%EOF", 5)) {
			fail(c, FILETYPE_PDF, "pdf %%EOF missing near end");
			return;
		}
	}
	set(c, FILETYPE_PDF, true);
	/* The trailer (at the end, or near the start when linearized) names the /Encrypt dict. */
	if (find(&c->end, 0, "/Encrypt", 8) || find(h, 0, "/Encrypt", 8))
		declare_crypt(c, FILETYPE_CRYPT_YES, "pdf: /Encrypt in trailer");
}

/* ---- text ---- */

/* Valid UTF-8 with few control characters; a sequence cut by the end of the head is fine. */
static bool is_text(const struct view *h)
{
	size_t ctrl = 0, i = 0;
	while (i < h->n) {
		unsigned char ch = h->p[i];
		if (ch < 0x80) {
			if (ch == 0)
				return false;
			if (ch < 0x20 && ch != '\t' && ch != '\n' && ch != '\r' && ch != '\f' &&
			    ch != 0x1b)
				ctrl++;
			i++;
			continue;
		}
		size_t len = ch >= 0xf0 && ch <= 0xf4 ? 4 : ch >= 0xe0 ? 3 : ch >= 0xc2 ? 2 : 0;
		if (len == 0 || ch > 0xf4)
			return false;
		for (size_t k = 1; k < len; k++) {
			if (i + k >= h->n)
				return true;  /* cut at the end of what was read */
			if ((h->p[i + k] & 0xc0) != 0x80)
				return false;
		}
		i += len;
	}
	return ctrl * 100 <= h->n;
}

static size_t skip_ws(const struct view *h, size_t i)
{
	while (i < h->n && (h->p[i] == ' ' || h->p[i] == '\t' || h->p[i] == '\n' ||
			    h->p[i] == '\r'))
		i++;
	return i;
}

/* Brackets balance outside strings, and nothing but space follows the root value. A head cut
 * inside the value is fine. */
static bool json_shape(const struct view *h, size_t i)
{
	int depth = 0;
	bool str = false, esc = false, closed = false;
	for (; i < h->n; i++) {
		unsigned char ch = h->p[i];
		if (closed) {
			if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r')
				return false;
			continue;
		}
		if (str) {
			if (esc)
				esc = false;
			else if (ch == '\\')
				esc = true;
			else if (ch == '"')
				str = false;
			continue;
		}
		if (ch == '"')
			str = true;
		else if (ch == '{' || ch == '[')
			depth++;
		else if (ch == '}' || ch == ']') {
			if (--depth < 0)
				return false;
			if (depth == 0)
				closed = true;
		}
		if (depth > 512)
			return false;
	}
	return true;
}

/* Delimited rows: the same non-zero count of one delimiter on the first complete lines. */
static bool csv_shape(const struct view *h)
{
	static const char delims[] = {',', ';', '\t', '|'};
	for (size_t d = 0; d < sizeof(delims); d++) {
		size_t i = 0, want = 0, lines = 0;
		bool ok = true;
		while (ok && lines < 20) {
			const unsigned char *nl = i < h->n ? memchr(h->p + i, '\n', h->n - i) : NULL;
			if (!nl)
				break;
			size_t end = (size_t)(nl - h->p), cnt = 0;
			bool q = false;
			for (size_t k = i; k < end; k++) {
				if (h->p[k] == '"')
					q = !q;
				else if (!q && h->p[k] == (unsigned char)delims[d])
					cnt++;
			}
			if (end > i) {
				if (lines == 0)
					want = cnt;
				ok = cnt == want && cnt > 0;
				lines++;
			}
			i = end + 1;
		}
		if (ok && lines >= 2)
			return true;
	}
	return false;
}

static void check_text(struct ctx *c)
{
	const struct view *h = &c->head;
	size_t i = 0;
	if (starts(h, 0, "\xef\xbb\xbf", 3))
		i = 3;
	i = skip_ws(h, i);
	if (i < h->n && (h->p[i] == '{' || h->p[i] == '[') && json_shape(h, i)) {
		set(c, FILETYPE_JSON, true);
		return;
	}
	if (i < h->n && h->p[i] == '<') {
		struct view rest = {h->p + i, h->n - i < 512 ? h->n - i : 512};
		if (rest.n >= 5 && (strncasecmp((const char *)rest.p, "<html", 5) == 0 ||
				    (rest.n >= 14 &&
				     strncasecmp((const char *)rest.p, "<!doctype html", 14) == 0))) {
			set(c, FILETYPE_HTML, true);
			return;
		}
		if (find(&rest, 0, ">", 1)) {
			set(c, FILETYPE_XML, true);
			return;
		}
	}
	set(c, csv_shape(h) ? FILETYPE_CSV : FILETYPE_TEXT, true);
}

/* ---- dispatch ---- */

static const char *const names[FILETYPE__COUNT] = {
	[FILETYPE_UNKNOWN] = "unknown", [FILETYPE_EMPTY] = "empty", [FILETYPE_TEXT] = "text",
	[FILETYPE_JSON] = "json",       [FILETYPE_CSV] = "csv",     [FILETYPE_XML] = "xml",
	[FILETYPE_HTML] = "html",       [FILETYPE_PDF] = "pdf",     [FILETYPE_ZIP] = "zip",
	[FILETYPE_DOCX] = "docx",       [FILETYPE_XLSX] = "xlsx",   [FILETYPE_PPTX] = "pptx",
	[FILETYPE_ODF] = "odf",         [FILETYPE_OLE] = "ole",     [FILETYPE_GZIP] = "gzip",
	[FILETYPE_BZIP2] = "bzip2",     [FILETYPE_XZ] = "xz",       [FILETYPE_ZSTD] = "zstd",
	[FILETYPE_7Z] = "7z",           [FILETYPE_RAR] = "rar",     [FILETYPE_TAR] = "tar",
	[FILETYPE_PNG] = "png",         [FILETYPE_JPEG] = "jpeg",   [FILETYPE_GIF] = "gif",
	[FILETYPE_TIFF] = "tiff",       [FILETYPE_WEBP] = "webp",   [FILETYPE_MP4] = "mp4",
	[FILETYPE_MOV] = "mov",         [FILETYPE_ELF] = "elf",     [FILETYPE_SQLITE] = "sqlite",
	[FILETYPE_QCOW2] = "qcow2",     [FILETYPE_VMDK] = "vmdk",
};

const char *filetype_name(enum filetype_id id)
{
	return (unsigned)id < FILETYPE__COUNT && names[id] ? names[id] : "?";
}

bool filetype_is_compressed(enum filetype_id id)
{
	switch (id) {
	case FILETYPE_ZIP: case FILETYPE_DOCX: case FILETYPE_XLSX: case FILETYPE_PPTX:
	case FILETYPE_ODF: case FILETYPE_GZIP: case FILETYPE_BZIP2: case FILETYPE_XZ:
	case FILETYPE_ZSTD: case FILETYPE_7Z: case FILETYPE_RAR: case FILETYPE_PNG:
	case FILETYPE_JPEG: case FILETYPE_GIF: case FILETYPE_WEBP: case FILETYPE_MP4:
	case FILETYPE_MOV:
		return true;
	default:
		return false;
	}
}

bool filetype_is_text(enum filetype_id id)
{
	return id >= FILETYPE_TEXT && id <= FILETYPE_HTML;
}

static void dispatch(struct ctx *c)
{
	const struct view *h = &c->head;
	const unsigned char *p = h->p;

	if (h->n == 0) {
		set(c, FILETYPE_EMPTY, true);
		return;
	}
	if (starts(h, 0, "PK\3\4", 4) || starts(h, 0, "PK\5\6", 4)) {
		check_zip(c);
		return;
	}
	if (starts(h, 0, "7z\xbc\xaf\x27\x1c", 6)) {
		check_7z(c);
		return;
	}
	if (starts(h, 0, "Rar!\x1a\x07", 6)) {
		check_rar(c);
		return;
	}
	if (starts(h, 0, "\x1f\x8b", 2)) {
		check_gzip(c);
		return;
	}
	if (starts(h, 0, "\xfd" "7zXZ\0", 6)) {
		check_xz(c);
		return;
	}
	if (starts(h, 0, "\x28\xb5\x2f\xfd", 4)) {
		check_zstd(c);
		return;
	}
	if (has(h, 0, 4) && (u32le(p) & 0xfffffff0u) == 0x184d2a50u) {  /* zstd skippable */
		set(c, FILETYPE_ZSTD, true);
		return;
	}
	if (starts(h, 0, "BZh", 3)) {
		check_bzip2(c);
		return;
	}
	if (starts(h, 0, "\x89PNG\r\n\x1a\n", 8)) {
		check_png(c);
		return;
	}
	if (starts(h, 0, "\xff\xd8\xff", 3)) {
		check_jpeg(c);
		return;
	}
	if (starts(h, 0, "GIF87a", 6) || starts(h, 0, "GIF89a", 6)) {
		check_gif(c);
		return;
	}
	if (starts(h, 0, "II*\0", 4) || starts(h, 0, "MM\0*", 4)) {
		if (has(h, 0, 8)) {
			check_tiff(c);
			return;
		}
		fail(c, FILETYPE_TIFF, "tiff header truncated");
		return;
	}
	if (starts(h, 0, "RIFF", 4) && starts(h, 8, "WEBP", 4)) {
		check_webp(c);
		return;
	}
	if (has(h, 4, 4) && (memcmp(p + 4, "ftyp", 4) == 0 || memcmp(p + 4, "moov", 4) == 0 ||
			     memcmp(p + 4, "mdat", 4) == 0 || memcmp(p + 4, "wide", 4) == 0)) {
		check_isobmff(c);
		return;
	}
	if (starts(h, 0, "\x7f" "ELF", 4)) {
		if (has(h, 0, 16)) {
			check_elf(c);
			return;
		}
		fail(c, FILETYPE_ELF, "elf ident truncated");
		return;
	}
	if (starts(h, 0, "SQLite format 3\0", 16)) {
		check_sqlite(c);
		return;
	}
	if (starts(h, 0, "QFI\xfb", 4)) {
		if (has(h, 0, 48)) {
			check_qcow2(c);
			return;
		}
		fail(c, FILETYPE_QCOW2, "qcow header truncated");
		return;
	}
	if (starts(h, 0, "KDMV", 4)) {
		check_vmdk(c);
		return;
	}
	if (starts(h, 0, "# Disk DescriptorFile", 21)) {
		set(c, FILETYPE_VMDK, true);
		return;
	}
	if (starts(h, 0, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 8)) {
		check_ole(c);
		return;
	}
	if (has(h, 257, 5) && memcmp(p + 257, "ustar", 5) == 0 && has(h, 0, 512)) {
		check_tar(c);
		return;
	}
	if (has(h, 0, 512) && p[0] > 0x20 && p[0] < 0x7f && tar_sum_ok(h)) {
		set(c, FILETYPE_TAR, true);  /* v7 tar: no magic, the checksum has to do */
		return;
	}
	/* %PDF may follow a little junk (the spec allows it within the first 1024 bytes). */
	struct view first = {p, h->n < 1024 ? h->n : 1024};
	const unsigned char *pdf = find(&first, 0, "%PDF-", 5);
	if (pdf) {
		check_pdf(c, (size_t)(pdf - p));
		return;
	}
	if (is_text(h)) {
		check_text(c);
		return;
	}
	set(c, FILETYPE_UNKNOWN, false);
}

int filetype_identify(const void *head, size_t head_len, const void *tail, size_t tail_len,
		      uint64_t size, struct filetype_result *out)
{
	if (!out || (!head && head_len) || (!tail && tail_len))
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (size < head_len)
		size = head_len;
	if (size < tail_len)
		tail_len = (size_t)size;
	struct ctx c = {.head = {head, head_len}, .size = size, .r = out};
	if (tail && tail_len) {
		c.end = (struct view){(const unsigned char *)tail, tail_len};
		c.end_off = size - tail_len;
	} else if (head_len == size) {
		c.end = c.head;  /* the head is the whole file */
		c.end_off = 0;
	}
	dispatch(&c);
	out->name = filetype_name(out->id);
	return 0;
}

int filetype_identify_fd(int fd, uint64_t size, struct filetype_result *out)
{
	unsigned char head[FILETYPE_HEAD], tail[FILETYPE_TAIL];
	ssize_t hn, tn = 0;
	int ret;

	hn = io_pread_full(fd, head, sizeof(head), 0);
	if (hn < 0) {
		ret = (int)hn;
		goto out;
	}
	if (size > (uint64_t)hn) {
		uint64_t toff = size > sizeof(tail) ? size - sizeof(tail) : 0;
		tn = io_pread_full(fd, tail, (size_t)(size - toff), toff);
		if (tn < 0) {
			ret = (int)tn;
			goto out;
		}
		if ((uint64_t)tn != size - toff)
			tn = 0;  /* the file shrank: judge the head alone */
	} else {
		size = (uint64_t)hn;  /* the head is the whole file */
	}
	ret = filetype_identify(head, (size_t)hn, tn ? tail : NULL, (size_t)tn, size, out);
out:
	if (ret < 0) {
		memset(out, 0, sizeof(*out));
		out->name = filetype_name(FILETYPE_UNKNOWN);
	}
	return ret;
}
