/* The TLS client (rlt_tls_client) against openssl s_server, and each of
 * its failures: an untrusted, expired or wrong-host certificate, a plain
 * server, a server that stops mid-handshake or says nothing, cancellation
 * mid-handshake, a server that wants a client certificate. */
/* Fault mode: checks after a fault end the scenario (tests/rlt_test.h). */
#define RLT_TEST_FAULT_LENIENT
#include "tests/tls_test.h"

/* Read until '\n' (included) or len-1 bytes; NUL-terminates. */
static ssize_t read_line(rlt_tls *t, char *buf, size_t len)
{
	size_t n = 0;
	while (n + 1 < len) {
		ssize_t r = rlt_tls_read(t, buf + n, len - 1 - n);
		if (r <= 0)
			return r;
		n += (size_t)r;
		if (buf[n - 1] == '\n')
			break;
	}
	buf[n] = '\0';
	return (ssize_t)n;
}

typedef struct s_server_case {
	const char *cert;
	const char *extra[8];
	const char *host;
	unsigned flags;
	const char *alpn;
	int want; /* 0 or the errno the handshake fails with */
	const char *want_text;
	const char *want_version;
	const char *want_alpn;
	bool client_cert;
} s_server_case;

static void *root_s_server(void *arg)
{
	s_server_case *k = arg;
	peer p = {0};
	tls_start_s_server(&p, &certs, k->cert, k->extra);
	rlt_tls_ctx_opts o = {.flags = k->flags, .ca_file = certs.ca, .alpn = k->alpn};
	if (k->client_cert) {
		o.cert_file = certs.client;
		o.key_file = certs.client_key;
	}
	rlt_tls_ctx *ctx = rlt_tls_ctx_new(&o);
	assert_non_null(ctx);
	int fd = tls_dial(p.port);
	rlt_tls *t = rlt_tls_client(ctx, fd, k->host, 5 * RLT_NSEC_PER_SEC);
	rlt_tls_ctx_free(ctx); /* the connection keeps what it needs */
	if (k->want) {
		int e = errno;
		if (t)
			fail_msg("handshake succeeded, expected %s", strerror(k->want));
		if (e != k->want)
			fail_msg("errno %d (%s), expected %d (%s); reason: %s", e, strerror(e),
				 k->want, strerror(k->want), rlt_tls_last_error());
		if (k->want_text && !strstr(rlt_tls_last_error(), k->want_text))
			fail_msg("reason \"%s\" lacks \"%s\"", rlt_tls_last_error(), k->want_text);
		rlt_close(fd);
		tls_stop(&p);
		return NULL;
	}
	if (!t)
		fail_msg("handshake: %s (%s)", strerror(errno), rlt_tls_last_error());
	if (k->want_version)
		assert_string_equal(rlt_tls_version(t), k->want_version);
	assert_string_equal(rlt_tls_alpn(t), k->want_alpn ? k->want_alpn : "");
	assert_true(strlen(rlt_tls_cipher(t)) > 0);
	assert_int_equal(rlt_tls_fd(t), fd);
	char line[256];
	assert_int_equal(rlt_tls_write(t, "hello tls\n", 10), 10);
	assert_int_equal(read_line(t, line, sizeof(line)), 10);
	assert_string_equal(line, "slt olleh\n");
	/* Three pieces, one record. */
	struct iovec iov[3] = {{"ab", 2}, {"cd", 2}, {"ef\n", 3}};
	assert_int_equal(rlt_tls_writev(t, iov, 3), 7);
	assert_int_equal(read_line(t, line, sizeof(line)), 7);
	assert_string_equal(line, "fedcba\n");
	assert_int_equal(rlt_tls_shutdown(t), 0);
	rlt_tls_free(t);
	rlt_close(fd);
	tls_stop(&p);
	return NULL;
}

static void run_case(s_server_case *k)
{
	rlt_test_run(root_s_server, k);
}

static void test_client_talks_to_s_server_tls13(void **state)
{
	run_case(
	    &(s_server_case){.cert = certs.srv, .host = "localhost", .want_version = "TLSv1.3"});
}

static void test_client_talks_to_s_server_tls12(void **state)
{
	run_case(&(s_server_case){.cert = certs.srv,
				  .extra = {"-tls1_2"},
				  .host = "localhost",
				  .want_version = "TLSv1.2"});
}

static void test_client_verifies_an_ip_address(void **state)
{
	run_case(&(s_server_case){.cert = certs.srv, .host = "127.0.0.1"});
}

static void test_client_negotiates_alpn(void **state)
{
	run_case(&(s_server_case){.cert = certs.srv,
				  .extra = {"-alpn", "http/1.1"},
				  .host = "localhost",
				  .alpn = "h2,http/1.1",
				  .want_alpn = "http/1.1"});
}

static void test_client_refuses_expired_certificate(void **state)
{
	run_case(&(s_server_case){.cert = certs.expired,
				  .host = "localhost",
				  .want = EKEYEXPIRED,
				  .want_text = "certificate has expired"});
}

static void test_client_refuses_wrong_host(void **state)
{
	run_case(&(s_server_case){.cert = certs.wrong,
				  .host = "localhost",
				  .want = EACCES,
				  .want_text = "hostname mismatch"});
	/* The same certificate is fine for the host it names. */
	run_case(&(s_server_case){.cert = certs.wrong, .host = "other.example"});
	/* And an IP address not in it is refused. */
	run_case(&(s_server_case){.cert = certs.wrong, .host = "127.0.0.1", .want = EACCES});
}

static void test_client_refuses_untrusted_certificate(void **state)
{
	run_case(&(s_server_case){.cert = certs.self,
				  .host = "localhost",
				  .want = EKEYREJECTED,
				  .want_text = "self-signed"});
}

static void test_client_unsafe_no_verify_accepts_anything(void **state)
{
	run_case(&(s_server_case){
	    .cert = certs.self, .host = "localhost", .flags = RLT_TLS_UNSAFE_NO_VERIFY});
	run_case(&(s_server_case){
	    .cert = certs.expired, .host = NULL, .flags = RLT_TLS_UNSAFE_NO_VERIFY});
}

static void test_client_refuses_old_protocol(void **state)
{
	/* The server allows TLS 1.2 only; this client asks for 1.3 or later. */
	run_case(&(s_server_case){.cert = certs.srv,
				  .extra = {"-tls1_2"},
				  .host = "localhost",
				  .flags = RLT_TLS_MIN_1_3,
				  .want = EPROTONOSUPPORT});
}

static void test_client_with_certificate_for_mutual_tls(void **state)
{
	run_case(&(s_server_case){.cert = certs.srv,
				  .extra = {"-Verify", "1", "-CAfile", certs.ca},
				  .host = "localhost",
				  .client_cert = true});
}

/* s_server wants a client certificate and gets none: with TLS 1.3 the
 * client's handshake ends before the server has judged, so the refusal
 * (an alert) comes at the first read. */
static void *root_mutual_refused(void *arg)
{
	peer p = {0};
	const char *extra[] = {"-Verify", "1", "-CAfile", certs.ca, NULL};
	tls_start_s_server(&p, &certs, certs.srv, extra);
	rlt_tls_ctx *ctx = tls_client_ctx(&certs, 0);
	int fd = tls_dial(p.port);
	rlt_tls *t = rlt_tls_client(ctx, fd, "localhost", 5 * RLT_NSEC_PER_SEC);
	int rc;
	if (t) {
		(void)rlt_tls_write(t, "x\n", 2);
		char b[16];
		rc = (int)rlt_tls_read(t, b, sizeof(b));
		if (rc == -ECONNREFUSED)
			assert_non_null(strstr(rlt_tls_error(t), "alert"));
		rlt_tls_free(t);
	} else {
		rc = -errno;
	}
	assert_int_equal(rc, -ECONNREFUSED);
	rlt_tls_ctx_free(ctx);
	rlt_close(fd);
	tls_stop(&p);
	return NULL;
}

static void test_client_without_certificate_is_refused(void **state)
{
	rlt_test_run(root_mutual_refused, NULL);
}

/* ---- misbehaving servers, in-process ---- */

typedef enum { SRV_PLAIN_HTTP, SRV_STOP_MID_HANDSHAKE, SRV_SILENT, SRV_TRUNCATED } srv_mode;

typedef struct bad_server {
	int lfd;
	srv_mode mode;
	rlt_future *got_hello; /* completed once the ClientHello is in */
	int cfd;
} bad_server;

static void *bad_server_task(void *arg)
{
	bad_server *s = arg;
	s->cfd = rlt_net_accept(s->lfd, NULL, 0);
	assert_true(s->cfd >= 0);
	char buf[4096];
	ssize_t n = rlt_recv(s->cfd, buf, sizeof(buf), 0);
	assert_true(n > 5);
	assert_int_equal(buf[0], 0x16); /* a handshake record */
	if (s->got_hello)
		rlt_future_set(s->got_hello, NULL);
	switch (s->mode) {
	case SRV_PLAIN_HTTP: {
		const char *r = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
		rlt_send_all(s->cfd, r, strlen(r), 0);
		break;
	}
	case SRV_STOP_MID_HANDSHAKE:
		break;
	case SRV_TRUNCATED: {
		/* A ServerHello record header that promises 200 bytes; 10 come. */
		unsigned char rec[15] = {0x16, 0x03, 0x03, 0x00, 200, 0x02, 0, 0, 196};
		rlt_send_all(s->cfd, rec, sizeof(rec), 0);
		break;
	}
	case SRV_SILENT:
		/* Wait for the client to give up (its close). */
		while (rlt_recv(s->cfd, buf, sizeof(buf), 0) > 0)
			;
		break;
	}
	rlt_close(s->cfd);
	return NULL;
}

typedef struct bad_case {
	srv_mode mode;
	int64_t timeout_ns;
	int want;
	const char *want_text;
} bad_case;

static void *root_bad_server(void *arg)
{
	bad_case *k = arg;
	int port;
	bad_server s = {.lfd = tls_listen(&port), .mode = k->mode};
	rlt_task *st = rlt_spawn(bad_server_task, &s, NULL);
	rlt_tls_ctx *ctx = tls_client_ctx(&certs, 0);
	int fd = tls_dial(port);
	uint64_t t0 = rlt_now();
	rlt_tls *t = rlt_tls_client(ctx, fd, "localhost", k->timeout_ns);
	int e = errno;
	uint64_t took = rlt_now() - t0;
	assert_null(t);
	if (e != k->want)
		fail_msg("errno %s, expected %s (%s)", strerror(e), strerror(k->want),
			 rlt_tls_last_error());
	if (k->want_text && !strstr(rlt_tls_last_error(), k->want_text))
		fail_msg("reason \"%s\" lacks \"%s\"", rlt_tls_last_error(), k->want_text);
	if (k->mode == SRV_SILENT) {
		/* The deadline, not much later. */
		assert_true(took >= (uint64_t)k->timeout_ns);
		assert_true(took < (uint64_t)k->timeout_ns + 2 * RLT_NSEC_PER_SEC);
	}
	rlt_close(fd);
	assert_int_equal(rlt_join(st, NULL), 0);
	rlt_close(s.lfd);
	rlt_tls_ctx_free(ctx);
	return NULL;
}

static void test_client_to_plain_http_server_is_eproto(void **state)
{
	rlt_test_run(root_bad_server, &(bad_case){SRV_PLAIN_HTTP, 5 * RLT_NSEC_PER_SEC, EPROTO,
						  "wrong version number"});
}

static void test_client_server_stops_mid_handshake(void **state)
{
	rlt_test_run(root_bad_server,
		     &(bad_case){SRV_STOP_MID_HANDSHAKE, 5 * RLT_NSEC_PER_SEC, ECONNABORTED, NULL});
}

static void test_client_truncated_handshake_record(void **state)
{
	rlt_test_run(root_bad_server,
		     &(bad_case){SRV_TRUNCATED, 5 * RLT_NSEC_PER_SEC, ECONNABORTED, NULL});
}

static void test_client_handshake_deadline(void **state)
{
	rlt_test_run(root_bad_server,
		     &(bad_case){SRV_SILENT, 200 * RLT_NSEC_PER_MSEC, ETIMEDOUT, "timed out"});
}

/* rlt_cancel on a task in the middle of its handshake. */
typedef struct cancel_case {
	rlt_tls_ctx *ctx;
	int fd;
	int err;
} cancel_case;

static void *handshaker(void *arg)
{
	cancel_case *c = arg;
	rlt_tls *t = rlt_tls_client(c->ctx, c->fd, "localhost", 0);
	c->err = t ? 0 : errno;
	rlt_tls_free(t);
	return NULL;
}

static void *root_cancel(void *arg)
{
	int port;
	bad_server s = {.lfd = tls_listen(&port), .mode = SRV_SILENT};
	s.got_hello = rlt_future_new();
	assert_non_null(s.got_hello);
	rlt_task *st = rlt_spawn(bad_server_task, &s, NULL);
	cancel_case c = {.ctx = tls_client_ctx(&certs, 0), .fd = tls_dial(port)};
	rlt_task *h = rlt_spawn(handshaker, &c, NULL);
	/* The server has the ClientHello: the client waits for its answer. */
	int w = rlt_future_await(s.got_hello, NULL, 10 * RLT_NSEC_PER_SEC);
	if (w == -ETIMEDOUT)
		rlt_test_faulted("no ClientHello came: the client's send failed");
	assert_int_equal(w, 0);
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_cancel(h), 0);
	assert_int_equal(rlt_join(h, NULL), -ECANCELED);
	assert_true(rlt_now() - t0 < RLT_NSEC_PER_SEC);
	assert_int_equal(c.err, ECANCELED);
	rlt_close(c.fd);
	assert_int_equal(rlt_join(st, NULL), 0);
	rlt_future_release(s.got_hello);
	rlt_close(s.lfd);
	rlt_tls_ctx_free(c.ctx);
	return NULL;
}

static void test_client_cancelled_mid_handshake(void **state)
{
	rlt_test_run(root_cancel, NULL);
}

/* A deadline scope around the handshake (no timeout of its own). */
static void *root_scope_deadline(void *arg)
{
	int port;
	bad_server s = {.lfd = tls_listen(&port), .mode = SRV_SILENT};
	rlt_task *st = rlt_spawn(bad_server_task, &s, NULL);
	rlt_tls_ctx *ctx = tls_client_ctx(&certs, 0);
	int fd = tls_dial(port);
	rlt_scope sc;
	assert_int_equal(rlt_scope_enter(&sc, 150 * RLT_NSEC_PER_MSEC), 0);
	rlt_tls *t = rlt_tls_client(ctx, fd, "localhost", 0);
	assert_null(t);
	assert_int_equal(errno, ETIMEDOUT);
	assert_int_equal(rlt_scope_leave(&sc), -ETIMEDOUT);
	rlt_close(fd);
	assert_int_equal(rlt_join(st, NULL), 0);
	rlt_close(s.lfd);
	rlt_tls_ctx_free(ctx);
	return NULL;
}

static void test_client_deadline_scope_mid_handshake(void **state)
{
	rlt_test_run(root_scope_deadline, NULL);
}

static void *root_bad_args(void *arg)
{
	rlt_tls_ctx *ctx = tls_client_ctx(&certs, 0);
	errno = 0;
	assert_null(rlt_tls_client(ctx, 3, NULL, 0)); /* verifying needs a name */
	assert_int_equal(errno, EINVAL);
	assert_null(rlt_tls_server(ctx, 3, 0)); /* a client context */
	assert_int_equal(errno, EINVAL);
	rlt_tls_ctx_free(ctx);
	return NULL;
}

static void test_client_bad_arguments(void **state)
{
	rlt_test_run(root_bad_args, NULL);
	/* Contexts. */
	assert_null(rlt_tls_ctx_new(NULL));
	assert_int_equal(errno, EINVAL);
	assert_null(rlt_tls_ctx_new(&(rlt_tls_ctx_opts){.flags = RLT_TLS_SERVER}));
	assert_int_equal(errno, EINVAL);
	assert_null(rlt_tls_ctx_new(&(rlt_tls_ctx_opts){.flags = 1u << 20}));
	assert_int_equal(errno, EINVAL);
	assert_null(rlt_tls_ctx_new(&(rlt_tls_ctx_opts){.ca_file = "/nonexistent/ca.pem"}));
	assert_int_equal(errno, ENOENT);
	assert_null(rlt_tls_ctx_new(&(rlt_tls_ctx_opts){.alpn = "h2,,x"}));
	assert_int_equal(errno, EINVAL);
	/* A key that is not the certificate's. */
	assert_null(rlt_tls_ctx_new(&(rlt_tls_ctx_opts){
	    .flags = RLT_TLS_SERVER, .cert_file = certs.srv, .key_file = certs.client_key}));
	assert_int_equal(errno, EKEYREJECTED);
	assert_non_null(strstr(rlt_tls_ctx_error(), "mismatch"));
	/* Not a certificate at all. */
	assert_null(rlt_tls_ctx_new(&(rlt_tls_ctx_opts){
	    .flags = RLT_TLS_SERVER, .cert_file = certs.key, .key_file = certs.key}));
	assert_int_equal(errno, EKEYREJECTED);
	/* Outside a task. */
	rlt_tls_ctx *ctx = tls_client_ctx(&certs, 0);
	assert_null(rlt_tls_client(ctx, 0, "localhost", 0));
	assert_int_equal(errno, EPERM);
	rlt_tls_ctx_free(ctx);
}

int main(void)
{
	if (!peer_installed("openssl")) {
		fprintf(stderr, "SKIPPED: openssl(1) is not installed\n");
		return 0;
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_client_talks_to_s_server_tls13),
	    cmocka_unit_test(test_client_talks_to_s_server_tls12),
	    cmocka_unit_test(test_client_verifies_an_ip_address),
	    cmocka_unit_test(test_client_negotiates_alpn),
	    cmocka_unit_test(test_client_refuses_expired_certificate),
	    cmocka_unit_test(test_client_refuses_wrong_host),
	    cmocka_unit_test(test_client_refuses_untrusted_certificate),
	    cmocka_unit_test(test_client_unsafe_no_verify_accepts_anything),
	    cmocka_unit_test(test_client_refuses_old_protocol),
	    cmocka_unit_test(test_client_with_certificate_for_mutual_tls),
	    cmocka_unit_test(test_client_without_certificate_is_refused),
	    cmocka_unit_test(test_client_to_plain_http_server_is_eproto),
	    cmocka_unit_test(test_client_server_stops_mid_handshake),
	    cmocka_unit_test(test_client_truncated_handshake_record),
	    cmocka_unit_test(test_client_handshake_deadline),
	    cmocka_unit_test(test_client_cancelled_mid_handshake),
	    cmocka_unit_test(test_client_deadline_scope_mid_handshake),
	    cmocka_unit_test(test_client_bad_arguments),
	};
	return cmocka_run_group_tests(tests, tls_group_setup, tls_group_teardown);
}
