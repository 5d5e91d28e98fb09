/* The RINGLET_* settings table: one grammar per type, bounds, and a bad
 * value refused by rlt_run with a message naming the variable. */
#include "rlt_test.h"

#include "runtime/config.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

/* A fake environment: name=value pairs. */
static const char *const *fake;

static const char *fake_get(const char *name)
{
	for (size_t i = 0; fake && fake[i]; i += 2)
		if (!strcmp(fake[i], name))
			return fake[i + 1];
	return NULL;
}

static const rlt__cfg_var *var_of(const char *name)
{
	for (int i = 0; i < RLT__CFG_N; i++)
		if (!strcmp(rlt__cfg_vars[i].name, name))
			return &rlt__cfg_vars[i];
	fail_msg("no variable %s in the table", name);
	return NULL;
}

static uint64_t parse_ok(const char *name, const char *text)
{
	uint64_t v = 0;
	int rc = rlt__cfg_parse(var_of(name), text, &v);
	if (rc != 0)
		fail_msg("%s=%s refused (%d)", name, text, rc);
	return v;
}

static void parse_bad(const char *name, const char *text)
{
	uint64_t v;
	int rc = rlt__cfg_parse(var_of(name), text, &v);
	if (rc != -EINVAL)
		fail_msg("%s=%s accepted as %llu", name, text, (unsigned long long)v);
}

static void test_sizes_take_units_and_bounds(void **state)
{
	(void)state;
	assert_int_equal(parse_ok("RINGLET_STACK_SIZE", "65536"), 65536);
	assert_int_equal(parse_ok("RINGLET_STACK_SIZE", "64k"), 65536);
	assert_int_equal(parse_ok("RINGLET_STACK_SIZE", "64K"), 65536);
	assert_int_equal(parse_ok("RINGLET_STACK_SIZE", "64kib"), 65536);
	assert_int_equal(parse_ok("RINGLET_STACK_SIZE", "1m"), 1 << 20);
	assert_int_equal(parse_ok("RINGLET_STACK_SIZE", "1g"), 1u << 30);
	parse_bad("RINGLET_STACK_SIZE", "4k"); /* below 8k */
	parse_bad("RINGLET_STACK_SIZE", "2g"); /* above 1g */
	parse_bad("RINGLET_STACK_SIZE", "64q");
	parse_bad("RINGLET_STACK_SIZE", "k");
	parse_bad("RINGLET_STACK_SIZE", "-64k");
	parse_bad("RINGLET_STACK_SIZE", " 64k");
	parse_bad("RINGLET_STACK_SIZE", "99999999999999999999999");
}

static void test_durations_take_units_and_the_names_unit_when_bare(void **state)
{
	(void)state;
	assert_int_equal(parse_ok("RINGLET_SPIN_US", "20"), 20000);
	assert_int_equal(parse_ok("RINGLET_SPIN_US", "20us"), 20000);
	assert_int_equal(parse_ok("RINGLET_SPIN_US", "500ns"), 500);
	assert_int_equal(parse_ok("RINGLET_SPIN_US", "1ms"), 1000000);
	assert_int_equal(parse_ok("RINGLET_SPIN_US", "0"), 0);
	assert_int_equal(parse_ok("RINGLET_SLOW_MS", "250"), 250000000ull);
	assert_int_equal(parse_ok("RINGLET_SLOW_MS", "2s"), 2000000000ull);
	assert_int_equal(parse_ok("RINGLET_SHUTDOWN_MS", "0"), 0);
	parse_bad("RINGLET_SPIN_US", "2s"); /* above 1 s */
	parse_bad("RINGLET_SPIN_US", "20 us");
	parse_bad("RINGLET_SPIN_US", "20min");
	parse_bad("RINGLET_SLOW_MS", "0");     /* below 1 ms */
	parse_bad("RINGLET_SLOW_MS", "500us"); /* below 1 ms */
	parse_bad("RINGLET_SHUTDOWN_MS", "2h");
}

static void test_bools_counts_and_choices(void **state)
{
	(void)state;
	const char *yes[] = {"1", "yes", "true", "on", "YES"};
	const char *no[] = {"0", "no", "false", "off"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++)
		assert_int_equal(parse_ok("RINGLET_PIN", yes[i]), 1);
	for (size_t i = 0; i < sizeof(no) / sizeof(*no); i++)
		assert_int_equal(parse_ok("RINGLET_PIN", no[i]), 0);
	parse_bad("RINGLET_DEBUG", "2");
	parse_bad("RINGLET_DEBUG", "maybe");
	assert_int_equal(parse_ok("RINGLET_WORKERS", "3"), 3);
	parse_bad("RINGLET_WORKERS", "0");
	parse_bad("RINGLET_WORKERS", "257");
	parse_bad("RINGLET_WORKERS", "2x");
	parse_bad("RINGLET_BLOCKING_THREADS", "0");
	assert_int_equal(parse_ok("RINGLET_POOL_WAKE", "eventfd"), 1);
	assert_int_equal(parse_ok("RINGLET_POOL_WAKE", "msg_ring"), 0);
	parse_bad("RINGLET_POOL_WAKE", "event");
	parse_bad("RINGLET_CANCEL_FENCE", "xchg2");
}

static void test_a_bad_value_names_the_variable_and_what_it_accepts(void **state)
{
	(void)state;
	static const char *const env[] = {"RINGLET_WORKERS", "2", "RINGLET_SPIN_US", "lots", NULL};
	fake = env;
	rlt__settings s;
	char err[256];
	assert_int_equal(rlt__settings_read(&s, fake_get, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "RINGLET_SPIN_US=lots"));
	assert_non_null(strstr(err, "duration"));
	assert_non_null(strstr(err, "20us"));
	fake = NULL;
}

static void test_unset_and_empty_variables_take_the_defaults(void **state)
{
	(void)state;
	static const char *const env[] = {"RINGLET_WORKERS", "", "RINGLET_DEBUG", "1", NULL};
	fake = env;
	rlt__settings s;
	char err[256];
	assert_int_equal(rlt__settings_read(&s, fake_get, err, sizeof(err)), 0);
	assert_false(rlt__settings_given(&s, RLT__CFG_WORKERS));
	assert_true(rlt__settings_given(&s, RLT__CFG_DEBUG));
	assert_int_equal(s.v[RLT__CFG_DEBUG], 1);
	assert_int_equal(s.v[RLT__CFG_STACK_SIZE], RLT_DEFAULT_STACK_SIZE);
	assert_int_equal(s.v[RLT__CFG_SPIN_US], RLT_DEFAULT_SPIN_US * 1000ull);
	assert_int_equal(s.v[RLT__CFG_STEAL], 1);
	fake = NULL;
}

static void *never(void *arg)
{
	(void)arg;
	fail_msg("the root task ran despite a bad setting");
	return NULL;
}

/* rlt_run refuses every variable's bad value, with its name on stderr. */
static void test_rlt_run_refuses_each_bad_variable(void **state)
{
	(void)state;
	static const struct {
		const char *name, *bad;
	} cases[] = {
	    {"RINGLET_WORKERS", "many"},
	    {"RINGLET_PIN", "2"},
	    {"RINGLET_STEAL", "sometimes"},
	    {"RINGLET_STACK_SIZE", "1t"},
	    {"RINGLET_POLICY_STRICT", "yes!"},
	    {"RINGLET_SPIN_US", "-1"},
	    {"RINGLET_BLOCKING_THREADS", "1e3"},
	    {"RINGLET_POOL_WAKE", "futex"},
	    {"RINGLET_DEBUG", "2"},
	    {"RINGLET_SLOW_MS", "0"},
	    {"RINGLET_SHUTDOWN_MS", "1y"},
	    {"RINGLET_CANCEL_FENCE", "none"},
	    {"RINGLET_FAULT_REPORT", "x"},
	};
	char path[] = "/tmp/rlt-config-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	int saved = dup(2);
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		const char *old = getenv(cases[i].name);
		char *keep = old ? strdup(old) : NULL;
		setenv(cases[i].name, cases[i].bad, 1);
		assert_int_equal(ftruncate(fd, 0), 0);
		assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
		fflush(stderr);
		dup2(fd, 2);
		int rc = rlt_run(never, NULL, NULL, NULL);
		fflush(stderr);
		dup2(saved, 2);
		if (keep)
			setenv(cases[i].name, keep, 1);
		else
			unsetenv(cases[i].name);
		free(keep);
		char msg[512] = {0};
		assert_true(pread(fd, msg, sizeof(msg) - 1, 0) >= 0);
		if (rc != -EINVAL || !strstr(msg, cases[i].name) || !strstr(msg, cases[i].bad))
			fail_msg("%s=%s: rlt_run %d, stderr \"%s\"", cases[i].name, cases[i].bad,
				 rc, msg);
	}
	close(saved);
	close(fd);
}

static void test_the_table_is_complete(void **state)
{
	(void)state;
	for (int i = 0; i < RLT__CFG_N; i++) {
		const rlt__cfg_var *v = &rlt__cfg_vars[i];
		assert_non_null(v->name);
		assert_non_null(v->help);
		assert_non_null(v->def_text);
		assert_int_equal(strncmp(v->name, "RINGLET_", 8), 0);
		if (v->kind == RLT__CFG_DURATION)
			assert_true(v->unit > 0);
		if (v->kind == RLT__CFG_CHOICE)
			assert_non_null(v->choices);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sizes_take_units_and_bounds),
	    cmocka_unit_test(test_durations_take_units_and_the_names_unit_when_bare),
	    cmocka_unit_test(test_bools_counts_and_choices),
	    cmocka_unit_test(test_a_bad_value_names_the_variable_and_what_it_accepts),
	    cmocka_unit_test(test_unset_and_empty_variables_take_the_defaults),
	    cmocka_unit_test(test_rlt_run_refuses_each_bad_variable),
	    cmocka_unit_test(test_the_table_is_complete),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
