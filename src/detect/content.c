/* content.c: what a written file's bytes say. The verdict rests on the method, not on names:
 * a format that still parses is not ciphertext (deflate, JPEG, PNG and zstd are also shown
 * non-uniform by pooled chi-square); LZMA (xz/7z) is as uniform as ciphertext, so only its
 * parsing header clears it; an archive that declares its own encryption is reported as such. */
#include "detect/content.h"

#include <string.h>
#include <strings.h>

#include "detect/entropy.h"
#include "detect/filetype.h"

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

int content_inspect(int fd, uint64_t size, struct ward_content *out)
{
	struct entropy_summary es;
	struct filetype_result ft;
	int rc = entropy_sample_fd(fd, size, &es);
	if (rc)
		return rc;
	rc = filetype_identify_fd(fd, size, &ft);
	if (rc)
		return rc;
	fold(&es, &ft, out);
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
	return 0;
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
		{"pdf", FILETYPE_PDF},   {"docx", FILETYPE_DOCX}, {"xlsx", FILETYPE_XLSX},
		{"pptx", FILETYPE_PPTX}, {"odt", FILETYPE_ODF},   {"ods", FILETYPE_ODF},
		{"doc", FILETYPE_OLE},   {"xls", FILETYPE_OLE},   {"png", FILETYPE_PNG},
		{"jpg", FILETYPE_JPEG},  {"jpeg", FILETYPE_JPEG}, {"gif", FILETYPE_GIF},
		{"tif", FILETYPE_TIFF},  {"tiff", FILETYPE_TIFF}, {"webp", FILETYPE_WEBP},
		{"mp4", FILETYPE_MP4},   {"mov", FILETYPE_MOV},   {"gz", FILETYPE_GZIP},
		{"bz2", FILETYPE_BZIP2}, {"xz", FILETYPE_XZ},     {"zst", FILETYPE_ZSTD},
		{"7z", FILETYPE_7Z},     {"rar", FILETYPE_RAR},   {"zip", FILETYPE_ZIP},
		{"sqlite", FILETYPE_SQLITE}, {"db", FILETYPE_SQLITE}, {"qcow2", FILETYPE_QCOW2},
		{"vmdk", FILETYPE_VMDK}, {"json", FILETYPE_JSON}, {"csv", FILETYPE_CSV},
		{"txt", FILETYPE_TEXT},  {"xml", FILETYPE_XML},   {"html", FILETYPE_HTML},
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
