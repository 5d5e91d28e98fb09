/*
 * The soak driver, on ringlet: N connection slots against an echo server,
 * each looping over a random mix of behaviours for a duration, checking
 * every byte that comes back, while a sampler watches the server's fd
 * count and RSS in /proc. tools/ringlet soak starts ringlet-echo and runs
 * this against it.
 *
 *   ringlet-soak -p PORT -s SERVER_PID [-a ADDR] [-d SECONDS] [-n SLOTS]
 *                [-S SEED] [-w WORKERS] [-r RSS_SLACK_PCT] [-l LABEL]
 *
 *   -a, -p  the server (default 127.0.0.1, no default port)
 *   -s PID  the server's process: its /proc/PID/fd and /proc/PID/status
 *   -d      seconds of load (default 10)       -n  slots (default 1000)
 *   -S      seed of the slots' choices (default: from the clock; printed)
 *   -w      this driver's workers (default: ringlet's)
 *   -r PCT  RSS bound: the load's last quarter and the drained server may
 *           exceed the plateau (the highest RSS of the second quarter) by
 *           PCT percent plus 32 MiB (default 25)
 *   -l      a label put in the JSON line (the policy, say)
 *
 * The behaviours, one connection each (weights in KINDS below):
 *   echo       1-8 messages of 1 B-64 KiB, every byte of every echo checked
 *   reset      some bytes out, maybe some back, then SO_LINGER 0 + close (RST)
 *   halfclose  a message, shutdown(SHUT_WR), read to EOF: all of it back
 *   big        1 MiB sent by a second task while this one reads it back
 *   slowloris  5-40 bytes one at a time, 20-100 ms apart, each echo checked
 *   connclose  connect and close at once
 *   idle       hold the connection 0.2-3 s, then one small echo
 * Every I/O operation has a 30 s limit (rlt_set_io_timeout): a hang is an
 * -ETIMEDOUT, counted as an error.
 *
 * Checks at the end (each a violation, exit status 1): a corrupted byte;
 * an unexpected error (anything but what the behaviour asked for); the
 * server's fd count not back to its count before the first connection
 * within 10 s of the last close; RSS past the bound above. Output: a
 * summary for people on stderr, one JSON line on stdout.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <ringlet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IO_LIMIT_NS   (30 * RLT_NSEC_PER_SEC)
#define CONNECT_NS    (10 * RLT_NSEC_PER_SEC)
#define DRAIN_NS      (10 * RLT_NSEC_PER_SEC)
#define MSG_MAX	      (64 * 1024)
#define BIG_SIZE      (1024 * 1024)
#define MAX_REPORTED  20
#define RSS_FIXED_KIB (32 * 1024)

enum kind { ECHO, RESET, HALFCLOSE, BIG, SLOWLORIS, CONNCLOSE, IDLE, NKINDS };

static const struct {
	const char *name;
	unsigned weight;
} KINDS[NKINDS] = {
    [ECHO] = {"echo", 40}, [RESET] = {"reset", 10},	   [HALFCLOSE] = {"halfclose", 10},
    [BIG] = {"big", 3},	   [SLOWLORIS] = {"slowloris", 5}, [CONNCLOSE] = {"connclose", 17},
    [IDLE] = {"idle", 15},
};

typedef struct sample {
	int fds;
	long rss_kib;
} sample;

typedef struct soak {
	rlt_addr addr;
	pid_t server;
	unsigned slots;
	uint64_t seed, t_end;
	double secs;
	int rss_slack;
	const char *label;
	/* counters, updated by tasks on any worker (relaxed atomics: only
	 * read after every slot was joined, or as a progress figure) */
	uint64_t conns[NKINDS], bytes, corrupt, errors;
	uint64_t reported;
	/* the sampler's, one per second of load */
	sample *samples;
	size_t nsamples, cap;
	int fds_start, fds_end;
	long rss_start, rss_end;
} soak;

typedef struct slot {
	soak *sk;
	unsigned id;
	uint64_t rng;
	uint64_t seq; /* connections made by this slot: part of the pattern */
	unsigned char *tx, *rx;
} slot;

static void add(uint64_t *c, uint64_t v)
{
	__atomic_fetch_add(c, v, __ATOMIC_RELAXED);
}

static uint64_t rnd(slot *s)
{
	/* xorshift64*: cheap, and each slot's sequence is its own */
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * 2685821657736338717ull;
}

static uint64_t between(slot *s, uint64_t lo, uint64_t hi)
{
	return lo + rnd(s) % (hi - lo + 1);
}

/* The byte at offset i of connection (slot, seq): an echo from another
 * connection, another offset or a replay differs. */
static unsigned char pat(const slot *s, uint64_t i)
{
	uint64_t x = (s->seq * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)s->id << 40) ^ i;
	x ^= x >> 31;
	x *= 0xBF58476D1CE4E5B9ull;
	return (unsigned char)(x >> 56);
}

static void fill(const slot *s, unsigned char *buf, uint64_t off, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = pat(s, off + i);
}

/* Mismatched bytes of buf against the pattern at off. */
static uint64_t check(const slot *s, const unsigned char *buf, uint64_t off, size_t n)
{
	uint64_t bad = 0;
	for (size_t i = 0; i < n; i++)
		bad += buf[i] != pat(s, off + i);
	return bad;
}

static void error(slot *s, enum kind k, const char *what, long err)
{
	soak *sk = s->sk;
	add(&sk->errors, 1);
	if (__atomic_fetch_add(&sk->reported, 1, __ATOMIC_RELAXED) < MAX_REPORTED)
		fprintf(stderr, "ringlet-soak: slot %u, %s #%" PRIu64 ": %s%s%s\n", s->id,
			KINDS[k].name, s->seq, what, err ? ": " : "",
			err ? strerror((int)-err) : "");
}

static void corrupt(slot *s, enum kind k, uint64_t bad)
{
	add(&s->sk->corrupt, bad);
	error(s, k, "corrupted bytes in the echo", 0);
}

/* Send n pattern bytes from off and read them back; 0 or -1 (reported). */
static int echo_once(slot *s, enum kind k, int fd, uint64_t off, size_t n)
{
	fill(s, s->tx, off, n);
	ssize_t r = rlt_send_all(fd, s->tx, n, 0);
	if (r < 0)
		return error(s, k, "send", r), -1;
	r = rlt_recv_exact(fd, s->rx, n, 0);
	if (r != (ssize_t)n)
		return error(s, k, r < 0 ? "recv" : "server closed early", r < 0 ? r : 0), -1;
	uint64_t bad = check(s, s->rx, off, n);
	if (bad)
		return corrupt(s, k, bad), -1;
	add(&s->sk->bytes, n);
	return 0;
}

static size_t msg_size(slot *s)
{
	/* log-uniform over 1 B .. 64 KiB: small messages dominate, as in life */
	unsigned bits = (unsigned)between(s, 0, 16);
	size_t n = (size_t)between(s, 1, (uint64_t)1 << bits);
	return n > MSG_MAX ? MSG_MAX : n;
}

typedef struct big_tx {
	slot *s;
	int fd;
	ssize_t rc;
} big_tx;

static void *big_sender(void *arg)
{
	big_tx *b = arg;
	rlt_set_io_timeout(IO_LIMIT_NS);
	unsigned char *buf = malloc(MSG_MAX);
	if (!buf) {
		b->rc = -ENOMEM;
		return NULL;
	}
	b->rc = 0;
	for (uint64_t off = 0; off < BIG_SIZE; off += MSG_MAX) {
		fill(b->s, buf, off, MSG_MAX);
		ssize_t r = rlt_send_all(b->fd, buf, MSG_MAX, 0);
		if (r < 0) {
			b->rc = r;
			break;
		}
	}
	free(buf);
	return NULL;
}

static void run_big(slot *s, int fd)
{
	big_tx b = {.s = s, .fd = fd};
	rlt_task *t = rlt_spawn(big_sender, &b, &(rlt_spawn_opts){.name = "soak-big"});
	if (!t) {
		error(s, BIG, "spawn", -errno);
		return;
	}
	uint64_t off = 0;
	while (off < BIG_SIZE) {
		ssize_t r = rlt_recv(fd, s->rx, MSG_MAX, 0);
		if (r <= 0) {
			error(s, BIG, r < 0 ? "recv" : "server closed early", r < 0 ? r : 0);
			rlt_shutdown(fd, SHUT_RDWR); /* the sender stops too */
			break;
		}
		uint64_t bad = check(s, s->rx, off, (size_t)r);
		if (bad) {
			corrupt(s, BIG, bad);
			rlt_shutdown(fd, SHUT_RDWR);
			break;
		}
		off += (uint64_t)r;
		add(&s->sk->bytes, (uint64_t)r);
	}
	rlt_join(t, NULL);
	if (b.rc < 0 && off == BIG_SIZE)
		error(s, BIG, "send", b.rc);
}

static void set_linger0(int fd)
{
	struct linger l = {.l_onoff = 1, .l_linger = 0};
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

static void behave(slot *s, enum kind k)
{
	int fd = rlt_net_connect(&s->sk->addr, CONNECT_NS, RLT_NET_NODELAY);
	if (fd < 0) {
		error(s, k, "connect", fd);
		return;
	}
	add(&s->sk->conns[k], 1);
	switch (k) {
	case ECHO: {
		unsigned n = (unsigned)between(s, 1, 8);
		uint64_t off = 0;
		for (unsigned i = 0; i < n; i++) {
			size_t len = msg_size(s);
			if (echo_once(s, k, fd, off, len) < 0)
				break;
			off += len;
		}
		break;
	}
	case RESET: {
		size_t len = msg_size(s);
		fill(s, s->tx, 0, len);
		ssize_t r = rlt_send_all(fd, s->tx, len, 0);
		if (r < 0) {
			error(s, k, "send", r);
			break;
		}
		if (rnd(s) & 1) { /* read part of the echo first */
			size_t want = (size_t)between(s, 1, len);
			r = rlt_recv_exact(fd, s->rx, want, 0);
			if (r != (ssize_t)want) {
				error(s, k, r < 0 ? "recv" : "server closed early", r < 0 ? r : 0);
				break;
			}
			uint64_t bad = check(s, s->rx, 0, want);
			if (bad)
				corrupt(s, k, bad);
		}
		set_linger0(fd);
		break;
	}
	case HALFCLOSE: {
		size_t len = msg_size(s);
		fill(s, s->tx, 0, len);
		ssize_t r = rlt_send_all(fd, s->tx, len, 0);
		if (r < 0) {
			error(s, k, "send", r);
			break;
		}
		r = rlt_shutdown(fd, SHUT_WR);
		if (r < 0) {
			error(s, k, "shutdown", r);
			break;
		}
		uint64_t got = 0;
		for (;;) {
			r = rlt_recv(fd, s->rx, MSG_MAX, 0);
			if (r <= 0)
				break;
			uint64_t bad =
			    got + (uint64_t)r > len ? (uint64_t)r : check(s, s->rx, got, (size_t)r);
			if (bad) {
				corrupt(s, k, bad);
				break;
			}
			got += (uint64_t)r;
		}
		if (r < 0)
			error(s, k, "recv", r);
		else if (r == 0 && got != len)
			error(s, k, "EOF before the whole echo", 0);
		else if (r == 0)
			add(&s->sk->bytes, got);
		break;
	}
	case BIG:
		run_big(s, fd);
		break;
	case SLOWLORIS: {
		unsigned n = (unsigned)between(s, 5, 40);
		for (unsigned i = 0; i < n; i++) {
			if (rlt_sleep(between(s, 20, 100) * RLT_NSEC_PER_MSEC) < 0)
				break;
			if (echo_once(s, k, fd, i, 1) < 0)
				break;
		}
		break;
	}
	case CONNCLOSE:
		break;
	case IDLE:
		if (rlt_sleep(between(s, 200, 3000) * RLT_NSEC_PER_MSEC) == 0)
			echo_once(s, k, fd, 0, (size_t)between(s, 1, 512));
		break;
	default:
		break;
	}
	int rc = rlt_close(fd);
	if (rc < 0)
		error(s, k, "close", rc);
}

static enum kind pick(slot *s)
{
	unsigned total = 0;
	for (int k = 0; k < NKINDS; k++)
		total += KINDS[k].weight;
	unsigned r = (unsigned)(rnd(s) % total);
	for (int k = 0; k < NKINDS; k++) {
		if (r < KINDS[k].weight)
			return (enum kind)k;
		r -= KINDS[k].weight;
	}
	return ECHO;
}

static void *slot_task(void *arg)
{
	slot *s = arg;
	rlt_set_io_timeout(IO_LIMIT_NS);
	s->tx = malloc(MSG_MAX);
	s->rx = malloc(MSG_MAX);
	if (!s->tx || !s->rx) {
		error(s, ECHO, "out of memory", 0);
		goto out;
	}
	/* Spread the first connections over the first 200 ms: 1,000 SYNs in
	 * the same instant would overflow the listener's backlog. */
	rlt_sleep(between(s, 0, 200) * RLT_NSEC_PER_MSEC);
	while (rlt_now() < s->sk->t_end) {
		s->seq++;
		behave(s, pick(s));
	}
out:
	free(s->tx);
	free(s->rx);
	return NULL;
}

/* ---- the server seen from /proc ---- */

static int count_fds(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return -errno;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static long rss_kib(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -errno;
	long v = -ENOENT;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &v) == 1)
			break;
	fclose(f);
	return v;
}

static void *sampler(void *arg)
{
	soak *sk = arg;
	uint64_t next = rlt_now() + RLT_NSEC_PER_SEC;
	while (next <= sk->t_end) {
		if (rlt_sleep_until(next) < 0)
			break;
		next += RLT_NSEC_PER_SEC;
		if (sk->nsamples == sk->cap) {
			size_t cap = sk->cap ? sk->cap * 2 : 64;
			sample *n = realloc(sk->samples, cap * sizeof(*n));
			if (!n)
				break;
			sk->samples = n;
			sk->cap = cap;
		}
		sample *x = &sk->samples[sk->nsamples++];
		x->fds = count_fds(sk->server);
		x->rss_kib = rss_kib(sk->server);
		uint64_t conns = 0;
		for (int k = 0; k < NKINDS; k++)
			conns += __atomic_load_n(&sk->conns[k], __ATOMIC_RELAXED);
		fprintf(stderr,
			"ringlet-soak: %3zus  server fds %5d  rss %7ld KiB  conns %9" PRIu64
			"  errors %" PRIu64 "\n",
			sk->nsamples, x->fds, x->rss_kib, conns,
			__atomic_load_n(&sk->errors, __ATOMIC_RELAXED));
	}
	return NULL;
}

static void *root(void *arg)
{
	soak *sk = arg;
	sk->fds_start = count_fds(sk->server);
	sk->rss_start = rss_kib(sk->server);
	if (sk->fds_start < 0 || sk->rss_start < 0) {
		fprintf(stderr, "ringlet-soak: cannot read /proc/%d: %s\n", (int)sk->server,
			strerror(-(sk->fds_start < 0 ? sk->fds_start : (int)sk->rss_start)));
		exit(2);
	}
	sk->t_end = rlt_now() + (uint64_t)(sk->secs * 1e9);
	slot *slots = calloc(sk->slots, sizeof(*slots));
	rlt_task **ts = calloc(sk->slots, sizeof(*ts));
	if (!slots || !ts) {
		fprintf(stderr, "ringlet-soak: out of memory\n");
		exit(2);
	}
	rlt_task *smp = rlt_spawn(sampler, sk, &(rlt_spawn_opts){.name = "soak-sampler"});
	for (unsigned i = 0; i < sk->slots; i++) {
		slots[i] =
		    (slot){.sk = sk, .id = i, .rng = sk->seed ^ ((i + 1) * 0x9E3779B97F4A7C15ull)};
		rnd(&slots[i]);
		ts[i] = rlt_spawn(slot_task, &slots[i], &(rlt_spawn_opts){.name = "soak-slot"});
		if (!ts[i]) {
			fprintf(stderr, "ringlet-soak: spawn: %s\n", strerror(errno));
			exit(2);
		}
	}
	for (unsigned i = 0; i < sk->slots; i++)
		rlt_join(ts[i], NULL);
	if (smp)
		rlt_join(smp, NULL);
	/* Every connection is closed on our side: the server must let go of
	 * its ends too, within DRAIN_NS. */
	uint64_t give_up = rlt_now() + DRAIN_NS;
	do {
		sk->fds_end = count_fds(sk->server);
		if (sk->fds_end == sk->fds_start)
			break;
		rlt_sleep(100 * RLT_NSEC_PER_MSEC);
	} while (rlt_now() < give_up);
	sk->rss_end = rss_kib(sk->server);
	free(slots);
	free(ts);
	return NULL;
}

static long max_rss(const soak *sk, size_t from, size_t to)
{
	long m = 0;
	for (size_t i = from; i < to && i < sk->nsamples; i++)
		if (sk->samples[i].rss_kib > m)
			m = sk->samples[i].rss_kib;
	return m;
}

static void usage(void)
{
	fprintf(stderr, "usage: ringlet-soak -p PORT -s SERVER_PID [-a ADDR] [-d SECONDS] "
			"[-n SLOTS] [-S SEED] [-w WORKERS] [-r RSS_SLACK_PCT] [-l LABEL]\n");
	exit(2);
}

static unsigned long num(const char *flag, const char *s, unsigned long lo, unsigned long hi)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "ringlet-soak: %s takes a number from %lu to %lu, not '%s'\n", flag,
			lo, hi, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	soak sk = {.slots = 1000, .secs = 10, .rss_slack = 25};
	const char *host = "127.0.0.1";
	int port = -1;
	bool seeded = false;
	rlt_config cfg;
	rlt_config_init(&cfg);
	int opt;
	while ((opt = getopt(argc, argv, "a:p:s:d:n:S:w:r:l:")) != -1) {
		switch (opt) {
		case 'a':
			host = optarg;
			break;
		case 'p':
			port = (int)num("-p", optarg, 1, 65535);
			break;
		case 's':
			sk.server = (pid_t)num("-s", optarg, 1, 1u << 30);
			break;
		case 'd':
			sk.secs = (double)num("-d", optarg, 1, 7 * 86400);
			break;
		case 'n':
			sk.slots = (unsigned)num("-n", optarg, 1, 100000);
			break;
		case 'S':
			sk.seed = num("-S", optarg, 0, ~0ul);
			seeded = true;
			break;
		case 'w':
			cfg.workers = (unsigned)num("-w", optarg, 1, RLT_MAX_WORKERS);
			break;
		case 'r':
			sk.rss_slack = (int)num("-r", optarg, 0, 1000);
			break;
		case 'l':
			sk.label = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || port < 0 || !sk.server)
		usage();
	char hp[128];
	snprintf(hp, sizeof(hp), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
	if (rlt_addr_parse(&sk.addr, hp) < 0) {
		fprintf(stderr, "ringlet-soak: bad address '%s'\n", hp);
		return 2;
	}
	if (!seeded)
		sk.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	/* A slot holds up to two fds; allow them all. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	fprintf(stderr, "ringlet-soak: %u slots against %s (pid %d) for %.0f s, seed %" PRIu64 "\n",
		sk.slots, hp, (int)sk.server, sk.secs, sk.seed);
	int rc = rlt_run(root, &sk, &cfg, NULL);
	if (rc < 0) {
		fprintf(stderr, "ringlet-soak: rlt_run: %s\n", strerror(-rc));
		return 2;
	}

	/* The verdict. */
	size_t n = sk.nsamples;
	long plateau = max_rss(&sk, n / 4, n / 2), late = max_rss(&sk, 3 * n / 4, n);
	long peak = max_rss(&sk, 0, n);
	int fds_max = 0;
	for (size_t i = 0; i < n; i++)
		if (sk.samples[i].fds > fds_max)
			fds_max = sk.samples[i].fds;
	long bound = plateau + plateau * sk.rss_slack / 100 + RSS_FIXED_KIB;
	bool rss_checked = n >= 8; /* quarters of fewer seconds say nothing */
	bool rss_ok = !rss_checked || (late <= bound && sk.rss_end <= bound);
	bool fds_ok = sk.fds_end == sk.fds_start;
	uint64_t conns = 0;
	for (int k = 0; k < NKINDS; k++)
		conns += sk.conns[k];
	bool ok = sk.corrupt == 0 && sk.errors == 0 && fds_ok && rss_ok && conns > 0;

	fprintf(stderr,
		"ringlet-soak: %" PRIu64 " connections, %.1f MiB echoed and checked, %" PRIu64
		" corrupted bytes, %" PRIu64 " errors\n",
		conns, (double)sk.bytes / (1 << 20), sk.corrupt, sk.errors);
	fprintf(stderr, "ringlet-soak: by kind:");
	for (int k = 0; k < NKINDS; k++)
		fprintf(stderr, " %s %" PRIu64, KINDS[k].name, sk.conns[k]);
	fprintf(stderr,
		"\nringlet-soak: server fds %d at start, %d at most, %d after the drain%s\n",
		sk.fds_start, fds_max, sk.fds_end, fds_ok ? "" : "  <- NOT BACK");
	fprintf(stderr,
		"ringlet-soak: server RSS KiB: %ld at start, plateau %ld, last quarter %ld, peak "
		"%ld, %ld after the drain (bound %ld%s)%s\n",
		sk.rss_start, plateau, late, peak, sk.rss_end, bound,
		rss_checked ? "" : ", not checked: under 8 s of samples",
		rss_ok ? "" : "  <- PAST THE BOUND");
	fprintf(stderr, "ringlet-soak: %s\n", ok ? "PASS" : "FAIL");

	printf("{\"label\":\"%s\",\"seed\":%" PRIu64 ",\"duration_s\":%.0f,\"slots\":%u,"
	       "\"conns\":%" PRIu64 ",\"bytes_checked\":%" PRIu64 ",\"corrupt_bytes\":%" PRIu64
	       ",\"errors\":%" PRIu64 ",\"by_kind\":{",
	       sk.label ? sk.label : "", sk.seed, sk.secs, sk.slots, conns, sk.bytes, sk.corrupt,
	       sk.errors);
	for (int k = 0; k < NKINDS; k++)
		printf("%s\"%s\":%" PRIu64, k ? "," : "", KINDS[k].name, sk.conns[k]);
	printf(
	    "},\"server_fds\":{\"start\":%d,\"max\":%d,\"end\":%d},"
	    "\"server_rss_kib\":{\"start\":%ld,\"plateau\":%ld,\"last_quarter\":%ld,\"peak\":%ld,"
	    "\"end\":%ld,\"bound\":%ld,\"checked\":%s},\"ok\":%s}\n",
	    sk.fds_start, fds_max, sk.fds_end, sk.rss_start, plateau, late, peak, sk.rss_end, bound,
	    rss_checked ? "true" : "false", ok ? "true" : "false");
	free(sk.samples);
	return ok ? 0 : 1;
}
