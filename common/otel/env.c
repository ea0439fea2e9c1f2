/* env.c — reads and rejects the SDK's OTEL_* environment variables, all the same way. */
#include "env.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "diag.h"

const char *otel_env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

const char *otel_env_otlp(const char *what, char *name, size_t cap)
{
	const char *v;

	snprintf(name, cap, "OTEL_EXPORTER_OTLP_TRACES_%s", what);
	if ((v = otel_env(name)))
		return v;
	snprintf(name, cap, "OTEL_EXPORTER_OTLP_%s", what);
	return otel_env(name);
}

int otel_env_long(const char *name, long def, long min, long max, const char *why, long *out)
{
	const char *v = otel_env(name);
	char *end;

	*out = def;
	if (!v)
		return 0;
	errno = 0;
	*out = strtol(v, &end, 10);
	if (errno || *end || *out < min || *out > max)
		return otel_env_bad(name, v, why);
	return 0;
}

int otel_env_bad(const char *name, const char *value, const char *why)
{
	otel_diag_log(OTEL_DIAG_ERROR, "invalid environment variable",
	              (const char *const[6]){"variable", name, "value", value, "error", why});
	return -EINVAL;
}
