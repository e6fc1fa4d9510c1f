/* allow.c: allow-list entries (see allow.h). */
#include "core/allow.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = tolower(ch);
	return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

int allow_parse(const char *text, struct allow_entry *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	while (isspace((unsigned char)*text))
		text++;
	size_t pl = strcspn(text, " \t");
	if (pl == 0 || text[0] != '/') {
		snprintf(err, errlen, "allow_exe must be an absolute path, optionally followed by sha256:HEX, not \"%s\"",
			 text);
		return -EINVAL;
	}
	if (pl >= sizeof(out->path)) {
		snprintf(err, errlen, "allow_exe path longer than %zu bytes", sizeof(out->path) - 1);
		return -EINVAL;
	}
	memcpy(out->path, text, pl);
	const char *h = text + pl;
	while (isspace((unsigned char)*h))
		h++;
	if (*h == '\0')
		return 0;
	if (strncmp(h, "sha256:", 7) == 0)
		h += 7;
	size_t hl = strcspn(h, " \t");
	const char *rest = h + hl;
	while (isspace((unsigned char)*rest))
		rest++;
	if (hl != 64 || *rest) {
		snprintf(err, errlen, "allow_exe %s: after the path only sha256:HEX (64 hex digits) may follow, not \"%s\"",
			 out->path, h);
		return -EINVAL;
	}
	for (int i = 0; i < 32; i++) {
		int a = hexval((unsigned char)h[2 * i]), b = hexval((unsigned char)h[2 * i + 1]);
		if (a < 0 || b < 0) {
			snprintf(err, errlen, "allow_exe %s: \"%.64s\" is not a sha256 in hex", out->path, h);
			return -EINVAL;
		}
		out->sha256[i] = (uint8_t)(a << 4 | b);
	}
	out->has_hash = true;
	return 0;
}

void allow_format(const struct allow_entry *a, char *out, size_t len)
{
	int n = snprintf(out, len, "%s", a->path);
	if (!a->has_hash || n < 0 || (size_t)n >= len)
		return;
	size_t at = (size_t)n;
	at += (size_t)snprintf(out + at, len - at, " sha256:");
	for (int i = 0; i < 32 && at + 2 < len; i++)
		at += (size_t)snprintf(out + at, len - at, "%02x", a->sha256[i]);
}
