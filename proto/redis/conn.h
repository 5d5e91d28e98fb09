/* A connection's insides (conn.c), for the pipeline, pool and Pub/Sub files. */
#ifndef RLT_REDIS_CONN_H
#define RLT_REDIS_CONN_H

#include "redis_int.h"

#include <hiredis/hiredis.h>
#include <hiredis/sds.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/uio.h>

/* One queued command (or pipeline): its encoded bytes and the replies it
 * waits for. */
typedef struct rlt__redis_req {
	struct rlt__redis_req *next; /* submit stack, then the in-flight FIFO */
	atomic_int refs;	     /* the issuing task + the connection */
	atomic_bool abandoned;	     /* its task has gone (cancelled, timed out) */
	char *cmd;		     /* an sds, owned until the writer takes it */
	size_t cmd_len;
	size_t n, got; /* replies expected, received */
	rlt_redis_reply **replies;
	rlt_redis_reply *one; /* replies[] when n == 1 */
	int err;	      /* set before the future, read after it */
	rlt_future *fut;
} rlt__redis_req;

struct rlt_redis {
	int fd;
	_Atomic(rlt__redis_req *) submit; /* queued, newest first (lock-free push) */
	rlt_event *wake;		  /* the writer waits here for submit */
	pthread_mutex_t lock;		  /* in_head, in_tail: writer vs reader */
	rlt__redis_req *in_head, *in_tail;
	atomic_int err; /* 0, or why it broke */
	atomic_bool closing;
	rlt_task *reader, *writer;
	rlt__redis_reader rd; /* the reader task's */
	char *rbuf;	      /* the reader task's */
	struct iovec *iov;    /* the writer task's */
	char **bases;	      /* the writer task's: the buffers being sent */
	size_t cap;	      /* of iov and bases */
	rlt_chan *msgs;	      /* Pub/Sub: messages for rlt_redis_pubsub_next */
	uint64_t idle_since;  /* the pool's */
	/* rlt_redis_stats, each written by one task (writer: commands, writes,
	 * dropped; reader: reads, replies, discarded), read by anyone. */
	_Atomic uint64_t st_commands, st_writes, st_dropped;
	_Atomic uint64_t st_reads, st_replies, st_discarded;
};

rlt_redis *rlt__redis_open(const rlt_redis_opts *o, size_t pubsub_backlog);
rlt__redis_req *rlt__redis_req_new(char *cmd, size_t len, size_t nreplies);
void rlt__redis_req_put(rlt__redis_req *q);
int rlt__redis_submit(rlt_redis *c, rlt__redis_req *q);
int rlt__redis_wait(rlt__redis_req *q);
void rlt__redis_break(rlt_redis *c, int err, int first_err);
/* Encode a command as an sds (free with sdsfree). Its length, or -EINVAL,
 * -ENOMEM. */
int rlt__redis_format_argv(char **cmd, int argc, const char *const *argv, const size_t *argvlen);
/* Queue cmd (an sds, taken over, freed in every case) for nreplies replies, wait,
 * store them in out[0..nreplies). 0 or a negative errno. */
int rlt__redis_run(rlt_redis *c, char *cmd, size_t len, size_t nreplies, rlt_redis_reply **out);
/* The reader's look at a reply on a Pub/Sub connection: 0 it was a message
 * (queued), 1 it answers a command, < 0 the connection is done. */
int rlt__redis_pubsub_push(rlt_redis *c, rlt_redis_reply *r);

#endif
