/* trace.c — tracing SDK: ids, sampler, per-thread current span, batch processor, resource. */
#include "trace.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "otlp.h"

#define TRACE_SDK_VERSION  "1.0.0"
#define STACK_MAX          32    /* nested current spans per thread; deeper ones still work */
#define SHUTDOWN_BUDGET_MS 5000  /* trace_shutdown's flush never takes longer */
#define EXPORT_ATTEMPTS    5     /* per batch, first try included */
#define BACKOFF_FIRST_MS   500   /* doubles per retry, with jitter */
#define BACKOFF_MAX_MS     8000  /* one wait between retries never exceeds this */
#define DROP_LOG_PERIOD_MS 10000 /* at most one "spans dropped" line per period */
#define ENV_INT_MAX        10000000

struct trace_span {
	struct otlp_span data; /* first: the queue holds &span->data */
	bool recording;
	char *baggage; /* NULL when empty; propagated, never exported */
	uint64_t start_mono_ns;
};

enum sampler { ALWAYS_ON, ALWAYS_OFF, RATIO, PARENT_ON, PARENT_OFF, PARENT_RATIO };

/* Everything trace_init builds; guarded by lock where the export thread shares it. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool running;   /* the export thread exists */
	bool accepting; /* span ends may enqueue */
	bool stopping;
	uint64_t stop_deadline_ms;
	pthread_t thread;
	struct otlp_span **queue; /* ring */
	size_t queue_cap, head, len;
	size_t batch_max;
	long delay_ms, export_timeout_ms;
	enum sampler sampler;
	double ratio;
	struct otlp_resource resource;
	struct otlp_exporter *exporter;
	struct metric *dropped_metric;
} sdk = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static atomic_bool sdk_enabled;
static atomic_uint_fast64_t stat_ended, stat_exported, stat_dropped_queue, stat_dropped_export;

static _Thread_local trace_span *stack[STACK_MAX];
static _Thread_local int depth;
static _Thread_local uint64_t rng[4];
static _Thread_local bool rng_seeded;

const struct trace_context trace_root;

/* ---- clocks and ids ------------------------------------------------------------------ */

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_ms(void)
{
	return clock_ns(CLOCK_MONOTONIC) / 1000000u;
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256**, one state per thread, seeded from getrandom (splitmix64 over the clock, the
 * thread and a stack address if that ever fails). */
static uint64_t rand64(void)
{
	uint64_t r, t;

	if (!rng_seeded) {
		if (getrandom(rng, sizeof(rng), 0) != (ssize_t)sizeof(rng)) {
			uint64_t x = clock_ns(CLOCK_REALTIME) ^ (uint64_t)(uintptr_t)&r ^
			             (uint64_t)pthread_self();
			for (int i = 0; i < 4; i++)
				rng[i] = splitmix64(&x);
		}
		rng_seeded = rng[0] | rng[1] | rng[2] | rng[3];
	}
	r = rotl(rng[1] * 5, 7) * 9;
	t = rng[1] << 17;
	rng[2] ^= rng[0];
	rng[3] ^= rng[1];
	rng[1] ^= rng[2];
	rng[0] ^= rng[3];
	rng[2] ^= t;
	rng[3] = rotl(rng[3], 45);
	return r;
}

/* Fills n bytes (8 or 16) with random bits, never all zero. */
static void random_id(uint8_t *id, size_t n)
{
	uint64_t w[2];

	do {
		w[0] = rand64();
		w[1] = n > 8 ? rand64() : 0;
	} while (w[0] == 0 && w[1] == 0);
	memcpy(id, w, n);
}

/* ---- sampling ------------------------------------------------------------------------ */

bool trace_ratio_sampled(const uint8_t trace_id[16], double ratio)
{
	uint64_t x = 0;

	if (ratio >= 1.0)
		return true;
	if (!(ratio > 0.0))
		return false;
	for (int i = 8; i < 16; i++)
		x = x << 8 | trace_id[i];
	return (x >> 1) < (uint64_t)(ratio * 9223372036854775808.0);
}

/* The sampler's decision for a span in trace_id whose parent (if has_parent) had flags. */
static bool should_sample(const uint8_t trace_id[16], bool has_parent, uint8_t parent_flags)
{
	switch (sdk.sampler) {
	case ALWAYS_ON:
		return true;
	case ALWAYS_OFF:
		return false;
	case RATIO:
		return trace_ratio_sampled(trace_id, sdk.ratio);
	case PARENT_ON:
	case PARENT_OFF:
	case PARENT_RATIO:
		if (has_parent)
			return parent_flags & TRACECONTEXT_FLAG_SAMPLED;
		return sdk.sampler == PARENT_ON ||
		       (sdk.sampler == PARENT_RATIO && trace_ratio_sampled(trace_id, sdk.ratio));
	}
	return false;
}

/* ---- the thread's current span ------------------------------------------------------- */

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

/* ---- spans --------------------------------------------------------------------------- */

static void span_free(trace_span *s)
{
	if (!s)
		return;
	otlp_span_clear(&s->data);
	free(s->baggage);
	free(s);
}

trace_span *trace_span_start(const char *name, enum trace_kind kind,
                             const struct trace_context *parent)
{
	const char *tracestate = NULL, *baggage = NULL;
	trace_span *cur = NULL, *s;
	uint8_t parent_flags = 0;

	if (!atomic_load_explicit(&sdk_enabled, memory_order_relaxed))
		return NULL;
	if (!(s = calloc(1, sizeof(*s))))
		return NULL;
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
		random_id(s->data.trace_id, 16);
		baggage = parent ? parent->baggage : NULL;
	}
	random_id(s->data.span_id, 8);
	if (should_sample(s->data.trace_id, s->data.has_parent, parent_flags))
		s->data.flags |= TRACECONTEXT_FLAG_SAMPLED;
	s->recording = s->data.flags & TRACECONTEXT_FLAG_SAMPLED;
	if ((tracestate && *tracestate && !(s->data.trace_state = otlp_strdup(tracestate))) ||
	    (baggage && *baggage && !(s->baggage = strdup(baggage))))
		goto fail;
	if (s->recording) {
		if (!(s->data.name = otlp_strdup(name ? name : "")))
			goto fail;
		s->data.kind = kind;
		s->data.start_ns = clock_ns(CLOCK_REALTIME);
		s->start_mono_ns = clock_ns(CLOCK_MONOTONIC);
	}
	if (depth < STACK_MAX)
		stack[depth++] = s;
	return s;
fail:
	span_free(s);
	return NULL;
}

/* Takes s off this thread's stack of current spans, wherever it is. */
static void unstack(trace_span *s)
{
	for (int i = depth - 1; i >= 0; i--) {
		if (stack[i] == s) {
			memmove(&stack[i], &stack[i + 1],
			        (size_t)(depth - i - 1) * sizeof(stack[0]));
			depth--;
			return;
		}
	}
}

static void count_dropped(atomic_uint_fast64_t *counter, struct metric *m, const char *reason,
                          uint64_t n)
{
	atomic_fetch_add(counter, n);
	metrics_add(m, (double)n, reason);
}

void trace_span_end(trace_span *s)
{
	const char *reason = "shutdown";
	struct metric *metric;
	bool queued = false;

	if (!s)
		return;
	unstack(s);
	if (!s->recording) {
		span_free(s);
		return;
	}
	s->data.end_ns = s->data.start_ns + (clock_ns(CLOCK_MONOTONIC) - s->start_mono_ns);
	atomic_fetch_add(&stat_ended, 1);
	pthread_mutex_lock(&sdk.lock);
	metric = sdk.dropped_metric;
	if (sdk.accepting && sdk.len < sdk.queue_cap) {
		sdk.queue[(sdk.head + sdk.len++) % sdk.queue_cap] = &s->data;
		queued = true;
		if (sdk.len == 1 || sdk.len == sdk.batch_max)
			pthread_cond_signal(&sdk.wake);
	} else if (sdk.accepting) {
		reason = "queue_full";
	}
	pthread_mutex_unlock(&sdk.lock);
	if (!queued) {
		count_dropped(&stat_dropped_queue, metric, reason, 1);
		span_free(s);
	}
}

static void set_attr(trace_span *s, struct trace_attr a)
{
	if (s && s->recording && a.key)
		otlp_attrs_set(&s->data.attrs, &a);
}

void trace_span_set_str(trace_span *s, const char *key, const char *value)
{
	set_attr(s, TRACE_STR(key, value ? value : ""));
}

void trace_span_set_int(trace_span *s, const char *key, int64_t value)
{
	set_attr(s, TRACE_INT(key, value));
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
	if (s && s->recording)
		otlp_span_add_event(&s->data, clock_ns(CLOCK_REALTIME), name, attrs, attrs ? n : 0);
}

void trace_span_add_link(trace_span *s, const struct trace_context *ctx,
                         const struct trace_attr *attrs, size_t n)
{
	if (s && s->recording && tracecontext_is_valid(ctx))
		otlp_span_add_link(&s->data, ctx, attrs, attrs ? n : 0);
}

void trace_span_set_error(trace_span *s, const char *message)
{
	if (!s || !s->recording)
		return;
	s->data.error = true;
	free(s->data.status_message);
	s->data.status_message = message ? otlp_strdup(message) : NULL;
}

bool trace_span_is_recording(const trace_span *s)
{
	return s && s->recording;
}

int trace_span_context(const trace_span *s, struct trace_context *out)
{
	memset(out->trace_id, 0, sizeof(out->trace_id));
	memset(out->span_id, 0, sizeof(out->span_id));
	out->flags = 0;
	out->remote = false;
	out->tracestate[0] = out->baggage[0] = '\0';
	if (!s)
		return -EINVAL;
	memcpy(out->trace_id, s->data.trace_id, 16);
	memcpy(out->span_id, s->data.span_id, 8);
	out->flags = (uint8_t)s->data.flags;
	snprintf(out->tracestate, sizeof(out->tracestate), "%s",
	         s->data.trace_state ? s->data.trace_state : "");
	snprintf(out->baggage, sizeof(out->baggage), "%s", s->baggage ? s->baggage : "");
	return 0;
}

/* ---- propagation --------------------------------------------------------------------- */

int trace_extract(trace_header_get get, void *carrier, struct trace_context *out)
{
	const char *v;
	size_t len = 0;

	memset(out->trace_id, 0, sizeof(out->trace_id));
	memset(out->span_id, 0, sizeof(out->span_id));
	out->flags = 0;
	out->remote = true;
	out->tracestate[0] = out->baggage[0] = '\0';
	if ((v = get(carrier, "baggage", &len)))
		tracecontext_parse_baggage(v, len, out->baggage, sizeof(out->baggage));
	if (!(v = get(carrier, "traceparent", &len)))
		return -ENOENT;
	if (tracecontext_parse_traceparent(v, len, out) < 0)
		return -EINVAL;
	if ((v = get(carrier, "tracestate", &len)))
		tracecontext_parse_tracestate(v, len, out->tracestate, sizeof(out->tracestate));
	return 0;
}

int trace_inject(const trace_span *s, trace_header_set set, void *carrier)
{
	char tp[TRACECONTEXT_TRACEPARENT_LEN + 1];
	uint8_t flags;
	int rc;

	if (!s)
		return -EINVAL;
	/* "00-<trace id>-<span id>-<flags>", written here: a struct trace_context would put
	 * 8.7 KB on the caller's stack (civetweb's worker stacks are 100 KiB). */
	flags = (uint8_t)s->data.flags;
	memcpy(tp, "00-", 3);
	tracecontext_hex(s->data.trace_id, 16, tp + 3);
	tp[35] = '-';
	tracecontext_hex(s->data.span_id, 8, tp + 36);
	tp[52] = '-';
	tracecontext_hex(&flags, 1, tp + 53);
	if ((rc = set(carrier, "traceparent", tp)) < 0)
		return rc;
	if (s->data.trace_state && (rc = set(carrier, "tracestate", s->data.trace_state)) < 0)
		return rc;
	if (s->baggage && (rc = set(carrier, "baggage", s->baggage)) < 0)
		return rc;
	return 0;
}

/* ---- the batch span processor -------------------------------------------------------- */

static pthread_once_t wake_once = PTHREAD_ONCE_INIT;

/* Makes sdk.wake wait on CLOCK_MONOTONIC, so a wall-clock step never stretches or cuts a wait
 * (the deadlines are monotonic). Runs once per process, before the export thread exists. */
static void wake_init(void)
{
	pthread_condattr_t attr;

	if (pthread_condattr_init(&attr) != 0)
		return; /* keeps the static initializer's realtime clock */
	if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0) {
		pthread_cond_destroy(&sdk.wake);
		pthread_cond_init(&sdk.wake, &attr);
	}
	pthread_condattr_destroy(&attr);
}

/* Waits on sdk.wake (lock held) until CLOCK_MONOTONIC time until_ms or a signal. */
static void wait_until(uint64_t until_ms)
{
	struct timespec ts = {(time_t)(until_ms / 1000), (long)(until_ms % 1000) * 1000000};

	pthread_cond_timedwait(&sdk.wake, &sdk.lock, &ts);
}

/* Encodes and posts one batch, retrying with backoff within OTEL_BSP_EXPORT_TIMEOUT (and the
 * shutdown budget). Returns 0 or a negative error. Called without the lock. */
static int export_batch(struct otlp_span **spans, size_t n)
{
	uint64_t deadline = mono_ms() + (uint64_t)sdk.export_timeout_ms, now;
	struct otlp_buf body = {0};
	long retry_after, backoff = BACKOFF_FIRST_MS;
	int rc = otlp_exporter_encode(sdk.exporter, &sdk.resource, spans, n, &body);

	for (int attempt = 1; rc == 0; attempt++) {
		pthread_mutex_lock(&sdk.lock);
		if (sdk.stopping && sdk.stop_deadline_ms < deadline)
			deadline = sdk.stop_deadline_ms;
		pthread_mutex_unlock(&sdk.lock);
		now = mono_ms();
		if (now >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
		rc = otlp_exporter_post(sdk.exporter, &body, (long)(deadline - now), &retry_after);
		if (rc != -EAGAIN || attempt == EXPORT_ATTEMPTS)
			break;
		if (retry_after < 0) /* full jitter over [backoff/2, backoff) */
			retry_after = backoff / 2 + (long)(rand64() % (uint64_t)(backoff / 2));
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
		if (mono_ms() + (uint64_t)retry_after >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
		/* Wait out the backoff, unless shutdown leaves no time for it. */
		pthread_mutex_lock(&sdk.lock);
		uint64_t until = mono_ms() + (uint64_t)retry_after;
		bool no_time = false;
		while (mono_ms() < until &&
		       !(no_time = sdk.stopping && until >= sdk.stop_deadline_ms))
			wait_until(until);
		pthread_mutex_unlock(&sdk.lock);
		rc = no_time ? -ETIMEDOUT : 0;
	}
	otlp_buf_free(&body);
	return rc;
}

/* Logs what was lost since the last line, at most once per DROP_LOG_PERIOD_MS. */
static void log_drops(bool force)
{
	static uint64_t logged_queue, logged_export, last_ms;
	uint64_t q = atomic_load(&stat_dropped_queue), e = atomic_load(&stat_dropped_export);
	char qs[24], es[24];

	if ((q == logged_queue && e == logged_export) ||
	    (!force && last_ms && mono_ms() - last_ms < DROP_LOG_PERIOD_MS))
		return;
	snprintf(qs, sizeof(qs), "%llu", (unsigned long long)(q - logged_queue));
	snprintf(es, sizeof(es), "%llu", (unsigned long long)(e - logged_export));
	log_warn("spans dropped", "queue_full", qs, "export_failed", es, "endpoint",
	         otlp_exporter_url(sdk.exporter));
	logged_queue = q;
	logged_export = e;
	last_ms = mono_ms();
}

static void *export_main(void *arg)
{
	struct otlp_span **batch = arg;

	pthread_mutex_lock(&sdk.lock);
	for (;;) {
		uint64_t until;
		size_t n = 0;
		/* Idle: sleep until a span arrives (span ends signal the first one), so that even
		 * a zero schedule delay never spins; then gather for the schedule delay. */
		while (!sdk.stopping && sdk.len == 0)
			pthread_cond_wait(&sdk.wake, &sdk.lock);
		until = mono_ms() + (uint64_t)sdk.delay_ms;
		while (!sdk.stopping && sdk.len < sdk.batch_max && mono_ms() < until)
			wait_until(until);
		if (sdk.stopping && mono_ms() >= sdk.stop_deadline_ms)
			break;
		for (; n < sdk.batch_max && sdk.len > 0; n++, sdk.len--) {
			batch[n] = sdk.queue[sdk.head];
			sdk.head = (sdk.head + 1) % sdk.queue_cap;
		}
		if (n == 0 && sdk.stopping)
			break;
		pthread_mutex_unlock(&sdk.lock);
		if (n > 0) {
			if (export_batch(batch, n) == 0)
				atomic_fetch_add(&stat_exported, n);
			else
				count_dropped(&stat_dropped_export, sdk.dropped_metric,
				              "export_failed", n);
			for (size_t i = 0; i < n; i++)
				span_free((trace_span *)batch[i]);
		}
		log_drops(false);
		pthread_mutex_lock(&sdk.lock);
	}
	pthread_mutex_unlock(&sdk.lock);
	free(batch);
	return NULL;
}

/* ---- configuration ------------------------------------------------------------------- */

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

static int bad_env(const char *name, const char *value, const char *why)
{
	log_error("invalid environment variable", "variable", name, "value", value, "error", why);
	return -EINVAL;
}

/* Reads integer variable name into *out (default def), within [min, ENV_INT_MAX]. */
static int env_long(const char *name, long def, long min, long *out)
{
	const char *v = env(name);
	char *end;

	*out = def;
	if (!v)
		return 0;
	errno = 0;
	*out = strtol(v, &end, 10);
	if (errno || *end || *out < min || *out > ENV_INT_MAX)
		return bad_env(name, v, "not an integer in range");
	return 0;
}

static int read_sampler(void)
{
	static const struct {
		const char *name;
		enum sampler s;
	} names[] = {{"always_on", ALWAYS_ON},
	             {"always_off", ALWAYS_OFF},
	             {"traceidratio", RATIO},
	             {"parentbased_always_on", PARENT_ON},
	             {"parentbased_always_off", PARENT_OFF},
	             {"parentbased_traceidratio", PARENT_RATIO}};
	const char *v = env("OTEL_TRACES_SAMPLER"), *arg = env("OTEL_TRACES_SAMPLER_ARG");
	size_t i;
	char *end;

	sdk.sampler = PARENT_ON;
	sdk.ratio = 1.0;
	if (v) {
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strcmp(v, names[i].name) == 0)
				break;
		if (i == sizeof(names) / sizeof(names[0]))
			return bad_env("OTEL_TRACES_SAMPLER", v,
			               "supported: always_on, always_off, traceidratio, "
			               "parentbased_always_on, parentbased_always_off, "
			               "parentbased_traceidratio");
		sdk.sampler = names[i].s;
	}
	if ((sdk.sampler == RATIO || sdk.sampler == PARENT_RATIO) && arg) {
		errno = 0;
		sdk.ratio = strtod(arg, &end);
		if (errno || *end || !(sdk.ratio >= 0.0 && sdk.ratio <= 1.0))
			return bad_env("OTEL_TRACES_SAMPLER_ARG", arg, "a ratio from 0 to 1");
	}
	return 0;
}

static int resource_set(void *arg, const char *key, const char *value)
{
	(void)arg;
	otlp_attrs_set(&sdk.resource.attrs, &TRACE_STR(key, value));
	return 0;
}

static bool resource_has(const char *key)
{
	for (uint32_t i = 0; i < sdk.resource.attrs.len; i++)
		if (strcmp(sdk.resource.attrs.items[i].key, key) == 0)
			return true;
	return false;
}

/* service.*, host, SDK, k8s (downward API), then OTEL_RESOURCE_ATTRIBUTES and
 * OTEL_SERVICE_NAME, later ones winning. */
static int read_resource(const char *default_service_name, const char *service_version)
{
	static const char *const k8s[][2] = {{"K8S_POD_NAME", "k8s.pod.name"},
	                                     {"K8S_NAMESPACE_NAME", "k8s.namespace.name"},
	                                     {"K8S_NODE_NAME", "k8s.node.name"}};
	uint8_t u[16];
	char uuid[37], hex[33], host[256] = "";
	const char *v;

	random_id(u, 16);
	u[6] = (uint8_t)((u[6] & 0x0f) | 0x40); /* version 4 */
	u[8] = (uint8_t)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	tracecontext_hex(u, 16, hex);
	snprintf(uuid, sizeof(uuid), "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
	         hex + 20);
	resource_set(NULL, "service.instance.id", uuid);
	if (gethostname(host, sizeof(host) - 1) == 0 && host[0])
		resource_set(NULL, "host.name", host);
	resource_set(NULL, "telemetry.sdk.name", "bakery");
	resource_set(NULL, "telemetry.sdk.language", "c");
	resource_set(NULL, "telemetry.sdk.version", TRACE_SDK_VERSION);
	for (size_t i = 0; i < sizeof(k8s) / sizeof(k8s[0]); i++)
		if ((v = env(k8s[i][0])))
			resource_set(NULL, k8s[i][1], v);
	if ((v = env("OTEL_RESOURCE_ATTRIBUTES")) && otlp_kv_list_parse(v, resource_set, NULL) < 0)
		return bad_env("OTEL_RESOURCE_ATTRIBUTES", v, "not a k=v,k=v list");
	if ((v = env("OTEL_SERVICE_NAME")))
		resource_set(NULL, "service.name", v);
	else if (!resource_has("service.name"))
		resource_set(NULL, "service.name", default_service_name);
	if (service_version && !resource_has("service.version"))
		resource_set(NULL, "service.version", service_version);
	sdk.resource.scope_name = "bakery";
	sdk.resource.scope_version = TRACE_SDK_VERSION;
	return 0;
}

static void release(void)
{
	while (sdk.len > 0) {
		span_free((trace_span *)sdk.queue[sdk.head]);
		sdk.head = (sdk.head + 1) % sdk.queue_cap;
		sdk.len--;
	}
	free(sdk.queue);
	sdk.queue = NULL;
	sdk.queue_cap = sdk.head = 0;
	otlp_attrs_free(&sdk.resource.attrs);
	otlp_exporter_free(sdk.exporter);
	sdk.exporter = NULL;
}

int trace_init(const char *default_service_name, const char *service_version)
{
	long queue_max, batch_max;
	const char *v = env("OTEL_SDK_DISABLED");
	struct otlp_span **batch = NULL;
	int rc;

	if (sdk.running || atomic_load(&sdk_enabled))
		return -EALREADY;
	log_set_context_hook(trace_current_ids);
	if (v && strcasecmp(v, "true") == 0)
		return 0;
	if ((rc = env_long("OTEL_BSP_MAX_QUEUE_SIZE", 2048, 1, &queue_max)) < 0 ||
	    (rc = env_long("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512, 1, &batch_max)) < 0 ||
	    (rc = env_long("OTEL_BSP_SCHEDULE_DELAY", 5000, 0, &sdk.delay_ms)) < 0 ||
	    (rc = env_long("OTEL_BSP_EXPORT_TIMEOUT", 30000, 1, &sdk.export_timeout_ms)) < 0 ||
	    (rc = read_sampler()) < 0 ||
	    (rc = read_resource(default_service_name, service_version)) < 0 ||
	    (rc = otlp_exporter_create(&sdk.exporter)) < 0)
		goto fail;
	sdk.queue_cap = (size_t)queue_max;
	sdk.batch_max = (size_t)(batch_max < queue_max ? batch_max : queue_max);
	rc = -ENOMEM;
	if (!(sdk.queue = calloc(sdk.queue_cap, sizeof(*sdk.queue))) ||
	    !(batch = calloc(sdk.batch_max, sizeof(*batch))))
		goto fail;
	sdk.dropped_metric =
	    metrics_counter("otel_spans_dropped_total", "Spans lost before reaching the Collector.",
	                    (const char *const[]){"reason", NULL});
	pthread_once(&wake_once, wake_init);
	sdk.head = sdk.len = 0;
	sdk.stopping = false;
	sdk.accepting = true;
	if (pthread_create(&sdk.thread, NULL, export_main, batch) != 0) {
		sdk.accepting = false;
		goto fail;
	}
	sdk.running = true;
	atomic_store(&sdk_enabled, true);
	log_debug("tracing started", "endpoint", otlp_exporter_url(sdk.exporter));
	return 0;
fail:
	free(batch);
	release();
	return rc;
}

void trace_shutdown(void)
{
	uint64_t budget = (uint64_t)sdk.export_timeout_ms;

	atomic_store(&sdk_enabled, false);
	if (!sdk.running)
		return;
	if (budget > SHUTDOWN_BUDGET_MS)
		budget = SHUTDOWN_BUDGET_MS;
	pthread_mutex_lock(&sdk.lock);
	sdk.accepting = false;
	sdk.stopping = true;
	sdk.stop_deadline_ms = mono_ms() + budget;
	pthread_cond_broadcast(&sdk.wake);
	pthread_mutex_unlock(&sdk.lock);
	otlp_exporter_set_deadline(sdk.exporter, sdk.stop_deadline_ms);
	pthread_join(sdk.thread, NULL);
	sdk.running = false;
	if (sdk.len > 0)
		count_dropped(&stat_dropped_export, sdk.dropped_metric, "shutdown", sdk.len);
	log_drops(true);
	pthread_mutex_lock(&sdk.lock);
	sdk.dropped_metric = NULL;
	pthread_mutex_unlock(&sdk.lock);
	release();
}

bool trace_enabled(void)
{
	return atomic_load(&sdk_enabled);
}

void trace_stats(struct trace_stats *out)
{
	out->ended = atomic_load(&stat_ended);
	out->exported = atomic_load(&stat_exported);
	out->dropped = atomic_load(&stat_dropped_queue) + atomic_load(&stat_dropped_export);
}
