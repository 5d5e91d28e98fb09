/*
 * asyncio's run_in_executor example, in C:
 *
 *     def blocking_io():
 *         with open('/dev/urandom', 'rb') as f:
 *             return f.read(100)
 *
 *     def cpu_bound():
 *         return sum(i * i for i in range(10 ** 6))
 *
 *     async def main():
 *         loop = asyncio.get_running_loop()
 *         result = await loop.run_in_executor(None, blocking_io)
 *         print('default thread pool', result)
 *         with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
 *             result = await loop.run_in_executor(pool, cpu_bound)
 *             print('custom thread pool', result)
 *
 * Prints:
 *     default thread pool: 100 bytes from /dev/urandom
 *     custom thread pool: 333332833333500000
 */
#include <ringlet.h>

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

/* Plain blocking C: runs on a pool thread, never on a worker. */
static void *blocking_io(void *arg)
{
	char *buf = arg;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return (void *)(intptr_t)-1;
	ssize_t n = read(fd, buf, 100);
	close(fd);
	return (void *)(intptr_t)n;
}

static void *cpu_bound(void *arg)
{
	static unsigned long long sum; /* the result outlives the call */
	(void)arg;
	sum = 0;
	for (unsigned long long i = 0; i < 1000000; i++)
		sum += i * i;
	return &sum;
}

static void *main_task(void *arg)
{
	(void)arg;
	char buf[100]; /* on this task's stack: fine, the task waits */
	void *res;
	int rc = rlt_run_blocking(NULL, blocking_io, buf, &res);
	if (rc < 0 || (intptr_t)res != 100) {
		fprintf(stderr, "blocking_io failed\n");
		return (void *)1;
	}
	printf("default thread pool: %d bytes from /dev/urandom\n", (int)(intptr_t)res);

	rlt_pool_config cfg = {.max_threads = 2};
	rlt_pool *pool = rlt_pool_create(&cfg);
	if (!pool)
		return (void *)1;
	rc = rlt_run_blocking(pool, cpu_bound, NULL, &res);
	if (rc == 0)
		printf("custom thread pool: %llu\n", *(unsigned long long *)res);
	rlt_pool_shutdown(pool, true); /* the `with` block's end */
	return (void *)(intptr_t)(rc < 0);
}

int main(void)
{
	void *failed = NULL;
	int rc = rlt_run(main_task, NULL, NULL, &failed);
	if (rc < 0) {
		fprintf(stderr, "rlt_run: %d\n", rc);
		return 1;
	}
	return failed != NULL;
}
