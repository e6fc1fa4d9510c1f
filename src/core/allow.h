/* allow.h: one allow-list entry: an executable's absolute path, optionally pinned to the
 * sha256 of its content ("/usr/bin/borg sha256:9f86d0..."). Path alone trusts whatever is
 * at that path; with a hash, a program replaced at the same path is not trusted. Owns the
 * entry syntax (config files, allow.list, `ward allow`). */
#ifndef WARD_ALLOW_H
#define WARD_ALLOW_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/event.h"

struct allow_entry {
	char path[WARD_EXE_MAX];
	bool has_hash;
	uint8_t sha256[32];
};

/* Parses "PATH" or "PATH sha256:HEX" (64 hex digits; "sha256:" may be left out). Returns 0
 * or -EINVAL with a message naming the problem in err. */
int allow_parse(const char *text, struct allow_entry *out, char *err, size_t errlen);
/* Writes the entry in the syntax allow_parse reads. */
void allow_format(const struct allow_entry *a, char *out, size_t len);
#endif
