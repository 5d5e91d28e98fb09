#ifndef RINGLET_TLS_H
#define RINGLET_TLS_H

#include "common.h"

struct rlt_rxq;

#include <sys/types.h>
#include <sys/uio.h>

RLT_EXTERN_C_BEGIN

/*
 * TLS streams (library ringlet_tls, ringlet-tls.pc; OpenSSL 3 inside).
 * asyncio's ssl=SSLContext for open_connection / start_server, for C.
 *
 * The model: OpenSSL never touches the socket. Its records go through a
 * BIO of ringlet's that only copies to and from two buffers of the
 * connection; ringlet fills the input buffer with rlt_recv() and drains
 * the output buffer with rlt_send(). So every TLS call suspends only the
 * calling task, under every loop policy, and the task's deadline scopes,
 * its I/O timeout (rlt_set_io_timeout) and rlt_cancel() apply to it as to
 * a plain socket: -ETIMEDOUT, -ECANCELED (docs/TLS.md).
 *
 * Ownership: a context (rlt_tls_ctx) holds certificates, keys, trust and
 * settings; it is immutable once made, may be shared by any number of
 * connections on any workers, and may be freed while connections made
 * from it live (they keep what they need). A connection (rlt_tls) wraps a
 * connected stream socket that stays the caller's: rlt_tls_free() does not
 * close it. One task at a time uses a connection (a reader and a writer in
 * two tasks would race inside OpenSSL).
 *
 * Errors, for every call below that talks to the peer (handshake, read,
 * write, shutdown), besides those of rlt_recv / rlt_send (-EPIPE,
 * -ECONNRESET, -EBADF, ...), -ECANCELED, -ETIMEDOUT and -EPERM (not in a
 * task):
 *   -EKEYREJECTED  the peer's certificate is not trusted: unknown issuer,
 *                  self-signed, bad signature, not for TLS, or (server
 *                  with RLT_TLS_VERIFY_CLIENT) no client certificate
 *   -EKEYEXPIRED   the peer's certificate (or one of its chain) has
 *                  expired or is not yet valid
 *   -EACCES        the certificate is valid but not for the host name (or
 *                  IP address) given to rlt_tls_client()
 *   -EPROTO        the peer does not speak TLS (plain HTTP to a TLS port,
 *                  or a TLS client's hello answered in plain text), or
 *                  sent a malformed or undecryptable record
 *   -EPROTONOSUPPORT no common protocol version, cipher or ALPN protocol
 *   -ECONNREFUSED  the peer ended the handshake with an alert (it did not
 *                  accept our certificate, or something else of ours)
 *   -ECONNABORTED  the stream ended where TLS expected more: in the middle
 *                  of the handshake, in the middle of a record (a truncated
 *                  record), or without the peer's close_notify
 *   -ENOMEM        out of memory
 * and rlt_tls_error() says why in OpenSSL's words (its reason string, or
 * the certificate verification error).
 */

typedef struct rlt_tls_ctx rlt_tls_ctx;
typedef struct rlt_tls rlt_tls;

/* rlt_tls_ctx_opts.flags */
#define RLT_TLS_SERVER 1u /* the context accepts connections (else: connects) */
/* Client: do not verify the server's certificate nor its name. Anyone on
 * the path can then read and change the traffic: for tests and private
 * networks only (aiohttp's verify_ssl=False). */
#define RLT_TLS_UNSAFE_NO_VERIFY 2u
/* Server: ask each client for a certificate and refuse those without a
 * valid one (mutual TLS), checked against ca_file. */
#define RLT_TLS_VERIFY_CLIENT 4u
/* Minimum version TLS 1.3 (the default minimum is TLS 1.2). */
#define RLT_TLS_MIN_1_3 8u
/* Kernel TLS for sending: after the handshake, where the kernel has the
 * tls module and the cipher is one it knows (AES-GCM-128/256, AES-CCM-128,
 * ChaCha20-Poly1305), OpenSSL's record keys go to the kernel (TLS_TX), and
 * rlt_tls_write / writev / sendfile hand plaintext to the socket: no
 * encryption in the task, and rlt_tls_sendfile is the kernel's splice,
 * without a copy. Receiving stays in user space. Otherwise (no module,
 * another cipher) TLS goes on in user space, unchanged: rlt_tls_ktls()
 * tells which. Opt-in: see docs/TLS.md for what was tested where. */
#define RLT_TLS_KTLS 16u

typedef struct rlt_tls_ctx_opts {
	unsigned flags; /* RLT_TLS_* */
	/* PEM files. cert_file: the certificate, then its chain; key_file:
	 * its private key (NULL: in cert_file). A server needs both; a
	 * client gives them only for mutual TLS. */
	const char *cert_file;
	const char *key_file;
	/* PEM bundle of trusted CAs to verify the peer with. NULL: the
	 * system's (OpenSSL's default paths, Debian's /etc/ssl/certs). */
	const char *ca_file;
	/* ALPN protocols, comma separated, in order of preference
	 * ("h2,http/1.1"); NULL: no ALPN. A server picks the first of its
	 * own list the client offers, and goes on without ALPN if none. */
	const char *alpn;
	/* OpenSSL cipher strings (NULL: OpenSSL's defaults): for TLS 1.2
	 * (SSL_CTX_set_cipher_list) and TLS 1.3 (SSL_CTX_set_ciphersuites). */
	const char *ciphers;
	const char *ciphersuites;
} rlt_tls_ctx_opts;

/*
 * A context. Verification is on by default for a client: the peer's chain
 * against ca_file (or the system's CAs), its name against the host given
 * to rlt_tls_client(); minimum version TLS 1.2; no compression, no
 * renegotiation. Reads the files at once; does not suspend (call it before
 * the runtime, or from a task at startup: file reads block the worker).
 * Any thread. Returns NULL with errno:
 *   EINVAL  opts NULL, unknown flags, a server without cert_file, a bad
 *           ALPN list (empty name, one over 255 bytes) or cipher string
 *   ENOENT / EACCES  a file that cannot be opened
 *   EKEYREJECTED a certificate or key that cannot be parsed, or a key that
 *           does not match the certificate
 *   ENOMEM
 * with the reason in rlt_tls_ctx_error().
 */
RLT_API rlt_tls_ctx *rlt_tls_ctx_new(const rlt_tls_ctx_opts *opts);
/* Why the last rlt_tls_ctx_new() on this thread failed (OpenSSL's words). */
RLT_API const char *rlt_tls_ctx_error(void);
/* Free ctx (NULL: nothing). Connections made from it stay valid. */
RLT_API void rlt_tls_ctx_free(rlt_tls_ctx *ctx);

/*
 * A TLS client on connected stream socket fd: sends SNI for host (unless
 * it is an IP address), verifies the server's certificate for host (a DNS
 * name, or an IP address matched against the certificate's IP SANs) unless
 * the context says RLT_TLS_UNSAFE_NO_VERIFY, and runs the handshake.
 * Suspends the calling task until the handshake is over, failed, or
 * timeout_ns has passed (<= 0: no limit of its own; deadline scopes around
 * the call apply either way). Returns the connection, or NULL with errno
 * one of the errors above (ETIMEDOUT, EKEYREJECTED, ...), or EINVAL (ctx
 * or fd bad, a server context, host NULL while verifying). On failure fd
 * is left open, the caller's; rlt_tls_last_error() gives the reason.
 */
RLT_API rlt_tls *rlt_tls_client(rlt_tls_ctx *ctx, int fd, const char *host, int64_t timeout_ns);

/* The same for the server side of accepted socket fd (a server context). */
RLT_API rlt_tls *rlt_tls_server(rlt_tls_ctx *ctx, int fd, int64_t timeout_ns);

/* Why the last rlt_tls_client() / rlt_tls_server() on this thread failed
 * ("certificate verify failed: certificate has expired", "wrong version
 * number", "handshake timed out", ...); "" after a success. A task may
 * move to another worker when it suspends: read this right after the
 * failed call, before the task next suspends. */
RLT_API const char *rlt_tls_last_error(void);

/*
 * Read up to len decrypted bytes into buf. Suspends until at least one
 * byte is there. Returns the count, 0 at the peer's close_notify (a clean
 * end), or a negative errno (above; -ECONNABORTED for a stream that ends
 * without close_notify). After an error other than -ECANCELED /
 * -ETIMEDOUT the connection is broken: free it.
 */
RLT_API ssize_t rlt_tls_read(rlt_tls *t, void *buf, size_t len);

/*
 * Write all len bytes (or all the iovecs): encrypts them into records and
 * sends them, suspending as long as it takes. Small iovecs are gathered
 * into full records (a header and a body become one record and one send).
 * Returns len (the total), or a negative errno; after an error some of it
 * may have gone: the connection is broken.
 */
RLT_API ssize_t rlt_tls_write(rlt_tls *t, const void *buf, size_t len);
RLT_API ssize_t rlt_tls_writev(rlt_tls *t, const struct iovec *iov, int iovcnt);

/*
 * Send len bytes of file in_fd from offset on (-1: its current position,
 * advanced) over t, as rlt_sendfile() does for a plain socket. The file is
 * read in 64 KiB pieces (rlt_read) and encrypted in user space, or, under
 * kTLS (rlt_tls_ktls), spliced to the kernel's record layer (rlt_sendfile,
 * no copy). Returns
 * the bytes sent (fewer than len only where the file ends), or a negative
 * errno (rlt_read's, or the write errors above).
 */
RLT_API ssize_t rlt_tls_sendfile(rlt_tls *t, int in_fd, off_t offset, size_t len);

/*
 * Send our close_notify (the clean end of our side); does not wait for
 * the peer's. Suspends while sending. 0 or a negative errno.
 */
RLT_API int rlt_tls_shutdown(rlt_tls *t);

/* Free t (NULL: nothing); does not close its socket nor send anything.
 * Does not suspend. */
RLT_API void rlt_tls_free(rlt_tls *t);

/* The socket under t. */
RLT_API int rlt_tls_fd(const rlt_tls *t);

/*
 * From now on, receive t's ciphertext through q (a receive queue on t's
 * socket, include/ringlet/rxq.h: one multishot receive under io_uring)
 * instead of rlt_recv on the socket; NULL: back to rlt_recv (only once q
 * holds nothing: bytes queued in q are not read by t after that). q stays
 * the caller's: free t, then close q, then the socket. Typically set
 * right after the handshake, on a connection that will carry many
 * records; q must be a queue on t's socket. Does not suspend. 0, or
 * -EINVAL (t is NULL).
 */
RLT_API int rlt_tls_use_rxq(rlt_tls *t, struct rlt_rxq *q);
/* After the handshake: the protocol ALPN chose ("" if none), the version
 * ("TLSv1.3"), the cipher ("TLS_AES_256_GCM_SHA384"). Strings live as
 * long as t. */
RLT_API const char *rlt_tls_alpn(const rlt_tls *t);
RLT_API const char *rlt_tls_version(const rlt_tls *t);
RLT_API const char *rlt_tls_cipher(const rlt_tls *t);
/* Whether records t sends are made by the kernel (RLT_TLS_KTLS): 1 if
 * so, else why not: -ENOENT (the kernel has no tls module: TCP_ULP "tls"
 * failed), -EOPNOTSUPP (not asked, or a cipher neither OpenSSL nor the
 * kernel offloads), -EAGAIN (the end of the handshake could not be sent
 * at once), or setsockopt's error. */
RLT_API int rlt_tls_ktls(const rlt_tls *t);
/* Why t's last failed call failed (as rlt_tls_last_error). */
RLT_API const char *rlt_tls_error(const rlt_tls *t);

RLT_EXTERN_C_END

#endif
