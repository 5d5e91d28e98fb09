/* TLS streams, ringlet on both ends: 200 concurrent connections with every
 * byte checked, the end of a stream (close_notify, a bare close, a
 * truncated or corrupted record), sendfile and writev over TLS, and an
 * I/O timeout that leaves the connection usable. */
/* Fault mode: checks after a fault end the scenario (tests/rlt_test.h). */
#define RLT_TEST_FAULT_LENIENT
#include "tests/tls_test.h"

#include <netinet/tcp.h>
#include <stdatomic.h>

static unsigned char pat(unsigned seed, size_t i)
{
	return (unsigned char)((i * 31 + seed * 7 + (i >> 9)) & 0xff);
}

/* ---- 200 concurrent echo connections ---- */

#define CONNS	  RLT_TEST_SCALE(200)
#define CONN_SIZE (64 * 1024 + 77)

typedef struct echo_srv {
	int lfd;
	rlt_tls_ctx *ctx;
	int conns;
	bool rxq; /* receive through receive queues after the handshake */
} echo_srv;

static void *echo_conn(void *arg)
{
	echo_srv *s = ((void **)arg)[0];
	int fd = (int)(intptr_t)((void **)arg)[1];
	free(arg);
	rlt_tls *t = rlt_tls_server(s->ctx, fd, 10 * RLT_NSEC_PER_SEC);
	if (!t)
		fail_msg("server handshake: %s (%s)", strerror(errno), rlt_tls_last_error());
	rlt_rxq *q = s->rxq ? rlt_rxq_open(fd) : NULL;
	if (s->rxq)
		assert_int_equal(rlt_tls_use_rxq(t, q), 0);
	char buf[8192];
	ssize_t n;
	while ((n = rlt_tls_read(t, buf, sizeof(buf))) > 0)
		assert_int_equal(rlt_tls_write(t, buf, (size_t)n), n);
	assert_int_equal(n, 0); /* the client's close_notify */
	assert_int_equal(rlt_tls_shutdown(t), 0);
	rlt_tls_free(t);
	assert_int_equal(rlt_rxq_close(q), 0);
	rlt_close(fd);
	return NULL;
}

static void *echo_accept(void *arg)
{
	echo_srv *s = arg;
	rlt_task *tasks[200];
	for (int i = 0; i < s->conns; i++) {
		int fd = rlt_net_accept(s->lfd, NULL, RLT_NET_NODELAY);
		assert_true(fd >= 0);
		void **a = malloc(2 * sizeof(void *));
		a[0] = s;
		a[1] = (void *)(intptr_t)fd;
		tasks[i] = rlt_spawn(echo_conn, a, NULL);
		assert_non_null(tasks[i]);
	}
	for (int i = 0; i < s->conns; i++)
		assert_int_equal(rlt_join(tasks[i], NULL), 0);
	return NULL;
}

typedef struct echo_cli {
	int port;
	rlt_tls_ctx *ctx;
	unsigned seed;
	bool rxq;
} echo_cli;

static void *echo_client(void *arg)
{
	echo_cli *c = arg;
	int fd = tls_dial(c->port);
	rlt_tls *t = rlt_tls_client(c->ctx, fd, "localhost", 10 * RLT_NSEC_PER_SEC);
	if (!t)
		fail_msg("client handshake: %s (%s)", strerror(errno), rlt_tls_last_error());
	rlt_rxq *q = c->rxq ? rlt_rxq_open(fd) : NULL;
	if (c->rxq)
		assert_int_equal(rlt_tls_use_rxq(t, q), 0);
	unsigned char *out = malloc(CONN_SIZE), *in = malloc(CONN_SIZE);
	for (size_t i = 0; i < CONN_SIZE; i++)
		out[i] = pat(c->seed, i);
	/* Half in one write, the rest in odd pieces through writev. */
	size_t half = CONN_SIZE / 2;
	assert_int_equal(rlt_tls_write(t, out, half), (ssize_t)half);
	struct iovec iov[4] = {{out + half, 1},
			       {out + half + 1, 3000},
			       {out + half + 3001, 20000},
			       {out + half + 23001, CONN_SIZE - half - 23001}};
	assert_int_equal(rlt_tls_writev(t, iov, 4), (ssize_t)(CONN_SIZE - half));
	size_t got = 0;
	while (got < CONN_SIZE) {
		ssize_t n = rlt_tls_read(t, in + got, CONN_SIZE - got);
		if (n <= 0)
			fail_msg("client read: %zd (%s)", n, rlt_tls_error(t));
		got += (size_t)n;
	}
	for (size_t i = 0; i < CONN_SIZE; i++)
		if (in[i] != out[i])
			fail_msg("connection %u: byte %zu is %u, sent %u", c->seed, i, in[i],
				 out[i]);
	assert_int_equal(rlt_tls_shutdown(t), 0);
	char b[1];
	assert_int_equal(rlt_tls_read(t, b, 1), 0); /* the server's close_notify */
	rlt_tls_free(t);
	assert_int_equal(rlt_rxq_close(q), 0);
	rlt_close(fd);
	free(out);
	free(in);
	return NULL;
}

static void *root_concurrent(void *arg)
{
	bool rxq = arg != NULL;
	int port;
	echo_srv s = {.lfd = tls_listen(&port), .conns = CONNS, .rxq = rxq};
	s.ctx = tls_server_ctx(&certs, certs.srv, 0);
	rlt_task *acc = rlt_spawn(echo_accept, &s, NULL);
	rlt_tls_ctx *cctx = tls_client_ctx(&certs, 0);
	echo_cli cli[200];
	rlt_task *tasks[200];
	for (int i = 0; i < CONNS; i++) {
		/* With queues: every server end, every other client end. */
		cli[i] = (echo_cli){
		    .port = port, .ctx = cctx, .seed = (unsigned)i, .rxq = rxq && (i & 1)};
		tasks[i] = rlt_spawn(echo_client, &cli[i], NULL);
		assert_non_null(tasks[i]);
	}
	for (int i = 0; i < CONNS; i++)
		assert_int_equal(rlt_join(tasks[i], NULL), 0);
	assert_int_equal(rlt_join(acc, NULL), 0);
	rlt_close(s.lfd);
	rlt_tls_ctx_free(s.ctx);
	rlt_tls_ctx_free(cctx);
	return NULL;
}

static void test_stream_200_concurrent_connections_every_byte(void **state)
{
	rlt_test_run(root_concurrent, NULL);
}

/* The same with the ciphertext received through receive queues
 * (rlt_tls_use_rxq: multishot receives under io_uring) from the end of
 * the handshake on: the bytes of the handshake's last flight that came
 * with it are read first, and nothing is lost at the switch. */
static void test_stream_through_receive_queues_every_byte(void **state)
{
	rlt_test_run(root_concurrent, (void *)1);
}

/* ---- the end of a stream, through a relay that can damage it ---- */

typedef enum { END_CLOSE_NOTIFY, END_BARE_CLOSE, END_TRUNCATE, END_CORRUPT } end_mode;

typedef struct pair {
	int cli_fd, srv_fd;   /* the two TLS ends */
	int relay_c, relay_s; /* the relay's ends */
	_Atomic int damage;   /* set once both handshakes are done */
	end_mode mode;
	rlt_tls_ctx *sctx, *cctx;
	rlt_tls *srv;
} pair;

static void *relay_up(void *arg)
{
	pair *p = arg;
	char buf[16384];
	ssize_t n;
	while ((n = rlt_recv(p->relay_c, buf, sizeof(buf), 0)) > 0)
		if (rlt_send_all(p->relay_s, buf, (size_t)n, 0) < 0)
			break;
	rlt_shutdown(p->relay_s, SHUT_WR);
	return NULL;
}

static void *relay_down(void *arg)
{
	pair *p = arg;
	char buf[65536];
	ssize_t n;
	while ((n = rlt_recv(p->relay_s, buf, sizeof(buf), 0)) > 0) {
		if (atomic_load(&p->damage)) {
			if (p->mode == END_TRUNCATE) {
				rlt_send_all(p->relay_c, buf, (size_t)n - 1, 0);
				break;
			}
			if (p->mode == END_CORRUPT)
				buf[n - 3] ^= 0x40;
		}
		if (rlt_send_all(p->relay_c, buf, (size_t)n, 0) < 0)
			break;
	}
	rlt_shutdown(p->relay_c, SHUT_WR);
	return NULL;
}

static void *pair_server(void *arg)
{
	pair *p = arg;
	p->srv = rlt_tls_server(p->sctx, p->srv_fd, 5 * RLT_NSEC_PER_SEC);
	if (!p->srv)
		fail_msg("server handshake: %s", rlt_tls_last_error());
	return NULL;
}

static void pair_close(pair *p, rlt_tls *c)
{
	rlt_tls_free(c);
	rlt_tls_free(p->srv);
	if (p->cli_fd >= 0)
		rlt_close(p->cli_fd);
	if (p->relay_c >= 0)
		rlt_close(p->relay_c);
	if (p->relay_s >= 0)
		rlt_close(p->relay_s);
	rlt_tls_ctx_free(p->sctx);
	rlt_tls_ctx_free(p->cctx);
}

static void *root_end_body(void *arg);

/* Every wait of the scenario: 10 s at most (it takes milliseconds). Under
 * the fault matrix an injected error in a relay's shutdown can leave the
 * client's read without its end of stream. */
static void *root_end(void *arg)
{
	rlt_scope sc;
	rlt_scope_enter(&sc, 10 * RLT_NSEC_PER_SEC);
	void *r = root_end_body(arg);
	rlt_scope_leave(&sc);
	return r;
}

static void *root_end_body(void *arg)
{
	end_mode mode = *(end_mode *)arg;
	pair p;
	rlt_task *up, *down;
	p = (pair){0};
	rlt_tls *c;
	{
		/* Relays first: the handshake goes through them. */
		int x[2], y[2];
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, x), 0);
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, y), 0);
		p.cli_fd = x[0];
		p.relay_c = x[1];
		p.srv_fd = y[0];
		p.relay_s = y[1];
		p.mode = mode;
		atomic_init(&p.damage, 0);
		p.sctx = tls_server_ctx(&certs, certs.srv, 0);
		p.cctx = tls_client_ctx(&certs, 0);
		up = rlt_spawn(relay_up, &p, NULL);
		down = rlt_spawn(relay_down, &p, NULL);
		rlt_task *hs = rlt_spawn(pair_server, &p, NULL);
		c = rlt_tls_client(p.cctx, p.cli_fd, "localhost", 5 * RLT_NSEC_PER_SEC);
		if (!c)
			fail_msg("client handshake: %s", rlt_tls_last_error());
		assert_int_equal(rlt_join(hs, NULL), 0);
	}
	/* Everything the handshake sent has been read by the client except,
	 * perhaps, TLS 1.3 session tickets: read them now (nothing else is
	 * coming, so a short I/O timeout ends the read). */
	char buf[4096];
	assert_int_equal(rlt_set_io_timeout(50 * RLT_NSEC_PER_MSEC), 0);
	assert_int_equal(rlt_tls_read(c, buf, sizeof(buf)), -ETIMEDOUT);
	assert_int_equal(rlt_set_io_timeout(0), 0);
	atomic_store(&p.damage, 1);
	char msg[1000];
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (char)pat(9, i);
	assert_int_equal(rlt_tls_write(p.srv, msg, sizeof(msg)), (ssize_t)sizeof(msg));
	if (mode == END_CLOSE_NOTIFY)
		assert_int_equal(rlt_tls_shutdown(p.srv), 0);
	rlt_shutdown(p.srv_fd, SHUT_WR); /* the bare end of the stream */
	size_t got = 0;
	ssize_t n;
	while ((n = rlt_tls_read(c, buf, sizeof(buf))) > 0) {
		assert_memory_equal(buf, msg + got, (size_t)n);
		got += (size_t)n;
	}
	switch (mode) {
	case END_CLOSE_NOTIFY:
		assert_int_equal(n, 0);
		assert_int_equal(got, sizeof(msg));
		break;
	case END_BARE_CLOSE:
		assert_int_equal(got, sizeof(msg));
		assert_int_equal(n, -ECONNABORTED);
		break;
	case END_TRUNCATE:
		assert_int_equal(got, 0);
		assert_int_equal(n, -ECONNABORTED);
		break;
	case END_CORRUPT:
		assert_int_equal(got, 0);
		if (n != -EPROTO)
			fail_msg("read: %zd (%s)", n, rlt_tls_error(c));
		assert_true(strlen(rlt_tls_error(c)) > 0);
		/* A broken connection stays broken. */
		assert_int_equal(rlt_tls_read(c, buf, 1), -EPIPE);
		assert_int_equal(rlt_tls_write(c, "x", 1), -EPIPE);
		break;
	}
	rlt_close(p.srv_fd);
	assert_int_equal(rlt_join(down, NULL), 0);
	rlt_shutdown(p.cli_fd, SHUT_WR);
	assert_int_equal(rlt_join(up, NULL), 0);
	pair_close(&p, c);
	return NULL;
}

static void test_stream_close_notify_is_a_clean_end(void **state)
{
	end_mode m = END_CLOSE_NOTIFY;
	rlt_test_run(root_end, &m);
}

static void test_stream_bare_close_is_econnaborted(void **state)
{
	end_mode m = END_BARE_CLOSE;
	rlt_test_run(root_end, &m);
}

static void test_stream_truncated_record_is_econnaborted(void **state)
{
	end_mode m = END_TRUNCATE;
	rlt_test_run(root_end, &m);
}

static void test_stream_corrupted_record_is_eproto(void **state)
{
	end_mode m = END_CORRUPT;
	rlt_test_run(root_end, &m);
}

/* ---- a large write that cannot finish ---- */

/* A direct pair (no relay), both handshakes done. */
static rlt_tls *direct_pair(pair *p)
{
	int x[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, x), 0);
	*p = (pair){.cli_fd = x[0], .srv_fd = x[1], .relay_c = -1, .relay_s = -1};
	p->sctx = tls_server_ctx(&certs, certs.srv, 0);
	p->cctx = tls_client_ctx(&certs, 0);
	rlt_task *hs = rlt_spawn(pair_server, p, NULL);
	rlt_tls *c = rlt_tls_client(p->cctx, p->cli_fd, "localhost", 5 * RLT_NSEC_PER_SEC);
	if (!c)
		fail_msg("client handshake: %s", rlt_tls_last_error());
	assert_int_equal(rlt_join(hs, NULL), 0);
	return c;
}

enum { BIG = 8 * 1024 * 1024 };

/* A large write whose sends cannot finish (the peer reads nothing: the
 * I/O timeout; the peer is gone: EPIPE) fails with that errno, never a
 * hang, and the connection stays broken. */
static void *root_stalled_write(void *arg)
{
	(void)arg;
	unsigned char *big = malloc(BIG);
	assert_non_null(big);
	for (size_t i = 0; i < BIG; i++)
		big[i] = (unsigned char)pat(5, i);

	/* The peer reads nothing: the socket buffer fills, the send waits
	 * inside SSL_write, and the I/O timeout ends it. */
	pair p;
	rlt_tls *c = direct_pair(&p);
	assert_int_equal(rlt_set_io_timeout(50 * RLT_NSEC_PER_MSEC), 0);
	ssize_t n = rlt_tls_write(p.srv, big, BIG);
	assert_int_equal(rlt_set_io_timeout(0), 0);
	if (n != -ETIMEDOUT)
		fail_msg("write: %zd (%s)", n, rlt_tls_error(p.srv));
	assert_true(strlen(rlt_tls_error(p.srv)) > 0);
	assert_int_equal(rlt_tls_write(p.srv, big, 1), -EPIPE);
	pair_close(&p, c);

	/* The peer closes: the send fails, and so does the write. */
	c = direct_pair(&p);
	rlt_close(p.cli_fd);
	p.cli_fd = -1;
	n = rlt_tls_writev(p.srv, &(struct iovec){big, BIG}, 1);
	if (n != -EPIPE && n != -ECONNRESET)
		fail_msg("write to a closed peer: %zd (%s)", n, rlt_tls_error(p.srv));
	assert_int_equal(rlt_tls_write(p.srv, big, 1), -EPIPE);
	pair_close(&p, c);
	free(big);
	return NULL;
}

static void test_stream_stalled_large_write_fails_cleanly(void **state)
{
	rlt_test_run(root_stalled_write, NULL);
}

/* ---- sendfile over TLS, and a cancelled read ---- */

typedef struct file_case {
	pair p;
	rlt_tls *c;
	size_t size;
	int file_fd;
} file_case;

static void *send_file(void *arg)
{
	file_case *f = arg;
	ssize_t n = rlt_tls_sendfile(f->p.srv, f->file_fd, 100, f->size);
	assert_int_equal(n, (ssize_t)(f->size - 100)); /* the file ends first */
	assert_int_equal(rlt_tls_shutdown(f->p.srv), 0);
	return NULL;
}

static void *root_sendfile(void *arg)
{
	file_case f = {.size = 1024 * 1024 + 123};
	char path[400];
	snprintf(path, sizeof(path), "%s/file.bin", certs.dir);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	for (size_t i = 0; i < f.size; i++)
		fputc(pat(3, i), fp);
	fclose(fp);
	f.file_fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(f.file_fd >= 0);
	/* Direct: no relay. */
	int x[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, x), 0);
	f.p.cli_fd = x[0];
	f.p.srv_fd = x[1];
	f.p.relay_c = f.p.relay_s = -1;
	f.p.sctx = tls_server_ctx(&certs, certs.srv, 0);
	f.p.cctx = tls_client_ctx(&certs, 0);
	rlt_task *hs = rlt_spawn(pair_server, &f.p, NULL);
	f.c = rlt_tls_client(f.p.cctx, f.p.cli_fd, "localhost", 5 * RLT_NSEC_PER_SEC);
	assert_non_null(f.c);
	assert_int_equal(rlt_join(hs, NULL), 0);

	/* A read cut short by the I/O timeout leaves the connection usable. */
	char b[16];
	assert_int_equal(rlt_set_io_timeout(30 * RLT_NSEC_PER_MSEC), 0);
	assert_int_equal(rlt_tls_read(f.c, b, sizeof(b)), -ETIMEDOUT);
	assert_int_equal(rlt_set_io_timeout(0), 0);

	rlt_task *st = rlt_spawn(send_file, &f, NULL);
	unsigned char *buf = malloc(f.size);
	size_t got = 0;
	ssize_t n;
	while ((n = rlt_tls_read(f.c, buf + got, f.size - got)) > 0)
		got += (size_t)n;
	assert_int_equal(n, 0);
	assert_int_equal(got, f.size - 100);
	for (size_t i = 0; i < got; i++)
		if (buf[i] != pat(3, i + 100))
			fail_msg("byte %zu differs", i);
	assert_int_equal(rlt_join(st, NULL), 0);
	free(buf);
	close(f.file_fd);
	rlt_close(f.p.srv_fd);
	f.p.relay_c = f.p.relay_s = -1;
	rlt_tls_free(f.c);
	rlt_tls_free(f.p.srv);
	rlt_close(f.p.cli_fd);
	rlt_tls_ctx_free(f.p.sctx);
	rlt_tls_ctx_free(f.p.cctx);
	return NULL;
}

static void test_stream_sendfile_over_tls(void **state)
{
	rlt_test_run(root_sendfile, NULL);
}

/* ---- kTLS (RLT_TLS_KTLS) over TCP ---- */

/* Whether this kernel attaches the tls ULP to a connected TCP socket. */
static int kernel_has_ktls(int fd)
{
	static const char ulp[] = "tls";
	return setsockopt(fd, SOL_TCP, TCP_ULP, ulp, sizeof(ulp)) == 0 || errno == EEXIST;
}

typedef struct ktls_case {
	int lfd;
	rlt_tls_ctx *sctx;
	char path[400];
	size_t size;
	int ktls; /* rlt_tls_ktls of the server's connection */
} ktls_case;

static void *ktls_server(void *arg)
{
	ktls_case *k = arg;
	int fd = rlt_net_accept(k->lfd, NULL, RLT_NET_NODELAY);
	assert_true(fd >= 0);
	rlt_tls *t = rlt_tls_server(k->sctx, fd, 5 * RLT_NSEC_PER_SEC);
	if (!t)
		fail_msg("server handshake: %s", rlt_tls_last_error());
	k->ktls = rlt_tls_ktls(t);
	int ffd = open(k->path, O_RDONLY | O_CLOEXEC);
	assert_true(ffd >= 0);
	assert_int_equal(rlt_tls_write(t, "head:", 5), 5);
	assert_int_equal(rlt_tls_sendfile(t, ffd, 0, k->size), (ssize_t)k->size);
	struct iovec iov[2] = {{":ta", 3}, {"il", 2}};
	assert_int_equal(rlt_tls_writev(t, iov, 2), 5);
	assert_int_equal(rlt_tls_shutdown(t), 0);
	close(ffd);
	rlt_tls_free(t);
	rlt_close(fd);
	return NULL;
}

static void *root_ktls(void *arg)
{
	ktls_case *k = arg;
	int port;
	k->lfd = tls_listen(&port);
	rlt_tls_ctx_opts so = {
	    .flags = RLT_TLS_SERVER | RLT_TLS_KTLS, .cert_file = certs.srv, .key_file = certs.key};
	k->sctx = rlt_tls_ctx_new(&so);
	assert_non_null(k->sctx);
	rlt_tls_ctx_opts co = {.flags = RLT_TLS_KTLS, .ca_file = certs.ca};
	rlt_tls_ctx *cctx = rlt_tls_ctx_new(&co);
	assert_non_null(cctx);
	rlt_task *st = rlt_spawn(ktls_server, k, NULL);
	int fd = tls_dial(port);
	int have = kernel_has_ktls(fd);
	rlt_tls *t = rlt_tls_client(cctx, fd, "localhost", 5 * RLT_NSEC_PER_SEC);
	if (!t)
		fail_msg("client handshake: %s", rlt_tls_last_error());
	size_t want = 5 + k->size + 5;
	unsigned char *buf = malloc(want + 1);
	size_t got = 0;
	ssize_t n;
	while ((n = rlt_tls_read(t, buf + got, want + 1 - got)) > 0)
		got += (size_t)n;
	if (n != 0)
		fail_msg("client read: %zd (%s)", n, rlt_tls_error(t));
	assert_int_equal(got, want);
	assert_memory_equal(buf, "head:", 5);
	for (size_t i = 0; i < k->size; i++)
		if (buf[5 + i] != pat(4, i))
			fail_msg("byte %zu of the file differs", i);
	assert_memory_equal(buf + 5 + k->size, ":tail", 5);
	assert_int_equal(rlt_join(st, NULL), 0);
	if (have) {
		fprintf(stderr, "kTLS: the kernel has the tls module: offload tested (%s)\n",
			rlt_tls_version(t));
		assert_int_equal(k->ktls, 1);
	} else {
		fprintf(stderr,
			"NOTE: this kernel has no tls module (TCP_ULP \"tls\": %s): kTLS is "
			"declined, the user-space fallback is what ran\n",
			strerror(-k->ktls));
		assert_int_equal(k->ktls, -ENOENT);
	}
	/* The client's sending side (its Finished went before the switch). */
	assert_int_equal(rlt_tls_ktls(t), have ? 1 : -ENOENT);
	free(buf);
	rlt_tls_free(t);
	rlt_close(fd);
	rlt_close(k->lfd);
	rlt_tls_ctx_free(k->sctx);
	rlt_tls_ctx_free(cctx);
	return NULL;
}

static void test_stream_ktls_or_its_fallback(void **state)
{
	ktls_case k = {.size = 1024 * 1024 + 5};
	snprintf(k.path, sizeof(k.path), "%s/ktls.bin", certs.dir);
	FILE *fp = fopen(k.path, "w");
	assert_non_null(fp);
	for (size_t i = 0; i < k.size; i++)
		fputc(pat(4, i), fp);
	fclose(fp);
	rlt_test_run(root_ktls, &k);
}

int main(void)
{
	if (!peer_installed("openssl")) {
		fprintf(stderr, "SKIPPED: openssl(1) is not installed\n");
		return 0;
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stream_200_concurrent_connections_every_byte),
	    cmocka_unit_test(test_stream_through_receive_queues_every_byte),
	    cmocka_unit_test(test_stream_close_notify_is_a_clean_end),
	    cmocka_unit_test(test_stream_bare_close_is_econnaborted),
	    cmocka_unit_test(test_stream_truncated_record_is_econnaborted),
	    cmocka_unit_test(test_stream_corrupted_record_is_eproto),
	    cmocka_unit_test(test_stream_sendfile_over_tls),
	    cmocka_unit_test(test_stream_stalled_large_write_fails_cleanly),
	    cmocka_unit_test(test_stream_ktls_or_its_fallback),
	};
	return cmocka_run_group_tests(tests, tls_group_setup, tls_group_teardown);
}
