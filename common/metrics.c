/* metrics.c — a small registry of counters and histograms behind one mutex. */
#include "metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RENDER_MAX (4 * 1024 * 1024)

struct series {
	char *values[METRICS_LABELS_MAX];
	double count; /* counter value, or the histogram's observation count */
	double sum;
	double buckets[METRICS_BUCKETS_MAX]; /* cumulative counts per upper bound */
};

struct metric {
	char *name;
	char *help;
	int histogram;
	size_t nlabels;
	char *labels[METRICS_LABELS_MAX];
	size_t nbounds;
	double bounds[METRICS_BUCKETS_MAX];
	size_t nseries;
	double dropped; /* observations of label values that found no free series */
	struct series series[METRICS_SERIES_MAX];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct metric *registry[METRICS_MAX];
static size_t nmetrics;

static void metric_free(struct metric *m)
{
	if (!m)
		return;
	free(m->name);
	free(m->help);
	for (size_t i = 0; i < m->nlabels; i++)
		free(m->labels[i]);
	for (size_t s = 0; s < m->nseries; s++) {
		for (size_t i = 0; i < m->nlabels; i++)
			free(m->series[s].values[i]);
	}
	free(m);
}

static struct metric *metric_new(const char *name, const char *help, const char *const *labels,
                                 const double *bounds, size_t nbounds, int histogram)
{
	struct metric *m = NULL;

	if (nbounds > METRICS_BUCKETS_MAX)
		return NULL;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nmetrics; i++) {
		if (strcmp(registry[i]->name, name) == 0) {
			m = registry[i];
			goto out;
		}
	}
	if (nmetrics == METRICS_MAX)
		goto out;
	m = calloc(1, sizeof(*m));
	if (!m)
		goto out;
	m->histogram = histogram;
	m->name = strdup(name);
	m->help = strdup(help);
	if (!m->name || !m->help)
		goto fail;
	for (; labels && labels[m->nlabels]; m->nlabels++) {
		if (m->nlabels == METRICS_LABELS_MAX)
			goto fail;
		if (!(m->labels[m->nlabels] = strdup(labels[m->nlabels])))
			goto fail;
	}
	m->nbounds = nbounds;
	if (nbounds)
		memcpy(m->bounds, bounds, nbounds * sizeof(*bounds));
	registry[nmetrics++] = m;
out:
	pthread_mutex_unlock(&lock);
	return m;
fail:
	pthread_mutex_unlock(&lock);
	metric_free(m);
	return NULL;
}

struct metric *metrics_counter(const char *name, const char *help, const char *const *labels)
{
	return metric_new(name, help, labels, NULL, 0, 0);
}

struct metric *metrics_histogram(const char *name, const char *help, const char *const *labels,
                                 const double *bounds, size_t nbuckets)
{
	return metric_new(name, help, labels, bounds, nbuckets, 1);
}

/* Finds or (when create) adds the series for the label values in ap; lock held. */
static struct series *series_get(struct metric *m, va_list ap, int create)
{
	const char *values[METRICS_LABELS_MAX];
	struct series *s;
	size_t i, j;

	for (i = 0; i < m->nlabels; i++) {
		values[i] = va_arg(ap, const char *);
		if (!values[i])
			values[i] = "";
	}
	for (i = 0; i < m->nseries; i++) {
		for (j = 0; j < m->nlabels; j++) {
			if (strcmp(m->series[i].values[j], values[j]) != 0)
				break;
		}
		if (j == m->nlabels)
			return &m->series[i];
	}
	if (!create)
		return NULL;
	if (m->nseries == METRICS_SERIES_MAX) {
		m->dropped += 1; /* rendered as METRICS_DROPPED_NAME{metric="<name>"} */
		return NULL;
	}
	s = &m->series[m->nseries];
	for (j = 0; j < m->nlabels; j++) {
		if (!(s->values[j] = strdup(values[j]))) {
			while (j--)
				free(s->values[j]);
			return NULL;
		}
	}
	m->nseries++;
	return s;
}

void metrics_add(struct metric *m, double v, ...)
{
	struct series *s;
	va_list ap;

	if (!m)
		return;
	va_start(ap, v);
	pthread_mutex_lock(&lock);
	s = series_get(m, ap, 1);
	if (s && !m->histogram) {
		s->count += v;
	} else if (s) {
		s->count += 1;
		s->sum += v;
		for (size_t i = 0; i < m->nbounds; i++) {
			if (v <= m->bounds[i])
				s->buckets[i] += 1;
		}
	}
	pthread_mutex_unlock(&lock);
	va_end(ap);
}

double metrics_value(struct metric *m, ...)
{
	struct series *s;
	double v = 0;
	va_list ap;

	if (!m)
		return 0;
	va_start(ap, m);
	pthread_mutex_lock(&lock);
	s = series_get(m, ap, 0);
	if (s)
		v = s->count;
	pthread_mutex_unlock(&lock);
	va_end(ap);
	return v;
}

/* An output buffer with a hard cap; once full or out of memory, it stays failed. */
struct buf {
	char *p;
	size_t len, cap;
	int failed;
};

static void put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = 1;
			return;
		}
		if (b->p && (size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t want = b->cap ? b->cap * 2 : 4096;
		while (want < b->len + (size_t)n + 1)
			want *= 2;
		char *p = want <= RENDER_MAX ? realloc(b->p, want) : NULL;
		if (!p) {
			b->failed = 1;
			return;
		}
		b->p = p;
		b->cap = want;
	}
}

/* Writes a label value with Prometheus escaping of \, " and newline. */
static void put_escaped(struct buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			put(b, "\\\\");
		else if (*s == '"')
			put(b, "\\\"");
		else if (*s == '\n')
			put(b, "\\n");
		else
			put(b, "%c", *s);
	}
}

/* Writes {a="x",b="y"[,le="..."]} or nothing when there are no labels. */
static void put_labels(struct buf *b, const struct metric *m, const struct series *s,
                       const char *le)
{
	if (m->nlabels == 0 && !le)
		return;
	put(b, "{");
	for (size_t i = 0; i < m->nlabels; i++) {
		put(b, "%s%s=\"", i ? "," : "", m->labels[i]);
		put_escaped(b, s->values[i]);
		put(b, "\"");
	}
	if (le)
		put(b, "%sle=\"%s\"", m->nlabels ? "," : "", le);
	put(b, "}");
}

static void render_metric(struct buf *b, const struct metric *m)
{
	char le[32];

	put(b, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name,
	    m->histogram ? "histogram" : "counter");
	if (!m->histogram && m->nlabels == 0 && m->nseries == 0)
		put(b, "%s 0\n", m->name);
	for (size_t i = 0; i < m->nseries; i++) {
		const struct series *s = &m->series[i];
		if (!m->histogram) {
			put(b, "%s", m->name);
			put_labels(b, m, s, NULL);
			put(b, " %.15g\n", s->count);
			continue;
		}
		for (size_t k = 0; k < m->nbounds; k++) {
			snprintf(le, sizeof(le), "%.15g", m->bounds[k]);
			put(b, "%s_bucket", m->name);
			put_labels(b, m, s, le);
			put(b, " %.15g\n", s->buckets[k]);
		}
		put(b, "%s_bucket", m->name);
		put_labels(b, m, s, "+Inf");
		put(b, " %.15g\n%s_sum", s->count, m->name);
		put_labels(b, m, s, NULL);
		put(b, " %.15g\n%s_count", s->sum, m->name);
		put_labels(b, m, s, NULL);
		put(b, " %.15g\n", s->count);
	}
}

/* The overflow counter: one series per labelled metric, so a full one is never silent. */
static void render_dropped(struct buf *b)
{
	put(b,
	    "# HELP %s Observations not recorded because their metric already had %d label "
	    "combinations.\n# TYPE %s counter\n",
	    METRICS_DROPPED_NAME, METRICS_SERIES_MAX, METRICS_DROPPED_NAME);
	for (size_t i = 0; i < nmetrics; i++) {
		if (registry[i]->nlabels == 0)
			continue;
		put(b, "%s{metric=\"", METRICS_DROPPED_NAME);
		put_escaped(b, registry[i]->name);
		put(b, "\"} %.15g\n", registry[i]->dropped);
	}
}

char *metrics_render(size_t *len)
{
	struct buf b = {0};

	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nmetrics; i++)
		render_metric(&b, registry[i]);
	render_dropped(&b);
	pthread_mutex_unlock(&lock);
	put(&b, "%s", "");
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	*len = b.len;
	return b.p;
}

void metrics_free_all(void)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nmetrics; i++)
		metric_free(registry[i]);
	nmetrics = 0;
	pthread_mutex_unlock(&lock);
}
