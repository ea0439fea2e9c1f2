/* test_stack_use.c — what the request path's tracing calls cost on a 100 KiB worker stack. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "check.h"
#include "otel/trace.h"
#include "otel_diag.h"

#define WORKER_STACK 102400 /* civetweb's worker threads on Debian (USE_STACK_SIZE) */
#define PAINT        0xa5

/* A carrier that keeps nothing (the caller's carrier lives off the stack). */
static int count_set(void *carrier, const char *name, const char *value)
{
	(void)name;
	(void)value;
	++*(int *)carrier;
	return 0;
}

static void *noop(void *arg)
{
	return arg;
}

/* Injects the context of a span with the largest tracestate and baggage. */
static void *inject(void *arg)
{
	trace_span *s = arg;
	int n = 0;

	if (trace_inject(s, count_set, &n) < 0 || n != 3)
		return NULL;
	return arg;
}

/* Runs fn(arg) on a thread whose WORKER_STACK-byte stack was painted first; returns the bytes
 * of stack it touched (the deepest byte no longer painted), or 0 when the thread failed. */
static size_t stack_touched(void *(*fn)(void *), void *arg)
{
	uint8_t *stack = mmap(NULL, WORKER_STACK, PROT_READ | PROT_WRITE,
	                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	pthread_attr_t attr;
	pthread_t t;
	void *ret = NULL;
	size_t used = 0;

	if (stack == MAP_FAILED)
		return 0;
	memset(stack, PAINT, WORKER_STACK);
	pthread_attr_init(&attr);
	if (pthread_attr_setstack(&attr, stack, WORKER_STACK) == 0 &&
	    pthread_create(&t, &attr, fn, arg) == 0 && pthread_join(t, &ret) == 0 && ret == arg) {
		size_t i = 0;
		while (i < WORKER_STACK && stack[i] == PAINT)
			i++;
		used = WORKER_STACK - i;
	}
	pthread_attr_destroy(&attr);
	munmap(stack, WORKER_STACK);
	return used;
}

/* trace_inject on a worker thread: a few hundred bytes of stack, not a struct trace_context
 * (1 KB) per call, whatever the context carries. */
static void test_inject_stays_small(void)
{
	static char state[TRACECONTEXT_STATE_MAX + 1], baggage[TRACECONTEXT_BAGGAGE_MAX + 1];
	static struct trace_context parent;
	size_t base, used;
	trace_span *s;

	setenv("OTEL_TRACES_SAMPLER", "always_on", 1);
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9", 1);
	setenv("OTEL_BSP_SCHEDULE_DELAY", "60000", 1);
	unsetenv("OTEL_SDK_DISABLED");
	CHECK(trace_init("test", "1") == 0);
	/* 32 members of 15 characters: 511 with the commas, the most a tracestate keeps. */
	for (int i = 0, n = 0; i < 32; i++)
		n += snprintf(state + n, sizeof(state) - (size_t)n, "%sk%02d=vvvvvvvvvvv",
		              i ? "," : "", i);
	memset(baggage, 'b', TRACECONTEXT_BAGGAGE_MAX - 2);
	memcpy(baggage, "k=", 2);
	CHECK(tracecontext_parse_traceparent(
	          "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", 55, &parent) == 0);
	CHECK(tracecontext_parse_tracestate(&(struct trace_field){state, strlen(state)}, 1,
	                                    parent.tracestate, sizeof(parent.tracestate)) == 0);
	CHECK(tracecontext_parse_baggage(&(struct trace_field){baggage, strlen(baggage)}, 1,
	                                 parent.baggage, sizeof(parent.baggage)) == 0);
	parent.remote = true;
	s = trace_span_start("publish-order", TRACE_KIND_PRODUCER, &parent);
	CHECK(trace_span_is_recording(s));
	base = stack_touched(noop, s);
	used = stack_touched(inject, s);
	fprintf(stderr, "  thread start %zu bytes, trace_inject %zu more\n", base,
	        used > base ? used - base : 0);
	CHECK(base > 0 && used > 0);
	CHECK(used < base + 4096);
	trace_span_end(s);
	trace_shutdown();
}

int main(void)
{
	otel_diag_register(); /* the drop metric and log lines, as the services do */
	RUN(test_inject_stays_small);
	return CHECK_DONE();
}
