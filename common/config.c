/* config.c — reads and validates the environment into one struct config. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "log.h"
#include "store.h"

/* Reports a bad value the way the tracing SDK reports a bad OTEL_* one; returns -EINVAL. */
static int bad(const char *var, const char *value, const char *why)
{
	log_error("invalid environment variable", "variable", var, "value", value, "error", why);
	return -EINVAL;
}

/* Reads an integer in [min, max] from var into *out; unset keeps the default. */
static int env_int(const char *var, long min, long max, int *out)
{
	const char *v = getenv(var);
	char *end, why[96];
	long n;

	if (!v)
		return 0;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < min || n > max) {
		snprintf(why, sizeof(why), "must be an integer from %ld to %ld", min, max);
		return bad(var, v, why);
	}
	*out = (int)n;
	return 0;
}

static int env_hostport(const char *var, char *host, size_t cap, int *port)
{
	const char *v = getenv(var);
	struct addr a;

	if (!v)
		return 0;
	if (addr_parse(v, &a) < 0 || strlen(a.host) >= cap)
		return bad(var, v, "must be host:port with a port from 1 to 65535");
	memcpy(host, a.host, strlen(a.host) + 1);
	*port = a.port;
	return 0;
}

/* Reads a comma-separated list of host:port, ADDR_LIST_MAX at most, into out[0..*n). */
static int env_hostlist(const char *var, struct addr *out, size_t *n)
{
	const char *v = getenv(var);
	struct addr list[ADDR_LIST_MAX];
	int k;

	if (!v)
		return 0;
	if ((k = addr_list_parse(v, list, ADDR_LIST_MAX)) < 0)
		return bad(var, v,
		           "must be host:port (ports 1 to 65535), or up to 8 of them, "
		           "comma-separated");
	memcpy(out, list, (size_t)k * sizeof(*list));
	*n = (size_t)k;
	return 0;
}

static int env_queue_type(const char *var, enum mq_queue_type *out)
{
	const char *v = getenv(var);

	if (!v)
		return 0;
	if (strcmp(v, "quorum") != 0 && strcmp(v, "classic") != 0)
		return bad(var, v, "must be quorum or classic");
	*out = strcmp(v, "quorum") == 0 ? MQ_QUORUM : MQ_CLASSIC;
	return 0;
}

/* Copies a non-empty string variable of fewer than cap bytes into out. */
static int env_str(const char *var, char *out, size_t cap)
{
	const char *v = getenv(var);
	size_t n;

	if (!v)
		return 0;
	n = strlen(v);
	if (n == 0 || n >= cap) /* never echo a password */
		return bad(var, strstr(var, "PASSWORD") ? "(hidden)" : v,
		           "must be a non-empty string of reasonable length");
	memcpy(out, v, n + 1);
	return 0;
}

/* Reads the Redis settings into *r: DB_HOST, or REDIS_SENTINELS and REDIS_SENTINEL_MASTER;
 * REDIS_PASSWORD; REDIS_WAIT_REPLICAS (default 1 with Sentinels, else 0). */
static int env_redis(struct store_config *r)
{
	const char *v = getenv("REDIS_SENTINELS");
	int rc = 0, n;

	rc |= env_hostport("DB_HOST", r->addr.host, sizeof(r->addr.host), &r->addr.port);
	if (v) {
		n = addr_list_parse(v, r->sentinels, ADDR_LIST_MAX);
		if (n < 0)
			rc |= bad("REDIS_SENTINELS", v,
			          "must be a comma-separated list of up to 8 host:port");
		else
			r->n_sentinels = n;
	}
	rc |= env_str("REDIS_SENTINEL_MASTER", r->master, sizeof(r->master));
	rc |= env_str("REDIS_PASSWORD", r->password, sizeof(r->password));
	r->wait_replicas = r->n_sentinels > 0 ? 1 : 0;
	rc |= env_int("REDIS_WAIT_REPLICAS", 0, 16, &r->wait_replicas);
	return rc;
}

static int env_scale(const char *var, double *out)
{
	const char *v = getenv(var);
	char *end;
	double d;

	if (!v)
		return 0;
	errno = 0;
	d = strtod(v, &end);
	if (errno || end == v || *end || !isfinite(d) || d < 0 || d > 1000)
		return bad(var, v, "must be a number from 0 to 1000");
	*out = d;
	return 0;
}

static int env_level(const char *var, enum log_level *out)
{
	const char *v = getenv(var);

	if (!v)
		return 0;
	if (log_level_parse(v, out) < 0)
		return bad(var, v, "must be one of debug, info, warn, error");
	return 0;
}

int config_load(struct config *cfg, const char *service)
{
	int rc = 0;

	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->service, sizeof(cfg->service), "%s", service);
	strcpy(cfg->redis.addr.host, "127.0.0.1");
	cfg->redis.addr.port = 6379;
	strcpy(cfg->redis.master, "mymaster");
	strcpy(cfg->mq.hosts[0].host, "127.0.0.1");
	cfg->mq.hosts[0].port = 5672;
	cfg->mq.nhosts = 1;
	strcpy(cfg->mq.user, "guest");
	strcpy(cfg->mq.pass, "guest");
	strcpy(cfg->mq.queue, "orders");
	cfg->mq.queue_type = MQ_QUORUM;
	cfg->mq.delivery_limit = MQ_DELIVERY_LIMIT;
	cfg->port = 8000;
	cfg->health_port = 8001;
	cfg->baker_concurrency = 4;
	cfg->bake_time_scale = 1.0;
	cfg->order_queue_deadline_ms = STORE_QUEUE_DEADLINE_MS;
	cfg->log_level = LOG_LEVEL_INFO;

	/* Check every variable so one run names all the bad ones. */
	rc |= env_redis(&cfg->redis);
	rc |= env_hostlist("RABBIT_HOST", cfg->mq.hosts, &cfg->mq.nhosts);
	rc |= env_str("RABBIT_USERNAME", cfg->mq.user, sizeof(cfg->mq.user));
	rc |= env_str("RABBIT_PASSWORD", cfg->mq.pass, sizeof(cfg->mq.pass));
	rc |= env_str("ORDERS_QUEUE", cfg->mq.queue, sizeof(cfg->mq.queue));
	rc |= env_queue_type("ORDERS_QUEUE_TYPE", &cfg->mq.queue_type);
	rc |= env_int("ORDERS_DELIVERY_LIMIT", 1, MQ_DELIVERY_LIMIT_MAX, &cfg->mq.delivery_limit);
	rc |= env_level("LOG_LEVEL", &cfg->log_level);
	if (strcmp(service, "reception") == 0) {
		rc |= env_int("PORT", 1, 65535, &cfg->port);
		rc |= env_int("ORDER_QUEUE_DEADLINE_MS", 10000, 86400000,
		              &cfg->order_queue_deadline_ms);
		/* HTTP clients' deadlines (reception/guard.h) */
		cfg->http_header_timeout_ms = 5000;
		cfg->http_body_timeout_ms = 10000;
		cfg->http_keepalive_timeout_ms = 5000;
		rc |= env_int("HTTP_HEADER_TIMEOUT_MS", 100, 600000, &cfg->http_header_timeout_ms);
		rc |= env_int("HTTP_BODY_TIMEOUT_MS", 100, 600000, &cfg->http_body_timeout_ms);
		rc |= env_int("HTTP_KEEPALIVE_TIMEOUT_MS", 100, 600000,
		              &cfg->http_keepalive_timeout_ms);
	}
	if (strcmp(service, "baker") == 0) {
		rc |= env_int("HEALTH_PORT", 1, 65535, &cfg->health_port);
		rc |= env_int("BAKER_CONCURRENCY", 1, 256, &cfg->baker_concurrency);
		rc |= env_scale("BAKE_TIME_SCALE", &cfg->bake_time_scale);
	}
	if (rc)
		return -EINVAL;
	return 0;
}
