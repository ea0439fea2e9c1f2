/* metrics.h — process-wide counters and histograms rendered in Prometheus text format. */
#ifndef BAKERY_METRICS_H
#define BAKERY_METRICS_H

#include <stddef.h>

#define METRICS_MAX         64  /* metrics per process */
#define METRICS_LABELS_MAX  3   /* label names per metric */
#define METRICS_SERIES_MAX  128 /* label value combinations per metric; more are dropped */
#define METRICS_BUCKETS_MAX 16

/* Rendered by metrics_render: per labelled metric, how many observations found it full. */
#define METRICS_DROPPED_NAME "bakery_metrics_series_dropped_total"

/* One registered metric; lives until metrics_free_all. */
struct metric;

/* Registers (or finds, by name) a counter with nlabels label names (NULL-terminated list).
 * Thread-safe. Returns the metric, or NULL when the registry is full or out of memory. */
struct metric *metrics_counter(const char *name, const char *help, const char *const *labels);

/* Registers (or finds) a histogram with the given ascending upper bounds (nbuckets of them,
 * +Inf is implied). Returns the metric or NULL. */
struct metric *metrics_histogram(const char *name, const char *help, const char *const *labels,
                                 const double *bounds, size_t nbuckets);

/* Adds v to a counter (or observes v in a histogram) for the series named by the label
 * values, one const char * per label name. Thread-safe; a NULL metric is ignored. When the
 * metric already has METRICS_SERIES_MAX series and these values are new, the observation is
 * counted in METRICS_DROPPED_NAME{metric="<name>"} instead: callers keep label values to a
 * small fixed set (fold anything else into one value). */
void metrics_add(struct metric *m, double v, ...);

/* Returns the current value of a counter series (or a histogram's count), for tests. */
double metrics_value(struct metric *m, ...);

/* Renders every metric in Prometheus text format 0.0.4, then METRICS_DROPPED_NAME. Returns a
 * malloc'd string (caller frees) and its length in *len, or NULL when out of memory. */
char *metrics_render(size_t *len);

/* Frees every metric; pointers returned earlier become invalid. For tests and exit. */
void metrics_free_all(void);

#endif
