/* The policy registry and the choice of a policy at start-up. */
#include "io/policy.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_POLICIES 32

static const rlt_policy *const shipped[] = {
    &rlt__policy_uring,
    &rlt__policy_sqpoll,
#ifdef RLT_HAVE_EPOLL_POLICY
    &rlt__policy_epoll,
#endif
#ifdef RLT_HAVE_FAULT_POLICY
    &rlt__policy_fault,
#endif
};
#define NSHIPPED (sizeof(shipped) / sizeof(shipped[0]))

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static const rlt_policy *registered[MAX_POLICIES - NSHIPPED];
static size_t nregistered;

void rlt_op_complete(rlt_op *op, int32_t res)
{
	if (op)
		rlt__op_complete(op, res);
}

void rlt_op_deliver(rlt_op *op, int32_t res)
{
	if (op)
		rlt__op_deliver(op, res);
}

static size_t name_len(const char *spec)
{
	const char *colon = strchr(spec, ':');
	return colon ? (size_t)(colon - spec) : strlen(spec);
}

static const rlt_policy *find_locked(const char *name, size_t len)
{
	for (size_t i = 0; i < NSHIPPED; i++)
		if (strlen(shipped[i]->name) == len && memcmp(shipped[i]->name, name, len) == 0)
			return shipped[i];
	for (size_t i = 0; i < nregistered; i++)
		if (strlen(registered[i]->name) == len &&
		    memcmp(registered[i]->name, name, len) == 0)
			return registered[i];
	return NULL;
}

const rlt_policy *rlt_policy_find(const char *name)
{
	if (!name)
		return NULL;
	pthread_mutex_lock(&reg_lock);
	const rlt_policy *p = find_locked(name, name_len(name));
	pthread_mutex_unlock(&reg_lock);
	return p;
}

int rlt_policy_register(const rlt_policy *p)
{
	if (!p || !p->name || !p->name[0] || strchr(p->name, ':') || !p->init || !p->fini ||
	    !p->submit || !p->poll || !p->wake || !p->cancel || !p->cancel_all)
		return -EINVAL;
	int rc = 0;
	pthread_mutex_lock(&reg_lock);
	if (find_locked(p->name, strlen(p->name)))
		rc = -EEXIST;
	else if (nregistered == sizeof(registered) / sizeof(registered[0]))
		rc = -ENOSPC;
	else
		registered[nregistered++] = p;
	pthread_mutex_unlock(&reg_lock);
	return rc;
}

size_t rlt_policy_list(const rlt_policy **out, size_t max)
{
	pthread_mutex_lock(&reg_lock);
	size_t n = 0;
	for (size_t i = 0; i < NSHIPPED; i++, n++)
		if (out && n < max)
			out[n] = shipped[i];
	for (size_t i = 0; i < nregistered; i++, n++)
		if (out && n < max)
			out[n] = registered[i];
	pthread_mutex_unlock(&reg_lock);
	return n;
}

static int probe(const rlt_policy *p, const char *options)
{
	return p->probe ? p->probe(options) : 0;
}

int rlt_policy_probe(const char *spec)
{
	if (!spec)
		return -EINVAL;
	const rlt_policy *p = rlt_policy_find(spec);
	if (!p)
		return -ENOENT;
	const char *colon = strchr(spec, ':');
	return probe(p, colon ? colon + 1 : "");
}

/* Why an io_uring policy cannot start, beyond errno: the sysctl. */
static void io_uring_sysctl_note(char *buf, size_t len)
{
	buf[0] = '\0';
	int fd = open("/proc/sys/kernel/io_uring_disabled", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	char v[8] = {0};
	ssize_t n = read(fd, v, sizeof(v) - 1);
	close(fd);
	if (n > 0 && v[0] != '0')
		snprintf(buf, len, ", kernel.io_uring_disabled=%c", v[0]);
}

/* io_uring_setup's -ENOMEM: without CAP_IPC_LOCK the kernel charges the
 * rings to RLIMIT_MEMLOCK (still on Linux 6.18): name the limit. */
static void io_uring_memlock_note(char *buf, size_t len)
{
	struct rlimit rl;
	if (len == 0 || getrlimit(RLIMIT_MEMLOCK, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return;
	snprintf(buf, len,
		 ", RLIMIT_MEMLOCK is %llu KiB: the rings count against it without "
		 "CAP_IPC_LOCK (raise it: ulimit -l, LimitMEMLOCK=)",
		 (unsigned long long)rl.rlim_cur / 1024);
}

#ifndef RLT_POLICY_DIRECT /* (which never falls back) */
static void say_once(const char *fmt, const char *a, const char *b, const char *c, const char *d)
{
	/* Once per process: an operator needs to know, not to be told per run. */
	static atomic_bool said;
	if (atomic_exchange(&said, true))
		return;
	fprintf(stderr, fmt, a, b, c, d);
}
#endif

static int set_choice(rlt__policy_choice *out, const rlt_policy *p, const char *options)
{
	out->policy = p;
	if (strlen(options) >= sizeof(out->options))
		return -ENAMETOOLONG;
	strcpy(out->options, options);
	snprintf(out->spec, sizeof(out->spec), "%s%s%s", p->name, options[0] ? ":" : "", options);
	return 0;
}

int rlt__policy_choose(const rlt_config *cfg, const rlt__settings *env, rlt__policy_choice *out)
{
	memset(out, 0, sizeof(*out));
	const char *spec = env->policy;
	if (!rlt__settings_given(env, RLT__CFG_POLICY))
		spec = cfg && cfg->policy && cfg->policy[0] ? cfg->policy : "io_uring";
	bool strict = cfg && cfg->policy_strict;
	if (rlt__settings_given(env, RLT__CFG_POLICY_STRICT))
		strict = env->v[RLT__CFG_POLICY_STRICT] != 0;

	const rlt_policy *p = rlt_policy_find(spec);
	if (!p) {
		fprintf(
		    stderr,
		    "ringlet: no loop policy named \"%.*s\" (tools/ringlet policies lists them)\n",
		    (int)name_len(spec), spec);
		return -ENOENT;
	}
#ifdef RLT_POLICY_DIRECT
	if (p != &rlt__policy_uring) {
		fprintf(stderr,
			"ringlet: this build calls the io_uring policy directly "
			"(RINGLET_POLICY_DIRECT): \"%s\" is not available\n",
			spec);
		return -ENOTSUP;
	}
#endif
	const char *colon = strchr(spec, ':');
	const char *options = colon ? colon + 1 : "";
	int rc = set_choice(out, p, options);
	if (rc < 0) {
		fprintf(stderr, "ringlet: loop policy options too long: \"%s\"\n", spec);
		return rc;
	}
	rc = probe(p, options);
	if (rc == 0)
		return 0;

	char note[192], err[96];
	note[0] = '\0';
	bool uring = strncmp(p->name, "io_uring", 8) == 0;
	if (uring)
		io_uring_sysctl_note(note, sizeof(note));
	if (uring && rc == -ENOMEM)
		io_uring_memlock_note(note + strlen(note), sizeof(note) - strlen(note));
	/* Name the failing call where it is known. */
	snprintf(err, sizeof(err), "%s%s",
		 uring && rc != -EINVAL && rc != -EBUSY ? "io_uring_setup: " : "", strerror(-rc));
	/* Fall back only when the kernel refuses the mechanism itself
	 * (seccomp, sysctl, no io_uring, no memory for rings): a bad option
	 * or an unknown name is the caller's error, and stays one. */
	bool refused =
	    rc == -EPERM || rc == -EACCES || rc == -ENOSYS || rc == -ENOMEM || rc == -EOPNOTSUPP;
	const rlt_policy *fb = rlt_policy_find("epoll");
#ifdef RLT_POLICY_DIRECT
	/* Strict by construction: this build's hot path calls the io_uring
	 * policy's functions directly, so no other loop can run under it. */
	fprintf(stderr,
		"ringlet: loop policy \"%s\" cannot start: %s%s (this build calls io_uring "
		"directly, RINGLET_POLICY_DIRECT: no fallback to epoll)\n",
		out->spec, err, note);
	(void)refused;
	(void)fb;
	(void)strict;
	return rc;
#else
	if (strict || !refused || !fb || fb == p) {
		fprintf(stderr, "ringlet: loop policy \"%s\" cannot start: %s%s%s\n", out->spec,
			err, note, strict && refused ? " (strict: no fallback)" : "");
		return rc;
	}
	int frc = probe(fb, "");
	if (frc < 0) {
		fprintf(stderr,
			"ringlet: loop policy \"%s\" cannot start (%s%s), nor can \"epoll\" (%s)\n",
			out->spec, err, note, strerror(-frc));
		return rc;
	}
	say_once("ringlet: loop policy \"%s\" cannot start (%s%s); falling back to \"%s\"\n",
		 out->spec, err, note, fb->name);
	set_choice(out, fb, "");
	out->fell_back = true;
	return 0;
#endif
}

const char *rlt_op_name(unsigned code)
{
	static const char *const names[RLT_OP_COUNT] = {
	    [RLT_OP_READ] = "read",
	    [RLT_OP_WRITE] = "write",
	    [RLT_OP_READV] = "readv",
	    [RLT_OP_WRITEV] = "writev",
	    [RLT_OP_OPENAT] = "openat",
	    [RLT_OP_CLOSE] = "close",
	    [RLT_OP_FSYNC] = "fsync",
	    [RLT_OP_STATX] = "statx",
	    [RLT_OP_ACCEPT] = "accept",
	    [RLT_OP_CONNECT] = "connect",
	    [RLT_OP_RECV] = "recv",
	    [RLT_OP_SEND] = "send",
	    [RLT_OP_SHUTDOWN] = "shutdown",
	    [RLT_OP_POLL] = "poll",
	    [RLT_OP_WAITID] = "waitid",
	    [RLT_OP_SENDMSG] = "sendmsg",
	    [RLT_OP_RECVMSG] = "recvmsg",
	    [RLT_OP_ACCEPT_MULTI] = "accept-multishot",
	    [RLT_OP_RECV_MULTI] = "recv-multishot",
	    [RLT_OP_SPLICE] = "splice",
	};
	return code < RLT_OP_COUNT && names[code] ? names[code] : "?";
}
