/* env.h — the SDK's OTEL_* environment: reading a variable, the k=v list format, rejecting. */
#ifndef BAKERY_OTEL_ENV_H
#define BAKERY_OTEL_ENV_H

#define OTLP_KV_ITEM_MAX 4096 /* bytes of one decoded k=v list value */

/* The value of variable name, or NULL when it is unset or empty. */
const char *otel_env(const char *name);

/* Reads integer variable name (def when unset) in [min, max]. Returns 0, or otel_env_bad(). */
int otel_env_long(const char *name, long def, long min, long max, const char *why, long *out);

/* Logs an "invalid environment variable" error (name, value, why). Returns -EINVAL. */
int otel_env_bad(const char *name, const char *value, const char *why);

/* Parses "k1=v1,k2=v2" (percent-decoded, blanks trimmed), calling fn per pair (strings valid
 * during the call). Returns 0, -EINVAL (malformed, empty key) or fn's first negative result. */
int otlp_kv_list_parse(const char *s, int (*fn)(void *arg, const char *key, const char *value),
                       void *arg);

#endif
