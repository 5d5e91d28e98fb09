/*
 * Acceptors (include/ringlet/net.h): an accept loop over one multishot
 * accept where the loop policy has it (RLT_POLICY_MULTISHOT), over
 * rlt_net_accept elsewhere. The multishot op goes through io/ops.c like
 * every other operation.
 */
#include "ringlet/cancel.h"
#include "ringlet/chan.h"
#include "ringlet/io.h"
#include "ringlet/net.h"

#include "io/fdgen.h"
#include "io/net.h"
#include "io/ops.h"
#include "runtime/alloc.h"
#include "sched/sched.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

/* ---- acceptors: multishot accept behind a queue ---- */

/*
 * One multishot accept (RLT_OP_ACCEPT_MULTI) is "armed" on the loop of the
 * worker the consumer task ran on when it armed it (the owner); the
 * owner's thread gets every result (the op's sink) and queues it in a
 * channel, which the consumer reads from any worker. Values in the channel:
 *   Q_END      the arming ended: end_res and spill are now the consumer's
 *   Q_STOPPED  the owner ran the close's stop message: nothing more of it
 *   >= Q_FD0   a new connection, fd + Q_FD0
 *   < 0        an error the kernel reported without ending the arming
 * Only the owner's thread sends, the consumer only takes, so a length
 * checked before a send stays true. Connections go to the channel while
 * fewer than QCAP - 2 values are queued, which keeps a slot each for
 * Q_END and Q_STOPPED; beyond that they wait in spill, and the owner
 * cancels the arming (backpressure: the kernel's backlog holds the rest
 * until the consumer catches up and arms again). Nothing of the owner's
 * touches the acceptor after it sent Q_END or Q_STOPPED: the consumer may
 * free it from then on.
 */
#define QCAP	  64
#define Q_END	  ((intptr_t)0)
#define Q_STOPPED ((intptr_t)1)
#define Q_FD0	  ((intptr_t)2)

struct rlt_acceptor {
	rlt__op_sink sink;
	rlt_op op;
	rlt_chan *q;
	struct rlt__worker *owner; /* the worker whose loop runs the arming */
	rlt__msg stop_msg;
	int lfd;
	unsigned flags;
	bool multishot;	  /* the policy can; otherwise next is rlt_net_accept */
	unsigned backoff; /* the consumer's: rlt__accept_backoff's step */
	atomic_bool busy; /* a task is in next or close */
	/* The consumer's: an arming is on whose Q_END has not been taken. */
	bool armed;
	/* The owner's thread's while an arming lives, the consumer's after
	 * Q_END (handed over through the channel's lock). */
	bool live;     /* the arming has not ended */
	bool stopping; /* a cancel of the arming was asked */
	int32_t end_res;
	int *spill;
	size_t nspill, spill_head, spill_cap;
};

static void acc_stop(rlt_acceptor *a, struct rlt__worker *w)
{
	if (a->live && !a->stopping) {
		a->stopping = true;
		rlt__op_cancel_multi(w, &a->op);
	}
}

/* Owner's thread: queue one result of the arming. */
static void acc_put(rlt_acceptor *a, int32_t res)
{
	if (rlt_chan_len(a->q) < QCAP - 2) {
		intptr_t v = res >= 0 ? (intptr_t)res + Q_FD0 : (intptr_t)res;
		(void)rlt_chan_try_send(a->q, (void *)v); /* room: see above */
		return;
	}
	if (res >= 0) {
		if (a->nspill == a->spill_cap) {
			size_t cap = a->spill_cap ? a->spill_cap * 2 : 16;
			int *p = rlt__realloc(a->spill, cap * sizeof(*p));
			if (!p) {
				rlt__close_fd(res); /* no memory: the client sees a reset */
				res = -ENOMEM;
			} else {
				a->spill = p;
				a->spill_cap = cap;
			}
		}
		if (res >= 0)
			a->spill[a->nspill++] = res;
	}
	/* (an error with the queue full is dropped: the arming goes on) */
	acc_stop(a, a->owner);
}

static void acc_result(rlt__op_sink *s, rlt_op *op, int32_t res, bool more)
{
	(void)op;
	rlt_acceptor *a = (rlt_acceptor *)(void *)s;
	if (more) {
		acc_put(a, res);
		return;
	}
	a->live = false;
	if (res >= 0) { /* the last connection came with the end */
		acc_put(a, res);
		res = 0;
	}
	a->end_res = res;
	(void)rlt_chan_try_send(a->q, (void *)Q_END); /* a reserved slot; last touch */
}

/* A value taken from the queue that is a connection: close it. */
static void acc_close_queued(intptr_t x)
{
	if (x >= Q_FD0)
		rlt__close_fd((int)(x - Q_FD0));
}

static void acc_stop_msg(struct rlt__worker *w, rlt__msg *m)
{
	rlt_acceptor *a = (rlt_acceptor *)(void *)((char *)m - offsetof(rlt_acceptor, stop_msg));
	acc_stop(a, w);
	(void)rlt_chan_try_send(a->q, (void *)Q_STOPPED); /* a reserved slot; last touch */
}

rlt_acceptor *rlt_acceptor_open(int lfd, unsigned flags)
{
	rlt_task *t = rlt__task_self();
	if (!t) {
		errno = EPERM;
		return NULL;
	}
	if (lfd < 0 || (flags & ~RLT_NET_NODELAY)) {
		errno = lfd < 0 ? EBADF : EINVAL;
		return NULL;
	}
	rlt_acceptor *a = rlt__calloc(1, sizeof(*a));
	if (!a || !(a->q = rlt_chan_new(QCAP))) {
		rlt__free(a);
		errno = ENOMEM;
		return NULL;
	}
	a->sink.result = acc_result;
	a->stop_msg.fn = acc_stop_msg;
	a->lfd = lfd;
	a->flags = flags;
	a->multishot = (rlt__op_policy_flags(t) & RLT_POLICY_MULTISHOT) != 0;
	atomic_init(&a->busy, false);
	return a;
}

/* Start an arming on the calling task's worker. */
static void acc_arm(rlt_acceptor *a, rlt_task *t)
{
	a->armed = a->live = true;
	a->stopping = false;
	a->end_res = 0;
	memset(&a->op, 0, sizeof(a->op));
	a->op.code = RLT_OP_ACCEPT_MULTI;
	a->op.fd = a->lfd;
	a->op.u.accept.flags = SOCK_CLOEXEC;
	rlt__op_submit_multi(t, &a->op, &a->sink, &a->owner);
}

/* A connection taken from the queue: the flags, the peer. -1: it is gone
 * already (reset before we got to it), take the next. */
static int acc_finish(rlt_acceptor *a, int fd, rlt_addr *peer)
{
	if (a->flags & RLT_NET_NODELAY) {
		int rc = rlt__net_nodelay(fd);
		if (rc < 0)
			return rlt__net_fail_close(fd, rc); /* as rlt_net_accept */
	}
	if (peer) {
		socklen_t len = sizeof(peer->ss);
		if (getpeername(fd, (struct sockaddr *)&peer->ss, &len) < 0) {
			int err = errno;
			rlt__close_fd(fd);
			return err == ENOTCONN ? -1 : -err;
		}
		peer->len = len;
	}
	return fd;
}

static int acc_next(rlt_acceptor *a, rlt_task *t, rlt_addr *peer)
{
	for (;;) {
		void *v;
		int rc = rlt_chan_try_recv(a->q, &v);
		if (rc == -EAGAIN) {
			if (!a->armed) {
				if (a->nspill) {
					int fd = a->spill[a->spill_head++];
					if (--a->nspill == 0)
						a->spill_head = 0;
					fd = acc_finish(a, fd, peer);
					if (fd == -1)
						continue;
					return fd;
				}
				int e = a->end_res;
				a->end_res = 0;
				if (e == -EAGAIN) { /* an O_NONBLOCK listener ran dry */
					int ev = rlt_poll(a->lfd, POLLIN);
					if (ev < 0 && ev != -EINTR && ev != -EAGAIN)
						return ev;
				} else if (e < 0 && e != -ECANCELED && e != -EINTR) {
					/* -EMFILE, -EBADF, -EINVAL, ...: said once; out of
					 * descriptors, after a pause (no spinning). */
					if (rlt__accept_starved(e)) {
						int brc = rlt__accept_backoff(&a->backoff);
						if (brc < 0)
							return brc;
					}
					return e;
				}
				acc_arm(a, t);
			}
			rc = rlt_chan_recv(a->q, &v);
		}
		if (rc < 0)
			return rc; /* -ECANCELED, -ETIMEDOUT: the arming goes on */
		intptr_t x = (intptr_t)v;
		if (x == Q_END) {
			a->armed = false;
			continue;
		}
		if (x < 0) {
			if (x == -EINTR || x == -EAGAIN)
				continue;
			if (rlt__accept_starved((int)x)) {
				int brc = rlt__accept_backoff(&a->backoff);
				if (brc < 0)
					return brc;
			}
			return (int)x;
		}
		a->backoff = 0;
		int fd = acc_finish(a, (int)(x - Q_FD0), peer);
		if (fd != -1)
			return fd;
	}
}

int rlt_acceptor_next(rlt_acceptor *a, rlt_addr *peer)
{
	if (!a)
		return -EINVAL;
	rlt_task *t = rlt__task_self();
	if (!t)
		return -EPERM;
	if (atomic_exchange_explicit(&a->busy, true, memory_order_acquire))
		return -EBUSY;
	int rc = a->multishot ? acc_next(a, t, peer) : rlt_net_accept(a->lfd, peer, a->flags);
	atomic_store_explicit(&a->busy, false, memory_order_release);
	return rc;
}

int rlt_acceptor_close(rlt_acceptor *a)
{
	if (!a)
		return 0;
	if (atomic_exchange_explicit(&a->busy, true, memory_order_acquire))
		return -EBUSY;
	if (a->armed) {
		rlt_scope shield;
		if (rlt_shield_enter(&shield) < 0) {
			atomic_store_explicit(&a->busy, false, memory_order_release);
			return -EPERM; /* an arming can only be stopped from a task */
		}
		bool stopped = false;
		rlt__worker_post(a->owner, &a->stop_msg);
		while (a->armed || !stopped) {
			void *v;
			if (rlt_chan_recv(a->q, &v) < 0)
				continue; /* (shielded: not expected) */
			intptr_t x = (intptr_t)v;
			if (x == Q_END)
				a->armed = false;
			else if (x == Q_STOPPED)
				stopped = true;
			else
				acc_close_queued(x);
		}
		rlt_scope_leave(&shield);
	}
	void *v;
	while (rlt_chan_try_recv(a->q, &v) == 0)
		acc_close_queued((intptr_t)v);
	for (size_t i = 0; i < a->nspill; i++)
		rlt__close_fd(a->spill[a->spill_head + i]);
	rlt_chan_free(a->q);
	rlt__free(a->spill);
	rlt__free(a);
	return 0;
}
