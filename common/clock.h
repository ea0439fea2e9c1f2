/* clock.h — Bakery's clocks (monotonic for waits, wall for timestamps) and one cancellable wait. */
#ifndef BAKERY_CLOCK_H
#define BAKERY_CLOCK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#define CLOCK_WAIT_SLICE_MS 20 /* a cancelled clock_wait returns within about this long */

/* Milliseconds on CLOCK_MONOTONIC: for deadlines and durations. */
long long clock_now_ms(void);

/* Seconds on CLOCK_MONOTONIC, to the ns: for durations measured in metrics. */
double clock_now_s(void);

/* Milliseconds since the Unix epoch (CLOCK_REALTIME): for timestamps only. */
long long clock_wall_ms(void);

/* A clock_now_ms() deadline as the time pthread_cond_timedwait takes on a clock_cond_init
 * condition variable (or sem_clockwait on CLOCK_MONOTONIC). */
struct timespec clock_timespec(long long deadline_ms);

/* Initializes *cond with its timed waits on CLOCK_MONOTONIC (clock_timespec deadlines).
 * Returns 0 or a negative errno value. */
int clock_cond_init(pthread_cond_t *cond);

/* Sleeps until clock_now_ms() has passed deadline_ms (so a wait from now_ms + d lasts at least
 * d ms, whatever fraction of a ms now_ms dropped), returning early once *cancel is true (NULL:
 * never). Returns true when the deadline was reached, false when cancelled. */
bool clock_wait(long long deadline_ms, const atomic_bool *cancel);

#endif
