/*
 * ringlet-policies: list the loop policies this build knows and whether
 * each can start on this kernel (tools/ringlet policies runs it).
 *
 *   ringlet-policies            table: name, works here?, native ops, summary
 *   ringlet-policies NAME[:OPT] exit 0 if that policy can start here, else 1
 *   ringlet-policies --config   every RINGLET_* variable: its value here, its
 *                               default, what it sets (exit 1 if one is bad)
 */
#include <ringlet.h>

#include "runtime/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void native(uint32_t ops, char *out, size_t len)
{
	if ((ops & RLT_OP_ALL) == RLT_OP_ALL) {
		snprintf(out, len, "all");
		return;
	}
	out[0] = '\0';
	for (int i = 0; i < RLT_OP_COUNT; i++) {
		if (!(ops & RLT_OP_BIT(i)))
			continue;
		size_t n = strlen(out);
		snprintf(out + n, len - n, "%s%s", n ? "," : "", rlt_op_name(i));
	}
	if (!out[0])
		snprintf(out, len, "-");
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--config"))
		return rlt__settings_print(stdout) ? 1 : 0;
	if (argc == 2) {
		int rc = rlt_policy_probe(argv[1]);
		if (rc < 0)
			fprintf(stderr, "%s: %s\n", argv[1],
				rc == -ENOENT ? "no such policy" : strerror(-rc));
		return rc < 0;
	}
	const rlt_policy *list[64];
	size_t n = rlt_policy_list(list, 64);
	if (n > 64)
		n = 64;
	printf("%-16s %-26s %-40s %s\n", "policy", "on this kernel", "native ops", "summary");
	for (size_t i = 0; i < n; i++) {
		const rlt_policy *p = list[i];
		char works[64], ops[160];
		int rc = p->probe ? p->probe("") : 0;
		if (rc == 0)
			snprintf(works, sizeof(works), "works");
		else
			snprintf(works, sizeof(works), "no: %s", strerror(-rc));
		native(p->native_ops, ops, sizeof(ops));
		printf("%-16s %-26s %-40s %s\n", p->name, works, ops, p->summary ? p->summary : "");
	}
	const char *env = getenv("RINGLET_POLICY");
	if (env && *env)
		printf("\nRINGLET_POLICY=%s: programs run with it (unless it cannot start here)\n",
		       env);
	else
		printf("\nRINGLET_POLICY is unset: programs run with their configured policy, by "
		       "default io_uring\n");
	return 0;
}
