/* json.c — OTLP/JSON encoding with jansson. */
#include "exporter.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>

static json_t *json_u64(uint64_t v)
{
	char s[24];

	snprintf(s, sizeof(s), "%" PRIu64, v);
	return json_string(s);
}

static json_t *json_hex(const uint8_t *p, size_t n)
{
	char s[33];

	tracecontext_hex(p, n, s);
	return json_string(s);
}

static json_t *json_attrs(const struct otlp_attrs *a)
{
	json_t *arr = json_array();

	for (uint32_t i = 0; arr && i < a->len; i++) {
		const struct trace_attr *x = &a->items[i];
		json_t *v = NULL;
		char num[24];
		switch (x->type) {
		case TRACE_ATTR_STRING:
			v = json_pack("{s:s}", "stringValue", x->v.s);
			break;
		case TRACE_ATTR_BOOL:
			v = json_pack("{s:b}", "boolValue", x->v.b);
			break;
		case TRACE_ATTR_INT:
			snprintf(num, sizeof(num), "%" PRId64, x->v.i);
			v = json_pack("{s:s}", "intValue", num);
			break;
		case TRACE_ATTR_DOUBLE: /* non-finite: the protobuf JSON mapping's strings */
			v = isfinite(x->v.d) ? json_pack("{s:f}", "doubleValue", x->v.d)
			                     : json_pack("{s:s}", "doubleValue",
			                                 isnan(x->v.d) ? "NaN"
			                                 : x->v.d > 0  ? "Infinity"
			                                               : "-Infinity");
			break;
		}
		json_array_append_new(arr, json_pack("{s:s,s:o*}", "key", x->key, "value", v));
	}
	return arr;
}

static json_t *json_span(const struct otlp_span *s)
{
	json_t *events = json_array(), *links = json_array();

	for (uint32_t i = 0; i < s->n_events; i++)
		json_array_append_new(events, json_pack("{s:o,s:s,s:o,s:I}", "timeUnixNano",
		                                        json_u64(s->events[i].time_ns), "name",
		                                        s->events[i].name, "attributes",
		                                        json_attrs(&s->events[i].attrs),
		                                        "droppedAttributesCount",
		                                        (json_int_t)s->events[i].attrs.dropped));
	for (uint32_t i = 0; i < s->n_links; i++) {
		const struct otlp_link *l = &s->links[i];
		json_array_append_new(
		    links, json_pack("{s:o,s:o,s:s,s:o,s:I,s:I}", "traceId",
		                     json_hex(l->trace_id, 16), "spanId", json_hex(l->span_id, 8),
		                     "traceState", l->trace_state ? l->trace_state : "",
		                     "attributes", json_attrs(&l->attrs), "droppedAttributesCount",
		                     (json_int_t)l->attrs.dropped, "flags", (json_int_t)l->flags));
	}
	return json_pack("{s:o,s:o,s:s*,s:o*,s:I,s:s,s:I,s:o,s:o,s:o,s:I,s:o,s:I,s:o,s:I,s:o*}",
	                 "traceId", json_hex(s->trace_id, 16), "spanId", json_hex(s->span_id, 8),
	                 "traceState", s->trace_state, "parentSpanId",
	                 s->has_parent ? json_hex(s->parent_span_id, 8) : NULL, "flags",
	                 (json_int_t)s->flags, "name", s->name, "kind", (json_int_t)s->kind,
	                 "startTimeUnixNano", json_u64(s->start_ns), "endTimeUnixNano",
	                 json_u64(s->end_ns), "attributes", json_attrs(&s->attrs),
	                 "droppedAttributesCount", (json_int_t)s->attrs.dropped, "events", events,
	                 "droppedEventsCount", (json_int_t)s->dropped_events, "links", links,
	                 "droppedLinksCount", (json_int_t)s->dropped_links, "status",
	                 s->error ? json_pack("{s:s,s:i}", "message",
	                                      s->status_message ? s->status_message : "", "code", 2)
	                          : NULL);
}

static int json_dump_to_buf(const char *p, size_t n, void *arg)
{
	struct otlp_buf *b = arg;

	otlp_buf_put(b, p, n);
	return b->err ? -1 : 0;
}

int otlp_encode_json(const struct otlp_resource *r, struct otlp_span *const *spans, size_t n,
                     struct otlp_buf *out)
{
	json_t *arr = json_array(), *req;
	int rc;

	for (size_t i = 0; arr && i < n; i++)
		json_array_append_new(arr, json_span(spans[i]));
	req = json_pack("{s:[{s:{s:o,s:I},s:[{s:{s:s,s:s},s:o}]}]}", "resourceSpans", "resource",
	                "attributes", json_attrs(&r->attrs), "droppedAttributesCount",
	                (json_int_t)r->attrs.dropped, "scopeSpans", "scope", "name", r->scope_name,
	                "version", r->scope_version, "spans", arr);
	if (!req)
		return out->err = -ENOMEM;
	rc = json_dump_callback(req, json_dump_to_buf, out, JSON_COMPACT);
	json_decref(req);
	if (rc < 0 && !out->err)
		out->err = -ENOMEM;
	return out->err;
}
