/* Internals of ringlet_tls shared by its files. */
#ifndef RLT_TLS_INT_H
#define RLT_TLS_INT_H

#include <ringlet.h>
#include <ringlet/tls.h>

#include <openssl/ssl.h>
#include <stdatomic.h>

struct rlt_tls_ctx {
	SSL_CTX *ssl;
	unsigned flags;
	atomic_uint refs;    /* the owner's, and one per connection */
	unsigned char *alpn; /* wire format: length-prefixed names */
	size_t alpn_len;
};

struct rlt_tls {
	SSL *ssl;
	rlt_tls_ctx *ctx; /* a reference */
	int fd;
	rlt_rxq *rxq;	     /* rlt_tls_use_rxq: where ciphertext comes from (NULL: rlt_recv) */
	unsigned eof : 1;    /* rlt_recv said end of stream */
	unsigned broken : 1; /* a failure left the stream unusable */
	/* Ciphertext from the peer: [in_off, in_len) not yet read by OpenSSL. */
	unsigned char *in;
	size_t in_off, in_len;
	/* Ciphertext OpenSSL wrote, not yet sent. */
	unsigned char *out;
	size_t out_len, out_cap;
	unsigned char *gather; /* rlt_tls_writev's staging, made on first use */
	/* kTLS: the kernel encrypts what we send (ktls_tx), OpenSSL's
	 * control records (alerts, tickets) queued in kq as [type][len:4]
	 * [bytes] until sent with a TLS_SET_RECORD_TYPE cmsg. ktls_err:
	 * why not (negative errno), 0 while not offered. */
	unsigned ktls_tx : 1;
	int ktls_err;
	int ktls_ctrl; /* the record type of OpenSSL's next write (0: data) */
	unsigned char *kq;
	size_t kq_len, kq_cap;
	char alpn[256];
	char err[160];
};

void rlt__tls_ctx_unref(rlt_tls_ctx *c);

/* bio.c: the BIO's method (made once; NULL: out of memory), and, under
 * kTLS, the sending of OpenSSL's queued control records (0 or a negative
 * errno; the queue is emptied either way). Suspends. */
BIO_METHOD *rlt__tls_bio_method(void);
int rlt__tls_kq_flush(rlt_tls *t);

/* dst = "a: b" (or "a"), truncated to cap. */
void rlt__tls_set_text(char *dst, size_t cap, const char *a, const char *b);

#endif
