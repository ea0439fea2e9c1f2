/* span.c — the span record: bounded UTF-8 strings, attribute lists, events and links. */
#include "span.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0 when it is invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t k = c < 0x80 ? 1 : c < 0xc2 ? 0 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf5 ? 4 : 0;
	unsigned char lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80; /* no overlong forms, */
	unsigned char hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf; /* surrogates, > U+10FFFF */

	if (k < 2)
		return k;
	if (n < k || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < k; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return k;
}

/* The room otlp_copy needs for s (n bytes long), its NUL included. */
static size_t copy_size(size_t n)
{
	return (n < OTLP_STRING_MAX ? n : OTLP_STRING_MAX) + 1;
}

/* Copies s (n bytes) into out (copy_size(n) bytes) as otlp_strdup does; returns the byte
 * after it. ASCII runs are copied whole. */
static char *copy_utf8(char *out, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, o = 0;

	while (i < n) {
		size_t run = i, k, step;
		for (uint64_t w; run + 8 <= n; run += 8) { /* 8 bytes at a time while ASCII */
			memcpy(&w, u + run, 8);
			if (w & 0x8080808080808080u)
				break;
		}
		while (run < n && u[run] < 0x80)
			run++;
		if (run - i > OTLP_STRING_MAX - o)
			run = i + (OTLP_STRING_MAX - o);
		memcpy(out + o, s + i, run - i);
		o += run - i;
		i = run;
		if (i == n || o == OTLP_STRING_MAX)
			break;
		k = utf8_len(u + i, n - i);
		step = k ? k : 1;
		if (o + step > OTLP_STRING_MAX)
			break;
		memcpy(out + o, k ? s + i : "?", step); /* an invalid byte becomes '?' */
		o += step;
		i += step;
	}
	out[o] = '\0';
	return out + o + 1;
}

/* copy_utf8 in one pass for the usual string, ASCII and uncut: each word (8 bytes, the last
 * overlapping; 4 for 4 to 7 bytes) moved once its high bits are checked. Anything else, and
 * any string once a high bit shows, goes to copy_utf8 from the start. */
static inline char *otlp_copy(char *out, const char *s, size_t n)
{
	uint64_t w;

	if (n >= 8 && n <= OTLP_STRING_MAX) {
		for (size_t i = 0; i + 8 < n; i += 8) {
			memcpy(&w, s + i, 8);
			if (w & 0x8080808080808080u)
				return copy_utf8(out, s, n);
			memcpy(out + i, &w, 8);
		}
		memcpy(&w, s + n - 8, 8);
		if (w & 0x8080808080808080u)
			return copy_utf8(out, s, n);
		memcpy(out + n - 8, &w, 8);
	} else if (n >= 4 && n < 8) {
		uint32_t x, y;
		memcpy(&x, s, 4);
		memcpy(&y, s + n - 4, 4);
		if ((x | y) & 0x80808080u)
			return copy_utf8(out, s, n);
		memcpy(out, &x, 4);
		memcpy(out + n - 4, &y, 4);
	} else if (n < 4) {
		for (size_t i = 0; i < n; i++) {
			if ((unsigned char)s[i] >= 0x80)
				return copy_utf8(out, s, n);
			out[i] = s[i];
		}
	} else {
		return copy_utf8(out, s, n);
	}
	out[n] = '\0';
	return out + n + 1;
}

char *otlp_strdup(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(copy_size(n));

	if (out)
		otlp_copy(out, s, n);
	return out;
}

static bool pool_owns(const struct otlp_pool *pool, const void *p)
{
	return pool && pool->base && (uintptr_t)p >= (uintptr_t)pool->base &&
	       (uintptr_t)p < (uintptr_t)pool->end;
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

/* Gives back an attribute's block (starting two bytes before its encoding), counting one less
 * on the heap. */
static void attr_free(struct otlp_attrs *a, const struct otlp_attr *x)
{
	if (!pool_owns(a->pool, x->enc)) {
		a->heap--;
		free((void *)(x->enc - 2));
	}
}

/* A copy of 128 bytes or more keeps at least 128 (otlp_copy stops at most 3 bytes short of
 * OTLP_STRING_MAX) and fewer than 2^14, so its length, and that of an AnyValue around it, is a
 * two-byte varint whatever the cut. */
_Static_assert(OTLP_STRING_MAX >= 131 && OTLP_STRING_MAX + 3 < 1 << 14, "two-byte lengths");

/* Writes at p a length-delimited field (tag, one byte) holding s (n bytes) copied as otlp_copy
 * does; p needs 3 + copy_size(n) bytes. Sets *len to the copy's length and returns the byte
 * after it, where a NUL stands. */
static inline uint8_t *put_copy(uint8_t *p, uint8_t tag, const char *s, size_t n, uint32_t *len)
{
	uint8_t *end;

	*p = tag;
	if (n < 128) { /* uncut, so its length is n, one byte */
		p[1] = (uint8_t)n;
		*len = (uint32_t)n;
		return (uint8_t *)otlp_copy((char *)p + 2, s, n) - 1;
	}
	end = (uint8_t *)otlp_copy((char *)p + 3, s, n) - 1;
	*len = (uint32_t)(end - (p + 3));
	pb_put_varint(p + 1, *len);
	return end;
}

/* The item in general list a whose (copied) key is key, key_len bytes; NULL when none. */
static struct otlp_attr *attrs_find(struct otlp_attrs *a, const char *key, uint32_t key_len)
{
	for (uint32_t i = 0; i < a->len; i++)
		if (a->items[i].key_len == key_len && memcmp(a->items[i].key, key, key_len) == 0)
			return &a->items[i];
	return NULL;
}

/* Whether packed list a holds key (key_len bytes): its fields are walked, lengths compared
 * first (an empty key is left out of its KeyValue). */
static bool packed_has(const struct otlp_attrs *a, const char *key, uint32_t key_len)
{
	for (const uint8_t *p = a->packed; p < a->fast.next; p += 2 + p[1]) {
		uint32_t n = p[2] == (1 << 3 | 2) ? p[3] : 0;
		if (n == key_len && memcmp(p + 4, key, n) == 0)
			return true;
	}
	return false;
}

/* The attribute whose KeyValue's fields are enc (n bytes, every length in them one byte, as in
 * a packed list) into x. */
static void decode(const uint8_t *enc, uint32_t n, struct otlp_attr *x)
{
	const uint8_t *p = enc;

	*x = (struct otlp_attr){.enc = enc, .enc_len = n, .key = (const char *)enc};
	if (p[0] == (1 << 3 | 2)) { /* KeyValue.key, left out when empty */
		x->key = (const char *)p + 2;
		x->key_len = p[1];
		p += 2 + p[1];
	}
	p += 2; /* KeyValue.value's tag and length: the AnyValue follows */
	switch (p[0]) {
	case 1 << 3 | 2:
		x->type = TRACE_ATTR_STRING;
		x->len = p[1];
		x->v.s = (const char *)p + 2;
		break;
	case 2 << 3 | 0:
		x->type = TRACE_ATTR_BOOL;
		x->v.b = p[1] != 0;
		break;
	case 3 << 3 | 0: {
		uint64_t v = 0;
		for (int i = 0; i < 10; i++) {
			v |= (uint64_t)(p[1 + i] & 0x7f) << (7 * i);
			if (!(p[1 + i] & 0x80))
				break;
		}
		x->type = TRACE_ATTR_INT;
		x->v.i = (int64_t)v;
		break;
	}
	default: { /* 4 << 3 | 1: AnyValue.double_value, little-endian */
		uint64_t bits = 0;
		for (int i = 0; i < 8; i++)
			bits |= (uint64_t)p[1 + i] << (8 * i);
		x->type = TRACE_ATTR_DOUBLE;
		memcpy(&x->v.d, &bits, 8);
		break;
	}
	}
}

bool otlp_attrs_next(const struct otlp_attrs *a, size_t *it, struct otlp_attr *out)
{
	const uint8_t *p;

	if (!a->packed) {
		if (*it >= a->len)
			return false;
		*out = a->items[(*it)++];
		return true;
	}
	p = a->packed + *it;
	if (p >= a->fast.next)
		return false;
	decode(p + 2, p[1], out);
	*it += 2 + (size_t)p[1];
	return true;
}

uint32_t otlp_attrs_count(const struct otlp_attrs *a)
{
	uint32_t n = 0;

	if (!a->packed)
		return a->len;
	for (const uint8_t *p = a->packed; p < a->fast.next; p += 2 + p[1])
		n++;
	return n;
}

/* Turns packed list a general: its items point into the record, where the packed bytes stay;
 * what follows them is the pool's. Returns 0 or -ENOMEM (a unchanged). */
static int unpack(struct otlp_attrs *a)
{
	uint32_t n = otlp_attrs_count(a), cap = 4;
	struct otlp_attr *items = NULL;
	size_t it = 0;

	while (cap < n) /* grow()'s capacity for n entries */
		cap *= 2;
	if (n && !(items = malloc(cap * sizeof(*items))))
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		otlp_attrs_next(a, &it, &items[i]);
	a->items = items;
	a->len = n;
	a->pool->next = (char *)a->fast.next;
	a->fast.max = a->fast.next; /* no room: trace.c's setters leave it to otlp_attrs_set */
	a->packed = NULL;
	return 0;
}

/* otlp_attrs_set with strlen(attr->key) (kn) and, for a string, strlen(attr->v.s) (vn) known. */
static int attrs_put(struct otlp_attrs *a, const struct trace_attr *attr, size_t kn, size_t vn)
{
	const char *key = attr->key, *v = "";
	bool str = attr->type == TRACE_ATTR_STRING, pooled, packed;
	unsigned bit;
	size_t need;
	uint32_t key_len = 0, len = 0, enc_len;
	struct otlp_attr *x;
	uint8_t *blk, *p, *any;
	int rc;

	if (str && attr->v.s)
		v = attr->v.s;
	else
		vn = 0;
	/* One block: OTLP_ATTR_TAG and a length (2), KeyValue.key (3 + copy_size(kn) bytes at
	 * most), KeyValue.value's tag and length (3), then the AnyValue: a string's
	 * (3 + copy_size(vn)) or a scalar's (11). Written where a packed list's next field goes,
	 * else taken from the pool (its unused end given back below), else allocated. */
	need = copy_size(kn) + 8 + (str ? 3 + copy_size(vn) : 11);
again:
	packed = a->packed && (size_t)(a->fast.max - a->fast.next) >= need;
	if (a->packed && !packed && (rc = unpack(a)) < 0)
		return rc;
	pooled = !packed && a->pool && (size_t)(a->pool->end - a->pool->next) >= need;
	if (!(blk = packed ? a->fast.next : pooled ? (uint8_t *)a->pool->next : malloc(need)))
		return -ENOMEM;
	p = blk + 2;
	if (kn) /* an empty key is left out, as proto3 leaves out "" */
		p = put_copy(p, 1 << 3 | 2, key, kn, &key_len);
	key = (const char *)p - key_len;
	*p++ = 2 << 3 | 2; /* KeyValue.value; AnyValue keeps false, 0 and "" */
	switch (attr->type) {
	case TRACE_ATTR_STRING:
		if (vn < 126) { /* the usual: uncut, every length one byte */
			*p++ = (uint8_t)(2 + vn);
			p = put_copy(p, 1 << 3 | 2, v, vn, &len);
		} else {
			any = p;
			p = put_copy(any + 2, 1 << 3 | 2, v, vn, &len);
			pb_put_varint(any, (uint64_t)(p - (any + 2))); /* two bytes, as asserted */
		}
		v = (const char *)p - len;
		break;
	case TRACE_ATTR_BOOL:
		*p++ = 2;
		*p++ = 2 << 3 | 0; /* AnyValue.bool_value */
		*p++ = attr->v.b;
		break;
	case TRACE_ATTR_INT:
		*p++ = (uint8_t)(1 + pb_varint_len((uint64_t)attr->v.i));
		*p++ = 3 << 3 | 0; /* AnyValue.int_value */
		p = pb_put_varint(p, (uint64_t)attr->v.i);
		break;
	case TRACE_ATTR_DOUBLE: {
		uint64_t bits;
		memcpy(&bits, &attr->v.d, 8);
		*p++ = 9;
		*p++ = 4 << 3 | 1; /* AnyValue.double_value, little-endian */
		for (int i = 0; i < 8; i++)
			*p++ = (uint8_t)(bits >> (8 * i));
		break;
	}
	}
	enc_len = (uint32_t)(p - (blk + 2));
	bit = otlp_key_bit(key, key_len); /* of the key as kept */
	blk[0] = OTLP_ATTR_TAG;
	blk[1] = (uint8_t)enc_len; /* when under 128: else the list is not packed */

	if (packed) { /* a new key with a short encoding stays packed; else the list turns general
		       */
		if (enc_len < 128 &&
		    !((a->fast.key_bits >> bit & 1) && packed_has(a, key, key_len))) {
			a->fast.next = p;
			a->fast.key_bits |= 1ull << bit;
			return 0;
		}
		if ((rc = unpack(a)) < 0)
			return rc;
		goto again; /* written again, general */
	}
	if ((a->fast.key_bits >> bit & 1) && (x = attrs_find(a, key, key_len))) {
		attr_free(a, x); /* replaced */
	} else {
		if ((rc = grow((void **)&a->items, a->len, sizeof(*x), OTLP_ATTRS_MAX)) < 0) {
			a->dropped += rc == -ENOSPC;
			if (!pooled)
				free(blk);
			return rc;
		}
		x = &a->items[a->len++];
		a->fast.key_bits |= 1ull << bit;
	}
	if (pooled)
		a->pool->next = (char *)p; /* the block's unused end (and the value's NUL) back */
	else
		a->heap++;
	*x = (struct otlp_attr){.enc = blk + 2,
	                        .key = key,
	                        .enc_len = enc_len,
	                        .key_len = key_len,
	                        .len = len,
	                        .type = attr->type};
	_Static_assert(sizeof(x->v) == sizeof(attr->v), "the same value union");
	memcpy(&x->v, &attr->v, sizeof(x->v));
	if (str)
		x->v.s = v;
	return 0;
}

int otlp_attrs_set(struct otlp_attrs *a, const struct trace_attr *attr)
{
	if (!attr->key || (unsigned)attr->type > TRACE_ATTR_BOOL)
		return -EINVAL;
	return attrs_put(a, attr, strlen(attr->key),
	                 attr->type == TRACE_ATTR_STRING && attr->v.s ? strlen(attr->v.s) : 0);
}

int otlp_attrs_set_str(struct otlp_attrs *a, const char *key, size_t kn, const char *value,
                       size_t vn)
{
	return attrs_put(a, &TRACE_STR(key, value), kn, vn);
}

int otlp_attrs_set_int(struct otlp_attrs *a, const char *key, size_t kn, int64_t value)
{
	return attrs_put(a, &TRACE_INT(key, value), kn, 0);
}

void otlp_attrs_free(struct otlp_attrs *a)
{
	if (!a->packed) {
		for (uint32_t i = 0; a->heap > 0 && i < a->len; i++) /* none: all in the pool */
			attr_free(a, &a->items[i]);
		free(a->items);
	}
	memset(a, 0, sizeof(*a));
}

void otlp_span_init(struct otlp_span *s)
{
	memset(s, 0, offsetof(struct otlp_span, pool));
	s->pool = (struct otlp_pool){(char *)s->packed_bytes, (char *)s->packed_bytes,
	                             (char *)s->packed_bytes + sizeof(s->packed_bytes)};
	s->attrs.fast.next = s->attrs.packed = s->packed_bytes;
	s->attrs.fast.max = s->packed_bytes + sizeof(s->packed_bytes);
	s->attrs.pool = &s->pool;
}

int otlp_span_set_name(struct otlp_span *s, const char *name)
{
	size_t n = strlen(name);
	char *p = n < sizeof(s->name_bytes) ? s->name_bytes : malloc(copy_size(n));

	if (!p)
		return -ENOMEM;
	if (s->name && s->name != s->name_bytes)
		free(s->name);
	otlp_copy(p, name, n);
	s->name = p;
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
	*e = (struct otlp_event){.time_ns = time_ns, .name = otlp_strdup(name ? name : "")};
	if (!e->name)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		otlp_attrs_set(&e->attrs, &attrs[i]);
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
	*l = (struct otlp_link){.flags = ctx->flags | OTLP_FLAG_HAS_IS_REMOTE |
	                                 (ctx->remote ? OTLP_FLAG_IS_REMOTE : 0)};
	memcpy(l->trace_id, ctx->trace_id, 16);
	memcpy(l->span_id, ctx->span_id, 8);
	if (ctx->tracestate[0] && !(l->trace_state = otlp_strdup(ctx->tracestate)))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		otlp_attrs_set(&l->attrs, &attrs[i]);
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
	if (s->events || s->links || s->trace_state || s->status_message) { /* seldom */
		free(s->events);
		free(s->links);
		free(s->trace_state);
		free(s->status_message);
	}
	if (s->name != s->name_bytes)
		free(s->name);
	otlp_attrs_free(&s->attrs);
}
