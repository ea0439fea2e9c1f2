/* batch.c — the batch span processor: encoded batches, export thread, retries, drop counts. */
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

#define SHUTDOWN_BUDGET_MS 5000                /* otel_batch_stop's flush never takes longer */
#define EXPORT_ATTEMPTS    5                   /* per batch, first try included */
#define BACKOFF_FIRST_MS   500                 /* doubles per retry, with jitter */
#define BACKOFF_MAX_MS     8000                /* one wait between retries never exceeds this */
#define DROP_LOG_PERIOD_MS 10000               /* at most one "spans dropped" line per period */
#define ENV_MAX            10000000            /* the largest OTEL_BSP_* value */
#define BATCH_BYTES_MAX    (OTLP_BODY_MAX / 2) /* a batch takes no more spans past this */

/* Up to batch_max spans, encoded as they ended (otlp_exporter_encode_span), in order. */
struct batch {
	struct otlp_buf spans;
	size_t n;
	bool full; /* n == batch_max or BATCH_BYTES_MAX reached: later spans go to the next */
};

/* Guarded by lock where the export thread shares it. The queue is a ring of batches: the oldest
 * (head) is the next exported, the newest takes the spans that end. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool accepting; /* offers may enqueue */
	bool stopping;
	uint64_t stop_deadline_ms;
	pthread_t thread;
	struct batch *ring;          /* NULL unless the export thread runs */
	size_t ring_cap, head, used; /* batches */
	size_t queued, queue_cap;    /* spans */
	size_t batch_max;
	size_t room; /* a batch's free bytes before its first span: the request's head goes there */
	size_t full_len; /* the bytes of the last full batch: a new batch's buffer starts at that */
	long delay_ms, export_timeout_ms;
	const struct otlp_resource *resource;
	struct otlp_exporter *exporter;
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

/* The newest batch with room, starting the next one when it is full; NULL when every batch is
 * in use. Lock held. */
static struct batch *newest(void)
{
	struct batch *b = bsp.used ? &bsp.ring[(bsp.head + bsp.used - 1) % bsp.ring_cap] : NULL;

	if (b && !b->full)
		return b;
	if (bsp.used == bsp.ring_cap)
		return NULL;
	return &bsp.ring[(bsp.head + bsp.used++) % bsp.ring_cap]; /* empty: see take_oldest */
}

void otel_batch_offer(const struct otlp_span *span)
{
	atomic_uint_fast64_t *lost = &stat_dropped_queue;
	const char *reason = NULL;
	struct batch *b;

	atomic_fetch_add(&stat_offered, 1);
	pthread_mutex_lock(&bsp.lock);
	if (!bsp.accepting || bsp.queued == bsp.queue_cap || !(b = newest())) {
		reason = bsp.accepting ? "queue_full" : "shutdown";
	} else {
		size_t mark = b->spans.len;
		if (mark == 0 &&
		    otlp_buf_reserve(&b->spans,
		                     bsp.room > bsp.full_len ? bsp.room : bsp.full_len) == 0)
			b->spans.len = bsp.room; /* no realloc to copy on the way to a full batch */
		if (otlp_exporter_encode_span(bsp.exporter, span, &b->spans) < 0) {
			b->spans.len = mark; /* the span's bytes go; those before stay */
			b->spans.err = 0;
			reason = "export_failed"; /* too large to encode, or out of memory */
			lost = &stat_dropped_export;
		} else {
			b->full = ++b->n == bsp.batch_max || b->spans.len >= BATCH_BYTES_MAX;
			if (b->full && b->spans.len > bsp.full_len)
				bsp.full_len = b->spans.len;
			if (++bsp.queued == 1 || (b->full && b == &bsp.ring[bsp.head]))
				pthread_cond_signal(&bsp.wake);
		}
	}
	pthread_mutex_unlock(&bsp.lock);
	if (reason)
		count_dropped(lost, reason, 1);
}

/* Swaps the oldest batch's spans into out (whose memory, emptied, the batch reuses) and frees
 * its place. Returns how many spans. Lock held, bsp.queued > 0: the oldest batch is not empty
 * (only the newest can be, after a span that failed to encode). */
static size_t take_oldest(struct otlp_buf *out)
{
	struct batch *b = &bsp.ring[bsp.head];
	struct otlp_buf spans = b->spans;
	size_t n = b->n;

	*b = (struct batch){.spans = {.data = out->data, .cap = out->cap}};
	*out = spans;
	bsp.head = (bsp.head + 1) % bsp.ring_cap;
	bsp.used--;
	bsp.queued -= n;
	return n;
}

/* Waits on bsp.wake (lock held) until CLOCK_MONOTONIC time until_ms or a signal. */
static void wait_until(uint64_t until_ms)
{
	struct timespec ts = {(time_t)(until_ms / 1000), (long)(until_ms % 1000) * 1000000};

	pthread_cond_timedwait(&bsp.wake, &bsp.lock, &ts);
}

/* Wraps one batch's encoded spans into a request and posts it, retrying with backoff within
 * OTEL_BSP_EXPORT_TIMEOUT (and the shutdown budget). Returns 0 or a negative error. Called
 * without the lock. */
static int export_batch(struct otlp_buf *spans)
{
	uint64_t deadline = otel_mono_ms() + (uint64_t)bsp.export_timeout_ms, now;
	struct otlp_buf body = {0}, req;
	long retry_after, backoff = BACKOFF_FIRST_MS;
	int rc = otlp_exporter_wrap(bsp.exporter, bsp.resource, spans, bsp.room, &body, &req);

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
		rc = otlp_exporter_post(bsp.exporter, &req, (long)(deadline - now), &retry_after);
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
	otel_diag_log(TRACE_DIAG_WARN, "spans dropped",
	              (const char *const[6]){"queue_full", qs, "export_failed", es, "endpoint",
	                                     otlp_exporter_url(bsp.exporter)});
	logged_queue = q;
	logged_export = e;
	last_ms = otel_mono_ms();
}

static void *export_main(void *arg)
{
	struct otlp_buf spans = {0};

	(void)arg;
	pthread_mutex_lock(&bsp.lock);
	for (;;) {
		uint64_t until;
		size_t n;
		/* Idle: sleep until a span arrives (span ends signal the first one), so that even
		 * a zero schedule delay never spins; then gather for the schedule delay. */
		while (!bsp.stopping && bsp.queued == 0)
			pthread_cond_wait(&bsp.wake, &bsp.lock);
		until = otel_mono_ms() + (uint64_t)bsp.delay_ms;
		while (!bsp.stopping && !bsp.ring[bsp.head].full && otel_mono_ms() < until)
			wait_until(until);
		if (bsp.stopping && (bsp.queued == 0 || otel_mono_ms() >= bsp.stop_deadline_ms))
			break;
		n = take_oldest(&spans);
		pthread_mutex_unlock(&bsp.lock);
		if (export_batch(&spans) == 0)
			atomic_fetch_add(&stat_exported, n);
		else
			count_dropped(&stat_dropped_export, "export_failed", n);
		log_drops(false);
		pthread_mutex_lock(&bsp.lock);
	}
	pthread_mutex_unlock(&bsp.lock);
	otlp_buf_free(&spans);
	return NULL;
}

int otel_batch_start(struct otlp_exporter *e, const struct otlp_resource *r)
{
	pthread_condattr_t attr;

	bsp.exporter = e;
	bsp.resource = r;
	if (!(bsp.room = otlp_exporter_head_room(e, r)))
		return -ENOMEM;
	bsp.ring_cap = (bsp.queue_cap + bsp.batch_max - 1) / bsp.batch_max;
	if (!(bsp.ring = calloc(bsp.ring_cap, sizeof(*bsp.ring))))
		return -ENOMEM;
	/* bsp.wake waits on CLOCK_MONOTONIC, like the deadlines: a wall-clock step changes no wait.
	 * (The export thread does not exist yet; on failure the realtime clock is kept.) */
	if (pthread_condattr_init(&attr) == 0) {
		if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0) {
			pthread_cond_destroy(&bsp.wake);
			pthread_cond_init(&bsp.wake, &attr);
		}
		pthread_condattr_destroy(&attr);
	}
	bsp.head = bsp.used = bsp.queued = 0;
	bsp.stopping = false;
	bsp.accepting = true;
	if (pthread_create(&bsp.thread, NULL, export_main, NULL) != 0) {
		bsp.accepting = false;
		free(bsp.ring);
		bsp.ring = NULL;
		return -ENOMEM;
	}
	pthread_setname_np(bsp.thread, "otel-export"); /* for top -H, perf, make bench */
	return 0;
}

void otel_batch_stop(void)
{
	long budget = bsp.export_timeout_ms;

	if (!bsp.ring)
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
	if (bsp.queued > 0)
		count_dropped(&stat_dropped_export, "shutdown", bsp.queued);
	log_drops(true);
	for (size_t i = 0; i < bsp.ring_cap; i++)
		otlp_buf_free(&bsp.ring[i].spans);
	free(bsp.ring);
	bsp.ring = NULL;
}

void otel_batch_counts(uint64_t *offered, uint64_t *exported, uint64_t *dropped)
{
	*offered = atomic_load(&stat_offered);
	*exported = atomic_load(&stat_exported);
	*dropped = atomic_load(&stat_dropped_queue) + atomic_load(&stat_dropped_export);
}
