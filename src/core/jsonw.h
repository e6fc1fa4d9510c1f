/* jsonw.h: a small append-only JSON writer into a growable buffer, used wherever ward
 * emits JSON (events, alerts, status). Bytes that are not valid UTF-8 are replaced by
 * U+FFFD in strings; callers that need exact bytes also write them with jsonw_hex(). */
#ifndef WARD_JSONW_H
#define WARD_JSONW_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jsonw {
	char *buf;
	size_t len, cap;
	bool need_comma;
	bool oom;                    /* sticky: an allocation failed, the output is incomplete */
};

void jsonw_init(struct jsonw *w);
void jsonw_free(struct jsonw *w);
void jsonw_reset(struct jsonw *w);
void jsonw_obj_open(struct jsonw *w, const char *key);   /* key NULL at top level / in arrays */
void jsonw_obj_close(struct jsonw *w);
void jsonw_arr_open(struct jsonw *w, const char *key);
void jsonw_arr_close(struct jsonw *w);
void jsonw_str(struct jsonw *w, const char *key, const char *s);
void jsonw_strn(struct jsonw *w, const char *key, const char *s, size_t n);
void jsonw_int(struct jsonw *w, const char *key, int64_t v);
void jsonw_uint(struct jsonw *w, const char *key, uint64_t v);
void jsonw_double(struct jsonw *w, const char *key, double v);
void jsonw_bool(struct jsonw *w, const char *key, bool v);
void jsonw_hex(struct jsonw *w, const char *key, const void *data, size_t n);
/* Writes an RFC 3339 UTC time with microseconds ("2026-11-25T11:31:02.123456Z"). */
void jsonw_time(struct jsonw *w, const char *key, int64_t sec, long nsec);
/* Appends raw text (already valid JSON) as a value. */
void jsonw_raw(struct jsonw *w, const char *key, const char *json);
/* True when s[0..n) is valid UTF-8 with no NUL. */
bool jsonw_utf8_valid(const char *s, size_t n);
#endif
