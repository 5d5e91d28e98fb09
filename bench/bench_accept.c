/*
 * accept: what a new TCP connection costs the server, one-shot accept
 * against the multishot acceptor, in the same run.
 *
 *   accept.single     connections/s (thousands) with rlt_net_accept in a
 *                     loop: one accept SQE per connection.
 *   accept.multishot  the same with rlt_acceptor_next: one armed multishot
 *                     accept, a completion per connection.
 *   accept.ratio      multishot / single, repetition by repetition (the two
 *                     alternate), median.
 *
 * One worker, so the server and CON client tasks share a core and the
 * figure is the CPU cost of a whole connection: the client's socket,
 * connect and close, the server's accept, and its close with SO_LINGER 0
 * (a reset, so that no TIME_WAIT piles up over the run). Loopback.
 */
#include "bench_rt.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#define CON 16

struct job {
	const bench_opts *o;
	bench_series *single, *multi, *ratio;
	rlt_addr where;
	int lfd;
	unsigned per_client;
	int multishot;
};

static void *client(void *arg)
{
	struct job *j = arg;
	for (unsigned i = 0; i < j->per_client; i++) {
		int fd = rlt_net_connect(&j->where, 5 * RLT_NSEC_PER_SEC, 0);
		if (fd < 0)
			die("connect", -fd);
		char c;
		ssize_t n = rlt_recv(fd, &c, 1, 0); /* until the server resets it */
		if (n > 0)
			die("recv: data", EPROTO);
		rlt_close(fd);
	}
	return NULL;
}

static void server_close(int fd)
{
	struct linger l = {.l_onoff = 1, .l_linger = 0};
	if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)) < 0)
		die("SO_LINGER", errno);
	rlt_close(fd);
}

/* conns/s, in thousands, for one round of CON * per_client connections. */
static double round_once(struct job *j, int multishot)
{
	unsigned total = CON * j->per_client;
	rlt_task *c[CON];
	rlt_acceptor *a = NULL;
	if (multishot && !(a = rlt_acceptor_open(j->lfd, 0)))
		die("rlt_acceptor_open", errno);
	uint64_t t0 = bench_wall_ns();
	for (int i = 0; i < CON; i++)
		if (!(c[i] = rlt_spawn(client, j, NULL)))
			die("rlt_spawn", errno);
	for (unsigned k = 0; k < total; k++) {
		int fd = multishot ? rlt_acceptor_next(a, NULL) : rlt_net_accept(j->lfd, NULL, 0);
		if (fd < 0)
			die("accept", -fd);
		server_close(fd);
	}
	for (int i = 0; i < CON; i++)
		rlt_join(c[i], NULL);
	double s = (double)(bench_wall_ns() - t0) / 1e9;
	if (a)
		rlt_acceptor_close(a);
	return total / s / 1e3;
}

static void *root(void *arg)
{
	struct job *j = arg;
	if (rlt_addr_parse(&j->where, "127.0.0.1:0") < 0)
		die("rlt_addr_parse", EINVAL);
	j->lfd = rlt_net_listen(&j->where, -1, 0);
	if (j->lfd < 0)
		die("rlt_net_listen", -j->lfd);
	rlt_net_local(j->lfd, &j->where);
	round_once(j, 0); /* warm-up */
	round_once(j, 1);
	for (int r = 0; r < j->o->reps; r++) {
		double s = round_once(j, 0), m = round_once(j, 1);
		bench_record(j->single, s);
		bench_record(j->multi, m);
		bench_record(j->ratio, m / s);
	}
	rlt_close(j->lfd);
	return NULL;
}

int main(int argc, char **argv)
{
	bench_opts o = bench_parse(argc, argv);
	if (!bench_want(&o, "accept"))
		return 0;
	bench_series single, multi, ratio;
	bench_series_init(&single, "accept.single", "kconn/s");
	bench_series_init(&multi, "accept.multishot", "kconn/s");
	bench_series_init(&ratio, "accept.ratio", "x");
	struct job j = {.o = &o, .single = &single, .multi = &multi, .ratio = &ratio};
	j.per_client = o.quick ? 250 : 1000;
	printf("# accept: %u connections per round, %d clients, one worker\n", CON * j.per_client,
	       CON);
	bench_run(1, root, &j);
	bench_print_median(&single);
	bench_print_median(&multi);
	bench_print_median(&ratio);
	return 0;
}
