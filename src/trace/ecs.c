/* ecs.c: ECS serialization of file events. Paths that are not valid UTF-8 are written
 * lossily in file.path (JSON must be UTF-8) and exactly, as hex, in ward.file.path_hex,
 * so that a replayed trace reproduces the original bytes. */
#include "trace/ecs.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

void ecs_boot_to_real(uint64_t boot_ns, int64_t *sec, long *nsec)
{
	struct timespec rt, bt;
	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_BOOTTIME, &bt);
	int64_t rt_ns = (int64_t)rt.tv_sec * 1000000000 + rt.tv_nsec;
	int64_t bt_ns = (int64_t)bt.tv_sec * 1000000000 + bt.tv_nsec;
	int64_t v = rt_ns - (bt_ns - (int64_t)boot_ns);
	*sec = v / 1000000000;
	*nsec = (long)(v % 1000000000);
}

/* Writes a path (lossy if it is not UTF-8) and tells whether its exact bytes need hex. */
static void put_path(struct jsonw *w, const char *key, const char *p, size_t n, bool *needs_hex)
{
	jsonw_strn(w, key, p, n);
	if (!jsonw_utf8_valid(p, n))
		*needs_hex = true;
}

void ecs_process(struct jsonw *w, const char *key, const struct ward_proc *p)
{
	char id[16];
	jsonw_obj_open(w, key);
	jsonw_int(w, "pid", p->pid);
	if (p->known) {
		jsonw_str(w, "name", p->comm);
		jsonw_str(w, "executable", p->exe);
		/* args are NUL-separated; command_line joins them with spaces */
		char cmd[WARD_ARGS_MAX + 1];
		size_t n = p->args_len < WARD_ARGS_MAX ? p->args_len : WARD_ARGS_MAX;
		while (n > 0 && p->args[n - 1] == '\0')
			n--;
		memcpy(cmd, p->args, n);
		cmd[n] = '\0';
		for (size_t i = 0; i < n; i++)
			if (cmd[i] == '\0')
				cmd[i] = ' ';
		jsonw_strn(w, "command_line", cmd, n);
		jsonw_arr_open(w, "args");
		int count = 0;
		for (size_t i = 0; i < n;) {
			size_t l = strnlen(p->args + i, n - i);
			jsonw_strn(w, NULL, p->args + i, l);
			count++;
			i += l + 1;
		}
		jsonw_arr_close(w);
		jsonw_int(w, "args_count", count);
		jsonw_obj_open(w, "parent");
		jsonw_int(w, "pid", p->ppid);
		jsonw_obj_close(w);
		jsonw_obj_open(w, "user");
		snprintf(id, sizeof(id), "%u", p->uid);
		jsonw_str(w, "id", id);
		jsonw_obj_close(w);
		jsonw_obj_open(w, "group");
		snprintf(id, sizeof(id), "%u", p->gid);
		jsonw_str(w, "id", id);
		jsonw_obj_close(w);
		if (p->start_ns) {
			int64_t s;
			long ns;
			ecs_boot_to_real(p->start_ns, &s, &ns);
			jsonw_time(w, "start", s, ns);
		}
	}
	jsonw_obj_close(w);
}

void ecs_event(struct jsonw *w, const struct ward_event *ev, const char *hostname)
{
	bool hex = false, old_hex = false;
	char ino[24];

	jsonw_obj_open(w, NULL);
	jsonw_time(w, "@timestamp", ev->ts.tv_sec, ev->ts.tv_nsec);
	jsonw_obj_open(w, "event");
	jsonw_str(w, "kind", ev->op == WOP_OVERFLOW ? "metric" : "event");
	jsonw_arr_open(w, "category");
	jsonw_str(w, NULL, "file");
	jsonw_arr_close(w);
	jsonw_arr_open(w, "type");
	jsonw_str(w, NULL, ward_op_ecs_type(ev->op));
	jsonw_arr_close(w);
	jsonw_str(w, "action", ward_op_name(ev->op));
	jsonw_uint(w, "sequence", ev->seq);
	jsonw_str(w, "dataset", "ward.file");
	jsonw_obj_close(w);
	if (hostname) {
		jsonw_obj_open(w, "host");
		jsonw_str(w, "hostname", hostname);
		jsonw_obj_close(w);
	}

	if (ev->op != WOP_OVERFLOW) {
		jsonw_obj_open(w, "file");
		put_path(w, "path", ev->path, ev->path_len, &hex);
		const char *slash = memrchr(ev->path, '/', ev->path_len);
		if (slash) {
			size_t dl = (size_t)(slash - ev->path);
			jsonw_strn(w, "name", slash + 1, ev->path_len - dl - 1);
			jsonw_strn(w, "directory", ev->path, dl ? dl : 1);
		}
		if (ev->ino) {
			snprintf(ino, sizeof(ino), "%llu", (unsigned long long)ev->ino);
			jsonw_str(w, "inode", ino);
		}
		if (ev->size >= 0)
			jsonw_int(w, "size", ev->size);
		jsonw_str(w, "type", ev->is_dir ? "dir" : "file");
		jsonw_obj_close(w);
	}

	ecs_process(w, "process", ev->proc);

	jsonw_obj_open(w, "ward");
	if (ev->old_path_len || hex) {
		jsonw_obj_open(w, "file");
		if (ev->old_path_len) {
			put_path(w, "old_path", ev->old_path, ev->old_path_len, &old_hex);
			if (old_hex)
				jsonw_hex(w, "old_path_hex", ev->old_path, ev->old_path_len);
		}
		if (hex)
			jsonw_hex(w, "path_hex", ev->path, ev->path_len);
		jsonw_obj_close(w);
	}
	jsonw_obj_open(w, "process");
	jsonw_bool(w, "attributed", ev->proc->known);
	if (ev->proc->known) {
		jsonw_uint(w, "start_ns", ev->proc->start_ns);
		if (ev->proc->cgroup[0])
			jsonw_str(w, "cgroup", ev->proc->cgroup);
		if (ev->proc->exit_ns)
			jsonw_bool(w, "exited", true);
	}
	jsonw_obj_close(w);
	if (ev->content.valid) {
		const struct ward_content *c = &ev->content;
		jsonw_obj_open(w, "content");
		jsonw_int(w, "type", c->type);
		jsonw_bool(w, "type_valid", c->type_valid);
		jsonw_int(w, "encrypted", c->crypt);
		jsonw_int(w, "head_class", c->head_class);
		jsonw_bool(w, "head_suspect", c->head_suspect);
		jsonw_bool(w, "pooled_nonuniform", c->pooled_nonuniform);
		jsonw_double(w, "suspect_frac", c->suspect_frac);
		jsonw_double(w, "max_entropy", c->max_entropy);
		jsonw_obj_close(w);
	}
	if (ev->op == WOP_OVERFLOW) {
		jsonw_obj_open(w, "overflow");
		jsonw_uint(w, "count", ev->lost);
		jsonw_obj_close(w);
	}
	jsonw_obj_close(w);
	jsonw_obj_close(w);
}
