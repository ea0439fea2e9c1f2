/* sampler.c — the spec's samplers: always_on/off, traceidratio, and their parentbased forms. */
#include "sampler.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "tracecontext.h"

bool trace_ratio_sampled(const uint8_t trace_id[16], double ratio)
{
	uint64_t x = 0;

	if (ratio >= 1.0)
		return true;
	if (!(ratio > 0.0))
		return false;
	for (int i = 8; i < 16; i++)
		x = x << 8 | trace_id[i];
	return (x >> 1) < (uint64_t)(ratio * 9223372036854775808.0);
}

bool otel_sampler_sample(const struct otel_sampler *s, const uint8_t trace_id[16], bool has_parent,
                         uint8_t parent_flags)
{
	bool ratio = s->kind == OTEL_SAMPLER_RATIO || s->kind == OTEL_SAMPLER_PARENT_RATIO;

	if (s->kind >= OTEL_SAMPLER_PARENT_ON && has_parent)
		return parent_flags & TRACECONTEXT_FLAG_SAMPLED;
	return s->kind == OTEL_SAMPLER_ALWAYS_ON || s->kind == OTEL_SAMPLER_PARENT_ON ||
	       (ratio && trace_ratio_sampled(trace_id, s->ratio));
}

int otel_sampler_from_env(struct otel_sampler *s)
{
	static const char *const names[] = {"always_on",
	                                    "always_off",
	                                    "traceidratio",
	                                    "parentbased_always_on",
	                                    "parentbased_always_off",
	                                    "parentbased_traceidratio"};
	const char *v = otel_env("OTEL_TRACES_SAMPLER"), *arg = otel_env("OTEL_TRACES_SAMPLER_ARG");
	size_t i;
	char *end;

	s->kind = OTEL_SAMPLER_PARENT_ON;
	s->ratio = 1.0;
	if (v) {
		for (i = 0; i < sizeof(names) / sizeof(names[0]) && strcmp(v, names[i]) != 0; i++)
			;
		if (i == sizeof(names) / sizeof(names[0]))
			return otel_env_bad("OTEL_TRACES_SAMPLER", v,
			                    "supported: always_on, always_off, traceidratio, "
			                    "parentbased_always_on, parentbased_always_off, "
			                    "parentbased_traceidratio");
		s->kind = i;
	}
	if ((s->kind == OTEL_SAMPLER_RATIO || s->kind == OTEL_SAMPLER_PARENT_RATIO) && arg) {
		errno = 0;
		s->ratio = strtod(arg, &end);
		if (errno || *end || !(s->ratio >= 0.0 && s->ratio <= 1.0))
			return otel_env_bad("OTEL_TRACES_SAMPLER_ARG", arg, "a ratio from 0 to 1");
	}
	return 0;
}
