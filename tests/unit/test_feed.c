/* test_feed.c: the feed readers as data: one row per input, with what it must yield or
 * where it must fail. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "prevent/feed.h"
#include "t.h"

#define A256 "f24ba2577e338654d6abf5d702e86cde761ed280ffc5ceb11e54525536bc008a"
#define A5 "61da6393cea00fbb94dc1cdccf9e74db"
#define A1 "fbda16541536b835c5be1ca007310aed6b96b054"
#define B256 "d0d9173c66331ba3238e0435ecdf75237b3ec7201cc266bfb4c4796de6f634c3"
#define B5 "fbc207a2500544a51899b338c9a8cbe4"
#define B1 "630b8105bba9d187b0de60b7168198021cadb1b9"
#define C256 "54fdfdc90c5355916a437e15baf284d93186bf5eab2fe0530d2f4b76c1d4eebe"
#define C5 "b993eb3b203792dcb672bf91af7ba3da"

struct got {
	size_t n;
	struct {
		enum ioc_kind kind;
		char hex[65];
		int64_t first_seen;
		int confidence;
		char name[IOC_TEXT_MAX], tags[IOC_TEXT_MAX];
	} r[32];
};

static int collect(void *ctx, const struct ioc_record *rec)
{
	struct got *g = ctx;
	if (g->n == 32)
		return -ENOSPC;
	g->r[g->n].kind = rec->kind;
	ioc_hex_encode(rec->digest, ioc_kind_len(rec->kind), g->r[g->n].hex);
	g->r[g->n].first_seen = rec->first_seen;
	g->r[g->n].confidence = rec->confidence;
	snprintf(g->r[g->n].name, IOC_TEXT_MAX, "%s", rec->name ? rec->name : "");
	snprintf(g->r[g->n].tags, IOC_TEXT_MAX, "%s", rec->tags ? rec->tags : "");
	g->n++;
	return 0;
}

static const char *has_hex(const struct got *g, const char *hex)
{
	for (size_t i = 0; i < g->n; i++)
		if (!strcmp(g->r[i].hex, hex))
			return g->r[i].name;
	return NULL;
}

/* An independent oracle for feed times: the C library's own UTC conversion. */
static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
			.tm_min = mi, .tm_sec = s};
	return (int64_t)timegm(&tm);
}

#define MB_HEAD                                                                              \
	"################################################################\n"                  \
	"# MalwareBazaar Malware Samples (recent additions)             #\n"                  \
	"# Last updated: 2024-01-15 10:05:03 UTC                        #\n"                  \
	"#                                                              #\n"                  \
	"# Terms Of Use: https://bazaar.abuse.ch/faq/#tos               #\n"                  \
	"################################################################\n"                  \
	"#\n"                                                                                 \
	"# \"first_seen_utc\",\"sha256_hash\",\"md5_hash\",\"sha1_hash\",\"reporter\","       \
	"\"file_name\",\"file_type_guess\",\"mime_type\",\"signature\",\"clamav\","           \
	"\"vtpercent\",\"imphash\",\"ssdeep\",\"tlsh\"\n"

#define MB_ROW(t, s256, m5, s1, name, sig)                                                   \
	"\"" t "\", \"" s256 "\", \"" m5 "\", \"" s1 "\", \"abuse_ch\", \"" name "\", "       \
	"\"elf\", \"application/x-executable\", \"" sig "\", \"n/a\", \"n/a\", \"n/a\", "     \
	"\"384:abc\", \"T1ABC\"\r\n"

static const struct row {
	const char *what;
	enum feed_format fmt;       /* what the caller asks for */
	const char *in;
	int rc;                     /* 0 or -EBADMSG */
	enum feed_format detected;  /* checked when rc == 0 */
	size_t hashes, skipped;
	size_t line;                /* expected error line, or 0 */
	const char *where;          /* expected error JSON path, or NULL */
	const char *want;           /* a hex digest that must be among the results */
} rows[] = {
	/* plain lists */
	{"plain: comments, blank lines, CRLF, trailing comment", FEED_AUTO,
	 "\xef\xbb\xbf# ward test list\n\n" A256 "\r\n  " A5 "  # Emotet dropper\r\n" A1 "\n\n", 0,
	 FEED_PLAIN, 3, 0, 0, NULL, A5},
	{"plain: uppercase hex", FEED_PLAIN, "F24BA2577E338654D6ABF5D702E86CDE761ED280FFC5CEB11E54525536BC008A\n",
	 0, FEED_PLAIN, 1, 0, 0, NULL, A256},
	{"plain: empty", FEED_AUTO, "", 0, FEED_PLAIN, 0, 0, 0, NULL, NULL},
	{"plain: only comments", FEED_AUTO, "# nothing\n#\n", 0, FEED_PLAIN, 0, 0, 0, NULL, NULL},
	{"plain: bad hex on line 3", FEED_AUTO, A256 "\n# c\n" "zz" A5 "\n", -EBADMSG, 0, 0, 0, 3,
	 NULL, NULL},
	{"plain: 63 digits", FEED_PLAIN, "# x\n" "f24ba2577e338654d6abf5d702e86cde761ed280ffc5ceb11e54525536bc008\n",
	 -EBADMSG, 0, 0, 0, 2, NULL, NULL},
	{"plain: sha256sum output (hash, then file name)", FEED_AUTO, A256 "  evil.exe\n" A5 " *dropper.bin\n", 0,
	 FEED_PLAIN, 2, 0, 0, NULL, A256},
	{"plain: no final newline", FEED_PLAIN, A5 "\n" B5, 0, FEED_PLAIN, 2, 0, 0, NULL, B5},
	{"plain: NUL inside a hash", FEED_PLAIN, "61da6393cea00fbb\0" "4dc1cdccf9e74db\n", -EBADMSG, 0, 0,
	 0, 1, NULL, NULL},

	/* MalwareBazaar CSV */
	{"csv: export with header", FEED_AUTO,
	 MB_HEAD MB_ROW("2024-01-15 10:04:47", A256, A5, A1, "inv, \"\"Q1\"\".exe", "LockBit")
		 MB_ROW("2024-01-15 09:58:02", B256, "n/a", "n/a", "b.arm6", "n/a")
			 "# Number of entries: 2\n",
	 0, FEED_CSV, 4, 0, 0, NULL, A1},
	{"csv: no header uses the export layout", FEED_CSV,
	 MB_ROW("2024-01-15 10:04:47", A256, A5, A1, "x", "y"), 0, FEED_CSV, 3, 0, 0, NULL, A5},
	{"csv: row of n/a hashes is skipped", FEED_CSV,
	 MB_HEAD MB_ROW("2024-01-15 10:04:47", "n/a", "n/a", "n/a", "x", "y"), 0, FEED_CSV, 0, 1,
	 0, NULL, NULL},
	{"csv: wrong field count", FEED_AUTO,
	 MB_HEAD MB_ROW("2024-01-15 10:04:47", A256, A5, A1, "x", "y") "\"2024-01-15 10:00:00\", \"" B256 "\"\n",
	 -EBADMSG, 0, 0, 0, 10, NULL, NULL},
	{"csv: bad sha256", FEED_AUTO, MB_HEAD MB_ROW("2024-01-15 10:04:47", A5, A5, A1, "x", "y"),
	 -EBADMSG, 0, 0, 0, 9, NULL, NULL},
	{"csv: bad time", FEED_AUTO, MB_HEAD MB_ROW("2024-13-15 10:04:47", A256, A5, A1, "x", "y"),
	 -EBADMSG, 0, 0, 0, 9, NULL, NULL},
	{"csv: unterminated quote", FEED_AUTO, MB_HEAD "\"2024-01-15 10:04:47\", \"" A256 "\n\n", -EBADMSG,
	 0, 0, 0, 9, NULL, NULL},

	/* STIX 2.1 */
	{"stix: hashes, OR, IN, SCO, skipped kinds", FEED_AUTO,
	 "{\"type\":\"bundle\",\"id\":\"bundle--5d0092c5-5f74-4287-9642-33f4c354e56d\",\"objects\":["
	 "{\"type\":\"identity\",\"spec_version\":\"2.1\",\"id\":\"identity--1\",\"name\":\"x\"},"
	 "{\"type\":\"indicator\",\"spec_version\":\"2.1\",\"id\":\"indicator--a\","
	 "\"created\":\"2024-03-01T08:00:00.000Z\",\"modified\":\"2024-03-01T08:00:00.000Z\","
	 "\"valid_from\":\"2024-02-28T23:30:00Z\",\"confidence\":85,\"name\":\"LockBit payload\","
	 "\"indicator_types\":[\"malicious-activity\"],\"pattern_type\":\"stix\","
	 "\"pattern\":\"[file:hashes.'SHA-256' = '" A256 "']\"},"
	 "{\"type\":\"indicator\",\"spec_version\":\"2.1\",\"id\":\"indicator--b\","
	 "\"created\":\"2024-03-01T08:00:00Z\",\"modified\":\"2024-03-01T08:00:00Z\","
	 "\"valid_from\":\"2024-03-01T08:00:00Z\",\"pattern_type\":\"stix\","
	 "\"pattern\":\"([file:hashes.MD5 = '" B5 "' OR file:hashes.'SHA-1' = '" B1 "'] AND "
	 "[file:name = 'its.exe']) WITHIN 300 SECONDS\"},"
	 "{\"type\":\"indicator\",\"id\":\"indicator--c\",\"created\":\"2024-03-01T08:00:00Z\","
	 "\"pattern\":\"[file:hashes.SHA256 IN ('" B256 "', '" C256 "') AND file:size > 10]\"},"
	 "{\"type\":\"indicator\",\"id\":\"indicator--d\",\"pattern_type\":\"stix\","
	 "\"pattern\":\"[ipv4-addr:value = '198.51.100.7' OR url:value = 'http://x/']\","
	 "\"valid_from\":\"2024-03-01T08:00:00Z\"},"
	 "{\"type\":\"indicator\",\"id\":\"indicator--e\",\"pattern_type\":\"yara\","
	 "\"pattern\":\"rule x { condition: true }\",\"valid_from\":\"2024-03-01T08:00:00Z\"},"
	 "{\"type\":\"indicator\",\"id\":\"indicator--f\",\"pattern_type\":\"stix\","
	 "\"pattern\":\"[file:hashes.MD5 NOT = '" C5 "']\"},"
	 "{\"type\":\"file\",\"spec_version\":\"2.1\",\"id\":\"file--1\",\"name\":\"note.txt\","
	 "\"hashes\":{\"SHA-256\":\"" C256 "\",\"SHA-512\":\"00\"}}]}\n",
	 0, FEED_STIX, 6, 3, 0, NULL, B1},
	{"stix: bundle without objects", FEED_STIX, "{\"type\":\"bundle\",\"id\":\"bundle--1\"}", 0,
	 FEED_STIX, 0, 0, 0, NULL, NULL},
	{"stix: unterminated string in pattern", FEED_AUTO,
	 "{\"type\":\"bundle\",\"objects\":[{\"type\":\"identity\"},{\"type\":\"indicator\","
	 "\"pattern_type\":\"stix\",\"pattern\":\"[file:hashes.MD5 = '" A5 "]\"}]}",
	 -EBADMSG, 0, 0, 0, 0, "$.objects[1].pattern", NULL},
	{"stix: hash of the wrong length", FEED_AUTO,
	 "{\"type\":\"bundle\",\"objects\":[{\"type\":\"indicator\",\"pattern_type\":\"stix\","
	 "\"pattern\":\"[file:hashes.'SHA-256' = '" A5 "']\"}]}",
	 -EBADMSG, 0, 0, 0, 0, "$.objects[0].pattern", NULL},
	{"stix: confidence out of range", FEED_AUTO,
	 "{\"type\":\"bundle\",\"objects\":[{\"type\":\"indicator\",\"pattern_type\":\"stix\","
	 "\"confidence\":150,\"pattern\":\"[file:hashes.MD5 = '" A5 "']\"}]}",
	 -EBADMSG, 0, 0, 0, 0, "$.objects[0].confidence", NULL},
	{"stix: bad timestamp", FEED_AUTO,
	 "{\"type\":\"bundle\",\"objects\":[{\"type\":\"indicator\",\"pattern_type\":\"stix\","
	 "\"valid_from\":\"yesterday\",\"pattern\":\"[file:hashes.MD5 = '" A5 "']\"}]}",
	 -EBADMSG, 0, 0, 0, 0, "$.objects[0].valid_from", NULL},
	{"stix: unknown word in pattern", FEED_STIX,
	 "{\"type\":\"bundle\",\"objects\":[{\"type\":\"indicator\",\"pattern\":\"[file:hashes.MD5 "
	 "EQUALS '" A5 "']\"}]}",
	 -EBADMSG, 0, 0, 0, 0, "$.objects[0].pattern", NULL},
	{"stix: truncated JSON", FEED_AUTO, "{\"type\":\"bundle\",\n\"objects\":[\n{\"type\":", -EBADMSG,
	 0, 0, 0, 3, NULL, NULL},
	{"stix: garbage after the bundle", FEED_AUTO, "{\"type\":\"bundle\"}\n}x", -EBADMSG, 0, 0, 0, 2,
	 NULL, NULL},
	{"stix: forced on a MISP event", FEED_STIX, "{\"Event\":{}}", -EBADMSG, 0, 0, 0, 0, "$.type",
	 NULL},

	/* MISP */
	{"misp: attributes and objects", FEED_AUTO,
	 "{\"Event\":{\"id\":\"42\",\"info\":\"LockBit campaign\",\"date\":\"2024-02-10\","
	 "\"threat_level_id\":\"1\",\"Tag\":[{\"name\":\"tlp:white\"},{\"name\":\"ransomware\"}],"
	 "\"Attribute\":["
	 "{\"type\":\"sha256\",\"category\":\"Payload delivery\",\"to_ids\":true,\"value\":\"" A256 "\"},"
	 "{\"type\":\"md5\",\"to_ids\":false,\"value\":\"" A5 "\"},"
	 "{\"type\":\"ip-dst\",\"to_ids\":true,\"value\":\"198.51.100.7\"},"
	 "{\"type\":\"filename|sha1\",\"to_ids\":\"1\",\"value\":\"a|b.exe|" B1 "\","
	 "\"first_seen\":\"2024-02-01T12:00:00.000000+00:00\"}],"
	 "\"Object\":[{\"name\":\"file\",\"Attribute\":["
	 "{\"type\":\"malware-sample\",\"to_ids\":true,\"value\":\"locker.bin|" B5 "\"},"
	 "{\"type\":\"filename\",\"to_ids\":false,\"value\":\"locker.bin\"}]}]}}",
	 0, FEED_MISP, 3, 3, 0, NULL, B5},
	{"misp: response form with two events", FEED_AUTO,
	 "{\"response\":[{\"Event\":{\"Attribute\":[{\"type\":\"md5\",\"to_ids\":true,\"value\":\"" A5 "\"}]}},"
	 "{\"Event\":{\"Attribute\":[{\"type\":\"sha1\",\"to_ids\":true,\"value\":\"" A1 "\"}]}}]}",
	 0, FEED_MISP, 2, 0, 0, NULL, A1},
	{"misp: md5 attribute holding a sha256", FEED_AUTO,
	 "{\"Event\":{\"Attribute\":[{\"type\":\"md5\",\"to_ids\":true,\"value\":\"" A5 "\"},"
	 "{\"type\":\"md5\",\"to_ids\":true,\"value\":\"" A256 "\"}]}}",
	 -EBADMSG, 0, 0, 0, 0, "$.Event.Attribute[1].value", NULL},
	{"misp: attribute without value", FEED_MISP,
	 "{\"response\":[{\"Event\":{\"Object\":[{\"Attribute\":[{\"type\":\"md5\",\"to_ids\":true}]}]}}]}",
	 -EBADMSG, 0, 0, 0, 0, "$.response[0].Event.Object[0].Attribute[0]", NULL},
	{"misp: filename|md5 without a bar", FEED_MISP,
	 "{\"Event\":{\"Attribute\":[{\"type\":\"filename|md5\",\"to_ids\":true,\"value\":\"" A5 "\"}]}}",
	 -EBADMSG, 0, 0, 0, 0, "$.Event.Attribute[0].value", NULL},
	{"json: neither STIX nor MISP", FEED_AUTO, "{\"hello\":1}", -EBADMSG, 0, 0, 0, 0, "$", NULL},
};

static const char *row_in(const char *what)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (!strncmp(rows[i].what, what, strlen(what)))
			return rows[i].in;
	return "";
}

static void test_rows(void)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *c = &rows[i];
		struct got g = {0};
		struct feed_stats st;
		struct feed_error err;
		enum feed_format used = FEED_AUTO;
		/* the plain NUL row needs its real length: the others are C strings */
		size_t len = strstr(c->what, "NUL") ? 33 : strlen(c->in);
		int rc = feed_parse(c->in, len, c->fmt, collect, &g, &st, &err, &used);
		T_CHECK(rc == c->rc, "%s: rc %d (%s %s)", c->what, rc, err.where, err.msg);
		if (rc == 0) {
			T_CHECK(used == c->detected, "%s: detected %s", c->what, feed_format_name(used));
			T_CHECK(st.hashes == c->hashes && g.n == c->hashes, "%s: %zu hashes", c->what,
				st.hashes);
			T_CHECK(st.skipped == c->skipped, "%s: %zu skipped (%s)", c->what, st.skipped,
				st.skipped_kinds);
			T_CHECK(!c->want || has_hex(&g, c->want), "%s: %s missing", c->what, c->want);
		} else {
			T_CHECK(err.msg[0], "%s: no message", c->what);
			T_CHECK(!c->line || err.line == c->line, "%s: line %zu, want %zu (%s)", c->what,
				err.line, c->line, err.msg);
			T_CHECK(!c->where || !strcmp(err.where, c->where), "%s: where '%s' (%s)", c->what,
				err.where, err.msg);
		}
	}
}

/* Field-level checks on the readers' richer outputs. */
static void test_details(void)
{
	struct got g = {0};
	struct feed_stats st;
	struct feed_error err;

	const char *plain = A5 "  # Emotet dropper  \n";
	T_CHECK(feed_parse(plain, strlen(plain), FEED_AUTO, collect, &g, &st, &err, NULL) == 0,
		"plain");
	T_CHECK(g.n == 1 && !strcmp(g.r[0].name, "Emotet dropper") && g.r[0].kind == IOC_MD5 &&
			g.r[0].first_seen == 0 && g.r[0].confidence == -1,
		"plain record: '%s'", g.r[0].name);

	g.n = 0;
	const char *csv = MB_HEAD MB_ROW("2024-01-15 10:04:47", A256, A5, A1, "inv, \"\"Q1\"\".exe",
					 "LockBit");
	T_CHECK(feed_parse(csv, strlen(csv), FEED_AUTO, collect, &g, &st, &err, NULL) == 0, "csv %s",
		err.msg);
	T_CHECK(g.n == 3, "csv count %zu", g.n);
	for (size_t i = 0; i < g.n; i++) {
		T_CHECK(g.r[i].first_seen == utc(2024, 1, 15, 10, 4, 47), "csv time %lld",
			(long long)g.r[i].first_seen);
		T_CHECK(!strcmp(g.r[i].name, "inv, \"Q1\".exe"), "csv name '%s'", g.r[i].name);
		T_CHECK(!strcmp(g.r[i].tags, "LockBit"), "csv tags '%s'", g.r[i].tags);
	}

	g.n = 0;
	const char *stix = row_in("stix: hashes");
	T_CHECK(feed_parse(stix, strlen(stix), FEED_AUTO, collect, &g, &st, &err, NULL) == 0, "stix");
	for (size_t i = 0; i < g.n; i++) {
		if (!strcmp(g.r[i].hex, A256)) {
			/* the earlier of valid_from and created */
			T_CHECK(g.r[i].first_seen == utc(2024, 2, 28, 23, 30, 0), "stix first_seen");
			T_CHECK(g.r[i].confidence == 85, "stix confidence %d", g.r[i].confidence);
			T_CHECK(!strcmp(g.r[i].name, "LockBit payload"), "stix name");
			T_CHECK(!strcmp(g.r[i].tags, "malicious-activity"), "stix tags '%s'", g.r[i].tags);
		}
		if (!strcmp(g.r[i].hex, C256) && g.r[i].name[0])
			T_CHECK(!strcmp(g.r[i].name, "note.txt"), "stix SCO name");
	}
	T_CHECK(!has_hex(&g, C5), "a negated comparison is not an indicator");
	T_CHECK(strstr(st.skipped_kinds, "ipv4-addr") && strstr(st.skipped_kinds, "yara"),
		"skip note '%s'", st.skipped_kinds);

	g.n = 0;
	const char *misp = row_in("misp: attributes");
	T_CHECK(feed_parse(misp, strlen(misp), FEED_AUTO, collect, &g, &st, &err, NULL) == 0,
		"misp %s", err.msg);
	T_CHECK(has_hex(&g, B1) && !strcmp(has_hex(&g, B1), "a|b.exe"), "misp filename|sha1 name");
	T_CHECK(has_hex(&g, B5) && !strcmp(has_hex(&g, B5), "locker.bin"), "malware-sample name");
	T_CHECK(!has_hex(&g, A5), "to_ids false is not imported");
	for (size_t i = 0; i < g.n; i++) {
		int64_t want = !strcmp(g.r[i].hex, B1) ? utc(2024, 2, 1, 12, 0, 0)
						       : utc(2024, 2, 10, 0, 0, 0);
		T_CHECK(g.r[i].first_seen == want, "misp first_seen %s", g.r[i].hex);
		T_CHECK(g.r[i].confidence == 90, "misp threat level 1 confidence %d",
			g.r[i].confidence);
		T_CHECK(!strcmp(g.r[i].tags, "tlp:white,ransomware"), "misp tags '%s'", g.r[i].tags);
	}
	T_CHECK(strstr(st.skipped_kinds, "ip-dst") && strstr(st.skipped_kinds, "to_ids false"),
		"misp skip note '%s'", st.skipped_kinds);
}

static void test_error_format(void)
{
	struct feed_error e = {.line = 12};
	char out[512];
	snprintf(e.msg, sizeof(e.msg), "bad");
	feed_error_format(&e, "feed.txt", out, sizeof(out));
	T_CHECK(!strcmp(out, "feed.txt:12: bad"), "%s", out);
	snprintf(e.where, sizeof(e.where), "$.objects[3].pattern");
	feed_error_format(&e, "b.json", out, sizeof(out));
	T_CHECK(!strcmp(out, "b.json: $.objects[3].pattern: bad"), "%s", out);
	enum feed_format f;
	T_CHECK(feed_format_parse("malwarebazaar", &f) == 0 && f == FEED_CSV, "format name");
	T_CHECK(feed_format_parse("xml", &f) == -EINVAL, "unknown format name");
}

int main(void)
{
	test_rows();
	test_details();
	test_error_format();
	return T_DONE("feed");
}
