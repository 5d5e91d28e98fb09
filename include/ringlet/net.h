#ifndef RINGLET_NET_H
#define RINGLET_NET_H

#include "common.h"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/types.h>

RLT_EXTERN_C_BEGIN

/* <netdb.h> declares struct addrinfo only with a POSIX feature macro; a
 * strict C11 program (-std=c11) still compiles this header, and defines
 * _POSIX_C_SOURCE (or _GNU_SOURCE) before its includes to call
 * rlt_getaddrinfo(). */
struct addrinfo;

/*
 * Networking: addresses, name resolution, stream listeners and
 * connections (TCP over IPv4 and IPv6, Unix), and datagrams with
 * addresses (UDP). asyncio's open_connection/start_server/
 * create_datagram_endpoint, one call each, on plain file descriptors.
 *
 * Every socket made here is SOCK_CLOEXEC and blocking-mode (the loop
 * policies wait for it, not the kernel): the fd is the caller's, to close
 * with rlt_close(). Moving bytes on a connection is io.h's: rlt_recv(),
 * rlt_send(), rlt_send_all(), rlt_recv_exact(), rlt_shutdown(), or the
 * buffered streams of bufstream.h.
 *
 * Calls that suspend return -EPERM outside a task, like every I/O call.
 */

/* A socket address of any family ringlet speaks (AF_INET, AF_INET6,
 * AF_UNIX), with its length: what bind/connect/accept take. */
typedef struct rlt_addr {
	struct sockaddr_storage ss;
	socklen_t len;
} rlt_addr;

/* Flags for rlt_net_listen, rlt_net_udp, rlt_net_accept, rlt_net_connect. */
#define RLT_NET_REUSEPORT 1u /* SO_REUSEPORT: one listener per worker on the same port */
#define RLT_NET_V6ONLY	  2u /* IPV6_V6ONLY on an AF_INET6 socket (default: dual stack) */
#define RLT_NET_NODELAY	  4u /* TCP_NODELAY on the connection (no effect on Unix) */

/*
 * Parse a numeric address: "127.0.0.1:80", "[::1]:8080",
 * "[fe80::1%eth0]:80" (scope by name or number), "unix:/run/x.sock",
 * "unix:@name" (Linux's abstract namespace). The port is decimal,
 * 0..65535 (0: an ephemeral port, for listening). Never suspends, never
 * makes a system call except to look up a scope's interface name.
 * Returns 0, or -EINVAL (NULL argument, malformed, a host name: see
 * rlt_net_resolve), -ENAMETOOLONG (a Unix path longer than sun_path takes).
 */
RLT_API int rlt_addr_parse(rlt_addr *out, const char *str);

/*
 * The inverse: "127.0.0.1:80", "[::1]:8080", "unix:/path", "unix:@name"
 * (an unnamed Unix socket gives "unix:"). Writes at most size bytes with
 * the NUL; returns the length without it, or -EINVAL (NULL, a family
 * other than those three, a length that does not fit the family) or
 * -ENOSPC (buf too small: nothing useful written). 64 bytes hold any IP
 * address; 112 any Unix one.
 */
RLT_API int rlt_addr_format(const rlt_addr *a, char *buf, size_t size);

/* The port of an AF_INET or AF_INET6 address (host order), else -EINVAL. */
RLT_API int rlt_addr_port(const rlt_addr *a);

/*
 * getaddrinfo(3) on the default executor pool (rlt_run_blocking): the
 * calling task suspends, its worker runs others meanwhile. Arguments and
 * *res as for getaddrinfo; free *res with freeaddrinfo(3). No time limit
 * (glibc's resolver has its own: resolv.conf's timeout and attempts).
 * Returns 0, or
 *   -ENOENT       no such name or service (EAI_NONAME, EAI_NODATA, EAI_SERVICE)
 *   -EAGAIN       temporary failure in name resolution (EAI_AGAIN)
 *   -EIO          permanent failure (EAI_FAIL) or an unknown EAI code
 *   -EAFNOSUPPORT the family (EAI_FAMILY, EAI_ADDRFAMILY)
 *   -ESOCKTNOSUPPORT the socket type (EAI_SOCKTYPE)
 *   -EINVAL       bad flags (EAI_BADFLAGS), host and service both NULL, res NULL
 *   -ENOMEM       (EAI_MEMORY), or the errno of EAI_SYSTEM
 *   -EPERM        outside a task
 */
RLT_API int rlt_getaddrinfo(const char *host, const char *service, const struct addrinfo *hints,
			    struct addrinfo **res);

/*
 * Resolve "host:port" ("localhost:80", "example.com:443", "[::1]:80",
 * "unix:/path") into up to max addresses for sockets of type socktype
 * (SOCK_STREAM or SOCK_DGRAM), in getaddrinfo's order of preference. A
 * numeric address or a Unix one is parsed at once (rlt_addr_parse);
 * anything else goes through rlt_getaddrinfo and suspends. The port must
 * be numeric. Returns how many addresses were stored (>= 1), or -EINVAL
 * (NULL, max 0, no ":port", a bad port), or rlt_getaddrinfo's errors.
 */
RLT_API int rlt_net_resolve(const char *hostport, int socktype, rlt_addr *out, size_t max);

/*
 * A listening stream socket bound to a (TCP or Unix), with SO_REUSEADDR for
 * TCP and the flags asked (RLT_NET_REUSEPORT, RLT_NET_V6ONLY). backlog <= 0
 * means SOMAXCONN. A Unix path that exists is not removed: -EADDRINUSE.
 * Does not suspend. Returns the fd, or -EINVAL (a NULL or malformed
 * address, unknown flags) or socket/setsockopt/bind/listen's negative
 * errno (-EADDRINUSE, -EACCES, -EAFNOSUPPORT where IPv6 is off, ...).
 * The address actually bound (the port, when a's was 0): getsockname(2),
 * or rlt_net_local().
 */
RLT_API int rlt_net_listen(const rlt_addr *a, int backlog, unsigned flags);

/*
 * Accept a connection on listener lfd: suspends until one comes. The new
 * socket is SOCK_CLOEXEC, with TCP_NODELAY if RLT_NET_NODELAY. peer (may
 * be NULL) gets the client's address. -EINTR and -EAGAIN from below are
 * retried. Returns the fd, or -EINVAL (unknown flags) or accept4(2)'s
 * negative errno (-EMFILE when out of descriptors: the connection stays
 * queued; -EBADF, -EINVAL for a socket that is not listening, ...).
 * Out of descriptors or memory (-EMFILE, -ENFILE, -ENOBUFS, -ENOMEM) the
 * error comes after a pause, 1 ms doubling with each such error in a row
 * on this worker and listener up to 64 ms (reset by a connection), so that
 * an accept loop that just retries does not spin until a descriptor is
 * freed; a cancellation during the pause returns -ECANCELED.
 */
RLT_API int rlt_net_accept(int lfd, rlt_addr *peer, unsigned flags);

/*
 * An acceptor: the connections of listener lfd, for a server's accept loop
 * (Python's `async for conn in server`). Under a policy that can
 * (RLT_POLICY_MULTISHOT: io_uring and io_uring-sqpoll), one multishot
 * accept stays armed in the kernel: each connection costs one completion
 * and no submission. Connections accepted ahead of the loop wait in the
 * acceptor (up to 62; beyond that accepting pauses and the listener's
 * backlog holds them). Elsewhere rlt_acceptor_next is rlt_net_accept.
 *
 * rlt_acceptor_open: from a task, does not suspend; lfd stays the caller's (closing the
 * acceptor does not close it; close the acceptor first: an armed accept
 * keeps the listening socket alive in the kernel). flags: RLT_NET_NODELAY.
 * Returns NULL with errno EPERM (not a task), EBADF, EINVAL or ENOMEM.
 */
typedef struct rlt_acceptor rlt_acceptor;
RLT_API rlt_acceptor *rlt_acceptor_open(int lfd, unsigned flags);

/*
 * The next connection (SOCK_CLOEXEC, TCP_NODELAY if asked), suspending
 * until one comes; peer (may be NULL) gets its address. One task at a
 * time. A connection reset before it was taken is skipped. Returns the fd
 * or: -EBUSY (another task is in next or close), -EPERM (not a task),
 * -EINVAL (a NULL), -ECANCELED / -ETIMEDOUT (cancelled, a deadline scope:
 * nothing is lost, accepting goes on), or what accept4(2) would say
 * (-EMFILE, -ENFILE, -EBADF, -EINVAL for a socket that is not listening):
 * said once, the next call tries again. Out of descriptors or memory
 * (-EMFILE, -ENFILE, -ENOBUFS, -ENOMEM) the error comes after a pause (as
 * rlt_net_accept's: 1 ms doubling up to 64 ms, reset by a connection): a
 * loop that retries at once does not spin.
 */
RLT_API int rlt_acceptor_next(rlt_acceptor *a, rlt_addr *peer);

/*
 * Stop accepting, close the connections accepted but not taken, free a
 * (lfd stays open). Waits (shielded from cancellation) for the kernel to
 * end the armed accept: from a task when one is armed. Returns 0, -EBUSY
 * (a task is in rlt_acceptor_next: cancel it first; nothing changed) or
 * -EPERM (armed, and not called from a task; nothing changed). NULL: 0.
 */
RLT_API int rlt_acceptor_close(rlt_acceptor *a);

/*
 * A stream socket of a's family, connected to a. Suspends until the
 * connection is made, refused, or timeout_ns has passed (<= 0: no limit
 * but the kernel's, about two minutes for an unanswered TCP SYN). The
 * task's own I/O time limit (rlt_set_io_timeout) is not used, and is as
 * it was when the call returns. flags: RLT_NET_NODELAY. Returns the fd,
 * or -ETIMEDOUT, -ECONNREFUSED, -ENETUNREACH, -ENOENT (no such Unix
 * socket), -EAGAIN (a Unix listener's backlog is full), -EINVAL (NULL,
 * unknown flags), ... The socket is closed on failure.
 */
RLT_API int rlt_net_connect(const rlt_addr *a, int64_t timeout_ns, unsigned flags);

/*
 * rlt_net_resolve(hostport, SOCK_STREAM) then rlt_net_connect to each
 * address in turn (at most 8) until one answers, all within timeout_ns
 * (<= 0: none). Returns the fd, or the last attempt's error (-ETIMEDOUT
 * once the time is up), or rlt_net_resolve's.
 */
RLT_API int rlt_net_dial(const char *hostport, int64_t timeout_ns, unsigned flags);

/* The local (getsockname) and peer (getpeername) address of a socket. 0 or
 * a negative errno. Do not suspend. */
RLT_API int rlt_net_local(int fd, rlt_addr *out);
RLT_API int rlt_net_peer(int fd, rlt_addr *out);

/*
 * A datagram socket (UDP, or Unix SOCK_DGRAM) bound to local (port 0: an
 * ephemeral one; "0.0.0.0:0" for a client that does not care), with
 * RLT_NET_REUSEPORT / RLT_NET_V6ONLY if asked. Does not suspend. Returns
 * the fd or a negative errno, as rlt_net_listen.
 */
RLT_API int rlt_net_udp(const rlt_addr *local, unsigned flags);

/*
 * Send one datagram of len bytes to `to` (NULL: the connected peer), with
 * rlt_sendmsg. Suspends while the socket's buffer is full (-EINTR and
 * -EAGAIN are retried, the latter only without MSG_DONTWAIT). Returns len
 * (a datagram goes whole or not at all), or -EMSGSIZE (too big for the
 * protocol), -EINVAL, -ECONNREFUSED (an earlier datagram to a connected
 * peer bounced), ...
 */
RLT_API ssize_t rlt_net_sendto(int fd, const void *buf, size_t len, int flags, const rlt_addr *to);

/*
 * Receive one datagram into buf, with rlt_recvmsg; suspends until one
 * comes (retries as rlt_net_sendto). from (may be NULL) gets the sender's
 * address. Returns the
 * datagram's length (0 for an empty datagram); a datagram longer than len
 * is cut to len and its tail lost, unless flags has MSG_TRUNC, which
 * makes the return value the datagram's real length (as recv(2) does).
 * Errors: -EINVAL, -EBADF, -ECONNREFUSED, ...
 */
RLT_API ssize_t rlt_net_recvfrom(int fd, void *buf, size_t len, int flags, rlt_addr *from);

RLT_EXTERN_C_END

#endif
