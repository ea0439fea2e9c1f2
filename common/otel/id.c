/* id.c — ids from a fast per-thread generator: xoshiro256**, seeded once per thread. */
#include "id.h"

#include <pthread.h>
#include <string.h>
#include <sys/random.h>

#include "clock.h"

static _Thread_local uint64_t rng[4]; /* all zero until seeded */

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* Seeds this thread's generator from getrandom, or splitmix64 over the clock, the thread and a
 * stack address if that ever fails. */
static void seed(void)
{
	uint64_t x;

	if (getrandom(rng, sizeof(rng), 0) == (ssize_t)sizeof(rng))
		return;
	x = otel_clock_ns(CLOCK_REALTIME) ^ (uint64_t)(uintptr_t)&x ^ (uint64_t)pthread_self();
	for (int i = 0; i < 4; i++) { /* splitmix64 */
		uint64_t z = (x += 0x9e3779b97f4a7c15u);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
		rng[i] = z ^ (z >> 31);
	}
}

/* The next 64 bits of this thread's generator, seeded on first use: inline, so that an id takes
 * no call. */
static inline uint64_t next(void)
{
	uint64_t r, t;

	if (!(rng[0] | rng[1] | rng[2] | rng[3]))
		seed();
	r = rotl(rng[1] * 5, 7) * 9;
	t = rng[1] << 17;
	rng[2] ^= rng[0];
	rng[3] ^= rng[1];
	rng[1] ^= rng[2];
	rng[0] ^= rng[3];
	rng[2] ^= t;
	rng[3] = rotl(rng[3], 45);
	return r;
}

uint64_t otel_id_rand64(void)
{
	return next();
}

void otel_id_random(uint8_t *id, size_t n)
{
	uint64_t w[2] = {0, 0};

	while (!(w[0] | w[1])) {
		w[0] = next();
		if (n > 8)
			w[1] = next();
	}
	if (n > 8) /* sizes the compiler knows: no call */
		memcpy(id, w, 16);
	else
		memcpy(id, w, 8);
}
