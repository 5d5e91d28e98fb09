/* TLS contexts: OpenSSL's SSL_CTX with ringlet's defaults. */
#include "tls_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

static __thread char ctx_error[160];

const char *rlt_tls_ctx_error(void)
{
	return ctx_error;
}

static rlt_tls_ctx *ctx_fail(rlt_tls_ctx *c, int err, const char *what, const char *detail)
{
	if (!detail) {
		unsigned long e = ERR_peek_last_error();
		detail = e ? ERR_reason_error_string(e) : NULL;
	}
	rlt__tls_set_text(ctx_error, sizeof(ctx_error), what, detail);
	ERR_clear_error();
	rlt_tls_ctx_free(c);
	errno = err;
	return NULL;
}

/* "h2,http/1.1" -> "\x02h2\x08http/1.1". 0 or -EINVAL. */
static int alpn_wire(const char *list, unsigned char **out, size_t *outlen)
{
	size_t n = strlen(list);
	unsigned char *w = malloc(n + 1);
	if (!w)
		return -ENOMEM;
	size_t o = 0;
	const char *p = list;
	for (;;) {
		const char *e = strchr(p, ',');
		size_t k = e ? (size_t)(e - p) : strlen(p);
		if (k == 0 || k > 255) {
			free(w);
			return -EINVAL;
		}
		w[o++] = (unsigned char)k;
		memcpy(w + o, p, k);
		o += k;
		if (!e)
			break;
		p = e + 1;
	}
	*out = w;
	*outlen = o;
	return 0;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned inlen, void *arg)
{
	(void)ssl;
	rlt_tls_ctx *c = arg;
	unsigned char *sel;
	if (SSL_select_next_proto(&sel, outlen, c->alpn, (unsigned)c->alpn_len, in, inlen) ==
	    OPENSSL_NPN_NEGOTIATED) {
		*out = sel;
		return SSL_TLSEXT_ERR_OK;
	}
	return SSL_TLSEXT_ERR_NOACK; /* go on without ALPN */
}

static int readable(const char *path)
{
	return access(path, R_OK) == 0 ? 0 : errno;
}

rlt_tls_ctx *rlt_tls_ctx_new(const rlt_tls_ctx_opts *o)
{
	const unsigned known = RLT_TLS_SERVER | RLT_TLS_UNSAFE_NO_VERIFY | RLT_TLS_VERIFY_CLIENT |
			       RLT_TLS_MIN_1_3 | RLT_TLS_KTLS;
	if (!o || (o->flags & ~known))
		return ctx_fail(NULL, EINVAL, "bad options", "unknown flags");
	int server = (o->flags & RLT_TLS_SERVER) != 0;
	if (server && !o->cert_file)
		return ctx_fail(NULL, EINVAL, "a server needs a certificate", "");
	const char *files[] = {o->cert_file, o->key_file, o->ca_file};
	for (size_t i = 0; i < 3; i++) {
		int e = files[i] ? readable(files[i]) : 0;
		if (e)
			return ctx_fail(NULL, e, files[i], strerror(e));
	}
	rlt_tls_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return ctx_fail(NULL, ENOMEM, "out of memory", "");
	c->flags = o->flags;
	atomic_init(&c->refs, 1);
	c->ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!c->ssl)
		return ctx_fail(c, ENOMEM, "SSL_CTX_new", NULL);
	SSL_CTX *s = c->ssl;
	SSL_CTX_set_min_proto_version(s, (o->flags & RLT_TLS_MIN_1_3) ? TLS1_3_VERSION
								      : TLS1_2_VERSION);
	SSL_CTX_set_options(s, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
				   (server ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0) |
				   ((o->flags & RLT_TLS_KTLS) ? SSL_OP_ENABLE_KTLS : 0));
	/* OpenSSL's record buffers are freed while a connection waits with
	 * nothing buffered (nginx does the same): 1000 idle keep-alive HTTPS
	 * connections on tools/ringlet-http measured 56 KiB of server RSS
	 * each without it, 48 KiB with it (16 KiB for plain HTTP; the rest is
	 * OpenSSL's per-connection state: ringlet's input buffer stays
	 * untouched, shrinking it to 4 KiB changed nothing). */
	SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS);
	if (o->ciphers && !SSL_CTX_set_cipher_list(s, o->ciphers))
		return ctx_fail(c, EINVAL, "bad cipher list", NULL);
	if (o->ciphersuites && !SSL_CTX_set_ciphersuites(s, o->ciphersuites))
		return ctx_fail(c, EINVAL, "bad TLS 1.3 cipher suites", NULL);
	if (o->cert_file) {
		if (SSL_CTX_use_certificate_chain_file(s, o->cert_file) != 1)
			return ctx_fail(c, EKEYREJECTED, o->cert_file, NULL);
		const char *key = o->key_file ? o->key_file : o->cert_file;
		if (SSL_CTX_use_PrivateKey_file(s, key, SSL_FILETYPE_PEM) != 1)
			return ctx_fail(c, EKEYREJECTED, key, NULL);
		if (SSL_CTX_check_private_key(s) != 1)
			return ctx_fail(c, EKEYREJECTED, "the key does not match the certificate",
					NULL);
	}
	int verify_peer = server ? (o->flags & RLT_TLS_VERIFY_CLIENT) != 0
				 : !(o->flags & RLT_TLS_UNSAFE_NO_VERIFY);
	if (verify_peer) {
		int ok = o->ca_file ? SSL_CTX_load_verify_locations(s, o->ca_file, NULL)
				    : SSL_CTX_set_default_verify_paths(s);
		if (ok != 1)
			return ctx_fail(c, EKEYREJECTED, o->ca_file ? o->ca_file : "system CAs",
					NULL);
		if (server && o->ca_file) {
			STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->ca_file);
			if (names)
				SSL_CTX_set_client_CA_list(s, names);
		}
		SSL_CTX_set_verify(
		    s, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
	} else {
		SSL_CTX_set_verify(s, SSL_VERIFY_NONE, NULL);
	}
	if (server) {
		static const unsigned char sid[] = "ringlet";
		SSL_CTX_set_session_id_context(s, sid, sizeof(sid) - 1);
	}
	if (o->alpn) {
		int rc = alpn_wire(o->alpn, &c->alpn, &c->alpn_len);
		if (rc < 0)
			return ctx_fail(c, -rc, "bad ALPN list", o->alpn);
		if (server)
			SSL_CTX_set_alpn_select_cb(s, alpn_select, c);
		else if (SSL_CTX_set_alpn_protos(s, c->alpn, (unsigned)c->alpn_len) != 0)
			return ctx_fail(c, ENOMEM, "SSL_CTX_set_alpn_protos", NULL);
	}
	ERR_clear_error();
	ctx_error[0] = '\0';
	return c;
}

/* Connections hold a reference: the server's ALPN callback reads c. */
void rlt__tls_ctx_unref(rlt_tls_ctx *c)
{
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	SSL_CTX_free(c->ssl);
	free(c->alpn);
	free(c);
}

void rlt_tls_ctx_free(rlt_tls_ctx *c)
{
	if (c)
		rlt__tls_ctx_unref(c);
}
