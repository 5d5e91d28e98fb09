/* rlt_rxq: the receive queue over a multishot receive (io_uring policies)
 * or rlt_recv (the others). Under every policy: bytes in order and whole
 * (many small sends, a large transfer with every byte checked), the end of
 * the stream after the bytes before it, a reset after them, close with a
 * reader waiting or a receive armed (the socket then really closes),
 * deadlines and cancellation, migration between workers mid-stream, and
 * the fault policy. Under io_uring: recovery when the worker's buffers run
 * out (a tiny buffer ring), backpressure when the reader is slow. */
/* Under the fault matrix (tools/ringlet faults) these scenarios receive
 * through rlt_recv with injected errors, and a task ended by one cancels
 * the others: once a fault was injected, a failed condition ends the
 * scenario, but a wrong byte still fails it (the byte checks below are
 * data checks). The fault policy's own scenario is
 * test_rxq_under_the_fault_policy, exact. */
#define RLT_TEST_FAULT_LENIENT
#include "tests/rlt_test.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/socket.h>

/* io/policy_uring.c and io/rxq.c, for the tests only. */
void rlt__uring_pbuf_knob(unsigned nbufs, unsigned size);
void rlt__rxq_counts(unsigned long *nobufs, unsigned long *backpressure);

#define SEC RLT_NSEC_PER_SEC

/* The stream's byte at offset i: not periodic at any power of two. */
static inline unsigned char pat(size_t i)
{
	return (unsigned char)(i * 131u + (i >> 11) * 7u + (i >> 19));
}

/* ---- a sender thread (plain blocking sends: independent of the workers) ---- */

typedef struct sender {
	pthread_t th;
	int fd;
	size_t total, chunk;
	int err;     /* errno of a failed send, 0 */
	bool joined; /* sender_join ran */
	size_t mark; /* the cleanup stack below sender_stop */
} sender;

static void *sender_main(void *arg)
{
	sender *s = arg;
	unsigned char buf[65536];
	size_t off = 0, k = 0;
	while (off < s->total) {
		size_t n = s->chunk ? s->chunk : 1 + (k++ * 7919) % sizeof(buf);
		if (n > s->total - off)
			n = s->total - off;
		for (size_t i = 0; i < n; i++)
			buf[i] = pat(off + i);
		size_t done = 0;
		while (done < n) {
			ssize_t w = send(s->fd, buf + done, n - done, MSG_NOSIGNAL);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				s->err = errno;
				return NULL;
			}
			done += (size_t)w;
		}
		off += n;
	}
	shutdown(s->fd, SHUT_WR);
	return NULL;
}

/* The starting task's cleanup, for a scenario ended before sender_join
 * (a failed check, or an injected fault under the fault matrix): the
 * thread uses s, on that task's stack, so it is stopped and joined first.
 * sender_join, in the same function, unwinds it (s dies with the frame). */
static void sender_stop(void *arg)
{
	sender *s = arg;
	if (s->joined)
		return;
	shutdown(s->fd, SHUT_RDWR); /* its send fails: it returns */
	pthread_join(s->th, NULL);
	s->joined = true;
}

static void sender_start(sender *s, int fd, size_t total, size_t chunk)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->total = total;
	s->chunk = chunk;
	assert_int_equal(pthread_create(&s->th, NULL, sender_main, s), 0);
	s->mark = rlt_defer_mark();
	if (rlt_defer(sender_stop, s) < 0) {
		sender_stop(s);
		fail_msg("rlt_defer: no room for the sender's cleanup");
	}
}

static void sender_join(sender *s)
{
	assert_int_equal(pthread_join(s->th, NULL), 0);
	s->joined = true;
	rlt_defer_run(s->mark); /* sender_stop: nothing left to do */
	assert_int_equal(s->err, 0);
}

/* Read the stream from offset off to its end through q (reads of varying sizes, a yield every
 * `yield_every` calls when not 0), checking every byte; returns the count
 * (the end of the stream ends it). An error fails the test. */
static size_t read_checked(rlt_rxq *q, size_t off, size_t expect, unsigned yield_every,
			   size_t maxread)
{
	/* On the heap: a task may resume on another thread, so no __thread. */
	enum { BUF = 70000 };
	unsigned char *buf = malloc(BUF);
	assert_non_null(buf);
	unsigned calls = 0;
	for (;;) {
		size_t want = 1 + (calls * 4099u) % (maxread < BUF ? maxread : BUF);
		ssize_t n = rlt_rxq_recv(q, buf, want);
		calls++;
		if (n == 0)
			break;
		if (n < 0) {
			rlt_test_fault_ends(n);
			fail_msg("rlt_rxq_recv at offset %zu of %zu: %zd", off, expect, n);
		}
		assert_true((size_t)n <= want);
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != pat(off + (size_t)i)) {
				unsigned char want_b = pat(off + (size_t)i);
				print_message("byte %zu of the stream:\n", off + (size_t)i);
				assert_memory_equal(&buf[i], &want_b, 1); /* a data check */
			}
		off += (size_t)n;
		if (yield_every && calls % yield_every == 0)
			rlt_yield();
	}
	free(buf);
	return off;
}

/* ---- many small sends from a task: order kept ---- */

enum { SMALL_MSGS = 20000 };

static void *small_sender(void *arg)
{
	int fd = *(int *)arg;
	unsigned char m[64];
	size_t off = 0;
	for (unsigned i = 0; i < SMALL_MSGS; i++) {
		size_t n = 1 + i % 37;
		for (size_t k = 0; k < n; k++)
			m[k] = pat(off + k);
		rlt_test_assert_ok(rlt_send_all(fd, m, n, 0));
		off += n;
	}
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	return NULL;
}

static void *root_small(void *arg)
{
	(void)arg;
	int sv[2];
	rlt_test_tcp_pair(sv);
	size_t total = 0;
	for (unsigned i = 0; i < SMALL_MSGS; i++)
		total += 1 + i % 37;
	rlt_rxq *q = rlt_rxq_open(sv[0]);
	assert_non_null(q);
	rlt_task *s = rlt_spawn(small_sender, &sv[1], NULL);
	assert_non_null(s);
	assert_int_equal(read_checked(q, 0, total, 0, 100), total);
	assert_int_equal(rlt_join(s, NULL), 0);
	assert_int_equal(rlt_rxq_close(q), 0);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

static void test_rxq_many_small_sends_arrive_in_order(void **state)
{
	(void)state;
	rlt_test_run(root_small, NULL);
}

/* ---- a large transfer, every byte checked ---- */

static void *root_large(void *arg)
{
	(void)arg;
	int sv[2];
	rlt_test_tcp_pair(sv);
	size_t total = (size_t)RLT_TEST_SCALE(8) << 20;
	rlt_rxq *q = rlt_rxq_open(sv[0]);
	assert_non_null(q);
	sender s;
	sender_start(&s, sv[1], total, 0);
	assert_int_equal(read_checked(q, 0, total, 0, 70000), total);
	sender_join(&s);
	/* The end is said again. */
	char b[8];
	assert_int_equal(rlt_rxq_recv(q, b, sizeof(b)), 0);
	assert_int_equal(rlt_rxq_close(q), 0);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

static void test_rxq_large_transfer_every_byte(void **state)
{
	(void)state;
	rlt_test_run(root_large, NULL);
}

/* ---- the peer's close after bytes: the bytes, then 0 ---- */

static void *root_eof(void *arg)
{
	(void)arg;
	int sv[2];
	rlt_test_tcp_pair(sv);
	rlt_rxq *q = rlt_rxq_open(sv[0]);
	assert_non_null(q);
	char b[64];
	assert_int_equal(send(sv[1], "hello", 5, 0), 5);
	assert_int_equal(rlt_rxq_recv(q, b, 1), 1); /* armed from here on */
	assert_int_equal(b[0], 'h');
	assert_int_equal(send(sv[1], " world", 6, 0), 6);
	close(sv[1]);
	size_t got = 0;
	for (;;) {
		ssize_t n = rlt_rxq_recv(q, b + got, 3);
		assert_true(n >= 0);
		if (n == 0)
			break;
		got += (size_t)n;
		assert_true(got <= 10);
	}
	assert_int_equal(got, 10);
	assert_memory_equal(b, "ello world", 10);
	assert_int_equal(rlt_rxq_recv(q, b, sizeof(b)), 0);
	assert_int_equal(rlt_rxq_close(q), 0);
	close(sv[0]);
	return NULL;
}

static void test_rxq_peer_close_after_bytes_pending(void **state)
{
	(void)state;
	rlt_test_run(root_eof, NULL);
}

/* ---- a reset: the bytes before it, then the error ---- */

static void *root_reset(void *arg)
{
	(void)arg;
	int sv[2];
	rlt_test_tcp_pair(sv);
	rlt_rxq *q = rlt_rxq_open(sv[0]);
	assert_non_null(q);
	char b[64];
	assert_int_equal(send(sv[1], "abcdef", 6, 0), 6);
	size_t got = 0;
	while (got < 3) {
		ssize_t n = rlt_rxq_recv(q, b + got, 3 - got);
		assert_true(n > 0);
		got += (size_t)n;
	}
	assert_memory_equal(b, "abc", 3);
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(sv[1]); /* RST */
	ssize_t n;
	got = 0;
	while ((n = rlt_rxq_recv(q, b + got, sizeof(b) - got)) > 0)
		got += (size_t)n;
	assert_int_equal(got, 3);
	assert_memory_equal(b, "def", 3);
	assert_int_equal(n, -ECONNRESET);
	assert_int_equal(rlt_rxq_close(q), 0);
	close(sv[0]);
	return NULL;
}

static void test_rxq_reset_after_the_bytes_before_it(void **state)
{
	(void)state;
	rlt_test_run(root_reset, NULL);
}

/* ---- close: with a reader waiting, with a receive armed ---- */

typedef struct reader_arg {
	rlt_rxq *q;
	ssize_t res;
	atomic_int in;
} reader_arg;

static void *blocked_reader(void *arg)
{
	reader_arg *a = arg;
	char b[16];
	atomic_store(&a->in, 1);
	a->res = rlt_rxq_recv(a->q, b, sizeof(b));
	return NULL;
}

/* After rlt_rxq_close and close(2) of our end, the peer sees the end of
 * the stream: no armed receive kept the socket alive. */
static void peer_sees_close(int peer)
{
	struct pollfd p = {.fd = peer, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 5000), 1);
	char c;
	ssize_t n = recv(peer, &c, 1, MSG_DONTWAIT);
	assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
}

static void *root_close_waiter(void *arg)
{
	(void)arg;
	int sv[2];
	rlt_test_tcp_pair(sv);
	rlt_rxq *q = rlt_rxq_open(sv[0]);
	assert_non_null(q);
	reader_arg a = {.q = q};
	atomic_init(&a.in, 0);
	rlt_task *r = rlt_spawn(blocked_reader, &a, NULL);
	assert_non_null(r);
	while (!atomic_load(&a.in))
		rlt_yield();
	for (int i = 0; i < 20; i++)
		rlt_yield(); /* into its wait */
	/* Busy while the reader is in: nothing changes. */
	if (rlt_rxq_close(q) == -EBUSY) {
		assert_int_equal(rlt_cancel(r), 0);
		assert_int_equal(rlt_join(r, NULL), -ECANCELED);
		assert_int_equal(a.res, -ECANCELED);
	} else {
		fail_msg("rlt_rxq_close with a reader in: want -EBUSY");
	}
	assert_int_equal(rlt_rxq_close(q), 0);
	assert_int_equal(rlt_close(sv[0]), 0);
	peer_sees_close(sv[1]);
	close(sv[1]);
	return NULL;
}

static void test_rxq_close_with_a_reader_waiting(void **state)
{
	(void)state;
	rlt_test_run(root_close_waiter, NULL);
}

static void *root_close_armed(void *arg)
{
	(void)arg;
	for (int round = 0; round < 20; round++) {
		int sv[2];
		rlt_test_tcp_pair(sv);
		rlt_rxq *q = rlt_rxq_open(sv[0]);
		assert_non_null(q);
		char b[8];
		assert_int_equal(send(sv[1], "x", 1, 0), 1);
		assert_int_equal(rlt_rxq_recv(q, b, sizeof(b)), 1);
		/* Armed (multishot), with bytes arriving or queued. */
		if (round % 2)
			assert_int_equal(send(sv[1], "yz", 2, 0), 2);
		assert_int_equal(rlt_rxq_close(q), 0);
		assert_int_equal(rlt_close(sv[0]), 0);
		peer_sees_close(sv[1]);
		close(sv[1]);
	}
	return NULL;
}

static void test_rxq_close_with_a_receive_armed_closes_the_socket(void **state)
{
	(void)state;
	rlt_test_run(root_close_armed, NULL);
}

/* ---- a deadline scope, the I/O time limit, a cancel: nothing lost ---- */

static void *root_deadline(void *arg)
{
	(void)arg;
	int sv[2];
	rlt_test_tcp_pair(sv);
	rlt_rxq *q = rlt_rxq_open(sv[0]);
	assert_non_null(q);
	char b[32];

	rlt_scope sc;
	assert_int_equal(rlt_scope_enter(&sc, 20 * RLT_NSEC_PER_MSEC), 0);
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_rxq_recv(q, b, sizeof(b)), -ETIMEDOUT);
	assert_true(rlt_now() - t0 >= 20 * RLT_NSEC_PER_MSEC);
	/* Expired: at once, also with bytes queued. */
	assert_int_equal(send(sv[1], "one", 3, 0), 3);
	assert_int_equal(rlt_rxq_recv(q, b, sizeof(b)), -ETIMEDOUT);
	rlt_scope_leave(&sc);
	assert_int_equal(rlt_rxq_recv(q, b, sizeof(b)), 3);
	assert_memory_equal(b, "one", 3);

	assert_int_equal(rlt_set_io_timeout(20 * RLT_NSEC_PER_MSEC), 0);
	t0 = rlt_now();
	assert_int_equal(rlt_rxq_recv(q, b, sizeof(b)), -ETIMEDOUT);
	assert_true(rlt_now() - t0 >= 20 * RLT_NSEC_PER_MSEC);
	assert_int_equal(rlt_set_io_timeout(0), 0);

	/* A cancel while waiting. */
	reader_arg a = {.q = q};
	atomic_init(&a.in, 0);
	rlt_task *r = rlt_spawn(blocked_reader, &a, NULL);
	assert_non_null(r);
	while (!atomic_load(&a.in))
		rlt_yield();
	for (int i = 0; i < 5; i++)
		rlt_yield();
	assert_int_equal(rlt_cancel(r), 0);
	assert_int_equal(rlt_join(r, NULL), -ECANCELED);
	assert_int_equal(a.res, -ECANCELED);

	/* What is sent after all that arrives, whole and once. */
	assert_int_equal(send(sv[1], "after", 5, 0), 5);
	size_t got = 0;
	while (got < 5) {
		ssize_t n = rlt_rxq_recv(q, b + got, sizeof(b) - got);
		assert_true(n > 0);
		got += (size_t)n;
	}
	assert_int_equal(got, 5);
	assert_memory_equal(b, "after", 5);
	close(sv[1]);
	assert_int_equal(rlt_rxq_recv(q, b, sizeof(b)), 0);
	assert_int_equal(rlt_rxq_close(q), 0);
	close(sv[0]);
	return NULL;
}

static void test_rxq_deadline_and_cancel_lose_nothing(void **state)
{
	(void)state;
	rlt_test_run(root_deadline, NULL);
}

/* A cancel that races with arriving bytes: the reader's wait may end in
 * -ECANCELED after the owner already copied bytes into its buffer (they
 * go back to the front of the queue), or with the bytes; either way the
 * next receive gets every byte, in order, once. */
typedef struct racing_reader {
	rlt_rxq *q;
	ssize_t res;
	char b[16];
	atomic_int in;
} racing_reader;

static void *racing_read(void *arg)
{
	racing_reader *a = arg;
	atomic_store(&a->in, 1);
	a->res = rlt_rxq_recv(a->q, a->b, sizeof(a->b));
	return NULL;
}

static void *root_cancel_race(void *arg)
{
	(void)arg;
	int sv[2];
	rlt_test_tcp_pair(sv);
	rlt_rxq *q = rlt_rxq_open(sv[0]);
	assert_non_null(q);
	int cancelled = 0, read = 0;
	for (int i = 0; i < RLT_TEST_SCALE(300); i++) {
		racing_reader a = {.q = q};
		atomic_init(&a.in, 0);
		/* Every other round on another worker (where there is one): the
		 * cancel then travels as a message, and the bytes' completion
		 * can come before the reader runs. */
		rlt_spawn_opts o = rlt_test_on_worker((unsigned)i & 1);
		rlt_task *r = rlt_spawn(racing_read, &a, &o);
		assert_non_null(r);
		while (!atomic_load(&a.in))
			rlt_yield();
		for (int k = 0; k < i % 4; k++)
			rlt_yield();
		char want[16];
		assert_int_equal(snprintf(want, sizeof(want), "m%05d", i), 6);
		assert_int_equal(send(sv[1], want, 6, 0), 6);
		int c = rlt_cancel(r); /* -EALREADY: it had the bytes and ended */
		assert_true(c == 0 || c == -EALREADY);
		rlt_join(r, NULL);
		char got[16];
		size_t n = 0;
		if (a.res > 0) {
			memcpy(got, a.b, (size_t)a.res);
			n = (size_t)a.res;
			read++;
		} else {
			assert_int_equal(a.res, -ECANCELED);
			cancelled++;
		}
		while (n < 6) {
			ssize_t k = rlt_rxq_recv(q, got + n, 6 - n);
			assert_true(k > 0);
			n += (size_t)k;
		}
		assert_memory_equal(got, want, 6);
	}
	print_message("(cancelled first %d times, bytes first %d times)\n", cancelled, read);
	assert_int_equal(rlt_rxq_close(q), 0);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

static void test_rxq_cancel_racing_bytes_loses_nothing(void **state)
{
	(void)state;
	rlt_test_run(root_cancel_race, NULL);
}

/* ---- the worker's buffers run out (-ENOBUFS): armed again ---- */

static void *root_nobufs(void *arg)
{
	(void)arg;
	int sv[2];
	rlt_test_tcp_pair(sv);
	rlt_rxq *q = rlt_rxq_open(sv[0]);
	assert_non_null(q);
	unsigned long nb0, bp0, nb1, bp1;
	rlt__rxq_counts(&nb0, &bp0);
	size_t total = (size_t)RLT_TEST_SCALE(4) << 20;
	sender s;
	sender_start(&s, sv[1], total, 0);
	assert_int_equal(read_checked(q, 0, total, 0, 70000), total);
	sender_join(&s);
	rlt__rxq_counts(&nb1, &bp1);
	if (rlt_rxq_multishot(q) && nb1 == nb0)
		fail_msg("no arming ended with -ENOBUFS on a ring of 2 buffers");
	assert_int_equal(rlt_rxq_close(q), 0);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

static void test_rxq_recovers_when_buffers_run_out(void **state)
{
	(void)state;
	rlt__uring_pbuf_knob(2, 4096);
	rlt_test_run(root_nobufs, NULL);
	rlt__uring_pbuf_knob(0, 0);
}

/* ---- a slow reader: the receive stops at the cap, nothing lost ---- */

static void *root_backpressure(void *arg)
{
	(void)arg;
	int sv[2];
	rlt_test_tcp_pair(sv);
	rlt_rxq *q = rlt_rxq_open(sv[0]);
	assert_non_null(q);
	unsigned long nb0, bp0, nb1, bp1;
	rlt__rxq_counts(&nb0, &bp0);
	size_t total = (size_t)RLT_TEST_SCALE(4) << 20;
	sender s;
	sender_start(&s, sv[1], total, 65536);
	/* Armed by a first byte, then not read until the queue has filled
	 * and the receive has stopped (multishot: it must, the sender has
	 * more than the queue holds). */
	unsigned char first;
	ssize_t n = rlt_rxq_recv(q, &first, 1);
	assert_int_equal(n, 1);
	assert_int_equal(first, pat(0));
	uint64_t end = rlt_now() + 10 * SEC;
	while (rlt_rxq_multishot(q) && rlt_now() < end) {
		rlt__rxq_counts(&nb1, &bp1);
		if (bp1 != bp0)
			break;
		rlt_yield();
	}
	/* The rest in small reads, a yield after each: the kernel delivers
	 * faster, so the queue fills again. */
	assert_int_equal(read_checked(q, 1, total, 1, 2048), total);
	sender_join(&s);
	rlt__rxq_counts(&nb1, &bp1);
	if (rlt_rxq_multishot(q) && bp1 == bp0)
		fail_msg("the receive was never stopped for a full queue");
	assert_int_equal(rlt_rxq_close(q), 0);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

static void test_rxq_backpressure_with_a_slow_reader(void **state)
{
	(void)state;
	rlt_test_run(root_backpressure, NULL);
}

/* ---- the reader moves between workers mid-stream ---- */

static atomic_int moved;

/* Holds its worker (never suspends) until the reader has been taken by
 * the other worker, or 5 s (test_errno.c's way to move a task). */
static void *hold_worker(void *arg)
{
	(void)arg;
	uint64_t end = rlt_now() + 5 * SEC;
	while (!atomic_load(&moved) && rlt_now() < end)
		__asm__ volatile("" ::: "memory");
	return NULL;
}

static int migrate(void)
{
	int from = rlt_worker_index();
	atomic_store(&moved, 0);
	rlt_spawn_opts o = {.flags = RLT_SPAWN_PINNED | RLT_SPAWN_DETACHED};
	assert_non_null(rlt_spawn(hold_worker, NULL, &o));
	uint64_t end = rlt_now() + 10 * SEC;
	while (rlt_worker_index() == from && rlt_now() < end)
		rlt_yield();
	atomic_store(&moved, 1);
	return rlt_worker_index() != from;
}

static void *migrating_reader(void *arg)
{
	rlt_rxq *q = arg;
	static unsigned char buf[8192];
	size_t total = (size_t)RLT_TEST_SCALE(4) << 20, off = 0;
	int moves = 0;
	size_t next_move = 1;
	while (off < total) {
		ssize_t n = rlt_rxq_recv(q, buf, sizeof(buf));
		if (n <= 0)
			fail_msg("rlt_rxq_recv at %zu: %zd", off, n);
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != pat(off + (size_t)i)) {
				unsigned char want_b = pat(off + (size_t)i);
				print_message("byte %zu after %d moves:\n", off + (size_t)i, moves);
				assert_memory_equal(&buf[i], &want_b, 1); /* a data check */
			}
		off += (size_t)n;
		if (off >= next_move) {
			moves += migrate();
			next_move = off + total / 8;
		}
	}
	char b[4];
	assert_int_equal(rlt_rxq_recv(q, b, sizeof(b)), 0);
	assert_true(moves >= 4);
	return NULL;
}

static void *root_migrate(void *arg)
{
	(void)arg;
	int sv[2];
	rlt_test_tcp_pair(sv);
	rlt_rxq *q = rlt_rxq_open(sv[0]);
	assert_non_null(q);
	sender s;
	sender_start(&s, sv[1], (size_t)RLT_TEST_SCALE(4) << 20, 0);
	rlt_task *r = rlt_spawn(migrating_reader, q, NULL);
	assert_non_null(r);
	assert_int_equal(rlt_join(r, NULL), 0);
	sender_join(&s);
	/* Closed from yet another task, whatever worker the arming is on. */
	assert_int_equal(rlt_rxq_close(q), 0);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

static void test_rxq_reader_moves_between_workers(void **state)
{
	(void)state;
	rlt_config cfg = {.workers = 2};
	assert_int_equal(rlt_run(root_migrate, NULL, &cfg, NULL), 0);
}

/* ---- the fault policy: rlt_recv underneath, errors reported ---- */

static void *root_faults(void *arg)
{
	(void)arg;
	int sv[2];
	rlt_test_tcp_pair(sv);
	rlt_rxq *q = rlt_rxq_open(sv[0]);
	assert_non_null(q);
	assert_false(rlt_rxq_multishot(q));
	size_t total = 1 << 20, off = 0;
	sender s;
	sender_start(&s, sv[1], total, 0);
	static unsigned char buf[4096];
	unsigned errors = 0;
	for (;;) {
		ssize_t n = rlt_rxq_recv(q, buf, sizeof(buf));
		if (n == 0)
			break;
		if (n < 0) {
			if (!rlt_test_injected(n))
				fail_msg("rlt_rxq_recv: %zd, not an injected error", n);
			errors++;
			continue;
		}
		for (ssize_t i = 0; i < n; i++)
			assert_int_equal(buf[i], pat(off + (size_t)i));
		off += (size_t)n;
	}
	assert_int_equal(off, total);
	assert_true(errors > 0);
	sender_join(&s);
	assert_int_equal(rlt_rxq_close(q), 0);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

static void test_rxq_under_the_fault_policy(void **state)
{
	(void)state;
	rlt_test_run_faults("seed=5,rate=0.2,errors=EINTR+EAGAIN+ENOMEM,short=1", root_faults,
			    NULL);
}

/* ---- arguments ---- */

static void *root_args(void *arg)
{
	(void)arg;
	assert_null(rlt_rxq_open(-1));
	assert_int_equal(errno, EBADF);
	int sv[2];
	rlt_test_tcp_pair(sv);
	rlt_rxq *q = rlt_rxq_open(sv[0]);
	assert_non_null(q);
	assert_int_equal(rlt_rxq_recv(NULL, sv, 1), -EINVAL);
	assert_int_equal(rlt_rxq_recv(q, NULL, 1), -EINVAL);
	assert_int_equal(rlt_rxq_close(q), 0); /* never armed */
	assert_int_equal(rlt_rxq_close(NULL), 0);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

static void test_rxq_bad_arguments(void **state)
{
	(void)state;
	assert_null(rlt_rxq_open(0)); /* not in a task */
	assert_int_equal(errno, EPERM);
	rlt_test_run(root_args, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rxq_many_small_sends_arrive_in_order),
	    cmocka_unit_test(test_rxq_large_transfer_every_byte),
	    cmocka_unit_test(test_rxq_peer_close_after_bytes_pending),
	    cmocka_unit_test(test_rxq_reset_after_the_bytes_before_it),
	    cmocka_unit_test(test_rxq_close_with_a_reader_waiting),
	    cmocka_unit_test(test_rxq_close_with_a_receive_armed_closes_the_socket),
	    cmocka_unit_test(test_rxq_deadline_and_cancel_lose_nothing),
	    cmocka_unit_test(test_rxq_cancel_racing_bytes_loses_nothing),
	    cmocka_unit_test(test_rxq_recovers_when_buffers_run_out),
	    cmocka_unit_test(test_rxq_backpressure_with_a_slow_reader),
	    cmocka_unit_test(test_rxq_reader_moves_between_workers),
	    cmocka_unit_test(test_rxq_under_the_fault_policy),
	    cmocka_unit_test(test_rxq_bad_arguments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
