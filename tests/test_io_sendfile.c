/* rlt_sendfile: a file to TCP and Unix sockets and to a pipe, whole and in
 * pieces, from offsets and from the file's position; every byte checked
 * on the receiving side. Its errors, cancellation in the middle of a
 * transfer, many transfers at once, and injected faults. Each run's file
 * lives in a mkdtemp directory. */
#include "tests/rlt_test.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define KIB 1024u
#define MIB (1024u * 1024u)

static inline unsigned char pat(size_t i)
{
	return (unsigned char)((i * 151u + (i >> 9) * 7u + (i >> 17)) & 0xff);
}

static char dir[64];
static char path[128];

/* A file of size bytes of pat(), in a fresh temporary directory. */
static int make_file(size_t size)
{
	strcpy(dir, "/tmp/rlt-sendfile-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/data", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	rlt_test_assert_ok(fd);
	unsigned char *buf = malloc(size);
	assert_non_null(buf);
	for (size_t i = 0; i < size; i++)
		buf[i] = pat(i);
	size_t done = 0;
	while (done < size) {
		ssize_t n = write(fd, buf + done, size - done);
		rlt_test_assert_pos(n);
		done += (size_t)n;
	}
	free(buf);
	return fd;
}

static void drop_file(int fd)
{
	close(fd);
	unlink(path);
	rmdir(dir);
}

static void check_range(const unsigned char *got, size_t len, size_t from)
{
	for (size_t i = 0; i < len; i++)
		if (got[i] != pat(from + i))
			fail_msg("file byte %zu: got %u, want %u", from + i, got[i], pat(from + i));
}

/* A connected pair of stream sockets of family (AF_INET, AF_UNIX) made
 * through a listener: [0] the server's side, [1] the client's. */
static void connected_pair(int family, int sv[2])
{
	rlt_addr a;
	char sock[160];
	if (family == AF_UNIX) {
		snprintf(sock, sizeof(sock), "unix:%s/sock", dir);
		assert_int_equal(rlt_addr_parse(&a, sock), 0);
	} else {
		assert_int_equal(rlt_addr_parse(&a, "127.0.0.1:0"), 0);
	}
	int lfd = rlt_net_listen(&a, 4, 0);
	rlt_test_assert_ok(lfd);
	rlt_addr bound;
	assert_int_equal(rlt_net_local(lfd, &bound), 0);
	int c = rlt_net_connect(&bound, 5 * RLT_NSEC_PER_SEC, 0);
	rlt_test_assert_ok(c);
	int s = rlt_net_accept(lfd, NULL, 0);
	rlt_test_assert_ok(s);
	assert_int_equal(rlt_close(lfd), 0);
	if (family == AF_UNIX)
		unlink(sock + 5);
	sv[0] = s;
	sv[1] = c;
}

/* ---- whole files and pieces, TCP and Unix ---- */

typedef struct piece {
	off_t off;   /* what rlt_sendfile is given */
	size_t len;  /* likewise */
	size_t want; /* what it must return */
	size_t from; /* the file offset the bytes come from */
} piece;

typedef struct xfer {
	int out, file;
	const piece *pieces;
	size_t npieces;
} xfer;

static void *sender(void *arg)
{
	xfer *x = arg;
	for (size_t i = 0; i < x->npieces; i++) {
		const piece *p = &x->pieces[i];
		ssize_t n = rlt_sendfile(x->out, x->file, p->off, p->len);
		if (n != (ssize_t)p->want)
			fail_msg("piece %zu (off %lld len %zu): rlt_sendfile %zd, want %zu", i,
				 (long long)p->off, p->len, n, p->want);
	}
	assert_int_equal(rlt_shutdown(x->out, SHUT_WR), 0);
	return NULL;
}

/* Receive the pieces' bytes and check every one; then end of stream. */
static void receive_pieces(int fd, const piece *pieces, size_t n)
{
	size_t max = 0;
	for (size_t i = 0; i < n; i++)
		max = pieces[i].want > max ? pieces[i].want : max;
	unsigned char *buf = malloc(max + 1);
	assert_non_null(buf);
	for (size_t i = 0; i < n; i++) {
		ssize_t got = rlt_recv_exact(fd, buf, pieces[i].want, 0);
		assert_int_equal(got, (ssize_t)pieces[i].want);
		check_range(buf, pieces[i].want, pieces[i].from);
	}
	assert_int_equal(rlt_recv(fd, buf, 1, 0), 0);
	free(buf);
}

typedef struct sizes_case {
	int family;
	size_t size;
} sizes_case;

static void *root_pieces(void *arg)
{
	sizes_case *c = arg;
	int file = make_file(c->size);
	size_t z = c->size;
	const piece pieces[] = {
	    {0, z, z, 0},			  /* the whole file */
	    {12345, 200 * KIB, 200 * KIB, 12345}, /* from an odd offset */
	    {(off_t)z - 777, 4096, 777, z - 777}, /* past the end: what there is */
	    {(off_t)z, 100, 0, z},		  /* at the end: nothing */
	    {1, z - 1, z - 1, 1},		  /* all but the first byte */
	    {0, SIZE_MAX / 2, z, 0},		  /* "to the end" */
	};
	int sv[2];
	connected_pair(c->family, sv);
	xfer x = {sv[0], file, pieces, sizeof(pieces) / sizeof(pieces[0])};
	rlt_task *t = rlt_spawn(sender, &x, NULL);
	assert_non_null(t);
	receive_pieces(sv[1], pieces, x.npieces);
	assert_int_equal(rlt_join(t, NULL), 0);
	/* Offsets >= 0 leave the file's position alone. */
	assert_int_equal(lseek(file, 0, SEEK_CUR), (off_t)z);
	assert_int_equal(rlt_close(sv[0]), 0);
	assert_int_equal(rlt_close(sv[1]), 0);
	drop_file(file);
	return NULL;
}

static void test_sendfile_256k_over_tcp_every_byte_arrives(void **state)
{
	sizes_case c = {AF_INET, 256 * KIB};
	rlt_test_run(root_pieces, &c);
}

static void test_sendfile_1m_over_tcp_every_byte_arrives(void **state)
{
	sizes_case c = {AF_INET, MIB};
	rlt_test_run(root_pieces, &c);
}

static void test_sendfile_256k_over_unix_every_byte_arrives(void **state)
{
	sizes_case c = {AF_UNIX, 256 * KIB};
	rlt_test_run(root_pieces, &c);
}

static void test_sendfile_1m_over_unix_every_byte_arrives(void **state)
{
	sizes_case c = {AF_UNIX, MIB};
	rlt_test_run(root_pieces, &c);
}

/* ---- offset -1: the file's position, advanced ---- */

static void *root_position(void *arg)
{
	int file = make_file(300 * KIB);
	int sv[2];
	connected_pair(AF_INET, sv);
	assert_int_equal(lseek(file, 4096, SEEK_SET), 4096);
	const piece pieces[] = {
	    {-1, 10000, 10000, 4096},
	    {-1, 100 * KIB, 100 * KIB, 14096},
	    {-1, SIZE_MAX / 2, 300 * KIB - 14096 - 100 * KIB, 14096 + 100 * KIB},
	};
	xfer x = {sv[0], file, pieces, 3};
	rlt_task *t = rlt_spawn(sender, &x, NULL);
	assert_non_null(t);
	receive_pieces(sv[1], pieces, 3);
	assert_int_equal(rlt_join(t, NULL), 0);
	assert_int_equal(lseek(file, 0, SEEK_CUR), (off_t)(300 * KIB));
	rlt_close(sv[0]);
	rlt_close(sv[1]);
	drop_file(file);
	return NULL;
}

static void test_sendfile_offset_minus_one_uses_and_advances_the_position(void **state)
{
	rlt_test_run(root_position, NULL);
}

/* ---- into a pipe ---- */

static void *pipe_sender(void *arg)
{
	xfer *x = arg;
	ssize_t n = rlt_sendfile(x->out, x->file, x->pieces[0].off, x->pieces[0].len);
	rlt_close(x->out); /* the reader's end of file */
	return (void *)(intptr_t)n;
}

static void *root_pipe(void *arg)
{
	int file = make_file(MIB);
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	const piece pieces[] = {{100, MIB - 100, MIB - 100, 100}};
	xfer x = {p[1], file, pieces, 1};
	rlt_task *t = rlt_spawn(pipe_sender, &x, NULL);
	assert_non_null(t);
	unsigned char *buf = malloc(MIB);
	assert_non_null(buf);
	assert_int_equal(rlt_read_full(p[0], buf, MIB, -1), (ssize_t)(MIB - 100));
	check_range(buf, MIB - 100, 100);
	void *res;
	assert_int_equal(rlt_join(t, &res), 0);
	assert_int_equal((intptr_t)res, (intptr_t)(MIB - 100));
	free(buf);
	rlt_close(p[0]);
	drop_file(file);
	return NULL;
}

static void test_sendfile_into_a_pipe_every_byte_arrives(void **state)
{
	rlt_test_run(root_pipe, NULL);
}

/* ---- errors ---- */

static void *root_errors(void *arg)
{
	int file = make_file(64 * KIB);
	int sv[2];
	connected_pair(AF_INET, sv);
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	/* The input must be a file. */
	assert_int_equal(rlt_sendfile(sv[0], p[0], 0, 10), -EINVAL);
	assert_int_equal(rlt_sendfile(sv[0], sv[1], 0, 10), -EINVAL);
	assert_int_equal(rlt_sendfile(sv[0], 9999, 0, 10), -EBADF);
	assert_int_equal(rlt_sendfile(sv[0], file, -2, 10), -EINVAL);
	assert_int_equal(rlt_sendfile(sv[0], file, 0, (size_t)SSIZE_MAX + 1), -EINVAL);
	assert_int_equal(rlt_sendfile(sv[0], file, 0, 0), 0);
	/* A bad output. */
	assert_int_equal(rlt_sendfile(9999, file, 0, 10), -EBADF);
	/* A peer that went away: -EPIPE or -ECONNRESET, not SIGPIPE. */
	assert_int_equal(rlt_close(sv[1]), 0);
	ssize_t n = 0;
	for (int i = 0; i < 100 && n >= 0; i++)
		n = rlt_sendfile(sv[0], file, 0, 64 * KIB);
	if (n != -EPIPE && n != -ECONNRESET)
		fail_msg("sendfile to a closed peer: %zd", n);
	rlt_close(sv[0]);
	rlt_close(p[0]);
	rlt_close(p[1]);
	drop_file(file);
	return NULL;
}

static void test_sendfile_errors(void **state)
{
	rlt_test_run(root_errors, NULL);
	/* Outside a task. */
	assert_int_equal(rlt_sendfile(1, 0, 0, 1), -EPERM);
}

/* ---- cancelled in the middle ---- */

#define BIG (16 * MIB)

typedef struct cancel_case {
	int out, file;
	atomic_bool started;
} cancel_case;

static void *big_sender(void *arg)
{
	cancel_case *c = arg;
	atomic_store(&c->started, true);
	ssize_t n = rlt_sendfile(c->out, c->file, 0, BIG);
	return (void *)(intptr_t)n;
}

static void *root_cancel(void *arg)
{
	int *family = arg;
	int file = make_file(BIG);
	for (int round = 0; round < 2; round++) {
		int sv[2];
		connected_pair(*family, sv);
		/* Small buffers: the transfer stalls long before its end. */
		int small = 64 * KIB;
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
		setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
		cancel_case c = {.out = sv[0], .file = file};
		rlt_task *t = rlt_spawn(big_sender, &c, NULL);
		assert_non_null(t);
		/* Some bytes arrive, then the sender is stuck on a full socket. */
		unsigned char *buf = malloc(BIG);
		assert_non_null(buf);
		size_t got = 0;
		/* Fault mode: the sender may stop on a fault; then nothing comes. */
		if (rlt_test_faulty())
			rlt_set_io_timeout(2 * RLT_NSEC_PER_SEC);
		while (got < 32 * KIB) {
			ssize_t n = rlt_recv(sv[1], buf + got, 32 * KIB, 0);
			if (n == -ETIMEDOUT)
				rlt_test_faulted("the sender stopped (a fault)");
			rlt_test_assert_pos(n);
			got += (size_t)n;
		}
		rlt_sleep(20 * RLT_NSEC_PER_MSEC);
		uint64_t t0 = rlt_now();
		int crc = rlt_cancel(t);
		if (crc == -EALREADY) /* (fault mode) the sender ended on a fault */
			rlt_test_faulted("the sender ended before the cancel");
		assert_int_equal(crc, 0);
		void *res;
		assert_int_equal(rlt_join(t, &res), -ECANCELED);
		assert_int_equal((intptr_t)res, -ECANCELED);
		assert_true(rlt_now() - t0 < 2 * RLT_NSEC_PER_SEC);
		/* What arrived is a prefix of the file, and not all of it. */
		assert_int_equal(rlt_close(sv[0]), 0);
		ssize_t n;
		while ((n = rlt_recv(sv[1], buf + got, BIG - got, 0)) > 0)
			got += (size_t)n;
		assert_int_equal(n, 0);
		assert_true(got < BIG);
		check_range(buf, got, 0);
		free(buf);
		rlt_close(sv[1]);
	}
	/* And the next transfer is whole (no bytes left over in a pipe). */
	int sv[2];
	connected_pair(*family, sv);
	const piece pieces[] = {{0, MIB, MIB, 0}, {5, MIB, MIB, 5}};
	xfer x = {sv[0], file, pieces, 2};
	rlt_task *t = rlt_spawn(sender, &x, NULL);
	receive_pieces(sv[1], pieces, 2);
	assert_int_equal(rlt_join(t, NULL), 0);
	rlt_close(sv[0]);
	rlt_close(sv[1]);
	drop_file(file);
	return NULL;
}

static void test_sendfile_cancelled_mid_transfer_tcp(void **state)
{
	int family = AF_INET;
	rlt_test_run1(root_cancel, &family);
}

static void test_sendfile_cancelled_mid_transfer_unix(void **state)
{
	int family = AF_UNIX;
	rlt_test_run(root_cancel, &family);
}

/* ---- a deadline scope around a stalled transfer ---- */

static void *root_deadline(void *arg)
{
	int file = make_file(BIG);
	int sv[2];
	connected_pair(AF_INET, sv);
	int small = 64 * KIB;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	/* Nobody reads: the transfer stalls, and the scope ends it. */
	rlt_scope sc;
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_scope_enter(&sc, 100 * RLT_NSEC_PER_MSEC), 0);
	assert_int_equal(rlt_sendfile(sv[0], file, 0, BIG), -ETIMEDOUT);
	assert_int_equal(rlt_scope_leave(&sc), -ETIMEDOUT);
	uint64_t took = rlt_now() - t0;
	assert_true(took >= 100 * RLT_NSEC_PER_MSEC && took < 3 * RLT_NSEC_PER_SEC);
	/* The same with the task's I/O timeout. */
	assert_int_equal(rlt_set_io_timeout(100 * RLT_NSEC_PER_MSEC), 0);
	assert_int_equal(rlt_sendfile(sv[0], file, 0, BIG), -ETIMEDOUT);
	rlt_set_io_timeout(0);
	rlt_close(sv[0]);
	rlt_close(sv[1]);
	drop_file(file);
	return NULL;
}

static void test_sendfile_stalled_ends_at_the_deadline(void **state)
{
	rlt_test_run(root_deadline, NULL);
}

/* ---- many at once ---- */

#define CONC 12

static void *conc_receiver(void *arg)
{
	int fd = (int)(intptr_t)arg;
	const piece pieces[] = {{0, 256 * KIB, 256 * KIB, 0}, {3, 256 * KIB, 256 * KIB, 3}};
	receive_pieces(fd, pieces, 2);
	return NULL;
}

static void *root_conc(void *arg)
{
	int file = make_file(300 * KIB);
	static const piece pieces[] = {{0, 256 * KIB, 256 * KIB, 0}, {3, 256 * KIB, 256 * KIB, 3}};
	int fds[CONC][2];
	xfer xs[CONC];
	rlt_task *ts[2 * CONC];
	for (int i = 0; i < CONC; i++) {
		connected_pair(i % 2 ? AF_UNIX : AF_INET, fds[i]);
		xs[i] = (xfer){fds[i][0], file, pieces, 2};
		ts[2 * i] = rlt_spawn(sender, &xs[i], NULL);
		ts[2 * i + 1] = rlt_spawn(conc_receiver, (void *)(intptr_t)fds[i][1], NULL);
	}
	for (int i = 0; i < 2 * CONC; i++)
		assert_int_equal(rlt_join(ts[i], NULL), 0);
	for (int i = 0; i < CONC; i++) {
		rlt_close(fds[i][0]);
		rlt_close(fds[i][1]);
	}
	drop_file(file);
	return NULL;
}

static void test_sendfile_twelve_transfers_at_once_arrive_intact(void **state)
{
	rlt_test_run(root_conc, NULL);
}

/* ---- injected faults (EINTR, ENOMEM, short transfers, delays) ---- */

typedef struct fault_case {
	int out, file;
} fault_case;

static void *fault_sender(void *arg)
{
	fault_case *c = arg;
	return (void *)(intptr_t)rlt_sendfile(c->out, c->file, 0, MIB);
}

/* Every splice or wait may come back -EINTR or late: each is retried or
 * waited out, and the bytes still arrive whole and in order. */
static void *root_faults(void *arg)
{
	int file = make_file(MIB);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	unsigned char *buf = malloc(MIB);
	assert_non_null(buf);
	for (int round = 0; round < 8; round++) {
		fault_case c = {sv[0], file};
		rlt_task *t = rlt_spawn(fault_sender, &c, NULL);
		assert_non_null(t);
		assert_int_equal(rlt_recv_exact(sv[1], buf, MIB, 0), (ssize_t)MIB);
		check_range(buf, MIB, 0);
		void *res;
		assert_int_equal(rlt_join(t, &res), 0);
		assert_int_equal((intptr_t)res, (intptr_t)MIB);
	}
	free(buf);
	rlt_close(sv[0]);
	rlt_close(sv[1]);
	drop_file(file);
	return NULL;
}

static void test_sendfile_under_injected_eintr_and_delays(void **state)
{
	rlt_test_run_faults("seed=11,rate=0.3,errors=EINTR,short=1,delay_us=500", root_faults,
			    NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sendfile_256k_over_tcp_every_byte_arrives),
	    cmocka_unit_test(test_sendfile_1m_over_tcp_every_byte_arrives),
	    cmocka_unit_test(test_sendfile_256k_over_unix_every_byte_arrives),
	    cmocka_unit_test(test_sendfile_1m_over_unix_every_byte_arrives),
	    cmocka_unit_test(test_sendfile_offset_minus_one_uses_and_advances_the_position),
	    cmocka_unit_test(test_sendfile_into_a_pipe_every_byte_arrives),
	    cmocka_unit_test(test_sendfile_errors),
	    cmocka_unit_test(test_sendfile_cancelled_mid_transfer_tcp),
	    cmocka_unit_test(test_sendfile_cancelled_mid_transfer_unix),
	    cmocka_unit_test(test_sendfile_stalled_ends_at_the_deadline),
	    cmocka_unit_test(test_sendfile_twelve_transfers_at_once_arrive_intact),
	    cmocka_unit_test(test_sendfile_under_injected_eintr_and_delays),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
