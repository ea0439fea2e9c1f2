/* order_message_fuzz.c — libFuzzer target for the baker's queue message parser (fuzz/README.md). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "order.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An accepted message carries a valid order key, and a message made for that key parses back
 * to the same key with a known time. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct order_message m, again;
	char *msg;

	if (order_message_parse((const char *)data, size, &m) != 0)
		return 0;
	if (!order_key_valid(m.key) || m.enqueued_ms != m.enqueued_ms) /* NaN */
		abort();
	msg = order_message_new(m.key, "2026-11-23T15:04:05.123456789Z");
	if (!msg)
		return 0;
	if (order_message_parse(msg, strlen(msg), &again) != 0 || strcmp(m.key, again.key) != 0 ||
	    again.enqueued_ms < 0)
		abort();
	free(msg);
	return 0;
}
