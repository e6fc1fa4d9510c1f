/* test_similarity.c: old versus new content, one row per change a file can go through: an
 * edit, an append, encryption (AES-256-CTR, whole, head only, LockFile stripes), being
 * replaced by other text, being cut down. Prints the measured scores. */
#include "detect/similarity.h"
#include "t.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>

/* Prose from a fixed vocabulary; seed picks the text. */
static void gen_text(unsigned char *buf, size_t n, uint64_t seed)
{
	static const char *const w[] = {
		"the", "of", "and", "to", "in", "is", "that", "it", "was", "for", "on", "are",
		"with", "they", "be", "this", "have", "from", "one", "had", "word", "but", "not",
		"what", "all", "were", "when", "your", "can", "said", "there", "use", "each",
		"which", "how", "their", "will", "other", "about", "many", "then", "them",
		"invoice", "quarterly", "report", "customer", "balance", "ledger", "account",
		"shipment", "contract", "signed", "meeting", "budget", "March", "2024", "total",
	};
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
	size_t i = 0, col = 0;
	while (i < n) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		const char *x = w[s % (sizeof(w) / sizeof(w[0]))];
		for (; *x && i < n; x++, col++)
			buf[i++] = (unsigned char)*x;
		if (i < n) {
			buf[i++] = col > 70 ? '\n' : (s >> 20) % 12 == 0 ? ',' : ' ';
			if (col > 70)
				col = 0;
		}
	}
}

static void aes_ctr(unsigned char *b, size_t n, unsigned k)
{
	unsigned char key[32], iv[16];
	int outl;
	for (int i = 0; i < 32; i++)
		key[i] = (unsigned char)(k * 29u + (unsigned)i);
	memset(iv, (int)k, sizeof(iv));
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	if (c && EVP_EncryptInit_ex(c, EVP_aes_256_ctr(), NULL, key, iv) == 1)
		EVP_EncryptUpdate(c, b, &outl, b, (int)n);
	EVP_CIPHER_CTX_free(c);
}

enum change {
	C_SAME,
	C_EDIT,      /* 200 bytes in the middle rewritten (smaller inputs: a sixteenth) */
	C_APPEND,    /* a tenth more text at the end */
	C_AES,       /* whole content encrypted */
	C_AES_HEAD,  /* first 4 KiB encrypted */
	C_STRIPE,    /* every other 16 bytes encrypted */
	C_OTHER,     /* replaced by different text of the same length */
	C_CUT,       /* cut to the first sixteenth */
	C_EMPTY,     /* truncated to nothing */
};

struct sim_case {
	const char *name;
	size_t size;
	enum change change;
	enum similarity_method method;
	int lo, hi;  /* expected score range */
};

#define SS SIMILARITY_SSDEEP
#define HI SIMILARITY_HISTOGRAM

static const struct sim_case cases[] = {
	{"same 64K", 65536, C_SAME, SS, 100, 100},
	{"edit 64K", 65536, C_EDIT, SS, 80, 100},
	{"append 64K", 65536, C_APPEND, SS, 70, 100},
	{"aes 64K", 65536, C_AES, SS, 0, 5},
	{"aes head 4K of 1M", 1 << 20, C_AES_HEAD, SS, 50, 100},  /* entropy sampling sees it */
	{"lockfile stripes 64K", 65536, C_STRIPE, SS, 0, 20},
	{"other text 64K", 65536, C_OTHER, SS, 0, 30},
	{"edit 1K", 1024, C_EDIT, SS, 60, 100},
	{"aes 1K", 1024, C_AES, SS, 0, 5},
	/* Too small for ssdeep: the histogram. */
	{"edit 120B", 120, C_EDIT, HI, 75, 100},
	{"aes 120B", 120, C_AES, HI, 0, 45},
	{"64K cut to 4K", 65536, C_CUT, HI, 85, 100},  /* ssdeep block sizes too far apart */
	{"truncated to empty", 4096, C_EMPTY, SIMILARITY_NONE, 0, 0},
};

static size_t apply(const struct sim_case *c, const unsigned char *old, unsigned char *nw)
{
	size_t n = c->size;
	memcpy(nw, old, n);
	switch (c->change) {
	case C_SAME:
		break;
	case C_EDIT: {
		size_t len = n >= 4096 ? 200 : n / 16;
		gen_text(nw + n / 2, len, 77);
		break;
	}
	case C_APPEND:
		gen_text(nw + n, n / 10, 78);
		n += n / 10;
		break;
	case C_AES:
		aes_ctr(nw, n, 1);
		break;
	case C_AES_HEAD:
		aes_ctr(nw, 4096, 2);
		break;
	case C_STRIPE:
		for (size_t i = 0; i + 16 <= n; i += 32)
			aes_ctr(nw + i, 16, 3 + (unsigned)(i / 32));
		break;
	case C_OTHER:
		gen_text(nw, n, 99);
		break;
	case C_CUT:
		n /= 16;
		break;
	case C_EMPTY:
		n = 0;
		break;
	}
	return n;
}

static void test_cases(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct sim_case *c = &cases[i];
		unsigned char *old = malloc(c->size), *nw = malloc(c->size * 2);
		T_CHECK(old && nw, "%s: malloc", c->name);
		if (!old || !nw) {
			free(old);
			free(nw);
			continue;
		}
		gen_text(old, c->size, 1);
		size_t n = apply(c, old, nw);
		enum similarity_method m = SIMILARITY_NONE;
		int s = similarity_compare_buf(old, c->size, nw, n, &m);
		printf("  %-24s %-9s %3d\n", c->name,
		       m == SS ? "ssdeep" : m == HI ? "histogram" : "none", s);
		T_CHECK(m == c->method, "%s: method %d", c->name, m);
		T_CHECK(s >= c->lo && s <= c->hi, "%s: score %d not in [%d, %d]", c->name, s,
			c->lo, c->hi);

		/* A digest kept from before the change compares the same as the buffers. */
		struct similarity_digest d_old, d_new;
		enum similarity_method m2;
		T_CHECK(similarity_digest_buf(old, c->size, &d_old) == 0 &&
				similarity_digest_buf(nw, n, &d_new) == 0 &&
				similarity_compare(&d_old, &d_new, &m2) == s && m2 == m &&
				similarity_compare(&d_new, &d_old, NULL) == s,
			"%s: stored digests disagree", c->name);
		free(old);
		free(nw);
	}
}

static void test_api(void)
{
	struct similarity_digest d;
	enum similarity_method m;
	T_CHECK(similarity_compare_buf("", 0, "", 0, &m) == 100 && m == SIMILARITY_NONE,
		"two empty contents");
	T_CHECK(similarity_digest_buf(NULL, 3, &d) == -EINVAL, "NULL buffer with length");
	T_CHECK(similarity_digest_buf("abc", 3, NULL) == -EINVAL, "NULL digest");
	T_CHECK(similarity_compare(NULL, &d, NULL) == -EINVAL, "NULL digest compare");
	T_CHECK(similarity_digest_buf("abcabcabc", 9, &d) == 0 && d.len == 9 && d.fuzzy[0] &&
			d.hist['a'] > 20000 && d.hist['z'] == 0,
		"digest fields: %s a=%u", d.fuzzy, d.hist['a']);
}

int main(void)
{
	test_cases();
	test_api();
	return T_DONE("similarity");
}
