/* backoff.h — capped exponential backoff between attempts. */
#ifndef BAKERY_BACKOFF_H
#define BAKERY_BACKOFF_H

/* Zero-initialized: no failure yet, an attempt may be made at once. */
struct backoff {
	long long next_ms;   /* no attempt before this monotonic time */
	long long failed_ms; /* when the last failure was recorded */
	int delay_ms;        /* the last delay; 0 after a success */
};

/* Records a failure at now (clock_now_ms): no attempt before now + the returned delay, which
 * is min_ms after a success and doubles with each failure in a row, up to max_ms. */
int backoff_fail(struct backoff *b, long long now, int min_ms, int max_ms);

/* Records a success: the next failure waits min_ms again. */
void backoff_reset(struct backoff *b);

#endif
