/* clock.h — the SDK's clocks: wall time for timestamps, monotonic time for waits. */
#ifndef BAKERY_OTEL_CLOCK_H
#define BAKERY_OTEL_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Nanoseconds on clock id (CLOCK_REALTIME: since the Unix epoch). */
static inline uint64_t otel_clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Milliseconds on CLOCK_MONOTONIC. */
static inline uint64_t otel_mono_ms(void)
{
	return otel_clock_ns(CLOCK_MONOTONIC) / 1000000u;
}

#endif
