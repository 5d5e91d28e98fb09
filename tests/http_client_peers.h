/*
 * Real HTTP servers for the client's tests, started outside the runtime:
 * nginx with a generated configuration, and python3 -m http.server, each on
 * a free loopback port, serving files generated in a mkdtemp directory.
 * Each start returns false (and says why, loudly) only when the server's
 * program is not installed.
 */
#ifndef RLT_TEST_HTTP_CLIENT_PEERS_H
#define RLT_TEST_HTTP_CLIENT_PEERS_H

#include "tests/rlt_test.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

typedef struct peer {
	pid_t pid;
	int port;
	char dir[256]; /* the mkdtemp directory; files in dir/www */
} peer;

/* The byte at offset i of the generated file named by seed. */
static inline char peer_byte(unsigned seed, size_t i)
{
	return (char)('!' + (i * 7 + seed * 13 + (i >> 12)) % 90);
}

static inline int peer_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static inline void peer_write_file(const char *dir, const char *name, size_t size, unsigned seed)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/www/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	for (size_t i = 0; i < size; i++)
		fputc(peer_byte(seed, i), f);
	fclose(f);
}

static inline void peer_write_text(const char *dir, const char *name, const char *text)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* A temp directory with www/: small.txt, f4k.bin (4 KiB, seed 1),
 * big.bin (3 MiB, seed 2), ssi.shtml (an SSI page, chunked by nginx). */
static inline void peer_make_dir(peer *p)
{
	snprintf(p->dir, sizeof(p->dir), "/tmp/rlt-http-client-XXXXXX");
	assert_non_null(mkdtemp(p->dir));
	/* nginx's worker runs as nobody: the files must be readable by all. */
	assert_int_equal(chmod(p->dir, 0755), 0);
	char path[512];
	snprintf(path, sizeof(path), "%s/www", p->dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/tmp", p->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	peer_write_text(p->dir, "www/small.txt", "hello nginx\n");
	peer_write_text(p->dir, "www/ssi.shtml", "<p><!--#include file=\"small.txt\" --></p>\n");
	peer_write_file(p->dir, "f4k.bin", 4096, 1);
	peer_write_file(p->dir, "big.bin", 3 * 1024 * 1024, 2);
}

static inline int peer_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static inline bool peer_installed(const char *prog)
{
	char path[256];
	const char *dirs[] = {"/usr/sbin", "/usr/bin",	     "/sbin",
			      "/bin",	   "/usr/local/bin", "/usr/local/sbin"};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dirs[i], prog);
		if (access(path, X_OK) == 0)
			return true;
	}
	return false;
}

/* Wait (at most 10 s) until something accepts on 127.0.0.1:port. */
static inline bool peer_wait_ready(peer *p)
{
	for (int i = 0; i < 1000; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_port = htons((uint16_t)p->port),
					.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
		close(fd);
		if (rc == 0)
			return true;
		int status;
		if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
			p->pid = 0;
			return false; /* it died: its stderr says why */
		}
		nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
	}
	return false;
}

/* Start argv; its stderr goes to dir/server.log when quiet (python logs
 * every request there), else to ours. */
static inline void peer_spawn(peer *p, char *const argv[], bool quiet)
{
	char log[300];
	snprintf(log, sizeof(log), "%s/server.log", p->dir);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	if (quiet)
		posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	int rc = posix_spawn(&p->pid, argv[0], &fa, NULL, argv, rlt_test_peer_environ());
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		fail_msg("posix_spawn %s: %s", argv[0], strerror(rc));
}

/* nginx with one worker on a free port; a few locations beside the files.
 * With cert and key (PEM paths) it serves HTTPS; with NULL, plain HTTP. */
static inline bool peer_start_nginx_tls(peer *p, const char *cert, const char *key)
{
	const char *bin = access("/usr/sbin/nginx", X_OK) == 0 ? "/usr/sbin/nginx" : NULL;
	if (!bin) {
		fprintf(stderr, "SKIPPED: nginx is not installed (apt-get install nginx-light)\n");
		return false;
	}
	peer_make_dir(p);
	for (int attempt = 0; attempt < 5; attempt++) {
		p->port = peer_free_port();
		char tls[1024] = "";
		if (cert)
			snprintf(tls, sizeof(tls),
				 " ssl;\n    ssl_certificate %s;\n    ssl_certificate_key %s", cert,
				 key);
		char conf[4096];
		snprintf(
		    conf, sizeof(conf),
		    "worker_processes 1;\n"
		    "pid %1$s/nginx.pid;\n"
		    "error_log stderr crit;\n"
		    "events { worker_connections 1024; }\n"
		    "http {\n"
		    "  access_log off;\n"
		    "  client_body_temp_path %1$s/tmp; proxy_temp_path %1$s/tmp;\n"
		    "  fastcgi_temp_path %1$s/tmp; uwsgi_temp_path %1$s/tmp; scgi_temp_path "
		    "%1$s/tmp;\n"
		    "  types { text/plain txt; text/html shtml; application/octet-stream bin; }\n"
		    "  keepalive_requests 10000;\n"
		    "  server {\n"
		    "    listen 127.0.0.1:%2$d%3$s;\n"
		    "    root %1$s/www;\n"
		    "    ssi on;\n"
		    "    location = /redir { return 301 /small.txt; }\n"
		    "    location = /redir2 { return 302 %4$s://127.0.0.1:%2$d/redir; }\n"
		    "    location = /connreq { return 200 \"$connection $connection_requests\"; }\n"
		    "  }\n"
		    "}\n",
		    p->dir, p->port, tls, cert ? "https" : "http");
		peer_write_text(p->dir, "nginx.conf", conf);
		char prefix[300], cpath[300];
		snprintf(prefix, sizeof(prefix), "%s/", p->dir);
		snprintf(cpath, sizeof(cpath), "%s/nginx.conf", p->dir);
		char *argv[] = {(char *)bin, "-p", prefix, "-c", cpath, "-g", "daemon off;", NULL};
		peer_spawn(p, argv, false);
		if (peer_wait_ready(p))
			return true;
		if (p->pid) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, NULL, 0);
		}
	}
	fail_msg("nginx did not start (its stderr above says why)");
	return false;
}

/* nginx with one worker serving plain HTTP on a free port. */
static inline bool peer_start_nginx(peer *p)
{
	return peer_start_nginx_tls(p, NULL, NULL);
}

/* python3 -m http.server on a free port, serving dir/www. */
static inline bool peer_start_python(peer *p)
{
	if (!peer_installed("python3")) {
		fprintf(stderr, "SKIPPED: python3 is not installed\n");
		return false;
	}
	peer_make_dir(p);
	for (int attempt = 0; attempt < 5; attempt++) {
		p->port = peer_free_port();
		char port[16], www[300];
		snprintf(port, sizeof(port), "%d", p->port);
		snprintf(www, sizeof(www), "%s/www", p->dir);
		char *argv[] = {"/usr/bin/python3", "-m",	   "http.server", port, "--bind",
				"127.0.0.1",	    "--directory", www,		  NULL};
		peer_spawn(p, argv, true);
		if (peer_wait_ready(p))
			return true;
		if (p->pid) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, NULL, 0);
		}
	}
	fail_msg("python3 -m http.server did not start (see %s/server.log)", p->dir);
	return false;
}

/* tools/ringlet-http (ringlet's own server) with one worker on a free
 * port, serving dir/www. bin: its path in the build tree. */
static inline bool peer_start_ringlet_http(peer *p, const char *bin)
{
	if (access(bin, X_OK) != 0) {
		fprintf(stderr, "SKIPPED: %s is not built\n", bin);
		return false;
	}
	peer_make_dir(p);
	for (int attempt = 0; attempt < 5; attempt++) {
		p->port = peer_free_port();
		char port[16], www[300];
		snprintf(port, sizeof(port), "%d", p->port);
		snprintf(www, sizeof(www), "%s/www", p->dir);
		char *argv[] = {(char *)bin, "-p", port, "-w", "1", "-q", "-d", www, NULL};
		peer_spawn(p, argv, true);
		if (peer_wait_ready(p))
			return true;
		if (p->pid) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, NULL, 0);
		}
	}
	fail_msg("%s did not start (see %s/server.log)", bin, p->dir);
	return false;
}

static inline void peer_stop(peer *p)
{
	if (p->pid > 0) {
		kill(p->pid, SIGTERM);
#if defined(__SANITIZE_THREAD__)
		/* Under ThreadSanitizer a signal that lands while a coroutine
		 * (a TSan fiber) runs can be deferred to that fiber and never
		 * handled: a ThreadSanitizer-built ringlet-http lost its SIGTERM
		 * about once in ten runs (never in 40 default-build runs). Say
		 * so and send it again rather than hang the suite. */
		int pfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
		for (int tries = 1; pfd >= 0 && tries < 10; tries++) {
			struct pollfd pf = {.fd = pfd, .events = POLLIN};
			if (poll(&pf, 1, 5000) != 0)
				break; /* it exited (or poll failed: waitpid below) */
			fprintf(
			    stderr,
			    "NOTE: pid %d still runs %d s after SIGTERM: ThreadSanitizer deferred "
			    "the signal to a fiber; sending it again\n",
			    (int)p->pid, tries * 5);
			kill(p->pid, SIGTERM);
		}
		if (pfd >= 0)
			close(pfd);
		waitpid(p->pid, NULL, 0);
#else
		waitpid(p->pid, NULL, 0);
#endif
		p->pid = 0;
	}
	if (p->dir[0])
		nftw(p->dir, peer_rm, 16, FTW_DEPTH | FTW_PHYS);
	p->dir[0] = '\0';
}

/* cmocka teardown: runs even when an assertion inside a task failed. */
static inline int peer_teardown(void **state)
{
	peer_stop(*state);
	return 0;
}

#endif
