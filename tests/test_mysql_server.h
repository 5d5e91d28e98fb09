/*
 * A throwaway MariaDB server for the MySQL tests: mariadb-install-db into a
 * mkdtemp directory, mariadbd on a free loopback port and a Unix socket in
 * that directory, a user with a password (created through the root socket
 * with ringlet_mysql itself), stopped and removed afterwards.
 */
#ifndef RLT_TEST_MYSQL_SERVER_H
#define RLT_TEST_MYSQL_SERVER_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ringlet/mysql.h>

#define TMS_USER "rlt"
#define TMS_PASS "rlt-secret"
#define TMS_DB	 "rlt_test"

typedef struct tms_server {
	char dir[64];
	char sock[128];
	char cert[128]; /* self-signed for 127.0.0.1 ("" when openssl is missing) */
	unsigned port;
	pid_t pid;
	int ok;
} tms_server;

static tms_server tms;

static const char *tms_find(const char *const *cands)
{
	for (; *cands; cands++)
		if (access(*cands, X_OK) == 0)
			return *cands;
	return NULL;
}

static const char *tms_mariadbd(void)
{
	static const char *const c[] = {"/usr/sbin/mariadbd", "/usr/sbin/mysqld",
					"/usr/bin/mariadbd", NULL};
	return tms_find(c);
}

static const char *tms_installdb(void)
{
	static const char *const c[] = {"/usr/bin/mariadb-install-db", "/usr/bin/mysql_install_db",
					"/usr/sbin/mariadb-install-db", NULL};
	return tms_find(c);
}

static inline unsigned tms_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	close(fd);
	return ntohs(a.sin_port);
}

static pid_t tms_spawn(char *const argv[], const char *log)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	pid_t pid;
	extern char **environ;
	int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	return rc == 0 ? pid : -1;
}

static void tms_rmrf(const char *dir)
{
	char *argv[] = {"/bin/rm", "-rf", (char *)dir, NULL};
	pid_t pid = tms_spawn(argv, "/dev/null");
	if (pid > 0)
		waitpid(pid, NULL, 0);
}

static void tms_dump_log(void)
{
	char path[160], line[512];
	snprintf(path, sizeof(path), "%s/server.log", tms.dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	fprintf(stderr, "---- %s\n", path);
	while (fgets(line, sizeof(line), f))
		fputs(line, stderr);
	fclose(f);
}

/* Root's setup through the root socket, once the server answers. Each
 * statement may be run again (under the fault policy a connection or a
 * reply may break: the whole setup is then retried on a new connection),
 * so each is idempotent. */
static void *tms_setup_task(void *arg)
{
	(void)arg;
	rlt_mysql_config cfg = {
	    .unix_socket = tms.sock, .user = "root", .connect_timeout_ms = 2000};
	static const char *const sql[] = {
	    "CREATE USER IF NOT EXISTS '" TMS_USER "'@'%' IDENTIFIED BY '" TMS_PASS "'",
	    "CREATE USER IF NOT EXISTS '" TMS_USER "'@'localhost' IDENTIFIED BY '" TMS_PASS "'",
	    "GRANT ALL ON *.* TO '" TMS_USER "'@'%'",
	    "GRANT ALL ON *.* TO '" TMS_USER "'@'localhost'",
	    "CREATE DATABASE IF NOT EXISTS " TMS_DB,
	    NULL};
	uint64_t until = rlt_now() + 60 * RLT_NSEC_PER_SEC;
	for (;;) {
		rlt_mysql *c = NULL;
		char err[256] = "";
		int r = rlt_mysql_connect(&cfg, &c, err, sizeof(err));
		for (int i = 0; r == 0 && sql[i]; i++) {
			int64_t n = rlt_mysql_exec(c, sql[i]);
			if (n < 0) {
				snprintf(err, sizeof(err), "%s: %s", sql[i], rlt_mysql_error(c));
				r = (int)n;
			}
		}
		if (c)
			rlt_mysql_close(c);
		if (r == 0)
			return NULL;
		if (rlt_now() > until) {
			fprintf(stderr, "mysql test server: setup on %s: %d %s\n", tms.sock, r,
				err);
			return (void *)(intptr_t)r;
		}
		rlt_sleep(50 * RLT_NSEC_PER_MSEC);
	}
}

/* Start the server. Returns 0, or 1 when the binaries are missing (the
 * caller skips, loudly), or -1 on failure (logged). */
static int tms_start(void)
{
	const char *mysqld = tms_mariadbd(), *install = tms_installdb();
	if (!mysqld || !install) {
		fprintf(stderr, "SKIP: mariadb-server is not installed (need mariadbd and "
				"mariadb-install-db): the MySQL tests did not run\n");
		return 1;
	}
	snprintf(tms.dir, sizeof(tms.dir), "/tmp/rlt-mysql-XXXXXX");
	if (!mkdtemp(tms.dir))
		return -1;
	snprintf(tms.sock, sizeof(tms.sock), "%s/sock", tms.dir);
	char datadir[128], log[128], pidf[128], a_data[160], a_sock[160], a_port[32], a_log[160],
	    a_pid[160];
	snprintf(datadir, sizeof(datadir), "%s/data", tms.dir);
	snprintf(log, sizeof(log), "%s/server.log", tms.dir);
	snprintf(pidf, sizeof(pidf), "%s/pid", tms.dir);
	snprintf(a_data, sizeof(a_data), "--datadir=%s", datadir);
	/* A temp dir of its own: the bootstrap's temporary tables in a /tmp
	 * shared with other servers starting at once collided. */
	char tmpdir[128], a_tmp[160];
	snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", tms.dir);
	mkdir(tmpdir, 0700);
	snprintf(a_tmp, sizeof(a_tmp), "--tmpdir=%s", tmpdir);
	bool root = getuid() == 0;
	char *iargv[] = {(char *)install,
			 "--no-defaults",
			 a_data,
			 "--auth-root-authentication-method=normal",
			 "--skip-test-db",
			 a_tmp,
			 root ? "--user=root" : "--skip-name-resolve",
			 NULL};
	pid_t pid = tms_spawn(iargv, log);
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "mysql test server: mariadb-install-db failed\n");
		tms_dump_log();
		tms_rmrf(tms.dir);
		return -1;
	}
	/* A self-signed certificate, for the TLS tests. */
	char key[128], a_cert[160], a_key[160];
	snprintf(tms.cert, sizeof(tms.cert), "%s/cert.pem", tms.dir);
	snprintf(key, sizeof(key), "%s/key.pem", tms.dir);
	char *oargv[] = {"/usr/bin/openssl",
			 "req",
			 "-x509",
			 "-newkey",
			 "ec",
			 "-pkeyopt",
			 "ec_paramgen_curve:prime256v1",
			 "-nodes",
			 "-keyout",
			 key,
			 "-out",
			 tms.cert,
			 "-days",
			 "2",
			 "-subj",
			 "/CN=127.0.0.1",
			 "-addext",
			 "subjectAltName=IP:127.0.0.1,DNS:localhost",
			 NULL};
	pid = access(oargv[0], X_OK) == 0 ? tms_spawn(oargv, log) : -1;
	if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "mysql test server: no openssl: the TLS tests will skip\n");
		tms.cert[0] = 0;
	}
	snprintf(a_cert, sizeof(a_cert), "--ssl-cert=%s", tms.cert);
	snprintf(a_key, sizeof(a_key), "--ssl-key=%s", key);
	tms.port = tms_free_port();
	snprintf(a_sock, sizeof(a_sock), "--socket=%s", tms.sock);
	snprintf(a_port, sizeof(a_port), "--port=%u", tms.port);
	snprintf(a_log, sizeof(a_log), "--log-error=%s", log);
	snprintf(a_pid, sizeof(a_pid), "--pid-file=%s", pidf);
	char *argv[] = {(char *)mysqld,
			"--no-defaults",
			a_data,
			a_sock,
			a_port,
			"--bind-address=127.0.0.1",
			a_tmp,
			a_log,
			a_pid,
			"--skip-log-bin",
			"--skip-name-resolve",
			"--innodb-buffer-pool-size=16M",
			"--innodb-log-file-size=8M",
			"--max-connections=200",
			root ? "--user=root" : "--skip-external-locking",
			tms.cert[0] ? a_cert : NULL,
			a_key,
			NULL};
	/* The server dies with this test program, even one that crashes or
	 * is killed by its time limit (PR_SET_PDEATHSIG): no server is left
	 * behind. */
	tms.pid = fork();
	if (tms.pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		int nul = open("/dev/null", O_RDONLY);
		if (fd >= 0 && nul >= 0) {
			dup2(nul, 0);
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	if (tms.pid < 0) {
		tms_rmrf(tms.dir);
		return -1;
	}
	void *res = NULL;
	rlt_config cfg = {.workers = 1};
	if (rlt_run(tms_setup_task, NULL, &cfg, &res) != 0 || res != NULL) {
		tms_dump_log();
		kill(tms.pid, SIGKILL);
		waitpid(tms.pid, NULL, 0);
		tms_rmrf(tms.dir);
		return -1;
	}
	tms.ok = 1;
	return 0;
}

static void tms_stop(void)
{
	if (tms.pid > 0) {
		kill(tms.pid, SIGTERM);
		int st;
		for (int i = 0; i < 200; i++) {
			if (waitpid(tms.pid, &st, WNOHANG) == tms.pid) {
				tms.pid = 0;
				break;
			}
			usleep(50 * 1000);
		}
		if (tms.pid > 0) {
			kill(tms.pid, SIGKILL);
			waitpid(tms.pid, NULL, 0);
			tms.pid = 0;
		}
	}
	if (tms.dir[0])
		tms_rmrf(tms.dir);
	tms.ok = 0;
}

/* The config of the test user over TCP (or the socket). */
static inline rlt_mysql_config tms_cfg(bool unix_sock)
{
	rlt_mysql_config c = {.host = "127.0.0.1",
			      .port = tms.port,
			      .user = TMS_USER,
			      .password = TMS_PASS,
			      .db = TMS_DB,
			      .connect_timeout_ms = 5000};
	if (unix_sock)
		c.unix_socket = tms.sock;
	return c;
}

static int tms_group_setup(void **state)
{
	(void)state;
	int r = tms_start();
	if (r == 1)
		return 0; /* tests skip */
	return r;
}

static int tms_group_teardown(void **state)
{
	(void)state;
	tms_stop();
	return 0;
}

/* Whether v is the text s. */
static inline bool tms_val_is(rlt_mysql_value v, const char *s)
{
	return !v.is_null && v.len == strlen(s) && memcmp(v.ptr, s, v.len) == 0;
}

#define TMS_REQUIRE()                                                                              \
	do {                                                                                       \
		if (!tms.ok)                                                                       \
			skip();                                                                    \
	} while (0)

#endif
