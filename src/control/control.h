/* control.h: the control socket between the running daemon and the CLI. A SOCK_SEQPACKET
 * unix socket in the runtime directory: one request message (a command word and optional
 * argument, at most CONTROL_REQ_MAX bytes) and one reply (JSON, at most CONTROL_REPLY_MAX).
 * The server checks the caller with SO_PEERCRED: only root or ward's own uid. */
#ifndef WARD_CONTROL_H
#define WARD_CONTROL_H
#include <stddef.h>

#define CONTROL_REQ_MAX 1024
#define CONTROL_REPLY_MAX (256 * 1024)
#define CONTROL_SOCK_NAME "ward.sock"

struct control;
/* Handler for one request: writes a JSON reply into reply (cap bytes). */
typedef void (*control_handler)(const char *req, char *reply, size_t cap, void *ctx);

/* Binds dir/ward.sock. -EADDRINUSE when another ward answers there (a stale socket left by a
 * dead ward is replaced). */
int control_listen(struct control **out, const char *dir, control_handler h, void *ctx);
int control_fd(const struct control *c);
/* Accepts and serves pending clients; call when control_fd() is readable. Never blocks. */
void control_serve(struct control *c);
void control_close(struct control *c);   /* accepts NULL; removes the socket */

/* Client: sends req to dir/ward.sock and reads the reply (NUL-terminated) into reply.
 * 0, -ENOENT/-ECONNREFUSED when no ward runs there, -EACCES when refused, -ETIMEDOUT. */
int control_request(const char *dir, const char *req, char *reply, size_t cap);
#endif
