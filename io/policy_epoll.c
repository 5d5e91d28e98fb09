/*
 * The "epoll" policy: readiness instead of completions, for where io_uring
 * is disabled (containers, seccomp, kernel.io_uring_disabled). It never
 * calls io_uring.
 *
 * One epoll instance per worker, plus an eventfd in it for wake-ups from
 * other threads. submit tries each operation at once, without blocking
 * (the attempts, one system call each, are io/epoll_try.c's; reads that
 * keep finding nothing skip the first try: try_or_park):
 * if it finishes (or fails with anything but "would block") the op is
 * completed inside submit and the task does not even suspend. Otherwise
 * the op is parked on its fd in a table indexed by fd (a FIFO of readers,
 * one of writers, one of pollers, linked through op->policy_data) and the
 * fd is registered in the epoll; when epoll reports it ready, the parked
 * ops are retried in order until one would block again.
 *
 * Edge-triggered (EPOLLET), and the registration is kept: an fd is
 * registered the first time an op parks on it and stays registered (for
 * the union of the events ever waited for) until rlt_close(), so parking
 * again costs no system call. Each fd's entry remembers whether it may be
 * ready (R_IN, R_OUT): set by every event epoll reports for it, cleared
 * when an attempt would block, or when a recv/send on a stream socket
 * moved fewer bytes than asked (the socket was drained or filled: tokio
 * does the same). An op whose direction is known not ready parks without
 * trying. Nothing is lost: a bit is cleared only by an observation made
 * after the last event was taken, and any change after it is an edge
 * epoll reports. End of stream and errors (RDHUP, HUP, ERR) make the bit
 * sticky for the life of the registration: after them no edge would come.
 * Per echoed message that is one recv and one send, as a hand-written
 * epoll server does.
 *
 * A registration can go stale: it dies with its file, and the number may
 * come back as another file, maybe on another worker than the one whose
 * epoll holds the old one. Every close made by ringlet (rlt_close under
 * any worker, ringlet's own close(2) calls) and every fd ringlet makes
 * (accept, open, its sockets and pipes) bumps the number's close
 * generation (io/fdgen.h); an entry whose generation differs is
 * registered again (a MOD, or an ADD on ENOENT), which also reports what
 * is ready. A file closed with close(2) and a new one made with socket(2),
 * pipe(2)... both behind ringlet's back cannot be told apart: an op that
 * parked on a trusted registration and has had no event for one to two
 * verify periods (VERIFY_US, "epoll:verify_us=N") gets its fd registered
 * again, so such an fd costs a delay, never a hang.
 *
 * How each operation avoids blocking the worker:
 *   recv, send      MSG_DONTWAIT (a user's MSG_DONTWAIT: -EAGAIN, not a
 *                   wait, as io_uring does); MSG_WAITALL is honoured like
 *                   io_uring does, by waiting for the rest.
 *   recvmsg,        MSG_DONTWAIT likewise; one attempt per readiness, no
 *   sendmsg         MSG_WAITALL loop (they carry datagrams).
 *   read, write,    fstat first. Regular files, block devices, directories:
 *   readv, writev   synchronous pread/pwrite (see below). Anything else
 *                   (pipes, sockets, ttys, eventfds...): preadv2/pwritev2
 *                   with RWF_NOWAIT, which leaves the fd's flags alone; on
 *                   pipes it needs Linux 5.8+ (older kernels and ttys say
 *                   EOPNOTSUPP), and then O_NONBLOCK is set on the open
 *                   file around the call and restored. Offsets are ignored
 *                   on pipes and sockets, as io_uring does.
 *   accept          accept4 with O_NONBLOCK set around the call if the
 *                   listener is blocking (restored).
 *   connect         started with O_NONBLOCK set around the call if the
 *                   socket is blocking (restored at once: the handshake
 *                   goes on either way); EINPROGRESS waits for EPOLLOUT,
 *                   then SO_ERROR is the result. EAGAIN (a Unix listener's
 *                   full backlog) is returned as -EAGAIN.
 *   poll            poll(2) with a zero timeout, then a wait in epoll.
 * Setting O_NONBLOCK for the length of one call is visible to whoever
 * shares the open file description (a dup, a forked child, another
 * thread) during that call: a blocking read of theirs may then see EAGAIN.
 *
 * Synchronous, inside submit: reads and writes on regular files and block
 * devices (epoll cannot wait on them), and on any fd epoll_ctl refuses
 * with EPERM; openat, statx, fsync, shutdown and close. These block the
 * worker for the system call (a slow disk, an NFS server, a FIFO's open)
 * until the executor pool takes them over; their results are what
 * io_uring would return.
 *
 * Close: before any policy sees a close, rlt_close() has cancelled the
 * ops of other tasks waiting on the fd, on every worker (io/fdwait.h),
 * and their tasks get -EBADF. Any op still parked here (one that does not
 * suspend a task) is completed with -EBADF before the fd is closed.
 *
 * Everything runs on the worker's thread except wake. An op parks on the
 * loop of the worker that submitted it and completes there.
 *
 * op->policy_data while an op is ours:
 *   [0], [1]  next and previous in its fd's list
 *   [2]       which list (low 2 bits, 0: not parked) and F_* flags
 *   [3]       recv/send with MSG_WAITALL: the bytes done so far
 */
#include "io/epoll_try.h"
#include "io/fdgen.h"
#include "io/policy.h"

#include "runtime/alloc.h"
#include "runtime/cpu.h"
#include "sched/stats.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 64
#define WAKE_TAG   UINT64_MAX
enum { L_NONE, L_IN, L_OUT, L_POLL };

/* What epoll can wait for on behalf of a poll op (the values are poll's). */
#define POLL_WAITABLE                                                                              \
	(EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLRDNORM | EPOLLRDBAND | EPOLLWRNORM | EPOLLWRBAND |   \
	 EPOLLRDHUP)

typedef struct oplist {
	rlt_op *head, *tail;
} oplist;

/* fdent.ready: may the fd be ready for ops of a list? */
#define R_IN	  1u
#define R_OUT	  2u
#define R_IN_END  4u /* RDHUP, HUP or ERR seen: R_IN stays set */
#define R_OUT_END 8u /* HUP or ERR seen: R_OUT stays set */

enum { K_UNKNOWN, K_STREAM, K_OTHER }; /* fdent.kind */

typedef struct fdent {
	oplist l[3];	 /* L_IN, L_OUT, L_POLL (index - 1) */
	uint32_t events; /* registered in epoll, as far as we know (0: not) */
	uint32_t gen;	 /* the fd's close generation when registered */
	uint32_t
	    since; /* epoch of a park that trusted the registration, unconfirmed since (0: none) */
	uint8_t ready; /* R_* */
	uint8_t kind;  /* K_*: the socket's type, looked up on the first short transfer */
} fdent;

/* Re-register an fd whose op has waited one to two of these on a trusted
 * registration without an event (a file closed and another made with its
 * number, both behind ringlet's back, leaves a dead one): the worst delay
 * such an fd sees. A busy fd's events come much sooner; one that waits
 * longer pays one epoll_ctl per wait, as it would if every park
 * registered, and the worker wakes once a period while such waits are
 * new. Shorter periods make that common: 1 ms cost a MOD per message at
 * 800 messages/s per connection. */
#define VERIFY_US 10000u

/* A park that trusted a registration, in the order they came. */
typedef struct vent {
	int fd;
	uint32_t epoch;
} vent;

typedef struct eloop {
	int epfd;
	int wake_fd;
	unsigned parked; /* ops in the table */
	fdent *fds;	 /* indexed by fd, grown by doubling */
	size_t nfds;
	vent *vq; /* trusting parks to look at again: a ring, oldest first */
	uint32_t vq_head, vq_len, vq_cap;
	uint32_t epoch;	    /* verify periods since init, from 1 */
	uint64_t epoch_ns;  /* when the current one began */
	uint64_t verify_ns; /* the period; 0: never look again */
	rlt__iostats *st;   /* the worker's counters: epoll_waits, events */
	rlt__iostats own_stats;
} eloop;

/* ---- parked ops ---- */

#define OP_NEXT(op) ((rlt_op *)(op)->policy_data[0])
#define OP_PREV(op) ((rlt_op *)(op)->policy_data[1])
#define OP_LIST(op) ((unsigned)((uintptr_t)(op)->policy_data[2] & 3u))

static inline void set_list(rlt_op *op, unsigned list)
{
	op->policy_data[2] = (void *)(OP_FLAGS(op) | list);
}

static inline fdent *entry(eloop *e, int fd)
{
	return fd >= 0 && (size_t)fd < e->nfds ? &e->fds[fd] : NULL;
}

static void link_op(eloop *e, fdent *ent, rlt_op *op, unsigned list)
{
	oplist *l = &ent->l[list - 1];
	op->policy_data[0] = NULL;
	op->policy_data[1] = l->tail;
	set_list(op, list);
	if (l->tail)
		l->tail->policy_data[0] = op;
	else
		l->head = op;
	l->tail = op;
	e->parked++;
}

static void unlink_op(eloop *e, rlt_op *op)
{
	fdent *ent = &e->fds[op->fd];
	oplist *l = &ent->l[OP_LIST(op) - 1];
	rlt_op *next = OP_NEXT(op), *prev = OP_PREV(op);
	if (prev)
		prev->policy_data[0] = next;
	else
		l->head = next;
	if (next)
		next->policy_data[1] = prev;
	else
		l->tail = prev;
	set_list(op, L_NONE);
	e->parked--;
}

static inline bool idle_fd(const fdent *ent)
{
	return !ent->l[0].head && !ent->l[1].head && !ent->l[2].head;
}

/* Make room for fd in the table (off the hot path: doubling). */
static int reserve(eloop *e, int fd)
{
	if (fd < 0)
		return -EBADF; /* poll(2) ignores a negative fd; io_uring says EBADF */
	if ((size_t)fd < e->nfds)
		return 0;
	size_t n = e->nfds ? e->nfds : 64;
	while (n <= (size_t)fd)
		n *= 2;
	fdent *t = rlt__realloc(e->fds, n * sizeof(*t));
	if (!t)
		return -ENOMEM;
	memset(t + e->nfds, 0, (n - e->nfds) * sizeof(*t));
	e->fds = t;
	e->nfds = n;
	return 0;
}

/* ---- parking ---- */

static uint32_t list_events(const rlt_op *op, unsigned list)
{
	switch (list) {
	case L_IN:
		return EPOLLIN | EPOLLRDHUP;
	case L_OUT:
		return EPOLLOUT;
	default:
		return op->u.poll.events & POLL_WAITABLE;
	}
}

/* Complete every op parked on ent with res. */
static void flush_fd(eloop *e, fdent *ent, int res)
{
	for (unsigned i = 0; i < 3; i++) {
		rlt_op *op;
		while ((op = ent->l[i].head) != NULL) {
			unlink_op(e, op);
			rlt__op_complete(op, res);
		}
	}
}

/* Register fd for events. known: the table says it is registered. MOD
 * and ADD each fall back to the other: the table may be stale (see the
 * top of the file). */
static int arm(eloop *e, int fd, uint32_t events, bool known)
{
	struct epoll_event ev = {.events = events | EPOLLET, .data.u64 = (uint64_t)fd};
	int ctl = known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	for (int tries = 0; tries < 2; tries++) {
		if (epoll_ctl(e->epfd, ctl, fd, &ev) == 0)
			return 0;
		if (ctl == EPOLL_CTL_MOD && errno == ENOENT)
			ctl = EPOLL_CTL_ADD;
		else if (ctl == EPOLL_CTL_ADD && errno == EEXIST)
			ctl = EPOLL_CTL_MOD;
		else
			return -errno;
	}
	return -EEXIST;
}

static inline uint8_t list_ready(unsigned list)
{
	return list == L_IN ? R_IN : list == L_OUT ? R_OUT : 0;
}

/* Is ent's registration the one of the file its fd names now, whose
 * close generation is gen (rlt__fdgen)? */
static inline bool trusted(const fdent *ent, uint32_t gen)
{
	return ent->events && gen != RLT__FDGEN_UNKNOWN && gen == ent->gen;
}

/* Seen not ready for list's ops (after end of stream or an error, a read
 * never waits: no edge would end the wait). */
static inline void not_ready(fdent *ent, unsigned list)
{
	if (list == L_IN && !(ent->ready & R_IN_END))
		ent->ready &= (uint8_t)~R_IN;
	else if (list == L_OUT && !(ent->ready & R_OUT_END))
		ent->ready &= (uint8_t)~R_OUT;
}

/* An event came, or the fd was registered anew: nothing to look at. */
static inline void confirmed(fdent *ent)
{
	ent->since = 0;
}

/* A park trusted fd's registration: look at it again in one to two
 * periods unless an event confirms it first. Growing the ring is the only
 * allocation, amortized; without memory, register at once instead. */
static bool watch(eloop *e, int fd, fdent *ent)
{
	if (ent->since || !e->verify_ns)
		return true;
	if (e->vq_len == e->vq_cap) {
		uint32_t cap = e->vq_cap ? e->vq_cap * 2 : 64;
		vent *q = rlt__malloc(cap * sizeof(*q));
		if (!q)
			return false;
		for (uint32_t i = 0; i < e->vq_len; i++)
			q[i] = e->vq[(e->vq_head + i) % e->vq_cap];
		rlt__free(e->vq);
		e->vq = q;
		e->vq_head = 0;
		e->vq_cap = cap;
	}
	e->vq[(e->vq_head + e->vq_len++) % e->vq_cap] = (vent){fd, e->epoch};
	ent->since = e->epoch;
	return true;
}

/* A recv or send on a stream socket that moved fewer bytes than asked
 * drained the socket, or filled it: no need to try again before the next
 * edge. Not after MSG_PEEK (nothing consumed), MSG_WAITALL (a short one
 * is the end of the stream), or on datagrams (one per call). */
static void after_result(fdent *ent, rlt_op *op, int r, unsigned list)
{
	if (r <= 0 || !ent->events || (op->code != RLT_OP_RECV && op->code != RLT_OP_SEND) ||
	    (size_t)r >= op->u.msg.len || (op->u.msg.flags & MSG_PEEK) ||
	    (OP_FLAGS(op) & F_WAITALL))
		return;
	if (ent->kind == K_UNKNOWN) {
		int type = 0;
		socklen_t len = sizeof(type);
		ent->kind =
		    getsockopt(op->fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM
			? K_STREAM
			: K_OTHER;
	}
	if (ent->kind == K_STREAM)
		not_ready(ent, list);
}

/* op would block, or its fd is known not to be ready: wait for it. */
static void park(eloop *e, rlt_op *op, unsigned list)
{
	int rc = reserve(e, op->fd);
	if (rc < 0) {
		rlt__op_complete(op, rc);
		return;
	}
	fdent *ent = &e->fds[op->fd];
	uint32_t need = list_events(op, list);
	uint32_t gen = rlt__fdgen(op->fd);
	bool trust = trusted(ent, gen);
	if (trust && !(need & ~ent->events) && watch(e, op->fd, ent)) {
		/* Registered already: no system call. */
		link_op(e, ent, op, list);
		return;
	}
	/* Register: anew (a fresh registration starts from what waits now),
	 * or for one more event on a trusted one. */
	uint32_t want = need | (trust || !idle_fd(ent) ? ent->events : 0);
	rc = arm(e, op->fd, want, ent->events != 0);
	if (rc == -EPERM) {
		/* epoll cannot wait on this file: do it the slow way. */
		ent->events = 0;
		rlt__op_complete(op, op->code <= RLT_OP_WRITEV ? rlt__ep_rw_sync(op) : -EPERM);
		return;
	}
	if (rc < 0) {
		rlt__op_complete(op, rc);
		return;
	}
	if (!trust) {
		/* What was known is of another registration, maybe of another
		 * file: registering reports what is ready now. */
		ent->ready = 0;
		ent->kind = K_UNKNOWN;
	}
	not_ready(ent, list);
	confirmed(ent);
	ent->events = want;
	ent->gen = gen;
	link_op(e, ent, op, list);
}

/* Try op now unless others wait before it (FIFO) or its fd is known not
 * to be ready, and park it if it would block. */
static void try_or_park(eloop *e, rlt_op *op, unsigned list)
{
	fdent *ent = entry(e, op->fd);
	if (ent && list != L_POLL &&
	    (ent->l[list - 1].head ||
	     (!(ent->ready & list_ready(list)) && !(list_events(op, list) & ~ent->events) &&
	      trusted(ent, rlt__fdgen(op->fd))))) {
		park(e, op, list);
		return;
	}
	int r = rlt__ep_attempt(op);
	if (r != NOT_YET) {
		if (ent && list != L_POLL)
			after_result(ent, op, r, list);
		rlt__op_complete(op, r);
		return;
	}
	if (ent)
		not_ready(ent, list);
	park(e, op, list);
}

/* Retry the ops of one list in order; stop at the first that would still
 * block (the ones behind it would too). Pollers do not consume: all of
 * them are checked. */
static int retry(eloop *e, fdent *ent, unsigned list)
{
	int done = 0;
	rlt_op *op = ent->l[list - 1].head;
	while (op) {
		rlt_op *next = OP_NEXT(op);
		int r = rlt__ep_attempt(op);
		if (r == NOT_YET) {
			if (list != L_POLL) {
				not_ready(ent, list);
				break;
			}
		} else {
			unlink_op(e, op);
			if (list != L_POLL)
				after_result(ent, op, r, list);
			rlt__op_complete(op, r);
			done++;
		}
		op = next;
	}
	return done;
}

/* Register fd again, as it is now, for the ops parked on it. */
static void rearm(eloop *e, int fd, fdent *ent)
{
	uint32_t gen = rlt__fdgen(fd);
	int rc = arm(e, fd, ent->events, true);
	if (rc < 0) {
		/* No such file any more (EBADF), or epoll refuses it. */
		ent->events = 0;
		flush_fd(e, ent, rc);
		return;
	}
	ent->ready = 0; /* the registration reports what is ready */
	ent->kind = K_UNKNOWN;
	ent->gen = gen;
}

static int on_ready(eloop *e, int fd, uint32_t ev)
{
	fdent *ent = entry(e, fd);
	if (!ent)
		return 0;
	uint32_t end = ev & (EPOLLERR | EPOLLHUP);
	if (ev & (EPOLLIN | EPOLLPRI | EPOLLRDHUP) || end)
		ent->ready |= R_IN;
	if (ev & EPOLLRDHUP || end)
		ent->ready |= R_IN_END;
	if (ev & EPOLLOUT || end)
		ent->ready |= R_OUT;
	if (end)
		ent->ready |= R_OUT_END;
	int done = 0;
	/* Pollers first: they see the readiness this event reports, as they
	 * would under io_uring, before a reader consumes it. */
	if (ent->l[2].head)
		done += retry(e, ent, L_POLL);
	if (ent->l[0].head && (ent->ready & R_IN))
		done += retry(e, ent, L_IN);
	if (ent->l[1].head && (ent->ready & R_OUT))
		done += retry(e, ent, L_OUT);
	/* An event proves that a registration under this number exists, not
	 * that it is the current file's (the old file may live on in a dup):
	 * ops still parked stay watched. */
	if (idle_fd(ent))
		confirmed(ent);
	else if (!watch(e, fd, ent))
		rearm(e, fd, ent);
	return done;
}

/* A period has passed: re-register the fds whose ops have waited on a
 * trusted registration for a whole period without an event (the top of
 * the file). */
static void verify(eloop *e)
{
	while (e->vq_len) {
		vent v = e->vq[e->vq_head];
		if (e->epoch - v.epoch < 2)
			break;
		e->vq_head = (e->vq_head + 1) % e->vq_cap;
		e->vq_len--;
		fdent *ent = entry(e, v.fd);
		if (!ent || ent->since != v.epoch)
			continue; /* confirmed since, maybe parked again */
		confirmed(ent);
		if (!idle_fd(ent) && ent->events)
			rearm(e, v.fd, ent);
		/* else the next park decides */
	}
}

/* ---- synchronous operations ---- */

static int do_close(eloop *e, int fd)
{
	fdent *ent = entry(e, fd);
	if (ent) {
		flush_fd(e, ent, -EBADF);
		if (ent->events) {
			/* Before the close: a dup elsewhere would keep the
			 * registration (and its events) alive. */
			epoll_ctl(e->epfd, EPOLL_CTL_DEL, fd, NULL);
			ent->events = 0;
		}
		confirmed(ent);
	}
	/* Other workers' registrations of fd go stale: the bump tells them. */
	return rlt__close_fd(fd);
}

#define SYNC(expr)                                                                                 \
	({                                                                                         \
		long r_;                                                                           \
		do                                                                                 \
			r_ = (long)(expr);                                                         \
		while (r_ < 0 && errno == EINTR);                                                  \
		r_ < 0 ? -errno : (int)r_;                                                         \
	})

/* MSG_WAITALL means "all of it" only where io_uring retries for it. */
static bool stream_socket(int fd)
{
	int type = 0;
	socklen_t len = sizeof(type);
	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
	       (type == SOCK_STREAM || type == SOCK_SEQPACKET);
}

/* ---- the vtable ---- */

/* "verify_us=N" (0: never look again; at most an hour), or nothing. */
static int parse_options(const char *options, uint64_t *verify_ns)
{
	*verify_ns = (uint64_t)VERIFY_US * 1000u;
	if (!options || !options[0])
		return 0;
	if (strncmp(options, "verify_us=", 10) != 0 || options[10] < '0' || options[10] > '9')
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(options + 10, &end, 10);
	if (*end || errno || v > 3600000000ull)
		return -EINVAL;
	*verify_ns = (uint64_t)v * 1000u;
	return 0;
}

static int ep_probe(const char *options)
{
	uint64_t verify_ns;
	int rc = parse_options(options, &verify_ns);
	if (rc < 0)
		return rc;
	int epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		return -errno;
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	rc = efd < 0 ? -errno : 0;
	if (efd >= 0)
		close(efd);
	close(epfd);
	return rc;
}

static void ep_fini(rlt_loop *loop)
{
	eloop *e = loop->state;
	if (!e)
		return;
	if (e->epfd >= 0)
		close(e->epfd);
	if (e->wake_fd >= 0)
		close(e->wake_fd);
	rlt__free(e->fds);
	rlt__free(e->vq);
	rlt__free(e);
	loop->state = NULL;
}

static int ep_init(rlt_loop *loop)
{
	uint64_t verify_ns;
	int rc = parse_options(loop->options, &verify_ns);
	if (rc < 0)
		return rc;
	eloop *e = rlt__calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->verify_ns = verify_ns;
	e->st = rlt__loop_stats(loop, &e->own_stats);
	e->epoch = 1;
	e->epoch_ns = rlt__mono_ns();
	e->wake_fd = -1;
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (e->epfd < 0)
		goto fail;
	e->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (e->wake_fd < 0)
		goto fail;
	/* Level-triggered: it is drained every time it fires. */
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WAKE_TAG};
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->wake_fd, &ev) < 0)
		goto fail;
	rc = reserve(e, 63);
	if (rc < 0)
		goto fail_rc;
	loop->state = e;
	return 0;
fail:
	rc = -errno;
fail_rc:
	loop->state = e;
	ep_fini(loop);
	return rc;
}

static void ep_submit(rlt_loop *loop, rlt_op *op)
{
	eloop *e = loop->state;
	op->policy_data[2] = (void *)(uintptr_t)L_NONE;
	op->policy_data[3] = NULL;
	switch ((rlt_opcode)op->code) {
	case RLT_OP_READ:
	case RLT_OP_WRITE:
	case RLT_OP_READV:
	case RLT_OP_WRITEV: {
		struct stat st;
		if (fstat(op->fd, &st) < 0) {
			rlt__op_complete(op, -errno);
			return;
		}
		if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) || S_ISDIR(st.st_mode)) {
			rlt__op_complete(op, rlt__ep_rw_sync(op));
			return;
		}
		if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))
			add_flags(op, F_STREAM);
		try_or_park(e, op, rlt__ep_is_write(op) ? L_OUT : L_IN);
		return;
	}
	case RLT_OP_RECV:
	case RLT_OP_SEND:
		if (op->u.msg.flags & MSG_DONTWAIT) {
			/* The caller asked not to wait (io_uring: REQ_F_NOWAIT). */
			rlt__op_complete(op, rlt__ep_msg_try(op));
			return;
		}
		if ((op->u.msg.flags & MSG_WAITALL) && stream_socket(op->fd))
			add_flags(op, F_WAITALL);
		try_or_park(e, op, op->code == RLT_OP_RECV ? L_IN : L_OUT);
		return;
	case RLT_OP_ACCEPT:
		try_or_park(e, op, L_IN);
		return;
	case RLT_OP_CONNECT: {
		/* Always start it, whoever else waits on the fd. */
		int r = rlt__ep_connect_try(op);
		if (r == NOT_YET)
			park(e, op, L_OUT);
		else
			rlt__op_complete(op, r);
		return;
	}
	case RLT_OP_POLL:
		try_or_park(e, op, L_POLL);
		return;
	case RLT_OP_OPENAT:
		rlt__op_complete(op,
				 rlt__fd_new(SYNC(openat(op->fd, op->u.open.path, op->u.open.flags,
							 (mode_t)op->u.open.mode))));
		return;
	case RLT_OP_CLOSE:
		rlt__op_complete(op, do_close(e, op->fd));
		return;
	case RLT_OP_FSYNC:
		rlt__op_complete(op,
				 SYNC(op->u.fsync.datasync ? fdatasync(op->fd) : fsync(op->fd)));
		return;
	case RLT_OP_STATX:
		rlt__op_complete(op, SYNC(statx(op->fd, op->u.statx.path, op->u.statx.flags,
						op->u.statx.mask, op->u.statx.out)));
		return;
	case RLT_OP_SHUTDOWN:
		rlt__op_complete(op, shutdown(op->fd, op->u.shutdown.how) == 0 ? 0 : -errno);
		return;
	case RLT_OP_WAITID:
		/* A blocking waitid would stall the worker for as long as the
		 * child lives: the caller waits on a pidfd instead. */
		rlt__op_complete(op, -EOPNOTSUPP);
		return;
	case RLT_OP_SENDMSG:
	case RLT_OP_RECVMSG:
		if (op->u.msg.flags & MSG_DONTWAIT) {
			rlt__op_complete(op, rlt__ep_mhdr_try(op));
			return;
		}
		try_or_park(e, op, op->code == RLT_OP_RECVMSG ? L_IN : L_OUT);
		return;
	case RLT_OP_SPLICE:
		/* A wait here would be for two fds at once (the input's data and
		 * the output's room): rlt_sendfile does it with sendfile(2) on a
		 * non-blocking output and rlt_poll instead. */
		rlt__op_complete(op, -EOPNOTSUPP);
		return;
	case RLT_OP_ACCEPT_MULTI: /* not RLT_POLICY_MULTISHOT: never asked */
	case RLT_OP_RECV_MULTI:	  /* not RLT_POLICY_MULTISHOT_RECV: never asked */
	case RLT_OP_COUNT:
		break;
	}
	rlt__op_complete(op, -EINVAL);
}

/* epoll_pwait2 (Linux 5.11): a nanosecond timeout. Older kernels: ENOSYS,
 * remembered, then epoll_wait with the timeout rounded up to a millisecond
 * (rounded down, a timer's wait would end just before it is due). */
static atomic_bool no_pwait2;

static int wait_ns(eloop *e, struct epoll_event *evs, int64_t ns)
{
#ifdef SYS_epoll_pwait2
	if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
		struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
		int n = (int)syscall(SYS_epoll_pwait2, e->epfd, evs, MAX_EVENTS, &ts, NULL, 0);
		if (n >= 0 || errno != ENOSYS)
			return n;
		atomic_store_explicit(&no_pwait2, true, memory_order_relaxed);
	}
#endif
	int64_t ms = (ns + 999999) / 1000000;
	return epoll_wait(e->epfd, evs, MAX_EVENTS, ms > INT_MAX ? INT_MAX : (int)ms);
}

static int ep_poll(rlt_loop *loop, int64_t timeout_ns)
{
	eloop *e = loop->state;
	/* A busy turn with nothing parked: no system call. A wake-up left in
	 * the eventfd only ends the next sleep early. */
	if (timeout_ns == 0 && !e->parked)
		return 0;
	if (e->vq_len) {
		/* Parks that trusted a registration: a period on, look again
		 * (the top of the file). No sleep outlasts a period meanwhile. */
		uint64_t now = rlt__mono_ns();
		if (now - e->epoch_ns >= e->verify_ns) {
			e->epoch += e->epoch == UINT32_MAX ? 2 : 1; /* never 0: "none" */
			e->epoch_ns = now;
			verify(e);
		}
		if (e->vq_len && (timeout_ns < 0 || (uint64_t)timeout_ns > e->verify_ns))
			timeout_ns = (int64_t)e->verify_ns;
	}
	struct epoll_event evs[MAX_EVENTS];
	int n;
	RLT__STAT_INC(e->st->enters);
	if (timeout_ns > 0)
		n = wait_ns(e, evs, timeout_ns);
	else
		n = epoll_wait(e->epfd, evs, MAX_EVENTS, timeout_ns < 0 ? -1 : 0);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	RLT__STAT_ADD(e->st->cqes, (uint64_t)n);
	int done = 0;
	for (int i = 0; i < n; i++) {
		if (evs[i].data.u64 == WAKE_TAG) {
			uint64_t v;
			ssize_t r = read(e->wake_fd, &v, sizeof(v));
			(void)r; /* EAGAIN: another drain got it first */
			continue;
		}
		done += on_ready(e, (int)evs[i].data.u64, evs[i].events);
	}
	return done;
}

static void ep_wake(rlt_loop *target, rlt_loop *from)
{
	eloop *t = target->state;
	int saved = errno;
	uint64_t one = 1;
	ssize_t n;
	do
		n = write(t->wake_fd, &one, sizeof(one));
	while (n < 0 && errno == EINTR);
	/* EAGAIN: the counter is full, a wake-up is pending anyway. */
	errno = saved;
}

static int ep_cancel(rlt_loop *loop, rlt_op *op)
{
	eloop *e = loop->state;
	/* Only parked ops are in flight here: the rest completed in submit. */
	if (op->state_ == RLT__OP_DONE || OP_LIST(op) == L_NONE)
		return -ENOENT;
	unlink_op(e, op);
	rlt__op_complete(op, -ECANCELED);
	return 0;
}

static void ep_cancel_all(rlt_loop *loop)
{
	eloop *e = loop->state;
	for (size_t fd = 0; fd < e->nfds && e->parked; fd++)
		flush_fd(e, &e->fds[fd], -ECANCELED);
}

const rlt_policy rlt__policy_epoll = {
    .name = "epoll",
    .summary =
	"readiness with one epoll per worker; regular-file I/O runs synchronously (fallback)",
    .native_ops = RLT_OP_BIT(RLT_OP_ACCEPT) | RLT_OP_BIT(RLT_OP_CONNECT) | RLT_OP_BIT(RLT_OP_RECV) |
		  RLT_OP_BIT(RLT_OP_SEND) | RLT_OP_BIT(RLT_OP_SHUTDOWN) | RLT_OP_BIT(RLT_OP_POLL) |
		  RLT_OP_BIT(RLT_OP_SENDMSG) | RLT_OP_BIT(RLT_OP_RECVMSG),
    .probe = ep_probe,
    .init = ep_init,
    .fini = ep_fini,
    .submit = ep_submit,
    .poll = ep_poll,
    .wake = ep_wake,
    .cancel = ep_cancel,
    .cancel_all = ep_cancel_all,
};
