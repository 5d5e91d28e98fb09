/*
 * Baseline: a hand-written liburing echo server, as lean as we know how to
 * make one, to hold ringlet's echo server (tools/ringlet-echo.c, under the
 * "io_uring" policy) against.
 *
 *   echo_uring [-p PORT] [-t THREADS] [-c CPULIST] [-r plain|pollfirst|multishot]
 *
 * One thread per core, each with its own ring and SO_REUSEPORT listener;
 * threads share nothing. The ring is SINGLE_ISSUER | DEFER_TASKRUN
 * (completions run only when we ask for them, in our own enter: no
 * interrupting task work), falling back to COOP_TASKRUN, then to nothing,
 * on older kernels. One multishot accept per listener; each connection has
 * exactly one operation in flight: a recv into its buffer, then a send of
 * what came (again for the rest after a short send), then the next recv.
 * Every turn of the loop is one io_uring_enter: submit what the last batch
 * of completions queued, and wait for at least one more. Thread i runs on
 * the i-th CPU of -c. Runs until killed.
 *
 * -r picks how a connection receives (the suite uses plain, which is what
 * ringlet's rlt_recv does; the others are there to measure what they are
 * worth, docs/NETWORKING.md):
 *   plain      a recv into the connection's buffer (tries at once, and
 *              arms a poll when nothing is there)
 *   pollfirst  the same with IORING_RECVSEND_POLL_FIRST: no first try
 *   multishot  one multishot recv per connection, from a ring of provided
 *              buffers (IORING_REGISTER_PBUF_RING); what arrives is copied
 *              to the connection's buffer, the provided buffer goes back
 *              to the ring at once, and the sends go out one at a time
 */
#include "bench/echo_common.h"

#include <liburing.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>

#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif

enum { ENTRIES = 1024, ACCEPT_TAG = 1, SEND_TAG = 2 };
enum { R_PLAIN, R_POLLFIRST, R_MULTISHOT };
static int recv_mode = R_PLAIN;

/* multishot: one provided-buffer ring per thread */
enum { BGID = 1, NBUFS = 1024, BUFSZ = 2048 };
typedef struct pbufs {
	struct io_uring_buf_ring *br;
	char *mem;
} pbufs;
static __thread pbufs pb;

typedef struct conn {
	int fd;
	int sending;	 /* the op in flight: 0 recv, 1 send */
	size_t len, off; /* while sending: buf[off, len) is left to go */
	char buf[ECHO_BUF];
} conn;

typedef struct server {
	int port, cpu;
} server;

/* Conns are malloc'ed (16-byte aligned), so user_data 1 is free for the
 * listener's accept. */

static struct io_uring_sqe *sqe_get(struct io_uring *ring)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	while (!sqe) {
		io_uring_submit(ring); /* the SQ is full: make room */
		sqe = io_uring_get_sqe(ring);
	}
	return sqe;
}

static void arm_accept(struct io_uring *ring, int lfd)
{
	struct io_uring_sqe *sqe = sqe_get(ring);
	io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, ACCEPT_TAG);
}

static void arm_recv(struct io_uring *ring, conn *c)
{
	struct io_uring_sqe *sqe = sqe_get(ring);
	if (recv_mode == R_MULTISHOT) {
		io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = BGID;
		io_uring_sqe_set_data(sqe, c);
		return;
	}
	io_uring_prep_recv(sqe, c->fd, c->buf, ECHO_BUF, 0);
	if (recv_mode == R_POLLFIRST)
		sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
	io_uring_sqe_set_data(sqe, c);
	c->sending = 0;
}

static void arm_send(struct io_uring *ring, conn *c)
{
	struct io_uring_sqe *sqe = sqe_get(ring);
	io_uring_prep_send(sqe, c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
	/* multishot: the recv stays armed, so the two need telling apart */
	io_uring_sqe_set_data64(sqe,
				(uint64_t)(uintptr_t)c | (recv_mode == R_MULTISHOT ? SEND_TAG : 0));
	c->sending = 1;
}

static int pbufs_setup(struct io_uring *ring)
{
	size_t ring_bytes = NBUFS * sizeof(struct io_uring_buf);
	void *br =
	    mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	pb.mem = malloc((size_t)NBUFS * BUFSZ);
	if (br == MAP_FAILED || !pb.mem)
		return -ENOMEM;
	pb.br = br;
	struct io_uring_buf_reg reg = {
	    .ring_addr = (uint64_t)(uintptr_t)br, .ring_entries = NBUFS, .bgid = BGID};
	int rc = io_uring_register_buf_ring(ring, &reg, 0);
	if (rc < 0)
		return rc;
	io_uring_buf_ring_init(pb.br);
	for (int i = 0; i < NBUFS; i++)
		io_uring_buf_ring_add(pb.br, pb.mem + (size_t)i * BUFSZ, BUFSZ, (unsigned short)i,
				      io_uring_buf_ring_mask(NBUFS), i);
	io_uring_buf_ring_advance(pb.br, NBUFS);
	return 0;
}

/* multishot: a completion of the connection's recv or of its send. The
 * conn is freed once it is closed and no send is in flight. */
static void on_multishot(struct io_uring *ring, struct io_uring_cqe *cqe)
{
	uint64_t ud = cqe->user_data;
	conn *c = (conn *)(uintptr_t)(ud & ~(uint64_t)SEND_TAG);
	int res = cqe->res;
	if (ud & SEND_TAG) {
		if (res > 0 && c->fd >= 0) {
			c->off += (size_t)res;
			if (c->off < c->len) {
				arm_send(ring, c);
				return;
			}
		}
		c->sending = 0;
		c->len = c->off = 0;
		if (c->fd < 0)
			free(c);
		return;
	}
	if (res == -ENOBUFS) { /* the ring ran dry: it refills as sends finish */
		arm_recv(ring, c);
		return;
	}
	if (res <= 0) {
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
		if (!(cqe->flags & IORING_CQE_F_MORE) && !c->sending)
			free(c);
		return;
	}
	unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
	char *data = pb.mem + (size_t)bid * BUFSZ;
	if (c->len + (size_t)res > ECHO_BUF)
		res = (int)(ECHO_BUF - c->len); /* a client that does not read: cut */
	memcpy(c->buf + c->len, data, (size_t)res);
	c->len += (size_t)res;
	io_uring_buf_ring_add(pb.br, data, BUFSZ, (unsigned short)bid,
			      io_uring_buf_ring_mask(NBUFS), 0);
	io_uring_buf_ring_advance(pb.br, 1);
	if (!(cqe->flags & IORING_CQE_F_MORE))
		arm_recv(ring, c);
	if (!c->sending)
		arm_send(ring, c);
}

static void on_conn(struct io_uring *ring, conn *c, int res)
{
	if (res <= 0) { /* end of stream, or an error: either way, done */
		close(c->fd);
		free(c);
		return;
	}
	if (!c->sending) {
		c->len = (size_t)res;
		c->off = 0;
		arm_send(ring, c);
		return;
	}
	c->off += (size_t)res;
	if (c->off < c->len)
		arm_send(ring, c);
	else
		arm_recv(ring, c);
}

static void on_accept(struct io_uring *ring, int lfd, struct io_uring_cqe *cqe)
{
	if (!(cqe->flags & IORING_CQE_F_MORE))
		arm_accept(ring, lfd); /* the multishot ended (an error, or overflow) */
	if (cqe->res < 0)
		return;
	echo_nodelay(cqe->res);
	conn *c = malloc(sizeof(*c));
	if (!c) {
		close(cqe->res);
		return;
	}
	c->fd = cqe->res;
	c->sending = 0;
	c->len = c->off = 0;
	arm_recv(ring, c);
}

static int ring_init(struct io_uring *ring)
{
	static const unsigned flags[] = {
	    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
	    IORING_SETUP_COOP_TASKRUN,
	    0,
	};
	int rc = -EINVAL;
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]) && rc == -EINVAL; i++) {
		struct io_uring_params p = {.flags = flags[i] | IORING_SETUP_SUBMIT_ALL};
		rc = io_uring_queue_init_params(ENTRIES, ring, &p);
	}
	return rc;
}

static void *serve(void *arg)
{
	server *s = arg;
	if (s->cpu >= 0 && pin_cpu(s->cpu) < 0)
		fprintf(stderr, "echo_uring: cannot pin to CPU %d\n", s->cpu);
	struct io_uring ring;
	int rc = ring_init(&ring);
	if (rc < 0) {
		fprintf(stderr, "echo_uring: io_uring_queue_init: %s\n", strerror(-rc));
		exit(1);
	}
	int lfd = echo_listen(s->port, 1, 0);
	if (lfd < 0) {
		fprintf(stderr, "echo_uring: listen on port %d: %s\n", s->port, strerror(-lfd));
		exit(1);
	}
	if (recv_mode == R_MULTISHOT && (rc = pbufs_setup(&ring)) < 0) {
		fprintf(stderr, "echo_uring: provided buffer ring: %s\n", strerror(-rc));
		exit(1);
	}
	arm_accept(&ring, lfd);
	for (;;) {
		rc = io_uring_submit_and_wait(&ring, 1);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
			fprintf(stderr, "echo_uring: io_uring_submit_and_wait: %s\n",
				strerror(-rc));
			exit(1);
		}
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		io_uring_for_each_cqe (&ring, head, cqe) {
			if (cqe->user_data == ACCEPT_TAG)
				on_accept(&ring, lfd, cqe);
			else if (recv_mode == R_MULTISHOT)
				on_multishot(&ring, cqe);
			else
				on_conn(&ring, io_uring_cqe_get_data(cqe), cqe->res);
			seen++;
		}
		io_uring_cq_advance(&ring, seen);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int port = 7000, threads = 1, opt;
	cpulist cpus = {0};
	while ((opt = getopt(argc, argv, "p:t:c:r:")) != -1) {
		switch (opt) {
		case 'p':
			port = (int)echo_num("-p", optarg, 1, 65535);
			break;
		case 't':
			threads = (int)echo_num("-t", optarg, 1, 1024);
			break;
		case 'c':
			if (cpulist_parse(optarg, &cpus) < 0) {
				fprintf(stderr, "echo_uring: bad CPU list '%s'\n", optarg);
				return 2;
			}
			break;
		case 'r':
			if (strcmp(optarg, "plain") == 0)
				recv_mode = R_PLAIN;
			else if (strcmp(optarg, "pollfirst") == 0)
				recv_mode = R_POLLFIRST;
			else if (strcmp(optarg, "multishot") == 0)
				recv_mode = R_MULTISHOT;
			else {
				fprintf(stderr,
					"echo_uring: -r plain|pollfirst|multishot, not '%s'\n",
					optarg);
				return 2;
			}
			break;
		default:
			fprintf(stderr, "usage: echo_uring [-p PORT] [-t THREADS] [-c CPULIST] [-r "
					"plain|pollfirst|multishot]\n");
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	server *srv = calloc((size_t)threads, sizeof(*srv));
	pthread_t *tid = calloc((size_t)threads, sizeof(*tid));
	for (int i = 0; i < threads; i++) {
		srv[i] = (server){.port = port, .cpu = cpus.n ? cpus.cpu[i % cpus.n] : -1};
		if (i > 0 && pthread_create(&tid[i], NULL, serve, &srv[i]) != 0) {
			fprintf(stderr, "echo_uring: pthread_create failed\n");
			return 1;
		}
	}
	serve(&srv[0]);
	return 0;
}
