/* trace.c — the tracing SDK's API: spans on a per-thread stack, propagation, start and stop. */
#include "trace.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "batch.h"
#include "clock.h"
#include "diag.h"
#include "env.h"
#include "id.h"
#include "sampler.h"

#define STACK_MAX 32   /* nested current spans per thread; deeper ones still work */
#define POOL_MAX  1024 /* span records kept for reuse (1.5 KB each) */

/* A started span: its record (encoded for export when it ends, if sampled) and what is only
 * passed on. One allocation, kept in the pool once the span has ended. */
struct trace_span {
	struct otlp_span data; /* ids, flags and tracestate always; the rest when recording */
	bool recording;
	char *baggage; /* NULL when empty; propagated, never exported */
	uint64_t start_mono_ns;
	const void *owner; /* &thread_mark of the thread using it; NULL once detached */
	trace_span *next;  /* in the pool */
};

/* Records of ended spans, reused by the next starts instead of freed and allocated again. */
static struct {
	pthread_mutex_t lock;
	trace_span *free;
	size_t len;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Everything trace_init builds. */
static struct {
	struct otel_sampler sampler;
	struct otlp_resource resource;
	struct otlp_exporter *exporter; /* NULL unless started */
} sdk;

static atomic_bool sdk_enabled;

static _Thread_local trace_span *stack[STACK_MAX];
static _Thread_local int depth;
static _Thread_local char thread_mark; /* its address tells the threads apart */

/* The thread rule: a span is used by the thread that started it until detached. */
#define ASSERT_OWNED(s) assert(!(s)->owner || (s)->owner == &thread_mark)

const struct trace_context trace_root;

trace_span *trace_current(void)
{
	return depth > 0 ? stack[depth - 1] : NULL;
}

int trace_current_ids(char trace_id[33], char span_id[17])
{
	trace_span *s = trace_current();

	if (!s)
		return 0;
	tracecontext_hex(s->data.trace_id, 16, trace_id);
	tracecontext_hex(s->data.span_id, 8, span_id);
	return 1;
}

/* Ended records each thread keeps for its next starts, out of the pool's lock: a thread usually
 * ends its spans before it starts the next ones, and holds at most a span and a child (as
 * reception's request does) at once. Given back to the pool when the thread exits (spare_key's
 * destructor). */
#define SPARES 2
static _Thread_local trace_span *spares[SPARES];
static _Thread_local int n_spares;
static _Thread_local bool spare_kept; /* spare_key set for this thread */
static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;
static bool spare_key_made;

static void pool_put(trace_span *s);

static void spare_exit(void *arg)
{
	(void)arg;
	while (n_spares > 0)
		pool_put(spares[--n_spares]);
}

static void spare_make_key(void)
{
	spare_key_made = pthread_key_create(&spare_key, spare_exit) == 0;
}

/* Whether this thread may keep spare records (its exit then gives them back). */
static bool spare_allowed(void)
{
	if (!spare_kept) {
		pthread_once(&spare_once, spare_make_key);
		spare_kept = spare_key_made && pthread_setspecific(spare_key, spares) == 0;
	}
	return spare_kept;
}

/* One of this thread's spare records, else one from the pool, else from malloc; NULL when out
 * of memory. */
static trace_span *span_alloc(void)
{
	trace_span *s;

	if (n_spares > 0)
		return spares[--n_spares];
	pthread_mutex_lock(&pool.lock);
	if ((s = pool.free)) {
		pool.free = s->next;
		pool.len--;
	}
	pthread_mutex_unlock(&pool.lock);
	return s ? s : malloc(sizeof(*s));
}

/* Clears s's record and keeps it as one of this thread's spares, else in the pool, up to POOL_MAX
 * (else frees it). NULL is fine. */
static void span_free(trace_span *s)
{
	if (!s)
		return;
	if (s->baggage)
		free(s->baggage);
	otlp_span_clear(&s->data);
	if (n_spares < SPARES && spare_allowed())
		spares[n_spares++] = s;
	else
		pool_put(s);
}

/* Keeps cleared record s in the pool, up to POOL_MAX (else frees it). NULL is fine. */
static void pool_put(trace_span *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&pool.lock);
	if (pool.len < POOL_MAX) {
		s->next = pool.free;
		pool.free = s;
		pool.len++;
		s = NULL;
	}
	pthread_mutex_unlock(&pool.lock);
	free(s);
}

/* Frees the pool's records and this thread's spares (at shutdown, once no span can end; other
 * threads give theirs back as they exit). */
static void pool_drain(void)
{
	trace_span *s;

	while (n_spares > 0)
		free(spares[--n_spares]);
	pthread_mutex_lock(&pool.lock);
	while ((s = pool.free)) {
		pool.free = s->next;
		free(s);
	}
	pool.len = 0;
	pthread_mutex_unlock(&pool.lock);
}

trace_span *trace_span_start(const char *name, enum trace_kind kind,
                             const struct trace_context *parent)
{
	const char *tracestate = NULL, *baggage = NULL;
	trace_span *cur = NULL, *s;
	uint8_t parent_flags = 0;

	if (!atomic_load_explicit(&sdk_enabled, memory_order_relaxed))
		return NULL;
	if (!(s = span_alloc()))
		return NULL;
	otlp_span_init(&s->data);
	s->baggage = NULL;
	if (!parent && (cur = trace_current())) {
		memcpy(s->data.trace_id, cur->data.trace_id, 16);
		memcpy(s->data.parent_span_id, cur->data.span_id, 8);
		s->data.has_parent = true;
		s->data.flags = OTLP_FLAG_HAS_IS_REMOTE;
		parent_flags = (uint8_t)cur->data.flags;
		tracestate = cur->data.trace_state;
		baggage = cur->baggage;
	} else if (parent && tracecontext_is_valid(parent)) {
		memcpy(s->data.trace_id, parent->trace_id, 16);
		memcpy(s->data.parent_span_id, parent->span_id, 8);
		s->data.has_parent = true;
		s->data.flags =
		    OTLP_FLAG_HAS_IS_REMOTE | (parent->remote ? OTLP_FLAG_IS_REMOTE : 0);
		parent_flags = parent->flags;
		tracestate = parent->tracestate;
		baggage = parent->baggage;
	} else {
		baggage = parent ? parent->baggage : NULL;
	}
	if (s->data.has_parent)
		otel_id_random(s->data.span_id, 8);
	else
		otel_id_random2(s->data.trace_id, 16, s->data.span_id, 8);
	if (otel_sampler_sample(&sdk.sampler, s->data.trace_id, s->data.has_parent, parent_flags))
		s->data.flags |= TRACECONTEXT_FLAG_SAMPLED;
	s->recording = s->data.flags & TRACECONTEXT_FLAG_SAMPLED;
	if ((tracestate && *tracestate && !(s->data.trace_state = otlp_strdup(tracestate))) ||
	    (baggage && *baggage && !(s->baggage = strdup(baggage))))
		goto fail;
	if (s->recording) {
		if (otlp_span_set_name(&s->data, name ? name : "") < 0)
			goto fail;
		s->data.kind = kind;
		s->data.start_ns = otel_clock_ns(CLOCK_REALTIME);
		s->start_mono_ns = otel_clock_ns(CLOCK_MONOTONIC);
	} else { /* nothing recorded: no room for the fast setters */
		s->data.attrs.fast.max = s->data.attrs.fast.next;
	}
	s->owner = &thread_mark;
	if (depth < STACK_MAX)
		stack[depth++] = s;
	return s;
fail:
	span_free(s);
	return NULL;
}

void trace_span_detach(trace_span *s)
{
	if (!s)
		return;
	ASSERT_OWNED(s);
	s->owner = NULL;
	for (int i = depth - 1; i >= 0; i--) { /* off this thread's stack, wherever it is */
		if (stack[i] == s) {
			if (i + 1 < depth) /* not the top, as it usually is */
				memmove(&stack[i], &stack[i + 1],
				        (size_t)(depth - i - 1) * sizeof(stack[0]));
			depth--;
			break;
		}
	}
}

void trace_span_end(trace_span *s)
{
	if (!s)
		return;
	trace_span_detach(s);
	if (s->recording) {
		s->data.end_ns =
		    s->data.start_ns + (otel_clock_ns(CLOCK_MONOTONIC) - s->start_mono_ns);
		otel_batch_offer(&s->data);
	}
	span_free(s);
}

static void set_attr(trace_span *s, struct trace_attr a)
{
	if (s)
		ASSERT_OWNED(s);
	if (s && s->recording && a.key)
		otlp_attrs_set(&s->data.attrs, &a);
}

/* Every attribute the fast path below leaves: a key whose bit is set (perhaps held, then
 * replaced), long or non-ASCII strings, no room, a span not recording or another thread's. Not
 * inlined, so that the fast path saves no registers for it. */
#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif
NOINLINE static void set_strn_slow(trace_span *s, const char *key, size_t key_len,
                                   const char *value, size_t value_len)
{
	if (s)
		ASSERT_OWNED(s);
	if (s && s->recording)
		otlp_attrs_set_str(&s->data.attrs, key, key_len, value, value_len);
}

NOINLINE static void set_intn_slow(trace_span *s, const char *key, size_t key_len, int64_t value)
{
	if (s)
		ASSERT_OWNED(s);
	if (s && s->recording)
		otlp_attrs_set_int(&s->data.attrs, key, key_len, value);
}

/* Copies s (n bytes, n <= 32) to out without a loop, overlapping words; returns the
 * bytes moved ORed together (s was ASCII when no high bit is set in the result). */
static inline uint64_t copy32(uint8_t *out, const char *s, size_t n)
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

/* Whether span's packed list takes the usual attribute on this thread: a new key of 1 to 32
 * bytes (its bit, in *bit, clear) and room bytes free. */
static inline bool fast_fits(const trace_span *span, const char *key, size_t key_len, size_t room,
                             unsigned *bit)
{
	const struct otlp_attrs_fast *f = &span->data.attrs.fast;

	return key_len - 1 < 32 && !(f->key_bits >> (*bit = otlp_key_bit(key, key_len)) & 1) &&
	       (size_t)(f->max - f->next) >= room && span->owner == &thread_mark;
}

/* Starts a Span.attributes field of n bytes at p, as otlp_attrs_set writes it: its tag and
 * length, KeyValue.key, KeyValue.value's tag. Returns where the value's length goes; *seen: the
 * key's bytes ORed together. */
static inline uint8_t *fast_put_key(uint8_t *p, size_t n, const char *key, size_t key_len,
                                    uint64_t *seen)
{
	p[0] = 9 << 3 | 2; /* Span.attributes */
	p[1] = (uint8_t)(n - 2);
	p[2] = 1 << 3 | 2; /* KeyValue.key */
	p[3] = (uint8_t)key_len;
	*seen = copy32(p + 4, key, key_len);
	p[4 + key_len] = 2 << 3 | 2; /* KeyValue.value */
	return p + 5 + key_len;
}

/* Keeps the field fast_put_key started (n bytes, the key's bit) when all it copied was ASCII
 * (seen); returns false, nothing kept, for the slow path, which repairs. */
static inline bool fast_keep(struct otlp_attrs_fast *f, size_t n, unsigned bit, uint64_t seen)
{
	if (seen & 0x8080808080808080u)
		return false;
	f->next += n;
	f->key_bits |= 1ull << bit;
	return true;
}

/* The usual attribute (a new key of 1 to 32 bytes, an ASCII value of up to 32, room in the
 * packed list, the owner's thread) is written here, as the OTLP KeyValue it is sent as. */
void trace_span_set_strn(trace_span *span, const char *key, size_t key_len, const char *value,
                         size_t value_len)
{
	size_t n = key_len + value_len + 8;
	unsigned bit;
	uint64_t seen;
	uint8_t *p;

	if (span && value_len <= 32 && fast_fits(span, key, key_len, n, &bit)) {
		p = fast_put_key(span->data.attrs.fast.next, n, key, key_len, &seen);
		p[0] = (uint8_t)(value_len + 2);
		p[1] = 1 << 3 | 2; /* AnyValue.string_value */
		p[2] = (uint8_t)value_len;
		seen |= copy32(p + 3, value, value_len);
		if (fast_keep(&span->data.attrs.fast, n, bit, seen))
			return;
	}
	set_strn_slow(span, key, key_len, value, value_len);
}

/* Likewise for a value from 0 to 2^21 - 1. */
void trace_span_set_intn(trace_span *span, const char *key, size_t key_len, int64_t value)
{
	uint64_t u = (uint64_t)value, seen;
	size_t vn = 1 + (u >= 1u << 7) + (u >= 1u << 14), n = key_len + vn + 7;
	unsigned bit;
	uint8_t *p;

	if (span && u < 1u << 21 && fast_fits(span, key, key_len, key_len + 10, &bit)) {
		p = fast_put_key(span->data.attrs.fast.next, n, key, key_len, &seen);
		p[0] = (uint8_t)(vn + 1);
		p[1] = 3 << 3 | 0; /* AnyValue.int_value, a varint */
		p[2] = (uint8_t)(u | (vn > 1 ? 0x80 : 0));
		p[3] = (uint8_t)(u >> 7 | (vn > 2 ? 0x80 : 0));
		p[4] = (uint8_t)(u >> 14); /* written whatever vn: room was checked for 3 */
		if (fast_keep(&span->data.attrs.fast, n, bit, seen))
			return;
	}
	set_intn_slow(span, key, key_len, value);
}

void trace_span_set_double(trace_span *s, const char *key, double value)
{
	set_attr(s, TRACE_DOUBLE(key, value));
}

void trace_span_set_bool(trace_span *s, const char *key, bool value)
{
	set_attr(s, TRACE_BOOL(key, value));
}

void trace_span_add_event(trace_span *s, const char *name, const struct trace_attr *attrs, size_t n)
{
	if (s)
		ASSERT_OWNED(s);
	if (s && s->recording)
		otlp_span_add_event(&s->data, otel_clock_ns(CLOCK_REALTIME), name, attrs,
		                    attrs ? n : 0);
}

void trace_span_add_link(trace_span *s, const struct trace_context *ctx,
                         const struct trace_attr *attrs, size_t n)
{
	if (s)
		ASSERT_OWNED(s);
	if (s && s->recording && tracecontext_is_valid(ctx))
		otlp_span_add_link(&s->data, ctx, attrs, attrs ? n : 0);
}

void trace_span_set_error(trace_span *s, const char *message)
{
	if (!s)
		return;
	ASSERT_OWNED(s);
	if (!s->recording)
		return;
	s->data.error = true;
	free(s->data.status_message);
	s->data.status_message = message ? otlp_strdup(message) : NULL;
}

bool trace_span_is_recording(const trace_span *s)
{
	return s && s->recording;
}

/* Makes out an invalid context (ids zero, no state), without writing its 8 KB of strings. */
static void context_clear(struct trace_context *out, bool remote)
{
	memset(out, 0, offsetof(struct trace_context, tracestate));
	out->remote = remote;
	out->tracestate[0] = out->baggage[0] = '\0';
}

/* Copies src (NULL: "") into dst, cut to cap - 1 bytes. */
static void copy_bounded(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strnlen(src, cap - 1) : 0;

	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

int trace_span_context(const trace_span *s, struct trace_context *out)
{
	context_clear(out, false);
	if (!s)
		return -EINVAL;
	memcpy(out->trace_id, s->data.trace_id, 16);
	memcpy(out->span_id, s->data.span_id, 8);
	out->flags = (uint8_t)s->data.flags;
	copy_bounded(out->tracestate, sizeof(out->tracestate), s->data.trace_state);
	copy_bounded(out->baggage, sizeof(out->baggage), s->baggage);
	return 0;
}

/* Up to TRACE_FIELDS_MAX fields named name into f; returns how many. */
static size_t get_fields(trace_header_get get, void *carrier, const char *name,
                         struct trace_field f[TRACE_FIELDS_MAX])
{
	size_t n = 0;

	while (n < TRACE_FIELDS_MAX && (f[n].s = get(carrier, name, n, &f[n].len)))
		n++;
	return n;
}

int trace_extract(trace_header_get get, void *carrier, struct trace_context *out)
{
	struct trace_field f[TRACE_FIELDS_MAX];
	size_t n, len = 0;
	const char *v;

	context_clear(out, true);
	n = get_fields(get, carrier, "baggage", f);
	tracecontext_parse_baggage(f, n, out->baggage, sizeof(out->baggage));
	if (!(v = get(carrier, "traceparent", 0, &len)))
		return -ENOENT;
	if (get(carrier, "traceparent", 1, &(size_t){0}) || /* several: invalid, a new trace */
	    tracecontext_parse_traceparent(v, len, out) < 0)
		return -EINVAL;
	n = get_fields(get, carrier, "tracestate", f);
	if (n < TRACE_FIELDS_MAX || !get(carrier, "tracestate", n, &len))
		tracecontext_parse_tracestate(f, n, out->tracestate, sizeof(out->tracestate));
	return 0;
}

int trace_inject(const trace_span *s, trace_header_set set, void *carrier)
{
	char tp[TRACECONTEXT_TRACEPARENT_LEN + 1];
	uint8_t flags;
	int rc;

	if (!s)
		return -EINVAL;
	flags = (uint8_t)s->data.flags;
	/* Not through a struct trace_context: its 1 KB of strings need not be written. */
	memcpy(tp, "00-", 3);
	tracecontext_hex(s->data.trace_id, 16, tp + 3);
	tp[35] = '-';
	tracecontext_hex(s->data.span_id, 8, tp + 36);
	tp[52] = '-';
	tracecontext_hex(&flags, 1, tp + 53);
	if ((rc = set(carrier, "traceparent", tp)) < 0 ||
	    (s->data.trace_state && (rc = set(carrier, "tracestate", s->data.trace_state)) < 0) ||
	    (s->baggage && (rc = set(carrier, "baggage", s->baggage)) < 0))
		return rc;
	return 0;
}

static void release(void)
{
	otlp_attrs_free(&sdk.resource.attrs);
	otlp_exporter_free(sdk.exporter);
	sdk.exporter = NULL;
}

int trace_init(const char *default_service_name, const char *service_version)
{
	const char *v = otel_env("OTEL_SDK_DISABLED");
	int rc;

	if (sdk.exporter || atomic_load(&sdk_enabled))
		return -EALREADY;
	if (v && strcasecmp(v, "true") == 0)
		return 0;
	if ((rc = otel_batch_from_env()) < 0 || (rc = otel_sampler_from_env(&sdk.sampler)) < 0 ||
	    (rc = otel_resource_from_env(&sdk.resource, default_service_name, service_version)) <
	        0 ||
	    (rc = otlp_exporter_create(&sdk.exporter)) < 0 ||
	    (rc = otel_batch_start(sdk.exporter, &sdk.resource)) < 0) {
		release();
		return rc;
	}
	atomic_store(&sdk_enabled, true);
	otel_diag_log(TRACE_DIAG_DEBUG, "tracing started",
	              (const char *const[6]){"endpoint", otlp_exporter_url(sdk.exporter)});
	return 0;
}

void trace_shutdown(void)
{
	atomic_store(&sdk_enabled, false);
	if (!sdk.exporter)
		return;
	otel_batch_stop();
	release();
	pool_drain();
}

bool trace_enabled(void)
{
	return atomic_load(&sdk_enabled);
}

void trace_stats(struct trace_stats *out)
{
	otel_batch_counts(&out->ended, &out->exported, &out->dropped);
}
