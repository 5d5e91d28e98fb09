/* The RINGLET_* settings table and its grammar (runtime/config.h). */
#include "runtime/config.h"

#include "ringlet/runtime.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NS_US 1000ull
#define NS_MS 1000000ull
#define NS_S  1000000000ull

const rlt__cfg_var rlt__cfg_vars[RLT__CFG_N] = {
    [RLT__CFG_WORKERS] = {"RINGLET_WORKERS", RLT__CFG_COUNT, 0, "one per CPU", 1, RLT_MAX_WORKERS,
			  0, NULL, "worker threads, each with its own ring and run queue"},
    [RLT__CFG_PIN] = {"RINGLET_PIN", RLT__CFG_BOOL, 0, "0", 0, 1, 0, NULL,
		      "pin worker i to the i-th CPU the process may use"},
    [RLT__CFG_STEAL] = {"RINGLET_STEAL", RLT__CFG_BOOL, 1, "1", 0, 1, 0, NULL,
			"idle workers steal tasks (0: thread-per-core)"},
    [RLT__CFG_STACK_SIZE] = {"RINGLET_STACK_SIZE", RLT__CFG_SIZE, RLT_DEFAULT_STACK_SIZE, "64k",
			     RLT_MIN_STACK_SIZE, RLT_MAX_STACK_SIZE, 0, NULL,
			     "default task stack (rounded up to the page size)"},
    [RLT__CFG_STACK_CACHE] = {"RINGLET_STACK_CACHE", RLT__CFG_COUNT, 256, "256", 0, 1000000, 0,
			      NULL,
			      "free stacks a worker keeps per size; an idle worker frees the rest"},
    [RLT__CFG_POLICY] = {"RINGLET_POLICY", RLT__CFG_STRING, 0, "io_uring", 0, 0, 0, NULL,
			 "loop policy, name[:options] (tools/ringlet policies)"},
    [RLT__CFG_POLICY_STRICT] = {"RINGLET_POLICY_STRICT", RLT__CFG_BOOL, 0, "0", 0, 1, 0, NULL,
				"fail instead of falling back to epoll"},
    [RLT__CFG_SPIN_US] = {"RINGLET_SPIN_US", RLT__CFG_DURATION, RLT_DEFAULT_SPIN_US *NS_US, "20us",
			  0, NS_S, NS_US, NULL,
			  "how long a worker out of work looks before it sleeps (0: never; "
			  "adaptive: at most)"},
    [RLT__CFG_SPIN] = {"RINGLET_SPIN", RLT__CFG_CHOICE, 0, "adaptive", 0, 0, 0, "adaptive|fixed",
		       "spin only while events come soon enough (fixed: always RINGLET_SPIN_US)"},
    [RLT__CFG_BLOCKING_THREADS] = {"RINGLET_BLOCKING_THREADS", RLT__CFG_COUNT, 512, "512", 1,
				   100000, 0, NULL, "ceiling of the default blocking pool"},
    [RLT__CFG_POOL_WAKE] = {"RINGLET_POOL_WAKE", RLT__CFG_CHOICE, 0, "msg_ring", 0, 0, 0,
			    "msg_ring|eventfd", "how a pool thread wakes a parked io_uring worker"},
    [RLT__CFG_DEBUG] = {"RINGLET_DEBUG", RLT__CFG_BOOL, 0, "0", 0, 1, 0, NULL,
			"debug mode: slow-task reports, SIGQUIT task dump"},
    [RLT__CFG_SLOW_MS] = {"RINGLET_SLOW_MS", RLT__CFG_DURATION, 100 * NS_MS, "100ms", NS_MS,
			  3600 * NS_S, NS_MS, NULL,
			  "report a worker held longer by one task (watchdog, while held)"},
    [RLT__CFG_SHUTDOWN_MS] = {"RINGLET_SHUTDOWN_MS", RLT__CFG_DURATION, 1000 * NS_MS, "1s", 0,
			      3600 * NS_S, NS_MS, NULL,
			      "grace for tasks cancelled when the main task returns (0: none)"},
    [RLT__CFG_CANCEL_FENCE] = {"RINGLET_CANCEL_FENCE", RLT__CFG_CHOICE, 0, "membarrier", 0, 0, 0,
			       "membarrier|xchg",
			       "cancellation's barrier (xchg: the fallback, for tests)"},
    [RLT__CFG_FAULT_REPORT] = {"RINGLET_FAULT_REPORT", RLT__CFG_BOOL, 0, "0", 0, 1, 0, NULL,
			       "fault policy: print what was injected"},
    [RLT__CFG_STATS] = {"RINGLET_STATS", RLT__CFG_BOOL, 0, "0", 0, 1, 0, NULL,
			"print the runtime's counters on stderr when rlt_run returns"},
    [RLT__CFG_RXQ] = {"RINGLET_RXQ", RLT__CFG_BOOL, 1, "1", 0, 1, 0, NULL,
		      "receive queues (rlt_rxq) use one multishot receive where the policy can "
		      "(0: rlt_recv, to measure one against the other)"},
    [RLT__CFG_TIMING] = {"RINGLET_TIMING", RLT__CFG_CHOICE, 0, "auto", 0, 0, 0, "auto|1|0",
			 "time every task run (histogram, time held; auto: with STATS, "
			 "or from the console's first top)"},
    [RLT__CFG_CONTROL] = {"RINGLET_CONTROL", RLT__CFG_STRING, 0, "-", 0, 0, 0, NULL,
			  "serve the console on this Unix socket (/path, @name; @: "
			  "@ringlet-<pid>)"},
    [RLT__CFG_TRACE] = {"RINGLET_TRACE", RLT__CFG_STRING, 0, "-", 0, 0, 0, NULL,
			"write a Chrome trace of the last events here at exit"},
    [RLT__CFG_TRACE_SIZE] = {"RINGLET_TRACE_SIZE", RLT__CFG_SIZE, 4u << 20, "4m", 64u << 10,
			     1ull << 30, 0, NULL, "trace ring buffer per worker"},
};

char *rlt__settings_str(rlt__settings *s, enum rlt__cfg_id id, size_t *cap)
{
	switch (id) {
	case RLT__CFG_POLICY:
		*cap = sizeof(s->policy);
		return s->policy;
	case RLT__CFG_CONTROL:
		*cap = sizeof(s->control);
		return s->control;
	case RLT__CFG_TRACE:
		*cap = sizeof(s->trace);
		return s->trace;
	default:
		*cap = 0;
		return NULL;
	}
}

static int parse_u64(const char *s, uint64_t *out, const char **end)
{
	if (*s < '0' || *s > '9')
		return -EINVAL;
	uint64_t v = 0;
	for (; *s >= '0' && *s <= '9'; s++) {
		uint64_t d = (uint64_t)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*out = v;
	*end = s;
	return 0;
}

static int mul(uint64_t v, uint64_t m, uint64_t *out)
{
	if (m && v > UINT64_MAX / m)
		return -EINVAL;
	*out = v * m;
	return 0;
}

static int parse_bool(const char *s, uint64_t *out)
{
	static const char *const yes[] = {"1", "yes", "true", "on"};
	static const char *const no[] = {"0", "no", "false", "off"};
	for (size_t i = 0; i < 4; i++) {
		if (!strcasecmp(s, yes[i]))
			return *out = 1, 0;
		if (!strcasecmp(s, no[i]))
			return *out = 0, 0;
	}
	return -EINVAL;
}

static int parse_size(const char *s, uint64_t *out)
{
	const char *p;
	uint64_t v;
	if (parse_u64(s, &v, &p) < 0)
		return -EINVAL;
	uint64_t m = 1;
	switch (*p) {
	case 'k':
	case 'K':
		m = 1ull << 10, p++;
		break;
	case 'm':
	case 'M':
		m = 1ull << 20, p++;
		break;
	case 'g':
	case 'G':
		m = 1ull << 30, p++;
		break;
	}
	if (m > 1 && (*p == 'i' || *p == 'I'))
		p++;
	if (*p == 'b' || *p == 'B')
		p++;
	return *p ? -EINVAL : mul(v, m, out);
}

static int parse_duration(const char *s, uint64_t unit, uint64_t *out)
{
	const char *p;
	uint64_t v;
	if (parse_u64(s, &v, &p) < 0)
		return -EINVAL;
	uint64_t m;
	if (!*p)
		m = unit;
	else if (!strcmp(p, "ns"))
		m = 1;
	else if (!strcmp(p, "us"))
		m = NS_US;
	else if (!strcmp(p, "ms"))
		m = NS_MS;
	else if (!strcmp(p, "s"))
		m = NS_S;
	else
		return -EINVAL;
	return mul(v, m, out);
}

static int parse_choice(const char *s, const char *choices, uint64_t *out)
{
	size_t len = strlen(s);
	uint64_t i = 0;
	for (const char *c = choices; *c; i++) {
		const char *bar = strchr(c, '|');
		size_t n = bar ? (size_t)(bar - c) : strlen(c);
		if (n == len && !strncmp(c, s, n))
			return *out = i, 0;
		if (!bar)
			break;
		c = bar + 1;
	}
	return -EINVAL;
}

int rlt__cfg_parse(const rlt__cfg_var *var, const char *text, uint64_t *out)
{
	uint64_t v = 0;
	int rc;
	switch (var->kind) {
	case RLT__CFG_BOOL:
		return parse_bool(text, out);
	case RLT__CFG_COUNT: {
		const char *end;
		rc = parse_u64(text, &v, &end);
		if (rc == 0 && *end)
			rc = -EINVAL;
		break;
	}
	case RLT__CFG_SIZE:
		rc = parse_size(text, &v);
		break;
	case RLT__CFG_DURATION:
		rc = parse_duration(text, var->unit, &v);
		break;
	case RLT__CFG_CHOICE:
		return parse_choice(text, var->choices, out);
	case RLT__CFG_STRING:
		*out = 0;
		return 0;
	default:
		return -EINVAL;
	}
	if (rc < 0 || v < var->min || v > var->max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* "a size from 8k to 1g" */
static void format_amount(char *buf, size_t len, rlt__cfg_kind kind, uint64_t v)
{
	if (v == 0) {
		snprintf(buf, len, "0");
	} else if (kind == RLT__CFG_SIZE) {
		if (v && v % (1ull << 30) == 0)
			snprintf(buf, len, "%llug", (unsigned long long)(v >> 30));
		else if (v && v % (1ull << 20) == 0)
			snprintf(buf, len, "%llum", (unsigned long long)(v >> 20));
		else if (v && v % (1ull << 10) == 0)
			snprintf(buf, len, "%lluk", (unsigned long long)(v >> 10));
		else
			snprintf(buf, len, "%llu", (unsigned long long)v);
	} else if (kind == RLT__CFG_DURATION) {
		if (v && v % NS_S == 0)
			snprintf(buf, len, "%llus", (unsigned long long)(v / NS_S));
		else if (v && v % NS_MS == 0)
			snprintf(buf, len, "%llums", (unsigned long long)(v / NS_MS));
		else if (v && v % NS_US == 0)
			snprintf(buf, len, "%lluus", (unsigned long long)(v / NS_US));
		else
			snprintf(buf, len, "%lluns", (unsigned long long)v);
	} else {
		snprintf(buf, len, "%llu", (unsigned long long)v);
	}
}

/* What var accepts, in words. */
static void describe(const rlt__cfg_var *var, char *buf, size_t len)
{
	char lo[32], hi[32];
	format_amount(lo, sizeof(lo), var->kind, var->min);
	format_amount(hi, sizeof(hi), var->kind, var->max);
	switch (var->kind) {
	case RLT__CFG_BOOL:
		snprintf(buf, len, "1 or 0 (yes/no, true/false, on/off)");
		break;
	case RLT__CFG_COUNT:
		snprintf(buf, len, "a number from %s to %s", lo, hi);
		break;
	case RLT__CFG_SIZE:
		snprintf(buf, len, "a size from %s to %s (bytes, or with k, m, g: 64k, 1m)", lo,
			 hi);
		break;
	case RLT__CFG_DURATION: {
		char u[32];
		format_amount(u, sizeof(u), var->kind, var->unit);
		snprintf(buf, len,
			 "a duration from %s to %s (with ns, us, ms or s: 20us, 100ms; a bare "
			 "number is in %s)",
			 lo, hi, u[0] == '1' ? u + 1 : u);
		break;
	}
	case RLT__CFG_CHOICE:
		snprintf(buf, len, "one of: %s", var->choices);
		break;
	default:
		snprintf(buf, len, "any text");
	}
}

void rlt__settings_defaults(rlt__settings *s)
{
	memset(s, 0, sizeof(*s));
	for (int i = 0; i < RLT__CFG_N; i++)
		s->v[i] = rlt__cfg_vars[i].def;
}

int rlt__settings_read(rlt__settings *s, const char *(*get)(const char *name), char *err,
		       size_t errlen)
{
	rlt__settings_defaults(s);
	for (int i = 0; i < RLT__CFG_N; i++) {
		const rlt__cfg_var *var = &rlt__cfg_vars[i];
		const char *text = get(var->name);
		if (!text || !*text)
			continue;
		uint64_t v;
		int rc = rlt__cfg_parse(var, text, &v);
		size_t cap = 0;
		char *str = rlt__settings_str(s, (enum rlt__cfg_id)i, &cap);
		if (rc == 0 && var->kind == RLT__CFG_STRING && (!str || strlen(text) >= cap))
			rc = -EINVAL;
		if (rc < 0) {
			char what[256];
			describe(var, what, sizeof(what));
			snprintf(err, errlen, "%s=%s is not %s", var->name, text, what);
			return rc;
		}
		if (var->kind == RLT__CFG_STRING)
			strcpy(str, text);
		s->v[i] = v;
		s->given |= 1u << i;
	}
	return 0;
}

static const char *env_get(const char *name)
{
	return getenv(name);
}

int rlt__settings_load(rlt__settings *s)
{
	char err[256];
	int rc = rlt__settings_read(s, env_get, err, sizeof(err));
	if (rc < 0)
		fprintf(stderr, "ringlet: %s\n", err);
	return rc;
}

int rlt__settings_print(FILE *out)
{
	int bad = 0;
	fprintf(out, "%-26s %-16s %-12s %s\n", "variable", "value", "default", "what it sets");
	for (int i = 0; i < RLT__CFG_N; i++) {
		const rlt__cfg_var *var = &rlt__cfg_vars[i];
		const char *text = getenv(var->name);
		uint64_t v;
		bool ok = !text || !*text || rlt__cfg_parse(var, text, &v) == 0;
		fprintf(out, "%-26s %-16s %-12s %s\n", var->name, text && *text ? text : "-",
			var->def_text, var->help);
		if (!ok) {
			char what[256];
			describe(var, what, sizeof(what));
			fprintf(out, "%-26s ^ bad: not %s\n", "", what);
			bad++;
		}
	}
	return bad;
}
