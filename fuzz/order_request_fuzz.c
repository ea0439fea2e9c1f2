/* order_request_fuzz.c — libFuzzer target for the POST /orders body parser (see fuzz/README.md). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "order.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whatever the bytes, the parser answers 0 or -EINVAL with a reason; an accepted order has two
 * non-empty fields within bounds, and re-encoding them gives a body that parses to the same. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct order o, again;
	const char *why = NULL;
	json_t *j;
	char *body;

	memset(&o, 0x5a, sizeof(o)); /* no field may be read unset */
	if (order_parse_request((const char *)data, size, &o, &why) != 0) {
		if (!why || !*why)
			abort();
		return 0;
	}
	if (!o.customer[0] || !o.pastry[0] ||
	    strnlen(o.customer, sizeof(o.customer)) == sizeof(o.customer) ||
	    strnlen(o.pastry, sizeof(o.pastry)) == sizeof(o.pastry))
		abort();
	j = json_pack("{s:s, s:s}", "customer", o.customer, "pastry", o.pastry);
	if (!j)
		abort(); /* jansson refuses invalid UTF-8: the parser must have too */
	body = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!body)
		return 0;
	if (order_parse_request(body, strlen(body), &again, &why) != 0 ||
	    strcmp(o.customer, again.customer) != 0 || strcmp(o.pastry, again.pastry) != 0)
		abort();
	free(body);
	return 0;
}
