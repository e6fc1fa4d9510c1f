/* io.h: small I/O helpers shared by the modules that read files through descriptors. */
#ifndef WARD_IO_H
#define WARD_IO_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Reads n bytes at off, retrying short reads and EINTR. Returns the bytes read (fewer only
 * at end of file) or -errno. */
ssize_t io_pread_full(int fd, void *buf, size_t n, uint64_t off);
#endif
