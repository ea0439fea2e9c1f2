/* probe.c — readiness: a thread pinging Redis and RabbitMQ and keeping one flag. */
#include "probe.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "clock.h"
#include "log.h"
#include "mq_publisher.h"
#include "store.h"

#define INTERVAL_MS 1000

struct probe {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stopping;
	atomic_bool ready;
	struct store *store;
	struct mq_publisher *mq; /* NULL when RabbitMQ is not checked */
	const char *queue, *queue_type;
	bool mismatch_logged; /* the last ping found the queue with other arguments */
};

static void *run(void *arg)
{
	struct probe *p = arg;

	pthread_mutex_lock(&p->lock);
	while (!p->stopping) {
		pthread_mutex_unlock(&p->lock);
		bool ok = store_ping(p->store) == 0;
		int rc = p->mq ? mq_publisher_ping(p->mq) : 0;
		if (rc == -EEXIST && !p->mismatch_logged) /* not ready until someone acts */
			log_error("cannot declare the orders queue", "queue", p->queue,
			          "ORDERS_QUEUE_TYPE", p->queue_type, "error", MQ_EEXIST_FIX);
		p->mismatch_logged = rc == -EEXIST;
		ok = rc == 0 && ok;
		atomic_store(&p->ready, ok);
		pthread_mutex_lock(&p->lock);
		struct timespec until = clock_timespec(clock_now_ms() + INTERVAL_MS);
		while (!p->stopping && pthread_cond_timedwait(&p->wake, &p->lock, &until) == 0)
			;
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Frees p and what it holds (its thread is not running). */
static void probe_free(struct probe *p)
{
	store_free(p->store);
	mq_publisher_free(p->mq);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

struct probe *probe_start(const struct config *cfg, bool with_mq)
{
	struct probe *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	pthread_mutex_init(&p->lock, NULL);
	clock_cond_init(&p->wake);
	p->queue = cfg->mq.queue;
	p->queue_type = MQ_QUEUE_TYPE_NAME(cfg->mq.queue_type);
	p->store = store_new(&cfg->redis);
	if (!p->store || (with_mq && !(p->mq = mq_publisher_new(&cfg->mq))) ||
	    pthread_create(&p->thread, NULL, run, p) != 0)
		goto fail;
	return p;
fail:
	probe_free(p);
	return NULL;
}

bool probe_ready(struct probe *p)
{
	return atomic_load(&p->ready);
}

void probe_stop(struct probe *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	probe_free(p);
}
