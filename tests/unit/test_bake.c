/* test_bake.c — the baking simulation: FNV-1a, round time, scale 0, bounded mistakes. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "../../baker/bake.h" /* linked with baker/bake.o (Makefile) */
#include "check.h"
#include "clock.h"

static void test_fnv(void)
{
	/* Reference values of 32-bit FNV-1a. */
	CHECK(bake_fnv1a32("") == 0x811c9dc5u);
	CHECK(bake_fnv1a32("a") == 0xe40c292cu);
	CHECK(bake_fnv1a32("foobar") == 0xbf9cf968u);
	CHECK(bake_round_ms("foobar") == 0xbf9cf968u % 100);
	CHECK(bake_round_ms("la bombe") < 100);
}

static void test_bake_rounds(void)
{
	int total = 0, most = 0;

	for (int i = 0; i < 2000; i++) {
		int r = bake("croissant", 0, NULL);
		CHECK(r >= 1 && r <= BAKE_ROUNDS_MAX);
		total += r;
		most = r > most ? r : most;
	}
	/* About 10% mistakes: the mean is near 1.11 rounds; some mistakes happen. */
	CHECK(total > 2000 && total < 2600);
	CHECK(most >= 2);
}

static void test_bake_sleeps(void)
{
	const char *p = "foobar"; /* 0xbf9cf968 % 100 = 20 ms a round */
	long long a = clock_now_ms();
	int r = bake(p, 0.5, NULL);
	double ms = (double)(clock_now_ms() - a);

	CHECK(ms >= 10.0 * r); /* at least 20 ms * 0.5 per round */
}

/* A thread that sets the flag it is given after 50 ms. */
static void *cancel_later(void *arg)
{
	clock_wait(clock_now_ms() + 50, NULL);
	atomic_store((atomic_bool *)arg, true);
	return NULL;
}

static void test_bake_cancel(void)
{
	atomic_bool cancel = true;
	long long a;
	pthread_t t;
	double ms;

	/* Already cancelled: no sleep at all (99 ms x 100 a round otherwise). */
	CHECK(bake("foobar", 100, &cancel) == -ECANCELED);
	/* Cancelled mid-round: back within a poll of the flag, not after the 2 s round. */
	atomic_store(&cancel, false);
	a = clock_now_ms();
	CHECK(pthread_create(&t, NULL, cancel_later, &cancel) == 0);
	CHECK(bake("foobar", 100, &cancel) == -ECANCELED); /* 20 ms x 100 a round */
	ms = (double)(clock_now_ms() - a);
	pthread_join(t, NULL);
	CHECK(ms >= 45 && ms < 50 + 10 * CLOCK_WAIT_SLICE_MS);
	/* Never cancelled: a whole bake. */
	atomic_store(&cancel, false);
	CHECK(bake("croissant", 0, &cancel) >= 1);
}

int main(void)
{
	RUN(test_fnv);
	RUN(test_bake_rounds);
	RUN(test_bake_sleeps);
	RUN(test_bake_cancel);
	return CHECK_DONE();
}
