/* span.h — the span record (internal): attributes, events and links, as they are exported. */
#ifndef BAKERY_OTEL_SPAN_H
#define BAKERY_OTEL_SPAN_H

#include <stdint.h>
#include <string.h>

#include "trace.h"

#define OTLP_ATTRS_MAX  128  /* per span, event, link and resource */
#define OTLP_EVENTS_MAX 128  /* per span */
#define OTLP_LINKS_MAX  128  /* per span */
#define OTLP_STRING_MAX 4096 /* bytes kept of any name or string value */

/* Span flags above the W3C trace flags: whether the parent (or link) is remote. */
#define OTLP_FLAG_HAS_IS_REMOTE 0x100
#define OTLP_FLAG_IS_REMOTE     0x200

/* Room inside a span record for its name and attribute strings, used first; what does not fit
 * is allocated on its own. base == NULL: none (every string allocated). */
struct otlp_pool {
	char *base, *next, *end;
};

/* The tag of Span.attributes (field 9, length-delimited): each attribute's encoding is preceded
 * by it and the encoding's length (one byte, when it is under 128), so that a span's attributes
 * set back to back are its Span.attributes fields as they are sent. */
#define OTLP_ATTR_TAG (9 << 3 | 2)

/* An attribute as the SDK holds it: encoded once, when set, as the body of an OTLP KeyValue
 * (enc, enc_len bytes; OTLP_ATTR_TAG and the length in the two bytes before), which key and a
 * string value point into (neither NUL-terminated); their lengths known. */
struct otlp_attr {
	const uint8_t *enc; /* the KeyValue's fields: key (left out when empty), then value */
	const char *key;
	uint32_t enc_len;
	uint32_t key_len, len;     /* len: of v.s, for a string */
	enum trace_attr_type type; /* no padding: 40 bytes, copied as each is set */
	union {
		const char *s;
		int64_t i;
		double d;
		bool b;
	} v;
};

/* Where a packed list's next attribute goes (struct otlp_attrs): trace.c's setters write the
 * usual one at next themselves when it fits before max. */
struct otlp_attrs_fast {
	uint8_t *next, *max; /* equal (no room) when not recording or no longer packed */
	uint64_t key_bits;   /* bit otlp_key_bit(key) set for each key held */
};

/* The bit of struct otlp_attrs_fast's key_bits for key (n bytes): a multiplicative hash of its
 * length and its last 8 bytes (fewer when shorter). A clear bit: the key is new, no search
 * needed. */
static inline unsigned otlp_key_bit(const char *key, size_t n)
{
	uint64_t w = 0;
	uint32_t x;

	if (n >= 8) {
		memcpy(&w, key + n - 8, 8);
	} else if (n >= 4) {
		memcpy(&x, key + n - 4, 4);
		w = x;
	} else if (n > 0) {
		w = (uint8_t)key[0] | (uint64_t)(uint8_t)key[n - 1] << 8;
	}
	return (unsigned)(((w ^ n) * 0xc2b2ae3d27d4eb4fu) >> 58);
}

/* An owned attribute list, one of two ways. Packed (packed not NULL; a span record's, as
 * otlp_span_init makes it): the attributes are only their Span.attributes fields, each
 * OTLP_ATTR_TAG, a one-byte length and the KeyValue, back to back from packed to fast.next, with
 * room up to fast.max (trace.c's setters write the usual one there themselves); keys are distinct.
 * General (packed NULL): items, each encoded in a block of its own or from pool. A zeroed list is
 * an empty general one; a packed one turns general (otlp_attrs_set does it) to replace a key, or
 * for an encoding of 128 bytes or more, or when it has no room. Read either with
 * otlp_attrs_next. */
struct otlp_attrs {
	struct otlp_attrs_fast fast;
	uint8_t *packed;
	struct otlp_attr *items; /* allocated as span.c's grow() does */
	uint32_t len, dropped;   /* len: of items (a packed list keeps no count) */
	uint32_t heap;           /* blocks allocated on their own, outside pool */
	struct otlp_pool *pool;  /* NULL: each block is allocated */
};

/* The next attribute of a after *it (0 before the first; either way of holding them) into out,
 * whose strings point into a (not NUL-terminated). Returns false, out untouched, after the
 * last. */
bool otlp_attrs_next(const struct otlp_attrs *a, size_t *it, struct otlp_attr *out);

/* How many attributes a holds (either way). */
uint32_t otlp_attrs_count(const struct otlp_attrs *a);

struct otlp_event {
	uint64_t time_ns;
	char *name;
	struct otlp_attrs attrs;
};

struct otlp_link {
	uint8_t trace_id[16], span_id[8];
	char *trace_state; /* NULL when empty */
	uint32_t flags;
	struct otlp_attrs attrs;
};

#define OTLP_NAME_BYTES   64   /* a name shorter than this stays in the record */
#define OTLP_PACKED_BYTES 1144 /* a record's packed attributes (and, once general, blocks) */

/* A packed list's keys are distinct and at most one is empty: every attribute but that one
 * takes 9 bytes or more, so a record never packs more than OTLP_ATTRS_MAX of them. */
_Static_assert(OTLP_PACKED_BYTES <= 6 + 9 * (OTLP_ATTRS_MAX - 1), "packed lists need no count");

/* One ended span; every pointer is owned (or points into the record itself). */
struct otlp_span {
	struct otlp_attrs attrs;
	uint8_t trace_id[16], span_id[8], parent_span_id[8];
	bool has_parent;
	char *trace_state; /* NULL when empty */
	uint32_t flags;    /* trace flags | OTLP_FLAG_* */
	char *name;
	enum trace_kind kind;
	uint64_t start_ns, end_ns; /* Unix epoch nanoseconds */
	struct otlp_event *events;
	uint32_t n_events, dropped_events;
	struct otlp_link *links;
	uint32_t n_links, dropped_links;
	bool error;
	char *status_message; /* NULL when none */
	/* Storage otlp_span_init lends to name and attrs: a span's usual name and attributes
	 * cost no allocation of their own. */
	struct otlp_pool pool; /* over packed_bytes, once attrs is general */
	char name_bytes[OTLP_NAME_BYTES];
	uint8_t packed_bytes[OTLP_PACKED_BYTES];
};

/* A heap copy of s (free with free()) cut to OTLP_STRING_MAX bytes on a character boundary,
 * invalid UTF-8 replaced by '?'; NULL when out of memory. */
char *otlp_strdup(const char *s);

/* Makes s an empty record whose name (otlp_span_set_name) and attributes use its own storage
 * first, its attributes packed. A zeroed record works too, allocating each string. */
void otlp_span_init(struct otlp_span *s);

/* Sets s's name (copied, into the record's storage when it fits). Returns 0 or -ENOMEM. */
int otlp_span_set_name(struct otlp_span *s, const char *name);

/* Sets attr (copied) in a, replacing a value with the same key. Returns 0, -ENOSPC when a is
 * full (counted in a->dropped), or -ENOMEM. */
int otlp_attrs_set(struct otlp_attrs *a, const struct trace_attr *attr);

/* otlp_attrs_set for a string or an integer attribute (kn and vn: strlen of key and value,
 * neither NULL), the usual one written directly. The same returns. */
int otlp_attrs_set_str(struct otlp_attrs *a, const char *key, size_t kn, const char *value,
                       size_t vn);
int otlp_attrs_set_int(struct otlp_attrs *a, const char *key, size_t kn, int64_t value);

/* Frees the copies and empties a. */
void otlp_attrs_free(struct otlp_attrs *a);

/* Appends an event or a link (attributes copied) to s. Returns 0, -ENOSPC past the limit
 * (counted as dropped), or -ENOMEM. */
int otlp_span_add_event(struct otlp_span *s, uint64_t time_ns, const char *name,
                        const struct trace_attr *attrs, size_t n);
int otlp_span_add_link(struct otlp_span *s, const struct trace_context *ctx,
                       const struct trace_attr *attrs, size_t n);

/* Frees what s owns (s itself stays the caller's: trace.c reuses records, emptied again by
 * otlp_span_init, so it is not zeroed here; clear it once). */
void otlp_span_clear(struct otlp_span *s);

#endif
