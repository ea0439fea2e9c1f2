/* order.c — order keys from the OS CSPRNG, request validation and JSON via jansson. */
#include "order.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define HEX "0123456789abcdef"

int order_key_new(char key[ORDER_KEY_LEN + 1])
{
	uint8_t raw[ORDER_KEY_LEN / 2];
	size_t got = 0;

	while (got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	tracecontext_hex(raw, sizeof(raw), key);
	return 0;
}

bool order_key_valid(const char *s)
{
	return s && strspn(s, HEX) == ORDER_KEY_LEN && s[ORDER_KEY_LEN] == '\0';
}

int order_time_format(const struct timespec *ts, bool with_ns, char *buf, size_t cap)
{
	struct tm tm;
	size_t n;
	int m;

	if (!gmtime_r(&ts->tv_sec, &tm))
		return -EINVAL;
	n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	if (n == 0)
		return -ENOSPC;
	m = with_ns ? snprintf(buf + n, cap - n, ".%09ldZ", ts->tv_nsec)
	            : snprintf(buf + n, cap - n, "Z");
	return (m < 0 || (size_t)m >= cap - n) ? -ENOSPC : 0;
}

/* Copies a required string member: present, a string, non-empty, <= 256 bytes (jansson
 * already refused \u0000 since JSON_ALLOW_NUL is not set). */
static int take_field(json_t *obj, const char *name, char *out, const char **why)
{
	static const char *const whys[2][3] = {
	    {"customer must be a string", "customer must not be empty",
	     "customer is longer than 256 bytes"},
	    {"pastry must be a string", "pastry must not be empty",
	     "pastry is longer than 256 bytes"}};
	const char *const *field_why = whys[strcmp(name, "customer") != 0];
	json_t *v = json_object_get(obj, name);
	size_t len = json_string_length(v); /* 0 for a non-string */

	if (!json_is_string(v) || len == 0 || len > ORDER_FIELD_MAX) {
		*why = field_why[!json_is_string(v) ? 0 : len == 0 ? 1 : 2];
		return -EINVAL;
	}
	memcpy(out, json_string_value(v), len);
	out[len] = '\0';
	return 0;
}

/* True when arrays and objects in the JSON text nest at most ORDER_JSON_DEPTH_MAX deep
 * (strings skipped). jansson parses recursively up to depth 2048, which can overflow a small
 * server thread stack; this bounded scan runs first. */
static bool nesting_ok(const char *s, size_t len)
{
	bool in_string = false;
	int depth = 0;

	for (size_t i = 0; i < len; i++) {
		if (in_string) {
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				in_string = false;
		} else if (s[i] == '"') {
			in_string = true;
		} else if (s[i] == '[' || s[i] == '{') {
			if (++depth > ORDER_JSON_DEPTH_MAX)
				return false;
		} else if (s[i] == ']' || s[i] == '}') {
			depth--;
		}
	}
	return true;
}

int order_parse_request(const char *body, size_t len, struct order *o, const char **why)
{
	json_error_t err;
	json_t *root;
	int rc = -EINVAL;

	if (len > ORDER_BODY_MAX) {
		*why = "request body is too large";
		return -EINVAL;
	}
	if (!nesting_ok(body, len)) {
		*why = "body is nested too deeply";
		return -EINVAL;
	}
	/* jansson rejects invalid UTF-8, trailing garbage and nesting beyond its depth cap. */
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
	if (!root) {
		*why = json_error_code(&err) == json_error_invalid_utf8 ? "body is not valid UTF-8"
		                                                        : "body is not valid JSON";
		return -EINVAL;
	}
	if (!json_is_object(root))
		*why = "body must be a JSON object";
	else if (take_field(root, "customer", o->customer, why) == 0 &&
	         take_field(root, "pastry", o->pastry, why) == 0)
		rc = 0;
	json_decref(root);
	return rc;
}

/* Serialises obj compactly, keys in insertion order, and releases it. Returns a malloc'd
 * string, or NULL when obj is NULL (json_pack failed) or out of memory. */
static char *dump(json_t *obj)
{
	char *s;

	if (!obj)
		return NULL;
	s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(obj);
	return s;
}

/* Copies the trace id of a stored traceparent ("00-<32 hex>-<16 hex>-<2 hex>") into out;
 * returns false when it is not one (no trace_context here: it is 1 KB, and this runs on
 * civetweb's small worker stacks). */
static bool traceparent_trace_id(const char *tp, char out[33])
{
	if (strlen(tp) != TRACECONTEXT_TRACEPARENT_LEN || strncmp(tp, "00-", 3) != 0 ||
	    tp[35] != '-' || strspn(tp + 3, HEX) != 32 || strspn(tp + 3, "0") == 32)
		return false;
	memcpy(out, tp + 3, 32);
	out[32] = '\0';
	return true;
}

char *order_to_json(const struct order *o)
{
	char trace_id[33];
	json_t *obj = json_pack("{s:s, s:s, s:s, s:s}", "pastry", o->pastry, "customer",
	                        o->customer, "orderTime", o->order_time, "status", o->status);

	if (obj && traceparent_trace_id(o->traceparent, trace_id) &&
	    json_object_set_new(obj, "traceId", json_string(trace_id)) < 0) {
		json_decref(obj);
		return NULL;
	}
	return dump(obj);
}

char *order_message_new(const char *key, const char *time_enqueued)
{
	return dump(json_pack("{s:s, s:s}", "orderKey", key, "timeEnqueued", time_enqueued));
}

int order_trace_context(const struct order *o, struct trace_context *ctx)
{
	ctx->remote = true;
	ctx->baggage[0] = '\0';
	tracecontext_parse_tracestate(&(struct trace_field){o->tracestate, strlen(o->tracestate)},
	                              1, ctx->tracestate,
	                              sizeof(ctx->tracestate)); /* malformed: "" */
	return tracecontext_parse_traceparent(o->traceparent, strlen(o->traceparent), ctx);
}

/* An RFC 3339 UTC time ("2006-01-02T15:04:05.999999999Z") in ms since the epoch, or -1. */
static double rfc3339_ms(const char *s)
{
	struct tm tm = {0};
	double frac = 0, digit = 100;
	const char *p;

	if (!s || !(p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)))
		return -1;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++, digit /= 10)
			frac += (*p - '0') * digit;
	if (p[0] != 'Z' || p[1] != '\0')
		return -1;
	return (double)timegm(&tm) * 1e3 + frac;
}

int order_message_parse(const char *body, size_t len, struct order_message *msg)
{
	json_t *root = nesting_ok(body, len) ? json_loadb(body, len, 0, NULL) : NULL;
	const char *k;
	int rc = -EINVAL;

	if (!root)
		return -EINVAL;
	k = json_string_value(json_object_get(root, "orderKey"));
	if (json_is_object(root) && order_key_valid(k)) {
		memcpy(msg->key, k, ORDER_KEY_LEN + 1);
		msg->enqueued_ms =
		    rfc3339_ms(json_string_value(json_object_get(root, "timeEnqueued")));
		rc = 0;
	}
	json_decref(root);
	return rc;
}
