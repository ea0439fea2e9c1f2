/* otlp.c — OTLP trace export: span records, protobuf and JSON encoding, gzip, libcurl POST. */
#include "otlp.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "log.h"

#define URL_MAX     2048
#define HEADERS_MAX 32 /* entries taken from OTEL_EXPORTER_OTLP_[TRACES_]HEADERS */
#define KV_ITEM_MAX 4096

/* ---- strings and attributes ---------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0 when it is invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t k;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		k = 2;
	else if (c >= 0xe0 && c <= 0xef)
		k = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		k = 4;
	else
		return 0;
	if (n < k)
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < k; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return k;
}

char *otlp_strdup(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, o = 0;
	char *out = malloc((n < OTLP_STRING_MAX ? n : OTLP_STRING_MAX) + 1);

	if (!out)
		return NULL;
	while (i < n) {
		size_t k = utf8_len(u + i, n - i);
		if (o + (k ? k : 1) > OTLP_STRING_MAX)
			break;
		if (k == 0) {
			out[o++] = '?';
			i++;
			continue;
		}
		memcpy(out + o, s + i, k);
		o += k;
		i += k;
	}
	out[o] = '\0';
	return out;
}

static void attr_free(struct trace_attr *a)
{
	free((void *)a->key);
	if (a->type == TRACE_ATTR_STRING)
		free((void *)a->v.s);
}

/* Copies src into dst (owned strings). Returns 0 or -ENOMEM. */
static int attr_copy(struct trace_attr *dst, const struct trace_attr *src)
{
	*dst = *src;
	dst->key = otlp_strdup(src->key);
	if (src->type == TRACE_ATTR_STRING)
		dst->v.s = otlp_strdup(src->v.s ? src->v.s : "");
	if (!dst->key || (src->type == TRACE_ATTR_STRING && !dst->v.s)) {
		free((void *)dst->key);
		if (src->type == TRACE_ATTR_STRING)
			free((void *)dst->v.s);
		return -ENOMEM;
	}
	return 0;
}

int otlp_attrs_set(struct otlp_attrs *a, const struct trace_attr *attr)
{
	struct trace_attr copy;

	if (!attr->key)
		return -EINVAL;
	if (attr_copy(&copy, attr) < 0)
		return -ENOMEM;
	for (uint32_t i = 0; i < a->len; i++) {
		if (strcmp(a->items[i].key, copy.key) == 0) {
			attr_free(&a->items[i]);
			a->items[i] = copy;
			return 0;
		}
	}
	if (a->len == OTLP_ATTRS_MAX) {
		attr_free(&copy);
		a->dropped++;
		return -ENOSPC;
	}
	if (a->len == a->cap) {
		uint32_t cap = a->cap ? a->cap * 2 : 8;
		struct trace_attr *items = realloc(a->items, cap * sizeof(*items));
		if (!items) {
			attr_free(&copy);
			return -ENOMEM;
		}
		a->items = items;
		a->cap = cap;
	}
	a->items[a->len++] = copy;
	return 0;
}

void otlp_attrs_free(struct otlp_attrs *a)
{
	for (uint32_t i = 0; i < a->len; i++)
		attr_free(&a->items[i]);
	free(a->items);
	memset(a, 0, sizeof(*a));
}

static void attrs_set_all(struct otlp_attrs *a, const struct trace_attr *attrs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		otlp_attrs_set(a, &attrs[i]);
}

/* Makes room for entry len of *items (elem bytes each; the capacity is 4, then the next power
 * of two), up to max entries. Returns 0, -ENOSPC or -ENOMEM. */
static int grow(void **items, uint32_t len, size_t elem, uint32_t max)
{
	void *p;

	if (len == max)
		return -ENOSPC;
	if (len != 0 && (len < 4 || (len & (len - 1)) != 0))
		return 0;
	p = realloc(*items, (len ? len * 2 : 4) * elem);
	if (!p)
		return -ENOMEM;
	*items = p;
	return 0;
}

int otlp_span_add_event(struct otlp_span *s, uint64_t time_ns, const char *name,
                        const struct trace_attr *attrs, size_t n)
{
	struct otlp_event *e;
	int rc = grow((void **)&s->events, s->n_events, sizeof(*e), OTLP_EVENTS_MAX);

	if (rc < 0) {
		s->dropped_events++;
		return rc;
	}
	e = &s->events[s->n_events];
	memset(e, 0, sizeof(*e));
	e->time_ns = time_ns;
	e->name = otlp_strdup(name ? name : "");
	if (!e->name)
		return -ENOMEM;
	attrs_set_all(&e->attrs, attrs, n);
	s->n_events++;
	return 0;
}

int otlp_span_add_link(struct otlp_span *s, const struct trace_context *ctx,
                       const struct trace_attr *attrs, size_t n)
{
	struct otlp_link *l;
	int rc = grow((void **)&s->links, s->n_links, sizeof(*l), OTLP_LINKS_MAX);

	if (rc < 0) {
		s->dropped_links++;
		return rc;
	}
	l = &s->links[s->n_links];
	memset(l, 0, sizeof(*l));
	memcpy(l->trace_id, ctx->trace_id, 16);
	memcpy(l->span_id, ctx->span_id, 8);
	l->flags = ctx->flags | OTLP_FLAG_HAS_IS_REMOTE | (ctx->remote ? OTLP_FLAG_IS_REMOTE : 0);
	if (ctx->tracestate[0] && !(l->trace_state = otlp_strdup(ctx->tracestate)))
		return -ENOMEM;
	attrs_set_all(&l->attrs, attrs, n);
	s->n_links++;
	return 0;
}

void otlp_span_clear(struct otlp_span *s)
{
	for (uint32_t i = 0; i < s->n_events; i++) {
		free(s->events[i].name);
		otlp_attrs_free(&s->events[i].attrs);
	}
	for (uint32_t i = 0; i < s->n_links; i++) {
		free(s->links[i].trace_state);
		otlp_attrs_free(&s->links[i].attrs);
	}
	free(s->events);
	free(s->links);
	free(s->trace_state);
	free(s->name);
	free(s->status_message);
	otlp_attrs_free(&s->attrs);
	memset(s, 0, sizeof(*s));
}

/* ---- buffers ------------------------------------------------------------------------- */

static int buf_reserve(struct otlp_buf *b, size_t extra)
{
	size_t cap;
	uint8_t *p;

	if (b->err)
		return b->err;
	if (extra > OTLP_BODY_MAX - b->len)
		return b->err = -E2BIG;
	if (b->len + extra <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 1024;
	while (cap < b->len + extra)
		cap *= 2;
	if (cap > OTLP_BODY_MAX)
		cap = OTLP_BODY_MAX;
	p = realloc(b->data, cap);
	if (!p)
		return b->err = -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

static void buf_put(struct otlp_buf *b, const void *p, size_t n)
{
	if (n == 0 || buf_reserve(b, n) < 0)
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void otlp_buf_free(struct otlp_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* ---- protobuf ------------------------------------------------------------------------ */
/* Wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32. Nested messages are written
 * in place: pb_open reserves one length byte, pb_close fills it in (moving the body when the
 * length needs more bytes). Proto3 defaults (0, "") are left out except inside AnyValue. */

static void pb_varint(struct otlp_buf *b, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;

	do {
		tmp[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	buf_put(b, tmp, n);
}

static void pb_tag(struct otlp_buf *b, unsigned field, unsigned wire)
{
	pb_varint(b, (uint64_t)field << 3 | wire);
}

static void pb_uint(struct otlp_buf *b, unsigned field, uint64_t v)
{
	if (v) {
		pb_tag(b, field, 0);
		pb_varint(b, v);
	}
}

static void pb_fixed64(struct otlp_buf *b, unsigned field, uint64_t v)
{
	uint8_t le[8];

	for (int i = 0; i < 8; i++)
		le[i] = (uint8_t)(v >> (8 * i));
	pb_tag(b, field, 1);
	buf_put(b, le, 8);
}

static void pb_fixed32(struct otlp_buf *b, unsigned field, uint32_t v)
{
	uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

	if (v) {
		pb_tag(b, field, 5);
		buf_put(b, le, 4);
	}
}

static void pb_bytes(struct otlp_buf *b, unsigned field, const void *p, size_t n)
{
	pb_tag(b, field, 2);
	pb_varint(b, n);
	buf_put(b, p, n);
}

static void pb_string(struct otlp_buf *b, unsigned field, const char *s)
{
	if (s && *s)
		pb_bytes(b, field, s, strlen(s));
}

static size_t pb_open(struct otlp_buf *b, unsigned field)
{
	pb_tag(b, field, 2);
	buf_put(b, "", 1);
	return b->len;
}

static void pb_close(struct otlp_buf *b, size_t start)
{
	size_t n, k = 1;
	uint8_t *p;

	if (b->err)
		return;
	n = b->len - start;
	for (size_t v = n; v > 0x7f; v >>= 7)
		k++;
	if (k > 1) {
		if (buf_reserve(b, k - 1) < 0)
			return;
		memmove(b->data + start + k - 1, b->data + start, n);
		b->len += k - 1;
	}
	p = b->data + start - 1;
	for (size_t i = 0; i < k; i++, n >>= 7)
		p[i] = (uint8_t)((n & 0x7f) | (i + 1 < k ? 0x80 : 0));
}

static void pb_keyvalue(struct otlp_buf *b, unsigned field, const struct trace_attr *a)
{
	size_t kv = pb_open(b, field), any;
	uint64_t bits;

	pb_string(b, 1, a->key);
	any = pb_open(b, 2);
	switch (a->type) {
	case TRACE_ATTR_STRING:
		pb_bytes(b, 1, a->v.s, strlen(a->v.s));
		break;
	case TRACE_ATTR_BOOL:
		pb_tag(b, 2, 0);
		pb_varint(b, a->v.b);
		break;
	case TRACE_ATTR_INT:
		pb_tag(b, 3, 0);
		pb_varint(b, (uint64_t)a->v.i);
		break;
	case TRACE_ATTR_DOUBLE:
		memcpy(&bits, &a->v.d, 8);
		pb_fixed64(b, 4, bits);
		break;
	}
	pb_close(b, any);
	pb_close(b, kv);
}

static void pb_attrs(struct otlp_buf *b, unsigned field, unsigned dropped_field,
                     const struct otlp_attrs *a)
{
	for (uint32_t i = 0; i < a->len; i++)
		pb_keyvalue(b, field, &a->items[i]);
	pb_uint(b, dropped_field, a->dropped);
}

static void pb_span(struct otlp_buf *b, const struct otlp_span *s)
{
	size_t span = pb_open(b, 2), m;

	pb_bytes(b, 1, s->trace_id, 16);
	pb_bytes(b, 2, s->span_id, 8);
	pb_string(b, 3, s->trace_state);
	if (s->has_parent)
		pb_bytes(b, 4, s->parent_span_id, 8);
	pb_string(b, 5, s->name);
	pb_uint(b, 6, (uint64_t)s->kind);
	pb_fixed64(b, 7, s->start_ns);
	pb_fixed64(b, 8, s->end_ns);
	pb_attrs(b, 9, 10, &s->attrs);
	for (uint32_t i = 0; i < s->n_events; i++) {
		m = pb_open(b, 11);
		pb_fixed64(b, 1, s->events[i].time_ns);
		pb_string(b, 2, s->events[i].name);
		pb_attrs(b, 3, 4, &s->events[i].attrs);
		pb_close(b, m);
	}
	pb_uint(b, 12, s->dropped_events);
	for (uint32_t i = 0; i < s->n_links; i++) {
		const struct otlp_link *l = &s->links[i];
		m = pb_open(b, 13);
		pb_bytes(b, 1, l->trace_id, 16);
		pb_bytes(b, 2, l->span_id, 8);
		pb_string(b, 3, l->trace_state);
		pb_attrs(b, 4, 5, &l->attrs);
		pb_fixed32(b, 6, l->flags);
		pb_close(b, m);
	}
	pb_uint(b, 14, s->dropped_links);
	if (s->error) {
		m = pb_open(b, 15);
		pb_string(b, 2, s->status_message);
		pb_uint(b, 3, 2); /* STATUS_CODE_ERROR */
		pb_close(b, m);
	}
	pb_fixed32(b, 16, s->flags);
	pb_close(b, span);
}

int otlp_encode_protobuf(const struct otlp_resource *r, struct otlp_span *const *spans, size_t n,
                         struct otlp_buf *out)
{
	size_t rs, res, ss, scope;

	rs = pb_open(out, 1); /* ExportTraceServiceRequest.resource_spans */
	res = pb_open(out, 1);
	pb_attrs(out, 1, 2, &r->attrs);
	pb_close(out, res);
	ss = pb_open(out, 2);
	scope = pb_open(out, 1);
	pb_string(out, 1, r->scope_name);
	pb_string(out, 2, r->scope_version);
	pb_close(out, scope);
	for (size_t i = 0; i < n; i++)
		pb_span(out, spans[i]);
	pb_close(out, ss);
	pb_close(out, rs);
	return out->err;
}

/* ---- JSON ---------------------------------------------------------------------------- */

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
		case TRACE_ATTR_DOUBLE:
			/* JSON numbers cannot say NaN or infinity; the protobuf JSON mapping's
			 * strings can. */
			if (isnan(x->v.d))
				v = json_pack("{s:s}", "doubleValue", "NaN");
			else if (isinf(x->v.d))
				v = json_pack("{s:s}", "doubleValue",
				              x->v.d > 0 ? "Infinity" : "-Infinity");
			else
				v = json_pack("{s:f}", "doubleValue", x->v.d);
			break;
		}
		json_array_append_new(arr, json_pack("{s:s,s:o*}", "key", x->key, "value", v));
	}
	return arr;
}

static json_t *json_span(const struct otlp_span *s)
{
	json_t *o = json_object(), *events = json_array(), *links = json_array();

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
	json_object_set_new(o, "traceId", json_hex(s->trace_id, 16));
	json_object_set_new(o, "spanId", json_hex(s->span_id, 8));
	if (s->trace_state)
		json_object_set_new(o, "traceState", json_string(s->trace_state));
	if (s->has_parent)
		json_object_set_new(o, "parentSpanId", json_hex(s->parent_span_id, 8));
	json_object_set_new(o, "flags", json_integer(s->flags));
	json_object_set_new(o, "name", json_string(s->name));
	json_object_set_new(o, "kind", json_integer(s->kind));
	json_object_set_new(o, "startTimeUnixNano", json_u64(s->start_ns));
	json_object_set_new(o, "endTimeUnixNano", json_u64(s->end_ns));
	json_object_set_new(o, "attributes", json_attrs(&s->attrs));
	json_object_set_new(o, "droppedAttributesCount", json_integer(s->attrs.dropped));
	json_object_set_new(o, "events", events);
	json_object_set_new(o, "droppedEventsCount", json_integer(s->dropped_events));
	json_object_set_new(o, "links", links);
	json_object_set_new(o, "droppedLinksCount", json_integer(s->dropped_links));
	if (s->error)
		json_object_set_new(o, "status",
		                    json_pack("{s:s,s:i}", "message",
		                              s->status_message ? s->status_message : "", "code",
		                              2));
	return o;
}

static int json_dump_to_buf(const char *p, size_t n, void *arg)
{
	struct otlp_buf *b = arg;

	buf_put(b, p, n);
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

/* ---- gzip ---------------------------------------------------------------------------- */

int otlp_gzip(struct otlp_buf *in)
{
	struct otlp_buf out = {0};
	z_stream z = {0};
	int rc;

	if (in->err)
		return in->err;
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK)
		return -ENOMEM;
	if (buf_reserve(&out, deflateBound(&z, in->len)) < 0) {
		rc = out.err;
		goto done;
	}
	z.next_in = in->data;
	z.avail_in = (uInt)in->len;
	z.next_out = out.data;
	z.avail_out = (uInt)out.cap;
	rc = deflate(&z, Z_FINISH) == Z_STREAM_END ? 0 : -EIO;
	out.len = out.cap - z.avail_out;
done:
	deflateEnd(&z);
	if (rc < 0) {
		otlp_buf_free(&out);
		return rc;
	}
	otlp_buf_free(in);
	*in = out;
	return 0;
}

/* ---- the OTEL key=value list format -------------------------------------------------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
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
			int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
			int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return -EINVAL;
			c = (char)(hi << 4 | lo);
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
	char key[256], value[KV_ITEM_MAX];
	const char *end = s + strlen(s);

	while (s < end) {
		const char *comma = memchr(s, ',', (size_t)(end - s));
		const char *item_end = comma ? comma : end;
		const char *eq = memchr(s, '=', (size_t)(item_end - s));
		int rc;

		if (!eq) {
			for (const char *p = s; p < item_end; p++)
				if (*p != ' ' && *p != '\t')
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

/* ---- the exporter -------------------------------------------------------------------- */

struct otlp_exporter {
	CURL *curl;
	char url[URL_MAX];
	struct curl_slist *headers;
	int n_headers;
	bool json, gzip;
	long timeout_ms;
	char ca_file[1024];
	_Atomic uint64_t deadline_ms;
	bool curl_global; /* holds a curl_global_init reference */
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The signal-specific variable OTEL_EXPORTER_OTLP_TRACES_<what> if set, else the general one;
 * *name says which was used. NULL when neither is set and not empty. */
static const char *otlp_env(const char *what, char *name, size_t cap)
{
	const char *v;

	snprintf(name, cap, "OTEL_EXPORTER_OTLP_TRACES_%s", what);
	if ((v = getenv(name)) && *v)
		return v;
	snprintf(name, cap, "OTEL_EXPORTER_OTLP_%s", what);
	if ((v = getenv(name)) && *v)
		return v;
	return NULL;
}

static int bad_env(const char *name, const char *value, const char *why)
{
	log_error("invalid environment variable", "variable", name, "value", value, "error", why);
	return -EINVAL;
}

static int add_header(void *arg, const char *key, const char *value)
{
	struct otlp_exporter *e = arg;
	char line[KV_ITEM_MAX + 260];
	struct curl_slist *l;

	if (strpbrk(key, "\r\n: \t") || strpbrk(value, "\r\n") || e->n_headers == HEADERS_MAX)
		return -EINVAL;
	snprintf(line, sizeof(line), "%s: %s", key, value);
	if (!(l = curl_slist_append(e->headers, line)))
		return -ENOMEM;
	e->headers = l;
	e->n_headers++;
	return 0;
}

static bool http_url(const char *v)
{
	return strncmp(v, "http://", 7) == 0 || strncmp(v, "https://", 8) == 0;
}

/* Reads the endpoint, protocol, compression, timeout, certificate and headers into e. */
static int exporter_configure(struct otlp_exporter *e)
{
	char name[64];
	const char *v;
	char *end;
	int rc;

	if ((v = getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) && *v) {
		if (!http_url(v) || strlen(v) >= sizeof(e->url))
			return bad_env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", v,
			               "not an http(s) URL");
		snprintf(e->url, sizeof(e->url), "%s", v);
	} else if ((v = getenv("OTEL_EXPORTER_OTLP_ENDPOINT")) && *v) {
		size_t n = strlen(v);
		if (!http_url(v) || n + sizeof("/v1/traces") > sizeof(e->url))
			return bad_env("OTEL_EXPORTER_OTLP_ENDPOINT", v, "not an http(s) URL");
		if (v[n - 1] == '/')
			n--;
		snprintf(e->url, sizeof(e->url), "%.*s/v1/traces", (int)n, v);
	} else {
		snprintf(e->url, sizeof(e->url), "http://localhost:4318/v1/traces");
	}

	if ((v = otlp_env("PROTOCOL", name, sizeof(name)))) {
		if (strcmp(v, "http/json") == 0)
			e->json = true;
		else if (strcmp(v, "http/protobuf") != 0)
			return bad_env(name, v, "supported: http/protobuf, http/json");
	}
	if ((v = otlp_env("COMPRESSION", name, sizeof(name)))) {
		if (strcmp(v, "gzip") == 0)
			e->gzip = true;
		else if (strcmp(v, "none") != 0)
			return bad_env(name, v, "supported: gzip, none");
	}
	e->timeout_ms = 10000;
	if ((v = otlp_env("TIMEOUT", name, sizeof(name)))) {
		errno = 0;
		e->timeout_ms = strtol(v, &end, 10);
		if (errno || *end || e->timeout_ms <= 0 || e->timeout_ms > 3600000)
			return bad_env(name, v, "milliseconds, 1 to 3600000");
	}
	if ((v = otlp_env("CERTIFICATE", name, sizeof(name)))) {
		if (strlen(v) >= sizeof(e->ca_file))
			return bad_env(name, v, "path too long");
		snprintf(e->ca_file, sizeof(e->ca_file), "%s", v);
	}
	if ((rc = add_header(e, "Content-Type",
	                     e->json ? "application/json" : "application/x-protobuf")) < 0 ||
	    (e->gzip && (rc = add_header(e, "Content-Encoding", "gzip")) < 0) ||
	    (rc = add_header(e, "Expect", "")) < 0)
		return rc;
	/* Both header lists apply; for the same name the signal-specific one comes last. */
	if ((v = getenv("OTEL_EXPORTER_OTLP_HEADERS")) && *v &&
	    otlp_kv_list_parse(v, add_header, e) < 0)
		return bad_env("OTEL_EXPORTER_OTLP_HEADERS", "(hidden)", "not a k=v,k=v list");
	if ((v = getenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS")) && *v &&
	    otlp_kv_list_parse(v, add_header, e) < 0)
		return bad_env("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "(hidden)",
		               "not a k=v,k=v list");
	return 0;
}

int otlp_exporter_create(struct otlp_exporter **out)
{
	struct otlp_exporter *e = calloc(1, sizeof(*e));
	int rc = -ENOMEM;

	*out = NULL;
	if (!e)
		return -ENOMEM;
	if ((rc = exporter_configure(e)) < 0)
		goto fail;
	rc = -ENOMEM;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		goto fail;
	e->curl_global = true;
	if (!(e->curl = curl_easy_init()))
		goto fail;
	*out = e;
	return 0;
fail:
	otlp_exporter_free(e);
	return rc;
}

const char *otlp_exporter_url(const struct otlp_exporter *e)
{
	return e->url;
}

int otlp_exporter_encode(struct otlp_exporter *e, const struct otlp_resource *r,
                         struct otlp_span *const *spans, size_t n, struct otlp_buf *body)
{
	int rc =
	    e->json ? otlp_encode_json(r, spans, n, body) : otlp_encode_protobuf(r, spans, n, body);

	if (rc == 0 && e->gzip)
		rc = otlp_gzip(body);
	return rc;
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

static int past_deadline(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct otlp_exporter *e = arg;
	uint64_t deadline = atomic_load(&e->deadline_ms);

	(void)dt, (void)dn, (void)ut, (void)un;
	return deadline && mono_ms() >= deadline;
}

int otlp_exporter_post(struct otlp_exporter *e, const struct otlp_buf *body, long timeout_ms,
                       long *retry_after_ms)
{
	CURL *c = e->curl;
	curl_off_t retry_after = -1;
	long status = 0;
	CURLcode res;

	*retry_after_ms = -1;
	if (past_deadline(e, 0, 0, 0, 0))
		return -ECANCELED;
	curl_easy_setopt(c, CURLOPT_URL, e->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->data);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, e->headers);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "OTel-OTLP-Exporter-C/bakery");
	/* OTEL_EXPORTER_OTLP_TIMEOUT bounds each request; the caller's budget may cut it. */
	if (timeout_ms <= 0 || timeout_ms > e->timeout_ms)
		timeout_ms = timeout_ms <= 0 ? 1L : e->timeout_ms;
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, past_deadline);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, e);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	if (e->ca_file[0])
		curl_easy_setopt(c, CURLOPT_CAINFO, e->ca_file);
	res = curl_easy_perform(c);
	if (res == CURLE_ABORTED_BY_CALLBACK)
		return -ECANCELED;
	if (res != CURLE_OK) {
		log_debug("span export failed", "error", curl_easy_strerror(res));
		/* A bad URL or certificate will not fix itself; a network error may. */
		return res == CURLE_UNSUPPORTED_PROTOCOL || res == CURLE_URL_MALFORMAT ||
		               res == CURLE_PEER_FAILED_VERIFICATION ||
		               res == CURLE_SSL_CACERT_BADFILE
		           ? -EIO
		           : -EAGAIN;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 200 && status < 300)
		return 0;
	if (status == 429 || status == 502 || status == 503 || status == 504) {
		if (curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK &&
		    retry_after > 0)
			*retry_after_ms = retry_after > 3600 ? 3600000L : (long)retry_after * 1000;
		return -EAGAIN;
	}
	return -EIO;
}

void otlp_exporter_set_deadline(struct otlp_exporter *e, uint64_t deadline_ms)
{
	atomic_store(&e->deadline_ms, deadline_ms);
}

void otlp_exporter_free(struct otlp_exporter *e)
{
	if (!e)
		return;
	curl_easy_cleanup(e->curl);
	curl_slist_free_all(e->headers);
	if (e->curl_global)
		curl_global_cleanup();
	free(e);
}
