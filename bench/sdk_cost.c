/* sdk_cost.c — the tracing SDK driven as reception drives it, N orders, for callgrind (make
 * bench-sdk).
 *
 *   build/bench/sdk_cost N
 *
 * Per order, on this one thread (reception spreads it over the request, pipeline and confirm
 * threads): the SERVER span POST /orders with its 11 attributes and its context taken for the
 * order, create-order with 5 (started, detached, ended), publish-order with 8 and one inject.
 * Spans go over OTLP/HTTP (protobuf) to a stand-in Collector in this process that answers 200
 * on loopback. Linked against libotel.a only. bench/sdk_cost.sh runs it for two N under
 * callgrind: the difference per order is each thread's marginal cost, start-up excluded. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "trace.h"

/* Reads one HTTP request on fd (headers, then Content-Length bytes) and answers 200. Returns 0,
 * or -1 when the peer closed. */
static int serve_one(int fd)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
	                         "Content-Length: 0\r\n\r\n";
	char buf[65536], *end, *cl;
	size_t have = 0;
	long body;
	ssize_t n;

	for (;;) {
		if (have == sizeof(buf) - 1 ||
		    (n = read(fd, buf + have, sizeof(buf) - 1 - have)) <= 0)
			return -1;
		have += (size_t)n;
		buf[have] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")))
			break;
	}
	cl = strcasestr(buf, "\ncontent-length:");
	body = cl ? atol(cl + 16) : 0;
	body -= (long)(have - (size_t)(end + 4 - buf));
	while (body > 0 && (n = read(fd, buf, sizeof(buf))) > 0)
		body -= n;
	return write(fd, ok, sizeof(ok) - 1) == (ssize_t)sizeof(ok) - 1 ? 0 : -1;
}

static void *collector(void *arg)
{
	int lfd = *(int *)arg, fd;

	while ((fd = accept(lfd, NULL, NULL)) >= 0) {
		while (serve_one(fd) == 0)
			;
		close(fd);
	}
	return NULL;
}

/* One order's three spans, as reception/routes.c, common/store.c and reception/intake.c make
 * them. */
static int carrier_set(void *carrier, const char *name, const char *value)
{
	(void)carrier, (void)name, (void)value;
	return 0;
}

static void order(long i, struct trace_context *order_ctx)
{
	char key[33];
	trace_span *server, *create, *publish;

	for (int d = 31; d >= 0; d--, i >>= 4) /* the order key: 32 hex digits */
		key[d] = "0123456789abcdef"[i & 15];
	key[32] = '\0';
	server = trace_span_start("POST /orders", TRACE_KIND_SERVER, TRACE_ROOT);
	trace_span_set_str(server, "http.request.method", "POST");
	trace_span_set_str(server, "http.route", "/orders");
	trace_span_set_str(server, "url.path", "/orders");
	trace_span_set_str(server, "url.scheme", "http");
	trace_span_set_str(server, "network.protocol.version", "1.1");
	trace_span_set_str(server, "client.address", "127.0.0.1");
	trace_span_set_int(server, "client.port", 53412);
	trace_span_set_str(server, "bakery.customer", "homer");
	trace_span_set_str(server, "bakery.pastry", "la bombe");
	trace_span_set_str(server, "bakery.order_key", key);
	trace_span_context(server, order_ctx);

	create = trace_span_start("create-order", TRACE_KIND_CLIENT, NULL);
	trace_span_set_str(create, "bakery.order_key", key);
	trace_span_set_str(create, "db.system", "redis");
	trace_span_set_str(create, "db.operation.name", "HSET");
	trace_span_set_str(create, "server.address", "127.0.0.1");
	trace_span_set_int(create, "server.port", 6379);
	trace_span_detach(create);
	trace_span_end(create);

	publish = trace_span_start("publish-order", TRACE_KIND_PRODUCER, order_ctx);
	trace_span_set_str(publish, "messaging.system", "rabbitmq");
	trace_span_set_str(publish, "messaging.destination.name", "orders");
	trace_span_set_str(publish, "messaging.operation.type", "publish");
	trace_span_set_str(publish, "messaging.operation.name", "publish");
	trace_span_set_str(publish, "messaging.message.id", key);
	trace_span_set_int(publish, "messaging.message.body.size", 74);
	trace_span_set_str(publish, "server.address", "127.0.0.1");
	trace_span_set_int(publish, "server.port", 5672);
	trace_inject(publish, carrier_set, NULL);
	trace_span_detach(publish);
	trace_span_end(publish);

	trace_span_set_int(server, "http.response.status_code", 202);
	trace_span_end(server);
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	long n = argc > 1 ? atol(argv[1]) : 1000;
	static struct trace_context order_ctx;
	struct trace_stats st;
	char url[64];
	pthread_t t;
	int lfd = socket(AF_INET, SOCK_STREAM, 0);

	if (n < 1 || lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(lfd, 4) < 0 || getsockname(lfd, (struct sockaddr *)&a, &alen) < 0 ||
	    pthread_create(&t, NULL, collector, &lfd) != 0) {
		fprintf(stderr, "usage: sdk_cost N (N >= 1); or no loopback socket\n");
		return 2;
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(a.sin_port));
	/* Batches leave when full (512 spans) or at shutdown: the same work for any timing. */
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url, 1);
	setenv("OTEL_BSP_SCHEDULE_DELAY", "600000", 1);
	setenv("OTEL_BSP_MAX_QUEUE_SIZE", "1000000", 1);
	setenv("OTEL_TRACES_SAMPLER", "always_on", 1);
	if (trace_init("reception", "bench") < 0)
		return 1;
	for (long i = 0; i < n; i++)
		order(i, &order_ctx);
	trace_shutdown();
	trace_stats(&st);
	printf("orders %ld spans %llu exported %llu dropped %llu\n", n,
	       (unsigned long long)st.ended, (unsigned long long)st.exported,
	       (unsigned long long)st.dropped);
	return st.exported == (uint64_t)(3 * n) ? 0 : 1;
}
