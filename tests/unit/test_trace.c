/* test_trace.c — the SDK: disabled no-ops, samplers, current span, propagation, queue-full drops.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "metrics.h"
#include "otel/trace.h"
#include "otel/sampler.h"
#include "otel/exporter.h"
#include "otel/id.h"
#include "otel/span.h"
#include "otel_diag.h"

/* A header list for inject/extract: what an HTTP request or AMQP message carries. */
struct headers {
	int n;
	char name[8][32];
	char value[8][TRACECONTEXT_BAGGAGE_MAX + 1];
};

static const char *hget_at(void *carrier, const char *name, size_t index, size_t *len)
{
	struct headers *h = carrier;

	for (int i = 0; i < h->n; i++) {
		if (strcmp(h->name[i], name) == 0 && index-- == 0) {
			*len = strlen(h->value[i]);
			return h->value[i];
		}
	}
	return NULL;
}

static const char *hget(void *carrier, const char *name, size_t *len)
{
	return hget_at(carrier, name, 0, len);
}

static int hset(void *carrier, const char *name, const char *value)
{
	struct headers *h = carrier;

	if (h->n == 8)
		return -ENOSPC;
	snprintf(h->name[h->n], sizeof(h->name[0]), "%s", name);
	snprintf(h->value[h->n], sizeof(h->value[0]), "%s", value);
	h->n++;
	return 0;
}

/* A loopback port nobody listens on: bound, then closed. */
static int dead_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &len);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/* Sets the environment for one trace_init: an unreachable Collector, no surprises. */
static void env_reset(const char *sampler, const char *arg)
{
	char url[64];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", dead_port());
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url, 1);
	unsetenv("OTEL_SDK_DISABLED");
	unsetenv("OTEL_BSP_MAX_QUEUE_SIZE");
	unsetenv("OTEL_BSP_SCHEDULE_DELAY");
	setenv("OTEL_BSP_EXPORT_TIMEOUT", "300", 1); /* bounds each shutdown's flush */
	setenv("OTEL_TRACES_SAMPLER", sampler, 1);
	if (arg)
		setenv("OTEL_TRACES_SAMPLER_ARG", arg, 1);
	else
		unsetenv("OTEL_TRACES_SAMPLER_ARG");
}

static void test_disabled(void)
{
	struct trace_context ctx;
	struct headers h = {0};
	char tid[33], sid[17];
	trace_span *s;

	env_reset("always_on", NULL);
	setenv("OTEL_SDK_DISABLED", "true", 1);
	CHECK(trace_init("test", "1") == 0);
	CHECK(!trace_enabled());
	s = trace_span_start("x", TRACE_KIND_SERVER, NULL);
	CHECK(s == NULL);
	/* Every call takes NULL. */
	trace_span_set_str(s, "k", "v");
	trace_span_set_int(s, "k", 1);
	trace_span_set_double(s, "k", 1.0);
	trace_span_set_bool(s, "k", true);
	trace_span_add_event(s, "e", NULL, 0);
	trace_span_add_link(s, TRACE_ROOT, NULL, 0);
	trace_span_set_error(s, "boom");
	CHECK(!trace_span_is_recording(s));
	CHECK(trace_span_context(s, &ctx) == -EINVAL);
	CHECK(trace_inject(s, hset, &h) == -EINVAL && h.n == 0);
	CHECK(trace_current() == NULL);
	CHECK(trace_current_ids(tid, sid) == 0);
	trace_span_end(s);
	trace_shutdown();
	unsetenv("OTEL_SDK_DISABLED");
}

static void test_bad_env(void)
{
	env_reset("always_on", NULL);
	setenv("OTEL_BSP_MAX_QUEUE_SIZE", "lots", 1);
	CHECK(trace_init("test", "1") == -EINVAL);
	CHECK(!trace_enabled());
	env_reset("sometimes", NULL);
	CHECK(trace_init("test", "1") == -EINVAL);
	env_reset("traceidratio", "1.5");
	CHECK(trace_init("test", "1") == -EINVAL);
	env_reset("always_on", NULL);
	setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", 1);
	CHECK(trace_init("test", "1") == -EINVAL);
	unsetenv("OTEL_EXPORTER_OTLP_PROTOCOL");
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318", 1);
	CHECK(trace_init("test", "1") == -EINVAL);
	env_reset("always_on", NULL);
	CHECK(trace_init("test", "1") == 0);
	CHECK(trace_init("test", "1") == -EALREADY);
	trace_shutdown();
}

static void test_ratio_rule(void)
{
	uint8_t id[16] = {0};

	/* Last 8 bytes 0x00.. -> 0: sampled by any ratio above 0. */
	CHECK(trace_ratio_sampled(id, 0.0001));
	CHECK(!trace_ratio_sampled(id, 0.0));
	/* 0x80 00.. >> 1 = 2^62: exactly the bound for 0.5, so not sampled; 0.5000001 is. */
	id[8] = 0x80;
	CHECK(!trace_ratio_sampled(id, 0.5));
	CHECK(trace_ratio_sampled(id, 0.5000001));
	memset(id + 8, 0xff, 8);
	CHECK(!trace_ratio_sampled(id, 0.999999));
	CHECK(trace_ratio_sampled(id, 1.0));
	/* The first 8 bytes do not matter. */
	memset(id, 0xff, 8);
	memset(id + 8, 0, 8);
	CHECK(trace_ratio_sampled(id, 0.01));
}

/* Fraction of n new roots that are sampled under the current sampler. */
static double sampled_fraction(int n)
{
	int hits = 0;

	for (int i = 0; i < n; i++) {
		trace_span *s = trace_span_start("r", TRACE_KIND_INTERNAL, TRACE_ROOT);
		CHECK(s != NULL);
		hits += trace_span_is_recording(s);
		trace_span_end(s);
	}
	return (double)hits / n;
}

static void test_samplers(void)
{
	struct trace_context sampled = {
	    .trace_id = {1}, .span_id = {2}, .flags = 1, .remote = true};
	struct trace_context unsampled = sampled;
	struct trace_context ctx;
	double f;
	trace_span *s;

	unsampled.flags = 0;
	env_reset("traceidratio", "0.25");
	CHECK(trace_init("test", "1") == 0);
	f = sampled_fraction(40000); /* sd ~ 0.002: 0.02 is 10 sd */
	CHECK(f > 0.23 && f < 0.27);
	/* traceidratio ignores the parent's flag. */
	s = trace_span_start("c", TRACE_KIND_SERVER, &sampled);
	trace_span_context(s, &ctx);
	CHECK(trace_span_is_recording(s) == trace_ratio_sampled(sampled.trace_id, 0.25));
	trace_span_end(s);
	trace_shutdown();

	env_reset("parentbased_traceidratio", "0.1");
	CHECK(trace_init("test", "1") == 0);
	f = sampled_fraction(40000);
	CHECK(f > 0.08 && f < 0.12);
	s = trace_span_start("c", TRACE_KIND_SERVER, &sampled);
	CHECK(trace_span_is_recording(s));
	trace_span_end(s);
	s = trace_span_start("c", TRACE_KIND_SERVER, &unsampled);
	CHECK(s != NULL && !trace_span_is_recording(s));
	/* Not recorded, but the context still travels: same trace, flags 00, a new span id. */
	trace_span_context(s, &ctx);
	CHECK(memcmp(ctx.trace_id, unsampled.trace_id, 16) == 0);
	CHECK(ctx.flags == 0 && tracecontext_is_valid(&ctx));
	CHECK(memcmp(ctx.span_id, unsampled.span_id, 8) != 0);
	/* A local child follows its unsampled parent. */
	trace_span *child = trace_span_start("child", TRACE_KIND_INTERNAL, NULL);
	CHECK(child != NULL && !trace_span_is_recording(child));
	trace_span_end(child);
	trace_span_end(s);
	trace_shutdown();

	env_reset("parentbased_always_off", NULL);
	CHECK(trace_init("test", "1") == 0);
	CHECK(sampled_fraction(100) == 0.0);
	s = trace_span_start("c", TRACE_KIND_SERVER, &sampled);
	CHECK(trace_span_is_recording(s));
	trace_span_end(s);
	trace_shutdown();

	env_reset("always_off", NULL);
	CHECK(trace_init("test", "1") == 0);
	s = trace_span_start("c", TRACE_KIND_SERVER, &sampled);
	CHECK(s != NULL && !trace_span_is_recording(s));
	trace_span_end(s);
	trace_shutdown();

	env_reset("always_on", NULL);
	CHECK(trace_init("test", "1") == 0);
	CHECK(sampled_fraction(100) == 1.0);
	s = trace_span_start("c", TRACE_KIND_SERVER, &unsampled);
	CHECK(trace_span_is_recording(s));
	trace_span_end(s);
	trace_shutdown();

	/* The default is parentbased_always_on. */
	env_reset("always_on", NULL);
	unsetenv("OTEL_TRACES_SAMPLER");
	CHECK(trace_init("test", "1") == 0);
	CHECK(sampled_fraction(100) == 1.0);
	s = trace_span_start("c", TRACE_KIND_SERVER, &unsampled);
	CHECK(!trace_span_is_recording(s));
	trace_span_end(s);
	trace_shutdown();
}

static void test_current_and_propagation(void)
{
	struct headers in = {0}, out = {0};
	struct trace_context remote, ctx_a, ctx_b, ctx_c;
	char tid[33], sid[17], tp[56];
	trace_span *a, *b, *c;
	size_t len;

	env_reset("always_on", NULL);
	CHECK(trace_init("test", "1") == 0);
	CHECK(trace_current() == NULL);

	hset(&in, "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
	hset(&in, "tracestate", "congo=t61rcWkgMzE, rojo=1");
	hset(&in, "baggage", "userId=alice");
	CHECK(trace_extract(hget_at, &in, &remote) == 0);
	CHECK(remote.remote && remote.flags == 1);
	CHECK_STR(remote.tracestate, "congo=t61rcWkgMzE,rojo=1");
	CHECK_STR(remote.baggage, "userId=alice");

	a = trace_span_start("server", TRACE_KIND_SERVER, &remote);
	CHECK(trace_current() == a);
	b = trace_span_start("client", TRACE_KIND_CLIENT, NULL);
	CHECK(trace_current() == b);
	trace_span_context(a, &ctx_a);
	trace_span_context(b, &ctx_b);
	CHECK(memcmp(ctx_a.trace_id, remote.trace_id, 16) == 0);
	CHECK(memcmp(ctx_b.trace_id, remote.trace_id, 16) == 0);
	CHECK(memcmp(ctx_a.span_id, ctx_b.span_id, 8) != 0);
	CHECK(trace_current_ids(tid, sid) == 1);
	CHECK_STR(tid, "4bf92f3577b34da6a3ce929d0e0e4736");
	tracecontext_hex(ctx_b.span_id, 8, tp);
	CHECK_STR(sid, tp);

	/* Inject from the child: same trace, its span id, tracestate and baggage passed on. */
	CHECK(trace_inject(b, hset, &out) == 0);
	CHECK(out.n == 3);
	tracecontext_format_traceparent(&ctx_b, tp);
	CHECK_STR(hget(&out, "traceparent", &len), tp);
	CHECK_STR(hget(&out, "tracestate", &len), "congo=t61rcWkgMzE,rojo=1");
	CHECK_STR(hget(&out, "baggage", &len), "userId=alice");

	/* A forced new root while b is current, linking to b: the baker's CONSUMER shape. */
	c = trace_span_start("consumer", TRACE_KIND_CONSUMER, TRACE_ROOT);
	trace_span_add_link(c, &ctx_b, &TRACE_STR("k", "v"), 1);
	trace_span_context(c, &ctx_c);
	CHECK(memcmp(ctx_c.trace_id, remote.trace_id, 16) != 0);
	CHECK(ctx_c.baggage[0] == '\0');
	trace_span_end(c);
	CHECK(trace_current() == b);
	/* Out-of-order end: a ends first, b stays current, then nothing is. */
	trace_span_end(a);
	CHECK(trace_current() == b);
	trace_span_end(b);
	CHECK(trace_current() == NULL);
	CHECK(trace_current_ids(tid, sid) == 0);

	/* Malformed traceparent: a new root, never a crash; baggage still kept. */
	memset(&in, 0, sizeof(in));
	hset(&in, "traceparent", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01");
	hset(&in, "baggage", "k=v");
	CHECK(trace_extract(hget_at, &in, &remote) == -EINVAL);
	CHECK(!tracecontext_is_valid(&remote));
	a = trace_span_start("server", TRACE_KIND_SERVER, &remote);
	CHECK(a != NULL && trace_span_is_recording(a));
	trace_span_context(a, &ctx_a);
	CHECK(tracecontext_is_valid(&ctx_a));
	CHECK_STR(ctx_a.baggage, "k=v");
	trace_span_end(a);
	memset(&in, 0, sizeof(in));
	CHECK(trace_extract(hget_at, &in, &remote) == -ENOENT);

	/* Spans on another thread do not see this thread's current span. */
	trace_shutdown();
}

/* Every field of a name reaches the parsers: tracestate and baggage fields are one list, two
 * traceparent fields are invalid. */
static void test_extract_fields(void)
{
	struct headers in = {0};
	struct trace_context ctx;

	hset(&in, "tracestate", "a=1");
	hset(&in, "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
	hset(&in, "baggage", "k=v");
	hset(&in, "tracestate", "");
	hset(&in, "tracestate", "b=2,a=3");
	hset(&in, "baggage", "l=w");
	CHECK(trace_extract(hget_at, &in, &ctx) == 0);
	CHECK(tracecontext_is_valid(&ctx) && ctx.remote);
	CHECK_STR(ctx.tracestate, "a=1,b=2");
	CHECK_STR(ctx.baggage, "k=v,l=w");

	/* A second traceparent, even the same one: invalid, a new trace; the baggage stays. */
	hset(&in, "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
	CHECK(trace_extract(hget_at, &in, &ctx) == -EINVAL);
	CHECK(!tracecontext_is_valid(&ctx));
	CHECK_STR(ctx.tracestate, "");
	CHECK_STR(ctx.baggage, "k=v,l=w");
}

/* More tracestate fields than trace_extract reads: the tracestate goes, the context stays. */
struct many {
	int n; /* tracestate fields */
};

static const char *many_get(void *carrier, const char *name, size_t index, size_t *len)
{
	const struct many *m = carrier;

	if (strcmp(name, "traceparent") == 0 && index == 0) {
		*len = 55;
		return "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	}
	if (strcmp(name, "tracestate") == 0 && (int)index < m->n) {
		*len = 3;
		return "a=1";
	}
	return NULL;
}

static void test_extract_many_fields(void)
{
	struct trace_context ctx;
	struct many m = {TRACE_FIELDS_MAX};

	CHECK(trace_extract(many_get, &m, &ctx) == 0);
	CHECK_STR(ctx.tracestate, "a=1"); /* 32 members, one key: the first kept */
	m.n = TRACE_FIELDS_MAX + 1;
	CHECK(trace_extract(many_get, &m, &ctx) == 0);
	CHECK(tracecontext_is_valid(&ctx));
	CHECK_STR(ctx.tracestate, "");
}

/* Each thread has its own current span; ends from many threads all reach the queue. */
static void *spans_thread(void *arg)
{
	struct trace_context ctx_a, ctx_b;
	long bad = 0;

	(void)arg;
	for (int i = 0; i < 500; i++) {
		trace_span *a = trace_span_start("a", TRACE_KIND_SERVER, NULL);
		trace_span *b = trace_span_start("b", TRACE_KIND_CLIENT, NULL);
		trace_span_set_int(b, "i", i);
		trace_span_context(a, &ctx_a);
		trace_span_context(b, &ctx_b);
		bad += trace_current() != b || memcmp(ctx_a.trace_id, ctx_b.trace_id, 16) != 0;
		trace_span_end(b);
		bad += trace_current() != a;
		trace_span_end(a);
		bad += trace_current() != NULL;
	}
	return (void *)bad;
}

static void test_threads(void)
{
	struct trace_stats before, after;
	pthread_t t[4];
	void *bad;

	env_reset("always_on", NULL);
	CHECK(trace_init("test", "1") == 0);
	trace_stats(&before);
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, spans_thread, NULL);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], &bad);
		CHECK(bad == NULL);
	}
	trace_shutdown();
	trace_stats(&after);
	CHECK(after.ended - before.ended == 4000);
	CHECK(after.dropped - before.dropped == 4000); /* nobody listens */
}

/* A detached span leaves its thread's current spans and ends on another thread (reception's
 * pipeline hands its spans over so): the starting thread never sees it again, the span is
 * exported once. */
static void *end_elsewhere(void *span)
{
	trace_span_set_str(span, "ended", "elsewhere");
	trace_span_end(span);
	return NULL;
}

static void *set_elsewhere(void *span)
{
	trace_span_set_int(span, "k", 1);
	return NULL;
}

/* The thread rule is asserted: another thread using a span not detached aborts (unless
 * NDEBUG); detached, it may. */
static void test_thread_rule(void)
{
#ifdef NDEBUG
	fprintf(stderr, "  NDEBUG: the thread rule is not asserted\n");
#else
	int status = 0;
	pid_t pid = fork();

	if (pid == 0) {
		pthread_t t;
		trace_span *s;
		freopen("/dev/null", "w", stderr);
		env_reset("always_on", NULL);
		trace_init("test", "1");
		s = trace_span_start("owned", TRACE_KIND_INTERNAL, NULL);
		pthread_create(&t, NULL, set_elsewhere, s); /* not detached: aborts */
		pthread_join(t, NULL);
		_exit(0);
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
#endif
}

/* Diagnostics go to the registered callbacks; none registered: silence. */
struct diag_counts {
	int logs;
	uint64_t dropped;
};

static void count_log(void *arg, enum trace_diag_level level, const char *msg,
                      const char *const kv[6])
{
	(void)level, (void)msg, (void)kv;
	((struct diag_counts *)arg)->logs++;
}

static void count_dropped(void *arg, const char *reason, uint64_t n)
{
	(void)reason;
	((struct diag_counts *)arg)->dropped += n;
}

static void test_diag_callbacks(void)
{
	struct diag_counts c = {0};

	trace_set_diag(&(struct trace_diag){count_log, count_dropped, &c});
	env_reset("always_on", NULL);
	setenv("OTEL_BSP_SCHEDULE_DELAY", "60000", 1);
	CHECK(trace_init("test", "1") == 0);
	trace_span_end(trace_span_start("left", TRACE_KIND_INTERNAL, NULL));
	trace_shutdown(); /* the Collector is not there: the span is lost, and logged */
	CHECK(c.dropped == 1);
	CHECK(c.logs >= 1);
	trace_set_diag(NULL);
	c = (struct diag_counts){0};
	CHECK(trace_init("test", "1") == 0);
	trace_span_end(trace_span_start("left", TRACE_KIND_INTERNAL, NULL));
	trace_shutdown();
	CHECK(c.dropped == 0 && c.logs == 0);
	otel_diag_register();
}

static void test_detach(void)
{
	struct trace_stats before, after;
	trace_span *a, *b;
	pthread_t t;

	env_reset("always_on", NULL);
	CHECK(trace_init("test", "1") == 0);
	trace_stats(&before);
	a = trace_span_start("request", TRACE_KIND_SERVER, NULL);
	b = trace_span_start("handed-over", TRACE_KIND_PRODUCER, NULL);
	CHECK(trace_current() == b);
	trace_span_detach(b);
	CHECK(trace_current() == a);
	trace_span_detach(b); /* twice, or NULL: nothing happens */
	trace_span_detach(NULL);
	CHECK(trace_current() == a);
	CHECK(pthread_create(&t, NULL, end_elsewhere, b) == 0);
	pthread_join(t, NULL);
	CHECK(trace_current() == a);
	trace_span_end(a);
	CHECK(trace_current() == NULL);
	trace_shutdown();
	trace_stats(&after);
	CHECK(after.ended - before.ended == 2);
}

/* Whether span's record (the start of a trace_span) encodes as ref does, in protobuf and JSON,
 * once ref takes its ids, times, name and kind. */
static bool encodes_as(trace_span *span, struct otlp_span *ref)
{
	const struct otlp_span *in = (const struct otlp_span *)span;
	struct otlp_buf a = {0}, b = {0}, c = {0}, d = {0};
	bool same;

	memcpy(ref->trace_id, in->trace_id, 16);
	memcpy(ref->span_id, in->span_id, 8);
	memcpy(ref->parent_span_id, in->parent_span_id, 8);
	ref->has_parent = in->has_parent;
	ref->flags = in->flags;
	ref->kind = in->kind;
	ref->start_ns = in->start_ns;
	ref->end_ns = in->end_ns;
	same = otlp_encode_protobuf_span(in, &a) == 0 && otlp_encode_protobuf_span(ref, &b) == 0 &&
	       a.len == b.len && memcmp(a.data, b.data, a.len) == 0 &&
	       otlp_encode_json_span(in, &c) == 0 && otlp_encode_json_span(ref, &d) == 0 &&
	       c.len == d.len && memcmp(c.data, d.data, c.len) == 0;
	otlp_buf_free(&a);
	otlp_buf_free(&b);
	otlp_buf_free(&c);
	otlp_buf_free(&d);
	return same;
}

static void *set_attr_elsewhere(void *arg)
{
	trace_span_set_str(arg, "set.elsewhere", "yes");
	return NULL;
}

/* trace.c's fast setters write the usual attribute into the record themselves and leave the
 * rest to the SDK: either way the span encodes (protobuf and JSON) as one whose attributes are
 * all set through otlp_attrs_set. Lengths around the fast path's limits, every varint length, keys
 * set again, non-ASCII and invalid UTF-8, a detached span, a full record and a span the
 * sampler drops. */
static void test_fast_setters(void)
{
	static const char *const strs[] = {"",
	                                   "a",
	                                   "abc",
	                                   "abcd",
	                                   "abcdefg",
	                                   "abcdefgh",
	                                   "abcdefghi",
	                                   "0123456789abcdef",
	                                   "0123456789abcdefg",
	                                   "0123456789abcdef0123456789abcdef",
	                                   "0123456789abcdef0123456789abcdef!",
	                                   "caf\xc3\xa9",
	                                   "bad \xff byte",
	                                   "cut \xc3",
	                                   "a\xffz",
	                                   "\xc3\xa9"};
	static const int64_t ints[] = {0,     1,       127,     128, 300,       16383,    16384,
	                               16389, 2097151, 2097152, -1,  INT64_MAX, INT64_MIN};
	enum { NS = sizeof(strs) / sizeof(strs[0]), NI = sizeof(ints) / sizeof(ints[0]) };
	struct otlp_span ref = {0};
	char key[96];
	trace_span *s;
	pthread_t t;

	env_reset("always_on", NULL);
	CHECK(trace_init("test", "1") == 0);
	/* Each string as a key against each as a value and each integer, the keys lengthened
	 * with dots: no two of a span alike in length, as the fast path wants. */
	for (size_t k = 0; k < NS; k++) {
		size_t n = strlen(strs[k]);
		s = trace_span_start("inline", TRACE_KIND_INTERNAL, NULL);
		CHECK(otlp_span_set_name(&ref, "inline") == 0);
		memcpy(key, strs[k], n);
		for (size_t v = 0; v < NS + NI; v++) {
			key[n + v] = '\0';
			if (v < NS)
				trace_span_set_str(s, key, strs[v]);
			else
				trace_span_set_int(s, key, ints[v - NS]);
			CHECK(otlp_attrs_set(&ref.attrs, v < NS
			                                     ? &TRACE_STR(key, strs[v])
			                                     : &TRACE_INT(key, ints[v - NS])) == 0);
			key[n + v] = '.';
		}
		CHECK(encodes_as(s, &ref));
		trace_span_end(s);
		otlp_span_clear(&ref);
		ref = (struct otlp_span){0};
	}
	/* A key set again (an int over a string, then a string), the list still right after. */
	s = trace_span_start("again", TRACE_KIND_SERVER, NULL);
	CHECK(otlp_span_set_name(&ref, "again") == 0);
	for (int round = 0; round < 3; round++) {
		trace_span_set_str(s, "http.route", "/orders");
		trace_span_set_int(s, "client.port", 53412 + round);
		if (round == 1)
			trace_span_set_int(s, "http.route", 7);
		CHECK(otlp_attrs_set(&ref.attrs, &TRACE_STR("http.route", "/orders")) == 0);
		CHECK(otlp_attrs_set(&ref.attrs, &TRACE_INT("client.port", 53412 + round)) == 0);
		if (round == 1)
			CHECK(otlp_attrs_set(&ref.attrs, &TRACE_INT("http.route", 7)) == 0);
	}
	trace_span_set_str(s, "after", "x");
	CHECK(otlp_attrs_set(&ref.attrs, &TRACE_STR("after", "x")) == 0);
	CHECK(otlp_attrs_count(&((struct otlp_span *)s)->attrs) == 3 && encodes_as(s, &ref));
	/* Detached, then set by another thread (which the fast path leaves to the slow one). */
	trace_span_detach(s);
	CHECK(pthread_create(&t, NULL, set_attr_elsewhere, s) == 0);
	pthread_join(t, NULL);
	CHECK(otlp_attrs_set(&ref.attrs, &TRACE_STR("set.elsewhere", "yes")) == 0);
	CHECK(encodes_as(s, &ref));
	trace_span_end(s);
	otlp_span_clear(&ref);
	ref = (struct otlp_span){0};
	/* Past the record's room and OTLP_ATTRS_MAX: 130 keys, the last two dropped. */
	s = trace_span_start("full", TRACE_KIND_SERVER, NULL);
	CHECK(otlp_span_set_name(&ref, "full") == 0);
	for (int i = 0; i < OTLP_ATTRS_MAX + 2; i++) {
		snprintf(key, sizeof(key), "key.%d", i);
		trace_span_set_str(s, key, i % 2 ? "0123456789abcdef" : "v");
		otlp_attrs_set(&ref.attrs, &TRACE_STR(key, i % 2 ? "0123456789abcdef" : "v"));
	}
	CHECK(((struct otlp_span *)s)->attrs.packed == NULL);
	CHECK(otlp_attrs_count(&((struct otlp_span *)s)->attrs) == OTLP_ATTRS_MAX);
	CHECK(((struct otlp_span *)s)->attrs.dropped == 2 && encodes_as(s, &ref));
	trace_span_end(s);
	otlp_span_clear(&ref);
	trace_shutdown();
	/* Dropped by the sampler: nothing is recorded, fast path or not. */
	env_reset("always_off", NULL);
	CHECK(trace_init("test", "1") == 0);
	s = trace_span_start("dropped", TRACE_KIND_SERVER, NULL);
	CHECK(s != NULL && !trace_span_is_recording(s));
	trace_span_set_str(s, "k", "v");
	trace_span_set_int(s, "i", 1);
	trace_span_set_str(s, "long", "0123456789abcdef0123456789abcdef0123456789");
	CHECK(otlp_attrs_count(&((struct otlp_span *)s)->attrs) == 0);
	trace_span_end(s);
	trace_shutdown();
}

/* Ids from one load of the generator (otel_id_random2, a root span's two) are as random as one
 * at a time: none zero, none repeated, the generator going on from where they left it. */
static void test_ids(void)
{
	enum { N = 500 };
	static uint8_t ids[2 * N][16];
	static const uint8_t zero[16];

	for (int i = 0; i < N; i++) {
		if (i % 2)
			otel_id_random2(ids[2 * i], 16, ids[2 * i + 1], 8);
		else
			otel_id_random(ids[2 * i], 16), otel_id_random(ids[2 * i + 1], 8);
	}
	for (int i = 0; i < 2 * N; i++) {
		size_t n = i % 2 ? 8 : 16;
		CHECK(memcmp(ids[i], zero, n) != 0);
		if (i % 2)
			CHECK(memcmp(ids[i] + 8, zero, 8) == 0); /* 8 bytes written, no more */
		for (int j = 0; j < i; j++)
			CHECK(memcmp(ids[i], ids[j], 8) != 0);
	}
}

static void test_queue_full_drops(void)
{
	struct trace_stats before, after;
	struct timespec t0, t1;
	struct metric *m;
	double m_before;

	env_reset("always_on", NULL);
	setenv("OTEL_BSP_MAX_QUEUE_SIZE", "4", 1);
	setenv("OTEL_BSP_SCHEDULE_DELAY", "60000", 1);
	CHECK(trace_init("test", "1") == 0);
	m = metrics_counter("otel_spans_dropped_total", "", (const char *const[]){"reason", NULL});
	m_before = metrics_value(m, "queue_full");
	trace_stats(&before);
	/* Four fill the queue (and wake the exporter, which then retries a dead Collector);
	 * of the next ten at most four fit. */
	for (int i = 0; i < 14; i++) {
		trace_span *s = trace_span_start("burst", TRACE_KIND_INTERNAL, NULL);
		trace_span_set_int(s, "i", i);
		trace_span_end(s);
	}
	trace_stats(&after);
	CHECK(after.ended - before.ended == 14);
	CHECK(after.dropped - before.dropped >= 6);
	CHECK(metrics_value(m, "queue_full") - m_before >= 6);
	/* Shutdown with the Collector down is bounded, and every span is accounted for. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	trace_shutdown();
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK(t1.tv_sec - t0.tv_sec < 15); /* a hang guard, not a speed test */
	trace_stats(&after);
	CHECK(after.exported == before.exported);
	CHECK(after.dropped - before.dropped == 14);
}

int main(void)
{
	otel_diag_register(); /* the drop metric and log lines, as the services do */
	RUN(test_disabled);
	RUN(test_bad_env);
	RUN(test_ratio_rule);
	RUN(test_samplers);
	RUN(test_current_and_propagation);
	RUN(test_extract_fields);
	RUN(test_extract_many_fields);
	RUN(test_threads);
	RUN(test_detach);
	RUN(test_thread_rule);
	RUN(test_diag_callbacks);
	RUN(test_fast_setters);
	RUN(test_ids);
	RUN(test_queue_full_drops);
	return CHECK_DONE();
}
