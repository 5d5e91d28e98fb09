/*
 * ringlet-http: a small HTTP/1.1 server, like `python3 -m http.server`,
 * on ringlet's HTTP library; also the server of bench/http.sh.
 *
 *   ringlet-http [-a ADDR] [-p PORT] [-w WORKERS] [-P POLICY] [-d DIR] [-s] [-q]
 *                [--cert FILE --key FILE [--ktls]]
 *
 *   -a ADDR     address to listen on (default 127.0.0.1; 0.0.0.0 for all)
 *   -p PORT     port (default 8000; 0 picks a free one)
 *   -w WORKERS  worker threads (default: one per CPU)
 *   -P POLICY   loop policy (io_uring, io_uring-sqpoll, epoll)
 *   -d DIR      directory to serve (default: the current one)
 *   -s          one shared acceptor instead of a listener per worker
 *   -q          quiet: no startup line
 *   -T          no timeouts (header, idle, I/O): to measure what they cost
 *   --cert FILE --key FILE
 *               serve HTTPS (ringlet_tls): the certificate (PEM, then its
 *               chain) and its private key
 *   --ktls      with --cert: kernel TLS for sending where the kernel has it
 *               (RLT_TLS_KTLS; files then go out by splice, no copy)
 *
 * Routes: GET /plaintext ("Hello, World!"), GET /json ({"message":"Hello
 * world"}, the seed's FastAPI app's `/`), and everything else from DIR:
 * a directory serves its index.html, a missing file 404 (an open that
 * fails otherwise 403 or 500, as nginx answers), a path with a
 * ".." segment 403; Content-Type from the extension; a single "Range:
 * bytes=a-b" gets 206 (or 416). SIGINT/SIGTERM shut down gracefully.
 */
#include <ringlet.h>
#include <ringlet/http.h>
#include <ringlet/signal.h>
#include <ringlet/tls.h>

#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static int dirfd_root = -1;
static int h_plaintext(rlt_http_request *req, rlt_http_response *res, void *arg)
{
	(void)req;
	(void)arg;
	rlt_http_response_header(res, "Content-Type", "text/plain");
	return rlt_http_response_send(res, "Hello, World!", 13);
}

static int h_json(rlt_http_request *req, rlt_http_response *res, void *arg)
{
	(void)req;
	(void)arg;
	static const char body[] = "{\"message\":\"Hello world\"}";
	rlt_http_response_header(res, "Content-Type", "application/json");
	return rlt_http_response_send(res, body, sizeof(body) - 1);
}

static const char *mime_type(const char *path)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
	    {"html", "text/html; charset=utf-8"},
	    {"htm", "text/html; charset=utf-8"},
	    {"txt", "text/plain; charset=utf-8"},
	    {"css", "text/css"},
	    {"js", "text/javascript"},
	    {"json", "application/json"},
	    {"xml", "application/xml"},
	    {"png", "image/png"},
	    {"jpg", "image/jpeg"},
	    {"jpeg", "image/jpeg"},
	    {"gif", "image/gif"},
	    {"svg", "image/svg+xml"},
	    {"ico", "image/x-icon"},
	    {"webp", "image/webp"},
	    {"pdf", "application/pdf"},
	    {"wasm", "application/wasm"},
	    {"mp4", "video/mp4"},
	    {"woff2", "font/woff2"},
	    {"gz", "application/gzip"},
	    {"zip", "application/zip"},
	};
	const char *dot = strrchr(path, '.');
	const char *slash = strrchr(path, '/');
	if (dot && (!slash || dot > slash))
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (strcasecmp(dot + 1, types[i].ext) == 0)
				return types[i].type;
	return "application/octet-stream";
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode the path (without its leading '/') into out, refusing
 * NUL and ".." segments. 0, or the status to answer. */
static int decode_path(rlt_http_str p, char *out, size_t cap)
{
	size_t n = 0;
	for (size_t i = 1; i < p.len; i++) {
		char ch = p.p[i];
		if (ch == '%') {
			if (i + 2 >= p.len)
				return 400;
			int hi = hexval(p.p[i + 1]), lo = hexval(p.p[i + 2]);
			if (hi < 0 || lo < 0)
				return 400;
			ch = (char)(hi * 16 + lo);
			i += 2;
		}
		if (ch == '\0')
			return 400;
		if (n + 1 >= cap)
			return 414;
		out[n++] = ch;
	}
	out[n] = '\0';
	for (const char *s = out; *s;) { /* no ".." segment */
		const char *e = strchr(s, '/');
		size_t l = e ? (size_t)(e - s) : strlen(s);
		if (l == 2 && s[0] == '.' && s[1] == '.')
			return 403;
		s += l + (e ? 1 : 0);
	}
	return 0;
}

static int send_status(rlt_http_response *res, int status)
{
	const char *reason = rlt_http_status_reason(status);
	char body[64];
	int n = snprintf(body, sizeof(body), "%d %s\n", status, reason);
	rlt_http_response_status(res, status);
	rlt_http_response_header(res, "Content-Type", "text/plain");
	return rlt_http_response_send(res, body, (size_t)n);
}

/* "bytes=a-b", "bytes=a-", "bytes=-n" for a file of size sz: 1 and the
 * range, 0 to ignore the header (unparsable, several ranges), -1 for 416. */
static int parse_range(const char *h, off_t sz, off_t *from, off_t *to)
{
	if (strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
		return 0;
	const char *p = h + 6;
	char *e;
	if (*p == '-') {
		long long n = strtoll(p + 1, &e, 10);
		if (*e || n <= 0)
			return 0;
		*from = n >= sz ? 0 : sz - n;
		*to = sz - 1;
	} else {
		long long a = strtoll(p, &e, 10);
		if (*e != '-' || a < 0)
			return 0;
		long long b = e[1] ? strtoll(e + 1, &e, 10) : sz - 1;
		if (*e && e[0] != '-')
			return 0;
		if (b < a)
			return 0;
		if (a >= sz)
			return -1;
		*from = a;
		*to = b >= sz ? sz - 1 : b;
	}
	return sz > 0 ? 1 : -1;
}

/* The status for a failed open, as nginx answers: a missing file 404,
 * refused 403, anything else (out of descriptors or memory, an I/O error)
 * 500, not a 404 that a cache would keep. */
static int open_status(int err)
{
	switch (err) {
	case -ENOENT:
	case -ENOTDIR:
	case -ENAMETOOLONG:
		return 404;
	case -EACCES:
	case -EPERM:
		return 403;
	default:
		return 500;
	}
}

static int h_file(rlt_http_request *req, rlt_http_response *res, void *arg)
{
	(void)arg;
	char path[4096];
	int st = decode_path(rlt_http_request_path(req), path, sizeof(path) - 16);
	if (st)
		return send_status(res, st);
	const char *rel = path[0] ? path : ".";
	int fd = rlt_openat(dirfd_root, rel, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return send_status(res, open_status(fd));
	struct stat sb;
	if (fstat(fd, &sb) < 0) {
		rlt_close(fd);
		return send_status(res, 500);
	}
	if (S_ISDIR(sb.st_mode)) {
		size_t l = strlen(path);
		rlt_close(fd);
		snprintf(path + l, sizeof(path) - l, "%sindex.html",
			 l && path[l - 1] != '/' ? "/" : "");
		fd = rlt_openat(dirfd_root, path, O_RDONLY | O_CLOEXEC, 0);
		if (fd < 0)
			return send_status(res, open_status(fd));
		if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
			rlt_close(fd);
			return send_status(res, 404);
		}
	} else if (!S_ISREG(sb.st_mode)) {
		rlt_close(fd);
		return send_status(res, 403);
	}
	rlt_http_response_header(res, "Content-Type", mime_type(path));
	rlt_http_response_header(res, "Accept-Ranges", "bytes");
	off_t from = 0, to = sb.st_size - 1;
	const char *range = rlt_http_request_header(req, "Range");
	int rr = range ? parse_range(range, sb.st_size, &from, &to) : 0;
	int rc;
	char cr[96];
	if (rr < 0) {
		snprintf(cr, sizeof(cr), "bytes */%lld", (long long)sb.st_size);
		rlt_http_response_header(res, "Content-Range", cr);
		rc = send_status(res, 416);
	} else {
		if (rr > 0) {
			snprintf(cr, sizeof(cr), "bytes %lld-%lld/%lld", (long long)from,
				 (long long)to, (long long)sb.st_size);
			rlt_http_response_header(res, "Content-Range", cr);
			rlt_http_response_status(res, 206);
		}
		rc = rlt_http_response_sendfile(res, fd, from,
						sb.st_size ? (size_t)(to - from + 1) : 0);
	}
	rlt_close(fd);
	return rc;
}

struct args {
	const char *addr;
	int port;
	bool shared, quiet, no_timeouts;
	const char *cert, *key;
	bool ktls;
};

/* Waits for SIGINT or SIGTERM, then asks the server to shut down. */
static void *signal_task(void *arg)
{
	void **a = arg;
	if (rlt_signal_next(a[0], -1) > 0)
		rlt_http_server_stop(a[1]);
	return NULL;
}

static void *amain(void *arg)
{
	struct args *a = arg;
	/* Watch before serving: a signal that comes early is not lost. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	rlt_signal *watch = rlt_signal_watch(&set);
	if (!watch) {
		perror("rlt_signal_watch");
		return (void *)1;
	}
	rlt_http_router *r = rlt_http_router_new();
	if (!r)
		return (void *)1;
	rlt_http_router_add(r, "GET", "/plaintext", 0, h_plaintext, NULL);
	rlt_http_router_add(r, "GET", "/json", 0, h_json, NULL);
	rlt_http_router_add(r, "GET", "/", RLT_HTTP_PREFIX, h_file, NULL);
	char hostport[300];
	snprintf(hostport, sizeof(hostport), strchr(a->addr, ':') ? "[%s]:%d" : "%s:%d", a->addr,
		 a->port);
	rlt_addr la;
	if (rlt_addr_parse(&la, hostport) < 0) {
		fprintf(stderr, "ringlet-http: bad address %s\n", hostport);
		return (void *)1;
	}
	rlt_tls_ctx *tls = NULL;
	if (a->cert) {
		rlt_tls_ctx_opts to = {.flags = RLT_TLS_SERVER | (a->ktls ? RLT_TLS_KTLS : 0),
				       .cert_file = a->cert,
				       .key_file = a->key,
				       .alpn = "http/1.1"};
		if (!(tls = rlt_tls_ctx_new(&to))) {
			fprintf(stderr, "ringlet-http: TLS: %s\n", rlt_tls_ctx_error());
			rlt_signal_close(watch);
			return (void *)1;
		}
	}
	rlt_http_server *s = rlt_http_server_start(&(rlt_http_server_opts){
	    .addrs = &la,
	    .naddrs = 1,
	    .handler = rlt_http_router_handle,
	    .arg = r,
	    .shared_acceptor = a->shared,
	    .header_timeout = a->no_timeouts ? -1 : 0,
	    .idle_timeout = a->no_timeouts ? -1 : 0,
	    .io_timeout = a->no_timeouts ? -1 : 0,
	    .tls = tls,
	});
	if (!s) {
		fprintf(stderr, "ringlet-http: %s: %s\n", hostport, strerror(errno));
		rlt_tls_ctx_free(tls);
		rlt_signal_close(watch);
		return (void *)1;
	}
	rlt_http_server_addr(s, 0, &la);
	if (!a->quiet) {
		char b[128];
		rlt_addr_format(&la, b, sizeof(b));
		printf("ringlet-http: serving on %s://%s/ (%u workers, %s)\n",
		       tls ? "https" : "http", b, rlt_runtime_workers(rlt_runtime_self()),
		       rlt_runtime_policy(rlt_runtime_self()));
		fflush(stdout);
	}
	void *sargs[2] = {watch, s};
	rlt_task *st = rlt_spawn(signal_task, sargs, NULL);
	rlt_http_server_wait(s);
	rlt_cancel(st);
	rlt_join(st, NULL);
	rlt_signal_close(watch);
	rlt_http_server_free(s);
	rlt_tls_ctx_free(tls);
	rlt_http_router_free(r);
	return NULL;
}

int main(int argc, char **argv)
{
	struct args a = {.addr = "127.0.0.1", .port = 8000};
	rlt_config cfg;
	rlt_config_init(&cfg);
	const char *dir = ".";
	int opt;
	static const struct option longs[] = {{"cert", required_argument, NULL, 'C'},
					      {"key", required_argument, NULL, 'K'},
					      {"ktls", no_argument, NULL, 'k'},
					      {0}};
	while ((opt = getopt_long(argc, argv, "a:p:w:P:d:sqTh", longs, NULL)) != -1) {
		switch (opt) {
		case 'C':
			a.cert = optarg;
			break;
		case 'K':
			a.key = optarg;
			break;
		case 'k':
			a.ktls = true;
			break;
		case 'a':
			a.addr = optarg;
			break;
		case 'p':
			a.port = atoi(optarg);
			break;
		case 'w':
			cfg.workers = (unsigned)atoi(optarg);
			break;
		case 'P':
			cfg.policy = optarg;
			break;
		case 'd':
			dir = optarg;
			break;
		case 's':
			a.shared = true;
			break;
		case 'q':
			a.quiet = true;
			break;
		case 'T':
			a.no_timeouts = true;
			break;
		default:
			fprintf(stderr,
				"usage: %s [-a ADDR] [-p PORT] [-w WORKERS] [-P POLICY] "
				"[-d DIR] [-s] [-q] [-T] [--cert FILE --key FILE [--ktls]]\n",
				argv[0]);
			return 2;
		}
	}
	if (!a.cert != !a.key) {
		fprintf(stderr, "ringlet-http: --cert and --key go together\n");
		return 2;
	}
	dirfd_root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd_root < 0) {
		perror(dir);
		return 1;
	}
	void *res = NULL;
	int rc = rlt_run(amain, &a, &cfg, &res);
	if (rc < 0) {
		fprintf(stderr, "ringlet-http: rlt_run: %s\n", strerror(-rc));
		return 1;
	}
	return res ? 1 : 0;
}
