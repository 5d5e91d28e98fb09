/*
 * Random 4 KiB reads from a file in the page cache, on one core.
 *
 *   fileio.pread.qd1   blocking pread(2) in a loop: the floor a runtime
 *                      adds its cost to
 *   fileio.rlt.qd1     one ringlet task doing rlt_read() in a loop (one
 *                      worker)
 *   fileio.rlt.qd32    32 tasks on one worker, each doing rlt_read() in a
 *                      loop: 32 reads in flight, batched into one
 *                      io_uring_enter per loop turn
 *
 * All in thousands of reads per second (kiops), over a fixed time per
 * repetition (1 s; 0.3 s with -q). bench/suite.sh holds these against fio
 * (--ioengine=io_uring, the same file and depth, one job) and runs this
 * program on one CPU.
 *
 *   bench_fileio [-f FILE] [-s MIB] [-r REPS] [-q] [-m METRIC]
 *
 * FILE (default fileio.dat in the current directory) is made SIZE MiB
 * (default 128) of random bytes if it is shorter, then read once whole so
 * that it is in the page cache.
 */
#include "bench_rt.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLOCK 4096

typedef struct fileio {
	int fd;
	uint64_t blocks; /* the file's size in BLOCKs */
	uint64_t dur_ns;
	const bench_opts *o;
} fileio;

typedef struct reader {
	fileio *f;
	uint64_t end, seed, ops;
	int err;
} reader;

static off_t random_block(reader *r)
{
	return (off_t)(bench_rand(&r->seed) % r->f->blocks) * BLOCK;
}

static double pread_round(fileio *f)
{
	char buf[BLOCK];
	reader r = {.f = f, .seed = 0x9E3779B97F4A7C15ull};
	uint64_t t0 = bench_wall_ns(), now = t0;
	r.end = t0 + f->dur_ns;
	while (now < r.end) {
		/* 16 reads between clock reads: the clock costs ~20 ns. */
		for (int k = 0; k < 16; k++)
			if (pread(f->fd, buf, BLOCK, random_block(&r)) != BLOCK)
				die("pread", errno ? errno : EIO);
		r.ops += 16;
		now = bench_wall_ns();
	}
	return (double)r.ops / ((double)(now - t0) / 1e9) / 1e3;
}

static void *read_task(void *arg)
{
	reader *r = arg;
	char buf[BLOCK];
	while (rlt_now() < r->end) {
		for (int k = 0; k < 16; k++) {
			ssize_t n = rlt_read(r->f->fd, buf, BLOCK, random_block(r));
			if (n != BLOCK) {
				r->err = n < 0 ? (int)-n : EIO;
				return NULL;
			}
		}
		r->ops += 16;
	}
	return NULL;
}

/* depth tasks reading for dur_ns; kiops over the time the last one took. */
static double rlt_round(fileio *f, unsigned depth)
{
	reader rs[32];
	rlt_task *ts[32];
	uint64_t t0 = rlt_now();
	for (unsigned i = 0; i < depth; i++) {
		rs[i] = (reader){
		    .f = f, .end = t0 + f->dur_ns, .seed = 0x9E3779B97F4A7C15ull * (i + 1)};
		ts[i] = rlt_spawn(read_task, &rs[i], NULL);
		if (!ts[i])
			die("rlt_spawn", errno);
	}
	uint64_t ops = 0;
	for (unsigned i = 0; i < depth; i++) {
		rlt_join(ts[i], NULL);
		if (rs[i].err)
			die("rlt_read", rs[i].err);
		ops += rs[i].ops;
	}
	return (double)ops / ((double)(rlt_now() - t0) / 1e9) / 1e3;
}

static void *root(void *arg)
{
	fileio *f = arg;
	static const unsigned depths[] = {1, 32};
	for (size_t d = 0; d < 2; d++) {
		bench_series s;
		bench_series_init(&s, depths[d] == 1 ? "fileio.rlt.qd1" : "fileio.rlt.qd32",
				  "kiops");
		if (!bench_want(f->o, s.name))
			continue;
		for (int i = 0; i < f->o->reps; i++)
			bench_record(&s, rlt_round(f, depths[d]));
		bench_print_median(&s);
	}
	return NULL;
}

/* Make path at least mib MiB of random bytes, then read it whole. */
static int prepare(const char *path, uint64_t mib, uint64_t *blocks)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		die(path, errno);
	struct stat st;
	if (fstat(fd, &st) < 0)
		die("fstat", errno);
	uint64_t want = mib << 20;
	static char buf[1 << 20];
	uint64_t seed = 12345;
	if ((uint64_t)st.st_size < want) {
		for (uint64_t off = 0; off < want; off += sizeof(buf)) {
			for (size_t i = 0; i < sizeof(buf); i += 8) {
				uint64_t v = bench_rand(&seed);
				memcpy(buf + i, &v, 8);
			}
			if (pwrite(fd, buf, sizeof(buf), (off_t)off) != (ssize_t)sizeof(buf))
				die("pwrite", errno ? errno : EIO);
		}
		st.st_size = (off_t)want;
	}
	for (off_t off = 0; off < st.st_size; off += (off_t)sizeof(buf))
		if (pread(fd, buf, sizeof(buf), off) < 0)
			die("pread", errno);
	*blocks = (uint64_t)st.st_size / BLOCK;
	return fd;
}

int main(int argc, char **argv)
{
	/* Our own flags first; the rest are bench_common's. */
	const char *path = "fileio.dat";
	uint64_t mib = 128;
	int n = 1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-f") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
			mib = strtoull(argv[++i], NULL, 10);
		else
			argv[n++] = argv[i];
	}
	if (mib == 0)
		bench_usage(argv[0]);
	bench_opts o = bench_parse(n, argv);
	fileio f = {.dur_ns = o.quick ? 300000000ull : 1000000000ull, .o = &o};
	f.fd = prepare(path, mib, &f.blocks);

	bench_series s;
	bench_series_init(&s, "fileio.pread.qd1", "kiops");
	if (bench_want(&o, s.name)) {
		for (int i = 0; i < o.reps; i++)
			bench_record(&s, pread_round(&f));
		bench_print_median(&s);
	}
	bench_run(1, root, &f);
	close(f.fd);
	return 0;
}
