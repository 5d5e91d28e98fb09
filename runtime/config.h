/*
 * ringlet's settings from the environment, in one table: every RINGLET_*
 * variable with its type, default, bounds and help line, one grammar for
 * each type, read once per rlt_run (sched/run.c), which refuses to start
 * on a bad value with a message naming the variable and what it accepts.
 *
 * Grammar:
 *   bool      1 0 yes no true false on off
 *   count     a decimal number
 *   size      a number of bytes, or with k, m, g (powers of 1024; "ki",
 *             "kb", "kib" accepted): 64k, 1m
 *   duration  a number with ns, us, ms or s (20us, 100ms, 2s); a bare
 *             number is in the unit the variable's name ends with
 *             (RINGLET_SPIN_US=20 is 20 us)
 *   choice    one of the listed words
 *   string    anything (the policy spec)
 */
#ifndef RLT_RUNTIME_CONFIG_H
#define RLT_RUNTIME_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum rlt__cfg_kind {
	RLT__CFG_BOOL,
	RLT__CFG_COUNT,
	RLT__CFG_SIZE,
	RLT__CFG_DURATION,
	RLT__CFG_CHOICE,
	RLT__CFG_STRING,
} rlt__cfg_kind;

typedef struct rlt__cfg_var {
	const char *name;
	rlt__cfg_kind kind;
	uint64_t def;	      /* the default value (CHOICE: the index of the word) */
	const char *def_text; /* the default as shown ("one per CPU", "20us") */
	uint64_t min, max;    /* COUNT, SIZE (bytes), DURATION (ns) */
	uint64_t unit;	      /* DURATION: ns in one unit of a bare number */
	const char *choices;  /* CHOICE: the words, separated by '|' */
	const char *help;
} rlt__cfg_var;

/* The variables, in the table's order. */
enum rlt__cfg_id {
	RLT__CFG_WORKERS,
	RLT__CFG_PIN,
	RLT__CFG_STEAL,
	RLT__CFG_STACK_SIZE,
	RLT__CFG_STACK_CACHE,
	RLT__CFG_POLICY,
	RLT__CFG_POLICY_STRICT,
	RLT__CFG_SPIN_US,
	RLT__CFG_SPIN,
	RLT__CFG_BLOCKING_THREADS,
	RLT__CFG_POOL_WAKE,
	RLT__CFG_DEBUG,
	RLT__CFG_SLOW_MS,
	RLT__CFG_SHUTDOWN_MS,
	RLT__CFG_CANCEL_FENCE,
	RLT__CFG_FAULT_REPORT,
	RLT__CFG_STATS,
	RLT__CFG_RXQ,
	RLT__CFG_TIMING,
	RLT__CFG_CONTROL,
	RLT__CFG_TRACE,
	RLT__CFG_TRACE_SIZE,
	RLT__CFG_N
};

extern const rlt__cfg_var rlt__cfg_vars[RLT__CFG_N];

/* What the environment said, parsed. v[i] is the default where the
 * variable is unset or empty. */
typedef struct rlt__settings {
	uint32_t given; /* bit i: variable i was set */
	uint64_t v[RLT__CFG_N];
	char policy[160];  /* RINGLET_POLICY's text ("" unless given) */
	char control[108]; /* RINGLET_CONTROL's (a sun_path's room) */
	char trace[256];   /* RINGLET_TRACE's */
} rlt__settings;

/* The buffer of string variable id in s (NULL: not a string). */
char *rlt__settings_str(rlt__settings *s, enum rlt__cfg_id id, size_t *cap);

static inline bool rlt__settings_given(const rlt__settings *s, enum rlt__cfg_id id)
{
	return (s->given >> id) & 1u;
}

/* Parse text as var's type within its bounds into *out. 0 or -EINVAL. */
int rlt__cfg_parse(const rlt__cfg_var *var, const char *text, uint64_t *out);

/* Fill s with the defaults. */
void rlt__settings_defaults(rlt__settings *s);

/* Read every variable through get (getenv, or a test's table) into s.
 * Returns 0, or -EINVAL at the first bad value, with err (errlen bytes)
 * saying which variable, what it was and what it accepts. */
int rlt__settings_read(rlt__settings *s, const char *(*get)(const char *name), char *err,
		       size_t errlen);

/* rlt__settings_read from the environment; a bad value is also printed on
 * stderr ("ringlet: ..."). */
int rlt__settings_load(rlt__settings *s);

/* Print every variable: name, current value (from the environment), its
 * default and help line; bad values marked. The `tools/ringlet config`
 * table. Returns how many values were bad. */
int rlt__settings_print(FILE *out);

#endif
