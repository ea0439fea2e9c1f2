/* test_backoff.c — capped exponential backoff: min after a success, doubling, the cap. */
#include "backoff.h"
#include "check.h"
#include "clock.h"

static void test_doubles_up_to_the_cap(void)
{
	struct backoff b = {0};

	CHECK(backoff_fail(&b, 1000, 100, 1000) == 100);
	CHECK(b.next_ms == 1100 && b.failed_ms == 1000);
	CHECK(backoff_fail(&b, 1100, 100, 1000) == 200);
	CHECK(backoff_fail(&b, 1300, 100, 1000) == 400);
	CHECK(backoff_fail(&b, 1700, 100, 1000) == 800);
	CHECK(backoff_fail(&b, 2500, 100, 1000) == 1000);
	CHECK(backoff_fail(&b, 3500, 100, 1000) == 1000);
	CHECK(b.next_ms == 4500);
	backoff_reset(&b);
	CHECK(b.next_ms == 0 && b.delay_ms == 0);
	CHECK(backoff_fail(&b, 5000, 250, 2000) == 250);
}

static void test_clock_is_monotonic(void)
{
	long long a = clock_now_ms(), b = clock_now_ms();

	CHECK(a > 0 && b >= a);
}

int main(void)
{
	RUN(test_doubles_up_to_the_cap);
	RUN(test_clock_is_monotonic);
	return CHECK_DONE();
}
