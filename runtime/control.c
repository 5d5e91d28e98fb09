/*
 * The console's control socket (RINGLET_CONTROL): a Unix stream socket the
 * runtime answers on, from a task of its own, so `tools/ringlet top` and
 * `tools/ringlet tasks` can look inside a running program without a signal
 * (tokio-console's job, on a plain socket).
 *
 * Where: RINGLET_CONTROL=/path (a socket file, made at start and unlinked at
 * the end; a live socket already there is refused, a stale one replaced),
 * @name (the abstract name "name": no file), or @ alone: the abstract name
 * "ringlet-<pid>", which `tools/ringlet top PID` finds without being told.
 *
 * The protocol: the client sends one command line, the runtime answers and
 * closes the connection.
 *   stats        the counters as one JSON line (rlt_stats_format JSON)
 *   text         the counters as the text table
 *   prometheus   the counters in the Prometheus text format
 *   tasks        the task dump (rlt_dump_tasks's text)
 *   top [N]      one JSON line: {"stats":{...},"ntasks":M,"tasks":[the N
 *                tasks (default 20) that have run longest, by time held]}
 *   trace        write the trace file now (RINGLET_TRACE): {"trace":...}
 *   help         the commands
 * Anything else gets "error: ..." and the connection closed.
 *
 * Who may ask: the peer's credentials (SO_PEERCRED) must be our effective
 * uid's or root's; an abstract socket has no file permissions, so this is
 * the only gate there. Misbehaving clients: a command line is at most 255
 * bytes, the whole exchange has CLIENT_DEADLINE_NS (a client that connects
 * and says nothing, or reads nothing, is cut off), and at most MAX_CLIENTS
 * are served at once (the rest are closed at once). A failure of accept
 * that is about resources (EMFILE...) backs off 10 ms and goes on.
 */
#include "ringlet/cancel.h"
#include "ringlet/io.h"
#include "ringlet/stats.h"
#include "ringlet/task.h"
#include "ringlet/time.h"

#include "runtime/alloc.h"
#include "runtime/config.h"
#include "sched/worker.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_CLIENTS	   16
#define CLIENT_DEADLINE_NS (2 * RLT_NSEC_PER_SEC)
#define LINE_MAX_BYTES	   256
#define TOP_DEFAULT	   20

typedef struct rlt__control {
	rlt__runtime *rt;
	int lfd;
	bool unlink_path;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	atomic_uint clients;
} rlt__control;

int rlt__trace_flush(rlt__runtime *rt, char *path, size_t len, uint64_t *events);

/* ---- the socket ---- */

static int make_addr(const char *spec, struct sockaddr_un *sa, socklen_t *len, bool *abstract)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	size_t room = sizeof(sa->sun_path);
	char name[sizeof(sa->sun_path)];
	*abstract = spec[0] == '@';
	if (*abstract) {
		if (spec[1])
			snprintf(name, sizeof(name), "%s", spec + 1);
		else
			snprintf(name, sizeof(name), "ringlet-%ld", (long)getpid());
		size_t n = strlen(name);
		if (n + 1 > room)
			return -ENAMETOOLONG;
		memcpy(sa->sun_path + 1, name, n); /* sun_path[0] = 0: abstract */
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
	} else {
		size_t n = strlen(spec);
		if (n == 0 || n >= room)
			return -ENAMETOOLONG;
		memcpy(sa->sun_path, spec, n);
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	return 0;
}

static int open_listener(rlt__control *c, const char *spec)
{
	struct sockaddr_un sa;
	socklen_t len;
	bool abstract;
	int rc = make_addr(spec, &sa, &len, &abstract);
	if (rc < 0)
		return rc;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (!abstract) {
		struct stat st;
		if (lstat(sa.sun_path, &st) == 0) {
			if (!S_ISSOCK(st.st_mode)) {
				close(fd);
				return -EEXIST;
			}
			/* A live console there is somebody else's: leave it. */
			int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
			bool live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, len) == 0;
			if (probe >= 0)
				close(probe);
			if (live) {
				close(fd);
				return -EADDRINUSE;
			}
			unlink(sa.sun_path);
		}
	}
	if (bind(fd, (struct sockaddr *)&sa, len) < 0 || listen(fd, 16) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	c->lfd = fd;
	c->unlink_path = !abstract;
	if (!abstract)
		snprintf(c->path, sizeof(c->path), "%s", sa.sun_path);
	return 0;
}

/* ---- one client ---- */

typedef struct client {
	rlt__control *c;
	int fd;
} client;

static int reply(int fd, const char *buf, size_t len)
{
	ssize_t n = rlt_send_all(fd, buf, len, 0);
	return n < 0 ? (int)n : 0;
}

static int reply_str(int fd, const char *s)
{
	return reply(fd, s, strlen(s));
}

/* The snapshot in fmt, malloc'd (*len bytes); NULL on failure. */
static char *stats_text(int fmt, size_t *len)
{
	rlt_stats snap;
	if (rlt_runtime_stats(NULL, &snap) < 0)
		return NULL;
	ssize_t n = rlt_stats_format(&snap, fmt, NULL, 0);
	char *buf = n > 0 ? malloc((size_t)n + 2) : NULL;
	if (buf) {
		rlt_stats_format(&snap, fmt, buf, (size_t)n + 1);
		if (fmt == RLT_STATS_JSON)
			buf[n++] = '\n';
		*len = (size_t)n;
	}
	rlt_stats_release(&snap);
	return buf;
}

static int by_held(const void *a, const void *b)
{
	const rlt__task_info *x = a, *y = b;
	if (x->held_ns != y->held_ns)
		return x->held_ns < y->held_ns ? 1 : -1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static int cmd_top(rlt__control *c, int fd, unsigned top)
{
	/* Time held needs task timing: on from now, unless RINGLET_TIMING=0
	 * refused it. The time before is not known: the console shows rates
	 * from its second look on. */
	if (c->rt->timing_allowed)
		atomic_fetch_or_explicit(&c->rt->observe, RLT__OBS_TIMING, memory_order_relaxed);
	size_t slen = 0;
	char *stats = stats_text(RLT_STATS_JSON, &slen);
	if (!stats)
		return reply_str(fd, "error: no memory\n");
	rlt__task_info *ti = NULL;
	size_t n = 0;
	int rc = rlt__task_infos(&ti, &n);
	if (rc < 0) {
		free(stats);
		return reply_str(fd, "error: no memory\n");
	}
	qsort(ti, n, sizeof(*ti), by_held);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (f) {
		stats[slen - 1] = '\0'; /* the newline */
		fprintf(f, "{\"stats\":%s,\"ntasks\":%zu,\"tasks\":[", stats, n);
		for (size_t i = 0; i < n && i < top; i++) {
			fprintf(f, "%s{\"id\":%" PRIu64 ",\"name\":", i ? "," : "", ti[i].id);
			rlt__json_fputs(f, ti[i].name);
			fprintf(f, ",\"worker\":%u,\"state\":\"%s\",\"what\":", ti[i].worker,
				ti[i].state_name);
			rlt__json_fputs(f, ti[i].what);
			fprintf(f, ",\"held_ns\":%" PRIu64 ",\"age_ns\":%" PRIu64 "}",
				ti[i].held_ns, ti[i].age_ns);
		}
		fprintf(f, "]}\n");
		fclose(f);
	}
	rlt__free(ti);
	free(stats);
	rc = buf ? reply(fd, buf, len) : reply_str(fd, "error: no memory\n");
	free(buf);
	return rc;
}

static int cmd_tasks(int fd)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return reply_str(fd, "error: no memory\n");
	rlt_dump_tasks(f);
	fclose(f);
	int rc = reply(fd, buf, len);
	free(buf);
	return rc;
}

static int cmd_trace(rlt__control *c, int fd)
{
	char path[256], out[400];
	uint64_t events = 0;
	int rc = rlt__trace_flush(c->rt, path, sizeof(path), &events);
	if (rc == -ENOENT)
		return reply_str(fd, "error: tracing is off (RINGLET_TRACE)\n");
	if (rc < 0) {
		snprintf(out, sizeof(out), "error: writing the trace: %s\n", strerror(-rc));
		return reply_str(fd, out);
	}
	/* The path is the user's: JSON-escape it. */
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return reply_str(fd, "error: no memory\n");
	fprintf(f, "{\"trace\":");
	rlt__json_fputs(f, path);
	fprintf(f, ",\"events\":%" PRIu64 "}\n", events);
	fclose(f);
	rc = reply(fd, buf, len);
	free(buf);
	return rc;
}

static const char help[] = "commands: stats | text | prometheus | tasks | top [N] | trace | help\n";

static int dispatch(rlt__control *c, int fd, char *line)
{
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\r' || line[n - 1] == ' '))
		line[--n] = '\0';
	char *arg = strchr(line, ' ');
	if (arg)
		*arg++ = '\0';
	if (!strcmp(line, "stats") || !strcmp(line, "text") || !strcmp(line, "prometheus")) {
		int fmt = line[0] == 's'   ? RLT_STATS_JSON
			  : line[0] == 't' ? RLT_STATS_TEXT
					   : RLT_STATS_PROMETHEUS;
		size_t len = 0;
		char *buf = stats_text(fmt, &len);
		if (!buf)
			return reply_str(fd, "error: no memory\n");
		int rc = reply(fd, buf, len);
		free(buf);
		return rc;
	}
	if (!strcmp(line, "top")) {
		long top = arg ? strtol(arg, NULL, 10) : TOP_DEFAULT;
		return cmd_top(c, fd, top > 0 && top < 100000 ? (unsigned)top : TOP_DEFAULT);
	}
	if (!strcmp(line, "tasks"))
		return cmd_tasks(fd);
	if (!strcmp(line, "trace"))
		return cmd_trace(c, fd);
	if (!strcmp(line, "help"))
		return reply_str(fd, help);
	return reply_str(fd, "error: unknown command (send help)\n");
}

/* Read one line (up to '\n') into line; 0, or a negative errno (-EMSGSIZE:
 * longer than the limit, -EPROTO: the client ended first). */
static int read_line(int fd, char *line, size_t cap)
{
	size_t n = 0;
	for (;;) {
		ssize_t r = rlt_recv(fd, line + n, cap - 1 - n, 0);
		if (r < 0)
			return (int)r;
		if (r == 0)
			return -EPROTO;
		n += (size_t)r;
		line[n] = '\0';
		char *nl = memchr(line, '\n', n);
		if (nl) {
			*nl = '\0';
			return 0;
		}
		if (n + 1 >= cap)
			return -EMSGSIZE;
	}
}

static bool peer_allowed(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return false;
	return cr.uid == geteuid() || cr.uid == 0;
}

static void *client_main(void *arg)
{
	client *cl = arg;
	rlt__control *c = cl->c;
	int fd = cl->fd;
	rlt__free(cl);
	rlt_scope sc;
	rlt_scope_enter(&sc, (int64_t)CLIENT_DEADLINE_NS);
	if (!peer_allowed(fd)) {
		reply_str(fd, "error: permission denied (not the runtime's user, nor root)\n");
	} else {
		char line[LINE_MAX_BYTES];
		int rc = read_line(fd, line, sizeof(line));
		if (rc == 0)
			dispatch(c, fd, line);
		else if (rc == -EMSGSIZE)
			reply_str(fd, "error: command line too long\n");
		/* else: gone, timed out or cancelled: nothing to say */
	}
	rlt_scope_leave(&sc);
	rlt_close(fd);
	atomic_fetch_sub_explicit(&c->clients, 1, memory_order_relaxed);
	return NULL;
}

/* ---- the server task ---- */

static void *control_main(void *arg)
{
	rlt__control *c = arg;
	for (;;) {
		int fd = rlt_accept(c->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd == -ECANCELED)
			break;
		if (fd < 0) {
			if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
				if (rlt_sleep(10 * RLT_NSEC_PER_MSEC) == -ECANCELED)
					break;
			} else if (rlt_cancelled()) {
				break;
			}
			continue;
		}
		client *cl = NULL;
		if (atomic_fetch_add_explicit(&c->clients, 1, memory_order_relaxed) < MAX_CLIENTS)
			cl = rlt__malloc(sizeof(*cl));
		if (cl) {
			cl->c = c;
			cl->fd = fd;
			rlt_spawn_opts o = {.name = "ringlet-console", .flags = RLT_SPAWN_DETACHED};
			if (rlt_spawn(client_main, cl, &o))
				continue;
			rlt__free(cl);
		}
		atomic_fetch_sub_explicit(&c->clients, 1, memory_order_relaxed);
		close(fd); /* too many at once: the client sees the end at once */
	}
	return NULL;
}

int rlt__control_start(rlt__runtime *rt, rlt__worker *w)
{
	const char *spec = rt->settings.control;
	if (!rlt__settings_given(&rt->settings, RLT__CFG_CONTROL) || !spec[0])
		return 0;
	rlt__control *c = rlt__calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->rt = rt;
	c->lfd = -1;
	int rc = open_listener(c, spec);
	if (rc < 0) {
		fprintf(stderr, "ringlet: RINGLET_CONTROL=%s: %s: no console\n", spec,
			strerror(-rc));
		rlt__free(c);
		return rc;
	}
	rlt_spawn_opts o = {.name = "ringlet-control", .flags = RLT_SPAWN_DETACHED};
	rlt_task *t = rlt__task_create(rt, w, control_main, c, &o);
	if (!t) {
		close(c->lfd);
		if (c->unlink_path)
			unlink(c->path);
		rlt__free(c);
		return -ENOMEM;
	}
	rt->control = c;
	t->fn_name = "ringlet-control";
	t->worker = w;
	rlt__sched_push(w, t, false);
	return 0;
}

void rlt__control_free(rlt__runtime *rt)
{
	rlt__control *c = rt->control;
	if (!c)
		return;
	/* Every thread has stopped: the task is gone (or abandoned). */
	if (c->lfd >= 0)
		close(c->lfd);
	if (c->unlink_path)
		unlink(c->path);
	rlt__free(c);
	rt->control = NULL;
}
