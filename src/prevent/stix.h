/* stix.h: the STIX 2.1 export of an incident: what ward saw (the actor executable, the
 * ransom note, the extensions it wrote) as a bundle other tools, and ward's own feed
 * reader, can take as indicators. */
#ifndef WARD_PREVENT_STIX_H
#define WARD_PREVENT_STIX_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/jsonw.h"

/* An incident as the exporter needs it. Strings are borrowed for the call; hashes are hex
 * (either case), NULL when unknown. At least one of the executable's hashes or the note's
 * sha256 must be given: a bundle without a hash indicates nothing. */
struct stix_incident {
	const char *id;                    /* ward's incident id */
	struct timespec first_seen;        /* first and last event of the incident */
	struct timespec last_seen;
	struct timespec created;           /* bundle creation time; zero means now */
	const char *host;
	const char *exe_path;
	const char *exe_sha256, *exe_sha1, *exe_md5;
	const char *const *extensions;     /* extensions the actor gave files (".locked") */
	size_t n_extensions;
	const char *const *note_names;     /* ransom note file names */
	size_t n_note_names;
	const char *note_sha256;
	uint64_t files_touched;
	int confidence;                    /* 0-100 for the indicators; -1 leaves it out */
};

/* Appends the bundle as one JSON value to w. Returns 0, -EINVAL for a bad or hashless
 * incident, -ENOMEM (w->oom) or the error of the random source. */
int stix_export(const struct stix_incident *inc, struct jsonw *w);

/* Formats a STIX timestamp with millisecond precision ("2026-11-25T11:31:02.123Z"). */
void stix_time(char out[32], const struct timespec *ts);
#endif
