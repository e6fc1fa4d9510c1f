/* stix.c: STIX 2.1 bundle for one incident. Domain objects (indicator, malware, sighting,
 * note, ...) get random v4 ids; file objects get the deterministic v5 ids STIX 2.1 asks of
 * cyber-observables (§2.9), so the same executable reported by two hosts is one object. */
#include "prevent/stix.h"

#include <errno.h>
#include <stdarg.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define ID_LEN 80   /* "observed-data--" + 36 and a NUL, with room */

/* Text for descriptions: cutting a very long path or list short is the intended outcome. */
__attribute__((format(printf, 3, 4)))
static void textf(char *out, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out, n, fmt, ap);
	va_end(ap);
}

void stix_time(char out[32], const struct timespec *ts)
{
	struct tm tm;
	time_t t = ts->tv_sec;
	gmtime_r(&t, &tm);
	textf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (ts->tv_nsec / 1000000) % 1000);
}

static void uuid_fmt(const uint8_t u[16], const char *type, char out[ID_LEN])
{
	snprintf(out, ID_LEN,
		 "%s--%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", type,
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		 u[13], u[14], u[15]);
}

static int uuid_v4(const char *type, char out[ID_LEN])
{
	uint8_t u[16];
	size_t got = 0;
	while (got < sizeof(u)) {
		ssize_t n = getrandom(u + got, sizeof(u) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		got += (size_t)n;
	}
	u[6] = (u[6] & 0x0f) | 0x40;
	u[8] = (u[8] & 0x3f) | 0x80;
	uuid_fmt(u, type, out);
	return 0;
}

/* RFC 4122 v5 in the STIX namespace over the canonical JSON of the object's contributing
 * properties (for a file: one hash, preferring MD5, SHA-1, SHA-256, and the name). */
static int uuid_v5(const char *type, const char *canon, size_t n, char out[ID_LEN])
{
	static const uint8_t ns[16] = {0x00, 0xab, 0xed, 0xb4, 0xaa, 0x42, 0x46, 0x6c,
				       0x9c, 0x01, 0xfe, 0xd2, 0x33, 0x15, 0xa9, 0xb7};
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	int r = -ENOMEM;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (c && EVP_DigestInit_ex(c, EVP_sha1(), NULL) && EVP_DigestUpdate(c, ns, sizeof(ns)) &&
	    EVP_DigestUpdate(c, canon, n) && EVP_DigestFinal_ex(c, md, &mdlen) && mdlen >= 16) {
		md[6] = (md[6] & 0x0f) | 0x50;
		md[8] = (md[8] & 0x3f) | 0x80;
		uuid_fmt(md, type, out);
		r = 0;
	}
	EVP_MD_CTX_free(c);
	return r;
}

/* Lowercases a hex digest of exactly len digits into out; false if it is not one. */
static bool norm_hex(const char *in, size_t len, char *out)
{
	if (!in || strlen(in) != len)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (c >= 'A' && c <= 'F')
			c = (char)(c + 32);
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
		out[i] = c;
	}
	out[len] = '\0';
	return true;
}

struct hashes {
	char md5[33], sha1[41], sha256[65];
	bool any;
};

static int take_hashes(const char *md5, const char *sha1, const char *sha256, struct hashes *h)
{
	memset(h, 0, sizeof(*h));
	if ((md5 && !norm_hex(md5, 32, h->md5)) || (sha1 && !norm_hex(sha1, 40, h->sha1)) ||
	    (sha256 && !norm_hex(sha256, 64, h->sha256)))
		return -EINVAL;
	h->any = h->md5[0] || h->sha1[0] || h->sha256[0];
	return 0;
}

static void write_hashes(struct jsonw *w, const struct hashes *h)
{
	jsonw_obj_open(w, "hashes");
	if (h->md5[0])
		jsonw_str(w, "MD5", h->md5);
	if (h->sha1[0])
		jsonw_str(w, "SHA-1", h->sha1);
	if (h->sha256[0])
		jsonw_str(w, "SHA-256", h->sha256);
	jsonw_obj_close(w);
}

static int file_id(const struct hashes *h, const char *name, char out[ID_LEN])
{
	struct jsonw c;
	jsonw_init(&c);
	/* keys in canonical (sorted) order; jsonw writes no whitespace */
	jsonw_obj_open(&c, NULL);
	jsonw_obj_open(&c, "hashes");
	if (h->md5[0])
		jsonw_str(&c, "MD5", h->md5);
	else if (h->sha1[0])
		jsonw_str(&c, "SHA-1", h->sha1);
	else
		jsonw_str(&c, "SHA-256", h->sha256);
	jsonw_obj_close(&c);
	if (name && *name)
		jsonw_str(&c, "name", name);
	jsonw_obj_close(&c);
	int r = c.oom ? -ENOMEM : uuid_v5("file", c.buf, c.len, out);
	jsonw_free(&c);
	return r;
}

static void pattern_of(const struct hashes *h, char *out, size_t n)
{
	size_t used = 0;
	const struct { const char *key, *val; } parts[] = {
		{"'SHA-256'", h->sha256}, {"'SHA-1'", h->sha1}, {"MD5", h->md5}};
	used += (size_t)snprintf(out, n, "[");
	for (size_t i = 0; i < 3; i++) {
		if (!parts[i].val[0])
			continue;
		used += (size_t)snprintf(out + used, n - used, "%sfile:hashes.%s = '%s'",
					 used > 1 ? " OR " : "", parts[i].key, parts[i].val);
	}
	snprintf(out + used, n - used, "]");
}

static void sdo_head(struct jsonw *w, const char *type, const char *id, const char *now)
{
	jsonw_obj_open(w, NULL);
	jsonw_str(w, "type", type);
	jsonw_str(w, "spec_version", "2.1");
	jsonw_str(w, "id", id);
	jsonw_str(w, "created", now);
	jsonw_str(w, "modified", now);
}

static void str_array(struct jsonw *w, const char *key, const char *const *v, size_t n)
{
	jsonw_arr_open(w, key);
	for (size_t i = 0; i < n; i++)
		if (v[i])
			jsonw_str(w, NULL, v[i]);
	jsonw_arr_close(w);
}

static void write_indicator(struct jsonw *w, const char *id, const char *now, const char *name,
			    const char *desc, const char *type, const char *pattern,
			    const char *valid_from, int confidence)
{
	sdo_head(w, "indicator", id, now);
	jsonw_str(w, "name", name);
	jsonw_str(w, "description", desc);
	jsonw_arr_open(w, "indicator_types");
	jsonw_str(w, NULL, type);
	jsonw_arr_close(w);
	jsonw_arr_open(w, "labels");
	jsonw_str(w, NULL, type);
	jsonw_str(w, NULL, "ransomware");
	jsonw_arr_close(w);
	jsonw_str(w, "pattern", pattern);
	jsonw_str(w, "pattern_type", "stix");
	jsonw_str(w, "pattern_version", "2.1");
	jsonw_str(w, "valid_from", valid_from);
	if (confidence >= 0)
		jsonw_int(w, "confidence", confidence);
	jsonw_obj_close(w);
}

/* A human-readable list ("a, b, c") bounded to n bytes. */
static void list_text(const char *const *v, size_t cnt, char *out, size_t n)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < cnt && used < n; i++) {
		int k = snprintf(out + used, n - used, "%s%s", used ? ", " : "", v[i] ? v[i] : "");
		if (k < 0 || (size_t)k >= n - used)
			break;
		used += (size_t)k;
	}
}

int stix_export(const struct stix_incident *inc, struct jsonw *w)
{
	int r;
	struct hashes exe, note;
	char now[32], first[32], last[32];
	char bundle_id[ID_LEN], ident_id[ID_LEN], exe_file[ID_LEN], note_file[ID_LEN];
	char exe_ind[ID_LEN], note_ind[ID_LEN], malware_id[ID_LEN], rel_id[ID_LEN];
	char od_id[ID_LEN], sight_id[ID_LEN], note_id[ID_LEN];
	char pattern[256], name[512], desc[1024], exts[512], notes[512];

	if ((r = take_hashes(inc->exe_md5, inc->exe_sha1, inc->exe_sha256, &exe)) < 0 ||
	    (r = take_hashes(NULL, NULL, inc->note_sha256, &note)) < 0)
		return r;
	if (!exe.any && !note.any)
		return -EINVAL;
	if (inc->confidence > 100)
		return -EINVAL;

	struct timespec created = inc->created, lastts = inc->last_seen;
	if (!created.tv_sec && !created.tv_nsec)
		clock_gettime(CLOCK_REALTIME, &created);
	/* STIX requires last_seen >= first_seen; a clock step must not make it invalid */
	if (lastts.tv_sec < inc->first_seen.tv_sec ||
	    (lastts.tv_sec == inc->first_seen.tv_sec && lastts.tv_nsec < inc->first_seen.tv_nsec))
		lastts = inc->first_seen;
	stix_time(now, &created);
	stix_time(first, &inc->first_seen);
	stix_time(last, &lastts);

	const char *path = inc->exe_path ? inc->exe_path : "";
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	const char *host = inc->host && *inc->host ? inc->host : "unknown host";
	const char *incid = inc->id ? inc->id : "";
	const char *note_name = inc->n_note_names ? inc->note_names[0] : NULL;
	list_text(inc->extensions, inc->n_extensions, exts, sizeof(exts));
	list_text(inc->note_names, inc->n_note_names, notes, sizeof(notes));

	const char *kinds[] = {"bundle", "identity", "indicator", "indicator", "malware",
			       "relationship", "observed-data", "sighting", "note"};
	char *ids[] = {bundle_id, ident_id, exe_ind, note_ind, malware_id, rel_id, od_id, sight_id,
		       note_id};
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		if ((r = uuid_v4(kinds[i], ids[i])) < 0)
			return r;
	if ((exe.any && (r = file_id(&exe, base, exe_file)) < 0) ||
	    (note.any && (r = file_id(&note, note_name, note_file)) < 0))
		return r;

	jsonw_obj_open(w, NULL);
	jsonw_str(w, "type", "bundle");
	jsonw_str(w, "id", bundle_id);
	jsonw_arr_open(w, "objects");

	sdo_head(w, "identity", ident_id, now);
	jsonw_str(w, "name", host);
	jsonw_str(w, "identity_class", "system");
	jsonw_str(w, "description", "host protected by ward");
	jsonw_obj_close(w);

	if (exe.any) {
		jsonw_obj_open(w, NULL);
		jsonw_str(w, "type", "file");
		jsonw_str(w, "spec_version", "2.1");
		jsonw_str(w, "id", exe_file);
		write_hashes(w, &exe);
		if (*base)
			jsonw_str(w, "name", base);
		jsonw_obj_close(w);

		pattern_of(&exe, pattern, sizeof(pattern));
		textf(name, sizeof(name), "ransomware executable %s", *base ? base : "(unknown)");
		textf(desc, sizeof(desc),
			 "Executable %s encrypted or rewrote %llu files on %s (ward incident %s).",
			 *path ? path : "(unknown path)", (unsigned long long)inc->files_touched, host,
			 incid);
		write_indicator(w, exe_ind, now, name, desc, "malicious-activity", pattern, first,
				inc->confidence);

		sdo_head(w, "malware", malware_id, now);
		jsonw_str(w, "name", *base ? base : "unknown ransomware");
		jsonw_bool(w, "is_family", false);
		jsonw_arr_open(w, "malware_types");
		jsonw_str(w, NULL, "ransomware");
		jsonw_arr_close(w);
		jsonw_str(w, "first_seen", first);
		jsonw_str(w, "last_seen", last);
		jsonw_arr_open(w, "sample_refs");
		jsonw_str(w, NULL, exe_file);
		jsonw_arr_close(w);
		jsonw_obj_close(w);

		sdo_head(w, "relationship", rel_id, now);
		jsonw_str(w, "relationship_type", "indicates");
		jsonw_str(w, "source_ref", exe_ind);
		jsonw_str(w, "target_ref", malware_id);
		jsonw_obj_close(w);
	}
	if (note.any) {
		jsonw_obj_open(w, NULL);
		jsonw_str(w, "type", "file");
		jsonw_str(w, "spec_version", "2.1");
		jsonw_str(w, "id", note_file);
		write_hashes(w, &note);
		if (note_name && *note_name)
			jsonw_str(w, "name", note_name);
		jsonw_obj_close(w);

		pattern_of(&note, pattern, sizeof(pattern));
		textf(name, sizeof(name), "ransom note %s", note_name ? note_name : "");
		textf(desc, sizeof(desc), "Ransom note left on %s (ward incident %s).", host, incid);
		write_indicator(w, note_ind, now, name, desc, "compromised", pattern, first,
				inc->confidence);
	}

	sdo_head(w, "observed-data", od_id, now);
	jsonw_str(w, "first_observed", first);
	jsonw_str(w, "last_observed", last);
	jsonw_int(w, "number_observed", 1);
	jsonw_arr_open(w, "object_refs");
	if (exe.any)
		jsonw_str(w, NULL, exe_file);
	if (note.any)
		jsonw_str(w, NULL, note_file);
	jsonw_arr_close(w);
	jsonw_obj_close(w);

	/* one sighting of the indicator on this host; how much it did is in the note */
	sdo_head(w, "sighting", sight_id, now);
	jsonw_str(w, "description", desc);
	jsonw_str(w, "first_seen", first);
	jsonw_str(w, "last_seen", last);
	jsonw_int(w, "count", 1);
	jsonw_str(w, "sighting_of_ref", exe.any ? exe_ind : note_ind);
	jsonw_arr_open(w, "observed_data_refs");
	jsonw_str(w, NULL, od_id);
	jsonw_arr_close(w);
	jsonw_arr_open(w, "where_sighted_refs");
	jsonw_str(w, NULL, ident_id);
	jsonw_arr_close(w);
	/* custom properties carry the x_ prefix STIX 2.1 reserves for them */
	jsonw_uint(w, "x_ward_files_touched", inc->files_touched);
	jsonw_obj_close(w);

	textf(desc, sizeof(desc),
		 "ward incident %s on %s: %llu files touched. Extensions written: %s. "
		 "Ransom notes: %s.",
		 incid, host, (unsigned long long)inc->files_touched, exts[0] ? exts : "none",
		 notes[0] ? notes : "none");
	sdo_head(w, "note", note_id, now);
	jsonw_str(w, "abstract", "file extensions and ransom notes");
	jsonw_str(w, "content", desc);
	jsonw_arr_open(w, "object_refs");
	jsonw_str(w, NULL, exe.any ? exe_ind : note_ind);
	jsonw_str(w, NULL, od_id);
	if (exe.any)
		jsonw_str(w, NULL, malware_id);
	jsonw_arr_close(w);
	jsonw_str(w, "x_ward_incident_id", incid);
	str_array(w, "x_ward_extensions", inc->extensions, inc->n_extensions);
	str_array(w, "x_ward_note_names", inc->note_names, inc->n_note_names);
	jsonw_obj_close(w);

	jsonw_arr_close(w);
	jsonw_obj_close(w);
	return w->oom ? -ENOMEM : 0;
}
