/*
 * The BIO OpenSSL reads and writes records through: two buffers of the
 * connection, never the socket (tls.c moves the bytes with rlt_recv and
 * rlt_send). And kTLS: OpenSSL's hand-off of the write keys to the
 * kernel, taken by this BIO as by OpenSSL's own socket BIO.
 */
#include "tls_int.h"

#include <linux/tls.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int grow(unsigned char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 16384 + 512;
	while (c < need)
		c *= 2;
	unsigned char *p = realloc(*buf, c);
	if (!p)
		return -1;
	*buf = p;
	*cap = c;
	return 0;
}

/* Under kTLS, OpenSSL writes plaintext records: queue them with their
 * type, for tls_flush to send as records of that type. */
static int kq_put(rlt_tls *t, const char *data, int len)
{
	if (grow(&t->kq, &t->kq_cap, t->kq_len + 5 + (size_t)len) < 0)
		return -1;
	unsigned char *p = t->kq + t->kq_len;
	p[0] = (unsigned char)(t->ktls_ctrl ? t->ktls_ctrl : 23 /* application data */);
	uint32_t n = (uint32_t)len;
	memcpy(p + 1, &n, 4);
	memcpy(p + 5, data, (size_t)len);
	t->kq_len += 5 + (size_t)len;
	return len;
}

static int bio_write(BIO *b, const char *data, int len)
{
	rlt_tls *t = BIO_get_data(b);
	if (t->ktls_tx)
		return kq_put(t, data, len);
	size_t need = t->out_len + (size_t)len;
	if (need > t->out_cap) {
		size_t cap = t->out_cap ? t->out_cap : 16384 + 512;
		while (cap < need)
			cap *= 2;
		unsigned char *p = realloc(t->out, cap);
		if (!p)
			return -1; /* not a retry: OpenSSL fails the call */
		t->out = p;
		t->out_cap = cap;
	}
	memcpy(t->out + t->out_len, data, (size_t)len);
	t->out_len = need;
	return len;
}

static int bio_read(BIO *b, char *buf, int len)
{
	rlt_tls *t = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	size_t have = t->in_len - t->in_off;
	if (have == 0) {
		if (t->eof)
			return 0;
		BIO_set_retry_read(b);
		return -1;
	}
	size_t n = have < (size_t)len ? have : (size_t)len;
	memcpy(buf, t->in + t->in_off, n);
	t->in_off += n;
	return (int)n;
}

/* OpenSSL 3's internal BIO controls for kTLS (its include/internal/bio.h):
 * its record layer hands a socket BIO the kernel's key structure for a new
 * write or read state, then marks each non-data record it writes. Ours
 * takes them too, so the keys reach the kernel without OpenSSL touching
 * the socket. */
#define OSSL_BIO_CTRL_SET_KTLS			72
#define OSSL_BIO_CTRL_SET_KTLS_TX_SEND_CTRL_MSG 74
#define OSSL_BIO_CTRL_CLEAR_KTLS_TX_CTRL_MSG	75

static socklen_t ktls_info_len(const struct tls_crypto_info *i)
{
	switch (i->cipher_type) {
	case TLS_CIPHER_AES_GCM_128:
		return sizeof(struct tls12_crypto_info_aes_gcm_128);
	case TLS_CIPHER_AES_GCM_256:
		return sizeof(struct tls12_crypto_info_aes_gcm_256);
	case TLS_CIPHER_AES_CCM_128:
		return sizeof(struct tls12_crypto_info_aes_ccm_128);
	case TLS_CIPHER_CHACHA20_POLY1305:
		return sizeof(struct tls12_crypto_info_chacha20_poly1305);
	default:
		return 0;
	}
}

/*
 * Hand the new write keys to the kernel (TLS_TX; receiving stays in user
 * space: the kernel could not take the bytes already read). Called inside
 * an SSL_* call, which cannot suspend: the records written under the old
 * keys (the end of the handshake flight) are sent at once without waiting
 * (send(2), MSG_DONTWAIT: they fit an empty socket buffer), else kTLS is
 * declined and OpenSSL goes on encrypting. 1 if the kernel took the keys.
 */
static int ktls_start_tx(rlt_tls *t, const struct tls_crypto_info *info)
{
	socklen_t len = ktls_info_len(info);
	if (!len) {
		t->ktls_err = -EOPNOTSUPP;
		return 0;
	}
	static const char ulp[] = "tls";
	if (setsockopt(t->fd, SOL_TCP, TCP_ULP, ulp, sizeof(ulp)) < 0 && errno != EEXIST) {
		t->ktls_err = -errno; /* ENOENT: the kernel has no tls module */
		return 0;
	}
	size_t off = 0;
	while (off < t->out_len) {
		ssize_t n =
		    send(t->fd, t->out + off, t->out_len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	memmove(t->out, t->out + off, t->out_len - off);
	t->out_len -= off;
	if (t->out_len) {
		t->ktls_err = -EAGAIN;
		return 0;
	}
	if (setsockopt(t->fd, SOL_TLS, TLS_TX, info, len) < 0) {
		t->ktls_err = -errno;
		return 0;
	}
	t->ktls_tx = 1;
	t->ktls_err = 0;
	return 1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	rlt_tls *t = BIO_get_data(b);
	switch (cmd) {
	case OSSL_BIO_CTRL_SET_KTLS:
		if (!num) /* receiving: not offloaded */
			return 0;
		return ktls_start_tx(t, ptr);
	case OSSL_BIO_CTRL_SET_KTLS_TX_SEND_CTRL_MSG:
		t->ktls_ctrl = (int)num;
		return 1;
	case OSSL_BIO_CTRL_CLEAR_KTLS_TX_CTRL_MSG:
		t->ktls_ctrl = 0;
		return 1;
	case BIO_CTRL_GET_KTLS_SEND:
		return t->ktls_tx;
	case BIO_CTRL_GET_KTLS_RECV:
		return 0;
	case BIO_CTRL_FLUSH:
		return 1; /* we send when OpenSSL wants input, or the call ends */
	case BIO_CTRL_PENDING:
		return (long)(t->in_len - t->in_off);
	case BIO_CTRL_WPENDING:
		return (long)t->out_len;
	case BIO_CTRL_EOF:
		return t->eof && t->in_off == t->in_len;
	default:
		return 0;
	}
}

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static void bio_method_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ringlet");
	if (m && BIO_meth_set_write(m, bio_write) && BIO_meth_set_read(m, bio_read) &&
	    BIO_meth_set_ctrl(m, bio_ctrl))
		bio_method = m;
	else
		BIO_meth_free(m);
}

BIO_METHOD *rlt__tls_bio_method(void)
{
	pthread_once(&bio_once, bio_method_init);
	return bio_method;
}

/* kTLS: send the queued records, each of its type (a cmsg tells the
 * kernel which, but for data). */
int rlt__tls_kq_flush(rlt_tls *t)
{
	size_t off = 0;
	int rc = 0;
	while (off < t->kq_len && rc == 0) {
		unsigned char type = t->kq[off];
		uint32_t len;
		memcpy(&len, t->kq + off + 1, 4);
		unsigned char *p = t->kq + off + 5;
		off += 5 + len;
		if (type == 23) {
			ssize_t n = rlt_send_all(t->fd, p, len, 0);
			rc = n < 0 ? (int)n : 0;
			continue;
		}
		union {
			char buf[CMSG_SPACE(1)];
			struct cmsghdr align;
		} cm;
		memset(&cm, 0, sizeof(cm));
		struct iovec iov = {p, len};
		struct msghdr m = {.msg_iov = &iov,
				   .msg_iovlen = 1,
				   .msg_control = cm.buf,
				   .msg_controllen = sizeof(cm.buf)};
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_TLS;
		c->cmsg_type = TLS_SET_RECORD_TYPE;
		c->cmsg_len = CMSG_LEN(1);
		*CMSG_DATA(c) = type;
		ssize_t n;
		while ((n = rlt_sendmsg(t->fd, &m, 0)) == -EINTR)
			;
		rc = n < 0 ? (int)n : (size_t)n == len ? 0 : -EIO;
	}
	t->kq_len = 0;
	return rc;
}
