/* File I/O: openat, read/write (offsets and current position), readv/writev,
 * fsync, statx, close, and the errors of each, against real files. */
#include "tests/rlt_test.h"

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A fresh directory per test program; every test works inside it. */
static char tmpdir[PATH_MAX];
static int tmpdir_fd = -1;

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	return remove(path);
}

static int group_setup(void **state)
{
	const char *base = getenv("TMPDIR");
	if (!base || !*base)
		base = "/tmp";
	snprintf(tmpdir, sizeof(tmpdir), "%s/ringlet-io-file-XXXXXX", base);
	if (!mkdtemp(tmpdir))
		return -1;
	tmpdir_fd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return tmpdir_fd < 0 ? -1 : 0;
}

static int group_teardown(void **state)
{
	if (tmpdir_fd >= 0)
		close(tmpdir_fd);
	return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Deterministic content: byte i of stream `seed`. */
static inline unsigned char pat(unsigned seed, size_t i)
{
	return (unsigned char)((i * 131u + seed * 7u + (i >> 8)) & 0xff);
}

static void fill(unsigned char *buf, size_t len, unsigned seed, size_t from)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = pat(seed, from + i);
}

static void check(const unsigned char *buf, size_t len, unsigned seed, size_t from)
{
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != pat(seed, from + i))
			fail_msg("byte %zu: got %u, want %u", from + i, buf[i],
				 pat(seed, from + i));
	}
}

/* Open (creating, truncating) name in the test directory, read-write. */
static int open_rw(const char *name)
{
	int fd = rlt_openat(tmpdir_fd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	rlt_test_assert_ok(fd);
	return fd;
}

/* ---- openat ---- */

static void *root_openat_create_excl(void *arg)
{
	int fd = rlt_openat(tmpdir_fd, "excl", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	rlt_test_assert_ok(fd);
	/* It is a real descriptor of a real file. */
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(faccessat(tmpdir_fd, "excl", F_OK, 0), 0);

	assert_int_equal(rlt_openat(tmpdir_fd, "excl", O_RDWR | O_CREAT | O_EXCL, 0600), -EEXIST);
	/* Without O_EXCL the existing file opens. */
	int fd2 = rlt_openat(tmpdir_fd, "excl", O_RDONLY | O_CLOEXEC, 0);
	rlt_test_fault_ends(fd2);
	assert_true(fd2 >= 0 && fd2 != fd);
	assert_int_equal(rlt_close(fd2), 0);
	assert_int_equal(rlt_close(fd), 0);
	return NULL;
}

static void test_openat_creates_file_and_o_excl_on_existing_gives_eexist(void **state)
{
	rlt_test_run(root_openat_create_excl, NULL);
}

static void *root_openat_missing(void *arg)
{
	assert_int_equal(rlt_openat(tmpdir_fd, "does-not-exist", O_RDONLY, 0), -ENOENT);
	/* AT_FDCWD with an absolute path, and a missing directory on the way. */
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/no-such-dir/file", tmpdir);
	assert_int_equal(rlt_openat(AT_FDCWD, path, O_RDWR | O_CREAT, 0644), -ENOENT);
	/* A bad directory fd for a relative path. */
	assert_int_equal(rlt_openat(-1, "x", O_RDONLY, 0), -EBADF);
	return NULL;
}

static void test_openat_missing_file_gives_enoent(void **state)
{
	rlt_test_run(root_openat_missing, NULL);
}

static void *root_openat_absolute(void *arg)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/absolute", tmpdir);
	int fd = rlt_openat(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	rlt_test_assert_ok(fd);
	assert_int_equal(rlt_write(fd, "abc", 3, 0), 3);
	assert_int_equal(rlt_close(fd), 0);
	struct stat st;
	assert_int_equal(fstatat(tmpdir_fd, "absolute", &st, 0), 0);
	assert_int_equal(st.st_size, 3);
	return NULL;
}

static void test_openat_with_at_fdcwd_and_absolute_path(void **state)
{
	rlt_test_run(root_openat_absolute, NULL);
}

/* ---- read and write ---- */

static void *root_rw_offsets(void *arg)
{
	int fd = open_rw("offsets");
	unsigned char w[3000], r[3000];
	fill(w, sizeof(w), 1, 0);
	/* Out of order, with a hole at [3000, 4096). */
	assert_int_equal(rlt_write(fd, w + 1000, 2000, 1000), 2000);
	assert_int_equal(rlt_write(fd, w, 1000, 0), 1000);
	assert_int_equal(rlt_write(fd, w, 100, 4096), 100);
	/* Positioned I/O leaves the file position alone. */
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 0);

	memset(r, 0, sizeof(r));
	assert_int_equal(rlt_read(fd, r, sizeof(r), 0), 3000);
	assert_memory_equal(r, w, sizeof(w));
	/* A read that straddles the hole: zeros, then the data written at 4096. */
	memset(r, 0xee, sizeof(r));
	assert_int_equal(rlt_read(fd, r, 1200, 2990), 1200);
	assert_memory_equal(r, w + 2990, 10);
	for (int i = 10; i < 1106; i++)
		assert_int_equal(r[i], 0);
	assert_memory_equal(r + 1106, w, 94);
	/* Past the end: only the last 100 bytes exist. */
	assert_int_equal(rlt_read(fd, r, 1000, 4096), 100);
	assert_memory_equal(r, w, 100);
	/* Read in the middle. */
	assert_int_equal(rlt_read(fd, r, 10, 1234), 10);
	assert_memory_equal(r, w + 1234, 10);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 0);
	assert_int_equal(rlt_close(fd), 0);
	return NULL;
}

static void test_write_and_read_at_explicit_offsets(void **state)
{
	rlt_test_run(root_rw_offsets, NULL);
}

static void *root_rw_current_position(void *arg)
{
	int fd = open_rw("curpos");
	unsigned char w[1000], r[1000];
	fill(w, sizeof(w), 2, 0);
	/* Three writes at the current position append one after another. */
	assert_int_equal(rlt_write(fd, w, 100, -1), 100);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 100);
	assert_int_equal(rlt_write(fd, w + 100, 400, -1), 400);
	assert_int_equal(rlt_write(fd, w + 500, 500, -1), 500);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 1000);
	/* Reading at the current position (the end) gives 0. */
	assert_int_equal(rlt_read(fd, r, sizeof(r), -1), 0);

	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	memset(r, 0, sizeof(r));
	assert_int_equal(rlt_read(fd, r, 300, -1), 300);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 300);
	assert_int_equal(rlt_read(fd, r + 300, 700, -1), 700);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 1000);
	assert_memory_equal(r, w, sizeof(w));

	/* A positioned read in between does not move the position. */
	assert_int_equal(lseek(fd, 10, SEEK_SET), 10);
	assert_int_equal(rlt_read(fd, r, 5, 900), 5);
	assert_memory_equal(r, w + 900, 5);
	assert_int_equal(rlt_read(fd, r, 5, -1), 5);
	assert_memory_equal(r, w + 10, 5);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 15);
	assert_int_equal(rlt_close(fd), 0);
	return NULL;
}

static void test_read_and_write_at_current_position_advance_it(void **state)
{
	rlt_test_run(root_rw_current_position, NULL);
}

static void *root_append(void *arg)
{
	int fd = rlt_openat(tmpdir_fd, "append", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	rlt_test_assert_ok(fd);
	assert_int_equal(rlt_write(fd, "hello ", 6, -1), 6);
	assert_int_equal(rlt_write(fd, "world", 5, -1), 5);
	assert_int_equal(rlt_close(fd), 0);
	fd = rlt_openat(tmpdir_fd, "append", O_RDONLY, 0);
	rlt_test_assert_ok(fd);
	char r[32] = {0};
	assert_int_equal(rlt_read(fd, r, sizeof(r), 0), 11);
	assert_string_equal(r, "hello world");
	assert_int_equal(rlt_close(fd), 0);
	return NULL;
}

static void test_write_to_o_append_file_appends(void **state)
{
	rlt_test_run(root_append, NULL);
}

/* ---- readv / writev ---- */

static void *root_vectored(void *arg)
{
	int fd = open_rw("vectored");
	/* Every buffer and the iovec arrays live on this task's stack. */
	unsigned char a[17], b[4096], c[1], d[5000];
	fill(a, sizeof(a), 3, 0);
	fill(b, sizeof(b), 3, 17);
	fill(c, sizeof(c), 3, 17 + 4096);
	fill(d, sizeof(d), 3, 17 + 4096 + 1);
	struct iovec wv[] = {
	    {a, sizeof(a)}, {b, sizeof(b)}, {NULL, 0}, {c, sizeof(c)}, {d, sizeof(d)},
	};
	const size_t total = sizeof(a) + sizeof(b) + sizeof(c) + sizeof(d);
	/* At the current position (0), then again at an explicit offset past
	 * the end, which leaves the position where the first one put it. */
	assert_int_equal(rlt_writev(fd, wv, 5, -1), (ssize_t)total);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), (off_t)total);
	const off_t second = (off_t)total + 100;
	assert_int_equal(rlt_writev(fd, wv, 5, second), (ssize_t)total);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), (off_t)total);

	/* Read the second copy into differently cut buffers, more than the
	 * file holds: the count is short by the rest, which stays untouched. */
	unsigned char r1[1000], r2[3], r3[9000];
	memset(r3, 0xa5, sizeof(r3));
	struct iovec rv[] = {{r1, sizeof(r1)}, {r2, sizeof(r2)}, {r3, sizeof(r3)}};
	assert_int_equal(rlt_readv(fd, rv, 3, second), (ssize_t)total);
	const size_t in_r3 = total - sizeof(r1) - sizeof(r2);
	check(r1, sizeof(r1), 3, 0);
	check(r2, sizeof(r2), 3, sizeof(r1));
	check(r3, in_r3, 3, sizeof(r1) + sizeof(r2));
	for (size_t i = in_r3; i < sizeof(r3); i++)
		assert_int_equal(r3[i], 0xa5);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), (off_t)total);

	/* The gap between the copies reads as zeros. */
	unsigned char gap[100];
	memset(gap, 1, sizeof(gap));
	struct iovec gv[] = {{gap, 40}, {gap + 40, 60}};
	assert_int_equal(rlt_readv(fd, gv, 2, (off_t)total), 100);
	for (size_t i = 0; i < sizeof(gap); i++)
		assert_int_equal(gap[i], 0);

	/* The first copy from the current position, which advances. */
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	unsigned char s1[16], s2[84];
	struct iovec sv[] = {{s1, sizeof(s1)}, {s2, sizeof(s2)}};
	assert_int_equal(rlt_readv(fd, sv, 2, -1), 100);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 100);
	check(s1, sizeof(s1), 3, 0);
	check(s2, sizeof(s2), 3, sizeof(s1));
	assert_int_equal(rlt_readv(fd, sv, 2, -1), 100);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 200);
	check(s1, sizeof(s1), 3, 100);
	check(s2, sizeof(s2), 3, 100 + sizeof(s1));

	/* Zero iovecs: nothing happens, 0. */
	assert_int_equal(rlt_readv(fd, rv, 0, 0), 0);
	assert_int_equal(rlt_writev(fd, wv, 0, 0), 0);
	assert_int_equal(rlt_close(fd), 0);
	return NULL;
}

static void test_readv_writev_with_offsets_and_several_iovecs_on_the_stack(void **state)
{
	rlt_test_run(root_vectored, NULL);
}

static void *root_vectored_bad_args(void *arg)
{
	int fd = open_rw("vec-einval");
	char x[4];
	struct iovec v = {x, sizeof(x)};
	assert_int_equal(rlt_readv(fd, &v, -1, 0), -EINVAL);
	assert_int_equal(rlt_writev(fd, &v, -1, 0), -EINVAL);
	assert_int_equal(rlt_readv(fd, NULL, 1, 0), -EINVAL);
	assert_int_equal(rlt_writev(fd, NULL, 1, 0), -EINVAL);
	assert_int_equal(rlt_readv(fd, &v, IOV_MAX + 1, 0), -EINVAL);
	assert_int_equal(rlt_read(fd, NULL, 1, 0), -EINVAL);
	assert_int_equal(rlt_write(fd, NULL, 1, 0), -EINVAL);
	/* NULL with length 0 is a valid empty transfer. */
	assert_int_equal(rlt_read(fd, NULL, 0, 0), 0);
	assert_int_equal(rlt_write(fd, NULL, 0, 0), 0);
	assert_int_equal(rlt_fsync(fd, 2), -EINVAL);
	struct statx stx;
	assert_int_equal(rlt_statx(tmpdir_fd, NULL, 0, STATX_SIZE, &stx), -EINVAL);
	assert_int_equal(rlt_statx(tmpdir_fd, "vec-einval", 0, STATX_SIZE, NULL), -EINVAL);
	assert_int_equal(rlt_openat(tmpdir_fd, NULL, O_RDONLY, 0), -EINVAL);
	assert_int_equal(rlt_close(fd), 0);
	return NULL;
}

static void test_invalid_arguments_give_einval(void **state)
{
	rlt_test_run(root_vectored_bad_args, NULL);
}

/* ---- fsync ---- */

static void *root_fsync(void *arg)
{
	int fd = open_rw("fsync");
	unsigned char w[8192];
	fill(w, sizeof(w), 4, 0);
	assert_int_equal(rlt_write(fd, w, sizeof(w), 0), (ssize_t)sizeof(w));
	assert_int_equal(rlt_fsync(fd, 0), 0);
	assert_int_equal(rlt_write(fd, w, sizeof(w), sizeof(w)), (ssize_t)sizeof(w));
	assert_int_equal(rlt_fsync(fd, RLT_FSYNC_DATASYNC), 0);
	/* The data is there through another descriptor. */
	int fd2 = openat(tmpdir_fd, "fsync", O_RDONLY | O_CLOEXEC);
	rlt_test_assert_ok(fd2);
	unsigned char r[8192];
	assert_int_equal(pread(fd2, r, sizeof(r), sizeof(w)), (ssize_t)sizeof(r));
	assert_memory_equal(r, w, sizeof(r));
	close(fd2);
	assert_int_equal(rlt_close(fd), 0);
	/* A closed descriptor. */
	assert_int_equal(rlt_fsync(fd, 0), -EBADF);
	assert_int_equal(rlt_fsync(fd, RLT_FSYNC_DATASYNC), -EBADF);
	return NULL;
}

static void test_fsync_and_datasync_succeed_and_bad_fd_gives_ebadf(void **state)
{
	rlt_test_run(root_fsync, NULL);
}

/* ---- statx ---- */

static void *root_statx(void *arg)
{
	int fd = rlt_openat(tmpdir_fd, "statx", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	rlt_test_assert_ok(fd);
	assert_int_equal(fchmod(fd, 0640), 0); /* whatever the umask */
	unsigned char w[12345];
	fill(w, sizeof(w), 5, 0);
	assert_int_equal(rlt_write(fd, w, sizeof(w), 0), (ssize_t)sizeof(w));

	struct statx stx;
	memset(&stx, 0xff, sizeof(stx));
	assert_int_equal(
	    rlt_statx(tmpdir_fd, "statx", 0, STATX_SIZE | STATX_MODE | STATX_INO, &stx), 0);
	assert_true((stx.stx_mask & (STATX_SIZE | STATX_MODE)) == (STATX_SIZE | STATX_MODE));
	assert_int_equal(stx.stx_size, sizeof(w));
	assert_true(S_ISREG(stx.stx_mode));
	assert_int_equal(stx.stx_mode & 07777, 0640);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(stx.stx_ino, st.st_ino);
	assert_int_equal(stx.stx_mode, st.st_mode);

	/* By descriptor (AT_EMPTY_PATH), after growing the file. */
	assert_int_equal(rlt_write(fd, w, 10, sizeof(w)), 10);
	memset(&stx, 0, sizeof(stx));
	assert_int_equal(rlt_statx(fd, "", AT_EMPTY_PATH, STATX_SIZE | STATX_MODE, &stx), 0);
	assert_int_equal(stx.stx_size, sizeof(w) + 10);
	assert_int_equal(stx.stx_mode & 07777, 0640);

	/* The directory, by absolute path. */
	memset(&stx, 0, sizeof(stx));
	assert_int_equal(rlt_statx(AT_FDCWD, tmpdir, 0, STATX_MODE, &stx), 0);
	assert_true(S_ISDIR(stx.stx_mode));

	assert_int_equal(rlt_statx(tmpdir_fd, "no-such-file", 0, STATX_SIZE, &stx), -ENOENT);
	assert_int_equal(rlt_close(fd), 0);
	return NULL;
}

static void test_statx_reports_size_and_mode(void **state)
{
	rlt_test_run(root_statx, NULL);
}

/* ---- close and bad descriptors ---- */

static void *root_double_close(void *arg)
{
	int fd = open_rw("close");
	assert_int_equal(rlt_close(fd), 0);
	/* The descriptor is really gone. */
	assert_int_equal(fcntl(fd, F_GETFD), -1);
	assert_int_equal(errno, EBADF);
	assert_int_equal(rlt_close(fd), -EBADF);
	assert_int_equal(rlt_close(-1), -EBADF);
	return NULL;
}

static void test_double_close_gives_ebadf(void **state)
{
	rlt_test_run(root_double_close, NULL);
}

static void *root_bad_fd(void *arg)
{
	/* An fd number that is surely not open. */
	int bad = (int)sysconf(_SC_OPEN_MAX) - 1;
	assert_int_equal(fcntl(bad, F_GETFD), -1);
	char buf[16];
	struct iovec v = {buf, sizeof(buf)};
	assert_int_equal(rlt_read(bad, buf, sizeof(buf), 0), -EBADF);
	assert_int_equal(rlt_read(bad, buf, sizeof(buf), -1), -EBADF);
	assert_int_equal(rlt_write(bad, buf, sizeof(buf), 0), -EBADF);
	assert_int_equal(rlt_readv(bad, &v, 1, 0), -EBADF);
	assert_int_equal(rlt_writev(bad, &v, 1, 0), -EBADF);
	assert_int_equal(rlt_read(-1, buf, sizeof(buf), 0), -EBADF);

	/* Wrong direction: a read-only descriptor refuses writes, and back. */
	int fd = open_rw("direction");
	assert_int_equal(rlt_close(fd), 0);
	fd = rlt_openat(tmpdir_fd, "direction", O_RDONLY | O_CLOEXEC, 0);
	rlt_test_assert_ok(fd);
	assert_int_equal(rlt_write(fd, "x", 1, 0), -EBADF);
	assert_int_equal(rlt_close(fd), 0);
	fd = rlt_openat(tmpdir_fd, "direction", O_WRONLY | O_CLOEXEC, 0);
	rlt_test_assert_ok(fd);
	assert_int_equal(rlt_read(fd, buf, 1, 0), -EBADF);
	assert_int_equal(rlt_close(fd), 0);

	/* A directory is not readable as a file. */
	assert_int_equal(rlt_read(tmpdir_fd, buf, sizeof(buf), 0), -EISDIR);
	return NULL;
}

static void test_read_on_bad_fd_gives_ebadf(void **state)
{
	rlt_test_run(root_bad_fd, NULL);
}

static void *root_short_read(void *arg)
{
	int fd = open_rw("short");
	unsigned char w[1000], r[4096];
	fill(w, sizeof(w), 6, 0);
	assert_int_equal(rlt_write(fd, w, sizeof(w), 0), (ssize_t)sizeof(w));
	/* Positioned: 1000 bytes remain from 0, 1 from 999, none from 1000 on. */
	assert_int_equal(rlt_read(fd, r, sizeof(r), 0), 1000);
	assert_memory_equal(r, w, 1000);
	assert_int_equal(rlt_read(fd, r, sizeof(r), 999), 1);
	assert_int_equal(r[0], w[999]);
	assert_int_equal(rlt_read(fd, r, sizeof(r), 1000), 0);
	assert_int_equal(rlt_read(fd, r, sizeof(r), 1 << 20), 0);
	/* At the current position: the remainder, then 0, then 0 again. */
	assert_int_equal(lseek(fd, 600, SEEK_SET), 600);
	assert_int_equal(rlt_read(fd, r, sizeof(r), -1), 400);
	assert_memory_equal(r, w + 600, 400);
	assert_int_equal(rlt_read(fd, r, sizeof(r), -1), 0);
	assert_int_equal(rlt_read(fd, r, sizeof(r), -1), 0);
	/* readv too. */
	struct iovec v[] = {{r, 300}, {r + 300, 300}};
	assert_int_equal(rlt_readv(fd, v, 2, 700), 300);
	assert_memory_equal(r, w + 700, 300);
	assert_int_equal(rlt_readv(fd, v, 2, 1000), 0);
	assert_int_equal(rlt_close(fd), 0);
	return NULL;
}

static void test_short_read_at_eof_returns_remaining_count_then_zero(void **state)
{
	rlt_test_run(root_short_read, NULL);
}

/* ---- big buffers on a task stack, while other tasks run ---- */

static void *big_stack_io(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	char name[32];
	snprintf(name, sizeof(name), "bigstack-%u", seed);
	int fd = open_rw(name);
	unsigned char w[64 * 1024], r[64 * 1024];
	fill(w, sizeof(w), seed, 0);
	assert_int_equal(rlt_write(fd, w, sizeof(w), 0), (ssize_t)sizeof(w));
	memset(r, 0, sizeof(r));
	assert_int_equal(rlt_read(fd, r, sizeof(r), 0), (ssize_t)sizeof(r));
	check(r, sizeof(r), seed, 0);
	assert_int_equal(rlt_close(fd), 0);
	assert_int_equal(unlinkat(tmpdir_fd, name, 0), 0);
	return NULL;
}

static void *root_big_stack(void *arg)
{
	rlt_task *t[4];
	for (unsigned i = 0; i < 4; i++) {
		t[i] = rlt_spawn(big_stack_io, (void *)(uintptr_t)(i + 10), NULL);
		assert_non_null(t[i]);
	}
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(rlt_join(t[i], NULL), 0);
	return NULL;
}

static void test_large_buffers_on_task_stacks_of_suspended_tasks(void **state)
{
	rlt_test_run(root_big_stack, NULL);
}

/* ---- many tasks at once ---- */

enum { NTASKS = 64, CHUNK = 1024, NCHUNKS = 16 };

/* Each task: its own file written in chunks out of order with positioned
 * writes, a vectored rewrite of part of it, fsync, statx, read back. */
static void *own_file_worker(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	char name[32];
	snprintf(name, sizeof(name), "many-%u", id);
	int fd = open_rw(name);
	unsigned char buf[CHUNK];
	for (unsigned k = 0; k < NCHUNKS; k++) {
		unsigned c = (k * 7 + id) % NCHUNKS; /* a permutation */
		fill(buf, CHUNK, id, (size_t)c * CHUNK);
		assert_int_equal(rlt_write(fd, buf, CHUNK, (off_t)c * CHUNK), CHUNK);
		if (k % 4 == 0)
			rlt_yield();
	}
	/* Rewrite chunks 2 and 3 through two iovecs with the same content. */
	unsigned char a[CHUNK], b[CHUNK];
	fill(a, CHUNK, id, 2 * CHUNK);
	fill(b, CHUNK, id, 3 * CHUNK);
	struct iovec v[] = {{a, CHUNK}, {b, CHUNK}};
	assert_int_equal(rlt_writev(fd, v, 2, 2 * CHUNK), 2 * CHUNK);
	assert_int_equal(rlt_fsync(fd, id % 2 ? RLT_FSYNC_DATASYNC : 0), 0);
	struct statx stx;
	assert_int_equal(rlt_statx(fd, "", AT_EMPTY_PATH, STATX_SIZE, &stx), 0);
	assert_int_equal(stx.stx_size, CHUNK * NCHUNKS);
	for (unsigned c = 0; c < NCHUNKS; c++) {
		memset(buf, 0, CHUNK);
		assert_int_equal(rlt_read(fd, buf, CHUNK, (off_t)c * CHUNK), CHUNK);
		check(buf, CHUNK, id, (size_t)c * CHUNK);
	}
	assert_int_equal(rlt_read(fd, buf, CHUNK, CHUNK * NCHUNKS), 0);
	assert_int_equal(rlt_close(fd), 0);
	assert_int_equal(unlinkat(tmpdir_fd, name, 0), 0);
	return (void *)(uintptr_t)(id + 1);
}

/* Each task: its own region of one shared file. */
typedef struct shared_arg {
	int fd;
	unsigned id;
} shared_arg;

static void *shared_file_worker(void *arg)
{
	shared_arg *sa = arg;
	off_t base = (off_t)sa->id * CHUNK * 4;
	unsigned char buf[CHUNK * 4];
	fill(buf, sizeof(buf), 99, (size_t)base);
	/* Back to front, one chunk at a time. */
	for (int c = 3; c >= 0; c--)
		assert_int_equal(rlt_write(sa->fd, buf + c * CHUNK, CHUNK, base + c * CHUNK),
				 CHUNK);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(rlt_read(sa->fd, buf, sizeof(buf), base), (ssize_t)sizeof(buf));
	check(buf, sizeof(buf), 99, (size_t)base);
	return NULL;
}

static void *root_many(void *arg)
{
	rlt_task *t[NTASKS];
	for (unsigned i = 0; i < NTASKS; i++) {
		rlt_spawn_opts o = {.stack_size = 64 * 1024};
		t[i] = rlt_spawn(own_file_worker, (void *)(uintptr_t)i, &o);
		assert_non_null(t[i]);
	}
	for (unsigned i = 0; i < NTASKS; i++) {
		void *res = NULL;
		assert_int_equal(rlt_join(t[i], &res), 0);
		assert_int_equal((uintptr_t)res, i + 1);
	}

	int fd = open_rw("shared");
	shared_arg sa[NTASKS];
	for (unsigned i = 0; i < NTASKS; i++) {
		sa[i].fd = fd;
		sa[i].id = i;
		t[i] = rlt_spawn(shared_file_worker, &sa[i], NULL);
		assert_non_null(t[i]);
	}
	for (unsigned i = 0; i < NTASKS; i++)
		assert_int_equal(rlt_join(t[i], NULL), 0);
	/* The whole file, checked by plain pread outside the runtime's path. */
	size_t size = (size_t)NTASKS * CHUNK * 4;
	unsigned char *all = malloc(size);
	assert_non_null(all);
	assert_int_equal(pread(fd, all, size, 0), (ssize_t)size);
	check(all, size, 99, 0);
	free(all);
	assert_int_equal(rlt_close(fd), 0);
	return NULL;
}

static void test_many_tasks_doing_file_io_concurrently(void **state)
{
	rlt_test_run(root_many, NULL);
}

/* ---- outside a task ---- */

static void test_io_outside_a_task_gives_eperm(void **state)
{
	char buf[4];
	struct statx stx;
	assert_int_equal(rlt_read(0, buf, sizeof(buf), 0), -EPERM);
	assert_int_equal(rlt_write(1, buf, sizeof(buf), 0), -EPERM);
	assert_int_equal(rlt_openat(AT_FDCWD, "/", O_RDONLY, 0), -EPERM);
	assert_int_equal(rlt_close(0), -EPERM);
	assert_int_equal(rlt_fsync(0, 0), -EPERM);
	assert_int_equal(rlt_statx(AT_FDCWD, "/", 0, STATX_MODE, &stx), -EPERM);
}

int main(void)
{
	umask(022);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_openat_creates_file_and_o_excl_on_existing_gives_eexist),
	    cmocka_unit_test(test_openat_missing_file_gives_enoent),
	    cmocka_unit_test(test_openat_with_at_fdcwd_and_absolute_path),
	    cmocka_unit_test(test_write_and_read_at_explicit_offsets),
	    cmocka_unit_test(test_read_and_write_at_current_position_advance_it),
	    cmocka_unit_test(test_write_to_o_append_file_appends),
	    cmocka_unit_test(test_readv_writev_with_offsets_and_several_iovecs_on_the_stack),
	    cmocka_unit_test(test_invalid_arguments_give_einval),
	    cmocka_unit_test(test_fsync_and_datasync_succeed_and_bad_fd_gives_ebadf),
	    cmocka_unit_test(test_statx_reports_size_and_mode),
	    cmocka_unit_test(test_double_close_gives_ebadf),
	    cmocka_unit_test(test_read_on_bad_fd_gives_ebadf),
	    cmocka_unit_test(test_short_read_at_eof_returns_remaining_count_then_zero),
	    cmocka_unit_test(test_large_buffers_on_task_stacks_of_suspended_tasks),
	    cmocka_unit_test(test_many_tasks_doing_file_io_concurrently),
	    cmocka_unit_test(test_io_outside_a_task_gives_eperm),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
