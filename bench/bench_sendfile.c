/*
 * A file to a TCP client, over and over: rlt_sendfile against read+send.
 *
 *   bench_sendfile [-f DIR] [-r ROUNDS] [-d SECONDS] [-c CONNS] [-p POLICY]... [-q]
 *
 * The server is a ringlet program on one worker, pinned to CPU 0
 * (BENCH_SERVER_CPU), in a child process; the client, plain blocking
 * threads in this process pinned to CPU 1 (BENCH_LOAD_CPU), keeps CONNS
 * (default 4) connections busy: each sends one byte, reads the whole file,
 * and asks again. Files of 256 KiB and 1 MiB, made in DIR (default: a
 * mkdtemp directory under /tmp) and read once so they are in the page
 * cache. Contenders, per policy (-p io_uring, -p epoll; default both):
 *
 *   sendfile    rlt_sendfile(conn, file, 0, size)
 *   read+send   rlt_read of 256 KiB chunks into a buffer of the
 *               connection's (reused), rlt_send_all of each
 *
 * Every round runs each contender once for SECONDS (default 2; 0.5 with
 * -q), in an order that rotates from round to round so that the machine's
 * noise hits them alike. Printed per size, policy and contender: files/s
 * and MB/s (median of ROUNDS, default 5; 3 with -q, with min-max), the CPU
 * time the server and the client used per second of the run (from
 * /proc/<pid>/stat and getrusage), and sendfile's ratio to read+send
 * within each round (median, min-max). A server CPU below 1.00 means the
 * client set the pace: the server's figure is then a floor.
 */
#include "bench_rt.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CONNS  64
#define MAX_ROUNDS 32
#define CHUNK	   (256 * 1024)

enum { M_SENDFILE, M_READSEND, M_COUNT };
static const char *const mode_name[M_COUNT] = {"sendfile", "read+send"};

static const size_t sizes[] = {256 * 1024, 1024 * 1024};
#define NSIZES 2

/* ---- the server (child process) ---- */

typedef struct server {
	int lfd, file, mode;
	size_t size;
} server;

static void *serve_conn(void *arg)
{
	server *s = ((void **)arg)[0];
	int fd = (int)(intptr_t)((void **)arg)[1];
	free(arg);
	char *buf = s->mode == M_READSEND ? malloc(CHUNK) : NULL;
	char req;
	while (rlt_recv(fd, &req, 1, 0) == 1) {
		if (s->mode == M_SENDFILE) {
			if (rlt_sendfile(fd, s->file, 0, s->size) != (ssize_t)s->size)
				break;
			continue;
		}
		size_t off = 0;
		while (off < s->size) {
			size_t n = s->size - off < CHUNK ? s->size - off : CHUNK;
			if (rlt_read(s->file, buf, n, (off_t)off) != (ssize_t)n ||
			    rlt_send_all(fd, buf, n, 0) != (ssize_t)n)
				goto out;
			off += n;
		}
	}
out:
	free(buf);
	rlt_close(fd);
	return NULL;
}

static void *server_main(void *arg)
{
	server *s = arg;
	int fd;
	while ((fd = rlt_net_accept(s->lfd, NULL, RLT_NET_NODELAY)) >= 0) {
		void **a = malloc(2 * sizeof(void *));
		a[0] = s;
		a[1] = (void *)(intptr_t)fd;
		rlt_detach(rlt_spawn(serve_conn, a, NULL));
	}
	return NULL;
}

static void pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set); /* best effort (fewer CPUs) */
}

static int env_int(const char *name, int def)
{
	const char *v = getenv(name);
	return v && *v ? atoi(v) : def;
}

static pid_t start_server(int lfd, int file, size_t size, int mode, const char *policy)
{
	pid_t pid = fork();
	if (pid < 0)
		die("fork", errno);
	if (pid)
		return pid;
	pin(env_int("BENCH_SERVER_CPU", 0));
	setenv("RINGLET_POLICY", policy, 1);
	setenv("RINGLET_POLICY_STRICT", "1", 1);
	server s = {lfd, file, mode, size};
	rlt_config cfg;
	rlt_config_init(&cfg);
	cfg.workers = 1;
	rlt_run(server_main, &s, &cfg, NULL);
	_exit(0);
}

/* utime + stime of pid, in seconds. */
static double proc_cpu(pid_t pid)
{
	char p[64], buf[1024];
	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(p, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *c = strrchr(buf, ')');
	unsigned long ut = 0, st = 0;
	if (c)
		sscanf(c + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

/* ---- the client (this process) ---- */

typedef struct client {
	struct sockaddr_in addr;
	size_t size;
	atomic_bool stop;
	atomic_bool measuring;
	atomic_uint_fast64_t files;
	atomic_int failed;
} client;

static void *client_conn(void *arg)
{
	client *c = arg;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* A window that holds a whole file: the receiver's buffer, not TCP's
	 * autotuning (which starts at tcp_rmem's 128 KiB), sets the pace. */
	int rcv = 4 * 1024 * 1024;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	if (connect(fd, (struct sockaddr *)&c->addr, sizeof(c->addr)) < 0) {
		atomic_store(&c->failed, errno);
		close(fd);
		return NULL;
	}
	char *buf = malloc(CHUNK);
	while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
		if (write(fd, "g", 1) != 1) {
			atomic_store(&c->failed, errno ? errno : EIO);
			break;
		}
		size_t got = 0;
		while (got < c->size) {
			size_t want = c->size - got < CHUNK ? c->size - got : CHUNK;
			ssize_t n = read(fd, buf, want);
			if (n <= 0) {
				atomic_store(&c->failed, n < 0 ? errno : EPIPE);
				goto out;
			}
			got += (size_t)n;
		}
		if (atomic_load_explicit(&c->measuring, memory_order_relaxed))
			atomic_fetch_add_explicit(&c->files, 1, memory_order_relaxed);
	}
out:
	free(buf);
	close(fd);
	return NULL;
}

typedef struct result {
	double files_s, mb_s, srv_cpu, cli_cpu;
} result;

static result run_one(int file, size_t size, int mode, const char *policy, int conns, double secs)
{
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	client c;
	memset(&c, 0, sizeof(c));
	c.addr.sin_family = AF_INET;
	c.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&c.addr, sizeof(c.addr)) < 0 || listen(lfd, 128) < 0)
		die("bind/listen", errno);
	socklen_t len = sizeof(c.addr);
	getsockname(lfd, (struct sockaddr *)&c.addr, &len);
	c.size = size;
	pid_t pid = start_server(lfd, file, size, mode, policy);
	close(lfd);
	pthread_t th[MAX_CONNS];
	for (int i = 0; i < conns; i++)
		pthread_create(&th[i], NULL, client_conn, &c);
	/* Warm up a tenth of the time, then measure. */
	usleep((useconds_t)(secs * 1e5));
	double s0 = proc_cpu(pid), c0 = self_cpu();
	uint64_t t0 = bench_wall_ns();
	atomic_store(&c.measuring, true);
	usleep((useconds_t)(secs * 1e6));
	atomic_store(&c.measuring, false);
	uint64_t t1 = bench_wall_ns();
	double s1 = proc_cpu(pid), c1 = self_cpu();
	uint64_t files = atomic_load(&c.files);
	atomic_store(&c.stop, true);
	kill(pid, SIGKILL); /* the clients' reads end with the connections */
	waitpid(pid, NULL, 0);
	for (int i = 0; i < conns; i++)
		pthread_join(th[i], NULL);
	double el = (double)(t1 - t0) / 1e9;
	if (atomic_load(&c.failed) && !files)
		die("client", atomic_load(&c.failed));
	result r = {files / el, files * (double)size / el / 1e6, (s1 - s0) / el, (c1 - c0) / el};
	return r;
}

/* ---- statistics ---- */

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* median, min, max of v[0..n) */
static void stats(const double *v, int n, double *med, double *lo, double *hi)
{
	double t[MAX_ROUNDS];
	memcpy(t, v, (size_t)n * sizeof(double));
	qsort(t, (size_t)n, sizeof(double), cmp_d);
	*med = n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
	*lo = t[0];
	*hi = t[n - 1];
}

static int make_file(const char *dir, size_t size)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/file-%zu", dir, size);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		die(path, errno);
	char *buf = malloc(size);
	uint64_t seed = 0x9E3779B97F4A7C15ull;
	for (size_t i = 0; i < size; i += 8) {
		uint64_t v = bench_rand(&seed);
		memcpy(buf + i, &v, size - i < 8 ? size - i : 8);
	}
	if (write(fd, buf, size) != (ssize_t)size)
		die("write", errno ? errno : EIO);
	if (pread(fd, buf, size, 0) != (ssize_t)size) /* in the page cache */
		die("pread", errno ? errno : EIO);
	free(buf);
	unlink(path);
	return fd;
}

int main(int argc, char **argv)
{
	const char *dir = NULL;
	int rounds = 5, conns = 4, quick = 0;
	double secs = 2;
	const char *policies[4];
	int npol = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-f") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "-r") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-d") && i + 1 < argc)
			secs = atof(argv[++i]);
		else if (!strcmp(argv[i], "-c") && i + 1 < argc)
			conns = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-p") && i + 1 < argc && npol < 4)
			policies[npol++] = argv[++i];
		else if (!strcmp(argv[i], "-q"))
			quick = 1;
		else {
			fprintf(
			    stderr,
			    "usage: %s [-f DIR] [-r ROUNDS] [-d SECONDS] [-c CONNS] [-p POLICY]... "
			    "[-q]\n",
			    argv[0]);
			return 2;
		}
	}
	if (quick) {
		rounds = rounds == 5 ? 3 : rounds;
		secs = secs == 2 ? 0.5 : secs;
	}
	if (!npol) {
		policies[npol++] = "io_uring";
		policies[npol++] = "epoll";
	}
	if (rounds < 1 || rounds > MAX_ROUNDS || conns < 1 || conns > MAX_CONNS || secs <= 0)
		return 2;
	char tmp[] = "/tmp/rlt-bench-sendfile-XXXXXX";
	if (!dir && !(dir = mkdtemp(tmp)))
		die("mkdtemp", errno);
	signal(SIGPIPE, SIG_IGN);
	pin(env_int("BENCH_LOAD_CPU", 1));
	int files[NSIZES];
	for (int s = 0; s < NSIZES; s++)
		files[s] = make_file(dir, sizes[s]);
	if (dir == tmp)
		rmdir(tmp);

	printf("# bench_sendfile: %d connections, %d rounds of %.1f s per contender, server on CPU "
	       "%d (one worker), client on CPU %d\n",
	       conns, rounds, secs, env_int("BENCH_SERVER_CPU", 0), env_int("BENCH_LOAD_CPU", 1));
	printf("%-6s %-9s %-10s %22s %24s %8s %8s %22s\n", "size", "policy", "contender",
	       "files/s (min-max)", "MB/s (min-max)", "srv cpu", "cli cpu",
	       "vs read+send (min-max)");
	for (int s = 0; s < NSIZES; s++) {
		for (int p = 0; p < npol; p++) {
			result r[M_COUNT][MAX_ROUNDS];
			for (int k = 0; k < rounds; k++) {
				for (int j = 0; j < M_COUNT; j++) {
					int m = (j + k) % M_COUNT; /* who goes first rotates */
					r[m][k] = run_one(files[s], sizes[s], m, policies[p], conns,
							  secs);
				}
				fprintf(stderr, "\r# %zu KiB %s: round %d/%d", sizes[s] / 1024,
					policies[p], k + 1, rounds);
			}
			fprintf(stderr, "\n");
			for (int m = 0; m < M_COUNT; m++) {
				double fv[MAX_ROUNDS], mv[MAX_ROUNDS], sv[MAX_ROUNDS],
				    cv[MAX_ROUNDS], rv[MAX_ROUNDS];
				for (int k = 0; k < rounds; k++) {
					fv[k] = r[m][k].files_s;
					mv[k] = r[m][k].mb_s;
					sv[k] = r[m][k].srv_cpu;
					cv[k] = r[m][k].cli_cpu;
					rv[k] = r[m][k].files_s / r[M_READSEND][k].files_s;
				}
				double fm, fl, fh, mm, ml, mh, sm, sl, sh, cm, cl, ch, rm, rl, rh;
				stats(fv, rounds, &fm, &fl, &fh);
				stats(mv, rounds, &mm, &ml, &mh);
				stats(sv, rounds, &sm, &sl, &sh);
				stats(cv, rounds, &cm, &cl, &ch);
				stats(rv, rounds, &rm, &rl, &rh);
				char fcol[64], mcol[64], rcol[64];
				snprintf(fcol, sizeof(fcol), "%.0f (%.0f-%.0f)", fm, fl, fh);
				snprintf(mcol, sizeof(mcol), "%.0f (%.0f-%.0f)", mm, ml, mh);
				snprintf(rcol, sizeof(rcol), "%.2fx (%.2f-%.2f)", rm, rl, rh);
				printf("%-6s %-9s %-10s %22s %24s %8.2f %8.2f %22s\n",
				       s ? "1MiB" : "256KiB", policies[p], mode_name[m], fcol, mcol,
				       sm, cm, m == M_READSEND ? "1.00x" : rcol);
				fflush(stdout);
			}
		}
	}
	return 0;
}
