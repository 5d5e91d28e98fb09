/*
 * Process pools (include/ringlet/procpool.h): the cost of a job that does
 * nothing, against the floor of the same exchange without ringlet.
 *
 *   procpool.rtt.p50/.p99    us for one empty job's round trip: one task,
 *                            one at a time, a pool of 2 processes, one
 *                            runtime worker (warmed first)
 *   procpool.floor.rtt.p50   the same frames to the same worker program,
 *                            by blocking write/read from a plain thread:
 *                            what the kernel's socket and two wake-ups cost
 *   procpool.tput            thousands of empty jobs per second: 2
 *                            processes, 16 tasks on 2 runtime workers
 *   procpool.tput1w          the same on 1 runtime worker (on 2 CPUs, the
 *                            worker processes then have a CPU to themselves)
 *   procpool.floor.tput      2 plain threads, each with its own worker
 *                            process, blocking round trips
 *   procpool.cpu.parent/.workers   us of CPU per job in this process and in
 *                            the worker processes (getrusage), for the
 *                            throughput runs; procpool.floor.cpu.* the same
 *                            for the floor's
 *
 * Each metric is printed per repetition, then as "median"; the table at
 * the end has median, min-max and the ratio to the floor. Run it through
 * bench/procpool.sh, which holds the benchmark lock.
 */
#include "bench_common.h"
#include "bench_rt.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int empty_job(const void *in, size_t len, void **out, size_t *out_len)
{
	(void)in, (void)len, (void)out, (void)out_len;
	return 0;
}

/* ---- the floor: a worker of this program, spoken to without ringlet ---- */

/* The frame format of runtime/procpool.h, restated: a bench sees only the
 * public headers. */
typedef struct hdr {
	uint32_t magic;
	int32_t arg;
	uint64_t len;
} hdr;
#define REQ 0x524c5451u

typedef struct floor_worker {
	int fd;
	pid_t pid;
} floor_worker;

static floor_worker floor_start(void)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		die("socketpair", errno);
	int child = fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
	close(sv[1]);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, child, 3);
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 2, sizeof(*env));
	memcpy(env, environ, n * sizeof(*env));
	env[n] = "RINGLET_PROCPOOL_WORKER=3";
	char *argv[] = {"bench_procpool", NULL};
	pid_t pid;
	int rc = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	free(env);
	close(child);
	if (rc)
		die("posix_spawn", rc);
	return (floor_worker){.fd = sv[0], .pid = pid};
}

static void floor_stop(floor_worker *w)
{
	close(w->fd);
	waitpid(w->pid, NULL, 0);
}

static void floor_job(floor_worker *w)
{
	struct {
		hdr h;
		char name[5];
	} req = {{REQ, 5, 0}, "empty"};
	if (write(w->fd, &req, sizeof(hdr) + 5) != (ssize_t)(sizeof(hdr) + 5))
		die("write", errno);
	hdr resp;
	if (read(w->fd, &resp, sizeof(resp)) != (ssize_t)sizeof(resp) || resp.arg != 0)
		die("read", EPROTO);
}

typedef struct floor_arg {
	long n;
} floor_arg;

static void *floor_thread(void *arg)
{
	floor_arg *a = arg;
	floor_worker w = floor_start();
	floor_job(&w);
	for (long i = 0; i < a->n; i++)
		floor_job(&w);
	floor_stop(&w);
	return NULL;
}

/* ---- ringlet ---- */

static rlt_procpool *pool_new(unsigned n)
{
	rlt_procpool *p = rlt_procpool_create(&(rlt_procpool_config){.processes = n});
	if (!p)
		die("rlt_procpool_create", errno);
	return p;
}

static void job(rlt_procpool *p)
{
	int rc = rlt_procpool_run(p, "empty", "", 0, NULL, NULL);
	if (rc < 0)
		die("rlt_procpool_run", -rc);
}

typedef struct rtt {
	int n;
	double *us;
} rtt;

static void *rtt_root(void *arg)
{
	rtt *r = arg;
	rlt_procpool *p = pool_new(2);
	for (int i = 0; i < 1000; i++)
		job(p);
	for (int i = 0; i < r->n; i++) {
		uint64_t t0 = bench_wall_ns();
		job(p);
		r->us[i] = (double)(bench_wall_ns() - t0) / 1e3;
	}
	rlt_procpool_free(p);
	qsort(r->us, (size_t)r->n, sizeof(double), bench_cmp_double);
	return NULL;
}

#define TPUT_TASKS 16

typedef struct tput {
	rlt_procpool *p;
	long per;
} tput;

static void *tput_task(void *arg)
{
	tput *t = arg;
	for (long i = 0; i < t->per; i++)
		job(t->p);
	return NULL;
}

static void *tput_root(void *arg)
{
	tput *t = arg;
	rlt_task *ts[TPUT_TASKS];
	for (int i = 0; i < TPUT_TASKS; i++)
		if (!(ts[i] = rlt_spawn(tput_task, t, NULL)))
			die("rlt_spawn", errno);
	for (int i = 0; i < TPUT_TASKS; i++)
		rlt_join(ts[i], NULL);
	return NULL;
}

static void *pool_start_root(void *arg)
{
	tput *t = arg;
	t->p = pool_new(2);
	job(t->p); /* both up: every process has exec'd by its first job */
	job(t->p);
	return NULL;
}

static void *pool_stop_root(void *arg)
{
	rlt_procpool_free(((tput *)arg)->p);
	return NULL;
}

static double cpu_us(int who)
{
	struct rusage ru;
	getrusage(who, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* ---- the table ---- */

static void minmax(const bench_series *s, double *lo, double *hi)
{
	*lo = *hi = s->n ? s->v[0] : 0;
	for (int i = 1; i < s->n; i++) {
		if (s->v[i] < *lo)
			*lo = s->v[i];
		if (s->v[i] > *hi)
			*hi = s->v[i];
	}
}

static void row(const bench_series *s, const bench_series *floor, int higher_is_better)
{
	if (!s->n)
		return;
	double lo, hi, m = bench_median(s);
	minmax(s, &lo, &hi);
	printf("# %-24s %10.2f  %10.2f-%-10.2f %-12s", s->name, m, lo, hi, s->unit);
	if (floor && floor->n) {
		double f = bench_median(floor);
		printf("  %.2fx the floor (%s is better)", m / f,
		       higher_is_better ? "higher" : "lower");
	}
	printf("\n");
}

int main(int argc, char **argv)
{
	rlt_procpool_register("empty", empty_job);
	rlt_procpool_child_main(argc, argv); /* the workers stay in here */
	bench_opts o = bench_parse(argc, argv);
	if (o.reps < 5 && !o.quick)
		o.reps = 5;

	bench_series rtt50, rtt99, frtt, tp, tp1, ftp, cpar, cwork, fcpar, fcwork;
	bench_series_init(&rtt50, "procpool.rtt.p50", "us");
	bench_series_init(&rtt99, "procpool.rtt.p99", "us");
	bench_series_init(&frtt, "procpool.floor.rtt.p50", "us");
	bench_series_init(&tp, "procpool.tput", "kjobs_per_s");
	bench_series_init(&tp1, "procpool.tput1w", "kjobs_per_s");
	bench_series_init(&ftp, "procpool.floor.tput", "kjobs_per_s");
	bench_series_init(&cpar, "procpool.cpu.parent", "us_per_job");
	bench_series_init(&cwork, "procpool.cpu.workers", "us_per_job");
	bench_series_init(&fcpar, "procpool.floor.cpu.parent", "us_per_job");
	bench_series_init(&fcwork, "procpool.floor.cpu.workers", "us_per_job");

	int n = o.quick ? 5000 : 20000;
	long total = o.quick ? 100000 : 400000;
	rtt r = {.n = n, .us = calloc((size_t)n, sizeof(double))};
	double *fus = calloc((size_t)n, sizeof(double));
	printf("# procpool: empty jobs; rtt: %d one at a time; tput: %ld from %d tasks on 2 "
	       "workers, 2 processes; %d repetitions, ringlet and floor alternating\n",
	       n, total, TPUT_TASKS, o.reps);
	for (int rep = 0; rep < o.reps; rep++) {
		if (bench_want(&o, "procpool.rtt")) {
			bench_run(1, rtt_root, &r);
			bench_record(&rtt50, r.us[r.n / 2]);
			bench_record(&rtt99, r.us[r.n * 99 / 100]);
		}
		if (bench_want(&o, "procpool.floor.rtt")) {
			floor_worker w = floor_start();
			for (int i = 0; i < 1000; i++)
				floor_job(&w);
			for (int i = 0; i < n; i++) {
				uint64_t t0 = bench_wall_ns();
				floor_job(&w);
				fus[i] = (double)(bench_wall_ns() - t0) / 1e3;
			}
			floor_stop(&w);
			qsort(fus, (size_t)n, sizeof(double), bench_cmp_double);
			bench_record(&frtt, fus[n / 2]);
		}
		if (bench_want(&o, "procpool.tput")) {
			tput t = {.per = total / TPUT_TASKS};
			bench_run(1, pool_start_root, &t);
			double c0 = cpu_us(RUSAGE_SELF), w0 = cpu_us(RUSAGE_CHILDREN);
			uint64_t t0 = bench_wall_ns();
			bench_run(2, tput_root, &t);
			double sec = (double)(bench_wall_ns() - t0) / 1e9;
			double c1 = cpu_us(RUSAGE_SELF);
			bench_run(1, pool_stop_root, &t); /* reaped: their CPU is counted */
			double w1 = cpu_us(RUSAGE_CHILDREN);
			double jobs = (double)(t.per * TPUT_TASKS);
			bench_record(&tp, jobs / sec / 1e3);
			bench_record(&cpar, (c1 - c0) / jobs);
			bench_record(&cwork, (w1 - w0) / jobs);
		}
		if (bench_want(&o, "procpool.tput1w")) {
			tput t = {.per = total / TPUT_TASKS};
			bench_run(1, pool_start_root, &t);
			uint64_t t0 = bench_wall_ns();
			bench_run(1, tput_root, &t);
			double sec = (double)(bench_wall_ns() - t0) / 1e9;
			bench_run(1, pool_stop_root, &t);
			bench_record(&tp1, (double)(t.per * TPUT_TASKS) / sec / 1e3);
		}
		if (bench_want(&o, "procpool.floor.tput")) {
			floor_arg a = {.n = total / 2};
			pthread_t th[2];
			double c0 = cpu_us(RUSAGE_SELF), w0 = cpu_us(RUSAGE_CHILDREN);
			uint64_t t0 = bench_wall_ns();
			for (int i = 0; i < 2; i++)
				pthread_create(&th[i], NULL, floor_thread, &a);
			for (int i = 0; i < 2; i++)
				pthread_join(th[i], NULL);
			double sec = (double)(bench_wall_ns() - t0) / 1e9;
			double jobs = (double)(2 * a.n);
			bench_record(&ftp, jobs / sec / 1e3);
			bench_record(&fcpar, (cpu_us(RUSAGE_SELF) - c0) / jobs);
			bench_record(&fcwork, (cpu_us(RUSAGE_CHILDREN) - w0) / jobs);
		}
	}
	bench_print_median(&rtt50);
	bench_print_median(&rtt99);
	bench_print_median(&frtt);
	bench_print_median(&tp);
	bench_print_median(&tp1);
	bench_print_median(&ftp);
	bench_print_median(&cpar);
	bench_print_median(&cwork);
	bench_print_median(&fcpar);
	bench_print_median(&fcwork);
	printf("# %-24s %10s  %-21s %-12s\n", "metric", "median", "min-max", "unit");
	row(&rtt50, &frtt, 0);
	row(&rtt99, NULL, 0);
	row(&frtt, NULL, 0);
	row(&tp, &ftp, 1);
	row(&tp1, &ftp, 1);
	row(&ftp, NULL, 1);
	row(&cpar, &fcpar, 0);
	row(&cwork, &fcwork, 0);
	row(&fcpar, NULL, 0);
	row(&fcwork, NULL, 0);
	free(r.us);
	free(fus);
	return 0;
}
