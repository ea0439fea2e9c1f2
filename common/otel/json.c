/* json.c — OTLP/JSON encoding (the protobuf JSON mapping), written directly into a buffer. */
#include "exporter.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* The mapping's choices: ids in lowercase hex, enums as integers, 64-bit integers as strings
 * (timestamps, intValue), non-finite doubles as "NaN", "Infinity", "-Infinity". Every field
 * is written, as the jansson encoder this replaces did, except traceState, parentSpanId and
 * status when the span has none. Strings are valid UTF-8 already (otlp_copy made them so). */

static void put(struct otlp_buf *b, const char *s)
{
	otlp_buf_put(b, s, strlen(s));
}

/* s (n bytes) as a JSON string: quotes, backslashes and control characters escaped. */
static void put_strn(struct otlp_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const char *run, *end = s + n;

	otlp_buf_put(b, "\"", 1);
	for (run = s; s < end; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		otlp_buf_put(b, run, (size_t)(s - run));
		if (c == '"' || c == '\\')
			otlp_buf_put(b, (const char[]){'\\', (char)c}, 2);
		else
			otlp_buf_put(
			    b, (const char[]){'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]}, 6);
		run = s + 1;
	}
	otlp_buf_put(b, run, (size_t)(s - run));
	otlp_buf_put(b, "\"", 1);
}

/* put_strn of a NUL-terminated s. */
static void put_str(struct otlp_buf *b, const char *s)
{
	put_strn(b, s, strlen(s));
}

/* name (the JSON up to the value, as in ",\"spanId\":"), then the n bytes at p in hex. */
static void put_hex(struct otlp_buf *b, const char *name, const uint8_t *p, size_t n)
{
	char s[33];

	tracecontext_hex(p, n, s);
	put(b, name);
	put_str(b, s);
}

/* name then v: as a string (quoted) or a number. */
static void put_u64(struct otlp_buf *b, const char *name, uint64_t v, bool quoted)
{
	char s[24];

	snprintf(s, sizeof(s), quoted ? "\"%" PRIu64 "\"" : "%" PRIu64, v);
	put(b, name);
	put(b, s);
}

static void put_double(struct otlp_buf *b, double d)
{
	char s[40];

	if (!isfinite(d)) {
		put(b, isnan(d) ? "\"NaN\"" : d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
		return;
	}
	snprintf(s, sizeof(s), "%.17g", d);
	put(b, s);
	if (!strpbrk(s, ".e")) /* still a double to a reader: 1.0, not 1 */
		put(b, ".0");
}

/* [{"key":...,"value":{...}},...] */
static void put_attrs(struct otlp_buf *b, const struct otlp_attrs *a)
{
	struct otlp_attr xs, *x = &xs;

	put(b, "[");
	for (size_t it = 0, i = 0; otlp_attrs_next(a, &it, x); i++) {
		put(b, i ? ",{\"key\":" : "{\"key\":");
		put_strn(b, x->key, x->key_len);
		switch (x->type) {
		case TRACE_ATTR_STRING:
			put(b, ",\"value\":{\"stringValue\":");
			put_strn(b, x->v.s, x->len);
			break;
		case TRACE_ATTR_BOOL:
			put(b, x->v.b ? ",\"value\":{\"boolValue\":true"
			              : ",\"value\":{\"boolValue\":false");
			break;
		case TRACE_ATTR_INT: {
			char s[64];
			snprintf(s, sizeof(s), ",\"value\":{\"intValue\":\"%" PRId64 "\"", x->v.i);
			put(b, s);
			break;
		}
		case TRACE_ATTR_DOUBLE:
			put(b, ",\"value\":{\"doubleValue\":");
			put_double(b, x->v.d);
			break;
		}
		put(b, "}}");
	}
	put(b, "]");
}

/* ,"attributes":[...],"droppedAttributesCount":n */
static void put_attrs_field(struct otlp_buf *b, const struct otlp_attrs *a)
{
	put(b, ",\"attributes\":");
	put_attrs(b, a);
	put_u64(b, ",\"droppedAttributesCount\":", a->dropped, false);
}

/* A comma, then the span: otlp_encode_json_request leaves out the first span's comma. */
int otlp_encode_json_span(const struct otlp_span *s, struct otlp_buf *b)
{
	put_hex(b, ",{\"traceId\":", s->trace_id, 16);
	put_hex(b, ",\"spanId\":", s->span_id, 8);
	if (s->trace_state) {
		put(b, ",\"traceState\":");
		put_str(b, s->trace_state);
	}
	if (s->has_parent)
		put_hex(b, ",\"parentSpanId\":", s->parent_span_id, 8);
	put_u64(b, ",\"flags\":", s->flags, false);
	put(b, ",\"name\":");
	put_str(b, s->name ? s->name : "");
	put_u64(b, ",\"kind\":", (uint64_t)s->kind, false);
	put_u64(b, ",\"startTimeUnixNano\":", s->start_ns, true);
	put_u64(b, ",\"endTimeUnixNano\":", s->end_ns, true);
	put_attrs_field(b, &s->attrs);
	put(b, ",\"events\":[");
	for (uint32_t i = 0; i < s->n_events; i++) {
		put_u64(b, i ? ",{\"timeUnixNano\":" : "{\"timeUnixNano\":", s->events[i].time_ns,
		        true);
		put(b, ",\"name\":");
		put_str(b, s->events[i].name);
		put_attrs_field(b, &s->events[i].attrs);
		put(b, "}");
	}
	put_u64(b, "],\"droppedEventsCount\":", s->dropped_events, false);
	put(b, ",\"links\":[");
	for (uint32_t i = 0; i < s->n_links; i++) {
		const struct otlp_link *l = &s->links[i];
		put_hex(b, i ? ",{\"traceId\":" : "{\"traceId\":", l->trace_id, 16);
		put_hex(b, ",\"spanId\":", l->span_id, 8);
		put(b, ",\"traceState\":");
		put_str(b, l->trace_state ? l->trace_state : "");
		put_attrs_field(b, &l->attrs);
		put_u64(b, ",\"flags\":", l->flags, false);
		put(b, "}");
	}
	put_u64(b, "],\"droppedLinksCount\":", s->dropped_links, false);
	if (s->error) {
		put(b, ",\"status\":{\"message\":");
		put_str(b, s->status_message ? s->status_message : "");
		put(b, ",\"code\":2}"); /* STATUS_CODE_ERROR */
	}
	put(b, "}");
	return b->err;
}

int otlp_encode_json_head(const struct otlp_resource *r, struct otlp_buf *out)
{
	put(out, "{\"resourceSpans\":[{\"resource\":{\"attributes\":");
	put_attrs(out, &r->attrs);
	put_u64(out, ",\"droppedAttributesCount\":", r->attrs.dropped, false);
	put(out, "},\"scopeSpans\":[{\"scope\":{\"name\":");
	put_str(out, r->scope_name ? r->scope_name : "");
	put(out, ",\"version\":");
	put_str(out, r->scope_version ? r->scope_version : "");
	put(out, "},\"spans\":[");
	return out->err;
}

int otlp_encode_json_request(const struct otlp_resource *r, const struct otlp_buf *spans,
                             struct otlp_buf *out)
{
	otlp_encode_json_head(r, out);
	if (spans->len > 1)
		otlp_buf_put(out, spans->data + 1, spans->len - 1); /* without the first comma */
	put(out, OTLP_JSON_TAIL);
	return out->err;
}
