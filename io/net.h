/* io/net.c's helpers shared with io/acceptor.c. */
#ifndef RLT_IO_NET_H
#define RLT_IO_NET_H

#include <stdbool.h>

/* TCP_NODELAY on fd; 0 on a socket that has no such option (Unix). */
int rlt__net_nodelay(int fd);
/* Close fd and return rc (a failed accept's or connect's cleanup). */
int rlt__net_fail_close(int fd, int rc);

/* Accept out of descriptors or memory (-EMFILE, -ENFILE, -ENOBUFS,
 * -ENOMEM): nothing to do until something closes, and no event says when.
 * rlt__accept_backoff sleeps 1 ms << *level (at most 1 ms <<
 * RLT__ACCEPT_BACKOFF_STEPS) and steps *level up; the caller resets it to 0
 * on the next connection. Returns 0, or -ECANCELED / -ETIMEDOUT (the sleep
 * was cut short). Suspends. */
#define RLT__ACCEPT_BACKOFF_STEPS 6 /* 64 ms */
bool rlt__accept_starved(int err);
int rlt__accept_backoff(unsigned *level);

#endif
