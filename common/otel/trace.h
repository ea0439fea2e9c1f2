/* trace.h — the tracing SDK's public API: spans, the current span, W3C propagation, start and
 * stop, diagnostics. With tracecontext.h (which it includes) the only headers a program needs;
 * the others in this directory are the SDK's own. */
#ifndef BAKERY_OTEL_TRACE_H
#define BAKERY_OTEL_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tracecontext.h"

/* A span's kind (OTLP's values). */
enum trace_kind {
	TRACE_KIND_INTERNAL = 1,
	TRACE_KIND_SERVER = 2,
	TRACE_KIND_CLIENT = 3,
	TRACE_KIND_PRODUCER = 4,
	TRACE_KIND_CONSUMER = 5,
};

enum trace_attr_type { TRACE_ATTR_STRING, TRACE_ATTR_INT, TRACE_ATTR_DOUBLE, TRACE_ATTR_BOOL };

/* An attribute of an event or a link: build it with TRACE_STR/INT/DOUBLE/BOOL. Its strings are
 * borrowed for the call (copied). */
struct trace_attr {
	const char *key;
	enum trace_attr_type type;
	union {
		const char *s;
		int64_t i;
		double d;
		bool b;
	} v;
};

#define TRACE_STR(k, x)    ((struct trace_attr){.key = (k), .type = TRACE_ATTR_STRING, .v.s = (x)})
#define TRACE_INT(k, x)    ((struct trace_attr){.key = (k), .type = TRACE_ATTR_INT, .v.i = (x)})
#define TRACE_DOUBLE(k, x) ((struct trace_attr){.key = (k), .type = TRACE_ATTR_DOUBLE, .v.d = (x)})
#define TRACE_BOOL(k, x)   ((struct trace_attr){.key = (k), .type = TRACE_ATTR_BOOL, .v.b = (x)})

/* A started span is its thread's current span (the default parent, the ids in log lines) until
 * it ends; use and end it on that thread, or detach it (trace_span_detach) before another
 * thread uses or ends it (asserted unless NDEBUG). Every function accepts
 * a NULL span (what trace_span_start returns when disabled) and does nothing. A span the sampler
 * drops still carries its context to children and injected headers, but records and exports
 * nothing. */
typedef struct trace_span trace_span;

#define TRACE_FIELDS_MAX 32 /* header fields of one name trace_extract reads */

struct trace_stats {
	uint64_t ended;    /* sampled spans ended */
	uint64_t exported; /* spans the Collector accepted */
	uint64_t dropped;  /* queue full, export failed, or left at shutdown */
};

/* What the SDK reports that it cannot return to a caller, through callbacks the program
 * registers (any may be NULL; called from any thread, the export thread included; nothing
 * passed is retained after the call). */
enum trace_diag_level { TRACE_DIAG_DEBUG, TRACE_DIAG_INFO, TRACE_DIAG_WARN, TRACE_DIAG_ERROR };

struct trace_diag {
	/* A log line: msg and up to three (key, value) pairs in kv, ending at a NULL key; a NULL
	 * value is to be skipped. */
	void (*log)(void *arg, enum trace_diag_level level, const char *msg,
	            const char *const kv[6]);
	/* n spans were lost, for reason "queue_full", "export_failed" or "shutdown". */
	void (*dropped)(void *arg, const char *reason, uint64_t n);
	void *arg;
};

/* Registers diag (copied; NULL: the default, silent). Call before trace_init, not while the
 * SDK runs. */
void trace_set_diag(const struct trace_diag *diag);

/* Reads OTEL_* and K8S_* once, builds the resource (service.name defaults to
 * default_service_name), sampler and batch processor, starts the export thread. Returns 0
 * (also when disabled), -EINVAL (a variable named in a diag log line), -ENOMEM or -EALREADY. */
int trace_init(const char *default_service_name, const char *service_version);

/* Flushes and stops the export thread within min(OTEL_BSP_EXPORT_TIMEOUT, 5 s); what is left
 * is dropped. Open spans are freed unsent when they end. Safe twice; trace_init may follow. */
void trace_shutdown(void);

/* True between trace_init and trace_shutdown unless disabled. */
bool trace_enabled(void);

/* A parent that starts a new trace (as does any invalid context). */
extern const struct trace_context trace_root;
#define TRACE_ROOT (&trace_root)

/* Starts a span named name (copied) as the thread's current span: a child of parent when valid
 * (carrying its tracestate and baggage), of the current span when parent is NULL, else a root.
 * Returns it, the caller's until trace_span_end; NULL when disabled or out of memory. */
trace_span *trace_span_start(const char *name, enum trace_kind kind,
                             const struct trace_context *parent);

/* Ends the span (freed), restores the previous current span and queues it without waiting
 * (dropped and counted when the queue is full). */
void trace_span_end(trace_span *span);

/* Takes span off the calling thread's current spans, so that it may be used and ended on
 * another thread: a span handed over with the work it describes. Its children here then need
 * an explicit parent. */
void trace_span_detach(trace_span *span);

/* Internal, for the inline setters below (not for programs to touch): every span begins with
 * this (span.h's struct otlp_attrs, first in the record). A span's attributes are their OTLP
 * encodings back to back, the next one written at next when it fits before max. */
struct trace_attrs_fast_ {
	uint8_t *next, *max; /* equal (no room) when not recording or no longer packed */
	uint64_t key_bits;   /* bit trace_key_bit_(key) set for each key held */
	const void *owner;   /* trace.c's: the thread using the span; NULL once detached */
};

/* Internal: marks the calling thread (its address; trace.c's thread rule). */
extern _Thread_local char trace_thread_mark_;

/* Internal: the out-of-line trace_span_set_strn and _intn, for every case the inline ones leave
 * (a key whose bit is set: perhaps held, then replaced; long or non-ASCII strings; no room; a
 * span not recording, or another thread's). */
void trace_span_set_strn_slow_(trace_span *span, const char *key, size_t key_len, const char *value,
                               size_t value_len);
void trace_span_set_intn_slow_(trace_span *span, const char *key, size_t key_len, int64_t value);

/* Internal: the inline setters' functions are always inlined (GCC, Clang), so that a literal's
 * length, bytes and hash are worked out when compiling. */
#if defined(__GNUC__)
#define TRACE_INLINE_ static inline __attribute__((always_inline))
#else
#define TRACE_INLINE_ static inline
#endif

/* Internal: the bit of struct trace_attrs_fast_'s key_bits for key (n bytes): a multiplicative
 * hash of its length and its last 8 bytes (fewer when shorter), worked out when compiling for a
 * literal key. A clear bit: the key is new, no search needed. */
TRACE_INLINE_ unsigned trace_key_bit_(const char *key, size_t n)
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

/* Internal: copies s (n bytes, n <= 32) to out without a loop, overlapping words; returns the
 * bytes moved ORed together (s was ASCII when no high bit is set in the result). */
TRACE_INLINE_ uint64_t trace_copy32_(uint8_t *out, const char *s, size_t n)
{
	uint64_t a, b, c = 0, d = 0;
	uint32_t x, y;

	if (n >= 8) {
		memcpy(&a, s, 8);
		memcpy(&b, s + n - 8, 8);
		if (n > 16) {
			memcpy(&c, s + 8, 8);
			memcpy(&d, s + n - 16, 8);
			memcpy(out + 8, &c, 8);
			memcpy(out + n - 16, &d, 8);
		}
		memcpy(out, &a, 8);
		memcpy(out + n - 8, &b, 8);
		return a | b | c | d;
	}
	if (n >= 4) {
		memcpy(&x, s, 4);
		memcpy(&y, s + n - 4, 4);
		memcpy(out, &x, 4);
		memcpy(out + n - 4, &y, 4);
		return x | y;
	}
	if (n == 0)
		return 0;
	out[0] = (uint8_t)s[0];
	out[n / 2] = (uint8_t)s[n / 2];
	out[n - 1] = (uint8_t)s[n - 1];
	return (uint8_t)(s[0] | s[n / 2] | s[n - 1]);
}

/* trace_span_set_str with the lengths already known: key_len is strlen(key), value_len
 * strlen(value) (both still NUL-terminated, not NULL). Inline: the usual attribute (a new key of
 * 1 to 32 bytes, a value of up to 32, ASCII, room in the record) is written here, as the OTLP
 * KeyValue it is sent as; the rest goes to trace_span_set_strn_slow_. */
TRACE_INLINE_ void trace_span_set_strn(trace_span *span, const char *key, size_t key_len,
                                       const char *value, size_t value_len)
{
	struct trace_attrs_fast_ *f = (struct trace_attrs_fast_ *)span;
	size_t n = key_len + value_len + 8;
	unsigned bit;
	uint8_t *p;
	uint64_t seen;

	if (span && key_len - 1 < 32 && value_len <= 32 &&
	    !(f->key_bits >> (bit = trace_key_bit_(key, key_len)) & 1) &&
	    (size_t)(f->max - f->next) >= n && f->owner == &trace_thread_mark_) {
		p = f->next;
		p[0] = 9 << 3 | 2; /* Span.attributes */
		p[1] = (uint8_t)(n - 2);
		p[2] = 1 << 3 | 2; /* KeyValue.key */
		p[3] = (uint8_t)key_len;
		seen = trace_copy32_(p + 4, key, key_len);
		p += key_len;
		p[4] = 2 << 3 | 2; /* KeyValue.value */
		p[5] = (uint8_t)(value_len + 2);
		p[6] = 1 << 3 | 2; /* AnyValue.string_value */
		p[7] = (uint8_t)value_len;
		seen |= trace_copy32_(p + 8, value, value_len);
		if (!(seen & 0x8080808080808080u)) {
			f->next += n;
			f->key_bits |= 1ull << bit;
			return;
		}
	}
	trace_span_set_strn_slow_(span, key, key_len, value, value_len);
}

/* trace_span_set_int with key's length already known (key_len is strlen(key), key not NULL).
 * Inline likewise for a new ASCII key of 1 to 32 bytes and a value from 0 to 2^21 - 1. */
TRACE_INLINE_ void trace_span_set_intn(trace_span *span, const char *key, size_t key_len,
                                       int64_t value)
{
	struct trace_attrs_fast_ *f = (struct trace_attrs_fast_ *)span;
	uint64_t u = (uint64_t)value, seen;
	size_t vn = 1 + (u >= 1u << 7) + (u >= 1u << 14), n = key_len + vn + 7;
	unsigned bit;
	uint8_t *p;

	if (span && key_len - 1 < 32 && u < 1u << 21 &&
	    !(f->key_bits >> (bit = trace_key_bit_(key, key_len)) & 1) &&
	    (size_t)(f->max - f->next) >= key_len + 10 && f->owner == &trace_thread_mark_) {
		p = f->next;
		p[0] = 9 << 3 | 2; /* Span.attributes */
		p[1] = (uint8_t)(n - 2);
		p[2] = 1 << 3 | 2; /* KeyValue.key */
		p[3] = (uint8_t)key_len;
		seen = trace_copy32_(p + 4, key, key_len);
		p += key_len;
		p[4] = 2 << 3 | 2; /* KeyValue.value */
		p[5] = (uint8_t)(vn + 1);
		p[6] = 3 << 3 | 0; /* AnyValue.int_value, a varint */
		p[7] = (uint8_t)(u | (vn > 1 ? 0x80 : 0));
		p[8] = (uint8_t)(u >> 7 | (vn > 2 ? 0x80 : 0));
		p[9] = (uint8_t)(u >> 14); /* written whatever vn: room was checked for 3 */
		if (!(seen & 0x8080808080808080u)) {
			f->next += n;
			f->key_bits |= 1ull << bit;
			return;
		}
	}
	trace_span_set_intn_slow_(span, key, key_len, value);
}

/* Sets one attribute (copied; a later value for the key replaces the earlier). At most 128 per
 * span; strings are cut to 4096 bytes, invalid UTF-8 replaced. trace_span_set_str and _int are
 * inline so that the lengths of a literal key or value are worked out when compiling. */
TRACE_INLINE_ void trace_span_set_str(trace_span *span, const char *key, const char *value)
{
	if (key)
		trace_span_set_strn(span, key, strlen(key), value ? value : "",
		                    value ? strlen(value) : 0);
}
TRACE_INLINE_ void trace_span_set_int(trace_span *span, const char *key, int64_t value)
{
	if (key)
		trace_span_set_intn(span, key, strlen(key), value);
}
void trace_span_set_double(trace_span *span, const char *key, double value);
void trace_span_set_bool(trace_span *span, const char *key, bool value);

/* Adds a timestamped event with n attributes (attrs may be NULL when n is 0); copied. */
void trace_span_add_event(trace_span *span, const char *name, const struct trace_attr *attrs,
                          size_t n);

/* Adds a link to ctx with n attributes; copied. An invalid ctx is ignored. */
void trace_span_add_link(trace_span *span, const struct trace_context *ctx,
                         const struct trace_attr *attrs, size_t n);

/* Sets the status to ERROR with message (copied; NULL for none). */
void trace_span_set_error(trace_span *span, const char *message);

/* True when the span records: skip costly attribute work otherwise. */
bool trace_span_is_recording(const trace_span *span);

/* Fills out with the span's context. Returns 0, or -EINVAL (out invalid) for a NULL span. */
int trace_span_context(const trace_span *span, struct trace_context *out);

/* The calling thread's current span, or NULL. */
trace_span *trace_current(void);

/* Writes the current span's ids as hex and returns 1; 0 when there is none (a log hook). */
int trace_current_ids(char trace_id[33], char span_id[17]);

/* Header access for propagation. get returns the index-th field (0 first, in the order
 * received) named name (HTTP: compare case-insensitively) as len bytes, not necessarily
 * NUL-terminated, or NULL when there is no such field; it must return every field of a name, as
 * HTTP allows a list header (tracestate, baggage) to be split over several (RFC 9110 5.3). set
 * stores a copy and returns 0 or a negative error. */
typedef const char *(*trace_header_get)(void *carrier, const char *name, size_t index, size_t *len);
typedef int (*trace_header_set)(void *carrier, const char *name, const char *value);

/* Reads traceparent, tracestate and baggage (all their fields) into out, marked remote.
 * Returns 0, or -ENOENT (no traceparent) / -EINVAL (malformed, or more than one traceparent
 * field) with out invalid but keeping any valid baggage. Of more than TRACE_FIELDS_MAX fields,
 * the tracestate is dropped (as 33 members would be) and the baggage keeps the first ones. */
int trace_extract(trace_header_get get, void *carrier, struct trace_context *out);

/* Writes traceparent, and tracestate and baggage when not empty, through set. Returns 0, set's
 * first negative result, or -EINVAL for a NULL span. */
int trace_inject(const trace_span *span, trace_header_set set, void *carrier);

/* Copies the counters since trace_init into out. */
void trace_stats(struct trace_stats *out);

#endif
