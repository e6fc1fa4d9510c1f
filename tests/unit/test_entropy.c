/* test_entropy.c: entropy classes and file sampling on real data made in-process: AES-CTR
 * keystream and ciphertext (fixed keys, so runs are deterministic), zlib and zstd
 * compression, xz through the xz tool, base64 and hex encodings, this test's own ELF image,
 * and the partial / intermittent encryption patterns ransomware families use. Prints the
 * measured statistics per data kind. */
#include "detect/entropy.h"
#include "t.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define MiB (1024u * 1024u)

/* ---- generators: fill buf (capacity cap), return the length produced (0 = failure) ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Prose from a fixed vocabulary: words, punctuation, line breaks. Deterministic. */
static size_t gen_text(unsigned char *buf, size_t cap)
{
	static const char *const w[] = {
		"the", "of", "and", "a", "to", "in", "is", "you", "that", "it", "he", "was",
		"for", "on", "are", "as", "with", "his", "they", "at", "be", "this", "have",
		"from", "or", "one", "had", "by", "word", "but", "not", "what", "all", "were",
		"we", "when", "your", "can", "said", "there", "use", "an", "each", "which",
		"she", "do", "how", "their", "if", "will", "up", "other", "about", "out",
		"many", "then", "them", "these", "so", "some", "her", "would", "make", "like",
		"invoice", "quarterly", "report", "customer", "balance", "Monday", "2023",
		"ledger", "account", "shipment", "contract", "signed", "meeting", "budget",
	};
	size_t n = 0, col = 0;
	rng_state = 0x9e3779b97f4a7c15ull;
	while (n < cap) {
		const char *s = w[rng() % (sizeof(w) / sizeof(w[0]))];
		for (; *s && n < cap; s++, col++)
			buf[n++] = (unsigned char)*s;
		if (n < cap) {
			uint64_t r = rng() % 16;
			buf[n++] = col > 70 ? '\n' : r == 0 ? '.' : r == 1 ? ',' : ' ';
			if (col > 70)
				col = 0;
		}
	}
	return n;
}

/* Keys come from a counter, not RAND_bytes: the data is real AES output, but the same on
 * every run, so a statistical threshold cannot make the test flaky. */
static unsigned key_counter;
static void next_key(unsigned char key[32], unsigned char iv[16])
{
	key_counter++;
	for (int i = 0; i < 32; i++)
		key[i] = (unsigned char)(key_counter * 131u + (unsigned)i * 7u);
	for (int i = 0; i < 16; i++)
		iv[i] = (unsigned char)(key_counter + (unsigned)i);
}

/* AES-256-CTR over buf[0..len) in place. */
static int aes_ctr(unsigned char *buf, size_t len)
{
	unsigned char key[32], iv[16];
	int outl = 0, ok = 0;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	next_key(key, iv);
	if (!c || EVP_EncryptInit_ex(c, EVP_aes_256_ctr(), NULL, key, iv) != 1)
		goto out;
	ok = EVP_EncryptUpdate(c, buf, &outl, buf, (int)len) == 1 && (size_t)outl == len;
out:
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -1;
}

/* Random bytes: the AES-CTR keystream (what a CSPRNG gives). */
static size_t gen_random(unsigned char *buf, size_t cap)
{
	memset(buf, 0, cap);
	return aes_ctr(buf, cap) == 0 ? cap : 0;
}

static size_t gen_aes_text(unsigned char *buf, size_t cap)
{
	gen_text(buf, cap);
	return aes_ctr(buf, cap) == 0 ? cap : 0;
}

static size_t gen_gzip(unsigned char *buf, size_t cap)
{
	size_t tn = cap * 4;
	unsigned char *t = malloc(tn);
	z_stream z = {0};
	size_t out = 0;
	if (!t)
		return 0;
	gen_text(t, tn);
	/* 15 + 16: a gzip wrapper, as gzip(1) writes. */
	if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		goto done;
	z.next_in = t;
	z.avail_in = (uInt)tn;
	z.next_out = buf;
	z.avail_out = (uInt)cap;
	deflate(&z, Z_FINISH);
	out = cap - z.avail_out;
	deflateEnd(&z);
done:
	free(t);
	return out;
}

static size_t zstd_level(unsigned char *buf, size_t cap, int level)
{
	size_t tn = cap * 4, r;
	unsigned char *t = malloc(tn), *o = malloc(ZSTD_compressBound(tn));
	if (!t || !o) {
		free(t);
		free(o);
		return 0;
	}
	gen_text(t, tn);
	r = ZSTD_compress(o, ZSTD_compressBound(tn), t, tn, level);
	if (ZSTD_isError(r))
		r = 0;
	if (r > cap)
		r = cap;
	memcpy(buf, o, r);
	free(t);
	free(o);
	return r;
}

static size_t gen_zstd3(unsigned char *buf, size_t cap)
{
	return zstd_level(buf, cap, 3);  /* zstd(1)'s default level */
}

static size_t gen_zstd19(unsigned char *buf, size_t cap)
{
	return zstd_level(buf, cap, 19);
}

/* xz through the tool: liblzma is not one of ward's libraries. */
static size_t gen_xz(unsigned char *buf, size_t cap)
{
	char in[] = "/tmp/ward-test-entropy-XXXXXX";
	size_t tn = cap * 4, r = 0;
	unsigned char *t = malloc(tn);
	int fd = mkstemp(in);
	if (!t || fd < 0)
		goto out;
	gen_text(t, tn);
	if (write(fd, t, tn) != (ssize_t)tn)
		goto out;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "xz -6 -c %s", in);
	FILE *p = popen(cmd, "r");
	if (!p)
		goto out;
	r = fread(buf, 1, cap, p);
	pclose(p);
out:
	if (fd >= 0) {
		close(fd);
		unlink(in);
	}
	free(t);
	return r;
}

static size_t encode_b64(const unsigned char *src, size_t n, unsigned char *dst, size_t cap)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i + 3 <= n && o + 5 <= cap; i += 3) {
		uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 | src[i + 2];
		dst[o++] = (unsigned char)a[v >> 18];
		dst[o++] = (unsigned char)a[(v >> 12) & 63];
		dst[o++] = (unsigned char)a[(v >> 6) & 63];
		dst[o++] = (unsigned char)a[v & 63];
		if ((i / 3) % 19 == 18)
			dst[o++] = '\n';  /* 76-column lines, as base64(1) */
	}
	return o;
}

static size_t gen_b64_random(unsigned char *buf, size_t cap)
{
	unsigned char r[4096];
	gen_random(r, sizeof(r));
	return encode_b64(r, sizeof(r), buf, cap);
}

static size_t gen_b64_text(unsigned char *buf, size_t cap)
{
	unsigned char t[4096];
	gen_text(t, sizeof(t));
	return encode_b64(t, sizeof(t), buf, cap);
}

static size_t hex_of(const unsigned char *src, size_t n, unsigned char *dst, size_t cap)
{
	static const char h[] = "0123456789abcdef";
	size_t o = 0;
	for (size_t i = 0; i < n && o + 3 <= cap; i++) {
		dst[o++] = (unsigned char)h[src[i] >> 4];
		dst[o++] = (unsigned char)h[src[i] & 15];
		if (i % 30 == 29)
			dst[o++] = '\n';
	}
	return o;
}

static size_t gen_hex_random(unsigned char *buf, size_t cap)
{
	unsigned char r[2048];
	gen_random(r, sizeof(r));
	return hex_of(r, sizeof(r), buf, cap);
}

static size_t gen_hex_text(unsigned char *buf, size_t cap)
{
	unsigned char t[2048];
	gen_text(t, sizeof(t));
	return hex_of(t, sizeof(t), buf, cap);
}

/* This program's own ELF image: real structured binary. */
static size_t gen_elf(unsigned char *buf, size_t cap)
{
	FILE *f = fopen("/proc/self/exe", "rb");
	size_t n = 0;
	if (!f)
		return 0;
	while (n < cap) {
		size_t r = fread(buf + n, 1, cap - n, f);
		if (r == 0) {
			rewind(f);  /* short binary: repeat it */
			if (n == 0)
				break;
			continue;
		}
		n += r;
	}
	fclose(f);
	return n;
}

/* LockFile: every other 16-byte block encrypted, the rest left as it was. With CTR each
 * encrypted block gets its own keystream; with ECB equal plaintext blocks (runs of zeros in
 * an ELF) give equal ciphertext blocks, which the detector must still see as stripes. */
static int stripe16_with(unsigned char *buf, size_t n, const EVP_CIPHER *ciph)
{
	unsigned char key[32], iv[16];
	int outl, ok = 1;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	next_key(key, iv);
	if (!c || EVP_EncryptInit_ex(c, ciph, NULL, key, iv) != 1) {
		EVP_CIPHER_CTX_free(c);
		return -1;
	}
	EVP_CIPHER_CTX_set_padding(c, 0);
	for (size_t i = 0; i + 16 <= n; i += 32)
		ok &= EVP_EncryptUpdate(c, buf + i, &outl, buf + i, 16) == 1 && outl == 16;
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -1;
}

static int stripe16(unsigned char *buf, size_t n)
{
	return stripe16_with(buf, n, EVP_aes_256_ctr());
}

static size_t gen_striped_text(unsigned char *buf, size_t cap)
{
	gen_text(buf, cap);
	return stripe16(buf, cap) == 0 ? cap : 0;
}

static size_t gen_striped_elf(unsigned char *buf, size_t cap)
{
	size_t n = gen_elf(buf, cap);
	return n && stripe16(buf, n) == 0 ? n : 0;
}

static size_t gen_striped_elf_ecb(unsigned char *buf, size_t cap)
{
	size_t n = gen_elf(buf, cap);
	return n && stripe16_with(buf, n, EVP_aes_256_ecb()) == 0 ? n : 0;
}

/* ---- table 1: one block (the middle 4 KiB of the generated data) -> class ---- */

struct block_case {
	const char *name;
	size_t (*gen)(unsigned char *, size_t);
	size_t len;           /* bytes to classify */
	unsigned accept;      /* bit mask of acceptable classes */
};
#define C(x) (1u << (x))

static const struct block_case block_cases[] = {
	{"aes keystream 4K", gen_random, 4096, C(ENTROPY_RANDOM)},
	{"aes-ctr(text) 4K", gen_aes_text, 4096, C(ENTROPY_RANDOM)},
	{"aes-ctr(text) 1K", gen_aes_text, 1024, C(ENTROPY_RANDOM)},
	{"aes-ctr(text) 100B", gen_aes_text, 100, C(ENTROPY_RANDOM)},
	{"text 4K", gen_text, 4096, C(ENTROPY_PLAIN)},
	{"text 100B", gen_text, 100, C(ENTROPY_PLAIN)},
	{"text 32B too small", gen_text, 32, C(ENTROPY_EMPTY)},
	{"elf 4K", gen_elf, 4096, C(ENTROPY_PLAIN) | C(ENTROPY_COMPRESSED)},
	/* At 4 KiB a deflate or zstd block is often as uniform as ciphertext: both accepted
	 * here, the pooled test below is what tells them apart. */
	{"gzip 4K", gen_gzip, 4096, C(ENTROPY_RANDOM) | C(ENTROPY_COMPRESSED)},
	{"zstd -3 4K", gen_zstd3, 4096, C(ENTROPY_RANDOM) | C(ENTROPY_COMPRESSED)},
	{"xz 4K", gen_xz, 4096, C(ENTROPY_RANDOM)},
	{"base64(random)", gen_b64_random, 4096, C(ENTROPY_ENCODED)},
	{"base64(text)", gen_b64_text, 4096, C(ENTROPY_PLAIN)},
	{"hex(random)", gen_hex_random, 4096, C(ENTROPY_ENCODED)},
	{"hex(text)", gen_hex_text, 4096, C(ENTROPY_PLAIN)},
	{"lockfile(text)", gen_striped_text, 4096, C(ENTROPY_STRIPED)},
	{"lockfile(elf)", gen_striped_elf, 4096, C(ENTROPY_STRIPED)},
	{"lockfile-ecb(elf)", gen_striped_elf_ecb, 4096, C(ENTROPY_STRIPED)},
};

static void test_blocks(void)
{
	static unsigned char buf[64 * 1024];
	for (size_t i = 0; i < sizeof(block_cases) / sizeof(block_cases[0]); i++) {
		const struct block_case *c = &block_cases[i];
		size_t n = c->gen(buf, sizeof(buf));
		T_CHECK(n >= c->len, "%s: generator gave %zu bytes", c->name, n);
		if (n < c->len)
			continue;
		/* Skip container headers: judge the middle, 16-byte aligned. */
		size_t off = ((n - c->len) / 2) & ~(size_t)15;
		struct entropy_stats st;
		enum entropy_class cls = entropy_classify(buf + off, c->len, &st);
		printf("  %-20s H=%.3f chi2=%9.1f rnd16=%.2f stripe=%.2f -> %s\n", c->name,
		       st.entropy, st.chi2, st.rnd16_frac, st.stripe, entropy_class_name(cls));
		T_CHECK(c->accept & C(cls), "%s: class %s", c->name, entropy_class_name(cls));
	}
}

/* ---- table 2: whole-file sampling of partial and intermittent patterns ---- */

enum pattern { P_NONE, P_ALL, P_HEAD4K, P_HEAD1M, P_EVERY10M, P_ALT1M, P_STRIPE16, P_STRIPE16_ECB };

struct file_case {
	const char *name;
	size_t (*gen)(unsigned char *, size_t);
	size_t size;
	enum pattern pat;
	double frac_lo, frac_hi;  /* expected suspect fraction of sampled bytes */
	int head_suspect;         /* expected, or -1: either */
	int pooled_nonuniform;    /* expected, or -1: either */
};

static const struct file_case file_cases[] = {
	{"text 1M", gen_text, MiB, P_NONE, 0.0, 0.0, 0, -1},
	{"elf 1M", gen_elf, MiB, P_NONE, 0.0, 0.1, 0, -1},
	{"text small 10K", gen_text, 10000, P_NONE, 0.0, 0.0, 0, -1},
	{"aes all 1M", gen_text, MiB, P_ALL, 0.99, 1.0, 1, 0},
	{"aes all 50K (whole file read)", gen_text, 50000, P_ALL, 0.99, 1.0, 1, 0},
	{"aes keystream 8M", gen_random, 8 * MiB, P_NONE, 0.99, 1.0, 1, 0},
	{"gzip 1M", gen_gzip, MiB, P_NONE, 0.0, 1.0, -1, 1},
	{"zstd -3 1M", gen_zstd3, MiB, P_NONE, 0.0, 1.0, -1, 1},
	{"zstd -19 1M", gen_zstd19, MiB, P_NONE, 0.0, 1.0, -1, -1},
	{"xz 1M (LZMA: looks like ciphertext)", gen_xz, MiB, P_NONE, 0.99, 1.0, 1, 0},
	{"head 4K of 8M", gen_text, 8 * MiB, P_HEAD4K, 0.04, 0.1, 1, -1},
	{"head 1M of 16M", gen_text, 16 * MiB, P_HEAD1M, 0.04, 0.3, 1, -1},
	{"1M of every 10M, 50M", gen_text, 50 * MiB, P_EVERY10M, 0.04, 0.35, 1, -1},
	{"alternating 1M, 16M", gen_text, 16 * MiB, P_ALT1M, 0.25, 0.75, 1, -1},
	{"lockfile 16B stripes, text 2M", gen_text, 2 * MiB, P_STRIPE16, 0.4, 0.6, 1, -1},
	{"lockfile 16B stripes, elf 1M", gen_elf, MiB, P_STRIPE16, 0.35, 0.65, 1, -1},
	{"lockfile ECB stripes, elf 1M", gen_elf, MiB, P_STRIPE16_ECB, 0.35, 0.65, 1, -1},
};

static int apply(unsigned char *b, size_t n, enum pattern p)
{
	int r = 0;
	switch (p) {
	case P_NONE:
		break;
	case P_ALL:
		r = aes_ctr(b, n);
		break;
	case P_HEAD4K:
		r = aes_ctr(b, 4096);
		break;
	case P_HEAD1M:
		r = aes_ctr(b, MiB);
		break;
	case P_EVERY10M:
		for (size_t o = 0; o < n && !r; o += 10 * MiB)
			r = aes_ctr(b + o, n - o < MiB ? n - o : MiB);
		break;
	case P_ALT1M:
		for (size_t o = 0; o < n && !r; o += 2 * MiB)
			r = aes_ctr(b + o, n - o < MiB ? n - o : MiB);
		break;
	case P_STRIPE16:
		r = stripe16(b, n);
		break;
	case P_STRIPE16_ECB:
		r = stripe16_with(b, n, EVP_aes_256_ecb());
		break;
	}
	return r;
}

static void test_files(void)
{
	for (size_t i = 0; i < sizeof(file_cases) / sizeof(file_cases[0]); i++) {
		const struct file_case *c = &file_cases[i];
		unsigned char *b = malloc(c->size);
		T_CHECK(b != NULL, "%s: malloc", c->name);
		if (!b)
			continue;
		size_t n = c->gen(b, c->size);
		T_CHECK(n > 0 && apply(b, n, c->pat) == 0, "%s: generate", c->name);

		struct entropy_summary s, sf;
		T_CHECK(entropy_sample_buf(b, n, &s) == 0, "%s: sample", c->name);
		printf("  %-36s size=%8zu blocks=%2u read=%5u suspect=%.3f maxH=%.3f head=%s "
		       "pooled=%u/%.0f\n", c->name, n, s.nblocks, s.bytes_read, s.suspect_frac,
		       s.max_entropy, entropy_class_name(s.head_class), s.pooled_bytes,
		       s.pooled_chi2);
		T_CHECK(s.bytes_read <= ENTROPY_MAX_BLOCKS * ENTROPY_BLOCK, "%s: read %u",
			c->name, s.bytes_read);
		T_CHECK(s.nblocks > 0 && s.nblocks <= ENTROPY_MAX_BLOCKS, "%s: %u blocks",
			c->name, s.nblocks);
		T_CHECK(s.suspect_frac >= c->frac_lo && s.suspect_frac <= c->frac_hi,
			"%s: suspect fraction %.3f not in [%.2f, %.2f]", c->name, s.suspect_frac,
			c->frac_lo, c->frac_hi);
		if (c->head_suspect >= 0)
			T_CHECK(s.head_suspect == (c->head_suspect == 1), "%s: head %s",
				c->name, entropy_class_name(s.head_class));
		if (c->pooled_nonuniform >= 0)
			T_CHECK(s.pooled_nonuniform == (c->pooled_nonuniform == 1),
				"%s: pooled chi2 %.1f over %u bytes", c->name, s.pooled_chi2,
				s.pooled_bytes);
		if (c->pat == P_STRIPE16 || c->pat == P_STRIPE16_ECB)
			T_CHECK(s.count[ENTROPY_STRIPED] == s.nblocks, "%s: %u of %u striped",
				c->name, s.count[ENTROPY_STRIPED], s.nblocks);

		/* The fd path reads the same blocks as the buffer path. */
		int fd = memfd_create("ward-test", 0);
		T_CHECK(fd >= 0 && write(fd, b, n) == (ssize_t)n, "%s: memfd", c->name);
		T_CHECK(entropy_sample_fd(fd, n, &sf) == 0, "%s: sample fd", c->name);
		T_CHECK(sf.nblocks == s.nblocks && sf.bytes_read == s.bytes_read &&
				sf.suspect_frac == s.suspect_frac &&
				memcmp(sf.count, s.count, sizeof(s.count)) == 0,
			"%s: fd and buffer sampling differ", c->name);
		/* A file that shrank since its size was taken: judged on what is there. */
		if (fd >= 0 && n > 2 * ENTROPY_BLOCK) {
			T_CHECK(entropy_sample_fd(fd, (uint64_t)n * 2, &sf) == 0 &&
					sf.nblocks >= 1 && sf.bytes_read <= n,
				"%s: shrunk file", c->name);
		}
		if (fd >= 0)
			close(fd);
		free(b);
	}
}

static void test_edges(void)
{
	struct entropy_summary s;
	T_CHECK(entropy_sample_buf("", 0, &s) == 0 && s.nblocks == 0 && s.suspect_frac == 0,
		"empty file");
	T_CHECK(entropy_sample_fd(-1, 10, &s) == -EBADF, "bad fd");
	int fd = memfd_create("ward-test-wo", 0);
	int wo = -1;
	if (fd >= 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		wo = open(path, O_WRONLY);
	}
	T_CHECK(wo >= 0 && entropy_sample_fd(wo, 4096, &s) == -EBADF,
		"write-only fd gives -EBADF from pread");
	if (wo >= 0)
		close(wo);
	if (fd >= 0)
		close(fd);
	T_CHECK(strcmp(entropy_class_name(ENTROPY_STRIPED), "striped") == 0 &&
			strcmp(entropy_class_name((enum entropy_class)99), "?") == 0,
		"class names");
}

int main(void)
{
	test_blocks();
	test_files();
	test_edges();
	return T_DONE("entropy");
}
