/* test_engine.c: the detector's indicators and scoring as data: each row is a sequence of
 * synthetic events (process, operation, path, what the content inspection found) and the
 * indicators it must raise, whether it must reach the threshold, at which level and on which
 * event. Processes form trees through the lookup callback, as the process cache gives them. */
#include "detect/engine.h"
#include "detect/filetype.h"
#include "detect/entropy.h"
#include "t.h"

#include <errno.h>
#include <stdlib.h>

/* ---- processes: a shell session, its children, a service with session children ---- */
enum { P_NONE, P_SH, P_ENC, P_ENC2, P_ENC3, P_RM, P_RM2, P_MV, P_MV2, P_CHILD1, P_CHILD2, P_CHILD3, P_USER, P_SMBD1, P_SMBD2,
       P_OTHER, P_ORPHAN, P_OENC1, P_ORM1, P_OENC2, P_ORM2, P_SVC, P_SENC1, P_SRM1, P_SENC2, P_SRM2, P__N };
static struct ward_proc procs[P__N];

static void mkproc(int i, pid_t pid, pid_t ppid, const char *exe)
{
	struct ward_proc *p = &procs[i];
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->ppid = ppid;
	p->start_ns = 1000ull * (uint64_t)pid;
	p->known = true;
	snprintf(p->exe, sizeof(p->exe), "%s", exe);
	snprintf(p->args, sizeof(p->args), "%s", exe);
	p->args_len = (uint16_t)strlen(exe) + 1;
}

static void setup_procs(void)
{
	mkproc(P_USER, 90, 1, "/usr/sbin/sshd");          /* its parent is init: a service */
	mkproc(P_SH, 100, 90, "/usr/bin/bash");           /* the user's shell */
	mkproc(P_ENC, 200, 100, "/tmp/x/locker");
	mkproc(P_ENC2, 201, 100, "/usr/bin/openssl");
	mkproc(P_RM, 202, 100, "/usr/bin/rm");
	mkproc(P_MV, 203, 100, "/usr/bin/mv");
	mkproc(P_RM2, 204, 100, "/usr/bin/rm");       /* each command of a loop is a new process */
	mkproc(P_MV2, 205, 100, "/usr/bin/mv");
	mkproc(P_ENC3, 206, 100, "/usr/bin/openssl");
	mkproc(P_CHILD1, 301, 200, "/tmp/x/locker");      /* one child per file */
	mkproc(P_CHILD2, 302, 200, "/tmp/x/locker");
	mkproc(P_CHILD3, 303, 200, "/tmp/x/locker");
	mkproc(P_SMBD1, 401, 400, "/usr/sbin/smbd");      /* smbd (400) is a child of init */
	mkproc(P_SMBD2, 402, 400, "/usr/sbin/smbd");
	mkproc(P_OTHER, 500, 100, "/usr/bin/cp");
	/* a nohup'd script: reparented to init, still in its login session's scope */
	mkproc(P_ORPHAN, 600, 1, "/usr/bin/bash");
	snprintf(procs[P_ORPHAN].cgroup, sizeof(procs[P_ORPHAN].cgroup), "/user.slice/user-0.slice/session-4.scope");
	mkproc(P_OENC1, 601, 600, "/usr/bin/openssl");
	mkproc(P_ORM1, 602, 600, "/usr/bin/rm");
	mkproc(P_OENC2, 603, 600, "/usr/bin/openssl");
	mkproc(P_ORM2, 604, 600, "/usr/bin/rm");
	/* the same under a system service: each child is its own session */
	mkproc(P_SVC, 700, 1, "/usr/sbin/cron");
	snprintf(procs[P_SVC].cgroup, sizeof(procs[P_SVC].cgroup), "/system.slice/cron.service");
	mkproc(P_SENC1, 701, 700, "/usr/bin/openssl");
	mkproc(P_SRM1, 702, 700, "/usr/bin/rm");
	mkproc(P_SENC2, 703, 700, "/usr/bin/openssl");
	mkproc(P_SRM2, 704, 700, "/usr/bin/rm");
}

static const struct ward_proc *lookup(void *ctx, pid_t pid)
{
	static struct ward_proc smbd_master, init_;
	(void)ctx;
	for (int i = 1; i < P__N; i++)
		if (procs[i].pid == pid)
			return &procs[i];
	if (pid == 400) {
		mkproc(0, 400, 1, "/usr/sbin/smbd");
		smbd_master = procs[0];
		return &smbd_master;
	}
	memset(&init_, 0, sizeof(init_));
	return &init_;
}

/* ---- content as the inspection would report it ---- */
enum cont { C_NONE, C_ENC, C_PART, C_STRIPE, C_B64, C_LOCKED, C_TEXT, C_HTML, C_ZIP, C_GZIP, C_PNG, C_SQLITE,
	    C_XZ, C_ZSTD_RAW };

static struct ward_content content_of(enum cont c)
{
	struct ward_content w = {.valid = true};
	switch (c) {
	case C_NONE:
		w.valid = false;
		break;
	case C_ENC:    /* ciphertext throughout */
		w.type = FILETYPE_UNKNOWN;
		w.head_class = ENTROPY_RANDOM;
		w.head_suspect = true;
		w.suspect_frac = 1.0f;
		w.max_entropy = 7.95f;
		break;
	case C_PART:   /* the head encrypted, the rest plain */
		w.type = FILETYPE_UNKNOWN;
		w.head_class = ENTROPY_RANDOM;
		w.head_suspect = true;
		w.suspect_frac = 0.25f;
		w.max_entropy = 7.95f;
		break;
	case C_STRIPE: /* every other 16 bytes */
		w.type = FILETYPE_UNKNOWN;
		w.head_class = ENTROPY_STRIPED;
		w.head_suspect = true;
		w.suspect_frac = 0.5f;
		w.max_entropy = 7.0f;
		break;
	case C_B64:
		w.type = FILETYPE_TEXT;
		w.type_valid = true;
		w.head_class = ENTROPY_ENCODED;
		w.head_suspect = true;
		w.suspect_frac = 1.0f;
		w.max_entropy = 6.0f;
		break;
	case C_LOCKED:
		w.type = FILETYPE_7Z;
		w.type_valid = true;
		w.crypt = FILETYPE_CRYPT_YES;
		w.head_class = ENTROPY_RANDOM;
		w.head_suspect = true;
		w.suspect_frac = 1.0f;
		break;
	case C_TEXT:
	case C_HTML:
		w.type = c == C_TEXT ? FILETYPE_TEXT : FILETYPE_HTML;
		w.type_valid = true;
		w.head_class = ENTROPY_PLAIN;
		w.max_entropy = 4.5f;
		break;
	case C_ZIP:
	case C_GZIP:
	case C_PNG:
	case C_SQLITE:
	case C_XZ:
		w.type = c == C_ZIP ? FILETYPE_ZIP : c == C_GZIP ? FILETYPE_GZIP : c == C_PNG ? FILETYPE_PNG
		       : c == C_SQLITE ? FILETYPE_SQLITE : FILETYPE_XZ;
		w.type_valid = true;
		w.head_class = c == C_SQLITE ? ENTROPY_PLAIN : ENTROPY_RANDOM;
		w.head_suspect = c != C_SQLITE;
		w.suspect_frac = c == C_SQLITE ? 0.0f : 0.9f;
		break;
	case C_ZSTD_RAW: /* compressed data of a format not parsed, shown by the pooled test */
		w.type = FILETYPE_UNKNOWN;
		w.head_class = ENTROPY_RANDOM;
		w.head_suspect = true;
		w.pooled_nonuniform = true;
		w.suspect_frac = 1.0f;
		break;
	}
	return w;
}

/* ---- one step of a scenario ---- */
struct step {
	int proc;
	enum ward_op op;
	const char *path;
	const char *arg;   /* rename: the new path */
	enum cont c;
	int64_t size;      /* close_write: the file's size (default 4096) */
	int dt_ms;         /* time since the previous step (default 1) */
};

#define MAXSTEPS 64
struct scenario {
	const char *name;
	struct step steps[MAXSTEPS];
	bool detect;             /* must reach the threshold */
	int at_step;             /* ... (the last detection) on this step (1-based; 0: any) */
	const char *level;       /* ... at this level (NULL: any) */
	int pid;                 /* ... naming this process (index into procs; 0: any) */
	const char *want[6];     /* indicators that must appear (in the detection, or scored) */
	const char *never[4];    /* indicators that must not */
};

/* ---- helpers that expand into steps ---- */
#define CR(p, path) {p, WOP_CREATE, path, NULL, C_NONE, 0, 0}
#define CW(p, path, c) {p, WOP_CLOSE_WRITE, path, NULL, c, 0, 0}
#define CWS(p, path, c, sz) {p, WOP_CLOSE_WRITE, path, NULL, c, sz, 0}
#define MV(p, from, to) {p, WOP_RENAME, from, to, C_NONE, 0, 0}
#define RM(p, path) {p, WOP_DELETE, path, NULL, C_NONE, 0, 0}
#define MK(p, path) {p, WOP_MKDIR, path, NULL, C_NONE, 0, 0}
#define MOD(p, path) {p, WOP_MODIFY, path, NULL, C_NONE, 0, 0}
#define WAIT(p, ms) {p, WOP__COUNT, NULL, NULL, C_NONE, 0, ms}

static const struct scenario cases[] = {
	/* --- in place, with and without rename --- */
	{"babuk-esxi: in place + rename, known format: one file is enough",
	 {CW(P_ENC, "/s/a/report.docx", C_ENC), MV(P_ENC, "/s/a/report.docx", "/s/a/report.docx.qkzv")},
	 true, 2, "process", P_ENC,
	 {"content.encrypted_in_place", "format.broken", "rename.unknown_extension", "rename.after_encryption"}, {NULL}},
	{"header-only, no rename: two files",
	 {CW(P_ENC, "/s/a/x.pdf", C_PART), CW(P_ENC, "/s/a/y.pdf", C_PART)},
	 true, 2, "process", P_ENC, {"content.partial", "format.broken", "rate.files"}, {NULL}},
	{"in place, unknown extensions: two files (rate)",
	 {CW(P_ENC, "/s/a/x.bin", C_ENC), CW(P_ENC, "/s/a/y.bin", C_ENC)},
	 true, 2, "process", P_ENC, {"content.encrypted_in_place", "rate.files"}, {"format.broken"}},
	{"one file encrypted in place, nothing else: below the threshold",
	 {CW(P_ENC, "/s/a/x.pdf", C_ENC)},
	 false, 0, NULL, 0, {"content.encrypted_in_place", "format.broken"}, {NULL}},
	{"the same file rewritten with ciphertext 5 times counts once (a LUKS container, a vault)",
	 {CW(P_ENC, "/s/a/v.bin", C_ENC), CW(P_ENC, "/s/a/v.bin", C_ENC), CW(P_ENC, "/s/a/v.bin", C_ENC),
	  CW(P_ENC, "/s/a/v.bin", C_ENC), CW(P_ENC, "/s/a/v.bin", C_ENC)},
	 false, 0, NULL, 0, {"content.encrypted_in_place"}, {"rate.files"}},
	{"LockFile stripes + rename",
	 {CW(P_ENC, "/s/a/notes.txt", C_STRIPE), MV(P_ENC, "/s/a/notes.txt", "/s/a/notes.txt.lockfile")},
	 true, 2, NULL, 0, {"content.partial", "format.broken", "rename.unknown_extension"}, {NULL}},
	{"babuk-nas: rename first, then encrypt: the old name's promise is kept",
	 {MV(P_ENC, "/s/a/q.xlsx", "/s/a/q.xlsx.babyk"), CW(P_ENC, "/s/a/q.xlsx.babyk", C_ENC),
	  MV(P_ENC, "/s/a/r.xlsx", "/s/a/r.xlsx.babyk"), CW(P_ENC, "/s/a/r.xlsx.babyk", C_ENC)},
	 true, 4, "process", P_ENC, {"content.encrypted_in_place", "format.broken", "rename.unknown_extension"}, {NULL}},
	{"base64 of ciphertext over text files",
	 {CW(P_ENC, "/s/a/a.txt", C_B64), CW(P_ENC, "/s/a/b.csv", C_B64)},
	 true, 2, NULL, 0, {"content.encoded", "rate.files"}, {NULL}},
	/* --- new file, original deleted --- */
	{"WannaCry: encrypted copy, original deleted, twice",
	 {CR(P_ENC, "/s/a/a.docx.WCRY"), CW(P_ENC, "/s/a/a.docx.WCRY", C_ENC), RM(P_ENC, "/s/a/a.docx"),
	  CR(P_ENC, "/s/a/b.pdf.WCRY"), CW(P_ENC, "/s/a/b.pdf.WCRY", C_ENC), RM(P_ENC, "/s/a/b.pdf")},
	 true, 6, "process", P_ENC, {"content.encrypted_new", "delete.original", "rate.files"}, {NULL}},
	{"copy named by the stem (name.enc) also counts",
	 {CR(P_ENC, "/s/a/a.enc"), CW(P_ENC, "/s/a/a.enc", C_ENC), RM(P_ENC, "/s/a/a.docx"),
	  CR(P_ENC, "/s/a/b.enc"), CW(P_ENC, "/s/a/b.enc", C_ENC), RM(P_ENC, "/s/a/b.docx")},
	 true, 6, NULL, 0, {"delete.original"}, {NULL}},
	{"shell loop: openssl writes the copy, rm deletes: the shell is the actor",
	 {CR(P_ENC2, "/s/a/a.txt.x1"), CW(P_ENC2, "/s/a/a.txt.x1", C_ENC), RM(P_RM, "/s/a/a.txt"),
	  CR(P_ENC3, "/s/a/b.txt.x1"), CW(P_ENC3, "/s/a/b.txt.x1", C_ENC), RM(P_RM2, "/s/a/b.txt")},
	 true, 6, "tree", P_SH, {"content.encrypted_new", "delete.original", "rate.files"}, {NULL}},
	{"Qlocker: 7z -p per file, then rm",
	 {CR(P_ENC2, "/s/a/a.pdf.7z"), CW(P_ENC2, "/s/a/a.pdf.7z", C_LOCKED), RM(P_RM, "/s/a/a.pdf"),
	  CR(P_ENC3, "/s/a/b.pdf.7z"), CW(P_ENC3, "/s/a/b.pdf.7z", C_LOCKED), RM(P_RM2, "/s/a/b.pdf")},
	 true, 6, "tree", P_SH, {"content.locked_archive", "delete.original"}, {NULL}},
	{"temp file of ciphertext moved over each document",
	 {CR(P_ENC2, "/s/a/a.docx.123"), CW(P_ENC2, "/s/a/a.docx.123", C_ENC), MV(P_MV, "/s/a/a.docx.123", "/s/a/a.docx"),
	  CR(P_ENC3, "/s/a/b.pdf.456"), CW(P_ENC3, "/s/a/b.pdf.456", C_ENC), MV(P_MV2, "/s/a/b.pdf.456", "/s/a/b.pdf")},
	 true, 6, "tree", P_SH, {"content.encrypted_in_place", "format.broken", "rate.files"},
	 {"rename.after_encryption"}},
	/* --- process trees and executables --- */
	{"one child per file, forked by the same program: the program is the actor",
	 {CW(P_CHILD1, "/s/a/a.docx", C_ENC), MV(P_CHILD1, "/s/a/a.docx", "/s/a/a.docx.zz"),
	  CW(P_CHILD2, "/s/a/b.docx", C_ENC)},
	 true, 2, "tree", P_ENC, {"content.encrypted_in_place"}, {NULL}},
	{"one encryptor per file started by a shell: the first, then the shell at the second",
	 {CR(P_ENC2, "/s/a/a.txt.x1"), CW(P_ENC2, "/s/a/a.txt.x1", C_ENC), MV(P_ENC2, "/s/a/a.txt.x1", "/s/a/a.txt"),
	  CR(P_ENC2, "/s/a/c.txt.x1"), CW(P_ENC2, "/s/a/c.txt.x1", C_ENC), MV(P_ENC2, "/s/a/c.txt.x1", "/s/a/c.txt"),
	  CR(P_ENC3, "/s/a/b.txt.x1"), CW(P_ENC3, "/s/a/b.txt.x1", C_ENC)},
	 true, 8, "tree", P_SH, {"content.encrypted_in_place"}, {NULL}},
	{"two smbd sessions are never merged (one file each)",
	 {CW(P_SMBD1, "/s/a/a.docx", C_ENC), CW(P_SMBD2, "/s/b/b.docx", C_ENC)},
	 false, 0, NULL, 0, {"content.encrypted_in_place"}, {NULL}},
	{"a nohup'd shell loop (orphan in a session scope) is still the actor",
	 {CR(P_OENC1, "/s/a/a.txt.x1"), CW(P_OENC1, "/s/a/a.txt.x1", C_ENC), RM(P_ORM1, "/s/a/a.txt"),
	  CR(P_OENC2, "/s/a/b.txt.x1"), CW(P_OENC2, "/s/a/b.txt.x1", C_ENC), RM(P_ORM2, "/s/a/b.txt")},
	 true, 6, "tree", P_ORPHAN, {"delete.original"}, {NULL}},
	{"the children of a system service are not merged into it",
	 {CR(P_SENC1, "/s/a/a.txt.x1"), CW(P_SENC1, "/s/a/a.txt.x1", C_ENC), RM(P_SRM1, "/s/a/a.txt"),
	  CR(P_SENC2, "/s/a/b.txt.x1"), CW(P_SENC2, "/s/a/b.txt.x1", C_ENC), RM(P_SRM2, "/s/a/b.txt")},
	 false, 0, NULL, 0, {"delete.original"}, {NULL}},
	/* --- notes --- */
	{"ransom note in 5 existing directories",
	 {CWS(P_ENC, "/s/r/n.html", C_NONE, 1), CR(P_ENC, "/s/a/README.html"), CWS(P_ENC, "/s/a/README.html", C_HTML, 900),
	  CR(P_ENC, "/s/b/README.html"), CWS(P_ENC, "/s/b/README.html", C_HTML, 900),
	  CR(P_ENC, "/s/c/README.html"), CWS(P_ENC, "/s/c/README.html", C_HTML, 900),
	  CR(P_ENC, "/s/d/README.html"), CWS(P_ENC, "/s/d/README.html", C_HTML, 900),
	  CR(P_ENC, "/s/e/README.html"), CWS(P_ENC, "/s/e/README.html", C_HTML, 900),
	  CR(P_ENC, "/s/f/README.html"), CWS(P_ENC, "/s/f/README.html", C_HTML, 900)},
	 true, 11, "process", P_ENC, {"note.repeated"}, {NULL}},
	{"cp -r of a tree with the same file name in many directories: directories are new",
	 {MK(P_OTHER, "/s/copy"), MK(P_OTHER, "/s/copy/a"), MK(P_OTHER, "/s/copy/b"), MK(P_OTHER, "/s/copy/c"),
	  MK(P_OTHER, "/s/copy/d"), MK(P_OTHER, "/s/copy/e"),
	  CR(P_OTHER, "/s/copy/a/index.html"), CWS(P_OTHER, "/s/copy/a/index.html", C_HTML, 500),
	  CR(P_OTHER, "/s/copy/b/index.html"), CWS(P_OTHER, "/s/copy/b/index.html", C_HTML, 500),
	  CR(P_OTHER, "/s/copy/c/index.html"), CWS(P_OTHER, "/s/copy/c/index.html", C_HTML, 500),
	  CR(P_OTHER, "/s/copy/d/index.html"), CWS(P_OTHER, "/s/copy/d/index.html", C_HTML, 500),
	  CR(P_OTHER, "/s/copy/e/index.html"), CWS(P_OTHER, "/s/copy/e/index.html", C_HTML, 500)},
	 false, 0, NULL, 0, {NULL}, {"note.repeated"}},
	{"same name, different sizes in existing directories (tar x over a tree): no note",
	 {CR(P_OTHER, "/s/a/Makefile"), CWS(P_OTHER, "/s/a/Makefile", C_TEXT, 100),
	  CR(P_OTHER, "/s/b/Makefile"), CWS(P_OTHER, "/s/b/Makefile", C_TEXT, 230),
	  CR(P_OTHER, "/s/c/Makefile"), CWS(P_OTHER, "/s/c/Makefile", C_TEXT, 310),
	  CR(P_OTHER, "/s/d/Makefile"), CWS(P_OTHER, "/s/d/Makefile", C_TEXT, 120)},
	 false, 0, NULL, 0, {NULL}, {"note.repeated"}},
	{"a file browser's binary folder files (.DS_Store) in every directory: no note",
	 {CR(P_SMBD1, "/s/a/.DS_Store"), CWS(P_SMBD1, "/s/a/.DS_Store", C_SQLITE, 6148),
	  CR(P_SMBD1, "/s/b/.DS_Store"), CWS(P_SMBD1, "/s/b/.DS_Store", C_SQLITE, 6148),
	  CR(P_SMBD1, "/s/c/.DS_Store"), CWS(P_SMBD1, "/s/c/.DS_Store", C_SQLITE, 6148),
	  CR(P_SMBD1, "/s/d/.DS_Store"), CWS(P_SMBD1, "/s/d/.DS_Store", C_SQLITE, 6148),
	  CR(P_SMBD1, "/s/e/.DS_Store"), CWS(P_SMBD1, "/s/e/.DS_Store", C_SQLITE, 6148),
	  CR(P_SMBD1, "/s/f/.DS_Store"), CWS(P_SMBD1, "/s/f/.DS_Store", C_SQLITE, 6148)},
	 false, 0, NULL, 0, {NULL}, {"note.repeated"}},
	{"the same file copied into existing directories an hour apart: no note",
	 {CR(P_OTHER, "/s/a/motd.txt"), CWS(P_OTHER, "/s/a/motd.txt", C_TEXT, 300), WAIT(P_OTHER, 1200 * 1000),
	  CR(P_OTHER, "/s/b/motd.txt"), CWS(P_OTHER, "/s/b/motd.txt", C_TEXT, 300), WAIT(P_OTHER, 1200 * 1000),
	  CR(P_OTHER, "/s/c/motd.txt"), CWS(P_OTHER, "/s/c/motd.txt", C_TEXT, 300), WAIT(P_OTHER, 1200 * 1000),
	  CR(P_OTHER, "/s/d/motd.txt"), CWS(P_OTHER, "/s/d/motd.txt", C_TEXT, 300)},
	 false, 0, NULL, 0, {NULL}, {"note.repeated"}},
	{"notes and encryption together",
	 {CR(P_ENC, "/s/a/HOW.txt"), CWS(P_ENC, "/s/a/HOW.txt", C_TEXT, 700), CR(P_ENC, "/s/b/HOW.txt"),
	  CWS(P_ENC, "/s/b/HOW.txt", C_TEXT, 700), CR(P_ENC, "/s/c/HOW.txt"), CWS(P_ENC, "/s/c/HOW.txt", C_TEXT, 700),
	  CW(P_ENC, "/s/c/x.pdf", C_ENC)},
	 true, 7, NULL, 0, {"note.repeated", "content.encrypted_in_place"}, {NULL}},
	/* --- canaries --- */
	{"a canary written", {MOD(P_ENC, "/s/!0000-canary.pdf")}, true, 1, "process", P_ENC, {"canary"}, {NULL}},
	{"a canary renamed", {MV(P_ENC, "/s/!0000-canary.pdf", "/s/!0000-canary.pdf.x")}, true, 1, NULL, 0, {"canary"}, {NULL}},
	{"a canary deleted", {RM(P_RM, "/s/!0000-canary.pdf")}, true, 1, NULL, 0, {"canary"}, {NULL}},
	/* --- ordinary work --- */
	{"gzip of many logs: compressed copies, originals deleted",
	 {CR(P_OTHER, "/s/l/a.log.1.gz"), CW(P_OTHER, "/s/l/a.log.1.gz", C_GZIP), RM(P_OTHER, "/s/l/a.log.1"),
	  CR(P_OTHER, "/s/l/b.log.1.gz"), CW(P_OTHER, "/s/l/b.log.1.gz", C_GZIP), RM(P_OTHER, "/s/l/b.log.1"),
	  CR(P_OTHER, "/s/l/c.log.1.gz"), CW(P_OTHER, "/s/l/c.log.1.gz", C_GZIP), RM(P_OTHER, "/s/l/c.log.1")},
	 false, 0, NULL, 0, {NULL}, {"delete.original", "content.encrypted_new"}},
	{"logrotate: rename to .1 (plain), recreate",
	 {MV(P_OTHER, "/s/l/a.log", "/s/l/a.log.1"), CR(P_OTHER, "/s/l/a.log"), CW(P_OTHER, "/s/l/a.log", C_TEXT),
	  MV(P_OTHER, "/s/l/b.log", "/s/l/b.log.1"), CR(P_OTHER, "/s/l/b.log"), CW(P_OTHER, "/s/l/b.log", C_TEXT),
	  MV(P_OTHER, "/s/l/c.log", "/s/l/c.log.1"), CR(P_OTHER, "/s/l/c.log"), CW(P_OTHER, "/s/l/c.log", C_TEXT)},
	 false, 0, NULL, 0, {NULL}, {"rename.unknown_extension"}},
	{"xz and zip in place, images re-encoded, SQLite written: formats that parse",
	 {CW(P_OTHER, "/s/a/x.xz", C_XZ), CW(P_OTHER, "/s/a/y.zip", C_ZIP), CW(P_OTHER, "/s/a/p.png", C_PNG),
	  CW(P_OTHER, "/s/a/q.png", C_PNG), CW(P_OTHER, "/s/a/d.db", C_SQLITE), CW(P_OTHER, "/s/a/raw.zst", C_ZSTD_RAW)},
	 false, 0, NULL, 0, {NULL}, {"content.encrypted_in_place", "format.broken"}},
	{"gpg of one file (original kept)",
	 {CR(P_ENC2, "/s/a/plan.xlsx.gpg"), CW(P_ENC2, "/s/a/plan.xlsx.gpg", C_ENC)},
	 false, 0, NULL, 0, {"content.encrypted_new"}, {"delete.original"}},
	{"copying 20 encrypted backups: new ciphertext files count 3 times at most",
	 {CR(P_OTHER, "/s/b/1.gpg"), CW(P_OTHER, "/s/b/1.gpg", C_ENC), CR(P_OTHER, "/s/b/2.gpg"), CW(P_OTHER, "/s/b/2.gpg", C_ENC),
	  CR(P_OTHER, "/s/b/3.gpg"), CW(P_OTHER, "/s/b/3.gpg", C_ENC), CR(P_OTHER, "/s/b/4.gpg"), CW(P_OTHER, "/s/b/4.gpg", C_ENC),
	  CR(P_OTHER, "/s/b/5.gpg"), CW(P_OTHER, "/s/b/5.gpg", C_ENC), CR(P_OTHER, "/s/b/6.gpg"), CW(P_OTHER, "/s/b/6.gpg", C_ENC),
	  CR(P_OTHER, "/s/b/7.gpg"), CW(P_OTHER, "/s/b/7.gpg", C_ENC), CR(P_OTHER, "/s/b/8.gpg"), CW(P_OTHER, "/s/b/8.gpg", C_ENC),
	  CR(P_OTHER, "/s/b/9.gpg"), CW(P_OTHER, "/s/b/9.gpg", C_ENC), CR(P_OTHER, "/s/b/10.gpg"), CW(P_OTHER, "/s/b/10.gpg", C_ENC),
	  CR(P_OTHER, "/s/b/11.gpg"), CW(P_OTHER, "/s/b/11.gpg", C_ENC), CR(P_OTHER, "/s/b/12.gpg"), CW(P_OTHER, "/s/b/12.gpg", C_ENC)},
	 false, 0, NULL, 0, {"content.encrypted_new"}, {NULL}},
	{"password manager saving often: temp file renamed onto its own name",
	 {CR(P_ENC, "/s/k/db.kdbx.Ab12"), CW(P_ENC, "/s/k/db.kdbx.Ab12", C_ENC), MV(P_ENC, "/s/k/db.kdbx.Ab12", "/s/k/db.kdbx"),
	  CR(P_ENC, "/s/k/db.kdbx.Cd34"), CW(P_ENC, "/s/k/db.kdbx.Cd34", C_ENC), MV(P_ENC, "/s/k/db.kdbx.Cd34", "/s/k/db.kdbx"),
	  CR(P_ENC, "/s/k/db.kdbx.Ef56"), CW(P_ENC, "/s/k/db.kdbx.Ef56", C_ENC), MV(P_ENC, "/s/k/db.kdbx.Ef56", "/s/k/db.kdbx"),
	  CR(P_ENC, "/s/k/db.kdbx.Gh78"), CW(P_ENC, "/s/k/db.kdbx.Gh78", C_ENC), MV(P_ENC, "/s/k/db.kdbx.Gh78", "/s/k/db.kdbx")},
	 false, 0, NULL, 0, {NULL}, {"rename.after_encryption", "rename.unknown_extension", "format.broken"}},
	{"editor saves: backup rename, new file, backup deleted",
	 {MV(P_OTHER, "/s/d/a.txt", "/s/d/a.txt~"), CR(P_OTHER, "/s/d/a.txt"), CW(P_OTHER, "/s/d/a.txt", C_TEXT),
	  RM(P_OTHER, "/s/d/a.txt~"), MV(P_OTHER, "/s/d/b.txt", "/s/d/b.txt~"), CR(P_OTHER, "/s/d/b.txt"),
	  CW(P_OTHER, "/s/d/b.txt", C_TEXT), RM(P_OTHER, "/s/d/b.txt~")},
	 false, 0, NULL, 0, {NULL}, {"rename.unknown_extension", "delete.original"}},
	/* --- decay and allow-list --- */
	{"two files an hour apart: the first has decayed below half",
	 {CW(P_ENC, "/s/a/x.pdf", C_ENC), WAIT(P_ENC, 3600 * 1000), CW(P_ENC, "/s/a/y.bin", C_ENC)},
	 false, 0, NULL, 0, {"content.encrypted_in_place"}, {"rate.files"}},
	{"an allow-listed executable is never scored",
	 {CW(P_CHILD3, "/s/a/x.docx", C_ENC), MV(P_CHILD3, "/s/a/x.docx", "/s/a/x.docx.z")},
	 false, 0, NULL, 0, {NULL}, {"content.encrypted_in_place"}},
};

/* ---- the runner ---- */
struct result {
	int detections;
	int first_step;          /* of the last detection */
	char level[16];
	pid_t pid;
	char seen[32][32];       /* indicators in detections' evidence */
	int nseen;
	int step;                /* the step being fed */
	int suspects;
	int nfiles;              /* files listed by the last detection */
};

static void note_ind(struct result *r, const char *ind)
{
	for (int i = 0; i < r->nseen; i++)
		if (!strcmp(r->seen[i], ind))
			return;
	if (r->nseen < 32)
		snprintf(r->seen[r->nseen++], sizeof(r->seen[0]), "%s", ind);
}

/* Keeps the last detection (one attack may need two: the child, then the parent). */
static void on_detect(const struct detection *d, void *ctx)
{
	struct result *r = ctx;
	r->detections++;
	r->first_step = r->step;
	snprintf(r->level, sizeof(r->level), "%s", d->level);
	r->pid = d->pid;
	r->nfiles = d->nfiles;
	for (int i = 0; i < d->nevidence; i++)
		note_ind(r, d->evidence[i].indicator);
}

static void on_suspect(const struct suspect *s, void *ctx)
{
	struct result *r = ctx;
	r->suspects++;
	if (s->why->points) /* a name's second sighting scores nothing: not evidence */
		note_ind(r, s->why->indicator);
}

/* Indicators that were scored but did not lead to a detection are read back by feeding a
 * canary: its detection carries the actor's whole evidence. */
static void run_case(const struct scenario *sc)
{
	struct result r = {0};
	const char *allow[] = {"/tmp/x/never"};
	struct engine_cfg cfg = {.lookup = lookup, .on_detect = on_detect, .ctx = &r, .on_suspect = on_suspect,
				 .allow_exe = allow, .nallow = 1};
	struct engine *e;
	T_CHECK(engine_create(&e, &cfg) == 0, "%s: create", sc->name);
	engine_add_canary(e, "/s/!0000-canary.pdf");
	if (strstr(sc->name, "allow-listed"))
		engine_allow_exe(e, procs[P_CHILD3].exe);
	static struct ward_event ev;
	uint64_t t = 1700000000ull * 1000000000ull;
	int last_proc = 0;
	for (int i = 0; i < MAXSTEPS && sc->steps[i].proc; i++) {
		const struct step *s = &sc->steps[i];
		t += (uint64_t)(s->dt_ms ? s->dt_ms : 1) * 1000000ull;
		last_proc = s->proc;
		if (s->op == WOP__COUNT)
			continue;
		memset(&ev, 0, offsetof(struct ward_event, path));
		ev.ts.tv_sec = (time_t)(t / 1000000000ull);
		ev.ts.tv_nsec = (long)(t % 1000000000ull);
		ev.op = s->op;
		ev.is_dir = s->op == WOP_MKDIR;
		ev.proc = &procs[s->proc];
		ev.pid = procs[s->proc].pid;
		ev.size = s->op == WOP_CLOSE_WRITE ? (s->size ? s->size : 4096) : -1;
		ev.mount_fd = -1;
		if (s->op == WOP_CLOSE_WRITE)
			ev.content = content_of(s->c);
		if (s->op == WOP_RENAME) {
			snprintf(ev.old_path, sizeof(ev.old_path), "%s", s->path);
			ev.old_path_len = strlen(ev.old_path);
			snprintf(ev.path, sizeof(ev.path), "%s", s->arg);
		} else {
			snprintf(ev.path, sizeof(ev.path), "%s", s->path);
			ev.old_path[0] = '\0';
			ev.old_path_len = 0;
		}
		ev.path_len = strlen(ev.path);
		r.step = i + 1;
		engine_event(e, &ev);
	}
	int detections = r.detections;
	int first = r.first_step;
	char level[16];
	snprintf(level, sizeof(level), "%s", r.level);
	pid_t pid = r.pid;
	if (!detections && last_proc) {
		/* read back what was scored: a canary hit fires with the actor's whole evidence */
		memset(&ev, 0, offsetof(struct ward_event, path));
		t += 1000000ull;
		ev.ts.tv_sec = (time_t)(t / 1000000000ull);
		ev.ts.tv_nsec = (long)(t % 1000000000ull);
		ev.op = WOP_DELETE;
		ev.proc = &procs[last_proc];
		ev.size = -1;
		snprintf(ev.path, sizeof(ev.path), "/s/!0000-canary.pdf");
		ev.path_len = strlen(ev.path);
		ev.old_path_len = 0;
		engine_event(e, &ev);
	}
	T_CHECK((detections > 0) == sc->detect, "%s: detected %d time(s)", sc->name, detections);
	T_CHECK(!detections || r.nfiles > 0, "%s: the detection lists files", sc->name);
	if (sc->detect && detections) {
		/* one incident per attack; two when a child was stopped before its parent */
		int times = strstr(sc->name, "the first, then the shell") ? 2 : 1;
		T_CHECK(detections == times, "%s: %d detections, not %d", sc->name, detections, times);
		if (sc->at_step)
			T_CHECK(first == sc->at_step, "%s: detected at step %d, not %d", sc->name, first, sc->at_step);
		if (sc->level)
			T_CHECK(!strcmp(level, sc->level), "%s: level %s, not %s", sc->name, level, sc->level);
		if (sc->pid)
			T_CHECK(pid == procs[sc->pid].pid, "%s: actor pid %d, not %d", sc->name, pid, procs[sc->pid].pid);
	}
	for (int k = 0; k < 6 && sc->want[k]; k++) {
		bool found = false;
		for (int i = 0; i < r.nseen; i++)
			found |= !strcmp(r.seen[i], sc->want[k]);
		T_CHECK(found, "%s: indicator %s expected", sc->name, sc->want[k]);
	}
	for (int k = 0; k < 4 && sc->never[k]; k++)
		for (int i = 0; i < r.nseen; i++)
			T_CHECK(strcmp(r.seen[i], sc->never[k]) != 0, "%s: indicator %s must not fire", sc->name, sc->never[k]);
	engine_destroy(e);
}

/* The pause hook: called for a destroyed file of a process below the threshold, never for
 * ordinary writes, never once the process is detected. */
static void test_suspect(void)
{
	struct result r = {0};
	struct engine_cfg cfg = {.lookup = lookup, .on_detect = on_detect, .ctx = &r, .on_suspect = on_suspect};
	struct engine *e;
	T_CHECK(engine_create(&e, &cfg) == 0, "create");
	static struct ward_event ev;
	const char *paths[] = {"/s/a/1.txt", "/s/a/2.txt", "/s/a/3.txt"};
	enum cont cs[] = {C_TEXT, C_ENC, C_ENC};
	int suspects_after[] = {0, 1, 1};
	for (int i = 0; i < 3; i++) {
		memset(&ev, 0, offsetof(struct ward_event, path));
		ev.ts.tv_sec = 1700000000 + i;
		ev.op = WOP_CLOSE_WRITE;
		ev.proc = &procs[P_ENC];
		ev.size = 4096;
		ev.content = content_of(cs[i]);
		snprintf(ev.path, sizeof(ev.path), "%s", paths[i]);
		ev.path_len = strlen(ev.path);
		engine_event(e, &ev);
		T_CHECK(r.suspects == suspects_after[i], "suspects after event %d: %d", i, r.suspects);
	}
	T_CHECK(r.detections == 1, "the second file detects (%d)", r.detections);
	struct engine_stats st;
	engine_stats(e, &st);
	T_CHECK(st.suspects == 1 && st.detections == 1 && st.events == 3, "stats %llu %llu %llu",
		(unsigned long long)st.suspects, (unsigned long long)st.detections, (unsigned long long)st.events);
	engine_destroy(e);
	/* a new text file of one name and size in a second existing directory: a pause, no
	 * points; a third directory scores */
	r = (struct result){0};
	T_CHECK(engine_create(&e, &cfg) == 0, "create");
	const char *notes[] = {"/s/a/READ.txt", "/s/b/READ.txt", "/s/c/READ.txt"};
	for (int i = 0; i < 3; i++) {
		for (int op = 0; op < 2; op++) { /* made, then written */
			memset(&ev, 0, offsetof(struct ward_event, path));
			ev.ts.tv_sec = 1700000100;
			ev.op = op ? WOP_CLOSE_WRITE : WOP_CREATE;
			ev.proc = &procs[P_ENC];
			ev.size = op ? 377 : 0;
			if (op)
				ev.content = content_of(C_TEXT);
			snprintf(ev.path, sizeof(ev.path), "%s", notes[i]);
			ev.path_len = strlen(ev.path);
			engine_event(e, &ev);
		}
		T_CHECK(r.suspects == i, "note in %d directories: %d suspect call(s)", i + 1, r.suspects);
	}
	T_CHECK(r.detections == 0, "three notes alone detect nothing (%d)", r.detections);
	engine_destroy(e);
}

/* An allow-list entry pinned to a hash trusts the path only while the program's content
 * matches: the engine asks the daemon for the running program's sha256. */
static uint8_t fake_sha[32];
static int fake_exe_sha256(void *ctx, const struct ward_proc *p, uint8_t out[32])
{
	memcpy(out, fake_sha, 32);
	return 0;
}

static void test_allow_hash(void)
{
	char entry[WARD_EXE_MAX + 80];
	snprintf(entry, sizeof(entry), "%s sha256:%s", procs[P_ENC].exe,
		 "0101010101010101010101010101010101010101010101010101010101010101");
	const char *allow[] = {entry};
	for (int same = 0; same < 2; same++) {
		struct result r = {0};
		struct engine_cfg cfg = {.lookup = lookup, .on_detect = on_detect, .ctx = &r, .allow_exe = allow,
					 .nallow = 1, .exe_sha256 = fake_exe_sha256};
		memset(fake_sha, same ? 0x01 : 0x02, sizeof(fake_sha));
		struct engine *e;
		T_CHECK(engine_create(&e, &cfg) == 0, "create");
		static struct ward_event ev;
		for (int i = 0; i < 4; i++) {
			memset(&ev, 0, offsetof(struct ward_event, path));
			ev.ts.tv_sec = 1700000200 + i;
			ev.op = WOP_CLOSE_WRITE;
			ev.proc = &procs[P_ENC];
			ev.size = 4096;
			ev.content = content_of(C_ENC);
			snprintf(ev.path, sizeof(ev.path), "/s/h/%d.txt", i);
			ev.path_len = strlen(ev.path);
			engine_event(e, &ev);
		}
		T_CHECK(r.detections == (same ? 0 : 1), "hash %s: %d detection(s)", same ? "matches" : "differs",
			r.detections);
		engine_destroy(e);
	}
	struct engine *e;
	struct engine_cfg cfg = {.lookup = lookup};
	T_CHECK(engine_create(&e, &cfg) == 0, "create");
	T_CHECK(engine_allow_exe(e, "relative/path") == -EINVAL, "a malformed entry is refused");
	engine_destroy(e);
}

/* After an incident the detected process's queued events land on nobody: not on its
 * ancestors (which would otherwise reach the threshold on the attack's leftovers). */
static void test_leftovers(void)
{
	struct result r = {0};
	struct engine_cfg cfg = {.lookup = lookup, .on_detect = on_detect, .ctx = &r};
	struct engine *e;
	T_CHECK(engine_create(&e, &cfg) == 0, "create");
	static struct ward_event ev;
	for (int i = 0; i < 40; i++) {
		memset(&ev, 0, offsetof(struct ward_event, path));
		ev.ts.tv_sec = 1700000000;
		ev.ts.tv_nsec = i * 1000;
		ev.op = WOP_CLOSE_WRITE;
		ev.proc = &procs[P_CHILD1];
		ev.size = 4096;
		ev.content = content_of(C_ENC);
		snprintf(ev.path, sizeof(ev.path), "/s/a/f%d.pdf", i);
		ev.path_len = strlen(ev.path);
		engine_event(e, &ev);
	}
	T_CHECK(r.detections == 1, "one incident for one attack, not %d", r.detections);
	engine_destroy(e);
}

static void test_files(void)
{
	struct result r = {0};
	struct engine_cfg cfg = {.on_detect = on_detect, .ctx = &r};
	struct engine *e;
	T_CHECK(engine_create(&e, &cfg) == 0, "create");
	engine_add_canary(e, "/s/c.pdf");
	T_CHECK(engine_is_canary(e, "/s/c.pdf", 8) && !engine_is_canary(e, "/s/d.pdf", 8), "canary set");
	static struct ward_event ev;
	for (int i = 0; i < 300; i++) {
		memset(&ev, 0, offsetof(struct ward_event, path));
		ev.ts.tv_sec = 1700000000;
		ev.op = WOP_CREATE;
		ev.proc = &procs[P_OTHER];
		snprintf(ev.path, sizeof(ev.path), "/s/n/%d", i);
		ev.path_len = strlen(ev.path);
		engine_event(e, &ev);
	}
	engine_destroy(e);
	T_CHECK(r.detections == 0, "creates alone detect nothing");
}

/* Idle actors are forgotten; their memory is reused for new ones without leftovers. */
static void test_expire(void)
{
	struct result r = {0};
	struct engine_cfg cfg = {.lookup = lookup, .on_detect = on_detect, .ctx = &r};
	struct engine *e;
	T_CHECK(engine_create(&e, &cfg) == 0, "create");
	static struct ward_event ev;
	uint64_t t = 1700000000ull * 1000000000ull;
	for (int i = 0; i < 100; i++) {
		memset(&ev, 0, offsetof(struct ward_event, path));
		ev.ts.tv_sec = (time_t)(t / 1000000000ull);
		ev.op = WOP_CREATE;
		ev.proc = &procs[P_OTHER];
		snprintf(ev.path, sizeof(ev.path), "/s/old/%d", i);
		ev.path_len = strlen(ev.path);
		engine_event(e, &ev);
	}
	struct engine_stats st;
	engine_stats(e, &st);
	T_CHECK(st.actors >= 3, "actors: %llu", (unsigned long long)st.actors);
	t += 7200ull * 1000000000ull;
	engine_expire(e, t);
	engine_stats(e, &st);
	T_CHECK(st.actors == 0, "all idle actors forgotten: %llu", (unsigned long long)st.actors);
	const char *steps[][2] = {{"/s/a/x.docx", NULL}, {"/s/a/x.docx", "/s/a/x.docx.zz"}};
	for (int i = 0; i < 2; i++) {
		memset(&ev, 0, offsetof(struct ward_event, path));
		ev.ts.tv_sec = (time_t)(t / 1000000000ull) + i;
		ev.op = steps[i][1] ? WOP_RENAME : WOP_CLOSE_WRITE;
		ev.proc = &procs[P_ENC];
		ev.size = 4096;
		if (!steps[i][1])
			ev.content = content_of(C_ENC);
		snprintf(ev.path, sizeof(ev.path), "%s", steps[i][1] ? steps[i][1] : steps[i][0]);
		ev.path_len = strlen(ev.path);
		snprintf(ev.old_path, sizeof(ev.old_path), "%s", steps[i][1] ? steps[i][0] : "");
		ev.old_path_len = strlen(ev.old_path);
		engine_event(e, &ev);
	}
	T_CHECK(r.detections == 1 && r.nfiles == 2, "a recycled actor starts clean: %d detection(s), %d files",
		r.detections, r.nfiles);
	engine_destroy(e);
}

int main(void)
{
	setup_procs();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);
	test_suspect();
	test_allow_hash();
	test_leftovers();
	test_files();
	test_expire();
	return T_DONE("engine");
}
