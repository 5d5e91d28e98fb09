/* The per-worker lists of operations waiting on each fd (io/fdwait.h). */
#include "io/fdwait.h"

#include "runtime/alloc.h"

void rlt__fdwait_link_new_chunk(rlt__fdwait *tab, rlt_op *op)
{
	int fd = op->fd;
	rlt_op **c = rlt__calloc(RLT__FDWAIT_CHUNK, sizeof(*c));
	if (!c)
		return; /* unlisted: a close will not end this wait */
	/* Release: a closer that finds the chunk finds it zeroed. */
	__atomic_store_n(&tab->chunk[fd / RLT__FDWAIT_CHUNK], c, __ATOMIC_RELEASE);
	rlt__fdwait_link(tab, op);
}

bool rlt__fdwait_any(rlt__fdwait *tab, int fd)
{
	if (fd < 0 || fd >= RLT__FDWAIT_MAX)
		return false;
	rlt_op **c = __atomic_load_n(&tab->chunk[fd / RLT__FDWAIT_CHUNK], __ATOMIC_ACQUIRE);
	return c && __atomic_load_n(&c[fd % RLT__FDWAIT_CHUNK], __ATOMIC_RELAXED);
}

rlt_op *rlt__fdwait_first(rlt__fdwait *tab, int fd)
{
	if (fd < 0 || fd >= RLT__FDWAIT_MAX)
		return NULL;
	rlt_op **c = tab->chunk[fd / RLT__FDWAIT_CHUNK];
	return c ? c[fd % RLT__FDWAIT_CHUNK] : NULL;
}

void rlt__fdwait_free(rlt__fdwait *tab)
{
	for (size_t i = 0; i < sizeof(tab->chunk) / sizeof(tab->chunk[0]); i++) {
		rlt__free(tab->chunk[i]);
		tab->chunk[i] = NULL;
	}
}
