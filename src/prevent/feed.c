/* feed.c: feed readers and import. Each reader walks an untrusted buffer once, hands every
 * hash to a callback and stops at the first malformed entry: the import wraps the whole
 * walk in one store transaction, so a feed is taken entirely or not at all. Being strict
 * is deliberate: a truncated download or a feed that changed format should fail loudly,
 * not import half of itself. Entries that are well formed but are not file hashes (IP
 * addresses, URLs, to_ids=false attributes) are counted and skipped instead. */
#include "prevent/feed.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Confidence given to hashes from a MalwareBazaar export: every sample there was
 * submitted and classified as malware, but vtpercent is usually "n/a". */
#define FEED_CSV_CONFIDENCE 80
#define PATTERN_MAX 65536      /* longest STIX pattern we tokenize */
#define PATTERN_TOKENS 4096
#define CSV_FIELDS 64
#define CSV_RECORD_MAX 65536

struct reader {
	const char *buf;
	size_t len;
	feed_cb cb;
	void *ctx;
	struct feed_stats *st;
	struct feed_error *err;
};

const char *feed_format_name(enum feed_format f)
{
	switch (f) {
	case FEED_AUTO: return "auto";
	case FEED_PLAIN: return "plain";
	case FEED_CSV: return "csv";
	case FEED_STIX: return "stix";
	case FEED_MISP: return "misp";
	}
	return "?";
}

int feed_format_parse(const char *name, enum feed_format *out)
{
	static const struct { const char *name; enum feed_format f; } names[] = {
		{"auto", FEED_AUTO}, {"plain", FEED_PLAIN}, {"csv", FEED_CSV},
		{"malwarebazaar", FEED_CSV}, {"stix", FEED_STIX}, {"misp", FEED_MISP},
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(name, names[i].name)) {
			*out = names[i].f;
			return 0;
		}
	}
	return -EINVAL;
}

static size_t line_of(const char *buf, size_t off)
{
	size_t line = 1;
	for (size_t i = 0; i < off; i++)
		line += buf[i] == '\n';
	return line;
}

__attribute__((format(printf, 4, 5)))
static int fail_at(struct reader *rd, size_t line, size_t off, const char *fmt, ...)
{
	va_list ap;
	rd->err->line = line;
	rd->err->offset = off;
	rd->err->where[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(rd->err->msg, sizeof(rd->err->msg), fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

__attribute__((format(printf, 3, 4)))
static int fail_path(struct reader *rd, const char *path, const char *fmt, ...)
{
	va_list ap;
	rd->err->line = 0;
	rd->err->offset = 0;
	snprintf(rd->err->where, sizeof(rd->err->where), "%s", path);
	va_start(ap, fmt);
	vsnprintf(rd->err->msg, sizeof(rd->err->msg), fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

static void note_skip(struct reader *rd, const char *kind)
{
	struct feed_stats *st = rd->st;
	size_t kl = strlen(kind), have = strlen(st->skipped_kinds);
	st->skipped++;
	for (const char *p = st->skipped_kinds; *p;) {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l == kl && !memcmp(p, kind, kl))
			return;
		p += l + (e != NULL);
	}
	if (have + kl + 2 < sizeof(st->skipped_kinds))
		snprintf(st->skipped_kinds + have, sizeof(st->skipped_kinds) - have, "%s%s",
			 have ? "," : "", kind);
}

static int emit(struct reader *rd, enum ioc_kind kind, const uint8_t *digest, int64_t first_seen,
		int confidence, const char *name, const char *tags)
{
	struct ioc_record rec = {.kind = kind, .first_seen = first_seen, .confidence = confidence,
				 .name = name, .tags = tags};
	memcpy(rec.digest, digest, ioc_kind_len(kind));
	int r = rd->cb ? rd->cb(rd->ctx, &rec) : 0;
	if (r < 0) {
		snprintf(rd->err->msg, sizeof(rd->err->msg), "store: %s", strerror(-r));
		return r;
	}
	rd->st->hashes++;
	return 0;
}

/* Decodes a hex digest of an expected kind (0: any of md5/sha1/sha256 by length). */
static enum ioc_kind decode_hash(const char *s, size_t n, enum ioc_kind want, uint8_t *out)
{
	enum ioc_kind k = ioc_kind_for_hexlen(n);
	if (!k || (want && k != want))
		return 0;
	return ioc_hex_decode(s, n, out, ioc_kind_len(k)) < 0 ? 0 : k;
}

/* ---------------------------------------------------------------- times */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, size_t n, size_t at, size_t cnt, unsigned *v)
{
	*v = 0;
	if (at + cnt > n)
		return false;
	for (size_t i = at; i < at + cnt; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		*v = *v * 10 + (unsigned)(s[i] - '0');
	}
	return true;
}

/* "YYYY-MM-DD", optionally followed by [T ]HH:MM:SS, a fraction, and Z or +hh:mm; no zone
 * means UTC (MalwareBazaar's first_seen_utc). */
static int parse_time(const char *s, size_t n, int64_t *out)
{
	unsigned y, mo, d, h = 0, mi = 0, sec = 0, zh, zm;
	int64_t zone = 0;
	size_t i = 10;
	if (!digits(s, n, 0, 4, &y) || n < 10 || s[4] != '-' || !digits(s, n, 5, 2, &mo) ||
	    s[7] != '-' || !digits(s, n, 8, 2, &d) || mo < 1 || mo > 12 || d < 1 || d > 31)
		return -EINVAL;
	if (i < n) {
		if ((s[i] != 'T' && s[i] != 't' && s[i] != ' ') || !digits(s, n, 11, 2, &h) ||
		    n < 19 || s[13] != ':' || !digits(s, n, 14, 2, &mi) || s[16] != ':' ||
		    !digits(s, n, 17, 2, &sec) || h > 23 || mi > 59 || sec > 60)
			return -EINVAL;
		i = 19;
		if (i < n && s[i] == '.') {
			size_t f = ++i;
			while (i < n && s[i] >= '0' && s[i] <= '9')
				i++;
			if (i == f)
				return -EINVAL;
		}
		if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
			i++;
		} else if (i < n && (s[i] == '+' || s[i] == '-')) {
			if (!digits(s, n, i + 1, 2, &zh) || i + 3 >= n || s[i + 3] != ':' ||
			    !digits(s, n, i + 4, 2, &zm) || zh > 23 || zm > 59)
				return -EINVAL;
			zone = (s[i] == '-' ? -1 : 1) * (int64_t)(zh * 3600 + zm * 60);
			i += 6;
		}
	}
	if (i != n)
		return -EINVAL;
	*out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - zone;
	return 0;
}

/* ---------------------------------------------------------------- plain lists */

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static int parse_plain(struct reader *rd)
{
	const char *b = rd->buf;
	size_t len = rd->len, pos = 0, line = 0;
	char name[IOC_TEXT_MAX];
	if (len >= 3 && !memcmp(b, "\xef\xbb\xbf", 3))
		pos = 3;
	while (pos < len) {
		const char *nl = memchr(b + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - b) : len, i = pos;
		line++;
		pos = end + 1;
		while (i < end && is_space(b[i]))
			i++;
		if (i == end || b[i] == '#')
			continue;
		size_t h = i;
		while (i < end && !is_space(b[i]) && b[i] != '#')
			i++;
		uint8_t digest[IOC_DIGEST_MAX];
		enum ioc_kind k = decode_hash(b + h, i - h, 0, digest);
		if (!k)
			return fail_at(rd, line, h, "expected an md5, sha1 or sha256 hex digest");
		while (i < end && is_space(b[i]))
			i++;
		name[0] = '\0';
		if (i < end) {
			/* a trailing comment names the hash ("<sha256>  # LockBit 3.0 payload"), and so
			 * does the file name of sha256sum/md5sum output ("<sha256>  *evil.exe") */
			size_t c = i + (b[i] == '#' || b[i] == '*'), e = end;
			while (c < e && is_space(b[c]))
				c++;
			while (e > c && is_space(b[e - 1]))
				e--;
			size_t n = e - c < sizeof(name) - 1 ? e - c : sizeof(name) - 1;
			memcpy(name, b + c, n);
			name[n] = '\0';
		}
		int r = emit(rd, k, digest, 0, -1, name[0] ? name : NULL, NULL);
		if (r < 0) {
			rd->err->line = line;
			return r;
		}
	}
	return 0;
}

/* ---------------------------------------------------------------- MalwareBazaar CSV */

struct csv_row {
	size_t n;
	size_t off[CSV_FIELDS], len[CSV_FIELDS];
	char data[CSV_RECORD_MAX];   /* fields decoded, each NUL-terminated */
	size_t used;
};

static const char *csv_field(const struct csv_row *row, size_t i)
{
	return row->data + row->off[i];
}

/* Reads one record starting at *pos (quoted fields may span lines; the export puts a
 * space after each comma). Advances *pos past the line end and *line by the lines read. */
static int csv_record(struct reader *rd, size_t *pos, size_t *line, struct csv_row *row)
{
	const char *b = rd->buf;
	size_t i = *pos, len = rd->len;
	row->n = 0;
	row->used = 0;
	for (;;) {
		while (i < len && (b[i] == ' ' || b[i] == '\t'))
			i++;
		if (row->n == CSV_FIELDS)
			return fail_at(rd, *line, i, "more than %d fields", CSV_FIELDS);
		size_t start = row->used;
		bool room = true;
#define PUT(c)                                                                      \
	do {                                                                        \
		if (row->used + 1 >= sizeof(row->data))                             \
			room = false;                                               \
		else                                                                \
			row->data[row->used++] = (c);                               \
	} while (0)
		if (i < len && b[i] == '"') {
			size_t open_line = *line, open = i++;
			for (;;) {
				if (i >= len)
					return fail_at(rd, open_line, open, "unterminated quoted field");
				if (b[i] == '"') {
					if (i + 1 < len && b[i + 1] == '"') {
						PUT('"');
						i += 2;
						continue;
					}
					i++;
					break;
				}
				if (b[i] == '\n')
					(*line)++;
				PUT(b[i]);
				i++;
			}
			while (i < len && (b[i] == ' ' || b[i] == '\t'))
				i++;
		} else {
			while (i < len && b[i] != ',' && b[i] != '\n' && b[i] != '\r' && b[i] != '"') {
				PUT(b[i]);
				i++;
			}
			while (row->used > start && (row->data[row->used - 1] == ' ' ||
						     row->data[row->used - 1] == '\t'))
				row->used--;
			if (i < len && b[i] == '"')
				return fail_at(rd, *line, i, "quote inside an unquoted field");
		}
#undef PUT
		if (!room)
			return fail_at(rd, *line, i, "record longer than %d bytes", CSV_RECORD_MAX);
		row->off[row->n] = start;
		row->len[row->n] = row->used - start;
		row->data[row->used++] = '\0';
		row->n++;
		if (i < len && b[i] == ',') {
			i++;
			continue;
		}
		if (i < len && b[i] == '\r')
			i++;
		if (i < len && b[i] != '\n')
			return fail_at(rd, *line, i, "unexpected character after a field");
		*pos = i < len ? i + 1 : len;
		return 0;
	}
}

enum { COL_FIRST_SEEN, COL_SHA256, COL_MD5, COL_SHA1, COL_FILE_NAME, COL_SIGNATURE, NCOLS };
static const char *const csv_cols[NCOLS] = {"first_seen_utc", "sha256_hash", "md5_hash",
					   "sha1_hash", "file_name", "signature"};

static bool csv_missing(const struct csv_row *row, int col)
{
	return col < 0 || (size_t)col >= row->n || row->len[col] == 0 ||
	       !strcmp(csv_field(row, (size_t)col), "n/a");
}

static int parse_csv(struct reader *rd)
{
	int r = 0;
	/* the layout of bazaar.abuse.ch/export/csv/: used when no header comment is seen */
	int col[NCOLS] = {0, 1, 2, 3, 5, 8};
	size_t ncols = 0;   /* fields per row the header announced; 0: no header yet */
	size_t pos = 0, line = 1;
	struct csv_row *row = malloc(sizeof(*row));
	if (!row)
		return -ENOMEM;
	if (rd->len >= 3 && !memcmp(rd->buf, "\xef\xbb\xbf", 3))
		pos = 3;
	while (pos < rd->len) {
		const char *b = rd->buf;
		size_t i = pos, rec_line = line;
		while (i < rd->len && is_space(b[i]))
			i++;
		if (i >= rd->len)
			break;
		if (b[i] == '\n') {
			pos = i + 1;
			line++;
			continue;
		}
		if (b[i] == '#') {
			/* the column names arrive as a comment: # "first_seen_utc","sha256_hash",.. */
			size_t j = i + 1;
			while (j < rd->len && (b[j] == ' ' || b[j] == '\t'))
				j++;
			const char *nl = memchr(b + i, '\n', rd->len - i);
			size_t eol = nl ? (size_t)(nl - b) : rd->len;
			size_t next = nl ? eol + 1 : rd->len;
			if (j < eol && b[j] == '"' && ncols == 0 &&
			    (memmem(b + j, eol - j, "\"sha256_hash\"", 13) ||
			     memmem(b + j, eol - j, "\"md5_hash\"", 10) ||
			     memmem(b + j, eol - j, "\"sha1_hash\"", 11))) {
				/* parse the header within its own line: a comment cannot span lines */
				struct reader hr = *rd;
				size_t p = j;
				hr.len = eol;
				if ((r = csv_record(&hr, &p, &line, row)) < 0)
					goto out;
				int seen[NCOLS];
				bool any_hash = false;
				for (int c = 0; c < NCOLS; c++) {
					seen[c] = -1;
					for (size_t f = 0; f < row->n; f++)
						if (!strcmp(csv_field(row, f), csv_cols[c]))
							seen[c] = (int)f;
				}
				any_hash = seen[COL_SHA256] >= 0 || seen[COL_MD5] >= 0 ||
					   seen[COL_SHA1] >= 0;
				if (any_hash) {
					memcpy(col, seen, sizeof(col));
					ncols = row->n;
				}
				pos = next;
				line++;
			} else {
				pos = next;
				line++;
			}
			continue;
		}
		pos = i;
		if ((r = csv_record(rd, &pos, &line, row)) < 0)
			goto out;
		line++;
		if (ncols && row->n != ncols) {
			r = fail_at(rd, rec_line, i, "expected %zu fields as in the header, found %zu",
				    ncols, row->n);
			goto out;
		}
		if (!ncols && row->n < 4) {
			r = fail_at(rd, rec_line, i, "expected at least 4 fields, found %zu", row->n);
			goto out;
		}
		int64_t first_seen = 0;
		if (!csv_missing(row, col[COL_FIRST_SEEN]) &&
		    parse_time(csv_field(row, col[COL_FIRST_SEEN]), row->len[col[COL_FIRST_SEEN]],
			       &first_seen) < 0) {
			r = fail_at(rd, rec_line, i, "first_seen_utc is not a time");
			goto out;
		}
		const char *name = csv_missing(row, col[COL_FILE_NAME]) ? NULL
					: csv_field(row, col[COL_FILE_NAME]);
		const char *tags = csv_missing(row, col[COL_SIGNATURE]) ? NULL
					: csv_field(row, col[COL_SIGNATURE]);
		static const struct { int col; enum ioc_kind kind; } hashes[] = {
			{COL_SHA256, IOC_SHA256}, {COL_MD5, IOC_MD5}, {COL_SHA1, IOC_SHA1}};
		size_t found = 0;
		for (size_t h = 0; h < 3; h++) {
			int c = col[hashes[h].col];
			uint8_t digest[IOC_DIGEST_MAX];
			if (csv_missing(row, c))
				continue;
			if (!decode_hash(csv_field(row, c), row->len[c], hashes[h].kind, digest)) {
				r = fail_at(rd, rec_line, i, "%s is not a %s hex digest",
					    csv_cols[hashes[h].col], ioc_kind_name(hashes[h].kind));
				goto out;
			}
			if ((r = emit(rd, hashes[h].kind, digest, first_seen, FEED_CSV_CONFIDENCE,
				      name, tags)) < 0) {
				rd->err->line = rec_line;
				goto out;
			}
			found++;
		}
		if (!found)
			note_skip(rd, "row without hash");
	}
out:
	free(row);
	return r;
}

/* ---------------------------------------------------------------- JSON helpers */

static struct json_object *get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;
	if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v))
		return NULL;
	return json_object_is_type(v, json_type_null) ? NULL : v;
}

/* The string at key, or NULL when absent or not a string (*bad set in the latter case). */
static const char *get_str(struct json_object *o, const char *key, size_t *len, bool *bad)
{
	struct json_object *v = get(o, key);
	if (!v)
		return NULL;
	if (!json_object_is_type(v, json_type_string)) {
		if (bad)
			*bad = true;
		return NULL;
	}
	if (len)
		*len = (size_t)json_object_get_string_len(v);
	return json_object_get_string(v);
}

/* JSON paths for messages: a path cut short at 128 bytes still locates the problem. */
__attribute__((format(printf, 3, 4)))
static void path_fmt(char *dst, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(dst, n, fmt, ap);
	va_end(ap);
}
#define PATH(dst, ...) path_fmt((dst), sizeof(dst), __VA_ARGS__)

/* Joins the strings of an array (or of objects' "name" members) with commas. */
static void join_strings(struct json_object *arr, const char *member, char *out, size_t n)
{
	size_t used = 0;
	out[0] = '\0';
	if (!json_object_is_type(arr, json_type_array))
		return;
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *v = json_object_array_get_idx(arr, i);
		if (member)
			v = get(v, member);
		if (!json_object_is_type(v, json_type_string))
			continue;
		const char *s = json_object_get_string(v);
		int w = snprintf(out + used, n - used, "%s%s", used ? "," : "", s);
		if (w < 0 || (size_t)w >= n - used) {
			out[used] = '\0';   /* keep whole names only */
			return;
		}
		used += (size_t)w;
	}
}

/* ---------------------------------------------------------------- STIX 2.1 */

/* STIX hash keys: 'SHA-256' in the vocabulary, SHA256 / sha-256 seen in the wild. */
static enum ioc_kind stix_hash_kind(const char *key, size_t n)
{
	char norm[16];
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		char c = key[i];
		if (c == '-' || c == '_')
			continue;
		if (j + 1 >= sizeof(norm))
			return 0;
		norm[j++] = (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
	}
	norm[j] = '\0';
	if (!strcmp(norm, "MD5"))
		return IOC_MD5;
	if (!strcmp(norm, "SHA1"))
		return IOC_SHA1;
	if (!strcmp(norm, "SHA256"))
		return IOC_SHA256;
	return 0;
}

enum tok_type { T_LBRACK, T_RBRACK, T_LPAREN, T_RPAREN, T_COMMA, T_OP, T_STR, T_NUM, T_WORD,
		T_PATH };

struct tok {
	enum tok_type type;
	size_t at, len;          /* the token's text in the pattern */
	size_t val, vlen;        /* T_STR: contents between the quotes (escapes not undone) */
	size_t otype, otlen;     /* T_PATH: the object type ("file") */
	size_t key, klen;        /* T_PATH: for "hashes.X" paths, X unquoted; klen 0 otherwise */
};

struct pattern {
	const char *p;
	size_t n;
	struct tok *t;
	size_t nt;
};

static bool ident_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

/* Scans a '...' literal at *i (on the opening quote); STIX escapes are \' and \\. */
static int scan_quoted(const char *p, size_t n, size_t *i, size_t *val, size_t *vlen)
{
	size_t j = *i + 1;
	*val = j;
	while (j < n && p[j] != '\'') {
		if (p[j] == '\\') {
			if (j + 1 >= n || (p[j + 1] != '\'' && p[j + 1] != '\\'))
				return -EINVAL;
			j++;
		}
		j++;
	}
	if (j >= n)
		return -EINVAL;
	*vlen = j - *val;
	*i = j + 1;
	return 0;
}

static const char *const stix_words[] = {
	"AND", "OR", "NOT", "FOLLOWEDBY", "IN", "LIKE", "MATCHES", "ISSUBSET", "ISSUPERSET",
	"EXISTS", "WITHIN", "SECONDS", "REPEATS", "TIMES", "START", "STOP", "true", "false"};

static int tokenize(struct pattern *pt, char *why, size_t whylen)
{
	const char *p = pt->p;
	size_t n = pt->n, i = 0;
	int depth_b = 0, depth_p = 0;
	pt->nt = 0;
	while (i < n) {
		char c = p[i];
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			i++;
			continue;
		}
		if (pt->nt == PATTERN_TOKENS || pt->nt > n) {
			snprintf(why, whylen, "more than %d tokens", PATTERN_TOKENS);
			return -EINVAL;
		}
		struct tok *t = &pt->t[pt->nt];
		memset(t, 0, sizeof(*t));
		t->at = i;
		if (c == '[' || c == ']' || c == '(' || c == ')' || c == ',') {
			t->type = c == '[' ? T_LBRACK : c == ']' ? T_RBRACK : c == '(' ? T_LPAREN
				  : c == ')' ? T_RPAREN : T_COMMA;
			depth_b += (c == '[') - (c == ']');
			depth_p += (c == '(') - (c == ')');
			if (depth_b < 0 || depth_p < 0 || depth_b > 64 || depth_p > 64) {
				snprintf(why, whylen, "unbalanced '%c' at offset %zu", c, i);
				return -EINVAL;
			}
			i++;
		} else if (c == '=' || c == '!' || c == '<' || c == '>') {
			t->type = T_OP;
			i++;
			if (i < n && (p[i] == '=' || (c == '<' && p[i] == '>')))
				i++;
			else if (c == '!') {
				snprintf(why, whylen, "stray '!' at offset %zu", t->at);
				return -EINVAL;
			}
		} else if (c == '\'' || ((c == 't' || c == 'h' || c == 'b') && i + 1 < n &&
					 p[i + 1] == '\'')) {
			t->type = T_STR;
			if (c != '\'')
				i++;
			if (scan_quoted(p, n, &i, &t->val, &t->vlen) < 0) {
				snprintf(why, whylen, "unterminated string at offset %zu", t->at);
				return -EINVAL;
			}
		} else if ((c >= '0' && c <= '9') || ((c == '-' || c == '+') && i + 1 < n &&
						      p[i + 1] >= '0' && p[i + 1] <= '9')) {
			t->type = T_NUM;
			i++;
			while (i < n && ((p[i] >= '0' && p[i] <= '9') || p[i] == '.'))
				i++;
		} else if (ident_char(c)) {
			size_t w = i;
			while (i < n && ident_char(p[i]))
				i++;
			if (i < n && p[i] == ':') {
				/* object path: type ':' property ( '.' name | '.' 'quoted' | [idx] )* */
				t->type = T_PATH;
				t->otype = w;
				t->otlen = i - w;
				size_t comp = 0, first = ++i;
				while (i < n && ident_char(p[i]))
					i++;
				if (i == first) {
					snprintf(why, whylen, "object path without property at %zu", w);
					return -EINVAL;
				}
				bool hashes = i - first == 6 && !memcmp(p + first, "hashes", 6);
				for (;;) {
					if (i < n && p[i] == '.') {
						size_t k = ++i, kl;
						if (i < n && p[i] == '\'') {
							if (scan_quoted(p, n, &i, &k, &kl) < 0) {
								snprintf(why, whylen,
									 "unterminated path key at %zu", k);
								return -EINVAL;
							}
						} else {
							while (i < n && ident_char(p[i]))
								i++;
							kl = i - k;
							if (!kl) {
								snprintf(why, whylen,
									 "empty path component at %zu", k);
								return -EINVAL;
							}
						}
						if (++comp == 1 && hashes) {
							t->key = k;
							t->klen = kl;
						} else {
							t->klen = 0;   /* hashes.X.Y is not a hash */
						}
					} else if (i < n && p[i] == '[') {
						size_t k = ++i;
						while (i < n && ((p[i] >= '0' && p[i] <= '9') || p[i] == '*'))
							i++;
						if (i == k || i >= n || p[i] != ']') {
							snprintf(why, whylen, "bad list index at %zu", k);
							return -EINVAL;
						}
						i++;
					} else {
						break;
					}
				}
				if (!hashes)
					t->klen = 0;
			} else {
				t->type = T_WORD;
				bool known = false;
				for (size_t k = 0; k < sizeof(stix_words) / sizeof(stix_words[0]); k++)
					known |= strlen(stix_words[k]) == i - w &&
						 !memcmp(stix_words[k], p + w, i - w);
				if (!known) {
					snprintf(why, whylen, "unexpected word '%.*s'",
						 (int)(i - w > 32 ? 32 : i - w), p + w);
					return -EINVAL;
				}
			}
		} else {
			snprintf(why, whylen, "unexpected character at offset %zu", i);
			return -EINVAL;
		}
		t->len = i - t->at;
		pt->nt++;
	}
	if (depth_b || depth_p) {
		snprintf(why, whylen, "unbalanced brackets");
		return -EINVAL;
	}
	return 0;
}

static bool tok_is(const struct pattern *pt, size_t i, enum tok_type type, const char *text)
{
	if (i >= pt->nt || pt->t[i].type != type)
		return false;
	return !text || (pt->t[i].len == strlen(text) && !memcmp(pt->p + pt->t[i].at, text,
								  pt->t[i].len));
}

struct stix_ctx {
	int64_t first_seen;
	int confidence;
	const char *name;
	const char *tags;
	size_t emitted;
	char other[64];      /* what else the pattern compared, for the skip note */
};

static int stix_emit_value(struct reader *rd, const char *path, struct stix_ctx *sc,
			   enum ioc_kind kind, const char *v, size_t vl)
{
	uint8_t digest[IOC_DIGEST_MAX];
	if (!decode_hash(v, vl, kind, digest))
		return fail_path(rd, path, "%s value is not a %s hex digest", ioc_kind_name(kind),
				 ioc_kind_name(kind));
	int r = emit(rd, kind, digest, sc->first_seen, sc->confidence, sc->name, sc->tags);
	if (r < 0)
		return r;
	sc->emitted++;
	return 0;
}

/* Extracts every "file:hashes.X = '...'" (and "IN ('...', ...)") comparison. Negated
 * comparisons are not indicators of presence and are ignored; an AND with other terms
 * (file:name, size) is taken on the hash alone, which can only widen the match. */
static int stix_pattern(struct reader *rd, const char *path, const char *p, size_t n,
			struct stix_ctx *sc)
{
	int r = 0;
	char why[96];
	struct pattern pt = {.p = p, .n = n};
	if (n > PATTERN_MAX)
		return fail_path(rd, path, "pattern longer than %d bytes", PATTERN_MAX);
	/* a token takes at least one byte: short patterns need short arrays */
	pt.t = malloc((n < PATTERN_TOKENS ? n + 1 : PATTERN_TOKENS) * sizeof(*pt.t));
	if (!pt.t)
		return -ENOMEM;
	if (tokenize(&pt, why, sizeof(why)) < 0) {
		r = fail_path(rd, path, "bad STIX pattern: %s", why);
		goto out;
	}
	if (!tok_is(&pt, 0, T_LBRACK, NULL) && !tok_is(&pt, 0, T_LPAREN, NULL)) {
		r = fail_path(rd, path, "bad STIX pattern: does not start with '[' or '('");
		goto out;
	}
	for (size_t i = 0; i < pt.nt; i++) {
		const struct tok *t = &pt.t[i];
		if (t->type != T_PATH)
			continue;
		bool file = t->otlen == 4 && !memcmp(p + t->otype, "file", 4);
		if (!file) {
			size_t have = strlen(sc->other);
			if (!have)
				snprintf(sc->other, sizeof(sc->other), "%.*s",
					 (int)(t->otlen < 48 ? t->otlen : 48), p + t->otype);
			continue;
		}
		if (!t->klen)
			continue;
		enum ioc_kind kind = stix_hash_kind(p + t->key, t->klen);
		if (!kind) {
			if (!sc->other[0])
				snprintf(sc->other, sizeof(sc->other), "file:hashes.%.*s",
					 (int)(t->klen < 24 ? t->klen : 24), p + t->key);
			continue;
		}
		size_t j = i + 1;
		if (tok_is(&pt, j, T_WORD, "NOT"))
			continue;
		if (tok_is(&pt, j, T_OP, "=") && tok_is(&pt, j + 1, T_STR, NULL)) {
			const struct tok *v = &pt.t[j + 1];
			if (p[v->at] != '\'') {
				r = fail_path(rd, path, "hash compared with a non-string literal");
				goto out;
			}
			if ((r = stix_emit_value(rd, path, sc, kind, p + v->val, v->vlen)) < 0)
				goto out;
		} else if (tok_is(&pt, j, T_WORD, "IN") && tok_is(&pt, j + 1, T_LPAREN, NULL)) {
			for (j += 2; tok_is(&pt, j, T_STR, NULL); j += 2) {
				const struct tok *v = &pt.t[j];
				if ((r = stix_emit_value(rd, path, sc, kind, p + v->val, v->vlen)) < 0)
					goto out;
				if (!tok_is(&pt, j + 1, T_COMMA, NULL))
					break;
			}
		}
	}
out:
	free(pt.t);
	return r;
}

static int stix_time(struct reader *rd, struct json_object *o, const char *key,
		     const char *base, int64_t *best)
{
	bool bad = false;
	size_t n = 0;
	int64_t t;
	char path[128];
	const char *s = get_str(o, key, &n, &bad);
	PATH(path, "%s.%s", base, key);
	if (bad || (s && parse_time(s, n, &t) < 0))
		return fail_path(rd, path, "not an RFC 3339 timestamp");
	if (s && (!*best || t < *best))
		*best = t;
	return 0;
}

static int stix_indicator(struct reader *rd, struct json_object *o, const char *base)
{
	char path[128], tags[IOC_TEXT_MAX];
	bool bad = false;
	size_t plen = 0;
	int r;
	struct stix_ctx sc = {.confidence = -1};
	const char *ptype = get_str(o, "pattern_type", NULL, &bad);
	const char *pattern = get_str(o, "pattern", &plen, &bad);
	if (bad || !pattern) {
		PATH(path, "%s.pattern", base);
		return fail_path(rd, path, "indicator pattern (or pattern_type) missing or not a string");
	}
	/* STIX 2.0 indicators have no pattern_type: their patterns are STIX patterns */
	if (ptype && strcmp(ptype, "stix")) {
		char kind[48];
		snprintf(kind, sizeof(kind), "%.32s pattern", ptype);
		note_skip(rd, kind);
		return 0;
	}
	if ((r = stix_time(rd, o, "valid_from", base, &sc.first_seen)) < 0 ||
	    (r = stix_time(rd, o, "created", base, &sc.first_seen)) < 0)
		return r;
	struct json_object *conf = get(o, "confidence");
	if (conf) {
		int64_t c = json_object_get_int64(conf);
		if (!json_object_is_type(conf, json_type_int) || c < 0 || c > 100) {
			PATH(path, "%s.confidence", base);
			return fail_path(rd, path, "confidence is not an integer 0-100");
		}
		sc.confidence = (int)c;
	}
	sc.name = get_str(o, "name", NULL, NULL);
	join_strings(get(o, "labels") ? get(o, "labels") : get(o, "indicator_types"), NULL, tags,
		     sizeof(tags));
	sc.tags = tags[0] ? tags : NULL;
	PATH(path, "%s.pattern", base);
	if ((r = stix_pattern(rd, path, pattern, plen, &sc)) < 0)
		return r;
	if (!sc.emitted)
		note_skip(rd, sc.other[0] ? sc.other : "file pattern without hash");
	return 0;
}

static int stix_file(struct reader *rd, struct json_object *o, const char *base)
{
	char path[128];
	struct json_object *h = get(o, "hashes");
	struct stix_ctx sc = {.confidence = -1};
	if (!h) {
		note_skip(rd, "file without hashes");
		return 0;
	}
	if (!json_object_is_type(h, json_type_object)) {
		PATH(path, "%s.hashes", base);
		return fail_path(rd, path, "hashes is not an object");
	}
	sc.name = get_str(o, "name", NULL, NULL);
	json_object_object_foreach(h, key, val)
	{
		enum ioc_kind kind = stix_hash_kind(key, strlen(key));
		if (!kind)
			continue;
		PATH(path, "%s.hashes.%s", base, key);
		if (!json_object_is_type(val, json_type_string))
			return fail_path(rd, path, "hash is not a string");
		int r = stix_emit_value(rd, path, &sc, kind, json_object_get_string(val),
					(size_t)json_object_get_string_len(val));
		if (r < 0)
			return r;
	}
	if (!sc.emitted)
		note_skip(rd, "file without md5/sha1/sha256");
	return 0;
}

static int parse_stix(struct reader *rd, struct json_object *root)
{
	char path[128];
	const char *type = get_str(root, "type", NULL, NULL);
	if (!type || strcmp(type, "bundle"))
		return fail_path(rd, "$.type", "not a STIX bundle (type is not \"bundle\")");
	struct json_object *objs = get(root, "objects");
	if (!objs)
		return 0;
	if (!json_object_is_type(objs, json_type_array))
		return fail_path(rd, "$.objects", "objects is not an array");
	for (size_t i = 0; i < json_object_array_length(objs); i++) {
		struct json_object *o = json_object_array_get_idx(objs, i);
		PATH(path, "$.objects[%zu]", i);
		const char *t = get_str(o, "type", NULL, NULL);
		if (!t)
			return fail_path(rd, path, "object without a type");
		int r = 0;
		if (!strcmp(t, "indicator"))
			r = stix_indicator(rd, o, path);
		else if (!strcmp(t, "file"))
			r = stix_file(rd, o, path);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---------------------------------------------------------------- MISP */

struct misp_event {
	int64_t first_seen;
	int confidence;
	const char *info;
	char tags[IOC_TEXT_MAX];
};

/* MISP writes booleans as true/false, or "1"/"0" in older exports. */
static bool misp_true(struct json_object *v)
{
	if (json_object_is_type(v, json_type_boolean))
		return json_object_get_boolean(v);
	if (json_object_is_type(v, json_type_int))
		return json_object_get_int64(v) != 0;
	if (json_object_is_type(v, json_type_string)) {
		const char *s = json_object_get_string(v);
		return !strcmp(s, "1") || !strcmp(s, "true");
	}
	return false;
}

static int misp_attribute(struct reader *rd, struct json_object *a, const char *base,
			  const struct misp_event *ev)
{
	static const struct { const char *type; enum ioc_kind kind; bool named; } types[] = {
		{"md5", IOC_MD5, false},          {"sha1", IOC_SHA1, false},
		{"sha256", IOC_SHA256, false},    {"filename|md5", IOC_MD5, true},
		{"filename|sha1", IOC_SHA1, true}, {"filename|sha256", IOC_SHA256, true},
		{"malware-sample", IOC_MD5, true},
	};
	char path[128], name[IOC_TEXT_MAX];
	bool bad = false;
	size_t vlen = 0;
	const char *type = get_str(a, "type", NULL, &bad);
	const char *value = get_str(a, "value", &vlen, &bad);
	if (bad || !type || !value)
		return fail_path(rd, base, "attribute without a string type and value");
	size_t t;
	for (t = 0; t < sizeof(types) / sizeof(types[0]); t++)
		if (!strcmp(type, types[t].type))
			break;
	if (t == sizeof(types) / sizeof(types[0])) {
		char kind[48];
		snprintf(kind, sizeof(kind), "%.40s", type);
		note_skip(rd, kind);
		return 0;
	}
	if (!misp_true(get(a, "to_ids"))) {
		note_skip(rd, "to_ids false");
		return 0;
	}
	if (misp_true(get(a, "deleted"))) {
		note_skip(rd, "deleted");
		return 0;
	}
	const char *hex = value;
	size_t hlen = vlen;
	name[0] = '\0';
	PATH(path, "%s.value", base);
	if (types[t].named) {
		/* "name|hash": a file name may itself hold '|', the hash never does */
		const char *bar = memrchr(value, '|', vlen);
		if (!bar)
			return fail_path(rd, path, "%s value is not \"filename|hash\"", type);
		size_t nl = (size_t)(bar - value);
		snprintf(name, sizeof(name), "%.*s", (int)(nl < sizeof(name) - 1 ? nl : sizeof(name) - 1),
			 value);
		hex = bar + 1;
		hlen = vlen - nl - 1;
	}
	int64_t first_seen = ev->first_seen;
	size_t fl = 0;
	const char *fs = get_str(a, "first_seen", &fl, NULL);
	if (fs && parse_time(fs, fl, &first_seen) < 0) {
		PATH(path, "%s.first_seen", base);
		return fail_path(rd, path, "not a timestamp");
	}
	if (!name[0]) {
		const char *comment = get_str(a, "comment", NULL, NULL);
		snprintf(name, sizeof(name), "%s",
			 comment && *comment ? comment : ev->info ? ev->info : "");
	}
	uint8_t digest[IOC_DIGEST_MAX];
	if (!decode_hash(hex, hlen, types[t].kind, digest))
		return fail_path(rd, path, "%s value is not a %s hex digest", type,
				 ioc_kind_name(types[t].kind));
	return emit(rd, types[t].kind, digest, first_seen, ev->confidence, name[0] ? name : NULL,
		    ev->tags[0] ? ev->tags : NULL);
}

static int misp_attributes(struct reader *rd, struct json_object *arr, const char *base,
			   const struct misp_event *ev)
{
	char path[128];
	if (!arr)
		return 0;
	if (!json_object_is_type(arr, json_type_array))
		return fail_path(rd, base, "not an array");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		PATH(path, "%s[%zu]", base, i);
		int r = misp_attribute(rd, json_object_array_get_idx(arr, i), path, ev);
		if (r < 0)
			return r;
	}
	return 0;
}

static int misp_event(struct reader *rd, struct json_object *e, const char *base)
{
	char path[128];
	struct misp_event ev = {.confidence = -1};
	if (!json_object_is_type(e, json_type_object))
		return fail_path(rd, base, "Event is not an object");
	ev.info = get_str(e, "info", NULL, NULL);
	size_t dl = 0;
	const char *date = get_str(e, "date", &dl, NULL);
	if (date && parse_time(date, dl, &ev.first_seen) < 0) {
		PATH(path, "%s.date", base);
		return fail_path(rd, path, "not a date");
	}
	/* threat_level_id: 1 high, 2 medium, 3 low, 4 undefined */
	const char *tl = get_str(e, "threat_level_id", NULL, NULL);
	if (tl && tl[0] >= '1' && tl[0] <= '3' && !tl[1])
		ev.confidence = tl[0] == '1' ? 90 : tl[0] == '2' ? 70 : 50;
	join_strings(get(e, "Tag"), "name", ev.tags, sizeof(ev.tags));
	PATH(path, "%s.Attribute", base);
	int r = misp_attributes(rd, get(e, "Attribute"), path, &ev);
	if (r < 0)
		return r;
	struct json_object *objs = get(e, "Object");
	if (!objs)
		return 0;
	if (!json_object_is_type(objs, json_type_array)) {
		PATH(path, "%s.Object", base);
		return fail_path(rd, path, "not an array");
	}
	for (size_t i = 0; i < json_object_array_length(objs); i++) {
		PATH(path, "%s.Object[%zu].Attribute", base, i);
		if ((r = misp_attributes(rd, get(json_object_array_get_idx(objs, i), "Attribute"),
					 path, &ev)) < 0)
			return r;
	}
	return 0;
}

static int misp_events(struct reader *rd, struct json_object *arr, const char *base)
{
	char path[128];
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *e = get(json_object_array_get_idx(arr, i), "Event");
		PATH(path, "%s[%zu].Event", base, i);
		if (!e)
			return fail_path(rd, path, "missing");
		int r = misp_event(rd, e, path);
		if (r < 0)
			return r;
	}
	return 0;
}

/* {"Event":{...}}, {"response":[{"Event":{...}}, ...]} or [{"Event":{...}}, ...] */
static int parse_misp(struct reader *rd, struct json_object *root)
{
	struct json_object *v;
	if (json_object_is_type(root, json_type_array))
		return misp_events(rd, root, "$");
	if ((v = get(root, "Event")))
		return misp_event(rd, v, "$.Event");
	if ((v = get(root, "response")) && json_object_is_type(v, json_type_array))
		return misp_events(rd, v, "$.response");
	return fail_path(rd, "$", "not a MISP event (no \"Event\" or \"response\")");
}

/* ---------------------------------------------------------------- dispatch */

static int parse_json(struct reader *rd, enum feed_format fmt, enum feed_format *used)
{
	int r = 0;
	struct json_object *root = NULL;
	struct json_tokener *tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	if (rd->len > INT_MAX) {
		r = fail_at(rd, 0, 0, "file too large for the JSON parser");
		goto out;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	size_t skip = rd->len >= 3 && !memcmp(rd->buf, "\xef\xbb\xbf", 3) ? 3 : 0;
	root = json_tokener_parse_ex(tok, rd->buf + skip, (int)(rd->len - skip));
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t end = skip + json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_continue) {
		r = fail_at(rd, line_of(rd->buf, rd->len), rd->len, "unexpected end of JSON");
		goto out;
	}
	if (jerr != json_tokener_success || !root) {
		if (end > rd->len)
			end = rd->len;
		r = fail_at(rd, line_of(rd->buf, end), end, "invalid JSON: %s",
			    json_tokener_error_desc(jerr));
		goto out;
	}
	for (size_t i = end; i < rd->len; i++) {
		if (!is_space(rd->buf[i]) && rd->buf[i] != '\n') {
			r = fail_at(rd, line_of(rd->buf, i), i, "text after the JSON value");
			goto out;
		}
	}
	if (fmt == FEED_AUTO) {
		const char *type = get_str(root, "type", NULL, NULL);
		if (type && !strcmp(type, "bundle"))
			fmt = FEED_STIX;
		else if (get(root, "Event") || get(root, "response") ||
			 json_object_is_type(root, json_type_array))
			fmt = FEED_MISP;
		else {
			r = fail_path(rd, "$", "JSON that is neither a STIX bundle nor a MISP event");
			goto out;
		}
	}
	*used = fmt;
	r = fmt == FEED_STIX ? parse_stix(rd, root) : parse_misp(rd, root);
out:
	json_object_put(root);
	json_tokener_free(tok);
	return r;
}

/* Text is a MalwareBazaar export when its header comment names first_seen_utc or its first
 * data line starts with a quote; anything else is a hash list (and fails as one). */
static enum feed_format detect_text(const char *b, size_t len)
{
	size_t pos = 0;
	while (pos < len) {
		const char *nl = memchr(b + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - b) : len, i = pos;
		while (i < end && is_space(b[i]))
			i++;
		if (i < end && b[i] == '#') {
			if (memmem(b + i, end - i, "\"first_seen_utc\"", 16))
				return FEED_CSV;
		} else if (i < end) {
			return b[i] == '"' ? FEED_CSV : FEED_PLAIN;
		}
		pos = end + 1;
	}
	return FEED_PLAIN;
}

int feed_parse(const char *buf, size_t len, enum feed_format fmt, feed_cb cb, void *ctx,
	       struct feed_stats *st, struct feed_error *err, enum feed_format *detected)
{
	struct reader rd = {.buf = buf, .len = len, .cb = cb, .ctx = ctx, .st = st, .err = err};
	enum feed_format used = fmt;
	int r;
	memset(st, 0, sizeof(*st));
	memset(err, 0, sizeof(*err));
	if (fmt == FEED_AUTO) {
		size_t i = len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3) ? 3 : 0;
		while (i < len && (is_space(buf[i]) || buf[i] == '\n'))
			i++;
		if (i < len && (buf[i] == '{' || buf[i] == '['))
			used = FEED_AUTO;   /* decided by parse_json from the root's shape */
		else
			used = detect_text(buf, len);
	}
	switch (used) {
	case FEED_PLAIN: r = parse_plain(&rd); break;
	case FEED_CSV: r = parse_csv(&rd); break;
	default: r = parse_json(&rd, used, &used); break;
	}
	if (detected)
		*detected = used;
	return r;
}

/* ---------------------------------------------------------------- import */

struct import_ctx {
	struct ioc_store *s;
	const char *source;
	struct feed_import *res;
};

static int import_one(void *ctx, const struct ioc_record *rec)
{
	struct import_ctx *ic = ctx;
	int r = ioc_put(ic->s, rec, ic->source);
	if (r == IOC_PUT_NEW)
		ic->res->added++;
	else if (r == IOC_PUT_UPDATED)
		ic->res->updated++;
	return r < 0 ? r : 0;
}

int feed_import_buf(struct ioc_store *s, const char *buf, size_t len, enum feed_format fmt,
		    const char *source, struct feed_import *res, struct feed_error *err)
{
	struct import_ctx ic = {.s = s, .source = source ? source : "unknown", .res = res};
	memset(res, 0, sizeof(*res));
	memset(err, 0, sizeof(*err));
	int r = ioc_begin(s);
	if (r < 0) {
		snprintf(err->msg, sizeof(err->msg), "store: %s", strerror(-r));
		return r;
	}
	r = feed_parse(buf, len, fmt, import_one, &ic, &res->stats, err, &res->format);
	if (r < 0) {
		ioc_rollback(s);
		res->added = res->updated = 0;
		return r;
	}
	if ((r = ioc_commit(s)) < 0) {
		snprintf(err->msg, sizeof(err->msg), "store: commit: %s", strerror(-r));
		res->added = res->updated = 0;
	}
	return r;
}

static int read_all(int fd, char **out, size_t *outlen)
{
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (len == cap) {
			if (cap >= FEED_MAX_BYTES) {
				free(buf);
				return -EFBIG;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = -errno;
			free(buf);
			return e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*out = buf;
	*outlen = len;
	return 0;
}

int feed_import_file(struct ioc_store *s, const char *path, enum feed_format fmt,
		     const char *source, struct feed_import *res, struct feed_error *err)
{
	int r, fd = -1;
	char *buf = NULL;
	size_t len = 0;
	struct stat sb;
	memset(res, 0, sizeof(*res));
	memset(err, 0, sizeof(*err));
	bool stdin_ = !strcmp(path, "-");
	if (!source) {
		const char *slash = strrchr(path, '/');
		source = stdin_ ? "stdin" : slash ? slash + 1 : path;
	}
	fd = stdin_ ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		goto fail;
	}
	/* refuse devices and fifos named by mistake: reading them may never end */
	if (fstat(fd, &sb) < 0) {
		r = -errno;
		goto fail;
	}
	if (!stdin_ && !S_ISREG(sb.st_mode)) {
		r = -EINVAL;
		snprintf(err->msg, sizeof(err->msg), "not a regular file");
		goto out;
	}
	if (!stdin_ && (uint64_t)sb.st_size > FEED_MAX_BYTES) {
		r = -EFBIG;
		goto fail;
	}
	if ((r = read_all(fd, &buf, &len)) < 0)
		goto fail;
	r = feed_import_buf(s, buf, len, fmt, source, res, err);
	goto out;
fail:
	snprintf(err->msg, sizeof(err->msg), "%s", strerror(-r));
out:
	if (fd > STDIN_FILENO)
		close(fd);
	free(buf);
	return r;
}

void feed_error_format(const struct feed_error *e, const char *file, char *out, size_t n)
{
	if (e->where[0])
		snprintf(out, n, "%s: %s: %s", file, e->where, e->msg);
	else if (e->line)
		snprintf(out, n, "%s:%zu: %s", file, e->line, e->msg);
	else
		snprintf(out, n, "%s: %s", file, e->msg);
}
