/* guard.c — a watchdog that ends civetweb connections whose head, body or idle time ran out. */
#include "guard.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

#define GUARD_SIGNAL SIGUSR2
#define TICK_MS      50
/* While threads run short, a connection that has waited this long is ended. */
#define PRESSURE_AGE_MS 1000
/* A thread signalled whose wait has not ended (the signal came between two reads) is
 * signalled again after this long: not at once, so that a 408 being written gets out. */
#define RESIGNAL_MS 200

enum state { HEAD, BODY, BUSY, IDLE };

/* One per civetweb thread, so one per connection held. */
struct slot {
	pthread_t thread; /* the civetweb thread serving the connection */
	long long since;  /* when the current state began, ms on CLOCK_MONOTONIC */
	long long due;    /* its deadline; 0 for none (BUSY) */
	long long signalled;
	enum state state;
	bool open; /* a connection holds it */
	bool expired;
	struct slot *next_free;
};

static struct guard_limits limits;
static struct slot *slots, *free_slots;
static int used;
static bool stopping, started;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake; /* on CLOCK_MONOTONIC: guard_stop's */
static pthread_t watchdog;

/* Does nothing: the signal's purpose is the EINTR of the poll it interrupts. */
static void on_signal(int sig)
{
	(void)sig;
}

/* Ends the waits that are due and, while threads run short, every wait of a second or more
 * (freeing the threads at once serves the connections queued behind them soonest); called
 * with the lock held. A wait already ended is signalled again now and then: a signal that came
 * between two reads ended nothing. */
static void sweep(long long now)
{
	bool pressure = used > limits.threads - limits.threads / 8;

	for (int i = 0; i < limits.threads; i++) {
		struct slot *s = &slots[i];

		if (!s->open || s->state == BUSY)
			continue;
		if (!s->expired &&
		    ((s->due && now >= s->due) || (pressure && now - s->since >= PRESSURE_AGE_MS)))
			s->expired = true;
		if (s->expired && now - s->signalled >= RESIGNAL_MS) {
			s->signalled = now;
			pthread_kill(s->thread, GUARD_SIGNAL);
		}
	}
}

static void *watch(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	while (!stopping) {
		struct timespec until = clock_timespec(clock_now_ms() + TICK_MS);

		pthread_cond_timedwait(&wake, &lock, &until);
		if (!stopping)
			sweep(clock_now_ms());
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

int guard_start(const struct guard_limits *l)
{
	struct sigaction sa;
	int rc;

	if (l->header_ms <= 0 || l->body_ms <= 0 || l->keepalive_ms <= 0 || l->threads <= 0)
		return -EINVAL;
	limits = *l;
	slots = calloc((size_t)l->threads, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (int i = l->threads - 1; i >= 0; i--) {
		slots[i].next_free = free_slots;
		free_slots = &slots[i];
	}
	/* No SA_RESTART: the point is that the poll or recv it lands in fails with EINTR. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(GUARD_SIGNAL, &sa, NULL) < 0) {
		rc = -errno;
		goto fail;
	}
	if ((rc = clock_cond_init(&wake)) < 0)
		goto fail;
	stopping = false;
	rc = -pthread_create(&watchdog, NULL, watch, NULL);
	if (rc < 0) {
		pthread_cond_destroy(&wake);
		goto fail;
	}
	started = true;
	return 0;
fail:
	free(slots);
	slots = free_slots = NULL;
	return rc;
}

void guard_stop(void)
{
	if (!started)
		return;
	pthread_mutex_lock(&lock);
	stopping = true;
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&lock);
	pthread_join(watchdog, NULL);
	pthread_cond_destroy(&wake);
	free(slots);
	slots = free_slots = NULL;
	used = 0;
	started = false;
}

/* Moves c into state, whose deadline is ms from now (0: none). */
static void set_state(const struct mg_connection *c, enum state state, int ms)
{
	struct slot *s = mg_get_user_connection_data(c);

	if (!s)
		return;
	pthread_mutex_lock(&lock);
	s->state = state;
	s->since = clock_now_ms();
	s->due = ms > 0 ? s->since + ms : 0;
	s->expired = false;
	pthread_mutex_unlock(&lock);
}

int guard_open(const struct mg_connection *c, void **data)
{
	struct slot *s;

	(void)c;
	pthread_mutex_lock(&lock);
	s = free_slots;
	if (s) {
		free_slots = s->next_free;
		used++;
		s->open = true;
		s->thread = pthread_self();
		s->state = HEAD;
		s->since = clock_now_ms();
		s->due = s->since + limits.header_ms;
		s->signalled = 0;
		s->expired = false;
	}
	pthread_mutex_unlock(&lock);
	*data = s;
	return 0;
}

void guard_close(const struct mg_connection *c)
{
	struct slot *s = mg_get_user_connection_data(c);

	if (!s)
		return;
	pthread_mutex_lock(&lock);
	s->open = false;
	s->next_free = free_slots;
	free_slots = s;
	used--;
	pthread_mutex_unlock(&lock);
}

void guard_head_done(const struct mg_connection *c)
{
	set_state(c, BODY, limits.body_ms);
}

void guard_busy(const struct mg_connection *c)
{
	set_state(c, BUSY, 0);
}

void guard_request_done(const struct mg_connection *c, int status)
{
	(void)status;
	set_state(c, IDLE, limits.keepalive_ms);
}

bool guard_expired(const struct mg_connection *c)
{
	struct slot *s = mg_get_user_connection_data(c);
	bool expired;

	if (!s)
		return false;
	pthread_mutex_lock(&lock);
	expired = s->expired;
	pthread_mutex_unlock(&lock);
	return expired;
}

int guard_connections(void)
{
	int n;

	pthread_mutex_lock(&lock);
	n = used;
	pthread_mutex_unlock(&lock);
	return n;
}
