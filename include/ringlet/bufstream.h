#ifndef RINGLET_BUFSTREAM_H
#define RINGLET_BUFSTREAM_H

#include "common.h"

#include <sys/types.h>

RLT_EXTERN_C_BEGIN

/*
 * Buffered streams over a file descriptor: asyncio's StreamReader and
 * StreamWriter. A reader turns whatever pieces the kernel hands over
 * (a line sent in twenty sends, or twenty lines in one) into lines,
 * delimited records or exact counts; a writer gathers small writes into
 * one system call.
 *
 * The fd (a socket, a pipe, a tty) stays the caller's: neither frees nor
 * closes it, and a reader and a writer may share one (a connection is
 * typically both). On a socket they use rlt_recv/rlt_send (MSG_NOSIGNAL:
 * a closed peer is -EPIPE, not SIGPIPE), elsewhere rlt_read/rlt_write.
 * Short counts, -EINTR and -EAGAIN (O_NONBLOCK fds) are handled inside.
 *
 * A reader or writer belongs to one task at a time (no locking); it may be
 * handed to another task between calls. The calls that read or write
 * suspend the calling task and return -EPERM outside a task.
 *
 * End of stream, for the reader: 0 from every call once the peer has
 * closed (or shut down its side) and the buffer is empty. A record the
 * end of stream cut short is -EPIPE from rlt_reader_readuntil (the bytes
 * stay buffered, for rlt_reader_read), a count short of n from
 * rlt_reader_readexactly (asyncio's IncompleteReadError), and the partial
 * last line from rlt_reader_readline (as asyncio's readline).
 */

typedef struct rlt_reader rlt_reader;
typedef struct rlt_writer rlt_writer;

/* asyncio's default limit. */
#define RLT_STREAM_LIMIT_DEFAULT (64 * 1024)

/*
 * A reader of fd. limit (0: RLT_STREAM_LIMIT_DEFAULT) is the longest line
 * or record, delimiter included, that readline/readuntil will buffer; it is
 * also the most the reader ever allocates (it starts at 8 KiB, or limit if
 * smaller, and doubles as a long record needs). Does not suspend; one
 * fstat(2). NULL with errno EINVAL (fd < 0), EBADF, ENOMEM.
 */
RLT_API rlt_reader *rlt_reader_new(int fd, size_t limit);

/* Free r and whatever it had buffered. Does not close the fd. NULL is ok. */
RLT_API void rlt_reader_free(rlt_reader *r);

/*
 * Read up to and including the delimiter delim (dlen bytes, 1 or more).
 * *out points at the record inside r's buffer: valid until the next call
 * on r. Returns the record's length (>= dlen), or
 *   0          end of stream, nothing buffered
 *   -EPIPE     end of stream with a partial record: it stays buffered
 *              (rlt_reader_buffered says how much; rlt_reader_read takes it)
 *   -EMSGSIZE  no delimiter in the first limit bytes: nothing is consumed,
 *              the stream stays usable (rlt_reader_read takes the bytes, in
 *              pieces, and reading goes on after them), or give up on it
 *   -EINVAL    NULL r, delim or out, or dlen 0 or greater than the limit
 *   the read's negative errno (-ECONNRESET, -EBADF, ...): the bytes
 *              buffered so far stay buffered
 */
RLT_API ssize_t rlt_reader_readuntil(rlt_reader *r, const void *delim, size_t dlen,
				     const char **out);

/*
 * rlt_reader_readuntil(r, "\n", 1, out), except at end of stream: a last
 * line without '\n' is returned as it is (> 0, not ending in '\n'), then
 * 0. The line is not NUL-terminated; "\r\n" is left to the caller.
 * -EMSGSIZE and other errors as rlt_reader_readuntil.
 */
RLT_API ssize_t rlt_reader_readline(rlt_reader *r, const char **out);

/*
 * Read exactly n bytes into buf (n may exceed the limit: large reads go
 * straight into buf). Returns n, or a count short of n (0 included) only
 * at end of stream, with those bytes in buf (IncompleteReadError's
 * partial). A negative errno on failure (-EINVAL for NULL r, or NULL buf
 * with n > 0); bytes consumed before an error are in buf but not counted:
 * treat the stream as broken.
 */
RLT_API ssize_t rlt_reader_readexactly(rlt_reader *r, void *buf, size_t n);

/*
 * Read what is there, up to len bytes: the buffered bytes if any, else one
 * read from the fd (asyncio's read(n)). Returns the count (> 0), 0 at end
 * of stream (or for len 0), or a negative errno.
 */
RLT_API ssize_t rlt_reader_read(rlt_reader *r, void *buf, size_t len);

/* Bytes buffered and not yet returned. */
RLT_API size_t rlt_reader_buffered(const rlt_reader *r);

/* Whether the end of stream was seen and nothing is buffered (asyncio's
 * at_eof()). */
RLT_API bool rlt_reader_at_eof(const rlt_reader *r);

/*
 * A writer to fd with a buffer of bufsize bytes (0: 64 KiB), allocated
 * here. Does not suspend; one fstat(2). NULL with errno EINVAL (fd < 0),
 * EBADF, ENOMEM.
 */
RLT_API rlt_writer *rlt_writer_new(int fd, size_t bufsize);

/*
 * Queue len bytes. What fits in the buffer is copied and nothing is sent
 * (no system call); when it does not fit, the buffer is sent first, then
 * the new bytes are buffered, or sent at once if they are at least a
 * buffer's worth. Returns len, or a negative errno (-EINVAL for NULL w,
 * or NULL buf with len > 0).
 *
 * A failed send (-EPIPE, -ECONNRESET, ...) breaks the writer: how much
 * got out is unknown, and every later write, flush and close returns the
 * same error.
 */
RLT_API ssize_t rlt_writer_write(rlt_writer *w, const void *buf, size_t len);

/* Send everything buffered (asyncio's drain()). 0 or a negative errno. */
RLT_API int rlt_writer_flush(rlt_writer *w);

/* Bytes buffered and not yet sent. */
RLT_API size_t rlt_writer_buffered(const rlt_writer *w);

/*
 * Flush, then free w (whatever the flush returned). Does not close the fd:
 * rlt_shutdown(fd, SHUT_WR) tells the peer there is no more, rlt_close()
 * ends it. Returns the flush's result. NULL: -EINVAL.
 */
RLT_API int rlt_writer_close(rlt_writer *w);

/* Free w without flushing: what is buffered is dropped. NULL is ok. */
RLT_API void rlt_writer_free(rlt_writer *w);

RLT_EXTERN_C_END

#endif
