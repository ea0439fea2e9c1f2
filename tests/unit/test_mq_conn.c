/* test_mq_conn.c — the connection base: the queue's declare arguments, and the address list
 * tried in turn (real sockets on loopback, no broker). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "mq_conn.h"

/* The value of key in args[0..n), or NULL. */
static const amqp_field_value_t *arg(const amqp_table_entry_t *args, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++) {
		if (args[i].key.len == strlen(key) &&
		    memcmp(args[i].key.bytes, key, args[i].key.len) == 0)
			return &args[i].value;
	}
	return NULL;
}

static int str_is(const amqp_field_value_t *v, const char *s)
{
	return v && v->kind == AMQP_FIELD_KIND_UTF8 && v->value.bytes.len == strlen(s) &&
	       memcmp(v->value.bytes.bytes, s, strlen(s)) == 0;
}

static void test_queue_args(void)
{
	struct mq_config cfg = {.queue_type = MQ_QUORUM, .delivery_limit = 7};
	amqp_table_entry_t args[5];
	size_t n = mq_conn_queue_args(&cfg, "orders.dlx", args, 5);
	const amqp_field_value_t *limit = arg(args, n, "x-delivery-limit");

	CHECK(n == 5);
	CHECK(str_is(arg(args, n, "x-dead-letter-exchange"), "orders.dlx"));
	CHECK(str_is(arg(args, n, "x-queue-type"), "quorum"));
	CHECK(str_is(arg(args, n, "x-dead-letter-strategy"), "at-least-once"));
	CHECK(str_is(arg(args, n, "x-overflow"), "reject-publish")); /* at-least-once needs it */
	CHECK(limit && limit->kind == AMQP_FIELD_KIND_I64 && limit->value.i64 == 7);
	cfg.queue_type = MQ_CLASSIC; /* as before quorum queues: no type, no limit */
	n = mq_conn_queue_args(&cfg, "orders.dlx", args, 5);
	CHECK(n == 1);
	CHECK(str_is(arg(args, n, "x-dead-letter-exchange"), "orders.dlx"));
	CHECK(mq_conn_queue_args(&cfg, "orders.dlx", args, 4) == 0); /* too small: nothing */
}

/* A listener that accepts and closes at once, counting: a node that is up but refuses. */
static atomic_int accepted;

static void *accept_main(void *arg)
{
	int fd = *(int *)arg, c;

	while ((c = accept(fd, NULL, NULL)) >= 0) {
		atomic_fetch_add(&accepted, 1);
		close(c);
	}
	return NULL;
}

static int never_called(struct mq_conn *c, long long deadline)
{
	(void)c;
	(void)deadline;
	return -EAGAIN;
}

/* Refused, listening, refused: one ensure tries each in turn; then it backs off; the next
 * attempt starts where the last one ended. */
static void test_rotation(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	struct mq_config cfg = {.nhosts = 3, .queue = "q"};
	struct mq_conn c;
	pthread_t t;
	int fd = socket(AF_INET, SOCK_STREAM, 0), dead = socket(AF_INET, SOCK_STREAM, 0);

	/* A port bound but not listening refuses: nothing else takes it meanwhile. */
	CHECK(bind(dead, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(getsockname(dead, (struct sockaddr *)&sa, &len) == 0);
	cfg.hosts[0] = cfg.hosts[2] = (struct addr){"127.0.0.1", ntohs(sa.sin_port)};
	sa.sin_port = 0;
	CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 8) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
	cfg.hosts[1] = (struct addr){"127.0.0.1", ntohs(sa.sin_port)};
	CHECK(pthread_create(&t, NULL, accept_main, &fd) == 0);

	mq_conn_init(&c, &cfg, never_called, NULL);
	CHECK(mq_conn_ensure(&c, 3000) == -EAGAIN);
	CHECK(atomic_load(&accepted) == 1); /* the middle one, once */
	CHECK(c.host == 0);                 /* all three tried: round again */
	CHECK(c.conn == NULL);
	CHECK(mq_conn_ensure(&c, 3000) == -EAGAIN); /* backing off: no attempt */
	CHECK(atomic_load(&accepted) == 1);
	usleep(150 * 1000); /* past the first backoff (100 ms) */
	CHECK(mq_conn_ensure(&c, 3000) == -EAGAIN);
	CHECK(atomic_load(&accepted) == 2);
	CHECK(strcmp(c.dlx, "q.dlx") == 0 && strcmp(c.dead, "q.dead") == 0);
	shutdown(fd, SHUT_RDWR);
	pthread_join(t, NULL);
	close(fd);
	close(dead);
}

int main(void)
{
	RUN(test_queue_args);
	RUN(test_rotation);
	return CHECK_DONE();
}
