/* test_metrics.c — counters, histograms, labels and the Prometheus text they render to. */
#include <pthread.h>
#include <stdlib.h>

#include "check.h"
#include "metrics.h"

static int contains(const char *text, const char *line)
{
	return text && strstr(text, line) != NULL;
}

static void test_counter(void)
{
	static const char *const labels[] = {"route", "code", NULL};
	struct metric *m = metrics_counter("t_requests_total", "Requests.", labels);
	struct metric *plain = metrics_counter("t_plain_total", "Plain.", NULL);
	size_t len = 0;
	char *text;

	CHECK(m != NULL);
	CHECK(metrics_counter("t_requests_total", "Again.", labels) == m);
	text = metrics_render(&len);
	CHECK(contains(text, "# TYPE t_plain_total counter\nt_plain_total 0\n"));
	free(text);
	metrics_add(m, 1, "/orders", "202");
	metrics_add(m, 2, "/orders", "202");
	metrics_add(m, 1, "/orders/{key}", "404");
	metrics_add(m, 1, "we\"ird\\\n", "500");
	metrics_add(plain, 5);
	metrics_add(NULL, 1, "ignored");
	CHECK(metrics_value(m, "/orders", "202") == 3);
	CHECK(metrics_value(m, "/nope", "200") == 0);
	text = metrics_render(&len);
	CHECK(text && strlen(text) == len);
	CHECK(
	    contains(text, "# HELP t_requests_total Requests.\n# TYPE t_requests_total counter\n"));
	CHECK(contains(text, "t_requests_total{route=\"/orders\",code=\"202\"} 3\n"));
	CHECK(contains(text, "t_requests_total{route=\"/orders/{key}\",code=\"404\"} 1\n"));
	CHECK(contains(text, "t_requests_total{route=\"we\\\"ird\\\\\\n\",code=\"500\"} 1\n"));
	CHECK(contains(text, "t_plain_total 5\n"));
	free(text);
}

static void test_histogram(void)
{
	static const char *const labels[] = {"route", NULL};
	static const double bounds[] = {0.01, 0.1, 1};
	struct metric *h = metrics_histogram("t_seconds", "Latency.", labels, bounds, 3);
	size_t len;
	char *text;

	CHECK(h != NULL);
	metrics_add(h, 0.005, "/");
	metrics_add(h, 0.05, "/");
	metrics_add(h, 5, "/");
	text = metrics_render(&len);
	CHECK(contains(text, "# TYPE t_seconds histogram\n"));
	CHECK(contains(text, "t_seconds_bucket{route=\"/\",le=\"0.01\"} 1\n"));
	CHECK(contains(text, "t_seconds_bucket{route=\"/\",le=\"0.1\"} 2\n"));
	CHECK(contains(text, "t_seconds_bucket{route=\"/\",le=\"1\"} 2\n"));
	CHECK(contains(text, "t_seconds_bucket{route=\"/\",le=\"+Inf\"} 3\n"));
	CHECK(contains(text, "t_seconds_sum{route=\"/\"} 5.055\n"));
	CHECK(contains(text, "t_seconds_count{route=\"/\"} 3\n"));
	free(text);
}

/* Series beyond the cap are dropped instead of growing without bound. */
static void test_series_cap(void)
{
	static const char *const labels[] = {"n", NULL};
	struct metric *m = metrics_counter("t_capped_total", "Capped.", labels);
	char v[16];

	for (int i = 0; i < METRICS_SERIES_MAX + 10; i++) {
		snprintf(v, sizeof(v), "%d", i);
		metrics_add(m, 1, v);
	}
	snprintf(v, sizeof(v), "%d", METRICS_SERIES_MAX - 1);
	CHECK(metrics_value(m, v) == 1);
	snprintf(v, sizeof(v), "%d", METRICS_SERIES_MAX);
	CHECK(metrics_value(m, v) == 0);
}

static struct metric *shared;

static void *adder(void *arg)
{
	(void)arg;
	for (int i = 0; i < 10000; i++)
		metrics_add(shared, 1, "x");
	return NULL;
}

static void test_threads(void)
{
	static const char *const labels[] = {"k", NULL};
	pthread_t t[4];

	shared = metrics_counter("t_threads_total", "Threads.", labels);
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, adder, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	CHECK(metrics_value(shared, "x") == 40000);
}

int main(void)
{
	RUN(test_counter);
	RUN(test_histogram);
	RUN(test_series_cap);
	RUN(test_threads);
	metrics_free_all();
	return CHECK_DONE();
}
