/* test_export_timing.c — OTLP export timeouts on a black-holed Collector; an idle SDK sleeps. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "metrics.h"
#include "otel/exporter.h"
#include "otel/trace.h"
#include "otel_diag.h"

/* A "Collector" that completes the TCP handshake (the kernel does, into the backlog) and never
 * answers. Returns the listening socket and sets *port, or -1. */
static int blackhole(int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

/* Accepts (and closes) every connection waiting on fd: the export attempts made so far. */
static int attempts(int fd)
{
	int n = 0, c;

	while ((c = accept(fd, NULL, NULL)) >= 0) {
		close(c);
		n++;
	}
	return n;
}

static double now_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void set_endpoint(int port)
{
	char url[64];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url, 1);
	setenv("OTEL_TRACES_SAMPLER", "always_on", 1);
	unsetenv("OTEL_SDK_DISABLED");
}

/* One POST to a Collector that never answers ends after OTEL_EXPORTER_OTLP_TIMEOUT (1 s), not
 * after the caller's much larger budget, and reports a retryable failure. */
static void test_post_honours_otlp_timeout(void)
{
	struct otlp_exporter *e = NULL;
	struct otlp_buf body = {0};
	long retry_after;
	int port, fd = blackhole(&port), rc;
	double t0, dt;

	CHECK(fd >= 0);
	set_endpoint(port);
	setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1000", 1);
	CHECK(otlp_exporter_create(&e) == 0);
	if (!e)
		goto done;
	body.data = (uint8_t *)"x";
	body.len = 1;
	t0 = now_s(CLOCK_MONOTONIC);
	rc = otlp_exporter_post(e, &body, 30000, &retry_after);
	dt = now_s(CLOCK_MONOTONIC) - t0;
	fprintf(stderr, "  post to a black hole: rc %d after %.2f s\n", rc, dt);
	CHECK(rc == -EAGAIN);
	CHECK(dt >= 0.8 && dt < 2.5);
	CHECK(attempts(fd) == 1);
done:
	otlp_exporter_free(e);
	unsetenv("OTEL_EXPORTER_OTLP_TIMEOUT");
	close(fd);
}

/* Through the batch processor: with a 1 s OTLP timeout inside a 2.2 s export budget, the first
 * attempt ends after about a second so a retry follows, and the batch is counted as failed. */
static void test_batch_attempts_end_in_time(void)
{
	struct trace_stats before, after;
	struct metric *m;
	double m_before, t0;
	int port, fd = blackhole(&port), n;

	CHECK(fd >= 0);
	set_endpoint(port);
	setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1000", 1);
	setenv("OTEL_BSP_SCHEDULE_DELAY", "0", 1);
	setenv("OTEL_BSP_EXPORT_TIMEOUT", "2200", 1);
	CHECK(trace_init("test", "1") == 0);
	m = metrics_counter("otel_spans_dropped_total", "", (const char *const[]){"reason", NULL});
	m_before = metrics_value(m, "export_failed");
	trace_stats(&before);
	trace_span_end(trace_span_start("lost", TRACE_KIND_INTERNAL, NULL));
	t0 = now_s(CLOCK_MONOTONIC);
	do {
		nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
		trace_stats(&after);
	} while (after.dropped == before.dropped && now_s(CLOCK_MONOTONIC) - t0 < 10);
	n = attempts(fd);
	fprintf(stderr, "  batch dropped after %.2f s, %d attempts\n", now_s(CLOCK_MONOTONIC) - t0,
	        n);
	CHECK(after.dropped - before.dropped == 1);
	CHECK(n >= 2);
	CHECK(metrics_value(m, "export_failed") - m_before == 1);
	trace_shutdown();
	unsetenv("OTEL_EXPORTER_OTLP_TIMEOUT");
	unsetenv("OTEL_BSP_SCHEDULE_DELAY");
	unsetenv("OTEL_BSP_EXPORT_TIMEOUT");
	close(fd);
}

/* OTEL_BSP_SCHEDULE_DELAY=0: the idle export thread sleeps (well under 0.2 s of CPU per idle
 * second), yet a span that ends is still exported at once. */
static void test_zero_delay_idles(void)
{
	int port, fd = blackhole(&port), n = 0;
	double cpu0, cpu, t0;

	CHECK(fd >= 0);
	set_endpoint(port);
	setenv("OTEL_BSP_SCHEDULE_DELAY", "0", 1);
	setenv("OTEL_BSP_EXPORT_TIMEOUT", "1000", 1);
	CHECK(trace_init("test", "1") == 0);
	cpu0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
	sleep(2);
	cpu = now_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
	fprintf(stderr, "  idle with delay 0: %.3f s CPU in 2 s\n", cpu);
	CHECK(cpu < 0.4);
	trace_span_end(trace_span_start("prompt", TRACE_KIND_INTERNAL, NULL));
	t0 = now_s(CLOCK_MONOTONIC);
	while (n == 0 && now_s(CLOCK_MONOTONIC) - t0 < 2) {
		nanosleep(&(struct timespec){0, 10 * 1000000L}, NULL);
		n = attempts(fd);
	}
	CHECK(n >= 1);
	CHECK(now_s(CLOCK_MONOTONIC) - t0 < 0.5);
	trace_shutdown();
	unsetenv("OTEL_BSP_SCHEDULE_DELAY");
	unsetenv("OTEL_BSP_EXPORT_TIMEOUT");
	close(fd);
}

int main(void)
{
	otel_diag_register(); /* the drop metric and log lines, as the services do */
	RUN(test_post_honours_otlp_timeout);
	RUN(test_batch_attempts_end_in_time);
	RUN(test_zero_delay_idles);
	return CHECK_DONE();
}
