#ifndef RINGLET_POLICY_H
#define RINGLET_POLICY_H

#include "common.h"

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

RLT_EXTERN_C_BEGIN

/*
 * Loop policies: how a worker talks to the kernel.
 *
 * Every worker owns one "loop", an instance of the runtime's policy. The
 * scheduler hands the loop the operations its tasks start (rlt_read(),
 * rlt_accept(), ...), asks it once per turn for what completed, sleeps in
 * it when no task is runnable, and has other threads wake it through it.
 * Everything above (tasks, timers, futures, the public I/O calls) is the
 * same under every policy.
 *
 * Shipped: "io_uring" (the default), "io_uring-sqpoll", "epoll", and
 * "fault:<options>", a wrapper that injects errors into another policy. A
 * program may register its own (rlt_policy_register) before it calls
 * rlt_run(), then select it by name like the others: by rlt_config.policy,
 * or by the RINGLET_POLICY environment variable, which wins. A name may be
 * followed by ":options", handed to the policy as rlt_loop.options.
 *
 * docs/POLICIES.md walks through writing one.
 */

/* The operations a loop carries out. */
typedef enum rlt_opcode {
	RLT_OP_READ,	 /* u.rw, fd */
	RLT_OP_WRITE,	 /* u.rw, fd */
	RLT_OP_READV,	 /* u.vec, fd */
	RLT_OP_WRITEV,	 /* u.vec, fd */
	RLT_OP_OPENAT,	 /* u.open, fd is the directory fd */
	RLT_OP_CLOSE,	 /* fd */
	RLT_OP_FSYNC,	 /* u.fsync, fd */
	RLT_OP_STATX,	 /* u.statx, fd is the directory fd */
	RLT_OP_ACCEPT,	 /* u.accept, fd */
	RLT_OP_CONNECT,	 /* u.connect, fd */
	RLT_OP_RECV,	 /* u.msg, fd */
	RLT_OP_SEND,	 /* u.msg, fd (flags already include MSG_NOSIGNAL) */
	RLT_OP_SHUTDOWN, /* u.shutdown, fd */
	RLT_OP_POLL,	 /* u.poll, fd: completes with the ready poll(2) events */
	RLT_OP_WAITID,	 /* u.waitid: waitid(2), blocking until a child changes state */
	RLT_OP_SENDMSG, /* u.msg, fd: buf is the struct msghdr *, len 0 (flags include MSG_NOSIGNAL)
			 */
	RLT_OP_RECVMSG, /* u.msg, fd: buf is the struct msghdr *, len 0 */
	/* u.accept, fd; only for policies with RLT_POLICY_MULTISHOT. Accepts
	 * connections until stopped: rlt_op_deliver() once per new fd (or per
	 * error that does not end it), then rlt_op_complete() once at the end
	 * (0, or why it ended: -ECANCELED after cancel, -EMFILE, ...). */
	RLT_OP_ACCEPT_MULTI,
	/* u.splice: splice(2) from u.splice.fd_in to fd (the fd written to, as
	 * in io_uring's SQE), moving at most len bytes; completes with the
	 * count (0: end of the input) or a negative errno. ringlet asks it
	 * only with one side a pipe of its own (rlt_sendfile: a regular file
	 * into an empty pipe, then that pipe into the output), and waits for
	 * fd to take the bytes. A policy that cannot do it without blocking
	 * completes it with -EOPNOTSUPP (epoll does): rlt_sendfile then
	 * uses sendfile(2) on the output made non-blocking, and rlt_poll. */
	RLT_OP_SPLICE,
	/* u.recvm, fd; only for policies with RLT_POLICY_MULTISHOT_RECV.
	 * Receives on a stream socket until stopped, into buffers the policy
	 * provides: rlt_op_deliver() once per chunk of bytes (res > 0, with
	 * u.recvm.data pointing at them, valid only during the call), then
	 * rlt_op_complete() once at the end: 0 for the end of the stream, a
	 * count (then u.recvm.data as above) when the last chunk came with the
	 * end, -ECANCELED after cancel, -ENOBUFS when the policy ran out of
	 * buffers (the caller may submit again), or the error that ended it
	 * (-ECONNRESET, ...). */
	RLT_OP_RECV_MULTI,
	RLT_OP_COUNT
} rlt_opcode;

#define RLT_OP_BIT(code) (1u << (code))

/* "read", "write", ... for an rlt_opcode; "?" for anything else. */
RLT_API const char *rlt_op_name(unsigned code);
#define RLT_OP_ALL ((1u << RLT_OP_COUNT) - 1u)

struct iovec;
struct statx;

/* rlt_op.hint: RLT_OP_RECV on a socket that has most likely received
 * nothing yet (rlt_recv_idle): a policy may wait for readability before
 * the first attempt instead of trying at once (io_uring:
 * IORING_RECVSEND_POLL_FIRST). */
#define RLT_OP_HINT_POLL_FIRST (1u << 0)
/* rlt_op.hint: the submitting worker has nothing else to run, so the op
 * would reach the kernel alone, in the sleep that follows: a policy that
 * batches submissions may do it at once instead (io_uring: an RLT_OP_SEND
 * tries send(2) first). Without it, other tasks are about to queue ops
 * that one system call can carry together. */
#define RLT_OP_HINT_ALONE (1u << 1)

/*
 * One operation in flight. ringlet fills the request; the policy carries it
 * out and calls rlt_op_complete() exactly once with what the system call
 * would have returned: a count, an fd or 0 on success, a negative errno on
 * failure. The op (and every buffer it names) stays valid until then. An
 * operation a policy cannot do without blocking its worker for an unbounded
 * time (epoll and RLT_OP_WAITID) completes with -EOPNOTSUPP; the callers
 * have another way (rlt_process_wait() polls a pidfd).
 */
typedef struct rlt_op {
	uint8_t code; /* rlt_opcode */
	/* RLT_OP_HINT_*: what the caller expects, for a policy that can use
	 * it; a policy may ignore every hint (the result must not change). */
	uint8_t hint;
	int fd;
	union {
		struct {
			void *buf;
			size_t len;
			int64_t off; /* -1: the file's current position */
		} rw;
		struct {
			const struct iovec *iov;
			int iovcnt;
			int64_t off;
		} vec;
		struct {
			const char *path;
			int flags;
			unsigned mode;
		} open;
		struct {
			unsigned datasync; /* 1: fdatasync */
		} fsync;
		struct {
			const char *path;
			int flags;
			unsigned mask;
			struct statx *out;
		} statx;
		struct {
			struct sockaddr *addr;
			socklen_t *addrlen;
			int flags;
		} accept;
		struct {
			const struct sockaddr *addr;
			socklen_t addrlen;
		} connect;
		struct {
			void *buf; /* const for SEND */
			size_t len;
			int flags;
		} msg;
		struct {
			/* (policy) the bytes of the result being delivered */
			const void *data;
		} recvm;
		struct {
			int how;
		} shutdown;
		struct {
			unsigned events;
		} poll;
		struct {
			int fd_in;
			int64_t off_in;	 /* -1: fd_in's position (always -1 for a pipe) */
			int64_t off_out; /* likewise for fd */
			unsigned len;
			unsigned flags; /* SPLICE_F_* */
		} splice;
		struct {
			int idtype;  /* P_PID, P_PIDFD, ... */
			unsigned id; /* the pid, or the pidfd */
			void *info;  /* siginfo_t *, filled in */
			int options; /* WEXITED, ... (never WNOHANG) */
		} waitid;
	} u;
	/* With RLT_POLICY_DEADLINES: when the op must end (CLOCK_MONOTONIC ns,
	 * 0: never). If it has not completed by then, the policy completes it
	 * with -ECANCELED (ringlet reports -ETIMEDOUT). Other policies always
	 * see 0: ringlet keeps the deadline with a timer and calls cancel. */
	uint64_t deadline;
	/* The policy's, while the op is in flight (links, state, a deadline). */
	void *policy_data[4];
	/* ringlet's own: do not touch. */
	int32_t res_;
	uint8_t state_;
	void *task_;
	void *fdnext_, *fdpprev_; /* the waits on fd (io/fdwait.h) */
} rlt_op;

/*
 * A worker's instance of a policy. ringlet fills everything but state
 * before init; the policy keeps its per-worker data in state. A wrapping
 * policy (like "fault") makes its own rlt_loop for the policy it wraps,
 * copying the fields and setting policy and options.
 */
typedef struct rlt_loop {
	void *state; /* the policy's, set by init */
	const struct rlt_policy *policy;
	const char *options; /* what followed "name:" ("" if nothing) */
	unsigned index;	     /* the worker's index, 0..nworkers-1 */
	unsigned nworkers;
	unsigned queue_depth; /* rlt_config.ring_entries: a sizing hint */
	void *runtime_;	      /* ringlet's own */
} rlt_loop;

/* The vtable. Calls marked (worker) come from the loop's own worker thread
 * only; a loop is never used by two threads at once except through wake. */
/* rlt_policy.flags */
#define RLT_POLICY_DEADLINES                                                                       \
	(1u << 0) /* submit honours rlt_op.deadline (of every op but RLT_OP_SPLICE, whose          \
		     deadline ringlet keeps with a timer) */
#define RLT_POLICY_MULTISHOT (1u << 1) /* submit takes RLT_OP_ACCEPT_MULTI */
/* submit takes RLT_OP_RECV_MULTI (rlt_rxq: include/ringlet/rxq.h) */
#define RLT_POLICY_MULTISHOT_RECV (1u << 2)

typedef struct rlt_policy {
	const char *name;    /* what RINGLET_POLICY selects; no ':' */
	const char *summary; /* one line, for `tools/ringlet policies` */
	/* RLT_OP_BIT()s of the operations done without blocking the worker
	 * thread. An op outside the set may still be accepted, but it may run
	 * synchronously (as epoll does for regular files). */
	uint32_t native_ops;

	/* Can this policy start here (kernel support, sysctls, options)? 0 or
	 * a negative errno; NULL means always. Called before any worker
	 * exists, from the thread calling rlt_run(), and by
	 * rlt_policy_probe(). */
	int (*probe)(const char *options);
	/* (worker) Set up loop->state. 0 or a negative errno: the run fails
	 * (or falls back, see rlt_config.policy_strict). */
	int (*init)(rlt_loop *loop);
	/* Free loop->state. No op is in flight (cancel_all ran). May be
	 * called from another thread once the worker's thread is done. */
	void (*fini)(rlt_loop *loop);
	/* (worker) Take op. The policy may complete it at once (before
	 * returning: the task then does not even suspend) or later from
	 * poll. Batching is the policy's business: nothing has to reach the
	 * kernel before the next poll. */
	void (*submit)(rlt_loop *loop, rlt_op *op);
	/* (worker) Push out what was submitted and complete what is done.
	 * timeout_ns 0: never block; < 0: block until at least one op
	 * completes or wake is called; > 0: block at most that long. A wake
	 * that comes before the sleep must still end it (no lost wake-ups).
	 * Returns how many ops completed, or a negative errno. */
	int (*poll)(rlt_loop *loop, int64_t timeout_ns);
	/* (any thread) End a sleep in poll, now or the next one. from is the
	 * calling worker's own loop (same runtime, same policy) or NULL when
	 * the caller is not a worker. Must be async-signal-safe enough to call
	 * with no lock held; must not block. */
	void (*wake)(rlt_loop *target, rlt_loop *from);
	/* (worker) Ask an op in flight on this loop to stop. It still
	 * completes exactly once: with -ECANCELED, or with its real result if
	 * it won the race. Returns 0 or -ENOENT (already completed). */
	int (*cancel)(rlt_loop *loop, rlt_op *op);
	/* (worker) Shutdown: make every op in flight complete (normally with
	 * -ECANCELED) before returning. */
	void (*cancel_all)(rlt_loop *loop);
	unsigned flags; /* RLT_POLICY_* */
} rlt_policy;

/* (policy) Report op's result. On the loop's worker thread: inside submit
 * or poll (or cancel / cancel_all). */
RLT_API void rlt_op_complete(rlt_op *op, int32_t res);

/* (policy) One result of a multishot op (RLT_OP_ACCEPT_MULTI, RLT_OP_RECV_MULTI) that stays
 * in flight; same threads as rlt_op_complete. The op still ends with one
 * rlt_op_complete(). */
RLT_API void rlt_op_deliver(rlt_op *op, int32_t res);

/*
 * Register a policy under p->name; p must stay valid for the life of the
 * process. Call before rlt_run(). Returns 0, or -EINVAL (a NULL field among
 * name, init, fini, submit, poll, wake, cancel, cancel_all, or a ':' in the
 * name), -EEXIST (the name is taken), -ENOSPC (32 policies already).
 * Thread-safe.
 */
RLT_API int rlt_policy_register(const rlt_policy *p);

/* The policy registered under name (up to a ':'), or NULL. */
RLT_API const rlt_policy *rlt_policy_find(const char *name);

/* Up to max registered policies in out[], shipped ones first; returns how
 * many exist. */
RLT_API size_t rlt_policy_list(const rlt_policy **out, size_t max);

/* Whether spec ("name" or "name:options") could start here: 0, -ENOENT (no
 * such policy) or the probe's negative errno. */
RLT_API int rlt_policy_probe(const char *spec);

RLT_EXTERN_C_END

#endif
