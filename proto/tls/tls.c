/*
 * TLS connections: OpenSSL's state machine on ringlet's I/O.
 *
 * OpenSSL sees one BIO (bio.c) that copies ciphertext to and from two
 * buffers of the connection and never blocks: a read with nothing
 * buffered says "retry". Each call here runs an SSL_* function; when it
 * wants input, we send what it has written so far (handshake flights are
 * answered before waiting), then rlt_recv() more into the input buffer
 * and call it again. Suspensions happen only between SSL_* calls, so
 * OpenSSL's per-thread error queue is read on the thread that filled it,
 * even though the task may resume on another worker.
 */
#include "tls_int.h"

#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

/* Input buffer: two full records (16 KiB + 256 of overhead each), so a
 * bulk transfer costs one recv per two records. */
#define TLS_IN_CAP (2 * (16384 + 512))
/* Plaintext handed to one SSL_write: four records; the ciphertext is sent
 * once it passes TLS_OUT_FLUSH. */
#define TLS_WRITE_CHUNK (4 * 16384)
#define TLS_OUT_FLUSH	(64 * 1024)
/* writev gathers small pieces into one record's worth before encrypting. */
#define TLS_GATHER 16384

static __thread char last_error[160];

const char *rlt_tls_last_error(void)
{
	return last_error;
}

/* ---- errors ---- */

/* SSL_get_error reads OpenSSL's per-thread error queue, which must be
 * empty before each SSL_* call. Ours always is (every failure empties it);
 * another library on this thread may have left something. Peeking costs
 * a thread-local lookup; clearing all 16 slots cost 5% of a keep-alive
 * HTTPS request's CPU (perf, ERR_clear_error + CRYPTO_free). */
static inline void err_reset(void)
{
	if (ERR_peek_error())
		ERR_clear_error();
}

void rlt__tls_set_text(char *dst, size_t cap, const char *a, const char *b)
{
	snprintf(dst, cap, "%s%s%s", a, b && *b ? ": " : "", b ? b : "");
}

/* Map the failure of an SSL_* call (err: its SSL_get_error) to a negative
 * errno, write the reason into t->err, and empty the error queue. */
static int ssl_failure(rlt_tls *t, int err)
{
	unsigned long e = ERR_get_error(), last = e, x;
	while ((x = ERR_get_error()) != 0)
		last = x;
	(void)last;
	int rc = -EPROTO;
	const char *why = NULL;
	const char *detail = NULL;
	if (err == SSL_ERROR_SYSCALL && e == 0) {
		rc = -ECONNABORTED;
		why = "the peer closed the connection in the middle of TLS";
	} else if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL) {
		int r = ERR_GET_REASON(e);
		why = ERR_reason_error_string(e);
		if (r == SSL_R_CERTIFICATE_VERIFY_FAILED) {
			long v = SSL_get_verify_result(t->ssl);
			detail = X509_verify_cert_error_string(v);
			switch (v) {
			case X509_V_ERR_CERT_HAS_EXPIRED:
			case X509_V_ERR_CERT_NOT_YET_VALID:
			case X509_V_ERR_CRL_HAS_EXPIRED:
			case X509_V_ERR_CRL_NOT_YET_VALID:
				rc = -EKEYEXPIRED;
				break;
			case X509_V_ERR_HOSTNAME_MISMATCH:
			case X509_V_ERR_IP_ADDRESS_MISMATCH:
			case X509_V_ERR_EMAIL_MISMATCH:
				rc = -EACCES;
				break;
			default:
				rc = -EKEYREJECTED;
			}
		} else if (r == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
			rc = -EKEYREJECTED;
		} else if (r == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			rc = -ECONNABORTED;
		} else if (r == SSL_R_UNSUPPORTED_PROTOCOL || r == SSL_R_NO_SHARED_CIPHER ||
			   r == SSL_R_NO_PROTOCOLS_AVAILABLE ||
			   r == SSL_R_NO_APPLICATION_PROTOCOL) {
			rc = -EPROTONOSUPPORT;
		} else if (r >= SSL_AD_REASON_OFFSET && r < SSL_AD_REASON_OFFSET + 256) {
			/* An alert from the peer. */
			int alert = r - SSL_AD_REASON_OFFSET;
			rc = alert == SSL_AD_PROTOCOL_VERSION ||
				     alert == SSL_AD_INSUFFICIENT_SECURITY ||
				     alert == SSL_AD_NO_APPLICATION_PROTOCOL
				 ? -EPROTONOSUPPORT
				 : -ECONNREFUSED;
		} else if (r == ERR_R_MALLOC_FAILURE) {
			rc = -ENOMEM;
		}
	} else if (e != 0) {
		why = ERR_reason_error_string(e);
		if (ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE)
			rc = -ENOMEM;
	} else {
		why = "TLS failure";
	}
	rlt__tls_set_text(t->err, sizeof(t->err), why ? why : "TLS failure", detail);
	ERR_clear_error();
	return rc;
}

static int io_failure(rlt_tls *t, int rc, const char *what)
{
	char e[64];
	snprintf(e, sizeof(e), "%s: %s", what, strerror(-rc));
	rlt__tls_set_text(t->err, sizeof(t->err), e, NULL);
	return rc;
}

/* ---- moving ciphertext ---- */

/* Send everything OpenSSL has written. Any error breaks the connection:
 * how much of a record went is not known. */
static int tls_flush(rlt_tls *t)
{
	if (t->out_len) {
		ssize_t n = rlt_send_all(t->fd, t->out, t->out_len, 0);
		t->out_len = 0;
		if (n < 0) {
			t->broken = 1;
			return io_failure(t, (int)n, "send");
		}
	}
	if (t->kq_len) {
		int rc = rlt__tls_kq_flush(t);
		if (rc < 0) {
			t->broken = 1;
			return io_failure(t, rc, "send");
		}
	}
	return 0;
}

/* Receive more ciphertext. 1 on progress (or at the end of the stream,
 * which OpenSSL then sees), or a negative errno. A cancelled or timed-out
 * receive moved nothing: the connection stays usable. */
static int tls_fill(rlt_tls *t)
{
	if (t->in_off == t->in_len) {
		t->in_off = t->in_len = 0;
	} else if (t->in_off > 0 && TLS_IN_CAP - t->in_len < 4096) {
		memmove(t->in, t->in + t->in_off, t->in_len - t->in_off);
		t->in_len -= t->in_off;
		t->in_off = 0;
	}
	for (;;) {
		ssize_t n = t->rxq ? rlt_rxq_recv(t->rxq, t->in + t->in_len, TLS_IN_CAP - t->in_len)
				   : rlt_recv(t->fd, t->in + t->in_len, TLS_IN_CAP - t->in_len, 0);
		if (n > 0) {
			t->in_len += (size_t)n;
			return 1;
		}
		if (n == 0) {
			t->eof = 1;
			return 1;
		}
		if (n == -EINTR)
			continue;
		if (n == -EAGAIN) {
			int p = rlt_poll(t->fd, POLLIN);
			if (p < 0 && p != -EINTR)
				return io_failure(t, p, "recv");
			continue;
		}
		return io_failure(t, (int)n, "recv");
	}
}

/* After an SSL_* call returned ret <= 0: wait for what it wants. 1 to call
 * it again, 0 at the peer's close_notify, or a negative errno. */
static int tls_wait(rlt_tls *t, int ret)
{
	int err = SSL_get_error(t->ssl, ret);
	switch (err) {
	case SSL_ERROR_WANT_READ: {
		int rc = tls_flush(t);
		if (rc < 0)
			return rc;
		if (t->eof && t->in_off == t->in_len) {
			/* OpenSSL asked again after seeing the end. */
			t->broken = 1;
			rlt__tls_set_text(t->err, sizeof(t->err),
					  "the peer closed the connection in the middle of TLS",
					  NULL);
			return -ECONNABORTED;
		}
		return tls_fill(t);
	}
	case SSL_ERROR_WANT_WRITE: { /* our BIO never asks; flush anyway */
		int rc = tls_flush(t);
		return rc < 0 ? rc : 1;
	}
	case SSL_ERROR_ZERO_RETURN:
		ERR_clear_error();
		return 0;
	default: {
		int rc = ssl_failure(t, err);
		t->broken = 1;
		/* Tell the peer why, if OpenSSL made an alert (best effort). */
		if (t->out_len && rc != -ENOMEM) {
			(void)rlt_send(t->fd, t->out, t->out_len, MSG_DONTWAIT);
			t->out_len = 0;
		}
		return rc;
	}
	}
}

/* ---- connections ---- */

static int is_ip(const char *host)
{
	unsigned char a[16];
	return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

static rlt_tls *tls_new(rlt_tls_ctx *ctx, int fd, int *rc)
{
	BIO_METHOD *method = rlt__tls_bio_method();
	rlt_tls *t = calloc(1, sizeof(*t));
	unsigned char *in = malloc(TLS_IN_CAP);
	SSL *ssl = SSL_new(ctx->ssl);
	BIO *b = method ? BIO_new(method) : NULL;
	if (!t || !in || !ssl || !b) {
		free(t);
		free(in);
		SSL_free(ssl);
		BIO_free(b);
		ERR_clear_error();
		*rc = -ENOMEM;
		return NULL;
	}
	t->ssl = ssl;
	t->ctx = ctx;
	atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
	t->fd = fd;
	t->in = in;
	BIO_set_data(b, t);
	BIO_set_init(b, 1);
	SSL_set_bio(ssl, b, b); /* one reference, now the SSL's */
	return t;
}

static int handshake(rlt_tls *t, int64_t timeout_ns)
{
	rlt_scope sc;
	int scoped = timeout_ns > 0;
	if (scoped) {
		int rc = rlt_scope_enter(&sc, timeout_ns);
		if (rc < 0)
			return rc;
	}
	int rc;
	for (;;) {
		ERR_clear_error();
		int r = SSL_do_handshake(t->ssl);
		if (r == 1) {
			rc = tls_flush(t);
			break;
		}
		rc = tls_wait(t, r);
		if (rc == 0) {
			rlt__tls_set_text(t->err, sizeof(t->err),
					  "the peer closed TLS during the handshake", NULL);
			rc = -ECONNABORTED;
		}
		if (rc < 0)
			break;
	}
	if (scoped)
		rlt_scope_leave(&sc);
	if (rc == -ETIMEDOUT)
		rlt__tls_set_text(t->err, sizeof(t->err), "handshake timed out", NULL);
	else if (rc == -ECANCELED)
		rlt__tls_set_text(t->err, sizeof(t->err), "handshake cancelled", NULL);
	if (rc == 0) {
		const unsigned char *p;
		unsigned n;
		SSL_get0_alpn_selected(t->ssl, &p, &n);
		if (n) /* p is NULL without ALPN */
			memcpy(t->alpn, p, n);
		t->alpn[n] = '\0';
	}
	return rc;
}

static rlt_tls *finish(rlt_tls *t, int rc)
{
	if (rc == 0) {
		last_error[0] = '\0';
		return t;
	}
	snprintf(last_error, sizeof(last_error), "%s", t->err);
	rlt_tls_free(t);
	errno = -rc;
	return NULL;
}

static rlt_tls *fail_early(int rc, const char *why)
{
	snprintf(last_error, sizeof(last_error), "%s", why);
	errno = -rc;
	return NULL;
}

rlt_tls *rlt_tls_client(rlt_tls_ctx *ctx, int fd, const char *host, int64_t timeout_ns)
{
	if (!ctx || fd < 0 || (ctx->flags & RLT_TLS_SERVER))
		return fail_early(-EINVAL, "not a client context, or a bad fd");
	int verify = !(ctx->flags & RLT_TLS_UNSAFE_NO_VERIFY);
	if (verify && (!host || !*host))
		return fail_early(-EINVAL, "verification needs a host name");
	int rc = rlt_cancelled();
	if (rc < 0)
		return fail_early(rc, "not in a task");
	rlt_tls *t = tls_new(ctx, fd, &rc);
	if (!t)
		return fail_early(rc, "out of memory");
	SSL_set_connect_state(t->ssl);
	if (host && *host) {
		int ip = is_ip(host);
		int ok = 1;
		if (!ip)
			ok = SSL_set_tlsext_host_name(t->ssl, host);
		if (ok && verify)
			ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host)
				: SSL_set1_host(t->ssl, host);
		if (!ok) {
			ERR_clear_error();
			rlt__tls_set_text(t->err, sizeof(t->err), "bad host name", host);
			return finish(t, -EINVAL);
		}
	}
	return finish(t, handshake(t, timeout_ns));
}

rlt_tls *rlt_tls_server(rlt_tls_ctx *ctx, int fd, int64_t timeout_ns)
{
	if (!ctx || fd < 0 || !(ctx->flags & RLT_TLS_SERVER))
		return fail_early(-EINVAL, "not a server context, or a bad fd");
	int rc = rlt_cancelled();
	if (rc < 0)
		return fail_early(rc, "not in a task");
	rlt_tls *t = tls_new(ctx, fd, &rc);
	if (!t)
		return fail_early(rc, "out of memory");
	SSL_set_accept_state(t->ssl);
	return finish(t, handshake(t, timeout_ns));
}

static int check_usable(rlt_tls *t)
{
	if (!t)
		return -EINVAL;
	if (t->broken) {
		rlt__tls_set_text(t->err, sizeof(t->err), "connection broken by an earlier error",
				  NULL);
		return -EPIPE;
	}
	return 0;
}

ssize_t rlt_tls_read(rlt_tls *t, void *buf, size_t len)
{
	int rc = check_usable(t);
	if (rc < 0)
		return rc;
	if (len == 0)
		return 0;
	if (!buf)
		return -EINVAL;
	if (t->in_off == t->in_len && !t->eof && SSL_pending(t->ssl) == 0) {
		/* Nothing buffered, here or in OpenSSL (it reads no more than
		 * a record from the BIO): an SSL_read now could only say
		 * "want read" (and, with SSL_MODE_RELEASE_BUFFERS, allocate
		 * and free its record buffer to say it). Receive first; a
		 * keep-alive request costs one SSL_read, not two. */
		if ((rc = tls_flush(t)) < 0 || (rc = tls_fill(t)) < 0)
			return rc;
	}
	for (;;) {
		size_t n;
		err_reset();
		int r = SSL_read_ex(t->ssl, buf, len, &n);
		if (r == 1)
			return (ssize_t)n;
		rc = tls_wait(t, r);
		if (rc <= 0)
			return rc;
	}
}

/* Encrypt len bytes into the output buffer (SSL_write never waits: the
 * BIO takes everything), sending once enough has gathered. */
static int tls_put(rlt_tls *t, const unsigned char *p, size_t len)
{
	while (len > 0) {
		size_t chunk = len < TLS_WRITE_CHUNK ? len : TLS_WRITE_CHUNK;
		size_t n;
		err_reset();
		int r = SSL_write_ex(t->ssl, p, chunk, &n);
		if (r != 1) {
			int rc = tls_wait(t, r);
			if (rc <= 0) {
				t->broken = 1;
				return rc == 0 ? -EPIPE : rc;
			}
			continue;
		}
		p += n;
		len -= n;
		if (t->out_len >= TLS_OUT_FLUSH) {
			int rc = tls_flush(t);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

ssize_t rlt_tls_write(rlt_tls *t, const void *buf, size_t len)
{
	int rc = check_usable(t);
	if (rc < 0)
		return rc;
	if (len == 0)
		return 0;
	if (!buf || len > SSIZE_MAX)
		return -EINVAL;
	if (t->ktls_tx) {
		/* The kernel makes the records: no copy, no OpenSSL. */
		if ((rc = tls_flush(t)) < 0)
			return rc;
		ssize_t n = rlt_send_all(t->fd, buf, len, 0);
		if (n < 0)
			t->broken = 1;
		return n;
	}
	rc = tls_put(t, buf, len);
	if (rc == 0)
		rc = tls_flush(t);
	return rc < 0 ? rc : (ssize_t)len;
}

ssize_t rlt_tls_writev(rlt_tls *t, const struct iovec *iov, int iovcnt)
{
	int rc = check_usable(t);
	if (rc < 0)
		return rc;
	if (iovcnt < 0 || (iovcnt > 0 && !iov))
		return -EINVAL;
	size_t total = 0;
	for (int i = 0; i < iovcnt; i++) {
		if (!iov[i].iov_base && iov[i].iov_len)
			return -EINVAL;
		total += iov[i].iov_len;
	}
	if (total > SSIZE_MAX)
		return -EINVAL;
	if (iovcnt == 1 || t->ktls_tx) {
		/* kTLS: each piece to the kernel (a sendmsg of them all would
		 * save calls; the pieces of HTTP are a head and a body). */
		for (int i = 0; i < iovcnt; i++) {
			ssize_t n = rlt_tls_write(t, iov[i].iov_base, iov[i].iov_len);
			if (n < 0)
				return n;
		}
		return (ssize_t)total;
	}
	if (!t->gather && !(t->gather = malloc(TLS_GATHER)))
		return -ENOMEM;
	size_t g = 0;
	for (int i = 0; i < iovcnt && rc == 0; i++) {
		const unsigned char *p = iov[i].iov_base;
		size_t n = iov[i].iov_len;
		while (n > 0 && rc == 0) {
			if (g == 0 && n >= TLS_GATHER) {
				/* Large and aligned on a record: no copy. */
				size_t whole = n - n % TLS_GATHER;
				rc = tls_put(t, p, whole);
				p += whole;
				n -= whole;
				continue;
			}
			size_t k = TLS_GATHER - g < n ? TLS_GATHER - g : n;
			memcpy(t->gather + g, p, k);
			g += k;
			p += k;
			n -= k;
			if (g == TLS_GATHER) {
				rc = tls_put(t, t->gather, g);
				g = 0;
			}
		}
	}
	if (rc == 0 && g > 0)
		rc = tls_put(t, t->gather, g);
	if (rc == 0)
		rc = tls_flush(t);
	return rc < 0 ? rc : (ssize_t)total;
}

ssize_t rlt_tls_sendfile(rlt_tls *t, int in_fd, off_t offset, size_t len)
{
	int rc = check_usable(t);
	if (rc < 0)
		return rc;
	if (offset < -1 || len > SSIZE_MAX)
		return -EINVAL;
	if (t->ktls_tx) {
		/* Page cache to the kernel's record layer, no copy. */
		if ((rc = tls_flush(t)) < 0)
			return rc;
		ssize_t n = rlt_sendfile(t->fd, in_fd, offset, len);
		if (n < 0)
			t->broken = 1;
		return n;
	}
	enum { PIECE = 64 * 1024 };
	unsigned char *buf = malloc(PIECE);
	if (!buf)
		return -ENOMEM;
	size_t sent = 0;
	while (sent < len) {
		size_t want = len - sent < PIECE ? len - sent : PIECE;
		ssize_t n = rlt_read(in_fd, buf, want, offset);
		if (n == -EINTR)
			continue;
		if (n < 0) {
			rc = (int)n;
			break;
		}
		if (n == 0)
			break;
		if (offset >= 0)
			offset += n;
		rc = tls_put(t, buf, (size_t)n);
		if (rc < 0)
			break;
		sent += (size_t)n;
	}
	free(buf);
	if (rc == 0)
		rc = tls_flush(t);
	return rc < 0 ? rc : (ssize_t)sent;
}

int rlt_tls_shutdown(rlt_tls *t)
{
	int rc = check_usable(t);
	if (rc < 0)
		return rc;
	ERR_clear_error();
	int r = SSL_shutdown(t->ssl);
	if (r < 0) {
		rc = ssl_failure(t, SSL_get_error(t->ssl, r));
		t->broken = 1;
		return rc;
	}
	return tls_flush(t);
}

void rlt_tls_free(rlt_tls *t)
{
	if (!t)
		return;
	SSL_free(t->ssl); /* and the BIO */
	free(t->in);
	free(t->out);
	free(t->gather);
	free(t->kq);
	rlt__tls_ctx_unref(t->ctx);
	free(t);
}

int rlt_tls_fd(const rlt_tls *t)
{
	return t ? t->fd : -EINVAL;
}

int rlt_tls_use_rxq(rlt_tls *t, rlt_rxq *q)
{
	if (!t)
		return -EINVAL;
	t->rxq = q;
	return 0;
}

const char *rlt_tls_alpn(const rlt_tls *t)
{
	return t ? t->alpn : "";
}

const char *rlt_tls_version(const rlt_tls *t)
{
	return t ? SSL_get_version(t->ssl) : "";
}

const char *rlt_tls_cipher(const rlt_tls *t)
{
	return t ? SSL_get_cipher_name(t->ssl) : "";
}

int rlt_tls_ktls(const rlt_tls *t)
{
	if (!t)
		return -EINVAL;
	if (t->ktls_tx)
		return 1;
	return t->ktls_err ? t->ktls_err : -EOPNOTSUPP;
}

const char *rlt_tls_error(const rlt_tls *t)
{
	return t ? t->err : "";
}
