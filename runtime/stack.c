#include "runtime/stack.h"

#include "runtime/alloc.h"

#include "ringlet/runtime.h"

#include <errno.h>
#include <stdatomic.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef RLT_HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND		0
#define VALGRIND_STACK_REGISTER(lo, hi) 0u
#define VALGRIND_STACK_DEREGISTER(id)	((void)(id))
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#define SLAB_TARGET_BYTES (8u << 20)
#define SLAB_MAX_STACKS	  256u
#define ALTSTACK_SIZE	  (64u * 1024u)
#define BATCH_STACKS	  61u /* a batch is 512 bytes */

struct rlt__slab {
	rlt__slab *next;
	void *base;
	size_t len;
	uint32_t count;
	unsigned *vg_ids; /* valgrind stack ids, only when running under it */
};

/* Stacks of one home pool, of one size, returned unused (runtime/stack.h). */
struct rlt__stack_batch {
	rlt__stack_batch *next;
	rlt__stack_pool *home;
	size_t size;
	uint32_t n;
	uintptr_t stacks[BATCH_STACKS]; /* lo | flags */
};

static inline uintptr_t entry_of(void *lo, unsigned flags)
{
	return (uintptr_t)lo | flags;
}

static inline void *entry_lo(uintptr_t e)
{
	return (void *)(e & ~(uintptr_t)RLT__STACK_FLAGS);
}

static size_t page_size_cached;

size_t rlt__page_size(void)
{
	if (!page_size_cached)
		page_size_cached = (size_t)sysconf(_SC_PAGESIZE);
	return page_size_cached;
}

size_t rlt__stack_round(size_t size)
{
	size_t pg = rlt__page_size();
	if (size < 8u * 1024u || size > (1024u * 1024u * 1024u))
		return 0;
	return (size + pg - 1) & ~(pg - 1);
}

/* The guard region below each stack: RLT_STACK_GUARD_SIZE, or a page where
 * pages are larger. One page used to be the guard: a frame of more than a
 * page (a 21 KiB array on a 16 KiB stack) jumped it and wrote into the
 * stack below, another task's. Widening it costs address space only (the
 * madvise guard is page-table markers, the mprotect one no memory at all). */
static size_t guard_bytes(bool guard)
{
	if (!guard)
		return 0;
	size_t pg = rlt__page_size();
	return pg > RLT_STACK_GUARD_SIZE ? pg : RLT_STACK_GUARD_SIZE;
}

static size_t guard_size(const rlt__stack_pool *p)
{
	return guard_bytes(p->guard);
}

void rlt__stack_pool_init(rlt__stack_pool *p, unsigned cache_limit, bool guard)
{
	memset(p, 0, sizeof(*p));
	p->cache_limit = cache_limit;
	p->guard = guard;
	atomic_init(&p->remote, NULL);
	atomic_init(&p->batches, NULL);
}

/* ---- stacks freed by other threads (runtime/stack.h) ---- */

/* A free stack on its home's remote list: the link lives in the stack's
 * own top bytes (the task's first frame was there: resident, and ours now). */
typedef struct remote_node {
	struct remote_node *next;
	size_t size; /* | the stack's RLT__STACK_* flags (sizes are whole pages) */
} remote_node;

static inline remote_node *node_of(void *lo, size_t size)
{
	return (remote_node *)((char *)lo + size - sizeof(remote_node));
}

static void remote_push(rlt__stack_pool *home, const rlt__stack *s)
{
	remote_node *n = node_of(s->lo, s->size);
	/* DIRTY: the node itself gave it a page, if it had none. */
	n->size = s->size | s->flags | RLT__STACK_DIRTY;
	void *head = atomic_load_explicit(&home->remote, memory_order_relaxed);
	do
		n->next = head;
	while (!atomic_compare_exchange_weak_explicit(&home->remote, &head, (void *)n,
						      memory_order_release, memory_order_relaxed));
}

static int class_push(rlt__stack_class *c, uintptr_t e);
static rlt__stack_class *class_for(rlt__stack_pool *p, size_t size);

/* A free stack (entry e) of size back on c's free list (c: its size's
 * class, NULL if the pool has no room for one). Without a class or the
 * memory for the list, it stays mapped in its slab (unmapped with the
 * pool) but is not reused: its pages are given back. */
static void keep_free(rlt__stack_class *c, size_t size, uintptr_t e)
{
	if (!c || class_push(c, e) < 0)
		madvise(entry_lo(e), size, MADV_DONTNEED);
}

/* Take back the stacks other threads freed or returned (the home's
 * thread). */
static void remote_drain(rlt__stack_pool *p)
{
	remote_node *n = atomic_exchange_explicit(&p->remote, NULL, memory_order_acquire);
	while (n) {
		remote_node *next = n->next;
		size_t size = n->size & ~(size_t)RLT__STACK_FLAGS;
		unsigned flags = (unsigned)(n->size & RLT__STACK_FLAGS);
		void *lo = (char *)n + sizeof(remote_node) - size;
		keep_free(class_for(p, size), size, entry_of(lo, flags));
		n = next;
	}
	rlt__stack_batch *b = atomic_exchange_explicit(&p->batches, NULL, memory_order_acquire);
	while (b) {
		rlt__stack_batch *next = b->next;
		rlt__stack_class *c = class_for(p, b->size);
		for (uint32_t i = 0; i < b->n; i++)
			keep_free(c, b->size, b->stacks[i]);
		rlt__free(b);
		b = next;
	}
}

/* Send p's gathered batch home (any thread may push to a home). */
static void batch_flush(rlt__stack_pool *p)
{
	rlt__stack_batch *b = p->out;
	if (!b)
		return;
	p->out = NULL;
	rlt__stack_pool *home = b->home;
	rlt__stack_batch *head = atomic_load_explicit(&home->batches, memory_order_relaxed);
	do
		b->next = head;
	while (!atomic_compare_exchange_weak_explicit(&home->batches, &head, b,
						      memory_order_release, memory_order_relaxed));
}

/* Give s, another pool's stack that never ran, back to its home without
 * touching its pages. Returns false if no batch could be had (s is then
 * kept by the caller). */
static bool batch_return(rlt__stack_pool *p, const rlt__stack *s)
{
	rlt__stack_batch *b = p->out;
	if (b && (b->home != s->home || b->size != s->size)) {
		batch_flush(p);
		b = NULL;
	}
	if (!b) {
		b = rlt__malloc(sizeof(*b));
		if (!b)
			return false;
		b->home = s->home;
		b->size = s->size;
		b->n = 0;
		p->out = b;
	}
	b->stacks[b->n++] = entry_of(s->lo, s->flags);
	if (b->n == BATCH_STACKS)
		batch_flush(p);
	return true;
}

/* Does the kernel lack MADV_GUARD_INSTALL? Known after the first guard. */
static int madv_guard_missing;

/* Install a guard over [addr, addr + len). Tries the VMA-free madvise first;
 * remembers if the kernel lacks it so we stop asking. */
static int guard_install(void *addr, size_t len)
{
	if (!__atomic_load_n(&madv_guard_missing, __ATOMIC_RELAXED)) {
		if (madvise(addr, len, MADV_GUARD_INSTALL) == 0)
			return 0;
		if (errno != EINVAL)
			return -errno;
		__atomic_store_n(&madv_guard_missing, 1, __ATOMIC_RELAXED);
	}
	return mprotect(addr, len, PROT_NONE) == 0 ? 0 : -errno;
}

static rlt__stack_class *class_for(rlt__stack_pool *p, size_t size)
{
	/* Most tasks use the default size, the first class made. */
	if (__builtin_expect(p->nclasses && p->classes[0].size == size, 1))
		return &p->classes[0];
	for (unsigned i = 1; i < p->nclasses; i++)
		if (p->classes[i].size == size)
			return &p->classes[i];
	if (p->nclasses == RLT__STACK_CLASSES)
		return NULL;
	rlt__stack_class *c = &p->classes[p->nclasses++];
	memset(c, 0, sizeof(*c));
	c->size = size;
	return c;
}

static int class_push(rlt__stack_class *c, uintptr_t e)
{
	if (c->nfree == c->cap) {
		uint32_t cap = c->cap ? c->cap * 2 : 64;
		uintptr_t *f = rlt__realloc(c->free, cap * sizeof(*f));
		if (!f)
			return -ENOMEM;
		c->free = f;
		c->cap = cap;
	}
	c->free[c->nfree++] = e;
	return 0;
}

static int slab_grow(rlt__stack_pool *p, rlt__stack_class *c)
{
	size_t guard = guard_size(p);
	size_t slot = c->size + guard;
	/* Counted without the guards: as many stacks (and mmap calls) per
	 * slab as with one-page guards; the slab spans more address space. */
	uint32_t count = (uint32_t)(SLAB_TARGET_BYTES / c->size);
	if (count == 0)
		count = 1;
	if (count > SLAB_MAX_STACKS)
		count = SLAB_MAX_STACKS;

	rlt__slab *s = rlt__calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->len = slot * count;
	s->count = count;
	s->base = mmap(NULL, s->len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (s->base == MAP_FAILED) {
		rlt__free(s);
		return -ENOMEM;
	}
	if (RUNNING_ON_VALGRIND)
		s->vg_ids = rlt__calloc(count, sizeof(unsigned));
	/* Make room in the free list first, so nothing can fail half-way. */
	while (c->cap < c->nfree + count) {
		uint32_t cap = c->cap ? c->cap * 2 : 64;
		uintptr_t *f = rlt__realloc(c->free, cap * sizeof(*f));
		if (!f)
			goto fail;
		c->free = f;
		c->cap = cap;
	}
	/* The first stack's guard now: it tells whether the kernel has
	 * madvise guards. If it has, the others' wait for their first run
	 * (rlt__stack_prepare); if not, mprotect takes a mapping per guard,
	 * and running out of mappings must fail here, at the spawn. */
	uint32_t guarded = 0;
	if (guard) {
		if (guard_install(s->base, guard) < 0)
			goto fail;
		guarded = __atomic_load_n(&madv_guard_missing, __ATOMIC_RELAXED) ? count : 1;
		for (uint32_t i = 1; i < guarded; i++)
			if (guard_install((char *)s->base + (size_t)i * slot, guard) < 0)
				goto fail;
	}
	/* Push in reverse so the lowest stack is handed out first. */
	for (uint32_t i = count; i-- > 0;) {
		char *lo = (char *)s->base + (size_t)i * slot + guard;
		if (s->vg_ids)
			s->vg_ids[i] = VALGRIND_STACK_REGISTER(lo, lo + c->size);
		c->free[c->nfree++] = entry_of(lo, !guard || i < guarded ? RLT__STACK_GUARDED : 0);
	}
	s->next = p->slabs;
	p->slabs = s;
	return 0;
fail:
	munmap(s->base, s->len);
	rlt__free(s->vg_ids);
	rlt__free(s);
	return -ENOMEM;
}

/* A stack of its own: for sizes beyond the pool's classes, and for tasks
 * spawned from a thread that has no pool (rlt__stack_map). */
static int stack_map_single(size_t guard, size_t size, rlt__stack *out)
{
	char *base = mmap(NULL, size + guard, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (base == MAP_FAILED)
		return -ENOMEM;
	if (guard && guard_install(base, guard) < 0) {
		munmap(base, size + guard);
		return -ENOMEM;
	}
	out->lo = base + guard;
	out->size = size;
	out->pooled = false;
	out->flags = RLT__STACK_GUARDED;
	/* Registered as the slabs' stacks are: without it, valgrind takes the
	 * first switch to this stack for a huge stack-pointer move ("client
	 * switching stacks?") and checks the task's frames wrongly. */
	out->vg_id =
	    RUNNING_ON_VALGRIND ? VALGRIND_STACK_REGISTER(out->lo, base + guard + size) : 0;
	return 0;
}

int rlt__stack_get(rlt__stack_pool *p, size_t size, rlt__stack *out)
{
	rlt__stack_class *c = class_for(p, size);
	if (!c)
		return stack_map_single(guard_size(p), size, out);
	if (c->nfree == 0) {
		/* Ours that other workers freed first: a spawner whose tasks
		 * end elsewhere gets its stacks back here. */
		if (atomic_load_explicit(&p->remote, memory_order_relaxed) ||
		    atomic_load_explicit(&p->batches, memory_order_relaxed))
			remote_drain(p);
		if (c->nfree == 0) {
			int rc = slab_grow(p, c);
			if (rc < 0)
				return rc;
		}
	}
	uintptr_t e = c->free[--c->nfree];
	out->lo = entry_lo(e);
	out->flags = (uint8_t)(e & RLT__STACK_FLAGS);
	/* free[nfree] is in use again: the slots from here up will hold other,
	 * dirty stacks once they are put back. Tracked here, not at the next
	 * trim: the LIFO may sink and refill in between, and a trim that only
	 * saw the ends would take refilled slots for still trimmed ones (after
	 * a burst, hundreds of MB stayed resident that way). */
	if (c->ntrimmed > c->nfree)
		c->ntrimmed = c->nfree;
	out->size = size;
	out->pooled = true;
	out->home = p;
	out->vg_id = 0; /* the slab registered it */
	return 0;
}

int rlt__stack_prepare(rlt__stack_pool *p, rlt__stack *s)
{
	if (s->pooled && !(s->flags & RLT__STACK_DIRTY)) {
		rlt__stack_class *c = class_for(p, s->size);
		if (s->home == p) {
			/* Only a top that ran (has its pages, is guarded). */
			if (c && c->nfree && (c->free[c->nfree - 1] & RLT__STACK_DIRTY)) {
				uintptr_t warm = c->free[c->nfree - 1];
				c->free[c->nfree - 1] = entry_of(s->lo, s->flags);
				s->lo = entry_lo(warm);
				s->flags = (uint8_t)(warm & RLT__STACK_FLAGS);
			}
		} else if (c) {
			/* Stolen: run on a stack of ours, give s back unused. */
			rlt__stack mine;
			if (rlt__stack_get(p, s->size, &mine) == 0) {
				if (batch_return(p, s))
					*s = mine;
				else
					rlt__stack_put(p, &mine);
			}
		}
	}
	if (__builtin_expect(!(s->flags & RLT__STACK_GUARDED), 0)) {
		if (p->guard) {
			int rc = guard_install((char *)s->lo - guard_size(p), guard_size(p));
			if (rc < 0)
				return -ENOMEM;
		}
		s->flags |= RLT__STACK_GUARDED;
	}
	s->flags |= RLT__STACK_DIRTY;
	return 0;
}

int rlt__stack_map(size_t size, bool guard, rlt__stack *out)
{
	return stack_map_single(guard_bytes(guard), size, out);
}

void rlt__stack_unmap(const rlt__stack *s, bool guard)
{
	size_t g = guard_bytes(guard);
	if (RUNNING_ON_VALGRIND)
		VALGRIND_STACK_DEREGISTER(s->vg_id);
	munmap((char *)s->lo - g, s->size + g);
}

void rlt__stack_put(rlt__stack_pool *p, const rlt__stack *s)
{
	if (!s->pooled) {
		rlt__stack_unmap(s, p->guard);
		return;
	}
	if (__builtin_expect(s->home != p, 0)) {
		/* Another worker's (the task was spawned there and ended
		 * here): back to its home, which takes it when it runs short.
		 * Kept here instead, one worker spawning what the others run
		 * would map slab after slab while the others' pools grew. */
		remote_push(s->home, s);
		return;
	}
	keep_free(class_for(p, s->size), s->size, entry_of(s->lo, s->flags));
}

void rlt__stack_trim(rlt__stack_pool *p)
{
	batch_flush(p);
	if (atomic_load_explicit(&p->remote, memory_order_relaxed) ||
	    atomic_load_explicit(&p->batches, memory_order_relaxed))
		remote_drain(p); /* counted against the cap like the others */
	for (unsigned i = 0; i < p->nclasses; i++) {
		rlt__stack_class *c = &p->classes[i];
		if (c->ntrimmed > c->nfree)
			c->ntrimmed = c->nfree; /* trimmed stacks were handed out again */
		if (c->nfree <= p->cache_limit)
			continue;
		/* The bottom of the LIFO is the coldest: give those pages back.
		 * MADV_DONTNEED, not MADV_FREE: lazily freed pages stay in
		 * VmRSS (LazyFree) until the machine runs short, so after a
		 * burst of 200k tasks the process looked 850 MB big for good
		 * (docs/RELIABILITY.md). The cost is the same one madvise per
		 * stack, paid once when the worker goes idle. */
		uint32_t keep_from = c->nfree - p->cache_limit;
		for (uint32_t k = c->ntrimmed; k < keep_from; k++)
			if (c->free[k] & RLT__STACK_DIRTY) {
				madvise(entry_lo(c->free[k]), c->size, MADV_DONTNEED);
				c->free[k] &= ~(uintptr_t)RLT__STACK_DIRTY;
			}
		if (keep_from > c->ntrimmed)
			c->ntrimmed = keep_from;
	}
}

void rlt__stack_pool_destroy(rlt__stack_pool *p)
{
	/* Every thread has stopped, and every pool's slabs go now: batches
	 * not yet taken home are only freed. */
	rlt__free(p->out);
	rlt__stack_batch *b = atomic_load_explicit(&p->batches, memory_order_relaxed);
	while (b) {
		rlt__stack_batch *next = b->next;
		rlt__free(b);
		b = next;
	}
	rlt__slab *s = p->slabs;
	while (s) {
		rlt__slab *next = s->next;
		if (s->vg_ids)
			for (uint32_t i = 0; i < s->count; i++)
				VALGRIND_STACK_DEREGISTER(s->vg_ids[i]);
		munmap(s->base, s->len);
		rlt__free(s->vg_ids);
		rlt__free(s);
		s = next;
	}
	for (unsigned i = 0; i < p->nclasses; i++)
		rlt__free(p->classes[i].free);
	memset(p, 0, sizeof(*p));
}

/* ---- overflow reporting ---- */

static struct sigaction prev_segv, prev_bus;

static void put_str(char *buf, size_t *n, size_t cap, const char *s)
{
	while (*s && *n + 1 < cap)
		buf[(*n)++] = *s++;
}

static void put_u64(char *buf, size_t *n, size_t cap, uint64_t v)
{
	char tmp[24];
	int i = 0;
	do {
		tmp[i++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (i > 0 && *n + 1 < cap)
		buf[(*n)++] = tmp[--i];
}

static void chain(const struct sigaction *prev, int sig, siginfo_t *info, void *uctx)
{
	if (prev->sa_flags & SA_SIGINFO) {
		if (prev->sa_sigaction) {
			prev->sa_sigaction(sig, info, uctx);
			return;
		}
	} else if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
		prev->sa_handler(sig);
		return;
	}
	/* Default action: reset and return, so the faulting instruction
	 * faults again and the kernel kills us with the right signal. */
	signal(sig, SIG_DFL);
}

static void fault_handler(int sig, siginfo_t *info, void *uctx)
{
	const void *lo;
	size_t size;
	const char *name;
	if (rlt__current_stack_info(&lo, &size, &name)) {
		uintptr_t a = (uintptr_t)info->si_addr;
		uintptr_t l = (uintptr_t)lo;
		/* In the guard region below the running task's stack. (Further
		 * down is another task's stack, which does not fault: frames
		 * larger than the guard are caught only by their probes, and
		 * the first probe lands in the guard.) */
		if (a < l && a >= l - RLT_STACK_GUARD_SIZE) {
			char msg[256];
			size_t n = 0;
			put_str(msg, &n, sizeof(msg), "ringlet: task '");
			put_str(msg, &n, sizeof(msg), name ? name : "?");
			put_str(msg, &n, sizeof(msg), "' overflowed its stack of ");
			put_u64(msg, &n, sizeof(msg), size / 1024);
			put_str(msg, &n, sizeof(msg),
				" KiB (hit the guard below it); give it a larger stack_size\n");
			ssize_t w = write(STDERR_FILENO, msg, n);
			(void)w;
			signal(SIGABRT, SIG_DFL);
			abort();
		}
	}
	chain(sig == SIGBUS ? &prev_bus : &prev_segv, sig, info, uctx);
}

static int install_result;

static void install_once(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = fault_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, &prev_segv) < 0 || sigaction(SIGBUS, &sa, &prev_bus) < 0)
		install_result = -errno;
}

int rlt__overflow_handler_install(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, install_once);
	return install_result;
}

int rlt__altstack_enter(void **mem)
{
	stack_t ss, old;
	*mem = NULL;
	if (sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE))
		return 0; /* the thread already has one (ASan installs its own) */
	void *m =
	    mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return -ENOMEM;
	ss.ss_sp = m;
	ss.ss_size = ALTSTACK_SIZE;
	ss.ss_flags = 0;
	if (sigaltstack(&ss, NULL) < 0) {
		int e = errno;
		munmap(m, ALTSTACK_SIZE);
		return -e;
	}
	*mem = m;
	return 0;
}

void rlt__altstack_leave(void *mem)
{
	if (!mem)
		return;
	stack_t ss = {.ss_flags = SS_DISABLE};
	sigaltstack(&ss, NULL);
	munmap(mem, ALTSTACK_SIZE);
}
