/* http_response_fuzz.c — libFuzzer target for the SDK's HTTP response head parser. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otel/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parses the input as a response head (what a Collector, or anything at its address, sends)
 * and checks what a complete head must satisfy; every shorter prefix of a complete head needs
 * more bytes or is already malformed, never complete. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct otlp_http_response r;
	char *copy = malloc(size ? size : 1); /* exactly size bytes: ASan sees any overread */
	int rc;

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	rc = otlp_http_response_parse(copy, size, &r);
	if (rc != -EPROTO && (rc < 0 || (size_t)rc > size))
		abort();
	if (rc > 0) {
		if (copy[rc - 1] != '\n' || r.status < 100 || r.status > 999 ||
		    r.content_length < -1 || r.retry_after_s < -1 || r.retry_after_s > 86400)
			abort();
		struct otlp_http_response p;
		int prefix = otlp_http_response_parse(copy, (size_t)rc - 1, &p);
		if (prefix != 0 && prefix != -EPROTO)
			abort();
	}
	free(copy);
	return 0;
}
