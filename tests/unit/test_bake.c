/* test_bake.c — the baking simulation: FNV-1a, round time, scale 0, bounded mistakes. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "../../baker/bake.h" /* linked with baker/bake.o (Makefile) */
#include "check.h"

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
	struct timespec a, b;
	const char *p = "foobar"; /* 0xbf9cf968 % 100 = 20 ms a round */
	double ms;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &a);
	r = bake(p, 0.5, NULL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	CHECK(ms >= 10.0 * r); /* at least 20 ms * 0.5 per round */
}

/* A thread that sets the flag it is given after 50 ms. */
static void *cancel_later(void *arg)
{
	struct timespec ts = {0, 50 * 1000000L};

	nanosleep(&ts, NULL);
	atomic_store((atomic_bool *)arg, true);
	return NULL;
}

static void test_bake_cancel(void)
{
	atomic_bool cancel = true;
	struct timespec a, b;
	pthread_t t;
	double ms;

	/* Already cancelled: no sleep at all (99 ms x 100 a round otherwise). */
	CHECK(bake("foobar", 100, &cancel) == -ECANCELED);
	/* Cancelled mid-round: back within a poll of the flag, not after the 2 s round. */
	atomic_store(&cancel, false);
	clock_gettime(CLOCK_MONOTONIC, &a);
	CHECK(pthread_create(&t, NULL, cancel_later, &cancel) == 0);
	CHECK(bake("foobar", 100, &cancel) == -ECANCELED); /* 20 ms x 100 a round */
	clock_gettime(CLOCK_MONOTONIC, &b);
	pthread_join(t, NULL);
	ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	CHECK(ms >= 45 && ms < 50 + 10 * BAKE_CANCEL_POLL_MS);
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
