/* test_trace: events survive ECS serialization and the trace reader, field by field; bad
 * lines are rejected with the field named. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonw.h"
#include "t.h"
#include "trace/ecs.h"
#include "trace/trace.h"

static struct ward_event ev, back;
static struct ward_proc proc, bproc;

int main(void)
{
	char err[256];
	struct jsonw w;
	jsonw_init(&w);

	static const struct {
		enum ward_op op;
		const char *path, *old;
		bool dir;
	} rows[] = {
		{WOP_CREATE, "/srv/a", "", false},
		{WOP_RENAME, "/srv/b.locked", "/srv/b", false},
		{WOP_RENAME, "/srv/new\nline \xff", "/srv/\xfe old", false},
		{WOP_MKDIR, "/srv/d", "", true},
		{WOP_DELETE, "/srv/\"q\\", "", false},
		{WOP_CLOSE_WRITE, "/", "", true},
	};
	proc.pid = 4242;
	proc.ppid = 1;
	proc.uid = 1000;
	proc.gid = 100;
	proc.known = true;
	proc.start_ns = 123456789;
	strcpy(proc.comm, "enc");
	strcpy(proc.exe, "/tmp/enc");
	memcpy(proc.args, "enc\0-k\0x y\0", 11);
	proc.args_len = 11;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		memset(&ev, 0, sizeof(ev));
		ev.op = rows[i].op;
		ev.seq = 7 + i;
		ev.ts.tv_sec = 1764000000;
		ev.ts.tv_nsec = 123456000;
		ev.is_dir = rows[i].dir;
		ev.ino = 99;
		ev.size = rows[i].dir ? -1 : 4096;
		ev.pid = 4242;
		ev.proc = &proc;
		ev.path_len = strlen(rows[i].path);
		memcpy(ev.path, rows[i].path, ev.path_len + 1);
		ev.old_path_len = strlen(rows[i].old);
		memcpy(ev.old_path, rows[i].old, ev.old_path_len + 1);
		jsonw_reset(&w);
		ecs_event(&w, &ev, "host1");
		int rc = trace_parse_event(w.buf, w.len, &back, &bproc, err, sizeof(err));
		T_CHECK(rc == 0, "row %zu parses: %s", i, err);
		if (rc)
			continue;
		T_CHECK(back.op == ev.op && back.seq == ev.seq, "row %zu op/seq", i);
		T_CHECK(back.path_len == ev.path_len && memcmp(back.path, ev.path, ev.path_len) == 0,
			"row %zu path bytes", i);
		T_CHECK(back.old_path_len == ev.old_path_len &&
				memcmp(back.old_path, ev.old_path, ev.old_path_len) == 0,
			"row %zu old path bytes", i);
		T_CHECK(back.ts.tv_sec == ev.ts.tv_sec && back.ts.tv_nsec == ev.ts.tv_nsec, "row %zu time", i);
		T_CHECK(back.is_dir == ev.is_dir && back.ino == 99 && back.size == ev.size, "row %zu file", i);
		T_CHECK(bproc.pid == 4242 && bproc.ppid == 1 && bproc.uid == 1000 && bproc.gid == 100 &&
				bproc.known && bproc.start_ns == 123456789,
			"row %zu process ids", i);
		T_CHECK(strcmp(bproc.exe, "/tmp/enc") == 0 && strcmp(bproc.comm, "enc") == 0 &&
				bproc.args_len == 11 && memcmp(bproc.args, proc.args, 11) == 0,
			"row %zu process exe/args", i);
	}

	static const struct {
		const char *line, *err;
	} bad[] = {
		{"", "invalid JSON"},
		{"{", "invalid JSON: unexpected end"},
		{"{} x", "invalid JSON: trailing data"},
		{"\"str\"", "a line must be a JSON object"},
		{"{}", "missing field event.action"},
		{"{\"event\":{\"action\":5}}", "field event.action must be a string"},
		{"{\"event\":{\"action\":\"create\"}}", "missing field @timestamp"},
		{"{\"event\":{\"action\":\"create\"},\"@timestamp\":\"2026-01-01T00:00:00\"}", "field @timestamp"},
		{"{\"event\":{\"action\":\"create\"},\"@timestamp\":\"2026-01-01T00:00:00Z\"}", "missing field file.path"},
		{"{\"event\":{\"action\":\"rename\"},\"@timestamp\":\"2026-01-01T00:00:00Z\",\"file\":{\"path\":\"/a\"}}",
		 "missing field ward.file.old_path"},
		{"{\"event\":{\"action\":\"create\"},\"@timestamp\":\"2026-01-01T00:00:00Z\",\"file\":{\"path\":\"/a\"},"
		 "\"process\":{\"pid\":-1}}",
		 "field process.pid is out of range"},
		{"{\"event\":{\"action\":\"create\"},\"@timestamp\":\"2026-01-01T00:00:00Z\",\"file\":{\"path\":\"/a\"},"
		 "\"ward\":{\"file\":{\"path_hex\":\"zz\"}}}",
		 "field ward.file.path_hex: not hex"},
		{"{\"event\":{\"action\":\"create\"},\"@timestamp\":\"2026-01-01T00:00:00Z\",\"file\":{\"path\":\"/a\",\"inode\":\"1x\"},"
		 "\"process\":{\"pid\":1}}",
		 "field file.inode: not a number"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		int rc = trace_parse_event(bad[i].line, strlen(bad[i].line), &back, &bproc, err, sizeof(err));
		T_CHECK(rc == -EINVAL && strncmp(err, bad[i].err, strlen(bad[i].err)) == 0,
			"bad %zu: got \"%s\" want \"%s\"", i, err, bad[i].err);
	}
	T_CHECK(trace_parse_header("{\"ward_trace\":{\"version\":1}}", 28, err, sizeof(err)) == 0, "header v1");
	T_CHECK(trace_parse_header("{\"ward_trace\":{\"version\":2}}", 28, err, sizeof(err)) == -ENOTSUP,
		"header v2 refused");
	jsonw_free(&w);
	return T_DONE("trace");
}
