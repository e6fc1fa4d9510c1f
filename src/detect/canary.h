/* canary.h: decoy files ward places in watched directories. A process that writes, renames
 * or deletes one is certainly walking the tree to destroy it: no user has a reason to touch
 * them. Names sort first and last in a directory listing so that a walk reaches one early;
 * the content is a small valid document of the type the name promises, so that ransomware
 * selecting by extension takes them. Documented in ward.conf(5) ([canary]). */
#ifndef WARD_CANARY_H
#define WARD_CANARY_H
#include <stdint.h>

/* Called for every canary placed (or found in place) with its path. */
typedef int (*canary_fn)(const char *path, void *ctx);

/* Places canaries under root, in root and its subdirectories up to depth (0: root only),
 * at most max_dirs directories. names: file names (NULL/0 for the defaults). Existing
 * canaries are kept as they are. Returns the number of canaries or -errno. */
int canary_place(const char *root, const char *const *names, int nnames, uint32_t depth,
		 int max_dirs, canary_fn fn, void *ctx);
/* The default names (NULL-terminated). */
extern const char *const canary_default_names[];
#endif
