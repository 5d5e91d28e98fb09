/*
 * The io_uring policies: "io_uring" (the default) and "io_uring-sqpoll".
 *
 * One ring per worker. "io_uring" sets it up SINGLE_ISSUER | DEFER_TASKRUN
 * (falling back to COOP_TASKRUN, then to nothing, where the kernel says
 * EINVAL): completions are processed only when the worker enters the
 * kernel for them, on its own thread, in a batch. SQEs queue up during a
 * loop turn and go out in one io_uring_enter at the turn's end (or when
 * the worker goes to sleep), which also reaps.
 *
 * "io_uring-sqpoll" adds IORING_SETUP_SQPOLL: a kernel thread polls the
 * submission queue, so submitting costs no system call while it is awake.
 * All workers share worker 0's SQ thread (IORING_SETUP_ATTACH_WQ). The
 * thread spins for idle_ms (default 2, option "io_uring-sqpoll:idle_ms=N")
 * after the last submission before it sleeps: under load that is one core
 * busy in the kernel, which on a 2-core machine is half of it. Worth it
 * only when submission latency matters more than that core. Why 2 ms, not
 * the 50 a server might pick: a spinning SQ thread competes with the
 * workers for the CPU, and the scheduler then holds a woken worker back for
 * a time slice. With idle_ms=50, 10 ms sleeps on this 2-core VM woke up to
 * 4.5 ms late (worst of 30); with idle_ms=2, 0.05-0.25 ms. Option
 * "sq_cpu=N" binds the thread to CPU N (IORING_SETUP_SQ_AFF); in a process
 * that may run on one CPU only, sqpoll refuses to start without it
 * (sqpoll_cpu_check).
 *
 * user_data of the SQEs is one of:
 *   0           fire-and-forget (cancel requests, MSG_RING): CQE ignored
 *   UD_WAKE     the eventfd read armed for wake-ups from foreign threads
 *   UD_MSG      a wake-up posted by another worker's MSG_RING
 *   an rlt_op * the operation a task waits on
 */
#include "io/policy.h"
#include "io/sys.h"

#include "runtime/alloc.h"
#include "runtime/coro.h" /* RLT_TSAN */
#include "sched/stats.h"

#include <errno.h>
#include <liburing.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IORING_SETUP_COOP_TASKRUN
#define IORING_SETUP_COOP_TASKRUN (1U << 8)
#endif
#ifndef IORING_SETUP_TASKRUN_FLAG
#define IORING_SETUP_TASKRUN_FLAG (1U << 9)
#endif
#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif
#ifndef IORING_SQ_TASKRUN
#define IORING_SQ_TASKRUN (1U << 2)
#endif

/* Linux 6.7; liburing 2.3 has neither the opcode nor its helper. */
#ifndef IORING_OP_WAITID
#define IORING_OP_WAITID 50
#endif

#define UD_WAKE ((uint64_t)1)
#define UD_MSG	((uint64_t)2)
#define UD_MAX	UD_MSG

/*
 * The loop's provided buffers (IORING_REGISTER_PBUF_RING, group PBUF_BGID),
 * for RLT_OP_RECV_MULTI: set up at the first such op (a loop that never
 * runs one pays nothing), each buffer given back to the kernel as soon as
 * the op's sink, which copies it, returns. Sized for the rxq: a 4 KiB
 * request must not cost two CQEs (NETWORKING.md), and a bulk transfer
 * moves 16 KiB per CQE. liburing 2.3 has no io_uring_setup_buf_ring: the
 * ring is mmap'ed and registered by hand.
 */
#define PBUF_BGID 0
typedef struct pbufs {
	struct io_uring_buf_ring *br; /* NULL: not set up */
	char *mem;
	size_t ring_bytes;
	unsigned n, size; /* n a power of two */
	int state;	  /* 0 not tried, 1 up, < 0 the registration's error */
} pbufs;

/* RLT_OP_RECV_MULTI's buffers for loops set up from now on: 0 for the
 * defaults (64 x 16 KiB). rlt__uring_pbuf_knob (the tests: a tiny ring
 * runs out, -ENOBUFS). */
static unsigned pbuf_knob_n, pbuf_knob_size;
void rlt__uring_pbuf_knob(unsigned nbufs, unsigned size);
void rlt__uring_pbuf_knob(unsigned nbufs, unsigned size)
{
	pbuf_knob_n = nbufs;
	pbuf_knob_size = size;
}

typedef struct uring {
	struct io_uring ring;
	bool taskrun_flag; /* the kernel flags deferred completions in sq.kflags */
	bool sqpoll;
	bool wake_armed;
	bool no_rearm;	      /* shutting down: leave the wake read unarmed */
	bool ring_registered; /* the ring fd is registered (enter skips fdget) */
	bool direct_send;     /* try a send(2) before queueing an SQE for it */
	unsigned inflight;    /* SQEs whose CQE was not reaped (ops and the wake read) */
	int ring_fd;	      /* target of MSG_RING wake-ups */
	int wake_fd;	      /* eventfd, for threads without a ring */
	uint64_t wake_buf;
	/* The worker's counters (sched/stats.h), or own_stats for a ring of
	 * no worker's: SQEs, enters, CQEs, as this file makes them. An
	 * enter is counted where liburing will make one: a submit with SQEs
	 * queued (sqpoll: only when the SQ thread sleeps), a get-events, a
	 * wait. */
	rlt__iostats *st;
	rlt__iostats own_stats;
	pbufs pb;
} uring;

/* Best first. DEFER_TASKRUN runs completions only when we enter the kernel
 * to ask for them, on our thread, in a batch: no IPIs, no surprise work.
 * TASKRUN_FLAG makes the kernel say (IORING_SQ_TASKRUN) when such work is
 * waiting, so a busy loop skips io_uring_enter when there is nothing. */
static const unsigned plain_flags[] = {
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
    IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
    0,
};
static const unsigned sqpoll_flags[] = {
    IORING_SETUP_SQPOLL | IORING_SETUP_SINGLE_ISSUER,
    IORING_SETUP_SQPOLL,
};

typedef struct uring_opts {
	unsigned idle_ms; /* sq_thread_idle */
	int sq_cpu;	  /* IORING_SETUP_SQ_AFF's CPU, -1: none */
	bool regfd;	  /* register the ring fd with the worker's thread */
	bool dsend;	  /* direct send first (plain io_uring only) */
} uring_opts;

/* Set up a ring with the best flags the kernel takes. Only EINVAL (an
 * unknown flag) is worth a retry; EPERM, ENOMEM, ENOSYS are the kernel
 * saying no to io_uring itself. */
static int setup(struct io_uring *ring, unsigned entries, bool sqpoll, const uring_opts *o,
		 int attach_fd, unsigned *flags_out)
{
	const unsigned *flags = sqpoll ? sqpoll_flags : plain_flags;
	size_t n = sqpoll ? sizeof(sqpoll_flags) / sizeof(sqpoll_flags[0])
			  : sizeof(plain_flags) / sizeof(plain_flags[0]);
	int rc = -EINVAL;
	for (int attach = attach_fd >= 0; attach >= 0; attach--) {
		for (size_t i = 0; i < n; i++) {
			struct io_uring_params p;
			memset(&p, 0, sizeof(p));
			p.flags = flags[i];
			if (sqpoll) {
				p.sq_thread_idle = o->idle_ms;
				if (o->sq_cpu >= 0) {
					p.flags |= IORING_SETUP_SQ_AFF;
					p.sq_thread_cpu = (unsigned)o->sq_cpu;
				}
			}
			if (attach) {
				p.flags |= IORING_SETUP_ATTACH_WQ;
				p.wq_fd = (unsigned)attach_fd;
			}
			rc = io_uring_queue_init_params(entries, ring, &p);
			if (rc == 0) {
				*flags_out = p.flags;
				return 0;
			}
			if (rc != -EINVAL)
				return rc;
		}
	}
	return rc;
}

/* A "NAME=0|1" option at p: its value, with *p moved past it; -1 if p
 * does not hold one. */
static int flag_option(const char **p, const char *name)
{
	size_t n = strlen(name);
	const char *q = *p;
	if (strncmp(q, name, n) || q[n] != '=' || (q[n + 1] != '0' && q[n + 1] != '1') ||
	    (q[n + 2] && (q[n + 2] != ',' || !q[n + 3])))
		return -1;
	*p = q + n + (q[n + 2] ? 3 : 2);
	return q[n + 1] == '1';
}

/* "idle_ms=N" and "sq_cpu=N", comma-separated, for io_uring-sqpoll;
 * "regfd=0|1" for both (register the ring fd, default 1; 0 is there to
 * measure what it is worth); "dsend=0|1" for io_uring (send(2) first,
 * default 1). */
static int parse_options(bool sqpoll, const char *options, uring_opts *o)
{
	o->idle_ms = 2;
	o->sq_cpu = -1;
	o->regfd = true;
	o->dsend = !sqpoll;
	if (!options || !options[0])
		return 0;
	const char *p = options;
	while (*p) {
		unsigned long max;
		const char *v;
		int f;
		if ((f = flag_option(&p, "regfd")) >= 0) {
			o->regfd = f;
			continue;
		}
		if (!sqpoll && (f = flag_option(&p, "dsend")) >= 0) {
			o->dsend = f;
			continue;
		}
		if (!sqpoll)
			return -EINVAL;
		if (strncmp(p, "idle_ms=", 8) == 0)
			v = p + 8, max = 60000;
		else if (strncmp(p, "sq_cpu=", 7) == 0)
			v = p + 7, max = CPU_SETSIZE - 1;
		else
			return -EINVAL;
		char *end;
		unsigned long n = strtoul(v, &end, 10);
		if (end == v || (*end && (*end != ',' || !end[1])) || n > max || *v == '-')
			return -EINVAL;
		if (v == p + 8)
			o->idle_ms = (unsigned)n;
		else
			o->sq_cpu = (int)n;
		p = *end ? end + 1 : end;
	}
	return 0;
}

/* The SQ thread is created by the kernel with the affinity of the thread
 * that sets the ring up. In a process that may run on one CPU only
 * (taskset -c 0, a one-CPU cpuset) it takes turns with the worker on
 * that CPU: it spins idle_ms after each submission while the worker,
 * which has the completions to handle, waits for the scheduler (the same
 * HTTP server: 45-48k requests/s under io_uring, 1.4-2.1k under sqpoll
 * with taskset -c 0). Refused then, with what to do instead, unless
 * sq_cpu places the thread deliberately. */
static int sqpoll_cpu_check(const uring_opts *o)
{
	if (o->sq_cpu >= 0)
		return 0;
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) < 0 || CPU_COUNT(&set) != 1)
		return 0;
	int cpu = 0;
	while (cpu < CPU_SETSIZE - 1 && !CPU_ISSET(cpu, &set))
		cpu++;
	fprintf(stderr,
		"ringlet: io_uring-sqpoll: this process may run on CPU %d only; the kernel's SQ "
		"polling thread would share it with the worker and take turns with it (throughput "
		"falls 20-30x). Use the io_uring policy, allow a second CPU (taskset -c %d,N), or "
		"place the thread on another one with \"io_uring-sqpoll:sq_cpu=N\"\n",
		cpu, cpu);
	return -EBUSY;
}

/* MSG_RING support, asked of the kernel once per process: 1 yes, 2 no. */
static atomic_int msg_ring_state;

static bool has_msg_ring(struct io_uring *ring)
{
	int s = atomic_load_explicit(&msg_ring_state, memory_order_relaxed);
	if (s)
		return s == 1;
	struct io_uring_probe *p = io_uring_get_probe_ring(ring);
	bool ok = p && io_uring_opcode_supported(p, IORING_OP_MSG_RING);
	if (p)
		io_uring_free_probe(p);
	atomic_store_explicit(&msg_ring_state, ok ? 1 : 2, memory_order_relaxed);
	return ok;
}

/* A free SQE, submitting the queued ones first if the SQ is full. */
static inline struct io_uring_sqe *get_sqe(uring *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	while (!sqe) {
		RLT__STAT_INC(u->st->enters);
		io_uring_submit(&u->ring);
		sqe = io_uring_get_sqe(&u->ring);
	}
	RLT__STAT_INC(u->st->sqes);
	return sqe;
}

static void arm_wake(uring *u)
{
	struct io_uring_sqe *sqe = get_sqe(u);
	io_uring_prep_read(sqe, u->wake_fd, &u->wake_buf, sizeof(u->wake_buf), 0);
	io_uring_sqe_set_data64(sqe, UD_WAKE);
	u->wake_armed = true;
	u->inflight++;
}

static int probe_common(bool sqpoll, const char *options)
{
	uring_opts o;
	unsigned flags;
	int rc = parse_options(sqpoll, options, &o);
	if (rc < 0)
		return rc;
	if (sqpoll && (rc = sqpoll_cpu_check(&o)) < 0)
		return rc;
	struct io_uring ring;
	rc = setup(&ring, 8, sqpoll, &o, -1, &flags);
	if (rc < 0)
		return rc;
	io_uring_queue_exit(&ring);
	return 0;
}

static int probe_plain(const char *options)
{
	return probe_common(false, options);
}
static int probe_sqpoll(const char *options)
{
	return probe_common(true, options);
}

static int init_common(rlt_loop *loop, bool sqpoll)
{
	uring_opts o;
	unsigned flags = 0;
	int rc = parse_options(sqpoll, loop->options, &o);
	if (rc < 0)
		return rc;
	uring *u = rlt__calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->wake_fd = -1;
	u->st = rlt__loop_stats(loop, &u->own_stats);
	int attach_fd = -1;
	if (sqpoll && loop->index > 0) {
		rlt_loop *first = rlt__loop_peer(loop, 0);
		if (first && first->policy == loop->policy && first->state)
			attach_fd = ((uring *)first->state)->ring_fd;
	}
	unsigned entries = loop->queue_depth ? loop->queue_depth : 256;
	rc = setup(&u->ring, entries, sqpoll, &o, attach_fd, &flags);
	if (rc < 0) {
		rlt__free(u);
		return rc;
	}
	u->sqpoll = sqpoll;
	u->taskrun_flag = !sqpoll && (flags & IORING_SETUP_TASKRUN_FLAG);
	u->ring_fd = u->ring.ring_fd;
	u->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (u->wake_fd < 0) {
		rc = -errno;
		io_uring_queue_exit(&u->ring);
		rlt__free(u);
		return rc;
	}
	has_msg_ring(&u->ring);
	/* Register the ring's fd with this thread (5.18+): io_uring_enter then
	 * finds the ring by index, without fdget/fdput, which in a process with
	 * threads is an atomic on the file's reference count per system call.
	 * Unregistered by cancel_all, on this thread, at the end. Optional: a
	 * kernel without it (or out of slots) enters by fd as before. */
	u->ring_registered = o.regfd && io_uring_register_ring_fd(&u->ring) == 1;
	u->direct_send = o.dsend;
	arm_wake(u);
	loop->state = u;
	return 0;
}

static int init_plain(rlt_loop *loop)
{
	return init_common(loop, false);
}
static int init_sqpoll(rlt_loop *loop)
{
	return init_common(loop, true);
}

/* The loop's provided buffers, at the first RLT_OP_RECV_MULTI (its worker's
 * thread, which SINGLE_ISSUER asks of a registration). 0 or a negative
 * errno, remembered: a kernel without buffer rings (< 5.19) is asked once. */
static __attribute__((noinline)) int pbufs_setup(uring *u)
{
	pbufs *pb = &u->pb;
	if (pb->state)
		return pb->state < 0 ? pb->state : 0;
	pb->n = pbuf_knob_n ? pbuf_knob_n : 64;
	pb->size = pbuf_knob_size ? pbuf_knob_size : 16384;
	pb->ring_bytes = (size_t)pb->n * sizeof(struct io_uring_buf);
	void *r =
	    mmap(NULL, pb->ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	pb->mem = rlt__malloc((size_t)pb->n * pb->size);
	if (r == MAP_FAILED || !pb->mem) {
		if (r != MAP_FAILED)
			munmap(r, pb->ring_bytes);
		rlt__free(pb->mem);
		pb->mem = NULL;
		return -ENOMEM; /* not remembered: memory may come back */
	}
	pb->br = r;
	struct io_uring_buf_reg reg;
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (__u64)(uintptr_t)r;
	reg.ring_entries = pb->n;
	reg.bgid = PBUF_BGID;
	int rc = io_uring_register_buf_ring(&u->ring, &reg, 0);
	if (rc < 0) {
		munmap(r, pb->ring_bytes);
		rlt__free(pb->mem);
		pb->br = NULL;
		pb->mem = NULL;
		pb->state = rc == -EINVAL ? -EOPNOTSUPP : rc;
		return pb->state;
	}
	io_uring_buf_ring_init(pb->br);
	int mask = io_uring_buf_ring_mask(pb->n);
	for (unsigned i = 0; i < pb->n; i++)
		io_uring_buf_ring_add(pb->br, pb->mem + (size_t)i * pb->size, pb->size,
				      (unsigned short)i, mask, (int)i);
	io_uring_buf_ring_advance(pb->br, (int)pb->n);
	pb->state = 1;
	return 0;
}

static void fini(rlt_loop *loop)
{
	uring *u = loop->state;
	if (!u)
		return;
	io_uring_queue_exit(&u->ring);
	if (u->pb.br) {
		munmap(u->pb.br, u->pb.ring_bytes);
		rlt__free(u->pb.mem);
	}
	if (u->wake_fd >= 0)
		close(u->wake_fd);
	rlt__free(u);
	loop->state = NULL;
}

/* The op's deadline as a linked timeout: the kernel ends the op with
 * -ECANCELED when it passes (the timeout's own CQE, -ETIME or -ECANCELED,
 * has user_data 0 and is ignored). The timespec is read when the SQE is
 * submitted, so it lives in the op (on the waiting task's stack) rather
 * than here. */
static void link_deadline(uring *u, struct io_uring_sqe *sqe, rlt_op *op)
{
	_Static_assert(sizeof(op->policy_data) >= sizeof(struct __kernel_timespec), "room for ts");
	struct __kernel_timespec *ts = (struct __kernel_timespec *)(void *)op->policy_data;
	ts->tv_sec = (long long)(op->deadline / 1000000000u);
	ts->tv_nsec = (long long)(op->deadline % 1000000000u);
	sqe->flags |= IOSQE_IO_LINK;
	struct io_uring_sqe *lt = io_uring_get_sqe(&u->ring); /* room checked by submit */
	io_uring_prep_link_timeout(lt, ts, IORING_TIMEOUT_ABS);
	RLT__STAT_INC(u->st->sqes);
	io_uring_sqe_set_data64(lt, 0);
}

void rlt__uring_submit(rlt_loop *loop, rlt_op *op)
{
	uring *u = loop->state;
	if (op->code >= RLT_OP_COUNT) {
		rlt__op_complete(op, -EINVAL);
		return;
	}
#ifdef RLT_TSAN
	/* ThreadSanitizer tracks fds through its close() interceptor; a close
	 * done by the ring goes unseen, and the next task to get that fd
	 * number (from pipe2, socket, ...) looks as if it raced with the last
	 * one. So in TSan builds, and only there, close with close(2). */
	if (op->code == RLT_OP_CLOSE) {
		rlt__op_complete(op, close(op->fd) < 0 ? -errno : 0);
		return;
	}
#endif
	if (op->code == RLT_OP_SEND && (op->hint & RLT_OP_HINT_ALONE) && u->direct_send) {
		/* send(2) first, as the epoll policy does, when the worker has
		 * nothing else to run: a socket with room (the usual case: a
		 * response after a request) takes the bytes now, and the task
		 * goes on without a suspension, an SQE, a completion to reap,
		 * and the extra trip through the kernel that collects it (the
		 * worker would run dry on the send, enter, get its CQE at once,
		 * run the task, then sleep). With other tasks to run, the SQE:
		 * their ops go to the kernel with it in one system call (under
		 * load, one send(2) per response cost 6% more CPU per request).
		 * No room: the SQE, whose poll waits for it. Not under sqpoll,
		 * whose point is that a send costs no system call. */
		ssize_t n = rlt__sys_send(op->fd, op->u.msg.buf, op->u.msg.len,
					  op->u.msg.flags | MSG_DONTWAIT);
		if (n >= 0 || (errno != EAGAIN && errno != EINTR) ||
		    (op->u.msg.flags & MSG_DONTWAIT)) {
			rlt__op_complete(op, n >= 0 ? (int)n : -errno);
			return;
		}
	}
	if (__builtin_expect(op->deadline != 0, 0))
		while (io_uring_sq_space_left(&u->ring) < 2) {
			RLT__STAT_INC(u->st->enters);
			io_uring_submit(&u->ring); /* the op and its timeout go in together */
		}
	struct io_uring_sqe *sqe = get_sqe(u);
	switch ((rlt_opcode)op->code) {
	case RLT_OP_READ:
		io_uring_prep_read(sqe, op->fd, op->u.rw.buf, (unsigned)op->u.rw.len,
				   (__u64)op->u.rw.off);
		break;
	case RLT_OP_WRITE:
		io_uring_prep_write(sqe, op->fd, op->u.rw.buf, (unsigned)op->u.rw.len,
				    (__u64)op->u.rw.off);
		break;
	case RLT_OP_READV:
		io_uring_prep_readv(sqe, op->fd, op->u.vec.iov, (unsigned)op->u.vec.iovcnt,
				    (__u64)op->u.vec.off);
		break;
	case RLT_OP_WRITEV:
		io_uring_prep_writev(sqe, op->fd, op->u.vec.iov, (unsigned)op->u.vec.iovcnt,
				     (__u64)op->u.vec.off);
		break;
	case RLT_OP_OPENAT:
		io_uring_prep_openat(sqe, op->fd, op->u.open.path, op->u.open.flags,
				     op->u.open.mode);
		break;
	case RLT_OP_CLOSE:
		io_uring_prep_close(sqe, op->fd);
		break;
	case RLT_OP_FSYNC:
		io_uring_prep_fsync(sqe, op->fd, op->u.fsync.datasync ? IORING_FSYNC_DATASYNC : 0);
		break;
	case RLT_OP_STATX:
		io_uring_prep_statx(sqe, op->fd, op->u.statx.path, op->u.statx.flags,
				    op->u.statx.mask, op->u.statx.out);
		break;
	case RLT_OP_ACCEPT:
		io_uring_prep_accept(sqe, op->fd, op->u.accept.addr, op->u.accept.addrlen,
				     op->u.accept.flags);
		break;
	case RLT_OP_CONNECT:
		io_uring_prep_connect(sqe, op->fd, op->u.connect.addr, op->u.connect.addrlen);
		break;
	case RLT_OP_RECV:
		io_uring_prep_recv(sqe, op->fd, op->u.msg.buf, op->u.msg.len, op->u.msg.flags);
		/* The caller expects nothing yet: arm the poll without the
		 * attempt that would fail (and cost a recvmsg in the kernel). */
		if (op->hint & RLT_OP_HINT_POLL_FIRST)
			sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
		break;
	case RLT_OP_SEND:
		io_uring_prep_send(sqe, op->fd, op->u.msg.buf, op->u.msg.len, op->u.msg.flags);
		break;
	case RLT_OP_SHUTDOWN:
		io_uring_prep_shutdown(sqe, op->fd, op->u.shutdown.how);
		break;
	case RLT_OP_POLL:
		io_uring_prep_poll_add(sqe, op->fd, op->u.poll.events);
		break;
	case RLT_OP_WAITID:
		/* io_uring_prep_waitid, by hand: id in fd, idtype in len, options
		 * in file_index, the siginfo in addr2. A kernel without it
		 * answers -EINVAL. */
		io_uring_prep_rw(IORING_OP_WAITID, sqe, (int)op->u.waitid.id, NULL,
				 (unsigned)op->u.waitid.idtype, 0);
		sqe->file_index = (__u32)op->u.waitid.options;
		sqe->addr2 = (__u64)(uintptr_t)op->u.waitid.info;
		break;
	case RLT_OP_SENDMSG:
		io_uring_prep_sendmsg(sqe, op->fd, op->u.msg.buf, (unsigned)op->u.msg.flags);
		break;
	case RLT_OP_RECVMSG:
		io_uring_prep_recvmsg(sqe, op->fd, op->u.msg.buf, (unsigned)op->u.msg.flags);
		break;
	case RLT_OP_ACCEPT_MULTI:
		/* One SQE, a CQE per connection (IORING_CQE_F_MORE while it
		 * goes on). addr would be overwritten by every accept. */
		io_uring_prep_multishot_accept(sqe, op->fd, NULL, NULL, op->u.accept.flags);
		break;
	case RLT_OP_RECV_MULTI: {
		/* One SQE, a CQE per chunk received, each in a buffer of the
		 * loop's group (IORING_CQE_F_BUFFER), given back in reap. */
		int rc = pbufs_setup(u);
		if (rc < 0) {
			/* The SQE was taken: make it a no-op whose CQE is ignored. */
			io_uring_prep_nop(sqe);
			io_uring_sqe_set_data64(sqe, 0);
			rlt__op_complete(op, rc);
			return;
		}
		io_uring_prep_recv(sqe, op->fd, NULL, 0, 0);
		sqe->ioprio |= IORING_RECV_MULTISHOT;
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = PBUF_BGID;
		break;
	}
	case RLT_OP_SPLICE:
		/* The kernel runs it in an io-wq thread (splice is always punted):
		 * a wait there for the output blocks that thread, not ours. */
		io_uring_prep_splice(sqe, op->u.splice.fd_in, op->u.splice.off_in, op->fd,
				     op->u.splice.off_out, op->u.splice.len, op->u.splice.flags);
		break;
	case RLT_OP_COUNT:
		break;
	}
	io_uring_sqe_set_data(sqe, op);
	u->inflight++;
	if (__builtin_expect(op->deadline != 0, 0))
		link_deadline(u, sqe, op);
}

/* A CQE of a multishot op (F_MORE: it goes on), or one that carries a
 * provided buffer (F_BUFFER: RLT_OP_RECV_MULTI's, also its last). The sink
 * copies the bytes before it returns; then the buffer goes back to the
 * kernel. Nothing here touches op after the sink: once it has heard the
 * end, the op's owner may submit it again from another thread. Returns
 * whether the op ended. */
static __attribute__((noinline)) bool reap_multi(uring *u, rlt_op *op,
						 const struct io_uring_cqe *cqe)
{
	bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
	void *buf = NULL;
	unsigned bid = 0;
	if (cqe->flags & IORING_CQE_F_BUFFER) {
		bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
		buf = u->pb.mem + (size_t)bid * u->pb.size;
		op->u.recvm.data = buf;
	}
	if (more) {
		rlt__op_deliver(op, cqe->res);
	} else {
		u->inflight--;
		rlt__op_complete(op, cqe->res);
	}
	if (buf) {
		io_uring_buf_ring_add(u->pb.br, buf, u->pb.size, (unsigned short)bid,
				      io_uring_buf_ring_mask(u->pb.n), 0);
		io_uring_buf_ring_advance(u->pb.br, 1);
	}
	return !more;
}

/* Complete every CQE that is ready: the hot path of completions. */
static int reap(uring *u)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	int done = 0;
	io_uring_for_each_cqe (&u->ring, head, cqe) {
		uint64_t ud = cqe->user_data;
		n++;
		if (ud > UD_MAX) {
			if (__builtin_expect(cqe->flags & (IORING_CQE_F_MORE | IORING_CQE_F_BUFFER),
					     0)) {
				done += reap_multi(u, (rlt_op *)(uintptr_t)ud, cqe);
				continue;
			}
			u->inflight--;
			done++;
			rlt__op_complete((rlt_op *)(uintptr_t)ud, cqe->res);
		} else if (ud == UD_WAKE) {
			u->inflight--;
			u->wake_armed = false;
		}
	}
	io_uring_cq_advance(&u->ring, n);
	RLT__STAT_ADD(u->st->cqes, n);
	RLT__STAT_SET(u->st->cq_overflows, IO_URING_READ_ONCE(*u->ring.cq.koverflow));
	if (!u->wake_armed && !u->no_rearm)
		arm_wake(u);
	return done;
}

int rlt__uring_poll(rlt_loop *loop, int64_t timeout_ns)
{
	uring *u = loop->state;
	if (timeout_ns == 0) {
		bool must_enter = io_uring_sq_ready(&u->ring) > 0;
		if (u->sqpoll) {
			/* The SQ thread picks SQEs up; a system call only if it
			 * sleeps (liburing checks IORING_SQ_NEED_WAKEUP). */
			if (must_enter) {
				if (IO_URING_READ_ONCE(*u->ring.sq.kflags) & IORING_SQ_NEED_WAKEUP)
					RLT__STAT_INC(u->st->enters);
				io_uring_submit(&u->ring);
			}
		} else {
			if (!must_enter && u->inflight) {
				/* Completions can be waiting in the kernel (deferred
				 * task work); with TASKRUN_FLAG the kernel says so,
				 * without it, ask. */
				must_enter =
				    !u->taskrun_flag ||
				    (IO_URING_READ_ONCE(*u->ring.sq.kflags) & IORING_SQ_TASKRUN);
			}
			if (must_enter) {
				RLT__STAT_INC(u->st->enters);
				io_uring_submit_and_get_events(&u->ring);
			}
		}
		if (!io_uring_cq_ready(&u->ring))
			return 0; /* the common case of a busy turn: nothing to do */
		return reap(u);
	}
	struct io_uring_cqe *cqe;
	RLT__STAT_INC(u->st->enters);
	if (timeout_ns > 0) {
		struct __kernel_timespec ts = {
		    .tv_sec = timeout_ns / 1000000000,
		    .tv_nsec = timeout_ns % 1000000000,
		};
		io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
	} else {
		io_uring_submit_and_wait(&u->ring, 1);
	}
	return reap(u);
}

static void wake(rlt_loop *target, rlt_loop *from)
{
	uring *t = target->state;
	if (from && from->policy == target->policy && from->state &&
	    atomic_load_explicit(&msg_ring_state, memory_order_relaxed) == 1) {
		/* From the waker's own ring (it is a worker): no eventfd, and the
		 * target's kernel wait ends on the CQE this posts. */
		uring *f = from->state;
		struct io_uring_sqe *sqe = get_sqe(f);
		io_uring_prep_msg_ring(sqe, t->ring_fd, 0, UD_MSG, 0);
		/* No CQE here on success; a failure CQE has user_data 0. */
		sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
		io_uring_sqe_set_data64(sqe, 0);
		/* Now, not at the end of the turn: the target is asleep. */
		if (!f->sqpoll)
			RLT__STAT_INC(f->st->enters);
		io_uring_submit(&f->ring);
		return;
	}
	uint64_t one = 1;
	ssize_t n;
	do
		n = write(t->wake_fd, &one, sizeof(one));
	while (n < 0 && errno == EINTR);
	/* EAGAIN means the counter is already non-zero: a wake-up is pending. */
}

static int cancel(rlt_loop *loop, rlt_op *op)
{
	uring *u = loop->state;
	if (op->state_ == RLT__OP_DONE)
		return -ENOENT;
	struct io_uring_sqe *sqe = get_sqe(u);
	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op, 0);
	io_uring_sqe_set_data64(sqe, 0);
	return 0;
}

static void cancel_all(rlt_loop *loop)
{
	uring *u = loop->state;
	u->no_rearm = true;
	if (u->inflight) {
		struct io_uring_sqe *sqe = get_sqe(u);
		io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
		io_uring_sqe_set_data64(sqe, 0);
		while (u->inflight) {
			io_uring_submit_and_wait(&u->ring, 1);
			reap(u);
		}
	}
	/* On the thread that registered it (fini may run on another, where the
	 * unregistration would miss and the registration would keep the ring
	 * alive as long as this thread). */
	if (u->ring_registered) {
		io_uring_unregister_ring_fd(&u->ring);
		u->ring_registered = false;
	}
}

/* Linked timeouts (op deadlines) only without SQPOLL: an SQ thread shared
 * by several rings submits at most 8 SQEs per ring per pass, and a link
 * cut at the end of a pass goes in without its timeout. */
#define URING_POLICY(name_, summary_, probe_, init_, flags_)                                       \
	{                                                                                          \
		.name = name_, .summary = summary_, .native_ops = RLT_OP_ALL, .probe = probe_,     \
		.init = init_, .fini = fini, .submit = rlt__uring_submit, .poll = rlt__uring_poll, \
		.wake = wake, .cancel = cancel, .cancel_all = cancel_all,                          \
		.flags = (flags_) | RLT_POLICY_MULTISHOT | RLT_POLICY_MULTISHOT_RECV,              \
	}

const rlt_policy rlt__policy_uring = URING_POLICY(
    "io_uring", "one io_uring per worker, DEFER_TASKRUN, batched submissions (default)",
    probe_plain, init_plain, RLT_POLICY_DEADLINES);

const rlt_policy rlt__policy_sqpoll = URING_POLICY(
    "io_uring-sqpoll",
    "io_uring with a kernel SQ polling thread shared by the workers (costs a core under load)",
    probe_sqpoll, init_sqpoll, 0);
