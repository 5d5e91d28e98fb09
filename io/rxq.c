/*
 * Receive queues (include/ringlet/rxq.h): a connection's receive side over
 * one multishot receive where the loop policy has it
 * (RLT_POLICY_MULTISHOT_RECV), over rlt_recv elsewhere. The acceptor's
 * shape (io/acceptor.c) with bytes instead of connections.
 */
#include "ringlet/rxq.h"

#include "ringlet/io.h"

#include "io/ops.h"
#include "runtime/alloc.h"
#include "runtime/cancel.h"
#include "runtime/oneshot.h"
#include "runtime/waitq.h" /* rlt__spin */
#include "sched/sched.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

/*
 * One RLT_OP_RECV_MULTI is "armed" on the loop of the worker the reader
 * ran on when it armed it (the owner). The owner's thread hears every
 * chunk (the op's sink, rxq_result), copies it into the byte FIFO and
 * wakes the reader, which takes the bytes from any worker. Everything
 * below `lock` is guarded by it: the owner's sink and stop message and the
 * reader each hold it for a copy and a few flags, never across a
 * suspension. (A spinlock rather than a lock-free ring: the two sides meet
 * on it once per chunk, the FIFO must grow, and the wake-up decision has
 * to be atomic with the bytes; uncontended it is two atomics.)
 *
 * The reader's wake-up is `tok`, a oneshot it resets and registers on only
 * after setting `want` under the lock; whoever changes what the reader
 * waits for (bytes, the end, the stop) fires it under the lock if `want`,
 * and clears `want`. So no wake-up is lost, none is stale, and the owner
 * touches nothing of the queue after the unlock that follows its last act
 * (the end of the arming, or the stop message): from then on the reader
 * may arm again (the op is reused) or free the queue.
 *
 * Arming: only the reader arms, on its own worker, when no arming is live
 * (the last one's end was heard). An arming ends by the peer's close (eof),
 * an error (err, reported after the bytes before it), -ENOBUFS (the
 * worker's buffers ran out: armed again at the next call), or a cancel:
 * the owner's, when the FIFO holds RXQ_CAP bytes or more (backpressure:
 * armed again once the reader has taken it down to half), or close's.
 */
#define RXQ_CAP	 ((size_t)64 * 1024)
#define RXQ_MIN	 ((size_t)4096) /* the FIFO's first size */
#define RXQ_KIND (RLT__WK_IO | (unsigned)RLT_OP_RECV_MULTI << 8)

struct rlt_rxq {
	rlt__op_sink sink;
	rlt_op op;
	rlt__msg stop_msg;
	rlt__oneshot tok;
	int fd;
	atomic_bool multishot; /* the policy can; otherwise rlt_recv (rlt_rxq_multishot:
				* read from any thread, so atomic) */
	atomic_bool busy;      /* a task is in recv or close */
	/* The reader's: the owner is only read on its own thread while the
	 * arming it runs is live, and written by the reader before it arms. */
	struct rlt__worker *owner;
	rlt__spin lock;
	/* ---- under lock ---- */
	char *buf;
	size_t size, head, len; /* the FIFO: len bytes from head, wrapping at size */
	bool live;		/* an arming is on (reader sets, the owner's end clears) */
	bool stopping;		/* the owner asked the kernel to end it */
	bool want;		/* the reader waits on tok */
	/* While the reader waits with nothing queued: its buffer, which the
	 * owner's sink fills directly (one copy instead of two: the FIFO is
	 * used only for what comes while the reader is not waiting, or does
	 * not fit), and how much it put there. */
	char *dst;
	size_t dst_len, dst_got;
	bool eof;	  /* the peer closed: 0 once the FIFO is empty */
	bool stop_ran;	  /* close's stop message ran on the owner */
	bool unsupported; /* the policy could not arm (no buffer ring): rlt_recv */
	int err;	  /* to report after the bytes (negative errno), 0 */
};

/* For the tests (tests/test_io_rxq.c): armings ended by -ENOBUFS, and
 * stopped for backpressure, in this process. */
static atomic_ulong n_nobufs, n_backpressure;
void rlt__rxq_counts(unsigned long *nobufs, unsigned long *backpressure);
void rlt__rxq_counts(unsigned long *nobufs, unsigned long *backpressure)
{
	*nobufs = atomic_load_explicit(&n_nobufs, memory_order_relaxed);
	*backpressure = atomic_load_explicit(&n_backpressure, memory_order_relaxed);
}
bool rlt_rxq_multishot(const rlt_rxq *q)
{
	return q && atomic_load_explicit(&q->multishot, memory_order_relaxed);
}

/* Under lock: append n bytes, growing the FIFO (never past what the kernel
 * sent: the chunk is taken whole). -ENOMEM if it cannot grow. */
static int fifo_put(rlt_rxq *q, const char *p, size_t n)
{
	if (q->len + n > q->size) {
		size_t sz = q->size ? q->size : RXQ_MIN;
		while (sz < q->len + n)
			sz *= 2;
		char *nb = rlt__malloc(sz);
		if (!nb)
			return -ENOMEM;
		size_t first = q->size - q->head < q->len ? q->size - q->head : q->len;
		if (q->len) {
			memcpy(nb, q->buf + q->head, first);
			memcpy(nb + first, q->buf, q->len - first);
		}
		rlt__free(q->buf);
		q->buf = nb;
		q->size = sz;
		q->head = 0;
	}
	size_t tail = (q->head + q->len) % q->size;
	size_t first = q->size - tail < n ? q->size - tail : n;
	memcpy(q->buf + tail, p, first);
	memcpy(q->buf, p + first, n - first);
	q->len += n;
	return 0;
}

/* Under lock: take up to n bytes. An emptied FIFO of the first size gives
 * its memory back: with the reader's buffer filled directly, request and
 * response traffic needs it only for the odd burst, and an idle
 * connection then holds none. A larger one (a stream that outruns its
 * reader) is kept for the next burst: growing it again by doubling, with
 * a copy each time, cost bulk transfers a fifth of their rate. */
static size_t fifo_take(rlt_rxq *q, char *out, size_t n)
{
	if (n > q->len)
		n = q->len;
	if (!n)
		return 0;
	size_t first = q->size - q->head < n ? q->size - q->head : n;
	memcpy(out, q->buf + q->head, first);
	memcpy(out + first, q->buf, n - first);
	q->head = (q->head + n) % q->size;
	q->len -= n;
	if (!q->len) {
		q->head = 0;
		if (q->size <= RXQ_MIN) {
			rlt__free(q->buf);
			q->buf = NULL;
			q->size = 0;
		}
	}
	return n;
}

/* Under lock: put n bytes back in front of the FIFO (the reader's wait
 * ended in an error after the sink had filled its buffer: the bytes wait
 * for the next call, before anything queued after them). */
static int fifo_unshift(rlt_rxq *q, const char *p, size_t n)
{
	if (!q->len)
		return fifo_put(q, p, n);
	size_t sz = RXQ_MIN;
	while (sz < q->len + n)
		sz *= 2;
	char *nb = rlt__malloc(sz);
	if (!nb)
		return -ENOMEM;
	memcpy(nb, p, n);
	size_t len = q->len;
	fifo_take(q, nb + n, len);
	rlt__free(q->buf); /* (fifo_take kept it if it was large) */
	q->buf = nb;
	q->size = sz;
	q->head = 0;
	q->len = n + len;
	return 0;
}

/* Under lock: the reader waits for what just changed. */
static inline void wake_reader(rlt_rxq *q)
{
	if (q->want) {
		q->want = false;
		rlt__oneshot_fire(&q->tok);
	}
}

/* Under lock, on the owner's thread: ask the kernel to end the arming. */
static void rxq_stop(rlt_rxq *q)
{
	if (q->live && !q->stopping) {
		q->stopping = true;
		rlt__op_cancel_multi(q->owner, &q->op);
	}
}

/* The op's sink, on the owner's thread. */
static void rxq_result(rlt__op_sink *s, rlt_op *op, int32_t res, bool more)
{
	rlt_rxq *q = (rlt_rxq *)(void *)s;
	rlt__spin_lock(&q->lock);
	const char *data = op->u.recvm.data;
	size_t nbytes = res > 0 ? (size_t)res : 0;
	if (nbytes && q->dst) {
		/* The reader waits with nothing queued: straight into its buffer. */
		size_t d = nbytes < q->dst_len ? nbytes : q->dst_len;
		memcpy(q->dst, data, d);
		q->dst_got = d;
		q->dst = NULL;
		data += d;
		nbytes -= d;
	}
	if (nbytes && fifo_put(q, data, nbytes) < 0) {
		if (!q->err)
			q->err = -ENOMEM;
		if (more)
			rxq_stop(q);
	}
	if (!more) {
		q->live = false;
		if (res == 0)
			q->eof = true;
		else if (res == -EOPNOTSUPP)
			q->unsupported = true;
		else if (res == -ENOBUFS)
			atomic_fetch_add_explicit(&n_nobufs, 1, memory_order_relaxed);
		else if (res < 0 && res != -ECANCELED && res != -EINTR && res != -EAGAIN && !q->err)
			q->err = res;
	} else if (res < 0 && res != -EINTR && res != -EAGAIN) {
		/* (not expected of a receive: reported, and the arming ended) */
		if (!q->err)
			q->err = res;
		rxq_stop(q);
	} else if (q->len >= RXQ_CAP && !q->stopping) {
		atomic_fetch_add_explicit(&n_backpressure, 1, memory_order_relaxed);
		rxq_stop(q); /* backpressure */
	}
	wake_reader(q);
	rlt__spin_unlock(&q->lock); /* the last touch after an end */
}

static void rxq_stop_msg(struct rlt__worker *w, rlt__msg *m)
{
	(void)w;
	rlt_rxq *q = (rlt_rxq *)(void *)((char *)m - offsetof(rlt_rxq, stop_msg));
	rlt__spin_lock(&q->lock);
	rxq_stop(q);
	q->stop_ran = true;
	wake_reader(q);
	rlt__spin_unlock(&q->lock); /* the last touch */
}

rlt_rxq *rlt_rxq_open(int fd)
{
	rlt_task *t = rlt__task_self();
	if (!t) {
		errno = EPERM;
		return NULL;
	}
	if (fd < 0) {
		errno = EBADF;
		return NULL;
	}
	rlt_rxq *q = rlt__calloc(1, sizeof(*q));
	if (!q) {
		errno = ENOMEM;
		return NULL;
	}
	q->sink.result = rxq_result;
	q->stop_msg.fn = rxq_stop_msg;
	q->fd = fd;
	atomic_init(&q->multishot, rlt__op_rxq_multishot(t));
	rlt__oneshot_init(&q->tok);
	rlt__spin_init(&q->lock);
	atomic_init(&q->busy, false);
	return q;
}

/* Arm on t's worker. The reader set live under the lock; the last arming's
 * owner is done with the op. Not under the lock: a policy may complete the
 * op inside submit, and its sink takes the lock. */
static void rxq_arm(rlt_rxq *q, rlt_task *t)
{
	memset(&q->op, 0, sizeof(q->op));
	q->op.code = RLT_OP_RECV_MULTI;
	q->op.fd = q->fd;
	rlt__op_submit_multi(t, &q->op, &q->sink, &q->owner);
}

/* Under lock: whether the reader should arm now (and then marks it live). */
static inline bool want_arm(rlt_rxq *q)
{
	if (q->live || q->eof || q->err || q->unsupported || q->len > RXQ_CAP / 2)
		return false;
	q->live = true;
	q->stopping = false;
	return true;
}

/* Under lock, and unlocks: the reader has got bytes in out (the sink's),
 * adds what is queued up to n, arms again if the arming has ended and the
 * queue has room, and returns the count. */
static ssize_t take_and_go(rlt_rxq *q, rlt_task *t, char *out, size_t n, size_t got)
{
	got += fifo_take(q, out + got, n - got);
	bool arm = want_arm(q);
	rlt__spin_unlock(&q->lock);
	if (arm)
		rxq_arm(q, t);
	return (ssize_t)got;
}

static ssize_t rxq_recv(rlt_rxq *q, rlt_task *t, char *out, size_t n)
{
	/* A cancellation point, as rlt_recv's entry is. */
	if (__builtin_expect(t->deadline != UINT64_MAX, 0) && rlt__scope_expired(t))
		return rlt__cancel_point(t) ? -ECANCELED : -ETIMEDOUT;
	int c = rlt__cancel_point(t);
	if (c)
		return c;
	int64_t limit = t->io_timeout > 0 ? t->io_timeout : -1;
	for (;;) {
		rlt__spin_lock(&q->lock);
		if (q->len)
			return take_and_go(q, t, out, n, 0);
		if (q->err) {
			int e = q->err;
			q->err = 0;
			rlt__spin_unlock(&q->lock);
			return e;
		}
		if (q->eof) {
			rlt__spin_unlock(&q->lock);
			return 0;
		}
		if (q->unsupported) {
			rlt__spin_unlock(&q->lock);
			atomic_store_explicit(&q->multishot, false, memory_order_relaxed);
			return rlt_recv(q->fd, out, n, 0);
		}
		bool arm = want_arm(q);
		q->want = true;
		q->dst = out;
		q->dst_len = n;
		q->dst_got = 0;
		atomic_store_explicit(&q->tok.state, RLT__ONESHOT_EMPTY, memory_order_relaxed);
		rlt__spin_unlock(&q->lock);
		if (arm)
			rxq_arm(q, t);
		int rc = rlt__oneshot_wait_t(t, &q->tok, limit, RXQ_KIND);
		rlt__spin_lock(&q->lock);
		q->want = false;
		q->dst = NULL;
		size_t got = q->dst_got;
		q->dst_got = 0;
		if (got && rc < 0 && fifo_unshift(q, out, got) < 0 && !q->err)
			q->err = -ENOMEM; /* (bytes lost: said at the next call) */
		if (got && rc == 0)	  /* and what came after them, while we were woken */
			return take_and_go(q, t, out, n, got);
		rlt__spin_unlock(&q->lock);
		if (rc < 0)
			return rc; /* nothing taken: what came waits for the next call */
	}
}

ssize_t rlt_rxq_recv(rlt_rxq *q, void *buf, size_t len)
{
	if (!q || (!buf && len))
		return -EINVAL;
	rlt_task *t = rlt__task_self();
	if (!t)
		return -EPERM;
	if (atomic_exchange_explicit(&q->busy, true, memory_order_acquire))
		return -EBUSY;
	ssize_t n;
	if (!atomic_load_explicit(&q->multishot, memory_order_relaxed))
		n = rlt_recv(q->fd, buf, len, 0);
	else if (!len)
		n = rlt_recv(q->fd, buf, 0, 0); /* as rlt_recv: checks the socket */
	else
		n = rxq_recv(q, t, buf, len);
	atomic_store_explicit(&q->busy, false, memory_order_release);
	return n;
}

int rlt_rxq_close(rlt_rxq *q)
{
	if (!q)
		return 0;
	if (atomic_exchange_explicit(&q->busy, true, memory_order_acquire))
		return -EBUSY;
	rlt__spin_lock(&q->lock);
	bool live = q->live;
	rlt__spin_unlock(&q->lock);
	if (live) {
		rlt_task *t = rlt__task_self();
		if (!t) {
			atomic_store_explicit(&q->busy, false, memory_order_release);
			return -EPERM; /* an arming can only be stopped from a task */
		}
		rlt__worker_post(q->owner, &q->stop_msg);
		for (;;) {
			rlt__spin_lock(&q->lock);
			if (!q->live && q->stop_ran) {
				rlt__spin_unlock(&q->lock);
				break;
			}
			q->want = true;
			atomic_store_explicit(&q->tok.state, RLT__ONESHOT_EMPTY,
					      memory_order_relaxed);
			rlt__spin_unlock(&q->lock);
			(void)rlt__oneshot_wait_t(t, &q->tok, -1, RXQ_KIND | RLT__WAIT_NOCANCEL);
		}
	}
	rlt__free(q->buf);
	rlt__free(q);
	return 0;
}
