/* trace.h: recorded event streams (`ward record` / `ward replay`). A trace is JSON lines:
 * a header line {"ward_trace":{"version":1,...}} and then one ECS event object per line,
 * exactly as `ward trace` prints them (see ecs.h). The reader validates every line and
 * names the line and the problem; it is fuzzed (fuzz/fuzz_trace.c). */
#ifndef WARD_TRACE_H
#define WARD_TRACE_H
#include <stdio.h>

#include "core/event.h"

#define TRACE_VERSION 1

/* Writes the header line. Returns 0 or -errno. */
int trace_write_header(FILE *f, const char *hostname);

/* Parses the header line: 0, or -EINVAL (not a trace) / -ENOTSUP (other version) with a
 * message in err. */
int trace_parse_header(const char *line, size_t len, char *err, size_t errlen);

/* Parses one event line into ev and proc (ev->proc = proc). Returns 0 or -EINVAL with a
 * message naming the field in err. */
int trace_parse_event(const char *line, size_t len, struct ward_event *ev, struct ward_proc *proc,
		      char *err, size_t errlen);

struct trace_reader;
/* Opens path ("-" for stdin) and checks the header. Caller frees with trace_reader_close. */
int trace_reader_open(struct trace_reader **out, const char *path, char *err, size_t errlen);
/* Next event: 1 when one was read, 0 at the end, -errno on error with err =
 * "FILE:LINE: problem". ev->proc points into the reader, valid until the next call. */
int trace_reader_next(struct trace_reader *r, struct ward_event *ev, char *err, size_t errlen);
void trace_reader_close(struct trace_reader *r);   /* accepts NULL */
#endif
