/* request_head_fuzz.c — libFuzzer target for http_head_check (see fuzz/README.md). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input is a head as civetweb hands it over: a first line "<version>", then field lines
 * "name:value" (split at the first ':'; a line without one is a name with an empty value). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mg_request_info ri = {.request_method = "POST", .request_uri = "/orders"};
	char *head = malloc(size + 1), *line, *next, *colon;
	const char *why = NULL;
	int status;

	if (!head)
		return 0;
	memcpy(head, data, size);
	head[size] = '\0';
	next = strchr(head, '\n');
	if (next)
		*next++ = '\0';
	ri.http_version = head;
	while (next && ri.num_headers < MG_MAX_HEADERS) {
		line = next;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		colon = strchr(line, ':');
		if (colon)
			*colon = '\0';
		ri.http_headers[ri.num_headers].name = line;
		ri.http_headers[ri.num_headers++].value = colon ? colon + 1 : "";
	}
	status = http_head_check(&ri, &why);
	/* A refusal has a reason and one of the statuses it may have; a pass has none. */
	if ((status != 0 && status != 400 && status != 431) || (status != 0) != (why != NULL))
		abort();
	free(head);
	return 0;
}
