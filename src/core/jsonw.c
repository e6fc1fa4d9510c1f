/* jsonw.c: JSON writer. Never fails loudly: an allocation failure sets w->oom and later
 * calls do nothing, so a caller checks once at the end. */
#include "core/jsonw.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void jsonw_init(struct jsonw *w)
{
	memset(w, 0, sizeof(*w));
}

void jsonw_free(struct jsonw *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

void jsonw_reset(struct jsonw *w)
{
	w->len = 0;
	w->need_comma = false;
	w->oom = false;
	if (w->buf)
		w->buf[0] = '\0';
}

static bool reserve(struct jsonw *w, size_t extra)
{
	if (w->oom)
		return false;
	if (w->len + extra + 1 <= w->cap)
		return true;
	size_t cap = w->cap ? w->cap : 256;
	while (cap < w->len + extra + 1)
		cap *= 2;
	char *nb = realloc(w->buf, cap);
	if (!nb) {
		w->oom = true;
		return false;
	}
	w->buf = nb;
	w->cap = cap;
	return true;
}

static void put(struct jsonw *w, const char *s, size_t n)
{
	if (!reserve(w, n))
		return;
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

static void putc_(struct jsonw *w, char c)
{
	put(w, &c, 1);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t cp;
	if (c < 0x80)
		return c ? 1 : 0;
	if ((c & 0xe0) == 0xc0) {
		len = 2;
		cp = c & 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3;
		cp = c & 0x0f;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* reject overlong forms, surrogates and values past U+10FFFF */
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

bool jsonw_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		size_t l = utf8_seq(p + i, n - i);
		if (!l)
			return false;
		i += l;
	}
	return true;
}

static void put_string(struct jsonw *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	putc_(w, '"');
	size_t i = 0;
	while (i < n) {
		/* copy runs of plain ASCII at once: the common case for paths */
		size_t run = i;
		while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
			run++;
		if (run > i) {
			put(w, s + i, run - i);
			i = run;
			continue;
		}
		unsigned char c = p[i];
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			put(w, e, 2);
			i++;
		} else if (c < 0x20) {
			char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			if (c == '\n')
				put(w, "\\n", 2);
			else if (c == '\t')
				put(w, "\\t", 2);
			else if (c == '\r')
				put(w, "\\r", 2);
			else
				put(w, e, 6);
			i++;
		} else {
			size_t l = utf8_seq(p + i, n - i);
			if (l) {
				put(w, s + i, l);
				i += l;
			} else {
				put(w, "\xef\xbf\xbd", 3); /* U+FFFD */
				i++;
			}
		}
	}
	putc_(w, '"');
}

static void key_(struct jsonw *w, const char *key)
{
	if (w->need_comma)
		putc_(w, ',');
	if (key) {
		put_string(w, key, strlen(key));
		putc_(w, ':');
	}
	w->need_comma = true;
}

void jsonw_obj_open(struct jsonw *w, const char *key)
{
	key_(w, key);
	putc_(w, '{');
	w->need_comma = false;
}

void jsonw_obj_close(struct jsonw *w)
{
	putc_(w, '}');
	w->need_comma = true;
}

void jsonw_arr_open(struct jsonw *w, const char *key)
{
	key_(w, key);
	putc_(w, '[');
	w->need_comma = false;
}

void jsonw_arr_close(struct jsonw *w)
{
	putc_(w, ']');
	w->need_comma = true;
}

void jsonw_strn(struct jsonw *w, const char *key, const char *s, size_t n)
{
	key_(w, key);
	put_string(w, s, n);
}

void jsonw_str(struct jsonw *w, const char *key, const char *s)
{
	jsonw_strn(w, key, s ? s : "", s ? strlen(s) : 0);
}

void jsonw_int(struct jsonw *w, const char *key, int64_t v)
{
	char b[24];
	int n = snprintf(b, sizeof(b), "%" PRId64, v);
	key_(w, key);
	put(w, b, (size_t)n);
}

void jsonw_uint(struct jsonw *w, const char *key, uint64_t v)
{
	char b[24];
	int n = snprintf(b, sizeof(b), "%" PRIu64, v);
	key_(w, key);
	put(w, b, (size_t)n);
}

void jsonw_double(struct jsonw *w, const char *key, double v)
{
	char b[40];
	int n = isfinite(v) ? snprintf(b, sizeof(b), "%.6g", v) : snprintf(b, sizeof(b), "null");
	key_(w, key);
	put(w, b, (size_t)n);
}

void jsonw_bool(struct jsonw *w, const char *key, bool v)
{
	key_(w, key);
	put(w, v ? "true" : "false", v ? 4 : 5);
}

void jsonw_hex(struct jsonw *w, const char *key, const void *data, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = data;
	key_(w, key);
	if (!reserve(w, 2 * n + 2))
		return;
	w->buf[w->len++] = '"';
	for (size_t i = 0; i < n; i++) {
		w->buf[w->len++] = hex[p[i] >> 4];
		w->buf[w->len++] = hex[p[i] & 15];
	}
	w->buf[w->len++] = '"';
	w->buf[w->len] = '\0';
}

void jsonw_time(struct jsonw *w, const char *key, int64_t sec, long nsec)
{
	struct tm tm;
	time_t t = (time_t)sec;
	char b[40];
	gmtime_r(&t, &tm);
	int n = snprintf(b, sizeof(b), "\"%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ\"", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, nsec / 1000);
	key_(w, key);
	put(w, b, (size_t)n);
}

void jsonw_raw(struct jsonw *w, const char *key, const char *json)
{
	key_(w, key);
	put(w, json, strlen(json));
}
