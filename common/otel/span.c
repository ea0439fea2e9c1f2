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

/* n bytes from pool when it has them (NULL is fine), else from malloc; NULL when out of
 * memory. Give back with pool_free. */
static char *pool_alloc(struct otlp_pool *pool, size_t n)
{
	char *p;

	if (pool && pool->base && (size_t)(pool->end - pool->next) >= n) {
		p = pool->next;
		pool->next += n;
		return p;
	}
	return malloc(n);
}

static bool pool_owns(const struct otlp_pool *pool, const void *p)
{
	return pool && pool->base && (uintptr_t)p >= (uintptr_t)pool->base &&
	       (uintptr_t)p < (uintptr_t)pool->end;
}

static void pool_free(const struct otlp_pool *pool, void *p)
{
	if (!pool_owns(pool, p))
		free(p);
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

/* Makes room for one more attribute in a: in its inline storage while there is some, then on
 * the heap at twice that, where grow's powers of two carry on. Returns 0, -ENOSPC at
 * OTLP_ATTRS_MAX or -ENOMEM. */
static int attrs_grow(struct otlp_attrs *a)
{
	struct otlp_attr *p;

	_Static_assert(OTLP_INLINE_ATTRS >= 4 && OTLP_INLINE_ATTRS < OTLP_ATTRS_MAX &&
	                   (OTLP_INLINE_ATTRS & (OTLP_INLINE_ATTRS - 1)) == 0,
	               "grow's capacities continue the inline one");
	if (!a->items_inline)
		return grow((void **)&a->items, a->len, sizeof(*p), OTLP_ATTRS_MAX);
	if (a->len < OTLP_INLINE_ATTRS)
		return 0;
	if (!(p = malloc(2 * OTLP_INLINE_ATTRS * sizeof(*p))))
		return -ENOMEM;
	memcpy(p, a->items, a->len * sizeof(*p));
	a->items = p;
	a->items_inline = false;
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

/* The item in a whose (copied) key is key, key_len bytes; NULL when none. */
static struct otlp_attr *attrs_find(struct otlp_attrs *a, const char *key, uint32_t key_len)
{
	for (uint32_t i = 0; i < a->len; i++)
		if (a->items[i].key_len == key_len && memcmp(a->items[i].key, key, key_len) == 0)
			return &a->items[i];
	return NULL;
}

int otlp_attrs_set(struct otlp_attrs *a, const struct trace_attr *attr)
{
	const char *key = attr->key, *v = "";
	bool str = attr->type == TRACE_ATTR_STRING, pooled;
	size_t kn, vn = 0, need;
	uint32_t key_len = 0, len = 0, enc_len;
	struct otlp_attr *x;
	uint8_t *blk, *p, *any;
	int rc;

	if (!key || (unsigned)attr->type > TRACE_ATTR_BOOL)
		return -EINVAL;
	kn = strlen(key);
	if (str && attr->v.s)
		vn = strlen(v = attr->v.s);
	/* One block: OTLP_ATTR_TAG and a length (2), KeyValue.key (3 + copy_size(kn) bytes at
	 * most), KeyValue.value's tag and length (3), then the AnyValue: a string's
	 * (3 + copy_size(vn)) or a scalar's (11). Taken from the pool (its unused end given back
	 * below), else allocated. */
	need = copy_size(kn) + 8 + (str ? 3 + copy_size(vn) : 11);
	pooled = a->pool && (size_t)(a->pool->end - a->pool->next) >= need;
	if (!(blk = pooled ? (uint8_t *)a->pool->next : malloc(need)))
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
	blk[0] = OTLP_ATTR_TAG;
	blk[1] = (uint8_t)enc_len; /* when under 128: else the list is not packed */

	if ((a->key_lens >> (key_len % 64) & 1) && (x = attrs_find(a, key, key_len))) {
		attr_free(a, x); /* replaced */
		a->packed_end = NULL;
	} else {
		if ((rc = attrs_grow(a)) < 0) {
			a->dropped += rc == -ENOSPC;
			if (!pooled)
				free(blk);
			return rc;
		}
		x = &a->items[a->len++];
		a->key_lens |= 1ull << (key_len % 64);
		a->packed_end =
		    pooled && enc_len < 128 && (a->len == 1 || a->packed_end == blk) ? p : NULL;
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

/* Copies s (n bytes) to out as it is, a word at a time where it can, without looking at it;
 * returns the bytes moved ORed together: s was ASCII when no high bit is set in it. */
static inline uint64_t copy_raw(char *out, const char *s, size_t n)
{
	uint64_t w, seen = 0;
	uint32_t x, y;

	if (n >= 8) {
		for (size_t i = 0; i + 8 < n; i += 8) {
			memcpy(&w, s + i, 8);
			memcpy(out + i, &w, 8);
			seen |= w;
		}
		memcpy(&w, s + n - 8, 8); /* the last word, overlapping */
		memcpy(out + n - 8, &w, 8);
		return seen | w;
	}
	if (n >= 4) {
		memcpy(&x, s, 4);
		memcpy(&y, s + n - 4, 4);
		memcpy(out, &x, 4);
		memcpy(out + n - 4, &y, 4);
		return x | y;
	}
	for (size_t i = 0; i < n; i++)
		seen |= (unsigned char)(out[i] = s[i]);
	return seen;
}

/* Starts the usual attribute in a's record, as otlp_attrs_set would write it: a key of 1 to 60
 * bytes, then KeyValue.value's tag and length (any_len, under 64), with room in the pool and an
 * inline item. Writes the key as it is (ORing its bytes into *seen) past a's packed bytes,
 * which fast_end takes; returns where the AnyValue goes, or NULL (nothing changed) for
 * otlp_attrs_set's way. */
static inline uint8_t *fast_start(struct otlp_attrs *a, const char *key, size_t kn, size_t any_len,
                                  uint64_t *seen)
{
	struct otlp_pool *pool = a->pool;
	size_t enc_len = kn + any_len + 4;
	uint8_t *p;

	if (kn - 1 >= 60 || any_len >= 64 || !a->items_inline || a->len >= OTLP_INLINE_ATTRS ||
	    (size_t)(pool->end - pool->next) < enc_len + 2)
		return NULL;
	p = (uint8_t *)pool->next;
	p[0] = OTLP_ATTR_TAG;
	p[1] = (uint8_t)enc_len;
	p[2] = 1 << 3 | 2; /* KeyValue.key */
	p[3] = (uint8_t)kn;
	*seen = copy_raw((char *)p + 4, key, kn);
	p[4 + kn] = 2 << 3 | 2; /* KeyValue.value */
	p[5 + kn] = (uint8_t)any_len;
	return p + 6 + kn;
}

/* Keeps fast_start's attribute, whose AnyValue ends at end, when what it copied was ASCII
 * (seen) and its key is new: returns its item, filled in but for type, len and v. NULL,
 * nothing changed, for otlp_attrs_set's way (which repairs, or replaces). */
static inline struct otlp_attr *fast_end(struct otlp_attrs *a, size_t kn, uint8_t *end,
                                         uint64_t seen)
{
	uint8_t *p = (uint8_t *)a->pool->next;
	struct otlp_attr *x = &a->items[a->len];

	if ((seen & 0x8080808080808080u) ||
	    ((a->key_lens >> kn & 1) && attrs_find(a, (const char *)p + 4, (uint32_t)kn)))
		return NULL;
	*x = (struct otlp_attr){.enc = p + 2,
	                        .key = (const char *)p + 4,
	                        .enc_len = (uint32_t)(end - (p + 2)),
	                        .key_len = (uint32_t)kn};
	a->packed_end = a->len++ == 0 || a->packed_end == p ? end : NULL;
	a->key_lens |= 1ull << kn;
	a->pool->next = (char *)end;
	return x;
}

int otlp_attrs_set_str(struct otlp_attrs *a, const char *key, size_t kn, const char *value,
                       size_t vn)
{
	uint64_t seen;
	uint8_t *p = fast_start(a, key, kn, vn + 2, &seen);
	struct otlp_attr *x;

	if (p) {
		p[0] = 1 << 3 | 2; /* AnyValue.string_value */
		p[1] = (uint8_t)vn;
		seen |= copy_raw((char *)p + 2, value, vn);
		if ((x = fast_end(a, kn, p + 2 + vn, seen))) {
			x->type = TRACE_ATTR_STRING;
			x->len = (uint32_t)vn;
			x->v.s = (const char *)p + 2;
			return 0;
		}
	}
	return otlp_attrs_set(a, &TRACE_STR(key, value));
}

int otlp_attrs_set_int(struct otlp_attrs *a, const char *key, size_t kn, int64_t value)
{
	uint64_t seen;
	uint8_t *p = fast_start(a, key, kn, 1 + pb_varint_len((uint64_t)value), &seen);
	struct otlp_attr *x;

	if (p) {
		p[0] = 3 << 3 | 0; /* AnyValue.int_value */
		if ((x = fast_end(a, kn, pb_put_varint(p + 1, (uint64_t)value), seen))) {
			x->type = TRACE_ATTR_INT;
			x->v.i = value;
			return 0;
		}
	}
	return otlp_attrs_set(a, &TRACE_INT(key, value));
}

void otlp_attrs_free(struct otlp_attrs *a)
{
	for (uint32_t i = 0; a->heap > 0 && i < a->len; i++) /* none: all in the pool */
		attr_free(a, &a->items[i]);
	if (!a->items_inline)
		free(a->items);
	memset(a, 0, sizeof(*a));
}

void otlp_span_init(struct otlp_span *s)
{
	memset(s, 0, offsetof(struct otlp_span, inline_attrs));
	s->pool = (struct otlp_pool){s->inline_bytes, s->inline_bytes,
	                             s->inline_bytes + sizeof(s->inline_bytes)};
	s->attrs =
	    (struct otlp_attrs){.items = s->inline_attrs, .items_inline = true, .pool = &s->pool};
}

int otlp_span_set_name(struct otlp_span *s, const char *name)
{
	size_t n = strlen(name);
	char *p = pool_alloc(&s->pool, copy_size(n));

	if (!p)
		return -ENOMEM;
	if (s->name)
		pool_free(&s->pool, s->name);
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
	pool_free(&s->pool, s->name);
	otlp_attrs_free(&s->attrs);
}
