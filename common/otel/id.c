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

/* A generator's state, copied out of rng for a few steps so that it stays in registers. */
struct state {
	uint64_t s[4];
};

/* This thread's state, seeded on first use. Give it back with store. */
static inline struct state load(void)
{
	if (!(rng[0] | rng[1] | rng[2] | rng[3]))
		seed();
	return (struct state){{rng[0], rng[1], rng[2], rng[3]}};
}

static inline void store(const struct state *x)
{
	memcpy(rng, x->s, sizeof(rng));
}

/* The next 64 bits of x (xoshiro256**). */
static inline uint64_t next(struct state *x)
{
	uint64_t *s = x->s, r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

/* Fills id (n: 8 or 16 bytes) from x, never all zero: its first 8 bytes are not (a zero draw,
 * 2^-64 likely, is drawn again). Sizes the compiler knows: no call. */
static inline void fill(struct state *x, uint8_t *id, size_t n)
{
	uint64_t w;

	while (!(w = next(x)))
		;
	memcpy(id, &w, 8);
	if (n > 8) {
		w = next(x);
		memcpy(id + 8, &w, 8);
	}
}

uint64_t otel_id_rand64(void)
{
	struct state x = load();
	uint64_t r = next(&x);

	store(&x);
	return r;
}

void otel_id_random(uint8_t *id, size_t n)
{
	struct state x = load();

	fill(&x, id, n);
	store(&x);
}

void otel_id_random2(uint8_t *id, size_t n, uint8_t *id2, size_t n2)
{
	struct state x = load();

	fill(&x, id, n);
	fill(&x, id2, n2);
	store(&x);
}
