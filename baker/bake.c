/* bake.c — simulated baking, as in the original: FNV-1a(pastry) % 100 ms, 10% mistakes. */
#include "bake.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "trace.h"

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

static void sleep_ms(double ms)
{
	struct timespec ts = {(time_t)(ms / 1000),
	                      (long)((ms - (double)(time_t)(ms / 1000) * 1000) * 1e6)};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int bake(const char *pastry, double scale)
{
	double ms = bake_round_ms(pastry) * scale;
	int rounds = 0;

	for (;;) {
		if (ms > 0)
			sleep_ms(ms);
		if (++rounds == BAKE_ROUNDS_MAX || arc4random_uniform(10) != 0)
			return rounds;
		trace_span_add_event(trace_current(), "baker made mistake, redoing", NULL, 0);
		trace_span_set_bool(trace_current(), "baker.mistake", true);
	}
}
