/*
 * ringlet-httpload: an HTTP/1.1 load generator on ringlet, for
 * bench/http.sh: C keep-alive connections, one task each, sending GET PATH
 * and reading each response whole (Content-Length framing).
 *
 *   ringlet-httpload [-c CONNS] [-d SECONDS] [-W SECONDS] [-R RATE]
 *                    [-D DEPTH] [-w WORKERS] HOST:PORT PATH
 *
 *   -c CONNS    connections (default 50)
 *   -d SECONDS  measured seconds (default 5); -W warm-up seconds (default 1)
 *   -R RATE     constant rate: RATE requests/s in all, spread evenly over
 *               the connections (wrk2's -R); 0 (default): closed loop
 *   -D DEPTH    pipeline DEPTH requests per send (closed loop only; default 1)
 *   -w WORKERS  ringlet workers (default 1)
 *
 * Latency runs from the moment a request was due to the moment its
 * response was all in: in closed loop that is its send; at a constant
 * rate, the time the schedule gave it, so requests queued behind a stall
 * are charged for it (no coordinated omission, as wrk2).
 *
 * Output: one line, "rps=... p50_us=... p90_us=... p99_us=... p999_us=...
 * max_us=... errors=...". Exits 1 if a connection failed or a response
 * was not "HTTP/1.1 200".
 */
#include "bench/hist.h"

#include <ringlet.h>
#include <ringlet/cancel.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct cfg {
	rlt_addr addr;
	char req[512];
	size_t req_len;
	int conns, depth;
	double rate;
	uint64_t warm_ns, run_ns;
	uint64_t start, measure_from, end;
};

struct client {
	struct cfg *cfg;
	int idx;
	uint64_t done; /* responses in the measured window */
	int err;
	hist h;
	char buf[65536];
};

/* Read one whole response from fd (buffered in c->buf[*have..]); 0 or < 0. */
static int read_resp(struct client *c, int fd, size_t *have, size_t *used)
{
	for (;;) {
		char *b = c->buf + *used;
		size_t n = *have - *used;
		char *e = n >= 4 ? memmem(b, n, "\r\n\r\n", 4) : NULL;
		if (e) {
			if (n < 12 || memcmp(b, "HTTP/1.1 200", 12) != 0)
				return -EPROTO;
			size_t head = (size_t)(e - b) + 4;
			size_t len = 0;
			for (char *p = b; p < e; p++) {
				if ((*p == 'C' || *p == 'c') && (size_t)(e - p) > 15 &&
				    strncasecmp(p, "Content-Length:", 15) == 0) {
					len = strtoull(p + 15, NULL, 10);
					break;
				}
			}
			if (n >= head + len) {
				*used += head + len;
				return 0;
			}
		}
		if (*used == *have) {
			*used = *have = 0;
		} else if (*have == sizeof(c->buf)) {
			memmove(c->buf, c->buf + *used, *have - *used);
			*have -= *used;
			*used = 0;
			if (*have == sizeof(c->buf))
				return -EMSGSIZE;
		}
		ssize_t k = rlt_recv(fd, c->buf + *have, sizeof(c->buf) - *have, 0);
		if (k <= 0)
			return k == 0 ? -EPIPE : (int)k;
		*have += (size_t)k;
	}
}

static void *client_task(void *arg)
{
	struct client *c = arg;
	struct cfg *g = c->cfg;
	int fd = rlt_net_connect(&g->addr, 5 * RLT_NSEC_PER_SEC, RLT_NET_NODELAY);
	if (fd < 0) {
		c->err = fd;
		return NULL;
	}
	char batch[512 * 64];
	int depth = g->rate > 0 ? 1 : g->depth;
	for (int i = 0; i < depth; i++)
		memcpy(batch + (size_t)i * g->req_len, g->req, g->req_len);
	size_t have = 0, used = 0;
	/* At a constant rate each connection sends every conns/rate seconds,
	 * the connections staggered over one period. */
	double period = g->rate > 0 ? 1e9 * g->conns / g->rate : 0;
	uint64_t next = g->start + (uint64_t)(period * c->idx / g->conns);
	while (rlt_now() < g->end) {
		uint64_t due;
		if (period > 0) {
			rlt_sleep_until(next);
			due = next;
			next += (uint64_t)period;
		} else {
			due = rlt_now();
		}
		ssize_t w = rlt_send_all(fd, batch, g->req_len * (size_t)depth, 0);
		if (w < 0) {
			c->err = (int)w;
			break;
		}
		for (int i = 0; i < depth; i++) {
			int rc = read_resp(c, fd, &have, &used);
			if (rc < 0) {
				c->err = rc;
				goto out;
			}
		}
		uint64_t now = rlt_now();
		if (due >= g->measure_from && now <= g->end) {
			c->done += (uint64_t)depth;
			for (int i = 0; i < depth; i++)
				hist_record(&c->h, (now - due) / 1000);
		}
	}
out:
	rlt_close(fd);
	return NULL;
}

static void *amain(void *arg)
{
	struct cfg *g = arg;
	struct client **cs = calloc((size_t)g->conns, sizeof(*cs));
	rlt_task **ts = calloc((size_t)g->conns, sizeof(*ts));
	g->start = rlt_now() + 10 * RLT_NSEC_PER_MSEC;
	g->measure_from = g->start + g->warm_ns;
	g->end = g->measure_from + g->run_ns;
	for (int i = 0; i < g->conns; i++) {
		cs[i] = calloc(1, sizeof(**cs));
		cs[i]->cfg = g;
		cs[i]->idx = i;
		hist_init(&cs[i]->h);
		ts[i] = rlt_spawn(client_task, cs[i], NULL);
	}
	hist *all = calloc(1, sizeof(*all));
	hist_init(all);
	uint64_t done = 0;
	int errors = 0, first_err = 0;
	for (int i = 0; i < g->conns; i++) {
		rlt_join(ts[i], NULL);
		done += cs[i]->done;
		hist_merge(all, &cs[i]->h);
		if (cs[i]->err) {
			errors++;
			if (!first_err)
				first_err = cs[i]->err;
		}
		free(cs[i]);
	}
	double secs = (double)g->run_ns / 1e9;
	printf("rps=%.0f p50_us=%llu p90_us=%llu p99_us=%llu p999_us=%llu max_us=%llu errors=%d\n",
	       (double)done / secs, (unsigned long long)hist_percentile(all, 50),
	       (unsigned long long)hist_percentile(all, 90),
	       (unsigned long long)hist_percentile(all, 99),
	       (unsigned long long)hist_percentile(all, 99.9), (unsigned long long)all->max,
	       errors);
	if (errors)
		fprintf(stderr, "ringlet-httpload: %d connections failed (first: %s)\n", errors,
			strerror(-first_err));
	free(all);
	free(cs);
	free(ts);
	return errors ? (void *)1 : NULL;
}

int main(int argc, char **argv)
{
	struct cfg g = {
	    .conns = 50, .depth = 1, .warm_ns = RLT_NSEC_PER_SEC, .run_ns = 5 * RLT_NSEC_PER_SEC};
	rlt_config rc;
	rlt_config_init(&rc);
	rc.workers = 1;
	int opt;
	while ((opt = getopt(argc, argv, "c:d:W:R:D:w:")) != -1) {
		switch (opt) {
		case 'c':
			g.conns = atoi(optarg);
			break;
		case 'd':
			g.run_ns = (uint64_t)(atof(optarg) * 1e9);
			break;
		case 'W':
			g.warm_ns = (uint64_t)(atof(optarg) * 1e9);
			break;
		case 'R':
			g.rate = atof(optarg);
			break;
		case 'D':
			g.depth = atoi(optarg);
			break;
		case 'w':
			rc.workers = (unsigned)atoi(optarg);
			break;
		default:
			goto usage;
		}
	}
	if (argc - optind != 2 || g.conns < 1 || g.depth < 1 || g.depth > 64)
		goto usage;
	if (rlt_addr_parse(&g.addr, argv[optind]) < 0) {
		fprintf(stderr, "ringlet-httpload: bad address %s (numeric HOST:PORT)\n",
			argv[optind]);
		return 2;
	}
	int n = snprintf(g.req, sizeof(g.req), "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n",
			 argv[optind + 1], argv[optind]);
	if (n <= 0 || (size_t)n >= sizeof(g.req))
		goto usage;
	g.req_len = (size_t)n;
	void *res = NULL;
	int r = rlt_run(amain, &g, &rc, &res);
	return r == 0 && !res ? 0 : 1;
usage:
	fprintf(stderr,
		"usage: %s [-c CONNS] [-d SECONDS] [-W SECONDS] [-R RATE] [-D DEPTH] "
		"[-w WORKERS] HOST:PORT PATH\n",
		argv[0]);
	return 2;
}
