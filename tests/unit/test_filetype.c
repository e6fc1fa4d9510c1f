/* test_filetype.c: format identification on real files (the fuzz seed corpus, made by the
 * tools on this machine: see fuzz/corpus/filetype/_make.sh), then the same files after what
 * ransomware does to them: encrypted whole, encrypted after an intact header, with a header
 * byte changed. */
#include "detect/filetype.h"
#include "t.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static char corpus[512];

/* The corpus relative to the working directory (repo root, build dir) or to this binary. */
static int find_corpus(void)
{
	static const char *const rel[] = {"fuzz/corpus/filetype", "../fuzz/corpus/filetype",
					  "../../fuzz/corpus/filetype"};
	char exe[256];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	for (int base = 0; base < 2; base++) {
		for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
			if (base == 0) {
				snprintf(corpus, sizeof(corpus), "%s", rel[i]);
			} else {
				if (n <= 0)
					return -1;
				exe[n] = 0;
				char *slash = strrchr(exe, '/');
				if (slash)
					*slash = 0;
				snprintf(corpus, sizeof(corpus), "%s/%s", exe, rel[i]);
			}
			char probe[600];
			snprintf(probe, sizeof(probe), "%s/plain.zip", corpus);
			if (access(probe, R_OK) == 0)
				return 0;
		}
	}
	return -1;
}

static unsigned char *load(const char *name, size_t *len)
{
	char path[700];
	snprintf(path, sizeof(path), "%s/%s", corpus, name);
	FILE *f = fopen(path, "rb");
	unsigned char *b = NULL;
	long sz;
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (sz = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		b = malloc((size_t)sz + 1);
		if (b && fread(b, 1, (size_t)sz, f) != (size_t)sz) {
			free(b);
			b = NULL;
		}
		*len = (size_t)sz;
	}
	fclose(f);
	return b;
}

/* Identifies b as filetype_identify_fd would see it: head and tail of the file. */
static void ident(const unsigned char *b, size_t n, struct filetype_result *r)
{
	size_t hn = n < FILETYPE_HEAD ? n : FILETYPE_HEAD, tn = n < FILETYPE_TAIL ? n : FILETYPE_TAIL;
	filetype_identify(b, hn, b + n - tn, tn, n, r);
}

struct file_case {
	const char *file;
	enum filetype_id id;
	bool valid;
	enum filetype_crypt enc;
};

#define NO FILETYPE_CRYPT_NO
#define YES FILETYPE_CRYPT_YES
#define MAYBE FILETYPE_CRYPT_MAYBE

static const struct file_case files[] = {
	{"text.txt", FILETYPE_TEXT, true, NO},
	{"utf8.txt", FILETYPE_TEXT, true, NO},
	{"data.json", FILETYPE_JSON, true, NO},
	{"table.csv", FILETYPE_CSV, true, NO},
	{"page.html", FILETYPE_HTML, true, NO},
	{"feed.xml", FILETYPE_XML, true, NO},
	{"doc.pdf", FILETYPE_PDF, true, NO},
	{"encrypted.pdf", FILETYPE_PDF, true, YES},
	{"plain.zip", FILETYPE_ZIP, true, NO},
	{"zipcrypto.zip", FILETYPE_ZIP, true, YES},      /* zip -P */
	{"winzip-aes.zip", FILETYPE_ZIP, true, YES},     /* 7z -tzip -mem=AES256 */
	{"doc.docx", FILETYPE_DOCX, true, NO},
	{"book.xlsx", FILETYPE_XLSX, true, NO},
	{"deck.pptx", FILETYPE_PPTX, true, NO},
	{"doc.odt", FILETYPE_ODF, true, NO},
	{"legacy.doc", FILETYPE_OLE, true, NO},
	{"protected.docx", FILETYPE_OLE, true, YES},     /* Office password: EncryptedPackage */
	{"text.gz", FILETYPE_GZIP, true, NO},
	{"text.bz2", FILETYPE_BZIP2, true, NO},
	{"text.xz", FILETYPE_XZ, true, NO},
	{"text.zst", FILETYPE_ZSTD, true, NO},
	{"plain.7z", FILETYPE_7Z, true, NO},
	{"aes-small.7z", FILETYPE_7Z, true, YES},        /* 7z -p: plain header lists 7zAES */
	{"aes-hidden.7z", FILETYPE_7Z, true, MAYBE},     /* 7z -p: LZMA header hides it */
	{"aes-header.7z", FILETYPE_7Z, true, YES},       /* 7z -p -mhe=on */
	{"plain.rar", FILETYPE_RAR, true, NO},
	{"headers-encrypted.rar", FILETYPE_RAR, true, YES},
	{"ustar.tar", FILETYPE_TAR, true, NO},
	{"image.png", FILETYPE_PNG, true, NO},
	{"tiny.png", FILETYPE_PNG, true, NO},
	{"image.jpg", FILETYPE_JPEG, true, NO},
	{"image.gif", FILETYPE_GIF, true, NO},
	{"image.tiff", FILETYPE_TIFF, true, NO},
	{"image.webp", FILETYPE_WEBP, true, NO},
	{"video.mp4", FILETYPE_MP4, true, NO},
	{"video.mov", FILETYPE_MOV, true, NO},
	{"elf-head.bin", FILETYPE_ELF, true, NO},
	{"db.sqlite", FILETYPE_SQLITE, true, NO},
	{"disk.qcow2", FILETYPE_QCOW2, true, NO},
	{"disk-luks.qcow2", FILETYPE_QCOW2, true, YES},
	{"disk.vmdk", FILETYPE_VMDK, true, NO},
	{"openssl-enc.bin", FILETYPE_UNKNOWN, false, NO}, /* "Salted__" + ciphertext */
	{"random.bin", FILETYPE_UNKNOWN, false, NO},
};

static void test_files(void)
{
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		const struct file_case *c = &files[i];
		size_t n = 0;
		unsigned char *b = load(c->file, &n);
		T_CHECK(b != NULL, "%s: cannot read seed", c->file);
		if (!b)
			continue;
		struct filetype_result r;
		ident(b, n, &r);
		T_CHECK(r.id == c->id && r.valid == c->valid && r.encrypted == c->enc,
			"%s: got %s valid=%d enc=%d (%s)", c->file, r.name, r.valid, r.encrypted,
			r.why);
		T_CHECK(strcmp(r.name, filetype_name(c->id)) == 0, "%s: name %s", c->file, r.name);

		/* The fd path reads the same head and tail. */
		int fd = memfd_create("ward-ft", 0);
		struct filetype_result rf;
		T_CHECK(fd >= 0 && write(fd, b, n) == (ssize_t)n &&
				filetype_identify_fd(fd, n, &rf) == 0 && rf.id == r.id &&
				rf.valid == r.valid && rf.encrypted == r.encrypted,
			"%s: fd path differs", c->file);
		if (fd >= 0)
			close(fd);
		free(b);
	}
}

/* ---- what encryption in place leaves ---- */

static void aes_ctr(unsigned char *b, size_t n)
{
	static unsigned k;
	unsigned char key[32], iv[16];
	int outl;
	k++;
	for (int i = 0; i < 32; i++)
		key[i] = (unsigned char)(k * 31u + (unsigned)i);
	memset(iv, (int)k, sizeof(iv));
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	if (c && EVP_EncryptInit_ex(c, EVP_aes_256_ctr(), NULL, key, iv) == 1)
		EVP_EncryptUpdate(c, b, &outl, b, (int)n);
	EVP_CIPHER_CTX_free(c);
}

enum damage {
	D_ALL,        /* whole file encrypted */
	D_KEEP_HEAD,  /* first `arg` bytes kept, the rest encrypted (header-preserving) */
	D_FLIP,       /* one byte at `arg` changed */
	D_TAIL_CUT,   /* last `arg` bytes removed (a partial write) */
};

struct damage_case {
	const char *file;
	enum damage how;
	size_t arg;
	bool expect_valid;   /* false: unknown, or known but structurally broken */
};

static const struct damage_case damages[] = {
	{"plain.zip", D_ALL, 0, false},
	{"plain.zip", D_KEEP_HEAD, 64, false},     /* end of central directory gone */
	{"doc.docx", D_KEEP_HEAD, 128, false},
	{"image.png", D_ALL, 0, false},
	{"image.png", D_FLIP, 20, false},          /* IHDR width: CRC no longer matches */
	{"image.png", D_KEEP_HEAD, 64, false},     /* IEND gone */
	{"image.jpg", D_KEEP_HEAD, 2, false},      /* segment markers gone */
	{"doc.pdf", D_KEEP_HEAD, 16, false},       /* %%EOF gone */
	{"plain.7z", D_KEEP_HEAD, 32, false},      /* next header CRC fails */
	{"plain.7z", D_FLIP, 13, false},           /* start header CRC fails */
	{"text.xz", D_FLIP, 7, false},             /* stream flags CRC fails */
	{"text.xz", D_KEEP_HEAD, 12, false},       /* footer magic gone */
	{"db.sqlite", D_ALL, 0, false},
	{"db.sqlite", D_TAIL_CUT, 100, false},     /* no longer whole pages */
	{"ustar.tar", D_FLIP, 0, false},           /* header checksum fails */
	{"text.txt", D_ALL, 0, false},
	{"elf-head.bin", D_ALL, 0, false},
	{"text.gz", D_ALL, 0, false},
	/* Controls: damage the checks cannot see is not reported. */
	{"text.gz", D_KEEP_HEAD, 20, true},        /* gzip has no end marker to check */
	{"plain.zip", D_FLIP, 40, true},           /* a byte of the file name */
};

static void test_damage(void)
{
	for (size_t i = 0; i < sizeof(damages) / sizeof(damages[0]); i++) {
		const struct damage_case *c = &damages[i];
		size_t n = 0;
		unsigned char *b = load(c->file, &n);
		T_CHECK(b != NULL && n > c->arg, "%s: cannot read seed", c->file);
		if (!b || n <= c->arg) {
			free(b);
			continue;
		}
		struct filetype_result before, after;
		ident(b, n, &before);
		switch (c->how) {
		case D_ALL:
			aes_ctr(b, n);
			break;
		case D_KEEP_HEAD:
			aes_ctr(b + c->arg, n - c->arg);
			break;
		case D_FLIP:
			b[c->arg] ^= 0x5a;
			break;
		case D_TAIL_CUT:
			n -= c->arg;
			break;
		}
		ident(b, n, &after);
		T_CHECK(before.valid, "%s: valid before damage", c->file);
		bool valid_known = after.valid && after.id != FILETYPE_UNKNOWN;
		T_CHECK(valid_known == c->expect_valid, "%s damage %d/%zu: got %s valid=%d (%s)",
			c->file, c->how, c->arg, after.name, after.valid, after.why);
		if (!after.valid)
			T_CHECK(after.id == FILETYPE_UNKNOWN || after.why[0] != 0,
				"%s: an invalid known format says why", c->file);
		free(b);
	}
}

static void test_api(void)
{
	struct filetype_result r;
	T_CHECK(filetype_identify(NULL, 0, NULL, 0, 0, &r) == 0 && r.id == FILETYPE_EMPTY,
		"empty input");
	T_CHECK(filetype_identify(NULL, 5, NULL, 0, 5, &r) == -EINVAL, "NULL head with length");
	T_CHECK(filetype_identify("x", 1, NULL, 0, 1, NULL) == -EINVAL, "NULL out");
	T_CHECK(filetype_identify_fd(-1, 10, &r) == -EBADF && r.id == FILETYPE_UNKNOWN,
		"bad fd");
	/* Only the head of a big zip: the checks that need its end are skipped, not failed. */
	size_t n = 0;
	unsigned char *b = load("plain.zip", &n);
	T_CHECK(b && filetype_identify(b, 64, NULL, 0, 1u << 30, &r) == 0 &&
			r.id == FILETYPE_ZIP && r.valid,
		"zip head alone");
	free(b);
	T_CHECK(filetype_is_compressed(FILETYPE_XZ) && !filetype_is_compressed(FILETYPE_TEXT) &&
			filetype_is_text(FILETYPE_CSV) && !filetype_is_text(FILETYPE_PDF),
		"format groups");
	T_CHECK(strcmp(filetype_name((enum filetype_id)999), "?") == 0, "unknown id name");
}

int main(void)
{
	int have = find_corpus();
	T_CHECK(have == 0, "seed corpus fuzz/corpus/filetype not found");
	if (have == 0) {
		test_files();
		test_damage();
	}
	test_api();
	return T_DONE("filetype");
}
