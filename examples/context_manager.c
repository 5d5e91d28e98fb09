/*
 * context_manager: an asynchronous context manager that opens a connection and closes
 * it politely, awaiting inside its exit.
 *
 *	import asyncio
 *
 *	class Connection:
 *	    def __init__(self, port):
 *	        self.port = port
 *
 *	    async def __aenter__(self):
 *	        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
 *	        print("connected")
 *	        return self
 *
 *	    async def __aexit__(self, exc_type, exc, tb):
 *	        # A polite close: say goodbye and wait for the answer.
 *	        self.writer.write(b"bye\n")
 *	        await self.writer.drain()
 *	        print("server says:", (await self.reader.readline()).decode().strip())
 *	        self.writer.close()
 *	        await self.writer.wait_closed()
 *	        print("closed")
 *
 *	    async def request(self, line):
 *	        self.writer.write(line.encode() + b"\n")
 *	        await self.writer.drain()
 *	        return (await self.reader.readline()).decode().strip()
 *
 *	async def serve(reader, writer):
 *	    while line := (await reader.readline()).decode().strip():
 *	        if line == "bye":
 *	            writer.write(b"goodbye\n")
 *	            break
 *	        writer.write(f"echo: {line}\n".encode())
 *	    await writer.drain()
 *	    writer.close()
 *
 *	async def main():
 *	    server = await asyncio.start_server(serve, "127.0.0.1", 0)
 *	    port = server.sockets[0].getsockname()[1]
 *	    async with Connection(port) as conn:
 *	        print("server says:", await conn.request("hello"))
 *	    server.close()
 *	    await server.wait_closed()
 *
 *	asyncio.run(main())
 *
 * prints "connected", "server says: echo: hello", "server says: goodbye", "closed".
 * The mapping (include/ringlet/cancel.h):
 *   async with ... as conn:       size_t mark = rlt_defer_mark(); connection_enter(),
 *                                 which connects and pushes connection_exit with
 *                                 rlt_defer()
 *   (the end of the block)        rlt_defer_run(mark): runs what was pushed since mark,
 *                                 newest first. Returning from the task, or being
 *                                 cancelled out of it, runs it too.
 *   __aexit__                     connection_exit(): it may await (here it sends and
 *                                 receives); cleanup runs shielded, so a cancellation
 *                                 of the task does not cut the polite close short
 *   start_server / serve          a task that accepts one connection and serves it
 */
#include <ringlet.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LINE_MAX_LEN 128

/* An example has nothing to undo on failure: report and exit, from any task. */
static void check(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "context_manager: %s: %s\n", what, strerror(-rc));
		exit(EXIT_FAILURE);
	}
}

/* One line (without its '\n') into buf; "" at end of stream. A byte at a time:
 * the lines are short, and no byte of the next line is taken. */
static void read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;
	for (;;) {
		char c;
		ssize_t r = rlt_recv(fd, &c, 1, 0);
		check((int)r, "rlt_recv");
		if (r == 0 || c == '\n')
			break;
		if (n + 1 < size)
			buf[n++] = c;
	}
	buf[n] = '\0';
}

static void write_line(int fd, const char *line)
{
	char buf[LINE_MAX_LEN + 1];
	int n = snprintf(buf, sizeof(buf), "%s\n", line);
	check((int)rlt_send_all(fd, buf, (size_t)n, MSG_NOSIGNAL), "rlt_send_all");
}

/* ---- the server ---- */

static void *serve(void *arg)
{
	int lfd = (int)(intptr_t)arg;
	int fd = rlt_accept(lfd, NULL, NULL, SOCK_CLOEXEC);
	check(fd, "rlt_accept");
	char line[LINE_MAX_LEN], reply[LINE_MAX_LEN + 8];
	for (;;) {
		read_line(fd, line, sizeof(line));
		if (!line[0])
			break;
		if (!strcmp(line, "bye")) {
			write_line(fd, "goodbye");
			break;
		}
		snprintf(reply, sizeof(reply), "echo: %s", line);
		write_line(fd, reply);
	}
	check(rlt_close(fd), "rlt_close");
	return NULL;
}

/* ---- the context manager ---- */

typedef struct connection {
	int fd;
} connection;

/* __aexit__: runs at rlt_defer_run(), shielded; it awaits like any task code. */
static void connection_exit(void *arg)
{
	connection *c = arg;
	write_line(c->fd, "bye");
	char line[LINE_MAX_LEN];
	read_line(c->fd, line, sizeof(line));
	printf("server says: %s\n", line);
	check(rlt_close(c->fd), "rlt_close");
	printf("closed\n");
}

/* __aenter__: connect, and register the exit for the end of the block. */
static void connection_enter(connection *c, const struct sockaddr_in *addr)
{
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		check(-errno, "socket");
	check(rlt_connect(c->fd, (const struct sockaddr *)addr, sizeof(*addr)), "rlt_connect");
	printf("connected\n");
	check(rlt_defer(connection_exit, c), "rlt_defer");
}

static void request(connection *c, const char *line, char *reply, size_t size)
{
	write_line(c->fd, line);
	read_line(c->fd, reply, size);
}

static void *amain(void *arg)
{
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(addr);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    listen(lfd, 1) < 0 || getsockname(lfd, (struct sockaddr *)&addr, &alen) < 0)
		check(-errno, "listen");
	rlt_task *server = rlt_spawn(serve, (void *)(intptr_t)lfd, NULL);
	if (!server)
		check(-errno, "rlt_spawn");

	/* async with Connection(port) as conn: */
	size_t mark = rlt_defer_mark();
	connection conn;
	connection_enter(&conn, &addr);
	{
		char reply[LINE_MAX_LEN];
		request(&conn, "hello", reply, sizeof(reply));
		printf("server says: %s\n", reply);
	}
	check(rlt_defer_run(mark), "rlt_defer_run");

	check(rlt_join(server, NULL), "rlt_join");
	close(lfd);
	return NULL;
}

int main(void)
{
	check(rlt_run(amain, NULL, NULL, NULL), "rlt_run");
	return EXIT_SUCCESS;
}
