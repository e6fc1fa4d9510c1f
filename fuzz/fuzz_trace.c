/* fuzz_trace: the trace reader's line parser (header and events) on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "trace/trace.h"

static struct ward_event ev;
static struct ward_proc proc;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	if (trace_parse_event((const char *)data, size, &ev, &proc, err, sizeof(err)) == 0) {
		if (ev.path_len >= sizeof(ev.path) || ev.old_path_len >= sizeof(ev.old_path) ||
		    ev.proc != &proc || (unsigned)ev.op >= WOP__COUNT)
			abort();
	}
	trace_parse_header((const char *)data, size, err, sizeof(err));
	return 0;
}
