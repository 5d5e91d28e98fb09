/*
 * subprocess: run a child process and read its output line by line.
 *
 *	import asyncio
 *
 *	async def main():
 *	    proc = await asyncio.create_subprocess_exec(
 *	        "sh", "-c", "for i in 1 2 3; do echo line $i; done",
 *	        stdout=asyncio.subprocess.PIPE)
 *	    while line := await proc.stdout.readline():
 *	        print(f"child: {line.decode().rstrip()}")
 *	    status = await proc.wait()
 *	    print(f"exit status {status}")
 *
 *	asyncio.run(main())
 *
 * prints "child: line 1" to "child: line 3", each as it arrives, then
 * "exit status 0". The mapping:
 *   create_subprocess_exec(..., stdout=PIPE)
 *                            rlt_process_spawn() with .stdout_mode = RLT_PROC_PIPE;
 *                            argv[0] is looked up in PATH, as there
 *   proc.stdout.readline()   read_line() below: rlt_read() on rlt_process_stdout_fd()
 *                            into a buffer, cut at '\n'. rlt_read suspends this task
 *                            only, as the await does
 *   proc.wait()              rlt_process_wait(p, -1, &status): a waitpid-style status,
 *                            read with WIFEXITED/WEXITSTATUS (asyncio's returncode is
 *                            negative for a signal; here WIFSIGNALED/WTERMSIG say so)
 *   (the garbage collector)  rlt_process_free(): closes the pipe, and would kill and
 *                            reap a child still running
 */
#include <ringlet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* A buffered reader over a pipe, like asyncio's StreamReader. */
struct reader {
	int fd;
	size_t len; /* bytes in buf */
	char buf[4096];
};

/* The next line, '\n' included, into line (NUL-terminated). Returns its
 * length; 0 at end of file; a negative errno on failure. A line longer
 * than cap - 1 comes back in pieces. */
static ssize_t read_line(struct reader *r, char *line, size_t cap)
{
	for (;;) {
		char *nl = memchr(r->buf, '\n', r->len);
		size_t n = nl ? (size_t)(nl - r->buf) + 1 : r->len;
		if (n > cap - 1)
			n = cap - 1;
		/* a whole line, a full piece, or the unterminated end of file */
		if (nl || n == cap - 1 || r->len == sizeof(r->buf)) {
			memcpy(line, r->buf, n);
			line[n] = '\0';
			r->len -= n;
			memmove(r->buf, r->buf + n, r->len);
			return (ssize_t)n;
		}
		ssize_t got = rlt_read(r->fd, r->buf + r->len, sizeof(r->buf) - r->len, -1);
		if (got < 0)
			return got;
		if (got == 0) { /* end of file: what is left, if anything */
			memcpy(line, r->buf, r->len);
			line[r->len] = '\0';
			n = r->len;
			r->len = 0;
			return (ssize_t)n;
		}
		r->len += (size_t)got;
	}
}

static void *amain(void *arg)
{
	const char *const argv[] = {"sh", "-c", "for i in 1 2 3; do echo line $i; done", NULL};
	rlt_process *p = rlt_process_spawn(&(rlt_process_opts){
	    .argv = argv,
	    .stdout_mode = RLT_PROC_PIPE,
	});
	if (!p) {
		fprintf(stderr, "subprocess: spawn %s: %s\n", argv[0], strerror(errno));
		return (void *)(intptr_t)-errno;
	}

	struct reader r = {.fd = rlt_process_stdout_fd(p)};
	char line[256];
	ssize_t n;
	while ((n = read_line(&r, line, sizeof(line))) > 0) {
		line[strcspn(line, "\n")] = '\0'; /* rstrip */
		printf("child: %s\n", line);
	}
	if (n < 0) /* still wait below: a failed read says nothing about the child */
		fprintf(stderr, "subprocess: read: %s\n", strerror((int)-n));

	int status, rc = rlt_process_wait(p, -1, &status);
	if (rc < 0)
		fprintf(stderr, "subprocess: wait: %s\n", strerror(-rc));
	else if (WIFEXITED(status))
		printf("exit status %d\n", WEXITSTATUS(status));
	else
		printf("killed by signal %d\n", WTERMSIG(status));
	rlt_process_free(p);
	return (void *)(intptr_t)(rc < 0 ? rc : n < 0 ? (int)n : 0);
}

int main(void)
{
	void *res = NULL;
	int rc = rlt_run(amain, NULL, NULL, &res);
	if (rc < 0)
		fprintf(stderr, "subprocess: rlt_run: %s\n", strerror(-rc));
	else
		rc = (int)(intptr_t)res;
	return rc < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
