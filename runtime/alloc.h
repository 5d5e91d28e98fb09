/* Runtime allocations: mimalloc in normal builds, libc under the sanitizer
 * builds (so that ASan/LSan/TSan see and check every allocation). Inline so
 * the hot paths (spawn, future_new) pay no extra call. */
#ifndef RLT_RUNTIME_ALLOC_H
#define RLT_RUNTIME_ALLOC_H

#include <stddef.h>

#ifdef RLT_USE_MIMALLOC
#include <mimalloc.h>
static inline void *rlt__malloc(size_t n)
{
	return mi_malloc(n);
}
static inline void *rlt__calloc(size_t n, size_t size)
{
	return mi_calloc(n, size);
}
static inline void *rlt__realloc(void *p, size_t n)
{
	return mi_realloc(p, n);
}
static inline void rlt__free(void *p)
{
	mi_free(p);
}
#else
#include <stdlib.h>
static inline void *rlt__malloc(size_t n)
{
	return malloc(n);
}
static inline void *rlt__calloc(size_t n, size_t size)
{
	return calloc(n, size);
}
static inline void *rlt__realloc(void *p, size_t n)
{
	return realloc(p, n);
}
static inline void rlt__free(void *p)
{
	free(p);
}
#endif

#endif
