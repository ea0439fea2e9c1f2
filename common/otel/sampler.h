/* sampler.h — which new spans are recorded and exported: OTEL_TRACES_SAMPLER[_ARG]. */
#ifndef BAKERY_OTEL_SAMPLER_H
#define BAKERY_OTEL_SAMPLER_H

#include <stdbool.h>
#include <stdint.h>

struct otel_sampler {
	enum {
		OTEL_SAMPLER_ALWAYS_ON,
		OTEL_SAMPLER_ALWAYS_OFF,
		OTEL_SAMPLER_RATIO,
		OTEL_SAMPLER_PARENT_ON, /* parentbased last; sampler.c names them in this order */
		OTEL_SAMPLER_PARENT_OFF,
		OTEL_SAMPLER_PARENT_RATIO
	} kind;
	double ratio;
};

/* Reads OTEL_TRACES_SAMPLER (default parentbased_always_on) and its _ARG into s. Returns 0 or
 * -EINVAL (otel_env_bad). */
int otel_sampler_from_env(struct otel_sampler *s);

/* The decision for a span in trace_id whose parent (if has_parent) had parent_flags. */
bool otel_sampler_sample(const struct otel_sampler *s, const uint8_t trace_id[16], bool has_parent,
                         uint8_t parent_flags);

/* traceidratio: trace_id's last 8 bytes (big-endian) >> 1 below ratio * 2^63. */
bool trace_ratio_sampled(const uint8_t trace_id[16], double ratio);

#endif
