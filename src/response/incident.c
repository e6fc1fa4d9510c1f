/* incident.c: incidents in SQLite. JSON columns hold the variable parts (evidence, files,
 * pids) as the daemon rendered them, so `ward incidents --json` shows exactly what the
 * alert said. */
#include "response/incident.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/jsonw.h"

struct incident_db {
	sqlite3 *db;
};

static const char schema[] =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=NORMAL;"
	"CREATE TABLE IF NOT EXISTS incidents ("
	" id TEXT PRIMARY KEY, created_ns INTEGER, status TEXT, level TEXT, pid INTEGER,"
	" ppid INTEGER, start_ns INTEGER, uid INTEGER, exe TEXT, exe_sha256 TEXT, args TEXT,"
	" score REAL, first_ns INTEGER, detected_ns INTEGER, stopped_ns INTEGER, pids TEXT,"
	" evidence TEXT, files TEXT, nfiles INTEGER, outputs TEXT);";

int incident_db_open(struct incident_db **out, const char *state_dir, bool readonly)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/incidents.db", state_dir);
	struct incident_db *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	if (sqlite3_open_v2(path, &d->db, flags | SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
		sqlite3_close(d->db);
		free(d);
		return readonly ? -ENOENT : -EIO;
	}
	sqlite3_busy_timeout(d->db, 2000);
	if (!readonly && sqlite3_exec(d->db, schema, NULL, NULL, NULL) != SQLITE_OK) {
		incident_db_close(d);
		return -EIO;
	}
	*out = d;
	return 0;
}

void incident_db_close(struct incident_db *d)
{
	if (!d)
		return;
	sqlite3_close(d->db);
	free(d);
}

void incident_new_id(char id[48], uint64_t now_ns)
{
	time_t t = (time_t)(now_ns / 1000000000ull);
	struct tm tm;
	unsigned char r[2] = {0, 0};
	gmtime_r(&t, &tm);
	if (getrandom(r, sizeof(r), GRND_NONBLOCK) != sizeof(r)) {
		r[0] = (unsigned char)now_ns;
		r[1] = (unsigned char)(now_ns >> 8);
	}
	snprintf(id, 48, "inc-%04d%02d%02d-%02d%02d%02d-%02x%02x", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, r[0], r[1]);
}

int incident_save(struct incident_db *d, const struct incident *i)
{
	sqlite3_stmt *st = NULL;
	int rc = -EIO;
	if (sqlite3_prepare_v2(d->db,
			       "INSERT OR REPLACE INTO incidents VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
			       -1, &st, NULL) != SQLITE_OK)
		goto out;
	int k = 1;
	sqlite3_bind_text(st, k++, i->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, k++, (sqlite3_int64)i->created_ns);
	sqlite3_bind_text(st, k++, i->status, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, k++, i->level, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, k++, i->pid);
	sqlite3_bind_int(st, k++, i->ppid);
	sqlite3_bind_int64(st, k++, (sqlite3_int64)i->start_ns);
	sqlite3_bind_int64(st, k++, i->uid);
	sqlite3_bind_text(st, k++, i->exe, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, k++, i->exe_sha256, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, k++, i->args_json ? i->args_json : "[]", -1, SQLITE_STATIC);
	sqlite3_bind_double(st, k++, i->score);
	sqlite3_bind_int64(st, k++, (sqlite3_int64)i->first_ns);
	sqlite3_bind_int64(st, k++, (sqlite3_int64)i->detected_ns);
	sqlite3_bind_int64(st, k++, (sqlite3_int64)i->stopped_ns);
	sqlite3_bind_text(st, k++, i->pids_json ? i->pids_json : "[]", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, k++, i->evidence_json ? i->evidence_json : "[]", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, k++, i->files_json ? i->files_json : "[]", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, k++, i->nfiles);
	sqlite3_bind_text(st, k++, i->outputs_json ? i->outputs_json : "[]", -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
out:
	sqlite3_finalize(st);
	return rc;
}

int incident_set_outputs(struct incident_db *d, const char *id, const char *outputs_json)
{
	sqlite3_stmt *st = NULL;
	int rc = -EIO;
	if (sqlite3_prepare_v2(d->db, "UPDATE incidents SET outputs=? WHERE id=?", -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(st, 1, outputs_json, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? (sqlite3_changes(d->db) ? 0 : -ENOENT) : -EIO;
out:
	sqlite3_finalize(st);
	return rc;
}

int incident_set_status(struct incident_db *d, const char *id, const char *status)
{
	sqlite3_stmt *st = NULL;
	int rc = -EIO;
	if (sqlite3_prepare_v2(d->db, "UPDATE incidents SET status=? WHERE id=?", -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? (sqlite3_changes(d->db) ? 0 : -ENOENT) : -EIO;
out:
	sqlite3_finalize(st);
	return rc;
}

static char *dup_col(sqlite3_stmt *st, int c)
{
	const unsigned char *t = sqlite3_column_text(st, c);
	return strdup(t ? (const char *)t : "[]");
}

static void cpy_col(char *dst, size_t cap, sqlite3_stmt *st, int c)
{
	const unsigned char *t = sqlite3_column_text(st, c);
	snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

static void row(sqlite3_stmt *st, struct incident *i)
{
	memset(i, 0, sizeof(*i));
	int k = 0;
	cpy_col(i->id, sizeof(i->id), st, k++);
	i->created_ns = (uint64_t)sqlite3_column_int64(st, k++);
	cpy_col(i->status, sizeof(i->status), st, k++);
	cpy_col(i->level, sizeof(i->level), st, k++);
	i->pid = sqlite3_column_int(st, k++);
	i->ppid = sqlite3_column_int(st, k++);
	i->start_ns = (uint64_t)sqlite3_column_int64(st, k++);
	i->uid = (uint32_t)sqlite3_column_int64(st, k++);
	cpy_col(i->exe, sizeof(i->exe), st, k++);
	cpy_col(i->exe_sha256, sizeof(i->exe_sha256), st, k++);
	i->args_json = dup_col(st, k++);
	i->score = sqlite3_column_double(st, k++);
	i->first_ns = (uint64_t)sqlite3_column_int64(st, k++);
	i->detected_ns = (uint64_t)sqlite3_column_int64(st, k++);
	i->stopped_ns = (uint64_t)sqlite3_column_int64(st, k++);
	i->pids_json = dup_col(st, k++);
	i->evidence_json = dup_col(st, k++);
	i->files_json = dup_col(st, k++);
	i->nfiles = (uint32_t)sqlite3_column_int64(st, k++);
	i->outputs_json = dup_col(st, k++);
}

void incident_clear(struct incident *i)
{
	free(i->args_json);
	free(i->pids_json);
	free(i->evidence_json);
	free(i->files_json);
	free(i->outputs_json);
	i->args_json = i->pids_json = i->evidence_json = i->files_json = i->outputs_json = NULL;
}

int incident_get(struct incident_db *d, const char *id, struct incident *out)
{
	sqlite3_stmt *st = NULL;
	int rc = -EIO;
	if (sqlite3_prepare_v2(d->db, "SELECT * FROM incidents WHERE id=?", -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	int s = sqlite3_step(st);
	if (s == SQLITE_ROW) {
		row(st, out);
		rc = 0;
	} else {
		rc = s == SQLITE_DONE ? -ENOENT : -EIO;
	}
out:
	sqlite3_finalize(st);
	return rc;
}

int incident_each(struct incident_db *d, int (*fn)(const struct incident *, void *), void *ctx)
{
	sqlite3_stmt *st = NULL;
	int rc = -EIO;
	if (sqlite3_prepare_v2(d->db, "SELECT * FROM incidents ORDER BY created_ns", -1, &st, NULL) != SQLITE_OK)
		goto out;
	int s;
	rc = 0;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		struct incident i;
		row(st, &i);
		rc = fn(&i, ctx);
		incident_clear(&i);
		if (rc)
			break;
	}
	if (!rc && s != SQLITE_DONE)
		rc = -EIO;
out:
	sqlite3_finalize(st);
	return rc;
}

void incident_print_json(FILE *f, const struct incident *i)
{
	struct jsonw w;
	jsonw_init(&w);
	jsonw_obj_open(&w, NULL);
	jsonw_str(&w, "id", i->id);
	jsonw_time(&w, "created", (int64_t)(i->created_ns / 1000000000ull), (long)(i->created_ns % 1000000000ull));
	jsonw_str(&w, "status", i->status);
	jsonw_str(&w, "level", i->level);
	jsonw_double(&w, "score", i->score);
	jsonw_obj_open(&w, "process");
	jsonw_int(&w, "pid", i->pid);
	jsonw_str(&w, "executable", i->exe);
	if (i->exe_sha256[0]) {
		jsonw_obj_open(&w, "hash");
		jsonw_str(&w, "sha256", i->exe_sha256);
		jsonw_obj_close(&w);
	}
	jsonw_raw(&w, "args", i->args_json ? i->args_json : "[]");
	jsonw_obj_open(&w, "parent");
	jsonw_int(&w, "pid", i->ppid);
	jsonw_obj_close(&w);
	jsonw_obj_close(&w);
	jsonw_uint(&w, "first_event_ns", i->first_ns);
	jsonw_uint(&w, "detected_ns", i->detected_ns);
	jsonw_uint(&w, "stopped_ns", i->stopped_ns);
	if (i->stopped_ns && i->first_ns)
		jsonw_double(&w, "ms_to_stop", (double)(int64_t)(i->stopped_ns - i->first_ns) / 1e6);
	jsonw_raw(&w, "stopped_pids", i->pids_json ? i->pids_json : "[]");
	jsonw_raw(&w, "evidence", i->evidence_json ? i->evidence_json : "[]");
	jsonw_uint(&w, "files_count", i->nfiles);
	jsonw_raw(&w, "files", i->files_json ? i->files_json : "[]");
	jsonw_raw(&w, "outputs", i->outputs_json ? i->outputs_json : "[]");
	jsonw_obj_close(&w);
	fprintf(f, "%s\n", w.buf ? w.buf : "{}");
	jsonw_free(&w);
}
