/* log.c: diagnostics to stderr with a syslog priority prefix ("<4>") that journald
 * understands when ward runs under systemd, and a plain "ward: warning:" otherwise. */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int ward_log_level = LOG_INFO;

void ward_log(int level, const char *fmt, ...)
{
	static const char *const names[] = {"emerg", "alert", "crit", "error",
					    "warning", "notice", "info", "debug"};
	static int journal = -1;
	if (level > ward_log_level)
		return;
	if (journal < 0)
		journal = getenv("JOURNAL_STREAM") != NULL;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (journal)
		fprintf(stderr, "<%d>%s\n", level & 7, msg);
	else
		fprintf(stderr, "ward: %s: %s\n", names[level & 7], msg);
}
