/*
 * The "fault" policy: another policy with faults injected, deterministically
 * from a seed, to test ringlet and the programs built on it.
 *
 *   RINGLET_POLICY="fault:seed=7,rate=0.1,inner=io_uring,errors=EINTR+EIO,short=1,delay_us=200"
 *
 * Options (comma-separated, all optional; anything else is -EINVAL from
 * probe and init):
 *   seed=N        PRNG seed, 64-bit unsigned (default 1)
 *   rate=R        probability, 0..1, that an op gets a fault (default 0.05)
 *   inner=NAME    the policy wrapped (default io_uring): any registered one
 *                 but fault itself. Its options cannot be given (no ':').
 *   errors=A+B    errors to inject, among EINTR EAGAIN ENOMEM ECONNRESET
 *                 EIO; "none" or empty for none (default: all five)
 *   short=0|1     inject short transfers (default 1)
 *   delay_us=N    inject delays of N us; 0, the default, means none
 *
 * Each op submitted draws once: with probability rate it gets exactly one
 * fault, picked uniformly among the kinds that apply to it:
 *
 *   fault        applies to                        effect
 *   -EINTR       every op but CLOSE                completes at once, never
 *   -ENOMEM      every op but CLOSE                reaches the inner policy
 *   -EAGAIN      READ WRITE RECV SEND ACCEPT       (the op did nothing)
 *                SENDMSG RECVMSG
 *   -ECONNRESET  RECV SEND SENDMSG RECVMSG
 *   -EIO         READ WRITE READV WRITEV FSYNC
 *   short        READ WRITE RECV SEND, len > 1     len cut to [1, len-1]: the
 *                                                  result is the short count
 *                (not SENDMSG/RECVMSG: a datagram is sent or received whole)
 *   delay        every op but CLOSE                handed to the inner policy
 *                                                  delay_us later
 *
 * CLOSE is never touched: a failed close would leak the fd, or lie about it.
 * An op no enabled kind applies to passes through unharmed.
 * rate=1 with EINTR or EAGAIN enabled fails every attempt: code that
 * retries those (the stream helpers do) then retries for ever.
 *
 * Per worker, the PRNG is seeded from seed and the worker index: a run on
 * one worker whose tasks submit in a fixed order sees the same faults every
 * time. With several workers the faults per worker are reproducible, but
 * which op lands on which worker is not.
 *
 * The inner policy gets its own rlt_loop (the outer one's fields, with its
 * own policy and no options). io_uring-sqpoll as inner does not share its
 * SQ thread between workers (rlt__loop_peer finds the outer loops).
 *
 * RINGLET_FAULT_REPORT=1 prints, at fini, one line per worker on stderr
 * with the number of ops seen and of faults injected by kind.
 */
#include "io/policy.h"
#include "runtime/cpu.h"

#include "runtime/alloc.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum kind { K_EINTR, K_EAGAIN, K_ENOMEM, K_ECONNRESET, K_EIO, K_SHORT, K_DELAY, K_COUNT };
#define K_ERRORS 5 /* kinds 0 .. K_ERRORS-1 are errors */

#define B(code)	      RLT_OP_BIT(RLT_OP_##code)
#define ALL_BUT_CLOSE (RLT_OP_ALL & ~B(CLOSE))

static const struct {
	const char *name;
	int err;
	uint32_t ops; /* where it applies */
} kinds[K_COUNT] = {
    [K_EINTR] = {"EINTR", EINTR, ALL_BUT_CLOSE},
    [K_EAGAIN] = {"EAGAIN", EAGAIN,
		  B(READ) | B(WRITE) | B(RECV) | B(SEND) | B(ACCEPT) | B(SENDMSG) | B(RECVMSG)},
    [K_ENOMEM] = {"ENOMEM", ENOMEM, ALL_BUT_CLOSE},
    [K_ECONNRESET] = {"ECONNRESET", ECONNRESET, B(RECV) | B(SEND) | B(SENDMSG) | B(RECVMSG)},
    [K_EIO] = {"EIO", EIO, B(READ) | B(WRITE) | B(READV) | B(WRITEV) | B(FSYNC)},
    [K_SHORT] = {"short", 0, B(READ) | B(WRITE) | B(RECV) | B(SEND)},
    [K_DELAY] = {"delay", 0, ALL_BUT_CLOSE},
};

#define MAX_DELAY_US 60000000ull /* a minute: beyond it, a typo */

typedef struct fault_opts {
	uint64_t seed;
	double rate;
	const rlt_policy *inner;
	unsigned kinds; /* bits (1u << kind) of the kinds enabled */
	uint64_t delay_ns;
} fault_opts;

typedef struct fault {
	rlt_loop inner;
	fault_opts o;
	uint64_t rng;
	uint64_t ops;
	uint64_t injected[K_COUNT];
	/* Delayed ops, by deadline (ties in submission order), linked through
	 * policy_data[0]; the deadline is in policy_data[1..]. policy_data is
	 * ours only until the op is handed to the inner policy, which may use
	 * it: an op is unlinked before it is handed over, and is known to be
	 * ours only by being found on this list. */
	rlt_op *delay_head, *delay_tail;
	bool report;
} fault;

/* Faults injected by every fault loop of the process, for the test
 * harness (tests/rlt_test.h: a check that fails after a fault). */
static _Atomic uint64_t injected_total;

uint64_t rlt__fault_injected(void)
{
	return atomic_load_explicit(&injected_total, memory_order_relaxed);
}

/* ---- options ---- */

/* The value of one "key=value" item, NUL-terminated in buf. */
static bool item_value(const char *item, size_t len, const char *key, char *buf, size_t max)
{
	size_t klen = strlen(key);
	if (len <= klen || memcmp(item, key, klen) != 0 || item[klen] != '=')
		return false;
	size_t vlen = len - klen - 1;
	if (vlen >= max)
		vlen = max - 1; /* too long for any valid value: the parse fails */
	memcpy(buf, item + klen + 1, vlen);
	buf[vlen] = '\0';
	return true;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	if (!s[0] || s[0] == '-' || s[0] == '+')
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (*end || errno || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_errors(const char *s, unsigned *kinds_out)
{
	*kinds_out &= ~((1u << K_ERRORS) - 1);
	if (!s[0] || strcmp(s, "none") == 0)
		return 0;
	for (;;) {
		size_t len = strcspn(s, "+");
		int k = 0;
		while (k < K_ERRORS &&
		       !(strlen(kinds[k].name) == len && strncasecmp(s, kinds[k].name, len) == 0))
			k++;
		if (k == K_ERRORS)
			return -EINVAL; /* also an empty name: "EIO+", "+EIO" */
		*kinds_out |= 1u << k;
		if (!s[len])
			return 0;
		s += len + 1;
	}
}

static int parse_options(const char *options, fault_opts *o)
{
	*o = (fault_opts){
	    .seed = 1,
	    .rate = 0.05,
	    .inner = &rlt__policy_uring,
	    .kinds = ((1u << K_ERRORS) - 1) | (1u << K_SHORT),
	};
	const char *p = options ? options : "";
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		char v[64];
		int rc = 0;
		if (item_value(p, len, "seed", v, sizeof(v))) {
			rc = parse_u64(v, UINT64_MAX, &o->seed);
		} else if (item_value(p, len, "rate", v, sizeof(v))) {
			char *end;
			o->rate = strtod(v, &end);
			if (!v[0] || *end ||
			    !(o->rate >= 0.0 && o->rate <= 1.0)) /* NaN fails too */
				rc = -EINVAL;
		} else if (item_value(p, len, "inner", v, sizeof(v))) {
			/* No ':' (the inner policy's options are not supported), and
			 * not ourselves. */
			o->inner = strchr(v, ':') ? NULL : rlt_policy_find(v);
			if (!o->inner || o->inner == &rlt__policy_fault)
				rc = -EINVAL;
		} else if (item_value(p, len, "errors", v, sizeof(v))) {
			rc = parse_errors(v, &o->kinds);
		} else if (item_value(p, len, "short", v, sizeof(v))) {
			if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
				rc = -EINVAL;
			o->kinds = (o->kinds & ~(1u << K_SHORT)) | (unsigned)(v[0] == '1')
								       << K_SHORT;
		} else if (item_value(p, len, "delay_us", v, sizeof(v))) {
			uint64_t us;
			rc = parse_u64(v, MAX_DELAY_US, &us);
			o->delay_ns = us * 1000;
		} else {
			rc = -EINVAL;
		}
		if (rc < 0)
			return rc;
		p += len;
		if (*p == ',' && !*++p)
			return -EINVAL; /* a trailing comma */
	}
	if (o->delay_ns)
		o->kinds |= 1u << K_DELAY;
	return 0;
}

/* ---- PRNG: splitmix64, one stream per worker ---- */

static inline uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, 1): the top 53 bits. rate 1 therefore always hits. */
static inline double rng_unit(uint64_t *s)
{
	return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

/* ---- delayed ops ---- */

#define mono_ns rlt__mono_ns

static inline rlt_op *next_of(const rlt_op *op)
{
	return op->policy_data[0];
}
static inline void set_next(rlt_op *op, rlt_op *next)
{
	op->policy_data[0] = next;
}

/* policy_data[1] and [2] hold 8 bytes even where a pointer is 4. */
static inline uint64_t deadline_of(const rlt_op *op)
{
	uint64_t d;
	memcpy(&d, &op->policy_data[1], sizeof(d));
	return d;
}

static void delay_push(fault *f, rlt_op *op, uint64_t deadline)
{
	memcpy(&op->policy_data[1], &deadline, sizeof(deadline));
	/* delay_us is the same for every op and the clock is monotonic, so
	 * the tail is the place, bar ties at clock granularity. */
	rlt_op *prev = f->delay_tail;
	if (prev && deadline_of(prev) > deadline) {
		prev = NULL;
		for (rlt_op *o = f->delay_head; o && deadline_of(o) <= deadline; o = next_of(o))
			prev = o;
	}
	set_next(op, prev ? next_of(prev) : f->delay_head);
	if (prev)
		set_next(prev, op);
	else
		f->delay_head = op;
	if (!next_of(op))
		f->delay_tail = op;
}

static rlt_op *delay_pop(fault *f)
{
	rlt_op *op = f->delay_head;
	f->delay_head = next_of(op);
	if (!f->delay_head)
		f->delay_tail = NULL;
	return op;
}

/* Unlink op if it is on the list; whether it was. */
static bool delay_remove(fault *f, rlt_op *op)
{
	rlt_op *prev = NULL;
	for (rlt_op *o = f->delay_head; o; prev = o, o = next_of(o)) {
		if (o != op)
			continue;
		if (prev)
			set_next(prev, next_of(op));
		else
			f->delay_head = next_of(op);
		if (f->delay_tail == op)
			f->delay_tail = prev;
		return true;
	}
	return false;
}

/* Hand the ops due by now to the inner policy; how many. */
static unsigned hand_over_due(fault *f, uint64_t now)
{
	unsigned n = 0;
	while (f->delay_head && deadline_of(f->delay_head) <= now) {
		rlt_op *op = delay_pop(f);
		f->inner.policy->submit(&f->inner, op);
		n++;
	}
	return n;
}

/* ---- the vtable ---- */

static int probe(const char *options)
{
	fault_opts o;
	int rc = parse_options(options, &o);
	if (rc < 0)
		return rc;
	return o.inner->probe ? o.inner->probe("") : 0;
}

static int init(rlt_loop *loop)
{
	fault_opts o;
	int rc = parse_options(loop->options, &o);
	if (rc < 0)
		return rc;
	fault *f = rlt__calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->o = o;
	uint64_t s = o.seed ^ (0xd1b54a32d192ed03ull * ((uint64_t)loop->index + 1));
	f->rng = rng_next(&s);
	f->report = rlt__loop_settings(loop)->v[RLT__CFG_FAULT_REPORT] != 0;
	f->inner = *loop;
	f->inner.state = NULL;
	f->inner.policy = o.inner;
	f->inner.options = "";
	rc = o.inner->init(&f->inner);
	if (rc < 0) {
		rlt__free(f);
		return rc;
	}
	loop->state = f;
	return 0;
}

static void fini(rlt_loop *loop)
{
	fault *f = loop->state;
	if (!f)
		return;
	f->inner.policy->fini(&f->inner);
	if (f->report) {
		char line[256];
		int n = snprintf(line, sizeof(line), "ringlet: fault worker %u: %llu ops",
				 loop->index, (unsigned long long)f->ops);
		for (int k = 0; k < K_COUNT && n > 0 && (size_t)n < sizeof(line); k++)
			n += snprintf(line + n, sizeof(line) - (size_t)n, " %s=%llu", kinds[k].name,
				      (unsigned long long)f->injected[k]);
		fprintf(stderr, "%s\n", line);
	}
	rlt__free(f);
	loop->state = NULL;
}

static void submit(rlt_loop *loop, rlt_op *op)
{
	fault *f = loop->state;
	f->ops++;
	/* One draw per op, whatever it is: the stream of faults depends only
	 * on the sequence of ops. */
	if (op->code >= RLT_OP_COUNT || rng_unit(&f->rng) >= f->o.rate) {
		f->inner.policy->submit(&f->inner, op);
		return;
	}
	size_t *len = op->code == RLT_OP_READ || op->code == RLT_OP_WRITE  ? &op->u.rw.len
		      : op->code == RLT_OP_RECV || op->code == RLT_OP_SEND ? &op->u.msg.len
									   : NULL;
	enum kind cand[K_COUNT];
	unsigned n = 0;
	for (unsigned k = 0; k < K_COUNT; k++) {
		if (!(f->o.kinds & (1u << k)) || !(kinds[k].ops & RLT_OP_BIT(op->code)))
			continue;
		if (k == K_SHORT && *len < 2)
			continue;
		cand[n++] = (enum kind)k;
	}
	if (!n) {
		f->inner.policy->submit(&f->inner, op);
		return;
	}
	enum kind k = cand[rng_next(&f->rng) % n];
	f->injected[k]++;
	atomic_fetch_add_explicit(&injected_total, 1, memory_order_relaxed);
	switch (k) {
	case K_SHORT:
		*len = 1 + (size_t)(rng_next(&f->rng) % (*len - 1));
		f->inner.policy->submit(&f->inner, op);
		break;
	case K_DELAY:
		delay_push(f, op, mono_ns() + f->o.delay_ns);
		break;
	default:
		rlt__op_complete(op, -kinds[k].err);
		break;
	}
}

static int poll_(rlt_loop *loop, int64_t timeout_ns)
{
	fault *f = loop->state;
	if (f->delay_head) {
		uint64_t now = mono_ns();
		/* The inner policy may complete what it is handed inside its
		 * submit (epoll does, when the fd is ready): those tasks are
		 * runnable now, and nothing would end a sleep for them. */
		if (hand_over_due(f, now))
			timeout_ns = 0;
		/* Sleep no later than the next delayed op is due; the remaining
		 * head is due after now. */
		if (f->delay_head && timeout_ns != 0) {
			int64_t left = (int64_t)(deadline_of(f->delay_head) - now);
			if (timeout_ns < 0 || left < timeout_ns)
				timeout_ns = left;
		}
	}
	return f->inner.policy->poll(&f->inner, timeout_ns);
}

static void wake(rlt_loop *target, rlt_loop *from)
{
	fault *t = target->state;
	fault *f = from ? from->state : NULL;
	t->inner.policy->wake(&t->inner, f ? &f->inner : NULL);
}

static int cancel(rlt_loop *loop, rlt_op *op)
{
	fault *f = loop->state;
	if (op->state_ == RLT__OP_DONE)
		return -ENOENT;
	if (delay_remove(f, op)) {
		rlt__op_complete(op, -ECANCELED);
		return 0;
	}
	return f->inner.policy->cancel(&f->inner, op);
}

static void cancel_all(rlt_loop *loop)
{
	fault *f = loop->state;
	while (f->delay_head)
		rlt__op_complete(delay_pop(f), -ECANCELED);
	f->inner.policy->cancel_all(&f->inner);
}

const rlt_policy rlt__policy_fault = {
    .name = "fault",
    .summary =
	"another policy with errors, short transfers and delays injected from a seed (testing)",
    /* The inner policy's set, but which one that is is known only per
     * run and this table is const: the default inner's (io_uring). */
    .native_ops = RLT_OP_ALL & ~RLT_OP_BIT(RLT_OP_ACCEPT_MULTI) & ~RLT_OP_BIT(RLT_OP_RECV_MULTI),
    .probe = probe,
    .init = init,
    .fini = fini,
    .submit = submit,
    .poll = poll_,
    .wake = wake,
    .cancel = cancel,
    .cancel_all = cancel_all,
};
