/* consumer.c — the consume loop: the channel's owner thread receives and settles, workers bake. */
#include "consumer.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "bake.h"
#include "log.h"
#include "metrics.h"
#include "mq.h"
#include "order.h"
#include "store.h"

#define ATTEMPTS_MAX    8 /* tries of a transient (Redis) failure (~16 s) before dead-lettering */
#define RETRY_FIRST_MS  250
#define RETRY_MAX_MS    4000
#define DRAIN_TIMEOUT_S 7 /* how long a stop waits for in-flight orders */

enum outcome {
	ACK,         /* done (or already done) */
	DEAD_LETTER, /* nack without requeue: to "<queue>.dead" */
	LEAVE,       /* stopping mid-retry: leave unacked; the broker redelivers it */
};

/* A delivery on its way to a worker, then its outcome on its way back to the owner. */
struct job {
	struct mq_delivery d;
	unsigned generation;
	uint64_t tag;
	enum outcome outcome;
	struct job *next;
};

struct worker {
	struct consumer *c;
	pthread_t thread;
	struct store *store; /* this worker's own Redis connection */
};

struct consumer {
	struct config cfg;
	struct mq *mq; /* owned by the thread in consumer_run */
	int wake;      /* eventfd: results are ready, or stop was asked */
	atomic_bool stop;
	atomic_bool connected;
	pthread_mutex_t lock;
	pthread_cond_t work;
	struct job *queue, *queue_tail; /* deliveries waiting for a worker */
	struct job *done;               /* outcomes waiting to be settled */
	int busy;                       /* jobs being processed */
	bool quit;                      /* workers exit once the queue is empty */
	int nworkers;
	struct worker *workers;
};

static struct metric *m_baked, *m_duration, *m_dead, *m_redelivered, *m_already, *m_retries;

static void wake(struct consumer *c)
{
	uint64_t one = 1;

	while (write(c->wake, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

/* Sleeps ms milliseconds in short slices, returning early once stop is set. */
static void sleep_unless_stopped(struct consumer *c, int ms)
{
	struct timespec slice = {0, 50 * 1000000L};

	for (int waited = 0; waited < ms && !atomic_load(&c->stop); waited += 50)
		nanosleep(&slice, NULL);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One attempt at an order: skip it when finished, else baking -> bake -> finished.
 * Returns 0 when the order is finished, or a store_* error. */
static int bake_order(struct worker *w, const char *key)
{
	struct order o;
	double t0;
	char rounds[16];
	int rc, n;

	rc = store_order_get(w->store, key, &o);
	if (rc < 0)
		return rc;
	if (strcmp(o.status, "finished") == 0) {
		metrics_add(m_already, 1);
		log_info("order already finished, not baking again", "order_key", key);
		return 0;
	}
	rc = store_order_set_status(w->store, key, "baking");
	if (rc == STORE_REFUSED)
		return 0; /* finished meanwhile by another delivery */
	if (rc < 0)
		return rc;
	log_info("baking order", "order_key", key, "pastry", o.pastry);
	t0 = now_s();
	n = bake(o.pastry, w->c->cfg.bake_time_scale);
	metrics_add(m_duration, now_s() - t0);
	rc = store_order_set_status(w->store, key, "finished");
	if (rc < 0 && rc != STORE_REFUSED)
		return rc;
	snprintf(rounds, sizeof(rounds), "%d", n);
	metrics_add(m_baked, 1);
	log_info("order finished", "order_key", key, "rounds", rounds);
	return 0;
}

/* Decides what becomes of one delivery. Transient failures are retried here with capped
 * exponential backoff; a bad message or an unknown order is dead-lettered at once. */
static enum outcome process(struct worker *w, const struct mq_delivery *d)
{
	char key[ORDER_KEY_LEN + 1];
	int delay = RETRY_FIRST_MS;

	if (d->redelivered)
		metrics_add(m_redelivered, 1);
	if (order_message_parse(d->body, d->len, key) < 0) {
		log_warn("malformed message, dead-lettering", "message_id", d->message_id);
		metrics_add(m_dead, 1, "malformed");
		return DEAD_LETTER;
	}
	for (int attempt = 1;; attempt++) {
		int rc = bake_order(w, key);
		if (rc == 0)
			return ACK;
		if (rc == STORE_NOT_FOUND) {
			log_warn("unknown order, dead-lettering", "order_key", key);
			metrics_add(m_dead, 1, "unknown_order");
			return DEAD_LETTER;
		}
		if (atomic_load(&w->c->stop)) {
			log_warn("stopping during a retry, leaving the order to redelivery",
			         "order_key", key);
			return LEAVE;
		}
		if (attempt == ATTEMPTS_MAX) {
			log_error("redis unavailable, giving up on order", "order_key", key);
			store_order_set_status(w->store, key, "failed");
			metrics_add(m_dead, 1, "store_unavailable");
			return DEAD_LETTER;
		}
		metrics_add(m_retries, 1);
		sleep_unless_stopped(w->c, delay);
		delay = delay * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : delay * 2;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct consumer *c = w->c;
	struct job *j;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (!c->queue && !c->quit)
			pthread_cond_wait(&c->work, &c->lock);
		if (!c->queue)
			break;
		j = c->queue;
		c->queue = j->next;
		if (!c->queue)
			c->queue_tail = NULL;
		c->busy++;
		pthread_mutex_unlock(&c->lock);

		j->outcome = process(w, &j->d);
		mq_delivery_clear(&j->d);

		pthread_mutex_lock(&c->lock);
		c->busy--;
		j->next = c->done;
		c->done = j;
		wake(c);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* Hands a delivery (ownership moves) to the workers; on no memory it is left unacked. */
static void enqueue(struct consumer *c, struct mq_delivery *d)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j) {
		log_error("out of memory queueing a delivery");
		mq_delivery_clear(d);
		return;
	}
	j->d = *d;
	j->generation = d->generation;
	j->tag = d->tag;
	pthread_mutex_lock(&c->lock);
	if (c->queue_tail)
		c->queue_tail->next = j;
	else
		c->queue = j;
	c->queue_tail = j;
	pthread_cond_signal(&c->work);
	pthread_mutex_unlock(&c->lock);
}

/* Drops deliveries no worker has started: their connection is gone and the broker will
 * redeliver them. */
static void purge_queue(struct consumer *c)
{
	struct job *j;

	pthread_mutex_lock(&c->lock);
	j = c->queue;
	c->queue = c->queue_tail = NULL;
	pthread_mutex_unlock(&c->lock);
	while (j) {
		struct job *next = j->next;
		mq_delivery_clear(&j->d);
		free(j);
		j = next;
	}
}

/* Acks or dead-letters every finished job on the owner's connection. */
static void settle(struct consumer *c)
{
	uint64_t n;
	struct job *j;

	while (read(c->wake, &n, sizeof(n)) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&c->lock);
	j = c->done;
	c->done = NULL;
	pthread_mutex_unlock(&c->lock);
	while (j) {
		struct job *next = j->next;
		if (j->outcome != LEAVE)
			mq_settle(c->mq, j->generation, j->tag, j->outcome == DEAD_LETTER);
		free(j);
		j = next;
	}
}

static bool in_flight(struct consumer *c)
{
	bool busy;

	pthread_mutex_lock(&c->lock);
	busy = c->queue || c->busy > 0 || c->done;
	pthread_mutex_unlock(&c->lock);
	return busy;
}

static void wait_wake(struct consumer *c, int ms)
{
	struct pollfd p = {c->wake, POLLIN, 0};

	poll(&p, 1, ms);
}

int consumer_run(struct consumer *c)
{
	struct mq_delivery d;
	double deadline;

	while (!atomic_load(&c->stop)) {
		int rc = mq_next(c->mq, &d, 1000, c->wake);
		if (rc == 1)
			enqueue(c, &d);
		if (rc < 0) {
			atomic_store(&c->connected, false);
			purge_queue(c);
			wait_wake(c, 200);
		} else {
			atomic_store(&c->connected, true);
		}
		settle(c);
	}
	log_info("stopping: finishing in-flight orders");
	deadline = now_s() + DRAIN_TIMEOUT_S;
	while (in_flight(c) && now_s() < deadline) {
		wait_wake(c, 100);
		settle(c);
	}
	settle(c);
	return 0;
}

void consumer_stop(struct consumer *c)
{
	atomic_store(&c->stop, true);
	wake(c);
}

bool consumer_connected(struct consumer *c)
{
	return atomic_load(&c->connected);
}

static int register_metrics(void)
{
	static const char *const reason[] = {"reason", NULL};
	static const double bounds[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

	m_baked = metrics_counter("baker_orders_baked_total", "Orders baked and finished.", NULL);
	m_duration = metrics_histogram("baker_bake_duration_seconds",
	                               "Time spent baking one order, mistakes included.", NULL,
	                               bounds, sizeof(bounds) / sizeof(bounds[0]));
	m_dead = metrics_counter("baker_messages_dead_lettered_total",
	                         "Messages sent to the dead-letter queue, by reason.", reason);
	m_redelivered = metrics_counter("baker_redeliveries_total",
	                                "Deliveries flagged as redelivered by RabbitMQ.", NULL);
	m_already =
	    metrics_counter("baker_orders_already_finished_total",
	                    "Deliveries of orders that were already finished (acked).", NULL);
	m_retries = metrics_counter("baker_store_retries_total",
	                            "Retries after Redis was unavailable.", NULL);
	return m_baked && m_duration && m_dead && m_redelivered && m_already && m_retries ? 0 : -1;
}

struct consumer *consumer_new(const struct config *cfg)
{
	struct consumer *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->cfg = *cfg;
	c->wake = -1;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->work, NULL);
	if (register_metrics() < 0)
		goto fail;
	c->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	c->mq = mq_new(cfg, cfg->baker_concurrency);
	c->workers = calloc((size_t)cfg->baker_concurrency, sizeof(*c->workers));
	if (c->wake < 0 || !c->mq || !c->workers)
		goto fail;
	for (int i = 0; i < cfg->baker_concurrency; i++) {
		struct worker *w = &c->workers[i];
		w->c = c;
		w->store = store_new(cfg->db_host, cfg->db_port);
		if (!w->store || pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			store_free(w->store);
			goto fail;
		}
		c->nworkers++;
	}
	return c;
fail:
	consumer_free(c);
	return NULL;
}

void consumer_free(struct consumer *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->quit = true;
	pthread_cond_broadcast(&c->work);
	pthread_mutex_unlock(&c->lock);
	for (int i = 0; i < c->nworkers; i++) {
		pthread_join(c->workers[i].thread, NULL);
		store_free(c->workers[i].store);
	}
	purge_queue(c);
	while (c->done) { /* outcomes after the last settle: the broker redelivers them */
		struct job *next = c->done->next;
		free(c->done);
		c->done = next;
	}
	mq_free(c->mq);
	if (c->wake >= 0)
		close(c->wake);
	free(c->workers);
	pthread_cond_destroy(&c->work);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
