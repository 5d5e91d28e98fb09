/* Fuzz target: the RINGLET_* grammar (runtime/config.c). Each input is
 * parsed as every variable's type; a value accepted must lie within the
 * variable's bounds, and a refused one must leave an error message. */
#include "runtime/config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *text;

static const char *get_all(const char *name)
{
	(void)name;
	return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	for (int i = 0; i < RLT__CFG_N; i++) {
		const rlt__cfg_var *var = &rlt__cfg_vars[i];
		uint64_t v;
		int rc = rlt__cfg_parse(var, s, &v);
		if (rc != 0 && rc != -EINVAL)
			abort();
		if (rc == 0 &&
		    (var->kind == RLT__CFG_COUNT || var->kind == RLT__CFG_SIZE ||
		     var->kind == RLT__CFG_DURATION) &&
		    (v < var->min || v > var->max))
			abort();
	}
	text = s;
	rlt__settings st;
	char err[256];
	err[0] = '\0';
	if (rlt__settings_read(&st, get_all, err, sizeof(err)) < 0 && !strstr(err, "RINGLET_"))
		abort();
	free(s);
	return 0;
}
