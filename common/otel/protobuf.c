/* protobuf.c — OTLP protobuf encoding, written directly into a buffer (no generated code). */
#include "exporter.h"

#include <assert.h>
#include <string.h>

/* Wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32. Nested messages are written
 * in place: pb_open reserves one length byte, pb_close fills it in (moving the body when the
 * length needs more bytes); attributes, the most numerous, come encoded (span.c). Each write
 * asks the buffer once for room for its largest size (otlp_buf_room). Proto3 defaults (0, "")
 * are left out except inside AnyValue. */

/* Room for a tag, a length and a fixed64 around a field's bytes. */
#define PB_HEAD_MAX 30

static uint8_t *put_tag(uint8_t *p, unsigned field, unsigned wire)
{
	return pb_put_varint(p, (uint64_t)field << 3 | wire);
}

/* v's n (4 or 8) low bytes, little-endian. */
static uint8_t *put_le(uint8_t *p, uint64_t v, size_t n)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	if (n == 8) {
		memcpy(p, &v, 8);
		return p + 8;
	}
	uint32_t w = (uint32_t)v;
	memcpy(p, &w, 4);
	return p + 4;
#else
	for (size_t i = 0; i < n; i++)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
#endif
}

/* A length-delimited field's tag, length and bytes. */
static uint8_t *put_bytes(uint8_t *p, unsigned field, const void *data, size_t n)
{
	p = pb_put_varint(put_tag(p, field, 2), n);
	return otlp_bytes_copy(p, data, n);
}

/* An id (n: 8 or 16 bytes) as field (under 16), moved without a call. */
static inline uint8_t *put_id(uint8_t *p, unsigned field, const uint8_t *id, size_t n)
{
	*p++ = (uint8_t)(field << 3 | 2);
	*p++ = (uint8_t)n;
	memcpy(p, id, n);
	return p + n;
}

static void pb_uint(struct otlp_buf *b, unsigned field, uint64_t v)
{
	uint8_t *p;

	if (v && (p = otlp_buf_room(b, PB_HEAD_MAX)))
		b->len = (size_t)(pb_put_varint(put_tag(p, field, 0), v) - b->data);
}

/* A fixed64 (wire 1), or a fixed32 (wire 5) unless 0, little-endian. */
static void pb_fixed(struct otlp_buf *b, unsigned field, unsigned wire, uint64_t v)
{
	size_t n = wire == 1 ? 8 : 4;
	uint8_t *p;

	if ((n == 4 && !v) || !(p = otlp_buf_room(b, PB_HEAD_MAX)))
		return;
	b->len = (size_t)(put_le(put_tag(p, field, wire), v, n) - b->data);
}

static void pb_bytes(struct otlp_buf *b, unsigned field, const void *data, size_t n)
{
	uint8_t *p = otlp_buf_room(b, PB_HEAD_MAX + n);

	if (p)
		b->len = (size_t)(put_bytes(p, field, data, n) - b->data);
}

static void pb_string(struct otlp_buf *b, unsigned field, const char *s)
{
	if (s && *s)
		pb_bytes(b, field, s, strlen(s));
}

static size_t pb_open(struct otlp_buf *b, unsigned field)
{
	uint8_t *p = otlp_buf_room(b, PB_HEAD_MAX);

	if (!p)
		return 0;
	p = put_tag(p, field, 2);
	*p++ = 0;
	b->len = (size_t)(p - b->data);
	return b->len;
}

static void pb_close(struct otlp_buf *b, size_t start)
{
	size_t n, k;
	uint8_t *p;

	if (b->err)
		return;
	n = b->len - start;
	k = pb_varint_len(n);
	if (k > 1) {
		if (otlp_buf_reserve(b, k - 1) < 0)
			return;
		memmove(b->data + start + k - 1, b->data + start, n);
		b->len += k - 1;
	}
	p = b->data + start - 1;
	pb_put_varint(p, n);
}

/* A Span: two length bytes reserved, as most spans take 128 to 16383 bytes (pb_close2). */
static size_t pb_open2(struct otlp_buf *b, unsigned field)
{
	uint8_t *p = otlp_buf_room(b, PB_HEAD_MAX);

	if (!p)
		return 0;
	p = put_tag(p, field, 2);
	b->len = (size_t)(p - b->data) + 2;
	return b->len;
}

/* Fills in pb_open2's length, moving the body only when it takes other than two bytes. */
static void pb_close2(struct otlp_buf *b, size_t start)
{
	size_t n, k;

	if (b->err)
		return;
	n = b->len - start;
	k = pb_varint_len(n);
	if (k == 1) {
		memmove(b->data + start - 1, b->data + start, n);
		b->len--;
	} else if (k > 2) {
		if (otlp_buf_reserve(b, k - 2) < 0)
			return;
		memmove(b->data + start + k - 2, b->data + start, n);
		b->len += k - 2;
	}
	pb_put_varint(b->data + start - 2, n);
}

/* a's KeyValues, whose fields were encoded when each was set (span.c): only a tag and a length
 * go in front of each, all after one room check. */
/* The most a's KeyValues take with a tag (field < 2^11: 2 bytes) and a length (enc_len < 2^21:
 * 3 bytes) each. */
static size_t attrs_room(const struct otlp_attrs *a)
{
	size_t n = (size_t)a->len * 5;

	for (uint32_t i = 0; i < a->len; i++)
		n += a->items[i].enc_len;
	return n;
}

static void pb_attrs(struct otlp_buf *b, unsigned field, unsigned dropped_field,
                     const struct otlp_attrs *a)
{
	uint8_t *p;

	if (a->packed) { /* a span's (only otlp_span_init packs): its fields as sent, one copy */
		size_t n = (size_t)(a->fast.next - a->packed);
		assert((field << 3 | 2) == OTLP_ATTR_TAG);
		if ((p = otlp_buf_room(b, n))) {
			memcpy(p, a->packed, n);
			b->len += n;
		}
	} else if (a->len && (p = otlp_buf_room(b, attrs_room(a)))) {
		for (uint32_t i = 0; i < a->len; i++) {
			size_t n = a->items[i].enc_len;
			if (field < 16 && n < 128) { /* the usual: tag and length one byte each */
				*p++ = (uint8_t)(field << 3 | 2);
				*p++ = (uint8_t)n;
			} else {
				p = pb_put_varint(put_tag(p, field, 2), n);
			}
			p = otlp_bytes_copy(p, a->items[i].enc, n);
		}
		b->len = (size_t)(p - b->data);
	}
	pb_uint(b, dropped_field, a->dropped);
}

/* ScopeSpans' field 2: a Span. */
int otlp_encode_protobuf_span(const struct otlp_span *s, struct otlp_buf *b)
{
	size_t span = pb_open2(b, 2), m;
	size_t tsn = s->trace_state ? strlen(s->trace_state) : 0,
	       nn = s->name ? strlen(s->name) : 0;
	uint8_t *p = otlp_buf_room(b, 8 * PB_HEAD_MAX + 32 + tsn + nn);

	if (p) { /* the fixed head in one go: ids, state, parent, name, kind, times */
		p = put_id(p, 1, s->trace_id, 16);
		p = put_id(p, 2, s->span_id, 8);
		if (tsn)
			p = put_bytes(p, 3, s->trace_state, tsn);
		if (s->has_parent)
			p = put_id(p, 4, s->parent_span_id, 8);
		if (nn)
			p = put_bytes(p, 5, s->name, nn);
		if (s->kind)
			p = pb_put_varint(put_tag(p, 6, 0), (uint64_t)s->kind);
		p = put_le(put_tag(p, 7, 1), s->start_ns, 8);
		p = put_le(put_tag(p, 8, 1), s->end_ns, 8);
		b->len = (size_t)(p - b->data);
	}
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
	if (s->flags && (p = otlp_buf_room(b, 6))) { /* flags: field 16, fixed32 */
		b->len = (size_t)(put_le(put_tag(p, 16, 5), s->flags, 4) - b->data);
	}
	pb_close2(b, span);
	return b->err;
}

int otlp_encode_protobuf_head(const struct otlp_resource *r, size_t spans_len, struct otlp_buf *out)
{
	struct otlp_buf res = {0}, scope = {0};
	size_t ss, rs;
	uint8_t *p;

	pb_attrs(&res, 1, 2, &r->attrs);
	pb_string(&scope, 1, r->scope_name);
	pb_string(&scope, 2, r->scope_version);
	if (res.err || scope.err) {
		out->err = res.err ? res.err : scope.err;
		goto done;
	}
	/* ResourceSpans{resource = 1, scope_spans = 2{scope = 1, spans = 2...}}: every length is
	 * known, so the spans that follow need not move. */
	ss = 1 + pb_varint_len(scope.len) + scope.len + spans_len;
	rs = 1 + pb_varint_len(res.len) + res.len + 1 + pb_varint_len(ss) + ss;
	if (!(p = otlp_buf_room(out, 4 * PB_HEAD_MAX + res.len + scope.len)))
		goto done;
	p = pb_put_varint(put_tag(p, 1, 2), rs);
	p = put_bytes(p, 1, res.data, res.len);
	p = pb_put_varint(put_tag(p, 2, 2), ss);
	p = put_bytes(p, 1, scope.data, scope.len);
	out->len = (size_t)(p - out->data);
done:
	otlp_buf_free(&res);
	otlp_buf_free(&scope);
	return out->err;
}

int otlp_encode_protobuf_request(const struct otlp_resource *r, const struct otlp_buf *spans,
                                 struct otlp_buf *out)
{
	if (otlp_encode_protobuf_head(r, spans->len, out) == 0)
		otlp_buf_put(out, spans->data, spans->len);
	return out->err;
}
