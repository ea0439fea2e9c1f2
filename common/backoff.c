/* backoff.c — capped exponential backoff between attempts. */
#include "backoff.h"

int backoff_fail(struct backoff *b, long long now, int min_ms, int max_ms)
{
	b->delay_ms = b->delay_ms <= 0           ? min_ms
	              : b->delay_ms > max_ms / 2 ? max_ms
	                                         : b->delay_ms * 2;
	b->failed_ms = now;
	b->next_ms = now + b->delay_ms;
	return b->delay_ms;
}

void backoff_reset(struct backoff *b)
{
	*b = (struct backoff){0};
}
