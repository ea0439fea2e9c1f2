/* clock.c — Bakery's clocks and its one cancellable wait. */
#include "clock.h"

static long long ms_on(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long clock_now_ms(void)
{
	return ms_on(CLOCK_MONOTONIC);
}

double clock_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

long long clock_wall_ms(void)
{
	return ms_on(CLOCK_REALTIME);
}

struct timespec clock_timespec(long long deadline_ms)
{
	return (struct timespec){deadline_ms / 1000, deadline_ms % 1000 * 1000000L};
}

int clock_cond_init(pthread_cond_t *cond)
{
	pthread_condattr_t attr;
	int rc = pthread_condattr_init(&attr);

	if (rc != 0)
		return -rc;
	if ((rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)) == 0)
		rc = pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
	return -rc;
}

bool clock_wait(long long deadline_ms, const atomic_bool *cancel)
{
	for (long long left; !(cancel && atomic_load(cancel));) {
		if ((left = deadline_ms - clock_now_ms()) < 0)
			return true;
		left = left < CLOCK_WAIT_SLICE_MS ? left + 1 : CLOCK_WAIT_SLICE_MS;
		nanosleep(&(struct timespec){0, left * 1000000L}, NULL); /* EINTR: measured again */
	}
	return false;
}
