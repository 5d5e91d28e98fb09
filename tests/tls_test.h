/*
 * Shared by the TLS tests: certificates made with openssl(1) in a mkdtemp
 * directory (a test CA; a server certificate for localhost and 127.0.0.1;
 * an expired one; one for another host; a self-signed one; a client
 * certificate from the CA), openssl s_server started on a free port, and
 * small socket helpers.
 */
#ifndef RLT_TEST_TLS_H
#define RLT_TEST_TLS_H

#include "tests/http_client_peers.h"

#include <ringlet/tls.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#if defined(__SANITIZE_THREAD__)
/* OpenSSL 3.0 (Debian's, not built with TSan) shares a context's
 * certificate store between threads with lazily filled caches that
 * ThreadSanitizer reports as races inside libcrypto (ASN1_STRING_cmp
 * against ASN1_STRING_set, under SSL_do_handshake: openssl/openssl#25202).
 * Those are OpenSSL's; ringlet's own code stays checked. */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
	return "race:libcrypto.so\nrace:libssl.so\n";
}
#endif

typedef struct tls_certs {
	char dir[256];
	char ca[300], srv[300], key[300], expired[300], wrong[300], self[300], client[300],
	    client_key[300];
} tls_certs;

/* Make the certificates; false (said loudly) if openssl is not installed. */
static inline bool tls_certs_make(tls_certs *c)
{
	if (!peer_installed("openssl")) {
		fprintf(stderr, "SKIPPED: openssl(1) is not installed (apt-get install openssl)\n");
		return false;
	}
	snprintf(c->dir, sizeof(c->dir), "/tmp/rlt-tls-XXXXXX");
	assert_non_null(mkdtemp(c->dir));
	/* nginx's worker (nobody) reads the certificate in some tests. */
	assert_int_equal(chmod(c->dir, 0755), 0);
	char cmd[4096];
	snprintf(
	    cmd, sizeof(cmd),
	    "set -e; cd %s; exec 2>certs.log >&2\n"
	    "EC='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'\n"
	    "openssl req -x509 $EC -keyout ca.key -out ca.pem -days 3 -subj /CN=ringlet-test-CA\n"
	    "openssl req $EC -keyout srv.key -out srv.csr -subj /CN=localhost\n"
	    "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > srv.ext\n"
	    "printf 'subjectAltName=DNS:other.example\\n' > wrong.ext\n"
	    "S='-CA ca.pem -CAkey ca.key -CAcreateserial'\n"
	    "openssl x509 -req -in srv.csr $S -out srv.pem -days 3 -extfile srv.ext\n"
	    "openssl x509 -req -in srv.csr $S -out expired.pem -days -1 -extfile srv.ext\n"
	    "openssl req -new -key srv.key -out wrong.csr -subj /CN=other.example\n"
	    "openssl x509 -req -in wrong.csr $S -out wrong.pem -days 3 -extfile wrong.ext\n"
	    "openssl req -x509 -key srv.key -out self.pem -days 3 -subj /CN=localhost "
	    "-addext subjectAltName=DNS:localhost,IP:127.0.0.1\n"
	    "openssl req $EC -keyout client.key -out client.csr -subj /CN=client\n"
	    "openssl x509 -req -in client.csr $S -out client.pem -days 3\n"
	    "chmod 644 *.key\n",
	    c->dir);
	if (system(cmd) != 0)
		fail_msg("making the test certificates failed: see %s/certs.log", c->dir);
	snprintf(c->ca, sizeof(c->ca), "%s/ca.pem", c->dir);
	snprintf(c->srv, sizeof(c->srv), "%s/srv.pem", c->dir);
	snprintf(c->key, sizeof(c->key), "%s/srv.key", c->dir);
	snprintf(c->expired, sizeof(c->expired), "%s/expired.pem", c->dir);
	snprintf(c->wrong, sizeof(c->wrong), "%s/wrong.pem", c->dir);
	snprintf(c->self, sizeof(c->self), "%s/self.pem", c->dir);
	snprintf(c->client, sizeof(c->client), "%s/client.pem", c->dir);
	snprintf(c->client_key, sizeof(c->client_key), "%s/client.key", c->dir);
	return true;
}

static inline void tls_certs_remove(tls_certs *c)
{
	if (c->dir[0])
		nftw(c->dir, peer_rm, 16, FTW_DEPTH | FTW_PHYS);
	c->dir[0] = '\0';
}

/* The test program's certificates, made once for the group: cmocka group
 * setup and teardown for the TLS test files. */
static tls_certs certs;

static inline int tls_group_setup(void **state)
{
	(void)state;
	return tls_certs_make(&certs) ? 0 : -1;
}

static inline int tls_group_teardown(void **state)
{
	(void)state;
	tls_certs_remove(&certs);
	return 0;
}

/* openssl s_server -rev (answers each line reversed) with cert/key on a
 * free port; extra: more arguments (NULL-terminated), may be NULL. */
static inline bool tls_start_s_server(peer *p, const tls_certs *c, const char *cert,
				      const char *const *extra)
{
	snprintf(p->dir, sizeof(p->dir), "%s", c->dir);
	for (int attempt = 0; attempt < 5; attempt++) {
		p->port = peer_free_port();
		char accept[64];
		snprintf(accept, sizeof(accept), "127.0.0.1:%d", p->port);
		const char *argv[32] = {"/usr/bin/openssl",
					"s_server",
					"-accept",
					accept,
					"-cert",
					cert,
					"-key",
					c->key,
					"-rev",
					"-quiet"};
		size_t n = 10;
		for (size_t i = 0; extra && extra[i] && n < 31; i++)
			argv[n++] = extra[i];
		argv[n] = NULL;
		peer_spawn(p, (char *const *)argv, true);
		if (peer_wait_ready(p))
			return true;
		if (p->pid) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, NULL, 0);
		}
	}
	fail_msg("openssl s_server did not start (see %s/server.log)", p->dir);
	return false;
}

static inline void tls_stop(peer *p)
{
	if (p->pid > 0) {
		kill(p->pid, SIGTERM);
		waitpid(p->pid, NULL, 0);
	}
	p->pid = 0;
}

/* A connected loopback TCP socket to port (from a task). */
static inline int tls_dial(int port)
{
	char a[64];
	snprintf(a, sizeof(a), "127.0.0.1:%d", port);
	rlt_addr addr;
	assert_int_equal(rlt_addr_parse(&addr, a), 0);
	int fd = rlt_net_connect(&addr, 5 * RLT_NSEC_PER_SEC, RLT_NET_NODELAY);
	if (fd < 0)
		fail_msg("connect to %s: %s", a, strerror(-fd));
	return fd;
}

/* A listener on a free loopback port; its port in *port. */
static inline int tls_listen(int *port)
{
	rlt_addr a;
	assert_int_equal(rlt_addr_parse(&a, "127.0.0.1:0"), 0);
	int lfd = rlt_net_listen(&a, 512, 0);
	assert_true(lfd >= 0);
	rlt_addr bound;
	assert_int_equal(rlt_net_local(lfd, &bound), 0);
	*port = rlt_addr_port(&bound);
	return lfd;
}

static inline rlt_tls_ctx *tls_client_ctx(const tls_certs *c, unsigned flags)
{
	rlt_tls_ctx_opts o = {.flags = flags, .ca_file = c->ca};
	rlt_tls_ctx *ctx = rlt_tls_ctx_new(&o);
	if (!ctx)
		fail_msg("client context: %s", rlt_tls_ctx_error());
	return ctx;
}

static inline rlt_tls_ctx *tls_server_ctx(const tls_certs *c, const char *cert, unsigned flags)
{
	rlt_tls_ctx_opts o = {.flags = RLT_TLS_SERVER | flags,
			      .cert_file = cert,
			      .key_file = c->key,
			      .ca_file = c->ca};
	rlt_tls_ctx *ctx = rlt_tls_ctx_new(&o);
	if (!ctx)
		fail_msg("server context: %s", rlt_tls_ctx_error());
	return ctx;
}

#endif
