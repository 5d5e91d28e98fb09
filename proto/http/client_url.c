/*
 * The HTTP client's URLs: http://host[:port][/path][?query][#fragment],
 * host a name, an IPv4 address or a bracketed IPv6 one. What the client
 * needs from it: the pool's key and dial string ("host:port"), the Host
 * header, and the request target (path and query; the fragment stays
 * with the client). Bytes a request line cannot carry (controls, spaces,
 * anything above 0x7e) are refused rather than escaped: a URL is the
 * caller's to percent-encode.
 */
#include "client_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool url_byte_ok(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

static bool host_byte_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_';
}

/* port (1-65535) in decimal, NUL-terminated; its length. */
static size_t port_digits(char out[8], int port)
{
	char tmp[8];
	size_t n = 0;
	do
		tmp[n++] = (char)('0' + port % 10);
	while ((port /= 10) > 0);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	out[n] = '\0';
	return n;
}

int rlt__http_url_parse(rlt__http_url *u, const char *url)
{
	if (!u || !url)
		return -EINVAL;
	const char *colon = strstr(url, "://");
	if (!colon)
		return -EINVAL;
	size_t slen = (size_t)(colon - url);
	bool tls = slen == 5 && strncasecmp(url, "https", 5) == 0;
	if (!tls && (slen != 4 || strncasecmp(url, "http", 4) != 0)) {
		for (const char *s = url; s < colon; s++)
			if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
			      (s > url &&
			       ((*s >= '0' && *s <= '9') || *s == '+' || *s == '-' || *s == '.'))))
				return -EINVAL;
		return slen ? -EPROTONOSUPPORT : -EINVAL; /* ftp://, ... */
	}
	const char *h = colon + 3, *p = h;
	const char *host, *host_end;
	if (*p == '[') {
		host = p;
		while (*p && *p != ']') {
			unsigned char c = (unsigned char)*p;
			if (p > host && !(c == ':' || c == '.' || c == '%' || host_byte_ok(c)))
				return -EINVAL;
			p++;
		}
		if (*p != ']' || p == host + 1)
			return -EINVAL;
		host_end = ++p;
	} else {
		host = p;
		while (host_byte_ok((unsigned char)*p))
			p++;
		host_end = p;
		if (host_end == host)
			return -EINVAL;
	}
	int default_port = tls ? 443 : 80;
	int port = default_port;
	if (*p == ':') {
		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		port = 0;
		while (*p >= '0' && *p <= '9') {
			port = port * 10 + (*p - '0');
			if (port > 65535)
				return -EINVAL;
			p++;
		}
		if (port == 0)
			return -EINVAL;
	}
	if (*p && *p != '/' && *p != '?' && *p != '#')
		return -EINVAL; /* userinfo ("user@host"), a bad host byte */
	size_t hlen = (size_t)(host_end - host);
	if (hlen > 253 + 2)
		return -EINVAL;
	/* Not snprintf: a fetch parses its URL, and vfprintf's frame reaches a
	 * second page of a fresh task's stack (a page fault per task in a
	 * crawler that spawns a task per URL). */
	char digits[8];
	size_t dlen = port_digits(digits, port);
	memcpy(u->hostport, host, hlen);
	u->hostport[hlen] = ':';
	memcpy(u->hostport + hlen + 1, digits, dlen + 1);
	size_t hh = port == default_port ? hlen : hlen + 1 + dlen;
	memcpy(u->host_hdr, u->hostport, hh);
	u->host_hdr[hh] = '\0';
	/* SNI and verification take the bare host: an IPv6 address without
	 * its brackets. */
	size_t bare = *host == '[' ? hlen - 2 : hlen;
	memcpy(u->host, *host == '[' ? host + 1 : host, bare);
	u->host[bare] = '\0';
	u->tls = tls;
	u->port = port;
	u->target = p;
	const char *t = p;
	while (*t && *t != '#') {
		if (!url_byte_ok((unsigned char)*t))
			return -EINVAL;
		t++;
	}
	for (const char *f = t; *f; f++)
		if (!url_byte_ok((unsigned char)*f))
			return -EINVAL;
	u->target_len = (size_t)(t - p);
	return 0;
}

int rlt__http_url_resolve(const char *base, const char *loc, char *out, size_t size)
{
	if (!base || !loc || !*loc)
		return -EINVAL;
	int n;
	if (strstr(loc, "://") && strcspn(loc, "/?#") > (size_t)(strstr(loc, "://") - loc)) {
		n = snprintf(out, size, "%s", loc); /* absolute */
	} else {
		const char *sep = strstr(base, "://");
		if (!sep)
			return -EINVAL;
		const char *auth = sep + 3;
		const char *path = auth + strcspn(auth, "/?#");
		if (loc[0] == '/' && loc[1] == '/') { /* scheme-relative */
			n = snprintf(out, size, "%.*s%s", (int)(auth - 2 - base), base, loc);
		} else if (loc[0] == '/') { /* absolute path */
			n = snprintf(out, size, "%.*s%s", (int)(path - base), base, loc);
		} else if (loc[0] == '?') { /* the same path, another query */
			size_t plen = strcspn(path, "?#");
			n = snprintf(out, size, "%.*s%s", (int)(path + plen - base), base, loc);
		} else { /* relative: beside the base's last path segment */
			size_t plen = strcspn(path, "?#");
			const char *dir = path + plen;
			while (dir > path && dir[-1] != '/')
				dir--;
			if (dir == path)
				n = snprintf(out, size, "%.*s/%s", (int)(path - base), base, loc);
			else
				n = snprintf(out, size, "%.*s%s", (int)(dir - base), base, loc);
		}
	}
	if (n < 0)
		return -EINVAL;
	return (size_t)n >= size ? -ENAMETOOLONG : 0;
}
