/* Fuzz target: arbitrary bytes as an HTTP response, into the HTTP client's
 * response parser (proto/http/client_parse.c) as a connection would hand
 * them over: in pieces (their size from the first byte, whose top bit also
 * makes it the answer to a HEAD request), the head, the body decoded into
 * a small buffer, then the connection's end. The driver aborts if the body
 * outgrows the input or a header is not the NUL-terminated string it
 * claims to be; ASan catches the rest. */
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int rlt__http_client_fuzz(const uint8_t *data, size_t size); /* client_parse.c */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	rlt__http_client_fuzz(data, size);
	return 0;
}
