/* procmon.c: user side of the eBPF process monitor: loads the skeleton generated from
 * procmon.bpf.c and feeds its ring buffer into the process cache. */
#include "capture/procmon.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "capture/proccache.h"
#include "capture/procmon.skel.h"
#include "core/log.h"

struct procmon {
	struct procmon_bpf *skel;
	struct ring_buffer *rb;
	struct proccache *cache;
};

static int on_rec(void *ctx, void *data, size_t len)
{
	struct procmon *pm = ctx;
	if (len < sizeof(struct procmon_rec))
		return 0;
	proccache_apply(pm->cache, data);
	return 0;
}

static int quiet_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* libbpf's own chatter would drown ward's start-up report; errors are reported by
	 * the caller with the errno. */
	return 0;
}

int procmon_open(struct procmon **out, struct proccache *cache)
{
	int err;
	struct procmon *pm = calloc(1, sizeof(*pm));
	if (!pm)
		return -ENOMEM;
	pm->cache = cache;
	libbpf_set_print(quiet_print);
	pm->skel = procmon_bpf__open_and_load();
	if (!pm->skel) {
		err = errno ? -errno : -EINVAL;
		goto out;
	}
	err = procmon_bpf__attach(pm->skel);
	if (err)
		goto out;
	pm->rb = ring_buffer__new(bpf_map__fd(pm->skel->maps.events), on_rec, pm, NULL);
	if (!pm->rb) {
		err = errno ? -errno : -ENOMEM;
		goto out;
	}
	*out = pm;
	return 0;
out:
	procmon_close(pm);
	return err;
}

int procmon_drain(struct procmon *pm)
{
	return ring_buffer__consume(pm->rb);
}

int procmon_fd(const struct procmon *pm)
{
	return ring_buffer__epoll_fd(pm->rb);
}

unsigned long long procmon_lost(const struct procmon *pm)
{
	int ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0 || ncpu > 4096)
		return 0;
	unsigned long long vals[ncpu], sum = 0;
	__u32 k = 0;
	if (bpf_map__lookup_elem(pm->skel->maps.lost, &k, sizeof(k), vals, sizeof(vals), 0))
		return 0;
	for (int i = 0; i < ncpu; i++)
		sum += vals[i];
	return sum;
}

void procmon_close(struct procmon *pm)
{
	if (!pm)
		return;
	ring_buffer__free(pm->rb);
	procmon_bpf__destroy(pm->skel);
	free(pm);
}
