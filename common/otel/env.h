/* env.h — the SDK's OTEL_* environment: reading a variable, the k=v list format, rejecting. */
#ifndef BAKERY_OTEL_ENV_H
#define BAKERY_OTEL_ENV_H

#include <stddef.h>

#define OTLP_KV_ITEM_MAX 4096 /* bytes of one decoded k=v list value */

/* The value of variable name, or NULL when it is unset or empty. */
const char *otel_env(const char *name);

/* OTEL_EXPORTER_OTLP_TRACES_<what> if set, else OTEL_EXPORTER_OTLP_<what>; the name used is
 * written into name (cap bytes). NULL when neither is set and not empty. */
const char *otel_env_otlp(const char *what, char *name, size_t cap);

/* Reads integer variable name into *out (def when unset), within [min, max]. Returns 0, or
 * otel_env_bad(name, value, why). */
int otel_env_long(const char *name, long def, long min, long max, const char *why, long *out);

/* Reports a bad value (an "invalid environment variable" error line naming the variable, the
 * value and why) and returns -EINVAL: trace_init's caller then exits with status 2. */
int otel_env_bad(const char *name, const char *value, const char *why);

/* Parses the OTEL key=value list format ("k1=v1,k2=v2", percent-decoded, spaces trimmed) of
 * OTEL_RESOURCE_ATTRIBUTES and the headers, calling fn(arg, key, value) for each pair (strings
 * valid during the call only). Returns 0, -EINVAL on a malformed list or a pair with an empty
 * key, or fn's first negative result. */
int otlp_kv_list_parse(const char *s, int (*fn)(void *arg, const char *key, const char *value),
                       void *arg);

#endif
