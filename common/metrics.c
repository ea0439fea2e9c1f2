/* metrics.c — a small registry of counters and histograms behind one mutex. */
#include "metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RENDER_MAX (4 * 1024 * 1024) /* a longer text is not rendered */

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
	for (size_t i = 0; i < nmetrics && !m; i++)
		if (strcmp(registry[i]->name, name) == 0)
			m = registry[i];
	if (m || nmetrics == METRICS_MAX || !(m = calloc(1, sizeof(*m))))
		goto out; /* found, full, or out of memory */
	m->histogram = histogram;
	m->name = strdup(name);
	m->help = strdup(help);
	if (!m->name || !m->help)
		goto fail;
	for (; labels && labels[m->nlabels]; m->nlabels++)
		if (m->nlabels == METRICS_LABELS_MAX ||
		    !(m->labels[m->nlabels] = strdup(labels[m->nlabels])))
			goto fail;
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
		for (j = 0; j < m->nlabels && strcmp(m->series[i].values[j], values[j]) == 0; j++)
			;
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
	if (s) {
		s->count += m->histogram ? 1 : v;
		s->sum += v;                            /* rendered for histograms only */
		for (size_t i = 0; i < m->nbounds; i++) /* a counter has no bounds */
			s->buckets[i] += v <= m->bounds[i];
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

/* Writes a label value with Prometheus escaping of \, " and newline. */
static void put_escaped(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

/* Writes one sample: <name><suffix>{a="x",b="y"[,le="..."]} <v>, without braces when there are
 * no labels. */
static void put_sample(FILE *f, const struct metric *m, const struct series *s, const char *suffix,
                       const char *le, double v)
{
	fprintf(f, "%s%s", m->name, suffix);
	if (m->nlabels || le)
		fputc('{', f);
	for (size_t i = 0; i < m->nlabels; i++) {
		fprintf(f, "%s%s=\"", i ? "," : "", m->labels[i]);
		put_escaped(f, s->values[i]);
		fputc('"', f);
	}
	if (le)
		fprintf(f, "%sle=\"%s\"", m->nlabels ? "," : "", le);
	fprintf(f, "%s %.15g\n", m->nlabels || le ? "}" : "", v);
}

static void render_metric(FILE *f, const struct metric *m)
{
	char le[32];

	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name,
	        m->histogram ? "histogram" : "counter");
	if (!m->histogram && m->nlabels == 0 && m->nseries == 0)
		fprintf(f, "%s 0\n", m->name);
	for (size_t i = 0; i < m->nseries; i++) {
		const struct series *s = &m->series[i];
		if (!m->histogram) {
			put_sample(f, m, s, "", NULL, s->count);
			continue;
		}
		for (size_t k = 0; k < m->nbounds; k++) {
			snprintf(le, sizeof(le), "%.15g", m->bounds[k]);
			put_sample(f, m, s, "_bucket", le, s->buckets[k]);
		}
		put_sample(f, m, s, "_bucket", "+Inf", s->count);
		put_sample(f, m, s, "_sum", NULL, s->sum);
		put_sample(f, m, s, "_count", NULL, s->count);
	}
}

/* The overflow counter: one series per labelled metric, so a full one is never silent. */
static void render_dropped(FILE *f)
{
	fprintf(f,
	        "# HELP %s Observations not recorded because their metric already had %d label "
	        "combinations.\n# TYPE %s counter\n",
	        METRICS_DROPPED_NAME, METRICS_SERIES_MAX, METRICS_DROPPED_NAME);
	for (size_t i = 0; i < nmetrics; i++) {
		if (registry[i]->nlabels == 0)
			continue;
		fprintf(f, "%s{metric=\"", METRICS_DROPPED_NAME);
		put_escaped(f, registry[i]->name);
		fprintf(f, "\"} %.15g\n", registry[i]->dropped);
	}
}

char *metrics_render(size_t *len)
{
	char *p = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&p, &n);
	bool failed;

	if (!f)
		return NULL;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nmetrics; i++)
		render_metric(f, registry[i]);
	render_dropped(f);
	pthread_mutex_unlock(&lock);
	failed = ferror(f) != 0;
	if (fclose(f) != 0 || failed || n >= RENDER_MAX) {
		free(p);
		return NULL;
	}
	*len = n;
	return p;
}

void metrics_free_all(void)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nmetrics; i++)
		metric_free(registry[i]);
	nmetrics = 0;
	pthread_mutex_unlock(&lock);
}
