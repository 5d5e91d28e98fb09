/*
 * The tutorial's "three downloads with a blocking HTTP library in a thread
 * pool", in C. The "library" is plain blocking code: getaddrinfo() for
 * "localhost", a blocking connect() and blocking recv() calls. A ringlet task
 * plays the server: it takes DELAY_MS before it answers each request, so one
 * download takes about DELAY_MS. Run in a pool of 3 threads, the three
 * downloads overlap: the whole takes about one download, not three.
 *
 * Prints (the finishing order varies; the lines are sorted):
 *     download 1: 65536 bytes
 *     download 2: 65536 bytes
 *     download 3: 65536 bytes
 *     all three in one go
 */
#include <ringlet.h>

#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DELAY_MS  200
#define FILE_SIZE 65536
#define DOWNLOADS 3

static char port_str[16];

/* ---- the blocking "HTTP library" (runs on pool threads) ---- */

static void *download(void *arg)
{
	(void)arg;
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
	if (getaddrinfo("localhost", port_str, &hints, &ai) != 0)
		return (void *)(intptr_t)-1;
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
	intptr_t total = -1;
	if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
		char req[] = "GET /file\n", buf[8192];
		total = send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) < 0 ? -1 : 0;
		ssize_t n;
		while (total >= 0 && (n = recv(fd, buf, sizeof(buf), 0)) > 0)
			total += n;
	}
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return (void *)total;
}

/* ---- the server (ringlet tasks) ---- */

static void *serve_one(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char req[64];
	static char file[FILE_SIZE];
	if (rlt_recv(fd, req, sizeof(req), 0) > 0) {
		rlt_sleep(DELAY_MS * RLT_NSEC_PER_MSEC); /* a slow server */
		rlt_send_all(fd, file, sizeof(file), 0);
	}
	rlt_close(fd);
	return NULL;
}

static void *server(void *arg)
{
	int lfd = (int)(intptr_t)arg;
	rlt_spawn_opts detached = {.flags = RLT_SPAWN_DETACHED};
	for (int served = 0, errors = 0; served < DOWNLOADS;) {
		int fd = rlt_accept(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			/* A transient error (an interrupted call, a connection
			 * reset while queued, memory): accept again; a client
			 * may be waiting. A listener that keeps failing ends. */
			fprintf(stderr, "accept: %s\n", strerror(-fd));
			if (++errors == 100)
				break;
			continue;
		}
		served++;
		if (!rlt_spawn(serve_one, (void *)(intptr_t)fd, &detached))
			rlt_close(fd);
	}
	return NULL;
}

static void *main_task(void *arg)
{
	(void)arg;
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 16) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &alen) < 0) {
		perror("listen");
		return (void *)1;
	}
	snprintf(port_str, sizeof(port_str), "%u", ntohs(a.sin_port));
	rlt_task *srv = rlt_spawn(server, (void *)(intptr_t)lfd, NULL);

	/* asyncio: loop.run_in_executor(pool, download) three times, then
	 * gather. Here: submit three jobs to a pool of 3, await the futures. */
	rlt_pool_config cfg = {.max_threads = DOWNLOADS, .name = "download"};
	rlt_pool *pool = rlt_pool_create(&cfg);
	rlt_future *f[DOWNLOADS];
	uint64_t t0 = rlt_now();
	for (int i = 0; i < DOWNLOADS; i++)
		f[i] = rlt_pool_submit(pool, download, NULL);
	int failed = 0;
	for (int i = 0; i < DOWNLOADS; i++) {
		void *n = NULL;
		if (!f[i] || rlt_future_await(f[i], &n, -1) < 0 || (intptr_t)n != FILE_SIZE) {
			fprintf(stderr, "download %d: failed\n", i + 1);
			failed = 1;
		} else
			printf("download %d: %d bytes\n", i + 1, (int)(intptr_t)n);
		rlt_future_release(f[i]);
	}
	uint64_t ms = (rlt_now() - t0) / RLT_NSEC_PER_MSEC;
	/* One after another would take DOWNLOADS * DELAY_MS. */
	printf("%s\n", ms < (uint64_t)(DOWNLOADS - 1) * DELAY_MS ? "all three in one go"
								 : "one after another");
	rlt_join(srv, NULL);
	rlt_pool_shutdown(pool, true);
	close(lfd);
	return (void *)(intptr_t)failed;
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
