/* log.h: ward's own diagnostics (not alerts): to stderr, which journald captures under
 * systemd. Levels follow syslog. */
#ifndef WARD_LOG_H
#define WARD_LOG_H
#include <syslog.h>

extern int ward_log_level;   /* messages above this level are dropped; LOG_INFO by default */
void ward_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_err(...) ward_log(LOG_ERR, __VA_ARGS__)
#define log_warn(...) ward_log(LOG_WARNING, __VA_ARGS__)
#define log_info(...) ward_log(LOG_INFO, __VA_ARGS__)
#define log_debug(...) ward_log(LOG_DEBUG, __VA_ARGS__)
#endif
