/* event.h: the normalized file event and process record that flow from capture to
 * detection, outputs and traces. Capture fills them; everyone else only reads them. */
#ifndef WARD_EVENT_H
#define WARD_EVENT_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

enum ward_op {
	WOP_CREATE = 0,   /* a new name: file, hard link or symlink */
	WOP_MODIFY,       /* content written (merged by the kernel while unread) */
	WOP_CLOSE_WRITE,  /* a file opened for writing was closed */
	WOP_RENAME,       /* old and new path in one event */
	WOP_DELETE,       /* a name removed */
	WOP_MKDIR,
	WOP_RMDIR,
	WOP_OVERFLOW,     /* the kernel queue overflowed: events were lost */
	WOP__COUNT
};

/* What ward knows of a process. Owned by the process cache (proccache.h) or, for replayed
 * traces, by the trace reader; an event's pointer is valid until the event callback returns. */
#define WARD_EXE_MAX 512
#define WARD_ARGS_MAX 512
#define WARD_CGROUP_MAX 256
struct ward_proc {
	pid_t pid;
	pid_t ppid;
	uint32_t uid;
	uint32_t gid;
	uint64_t start_ns;           /* boot-time ns: with pid, identifies the process */
	uint64_t exit_ns;            /* 0 while alive (as far as ward knows) */
	uint64_t cgroup_id;
	char comm[16];
	char exe[WARD_EXE_MAX];      /* "" when unknown */
	char args[WARD_ARGS_MAX];    /* argv, each argument NUL-terminated, truncated */
	uint16_t args_len;           /* bytes used in args */
	char cgroup[WARD_CGROUP_MAX];
	bool known;                  /* false: attribution failed, only pid is true */
};

/* What ward found in a file's content after it was written (close_write), filled by
 * detect/content.h before detection and outputs see the event, and kept in traces so that a
 * replay reaches the same verdicts. */
struct ward_content {
	bool valid;                  /* inspected */
	bool type_valid;             /* the declared format's structure parses */
	uint8_t type;                /* enum filetype_id */
	uint8_t crypt;               /* enum filetype_crypt */
	uint8_t head_class;          /* enum entropy_class of the first block */
	bool head_suspect;           /* the head looks encrypted */
	bool pooled_nonuniform;      /* random-looking blocks are really compressed data */
	float suspect_frac;          /* encrypted-looking fraction of the sampled bytes */
	float max_entropy;           /* bits per byte, highest sampled block */
};

#define WARD_PATH_MAX 4096
struct ward_event {
	uint64_t seq;                /* per-run sequence number */
	struct timespec ts;          /* CLOCK_REALTIME when ward read the event */
	enum ward_op op;
	bool is_dir;
	uint64_t ino;                /* 0 when unknown */
	int64_t size;                /* -1 when unknown (deleted, or not a regular file);
				      * WARD_SIZE_LAZY: not looked up yet, see ward_event_size() */
	pid_t pid;                   /* from the kernel; also in proc->pid when known */
	pid_t tid;                   /* 0 when unknown (notification groups report tgid) */
	const struct ward_proc *proc;  /* never NULL */
	uint64_t lost;               /* WOP_OVERFLOW: total overflows seen so far */
	struct ward_content content; /* close_write of regular files only */
	/* The object itself, for readers of its content (capture fills these; NULL/-1 for
	 * replayed events): a struct file_handle and a descriptor on its filesystem. */
	const void *handle;
	int mount_fd;
	size_t path_len, old_path_len;
	char path[WARD_PATH_MAX];    /* the new path for renames */
	char old_path[WARD_PATH_MAX];/* renames only, else "" */
};

#define WARD_SIZE_LAZY (-2)
/* The size of the event's file, looked up (and kept in ev->size) on first use: the sensor
 * does not stat what no consumer reads. -1 when it cannot be known. */
int64_t ward_event_size(struct ward_event *ev);

/* Opens the event's object read-only through its file handle, never by path (a path open
 * on a filesystem with permission marks could wait on ward itself). Returns an fd or
 * -errno (-ENOENT for replayed events, -ESTALE when the file is gone). */
int ward_event_open(const struct ward_event *ev);

const char *ward_op_name(enum ward_op op);
/* Returns the op for its name, or -EINVAL. */
int ward_op_parse(const char *name);
/* ECS event.type values for the op ("creation", "change", "deletion", "info"). */
const char *ward_op_ecs_type(enum ward_op op);
#endif
