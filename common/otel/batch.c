/* batch.c — the batch span processor: queue, export thread, retries with backoff, drop counts. */
#include "batch.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "clock.h"
#include "diag.h"
#include "env.h"
#include "id.h"

#define SHUTDOWN_BUDGET_MS 5000     /* otel_batch_stop's flush never takes longer */
#define EXPORT_ATTEMPTS    5        /* per batch, first try included */
#define BACKOFF_FIRST_MS   500      /* doubles per retry, with jitter */
#define BACKOFF_MAX_MS     8000     /* one wait between retries never exceeds this */
#define DROP_LOG_PERIOD_MS 10000    /* at most one "spans dropped" line per period */
#define ENV_MAX            10000000 /* the largest OTEL_BSP_* value */

/* Guarded by lock where the export thread shares it. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool accepting; /* offers may enqueue */
	bool stopping;
	uint64_t stop_deadline_ms;
	pthread_t thread;
	struct otlp_span **queue; /* ring; NULL unless the export thread runs */
	size_t queue_cap, head, len;
	size_t batch_max;
	long delay_ms, export_timeout_ms;
	const struct otlp_resource *resource;
	struct otlp_exporter *exporter;
	otel_batch_release_fn *release;
} bsp = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static atomic_uint_fast64_t stat_offered, stat_exported, stat_dropped_queue, stat_dropped_export;

int otel_batch_from_env(void)
{
	static const char why[] = "not an integer in range";
	long q, b, d, t;
	int rc;

	if ((rc = otel_env_long("OTEL_BSP_MAX_QUEUE_SIZE", 2048, 1, ENV_MAX, why, &q)) < 0 ||
	    (rc = otel_env_long("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512, 1, ENV_MAX, why, &b)) < 0 ||
	    (rc = otel_env_long("OTEL_BSP_SCHEDULE_DELAY", 5000, 0, ENV_MAX, why, &d)) < 0 ||
	    (rc = otel_env_long("OTEL_BSP_EXPORT_TIMEOUT", 30000, 1, ENV_MAX, why, &t)) < 0)
		return rc;
	bsp.queue_cap = (size_t)q;
	bsp.batch_max = (size_t)(b < q ? b : q);
	bsp.delay_ms = d;
	bsp.export_timeout_ms = t;
	return 0;
}

static void count_dropped(atomic_uint_fast64_t *counter, const char *reason, uint64_t n)
{
	atomic_fetch_add(counter, n);
	otel_diag_dropped(reason, n);
}

void otel_batch_offer(struct otlp_span *span)
{
	const char *reason = NULL;

	atomic_fetch_add(&stat_offered, 1);
	pthread_mutex_lock(&bsp.lock);
	if (!bsp.accepting || bsp.len == bsp.queue_cap) {
		reason = bsp.accepting ? "queue_full" : "shutdown";
	} else {
		bsp.queue[(bsp.head + bsp.len++) % bsp.queue_cap] = span;
		if (bsp.len == 1 || bsp.len == bsp.batch_max)
			pthread_cond_signal(&bsp.wake);
	}
	pthread_mutex_unlock(&bsp.lock);
	if (reason) {
		count_dropped(&stat_dropped_queue, reason, 1);
		bsp.release(&span, 1);
	}
}

/* Waits on bsp.wake (lock held) until CLOCK_MONOTONIC time until_ms or a signal. */
static void wait_until(uint64_t until_ms)
{
	struct timespec ts = {(time_t)(until_ms / 1000), (long)(until_ms % 1000) * 1000000};

	pthread_cond_timedwait(&bsp.wake, &bsp.lock, &ts);
}

/* Encodes and posts one batch, retrying with backoff within OTEL_BSP_EXPORT_TIMEOUT (and the
 * shutdown budget). Returns 0 or a negative error. Called without the lock. */
static int export_batch(struct otlp_span **spans, size_t n)
{
	uint64_t deadline = otel_mono_ms() + (uint64_t)bsp.export_timeout_ms, now;
	struct otlp_buf body = {0};
	long retry_after, backoff = BACKOFF_FIRST_MS;
	int rc = otlp_exporter_encode(bsp.exporter, bsp.resource, spans, n, &body);

	for (int attempt = 1; rc == 0; attempt++) {
		pthread_mutex_lock(&bsp.lock);
		if (bsp.stopping && bsp.stop_deadline_ms < deadline)
			deadline = bsp.stop_deadline_ms;
		pthread_mutex_unlock(&bsp.lock);
		now = otel_mono_ms();
		if (now >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
		rc = otlp_exporter_post(bsp.exporter, &body, (long)(deadline - now), &retry_after);
		if (rc != -EAGAIN || attempt == EXPORT_ATTEMPTS)
			break;
		if (retry_after < 0) /* full jitter over [backoff/2, backoff) */
			retry_after =
			    backoff / 2 + (long)(otel_id_rand64() % (uint64_t)(backoff / 2));
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
		if (otel_mono_ms() + (uint64_t)retry_after >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
		/* Wait out the backoff, unless shutdown leaves no time for it. */
		pthread_mutex_lock(&bsp.lock);
		uint64_t until = otel_mono_ms() + (uint64_t)retry_after;
		bool no_time = false;
		while (otel_mono_ms() < until &&
		       !(no_time = bsp.stopping && until >= bsp.stop_deadline_ms))
			wait_until(until);
		pthread_mutex_unlock(&bsp.lock);
		rc = no_time ? -ETIMEDOUT : 0;
	}
	otlp_buf_free(&body);
	return rc;
}

/* Logs what was lost since the last line, at most once per DROP_LOG_PERIOD_MS. */
static void log_drops(bool force)
{
	static uint64_t logged_queue, logged_export, last_ms;
	uint64_t q = atomic_load(&stat_dropped_queue), e = atomic_load(&stat_dropped_export);
	char qs[24], es[24];

	if ((q == logged_queue && e == logged_export) ||
	    (!force && last_ms && otel_mono_ms() - last_ms < DROP_LOG_PERIOD_MS))
		return;
	snprintf(qs, sizeof(qs), "%llu", (unsigned long long)(q - logged_queue));
	snprintf(es, sizeof(es), "%llu", (unsigned long long)(e - logged_export));
	otel_diag_log(OTEL_DIAG_WARN, "spans dropped",
	              (const char *const[6]){"queue_full", qs, "export_failed", es, "endpoint",
	                                     otlp_exporter_url(bsp.exporter)});
	logged_queue = q;
	logged_export = e;
	last_ms = otel_mono_ms();
}

static void *export_main(void *arg)
{
	struct otlp_span **batch = arg;

	pthread_mutex_lock(&bsp.lock);
	for (;;) {
		uint64_t until;
		size_t n = 0;
		/* Idle: sleep until a span arrives (span ends signal the first one), so that even
		 * a zero schedule delay never spins; then gather for the schedule delay. */
		while (!bsp.stopping && bsp.len == 0)
			pthread_cond_wait(&bsp.wake, &bsp.lock);
		until = otel_mono_ms() + (uint64_t)bsp.delay_ms;
		while (!bsp.stopping && bsp.len < bsp.batch_max && otel_mono_ms() < until)
			wait_until(until);
		if (bsp.stopping && (bsp.len == 0 || otel_mono_ms() >= bsp.stop_deadline_ms))
			break;
		for (; n < bsp.batch_max && bsp.len > 0; n++, bsp.len--) {
			batch[n] = bsp.queue[bsp.head];
			bsp.head = (bsp.head + 1) % bsp.queue_cap;
		}
		pthread_mutex_unlock(&bsp.lock);
		if (export_batch(batch, n) == 0)
			atomic_fetch_add(&stat_exported, n);
		else
			count_dropped(&stat_dropped_export, "export_failed", n);
		bsp.release(batch, n);
		log_drops(false);
		pthread_mutex_lock(&bsp.lock);
	}
	pthread_mutex_unlock(&bsp.lock);
	free(batch);
	return NULL;
}

int otel_batch_start(struct otlp_exporter *e, const struct otlp_resource *r,
                     otel_batch_release_fn *release)
{
	struct otlp_span **batch = NULL;
	pthread_condattr_t attr;

	bsp.exporter = e;
	bsp.resource = r;
	bsp.release = release;
	if (!(bsp.queue = calloc(bsp.queue_cap, sizeof(*bsp.queue))) ||
	    !(batch = calloc(bsp.batch_max, sizeof(*batch))))
		goto fail;
	/* bsp.wake waits on CLOCK_MONOTONIC, like the deadlines: a wall-clock step changes no wait.
	 * (The export thread does not exist yet; on failure the realtime clock is kept.) */
	if (pthread_condattr_init(&attr) == 0) {
		if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0) {
			pthread_cond_destroy(&bsp.wake);
			pthread_cond_init(&bsp.wake, &attr);
		}
		pthread_condattr_destroy(&attr);
	}
	bsp.head = bsp.len = 0;
	bsp.stopping = false;
	bsp.accepting = true;
	if (pthread_create(&bsp.thread, NULL, export_main, batch) != 0) {
		bsp.accepting = false;
		goto fail;
	}
	pthread_setname_np(bsp.thread, "otel-export"); /* for top -H, perf, make bench */
	return 0;
fail:
	free(batch);
	free(bsp.queue);
	bsp.queue = NULL;
	return -ENOMEM;
}

void otel_batch_stop(void)
{
	long budget = bsp.export_timeout_ms;

	if (!bsp.queue)
		return;
	pthread_mutex_lock(&bsp.lock);
	bsp.accepting = false;
	bsp.stopping = true;
	bsp.stop_deadline_ms =
	    otel_mono_ms() + (uint64_t)(budget < SHUTDOWN_BUDGET_MS ? budget : SHUTDOWN_BUDGET_MS);
	pthread_cond_broadcast(&bsp.wake);
	pthread_mutex_unlock(&bsp.lock);
	otlp_exporter_set_deadline(bsp.exporter, bsp.stop_deadline_ms);
	pthread_join(bsp.thread, NULL);
	if (bsp.len > 0)
		count_dropped(&stat_dropped_export, "shutdown", bsp.len);
	log_drops(true);
	for (; bsp.len > 0; bsp.len--, bsp.head = (bsp.head + 1) % bsp.queue_cap)
		bsp.release(&bsp.queue[bsp.head], 1);
	free(bsp.queue);
	bsp.queue = NULL;
}

void otel_batch_counts(uint64_t *offered, uint64_t *exported, uint64_t *dropped)
{
	*offered = atomic_load(&stat_offered);
	*exported = atomic_load(&stat_exported);
	*dropped = atomic_load(&stat_dropped_queue) + atomic_load(&stat_dropped_export);
}
