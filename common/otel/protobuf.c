/* protobuf.c — OTLP protobuf encoding, written directly into a buffer (no generated code). */
#include "exporter.h"

#include <string.h>

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
	otlp_buf_put(b, tmp, n);
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

/* A fixed64 (wire 1), or a fixed32 (wire 5) unless 0, little-endian. */
static void pb_fixed(struct otlp_buf *b, unsigned field, unsigned wire, uint64_t v)
{
	size_t n = wire == 1 ? 8 : 4;
	uint8_t le[8];

	if (n == 4 && !v)
		return;
	for (size_t i = 0; i < n; i++)
		le[i] = (uint8_t)(v >> (8 * i));
	pb_tag(b, field, wire);
	otlp_buf_put(b, le, n);
}

static void pb_bytes(struct otlp_buf *b, unsigned field, const void *p, size_t n)
{
	pb_tag(b, field, 2);
	pb_varint(b, n);
	otlp_buf_put(b, p, n);
}

static void pb_string(struct otlp_buf *b, unsigned field, const char *s)
{
	if (s && *s)
		pb_bytes(b, field, s, strlen(s));
}

static size_t pb_open(struct otlp_buf *b, unsigned field)
{
	pb_tag(b, field, 2);
	otlp_buf_put(b, "", 1);
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
		if (otlp_buf_reserve(b, k - 1) < 0)
			return;
		memmove(b->data + start + k - 1, b->data + start, n);
		b->len += k - 1;
	}
	p = b->data + start - 1;
	for (size_t i = 0; i < k; i++, n >>= 7)
		p[i] = (uint8_t)((n & 0x7f) | (i + 1 < k ? 0x80 : 0));
}

static void pb_attrs(struct otlp_buf *b, unsigned field, unsigned dropped_field,
                     const struct otlp_attrs *a)
{
	for (const struct trace_attr *x = a->items; x < a->items + a->len; x++) {
		size_t kv = pb_open(b, field), any;
		uint64_t bits;

		pb_string(b, 1, x->key);
		any = pb_open(b, 2); /* AnyValue keeps false, 0 and "" */
		switch (x->type) {
		case TRACE_ATTR_STRING:
			pb_bytes(b, 1, x->v.s, strlen(x->v.s));
			break;
		case TRACE_ATTR_BOOL:
		case TRACE_ATTR_INT:
			pb_tag(b, x->type == TRACE_ATTR_BOOL ? 2 : 3, 0);
			pb_varint(b, x->type == TRACE_ATTR_BOOL ? x->v.b : (uint64_t)x->v.i);
			break;
		case TRACE_ATTR_DOUBLE:
			memcpy(&bits, &x->v.d, 8);
			pb_fixed(b, 4, 1, bits);
			break;
		}
		pb_close(b, any);
		pb_close(b, kv);
	}
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
	pb_fixed(b, 7, 1, s->start_ns);
	pb_fixed(b, 8, 1, s->end_ns);
	pb_attrs(b, 9, 10, &s->attrs);
	for (uint32_t i = 0; i < s->n_events; i++) {
		m = pb_open(b, 11);
		pb_fixed(b, 1, 1, s->events[i].time_ns);
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
		pb_fixed(b, 6, 5, l->flags);
		pb_close(b, m);
	}
	pb_uint(b, 14, s->dropped_links);
	if (s->error) {
		m = pb_open(b, 15);
		pb_string(b, 2, s->status_message);
		pb_uint(b, 3, 2); /* STATUS_CODE_ERROR */
		pb_close(b, m);
	}
	pb_fixed(b, 16, 5, s->flags);
	pb_close(b, span);
}

int otlp_encode_protobuf(const struct otlp_resource *r, struct otlp_span *const *spans, size_t n,
                         struct otlp_buf *out)
{
	size_t rs = pb_open(out, 1), res = pb_open(out, 1), ss,
	       scope; /* resource_spans, resource */

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
