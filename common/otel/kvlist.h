/* kvlist.h — the OTEL key=value list format of OTEL_RESOURCE_ATTRIBUTES and the headers. */
#ifndef BAKERY_OTEL_KVLIST_H
#define BAKERY_OTEL_KVLIST_H

#define OTLP_KV_ITEM_MAX 4096 /* bytes of one decoded value */

/* Parses "k1=v1,k2=v2" (percent-decoded, spaces trimmed), calling fn(arg, key, value) for each
 * pair (strings valid during the call only). Returns 0, -EINVAL on a malformed list or a pair
 * with an empty key, or fn's first negative result. */
int otlp_kv_list_parse(const char *s, int (*fn)(void *arg, const char *key, const char *value),
                       void *arg);

#endif
