/* ceiling.c — how many orders per second Redis and RabbitMQ take here, without HTTP: the
 * ceiling scripts/bench.sh compares reception with.
 *
 *   ceiling SECONDS WINDOW      (DB_HOST, RABBIT_HOST, RABBIT_USERNAME/_PASSWORD, ORDERS_QUEUE)
 *
 * Each order does what reception's POST /orders does to the servers: HSET order:<key> (the
 * order, pending, with its queue deadline), a persistent publish of its message to the durable
 * queue, confirmed by the broker, then HDEL of the queue deadline. WINDOW orders at a time,
 * pipelined: the batch's HSETs (with the previous batch's HDELs) go out at once and their
 * replies are read after, then all its messages are published and the confirms (matched by
 * delivery tag, "multiple" acks included) awaited. One connection to each server. The queue
 * must exist (the baker declares it); the baker, if running, bakes the orders.
 *
 * Prints one line: CEILING orders=N seconds=S orders_per_s=X p50_us=P p99_us=Q cpu_us=C
 * (latency: an order's HSET sent to its confirm received; cpu: this process, per order). */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "clock.h"
#include "config.h"
#include "order.h"

#define CHANNEL 1

struct order_slot {
	char key[ORDER_KEY_LEN + 1];
	char hk[ORDER_KEY_LEN + 8];
	double sent; /* seconds */
};

static int fail(const char *what)
{
	fprintf(stderr, "ceiling: %s\n", what);
	return 1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Reads n replies; returns 0, or -1 on an error reply or a lost connection. */
static int redis_replies(redisContext *c, int n)
{
	for (int i = 0; i < n; i++) {
		redisReply *r;

		if (redisGetReply(c, (void **)&r) != REDIS_OK)
			return -1;
		if (r->type == REDIS_REPLY_ERROR) {
			fprintf(stderr, "ceiling: redis: %s\n", r->str);
			freeReplyObject(r);
			return -1;
		}
		freeReplyObject(r);
	}
	return 0;
}

static amqp_connection_state_t amqp_open(const struct mq_config *cfg)
{
	amqp_connection_state_t conn = amqp_new_connection();
	amqp_socket_t *sock = conn ? amqp_tcp_socket_new(conn) : NULL;

	if (!sock ||
	    amqp_socket_open(sock, cfg->hosts[0].host, cfg->hosts[0].port) != AMQP_STATUS_OK ||
	    amqp_login(conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, cfg->user, cfg->pass)
	            .reply_type != AMQP_RESPONSE_NORMAL)
		return NULL;
	amqp_channel_open(conn, CHANNEL);
	if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL)
		return NULL;
	/* passive: the queue must be there, declared with its dead-letter arguments */
	amqp_queue_declare(conn, CHANNEL, amqp_cstring_bytes(cfg->queue), 1, 0, 0, 0,
	                   amqp_empty_table);
	if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL)
		return NULL;
	amqp_confirm_select(conn, CHANNEL);
	if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL)
		return NULL;
	return conn;
}

/* Publishes the batch's messages, then waits for every confirm; records each order's latency
 * into lat. Returns 0, or -1 on a nack or a lost connection. */
static int publish_batch(amqp_connection_state_t conn, const char *queue, struct order_slot *b,
                         int n, uint64_t *next_tag, double *lat)
{
	amqp_basic_properties_t p = {._flags = AMQP_BASIC_CONTENT_TYPE_FLAG |
	                                       AMQP_BASIC_DELIVERY_MODE_FLAG |
	                                       AMQP_BASIC_MESSAGE_ID_FLAG,
	                             .content_type = amqp_cstring_bytes("application/json"),
	                             .delivery_mode = AMQP_DELIVERY_PERSISTENT};
	char enqueued[ORDER_TIME_MAX];
	uint64_t first = *next_tag, done = first; /* confirmed: tags below done */
	struct timespec t;

	for (int i = 0; i < n; i++) {
		char *msg;
		int rc;

		clock_gettime(CLOCK_REALTIME, &t);
		order_time_format(&t, true, enqueued, sizeof(enqueued));
		if (!(msg = order_message_new(b[i].key, enqueued)))
			return -1;
		p.message_id = amqp_cstring_bytes(b[i].key);
		rc = amqp_basic_publish(conn, CHANNEL, amqp_empty_bytes, amqp_cstring_bytes(queue),
		                        0, 0, &p, amqp_cstring_bytes(msg));
		free(msg);
		if (rc != AMQP_STATUS_OK)
			return -1;
	}
	*next_tag = first + (uint64_t)n;
	while (done < *next_tag) {
		amqp_frame_t f;
		amqp_basic_ack_t *a;
		double t1;

		if (amqp_simple_wait_frame(conn, &f) != AMQP_STATUS_OK)
			return -1;
		if (f.frame_type != AMQP_FRAME_METHOD)
			continue;
		if (f.payload.method.id != AMQP_BASIC_ACK_METHOD)
			return -1; /* a nack, a return or a channel close */
		a = f.payload.method.decoded;
		if (a->delivery_tag < first || a->delivery_tag >= *next_tag)
			return -1;
		t1 = clock_now_s();
		/* a multiple ack confirms every tag up to its own, a single one just its own */
		for (uint64_t tag = a->multiple ? done : a->delivery_tag; tag <= a->delivery_tag;
		     tag++) {
			if (b[tag - first].sent >= 0) {
				lat[tag - first] = t1 - b[tag - first].sent;
				b[tag - first].sent = -1;
			}
		}
		while (done < *next_tag && b[done - first].sent < 0)
			done++;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct order_slot *batch, *prev;
	redisContext *redis;
	amqp_connection_state_t amqp;
	double seconds, t0, *lat, *all;
	size_t n_all = 0, cap_all = 1 << 16;
	uint64_t next_tag = 1;
	int window, n_prev = 0;
	struct rusage ru0, ru1;

	if (argc != 3 || (seconds = atof(argv[1])) <= 0 || (window = atoi(argv[2])) <= 0)
		return fail("usage: ceiling SECONDS WINDOW");
	if (config_load(&cfg, "reception") < 0)
		return 2;
	store_set_queue_deadline_ms(cfg.order_queue_deadline_ms);
	batch = calloc((size_t)window, sizeof(*batch));
	prev = calloc((size_t)window, sizeof(*prev));
	lat = calloc((size_t)window, sizeof(*lat));
	all = malloc(cap_all * sizeof(*all));
	if (!batch || !prev || !lat || !all)
		return fail("out of memory");
	redis = redisConnect(cfg.redis.addr.host, cfg.redis.addr.port);
	if (!redis || redis->err)
		return fail("cannot connect to redis");
	if (!(amqp = amqp_open(&cfg.mq)))
		return fail("cannot open the rabbitmq channel (is the queue declared?)");

	getrusage(RUSAGE_SELF, &ru0);
	t0 = clock_now_s();
	while (clock_now_s() - t0 < seconds) {
		char order_time[ORDER_TIME_MAX], deadline[32];
		struct timespec t;
		struct order_slot *swap;

		clock_gettime(CLOCK_REALTIME, &t);
		order_time_format(&t, false, order_time, sizeof(order_time));
		snprintf(deadline, sizeof(deadline), "%lld", clock_wall_ms() + 60000);
		for (int i = 0; i < n_prev; i++)
			redisAppendCommand(redis, "HDEL %s queueDeadline", prev[i].hk);
		for (int i = 0; i < window; i++) {
			struct order_slot *o = &batch[i];

			if (order_key_new(o->key) < 0)
				return fail("no random key");
			snprintf(o->hk, sizeof(o->hk), "order:%s", o->key);
			o->sent = clock_now_s();
			redisAppendCommand(redis,
			                   "HSET %s customer %s pastry %s orderTime %s status %s "
			                   "queueDeadline %s",
			                   o->hk, "ceiling", "croissant", order_time, "pending",
			                   deadline);
		}
		if (redis_replies(redis, n_prev + window) < 0)
			return fail("redis failed");
		if (publish_batch(amqp, cfg.mq.queue, batch, window, &next_tag, lat) < 0)
			return fail("publish failed (nack or connection lost)");
		for (int i = 0; i < window; i++) {
			if (n_all == cap_all) {
				double *grown = realloc(all, 2 * cap_all * sizeof(*all));

				if (!grown)
					return fail("out of memory");
				all = grown;
				cap_all *= 2;
			}
			all[n_all++] = lat[i];
		}
		swap = prev, prev = batch, batch = swap;
		n_prev = window;
	}
	for (int i = 0; i < n_prev; i++)
		redisAppendCommand(redis, "HDEL %s queueDeadline", prev[i].hk);
	if (redis_replies(redis, n_prev) < 0)
		return fail("redis failed");
	seconds = clock_now_s() - t0;
	getrusage(RUSAGE_SELF, &ru1);

	qsort(all, n_all, sizeof(*all), cmp_double);
	double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec -
	                      ru0.ru_stime.tv_sec) +
	             (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec -
	                      ru0.ru_stime.tv_usec) /
	                 1e6;
	printf("CEILING orders=%zu seconds=%.3f orders_per_s=%.1f p50_us=%.0f p99_us=%.0f "
	       "cpu_us=%.1f\n",
	       n_all, seconds, (double)n_all / seconds, all[n_all / 2] * 1e6,
	       all[(size_t)((double)n_all * 0.99)] * 1e6, cpu * 1e6 / (double)n_all);
	redisFree(redis);
	amqp_channel_close(amqp, CHANNEL, AMQP_REPLY_SUCCESS);
	amqp_connection_close(amqp, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(amqp);
	free(batch);
	free(prev);
	free(lat);
	free(all);
	return 0;
}
