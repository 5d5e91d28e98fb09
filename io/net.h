/* io/net.c's helpers shared with io/acceptor.c. */
#ifndef RLT_IO_NET_H
#define RLT_IO_NET_H

/* TCP_NODELAY on fd; 0 on a socket that has no such option (Unix). */
int rlt__net_nodelay(int fd);
/* Close fd and return rc (a failed accept's or connect's cleanup). */
int rlt__net_fail_close(int fd, int rc);

#endif
