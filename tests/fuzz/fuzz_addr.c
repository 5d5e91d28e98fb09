/* Fuzz target: rlt_addr_parse on arbitrary strings. A parsed address must
 * format, and the formatted text must parse to the same address. */
#include <ringlet.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	rlt_addr a, b;
	if (rlt_addr_parse(&a, s) == 0) {
		char text[256];
		int n = rlt_addr_format(&a, text, sizeof(text));
		if (n < 0)
			abort();
		if (rlt_addr_parse(&b, text) != 0 || b.len != a.len ||
		    memcmp(&a.ss, &b.ss, a.len) != 0)
			abort();
	}
	free(s);
	return 0;
}
