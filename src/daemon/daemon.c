/* daemon.c: the event loop. One thread: epoll over the fanotify group, the eBPF ring
 * buffer, the control socket, a signalfd and a 1 s timer. Nothing in this loop may block
 * on the outside world: outputs that can stall (files on slow disks, network receivers)
 * are queued to their own threads. */
#include "daemon/daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "capture/sensor.h"
#include "control/control.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "trace/ecs.h"

struct daemon {
	const struct daemon_opts *o;
	struct sensor *sensor;
	struct control *ctl;
	struct jsonw w;
	FILE *events_file;
	char hostname[256];
	time_t started;
	uint64_t out_errors;
};

static void on_event(const struct ward_event *ev, void *ctx)
{
	struct daemon *d = ctx;
	FILE *outs[2] = {d->o->events_out, d->events_file};
	if (!outs[0] && !outs[1])
		return;
	jsonw_reset(&d->w);
	ecs_event(&d->w, ev, d->hostname);
	if (d->w.oom) {
		d->out_errors++;
		return;
	}
	for (int i = 0; i < 2; i++)
		if (outs[i] && (fwrite(d->w.buf, 1, d->w.len, outs[i]) != d->w.len || fputc('\n', outs[i]) == EOF))
			d->out_errors++;
}

static void on_control(const char *req, char *reply, size_t cap, void *ctx)
{
	struct daemon *d = ctx;
	struct jsonw w;
	jsonw_init(&w);
	jsonw_obj_open(&w, NULL);
	if (strcmp(req, "status") == 0) {
		struct sensor_stats st;
		sensor_stats(d->sensor, &st);
		const struct ward_config *c = d->o->cfg;
		jsonw_bool(&w, "running", true);
		jsonw_bool(&w, "watching", c->nwatch > 0);
		jsonw_int(&w, "pid", getpid());
		jsonw_str(&w, "mode", c->mode == WARD_MODE_PROTECT ? "protect" : "monitor");
		jsonw_int(&w, "uptime_s", (int64_t)(time(NULL) - d->started));
		jsonw_arr_open(&w, "watch");
		for (int i = 0; i < c->nwatch; i++)
			jsonw_str(&w, NULL, c->watch[i]);
		jsonw_arr_close(&w);
		jsonw_str(&w, "state_dir", c->state_dir);
		jsonw_obj_open(&w, "events");
		jsonw_uint(&w, "total", st.events);
		for (int i = 0; i < WOP__COUNT; i++)
			jsonw_uint(&w, ward_op_name(i), st.by_op[i]);
		jsonw_obj_close(&w);
		jsonw_uint(&w, "overflows", st.overflows);
		jsonw_uint(&w, "attribution_failures", st.attrib_fail);
		jsonw_uint(&w, "unresolved", st.unresolved);
		jsonw_uint(&w, "outside", st.outside);
		jsonw_uint(&w, "bpf_lost", st.bpf_lost);
		jsonw_uint(&w, "output_errors", d->out_errors);
		jsonw_arr_open(&w, "features");
		const char *f = sensor_features(d->sensor);
		while (*f) {
			size_t n = strcspn(f, "\n");
			jsonw_strn(&w, NULL, f, n);
			f += n + (f[n] == '\n');
		}
		jsonw_arr_close(&w);
	} else {
		jsonw_str(&w, "error", "unknown request");
	}
	jsonw_obj_close(&w);
	snprintf(reply, cap, "%s", w.oom ? "{\"error\":\"out of memory\"}" : w.buf);
	jsonw_free(&w);
}

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[CONFIG_PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int ep_add(int ep, int fd)
{
	struct epoll_event e = {.events = EPOLLIN, .data.fd = fd};
	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0 ? -errno : 0;
}

int daemon_run(const struct daemon_opts *o)
{
	const struct ward_config *c = o->cfg;
	struct daemon d = {.o = o, .started = time(NULL)};
	int rc, ep = -1, sfd = -1, tfd = -1;
	char err[512] = "";
	sigset_t mask;

	jsonw_init(&d.w);
	gethostname(d.hostname, sizeof(d.hostname) - 1);
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (o->control) {
		if ((rc = mkdir_p(c->state_dir, 0700)) || (rc = mkdir_p(c->runtime_dir, 0755))) {
			log_err("cannot create %s or %s: %s", c->state_dir, c->runtime_dir, strerror(-rc));
			goto out;
		}
	}
	if (c->events_file[0]) {
		d.events_file = fopen(c->events_file, "ae");
		if (!d.events_file) {
			rc = -errno;
			log_err("events_file %s: %s", c->events_file, strerror(errno));
			goto out;
		}
	}

	struct sensor_cfg sc = {.nroots = c->nwatch, .unlimited_queue = c->unlimited_queue,
				.no_bpf = c->no_bpf,
				.proc_grace_ns = (uint64_t)c->proc_grace_s * 1000000000ull};
	for (int i = 0; i < c->nwatch; i++)
		sc.roots[i] = c->watch[i];
	for (int i = 0; i < c->nexclude && sc.nexcludes < SENSOR_MAX_ROOTS; i++)
		sc.excludes[sc.nexcludes++] = c->exclude[i];
	/* ward's own files are never events (its own pid is dropped too) */
	if (o->control && sc.nexcludes < SENSOR_MAX_ROOTS)
		sc.excludes[sc.nexcludes++] = c->state_dir;
	rc = sensor_open(&d.sensor, &sc, on_event, &d, err, sizeof(err));
	if (rc) {
		log_err("%s", err);
		goto out;
	}
	{
		const char *f = sensor_features(d.sensor);
		while (*f) {
			size_t n = strcspn(f, "\n");
			ward_log(strncmp(f, "enabled", 7) == 0 ? LOG_INFO : LOG_WARNING, "%.*s", (int)n, f);
			f += n + (f[n] == '\n');
		}
	}
	if (o->control) {
		rc = control_listen(&d.ctl, c->runtime_dir, on_control, &d);
		if (rc) {
			log_err("control socket in %s: %s", c->runtime_dir,
				rc == -EADDRINUSE ? "another ward is running there" : strerror(-rc));
			goto out;
		}
	}

	ep = epoll_create1(EPOLL_CLOEXEC);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (ep < 0 || sfd < 0 || tfd < 0) {
		rc = -errno;
		log_err("epoll/signalfd/timerfd: %s", strerror(errno));
		goto out;
	}
	struct itimerspec its = {.it_interval = {1, 0}, .it_value = {1, 0}};
	timerfd_settime(tfd, 0, &its, NULL);
	if ((rc = ep_add(ep, sensor_fd(d.sensor))) || (rc = ep_add(ep, sfd)) || (rc = ep_add(ep, tfd)) ||
	    (sensor_aux_fd(d.sensor) >= 0 && (rc = ep_add(ep, sensor_aux_fd(d.sensor)))) ||
	    (d.ctl && (rc = ep_add(ep, control_fd(d.ctl))))) {
		log_err("epoll: %s", strerror(-rc));
		goto out;
	}

	for (int i = 0; i < c->nwatch; i++)
		log_info("watching %s", c->watch[i]);
	log_info("ready (%s, pid %d)", o->what, getpid());
	sd_notify(0, "READY=1\nSTATUS=watching");

	bool stop = false;
	while (!stop) {
		struct epoll_event evs[8];
		int n = epoll_wait(ep, evs, 8, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			log_err("epoll_wait: %s", strerror(errno));
			goto out;
		}
		bool sensor_ready = false;
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == sfd) {
				struct signalfd_siginfo si;
				while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
					if (si.ssi_signo == SIGHUP) {
						log_info("SIGHUP: reopening outputs");
						if (d.events_file) {
							FILE *nf = fopen(c->events_file, "ae");
							if (nf) {
								fclose(d.events_file);
								d.events_file = nf;
							}
						}
					} else {
						log_info("signal %d: stopping", si.ssi_signo);
						stop = true;
					}
				}
			} else if (fd == tfd) {
				uint64_t x;
				if (read(tfd, &x, sizeof(x)) > 0)
					sensor_housekeep(d.sensor);
				sd_notify(0, "WATCHDOG=1");
			} else if (d.ctl && fd == control_fd(d.ctl)) {
				control_serve(d.ctl);
			} else {
				sensor_ready = true;
			}
		}
		if (sensor_ready || stop) {
			rc = sensor_process(d.sensor);
			if (rc < 0) {
				log_err("reading events: %s", strerror(-rc));
				goto out;
			}
			if (o->events_out)
				fflush(o->events_out);
			if (d.events_file)
				fflush(d.events_file);
		}
	}
	rc = 0;
	{
		struct sensor_stats st;
		sensor_stats(d.sensor, &st);
		log_info("stopped: %llu events, %llu queue overflows, %llu unattributed",
			 (unsigned long long)st.events, (unsigned long long)st.overflows,
			 (unsigned long long)st.attrib_fail);
	}
out:
	sd_notify(0, "STOPPING=1");
	if (tfd >= 0)
		close(tfd);
	if (sfd >= 0)
		close(sfd);
	if (ep >= 0)
		close(ep);
	control_close(d.ctl);
	sensor_close(d.sensor);
	if (d.events_file)
		fclose(d.events_file);
	jsonw_free(&d.w);
	return rc;
}
