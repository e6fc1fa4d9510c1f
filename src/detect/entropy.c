/* entropy.c: block statistics, classes and bounded file sampling (see entropy.h).
 *
 * Thresholds, from blocks measured on this machine (Debian 12; text = 4 MB of C headers and
 * licences; figures are min / median / p95 / max over every 4 KiB block of each file):
 *
 *   data              entropy (bits/byte)     chi-square (255 dof), 4 KiB   same, 64 KiB
 *   /dev/urandom      7.940 / 7.955 / - / 7.966   191 / 254 / 293 / 336     222 / 255 / 308 max
 *   openssl aes-cbc   7.942 / 7.955 / - / 7.965   195 / 254 / 292 / 330     202 / 255 / 321 max
 *   openssl chacha20  7.934 / 7.955 / - / 7.967   186 / 254 / 297 / 362
 *   xz -6, 7z (LZMA)  7.943 / 7.955 / - / 7.967   184 / 251 / 285 / 319     228 / 245 / 309 max
 *   zstd -19          7.938 / 7.952 / - / 7.964   202 / 267 / 309 / 360     385 / 394 / 440 max
 *   zstd -3           7.892 / 7.951 / - / 7.961   216 / 274 / 374 / 680     408 / 455 / 535 max
 *   gzip -9 / zip     7.877 / 7.949 / - / 7.963   212 / 287 / 373 / 703     340 / 389 / 463 max
 *   gzip -1           7.835 / 7.949 / - / 7.966   190 / 286 / 351 / 1046    293 / 363 / 535 max
 *   bzip2             7.727 / 7.919 / - / 7.954   252 / 464 / 926 / 3132    1170 / 2219 / 4623
 *   JPEG (photos)     p5 7.903 / 7.924 / 7.948    p5 338 / 431 / 554        1028 / 2109 / 18998
 *   PNG               p5 5.585 / 7.812 / 7.953    p5 486 / 1507 / 48792     4108 min
 *   ELF executable    1.0 .. 6.6                  >= 18925
 *   text              2.6 .. 5.5                  >= 26830
 *   base64(random)    6.00 .. 6.02                ~12288
 *   hex(random)       4.05                        ~59800
 *
 * Under uniformity chi-square has mean 255 and sd 22.6 whatever the block size (also at
 * 128..1024 bytes, measured: medians 254-256, max 320-338), so one threshold serves all
 * sizes: ENTROPY_CHI_UNIFORM = 377, the 1e-6 upper quantile of chi-square(255) (Wilson-
 * Hilferty): ciphertext is essentially never called "compressed". At 4 KiB most gzip and
 * zstd blocks fall below it (they look random), JPEG/bzip2/PNG mostly above. Pooled over
 * >= 16 KiB of random-looking blocks the bias of deflate/zstd grows with the byte count
 * while ciphertext stays at 255, so the pooled test uses the 1e-4 quantile, 347.
 * LZMA (xz, 7z) is indistinguishable from ciphertext by any byte statistic.
 *
 * Intermittent encryption of every other 16 bytes (LockFile) leaves a block whose overall
 * statistics look like plaintext with noise. What reveals it is per 16-byte chunk: a chunk
 * of ciphertext has >= 14 distinct byte values (expected 15.5) and several non-printable
 * bytes, a chunk of text or structured binary rarely both. Striping puts those chunks on
 * alternate 16-byte slots, so the random fraction at even slots minus the one at odd slots
 * ("stripe") is near 1 (measured: 1.0 over text, >= 0.5 over every 4 KiB block of an ELF
 * executable). Natural data can be phase-locked too: x86 stubs padded to 32 bytes
 * (libGLdispatch), tables of doubles (libm) reached stripe 0.9-1.0; but there the random-
 * looking chunks repeat bytes from record to record, so STRIPED also needs the pooled
 * random chunks of the dominant phase to be uniform (chi-square < 377). Sweep of 3000
 * system files (107k blocks of ELF, .a, .gz, headers, data): 8 blocks called striped, all in
 * libhogweed's tables of random constants; before the pooled test, 123. */
#include "detect/entropy.h"
#include "core/io.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#define ENTROPY_CHI_UNIFORM 377.0  /* chi-square(255) 1e-6 quantile */
#define ENTROPY_CHI_POOLED 347.0   /* chi-square(255) 1e-4 quantile */
/* Encoded text: chi-square over the alphabet, 1e-6 quantiles of chi-square(63) and (15). */
#define ENTROPY_CHI_B64 135.0
#define ENTROPY_CHI_HEX 60.0
#define ENTROPY_ENC_MIN_SYMBOLS 128u
#define ENTROPY_STRIPE_MIN 0.5
#define ENTROPY_STRIPE_CHUNKS 8u
#define ENTROPY_DEDUP_SLOTS 512u  /* > 2x the random chunks of one phase of a 4 KiB block */
/* Margin below the entropy a uniform block of the same length is expected to have: a block
 * between that and uniform is "compressed"-like (JPEG p5 is 7.90 at 4 KiB, expected 7.955). */
#define ENTROPY_HIGH_MARGIN 0.35

/* Four interleaved tables: runs of one byte value (zeros, spaces) would otherwise stall on
 * the same counter every byte. */
static void histogram(const unsigned char *p, size_t n, uint32_t h[256])
{
	uint32_t t[4][256];
	size_t i = 0;
	memset(t, 0, sizeof(t));
	for (; i + 4 <= n; i += 4) {
		t[0][p[i]]++;
		t[1][p[i + 1]]++;
		t[2][p[i + 2]]++;
		t[3][p[i + 3]]++;
	}
	for (; i < n; i++)
		t[0][p[i]]++;
	for (int k = 0; k < 256; k++)
		h[k] = t[0][k] + t[1][k] + t[2][k] + t[3][k];
}

static double chi2_of(const uint32_t h[256], uint64_t n)
{
	if (n == 0)
		return 0;
	double e = (double)n / 256.0, x = 0;
	for (int i = 0; i < 256; i++) {
		double d = (double)h[i] - e;
		x += d * d / e;
	}
	return x;
}

static double entropy_of(const uint32_t h[256], uint64_t n)
{
	double s = 0;
	for (int i = 0; i < 256; i++) {
		if (h[i]) {
			double q = (double)h[i] / (double)n;
			s -= q * log2(q);
		}
	}
	return s;
}

/* A 16-byte chunk that looks like ciphertext: several bytes outside printable ASCII (text,
 * even dense, has none; random has ~10 of 16) and nearly all values distinct (>= 14, i.e.
 * at most 2 repeats). Branch-light: this runs for every chunk of every sampled block. */
static bool chunk_random(const unsigned char *p)
{
	int nonprint = 0, dup = 0;
	for (int i = 0; i < 16; i++)
		nonprint += (unsigned char)(p[i] - 0x20) > 0x5e;
	if (nonprint < 4)
		return false;
	uint64_t seen[4] = {0};
	for (int i = 0; i < 16; i++) {
		uint64_t bit = 1ull << (p[i] & 63);
		dup += (seen[p[i] >> 6] & bit) != 0;
		seen[p[i] >> 6] |= bit;
	}
	return dup <= 2;
}

/* Entropy and chi-square from the byte histogram h (filled here). */
static void hist_stats(const unsigned char *p, size_t len, uint32_t h[256],
		       struct entropy_stats *out)
{
	memset(out, 0, sizeof(*out));
	histogram(p, len, h);
	out->len = (uint32_t)len;
	if (len == 0)
		return;
	out->entropy = entropy_of(h, len);
	out->chi2 = chi2_of(h, len);
}

/* The per-16-byte-chunk statistics: random fraction, stripe, stripe_chi2. */
static void chunk_stats(const unsigned char *p, size_t len, struct entropy_stats *out)
{
	uint32_t h[256];
	size_t chunks = len / 16, r[2] = {0, 0}, c[2] = {0, 0};
	for (size_t i = 0; i < chunks; i++) {
		c[i & 1]++;
		r[i & 1] += chunk_random(p + 16 * i);
	}
	if (chunks)
		out->rnd16_frac = (double)(r[0] + r[1]) / (double)chunks;
	if (!c[0] || !c[1])
		return;
	double f0 = (double)r[0] / (double)c[0], f1 = (double)r[1] / (double)c[1];
	out->stripe = fabs(f0 - f1);
	/* The random-looking chunks of the dominant phase, pooled: independent ciphertext
	 * chunks are uniform together, while natural look-alikes (code stubs, tables of
	 * doubles or keys) repeat bytes from one record to the next. */
	size_t phase = f0 >= f1 ? 0 : 1, n = 0;
	/* ECB over equal plaintext (runs of zeros) repeats ciphertext chunks: count each
	 * distinct chunk once, or the repetition would hide the stripes. A 64-bit fingerprint
	 * in a small open-addressed set; once it is full, later chunks are simply counted. */
	uint64_t seen[ENTROPY_DEDUP_SLOTS] = {0};
	size_t nseen = 0;
	memset(h, 0, sizeof(h));
	for (size_t i = phase; i < chunks; i += 2) {
		const unsigned char *q = p + 16 * i;
		if (!chunk_random(q))
			continue;
		uint64_t a, b;
		memcpy(&a, q, 8);
		memcpy(&b, q + 8, 8);
		uint64_t fp = (a ^ (b * 0x9e3779b97f4a7c15ull)) | 1;
		if (nseen < ENTROPY_DEDUP_SLOTS / 2) {
			size_t k = (size_t)(fp >> 7) % ENTROPY_DEDUP_SLOTS;
			while (seen[k] && seen[k] != fp)
				k = (k + 1) % ENTROPY_DEDUP_SLOTS;
			if (seen[k] == fp)
				continue;
			seen[k] = fp;
			nseen++;
		}
		for (int k = 0; k < 16; k++)
			h[q[k]]++;
		n += 16;
	}
	out->stripe_chi2 = chi2_of(h, n);
}

void entropy_stats(const void *buf, size_t len, struct entropy_stats *out)
{
	uint32_t h[256];
	if (len > UINT32_MAX)
		len = UINT32_MAX;
	hist_stats(buf, len, h, out);
	chunk_stats(buf, len, out);
}

static int b64_index(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+' || ch == '-')  /* standard and URL-safe alphabets */
		return 62;
	if (ch == '/' || ch == '_')
		return 63;
	return -1;
}

static int hex_index(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static double chi2_alpha(const uint32_t *h, int k, uint32_t n)
{
	double e = (double)n / k, x = 0;
	for (int i = 0; i < k; i++) {
		double d = (double)h[i] - e;
		x += d * d / e;
	}
	return x;
}

/* Base64 or hex text whose symbols are uniform over the alphabet: what encrypting and then
 * encoding produces. Words make letter frequencies far from uniform, so a chi-square over
 * the alphabet is the "no words" test. Line breaks and '=' padding are allowed; spaces only
 * in hex (dumps group bytes). Base64 of compressed data (PEM, data: URIs) passes too: the
 * container around it must decide. */
static bool looks_encoded(const uint32_t h[256])
{
	uint32_t hb[64] = {0}, hh[16] = {0}, nb = 0, nh = 0;
	bool b64_ok = true, hex_ok = true;

	/* From the byte histogram: 256 steps whatever the block length. */
	for (int ch = 0; ch < 256 && (b64_ok || hex_ok); ch++) {
		if (!h[ch] || ch == '\n' || ch == '\r')
			continue;
		int hi = hex_index((unsigned char)ch), bi = b64_index((unsigned char)ch);
		if (hi >= 0) {
			hh[hi] += h[ch];
			nh += h[ch];
		} else if (ch != ' ') {
			hex_ok = false;
		}
		if (bi >= 0) {
			hb[bi] += h[ch];
			nb += h[ch];
		} else if (ch != '=') {
			b64_ok = false;
		}
	}
	if (hex_ok && nh >= ENTROPY_ENC_MIN_SYMBOLS && chi2_alpha(hh, 16, nh) < ENTROPY_CHI_HEX)
		return true;
	return b64_ok && nb >= ENTROPY_ENC_MIN_SYMBOLS && chi2_alpha(hb, 64, nb) < ENTROPY_CHI_B64;
}

/* Entropy a uniform block of n bytes is expected to show (finite-sample bias
 * 255 / (2 n ln 2)); rough below ~256 bytes, where it only separates PLAIN from COMPRESSED. */
static double high_entropy_floor(size_t n)
{
	return 8.0 - 255.0 / (2.0 * (double)n * M_LN2) - ENTROPY_HIGH_MARGIN;
}

enum entropy_class entropy_classify(const void *buf, size_t len, struct entropy_stats *st)
{
	struct entropy_stats local;
	uint32_t h[256];
	if (!st)
		st = &local;
	if (len > UINT32_MAX)
		len = UINT32_MAX;
	/* Cheapest test first: uniform blocks and encoded text are decided on the histogram,
	 * and only the rest pay for the per-chunk pass. */
	hist_stats(buf, len, h, st);
	if (len < ENTROPY_MIN_BYTES)
		return ENTROPY_EMPTY;
	if (st->chi2 < ENTROPY_CHI_UNIFORM)
		return ENTROPY_RANDOM;
	if (looks_encoded(h))
		return ENTROPY_ENCODED;
	chunk_stats(buf, len, st);
	if (len / 16 >= ENTROPY_STRIPE_CHUNKS && st->stripe >= ENTROPY_STRIPE_MIN &&
	    st->stripe_chi2 < ENTROPY_CHI_UNIFORM)
		return ENTROPY_STRIPED;
	if (st->entropy >= high_entropy_floor(len))
		return ENTROPY_COMPRESSED;
	return ENTROPY_PLAIN;
}

const char *entropy_class_name(enum entropy_class c)
{
	static const char *const names[ENTROPY__COUNT] = {
		[ENTROPY_EMPTY] = "empty",       [ENTROPY_PLAIN] = "plain",
		[ENTROPY_COMPRESSED] = "compressed", [ENTROPY_RANDOM] = "random",
		[ENTROPY_ENCODED] = "encoded",   [ENTROPY_STRIPED] = "striped",
	};
	return (unsigned)c < ENTROPY__COUNT ? names[c] : "?";
}

bool entropy_class_suspect(enum entropy_class c)
{
	return c == ENTROPY_RANDOM || c == ENTROPY_ENCODED || c == ENTROPY_STRIPED;
}

/* Where to read: the whole file when it fits, else head, tail and the middle split into
 * equal strata with one block in each. The position inside a stratum moves by the golden
 * ratio from one stratum to the next, so the sample does not alias with families that
 * encrypt at a fixed period (1 MiB of every 10 MiB, alternating 1 MiB blocks). Blocks are
 * 4 KiB aligned (page cache, and the 16-byte phase that striping is measured against); the
 * tail is 16-byte aligned so that it ends within 15 bytes of the end. Returns the count. */
static uint32_t plan(uint64_t size, uint64_t off[ENTROPY_MAX_BLOCKS])
{
	const uint64_t B = ENTROPY_BLOCK;
	uint64_t nblk = (size + B - 1) / B;
	uint32_t n = 0;

	if (size == 0)
		return 0;
	if (nblk <= ENTROPY_MAX_BLOCKS) {
		for (uint64_t i = 0; i < nblk; i++)
			off[n++] = i * B;
		return n;
	}
	uint64_t tail = (size - B) & ~(uint64_t)15;
	/* Middle candidates are blocks 1 .. hb-1, all before the tail; strata are disjoint
	 * ranges of block numbers, each at least one block wide, so no block is read twice. */
	uint64_t hb = tail / B, avail = hb - 1;
	const uint32_t mid = ENTROPY_MAX_BLOCKS - 2;
	off[n++] = 0;
	for (uint32_t i = 0; i < mid && i < avail; i++) {
		double frac = fmod((i + 1) * 0.6180339887498949, 1.0);
		uint64_t s0 = 1 + avail * i / mid, s1 = 1 + avail * (i + 1) / mid;
		if (avail <= mid)
			s0 = 1 + i, s1 = s0 + 1;
		off[n++] = (s0 + (uint64_t)((double)(s1 - s0) * frac)) * B;
	}
	off[n++] = tail;
	return n;
}

struct source {
	int fd;                   /* -1: read from buf */
	const unsigned char *buf;
	size_t len;
};

/* Reads up to n bytes at off; returns bytes read (short at EOF) or -errno. */
static ssize_t src_read(const struct source *s, void *dst, size_t n, uint64_t off)
{
	if (s->fd < 0) {
		if (off >= s->len)
			return 0;
		size_t k = s->len - off < n ? (size_t)(s->len - off) : n;
		memcpy(dst, s->buf + off, k);
		return (ssize_t)k;
	}
	return io_pread_full(s->fd, dst, n, off);
}

static int sample(const struct source *s, uint64_t size, struct entropy_summary *out)
{
	uint64_t off[ENTROPY_MAX_BLOCKS];
	unsigned char blk[ENTROPY_BLOCK];
	uint32_t pooled[256] = {0}, h[256];
	uint64_t suspect = 0;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	out->file_size = size;
	uint32_t n = plan(size, off);
	for (uint32_t i = 0; i < n; i++) {
		ssize_t r = src_read(s, blk, sizeof(blk), off[i]);
		if (r < 0) {
			ret = (int)r;
			goto out;
		}
		if (r == 0)
			break;  /* the file shrank under us: judge what we have */
		struct entropy_block *b = &out->blocks[out->nblocks++];
		b->off = off[i];
		b->cls = entropy_classify(blk, (size_t)r, &b->st);
		if (b->cls == ENTROPY_RANDOM || b->cls == ENTROPY_ENCODED)
			b->suspect_bytes = (uint32_t)r;
		else if (b->cls == ENTROPY_STRIPED)
			b->suspect_bytes = (uint32_t)(b->st.rnd16_frac * (double)r + 0.5);
		if (b->cls == ENTROPY_RANDOM) {
			histogram(blk, (size_t)r, h);
			for (int k = 0; k < 256; k++)
				pooled[k] += h[k];
			out->pooled_bytes += (uint32_t)r;
		}
		out->count[b->cls]++;
		out->bytes_read += (uint32_t)r;
		suspect += b->suspect_bytes;
		if (b->st.entropy > out->max_entropy)
			out->max_entropy = b->st.entropy;
	}
	if (out->nblocks) {
		out->head_class = out->blocks[0].cls;
		out->head_suspect = entropy_class_suspect(out->head_class);
	}
	if (out->bytes_read)
		out->suspect_frac = (double)suspect / (double)out->bytes_read;
	out->pooled_chi2 = chi2_of(pooled, out->pooled_bytes);
	out->pooled_nonuniform = out->pooled_bytes >= ENTROPY_POOL_MIN &&
				 out->pooled_chi2 > ENTROPY_CHI_POOLED;
out:
	return ret;
}

int entropy_sample_fd(int fd, uint64_t size, struct entropy_summary *out)
{
	struct source s = {.fd = fd};
	if (fd < 0) {
		memset(out, 0, sizeof(*out));
		return -EBADF;
	}
	return sample(&s, size, out);
}

int entropy_sample_buf(const void *buf, size_t len, struct entropy_summary *out)
{
	struct source s = {.fd = -1, .buf = buf, .len = len};
	return sample(&s, len, out);
}
