/*
 * Self-test of the coroutine switch alone: runtime/coro.c plus
 * runtime/ctx_<arch>.S and plain libc, nothing else from ringlet (no
 * liburing, no cmocka), so that it cross-compiles and runs under qemu-user
 * (tools/cross-check.sh) as well as natively under ctest.
 *
 * Checks:
 *   pingpong     main <-> one coroutine, many times, values through globals
 *   registers    callee-saved integer and FP registers (x86_64: rbx rbp
 *                r12-r15; aarch64: x19-x29, d8-d15) survive a switch while
 *                both sides keep many values live across it
 *   alignment    the stack is 16-byte aligned at coroutine entry, whatever
 *                the alignment of the stack top handed to rlt__coro_init
 *   roundrobin   several coroutines interleaved by main, then passing
 *                control among themselves in a ring
 *
 * Prints "coro selftest: N checks passed" and exits 0, or names the failing
 * check and exits 1. A crash (e.g. a misaligned SSE spill) is reported with
 * the name of the check that was running.
 */
#include "runtime/coro.h"

#include <inttypes.h>
#include <signal.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef RLT_ASAN
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#endif

/* churn() must be compiled once, as written: no inlining, no clone
 * specialised for the no-op yield (which could also contract differently
 * into FMAs and change the FP bits we compare). */
#if defined(__clang__) || !defined(__GNUC__)
#define NOIPA __attribute__((noinline))
#else
#define NOIPA __attribute__((noipa))
#endif

#define STACK_SIZE (256u * 1024u)

static unsigned long checks;
static const char *current = "startup";
static rlt__coro main_co;

static void fail_eq(int line, const char *what, uint64_t got, uint64_t want)
{
	printf("coro selftest: FAILED [%s] line %d: %s: got %#" PRIx64 ", want %#" PRIx64 "\n",
	       current, line, what, got, want);
	fflush(stdout);
	exit(1);
}

#define CHECK_EQ(what, got, want)                                                                  \
	do {                                                                                       \
		uint64_t got_ = (uint64_t)(got), want_ = (uint64_t)(want);                         \
		if (got_ != want_)                                                                 \
			fail_eq(__LINE__, (what), got_, want_);                                    \
		checks++;                                                                          \
	} while (0)
#define CHECK(what, cond) CHECK_EQ(what " (" #cond ")", !!(cond), 1)

static void say(const char *s)
{
	if (write(STDOUT_FILENO, s, strlen(s)) < 0)
		_exit(2);
}

static void on_crash(int sig)
{
	/* Only async-signal-safe calls here. */
	say("coro selftest: FAILED [");
	say(current);
	say("]: crashed with ");
	say(sig == SIGSEGV  ? "SIGSEGV"
	    : sig == SIGBUS ? "SIGBUS"
	    : sig == SIGILL ? "SIGILL"
			    : "SIGTRAP");
	say("\n");
	_exit(1);
}

static void install_crash_handlers(void)
{
	static char altstack[64 * 1024];
	stack_t ss = {.ss_sp = altstack, .ss_size = sizeof(altstack)};
	sigaltstack(&ss, NULL);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_crash;
	sa.sa_flags = SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGILL, &sa, NULL);
	sigaction(SIGTRAP, &sa, NULL);
}

/* ---- stacks: mmap with a guard page below ---- */

struct stack {
	void *map;
	size_t map_len;
	char *lo;
};

static void stack_alloc(struct stack *s)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	s->map_len = STACK_SIZE + pg;
	s->map = mmap(NULL, s->map_len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	CHECK("mmap a stack", s->map != MAP_FAILED);
	CHECK("guard page", mprotect(s->map, pg, PROT_NONE) == 0);
	s->lo = (char *)s->map + pg;
}

static void stack_free(struct stack *s)
{
#ifdef RLT_ASAN
	/* A coroutine that exits by switching away leaves its frames' redzones
	 * poisoned; clear them so a later mapping at this address is clean. */
	__asan_unpoison_memory_region(s->lo, STACK_SIZE);
#endif
	munmap(s->map, s->map_len);
}

/* ---- pingpong ---- */

#define PP_ROUNDS 100000u
#define PP_STOP	  UINT64_MAX

static rlt__coro pp_co;
static uint64_t pp_value, pp_reply, pp_count;
static void *pp_arg_seen;

static uint64_t pp_f(uint64_t v)
{
	return (v * 0x9E3779B97F4A7C15ull) ^ (v >> 7);
}

static void pingpong_entry(void *arg)
{
	rlt__coro *self = arg;
	rlt__coro_started(self);
	pp_arg_seen = arg;
	while (pp_value != PP_STOP) {
		pp_reply = pp_f(pp_value);
		pp_count++;
		rlt__coro_switch(self, &main_co, 0);
	}
	pp_count++;
	rlt__coro_switch(self, &main_co, 1);
	abort(); /* never resumed */
}

static void test_pingpong(void)
{
	struct stack st;
	current = "pingpong";
	stack_alloc(&st);
	rlt__coro_init(&pp_co, st.lo, STACK_SIZE, pingpong_entry, &pp_co);
	for (uint64_t i = 0; i < PP_ROUNDS; i++) {
		pp_value = i * 7919u + 3u;
		rlt__coro_switch(&main_co, &pp_co, 0);
		if (i == 0)
			CHECK_EQ("entry got its arg", (uintptr_t)pp_arg_seen, (uintptr_t)&pp_co);
		CHECK_EQ("reply through a global", pp_reply, pp_f(i * 7919u + 3u));
		CHECK_EQ("coroutine ran once per switch", pp_count, i + 1);
	}
	pp_value = PP_STOP;
	rlt__coro_switch(&main_co, &pp_co, 0);
	CHECK_EQ("coroutine saw the stop value", pp_count, PP_ROUNDS + 1);
	rlt__coro_fini(&pp_co);
	stack_free(&st);
}

/* ---- registers ---- */

/*
 * 14 integer and 10 double accumulators, each feeding the next, all live
 * across yield(): more than the callee-saved registers of either ABI, so the
 * compiler puts what it can in rbx/rbp/r12-r15 or x19-x28 and d8-d15 and
 * spills the rest to the (coroutine) stack. Any register the switch fails to
 * save or restore, or any stack word it corrupts, changes the result.
 */
#define ROTL(x, r) (((x) << (r)) | ((x) >> (64 - (r))))

static NOIPA void churn(uint64_t seed, unsigned rounds, void (*yield)(void), uint64_t *iout,
			double *fout)
{
	uint64_t a0 = seed, a1 = seed * 3 + 1, a2 = seed ^ 0x5555, a3 = seed + 77, a4 = ~seed,
		 a5 = seed * 5, a6 = seed >> 3, a7 = seed << 2, a8 = seed + 0x1234567,
		 a9 = seed * 11, a10 = seed ^ 0xFFFF0000, a11 = seed + 999, a12 = seed * 13,
		 a13 = seed ^ 0xDEADBEEF;
	double f0 = (double)(seed & 0xFF) + 0.5, f1 = f0 * 1.5, f2 = f0 + 2.25, f3 = f0 - 1.0,
	       f4 = f0 * 0.75, f5 = f0 + 10.0, f6 = f0 * 3.0, f7 = f0 - 7.5, f8 = f0 + 0.125,
	       f9 = f0 * 2.5;

	for (unsigned r = 0; r < rounds; r++) {
		a0 = a0 * 6364136223846793005ull + a13;
		a1 = ROTL(a1 ^ a0, 7) + r;
		a2 += a1 * 3;
		a3 ^= ROTL(a2, 13);
		a4 = a4 * 5 + a3;
		a5 ^= a4 >> 11;
		a6 += ROTL(a5, 29);
		a7 = (a7 ^ a6) * 0x9E3779B97F4A7C15ull;
		a8 += a7 >> 17;
		a9 ^= a8 * 7;
		a10 = ROTL(a10 + a9, 41);
		a11 ^= a10 + r;
		a12 = a12 * 3 + a11;
		a13 ^= ROTL(a12, 5);
		f0 = f0 * 0.5 + f9 * 0.25 + (double)(a0 & 0xFF);
		f1 = f1 * 0.5 + f0 * 0.25 + (double)(a1 & 0xFF);
		f2 = f2 * 0.5 + f1 * 0.25 + (double)(a2 & 0xFF);
		f3 = f3 * 0.5 + f2 * 0.25 + (double)(a3 & 0xFF);
		f4 = f4 * 0.5 + f3 * 0.25 + (double)(a4 & 0xFF);
		f5 = f5 * 0.5 + f4 * 0.25 + (double)(a5 & 0xFF);
		f6 = f6 * 0.5 + f5 * 0.25 + (double)(a6 & 0xFF);
		f7 = f7 * 0.5 + f6 * 0.25 + (double)(a7 & 0xFF);
		f8 = f8 * 0.5 + f7 * 0.25 + (double)(a8 & 0xFF);
		f9 = f9 * 0.5 + f8 * 0.25 + (double)(a9 & 0xFF);
		yield();
	}
	*iout = a0 ^ ROTL(a1, 1) ^ ROTL(a2, 2) ^ ROTL(a3, 3) ^ ROTL(a4, 4) ^ ROTL(a5, 5) ^
		ROTL(a6, 6) ^ ROTL(a7, 7) ^ ROTL(a8, 8) ^ ROTL(a9, 9) ^ ROTL(a10, 10) ^
		ROTL(a11, 11) ^ ROTL(a12, 12) ^ ROTL(a13, 13);
	*fout =
	    f0 + f1 * 2 + f2 * 3 + f3 * 4 + f4 * 5 + f5 * 6 + f6 * 7 + f7 * 8 + f8 * 9 + f9 * 10;
}

#define REG_ROUNDS    20000u
#define REG_SEED_MAIN 0x0123456789ABCDEFull
#define REG_SEED_CORO 0xFEDCBA9876543210ull

static rlt__coro reg_co;
static uint64_t reg_coro_i, reg_yields;
static double reg_coro_f;

static void yield_nothing(void) {}

static void yield_to_coro(void)
{
	rlt__coro_switch(&main_co, &reg_co, 0);
}

static void yield_to_main(void)
{
	reg_yields++;
	rlt__coro_switch(&reg_co, &main_co, 0);
}

static void registers_entry(void *arg)
{
	rlt__coro *self = arg;
	rlt__coro_started(self);
	churn(REG_SEED_CORO, REG_ROUNDS, yield_to_main, &reg_coro_i, &reg_coro_f);
	rlt__coro_switch(self, &main_co, 1);
	abort();
}

static uint64_t bits(double d)
{
	uint64_t u;
	memcpy(&u, &d, sizeof(u));
	return u;
}

static void test_registers(void)
{
	uint64_t want_main_i, want_coro_i, main_i;
	double want_main_f, want_coro_f, main_f;
	struct stack st;

	current = "registers";
	churn(REG_SEED_MAIN, REG_ROUNDS, yield_nothing, &want_main_i, &want_main_f);
	churn(REG_SEED_CORO, REG_ROUNDS, yield_nothing, &want_coro_i, &want_coro_f);
	CHECK("the two sides compute different values", want_main_i != want_coro_i);

	stack_alloc(&st);
	rlt__coro_init(&reg_co, st.lo, STACK_SIZE, registers_entry, &reg_co);
	/* Both sides inside churn(), each yield switching to the other. */
	churn(REG_SEED_MAIN, REG_ROUNDS, yield_to_coro, &main_i, &main_f);
	CHECK_EQ("coroutine yielded once per main round", reg_yields, REG_ROUNDS);
	/* The coroutine is parked in its last yield: let it finish. */
	rlt__coro_switch(&main_co, &reg_co, 0);

	CHECK_EQ("main integer registers survived", main_i, want_main_i);
	CHECK_EQ("main FP registers survived", bits(main_f), bits(want_main_f));
	CHECK_EQ("coroutine integer registers survived", reg_coro_i, want_coro_i);
	CHECK_EQ("coroutine FP registers survived", bits(reg_coro_f), bits(want_coro_f));
	rlt__coro_fini(&reg_co);
	stack_free(&st);
}

/* ---- alignment ---- */

typedef double v2d __attribute__((vector_size(16)));

struct align_probe {
	rlt__coro co;
	uintptr_t lo, hi;
	uintptr_t frame, sp, local;
	double x;
	double vsum;
	char text[64];
};

static inline uintptr_t current_sp(void)
{
	uintptr_t sp;
#if defined(__x86_64__)
	__asm__ volatile("movq %%rsp, %0" : "=r"(sp));
#elif defined(__aarch64__)
	__asm__ volatile("mov %0, sp" : "=r"(sp));
#else
	sp = (uintptr_t)__builtin_frame_address(0);
#endif
	return sp;
}

static void align_entry(void *arg)
{
	struct align_probe *p = arg;
	rlt__coro_started(&p->co);
	alignas(16) unsigned char local[16];
	memset(local, 0xA5, sizeof(local));
	__asm__ volatile("" : : "r"(local) : "memory");
	p->frame = (uintptr_t)__builtin_frame_address(0);
	p->sp = current_sp();
	p->local = (uintptr_t)local;
	/* printf with a double: on x86_64 glibc's varargs prologue spills the
	 * vector registers with movaps, which faults on a misaligned stack. */
	snprintf(p->text, sizeof(p->text), "%.3f|%g", p->x * 2.0, p->x);
	/* An aligned 16-byte vector forced through memory (movaps / q-reg). */
	v2d v = {p->x, p->x * 3.0};
	__asm__ volatile("" : "+m"(v));
	p->vsum = v[0] + v[1];
	rlt__coro_switch(&p->co, &main_co, 1);
	abort();
}

static void test_alignment(void)
{
	struct stack st;
	current = "alignment";
	stack_alloc(&st);
	/* Stack tops at every offset mod 16: rlt__coro_init must round down. */
	for (unsigned off = 0; off < 16; off++) {
		struct align_probe p;
		memset(&p, 0, sizeof(p));
		size_t size = STACK_SIZE - 64 - off;
		p.lo = (uintptr_t)st.lo;
		p.hi = (uintptr_t)st.lo + size;
		p.x = 1.5 + off;
		rlt__coro_init(&p.co, st.lo, size, align_entry, &p);
		rlt__coro_switch(&main_co, &p.co, 0);

		char want[64];
		snprintf(want, sizeof(want), "%.3f|%g", p.x * 2.0, p.x);
		CHECK("frame is on the coroutine stack", p.frame > p.lo && p.frame < p.hi);
		CHECK("sp is on the coroutine stack", p.sp > p.lo && p.sp < p.hi);
		CHECK_EQ("frame address 16-byte aligned", p.frame % 16, 0);
		CHECK_EQ("sp 16-byte aligned in the entry function", p.sp % 16, 0);
		CHECK_EQ("alignas(16) local aligned", p.local % 16, 0);
		CHECK("printf of a double on the coroutine", strcmp(p.text, want) == 0);
		CHECK_EQ("16-byte vector through memory", bits(p.vsum), bits(p.x * 4.0));
		rlt__coro_fini(&p.co);
#ifdef RLT_ASAN
		__asan_unpoison_memory_region(st.lo, STACK_SIZE);
#endif
	}
	stack_free(&st);
}

/* ---- roundrobin ---- */

#define RR_N	       5
#define RR_ROUNDS      2000u
#define RR_RING_ROUNDS 2000u

struct rr {
	rlt__coro co;
	struct stack st;
	unsigned id;
	uint64_t result;
	int done;
};

static struct rr rr[RR_N];
static unsigned rr_last = ~0u;
static uint64_t rr_steps;

/* Switch away from depth id+1 of a recursion whose frames hold a pattern, so
 * each coroutine parks at a different depth; the pattern must be intact
 * when it resumes. */
static NOIPA unsigned rr_switch_deep(struct rr *me, rlt__coro *to, unsigned depth, int exits)
{
	unsigned char pat[48];
	unsigned bad = 0;
	for (unsigned i = 0; i < sizeof(pat); i++)
		pat[i] = (unsigned char)(me->id * 31 + depth * 7 + i);
	__asm__ volatile("" : : "r"(pat) : "memory");
	if (depth)
		bad += rr_switch_deep(me, to, depth - 1, exits);
	else
		rlt__coro_switch(&me->co, to, exits);
	for (unsigned i = 0; i < sizeof(pat); i++)
		bad += pat[i] != (unsigned char)(me->id * 31 + depth * 7 + i);
	return bad;
}

static void rr_record(struct rr *me)
{
	CHECK_EQ("round-robin order", me->id, rr_steps % RR_N);
	rr_last = me->id;
	rr_steps++;
}

/* Driven by main: main resumes 0, 1, ..., RR_N-1, 0, ... */
static void rr_entry(void *arg)
{
	struct rr *me = arg;
	rlt__coro_started(&me->co);
	uint64_t local = (uint64_t)me->id << 32; /* lives on this coroutine's stack */
	for (unsigned r = 0; r < RR_ROUNDS; r++) {
		rr_record(me);
		local += r + me->id;
		CHECK_EQ("frames intact across switch", rr_switch_deep(me, &main_co, me->id, 0), 0);
	}
	me->result = local;
	me->done = 1;
	rlt__coro_switch(&me->co, &main_co, 1);
	abort();
}

/* A ring: each coroutine switches straight to the next; the last one out
 * returns to main. */
static void ring_entry(void *arg)
{
	struct rr *me = arg;
	rlt__coro_started(&me->co);
	struct rr *next = &rr[(me->id + 1) % RR_N];
	uint64_t local = (uint64_t)me->id << 32;
	for (unsigned r = 0; r < RR_RING_ROUNDS; r++) {
		rr_record(me);
		local += r + me->id;
		if (r + 1 < RR_RING_ROUNDS)
			CHECK_EQ("frames intact across switch",
				 rr_switch_deep(me, &next->co, me->id, 0), 0);
	}
	me->result = local;
	me->done = 1;
	/* Exits: never resumed. */
	rlt__coro_switch(&me->co, me->id == RR_N - 1 ? &main_co : &next->co, 1);
	abort();
}

static uint64_t rr_want(unsigned id, unsigned rounds)
{
	uint64_t v = (uint64_t)id << 32;
	for (unsigned r = 0; r < rounds; r++)
		v += r + id;
	return v;
}

static void test_roundrobin(void)
{
	current = "roundrobin";
	rr_steps = 0;
	for (unsigned i = 0; i < RR_N; i++) {
		memset(&rr[i], 0, sizeof(rr[i]));
		rr[i].id = i;
		stack_alloc(&rr[i].st);
		rlt__coro_init(&rr[i].co, rr[i].st.lo, STACK_SIZE, rr_entry, &rr[i]);
	}
	for (unsigned r = 0; r <= RR_ROUNDS; r++) {
		for (unsigned i = 0; i < RR_N; i++) {
			rlt__coro_switch(&main_co, &rr[i].co, 0);
			if (r < RR_ROUNDS)
				CHECK_EQ("the resumed coroutine ran", rr_last, i);
			else
				CHECK("coroutine finished", rr[i].done);
		}
	}
	CHECK_EQ("steps", rr_steps, (uint64_t)RR_N * RR_ROUNDS);
	for (unsigned i = 0; i < RR_N; i++) {
		CHECK_EQ("coroutine-local state", rr[i].result, rr_want(i, RR_ROUNDS));
		rlt__coro_fini(&rr[i].co);
	}

	current = "ring";
	rr_steps = 0;
	for (unsigned i = 0; i < RR_N; i++) {
		stack_free(&rr[i].st);
		memset(&rr[i], 0, sizeof(rr[i]));
		rr[i].id = i;
		stack_alloc(&rr[i].st);
		rlt__coro_init(&rr[i].co, rr[i].st.lo, STACK_SIZE, ring_entry, &rr[i]);
	}
	rlt__coro_switch(&main_co, &rr[0].co, 0);
	CHECK_EQ("ring steps", rr_steps, (uint64_t)RR_N * RR_RING_ROUNDS);
	CHECK_EQ("last coroutine out returned to main", rr_last, RR_N - 1);
	for (unsigned i = 0; i < RR_N; i++) {
		CHECK("ring coroutine finished", rr[i].done);
		CHECK_EQ("ring coroutine-local state", rr[i].result, rr_want(i, RR_RING_ROUNDS));
		rlt__coro_fini(&rr[i].co);
		stack_free(&rr[i].st);
	}
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	install_crash_handlers();
	rlt__coro_init_thread(&main_co);
	test_pingpong();
	test_registers();
	test_alignment();
	test_roundrobin();
	printf("coro selftest: %lu checks passed\n", checks);
	return 0;
}
