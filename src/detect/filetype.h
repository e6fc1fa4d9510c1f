/* filetype.h: the file-format indicator: which format a file's first bytes (and optionally
 * its last bytes and size) declare, whether that format's own structure still parses, and
 * whether the container says of itself that it is password-encrypted.
 *
 * Why it matters to ward: a known format that still parses is not ciphertext, however high
 * its entropy (xz, zip, jpeg); an archive whose own header says it is encrypted is
 * (legitimately or not); and a file whose magic is gone or whose structure no longer
 * parses after a write is what encryption in place leaves behind. All parsing is
 * hand-written, bounded by the buffers given, and fuzzed (fuzz/fuzz_filetype.c). */
#ifndef WARD_DETECT_FILETYPE_H
#define WARD_DETECT_FILETYPE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum filetype_id {
	FILETYPE_UNKNOWN = 0,
	FILETYPE_EMPTY,
	/* text */
	FILETYPE_TEXT,
	FILETYPE_JSON,
	FILETYPE_CSV,
	FILETYPE_XML,
	FILETYPE_HTML,
	/* documents */
	FILETYPE_PDF,
	FILETYPE_ZIP,
	FILETYPE_DOCX,
	FILETYPE_XLSX,
	FILETYPE_PPTX,
	FILETYPE_ODF,
	FILETYPE_OLE,     /* MS compound file: .doc/.xls, and password-protected OOXML */
	/* compressed streams and archives */
	FILETYPE_GZIP,
	FILETYPE_BZIP2,
	FILETYPE_XZ,
	FILETYPE_ZSTD,
	FILETYPE_7Z,
	FILETYPE_RAR,
	FILETYPE_TAR,
	/* media */
	FILETYPE_PNG,
	FILETYPE_JPEG,
	FILETYPE_GIF,
	FILETYPE_TIFF,
	FILETYPE_WEBP,
	FILETYPE_MP4,     /* ISO base media: mp4, m4a, heic, avif */
	FILETYPE_MOV,
	/* binaries, databases, disk images */
	FILETYPE_ELF,
	FILETYPE_SQLITE,
	FILETYPE_QCOW2,
	FILETYPE_VMDK,
	FILETYPE__COUNT
};

enum filetype_crypt {
	FILETYPE_CRYPT_NO = 0,   /* nothing in the structure says encrypted */
	FILETYPE_CRYPT_YES,      /* the container declares encryption (zip flag, 7z AES coder,
				  * PDF /Encrypt, qcow2 crypt_method, RAR password flags, ...) */
	FILETYPE_CRYPT_MAYBE,    /* cannot tell from the plain bytes: 7z compressed header */
};

struct filetype_result {
	enum filetype_id id;
	const char *name;          /* static string, e.g. "zip" */
	bool valid;                /* the structure checks for this format passed */
	enum filetype_crypt encrypted;
	char why[64];              /* what failed, or what declared encryption; "" if nothing */
};

/* How much filetype_identify_fd reads: enough for every check here. */
#define FILETYPE_HEAD 8192u
#define FILETYPE_TAIL 4096u

/* Identifies the format of a file from head = its first head_len bytes and tail = its last
 * tail_len bytes (NULL/0 if not read); size is the file size (0: unknown, taken as
 * head_len). When the head holds the whole file, the tail may be omitted. Checks that need
 * the file's end (ZIP end record, PDF %%EOF, 7z header, PNG IEND) are skipped when it is
 * not available. Returns 0, or -EINVAL for a NULL out or a NULL buffer with a length. */
int filetype_identify(const void *head, size_t head_len, const void *tail, size_t tail_len,
		      uint64_t size, struct filetype_result *out);

/* Reads FILETYPE_HEAD bytes at 0 and FILETYPE_TAIL at the end with pread (the file offset is
 * not moved) and identifies them. Returns 0 or -errno. */
int filetype_identify_fd(int fd, uint64_t size, struct filetype_result *out);

const char *filetype_name(enum filetype_id id);

/* Formats whose payload is compressed, so high entropy is their normal state. */
bool filetype_is_compressed(enum filetype_id id);

/* Text formats (text, json, csv, xml, html). */
bool filetype_is_text(enum filetype_id id);

#endif
