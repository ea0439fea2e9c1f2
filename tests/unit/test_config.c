/* test_config.c — environment parsing: defaults, every variable, and bad values. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "check.h"
#include "addr.h"
#include "config.h"

static const char *const vars[] = {"DB_HOST",
                                   "RABBIT_HOST",
                                   "RABBIT_USERNAME",
                                   "RABBIT_PASSWORD",
                                   "ORDERS_QUEUE",
                                   "PORT",
                                   "HEALTH_PORT",
                                   "BAKER_CONCURRENCY",
                                   "BAKE_TIME_SCALE",
                                   "LOG_LEVEL",
                                   "ORDER_QUEUE_DEADLINE_MS",
                                   "ORDERS_QUEUE_TYPE",
                                   "ORDERS_DELIVERY_LIMIT",
                                   "REDIS_SENTINELS",
                                   "REDIS_SENTINEL_MASTER",
                                   "REDIS_PASSWORD",
                                   "REDIS_WAIT_REPLICAS",
                                   NULL};

static void clear_env(void)
{
	for (int i = 0; vars[i]; i++)
		unsetenv(vars[i]);
}

static void test_defaults(void)
{
	struct config c;

	clear_env();
	CHECK(config_load(&c, "baker") == 0);
	CHECK_STR(c.redis.addr.host, "127.0.0.1");
	CHECK(c.redis.addr.port == 6379);
	CHECK(c.redis.n_sentinels == 0);
	CHECK_STR(c.redis.master, "mymaster");
	CHECK_STR(c.redis.password, "");
	CHECK(c.redis.wait_replicas == 0);
	CHECK_STR(c.mq.hosts[0].host, "127.0.0.1");
	CHECK(c.mq.hosts[0].port == 5672);
	CHECK_STR(c.mq.user, "guest");
	CHECK_STR(c.mq.pass, "guest");
	CHECK_STR(c.mq.queue, "orders");
	CHECK(c.port == 8000);
	CHECK(c.health_port == 8001);
	CHECK(c.baker_concurrency == 4);
	CHECK(c.bake_time_scale == 1.0);
	CHECK(c.log_level == LOG_LEVEL_INFO);
	CHECK(c.order_queue_deadline_ms == 60000);
	CHECK(c.mq.nhosts == 1);
	CHECK(c.mq.queue_type == MQ_QUORUM);
	CHECK(c.mq.delivery_limit == 100);
}

/* RABBIT_HOST lists the nodes of a cluster; the queue's type and delivery limit. */
static void test_rabbit_cluster(void)
{
	struct config c;

	clear_env();
	setenv("RABBIT_HOST", "10.0.0.1:5672, rabbit-1:5673,[::1]:5674", 1);
	setenv("ORDERS_QUEUE_TYPE", "classic", 1);
	setenv("ORDERS_DELIVERY_LIMIT", "3", 1);
	CHECK(config_load(&c, "reception") == 0);
	CHECK(c.mq.nhosts == 3);
	CHECK_STR(c.mq.hosts[0].host, "10.0.0.1");
	CHECK(c.mq.hosts[0].port == 5672);
	CHECK_STR(c.mq.hosts[1].host, "rabbit-1");
	CHECK(c.mq.hosts[1].port == 5673);
	CHECK_STR(c.mq.hosts[2].host, "::1");
	CHECK(c.mq.queue_type == MQ_CLASSIC);
	CHECK(c.mq.delivery_limit == 3);
	setenv("ORDERS_QUEUE_TYPE", "quorum", 1);
	CHECK(config_load(&c, "baker") == 0);
	CHECK(c.mq.queue_type == MQ_QUORUM);
	clear_env();
}

static void test_values(void)
{
	struct config c;

	clear_env();
	setenv("DB_HOST", "redis.default.svc:6380", 1);
	setenv("RABBIT_HOST", "[::1]:5673", 1);
	setenv("RABBIT_USERNAME", "baker", 1);
	setenv("RABBIT_PASSWORD", "s3cret", 1);
	setenv("ORDERS_QUEUE", "orders-test", 1);
	setenv("PORT", "18000", 1);
	setenv("HEALTH_PORT", "18001", 1);
	setenv("BAKER_CONCURRENCY", "16", 1);
	setenv("BAKE_TIME_SCALE", "0", 1);
	setenv("LOG_LEVEL", "debug", 1);
	CHECK(config_load(&c, "baker") == 0);
	CHECK_STR(c.redis.addr.host, "redis.default.svc");
	CHECK(c.redis.addr.port == 6380);
	CHECK_STR(c.mq.hosts[0].host, "::1");
	CHECK(c.mq.hosts[0].port == 5673);
	CHECK_STR(c.mq.user, "baker");
	CHECK_STR(c.mq.pass, "s3cret");
	CHECK_STR(c.mq.queue, "orders-test");
	CHECK(c.health_port == 18001);
	CHECK(c.baker_concurrency == 16);
	CHECK(c.bake_time_scale == 0.0);
	CHECK(c.log_level == LOG_LEVEL_DEBUG);
	CHECK(config_load(&c, "reception") == 0);
	CHECK(c.port == 18000);
	clear_env();
}

/* Each bad value alone makes config_load fail. */
static void test_bad_values(void)
{
	static const char *const bad[][2] = {
	    {"DB_HOST", "localhost"},
	    {"DB_HOST", "host:0"},
	    {"DB_HOST", "host:65536"},
	    {"DB_HOST", ":6379"},
	    {"DB_HOST", "host:63x"},
	    {"RABBIT_HOST", "a:b:5672"},
	    {"RABBIT_HOST", "[::1]5672"},
	    {"RABBIT_USERNAME", ""},
	    {"ORDERS_QUEUE", ""},
	    {"RABBIT_HOST", "a:1,,b:2"},
	    {"RABBIT_HOST", "a:1,b:2,c:3,d:4,e:5,f:6,g:7,h:8,i:9"}, /* over ADDR_LIST_MAX */
	    {"ORDERS_QUEUE_TYPE", "stream"},
	    {"ORDERS_QUEUE_TYPE", ""},
	    {"ORDERS_DELIVERY_LIMIT", "0"},
	    {"ORDERS_DELIVERY_LIMIT", "1000001"},
	    {"PORT", "abc"},
	    {"PORT", "70000"},
	    {"PORT", "-1"},
	    {"HEALTH_PORT", "0"},
	    {"BAKER_CONCURRENCY", "0"},
	    {"BAKER_CONCURRENCY", "4.5"},
	    {"BAKER_CONCURRENCY", "99999999999999999999"},
	    {"BAKE_TIME_SCALE", "-0.5"},
	    {"BAKE_TIME_SCALE", "nan"},
	    {"BAKE_TIME_SCALE", "1x"},
	    {"BAKE_TIME_SCALE", ""},
	    {"LOG_LEVEL", "verbose"},
	    {"ORDER_QUEUE_DEADLINE_MS", "9999"}, /* not above the 5 s publish timeout */
	    {"ORDER_QUEUE_DEADLINE_MS", "86400001"},
	    {"ORDER_QUEUE_DEADLINE_MS", "1s"},
	    {"REDIS_SENTINELS", ""},
	    {"REDIS_SENTINELS", "a:1,,b:2"},
	    {"REDIS_SENTINELS", "a:1,b"},
	    {"REDIS_SENTINELS", "a:1,a:2,a:3,a:4,a:5,a:6,a:7,a:8,a:9"},
	    {"REDIS_SENTINEL_MASTER", ""},
	    {"REDIS_PASSWORD", ""},
	    {"REDIS_WAIT_REPLICAS", "-1"},
	    {"REDIS_WAIT_REPLICAS", "17"},
	};
	struct config c;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		clear_env();
		setenv(bad[i][0], bad[i][1], 1);
		bool reception = strcmp(bad[i][0], "PORT") == 0 ||
		                 strcmp(bad[i][0], "ORDER_QUEUE_DEADLINE_MS") == 0;
		int rc = config_load(&c, reception ? "reception" : "baker");
		if (rc != -EINVAL)
			fprintf(stderr, "  accepted %s=%s\n", bad[i][0], bad[i][1]);
		CHECK(rc == -EINVAL);
	}
	clear_env();
}

static void test_hostport(void)
{
	struct addr a = {.port = 7}, l[ADDR_LIST_MAX];
	char long_host[ADDR_HOST_MAX + 8];

	CHECK(addr_parse("h:1", &a) == 0);
	CHECK_STR(a.host, "h");
	CHECK(a.port == 1);
	CHECK(addr_parse("[fe80::1]:65535", &a) == 0);
	CHECK_STR(a.host, "fe80::1");
	CHECK(a.port == 65535);
	memset(long_host, 'a', sizeof(long_host) - 3);
	memcpy(long_host + sizeof(long_host) - 3, ":1", 3);
	CHECK(addr_parse(long_host, &a) < 0);
	CHECK(addr_parse("", &a) < 0);
	CHECK(addr_parse("h:", &a) < 0);
	CHECK(addr_parse("h:+1", &a) < 0);
	CHECK(addr_parse("h:65536", &a) < 0);
	CHECK(addr_parse("h p:1", &a) < 0);
	CHECK(addr_parse("a:b:1", &a) < 0);
	CHECK_STR(a.host, "fe80::1"); /* unchanged by a failure */

	CHECK(addr_list_parse("a:1", l, ADDR_LIST_MAX) == 1);
	CHECK(addr_list_parse(" a:1 , [::1]:2,c:3", l, ADDR_LIST_MAX) == 3);
	CHECK_STR(l[0].host, "a");
	CHECK_STR(l[1].host, "::1");
	CHECK(l[1].port == 2);
	CHECK(l[2].port == 3);
	CHECK(addr_list_parse("a:1,,b:2", l, ADDR_LIST_MAX) < 0);
	CHECK(addr_list_parse("a:1,", l, ADDR_LIST_MAX) < 0);
	CHECK(addr_list_parse("", l, ADDR_LIST_MAX) < 0);
	CHECK(addr_list_parse("a:1,b:2,c:3", l, 2) < 0);
}

/* REDIS_SENTINELS: a list, its master name, and WAIT for one replica unless told otherwise. */
static void test_redis_sentinels(void)
{
	struct config c;

	clear_env();
	setenv("REDIS_SENTINELS", "s1:26379, s2:26380,[::1]:26381", 1);
	setenv("REDIS_PASSWORD", "pw", 1);
	CHECK(config_load(&c, "reception") == 0);
	CHECK(c.redis.n_sentinels == 3);
	CHECK_STR(c.redis.sentinels[0].host, "s1");
	CHECK(c.redis.sentinels[1].port == 26380);
	CHECK_STR(c.redis.sentinels[2].host, "::1");
	CHECK_STR(c.redis.master, "mymaster");
	CHECK_STR(c.redis.password, "pw");
	CHECK(c.redis.wait_replicas == 1);
	setenv("REDIS_SENTINEL_MASTER", "orders", 1);
	setenv("REDIS_WAIT_REPLICAS", "0", 1);
	CHECK(config_load(&c, "baker") == 0);
	CHECK_STR(c.redis.master, "orders");
	CHECK(c.redis.wait_replicas == 0);
	unsetenv("REDIS_SENTINELS");
	setenv("REDIS_WAIT_REPLICAS", "2", 1); /* a primary with replicas behind DB_HOST */
	CHECK(config_load(&c, "baker") == 0);
	CHECK(c.redis.n_sentinels == 0 && c.redis.wait_replicas == 2);
	clear_env();
}

/* The service-specific variables are only read by their service. */
static void test_per_service(void)
{
	struct config c;

	clear_env();
	setenv("BAKER_CONCURRENCY", "0", 1);
	CHECK(config_load(&c, "reception") == 0);
	setenv("PORT", "nope", 1);
	CHECK(config_load(&c, "baker") == -EINVAL); /* BAKER_CONCURRENCY still bad */
	unsetenv("BAKER_CONCURRENCY");
	CHECK(config_load(&c, "baker") == 0);
	unsetenv("PORT");
	setenv("ORDER_QUEUE_DEADLINE_MS", "5", 1);
	CHECK(config_load(&c, "baker") == 0); /* reception's only */
	CHECK(config_load(&c, "reception") == -EINVAL);
	setenv("ORDER_QUEUE_DEADLINE_MS", "10000", 1);
	CHECK(config_load(&c, "reception") == 0 && c.order_queue_deadline_ms == 10000);
	clear_env();
}

int main(void)
{
	RUN(test_defaults);
	RUN(test_values);
	RUN(test_rabbit_cluster);
	RUN(test_bad_values);
	RUN(test_hostport);
	RUN(test_redis_sentinels);
	RUN(test_per_service);
	return CHECK_DONE();
}
