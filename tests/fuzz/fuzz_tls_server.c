/* Fuzz target: arbitrary bytes from a client to rlt_tls_server over a
 * socketpair, in a runtime of its own per input (memory and a socketpair
 * only: no network). The first byte picks where they go: even, they are
 * the client's first bytes (the ClientHello and record parsing of the
 * handshake); odd, a real ringlet client first completes a handshake on
 * the same socket, then the bytes follow as raw records (the record layer
 * of an established connection: lengths, types, alerts, decryption).
 * Whatever comes, the server must end with 0 or one of tls.h's errors,
 * never crash nor hang (the client's write side is shut after the input,
 * so every wait ends). */
#include <ringlet.h>
#include <ringlet/tls.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Globals: LeakSanitizer does not scan task stacks. */
static rlt_tls_ctx *sctx, *cctx;

/* A self-signed P-256 certificate for "fuzz", made once into a temporary
 * directory (the context reads files). */
static void make_ctx(void)
{
	char dir[] = "/tmp/rlt-fuzz-tls-XXXXXX";
	if (!mkdtemp(dir))
		abort();
	char cert[64], key[64];
	snprintf(cert, sizeof(cert), "%s/c.pem", dir);
	snprintf(key, sizeof(key), "%s/k.pem", dir);
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	if (!pk || !x)
		abort();
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365);
	X509_set_pubkey(x, pk);
	X509_NAME *n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"fuzz", -1, -1, 0);
	X509_set_issuer_name(x, n);
	if (!X509_sign(x, pk, EVP_sha256()))
		abort();
	FILE *f = fopen(cert, "w");
	PEM_write_X509(f, x);
	fclose(f);
	f = fopen(key, "w");
	PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(pk);
	sctx = rlt_tls_ctx_new(&(rlt_tls_ctx_opts){
	    .flags = RLT_TLS_SERVER, .cert_file = cert, .key_file = key, .alpn = "http/1.1"});
	cctx = rlt_tls_ctx_new(&(rlt_tls_ctx_opts){.flags = RLT_TLS_UNSAFE_NO_VERIFY});
	unlink(cert);
	unlink(key);
	rmdir(dir);
	if (!sctx || !cctx)
		abort();
}

struct input {
	const uint8_t *data;
	size_t size;
	int cfd, sfd;
	int server_rc;
};

static bool documented(int e)
{
	switch (e) {
	case EKEYREJECTED:
	case EKEYEXPIRED:
	case EACCES:
	case EPROTO:
	case EPROTONOSUPPORT:
	case ECONNREFUSED:
	case ECONNABORTED:
	case ECONNRESET:
	case EPIPE:
	case ETIMEDOUT:
		return true;
	default:
		return false;
	}
}

static void *server(void *arg)
{
	struct input *in = arg;
	rlt_tls *t = rlt_tls_server(sctx, in->sfd, 5 * RLT_NSEC_PER_SEC);
	if (!t) {
		in->server_rc = -errno;
		return NULL;
	}
	char buf[4096];
	ssize_t n;
	while ((n = rlt_tls_read(t, buf, sizeof(buf))) > 0)
		;
	in->server_rc = (int)n;
	rlt_tls_free(t);
	return NULL;
}

static void *client(void *arg)
{
	struct input *in = arg;
	const uint8_t *d = in->data + 1;
	size_t len = in->size - 1;
	if (in->data[0] & 1) {
		rlt_tls *t = rlt_tls_client(cctx, in->cfd, NULL, 5 * RLT_NSEC_PER_SEC);
		if (!t)
			abort(); /* a handshake between two ringlet ends must work */
		rlt_tls_free(t);
	}
	rlt_send_all(in->cfd, d, len, 0); /* may fail: the server gave up */
	shutdown(in->cfd, SHUT_WR);
	char sink[4096];
	while (rlt_recv(in->cfd, sink, sizeof(sink), 0) > 0)
		;
	return NULL;
}

static void *one(void *arg)
{
	struct input *in = arg;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	in->cfd = sv[0];
	in->sfd = sv[1];
	rlt_task *s = rlt_spawn(server, in, NULL);
	rlt_task *c = rlt_spawn(client, in, NULL);
	rlt_join(s, NULL);
	shutdown(sv[1], SHUT_RDWR); /* the client's drain ends */
	rlt_join(c, NULL);
	rlt_close(sv[0]);
	rlt_close(sv[1]);
	if (in->server_rc > 0 || (in->server_rc < 0 && !documented(-in->server_rc))) {
		fprintf(stderr, "server ended with %d (%s)\n", in->server_rc,
			strerror(-in->server_rc));
		abort();
	}
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 65536)
		return 0;
	if (!sctx)
		make_ctx();
	struct input in = {.data = data, .size = size};
	rlt_config cfg = {.workers = 1};
	if (rlt_run(one, &in, &cfg, NULL) != 0)
		abort();
	return 0;
}
