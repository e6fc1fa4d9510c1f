/* event.c: names of event operations, shared by outputs and the trace reader. */
#include "core/event.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <string.h>

static const char *const op_names[WOP__COUNT] = {
	[WOP_CREATE] = "create",       [WOP_MODIFY] = "modify",
	[WOP_CLOSE_WRITE] = "close_write", [WOP_RENAME] = "rename",
	[WOP_DELETE] = "delete",       [WOP_MKDIR] = "mkdir",
	[WOP_RMDIR] = "rmdir",         [WOP_OVERFLOW] = "overflow",
};

const char *ward_op_name(enum ward_op op)
{
	return (unsigned)op < WOP__COUNT ? op_names[op] : "unknown";
}

int ward_op_parse(const char *name)
{
	for (int i = 0; i < WOP__COUNT; i++)
		if (strcmp(op_names[i], name) == 0)
			return i;
	return -EINVAL;
}

const char *ward_op_ecs_type(enum ward_op op)
{
	switch (op) {
	case WOP_CREATE:
	case WOP_MKDIR:
		return "creation";
	case WOP_DELETE:
	case WOP_RMDIR:
		return "deletion";
	case WOP_OVERFLOW:
		return "info";
	default:
		return "change";
	}
}

int ward_event_open(const struct ward_event *ev)
{
	if (!ev->handle || ev->mount_fd < 0)
		return -ENOENT;
	int fd = open_by_handle_at(ev->mount_fd, (struct file_handle *)ev->handle,
				   O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	return fd < 0 ? -errno : fd;
}

int64_t ward_event_size(struct ward_event *ev)
{
	if (ev->size != WARD_SIZE_LAZY)
		return ev->size;
	ev->size = -1;
	if (!ev->handle || ev->mount_fd < 0)
		return -1;
	int fd = open_by_handle_at(ev->mount_fd, (struct file_handle *)ev->handle, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) == 0) {
		ev->ino = st.st_ino;
		if (S_ISREG(st.st_mode))
			ev->size = st.st_size;
	}
	close(fd);
	return ev->size;
}
