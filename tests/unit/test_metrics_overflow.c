/* test_metrics_overflow.c — a metric out of series counts what it drops instead of hiding it. */
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "metrics.h"

static int contains(const char *text, const char *line)
{
	return text && strstr(text, line) != NULL;
}

/* 200 distinct label values: 128 series are kept, the other 72 observations are counted in
 * bakery_metrics_series_dropped_total{metric=...}; series that exist go on counting. */
static void test_overflow_is_counted(void)
{
	static const char *const labels[] = {"k", NULL};
	struct metric *m = metrics_counter("t_overflow_total", "Overflow.", labels);
	struct metric *plain = metrics_counter("t_unlabelled_total", "Plain.", NULL);
	char v[16];
	size_t len;
	char *text;

	CHECK(m && plain);
	text = metrics_render(&len);
	CHECK(contains(text, "# TYPE bakery_metrics_series_dropped_total counter\n"));
	CHECK(
	    contains(text, "bakery_metrics_series_dropped_total{metric=\"t_overflow_total\"} 0\n"));
	CHECK(!contains(text, "{metric=\"t_unlabelled_total\"}"));
	free(text);
	for (int i = 0; i < 200; i++) {
		snprintf(v, sizeof(v), "v%d", i);
		metrics_add(m, 1, v);
	}
	metrics_add(m, 1, "v0");
	metrics_add(m, 1, "v199"); /* still no room: dropped again */
	CHECK(metrics_value(m, "v0") == 2);
	CHECK(metrics_value(m, "v127") == 1);
	CHECK(metrics_value(m, "v128") == 0);
	text = metrics_render(&len);
	CHECK(contains(text, "t_overflow_total{k=\"v127\"} 1\n"));
	CHECK(!contains(text, "t_overflow_total{k=\"v128\"}"));
	CHECK(contains(text,
	               "bakery_metrics_series_dropped_total{metric=\"t_overflow_total\"} 73\n"));
	free(text);
	metrics_free_all();
}

int main(void)
{
	RUN(test_overflow_is_counted);
	return CHECK_DONE();
}
