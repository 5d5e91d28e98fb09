/*
 * Task stacks: mmap'd with MAP_NORESERVE (only touched pages cost memory),
 * a guard region (RLT_STACK_GUARD_SIZE, 64 KiB) below each one, carved from
 * slabs and pooled per worker.
 *
 * Guard pages are installed with madvise(MADV_GUARD_INSTALL) (Linux 6.13+),
 * which does not split the slab's mapping: a slab of 256 guarded stacks is
 * one entry against vm.max_map_count. On older kernels the guard falls back
 * to mprotect(PROT_NONE), which costs two mappings per stack.
 *
 * With madvise guards, a stack's guard is installed when the stack first
 * runs a task (rlt__stack_prepare), not when its slab is mapped: a guard
 * costs ~0.4 us and a page-table page per 2 MiB, and a burst of 200k
 * spawns holds 200k stacks of which only the few that run get used (the
 * others are exchanged for warm ones at the first run). The mprotect
 * fallback is installed with the slab, as before: it takes mappings, whose
 * limit must fail the spawn, not the first run.
 */
#ifndef RLT_RUNTIME_STACK_H
#define RLT_RUNTIME_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RLT__STACK_CLASSES 8

/* What a stack has been through (rlt__stack.flags; kept in the low bits of
 * the free lists' entries, whose addresses are page-aligned). */
#define RLT__STACK_GUARDED 1u /* its guard is installed */
#define RLT__STACK_DIRTY   2u /* it ran a task: it may have resident pages */
#define RLT__STACK_FLAGS   3u

typedef struct rlt__stack {
	void *lo;		      /* lowest usable byte; the guard lies just below */
	size_t size;		      /* usable bytes */
	bool pooled;		      /* from a slab (else its own mapping, unmapped on put) */
	uint8_t flags;		      /* RLT__STACK_* */
	struct rlt__stack_pool *home; /* pooled: the pool it came from */
	unsigned vg_id;		      /* its own mapping's valgrind stack id (slabs keep theirs) */
} rlt__stack;

typedef struct rlt__stack_class {
	size_t size;
	uintptr_t *free; /* LIFO of free stacks' lo | RLT__STACK_* flags: the
			  * most recently used (resident, cache-warm) stack
			  * is reused first */
	uint32_t nfree, cap;
	uint32_t ntrimmed; /* free[0, ntrimmed) have no pages (none DIRTY) */
} rlt__stack_class;

typedef struct rlt__slab rlt__slab;
typedef struct rlt__stack_batch rlt__stack_batch;

typedef struct rlt__stack_pool {
	rlt__stack_class classes[RLT__STACK_CLASSES];
	unsigned nclasses;
	unsigned cache_limit; /* free stacks kept resident per class */
	bool guard;
	rlt__slab *slabs;
	/* Stacks of another pool that this thread is giving back unused (a
	 * stolen task took a stack here instead), gathered so that one push
	 * returns many; flushed when full, when the home changes and at trim. */
	rlt__stack_batch *out;
	/* Written by other threads, so on its own cache line:
	 * - remote: stacks of this pool freed by other threads (a task
	 *   spawned here that ended on another worker), a Treiber stack
	 *   linked through the free stacks' top bytes (resident: the task's
	 *   first frame was there);
	 * - batches: stacks of this pool returned unused, in batches (their
	 *   pages are never touched, so the link cannot live in them).
	 * Both taken back when the LIFO runs dry or the worker parks. */
	_Alignas(64) _Atomic(void *) remote;
	_Atomic(rlt__stack_batch *) batches;
} rlt__stack_pool;

void rlt__stack_pool_init(rlt__stack_pool *p, unsigned cache_limit, bool guard);
void rlt__stack_pool_destroy(rlt__stack_pool *p);
/* size must be page-aligned. Returns 0 or -ENOMEM (the slab or the stack
 * could not be mapped: RLIMIT_AS, vm.max_map_count, out of memory). On the
 * pool's own thread only. */
int rlt__stack_get(rlt__stack_pool *p, size_t size, rlt__stack *out);
/* s, taken at spawn and about to run its task for the first time, on p's
 * thread: make it ready to run, and mark it DIRTY.
 * - Home (s is p's and has never run): exchange it for the top of p's
 *   free list of its size if that one has run (cache- and TLB-warm). A
 *   burst of spawns holds a stack each, but tasks that start and end one
 *   after another still run on the same warm stack.
 * - Stolen (s is another pool's and has never run): take a stack of p's
 *   instead (the warm top, or a new one), and give s back to its home
 *   untouched (batched). The thief then runs on its own working set, and
 *   the home's cold stacks never get pages, nor TLB shootdowns when they
 *   are trimmed.
 * - Then install the guard if the stack has none yet.
 * Returns 0, or -ENOMEM if the guard could not be installed (the kernel
 * could not allocate a page table: s is then left unguarded and not
 * DIRTY, for rlt__stack_put). */
int rlt__stack_prepare(rlt__stack_pool *p, rlt__stack *s);
/* A stack mapped on its own (not pooled), with or without its guard, for a
 * thread that has no pool: any thread. Returns 0 or -ENOMEM. Released by
 * rlt__stack_put into any pool of the same guard setting (it is unmapped). */
int rlt__stack_map(size_t size, bool guard, rlt__stack *out);
/* Unmap a stack of its own (not pooled) mapped with that guard setting. */
void rlt__stack_unmap(const rlt__stack *s, bool guard);
/* Return s, on p's thread: a pooled stack of p's joins p's free list, one
 * of another pool's goes back to that pool (its remote list, any thread);
 * one of its own is unmapped. */
void rlt__stack_put(rlt__stack_pool *p, const rlt__stack *s);
/* Give back the pages of free stacks beyond the pool's cache_limit per
 * class (madvise MADV_DONTNEED on those that ran: RSS falls at once; the
 * address ranges and guards stay), and send home the stacks of other
 * pools gathered in p->out. Called by a worker about to sleep: never on
 * the spawn/exit path, where it would cost a syscall and a TLB flush per
 * task. */
void rlt__stack_trim(rlt__stack_pool *p);

size_t rlt__page_size(void);
/* Round a requested stack size to pages; 0 if out of range. */
size_t rlt__stack_round(size_t size);

/*
 * Stack overflow reporting: a process-wide SIGSEGV/SIGBUS handler that runs
 * on a per-thread alternate signal stack. A fault in (or just below) the
 * running task's guard region prints the task's name and stack size, then
 * aborts; any other fault is passed on to the previous handler.
 */
int rlt__overflow_handler_install(void);
/* Per worker thread: allocate and register the alternate signal stack. */
int rlt__altstack_enter(void **mem);
void rlt__altstack_leave(void *mem);

/* Implemented by the scheduler: what the faulting thread is running. */
bool rlt__current_stack_info(const void **lo, size_t *size, const char **name);

#endif
