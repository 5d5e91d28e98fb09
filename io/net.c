/* The network API (include/ringlet/net.h): addresses, resolution on the
 * executor pool, listeners, connections with a time limit, datagrams.
 * Everything that waits goes through the I/O operations of io/ops.c. */
#include "ringlet/net.h"

#include "ringlet/cancel.h"
#include "ringlet/executor.h"
#include "ringlet/io.h"
#include "ringlet/time.h"

#include "io/fdgen.h"
#include "runtime/cancel.h"
#include "io/net.h"
#include "sched/sched.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#define UN_OFF offsetof(struct sockaddr_un, sun_path)

/* ---- addresses ---- */

/* Decimal 0..65535, digits only: "80", not "+80", " 80" or "0x50". */
static int parse_port(const char *s, unsigned *port)
{
	unsigned v = 0;
	size_t n = 0;
	for (; s[n]; n++) {
		if (s[n] < '0' || s[n] > '9' || n == 5)
			return -EINVAL;
		v = v * 10 + (unsigned)(s[n] - '0');
	}
	if (!n || v > 65535)
		return -EINVAL;
	*port = v;
	return 0;
}

static int parse_unix(rlt_addr *out, const char *path)
{
	struct sockaddr_un *un = (struct sockaddr_un *)&out->ss;
	size_t n = strlen(path);
	if (!n || (path[0] == '@' && n == 1))
		return -EINVAL;
	un->sun_family = AF_UNIX;
	if (path[0] == '@') {
		/* Abstract: a NUL, then the name; the length says where it ends. */
		if (n > sizeof(un->sun_path))
			return -ENAMETOOLONG;
		memcpy(un->sun_path + 1, path + 1, n - 1);
		out->len = (socklen_t)(UN_OFF + n);
		return 0;
	}
	if (n >= sizeof(un->sun_path))
		return -ENAMETOOLONG;
	memcpy(un->sun_path, path, n + 1);
	out->len = (socklen_t)(UN_OFF + n + 1);
	return 0;
}

/* "[v6%scope]:port" */
static int parse_v6(rlt_addr *out, const char *str)
{
	const char *close = strchr(str, ']');
	if (!close || close[1] != ':')
		return -EINVAL;
	char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
	size_t hn = (size_t)(close - str - 1);
	if (hn >= sizeof(host))
		return -EINVAL;
	memcpy(host, str + 1, hn);
	host[hn] = '\0';
	unsigned scope = 0;
	char *pct = strchr(host, '%');
	if (pct) {
		*pct++ = '\0';
		if (pct[0] >= '0' && pct[0] <= '9') {
			char *end;
			errno = 0;
			unsigned long v = strtoul(pct, &end, 10);
			if (*end || errno || v > UINT32_MAX)
				return -EINVAL;
			scope = (unsigned)v;
		} else if (!pct[0] || !(scope = if_nametoindex(pct))) {
			return -EINVAL;
		}
	}
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out->ss;
	unsigned port;
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1 || parse_port(close + 2, &port) < 0)
		return -EINVAL;
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons((uint16_t)port);
	in6->sin6_scope_id = scope;
	out->len = sizeof(*in6);
	return 0;
}

int rlt_addr_parse(rlt_addr *out, const char *str)
{
	if (!out || !str)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	int rc;
	if (strncmp(str, "unix:", 5) == 0)
		rc = parse_unix(out, str + 5);
	else if (str[0] == '[')
		rc = parse_v6(out, str);
	else {
		const char *colon = strchr(str, ':');
		char host[INET_ADDRSTRLEN];
		size_t hn = colon ? (size_t)(colon - str) : 0;
		struct sockaddr_in *in = (struct sockaddr_in *)&out->ss;
		unsigned port;
		rc = -EINVAL;
		if (colon && hn && hn < sizeof(host)) {
			memcpy(host, str, hn);
			host[hn] = '\0';
			if (inet_pton(AF_INET, host, &in->sin_addr) == 1 &&
			    parse_port(colon + 1, &port) == 0) {
				in->sin_family = AF_INET;
				in->sin_port = htons((uint16_t)port);
				out->len = sizeof(*in);
				rc = 0;
			}
		}
	}
	if (rc < 0)
		memset(out, 0, sizeof(*out));
	return rc;
}

/* The family of a, if a is one we speak and its length fits it; else 0. */
static int family_of(const rlt_addr *a)
{
	if (!a || a->len < sizeof(sa_family_t) || a->len > sizeof(a->ss))
		return 0;
	switch (a->ss.ss_family) {
	case AF_INET:
		return a->len >= sizeof(struct sockaddr_in) ? AF_INET : 0;
	case AF_INET6:
		return a->len >= sizeof(struct sockaddr_in6) ? AF_INET6 : 0;
	case AF_UNIX:
		return AF_UNIX;
	}
	return 0;
}

int rlt_addr_format(const rlt_addr *a, char *buf, size_t size)
{
	int fam = family_of(a);
	if (!fam || !buf)
		return -EINVAL;
	char host[INET6_ADDRSTRLEN];
	int n;
	if (fam == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&a->ss;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		n = snprintf(buf, size, "%s:%u", host, ntohs(in->sin_port));
	} else if (fam == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		if (in6->sin6_scope_id)
			n = snprintf(buf, size, "[%s%%%u]:%u", host, in6->sin6_scope_id,
				     ntohs(in6->sin6_port));
		else
			n = snprintf(buf, size, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		const struct sockaddr_un *un = (const struct sockaddr_un *)&a->ss;
		size_t plen = a->len > UN_OFF ? a->len - UN_OFF : 0;
		if (plen > sizeof(un->sun_path))
			return -EINVAL;
		if (plen && un->sun_path[0] == '\0') /* abstract: exactly plen - 1 bytes */
			n = snprintf(buf, size, "unix:@%.*s", (int)(plen - 1), un->sun_path + 1);
		else
			n = snprintf(buf, size, "unix:%.*s", (int)strnlen(un->sun_path, plen),
				     un->sun_path);
	}
	if (n < 0 || (size_t)n >= size)
		return -ENOSPC;
	return n;
}

int rlt_addr_port(const rlt_addr *a)
{
	switch (family_of(a)) {
	case AF_INET:
		return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
	case AF_INET6:
		return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
	}
	return -EINVAL;
}

/* ---- resolution ---- */

typedef struct gai_job {
	const char *host, *service;
	const struct addrinfo *hints;
	struct addrinfo *res;
	int rc, err;
} gai_job;

static void *gai_run(void *arg)
{
	gai_job *j = arg;
	j->rc = getaddrinfo(j->host, j->service, j->hints, &j->res);
	j->err = errno;
	return NULL;
}

static int eai_errno(int rc, int err)
{
	switch (rc) {
	case EAI_NONAME:
#ifdef EAI_NODATA
	case EAI_NODATA:
#endif
	case EAI_SERVICE:
		return -ENOENT;
	case EAI_AGAIN:
		return -EAGAIN;
	case EAI_FAMILY:
#ifdef EAI_ADDRFAMILY
	case EAI_ADDRFAMILY:
#endif
		return -EAFNOSUPPORT;
	case EAI_SOCKTYPE:
		return -ESOCKTNOSUPPORT;
	case EAI_BADFLAGS:
		return -EINVAL;
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_SYSTEM:
		return err > 0 ? -err : -EIO;
	}
	return -EIO;
}

int rlt_getaddrinfo(const char *host, const char *service, const struct addrinfo *hints,
		    struct addrinfo **res)
{
	if ((!host && !service) || !res)
		return -EINVAL;
	/* On the task's stack: rlt_run_blocking does not return before the
	 * job has. */
	gai_job j = {.host = host, .service = service, .hints = hints};
	int rc = rlt_run_blocking(NULL, gai_run, &j, NULL);
	if (rc < 0)
		return rc;
	if (j.rc != 0)
		return eai_errno(j.rc, j.err);
	*res = j.res;
	return 0;
}

int rlt_net_resolve(const char *hostport, int socktype, rlt_addr *out, size_t max)
{
	if (!hostport || !out || !max)
		return -EINVAL;
	int rc = rlt_addr_parse(out, hostport);
	if (rc == 0)
		return 1;
	/* A malformed Unix or bracketed address is not a host name. */
	if (rc != -EINVAL || hostport[0] == '[' || strncmp(hostport, "unix:", 5) == 0)
		return rc;
	const char *colon = strrchr(hostport, ':');
	char host[NI_MAXHOST];
	unsigned port;
	size_t hn = colon ? (size_t)(colon - hostport) : 0;
	if (!colon || !hn || hn >= sizeof(host) || memchr(hostport, ':', hn) ||
	    parse_port(colon + 1, &port) < 0)
		return -EINVAL;
	memcpy(host, hostport, hn);
	host[hn] = '\0';
	struct addrinfo hints = {.ai_socktype = socktype, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res;
	rc = rlt_getaddrinfo(host, colon + 1, &hints, &res);
	if (rc < 0)
		return rc;
	size_t n = 0;
	for (struct addrinfo *ai = res; ai && n < max; ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof(out[n].ss) ||
		    (ai->ai_family != AF_INET && ai->ai_family != AF_INET6))
			continue;
		memset(&out[n], 0, sizeof(out[n]));
		memcpy(&out[n].ss, ai->ai_addr, ai->ai_addrlen);
		out[n].len = ai->ai_addrlen;
		n++;
	}
	freeaddrinfo(res);
	return n ? (int)n : -ENOENT;
}

/* ---- sockets ---- */

/* close(2), not rlt_close: no op of ours waits on fd, and this works
 * outside a task too (where the calls above fail with -EPERM). Through
 * rlt__close_fd: a loop may have registered the fd (io/fdgen.h). */
int rlt__net_fail_close(int fd, int rc)
{
	rlt__close_fd(fd);
	return rc;
}

static int set_int(int fd, int level, int opt, int v)
{
	return setsockopt(fd, level, opt, &v, sizeof(v)) == 0 ? 0 : -errno;
}

/* A socket of a's family and type, options set, bound to a. */
static int bound_socket(const rlt_addr *a, int type, unsigned flags)
{
	int fam = family_of(a);
	if (!fam || (flags & ~(RLT_NET_REUSEPORT | RLT_NET_V6ONLY)))
		return -EINVAL;
	int fd = rlt__fd_new(socket(fam, type | SOCK_CLOEXEC, 0));
	if (fd < 0)
		return -errno;
	int rc = 0;
	if (fam != AF_UNIX && type == SOCK_STREAM)
		rc = set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
	if (rc == 0 && (flags & RLT_NET_REUSEPORT))
		rc = set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
	if (rc == 0 && fam == AF_INET6)
		rc = set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, (flags & RLT_NET_V6ONLY) != 0);
	if (rc == 0 && bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0)
		rc = -errno;
	return rc < 0 ? rlt__net_fail_close(fd, rc) : fd;
}

int rlt_net_listen(const rlt_addr *a, int backlog, unsigned flags)
{
	int fd = bound_socket(a, SOCK_STREAM, flags);
	if (fd < 0)
		return fd;
	if (listen(fd, backlog <= 0 ? SOMAXCONN : backlog) < 0)
		return rlt__net_fail_close(fd, -errno);
	return fd;
}

int rlt_net_udp(const rlt_addr *local, unsigned flags)
{
	return bound_socket(local, SOCK_DGRAM, flags);
}

/* TCP_NODELAY; Unix sockets have no Nagle to turn off. */
int rlt__net_nodelay(int fd)
{
	int rc = set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	return rc == -EOPNOTSUPP ? 0 : rc;
}

bool rlt__accept_starved(int err)
{
	return err == -EMFILE || err == -ENFILE || err == -ENOBUFS || err == -ENOMEM;
}

int rlt__accept_backoff(unsigned *level)
{
	unsigned l = *level;
	if (l < RLT__ACCEPT_BACKOFF_STEPS)
		*level = l + 1;
	else
		l = RLT__ACCEPT_BACKOFF_STEPS;
	int rc = rlt_sleep((int64_t)RLT_NSEC_PER_MSEC << l);
	return rc == -ECANCELED || rc == -ETIMEDOUT ? rc : 0;
}

/* rlt_net_accept's back-off, per worker thread: the listener it was for
 * and its step (a worker usually has one accept loop). */
static __thread struct {
	int fd;
	unsigned level;
} net_backoff = {-1, 0};

int rlt_net_accept(int lfd, rlt_addr *peer, unsigned flags)
{
	if (flags & ~RLT_NET_NODELAY)
		return -EINVAL;
	for (;;) {
		socklen_t len = sizeof(peer->ss);
		int fd = rlt_accept(lfd, peer ? (struct sockaddr *)&peer->ss : NULL,
				    peer ? &len : NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			if (__builtin_expect(net_backoff.level != 0, 0) && net_backoff.fd == lfd)
				net_backoff.level = 0;
			if (peer)
				peer->len = len;
			int rc = (flags & RLT_NET_NODELAY) ? rlt__net_nodelay(fd) : 0;
			return rc < 0 ? rlt__net_fail_close(fd, rc) : fd;
		}
		if (fd == -EINTR)
			continue;
		if (rlt__accept_starved(fd)) {
			/* Out of descriptors: the connection stays queued, and a
			 * loop retrying at once would spin. Pause, then say so. */
			if (net_backoff.fd != lfd) {
				net_backoff.fd = lfd;
				net_backoff.level = 0;
			}
			int rc = rlt__accept_backoff(&net_backoff.level);
			return rc < 0 ? rc : fd;
		}
		if (fd != -EAGAIN)
			return fd;
		/* An O_NONBLOCK listener, or an injected fault: wait. */
		int ev = rlt_poll(lfd, POLLIN);
		if (ev < 0 && ev != -EINTR && ev != -EAGAIN)
			return ev;
	}
}

static int sock_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return -errno;
	return -err;
}

/* Connect fd to a by deadline (0: none), through the task's I/O time
 * limit, which is restored after. An -EINTR may have left the kernel's
 * attempt running: then the next connect says -EALREADY, and we wait for
 * writability and ask SO_ERROR how it went. */
static int connect_by(int fd, const rlt_addr *a, uint64_t deadline)
{
	int64_t saved = rlt_io_timeout();
	int rc;
	for (;;) {
		if (deadline) {
			uint64_t now = rlt_now();
			if (now >= deadline) {
				rc = -ETIMEDOUT;
				break;
			}
			rlt_set_io_timeout((int64_t)(deadline - now));
		} else {
			rlt_set_io_timeout(0);
		}
		rc = rlt_connect(fd, (const struct sockaddr *)&a->ss, a->len);
		if (rc == -EALREADY) {
			rc = rlt_poll(fd, POLLOUT);
			if (rc >= 0)
				rc = sock_error(fd);
		}
		if (rc == -EISCONN)
			rc = 0;
		if (rc != -EINTR)
			break;
	}
	rlt_set_io_timeout(saved);
	return rc;
}

static uint64_t deadline_of(int64_t timeout_ns)
{
	return timeout_ns > 0 ? rlt_now() + (uint64_t)timeout_ns : 0;
}

static int connect_until(const rlt_addr *a, uint64_t deadline, unsigned flags)
{
	int fam = family_of(a);
	if (!fam || (flags & ~RLT_NET_NODELAY))
		return -EINVAL;
	int fd = rlt__fd_new(socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0));
	if (fd < 0)
		return -errno;
	int rc = connect_by(fd, a, deadline);
	if (rc == 0 && (flags & RLT_NET_NODELAY))
		rc = rlt__net_nodelay(fd);
	return rc < 0 ? rlt__net_fail_close(fd, rc) : fd;
}

int rlt_net_connect(const rlt_addr *a, int64_t timeout_ns, unsigned flags)
{
	if (!family_of(a))
		return -EINVAL;
	return connect_until(a, deadline_of(timeout_ns), flags);
}

#define DIAL_MAX 8

int rlt_net_dial(const char *hostport, int64_t timeout_ns, unsigned flags)
{
	if (flags & ~RLT_NET_NODELAY)
		return -EINVAL;
	uint64_t deadline = deadline_of(timeout_ns);
	rlt_addr addrs[DIAL_MAX];
	int n = rlt_net_resolve(hostport, SOCK_STREAM, addrs, DIAL_MAX);
	if (n < 0)
		return n;
	int rc = -ETIMEDOUT;
	for (int i = 0; i < n; i++) {
		rc = connect_until(&addrs[i], deadline, flags);
		/* The next address is no answer to a cancel or an expired
		 * deadline scope: the next attempt would swallow the one, and
		 * fail at once under the other. */
		if (rc >= 0 || (deadline && rlt_now() >= deadline) || rc == -ECANCELED ||
		    (rc == -ETIMEDOUT && rlt__scope_expired(rlt__task_self())))
			break;
	}
	return rc;
}

int rlt_net_local(int fd, rlt_addr *out)
{
	if (!out)
		return -EINVAL;
	out->len = sizeof(out->ss);
	return getsockname(fd, (struct sockaddr *)&out->ss, &out->len) == 0 ? 0 : -errno;
}

int rlt_net_peer(int fd, rlt_addr *out)
{
	if (!out)
		return -EINVAL;
	out->len = sizeof(out->ss);
	return getpeername(fd, (struct sockaddr *)&out->ss, &out->len) == 0 ? 0 : -errno;
}

/* ---- datagrams ---- */

/* rlt_sendmsg / rlt_recvmsg with -EINTR retried and -EAGAIN waited out,
 * unless the caller asked not to wait. */
static ssize_t msg_retry(int fd, struct msghdr *m, int flags, bool out)
{
	socklen_t namelen = m->msg_namelen;
	for (;;) {
		m->msg_namelen = namelen;
		ssize_t n = out ? rlt_sendmsg(fd, m, flags) : rlt_recvmsg(fd, m, flags);
		if (n >= 0 || (n != -EINTR && n != -EAGAIN) ||
		    (n == -EAGAIN && (flags & MSG_DONTWAIT)))
			return n;
		if (n == -EAGAIN) {
			int ev = rlt_poll(fd, out ? POLLOUT : POLLIN);
			if (ev < 0 && ev != -EINTR && ev != -EAGAIN)
				return ev;
		}
	}
}

ssize_t rlt_net_sendto(int fd, const void *buf, size_t len, int flags, const rlt_addr *to)
{
	if ((!buf && len) || (to && !family_of(to)))
		return -EINVAL;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr m = {
	    .msg_name = to ? (void *)&to->ss : NULL,
	    .msg_namelen = to ? to->len : 0,
	    .msg_iov = &iov,
	    .msg_iovlen = 1,
	};
	return msg_retry(fd, &m, flags, true);
}

ssize_t rlt_net_recvfrom(int fd, void *buf, size_t len, int flags, rlt_addr *from)
{
	if (!buf && len)
		return -EINVAL;
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	struct msghdr m = {
	    .msg_name = from ? &from->ss : NULL,
	    .msg_namelen = from ? sizeof(from->ss) : 0,
	    .msg_iov = &iov,
	    .msg_iovlen = 1,
	};
	ssize_t n = msg_retry(fd, &m, flags, false);
	if (n >= 0 && from)
		from->len = m.msg_namelen;
	return n;
}
