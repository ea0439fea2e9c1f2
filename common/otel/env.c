/* env.c — reads the SDK's OTEL_* variables and their k=v lists, and rejects bad values. */
#include "env.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"

const char *otel_env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
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
	otel_diag_log(TRACE_DIAG_ERROR, "invalid environment variable",
	              (const char *const[6]){"variable", name, "value", value, "error", why});
	return -EINVAL;
}

/* Trims and percent-decodes [s, s + n) into out (cap bytes). Returns 0 or -EINVAL. */
static int kv_decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	while (n > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%') {
			char hex[3] = {i + 2 < n ? s[i + 1] : 0, i + 2 < n ? s[i + 2] : 0, 0};
			if (!isxdigit((unsigned char)hex[0]) || !isxdigit((unsigned char)hex[1]))
				return -EINVAL;
			c = (char)strtol(hex, NULL, 16);
			i += 2;
		}
		if (c == '\0' || o + 1 >= cap)
			return -EINVAL;
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

int otlp_kv_list_parse(const char *s, int (*fn)(void *arg, const char *key, const char *value),
                       void *arg)
{
	char key[256], value[OTLP_KV_ITEM_MAX];
	const char *end = s + strlen(s);

	while (s < end) {
		const char *comma = memchr(s, ',', (size_t)(end - s));
		const char *item_end = comma ? comma : end;
		const char *eq = memchr(s, '=', (size_t)(item_end - s));
		int rc;

		if (!eq) { /* blank */
			if (kv_decode(s, (size_t)(item_end - s), value, sizeof(value)) < 0 ||
			    value[0])
				return -EINVAL;
		} else {
			if (kv_decode(s, (size_t)(eq - s), key, sizeof(key)) < 0 || !key[0] ||
			    kv_decode(eq + 1, (size_t)(item_end - eq - 1), value, sizeof(value)) <
			        0)
				return -EINVAL;
			if ((rc = fn(arg, key, value)) < 0)
				return rc;
		}
		s = comma ? comma + 1 : end;
	}
	return 0;
}
