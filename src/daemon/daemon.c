/* daemon.c: the event loop. One thread: epoll over the fanotify group, the eBPF ring
 * buffer, the control socket, a signalfd and a 1 s timer. Nothing in this loop may block
 * on the outside world: outputs that can stall (files on slow disks, network receivers)
 * are queued to their own threads. */
#include "daemon/daemon.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include <fcntl.h>

#include "capture/proccache.h"
#include "capture/sensor.h"
#include "control/control.h"
#include "core/allow.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "detect/canary.h"
#include "detect/content.h"
#include "detect/engine.h"
#include "daemon/selfcheck.h"
#include "output/ocsf.h"
#include "output/metrics.h"
#include "output/sink.h"
#include "output/syslog.h"
#include "prevent/execguard.h"
#include "prevent/feed.h"
#include "prevent/ioc.h"
#include "prevent/scanner.h"
#include "response/incident.h"
#include "response/pause.h"
#include "response/recover.h"
#include "vault/guard.h"
#include "response/response.h"
#include "trace/ecs.h"

#define KEPT_MAX 64
#define CREATED_RING 8192   /* recent creations and renames, for incidents' outputs */
#define TRACKED 8           /* incidents still collecting their actor's outputs */
#define TRACK_NS (3ull * 1000000000ull)

/* One creation or rename (new name) seen by the sensor: who made which name when. */
struct created {
	uint64_t t_ns;
	pid_t pid, ppid;
	char *path;
};

/* An incident whose actor's still-queued events may add outputs (files it created). */
struct tracked {
	char id[48];
	pid_t pids[256];
	int npids;
	uint64_t until_ns;
	struct jsonw outputs;   /* a JSON array under construction */
	size_t count;
	bool dirty;
};

/* An incident whose processes are kept stopped for an administrator (response action
 * "stop", or monitor mode's nothing-stopped record). */
struct kept {
	char id[48];
	struct response_set set;
	char exe[WARD_EXE_MAX];
};

struct daemon {
	const struct daemon_opts *o;
	struct sensor *sensor;
	struct control *ctl;
	struct jsonw w;
	FILE *events_file;
	char hostname[256];
	time_t started;
	uint64_t out_errors;
	struct engine *engine;
	struct incident_db *incidents;
	struct sink_set *alerts;
	struct kept *kept[KEPT_MAX];
	uint64_t n_incidents, n_stopped, content_errors;
	/* prevention: the exec guard and what it consults */
	struct scanner *scanner;
	struct ioc_store *ioc;
	pthread_mutex_t ioc_lock;  /* lookups come from guard threads */
	struct execguard *guard;
	uint64_t n_denied;
	/* the vault */
	struct recover_fs vfs[RECOVER_MAX_FS];
	int nvfs;
	struct vault_guard *vguard;
	pthread_mutex_t allow_lock;   /* allow-list read from vault guard threads */
	struct allow_entry *allow;    /* the allow-list, for the vault guard's threads */
	int nallow;
	pthread_mutex_t hash_lock;    /* the cache of programs' sha256 (engine and guard threads) */
	struct exe_hash {
		pid_t pid;
		uint64_t start_ns, exe_hash;
		int rc;
		uint8_t sha256[32];
	} hashes[256];
	struct path_hash {             /* a program by path and identity: for processes gone */
		uint64_t path_hash;
		dev_t dev;
		ino_t ino;
		struct timespec mtime, ctime;
		uint8_t sha256[32];
	} path_hashes[64];
	struct created *ring;         /* CREATED_RING entries, allocated on first use */
	size_t ring_next;
	struct tracked *tracked[TRACKED];
	struct metrics_registry *metrics;
	struct metrics_server *metrics_srv;
	struct pause_set pauses;      /* suspects paused while their queued events are judged */
};

#define PAUSE_MAX_NS (250ull * 1000000ull) /* a flood must not hold an innocent process */

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The engine's first strong indicator for a process below the threshold (protect mode):
 * pause it until the events it already caused are judged (see response/pause.c). */
static void on_suspect(const struct suspect *s, void *ctx)
{
	struct daemon *d = ctx;
	if (d->o->cfg->mode != WARD_MODE_PROTECT)
		return; /* monitor mode (also after a reload) touches nothing */
	uint64_t now = mono_ns();
	int rc = pause_add(&d->pauses, s->pid, s->start_ns, now);
	if (rc < 0)
		log_debug("pause of pid %d: %s", (int)s->pid, strerror(-rc));
	else if (rc > 0)
		log_debug("pid %d paused while its events are judged (%s: %s)", (int)s->pid, s->why->indicator,
			  s->why->path);
	/* Its parent too, when that is a program driving it (a shell loop starting one
	 * encryptor per file, a process forking a worker per file): otherwise the next child
	 * starts while this one waits. Not when the parent is a service or session root (its
	 * own parent is init: smbd, sshd, cron serve other clients) or ward itself. */
	const struct ward_proc *p = sensor_proc(d->sensor, s->pid);
	pid_t pp = p && p->known ? p->ppid : 0;
	const struct ward_proc *pr = pp > 1 ? sensor_proc(d->sensor, pp) : NULL;
	if (pr && pr->known && pr->ppid > 1 && pp != getpid() && !pr->exit_ns)
		pause_add(&d->pauses, pp, pr->start_ns, now);
}

/* The alert sinks a configuration asks for: the rotated JSON file and, optionally, syslog.
 * 0 or -errno (logged). */
static int open_alerts(const struct ward_config *c, const char *hostname, struct sink_set **out)
{
	char apath[CONFIG_PATH_MAX + 32];
	struct sink_set *set = NULL;
	int rc;
	if (c->alerts_file[0])
		snprintf(apath, sizeof(apath), "%s", c->alerts_file);
	else
		snprintf(apath, sizeof(apath), "%s/alerts.json", c->state_dir);
	if ((rc = sink_set_create(&set)) || (rc = sink_add_file(set, apath, c->alerts_max_bytes, 5))) {
		log_err("alerts file %s: %s", apath, strerror(-rc));
		goto fail;
	}
	if (c->syslog_transport >= 0) {
		struct syslog_cfg sy = {.transport = (enum syslog_transport)c->syslog_transport,
					.address = c->syslog_address[0] ? c->syslog_address : NULL,
					.hostname = hostname};
		if ((rc = sink_add_syslog(set, &sy))) {
			log_err("syslog %s: %s", c->syslog_address[0] ? c->syslog_address : "/dev/log", strerror(-rc));
			goto fail;
		}
	}
	*out = set;
	return 0;
fail:
	sink_set_destroy(set);
	return rc;
}

/* One alert in the configured format to every alert sink (never blocks: queued). */
static void emit_alert(struct daemon *d, const struct alert_view *v, int level, const char *title, double score)
{
	if (!d->alerts)
		return;
	struct jsonw w;
	jsonw_init(&w);
	int rc = d->o->cfg->alerts_ocsf ? alert_view_to_ocsf(v, &w) : alert_view_to_ecs(v, &w);
	if (rc == 0) {
		struct sink_meta meta = {.incident = v->incident_id, .rule = v->rule_name, .score = score, .has_score = true};
		sink_emit_meta(d->alerts, level, w.buf, w.len, title, &meta);
	}
	jsonw_free(&w);
}

static bool has_pid(const pid_t *set, int n, pid_t p)
{
	for (int i = 0; i < n; i++)
		if (set[i] == p)
			return true;
	return false;
}

static void remember_created(struct daemon *d, const struct ward_event *ev)
{
	if (!d->ring && !(d->ring = calloc(CREATED_RING, sizeof(*d->ring))))
		return;
	struct created *c = &d->ring[d->ring_next++ % CREATED_RING];
	char *p = realloc(c->path, ev->path_len + 1);
	if (!p)
		return;
	memcpy(p, ev->path, ev->path_len + 1);
	c->path = p;
	c->t_ns = (uint64_t)ev->ts.tv_sec * 1000000000ull + (uint64_t)ev->ts.tv_nsec;
	c->pid = ev->pid;
	c->ppid = ev->proc->ppid;
}

static void track_add(struct tracked *t, const char *path)
{
	jsonw_str(&t->outputs, NULL, path);
	t->count++;
	t->dirty = true;
}

/* The files the actor's tree created or renamed to, from a minute before its first scored
 * event on: seeds the incident's outputs, which later events of the same pids extend. */
static struct tracked *track_incident(struct daemon *d, const char *id, const pid_t *pids, int npids,
				      uint64_t since_ns, uint64_t now_ns)
{
	int slot = 0;
	for (int i = 0; i < TRACKED; i++)
		if (!d->tracked[i] || d->tracked[i]->until_ns < d->tracked[slot]->until_ns) {
			slot = i;
			if (!d->tracked[i])
				break;
		}
	struct tracked *t = d->tracked[slot];
	if (t) {
		jsonw_free(&t->outputs);
		free(t);
	}
	t = d->tracked[slot] = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	snprintf(t->id, sizeof(t->id), "%s", id);
	for (int i = 0; i < npids && t->npids < 256; i++)
		if (!has_pid(t->pids, t->npids, pids[i]))
			t->pids[t->npids++] = pids[i];
	t->until_ns = now_ns + TRACK_NS;
	jsonw_init(&t->outputs);
	jsonw_arr_open(&t->outputs, NULL);
	if (!d->ring)
		return t;
	/* children of the actor's processes count too (a shell loop's openssl, a worker),
	 * found by parent pid; two passes catch grandchildren */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < CREATED_RING; i++) {
			struct created *c = &d->ring[i];
			if (c->path && c->t_ns >= since_ns && has_pid(t->pids, t->npids, c->ppid) &&
			    !has_pid(t->pids, t->npids, c->pid) && t->npids < 256)
				t->pids[t->npids++] = c->pid;
		}
	for (size_t i = 0; i < CREATED_RING; i++) {
		struct created *c = &d->ring[i];
		if (c->path && c->t_ns >= since_ns && has_pid(t->pids, t->npids, c->pid))
			track_add(t, c->path);
	}
	return t;
}

/* Saves tracked outputs that changed; forgets trackers past their time. */
static void flush_tracked(struct daemon *d, uint64_t now_ns)
{
	for (int i = 0; i < TRACKED; i++) {
		struct tracked *t = d->tracked[i];
		if (!t)
			continue;
		if (t->dirty && d->incidents) {
			struct jsonw w = t->outputs; /* close a copy of the array */
			char *copy = malloc(w.len + 2);
			if (copy) {
				memcpy(copy, w.buf ? w.buf : "[", w.len + 1);
				strcat(copy, "]");
				incident_set_outputs(d->incidents, t->id, copy);
				free(copy);
			}
			t->dirty = false;
		}
		if (now_ns > t->until_ns) {
			jsonw_free(&t->outputs);
			free(t);
			d->tracked[i] = NULL;
		}
	}
}

/* The vault guard's question: is this process allow-listed (no copy before its writes)?
 * From guard threads: reads /proc/<pid>/exe and the daemon's own copy of the allow-list. */
/* The sha256 of the program a process runs (read through /proc/<pid>/exe: the file that
 * runs, even if its path was replaced or deleted since), cached per process and program:
 * exec keeps the pid and the start time, so the program's path is part of the key. 0 or
 * -errno. */
static int proc_exe_sha256(struct daemon *d, pid_t pid, uint64_t start_ns, const char *exe, uint8_t out[32])
{
	struct exe_hash *h = &d->hashes[(unsigned)pid % 256];
	uint64_t eh = 1469598103934665603ull;
	for (const char *q = exe; *q; q++)
		eh = (eh ^ (unsigned char)*q) * 1099511628211ull;
	pthread_mutex_lock(&d->hash_lock);
	bool hit = h->pid == pid && h->start_ns == start_ns && h->exe_hash == eh && h->rc == 0;
	if (hit)
		memcpy(out, h->sha256, 32);
	pthread_mutex_unlock(&d->hash_lock);
	if (hit)
		return 0;
	char path[64];
	uint8_t sha1[20], md5[16], sum[32];
	struct stat st;
	struct path_hash *ph = &d->path_hashes[eh % 64];
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;
	if (fd < 0) {
		/* The process is gone (its events are read after it exited: a short-lived
		 * program). The program at its path is trusted only if it is the very file
		 * hashed for an earlier process (same inode, unchanged since): stat() raises no
		 * permission event, and nothing is opened by path. */
		rc = -errno;
		if (stat(exe, &st) == 0) {
			pthread_mutex_lock(&d->hash_lock);
			bool same = ph->path_hash == eh && ph->dev == st.st_dev && ph->ino == st.st_ino &&
				    ph->mtime.tv_sec == st.st_mtim.tv_sec && ph->mtime.tv_nsec == st.st_mtim.tv_nsec &&
				    ph->ctime.tv_sec == st.st_ctim.tv_sec && ph->ctime.tv_nsec == st.st_ctim.tv_nsec;
			if (same)
				memcpy(out, ph->sha256, 32);
			pthread_mutex_unlock(&d->hash_lock);
			if (same)
				return 0;
		}
		return rc;
	}
	rc = fstat(fd, &st) ? -errno : scanner_digest_fd(fd, 1ull << 32, sum, sha1, md5);
	close(fd);
	if (rc)
		return rc;
	memcpy(out, sum, 32);
	pthread_mutex_lock(&d->hash_lock);
	*h = (struct exe_hash){.pid = pid, .start_ns = start_ns, .exe_hash = eh, .rc = 0};
	memcpy(h->sha256, sum, 32);
	*ph = (struct path_hash){.path_hash = eh, .dev = st.st_dev, .ino = st.st_ino, .mtime = st.st_mtim,
				 .ctime = st.st_ctim};
	memcpy(ph->sha256, sum, 32);
	pthread_mutex_unlock(&d->hash_lock);
	return 0;
}

static int engine_exe_sha256(void *ctx, const struct ward_proc *p, uint8_t out[32])
{
	return proc_exe_sha256(ctx, p->pid, p->start_ns, p->exe, out);
}

/* Whether exe (the path pid runs) is allow-listed; an entry with a hash also needs the
 * running program's content to match. */
static bool allow_match(struct daemon *d, pid_t pid, uint64_t start_ns, const char *exe)
{
	bool path_ok = false, need_hash = false;
	uint8_t want[32];
	pthread_mutex_lock(&d->allow_lock);
	for (int i = 0; i < d->nallow && !path_ok; i++) {
		if (strcmp(d->allow[i].path, exe))
			continue;
		if (!d->allow[i].has_hash)
			path_ok = true;
		else if (!need_hash) {
			need_hash = true;
			memcpy(want, d->allow[i].sha256, 32);
		}
	}
	pthread_mutex_unlock(&d->allow_lock);
	if (path_ok || !need_hash)
		return path_ok;
	uint8_t got[32];
	return proc_exe_sha256(d, pid, start_ns, exe, got) == 0 && memcmp(got, want, 32) == 0;
}

static bool vault_trusted(void *ctx, pid_t pid)
{
	struct daemon *d = ctx;
	char link[64], exe[WARD_EXE_MAX];
	snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
	ssize_t n = readlink(link, exe, sizeof(exe) - 1);
	if (n <= 0)
		return false;
	exe[n] = '\0';
	struct proc_stat ps;
	if (proccache_stat(pid, &ps))
		return false;
	return allow_match(d, pid, ps.start_ns, exe);
}

/* Adds an allow-list entry ("PATH [sha256:HEX]") to the engine and the guard's copy. */
static void allow_add(struct daemon *d, const char *entry)
{
	struct allow_entry a;
	char err[256];
	if (allow_parse(entry, &a, err, sizeof(err))) {
		log_warn("allow-list: %s", err);
		return;
	}
	if (d->engine)
		engine_allow_exe(d->engine, entry);
	pthread_mutex_lock(&d->allow_lock);
	struct allow_entry *n = realloc(d->allow, (size_t)(d->nallow + 1) * sizeof(*n));
	if (n) {
		d->allow = n;
		d->allow[d->nallow++] = a;
	}
	pthread_mutex_unlock(&d->allow_lock);
}

static int start_vault(struct daemon *d)
{
	const struct ward_config *c = d->o->cfg;
	char err[512];
	struct vault_store_opts vo = {.max_bytes = c->vault_max_bytes, .max_age_s = c->vault_max_age_s};
	int n = recover_open_all((const char *const *)c->watch, c->nwatch, c->vault_dir, &vo, d->vfs, err, sizeof(err));
	if (n < 0) {
		log_err("vault: %s", err);
		return n;
	}
	d->nvfs = n;
	struct vault_guard_fs gfs[RECOVER_MAX_FS];
	for (int i = 0; i < n; i++) {
		gfs[i].mount = d->vfs[i].mount;
		gfs[i].store = d->vfs[i].store;
	}
	struct vault_guard_opts go = {
		.large_bytes = c->vault_large_bytes,
		.policy = c->vault_fail_closed ? VAULT_FAIL_CLOSED : VAULT_FAIL_OPEN,
		.trusted = vault_trusted, .trusted_ctx = d,
	};
	int rc = vault_guard_start(gfs, (unsigned)n, &go, &d->vguard);
	if (rc) {
		/* Linux < 6.14 or a filesystem without pre-content events (tmpfs): say exactly
		 * what is lost; detection and everything else still run */
		log_warn("unavailable: vault copy-before-write (%s): originals are not kept; "
			 "restore covers nothing changed from now on", strerror(-rc));
		recover_close_all(d->vfs, d->nvfs);
		d->nvfs = 0;
		return 0;
	}
	for (int i = 0; i < n; i++)
		log_info("enabled: vault %s for %s (%s on failure)", d->vfs[i].vault_dir, d->vfs[i].mount,
			 c->vault_fail_closed ? "deny" : "allow");
	return 0;
}

/* Restores an incident ("restore ID" / "restore-dry ID") or a path ("restore-path
 * BEFORE_NS DRY PATH"), writing the JSON-lines report to STATE/restore-*.jsonl. */
static void do_restore(struct daemon *d, const char *req, struct jsonw *w)
{
	const struct ward_config *c = d->o->cfg;
	struct vault_restore_stats st = {0};
	char report[CONFIG_PATH_MAX + 128];
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	snprintf(report, sizeof(report), "%s/restore-%lld.jsonl", c->state_dir, (long long)now.tv_sec);
	FILE *rf = fopen(report, "ae");
	int rc = 0;
	bool dry = false;
	if (strncmp(req, "restore-path ", 13) == 0) {
		long long before = 0;
		int drynum = 0, off = 0;
		if (sscanf(req + 13, "%lld %d %n", &before, &drynum, &off) < 2 || req[13 + off] != '/') {
			jsonw_str(w, "error", "malformed restore-path request");
			goto out;
		}
		dry = drynum != 0;
		const char *path = req + 13 + off;
		for (int i = 0; i < d->nvfs; i++) {
			struct vault_restore_opts ro = {.dry_run = dry, .report = rf};
			int e = vault_restore_by_path(d->vfs[i].store, path, strlen(path), before, &ro, &st);
			if (e && !rc)
				rc = e;
		}
	} else {
		dry = strncmp(req, "restore-dry ", 12) == 0;
		const char *id = req + (dry ? 12 : 8);
		flush_tracked(d, 0); /* outputs seen since the last tick go into the incident first */
		struct incident inc;
		rc = d->incidents ? incident_get(d->incidents, id, &inc) : -ENOENT;
		if (rc) {
			jsonw_str(w, "error", rc == -ENOENT ? "no such incident" : "cannot read the incident database");
			goto out;
		}
		for (int i = 0; i < d->nvfs; i++) {
			char q[4300];
			snprintf(q, sizeof(q), "%s/%s", d->vfs[i].quarantine_dir, inc.id);
			mkdir(d->vfs[i].quarantine_dir, 0700);
			struct recover_opts ro = {.dry_run = dry, .report = rf, .quarantine_dir = q};
			int e = recover_incident(d->vfs[i].store, d->vfs[i].roots, d->vfs[i].nroots, &inc, &ro, &st);
			if (e && !rc)
				rc = e;
		}
		if (!dry && !rc)
			incident_set_status(d->incidents, inc.id, "restored");
		incident_clear(&inc);
	}
	if (!d->nvfs)
		jsonw_str(w, "error", "the vault is not enabled: nothing was kept");
	jsonw_bool(w, "dry_run", dry);
	jsonw_uint(w, "restored", dry ? st.would_restore : st.restored);
	jsonw_uint(w, "unchanged", st.unchanged);
	jsonw_uint(w, "quarantined", dry ? st.would_quarantine : st.quarantined);
	jsonw_uint(w, "stale", st.stale_links);
	jsonw_uint(w, "failed", st.failed);
	jsonw_str(w, "report", report);
	if (rc)
		jsonw_str(w, "warning", strerror(-rc));
out:
	if (rf)
		fclose(rf);
}

/* The exec guard's hash check: the indicator store (sha256). Called from guard threads. */
static int ioc_check(void *ctx, const uint8_t sha256[32], char *why, size_t whylen)
{
	struct daemon *d = ctx;
	struct ioc_match m;
	pthread_mutex_lock(&d->ioc_lock);
	int rc = ioc_lookup_sha256(d->ioc, sha256, &m);
	pthread_mutex_unlock(&d->ioc_lock);
	if (rc == 1) {
		/* the scanner names the hash; this says where the indicator came from */
		snprintf(why, whylen, "source %s%s%s", m.source, m.name[0] ? ", " : "", m.name);
		return 1;
	}
	return 0;
}

/* An exec denied or a known-bad file written: an alert. From guard threads (the sinks are
 * thread-safe; nothing here touches the loop's state but counters). */
static void on_exec_alert(void *ctx, const struct execguard_alert *a)
{
	struct daemon *d = ctx;
	struct timespec now;
	if (a->pid == getpid())
		return; /* ward's own writes: copies into the vault of a file that was known-bad */
	clock_gettime(CLOCK_REALTIME, &now);
	char title[768], id[48];
	incident_new_id(id, (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec);
	snprintf(title, sizeof(title), "%s %s: %s", a->when == EXECGUARD_AT_EXEC ? (a->denied ? "execution denied:" : "known-bad program ran (deadline):") : "known-bad file written:",
		 a->path, a->reason);
	const char *files[1] = {a->path};
	const char *ev[1] = {a->reason};
	struct ward_proc p;
	bool have = proccache_read_proc(a->pid, &p) == 0;
	struct alert_view v = {
		.incident_id = id, .rule_name = "ward.prevent.known_bad", .title = title,
		.action = a->when == EXECGUARD_AT_EXEC ? "execution-denied" : "malware-written",
		.blocked = a->denied, .score = 100, .severity = ALERT_SEV_HIGH, .time = now,
		.files = files, .nfiles = 1, .hostname = d->hostname, .evidence = ev, .nevidence = 1,
	};
	v.proc.pid = a->pid;
	if (have) {
		v.proc.ppid = p.ppid;
		v.proc.uid = p.uid;
		v.proc.uid_known = true;
		v.proc.exe = p.exe;
		v.proc.args = p.args;
		v.proc.args_len = p.args_len;
	}
	emit_alert(d, &v, LOG_ERR, title, 100);
	if (a->denied)
		__atomic_add_fetch(&d->n_denied, 1, __ATOMIC_RELAXED);
	log_warn("ALERT %s: %s (pid %d)", id, title, a->pid);
}

/* Imports every file in feeds_dir (idempotent: re-imports add nothing). */
static void import_feeds(struct daemon *d)
{
	const char *dir = d->o->cfg->feeds_dir;
	if (!dir[0] || !d->ioc)
		return;
	DIR *dd = opendir(dir);
	if (!dd) {
		log_warn("feeds_dir %s: %s", dir, strerror(errno));
		return;
	}
	struct dirent *de;
	while ((de = readdir(dd))) {
		if (de->d_name[0] == '.')
			continue;
		char path[CONFIG_PATH_MAX + 256], msg[512];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		struct feed_import res;
		struct feed_error fe;
		pthread_mutex_lock(&d->ioc_lock);
		int rc = feed_import_file(d->ioc, path, FEED_AUTO, NULL, &res, &fe);
		if (rc == 0)
			ioc_load(d->ioc);
		pthread_mutex_unlock(&d->ioc_lock);
		if (rc) {
			feed_error_format(&fe, path, msg, sizeof(msg));
			log_err("feed rejected, nothing imported from it: %s", msg);
		} else if (res.added || res.updated) {
			log_info("feed %s: %zu new, %zu updated indicators", path, res.added, res.updated);
		}
	}
	closedir(dd);
}

static int start_prevention(struct daemon *d)
{
	const struct ward_config *c = d->o->cfg;
	char err[SCANNER_ERR_MAX];
	int rc;
	pthread_mutex_init(&d->ioc_lock, NULL);
	struct scanner_opts so = {0};
	if ((rc = scanner_create(&so, &d->scanner)))
		return rc;
	if (c->nrules && (rc = scanner_load_rules(d->scanner, (const char *const *)c->rules, (size_t)c->nrules, err,
						  sizeof(err)))) {
		log_err("YARA rules not loaded:\n%s", err);
		return rc;
	}
	if ((rc = ioc_open(&d->ioc, c->state_dir))) {
		log_err("indicator store %s/ioc.db: %s", c->state_dir, strerror(-rc));
		return rc;
	}
	import_feeds(d);
	ioc_load(d->ioc);
	scanner_set_hash_check(d->scanner, ioc_check, d);
	const char *root[1] = {"/"};
	struct execguard_opts eo = {
		.scanner = d->scanner,
		.paths = c->nexec_paths ? (const char *const *)c->exec_paths : root,
		.npaths = c->nexec_paths ? (size_t)c->nexec_paths : 1,
		.watch_writes = true, .alert = on_exec_alert, .alert_ctx = d,
	};
	if ((rc = execguard_start(&eo, &d->guard)))
		return rc;
	log_info("enabled: exec guard (%d YARA rule file(s), %lld sha256 indicators)", c->nrules,
		 (long long)ioc_count(d->ioc, IOC_SHA256));
	return 0;
}

static void reload_prevention(struct daemon *d)
{
	const struct ward_config *c = d->o->cfg;
	char err[SCANNER_ERR_MAX];
	if (!d->scanner)
		return;
	if (c->nrules && scanner_load_rules(d->scanner, (const char *const *)c->rules, (size_t)c->nrules, err, sizeof(err)))
		log_err("SIGHUP: YARA rules not reloaded, the old ones stay:\n%s", err);
	import_feeds(d);
	pthread_mutex_lock(&d->ioc_lock);
	ioc_load(d->ioc);
	pthread_mutex_unlock(&d->ioc_lock);
	scanner_invalidate(d->scanner);
	log_info("SIGHUP: rules and indicators reloaded (%lld sha256 indicators)", (long long)ioc_count(d->ioc, IOC_SHA256));
}

static void load_allow(struct daemon *d);

static void *destroy_sinks(void *set)
{
	sink_set_destroy(set); /* lets queues drain for a while: never in the event loop */
	return NULL;
}

static bool same_list(char *const *a, int na, char *const *b, int nb)
{
	if (na != nb)
		return false;
	for (int i = 0; i < na; i++)
		if (strcmp(a[i], b[i]))
			return false;
	return true;
}

/* Moves a list from the new configuration into the running one; the old goes to n and is
 * freed with it. */
static void take_list(char **dst, int *ndst, char **src, int *nsrc)
{
	for (int i = 0; i < CONFIG_MAX_LIST; i++) {
		char *t = dst[i];
		dst[i] = src[i];
		src[i] = t;
	}
	int t = *ndst;
	*ndst = *nsrc;
	*nsrc = t;
}

/* SIGHUP: re-reads the configuration file. Everything is validated first: a file with an
 * error changes nothing. Keys the running sensor, vault or guard were built from need a
 * restart and are named; the others take effect now. Events keep flowing meanwhile: this
 * runs between two reads of the queue, and permission events are answered by the guards'
 * own threads. */
static void reload_config(struct daemon *d)
{
	struct ward_config *c = d->o->cfg, n;
	const char *path = d->o->config_path;
	char err[640];
	if (!path) {
		log_info("SIGHUP: started without --config: no configuration file to re-read");
		return;
	}
	config_init(&n);
	if (config_load_file(&n, path, err, sizeof(err))) {
		log_err("SIGHUP: %s; the running configuration is kept", err);
		goto out;
	}
	unsigned cli = d->o->cli;
	/* what needs a restart: said, not applied */
	char later[512] = "";
	size_t ll = 0;
#define LATER(cond, key)                                                                        \
	do {                                                                                    \
		if ((cond) && ll < sizeof(later) - 32)                                          \
			ll += (size_t)snprintf(later + ll, sizeof(later) - ll, "%s%s", ll ? ", " : "", key); \
	} while (0)
	if (!(cli & DAEMON_CLI_WATCH)) {
		LATER(!same_list(c->watch, c->nwatch, n.watch, n.nwatch), "[ward] watch");
		LATER(!same_list(c->exclude, c->nexclude, n.exclude, n.nexclude), "[ward] exclude");
	}
	if (!(cli & DAEMON_CLI_STATE)) {
		LATER(strcmp(c->state_dir, n.state_dir), "[ward] state_dir");
		LATER(strcmp(c->runtime_dir, n.runtime_dir), "[ward] runtime_dir");
	}
	if (!(cli & DAEMON_CLI_FEATURES)) {
		LATER(c->no_bpf != n.no_bpf, "[sensor] ebpf");
		LATER(c->detect != n.detect, "[detect] enabled");
		LATER(c->prevent != n.prevent, "[prevent] enabled");
		LATER(c->vault != n.vault, "[vault] enabled");
	}
	LATER(c->unlimited_queue != n.unlimited_queue, "[sensor] unlimited_queue");
	LATER(c->proc_grace_s != n.proc_grace_s, "[sensor] process_grace");
	LATER(c->canaries != n.canaries || c->canary_depth != n.canary_depth ||
	      !same_list(c->canary_names, c->ncanary_names, n.canary_names, n.ncanary_names), "[canary]");
	LATER(!same_list(c->exec_paths, c->nexec_paths, n.exec_paths, n.nexec_paths), "[prevent] exec_path");
	LATER(strcmp(c->vault_dir, n.vault_dir) || c->vault_max_bytes != n.vault_max_bytes ||
	      c->vault_max_age_s != n.vault_max_age_s || c->vault_fail_closed != n.vault_fail_closed ||
	      c->vault_large_bytes != n.vault_large_bytes, "[vault]");
	LATER(strcmp(c->metrics_listen, n.metrics_listen), "[output] metrics");
#undef LATER
	if (ll)
		log_warn("SIGHUP: %s: changed %s; this takes effect at the next restart", path, later);

	/* what takes effect now */
	int changed = 0;
	if (!(cli & DAEMON_CLI_MODE) && n.mode != c->mode) {
		c->mode = n.mode;
		log_warn("SIGHUP: mode is now %s", c->mode == WARD_MODE_PROTECT ? "protect" : "monitor");
		changed++;
	}
	if (!(cli & DAEMON_CLI_LOG) && n.log_level != c->log_level) {
		c->log_level = ward_log_level = n.log_level;
		changed++;
	}
	if (n.kill != c->kill) {
		c->kill = n.kill;
		changed++;
	}
	if (n.threshold != c->threshold || n.half_life_s != c->half_life_s) {
		c->threshold = n.threshold;
		c->half_life_s = n.half_life_s;
		if (d->engine)
			engine_set_tuning(d->engine, c->threshold, c->half_life_s);
		changed++;
	}
	if (!same_list(c->allow_exe, c->nallow, n.allow_exe, n.nallow)) {
		take_list(c->allow_exe, &c->nallow, n.allow_exe, &n.nallow);
		/* the allow-list is the file's plus what `ward allow` added (allow.list) */
		if (d->engine)
			engine_allow_clear(d->engine);
		pthread_mutex_lock(&d->allow_lock);
		d->nallow = 0;
		pthread_mutex_unlock(&d->allow_lock);
		for (int i = 0; i < c->nallow; i++)
			allow_add(d, c->allow_exe[i]);
		if (d->o->control)
			load_allow(d);
		changed++;
	}
	if (!same_list(c->rules, c->nrules, n.rules, n.nrules)) {
		take_list(c->rules, &c->nrules, n.rules, &n.nrules);
		changed++; /* loaded by reload_prevention */
	}
	if (strcmp(c->feeds_dir, n.feeds_dir)) {
		snprintf(c->feeds_dir, sizeof(c->feeds_dir), "%s", n.feeds_dir);
		changed++;
	}
	if (!(cli & DAEMON_CLI_EVENTS) && strcmp(c->events_file, n.events_file)) {
		FILE *nf = n.events_file[0] ? fopen(n.events_file, "ae") : NULL;
		if (n.events_file[0] && !nf) {
			log_err("SIGHUP: events_file %s: %s; the old one is kept", n.events_file, strerror(errno));
		} else {
			if (d->events_file)
				fclose(d->events_file);
			d->events_file = nf;
			snprintf(c->events_file, sizeof(c->events_file), "%s", n.events_file);
			changed++;
		}
	}
	if (d->alerts && (strcmp(c->alerts_file, n.alerts_file) || c->alerts_max_bytes != n.alerts_max_bytes ||
			  c->alerts_ocsf != n.alerts_ocsf || c->syslog_transport != n.syslog_transport ||
			  strcmp(c->syslog_address, n.syslog_address))) {
		struct ward_config t = *c; /* only the output keys are read */
		snprintf(t.alerts_file, sizeof(t.alerts_file), "%s", n.alerts_file);
		snprintf(t.syslog_address, sizeof(t.syslog_address), "%s", n.syslog_address);
		t.alerts_max_bytes = n.alerts_max_bytes;
		t.syslog_transport = n.syslog_transport;
		struct sink_set *ns = NULL;
		if (open_alerts(&t, d->hostname, &ns) == 0) {
			struct sink_set *old = d->alerts;
			pthread_t th;
			d->alerts = ns;
			if (pthread_create(&th, NULL, destroy_sinks, old) == 0)
				pthread_detach(th);
			else
				sink_set_destroy(old);
			snprintf(c->alerts_file, sizeof(c->alerts_file), "%s", n.alerts_file);
			snprintf(c->syslog_address, sizeof(c->syslog_address), "%s", n.syslog_address);
			c->alerts_max_bytes = n.alerts_max_bytes;
			c->syslog_transport = n.syslog_transport;
			c->alerts_ocsf = n.alerts_ocsf;
			changed++;
		} else {
			log_err("SIGHUP: the new alert outputs could not be opened; the old ones are kept");
		}
	}
	log_info("SIGHUP: %s re-read: %d change(s) applied", path, changed);
out:
	config_free(&n);
}

static const struct ward_proc *lookup_proc(void *ctx, pid_t pid)
{
	struct daemon *d = ctx;
	return sensor_proc(d->sensor, pid);
}

static char *json_of_args(const char *args, size_t len)
{
	struct jsonw w;
	jsonw_init(&w);
	jsonw_arr_open(&w, NULL);
	for (size_t i = 0; i < len;) {
		size_t l = strnlen(args + i, len - i);
		jsonw_strn(&w, NULL, args + i, l);
		i += l + 1;
	}
	jsonw_arr_close(&w);
	return w.oom ? (jsonw_free(&w), NULL) : w.buf;
}

static void on_detect(const struct detection *det, void *ctx)
{
	struct daemon *d = ctx;
	const struct ward_config *c = d->o->cfg;
	bool protect = c->mode == WARD_MODE_PROTECT;
	struct response_set *set = calloc(1, sizeof(*set));
	struct incident inc = {0};
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	uint64_t now_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;

	if (protect && set) {
		/* stop first: every other step can wait, the encryption cannot */
		if (strcmp(det->level, "executable") == 0)
			response_stop_more(det->contributors, det->ncontributors, set);
		else
			response_stop_tree(det->pid, det->start_ns, set);
		d->n_stopped += (uint64_t)set->n;
		/* stopped for good now: a pause must not resume them */
		for (int i = 0; i < set->n; i++)
			pause_forget(&d->pauses, set->pid[i]);
	}
	incident_new_id(inc.id, now_ns);
	inc.created_ns = now_ns;
	inc.detected_ns = now_ns;
	inc.stopped_ns = set ? set->stopped_ns : 0;
	snprintf(inc.status, sizeof(inc.status), "%s", !protect ? "reported" : (set && set->n) ? "stopped" : "exited");
	snprintf(inc.level, sizeof(inc.level), "%s", det->level);
	inc.pid = det->pid;
	inc.ppid = det->ppid;
	inc.start_ns = det->start_ns;
	inc.uid = det->uid;
	snprintf(inc.exe, sizeof(inc.exe), "%s", det->exe);
	/* read through /proc/<pid>/exe (works after the file was deleted, as droppers do),
	 * from the cache the allow-list shares; "" when it cannot be read */
	uint8_t sum[32];
	if (proc_exe_sha256(d, det->pid, det->start_ns, det->exe, sum) == 0)
		scanner_hex(sum, 32, inc.exe_sha256);
	inc.args_json = json_of_args(det->args, det->args_len);
	inc.score = det->score;
	inc.first_ns = det->first_ns;
	inc.nfiles = det->nfiles_total;

	struct jsonw w;
	jsonw_init(&w);
	jsonw_arr_open(&w, NULL);
	for (int i = 0; set && i < set->n; i++)
		jsonw_int(&w, NULL, set->pid[i]);
	jsonw_arr_close(&w);
	inc.pids_json = w.buf;
	jsonw_init(&w);
	jsonw_arr_open(&w, NULL);
	const char *ev_text[ENGINE_MAX_EVIDENCE];
	char ev_buf[ENGINE_MAX_EVIDENCE][400];
	for (int i = 0; i < det->nevidence; i++) {
		const struct evidence *e = &det->evidence[i];
		jsonw_obj_open(&w, NULL);
		jsonw_str(&w, "indicator", e->indicator);
		jsonw_int(&w, "points", e->points);
		jsonw_str(&w, "detail", e->detail);
		jsonw_str(&w, "path", e->path);
		jsonw_time(&w, "time", (int64_t)(e->t_ns / 1000000000ull), (long)(e->t_ns % 1000000000ull));
		jsonw_obj_close(&w);
		snprintf(ev_buf[i], sizeof(ev_buf[i]), "%s (+%u): %s: %s", e->indicator, e->points, e->detail, e->path);
		ev_text[i] = ev_buf[i];
	}
	jsonw_arr_close(&w);
	inc.evidence_json = w.buf;
	jsonw_init(&w);
	jsonw_arr_open(&w, NULL);
	const char *files[ALERT_VIEW_MAX_FILES];
	int nf = 0;
	for (int i = 0; i < det->nfiles; i++) {
		jsonw_str(&w, NULL, det->files[i]);
		if (nf < ALERT_VIEW_MAX_FILES)
			files[nf++] = det->files[i];
	}
	jsonw_arr_close(&w);
	inc.files_json = w.buf;

	/* the alert: ECS to the alert sinks */
	char title[768];
	snprintf(title, sizeof(title), "ransomware behaviour by %s (pid %d): %s%s", det->exe[0] ? det->exe : "?",
		 det->pid, !protect ? "reported (monitor mode)" : set && set->n ? "stopped" : "already exited",
		 protect && set && set->n ? (c->kill ? ", killed" : ", kept stopped") : "");
	struct alert_view v = {
		.incident_id = inc.id, .rule_name = "ward.ransomware.behaviour", .title = title,
		.action = "ransomware-detected", .blocked = protect && set && set->n > 0,
		.score = det->score, .severity = ALERT_SEV_CRITICAL, .time = now,
		.first_seen = {.tv_sec = (time_t)(det->first_ns / 1000000000ull), .tv_nsec = (long)(det->first_ns % 1000000000ull)},
		.files = files, .nfiles = (size_t)nf, .hostname = d->hostname,
		.evidence = ev_text, .nevidence = (size_t)det->nevidence,
	};
	v.proc.pid = det->pid;
	v.proc.ppid = det->ppid;
	v.proc.uid = det->uid;
	v.proc.uid_known = true;
	v.proc.exe = det->exe;
	v.proc.args = det->args;
	v.proc.args_len = det->args_len;
	v.proc.sha256 = inc.exe_sha256[0] ? inc.exe_sha256 : NULL;
	emit_alert(d, &v, LOG_CRIT, title, det->score);
	metric_inc(&ward_metrics.incidents);
	if (set && set->n)
		metric_inc(&ward_metrics.actors_stopped);
	log_warn("ALERT %s: %s; score %.0f; %d indicator(s), %u file(s)", inc.id, title, det->score,
		 det->nevidence, det->nfiles_total);
	d->n_incidents++;

	if (protect && set && set->n) {
		if (c->kill) {
			response_kill(set);
			snprintf(inc.status, sizeof(inc.status), "killed");
		} else {
			/* kept stopped for `ward allow ID` or an administrator's kill */
			struct kept *k = calloc(1, sizeof(*k));
			int slot = -1;
			for (int i = 0; i < KEPT_MAX && slot < 0; i++)
				if (!d->kept[i])
					slot = i;
			if (k && slot >= 0) {
				snprintf(k->id, sizeof(k->id), "%s", inc.id);
				snprintf(k->exe, sizeof(k->exe), "%s", det->exe);
				k->set = *set;
				d->kept[slot] = k;
				set->n = 0; /* the pidfds now belong to k */
			} else {
				free(k);
				log_warn("%s: too many stopped incidents kept; the processes stay stopped", inc.id);
				response_release(set);
			}
		}
	}
	/* the vault keeps everything this attack may need: pinned from before its first event */
	for (int i = 0; i < d->nvfs; i++) {
		int64_t vid;
		vault_store_incident_open(d->vfs[i].store, (int64_t)det->first_ns - 60ll * 1000000000ll, &vid);
	}
	{
		pid_t pids[RESPONSE_MAX + 64 + 1];
		int np = 0;
		pids[np++] = det->pid;
		for (int i = 0; set && i < set->n && np < RESPONSE_MAX; i++)
			pids[np++] = set->pid[i];
		for (int i = 0; i < det->ncontributors; i++)
			pids[np++] = det->contributors[i];
		struct tracked *t = track_incident(d, inc.id, pids, np, det->first_ns - 60ull * 1000000000ull, now_ns);
		if (t) {
			jsonw_arr_close(&t->outputs);
			inc.outputs_json = strdup(t->outputs.buf ? t->outputs.buf : "[]");
			/* reopen the array for later additions: drop the closing bracket */
			if (t->outputs.len && t->outputs.buf[t->outputs.len - 1] == ']') {
				t->outputs.buf[--t->outputs.len] = '\0';
				t->outputs.need_comma = t->count > 0;
			}
			t->dirty = false;
		}
	}
	if (d->incidents && incident_save(d->incidents, &inc))
		log_err("%s: could not save the incident to %s/incidents.db", inc.id, c->state_dir);
	incident_clear(&inc);
	if (set)
		response_release(set);
	free(set);
}

/* Persists an allow-list entry: one executable path a line. */
static void persist_allow(struct daemon *d, const char *exe)
{
	char path[CONFIG_PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/allow.list", d->o->cfg->state_dir);
	FILE *f = fopen(path, "ae");
	if (!f || fprintf(f, "%s\n", exe) < 0)
		log_err("cannot record %s in %s: %s", exe, path, strerror(errno));
	if (f)
		fclose(f);
}

static void load_allow(struct daemon *d)
{
	char path[CONFIG_PATH_MAX + 32], line[WARD_EXE_MAX + 2];
	snprintf(path, sizeof(path), "%s/allow.list", d->o->cfg->state_dir);
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '/')
			allow_add(d, line);
	}
	fclose(f);
}

static int on_canary(const char *path, void *ctx)
{
	return engine_add_canary(ctx, path);
}

static void allow_incident(struct daemon *d, const char *id, struct jsonw *w)
{
	struct incident inc;
	int rc = d->incidents ? incident_get(d->incidents, id, &inc) : -ENOENT;
	if (rc) {
		jsonw_str(w, "error", rc == -ENOENT ? "no such incident" : "cannot read the incident database");
		return;
	}
	int resumed = 0;
	for (int i = 0; i < KEPT_MAX; i++) {
		struct kept *k = d->kept[i];
		if (k && strcmp(k->id, id) == 0) {
			resumed = k->set.n;
			response_resume(&k->set);
			free(k);
			d->kept[i] = NULL;
		}
	}
	/* pinned to the program's content when the incident recorded its hash: the same path
	 * with other content later is not trusted */
	char entry[WARD_EXE_MAX + 80];
	snprintf(entry, sizeof(entry), "%s%s%s", inc.exe, strlen(inc.exe_sha256) == 64 ? " sha256:" : "",
		 strlen(inc.exe_sha256) == 64 ? inc.exe_sha256 : "");
	if (d->engine)
		engine_forgive(d->engine, inc.pid);
	if (inc.exe[0]) {
		allow_add(d, entry);
		persist_allow(d, entry);
	}
	incident_set_status(d->incidents, id, "allowed");
	log_warn("%s allowed by the administrator: %s resumed %d process(es), now allow-listed", id, entry, resumed);
	jsonw_str(w, "allowed", inc.exe);
	jsonw_int(w, "resumed", resumed);
	incident_clear(&inc);
}

static void on_event(struct ward_event *ev, void *ctx)
{
	struct daemon *d = ctx;
	/* Content first: detection and recorded traces both need it. Read through the event's
	 * handle while the bytes are fresh in the page cache. */
	if ((d->engine || d->o->inspect) && ev->op == WOP_CLOSE_WRITE && !ev->is_dir) {
		int fd = ward_event_open(ev);
		struct stat st;
		if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
			ev->size = st.st_size; /* the lazy size, from the fd we need anyway */
			ev->ino = st.st_ino;
			if (st.st_size > 0 && content_inspect(fd, (uint64_t)st.st_size, &ev->content))
				d->content_errors++;
		}
		if (fd >= 0)
			close(fd);
	}
	/* every consumer below may read the size */
	if ((d->engine || d->o->events_out || d->events_file) && ev->size == WARD_SIZE_LAZY)
		ward_event_size(ev);
	metric_inc(&ward_metrics.events[ev->op]);
	if (ev->op == WOP_OVERFLOW)
		metric_inc(&ward_metrics.queue_overflows);
	if (d->engine && (ev->op == WOP_CREATE || ev->op == WOP_RENAME) && !ev->is_dir) {
		remember_created(d, ev);
		for (int i = 0; i < TRACKED; i++) {
			struct tracked *t = d->tracked[i];
			if (t && (has_pid(t->pids, t->npids, ev->pid) || has_pid(t->pids, t->npids, ev->proc->ppid)))
				track_add(t, ev->path);
		}
	}
	if (d->engine)
		engine_event(d->engine, ev);
	FILE *outs[2] = {d->o->events_out, d->events_file};
	if (!outs[0] && !outs[1])
		return;
	jsonw_reset(&d->w);
	ecs_event(&d->w, ev, d->hostname);
	if (d->w.oom) {
		d->out_errors++;
		return;
	}
	for (int i = 0; i < 2; i++)
		if (outs[i] && (fwrite(d->w.buf, 1, d->w.len, outs[i]) != d->w.len || fputc('\n', outs[i]) == EOF))
			d->out_errors++;
}

static void on_control(const char *req, char *reply, size_t cap, void *ctx)
{
	struct daemon *d = ctx;
	struct jsonw w;
	jsonw_init(&w);
	jsonw_obj_open(&w, NULL);
	if (strcmp(req, "status") == 0) {
		struct sensor_stats st;
		sensor_stats(d->sensor, &st);
		const struct ward_config *c = d->o->cfg;
		jsonw_bool(&w, "running", true);
		jsonw_bool(&w, "watching", c->nwatch > 0);
		jsonw_int(&w, "pid", getpid());
		jsonw_str(&w, "mode", c->mode == WARD_MODE_PROTECT ? "protect" : "monitor");
		jsonw_int(&w, "uptime_s", (int64_t)(time(NULL) - d->started));
		jsonw_arr_open(&w, "watch");
		for (int i = 0; i < c->nwatch; i++)
			jsonw_str(&w, NULL, c->watch[i]);
		jsonw_arr_close(&w);
		jsonw_str(&w, "state_dir", c->state_dir);
		jsonw_obj_open(&w, "events");
		jsonw_uint(&w, "total", st.events);
		for (int i = 0; i < WOP__COUNT; i++)
			jsonw_uint(&w, ward_op_name(i), st.by_op[i]);
		jsonw_obj_close(&w);
		jsonw_uint(&w, "overflows", st.overflows);
		jsonw_uint(&w, "attribution_failures", st.attrib_fail);
		jsonw_uint(&w, "unresolved", st.unresolved);
		jsonw_uint(&w, "outside", st.outside);
		jsonw_uint(&w, "bpf_lost", st.bpf_lost);
		jsonw_uint(&w, "output_errors", d->out_errors);
		if (d->alerts) {
			/* each alert output's health: a dead SIEM receiver shows here first */
			struct sink_stat ss[SINK_MAX];
			size_t ns = sink_stats(d->alerts, ss, SINK_MAX);
			jsonw_arr_open(&w, "alert_outputs");
			for (size_t i = 0; i < ns && i < SINK_MAX; i++) {
				jsonw_obj_open(&w, NULL);
				jsonw_str(&w, "name", ss[i].name);
				jsonw_uint(&w, "written", ss[i].written);
				jsonw_uint(&w, "dropped", ss[i].dropped);
				jsonw_uint(&w, "errors", ss[i].write_errors);
				jsonw_uint(&w, "queued", ss[i].queued);
				jsonw_obj_close(&w);
			}
			jsonw_arr_close(&w);
		}
		jsonw_bool(&w, "detecting", d->engine != NULL);
		jsonw_uint(&w, "incidents", d->n_incidents);
		jsonw_uint(&w, "processes_stopped", d->n_stopped);
		jsonw_uint(&w, "suspects_paused", d->pauses.paused);
		jsonw_uint(&w, "suspects_resumed", d->pauses.resumed);
		jsonw_bool(&w, "vault", d->vguard != NULL);
		if (d->vguard) {
			struct vault_guard_stats vs;
			vault_guard_stats(d->vguard, &vs);
			jsonw_uint(&w, "vault_events", vs.events);
			jsonw_uint(&w, "vault_saved", vs.saved_full + vs.saved_range);
			jsonw_uint(&w, "vault_name_saved", vs.holds_saved);
			jsonw_uint(&w, "vault_held", vs.holds_held);
			jsonw_uint(&w, "vault_held_evicted", vs.holds_evicted);
			jsonw_uint(&w, "vault_tamper_denied", vs.tamper_denied);
			jsonw_uint(&w, "vault_failures", vs.save_failed + vs.timeouts + vs.queue_full);
			jsonw_uint(&w, "vault_full", vs.enospc);
			jsonw_uint(&w, "vault_fail_open", vs.fail_open);
			jsonw_uint(&w, "vault_fail_closed", vs.fail_closed);
		}
		jsonw_bool(&w, "preventing", d->guard != NULL);
		if (d->guard) {
			struct execguard_stats gs;
			execguard_get_stats(d->guard, &gs);
			jsonw_uint(&w, "exec_checked", gs.events);
			jsonw_uint(&w, "exec_denied", gs.denied);
			jsonw_uint(&w, "written_matches", gs.write_matches);
			jsonw_int(&w, "indicators", ioc_count(d->ioc, IOC_SHA256));
		}
		if (d->engine) {
			struct engine_stats es;
			engine_stats(d->engine, &es);
			jsonw_uint(&w, "actors", es.actors);
			jsonw_uint(&w, "canary_hits", es.canary_hits);
		}
		jsonw_arr_open(&w, "features");
		const char *f = sensor_features(d->sensor);
		while (*f) {
			size_t n = strcspn(f, "\n");
			jsonw_strn(&w, NULL, f, n);
			f += n + (f[n] == '\n');
		}
		jsonw_arr_close(&w);
	} else if (strncmp(req, "restore", 7) == 0) {
		do_restore(d, req, &w);
	} else if (strncmp(req, "allow ", 6) == 0 && d->engine) {
		allow_incident(d, req + 6, &w);
	} else {
		jsonw_str(&w, "error", "unknown request");
	}
	jsonw_obj_close(&w);
	snprintf(reply, cap, "%s", w.oom ? "{\"error\":\"out of memory\"}" : w.buf);
	jsonw_free(&w);
}

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[CONFIG_PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int ep_add(int ep, int fd)
{
	struct epoll_event e = {.events = EPOLLIN, .data.fd = fd};
	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0 ? -errno : 0;
}

int daemon_run(const struct daemon_opts *o)
{
	const struct ward_config *c = o->cfg;
	struct daemon d = {.o = o, .started = time(NULL)};
	int rc, ep = -1, sfd = -1, tfd = -1;
	char err[512] = "";
	sigset_t mask;

	jsonw_init(&d.w);
	pthread_mutex_init(&d.allow_lock, NULL);
	pthread_mutex_init(&d.hash_lock, NULL);
	gethostname(d.hostname, sizeof(d.hostname) - 1);
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (o->control) {
		if ((rc = mkdir_p(c->state_dir, 0700)) || (rc = mkdir_p(c->runtime_dir, 0755))) {
			log_err("cannot create %s or %s: %s", c->state_dir, c->runtime_dir, strerror(-rc));
			goto out;
		}
	}
	/* one ward per state directory: claimed first, before anything else is opened */
	if (o->control) {
		rc = control_listen(&d.ctl, c->runtime_dir, on_control, &d);
		if (rc) {
			log_err("control socket in %s: %s", c->runtime_dir,
				rc == -EADDRINUSE ? "another ward is running there" : strerror(-rc));
			goto out;
		}
	}
	/* what this process may do, said once at start rather than by whatever fails later */
	{
		char report[SELFCHECK_REPORT_MAX];
		int n = selfcheck_run(c, o->control, report, sizeof(report));
		for (const char *l = report; *l;) {
			size_t k = strcspn(l, "\n");
			ward_log(n < 0 ? LOG_ERR : LOG_WARNING, "self-check: %.*s", (int)k, l);
			l += k + (l[k] == '\n');
		}
		if (n < 0) {
			rc = n;
			goto out;
		}
		if (n == 0)
			log_info("self-check: capabilities, fanotify limits%s are sufficient",
				 o->control ? " and state directory" : "");
	}
	if (c->events_file[0]) {
		d.events_file = fopen(c->events_file, "ae");
		if (!d.events_file) {
			rc = -errno;
			log_err("events_file %s: %s", c->events_file, strerror(errno));
			goto out;
		}
	}

	struct sensor_cfg sc = {.nroots = c->nwatch, .unlimited_queue = c->unlimited_queue,
				.no_bpf = c->no_bpf,
				.proc_grace_ns = (uint64_t)c->proc_grace_s * 1000000000ull};
	for (int i = 0; i < c->nwatch; i++)
		sc.roots[i] = c->watch[i];
	for (int i = 0; i < c->nexclude && sc.nexcludes < SENSOR_MAX_ROOTS; i++)
		sc.excludes[sc.nexcludes++] = c->exclude[i];
	/* ward's own files are never events (its own pid is dropped too) */
	if (o->control && sc.nexcludes < SENSOR_MAX_ROOTS)
		sc.excludes[sc.nexcludes++] = c->state_dir;
	if (c->detect) {
		struct engine_cfg ec = {.threshold = c->threshold, .half_life_s = c->half_life_s,
					.allow_exe = (const char *const *)c->allow_exe, .nallow = c->nallow,
					.lookup = lookup_proc, .lookup_ctx = &d, .on_detect = on_detect, .ctx = &d,
					.on_suspect = on_suspect, .exe_sha256 = engine_exe_sha256};
		if ((rc = engine_create(&d.engine, &ec))) {
			log_err("detector: %s", strerror(-rc));
			goto out;
		}
		if (o->control) {
			load_allow(&d);
			if ((rc = incident_db_open(&d.incidents, c->state_dir, false))) {
				log_err("cannot open %s/incidents.db: %s", c->state_dir, strerror(-rc));
				goto out;
			}
			if ((rc = open_alerts(c, d.hostname, &d.alerts)))
				goto out;
		}
		if (c->canaries) {
			for (int i = 0; i < c->nwatch; i++) {
				int n = canary_place(c->watch[i], (const char *const *)c->canary_names, c->ncanary_names,
						     c->canary_depth, 256, on_canary, d.engine);
				if (n < 0)
					log_warn("canaries in %s: %s", c->watch[i], strerror(-n));
			}
		}
	}
	for (int i = 0; i < c->nallow; i++)
		allow_add(&d, c->allow_exe[i]);
	if (o->control && c->vault && (rc = start_vault(&d)))
		goto out;
	/* the vaults are ward's own: never events */
	for (int i = 0; i < d.nvfs && sc.nexcludes + 1 < SENSOR_MAX_ROOTS; i++) {
		sc.excludes[sc.nexcludes++] = d.vfs[i].vault_dir;
		sc.excludes[sc.nexcludes++] = d.vfs[i].quarantine_dir;
	}
	if (o->control && c->prevent && (rc = start_prevention(&d))) {
		log_err("prevention could not start: %s", strerror(-rc));
		goto out;
	}
	rc = sensor_open(&d.sensor, &sc, on_event, &d, err, sizeof(err));
	if (rc) {
		log_err("%s", err);
		goto out;
	}
	{
		const char *f = sensor_features(d.sensor);
		while (*f) {
			size_t n = strcspn(f, "\n");
			ward_log(strncmp(f, "enabled", 7) == 0 ? LOG_INFO : LOG_WARNING, "%.*s", (int)n, f);
			f += n + (f[n] == '\n');
		}
	}

	ep = epoll_create1(EPOLL_CLOEXEC);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (ep < 0 || sfd < 0 || tfd < 0) {
		rc = -errno;
		log_err("epoll/signalfd/timerfd: %s", strerror(errno));
		goto out;
	}
	struct itimerspec its = {.it_interval = {1, 0}, .it_value = {1, 0}};
	timerfd_settime(tfd, 0, &its, NULL);
	if ((rc = ep_add(ep, sensor_fd(d.sensor))) || (rc = ep_add(ep, sfd)) || (rc = ep_add(ep, tfd)) ||
	    (sensor_aux_fd(d.sensor) >= 0 && (rc = ep_add(ep, sensor_aux_fd(d.sensor)))) ||
	    (d.ctl && (rc = ep_add(ep, control_fd(d.ctl))))) {
		log_err("epoll: %s", strerror(-rc));
		goto out;
	}

	if (o->control && c->metrics_listen[0]) {
		if ((rc = metrics_registry_create(&d.metrics)) || (rc = ward_metrics_register(d.metrics)) ||
		    (rc = metrics_server_start(d.metrics, c->metrics_listen, &d.metrics_srv))) {
			log_err("metrics on %s: %s", c->metrics_listen, strerror(-rc));
			goto out;
		}
		log_info("enabled: Prometheus metrics on http://%s/metrics", c->metrics_listen);
	}
	for (int i = 0; i < c->nwatch; i++)
		log_info("watching %s", c->watch[i]);
	log_info("ready (%s, pid %d)", o->what, getpid());
	sd_notify(0, "READY=1\nSTATUS=watching");

	bool stop = false;
	while (!stop) {
		struct epoll_event evs[8];
		int n = epoll_wait(ep, evs, 8, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			log_err("epoll_wait: %s", strerror(errno));
			goto out;
		}
		bool sensor_ready = false;
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == sfd) {
				struct signalfd_siginfo si;
				while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
					if (si.ssi_signo == SIGHUP) {
						log_info("SIGHUP: reloading");
						reload_config(&d);
						reload_prevention(&d);
						if (d.alerts)
							sink_reopen(d.alerts);
						if (d.events_file) {
							FILE *nf = fopen(c->events_file, "ae");
							if (nf) {
								fclose(d.events_file);
								d.events_file = nf;
							}
						}
					} else {
						log_info("signal %d: stopping", si.ssi_signo);
						stop = true;
					}
				}
			} else if (fd == tfd) {
				uint64_t x;
				if (read(tfd, &x, sizeof(x)) > 0) {
					sensor_housekeep(d.sensor);
					pause_release(&d.pauses, 0, mono_ns(), PAUSE_MAX_NS);
					if (d.engine) {
						struct timespec ts;
						clock_gettime(CLOCK_REALTIME, &ts);
						uint64_t t_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
						engine_expire(d.engine, t_ns);
						flush_tracked(&d, t_ns);
					}
					if (d.metrics) {
						uint64_t vb = 0, vv = 0;
						for (int k = 0; k < d.nvfs; k++) {
							struct vault_store_stats vs;
							vault_store_stats(d.vfs[k].store, &vs);
							vb += vs.bytes;
							vv += vs.versions;
						}
						metric_set(&ward_metrics.vault_bytes, vb);
						metric_set(&ward_metrics.vault_versions, vv);
						if (d.ioc)
							metric_set(&ward_metrics.indicators_loaded, (uint64_t)ioc_count(d.ioc, IOC_SHA256));
						metric_set(&ward_metrics.rules_loaded, (uint64_t)c->nrules);
					}
				}
				sd_notify(0, "WATCHDOG=1");
			} else if (d.ctl && fd == control_fd(d.ctl)) {
				control_serve(d.ctl);
			} else {
				sensor_ready = true;
			}
		}
		if (sensor_ready || stop) {
			rc = sensor_process(d.sensor);
			if (rc < 0) {
				log_err("reading events: %s", strerror(-rc));
				goto out;
			}
			if (d.pauses.n) {
				struct sensor_stats st;
				sensor_stats(d.sensor, &st);
				pause_release(&d.pauses, st.drained_ns, mono_ns(), PAUSE_MAX_NS);
			}
			if (o->events_out)
				fflush(o->events_out);
			if (d.events_file)
				fflush(d.events_file);
		}
	}
	rc = 0;
	{
		struct sensor_stats st;
		sensor_stats(d.sensor, &st);
		log_info("stopped: %llu events, %llu queue overflows, %llu unattributed",
			 (unsigned long long)st.events, (unsigned long long)st.overflows,
			 (unsigned long long)st.attrib_fail);
	}
out:
	sd_notify(0, "STOPPING=1");
	if (tfd >= 0)
		close(tfd);
	if (sfd >= 0)
		close(sfd);
	if (ep >= 0)
		close(ep);
	control_close(d.ctl);
	pause_release_all(&d.pauses);
	sensor_close(d.sensor);
	for (int i = 0; i < KEPT_MAX; i++)
		if (d.kept[i]) {
			/* ward is going away: processes it kept stopped stay stopped */
			response_release(&d.kept[i]->set);
			free(d.kept[i]);
		}
	if (d.engine)
		flush_tracked(&d, UINT64_MAX); /* saves what is pending and frees every tracker */
	for (size_t i = 0; d.ring && i < CREATED_RING; i++)
		free(d.ring[i].path);
	free(d.ring);
	metrics_server_stop(d.metrics_srv);
	metrics_registry_destroy(d.metrics);
	vault_guard_stop(d.vguard);
	recover_close_all(d.vfs, d.nvfs);
	free(d.allow);
	execguard_stop(d.guard);
	scanner_destroy(d.scanner);
	if (d.ioc) {
		ioc_close(d.ioc);
		pthread_mutex_destroy(&d.ioc_lock);
	}
	engine_destroy(d.engine);
	incident_db_close(d.incidents);
	sink_set_destroy(d.alerts);
	if (d.events_file)
		fclose(d.events_file);
	jsonw_free(&d.w);
	return rc;
}
