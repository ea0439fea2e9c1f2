/* sentinel.c — finds the Redis primary through Sentinel and follows +switch-master events. */
#include "sentinel.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backoff.h"
#include "log.h"

#define TIMEOUT_MS   1000 /* connect and each reply, per Sentinel */
#define IDLE_PINGS   3    /* a watched Sentinel silent this many seconds is left */
#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 1000

struct sentinel {
	struct addr addrs[ADDR_LIST_MAX];
	int n;
	char master[SENTINEL_NAME_MAX];
	char password[SENTINEL_PASSWORD_MAX];
	pthread_mutex_t lock; /* primary, known, next */
	struct addr primary;
	bool known;
	int next; /* the Sentinel asked first */
	atomic_uint gen;
	int refs; /* under refs_lock */
	pthread_t thread;
	int stop[2]; /* a pipe: written to stop the watcher */
};

static pthread_mutex_t refs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sentinel *shared;

/* Connects to a, AUTHs and sends the commands argv (n of them, argcs[i] arguments each,
 * ARGS_MAX apart) pipelined; replies to them go to r (AUTH's is checked here). Returns the
 * context, or NULL with why set; *refused is true when AUTH was refused. */
#define ARGS_MAX 4
static redisContext *open_sentinel(const struct sentinel *s, const struct addr *a, int n,
                                   const int *argcs, const char **argv, redisReply **r,
                                   bool *refused, char *why, size_t cap)
{
	struct timeval tv = {TIMEOUT_MS / 1000, (TIMEOUT_MS % 1000) * 1000};
	redisContext *c = redisConnectWithTimeout(a->host, a->port, tv);
	redisReply *auth = NULL;
	int got = 0;

	*refused = false;
	if (!c || c->err || redisSetTimeout(c, tv) != REDIS_OK)
		goto fail;
	if (s->password[0])
		redisAppendCommandArgv(c, 2, (const char *[]){"AUTH", s->password}, NULL);
	for (int i = 0; i < n; i++)
		redisAppendCommandArgv(c, argcs[i], argv + i * ARGS_MAX, NULL);
	if (s->password[0]) {
		if (redisGetReply(c, (void **)&auth) != REDIS_OK)
			goto fail;
		if (auth->type == REDIS_REPLY_ERROR) {
			snprintf(why, cap, "sentinel %s:%d: %s", a->host, a->port, auth->str);
			*refused = true;
		}
		freeReplyObject(auth);
		if (*refused)
			goto out;
	}
	for (got = 0; got < n; got++)
		if (redisGetReply(c, (void **)&r[got]) != REDIS_OK)
			goto fail;
	for (int i = 0; i < n; i++) {
		if (r[i]->type == REDIS_REPLY_ERROR) {
			snprintf(why, cap, "sentinel %s:%d: %s", a->host, a->port, r[i]->str);
			*refused = strncmp(r[i]->str, "NOAUTH", 6) == 0;
			goto out;
		}
	}
	return c;
fail:
	snprintf(why, cap, "sentinel %s:%d: %s", a->host, a->port, c ? c->errstr : "out of memory");
out:
	while (got > 0)
		freeReplyObject(r[--got]);
	redisFree(c);
	return NULL;
}

/* Reads an address reply (["ip", "port"]) into *out. Returns 0 or -ENOENT. */
static int reply_addr(const redisReply *r, struct addr *out)
{
	char buf[ADDR_HOST_MAX + 8];

	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING)
		return -ENOENT;
	snprintf(buf, sizeof(buf), "%s%s%s:%s", strchr(r->element[0]->str, ':') ? "[" : "",
	         r->element[0]->str, strchr(r->element[0]->str, ':') ? "]" : "",
	         r->element[1]->str);
	return addr_parse(buf, out) < 0 ? -ENOENT : 0;
}

/* Sets the primary to a (under s->lock): a change of a known address is a new generation. */
static void set_primary(struct sentinel *s, const struct addr *a)
{
	char addr[ADDR_HOST_MAX + 8];

	if (s->known && (strcmp(s->primary.host, a->host) != 0 || s->primary.port != a->port)) {
		atomic_fetch_add(&s->gen, 1);
		snprintf(addr, sizeof(addr), "%s:%d", a->host, a->port);
		log_info("redis primary moved", "master", s->master, "addr", addr);
	}
	s->primary = *a;
	s->known = true;
}

int sentinel_primary(struct sentinel *s, struct addr *out, unsigned *gen, char *why, size_t cap)
{
	const char *argv[ARGS_MAX] = {"SENTINEL", "get-master-addr-by-name", s->master};
	int rc = -EAGAIN;

	snprintf(why, cap, "no sentinel answered");
	pthread_mutex_lock(&s->lock);
	for (int i = 0; !s->known && i < s->n; i++) {
		const struct addr *a = &s->addrs[(s->next + i) % s->n];
		redisReply *r;
		bool refused;
		redisContext *c = open_sentinel(s, a, 1, (int[]){3}, argv, &r, &refused, why, cap);

		if (!c) {
			rc = refused ? -EACCES : rc;
			continue;
		}
		if (reply_addr(r, &s->primary) == 0)
			s->known = true;
		else
			snprintf(why, cap, "sentinel %s:%d does not know master %s", a->host,
			         a->port, s->master);
		freeReplyObject(r);
		redisFree(c);
	}
	if (s->known) {
		*out = s->primary;
		rc = 0;
	}
	*gen = atomic_load(&s->gen);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

void sentinel_forget(struct sentinel *s, unsigned gen)
{
	pthread_mutex_lock(&s->lock);
	if (atomic_load(&s->gen) == gen) {
		s->known = false;
		s->next = (s->next + 1) % s->n;
		atomic_fetch_add(&s->gen, 1);
	}
	pthread_mutex_unlock(&s->lock);
}

unsigned sentinel_generation(struct sentinel *s)
{
	return atomic_load(&s->gen);
}

/* Waits up to ms for the stop pipe or, when c is not NULL, c's socket; returns 1 stop, 0 timeout,
 * 2 readable socket, -1 error. */
static int wait_for(struct sentinel *s, redisContext *c, int ms)
{
	struct pollfd p[2] = {{s->stop[0], POLLIN, 0}, {c ? c->fd : -1, POLLIN, 0}};
	int n = poll(p, c ? 2 : 1, ms);

	if (n < 0)
		return -1;
	if (p[0].revents)
		return 1;
	if (n > 0)
		return p[1].revents & POLLIN ? 2 : -1;
	return 0;
}

/* Handles one message of the subscription: a +switch-master for our master moves the
 * primary. Returns 0, or -EPROTO for a reply that is not a message or pong. */
static int on_message(struct sentinel *s, const redisReply *r)
{
	char name[SENTINEL_NAME_MAX], host[ADDR_HOST_MAX], hostport[ADDR_HOST_MAX + 8];
	const char *text;
	struct addr a;
	int port;

	if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING)
		return -EPROTO;
	if (strcmp(r->element[0]->str, "pong") == 0)
		return 0;
	if (strcmp(r->element[0]->str, "message") != 0 || r->elements != 3 ||
	    r->element[2]->type != REDIS_REPLY_STRING)
		return -EPROTO;
	/* "<master> <old ip> <old port> <new ip> <new port>" */
	text = r->element[2]->str;
	if (sscanf(text, "%127s %*s %*d %255s %d", name, host, &port) != 3 ||
	    strcmp(name, s->master) != 0)
		return 0;
	snprintf(hostport, sizeof(hostport), "%s%s%s:%d", strchr(host, ':') ? "[" : "", host,
	         strchr(host, ':') ? "]" : "", port);
	if (addr_parse(hostport, &a) < 0)
		return 0;
	pthread_mutex_lock(&s->lock);
	set_primary(s, &a);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* Follows one subscribed Sentinel until it fails or the watcher stops; returns 1 on stop. */
static int follow(struct sentinel *s, redisContext *c)
{
	int idle = 0;

	for (;;) {
		redisReply *r = NULL;
		int w = wait_for(s, c, 1000), done = 0;

		if (w == 1 || w < 0)
			return w;
		if (w == 0) { /* silent a second: is it still there? */
			if (++idle > IDLE_PINGS)
				return 0;
			redisAppendCommand(c, "PING");
			while (!done)
				if (redisBufferWrite(c, &done) != REDIS_OK)
					return 0;
			continue;
		}
		idle = 0;
		if (redisBufferRead(c) != REDIS_OK)
			return 0;
		while (redisGetReplyFromReader(c, (void **)&r) == REDIS_OK && r) {
			int rc = on_message(s, r);
			freeReplyObject(r);
			r = NULL;
			if (rc < 0)
				return 0;
		}
		if (c->err)
			return 0;
	}
}

/* The watcher: subscribes to +switch-master on each Sentinel in turn, asking it for the
 * primary in the same round trip (no event can fall between the two). */
static void *watch_main(void *arg)
{
	struct sentinel *s = arg;
	const char *argv[2 * ARGS_MAX] = {"SENTINEL",  "get-master-addr-by-name", s->master, NULL,
	                                  "SUBSCRIBE", "+switch-master"};
	struct backoff backoff = {0};
	bool lost_logged = false, watching = false;
	char why[256];
	int i = 0;

	for (;;) {
		redisReply *r[2];
		bool refused;
		struct addr a;
		const struct addr *at = &s->addrs[i];
		redisContext *c =
		    open_sentinel(s, at, 2, (int[]){3, 2}, argv, r, &refused, why, sizeof(why));
		int stop;

		if (c) {
			if (reply_addr(r[0], &a) == 0) {
				pthread_mutex_lock(&s->lock);
				set_primary(s, &a);
				pthread_mutex_unlock(&s->lock);
			}
			freeReplyObject(r[0]);
			freeReplyObject(r[1]);
			backoff_reset(&backoff);
			if (lost_logged)
				log_info("redis sentinel watched", "addr", at->host);
			lost_logged = false;
			watching = true;
			stop = follow(s, c);
			redisFree(c);
			if (stop == 1)
				break;
			snprintf(why, sizeof(why), "sentinel %s:%d: connection lost", at->host,
			         at->port);
		}
		/* Only a watch that worked is worth a line: a refused password is the stores' to
		 * report, once. */
		if (watching && !lost_logged)
			log_warn("redis sentinel watch lost", "error", why);
		lost_logged = lost_logged || watching;
		i = (i + 1) % s->n;
		if (wait_for(s, NULL, backoff_fail(&backoff, 0, RETRY_MIN_MS, RETRY_MAX_MS)) == 1)
			break;
	}
	return NULL;
}

/* Frees s (its thread not running). */
static void destroy(struct sentinel *s)
{
	if (s->stop[0] >= 0)
		close(s->stop[0]);
	if (s->stop[1] >= 0)
		close(s->stop[1]);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* True when s watches the same Sentinels and master. */
static bool same(const struct sentinel *s, const struct addr *addrs, int n, const char *master,
                 const char *password)
{
	if (s->n != n || strcmp(s->master, master) != 0 || strcmp(s->password, password) != 0)
		return false;
	for (int i = 0; i < n; i++)
		if (strcmp(s->addrs[i].host, addrs[i].host) != 0 ||
		    s->addrs[i].port != addrs[i].port)
			return false;
	return true;
}

struct sentinel *sentinel_acquire(const struct addr *addrs, int n, const char *master,
                                  const char *password)
{
	struct sentinel *s = NULL;

	if (n < 1 || n > ADDR_LIST_MAX || strlen(master) >= SENTINEL_NAME_MAX ||
	    strlen(password) >= SENTINEL_PASSWORD_MAX)
		return NULL;
	pthread_mutex_lock(&refs_lock);
	if (shared) {
		s = same(shared, addrs, n, master, password) ? shared : NULL;
		if (s)
			s->refs++;
		goto out;
	}
	if (!(s = calloc(1, sizeof(*s))))
		goto out;
	memcpy(s->addrs, addrs, (size_t)n * sizeof(*addrs));
	s->n = n;
	snprintf(s->master, sizeof(s->master), "%s", master);
	snprintf(s->password, sizeof(s->password), "%s", password);
	pthread_mutex_init(&s->lock, NULL);
	s->stop[0] = s->stop[1] = -1;
	if (pipe(s->stop) < 0 || pthread_create(&s->thread, NULL, watch_main, s) != 0)
		goto fail;
	pthread_setname_np(s->thread, "sentinel");
	s->refs = 1;
	shared = s;
	goto out;
fail:
	destroy(s);
	s = NULL;
out:
	pthread_mutex_unlock(&refs_lock);
	return s;
}

void sentinel_release(struct sentinel *s)
{
	bool last;

	if (!s)
		return;
	pthread_mutex_lock(&refs_lock);
	last = --s->refs == 0;
	if (last)
		shared = NULL;
	pthread_mutex_unlock(&refs_lock);
	if (!last)
		return;
	if (write(s->stop[1], "x", 1) != 1)
		log_error("cannot stop the sentinel watcher");
	pthread_join(s->thread, NULL);
	destroy(s);
}
