/*
 * A load generator for echo servers, on ringlet: C connections, one task
 * each, sending M-byte messages and checking every byte of every echo.
 *
 *   ringlet-load [-a ADDR] [-p PORT] [-c CONNS] [-m BYTES] [-d SECONDS]
 *                [-W SECONDS] [-R RATE] [-w WORKERS] [-C CPULIST]
 *                [-P POLICY] [-l LABEL] [-o FILE]
 *
 *   -a, -p     the server (default 127.0.0.1:7000)
 *   -c         connections (default 50)        -m  message size (default 64)
 *   -d         measured seconds (default 3)    -W  warm-up seconds (default 1)
 *   -R RATE    constant-rate mode: RATE messages/s in all, spread evenly over
 *              the connections (default 0: closed loop, each connection
 *              sends its next message as soon as the last one is back)
 *   -w         ringlet workers (default 1)     -C  CPUs, worker i on the i-th
 *   -P         loop policy (default: ringlet's)
 *   -l LABEL   a name put in the JSON line
 *   -o FILE    write the latency distribution there (percentile spectrum,
 *              HdrHistogram's format: value in us, percentile, count,
 *              1/(1-percentile)), for plotting
 *
 * Latency is from the moment a message was due to be sent to the moment
 * its echo was all back. In closed loop that is when it was sent; at a
 * constant rate it is the send time the schedule gave it (like wrk2), so a
 * stalled server is charged for the messages that queued up behind the
 * stall, not only for the one it stalled (coordinated omission).
 *
 * Output on stdout: one JSON line, then one line for people. Exits 1 when a
 * connection fails or an echo differs from what was sent.
 */
#include "bench/echo_common.h"
#include "bench/hist.h"

#include <arpa/inet.h>
#include <ringlet.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>

typedef struct load {
	struct sockaddr_in addr;
	unsigned conns, workers;
	size_t size;
	double rate; /* messages/s in all; 0: closed loop */
	uint64_t t0, t_measure, t_end;
	const char *label, *out;
	hist *h; /* one per worker: a task records on the worker it runs on */
	int *fds;
	int failed; /* written by any task; only ever set to 1 */
} load;

typedef struct conn {
	load *ld;
	unsigned id;
} conn;

static uint64_t pattern(unsigned id, size_t i)
{
	return (id * 2654435761u + i * 40503u) >> 7;
}

static void fail(load *ld, const char *what, unsigned id, long err)
{
	fprintf(stderr, "ringlet-load: connection %u: %s%s%s\n", id, what, err ? ": " : "",
		err ? strerror((int)-err) : "");
	__atomic_store_n(&ld->failed, 1, __ATOMIC_RELAXED);
}

static void *conn_task(void *arg)
{
	conn *c = arg;
	load *ld = c->ld;
	int fd = ld->fds[c->id];
	unsigned char *tx = malloc(ld->size), *rx = malloc(ld->size);
	if (!tx || !rx) {
		fail(ld, "out of memory", c->id, 0);
		goto out;
	}
	for (size_t i = 0; i < ld->size; i++)
		tx[i] = (unsigned char)pattern(c->id, i);
	/* At a constant rate, connection i's k-th message is due at
	 * t0 + (k * conns + i) / rate: the connections take turns evenly. */
	double gap = ld->rate > 0 ? 1e9 * ld->conns / ld->rate : 0;
	double due = (double)ld->t0 + (ld->rate > 0 ? 1e9 * c->id / ld->rate : 0);
	for (uint64_t seq = 0;; seq++) {
		uint64_t start;
		if (ld->rate > 0) {
			start = (uint64_t)due;
			if (start >= ld->t_end)
				break;
			if (rlt_now() < start)
				rlt_sleep_until(start);
			due += gap;
		} else {
			start = rlt_now();
		}
		/* The sequence number in the message: an echo from the
		 * wrong round, or replayed, differs. */
		memcpy(tx, &seq, ld->size < sizeof(seq) ? ld->size : sizeof(seq));
		ssize_t r = rlt_send_all(fd, tx, ld->size, 0);
		if (r < 0) {
			fail(ld, "send", c->id, r);
			break;
		}
		r = rlt_recv_exact(fd, rx, ld->size, 0);
		if (r != (ssize_t)ld->size) {
			fail(ld, r < 0 ? "recv" : "server closed the connection", c->id,
			     r < 0 ? r : 0);
			break;
		}
		uint64_t done = rlt_now();
		if (memcmp(tx, rx, ld->size) != 0) {
			fail(ld, "the echo differs from the message", c->id, 0);
			break;
		}
		if (start >= ld->t_measure && done <= ld->t_end) {
			int w = rlt_worker_index(); /* no suspension between here and the record */
			hist_record(&ld->h[w], done - start);
		}
		if (ld->rate <= 0 && done >= ld->t_end)
			break;
		if (__atomic_load_n(&ld->failed, __ATOMIC_RELAXED))
			break;
	}
out:
	free(tx);
	free(rx);
	return NULL;
}

/* Connect, retrying for a few seconds while nobody listens yet (the
 * server may still be starting). */
static int connect_one(load *ld)
{
	uint64_t give_up = rlt_now() + 5 * RLT_NSEC_PER_SEC;
	for (;;) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		int rc = rlt_connect(fd, (struct sockaddr *)&ld->addr, sizeof(ld->addr));
		if (rc == 0) {
			echo_nodelay(fd);
			return fd;
		}
		close(fd);
		if (rc != -ECONNREFUSED || rlt_now() > give_up)
			return rc;
		rlt_sleep(20 * RLT_NSEC_PER_MSEC);
	}
}

static void write_spectrum(const load *ld, const hist *h)
{
	FILE *f = fopen(ld->out, "w");
	if (!f) {
		fprintf(stderr, "ringlet-load: %s: %s\n", ld->out, strerror(errno));
		return;
	}
	fprintf(f, "# %s\n#%11s %14s %10s %14s\n", ld->label ? ld->label : "", "Value(us)",
		"Percentile", "TotalCount", "1/(1-Percentile)");
	/* Five points per halving of the distance to 100%, as HdrHistogram's
	 * percentile output, until one in a million. */
	double left = 1.0; /* 1 - q, times 2^(-1/5) each step */
	for (;; left *= 0.87055056329612413) {
		double q = 1.0 - left;
		uint64_t v = hist_percentile(h, q * 100.0);
		uint64_t below = (uint64_t)(q * (double)h->count);
		if (q >= 0.999999 || below >= h->count) {
			fprintf(f, "%12.3f %14.12f %10llu %14s\n", h->max / 1e3, 1.0,
				(unsigned long long)h->count, "inf");
			break;
		}
		fprintf(f, "%12.3f %14.12f %10llu %14.2f\n", v / 1e3, q, (unsigned long long)below,
			1.0 / (1.0 - q));
	}
	fclose(f);
}

static double us(uint64_t ns)
{
	return (double)ns / 1e3;
}

static void *root(void *arg)
{
	load *ld = arg;
	for (unsigned i = 0; i < ld->conns; i++) {
		int fd = connect_one(ld);
		if (fd < 0) {
			fprintf(stderr, "ringlet-load: connect to %s:%u (connection %u): %s\n",
				inet_ntoa(ld->addr.sin_addr), ntohs(ld->addr.sin_port), i,
				strerror(-fd));
			exit(1);
		}
		ld->fds[i] = fd;
	}
	/* Everyone starts together, a little from now: spawning 500 tasks
	 * must not eat into the first messages' schedule. */
	ld->t0 = rlt_now() + 20 * RLT_NSEC_PER_MSEC;
	uint64_t warm = ld->t_measure, dur = ld->t_end;
	ld->t_measure = ld->t0 + warm;
	ld->t_end = ld->t_measure + dur;
	conn *cs = calloc(ld->conns, sizeof(*cs));
	rlt_task **ts = calloc(ld->conns, sizeof(*ts));
	if (!cs || !ts) {
		fprintf(stderr, "ringlet-load: out of memory\n");
		exit(1);
	}
	unsigned nw = rlt_runtime_workers(rlt_runtime_self());
	for (unsigned i = 0; i < ld->conns; i++) {
		cs[i] = (conn){.ld = ld, .id = i};
		rlt_spawn_opts o = {.name = "conn", .flags = RLT_SPAWN_ON_WORKER, .worker = i % nw};
		ts[i] = rlt_spawn(conn_task, &cs[i], &o);
		if (!ts[i]) {
			fprintf(stderr, "ringlet-load: spawn: %s\n", strerror(errno));
			exit(1);
		}
	}
	if (rlt_now() < ld->t0)
		rlt_sleep_until(ld->t0);
	for (unsigned i = 0; i < ld->conns; i++) {
		rlt_join(ts[i], NULL);
		rlt_close(ld->fds[i]);
	}
	free(cs);
	free(ts);
	return NULL;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: ringlet-load [-a ADDR] [-p PORT] [-c CONNS] [-m BYTES] [-d SECONDS] "
		"[-W SECONDS] [-R RATE] [-w WORKERS] [-C CPULIST] [-P POLICY] [-l LABEL] "
		"[-o FILE]\n");
	exit(2);
}

static double secs(const char *flag, const char *s)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || *end || !(v >= 0) || v > 86400) {
		fprintf(stderr, "ringlet-load: bad value '%s' for %s\n", s, flag);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	load ld = {.conns = 50, .size = 64};
	ld.addr.sin_family = AF_INET;
	ld.addr.sin_port = htons(7000);
	ld.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	double dur = 3, warm = 1;
	rlt_config cfg;
	rlt_config_init(&cfg);
	cfg.workers = 1;
	cpulist cpus = {0};
	int opt;
	while ((opt = getopt(argc, argv, "a:p:c:m:d:W:R:w:C:P:l:o:")) != -1) {
		switch (opt) {
		case 'a':
			if (inet_pton(AF_INET, optarg, &ld.addr.sin_addr) != 1) {
				fprintf(stderr, "ringlet-load: -a takes an IPv4 address\n");
				return 2;
			}
			break;
		case 'p':
			ld.addr.sin_port = htons((uint16_t)echo_num("-p", optarg, 1, 65535));
			break;
		case 'c':
			ld.conns = (unsigned)echo_num("-c", optarg, 1, 100000);
			break;
		case 'm':
			ld.size = (size_t)echo_num("-m", optarg, 1, 1 << 24);
			break;
		case 'd':
			dur = secs("-d", optarg);
			break;
		case 'W':
			warm = secs("-W", optarg);
			break;
		case 'R':
			ld.rate = (double)echo_num("-R", optarg, 0, 1000000000);
			break;
		case 'w':
			cfg.workers = (unsigned)echo_num("-w", optarg, 1, RLT_MAX_WORKERS);
			break;
		case 'C':
			if (cpulist_parse(optarg, &cpus) < 0 || cpulist_apply(&cpus) < 0) {
				fprintf(stderr, "ringlet-load: bad CPU list '%s'\n", optarg);
				return 2;
			}
			cfg.pin = true;
			break;
		case 'P':
			cfg.policy = optarg;
			cfg.policy_strict = true;
			setenv("RINGLET_POLICY", optarg, 1);
			break;
		case 'l':
			ld.label = optarg;
			break;
		case 'o':
			ld.out = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || dur <= 0)
		usage();
	/* Relative until the root task makes them absolute. */
	ld.t_measure = (uint64_t)(warm * 1e9);
	ld.t_end = (uint64_t)(dur * 1e9);
	unsigned nw = cfg.workers;
	ld.h = malloc(nw * sizeof(*ld.h));
	ld.fds = calloc(ld.conns, sizeof(*ld.fds));
	if (!ld.h || !ld.fds) {
		fprintf(stderr, "ringlet-load: out of memory\n");
		return 1;
	}
	for (unsigned i = 0; i < nw; i++)
		hist_init(&ld.h[i]);
	/* Timer slack (50 us by default) would make every paced send late by
	 * up to that much; threads inherit it, so set it before the workers
	 * exist. */
	prctl(PR_SET_TIMERSLACK, 1000UL);
	signal(SIGPIPE, SIG_IGN);
	int rc = rlt_run(root, &ld, &cfg, NULL);
	if (rc < 0) {
		fprintf(stderr, "ringlet-load: rlt_run: %s\n", strerror(-rc));
		return 1;
	}
	for (unsigned i = 1; i < nw; i++)
		hist_merge(&ld.h[0], &ld.h[i]);
	hist *h = &ld.h[0];
	uint64_t msgs = h->count;
	double rate = (double)msgs / dur;
	printf("{\"label\":\"%s\",\"conns\":%u,\"size\":%zu,\"target_rate\":%.0f,"
	       "\"duration_s\":%.3f,\"msgs\":%llu,\"msgs_per_s\":%.1f,\"mib_per_s\":%.2f,"
	       "\"lat_us\":{\"mean\":%.2f,\"min\":%.2f,\"p50\":%.2f,\"p90\":%.2f,\"p99\":%.2f,"
	       "\"p999\":%.2f,\"max\":%.2f},\"ok\":%s}\n",
	       ld.label ? ld.label : "", ld.conns, ld.size, ld.rate, dur, (unsigned long long)msgs,
	       rate, rate * (double)ld.size / (1 << 20), hist_mean(h) / 1e3, us(msgs ? h->min : 0),
	       us(hist_percentile(h, 50)), us(hist_percentile(h, 90)), us(hist_percentile(h, 99)),
	       us(hist_percentile(h, 99.9)), us(h->max), ld.failed ? "false" : "true");
	printf("%s%s%u conns x %zu B%s: %.0f msg/s (%.1f MiB/s each way); latency us: "
	       "p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
	       ld.label ? ld.label : "", ld.label ? ": " : "", ld.conns, ld.size,
	       ld.rate > 0 ? " at a fixed rate" : "", rate, rate * (double)ld.size / (1 << 20),
	       us(hist_percentile(h, 50)), us(hist_percentile(h, 99)), us(hist_percentile(h, 99.9)),
	       us(h->max));
	if (ld.out)
		write_spectrum(&ld, h);
	free(ld.h);
	free(ld.fds);
	return ld.failed ? 1 : 0;
}
