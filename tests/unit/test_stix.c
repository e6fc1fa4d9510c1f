/* test_stix.c: the exported bundle is valid STIX 2.1 as far as a reader can check (ids,
 * versions, timestamps, references that resolve), and ward's own feed reader takes the
 * executable's hashes back into the store. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "prevent/feed.h"
#include "prevent/ioc.h"
#include "prevent/stix.h"
#include "t.h"

#define EXE256 "54fdfdc90c5355916a437e15baf284d93186bf5eab2fe0530d2f4b76c1d4eebe"
#define EXE5 "B993EB3B203792DCB672BF91AF7BA3DA"   /* upper case on purpose */
#define EXE1 "99af282c5f9a0e51535f7cdbaa17782a3b346800"
#define NOTE256 "bcb4106b62e96078e37ca692dfc2fe8b33b02132f487b919113de115eb4d31a9"

static const char *const exts[] = {".lockbit", ".enc"};
static const char *const notes[] = {"README_RESTORE.txt", "HOW \"TO\" DECRYPT.html"};

static struct stix_incident incident(void)
{
	struct stix_incident inc = {
		.id = "inc-20261125-0001",
		.first_seen = {1764070262, 123456789},
		.last_seen = {1764070290, 5000000},
		.host = "files01",
		.exe_path = "/tmp/.x/locker\xff.bin",   /* invalid UTF-8 must still give valid JSON */
		.exe_sha256 = EXE256, .exe_md5 = EXE5, .exe_sha1 = EXE1,
		.extensions = exts, .n_extensions = 2,
		.note_names = notes, .n_note_names = 2,
		.note_sha256 = NOTE256,
		.files_touched = 1234,
		.confidence = 95,
	};
	return inc;
}

static struct json_object *parse(const struct jsonw *w)
{
	struct json_tokener *tok = json_tokener_new();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	struct json_object *o = json_tokener_parse_ex(tok, w->buf, (int)w->len);
	if (json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

static const char *str(struct json_object *o, const char *key)
{
	struct json_object *v;
	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v) : NULL;
}

/* "<type>--xxxxxxxx-xxxx-Vxxx-Nxxx-xxxxxxxxxxxx" with version V and an RFC 4122 variant. */
static bool valid_id(const char *id, const char *type, char version)
{
	size_t tl = strlen(type);
	if (!id || strncmp(id, type, tl) || strncmp(id + tl, "--", 2) || strlen(id) != tl + 38)
		return false;
	const char *u = id + tl + 2;
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash != (u[i] == '-'))
			return false;
		if (!dash && !strchr("0123456789abcdef", u[i]))
			return false;
	}
	return u[14] == version && strchr("89ab", u[19]);
}

/* STIX timestamps: YYYY-MM-DDTHH:MM:SS[.s+]Z */
static bool valid_ts(const char *t)
{
	if (!t || strlen(t) < 20)
		return false;
	const char *shape = "dddd-dd-ddTdd:dd:dd";
	for (int i = 0; shape[i]; i++)
		if (shape[i] == 'd' ? !(t[i] >= '0' && t[i] <= '9') : t[i] != shape[i])
			return false;
	size_t n = strlen(t);
	return t[n - 1] == 'Z';
}

static struct json_object *find(struct json_object *objs, const char *type, size_t nth)
{
	for (size_t i = 0; i < json_object_array_length(objs); i++) {
		struct json_object *o = json_object_array_get_idx(objs, i);
		const char *t = str(o, "type");
		if (t && !strcmp(t, type) && nth-- == 0)
			return o;
	}
	return NULL;
}

static bool has_id(struct json_object *objs, const char *id)
{
	for (size_t i = 0; i < json_object_array_length(objs); i++)
		if (id && !strcmp(str(json_object_array_get_idx(objs, i), "id") ?: "", id))
			return true;
	return false;
}

static void check_refs(struct json_object *objs, struct json_object *o, size_t *bad)
{
	json_object_object_foreach(o, key, val)
	{
		size_t kl = strlen(key);
		if (kl > 4 && !strcmp(key + kl - 4, "_ref"))
			*bad += !has_id(objs, json_object_get_string(val));
		if (kl > 5 && !strcmp(key + kl - 5, "_refs"))
			for (size_t i = 0; i < json_object_array_length(val); i++)
				*bad += !has_id(objs, json_object_get_string(
							      json_object_array_get_idx(val, i)));
	}
}

static void test_bundle(void)
{
	struct stix_incident inc = incident();
	struct jsonw w;
	jsonw_init(&w);
	T_CHECK(stix_export(&inc, &w) == 0, "export");
	struct json_object *b = parse(&w);
	T_CHECK(b != NULL, "bundle is strict, UTF-8 valid JSON");
	if (!b) {
		jsonw_free(&w);
		return;
	}
	T_CHECK(!strcmp(str(b, "type") ?: "", "bundle"), "type bundle");
	T_CHECK(valid_id(str(b, "id"), "bundle", '4'), "bundle id %s", str(b, "id"));
	struct json_object *objs = NULL;
	T_CHECK(json_object_object_get_ex(b, "objects", &objs) &&
			json_object_is_type(objs, json_type_array),
		"objects");

	size_t bad_refs = 0;
	for (size_t i = 0; i < json_object_array_length(objs); i++) {
		struct json_object *o = json_object_array_get_idx(objs, i);
		const char *type = str(o, "type");
		bool sco = type && !strcmp(type, "file");
		T_CHECK(type && valid_id(str(o, "id"), type, sco ? '5' : '4'), "id of %s: %s", type,
			str(o, "id"));
		T_CHECK(!strcmp(str(o, "spec_version") ?: "", "2.1"), "%s spec_version", type);
		if (!sco)
			T_CHECK(valid_ts(str(o, "created")) && valid_ts(str(o, "modified")),
				"%s created/modified", type);
		check_refs(objs, o, &bad_refs);
	}
	T_CHECK(bad_refs == 0, "%zu references do not resolve", bad_refs);

	char first[32], last[32];
	stix_time(first, &inc.first_seen);
	stix_time(last, &inc.last_seen);
	T_CHECK(!strcmp(first, "2025-11-25T11:31:02.123Z"), "ms timestamp %s", first);

	struct json_object *ind = find(objs, "indicator", 0), *v;
	const char *pat = str(ind, "pattern");
	T_CHECK(pat && strstr(pat, "file:hashes.'SHA-256' = '" EXE256 "'") &&
			strstr(pat, "file:hashes.MD5 = 'b993eb3b203792dcb672bf91af7ba3da'") &&
			strstr(pat, " OR "),
		"pattern %s", pat);
	T_CHECK(!strcmp(str(ind, "pattern_type") ?: "", "stix"), "pattern_type");
	T_CHECK(!strcmp(str(ind, "valid_from") ?: "", first), "valid_from");
	T_CHECK(json_object_object_get_ex(ind, "indicator_types", &v) &&
			!strcmp(json_object_get_string(json_object_array_get_idx(v, 0)),
				"malicious-activity"),
		"indicator_types");
	T_CHECK(json_object_object_get_ex(ind, "confidence", &v) && json_object_get_int(v) == 95,
		"confidence");

	struct json_object *mal = find(objs, "malware", 0);
	T_CHECK(mal && json_object_object_get_ex(mal, "is_family", &v) &&
			!json_object_get_boolean(v),
		"malware is_family false");
	struct json_object *s = find(objs, "sighting", 0);
	T_CHECK(s && json_object_object_get_ex(s, "count", &v) && json_object_get_int(v) == 1,
		"sighting count");
	T_CHECK(s && !strcmp(str(s, "first_seen") ?: "", first) &&
			!strcmp(str(s, "last_seen") ?: "", last),
		"sighting times");
	T_CHECK(s && json_object_object_get_ex(s, "x_ward_files_touched", &v) &&
			json_object_get_int64(v) == 1234,
		"files touched");
	struct json_object *n = find(objs, "note", 0);
	const char *content = str(n, "content");
	T_CHECK(content && strstr(content, ".lockbit, .enc") &&
			strstr(content, "README_RESTORE.txt") && strstr(content, "1234 files"),
		"note content %s", content);
	struct json_object *od = find(objs, "observed-data", 0);
	T_CHECK(od && json_object_object_get_ex(od, "object_refs", &v) &&
			json_object_array_length(v) == 2,
		"observed-data refers to both files");

	/* file ids are deterministic, domain object ids are not */
	struct jsonw w2;
	jsonw_init(&w2);
	T_CHECK(stix_export(&inc, &w2) == 0, "export again");
	struct json_object *b2 = parse(&w2), *objs2 = NULL;
	json_object_object_get_ex(b2, "objects", &objs2);
	T_CHECK(!strcmp(str(find(objs, "file", 0), "id"), str(find(objs2, "file", 0), "id") ?: ""),
		"same file, same id");
	T_CHECK(strcmp(str(ind, "id"), str(find(objs2, "indicator", 0), "id") ?: ""),
		"new indicator id");
	json_object_put(b2);
	jsonw_free(&w2);
	json_object_put(b);
	jsonw_free(&w);
}

static void test_invalid(void)
{
	static const struct { const char *what; const char *sha256, *md5, *note; int rc; } rows[] = {
		{"no hash at all", NULL, NULL, NULL, -EINVAL},
		{"short sha256", "abc", NULL, NULL, -EINVAL},
		{"non-hex md5", NULL, "zz" "3eb3b203792dcb672bf91af7ba3da0", NULL, -EINVAL},
		{"note hash only", NULL, NULL, NOTE256, 0},
		{"md5 only", NULL, EXE5, NULL, 0},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct stix_incident inc = {.exe_path = "/x", .exe_sha256 = rows[i].sha256,
					    .exe_md5 = rows[i].md5, .note_sha256 = rows[i].note,
					    .confidence = -1};
		struct jsonw w;
		jsonw_init(&w);
		int rc = stix_export(&inc, &w);
		T_CHECK(rc == rows[i].rc, "%s: %d", rows[i].what, rc);
		if (rc == 0) {
			struct json_object *b = parse(&w);
			T_CHECK(b != NULL, "%s: valid JSON", rows[i].what);
			json_object_put(b);
		}
		jsonw_free(&w);
	}
	/* last before first (clock step): last_seen is clamped, never before first_seen */
	struct stix_incident inc = incident();
	inc.last_seen.tv_sec = inc.first_seen.tv_sec - 100;
	struct jsonw w;
	jsonw_init(&w);
	T_CHECK(stix_export(&inc, &w) == 0, "export");
	struct json_object *b = parse(&w), *objs = NULL;
	json_object_object_get_ex(b, "objects", &objs);
	struct json_object *s = find(objs, "sighting", 0);
	T_CHECK(s && !strcmp(str(s, "first_seen"), str(s, "last_seen")), "clamped last_seen");
	json_object_put(b);
	jsonw_free(&w);
}

static void test_round_trip(void)
{
	char dir[] = "/tmp/ioc/test_stix.XXXXXX";
	struct ioc_store *s = NULL;
	struct feed_import res;
	struct feed_error err;
	struct ioc_match m;
	uint8_t d[32];
	mkdir("/tmp/ioc", 0700);
	T_CHECK(mkdtemp(dir) && ioc_open(&s, dir) == 0, "open store");
	if (!s)
		return;
	struct stix_incident inc = incident();
	struct jsonw w;
	jsonw_init(&w);
	T_CHECK(stix_export(&inc, &w) == 0, "export");
	T_CHECK(feed_import_buf(s, w.buf, w.len, FEED_AUTO, "ward-export", &res, &err) == 0,
		"import own bundle: %s %s", err.where, err.msg);
	T_CHECK(res.format == FEED_STIX && res.stats.skipped == 0, "read as STIX, nothing skipped");
	T_CHECK(res.added == 4, "exe sha256+sha1+md5 and note sha256: added %zu", res.added);

	ioc_hex_decode(EXE256, 64, d, 32);
	T_CHECK(ioc_lookup_sha256(s, d, &m) == 1, "executable sha256 in the store");
	T_CHECK(m.first_seen == inc.first_seen.tv_sec && m.confidence == 95,
		"first-seen %lld confidence %d", (long long)m.first_seen, m.confidence);
	ioc_hex_decode(EXE5, 32, d, 16);
	T_CHECK(ioc_lookup_md5(s, d, NULL) == 1, "executable md5 in the store");
	ioc_hex_decode(EXE1, 40, d, 20);
	T_CHECK(ioc_lookup_sha1(s, d, NULL) == 1, "executable sha1 in the store");
	ioc_hex_decode(NOTE256, 64, d, 32);
	T_CHECK(ioc_lookup_sha256(s, d, NULL) == 1, "note sha256 in the store");

	T_CHECK(feed_import_buf(s, w.buf, w.len, FEED_AUTO, "ward-export", &res, &err) == 0 &&
			res.added == 0 && res.updated == 0,
		"re-import is a no-op");
	jsonw_free(&w);
	ioc_close(s);
	static const char *const files[] = {"ioc.db", "ioc.db-wal", "ioc.db-shm"};
	char p[128];
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		unlink(p);
	}
	rmdir(dir);
}

int main(void)
{
	ward_log_level = LOG_CRIT;
	test_bundle();
	test_invalid();
	test_round_trip();
	return T_DONE("stix");
}
