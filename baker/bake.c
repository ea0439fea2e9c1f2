/* bake.c — simulated baking, as in the original: FNV-1a(pastry) % 100 ms, 10% mistakes. */
#include "bake.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "clock.h"
#include "otel/trace.h"

uint32_t bake_fnv1a32(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

unsigned bake_round_ms(const char *pastry)
{
	return bake_fnv1a32(pastry) % 100;
}

int bake(const char *pastry, double scale, const atomic_bool *cancel)
{
	double ms = bake_round_ms(pastry) * scale;
	int rounds = 0;

	for (;;) {
		if (ms > 0 && !clock_wait(clock_now_ms() + (long long)ms, cancel))
			return -ECANCELED;
		if (++rounds == BAKE_ROUNDS_MAX || arc4random_uniform(10) != 0)
			return rounds;
		trace_span_add_event(trace_current(), "baker made mistake, redoing", NULL, 0);
		trace_span_set_bool(trace_current(), "baker.mistake", true);
	}
}
