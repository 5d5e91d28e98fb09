/*
 * Channels: a ring buffer and two wait queues (senders, receivers) under one
 * spinlock. The hand-off protocol and its timeouts are runtime/waitq.h's.
 *
 * Invariants, under ch->lock:
 *   - receivers wait only while the buffer is empty and no sender waits;
 *   - senders wait only while the buffer is full (always, for capacity 0)
 *     and no receiver waits;
 * so at most one of the two queues is non-empty, and a value in the buffer
 * is always older than the value of any waiting sender.
 *
 * A waiting sender's rlt__waiter carries its value in `data`; a waiting
 * receiver's `data` points at a slot on its stack. Whoever pops a waiter
 * fills it (value into the slot, or value taken from it, and `result`)
 * before unlocking, then wakes it: the waiter reads those fields only after
 * the oneshot's acquire, and a waiter whose timeout fired meanwhile finds
 * itself out of the queue and waits for that wake (rlt__waitq_wait), so a
 * popped waiter always completes the exchange: no value lost or doubled.
 */
#include "ringlet/chan.h"

#include "runtime/alloc.h"
#include "runtime/task.h"
#include "runtime/waitq.h"
#include "sched/sched.h"

#include <stdint.h>

struct rlt_chan {
	rlt__spin lock;
	bool closed;
	size_t cap;
	size_t head; /* index of the oldest buffered value */
	size_t len;  /* buffered values */
	rlt__waitq senders, receivers;
	void *buf[]; /* cap slots */
};

rlt_chan *rlt_chan_new(size_t capacity)
{
	if (capacity > (SIZE_MAX - sizeof(rlt_chan)) / sizeof(void *)) {
		errno = ENOMEM;
		return NULL;
	}
	rlt_chan *ch = rlt__malloc(sizeof(*ch) + capacity * sizeof(void *));
	if (!ch) {
		errno = ENOMEM;
		return NULL;
	}
	rlt__spin_init(&ch->lock);
	ch->closed = false;
	ch->cap = capacity;
	ch->head = 0;
	ch->len = 0;
	rlt__waitq_init(&ch->senders);
	rlt__waitq_init(&ch->receivers);
	return ch;
}

int rlt_chan_free(rlt_chan *ch)
{
	if (!ch)
		return 0;
	rlt__spin_lock(&ch->lock);
	bool busy = !rlt__waitq_empty(&ch->senders) || !rlt__waitq_empty(&ch->receivers);
	rlt__spin_unlock(&ch->lock);
	if (busy)
		return -EBUSY;
	rlt__free(ch);
	return 0;
}

/* Lock held, len < cap. */
static inline void buf_push(rlt_chan *ch, void *v)
{
	size_t i = ch->head + ch->len;
	if (i >= ch->cap)
		i -= ch->cap;
	ch->buf[i] = v;
	ch->len++;
}

/* Lock held, len > 0. */
static inline void *buf_pop(rlt_chan *ch)
{
	void *v = ch->buf[ch->head];
	if (++ch->head == ch->cap)
		ch->head = 0;
	ch->len--;
	return v;
}

/* timeout_ns: < 0 forever, 0 do not wait; may_wait false: try_send. */
static int chan_send(rlt_chan *ch, void *v, int64_t timeout_ns, bool may_wait)
{
	rlt__spin_lock(&ch->lock);
	if (ch->closed) {
		rlt__spin_unlock(&ch->lock);
		return -EPIPE;
	}
	rlt__waiter *r = rlt__waitq_pop(&ch->receivers);
	if (r) {
		/* Straight into the receiver's slot; the buffer is empty. */
		*(void **)r->data = v;
		r->result = 0;
		rlt__spin_unlock(&ch->lock);
		rlt__waiter_wake(r);
		return 0;
	}
	if (ch->len < ch->cap) {
		buf_push(ch, v);
		rlt__spin_unlock(&ch->lock);
		return 0;
	}
	if (!may_wait || timeout_ns == 0) {
		rlt__spin_unlock(&ch->lock);
		return may_wait ? -ETIMEDOUT : -EAGAIN;
	}
	rlt__waiter w;
	rlt__waiter_init(&w);
	w.data = v;
	rlt__waitq_push(&ch->senders, &w);
	int rc = rlt__waitq_wait(&ch->lock, &ch->senders, &w, timeout_ns, RLT__WK_CHAN_SEND);
	return rc < 0 ? rc : w.result; /* 0: taken; -EPIPE: closed */
}

static int chan_recv(rlt_chan *ch, void **v, int64_t timeout_ns, bool may_wait)
{
	rlt__spin_lock(&ch->lock);
	if (ch->len) {
		*v = buf_pop(ch);
		/* The buffer was full if a sender waits: its value, the next
		 * oldest, takes the freed place. */
		rlt__waiter *s = rlt__waitq_pop(&ch->senders);
		if (s) {
			buf_push(ch, s->data);
			s->result = 0;
		}
		rlt__spin_unlock(&ch->lock);
		if (s)
			rlt__waiter_wake(s);
		return 0;
	}
	rlt__waiter *s = rlt__waitq_pop(&ch->senders); /* capacity 0 */
	if (s) {
		*v = s->data;
		s->result = 0;
		rlt__spin_unlock(&ch->lock);
		rlt__waiter_wake(s);
		return 0;
	}
	if (ch->closed || !may_wait || timeout_ns == 0) {
		int rc = ch->closed ? -EPIPE : may_wait ? -ETIMEDOUT : -EAGAIN;
		rlt__spin_unlock(&ch->lock);
		return rc;
	}
	void *slot;
	rlt__waiter w;
	rlt__waiter_init(&w);
	w.data = &slot;
	rlt__waitq_push(&ch->receivers, &w);
	int rc = rlt__waitq_wait(&ch->lock, &ch->receivers, &w, timeout_ns, RLT__WK_CHAN_RECV);
	if (rc < 0)
		return rc;
	if (w.result == 0)
		*v = slot;
	return w.result; /* 0, or -EPIPE: closed while we waited */
}

int rlt_chan_send_timeout(rlt_chan *ch, void *v, int64_t timeout_ns)
{
	if (!ch)
		return -EINVAL;
	if (!rlt__task_self())
		return -EPERM;
	return chan_send(ch, v, timeout_ns, true);
}

int rlt_chan_send(rlt_chan *ch, void *v)
{
	return rlt_chan_send_timeout(ch, v, -1);
}

int rlt_chan_try_send(rlt_chan *ch, void *v)
{
	if (!ch)
		return -EINVAL;
	return chan_send(ch, v, 0, false);
}

int rlt_chan_recv_timeout(rlt_chan *ch, void **v, int64_t timeout_ns)
{
	if (!ch || !v)
		return -EINVAL;
	if (!rlt__task_self())
		return -EPERM;
	return chan_recv(ch, v, timeout_ns, true);
}

int rlt_chan_recv(rlt_chan *ch, void **v)
{
	return rlt_chan_recv_timeout(ch, v, -1);
}

int rlt_chan_try_recv(rlt_chan *ch, void **v)
{
	if (!ch || !v)
		return -EINVAL;
	return chan_recv(ch, v, 0, false);
}

/* Lock held: take every waiter of q out, each told -EPIPE, appended to the
 * chain *tail (linked through next: out of the queue, the links are ours). */
static void drain_closed(rlt__waitq *q, rlt__waiter ***tail)
{
	rlt__waiter *w;
	while ((w = rlt__waitq_pop(q)) != NULL) {
		w->result = -EPIPE;
		**tail = w;
		*tail = &w->next;
	}
}

int rlt_chan_close(rlt_chan *ch)
{
	if (!ch)
		return -EINVAL;
	rlt__waiter *chain = NULL, **tail = &chain;
	rlt__spin_lock(&ch->lock);
	if (ch->closed) {
		rlt__spin_unlock(&ch->lock);
		return -EALREADY;
	}
	ch->closed = true;
	drain_closed(&ch->senders, &tail);
	drain_closed(&ch->receivers, &tail);
	rlt__spin_unlock(&ch->lock);
	/* A waiter stays put until its wake (even one whose timeout fired:
	 * it is out of the queue, so it waits for us), so w->next is still
	 * there to read; after the wake, w may be gone. */
	while (chain) {
		rlt__waiter *next = chain->next;
		rlt__waiter_wake(chain);
		chain = next;
	}
	return 0;
}

bool rlt_chan_closed(rlt_chan *ch)
{
	if (!ch)
		return false;
	rlt__spin_lock(&ch->lock);
	bool closed = ch->closed;
	rlt__spin_unlock(&ch->lock);
	return closed;
}

size_t rlt_chan_len(rlt_chan *ch)
{
	if (!ch)
		return 0;
	rlt__spin_lock(&ch->lock);
	size_t n = ch->len;
	rlt__spin_unlock(&ch->lock);
	return n;
}

size_t rlt_chan_cap(const rlt_chan *ch)
{
	return ch ? ch->cap : 0;
}
