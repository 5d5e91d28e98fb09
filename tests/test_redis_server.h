/*
 * A real redis-server for the Redis tests: started on a free loopback port
 * and a Unix socket in a mkdtemp directory, no persistence, killed and
 * removed afterwards. Tests skip (loudly) where redis-server is not
 * installed.
 */
#ifndef RLT_TEST_REDIS_SERVER_H
#define RLT_TEST_REDIS_SERVER_H

#include "tests/rlt_test.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REDIS_SERVER_BIN "redis-server"
#define REDIS_MAX_ARGS	 24

typedef struct redis_srv {
	char dir[64];
	char sock[128];
	char addr[64];	 /* "127.0.0.1:<port>" */
	char uaddr[160]; /* "unix:<sock>" */
	int port;
	pid_t pid;
	const char *extra[12]; /* extra arguments, NULL-terminated */
} redis_srv;

static inline bool redis_srv_installed(void)
{
	const char *path = getenv("PATH");
	char buf[512];
	if (!path)
		path = "/usr/bin:/bin";
	const char *p = path;
	while (*p) {
		const char *e = strchr(p, ':');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, p, REDIS_SERVER_BIN);
		if (access(buf, X_OK) == 0)
			return true;
		p += n + (e ? 1 : 0);
	}
	return false;
}

/* Skip the calling test (loudly) when there is no redis-server. */
#define REDIS_REQUIRE()                                                                            \
	do {                                                                                       \
		if (!redis_srv_installed()) {                                                      \
			fprintf(stderr, "SKIP: %s not installed (Debian: redis-server)\n",         \
				REDIS_SERVER_BIN);                                                 \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

static inline int redis_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* Whether the server answers on its Unix socket yet. */
static inline bool redis_srv_up(redis_srv *s)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	size_t n = strlen(s->sock);
	memcpy(a.sun_path, s->sock, n < sizeof(a.sun_path) ? n : sizeof(a.sun_path) - 1);
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

/* Spawn redis-server on s->port / s->sock and wait (at most 10 s) until it
 * accepts connections. May be called again after redis_srv_kill. */
static inline bool redis_srv_spawn(redis_srv *s)
{
	char port[16], log[128];
	snprintf(port, sizeof(port), "%d", s->port);
	snprintf(log, sizeof(log), "%s/redis.log", s->dir);
	const char *argv[REDIS_MAX_ARGS + 12] = {REDIS_SERVER_BIN,
						 "--port",
						 port,
						 "--bind",
						 "127.0.0.1",
						 "--unixsocket",
						 s->sock,
						 "--save",
						 "",
						 "--appendonly",
						 "no",
						 "--daemonize",
						 "no",
						 "--dir",
						 s->dir,
						 "--logfile",
						 log};
	int n = 17;
	for (int i = 0; s->extra[i]; i++)
		argv[n++] = s->extra[i];
	argv[n] = NULL;
	unlink(s->sock);
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a crashed test */
		execvp(argv[0], (char **)argv);
		_exit(127);
	}
	if (pid < 0)
		return false;
	s->pid = pid;
	struct timespec tick = {0, 5 * 1000 * 1000};
	for (int i = 0; i < 2000; i++) {
		if (redis_srv_up(s))
			return true;
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			s->pid = 0;
			return false;
		}
		nanosleep(&tick, NULL); /* polling for readiness, bounded */
	}
	return false;
}

/* Start a server; extra arguments (NULL-terminated, may be NULL) are added
 * to the command line ("--requirepass", "pw", ...). */
static inline void redis_srv_start(redis_srv *s, const char *const *extra)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "/tmp/rlt-redis-XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	snprintf(s->sock, sizeof(s->sock), "%s/redis.sock", s->dir);
	for (int i = 0; extra && extra[i] && i < 11; i++)
		s->extra[i] = extra[i];
	s->port = redis_free_port();
	snprintf(s->addr, sizeof(s->addr), "127.0.0.1:%d", s->port);
	snprintf(s->uaddr, sizeof(s->uaddr), "unix:%s", s->sock);
	if (!redis_srv_spawn(s))
		fail_msg("redis-server did not start (see %s/redis.log)", s->dir);
}

static inline void redis_srv_kill(redis_srv *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
	}
}

static inline void redis_srv_stop(redis_srv *s)
{
	redis_srv_kill(s);
	DIR *d = opendir(s->dir);
	if (d) {
		struct dirent *e;
		char path[512];
		while ((e = readdir(d)))
			if (e->d_name[0] != '.') {
				snprintf(path, sizeof(path), "%s/%s", s->dir, e->d_name);
				unlink(path);
			}
		closedir(d);
	}
	rmdir(s->dir);
}

/* A test program's group setup and teardown around one plain server s
 * (left unstarted, and the tests skip, where redis-server is missing). */
static inline int redis_srv_group_setup(redis_srv *s)
{
	if (redis_srv_installed())
		redis_srv_start(s, NULL);
	return 0;
}

static inline int redis_srv_group_teardown(redis_srv *s)
{
	if (s->dir[0])
		redis_srv_stop(s);
	return 0;
}

#endif
