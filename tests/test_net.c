/* The network API (net.h): address parsing and formatting, resolution,
 * TCP over IPv4 and IPv6 and Unix stream round trips through
 * rlt_net_listen/accept/dial, SO_REUSEPORT, UDP with addresses
 * (sendmsg/recvmsg), connect time limits against a full accept queue,
 * round trips through the fault policy, and 1000 connections at once to an
 * echo server with every byte checked. Loopback only. */
#include "tests/rlt_test.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static inline unsigned char pat(unsigned seed, size_t i)
{
	return (unsigned char)((i * 151u + seed * 13u + (i >> 10) + (seed >> 3)) & 0xff);
}

static void fill(unsigned char *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = pat(seed, i);
}

static void check(const unsigned char *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] != pat(seed, i))
			fail_msg("seed %u byte %zu: got %u, want %u", seed, i, buf[i],
				 pat(seed, i));
}

/* Whether ::1 can be bound here (containers without IPv6 exist). */
static bool have_ipv6(void)
{
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	bool ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

static void parse_ok(const char *s, const char *formatted)
{
	rlt_addr a;
	int rc = rlt_addr_parse(&a, s);
	if (rc != 0)
		fail_msg("rlt_addr_parse(\"%s\"): %d", s, rc);
	char buf[128];
	rc = rlt_addr_format(&a, buf, sizeof(buf));
	assert_int_equal(rc, (int)strlen(formatted));
	assert_string_equal(buf, formatted);
	/* The formatted form parses back to the same address. */
	rlt_addr b;
	assert_int_equal(rlt_addr_parse(&b, buf), 0);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(&a.ss, &b.ss, a.len);
}

static void parse_bad(const char *s, int err)
{
	rlt_addr a;
	int rc = rlt_addr_parse(&a, s);
	if (rc != err)
		fail_msg("rlt_addr_parse(\"%s\"): %d, want %d", s, rc, err);
}

/* ---- addresses ---- */

static void test_addr_parse_and_format_round_trip(void **state)
{
	parse_ok("127.0.0.1:80", "127.0.0.1:80");
	parse_ok("0.0.0.0:0", "0.0.0.0:0");
	parse_ok("255.255.255.255:65535", "255.255.255.255:65535");
	parse_ok("[::1]:8080", "[::1]:8080");
	parse_ok("[::]:0", "[::]:0");
	parse_ok("[2001:db8:0:0::1]:443", "[2001:db8::1]:443");
	parse_ok("[fe80::1%7]:22", "[fe80::1%7]:22");
	parse_ok("[::ffff:10.0.0.1]:1", "[::ffff:10.0.0.1]:1");
	parse_ok("unix:/tmp/x.sock", "unix:/tmp/x.sock");
	parse_ok("unix:@ringlet", "unix:@ringlet");

	rlt_addr a;
	assert_int_equal(rlt_addr_parse(&a, "127.0.0.1:80"), 0);
	assert_int_equal(a.ss.ss_family, AF_INET);
	assert_int_equal(a.len, sizeof(struct sockaddr_in));
	assert_int_equal(rlt_addr_port(&a), 80);
	const struct sockaddr_in *in = (const struct sockaddr_in *)&a.ss;
	assert_int_equal(in->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	assert_int_equal(rlt_addr_parse(&a, "[::1]:9"), 0);
	assert_int_equal(a.ss.ss_family, AF_INET6);
	assert_int_equal(rlt_addr_port(&a), 9);
	assert_int_equal(rlt_addr_parse(&a, "unix:/a"), 0);
	assert_int_equal(a.len, offsetof(struct sockaddr_un, sun_path) + 3);
	assert_int_equal(rlt_addr_port(&a), -EINVAL);
	/* Abstract: a leading NUL, no trailing one. */
	assert_int_equal(rlt_addr_parse(&a, "unix:@ab"), 0);
	assert_int_equal(a.len, offsetof(struct sockaddr_un, sun_path) + 3);
	assert_int_equal(((struct sockaddr_un *)&a.ss)->sun_path[0], '\0');

	const char *bad[] = {
	    "",
	    "127.0.0.1",
	    "127.0.0.1:",
	    ":80",
	    "127.0.0.1:65536",
	    "127.0.0.1:-1",
	    "127.0.0.1:+80",
	    "127.0.0.1:0x50",
	    "127.0.0.1:80 ",
	    "127.0.0.256:80",
	    "1.2.3:80",
	    "localhost:80",
	    "::1:80",
	    "[::1]",
	    "[::1]80",
	    "[::1:80",
	    "[::g]:80",
	    "[::1%]:80",
	    "[::1%no-such-if0]:80",
	    "unix:",
	    "unix:@",
	    "127.0.0.1:123456",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		parse_bad(bad[i], -EINVAL);
	char longpath[200];
	memset(longpath, 'p', sizeof(longpath));
	memcpy(longpath, "unix:/", 6);
	longpath[sizeof(longpath) - 1] = '\0';
	parse_bad(longpath, -ENAMETOOLONG);
	assert_int_equal(rlt_addr_parse(NULL, "127.0.0.1:1"), -EINVAL);
	assert_int_equal(rlt_addr_parse(&a, NULL), -EINVAL);

	/* Formatting: a buffer too small, a bad family. */
	char small[8];
	assert_int_equal(rlt_addr_parse(&a, "127.0.0.1:80"), 0);
	assert_int_equal(rlt_addr_format(&a, small, sizeof(small)), -ENOSPC);
	assert_int_equal(rlt_addr_format(NULL, small, sizeof(small)), -EINVAL);
	a.ss.ss_family = AF_PACKET;
	assert_int_equal(rlt_addr_format(&a, small, sizeof(small)), -EINVAL);
	assert_int_equal(rlt_addr_port(&a), -EINVAL);
}

/* ---- resolution ---- */

static void *root_resolve(void *arg)
{
	rlt_addr out[8];
	/* Numeric: at once. */
	assert_int_equal(rlt_net_resolve("127.0.0.1:7", SOCK_STREAM, out, 8), 1);
	assert_int_equal(rlt_addr_port(&out[0]), 7);
	assert_int_equal(rlt_net_resolve("unix:/x", SOCK_STREAM, out, 8), 1);
	assert_int_equal(out[0].ss.ss_family, AF_UNIX);
	/* A name, through getaddrinfo on the pool: /etc/hosts has it. */
	int n = rlt_net_resolve("localhost:8080", SOCK_STREAM, out, 8);
	if (n < 1)
		fail_msg("resolving localhost: %d", n);
	for (int i = 0; i < n; i++) {
		assert_int_equal(rlt_addr_port(&out[i]), 8080);
		if (out[i].ss.ss_family == AF_INET) {
			const struct sockaddr_in *in = (const struct sockaddr_in *)&out[i].ss;
			assert_int_equal(ntohl(in->sin_addr.s_addr) >> 24, 127);
		} else {
			assert_int_equal(out[i].ss.ss_family, AF_INET6);
			const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&out[i].ss;
			assert_memory_equal(&in6->sin6_addr, &in6addr_loopback, 16);
		}
	}
	/* max bounds what is stored. */
	assert_int_equal(rlt_net_resolve("localhost:1", SOCK_DGRAM, out, 1), 1);
	/* Malformed. */
	assert_int_equal(rlt_net_resolve("localhost", SOCK_STREAM, out, 8), -EINVAL);
	assert_int_equal(rlt_net_resolve("localhost:http", SOCK_STREAM, out, 8), -EINVAL);
	assert_int_equal(rlt_net_resolve(":80", SOCK_STREAM, out, 8), -EINVAL);
	assert_int_equal(rlt_net_resolve("[nope]:80", SOCK_STREAM, out, 8), -EINVAL);
	assert_int_equal(rlt_net_resolve("localhost:1", SOCK_STREAM, out, 0), -EINVAL);
	assert_int_equal(rlt_net_resolve(NULL, SOCK_STREAM, out, 1), -EINVAL);

	/* getaddrinfo itself: results to free, and its errors as errnos. */
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	assert_int_equal(rlt_getaddrinfo("127.0.0.1", "22", &hints, &res), 0);
	assert_non_null(res);
	assert_int_equal(res->ai_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)res->ai_addr)->sin_port), 22);
	freeaddrinfo(res);
	assert_int_equal(rlt_getaddrinfo("127.0.0.1", "no-such-service-ringlet", &hints, &res),
			 -ENOENT);
	hints.ai_flags = AI_NUMERICHOST;
	assert_int_equal(rlt_getaddrinfo("not a number", "22", &hints, &res), -ENOENT);
	hints.ai_flags = 0x7fff0000; /* nonsense */
	assert_int_equal(rlt_getaddrinfo("127.0.0.1", "22", &hints, &res), -EINVAL);
	assert_int_equal(rlt_getaddrinfo(NULL, NULL, NULL, &res), -EINVAL);
	return NULL;
}

static void test_resolve_numeric_at_once_and_names_on_the_pool(void **state)
{
	rlt_test_run(root_resolve, NULL);
	struct addrinfo *res;
	assert_int_equal(rlt_getaddrinfo("127.0.0.1", "1", NULL, &res), -EPERM);
}

/* ---- stream round trips ---- */

enum { RT_ROUNDS = 20 };

typedef struct rt {
	int lfd;
	unsigned flags;
	rlt_addr peer; /* what accept said */
} rt;

static size_t rt_len(unsigned k)
{
	return 1 + (k * 7919u) % 70000u;
}

static void *rt_server(void *arg)
{
	rt *s = arg;
	int fd = rlt_net_accept(s->lfd, &s->peer, s->flags);
	if (fd < 0)
		fail_msg("rlt_net_accept: %d", fd);
	unsigned char *buf = malloc(70000);
	assert_non_null(buf);
	for (unsigned k = 0; k < RT_ROUNDS; k++) {
		size_t len = rt_len(k);
		assert_int_equal(rlt_recv_exact(fd, buf, len, 0), (ssize_t)len);
		check(buf, len, k);
		for (size_t i = 0; i < len; i++)
			buf[i] = (unsigned char)~buf[i];
		assert_int_equal(rlt_send_all(fd, buf, len, 0), (ssize_t)len);
	}
	/* (rlt_recv_exact, not rlt_recv: it retries what the fault policy
	 * injects) */
	assert_int_equal(rlt_recv_exact(fd, buf, 1, 0), 0);
	assert_int_equal(rlt_close(fd), 0);
	free(buf);
	return NULL;
}

/* Listen on where ("127.0.0.1:0", "[::1]:0", "unix:..."), dial it, echo
 * RT_ROUNDS messages of assorted sizes, check what accept and getsockname
 * say about the two ends. */
static void stream_round_trip(const char *where, unsigned flags)
{
	rlt_addr la;
	assert_int_equal(rlt_addr_parse(&la, where), 0);
	rt s = {.flags = flags};
	s.lfd = rlt_net_listen(&la, -1, 0);
	if (s.lfd < 0)
		fail_msg("rlt_net_listen(%s): %d", where, s.lfd);
	rlt_addr bound;
	assert_int_equal(rlt_net_local(s.lfd, &bound), 0);
	char name[128];
	assert_true(rlt_addr_format(&bound, name, sizeof(name)) > 0);
	if (la.ss.ss_family != AF_UNIX)
		assert_true(rlt_addr_port(&bound) > 0);

	rlt_task *t = rlt_spawn(rt_server, &s, NULL);
	assert_non_null(t);
	int fd = rlt_net_dial(name, 5 * RLT_NSEC_PER_SEC, flags);
	if (fd < 0)
		fail_msg("rlt_net_dial(%s): %d", name, fd);
	unsigned char *buf = malloc(70000);
	assert_non_null(buf);
	for (unsigned k = 0; k < RT_ROUNDS; k++) {
		size_t len = rt_len(k);
		fill(buf, len, k);
		assert_int_equal(rlt_send_all(fd, buf, len, 0), (ssize_t)len);
		memset(buf, 0, len);
		assert_int_equal(rlt_recv_exact(fd, buf, len, 0), (ssize_t)len);
		for (size_t i = 0; i < len; i++)
			buf[i] = (unsigned char)~buf[i];
		check(buf, len, k);
	}
	rlt_addr local, peer;
	assert_int_equal(rlt_net_local(fd, &local), 0);
	assert_int_equal(rlt_net_peer(fd, &peer), 0);
	assert_int_equal(rlt_close(fd), 0);
	assert_int_equal(rlt_join(t, NULL), 0);
	if (la.ss.ss_family != AF_UNIX) {
		/* The server saw the client's address, the client reached ours. */
		assert_int_equal(s.peer.len, local.len);
		assert_memory_equal(&s.peer.ss, &local.ss, local.len);
		assert_int_equal(peer.len, bound.len);
		assert_memory_equal(&peer.ss, &bound.ss, bound.len);
	} else {
		assert_int_equal(s.peer.ss.ss_family, AF_UNIX);
	}
	assert_int_equal(rlt_close(s.lfd), 0);
	free(buf);
}

static void *root_tcp4(void *arg)
{
	stream_round_trip("127.0.0.1:0", 0);
	stream_round_trip("127.0.0.1:0", RLT_NET_NODELAY);
	return NULL;
}

static void *root_tcp6(void *arg)
{
	stream_round_trip("[::1]:0", RLT_NET_NODELAY);
	return NULL;
}

static void *root_unix(void *arg)
{
	char dir[] = "/tmp/ringlet-net-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char where[128];
	snprintf(where, sizeof(where), "unix:%s/s", dir);
	stream_round_trip(where, RLT_NET_NODELAY); /* no Nagle there: ignored */
	/* The socket file stays; listening again on it is refused. */
	rlt_addr a;
	assert_int_equal(rlt_addr_parse(&a, where), 0);
	assert_int_equal(rlt_net_listen(&a, -1, 0), -EADDRINUSE);
	assert_int_equal(unlink(where + 5), 0);
	/* No socket there any more. */
	assert_int_equal(rlt_net_connect(&a, RLT_NSEC_PER_SEC, 0), -ENOENT);
	assert_int_equal(rmdir(dir), 0);
	/* The abstract namespace. */
	snprintf(where, sizeof(where), "unix:@ringlet-test-net-%d", (int)getpid());
	stream_round_trip(where, 0);
	return NULL;
}

/* A listener's accept queue limit, as the kernel keeps it (TCP_INFO on a
 * listening socket reports it in tcpi_sacked). */
static unsigned listen_backlog(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	return ti.tcpi_sacked;
}

/* net.h: "backlog <= 0 means SOMAXCONN" (0 was passed on as a queue of one,
 * and clients beyond it waited a second for the SYN to be retried). */
static void test_listen_backlog_zero_and_negative_mean_somaxconn(void **state)
{
	(void)state;
	rlt_addr a;
	assert_int_equal(rlt_addr_parse(&a, "127.0.0.1:0"), 0);
	int lfd = rlt_net_listen(&a, 0, 0);
	rlt_test_assert_ok(lfd);
	unsigned zero = listen_backlog(lfd);
	close(lfd);
	lfd = rlt_net_listen(&a, -1, 0);
	rlt_test_assert_ok(lfd);
	unsigned neg = listen_backlog(lfd);
	close(lfd);
	lfd = rlt_net_listen(&a, 7, 0);
	rlt_test_assert_ok(lfd);
	assert_int_equal(listen_backlog(lfd), 7);
	close(lfd);
	assert_true(neg > 7);
	assert_int_equal(zero, neg);
}

static void test_tcp_ipv4_listen_accept_dial_round_trip(void **state)
{
	rlt_test_run(root_tcp4, NULL);
}

static void test_tcp_ipv6_listen_accept_dial_round_trip(void **state)
{
	if (!have_ipv6())
		skip();
	rlt_test_run(root_tcp6, NULL);
}

static void test_unix_listen_accept_dial_round_trip(void **state)
{
	rlt_test_run(root_unix, NULL);
}

/* ---- SO_REUSEPORT ---- */

static void *root_reuseport(void *arg)
{
	rlt_addr a;
	assert_int_equal(rlt_addr_parse(&a, "127.0.0.1:0"), 0);
	int l1 = rlt_net_listen(&a, -1, RLT_NET_REUSEPORT);
	rlt_test_assert_ok(l1);
	assert_int_equal(rlt_net_local(l1, &a), 0);
	/* The same port again: only with the flag. */
	int l2 = rlt_net_listen(&a, -1, RLT_NET_REUSEPORT);
	rlt_test_assert_ok(l2);
	assert_int_equal(rlt_net_listen(&a, -1, 0), -EADDRINUSE);
	/* Connections land on one or the other; every one is accepted. */
	enum { N = 16 };
	int c[N];
	for (int i = 0; i < N; i++) {
		c[i] = rlt_net_connect(&a, RLT_NSEC_PER_SEC, 0);
		rlt_test_assert_ok(c[i]);
	}
	/* (A handshake may still be on its way to the accept queue when
	 * connect returns: wait with poll(2), briefly blocking the worker.) */
	int accepted = 0;
	while (accepted < N) {
		struct pollfd p[2] = {{.fd = l1, .events = POLLIN}, {.fd = l2, .events = POLLIN}};
		assert_true(poll(p, 2, 5000) > 0);
		for (int l = 0; l < 2; l++) {
			if (!(p[l].revents & POLLIN))
				continue;
			int fd = rlt_net_accept(p[l].fd, NULL, 0);
			rlt_test_assert_ok(fd);
			assert_int_equal(rlt_close(fd), 0);
			accepted++;
		}
	}
	assert_int_equal(accepted, N);
	for (int i = 0; i < N; i++)
		assert_int_equal(rlt_close(c[i]), 0);
	assert_int_equal(rlt_close(l1), 0);
	assert_int_equal(rlt_close(l2), 0);
	return NULL;
}

static void test_reuseport_lets_two_listeners_share_a_port(void **state)
{
	rlt_test_run(root_reuseport, NULL);
}

/* ---- UDP ---- */

enum { UDP_ROUNDS = 64 };

typedef struct udp_arg {
	int fd;
	rlt_addr client; /* the client's bound address, for the server to check */
} udp_arg;

static size_t udp_len(unsigned k)
{
	return (k * 211u) % 1400u;
} /* 0 included */

static void *udp_server(void *arg)
{
	udp_arg *u = arg;
	unsigned char buf[1500];
	for (unsigned k = 0; k < UDP_ROUNDS; k++) {
		rlt_addr from;
		ssize_t n = rlt_net_recvfrom(u->fd, buf, sizeof(buf), 0, &from);
		assert_int_equal(n, (ssize_t)udp_len(k)); /* one datagram, whole */
		check(buf, (size_t)n, k);
		assert_int_equal(from.len, u->client.len);
		assert_memory_equal(&from.ss, &u->client.ss, from.len);
		for (ssize_t i = 0; i < n; i++)
			buf[i] ^= 0xa5;
		assert_int_equal(rlt_net_sendto(u->fd, buf, (size_t)n, 0, &from), n);
	}
	return NULL;
}

/* faults: only the calls that retry -EINTR and -EAGAIN. */
static void udp_round_trip(const char *any, bool faults)
{
	rlt_addr a;
	assert_int_equal(rlt_addr_parse(&a, any), 0);
	udp_arg u;
	u.fd = rlt_net_udp(&a, 0);
	assert_true(u.fd >= 0);
	int cfd = rlt_net_udp(&a, 0);
	rlt_test_assert_ok(cfd);
	rlt_addr server;
	assert_int_equal(rlt_net_local(u.fd, &server), 0);
	assert_int_equal(rlt_net_local(cfd, &u.client), 0);
	assert_true(rlt_addr_port(&server) > 0);

	rlt_task *t = rlt_spawn(udp_server, &u, NULL);
	assert_non_null(t);
	unsigned char buf[1500];
	for (unsigned k = 0; k < UDP_ROUNDS; k++) {
		size_t len = udp_len(k);
		fill(buf, len, k);
		assert_int_equal(rlt_net_sendto(cfd, buf, len, 0, &server), (ssize_t)len);
		rlt_addr from;
		ssize_t n = rlt_net_recvfrom(cfd, buf, sizeof(buf), 0, &from);
		assert_int_equal(n, (ssize_t)len);
		assert_memory_equal(&from.ss, &server.ss, server.len);
		for (size_t i = 0; i < len; i++)
			buf[i] ^= 0xa5;
		check(buf, len, k);
	}
	assert_int_equal(rlt_join(t, NULL), 0);
	if (faults)
		goto out;

	/* A datagram longer than the buffer: cut, or its length with MSG_TRUNC. */
	fill(buf, 100, 9);
	assert_int_equal(rlt_net_sendto(cfd, buf, 100, 0, &server), 100);
	assert_int_equal(rlt_net_sendto(cfd, buf, 100, 0, &server), 100);
	unsigned char small[10];
	assert_int_equal(rlt_net_recvfrom(u.fd, small, sizeof(small), 0, NULL), 10);
	check(small, 10, 9);
	assert_int_equal(rlt_net_recvfrom(u.fd, small, sizeof(small), MSG_TRUNC, NULL), 100);
	/* Nothing left: MSG_DONTWAIT says so instead of waiting. */
	assert_int_equal(rlt_net_recvfrom(u.fd, small, sizeof(small), MSG_DONTWAIT, NULL), -EAGAIN);

	/* The raw calls, with two iovecs. */
	struct iovec iov[2] = {{.iov_base = "ab", .iov_len = 2}, {.iov_base = "cde", .iov_len = 3}};
	struct msghdr m = {
	    .msg_name = &server.ss, .msg_namelen = server.len, .msg_iov = iov, .msg_iovlen = 2};
	assert_int_equal(rlt_sendmsg(cfd, &m, 0), 5);
	char got[8];
	struct sockaddr_storage from;
	struct iovec riov = {.iov_base = got, .iov_len = sizeof(got)};
	struct msghdr rm = {
	    .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &riov, .msg_iovlen = 1};
	assert_int_equal(rlt_recvmsg(u.fd, &rm, 0), 5);
	assert_memory_equal(got, "abcde", 5);
	assert_int_equal(rm.msg_namelen, u.client.len);
	assert_memory_equal(&from, &u.client.ss, u.client.len);
	assert_int_equal(rm.msg_flags & MSG_TRUNC, 0);

	assert_int_equal(rlt_sendmsg(cfd, NULL, 0), -EINVAL);
	assert_int_equal(rlt_recvmsg(cfd, NULL, 0), -EINVAL);
	rm.msg_iov = NULL;
	assert_int_equal(rlt_recvmsg(cfd, &rm, 0), -EINVAL);
	assert_int_equal(rlt_net_recvfrom(cfd, NULL, 1, 0, NULL), -EINVAL);
	rlt_addr bad = server;
	bad.len = 3;
	assert_int_equal(rlt_net_sendto(cfd, "x", 1, 0, &bad), -EINVAL);
out:
	assert_int_equal(rlt_close(cfd), 0);
	assert_int_equal(rlt_close(u.fd), 0);
}

static void *root_udp4(void *arg)
{
	udp_round_trip("127.0.0.1:0", false);
	return NULL;
}

static void *root_udp6(void *arg)
{
	udp_round_trip("[::1]:0", false);
	return NULL;
}

static void test_udp_ipv4_round_trip_with_addresses(void **state)
{
	rlt_test_run(root_udp4, NULL);
}

static void test_udp_ipv6_round_trip_with_addresses(void **state)
{
	if (!have_ipv6())
		skip();
	rlt_test_run(root_udp6, NULL);
}

static void test_sendmsg_recvmsg_outside_a_task_give_eperm(void **state)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
	struct iovec iov = {.iov_base = "x", .iov_len = 1};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	assert_int_equal(rlt_sendmsg(sv[0], &m, 0), -EPERM);
	assert_int_equal(rlt_recvmsg(sv[1], &m, 0), -EPERM);
	close(sv[0]);
	close(sv[1]);
}

/* ---- connect time limit ---- */

/* A listener nobody accepts from, with backlog 1: once its accept queue
 * is full, the kernel drops further SYNs (the client would retransmit
 * after 1 s, 3 s, ...), so a connect just waits. */
static void *root_connect_timeout(void *arg)
{
	rlt_addr a;
	assert_int_equal(rlt_addr_parse(&a, "127.0.0.1:0"), 0);
	int lfd = rlt_net_listen(&a, 1, 0);
	rlt_test_assert_ok(lfd);
	assert_int_equal(rlt_net_local(lfd, &a), 0);
	/* Fill the queue: connect until one times out. */
	int held[4], nheld = 0, rc = 0;
	while (nheld < 4) {
		rc = rlt_net_connect(&a, 100 * RLT_NSEC_PER_MSEC, 0);
		if (rc < 0)
			break;
		held[nheld++] = rc;
	}
	assert_int_equal(rc, -ETIMEDOUT);
	assert_true(nheld >= 1);

	/* The measured one; the task's own I/O limit is left as it was. */
	assert_int_equal(rlt_set_io_timeout(7 * RLT_NSEC_PER_SEC), 0);
	const uint64_t limit = 300 * RLT_NSEC_PER_MSEC;
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_net_connect(&a, (int64_t)limit, 0), -ETIMEDOUT);
	uint64_t took = rlt_now() - t0;
	assert_int_equal(rlt_io_timeout(), 7 * RLT_NSEC_PER_SEC);
	if (took < limit || took > limit + 600 * RLT_NSEC_PER_MSEC)
		fail_msg("connect timed out after %llu ms, limit %llu ms",
			 (unsigned long long)(took / RLT_NSEC_PER_MSEC),
			 (unsigned long long)(limit / RLT_NSEC_PER_MSEC));
	assert_int_equal(rlt_set_io_timeout(0), 0);

	/* rlt_net_dial shares one limit among its attempts. */
	char name[64];
	assert_true(rlt_addr_format(&a, name, sizeof(name)) > 0);
	t0 = rlt_now();
	assert_int_equal(rlt_net_dial(name, (int64_t)limit, 0), -ETIMEDOUT);
	took = rlt_now() - t0;
	assert_true(took >= limit && took < limit + 600 * RLT_NSEC_PER_MSEC);

	/* Once the queue drains, connecting works again. */
	for (int i = 0; i < nheld; i++) {
		int fd = rlt_net_accept(lfd, NULL, 0);
		rlt_test_assert_ok(fd);
		assert_int_equal(rlt_close(fd), 0);
		assert_int_equal(rlt_close(held[i]), 0);
	}
	assert_int_equal(rlt_close(lfd), 0);
	return NULL;
}

static void test_connect_to_full_accept_queue_times_out(void **state)
{
	rlt_test_run(root_connect_timeout, NULL);
}

/* ---- acceptors ---- */

/* The sockets this process has open (every test closes what it opens, so
 * an acceptor that leaks a connection shows here; the runtime's own fds,
 * rings and eventfds, some made and closed by pool threads as they come
 * and go, are not sockets). Read from /proc's links, not with fstat: that
 * would race (for ThreadSanitizer) with a pool thread closing its own. */
static int open_sockets(void)
{
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char path[300], link[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		ssize_t len = readlink(path, link, sizeof(link) - 1);
		n += len > 7 && strncmp(link, "socket:", 7) == 0;
	}
	closedir(d);
	return n;
}

static int listen_any(rlt_addr *where, int backlog)
{
	assert_int_equal(rlt_addr_parse(where, "127.0.0.1:0"), 0);
	int lfd = rlt_net_listen(where, backlog, 0);
	rlt_test_assert_ok(lfd);
	assert_int_equal(rlt_net_local(lfd, where), 0);
	return lfd;
}

static bool same_addr(const rlt_addr *a, const rlt_addr *b)
{
	return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

#define BURST 300

typedef struct burst {
	rlt_addr where;
	rlt_addr local[BURST]; /* each client's own address */
	rlt_event *all_in;
	atomic_int connected;
	atomic_int answered;
} burst;

typedef struct burst_client {
	burst *b;
	uint32_t id;
} burst_client;

static void *burst_client_task(void *arg)
{
	burst_client *c = arg;
	burst *b = c->b;
	int fd = rlt_net_connect(&b->where, 10 * RLT_NSEC_PER_SEC, 0);
	if (fd < 0) {
		rlt_test_fault_ends(fd);
		fail_msg("client %u: connect %d", c->id, fd);
	}
	assert_int_equal(rlt_net_local(fd, &b->local[c->id]), 0);
	assert_int_equal(rlt_send_all(fd, &c->id, sizeof(c->id), 0), (ssize_t)sizeof(c->id));
	if (atomic_fetch_add(&b->connected, 1) + 1 == BURST)
		rlt_event_set(b->all_in);
	char k = 0;
	assert_int_equal(rlt_recv_exact(fd, &k, 1, 0), 1);
	assert_int_equal(k, 'k');
	atomic_fetch_add(&b->answered, 1);
	assert_int_equal(rlt_close(fd), 0);
	return NULL;
}

/* The server takes one connection (which arms the multishot accept), then
 * lets all the others connect before it takes any more: far more than the
 * acceptor queues, so accepting pauses and starts again. Every connection
 * comes out once, with its own peer address. */
static void *root_acceptor_burst(void *arg)
{
	(void)arg;
	int socks0 = open_sockets();
	static burst b;
	memset(&b, 0, sizeof(b));
	int lfd = listen_any(&b.where, BURST + 16);
	b.all_in = rlt_event_new();
	assert_non_null(b.all_in);
	rlt_acceptor *a = rlt_acceptor_open(lfd, RLT_NET_NODELAY);
	assert_non_null(a);
	static burst_client cl[BURST];
	static rlt_task *tasks[BURST];
	rlt_spawn_opts o = {.stack_size = 32 * 1024};
	for (uint32_t i = 0; i < BURST; i++) {
		cl[i] = (burst_client){.b = &b, .id = i};
		tasks[i] = rlt_spawn(burst_client_task, &cl[i], &o);
		assert_non_null(tasks[i]);
	}
	static bool seen[BURST];
	memset(seen, 0, sizeof(seen));
	for (int k = 0; k < BURST; k++) {
		rlt_addr peer;
		int fd = rlt_acceptor_next(a, &peer);
		if (fd < 0)
			fail_msg("connection %d: %d", k, fd);
		if (k == 0)
			assert_int_equal(rlt_event_wait(b.all_in), 0);
		uint32_t id = UINT32_MAX;
		assert_int_equal(rlt_recv_exact(fd, &id, sizeof(id), 0), (ssize_t)sizeof(id));
		assert_true(id < BURST);
		assert_false(seen[id]);
		seen[id] = true;
		assert_true(same_addr(&peer, &b.local[id]));
		assert_int_equal(rlt_send_all(fd, "k", 1, 0), 1);
		assert_int_equal(rlt_close(fd), 0);
	}
	for (int i = 0; i < BURST; i++)
		assert_int_equal(rlt_join(tasks[i], NULL), 0);
	assert_int_equal(atomic_load(&b.answered), BURST);
	assert_int_equal(rlt_acceptor_close(a), 0);
	assert_int_equal(rlt_event_free(b.all_in), 0);
	assert_int_equal(rlt_close(lfd), 0);
	assert_int_equal(open_sockets(), socks0);
	return NULL;
}

static void test_acceptor_takes_a_burst_beyond_its_queue_once_each(void **state)
{
	rlt_test_run(root_acceptor_burst, NULL);
}

typedef struct pend {
	rlt_addr where;
	rlt_event *all_in;
	atomic_int connected;
	atomic_int ended;
} pend;

#define PEND 12

/* Connect, then wait for the server to end the connection. */
static void *pend_client(void *arg)
{
	pend *p = arg;
	int fd = rlt_net_connect(&p->where, 10 * RLT_NSEC_PER_SEC, 0);
	rlt_test_assert_ok(fd);
	if (atomic_fetch_add(&p->connected, 1) + 1 == PEND)
		rlt_event_set(p->all_in);
	char c;
	rlt_scope sc; /* a connection nobody closes fails the test, not hangs it */
	assert_int_equal(rlt_scope_enter(&sc, 10 * RLT_NSEC_PER_SEC), 0);
	ssize_t n = rlt_recv(fd, &c, 1, 0);
	rlt_scope_leave(&sc);
	if (n != 0 && n != -ECONNRESET)
		fail_msg("the server's end of the connection: %zd, not closed", n);
	atomic_fetch_add(&p->ended, 1);
	assert_int_equal(rlt_close(fd), 0);
	return NULL;
}

/* Closing an acceptor closes what it accepted ahead and stops accepting:
 * the listener's later connections go to plain accept again, and no fd is
 * left behind. */
static void *root_acceptor_close(void *arg)
{
	(void)arg;
	int socks0 = open_sockets();
	pend p = {0};
	int lfd = listen_any(&p.where, 64);
	p.all_in = rlt_event_new();
	assert_non_null(p.all_in);
	rlt_acceptor *a = rlt_acceptor_open(lfd, 0);
	assert_non_null(a);
	rlt_task *cl[PEND];
	for (int i = 0; i < PEND; i++) {
		cl[i] = rlt_spawn(pend_client, &p, NULL);
		assert_non_null(cl[i]);
	}
	int first = rlt_acceptor_next(a, NULL);
	rlt_test_assert_ok(first);
	assert_int_equal(rlt_event_wait(p.all_in), 0);
	assert_int_equal(rlt_acceptor_close(a), 0);
	assert_int_equal(rlt_close(first), 0);
	/* What the acceptor had not taken from the kernel is still queued on
	 * the listener. */
	for (;;) {
		rlt_scope sc;
		assert_int_equal(rlt_scope_enter(&sc, 200 * RLT_NSEC_PER_MSEC), 0);
		int fd = rlt_net_accept(lfd, NULL, 0);
		rlt_scope_leave(&sc);
		if (fd == -ETIMEDOUT)
			break;
		rlt_test_assert_ok(fd);
		assert_int_equal(rlt_close(fd), 0);
	}
	for (int i = 0; i < PEND; i++)
		assert_int_equal(rlt_join(cl[i], NULL), 0);
	assert_int_equal(atomic_load(&p.ended), PEND);

	/* Nothing is armed any more: a new connection reaches plain accept. */
	int c = rlt_net_connect(&p.where, RLT_NSEC_PER_SEC, 0);
	rlt_test_assert_ok(c);
	rlt_addr mine, peer;
	assert_int_equal(rlt_net_local(c, &mine), 0);
	rlt_scope sc;
	assert_int_equal(rlt_scope_enter(&sc, 2 * RLT_NSEC_PER_SEC), 0);
	socklen_t len = sizeof(peer.ss);
	int fd = rlt_accept(lfd, (struct sockaddr *)&peer.ss, &len, SOCK_CLOEXEC);
	assert_int_equal(rlt_scope_leave(&sc), 0);
	rlt_test_assert_ok(fd);
	peer.len = len;
	assert_true(same_addr(&peer, &mine));
	assert_int_equal(rlt_close(fd), 0);
	assert_int_equal(rlt_close(c), 0);
	assert_int_equal(rlt_event_free(p.all_in), 0);
	assert_int_equal(rlt_close(lfd), 0);
	assert_int_equal(open_sockets(), socks0);
	return NULL;
}

static void test_acceptor_close_ends_accepting_and_closes_the_queued(void **state)
{
	rlt_test_run(root_acceptor_close, NULL);
}

typedef struct waiter_arg {
	rlt_acceptor *a;
	int rc;
} waiter_arg;

static void *acceptor_waiter(void *arg)
{
	waiter_arg *w = arg;
	w->rc = rlt_acceptor_next(w->a, NULL);
	return NULL;
}

/* A deadline, a cancel and a second taker: each ends or refuses one call,
 * and the next connection still comes out. */
static void *root_acceptor_waits(void *arg)
{
	(void)arg;
	rlt_addr where;
	int lfd = listen_any(&where, 16);
	rlt_acceptor *a = rlt_acceptor_open(lfd, 0);
	assert_non_null(a);

	rlt_scope sc;
	assert_int_equal(rlt_scope_enter(&sc, 50 * RLT_NSEC_PER_MSEC), 0);
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_acceptor_next(a, NULL), -ETIMEDOUT);
	assert_true(rlt_now() - t0 >= 50 * RLT_NSEC_PER_MSEC);
	assert_int_equal(rlt_scope_leave(&sc), -ETIMEDOUT);

	waiter_arg w = {.a = a, .rc = 1};
	rlt_task *t = rlt_spawn(acceptor_waiter, &w, NULL);
	assert_non_null(t);
	int st;
	while ((st = rlt_task_state(t, NULL, 0)) != RLT_TASK_WAITING && st != RLT_TASK_DONE)
		assert_int_equal(rlt_yield(), 0);
	if (st == RLT_TASK_DONE) { /* its wait ended before it began: an injected error */
		assert_int_equal(rlt_join(t, NULL), 0);
		rlt_test_assert_ok(w.rc);
		fail_msg("the waiter's rlt_acceptor_next returned %d with no connection", w.rc);
	}
	/* The second taker is refused at once. Under a deadline all the same:
	 * should an injected error end the waiter's wait first, this call
	 * becomes the taker and must not wait for a connection forever. */
	assert_int_equal(rlt_scope_enter(&sc, 2 * RLT_NSEC_PER_SEC), 0);
	int busy = rlt_acceptor_next(a, NULL);
	rlt_scope_leave(&sc);
	assert_int_equal(busy, -EBUSY);
	assert_int_equal(rlt_acceptor_close(a), -EBUSY);
	assert_int_equal(rlt_cancel(t), 0);
	assert_int_equal(rlt_join(t, NULL), -ECANCELED);
	assert_int_equal(w.rc, -ECANCELED);

	int c = rlt_net_connect(&where, RLT_NSEC_PER_SEC, 0);
	rlt_test_assert_ok(c);
	rlt_addr mine, peer;
	assert_int_equal(rlt_net_local(c, &mine), 0);
	int fd = rlt_acceptor_next(a, &peer);
	rlt_test_assert_ok(fd);
	assert_true(same_addr(&peer, &mine));
	assert_int_equal(rlt_close(fd), 0);
	assert_int_equal(rlt_close(c), 0);
	assert_int_equal(rlt_acceptor_close(a), 0);
	assert_int_equal(rlt_close(lfd), 0);
	return NULL;
}

static void test_acceptor_deadline_cancel_and_second_taker(void **state)
{
	rlt_test_run(root_acceptor_waits, NULL);
}

/* Out of descriptors: -EMFILE once, the connection stays queued in the
 * kernel, and the next call takes it once there is room. Then an
 * O_NONBLOCK listener, which the kernel answers with -EAGAIN when empty:
 * the acceptor waits instead. Bad arguments. */
static void *root_acceptor_errors(void *arg)
{
	(void)arg;
	rlt_addr where;
	int lfd = listen_any(&where, 16);
	rlt_acceptor *a = rlt_acceptor_open(lfd, 0);
	assert_non_null(a);
	/* The client's socket first: after this no fd can be made. */
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	rlt_test_assert_ok(c);
	assert_int_equal(connect(c, (struct sockaddr *)&where.ss, where.len), 0);
	struct rlimit old, low;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	int next_fd = dup(0);
	rlt_test_assert_ok(next_fd);
	close(next_fd);
	low = old;
	low.rlim_cur = (rlim_t)next_fd;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	int rc = rlt_acceptor_next(a, NULL);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(rc, -EMFILE);
	int fd = rlt_acceptor_next(a, NULL);
	rlt_test_assert_ok(fd);
	assert_int_equal(rlt_close(fd), 0);
	assert_int_equal(rlt_close(c), 0);
	assert_int_equal(rlt_acceptor_close(a), 0);

	assert_int_equal(fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK), 0);
	a = rlt_acceptor_open(lfd, 0);
	assert_non_null(a);
	waiter_arg w = {.a = a, .rc = -1};
	rlt_task *t = rlt_spawn(acceptor_waiter, &w, NULL);
	assert_non_null(t);
	assert_int_equal(rlt_sleep(20 * RLT_NSEC_PER_MSEC), 0); /* let it find the queue empty */
	c = rlt_net_connect(&where, RLT_NSEC_PER_SEC, 0);
	rlt_test_assert_ok(c);
	assert_int_equal(rlt_join(t, NULL), 0);
	rlt_test_assert_ok(w.rc);
	assert_int_equal(rlt_close(w.rc), 0);
	assert_int_equal(rlt_close(c), 0);
	assert_int_equal(rlt_acceptor_close(a), 0);

	errno = 0;
	assert_null(rlt_acceptor_open(-1, 0));
	assert_int_equal(errno, EBADF);
	assert_null(rlt_acceptor_open(lfd, 0x100));
	assert_int_equal(errno, EINVAL);
	assert_int_equal(rlt_acceptor_next(NULL, NULL), -EINVAL);
	assert_int_equal(rlt_acceptor_close(NULL), 0);
	/* A socket that is not listening: accept4's -EINVAL. */
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	rlt_test_assert_ok(s);
	a = rlt_acceptor_open(s, 0);
	assert_non_null(a);
	assert_int_equal(rlt_acceptor_next(a, NULL), -EINVAL);
	assert_int_equal(rlt_acceptor_close(a), 0);
	assert_int_equal(rlt_close(s), 0);
	assert_int_equal(rlt_close(lfd), 0);
	return NULL;
}

static void test_acceptor_emfile_nonblocking_listener_and_bad_arguments(void **state)
{
	rlt_test_run(root_acceptor_errors, NULL);
	errno = 0;
	assert_null(rlt_acceptor_open(0, 0)); /* not in a task */
	assert_int_equal(errno, EPERM);
}

typedef struct handoff {
	rlt_addr where;
	rlt_acceptor *a;
	int lfd;
	int got[3];
	int on[3];
} handoff;

static void *handoff_first(void *arg)
{
	handoff *h = arg;
	h->a = rlt_acceptor_open(h->lfd, 0);
	assert_non_null(h->a);
	h->got[0] = rlt_acceptor_next(h->a, NULL); /* arms on this worker */
	h->on[0] = rlt_worker_index();
	return NULL;
}

static void *handoff_second(void *arg)
{
	handoff *h = arg;
	for (int i = 1; i < 3; i++) {
		h->got[i] = rlt_acceptor_next(h->a, NULL);
		h->on[i] = rlt_worker_index();
	}
	assert_int_equal(rlt_acceptor_close(h->a), 0); /* stops it on the other worker */
	return NULL;
}

/* Armed on worker 0, taken from and closed on worker 1. */
static void *root_acceptor_handoff(void *arg)
{
	(void)arg;
	handoff h = {0};
	h.lfd = listen_any(&h.where, 16);
	int c[4];
	for (int i = 0; i < 3; i++) {
		c[i] = rlt_net_connect(&h.where, RLT_NSEC_PER_SEC, 0);
		rlt_test_assert_ok(c[i]);
	}
	assert_int_equal(rlt_join(rlt_test_spawn_on(handoff_first, &h, 0), NULL), 0);
	assert_int_equal(rlt_join(rlt_test_spawn_on(handoff_second, &h, 1), NULL), 0);
	assert_int_equal(h.on[0], 0);
	for (int i = 0; i < 3; i++) {
		rlt_test_fault_ends(h.got[i]);
		assert_true(h.got[i] >= 0);
		assert_int_equal(rlt_close(h.got[i]), 0);
	}
	assert_int_equal(h.on[1], 1);
	assert_int_equal(h.on[2], 1);
	/* Stopped: plain accept gets the next one. */
	c[3] = rlt_net_connect(&h.where, RLT_NSEC_PER_SEC, 0);
	rlt_test_assert_ok(c[3]);
	rlt_scope sc;
	assert_int_equal(rlt_scope_enter(&sc, 2 * RLT_NSEC_PER_SEC), 0);
	int fd = rlt_net_accept(h.lfd, NULL, 0);
	assert_int_equal(rlt_scope_leave(&sc), 0);
	rlt_test_assert_ok(fd);
	assert_int_equal(rlt_close(fd), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(rlt_close(c[i]), 0);
	assert_int_equal(rlt_close(h.lfd), 0);
	return NULL;
}

static void test_acceptor_armed_on_one_worker_taken_on_another(void **state)
{
	rlt_config cfg = {.workers = 2};
	void *res = NULL;
	assert_int_equal(rlt_run(root_acceptor_handoff, NULL, &cfg, &res), 0);
}

/* ---- errors ---- */

static void *root_errors(void *arg)
{
	rlt_addr a;
	assert_int_equal(rlt_net_listen(NULL, -1, 0), -EINVAL);
	assert_int_equal(rlt_addr_parse(&a, "127.0.0.1:0"), 0);
	assert_int_equal(rlt_net_listen(&a, -1, 0x100), -EINVAL);
	assert_int_equal(rlt_net_udp(&a, 0x100), -EINVAL);
	assert_int_equal(rlt_net_connect(NULL, 0, 0), -EINVAL);
	assert_int_equal(rlt_net_connect(&a, 0, RLT_NET_REUSEPORT), -EINVAL);
	assert_int_equal(rlt_net_accept(0, NULL, 0x100), -EINVAL);
	assert_int_equal(rlt_net_dial("nonsense", 0, 0), -EINVAL);
	assert_int_equal(rlt_net_dial("127.0.0.1:1", 0, 0x100), -EINVAL);
	rlt_addr bad = a;
	bad.len = 2;
	assert_int_equal(rlt_net_listen(&bad, -1, 0), -EINVAL);
	bad.len = sizeof(bad.ss) + 1;
	assert_int_equal(rlt_net_connect(&bad, 0, 0), -EINVAL);
	assert_int_equal(rlt_net_local(0, NULL), -EINVAL);

	/* A port nobody listens on: reserve one, free it. */
	int lfd = rlt_net_listen(&a, -1, 0);
	rlt_test_assert_ok(lfd);
	assert_int_equal(rlt_net_local(lfd, &a), 0);
	/* accept on a socket that does not listen. */
	int ufd = rlt_net_udp(&(rlt_addr){.ss = a.ss, .len = a.len}, 0);
	rlt_test_assert_ok(ufd);
	/* (Not under faults: an injected -EAGAIN would make it wait for the
	 * socket to be readable, which a UDP socket without datagrams never
	 * is.) */
	if (!rlt_test_faulty())
		assert_true(rlt_net_accept(ufd, NULL, 0) < 0);
	assert_int_equal(rlt_close(ufd), 0);
	assert_int_equal(rlt_close(lfd), 0);
	assert_int_equal(rlt_net_connect(&a, RLT_NSEC_PER_SEC, 0), -ECONNREFUSED);
	return NULL;
}

static void test_bad_arguments_give_einval_and_refusals_their_errno(void **state)
{
	rlt_test_run(root_errors, NULL);
}

/* ---- under the fault policy ---- */

static void *root_faults(void *arg)
{
	stream_round_trip("127.0.0.1:0", RLT_NET_NODELAY);
	char where[96];
	snprintf(where, sizeof(where), "unix:@ringlet-test-net-fault-%d", (int)getpid());
	stream_round_trip(where, 0);
	udp_round_trip("127.0.0.1:0", true);
	return NULL;
}

static void test_round_trips_survive_injected_eintr_eagain_and_short_transfers(void **state)
{
	rlt_test_run_faults("seed=11,rate=0.3,errors=EINTR+EAGAIN,short=1", root_faults, NULL);
	rlt_test_run_faults("seed=12,rate=0.5,errors=EINTR+EAGAIN,short=1,delay_us=50", root_faults,
			    NULL);
}

/* ---- 1000 connections at once ---- */

enum { MANY = 1000, MANY_BYTES = 6000 };

typedef struct many {
	rlt_addr where;
	int lfd;
	atomic_int connected;
	rlt_event *all_in;
	rlt_waitgroup *handlers;
	atomic_int checked;
} many;

typedef struct handler_arg {
	many *m;
	int fd;
} handler_arg;

static void *many_handler(void *arg)
{
	handler_arg *h = arg;
	int fd = h->fd;
	unsigned char buf[1024];
	for (;;) {
		ssize_t n = rlt_recv(fd, buf, sizeof(buf), 0);
		if (n == 0)
			break;
		if (n < 0)
			fail_msg("echo recv: %zd", n);
		assert_int_equal(rlt_send_all(fd, buf, (size_t)n, 0), n);
	}
	assert_int_equal(rlt_close(fd), 0);
	assert_int_equal(rlt_waitgroup_done(h->m->handlers), 0);
	return NULL;
}

static void *many_acceptor(void *arg)
{
	many *m = arg;
	rlt_spawn_opts o = {.stack_size = 64 * 1024};
	rlt_acceptor *a = rlt_acceptor_open(m->lfd, 0);
	assert_non_null(a);
	for (int i = 0; i < MANY; i++) {
		int fd = rlt_acceptor_next(a, NULL);
		if (fd < 0)
			fail_msg("accept %d: %d", i, fd);
		static handler_arg ha[MANY];
		ha[i] = (handler_arg){.m = m, .fd = fd};
		assert_int_equal(rlt_waitgroup_add(m->handlers, 1), 0);
		rlt_task *t = rlt_spawn(many_handler, &ha[i], &o);
		assert_non_null(t);
		assert_int_equal(rlt_detach(t), 0);
	}
	assert_int_equal(rlt_acceptor_close(a), 0);
	return NULL;
}

typedef struct client {
	many *m;
	unsigned id;
} client;

static void *many_client(void *arg)
{
	client *c = arg;
	many *m = c->m;
	int fd = rlt_net_connect(&m->where, 30 * RLT_NSEC_PER_SEC, 0);
	if (fd < 0) {
		rlt_test_fault_ends(fd);
		fail_msg("client %u connect: %d", c->id, fd);
	}
	/* Hold the connection until all MANY are open. */
	if (atomic_fetch_add(&m->connected, 1) + 1 == MANY)
		rlt_event_set(m->all_in);
	assert_int_equal(rlt_event_wait(m->all_in), 0);
	unsigned char out[MANY_BYTES], in[MANY_BYTES];
	fill(out, sizeof(out), c->id);
	/* In three pieces, so the server's reads do not line up with ours. */
	size_t cut1 = 1 + c->id % 1000, cut2 = cut1 + 1 + c->id % 3000;
	assert_int_equal(rlt_send_all(fd, out, cut1, 0), (ssize_t)cut1);
	assert_int_equal(rlt_send_all(fd, out + cut1, cut2 - cut1, 0), (ssize_t)(cut2 - cut1));
	assert_int_equal(rlt_send_all(fd, out + cut2, sizeof(out) - cut2, 0),
			 (ssize_t)(sizeof(out) - cut2));
	assert_int_equal(rlt_shutdown(fd, SHUT_WR), 0);
	assert_int_equal(rlt_recv_exact(fd, in, sizeof(in), 0), (ssize_t)sizeof(in));
	check(in, sizeof(in), c->id);
	assert_int_equal(rlt_recv(fd, in, 1, 0), 0); /* the echo ends with us */
	assert_int_equal(rlt_close(fd), 0);
	atomic_fetch_add(&m->checked, 1);
	return NULL;
}

static void *root_many(void *arg)
{
	many *m = arg;
	assert_int_equal(rlt_addr_parse(&m->where, "127.0.0.1:0"), 0);
	m->lfd = rlt_net_listen(&m->where, -1, 0);
	assert_true(m->lfd >= 0);
	assert_int_equal(rlt_net_local(m->lfd, &m->where), 0);
	m->all_in = rlt_event_new();
	assert_non_null(m->all_in);
	m->handlers = rlt_waitgroup_new();
	assert_non_null(m->handlers);
	rlt_task *acc = rlt_spawn(many_acceptor, m, NULL);
	assert_non_null(acc);
	static client cl[MANY];
	static rlt_task *tasks[MANY];
	rlt_spawn_opts o = {.stack_size = 64 * 1024};
	for (unsigned i = 0; i < MANY; i++) {
		cl[i] = (client){.m = m, .id = i};
		tasks[i] = rlt_spawn(many_client, &cl[i], &o);
		assert_non_null(tasks[i]);
	}
	for (unsigned i = 0; i < MANY; i++)
		assert_int_equal(rlt_join(tasks[i], NULL), 0);
	assert_int_equal(rlt_join(acc, NULL), 0);
	assert_int_equal(rlt_waitgroup_wait(m->handlers), 0); /* they are detached */
	assert_int_equal(rlt_waitgroup_free(m->handlers), 0);
	assert_int_equal(atomic_load(&m->checked), MANY);
	assert_int_equal(rlt_event_free(m->all_in), 0);
	assert_int_equal(rlt_close(m->lfd), 0);
	return NULL;
}

static void test_thousand_concurrent_connections_echo_every_byte(void **state)
{
	/* 2 fds per connection in this process, plus the runtime's. */
	struct rlimit rl;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 2 * MANY + 64)
		skip(); /* the hard limit is too low here */
	many m = {.lfd = -1};
	rlt_test_run(root_many, &m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_addr_parse_and_format_round_trip),
	    cmocka_unit_test(test_resolve_numeric_at_once_and_names_on_the_pool),
	    cmocka_unit_test(test_listen_backlog_zero_and_negative_mean_somaxconn),
	    cmocka_unit_test(test_tcp_ipv4_listen_accept_dial_round_trip),
	    cmocka_unit_test(test_tcp_ipv6_listen_accept_dial_round_trip),
	    cmocka_unit_test(test_unix_listen_accept_dial_round_trip),
	    cmocka_unit_test(test_reuseport_lets_two_listeners_share_a_port),
	    cmocka_unit_test(test_udp_ipv4_round_trip_with_addresses),
	    cmocka_unit_test(test_udp_ipv6_round_trip_with_addresses),
	    cmocka_unit_test(test_sendmsg_recvmsg_outside_a_task_give_eperm),
	    cmocka_unit_test(test_connect_to_full_accept_queue_times_out),
	    cmocka_unit_test(test_bad_arguments_give_einval_and_refusals_their_errno),
	    cmocka_unit_test(test_round_trips_survive_injected_eintr_eagain_and_short_transfers),
	    cmocka_unit_test(test_thousand_concurrent_connections_echo_every_byte),
	    cmocka_unit_test(test_acceptor_takes_a_burst_beyond_its_queue_once_each),
	    cmocka_unit_test(test_acceptor_close_ends_accepting_and_closes_the_queued),
	    cmocka_unit_test(test_acceptor_deadline_cancel_and_second_taker),
	    cmocka_unit_test(test_acceptor_emfile_nonblocking_listener_and_bad_arguments),
	    cmocka_unit_test(test_acceptor_armed_on_one_worker_taken_on_another),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
