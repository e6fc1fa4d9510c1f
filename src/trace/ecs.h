/* ecs.h: file events as Elastic Common Schema JSON (one object per line), the format of
 * `ward trace`, of recorded traces and of what SIEMs ingest. The reverse (JSON back to an
 * event) lives in trace.h. */
#ifndef WARD_ECS_H
#define WARD_ECS_H
#include "core/event.h"
#include "core/jsonw.h"

/* Appends one event object to w (w is not reset). Fields: @timestamp, event.{kind,
 * category, type, action, sequence, dataset}, file.{path, name, directory, inode, size,
 * type}, process.{pid, name, executable, command_line, args, parent.pid, user.id,
 * group.id, start}, ward.{file.old_path, file.path_hex, process.*, overflow.lost}. */
void ecs_event(struct jsonw *w, const struct ward_event *ev, const char *hostname);
/* ECS process object (as "process") for alerts and incidents. */
void ecs_process(struct jsonw *w, const char *key, const struct ward_proc *p);
/* Realtime seconds/nsec for a CLOCK_BOOTTIME ns value (process start times). */
void ecs_boot_to_real(uint64_t boot_ns, int64_t *sec, long *nsec);
#endif
