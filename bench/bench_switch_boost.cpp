/*
 * The in-run baseline for switch.raw: boost.context's fcontext (assembly
 * jump_fcontext/make_fcontext), same ping-pong, same N, same report.
 * Note that jump_fcontext also saves and restores MXCSR and the x87
 * control word, which rlt__ctx_switch deliberately does not.
 *
 *   switch.boost       ns per jump_fcontext, one direction.
 *   base.boost.start   ns to start a context on a ready stack (make_fcontext),
 *                      run it and come back when it ends (two jumps), with a
 *                      malloc + free of a task-sized record: the floor under
 *                      spawn.single's life of a task (bench/run.sh shows it
 *                      beside spawn.*).
 */
#include "bench_common.h"

#include <boost/context/detail/fcontext.hpp>

#include <sys/mman.h>

namespace ctx = boost::context::detail;

namespace
{

const std::size_t kStack = 64u * 1024u;

ctx::fcontext_t main_back; /* where A returns when done */
long iters;
uint64_t elapsed;

void ctx_b(ctx::transfer_t t)
{
	for (;;)
		t = ctx::jump_fcontext(t.fctx, nullptr);
}

void ctx_a(ctx::transfer_t t)
{
	main_back = t.fctx;
	ctx::fcontext_t b = static_cast<ctx::fcontext_t>(t.data);
	uint64_t t0 = bench_wall_ns();
	for (long i = 0; i < iters; i++)
		b = ctx::jump_fcontext(b, nullptr).fctx;
	elapsed = bench_wall_ns() - t0;
	ctx::jump_fcontext(main_back, nullptr);
	__builtin_unreachable();
}

/* The life of a trivial coroutine: entered once, it hands control back. */
void ctx_once(ctx::transfer_t t)
{
	ctx::jump_fcontext(t.fctx, t.data);
	__builtin_unreachable();
}

void *map_stack()
{
	void *p = mmap(nullptr, kStack, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

} // namespace

int main(int argc, char **argv)
{
	bench_opts o = bench_parse(argc, argv);
	if (bench_want(&o, "base.boost.start")) {
		long n = o.quick ? 1000000 : 5000000;
		printf("# base.boost.start: %ld starts per measurement\n", n);
		char *st = static_cast<char *>(map_stack());
		bench_series s;
		bench_series_init(&s, "base.boost.start", "ns_per_op");
		for (int r = 0; r < o.reps; r++) {
			uint64_t t0 = bench_wall_ns();
			for (long i = 0; i < n; i++) {
				void *rec = malloc(256);
				BENCH_KEEP(rec);
				ctx::fcontext_t c =
				    ctx::make_fcontext(st + kStack, kStack, ctx_once);
				ctx::transfer_t t = ctx::jump_fcontext(c, rec);
				BENCH_KEEP(t.data);
				free(rec);
			}
			bench_record(&s, (double)(bench_wall_ns() - t0) / (double)n);
		}
		bench_print_median(&s);
		munmap(st, kStack);
	}
	if (!bench_want(&o, "switch.boost"))
		return 0;
	long switches = o.quick ? 4000000 : 20000000;
	printf("# switch.boost: %ld switches per measurement\n", switches);
	iters = switches / 2; /* each iteration is A->B then B->A */
	char *sa = static_cast<char *>(map_stack());
	char *sb = static_cast<char *>(map_stack());
	bench_series s;
	bench_series_init(&s, "switch.boost", "ns_per_op");
	for (int r = 0; r < o.reps; r++) {
		/* make_fcontext takes the top of the stack (it grows down). */
		ctx::fcontext_t a = ctx::make_fcontext(sa + kStack, kStack, ctx_a);
		ctx::fcontext_t b = ctx::make_fcontext(sb + kStack, kStack, ctx_b);
		ctx::jump_fcontext(a, b);
		bench_record(&s, (double)elapsed / (double)(2 * iters));
	}
	bench_print_median(&s);
	munmap(sa, kStack);
	munmap(sb, kStack);
	return 0;
}
