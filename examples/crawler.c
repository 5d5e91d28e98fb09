/*
 * crawler: fetch the URLs given on the command line concurrently, a task
 * per URL, at most LIMIT at once. The asyncio tutorial's aiohttp crawler:
 *
 *	import asyncio, sys, aiohttp
 *
 *	async def fetch(session, sem, url):
 *	    async with sem:
 *	        print(f"sending request: {url}")
 *	        async with session.get(url) as response:
 *	            body = await response.read()
 *	            print(f"got result: {url} {len(body)}")
 *
 *	async def main(urls):
 *	    sem = asyncio.Semaphore(10)
 *	    async with aiohttp.ClientSession() as session:
 *	        await asyncio.gather(*(fetch(session, sem, u) for u in urls))
 *
 *	asyncio.run(main(sys.argv[1:]))
 *
 * prints "sending request: URL" as each request goes out and "got result:
 * URL LENGTH" as each body is in, in the order they finish. A URL that
 * fails prints "failed: URL: reason" on stderr, and the exit status is 1.
 *
 * The mapping:
 *   aiohttp.ClientSession     rlt_http_client_new (a pool of keep-alive
 *                             connections per host) / rlt_http_client_free
 *   session.get + read()      rlt_http_fetch_url + rlt_http_reply_body
 *   async with response       rlt_http_reply_free (the connection goes back
 *                             to the pool)
 *   asyncio.Semaphore(10)     rlt_sem_new(LIMIT), acquire/release
 *   asyncio.gather(...)       rlt_spawn each task, rlt_join each
 *
 * Usage: crawler [-q] [-c LIMIT] [-f FILE] URL...
 *   -c LIMIT  requests at once (default 10)
 *   -f FILE   more URLs, one per line
 *   -q        print only the summary ("N urls, BYTES bytes, FAILED failed")
 */
#include <ringlet.h>
#include <ringlet/http_client.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LIMIT	 10
#define BODY_MAX (64 << 20) /* the most of one body kept */

typedef struct crawl {
	rlt_http_client *session;
	rlt_sem *sem;
	bool quiet;
	atomic_long bytes;
	atomic_int failed;
} crawl;

typedef struct job {
	crawl *cr;
	const char *url;
} job;

static void *fetch(void *arg)
{
	job *j = arg;
	crawl *cr = j->cr;
	rlt_sem_acquire(cr->sem);
	if (!cr->quiet)
		printf("sending request: %s\n", j->url);
	rlt_http_reply *r;
	const char *body;
	int rc = rlt_http_fetch_url(cr->session, j->url, &r);
	ssize_t n = rc < 0 ? rc : rlt_http_reply_body(r, BODY_MAX, &body);
	if (n >= 0) {
		if (!cr->quiet)
			printf("got result: %s %zd\n", j->url, n);
		atomic_fetch_add(&cr->bytes, n);
	} else {
		fprintf(stderr, "failed: %s: %s\n", j->url, strerror((int)-n));
		atomic_fetch_add(&cr->failed, 1);
	}
	if (rc == 0)
		rlt_http_reply_free(r);
	rlt_sem_release(cr->sem);
	return NULL;
}

typedef struct args {
	char **urls;
	size_t n;
	long limit;
	bool quiet;
} args;

static void *main_task(void *arg)
{
	args *a = arg;
	crawl cr = {.quiet = a->quiet};
	/* The pool is as large as the concurrency: every task may hold a
	 * connection of the same host. */
	rlt_http_client_opts o = {.max_total = (unsigned)a->limit};
	cr.session = rlt_http_client_new(&o);
	cr.sem = rlt_sem_new(a->limit);
	job *jobs = calloc(a->n, sizeof(*jobs));
	rlt_task **tasks = calloc(a->n, sizeof(*tasks));
	if (!cr.session || !cr.sem || !jobs || !tasks) {
		perror("crawler");
		exit(1);
	}
	for (size_t i = 0; i < a->n; i++) {
		jobs[i] = (job){&cr, a->urls[i]};
		tasks[i] = rlt_spawn(fetch, &jobs[i], &(rlt_spawn_opts){.stack_size = 64 * 1024});
	}
	for (size_t i = 0; i < a->n; i++)
		if (tasks[i])
			rlt_join(tasks[i], NULL);
	if (a->quiet)
		printf("%zu urls, %ld bytes, %d failed\n", a->n, atomic_load(&cr.bytes),
		       atomic_load(&cr.failed));
	rlt_http_client_free(cr.session);
	rlt_sem_free(cr.sem);
	free(jobs);
	free(tasks);
	return (void *)(intptr_t)(atomic_load(&cr.failed) ? 1 : 0);
}

/* Append the lines of path to a->urls. */
static void read_list(args *a, const char *path, size_t *cap)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		perror(path);
		exit(2);
	}
	char *line = NULL;
	size_t len = 0;
	ssize_t n;
	while ((n = getline(&line, &len, f)) > 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0)
			continue;
		if (a->n == *cap) {
			*cap = *cap ? *cap * 2 : 64;
			a->urls = realloc(a->urls, *cap * sizeof(*a->urls));
		}
		a->urls[a->n++] = strdup(line);
	}
	free(line);
	fclose(f);
}

int main(int argc, char **argv)
{
	args a = {.limit = LIMIT};
	size_t cap = 0;
	int opt;
	while ((opt = getopt(argc, argv, "qc:f:")) != -1) {
		switch (opt) {
		case 'q':
			a.quiet = true;
			break;
		case 'c':
			a.limit = strtol(optarg, NULL, 10);
			break;
		case 'f':
			read_list(&a, optarg, &cap);
			break;
		default:
			goto usage;
		}
	}
	for (int i = optind; i < argc; i++) {
		if (a.n == cap) {
			cap = cap ? cap * 2 : 64;
			a.urls = realloc(a.urls, cap * sizeof(*a.urls));
		}
		a.urls[a.n++] = strdup(argv[i]);
	}
	if (a.n == 0 || a.limit < 1)
		goto usage;
	void *res = NULL;
	if (rlt_run(main_task, &a, NULL, &res) != 0)
		return 1;
	for (size_t i = 0; i < a.n; i++)
		free(a.urls[i]);
	free(a.urls);
	return (int)(intptr_t)res;
usage:
	fprintf(stderr, "usage: crawler [-q] [-c LIMIT] [-f FILE] URL...\n");
	return 2;
}
