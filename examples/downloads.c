/*
 * downloads: three "downloads" at once, each written to its own file as it arrives.
 *
 *	import asyncio, os, tempfile
 *
 *	SIZE, CHUNK, PACE = 1024 * 1024, 64 * 1024, 0.02
 *
 *	async def download(directory, name):
 *	    print(f"{name}: started")
 *	    written = 0
 *	    with open(os.path.join(directory, name), "wb") as f:
 *	        while written < SIZE:
 *	            await asyncio.sleep(PACE)    # the network delivers the next chunk
 *	            written += await asyncio.to_thread(f.write, bytes(CHUNK))
 *	        await asyncio.to_thread(os.fsync, f.fileno())
 *	    print(f"{name}: finished ({written} bytes)")
 *
 *	async def main(directory):
 *	    names = ["a.bin", "b.bin", "c.bin"]
 *	    await asyncio.gather(*(download(directory, n) for n in names))
 *	    total = sum(os.stat(os.path.join(directory, n)).st_size for n in names)
 *	    print(f"{len(names)} downloads, {total} bytes")
 *
 *	with tempfile.TemporaryDirectory() as d:
 *	    asyncio.run(main(d))
 *
 * prints the three "started" lines in order, the three "finished" lines in the order the
 * downloads happen to end, then "3 downloads, 3145728 bytes". It takes about one
 * download's time (16 chunks x PACE_MS), not three.
 *
 * The mapping:
 *   asyncio.gather(...)        rlt_spawn() each download, then rlt_join() each; a download
 *                              returns 0 or a negative errno as its task result
 *   open / f.write / os.fsync  rlt_openat / rlt_write / rlt_fsync / rlt_close: asyncio has
 *                              no asynchronous file I/O and needs to_thread; ringlet sends
 *                              each call to io_uring and suspends only the calling task
 *   os.stat                    rlt_statx(STATX_SIZE)
 *   TemporaryDirectory         mkdtemp() and its removal in main(), outside the runtime,
 *                              where blocking calls belong; it removes the files even when
 *                              a download failed
 * The files are opened relative to a directory fd (rlt_openat's dfd), so no path is
 * built per file.
 */
#include <ringlet.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NDOWNLOADS 3
#define FILE_SIZE  (1024 * 1024)
#define CHUNK_SIZE (64 * 1024)
#define PACE_MS	   20 /* the "network" delivers one chunk every PACE_MS */

static const char *const names[NDOWNLOADS] = {"a.bin", "b.bin", "c.bin"};

/* What the network delivered: zeros, as bytes(CHUNK). Read-only, so all the
 * downloads can write from it at once. */
static const char chunk[CHUNK_SIZE];

struct download {
	int dirfd;
	const char *name;
};

static int report(const char *name, const char *what, int rc)
{
	fprintf(stderr, "downloads: %s: %s: %s\n", name, what, strerror(-rc));
	return rc;
}

/* Write all of buf at offset: a regular file may take less than asked in one call. */
static int write_all(int fd, const char *buf, size_t len, off_t off)
{
	while (len > 0) {
		ssize_t n = rlt_write(fd, buf, len, off);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EIO;
		buf += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* Returns 0 or a negative errno, in the task's result pointer. */
static void *download(void *arg)
{
	const struct download *d = arg;
	printf("%s: started\n", d->name);
	int fd = rlt_openat(d->dirfd, d->name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return (void *)(intptr_t)report(d->name, "rlt_openat", fd);

	int rc = 0;
	off_t written = 0;
	while (written < FILE_SIZE) {
		rc = rlt_sleep(PACE_MS * RLT_NSEC_PER_MSEC);
		if (rc < 0) {
			report(d->name, "rlt_sleep", rc);
			break;
		}
		rc = write_all(fd, chunk, CHUNK_SIZE, written);
		if (rc < 0) {
			report(d->name, "rlt_write", rc);
			break;
		}
		written += CHUNK_SIZE;
	}
	if (rc == 0) {
		rc = rlt_fsync(fd, 0);
		if (rc < 0)
			report(d->name, "rlt_fsync", rc);
	}
	/* Close even after a failure; a close error is an error too (it can report a
	 * failed write-back). */
	int crc = rlt_close(fd);
	if (crc < 0 && rc == 0)
		rc = report(d->name, "rlt_close", crc);
	if (rc == 0)
		printf("%s: finished (%lld bytes)\n", d->name, (long long)written);
	return (void *)(intptr_t)rc;
}

static void *amain(void *arg)
{
	int dirfd = *(const int *)arg;
	struct download ds[NDOWNLOADS];
	rlt_task *tasks[NDOWNLOADS];
	int nspawned = 0, rc = 0;
	for (int i = 0; i < NDOWNLOADS; i++) {
		ds[i] = (struct download){.dirfd = dirfd, .name = names[i]};
		tasks[i] = rlt_spawn(download, &ds[i], NULL);
		if (!tasks[i]) {
			rc = report(names[i], "rlt_spawn", -errno);
			break;
		}
		nspawned++;
	}
	/* Join every task that was spawned, even after a failure: ds[] is on our stack. */
	for (int i = 0; i < nspawned; i++) {
		void *res;
		int jrc = rlt_join(tasks[i], &res);
		if (jrc < 0)
			jrc = report(names[i], "rlt_join", jrc);
		else
			jrc = (int)(intptr_t)res;
		if (jrc < 0 && rc == 0)
			rc = jrc;
	}
	if (rc < 0)
		return (void *)(intptr_t)rc;

	long long total = 0;
	for (int i = 0; i < NDOWNLOADS; i++) {
		struct statx stx;
		rc = rlt_statx(dirfd, names[i], 0, STATX_SIZE, &stx);
		if (rc < 0)
			return (void *)(intptr_t)report(names[i], "rlt_statx", rc);
		if (!(stx.stx_mask & STATX_SIZE) || stx.stx_size != FILE_SIZE) {
			fprintf(stderr, "downloads: %s: %llu bytes on disk, want %d\n", names[i],
				(unsigned long long)stx.stx_size, FILE_SIZE);
			return (void *)(intptr_t)-EIO;
		}
		total += (long long)stx.stx_size;
	}
	printf("%d downloads, %lld bytes\n", NDOWNLOADS, total);
	return NULL;
}

int main(void)
{
	/* Honour TMPDIR, as tempfile does; the test points it at a directory it watches. */
	const char *base = getenv("TMPDIR");
	if (!base || !*base)
		base = "/tmp";
	char dir[4096];
	if (snprintf(dir, sizeof(dir), "%s/ringlet-downloads-XXXXXX", base) >= (int)sizeof(dir)) {
		fprintf(stderr, "downloads: TMPDIR is too long\n");
		return EXIT_FAILURE;
	}
	if (!mkdtemp(dir)) {
		perror("downloads: mkdtemp");
		return EXIT_FAILURE;
	}
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		perror("downloads: open");
		rmdir(dir);
		return EXIT_FAILURE;
	}

	void *res = NULL;
	/* One worker, as asyncio's one thread: the "started" lines come out in
	 * spawn order (with several workers they would race). */
	rlt_config cfg = {.workers = 1};
	int rc = rlt_run(amain, &dirfd, &cfg, &res);
	if (rc < 0)
		fprintf(stderr, "downloads: rlt_run: %s\n", strerror(-rc));
	else
		rc = (int)(intptr_t)res;

	/* TemporaryDirectory's cleanup: whatever the downloads left behind. */
	for (int i = 0; i < NDOWNLOADS; i++) {
		if (unlinkat(dirfd, names[i], 0) < 0 && errno != ENOENT) {
			rc = -errno;
			fprintf(stderr, "downloads: unlink %s: %s\n", names[i], strerror(-rc));
		}
	}
	close(dirfd);
	if (rmdir(dir) < 0) {
		rc = -errno;
		fprintf(stderr, "downloads: rmdir %s: %s\n", dir, strerror(-rc));
	}
	return rc < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
