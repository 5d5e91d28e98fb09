/* Small helpers shared by the scheduler, the pools and the policies: the
 * monotonic clock in nanoseconds, and the pause of a spin-wait. */
#ifndef RLT_RUNTIME_CPU_H
#define RLT_RUNTIME_CPU_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in ns (through the vDSO: ~20 ns, no system call). */
static inline uint64_t rlt__mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One step of a spin-wait: lets the sibling hyperthread run, saves power. */
static inline void rlt__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

#endif
