#include "io/fdgen.h"

#include "runtime/alloc.h"

#include <errno.h>
#include <stdatomic.h>
#include <unistd.h>

#define CHUNK_BITS 12
#define CHUNK	   (1u << CHUNK_BITS)
#define NCHUNKS	   (RLT__FDGEN_MAX >> CHUNK_BITS)

/* A chunk that could not be allocated: its fds stay unknown for good. */
#define BROKEN ((_Atomic uint32_t *)(uintptr_t)1)

static _Atomic(_Atomic uint32_t *) chunks[NCHUNKS];

uint32_t rlt__fdgen(int fd)
{
	if (fd < 0 || fd >= RLT__FDGEN_MAX)
		return RLT__FDGEN_UNKNOWN;
	_Atomic uint32_t *c = atomic_load_explicit(&chunks[fd >> CHUNK_BITS], memory_order_acquire);
	if (!c)
		return 0; /* never closed by ringlet */
	if (c == BROKEN)
		return RLT__FDGEN_UNKNOWN;
	return atomic_load_explicit(&c[fd & (CHUNK - 1)], memory_order_acquire);
}

void rlt__fdgen_bump(int fd)
{
	if (fd < 0 || fd >= RLT__FDGEN_MAX)
		return;
	_Atomic(_Atomic uint32_t *) *slot = &chunks[fd >> CHUNK_BITS];
	_Atomic uint32_t *c = atomic_load_explicit(slot, memory_order_acquire);
	if (!c) {
		/* First close in this range: allocate (zeroed: generation 0,
		 * what a missing chunk reads as). A loser frees its copy. */
		_Atomic uint32_t *n = rlt__calloc(CHUNK, sizeof(*n));
		_Atomic uint32_t *want = n ? n : BROKEN;
		if (atomic_compare_exchange_strong_explicit(slot, &c, want, memory_order_acq_rel,
							    memory_order_acquire))
			c = want;
		else
			rlt__free(n);
	}
	if (c == BROKEN)
		return;
	/* Skip UNKNOWN on wrap-around: it would read as "never trusted", which
	 * is safe, but it is one value the loops compare against. */
	uint32_t g = atomic_fetch_add_explicit(&c[fd & (CHUNK - 1)], 1, memory_order_release) + 1;
	if (g == RLT__FDGEN_UNKNOWN)
		atomic_fetch_add_explicit(&c[fd & (CHUNK - 1)], 1, memory_order_release);
}

int rlt__close_fd(int fd)
{
	if (fd < 0)
		return -EBADF;
	rlt__fdgen_bump(fd);
	/* No retry on EINTR: Linux has closed the fd anyway. */
	return close(fd) == 0 ? 0 : -errno;
}
