/*
 * download: fetch URLs concurrently and write each body to a file in a
 * directory, as it arrives. The asyncio tutorial's image downloader:
 *
 *	import asyncio, os, sys, aiohttp, aiofiles
 *
 *	async def download(session, directory, url):
 *	    name = os.path.basename(url) or "index.html"
 *	    async with session.get(url) as response:
 *	        async with aiofiles.open(os.path.join(directory, name), "wb") as f:
 *	            size = 0
 *	            async for chunk in response.content.iter_chunked(65536):
 *	                size += await f.write(chunk)
 *	    print(f"downloaded {url} -> {name} ({size} bytes)")
 *	    return size
 *
 *	async def main(directory, urls):
 *	    async with aiohttp.ClientSession() as session:
 *	        sizes = await asyncio.gather(*(download(session, directory, u) for u in urls))
 *	    print(f"{len(urls)} files, {sum(sizes)} bytes")
 *
 *	asyncio.run(main(sys.argv[1], sys.argv[2:]))
 *
 * prints a "downloaded" line per URL as each finishes, then the total.
 *
 * The mapping:
 *   session.get + the chunk loop + f.write   rlt_http_download(client, url, fd, 0, &status):
 *                             the body goes to the file with rlt_write (io_uring) piece by
 *                             piece as it arrives; aiofiles needs a thread per write
 *   aiofiles.open             rlt_openat relative to the directory's fd
 *   asyncio.gather(...)       rlt_spawn each download, rlt_join each
 * A status other than 2xx writes nothing: "failed: URL: status 404", exit status 1; the
 * file of a failed download is removed.
 *
 * Usage: download DIR URL...
 */
#include <ringlet.h>
#include <ringlet/http_client.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct dl {
	rlt_http_client *session;
	int dirfd;
	const char *url;
	ssize_t size; /* the result: bytes, or a negative errno */
} dl;

/* The file name: the URL path's last segment, without its query. */
static void file_name(const char *url, char *out, size_t size)
{
	const char *p = strstr(url, "://");
	p = p ? strchr(p + 3, '/') : NULL;
	size_t end = p ? strcspn(p, "?#") : 0;
	const char *base = p;
	for (size_t i = 0; p && i < end; i++)
		if (p[i] == '/')
			base = p + i + 1;
	size_t len = p ? (size_t)(p + end - base) : 0;
	if (len == 0 || (len <= 2 && base[0] == '.'))
		snprintf(out, size, "index.html");
	else
		snprintf(out, size, "%.*s", (int)len, base);
}

static void *download(void *arg)
{
	dl *d = arg;
	char name[256];
	file_name(d->url, name, sizeof(name));
	int fd = rlt_openat(d->dirfd, name, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0) {
		d->size = fd;
		fprintf(stderr, "failed: %s: %s: %s\n", d->url, name, strerror(-fd));
		return NULL;
	}
	int status = 0;
	d->size = rlt_http_download(d->session, d->url, fd, 0, &status);
	rlt_close(fd);
	if (d->size < 0)
		unlinkat(d->dirfd, name, 0); /* no half or error-page files */
	if (d->size >= 0)
		printf("downloaded %s -> %s (%zd bytes)\n", d->url, name, d->size);
	else if (d->size == -EREMOTEIO)
		fprintf(stderr, "failed: %s: status %d\n", d->url, status);
	else
		fprintf(stderr, "failed: %s: %s\n", d->url, strerror((int)-d->size));
	return NULL;
}

typedef struct args {
	const char *dir;
	char **urls;
	int n;
} args;

static void *main_task(void *arg)
{
	args *a = arg;
	int dirfd = rlt_openat(AT_FDCWD, a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (dirfd < 0) {
		fprintf(stderr, "download: %s: %s\n", a->dir, strerror(-dirfd));
		return (void *)1;
	}
	rlt_http_client *session = rlt_http_client_new(NULL);
	dl *d = calloc((size_t)a->n, sizeof(*d));
	rlt_task **t = calloc((size_t)a->n, sizeof(*t));
	if (!session || !d || !t) {
		perror("download");
		exit(1);
	}
	for (int i = 0; i < a->n; i++) {
		d[i] = (dl){.session = session, .dirfd = dirfd, .url = a->urls[i]};
		t[i] = rlt_spawn(download, &d[i], NULL);
	}
	long total = 0;
	int failed = 0;
	for (int i = 0; i < a->n; i++) {
		if (!t[i] || rlt_join(t[i], NULL) != 0 || d[i].size < 0)
			failed++;
		else
			total += d[i].size;
	}
	printf("%d files, %ld bytes\n", a->n - failed, total);
	rlt_http_client_free(session);
	rlt_close(dirfd);
	free(d);
	free(t);
	return (void *)(intptr_t)(failed ? 1 : 0);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: download DIR URL...\n");
		return 2;
	}
	args a = {.dir = argv[1], .urls = argv + 2, .n = argc - 2};
	void *res = NULL;
	if (rlt_run(main_task, &a, NULL, &res) != 0)
		return 1;
	return (int)(intptr_t)res;
}
